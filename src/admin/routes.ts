import { BlockList, isIP } from "node:net";
import type { FastifyReply, FastifyRequest } from "fastify";
import { MatrixError } from "../core/errors.js";
import { accessToken } from "../http/auth.js";
import type { Route } from "../http/endpoint.js";
import { BLOCK_KINDS, type BlockKind } from "../store/blocklist.js";
import { bodyObject, type JsonObject, optionalString, requireString } from "./params.js";
import type { AdminService } from "./service.js";
import { parseThreepid } from "./subject.js";
import type { AdminTokens } from "./tokens.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The name of the operator token that authenticated this admin request. */
    adminActor?: string;
  }
}

const P = "/admin/v1";

type Handler = (req: FastifyRequest, reply: FastifyReply) => Promise<object | string>;

/**
 * The admin listener's routes, collected as route-table rows for `createHttpServer` (404/405 and CORS come
 * from them). The operator-token check runs first in each handler.
 */
export class AdminRouteList {
  readonly rows: Route[] = [];

  add(
    method: "GET" | "POST" | "DELETE",
    path: string,
    handler: Handler,
    opts: { preHandler?: (req: FastifyRequest) => Promise<void> } = {},
  ): void {
    const guard = opts.preHandler;
    this.rows.push({
      method,
      path,
      access: "none",
      limit: "none",
      endpoint: {
        async handle(req, reply) {
          if (guard) await guard(req);
          return handler(req, reply);
        },
      },
    });
  }
}
const MAX_LIMIT = 1000;

/** Query parameters and body keys merged (the body wins), for endpoints that accept either. */
function params(req: FastifyRequest): JsonObject {
  const q = typeof req.query === "object" && req.query !== null ? (req.query as JsonObject) : {};
  const flat: JsonObject = {};
  for (const [k, v] of Object.entries(q)) flat[k] = Array.isArray(v) ? v[0] : v;
  return req.method === "GET" ? flat : { ...flat, ...bodyObject(req.body) };
}

function intParam(q: JsonObject, name: string, def: number | undefined, min: number, max: number) {
  const raw = q[name];
  if (raw === undefined || raw === null || raw === "") return def;
  const n = typeof raw === "number" ? raw : Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new MatrixError("M_INVALID_PARAM", `${name} must be an integer from ${min} to ${max}`);
  }
  return n;
}

function page(q: JsonObject) {
  return {
    from: intParam(q, "from", undefined, 0, Number.MAX_SAFE_INTEGER),
    limit: intParam(q, "limit", 100, 1, MAX_LIMIT) ?? 100,
  };
}

function idParam(req: FastifyRequest): number {
  const raw = (req.params as { id?: string }).id ?? "";
  if (!/^\d{1,15}$/.test(raw)) throw new MatrixError("M_INVALID_PARAM", "id must be a number");
  return Number(raw);
}

function kindParam(q: JsonObject, required: boolean): BlockKind | undefined {
  const kind = optionalString(q, "kind", 16);
  if (kind === undefined && !required) return undefined;
  if (!BLOCK_KINDS.includes(kind as BlockKind)) {
    throw new MatrixError("M_INVALID_PARAM", `kind must be one of ${BLOCK_KINDS.join(", ")}`);
  }
  return kind as BlockKind;
}

const str = (q: JsonObject, name: string) => optionalString(q, name, 1024);

/** A preHandler requiring a live operator token (`Authorization: Bearer`); 401 M_UNAUTHORIZED otherwise. */
export function requireAdmin(tokens: AdminTokens) {
  return async (req: FastifyRequest): Promise<void> => {
    req.adminActor = await tokens.authenticate(accessToken(req, false));
  };
}

const actor = (req: FastifyRequest) => req.adminActor ?? "unknown";

