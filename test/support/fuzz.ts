import fc from "fast-check";
import { Agent, request } from "undici";

/** One generated request. */
export interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string | undefined;
}

export interface FuzzOutcome {
  status: number;
  /** Why the answer breaks the rules (a 5xx, not a Matrix error body), or undefined when it is fine. */
  problem: string | undefined;
}

/** Every route of a running app, from fastify's `printRoutes({ commonPrefix: false })` tree. */
export function routesFromTree(tree: string): Array<{ path: string; methods: string[] }> {
  const out: Array<{ path: string; methods: string[] }> = [];
  const stack: string[] = [];
  for (const line of tree.split("\n")) {
    const m = /^([│ ├└─]*)(\/\S*) \(([^)]+)\)$/.exec(line.trimEnd());
    if (!m) continue;
    const depth = Math.floor((m[1] ?? "").length / 4);
    stack.length = depth;
    stack.push(m[2] ?? "");
    out.push({ path: stack.join(""), methods: (m[3] ?? "").split(", ") });
  }
  return out;
}

const PARAM_NAMES = [
  "sid",
  "client_secret",
  "token",
  "access_token",
  "medium",
  "address",
  "public_key",
  "brand",
  "next_link",
  "mxid",
];
const BODY_KEYS = [
  ...PARAM_NAMES,
  "email",
  "send_attempt",
  "country",
  "phone_number",
  "room_id",
  "sender",
  "addresses",
  "algorithm",
  "pepper",
  "threepids",
  "threepid",
  "user_accepts",
  "matrix_server_name",
  "token_type",
  "expires_in",
  "private_key",
  "sender_display_name",
  "room_name",
];
const CONTENT_TYPES = [
  "application/json",
  "application/json; charset=utf-8",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/octet-stream",
  "",
  "json",
  "application/json; charset=nonsense",
];

const oddString = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  fc.constantFrom("", " ", "%", "%zz", "\u0000", "\ud800", "a\u200bb", "../..", "@", "+", "=?UTF-8?B?QQ==?="),
  fc.integer().map(String),
  fc.nat({ max: 70_000 }).map((n) => "x".repeat(n)),
);

const jsonish: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  oddString,
  fc.array(fc.oneof(oddString, fc.integer()), { maxLength: 20 }),
  fc.array(fc.array(oddString, { maxLength: 3 }), { maxLength: 5 }),
  fc.constantFrom(null, true, -1, 1e308, 1.5, {}, []),
);

const bodyObject = fc.dictionary(fc.constantFrom(...BODY_KEYS), jsonish, { maxKeys: 8 });

const rawBody = fc.oneof(
  { weight: 5, arbitrary: bodyObject.map((o) => JSON.stringify(o)) },
  { weight: 1, arbitrary: fc.nat({ max: 20_000 }).map((n) => `${"[".repeat(n)}${"]".repeat(n)}`) },
  { weight: 1, arbitrary: fc.nat({ max: 20_000 }).map((n) => `${'{"a":'.repeat(n)}1${"}".repeat(n)}`) },
  { weight: 1, arbitrary: bodyObject.map((o) => JSON.stringify(o).slice(0, -1)) },
  {
    // A body the handlers accept, with a deeply nested extra value (store-invite used to 500 on it).
    weight: 2,
    arbitrary: fc.tuple(bodyObject, fc.nat({ max: 12_000 })).map(([o, n]) => {
      const base = JSON.stringify({
        medium: "email",
        address: "a@example.org",
        room_id: "!r:h",
        sender: "@s:h",
        ...o,
      });
      return `${base.slice(0, -1)},"deep":${"[".repeat(n)}${"]".repeat(n)}}`;
    }),
  },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 200 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom("", "null", "[]", '"s"', "1", "{", "}", "{}}", "a=b&c=d", "\ufeff{}"),
  },
  {
    weight: 1,
    arbitrary: fc.nat({ max: 700_000 }).map((n) => JSON.stringify({ address: "a".repeat(n) })),
  },
  {
    weight: 1,
    arbitrary: fc
      .dictionary(fc.constantFrom(...BODY_KEYS), fc.string())
      .map((o) => new URLSearchParams(o).toString()),
  },
);

