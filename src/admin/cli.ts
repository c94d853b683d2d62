import { existsSync } from "node:fs";
import { userInfo } from "node:os";
import { parseArgs } from "node:util";
import type { ResolvedConfig } from "../config/load.js";
import { MatrixError } from "../core/errors.js";
import { readKeyFile } from "../crypto/key-file.js";
import { KeyService } from "../services/keys.js";
import { BLOCK_KINDS, type BlockKind } from "../store/blocklist.js";
import { withMigratedStore } from "../store/database.js";
import { createAdmin } from "./index.js";
import { parseThreepid } from "./subject.js";

const USAGE: Record<string, string> = {
  token: `seraph admin token create NAME     create an operator token (printed once; only its hash is kept)
seraph admin token revoke NAME     revoke it
seraph admin token list            names, creation and revocation times`,
  bindings: `seraph admin bindings list [--address A] [--medium M] [--mxid @u:hs] [--from ID] [--limit N]
seraph admin bindings add ADDRESS MXID [--medium M]   bind without validation (queues pending invites)
seraph admin bindings remove ADDRESS [--mxid @u:hs] [--medium M]   unbind (notifies no homeserver)`,
  subjects: `seraph admin subjects export (--address A [--medium M] | --mxid @u:hs)...   everything held, as JSON
seraph admin subjects erase  (--address A [--medium M] | --mxid @u:hs)...   delete it all, one transaction`,
  invites: `seraph admin invites list [--address A] [--sender @u:hs] [--room !r:hs] [--older-than-days N]
seraph admin invites revoke ID     revoke a pending invite (its keys and token stop working)
                                   (resending an invite's email needs the running server: POST /admin/v1/invites/ID/resend)`,
  onbind: `seraph admin onbind list [--failing]   onbind deliveries waiting (failing: tried at least once)
seraph admin onbind retry ID       make a job due now
seraph admin onbind drop ID        drop a job (its invites stay until they expire)`,
  blocklist: `seraph admin blocklist list [--kind server|room|keyword]
seraph admin blocklist add KIND VALUE [--reason TEXT]   refuse store-invite from a homeserver (*.example.org
                                   for subdomains), for a room ID, or when a room/display name contains a keyword
seraph admin blocklist remove KIND VALUE`,
  suppress: `seraph admin suppress add ADDRESS      never invite this address again
seraph admin suppress remove ADDRESS
seraph admin suppress check ADDRESS
seraph admin suppress list`,
  audit: `seraph admin audit [--action A] [--actor NAME] [--address A | --mxid @u:hs] [--from ID] [--limit N]
                                   the audit trail, newest first`,
};

export const ADMIN_HELP = `seraph admin: operate on the database directly (the server may be stopped)

${Object.values(USAGE).join("\n")}

Every command takes --config FILE, --json (machine-readable output) and --help.
`;

class CliUsageError extends Error {}

/** Renders rows as an aligned text table. */
export function table(rows: readonly object[]): string {
  if (rows.length === 0) return "(none)\n";
  const recs = rows as ReadonlyArray<Record<string, unknown>>;
  const cols = [...new Set(recs.flatMap((r) => Object.keys(r)))];
  const cell = (v: unknown) =>
    v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
  const cells = recs.map((r) => cols.map((c) => cell(r[c]).replace(/\s+/g, " ")));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((r) => Math.min(r[i]!.length, 60))));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => (v.length > 60 ? `${v.slice(0, 59)}…` : v).padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return `${[line(cols), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)].join("\n")}\n`;
}

function intOpt(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,15}$/.test(v)) throw new CliUsageError(`--${name} must be a number`);
  return Number(v);
}

function need(v: string | undefined, what: string): string {
  if (v === undefined || v === "") throw new CliUsageError(`missing ${what}`);
  return v;
}