/** The `/admin/v1` API (every route needs an operator token). */
export function registerAdminRoutes(routes: AdminRouteList, admin: AdminService, tokens: AdminTokens): void {
  const opts = { preHandler: requireAdmin(tokens) };
  const audit = admin.audit;
  const read = (req: FastifyRequest, action: string, ...ids: Array<string | undefined>) =>
    audit.record(actor(req), action, audit.target(...ids), "ok");

  routes.add(
    "GET",
    `${P}/audit`,
    async (req) => {
      const q = params(req);
      const about = { address: str(q, "address"), medium: str(q, "medium"), mxid: str(q, "mxid") };
      const res = await admin.auditPage({
        ...page(q),
        action: str(q, "action"),
        actor: str(q, "actor"),
        about,
      });
      await read(req, "audit.read", about.address, about.mxid);
      return res;
    },
    opts,
  );

  routes.add(
    "GET",
    `${P}/tokens`,
    async (req) => {
      await read(req, "token.list");
      return { tokens: await tokens.list() };
    },
    opts,
  );

  // Subjects (GDPR access and erasure)
  const subject = (q: JsonObject) => ({
    address: str(q, "address"),
    medium: str(q, "medium"),
    mxid: str(q, "mxid"),
  });
  routes.add(
    "GET",
    `${P}/subjects`,
    async (req) => admin.exportSubject(actor(req), subject(params(req))),
    opts,
  );
  routes.add(
    "DELETE",
    `${P}/subjects`,
    async (req) => ({ deleted: await admin.eraseSubject(actor(req), subject(params(req))) }),
    opts,
  );

  // Bindings
  routes.add(
    "GET",
    `${P}/bindings`,
    async (req) => {
      const q = params(req);
      const f = { medium: str(q, "medium"), address: str(q, "address"), mxid: str(q, "mxid") };
      const res = await admin.listBindings(f, page(q));
      await read(req, "bindings.list", f.address, f.mxid);
      return res;
    },
    opts,
  );
  routes.add(
    "POST",
    `${P}/bindings`,
    async (req) => {
      const q = params(req);
      return admin.createBinding(actor(req), {
        medium: str(q, "medium"),
        address: requireString(q, "address", 1024),
        mxid: requireString(q, "mxid", 1024),
      });
    },
    opts,
  );
  routes.add(
    "DELETE",
    `${P}/bindings`,
    async (req) => {
      const q = params(req);
      const removed = await admin.deleteBinding(actor(req), {
        medium: str(q, "medium"),
        address: requireString(q, "address", 1024),
        mxid: str(q, "mxid"),
      });
      return { removed };
    },
    opts,
  );

  // Invites and onbind jobs
  routes.add(
    "GET",
    `${P}/invites`,
    async (req) => {
      const q = params(req);
      const f = {
        address: str(q, "address"),
        sender: str(q, "sender"),
        roomId: str(q, "room_id"),
        olderThanDays: intParam(q, "older_than_days", undefined, 0, 100_000),
      };
      const res = await admin.listInvites(f, page(q));
      await read(req, "invites.list", f.address, f.sender);
      return res;
    },
    opts,
  );
  routes.add(
    "DELETE",
    `${P}/invites/:id`,
    async (req) => ({ revoked: await admin.revokeInvite(actor(req), idParam(req)) }),
    opts,
  );
  routes.add(
    "POST",
    `${P}/invites/:id/resend`,
    async (req) => {
      await admin.resendInvite(actor(req), idParam(req));
      return {};
    },
    opts,
  );
  routes.add(
    "GET",
    `${P}/onbind`,
    async (req) => {
      const q = params(req);
      const res = await admin.listOnbindJobs(
        { failing: q.failing === "true" || q.failing === true },
        page(q),
      );
      await read(req, "onbind.list");
      return res;
    },
    opts,
  );
  routes.add(
    "POST",
    `${P}/onbind/:id/retry`,
    async (req) => {
      await admin.retryOnbindJob(actor(req), idParam(req));
      return {};
    },
    opts,
  );
  routes.add(
    "DELETE",
    `${P}/onbind/:id`,
    async (req) => {
      await admin.dropOnbindJob(actor(req), idParam(req));
      return {};
    },
    opts,
  );

  // Abuse controls
  routes.add(
    "GET",
    `${P}/blocklist`,
    async (req) => {
      const entries = await admin.policy.blocked(kindParam(params(req), false));
      await read(req, "blocklist.list");
      return { entries };
    },
    opts,
  );
  routes.add(
    "POST",
    `${P}/blocklist`,
    async (req) => {
      const q = params(req);
      const kind = kindParam(q, true)!;
      const added = await admin.policy.block(
        kind,
        requireString(q, "value", 1024),
        str(q, "reason") ?? null,
        actor(req),
      );
      return { added };
    },
    opts,
  );
  routes.add(
    "DELETE",
    `${P}/blocklist`,
    async (req) => {
      const q = params(req);
      const removed = await admin.policy.unblock(
        kindParam(q, true)!,
        requireString(q, "value", 1024),
        actor(req),
      );
      return { removed };
    },
    opts,
  );
  routes.add(
    "GET",
    `${P}/suppressions`,
    async (req) => {
      const q = params(req);
      const address = str(q, "address");
      if (address !== undefined) {
        const t = parseThreepid(address, str(q, "medium"));
        await read(req, "suppress.check", t.address);
        return { suppressed: await admin.policy.isSuppressed(t.address) };
      }
      await read(req, "suppress.list");
      return { items: await admin.policy.suppressed(page(q).limit, page(q).from) };
    },
    opts,
  );
  routes.add(
    "POST",
    `${P}/suppressions`,
    async (req) => {
      const q = params(req);
      const t = parseThreepid(requireString(q, "address", 1024), str(q, "medium"));
      return { added: await admin.policy.suppress(t.medium, t.address, "operator", actor(req)) };
    },
    opts,
  );
  routes.add(
    "DELETE",
    `${P}/suppressions`,
    async (req) => {
      const q = params(req);
      const t = parseThreepid(requireString(q, "address", 1024), str(q, "medium"));
      return { removed: await admin.policy.unsuppress(t.address, actor(req)) };
    },
    opts,
  );
}