const query = fc.oneof(
  fc.constant(""),
  fc.dictionary(fc.constantFrom(...PARAM_NAMES), oddString, { maxKeys: 5 }).map((o) =>
    Object.entries(o)
      .map(([k, v]) => `${k}=${encodeURIComponent(v.replace(/[\ud800-\udfff]/g, "x"))}`)
      .join("&"),
  ),
  fc.constantFrom(
    "%",
    "%zz",
    "a[b]=c",
    "&&&",
    "=",
    "sid=1&sid=2",
    "access_token=",
    "?",
    "token=%00",
    "a=%ff%fe",
  ),
);

/** Requests over `routes`, with the methods a route has and others, and paths a little beside them. */
export function requestArbitrary(
  routes: ReadonlyArray<{ path: string; methods: string[] }>,
  token: string,
): fc.Arbitrary<FuzzRequest> {
  const route = fc.constantFrom(...routes);
  const pathOf = fc.tuple(route, fc.nat({ max: 9 }), oddString).map(([r, mut, s]) => {
    const base = r.path.replace(
      /:[A-Za-z]+/g,
      () => encodeURIComponent(s.replace(/[\ud800-\udfff]/g, "x")) || "x",
    );
    if (mut === 0) return `${base}/`;
    if (mut === 1) return `${base}/extra`;
    if (mut === 2) return `${base}%2F..%2F`;
    return base;
  });
  return fc
    .record({
      route,
      path: pathOf,
      method: fc.oneof(
        { weight: 4, arbitrary: fc.constant("") },
        { weight: 1, arbitrary: fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD") },
      ),
      query,
      contentType: fc.constantFrom(...CONTENT_TYPES),
      auth: fc.constantFrom("none", "valid", "bad", "query"),
      body: fc.option(rawBody, { freq: 4 }),
    })
    .map(({ route: r, path, method, query: q, contentType, auth, body }) => {
      const m = method || (r.methods.includes("POST") ? "POST" : "GET");
      const headers: Record<string, string> = {};
      if (contentType) headers["content-type"] = contentType;
      if (auth === "valid") headers.authorization = `Bearer ${token}`;
      if (auth === "bad") headers.authorization = "Bearer nope nope";
      const qs = auth === "query" ? `access_token=${token}${q ? `&${q}` : ""}` : q;
      return {
        method: m,
        path: qs ? `${path}?${qs}` : path,
        headers,
        body: m === "GET" || m === "HEAD" ? undefined : (body ?? undefined),
      };
    });
}

/** Sends one request and judges the answer: no 5xx; a Matrix error body on every JSON error. */
export async function send(base: string, agent: Agent, req: FuzzRequest): Promise<FuzzOutcome | "client"> {
  let res: Awaited<ReturnType<typeof request>>;
  try {
    res = await request(`${base}${req.path}`, {
      method: req.method as "GET",
      headers: req.headers,
      body: req.body,
      dispatcher: agent,
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
    });
  } catch (e) {
    // The client refused to send it (an invalid URL or header), or the server closed the connection on
    // purpose (an unfinished body): not an answer to judge. A crash shows in the final liveness check.
    const code = (e as { code?: string }).code ?? "";
    if (/UND_ERR_(INVALID_ARG|SOCKET|CLOSED|REQ_CONTENT_LENGTH_MISMATCH)|ECONNRESET|EPIPE/.test(code))
      return "client";
    throw e;
  }
  const text = await res.body.text();
  const status = res.statusCode;
  if (status >= 500) return { status, problem: `status ${status}: ${text.slice(0, 200)}` };
  const type = String(res.headers["content-type"] ?? "");
  if (status >= 400 && req.method !== "HEAD" && type.startsWith("application/json")) {
    let parsed: { errcode?: unknown; error?: unknown };
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      return { status, problem: `status ${status} with a body that is not JSON: ${text.slice(0, 200)}` };
    }
    if (
      typeof parsed.errcode !== "string" ||
      !parsed.errcode.startsWith("M_") ||
      typeof parsed.error !== "string"
    ) {
      return { status, problem: `status ${status} without a Matrix error: ${text.slice(0, 200)}` };
    }
  } else if (status >= 400 && req.method !== "HEAD" && !type.startsWith("text/html")) {
    return { status, problem: `status ${status} with content-type ${type}` };
  }
  return { status, problem: undefined };
}

export function fuzzAgent(connections = 8): Agent {
  return new Agent({ connections, pipelining: 1 });
}