/** `seraph admin ...`: returns the exit code (0 ok, 1 not found / refused, 2 usage). */
export async function adminMain(
  argv: string[],
  loadConfig: (path: string | undefined) => ResolvedConfig,
  out: (s: string) => void = (s) => process.stdout.write(s),
  err: (s: string) => void = (s) => process.stderr.write(s),
): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (e) {
    err(`seraph admin: ${(e as Error).message}\n\n${ADMIN_HELP}`);
    return 2;
  }
  const { values: o, positionals } = parsed;
  const [group, action, ...args] = positionals;
  if (o.help || group === undefined || group === "help") {
    out(group && USAGE[group] ? `${USAGE[group]}\n` : ADMIN_HELP);
    return group === undefined && !o.help ? 2 : 0;
  }
  if (!USAGE[group]) {
    err(`seraph admin: unknown command "${group}"\n\n${ADMIN_HELP}`);
    return 2;
  }
  const cfg = loadConfig(o.config);
  try {
    return await withMigratedStore(cfg.database, async (store) => {
      const needsKeys = group === "bindings" && action === "add" && existsSync(cfg.signing_key_path);
      const keys = needsKeys
        ? await KeyService.load(readKeyFile(cfg.signing_key_path), store.repos.keys, Date.now())
        : undefined;
      const admin = await createAdmin(store, {
        serverName: cfg.server_name,
        publicBaseUrl: cfg.public_base_url,
        unsubscribeLinkDays: cfg.admin.unsubscribe_link_days,
        log: { info() {} },
        keys,
      });
      const actor = `cli:${userInfo().username}`;
      const s = admin.service;
      const show = (rows: readonly object[], doc: unknown = rows) =>
        out(o.json ? `${JSON.stringify(doc, null, 2)}\n` : table(rows));
      const page = { from: intOpt(o.from, "from"), limit: intOpt(o.limit, "limit") ?? 100 };
      const subject = { address: o.address, medium: o.medium, mxid: o.mxid };
      const done = (ok: boolean, what: string) => {
        out(
          o.json
            ? `${JSON.stringify({ ok })}\n`
            : `${ok ? what : "nothing to do: not found or already so"}\n`,
        );
        return ok ? 0 : 1;
      };

      switch (`${group} ${action ?? "list"}`) {
        case "token create": {
          const token = await admin.tokens.create(need(args[0], "NAME"), actor);
          out(o.json ? `${JSON.stringify({ name: args[0], token })}\n` : `${token}\n`);
          return 0;
        }
        case "token revoke":
          return done(await admin.tokens.revoke(need(args[0], "NAME"), actor), "revoked");
        case "token list":
          show(await admin.tokens.list());
          return 0;
        case "bindings list": {
          const res = await s.listBindings(subject, page);
          show(res.items, res);
          return 0;
        }
        case "bindings add": {
          const a = await s.createBinding(actor, {
            medium: o.medium,
            address: need(args[0], "ADDRESS"),
            mxid: need(args[1], "MXID"),
          });
          if (o.json) out(`${JSON.stringify(a, null, 2)}\n`);
          else out(`bound ${a.medium} ${a.address} to ${a.mxid}\n`);
          return 0;
        }
        case "bindings remove":
          return done(
            await s.deleteBinding(actor, {
              medium: o.medium,
              address: need(args[0], "ADDRESS"),
              mxid: o.mxid,
            }),
            "removed",
          );
        case "subjects export":
          out(`${JSON.stringify(await s.exportSubject(actor, subject), null, 2)}\n`);
          return 0;
        case "subjects erase": {
          const counts = await s.eraseSubject(actor, subject);
          show(
            Object.entries(counts).map(([t, n]) => ({ table: t, rows_deleted: n })),
            { deleted: counts },
          );
          return 0;
        }
        case "invites list": {
          const res = await s.listInvites(
            {
              address: o.address,
              sender: o.sender,
              roomId: o.room,
              olderThanDays: intOpt(o["older-than-days"], "older-than-days"),
            },
            page,
          );
          show(res.items, res);
          return 0;
        }
        case "invites revoke": {
          const id = intOpt(need(args[0], "ID"), "ID")!;
          const revoked = await s.revokeInvite(actor, id);
          out(o.json ? `${JSON.stringify({ revoked })}\n` : `revoked invite ${id}\n`);
          return 0;
        }
        case "onbind list": {
          const res = await s.listOnbindJobs({ failing: o.failing }, page);
          show(res.items, res);
          return 0;
        }
        case "onbind retry":
          await s.retryOnbindJob(actor, intOpt(need(args[0], "ID"), "ID")!);
          return done(true, "due now; a running server delivers it at its next poll");
        case "onbind drop":
          await s.dropOnbindJob(actor, intOpt(need(args[0], "ID"), "ID")!);
          return done(true, "dropped");
        case "blocklist list":
          show(await admin.policy.blocked(o.kind === undefined ? undefined : kind(o.kind)));
          return 0;
        case "blocklist add":
          return done(
            await admin.policy.block(kind(args[0]), need(args[1], "VALUE"), o.reason ?? null, actor),
            "added",
          );
        case "blocklist remove":
          return done(await admin.policy.unblock(kind(args[0]), need(args[1], "VALUE"), actor), "removed");
        case "suppress list":
          show(await admin.policy.suppressed(page.limit, page.from));
          return 0;
        case "suppress add": {
          const t = parseThreepid(need(args[0], "ADDRESS"), o.medium);
          return done(await admin.policy.suppress(t.medium, t.address, "operator", actor), "suppressed");
        }
        case "suppress remove": {
          const t = parseThreepid(need(args[0], "ADDRESS"), o.medium);
          return done(await admin.policy.unsuppress(t.address, actor), "removed");
        }
        case "suppress check": {
          const t = parseThreepid(need(args[0], "ADDRESS"), o.medium);
          const yes = await admin.policy.isSuppressed(t.address);
          out(
            o.json
              ? `${JSON.stringify({ suppressed: yes })}\n`
              : `${yes ? "suppressed" : "not suppressed"}\n`,
          );
          return yes ? 0 : 1;
        }
        case "audit list": {
          const res = await s.auditPage({
            ...page,
            action: o.action,
            actor: o.actor,
            about: subject,
          });
          show(
            res.items.map((r) => ({
              ...r,
              ts: new Date(r.ts).toISOString(),
              targetHmac: r.targetHmac?.slice(0, 12),
            })),
            res,
          );
          return 0;
        }
        default:
          throw new CliUsageError(`unknown action "${action}" for ${group}\n\n${USAGE[group]}`);
      }
    });
  } catch (e) {
    if (e instanceof CliUsageError) {
      err(`seraph admin: ${e.message}\n`);
      return 2;
    }
    if (e instanceof MatrixError) {
      err(`seraph admin: ${e.message} (${e.errcode})\n`);
      return e.status === 404 ? 1 : 2;
    }
    throw e;
  }
}

function kind(v: string | undefined): BlockKind {
  if (!BLOCK_KINDS.includes(v as BlockKind))
    throw new CliUsageError(`KIND must be ${BLOCK_KINDS.join(", ")}`);
  return v as BlockKind;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: "string", short: "c" },
      help: { type: "boolean", short: "h" },
      json: { type: "boolean" },
      address: { type: "string" },
      medium: { type: "string" },
      mxid: { type: "string" },
      sender: { type: "string" },
      room: { type: "string" },
      "older-than-days": { type: "string" },
      failing: { type: "boolean" },
      kind: { type: "string" },
      reason: { type: "string" },
      action: { type: "string" },
      actor: { type: "string" },
      from: { type: "string" },
      limit: { type: "string" },
    },
  });
}