/** A node:net BlockList of CIDRs such as `127.0.0.1/32` or `::1/128`. */
export function cidrList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    const [net, bits] = c.split("/");
    const type = isIP(net ?? "") === 6 ? "ipv6" : "ipv4";
    list.addSubnet(net!, Number(bits ?? (type === "ipv6" ? 128 : 32)), type);
  }
  return list;
}

function sourceAllowed(list: BlockList, ip: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1];
  const addr = mapped ?? ip;
  return list.check(addr, isIP(addr) === 6 ? "ipv6" : "ipv4");
}

/**
 * sydent's internal API: `POST /_matrix/identity/internal/bind` and `/unbind` with `{medium, address, mxid}`.
 * Callers from `allowUnauthenticated` need no token (sydent needs none at all); others need an operator token.
 */
export function registerSydentInternalRoutes(
  routes: AdminRouteList,
  admin: AdminService,
  tokens: AdminTokens,
  allowUnauthenticated: readonly string[],
): void {
  const allowed = cidrList(allowUnauthenticated);
  const preHandler = async (req: FastifyRequest): Promise<void> => {
    const token = accessToken(req, false);
    if (token !== undefined) {
      req.adminActor = await tokens.authenticate(token);
      return;
    }
    if (!sourceAllowed(allowed, req.socket.remoteAddress ?? ""))
      throw new MatrixError("M_UNAUTHORIZED", "Admin token required");
    req.adminActor = "sydent-internal";
  };
  const body = (req: FastifyRequest) => {
    const b = bodyObject(req.body);
    // sydent's get_args: every key required, answered 400 M_MISSING_PARAMS.
    const missing = ["medium", "address", "mxid"].filter((k) => b[k] === undefined || b[k] === "");
    if (missing.length) {
      throw new MatrixError("M_MISSING_PARAMS", `Missing parameters: ${missing.join(",")}`);
    }
    return {
      medium: requireString(b, "medium", 32),
      address: requireString(b, "address", 1024),
      mxid: requireString(b, "mxid", 1024),
    };
  };
  routes.add(
    "POST",
    "/_matrix/identity/internal/bind",
    async (req) => admin.createBinding(actor(req), body(req)),
    { preHandler },
  );
  routes.add(
    "POST",
    "/_matrix/identity/internal/unbind",
    async (req) => {
      await admin.deleteBinding(actor(req), body(req));
      return {};
    },
    { preHandler },
  );
}
