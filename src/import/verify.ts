import { readFileSync } from "node:fs";
import pino from "pino";
import { createSeraph } from "../app.js";
import type { ResolvedConfig } from "../config/load.js";
import { normaliseAddress } from "../threepid/normalise.js";

/** One HTTP answer. */
export interface Answer {
  status: number;
  raw: string;
}

/** Asks Seraph a question: in process (fastify inject) or over HTTP. */
export type Asker = (
  method: "GET" | "POST",
  path: string,
  opts?: { body?: unknown; token?: string },
) => Promise<Answer>;

/**
 * Differences that are sydent bugs Seraph does not have (documented in docs/migrating-from-sydent.md), or
 * that change nothing a client relies on. Any other difference fails the verification.
 */
export const FIXED = {
  leaked_invites:
    "sydent's signed association carried another address's pending invites; Seraph signs it without",
  casefold:
    "sydent's lower() is ASCII-only, so a non-ASCII address in another case was not found; Seraph folds it",
  echo_address:
    "sydent answers bulk_lookup / v2 'none' with the stored spelling; Seraph with the address as the client sent it",
  wording: "same status and errcode, other human-readable error text",
  versions: "Seraph lists every spec version sydent lists, and later ones",
  algorithms_order: "hash_details lists the same algorithms in another order",
} as const;
export type FixedKind = keyof typeof FIXED;

export interface VerifyResult {
  questions: number;
  identical: number;
  fixed: Partial<Record<FixedKind, number>>;
  differences: string[];
}

interface Recorded {
  status: number | string;
  raw?: string;
  parsed?: unknown;
}

type Json = Record<string, unknown>;

/** SQLite's lower(): ASCII letters only (what sydent matched addresses with). */
function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

function parse(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return undefined;
  }
}

/** Deep equality of JSON values, object key order ignored. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => sameJson(x, bb[i]));
  }
  const ak = Object.keys(a as Json);
  const bk = Object.keys(b as Json);
  return (
    ak.length === bk.length && ak.every((k) => k in (b as Json) && sameJson((a as Json)[k], (b as Json)[k]))
  );
}

function expectedParsed(r: Recorded): unknown {
  return r.parsed !== undefined ? r.parsed : r.raw !== undefined ? parse(r.raw) : undefined;
}

/** Answers every question recorded in a sydent fixture's `expected.json` and compares. */
export class RecordedVerifier {
  readonly result: VerifyResult = { questions: 0, identical: 0, fixed: {}, differences: [] };

  constructor(private readonly ask: Asker) {}

  private fixed(kind: FixedKind): void {
    this.result.fixed[kind] = (this.result.fixed[kind] ?? 0) + 1;
  }

  private differ(what: string, expected: unknown, actual: unknown): void {
    const show = (v: unknown) => {
      const s = typeof v === "string" ? v : JSON.stringify(v);
      return s.length > 300 ? `${s.slice(0, 300)}…` : s;
    };
    this.result.differences.push(`${what}\n  sydent: ${show(expected)}\n  seraph: ${show(actual)}`);
  }

  /**
   * Compares an answer. `raw` demands the same bytes (signed associations); otherwise the same JSON.
   * `classify` may name a fixed sydent bug that explains a difference.
   */
  private check(
    what: string,
    rec: Recorded | undefined,
    got: Answer,
    opts: { raw?: boolean; classify?: (exp: unknown, act: unknown) => FixedKind | undefined } = {},
  ): void {
    // A question that was not recorded is not asked about.
    if (!rec) return;
    this.result.questions++;
    const exp = expectedParsed(rec);
    const act = parse(got.raw);
    const sameStatus = Number(rec.status) === got.status;
    if (sameStatus && (opts.raw && rec.raw !== undefined ? rec.raw === got.raw : sameJson(exp, act))) {
      this.result.identical++;
      return;
    }
    const kind = opts.classify?.(exp, act);
    if (kind) {
      this.fixed(kind);
      return;
    }
    if (
      sameStatus &&
      typeof exp === "object" &&
      exp !== null &&
      typeof act === "object" &&
      act !== null &&
      "errcode" in exp &&
      (exp as Json).errcode === (act as Json).errcode
    ) {
      const { error: _e1, ...restE } = exp as Json;
      const { error: _e2, ...restA } = act as Json;
      if (sameJson(restE, restA)) {
        this.fixed("wording");
        return;
      }
    }
    this.differ(`${what} (status sydent ${rec.status}, seraph ${got.status})`, rec.raw ?? exp, got.raw);
  }

  async run(expected: Json): Promise<VerifyResult> {
    const a = expected.answers as Json;
    const sgInvites = new Set(
      ((expected.sgassoc_with_invites as Json[] | undefined) ?? []).map(
        (s) => `${s.medium}\u0000${s.address}`,
      ),
    );
    const accounts = (a.accounts as Json[]) ?? [];
    const token = accounts.find((x) => x.all_terms_accepted === true && x.logged_out !== true)?.token as
      | string
      | undefined;
    const v1 = "/_matrix/identity/api/v1";
    const v2 = "/_matrix/identity/v2";
    const q = (params: Record<string, string>) => new URLSearchParams(params).toString();

    // Versions, status, keys
    this.check("GET /versions", a.versions as Recorded, await this.ask("GET", "/_matrix/identity/versions"), {
      classify: (e, x) => {
        const ev = (e as { versions?: string[] })?.versions ?? [];
        const xv = (x as { versions?: string[] })?.versions ?? [];
        return ev.every((v) => xv.includes(v)) ? "versions" : undefined;
      },
    });
    this.check("GET /v2", a.v2_status as Recorded, await this.ask("GET", v2));
    this.check(
      "GET v1 pubkey/ed25519:0",
      a.v1_pubkey_ed25519_0 as Recorded,
      await this.ask("GET", `${v1}/pubkey/ed25519:0`),
    );
    this.check(
      "GET v2 pubkey/ed25519:0",
      a.v2_pubkey_ed25519_0 as Recorded,
      await this.ask("GET", `${v2}/pubkey/ed25519:0`),
    );
    const isvalid = (a.v1_pubkey_isvalid ?? {}) as Record<string, Recorded & { public_key: string }>;
    for (const [name, rec] of Object.entries(isvalid)) {
      this.check(
        `GET v1 pubkey/isvalid (${name})`,
        rec,
        await this.ask("GET", `${v1}/pubkey/isvalid?${q({ public_key: rec.public_key })}`),
      );
    }
    const longTerm = isvalid.long_term_key?.public_key ?? "";
    this.check(
      "GET v2 pubkey/isvalid (long-term key)",
      a.v2_pubkey_isvalid_long_term_key as Recorded,
      await this.ask("GET", `${v2}/pubkey/isvalid?${q({ public_key: longTerm })}`),
    );
    for (const rec of (a.v1_ephemeral_isvalid ?? []) as Array<
      Recorded & { public_key: string; address: string }
    >) {
      this.check(
        `GET v1 pubkey/ephemeral/isvalid (invite to ${rec.address})`,
        rec,
        await this.ask("GET", `${v1}/pubkey/ephemeral/isvalid?${q({ public_key: rec.public_key })}`),
      );
    }
    this.check(
      "GET v1 pubkey/ephemeral/isvalid (unknown key)",
      a.v1_ephemeral_isvalid_unknown_key as Recorded,
      await this.ask(
        "GET",
        `${v1}/pubkey/ephemeral/isvalid?${q({ public_key: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" })}`,
      ),
    );
    this.check("GET v2 terms", a.v2_terms as Recorded, await this.ask("GET", `${v2}/terms`));

    // v1 lookups
    type LookupRec = Recorded & { medium: string; address: string };
    for (const rec of (a.v1_lookup ?? []) as LookupRec[]) {
      this.check(
        `GET v1 lookup ${rec.medium} ${rec.address}`,
        rec,
        await this.ask("GET", `${v1}/lookup?${q({ medium: rec.medium, address: rec.address })}`),
        {
          raw: true,
          classify: (e, x) => {
            if (!sgInvites.has(`${rec.medium}\u0000${rec.address}`)) return undefined;
            const { invites: _i, signatures: _s, ...rest } = e as Json;
            const { signatures: _s2, ...restX } = (x ?? {}) as Json;
            return sameJson(rest, restX) ? "leaked_invites" : undefined;
          },
        },
      );
    }
    for (const rec of (a.v1_lookup_misses ?? []) as LookupRec[]) {
      this.check(
        `GET v1 lookup ${rec.medium} ${rec.address} (miss)`,
        rec,
        await this.ask("GET", `${v1}/lookup?${q({ medium: rec.medium, address: rec.address })}`),
      );
    }
    type ProbeRec = Recorded & { query_address: string; stored_address: string; case: string; mxid: string };
    for (const rec of (a.v1_lookup_case_probes ?? []) as ProbeRec[]) {
      this.check(
        `GET v1 lookup email ${rec.query_address} (case probe)`,
        rec,
        await this.ask("GET", `${v1}/lookup?${q({ medium: "email", address: rec.query_address })}`),
        {
          raw: true,
          classify: (_e, x) =>
            this.isCasefoldFix(rec, (x as Json | undefined)?.mxid) ? "casefold" : undefined,
        },
      );
    }

    // bulk lookup (compared as sets: sydent answers in SQL order)
    for (const name of ["v1_bulk_lookup", "v1_bulk_lookup_case_probes"]) {
      const rec = a[name] as (Recorded & { request: { threepids: Array<[string, string]> } }) | undefined;
      if (!rec) continue;
      const got = await this.ask("POST", `${v1}/bulk_lookup`, { body: rec.request });
      this.checkBulk(name, rec, got);
    }

    // v2 lookups
    if (!token) {
      this.differ(
        "v2 lookups",
        "an account that accepted every policy",
        "none recorded: cannot authenticate",
      );
    } else {
      this.check(
        "GET v2 hash_details",
        a.v2_hash_details as Recorded,
        await this.ask("GET", `${v2}/hash_details`, { token }),
        {
          classify: (e, x) => this.algorithmsOrder(e, x),
        },
      );
      for (const name of ["v2_lookup_sha256", "v2_lookup_none"]) {
        const rec = a[name] as (Recorded & { request: Json }) | undefined;
        if (!rec) continue;
        this.check(
          `POST v2 lookup (${name})`,
          rec,
          await this.ask("POST", `${v2}/lookup`, { body: rec.request, token }),
        );
      }
      const probes = a.v2_lookup_case_probes as
        | { queries: ProbeRec[]; sha256: Recorded & { request: Json }; none: Recorded & { request: Json } }
        | undefined;
      if (probes) {
        this.check(
          "POST v2 lookup sha256 (case probes)",
          probes.sha256,
          await this.ask("POST", `${v2}/lookup`, { body: probes.sha256.request, token }),
        );
        const got = await this.ask("POST", `${v2}/lookup`, { body: probes.none.request, token });
        this.checkV2NoneProbes(probes.queries, probes.none, got);
      }
      const wrong = a.v2_lookup_wrong_pepper as Recorded;
      this.check(
        "POST v2 lookup with a wrong pepper",
        wrong,
        await this.ask("POST", `${v2}/lookup`, {
          body: { addresses: [], algorithm: "sha256", pepper: "wrong pepper" },
          token,
        }),
      );
    }

    // accounts and terms
    type AccountRec = Json & {
      user_id: string;
      token: string;
      get_account: Recorded;
      v2_lookup?: Recorded & { request: Json };
      v2_hash_details?: Recorded;
    };
    for (const acct of [...accounts, ...((a.logged_out_accounts as Json[]) ?? [])] as AccountRec[]) {
      this.check(
        `GET v2 account (${acct.user_id})`,
        acct.get_account,
        await this.ask("GET", `${v2}/account`, { token: acct.token }),
      );
      if (acct.v2_lookup) {
        this.check(
          `POST v2 lookup as ${acct.user_id}`,
          acct.v2_lookup,
          await this.ask("POST", `${v2}/lookup`, { body: acct.v2_lookup.request, token: acct.token }),
        );
      }
      if (acct.v2_hash_details) {
        this.check(
          `GET v2 hash_details as ${acct.user_id}`,
          acct.v2_hash_details,
          await this.ask("GET", `${v2}/hash_details`, { token: acct.token }),
          { classify: (e, x) => this.algorithmsOrder(e, x) },
        );
      }
    }
    const noToken = (a.no_token ?? {}) as { get_account?: Recorded; v2_lookup?: Recorded };
    this.check("GET v2 account without a token", noToken.get_account, await this.ask("GET", `${v2}/account`));
    this.check(
      "POST v2 lookup without a token",
      noToken.v2_lookup,
      await this.ask("POST", `${v2}/lookup`, { body: { addresses: [], algorithm: "sha256", pepper: "x" } }),
    );
    return this.result;
  }

  private algorithmsOrder(e: unknown, x: unknown): FixedKind | undefined {
    const ea = (e as { algorithms?: string[] })?.algorithms;
    const xa = (x as { algorithms?: string[] })?.algorithms;
    if (!ea || !xa) return undefined;
    const { algorithms: _a, ...restE } = e as Json;
    const { algorithms: _b, ...restX } = x as Json;
    return sameJson([...ea].sort(), [...xa].sort()) && sameJson(restE, restX)
      ? "algorithms_order"
      : undefined;
  }

  /** A probe sydent missed only because lower() is ASCII-only: Seraph finds the right user. */
  private isCasefoldFix(
    rec: { query_address: string; stored_address: string; mxid: string },
    mxid: unknown,
  ): boolean {
    return (
      asciiLower(rec.query_address) !== rec.stored_address &&
      normaliseAddress("email", rec.query_address) === rec.stored_address &&
      mxid === rec.mxid
    );
  }

  private checkBulk(
    name: string,
    rec: Recorded & { request: { threepids: Array<[string, string]> } },
    got: Answer,
  ): void {
    this.result.questions++;
    const exp = ((expectedParsed(rec) as { threepids?: string[][] })?.threepids ?? []).map((t) =>
      t.join("\u0000"),
    );
    const act = ((parse(got.raw) as { threepids?: string[][] })?.threepids ?? []).map((t) =>
      t.join("\u0000"),
    );
    const e = new Set(exp);
    const x = new Set(act);
    if (Number(rec.status) === got.status && e.size === x.size && [...e].every((t) => x.has(t))) {
      this.result.identical++;
      return;
    }
    // Explain each difference: Seraph echoes the address as asked, and finds non-ASCII addresses in any case.
    const asked = rec.request.threepids;
    const expected = new Map<string, string>(); // stored address -> mxid
    for (const t of exp) {
      const [m, addr, mxid] = t.split("\u0000") as [string, string, string];
      expected.set(`${m}\u0000${addr}`, mxid);
    }
    let echo = 0;
    let casefold = 0;
    const unexplained: string[] = [];
    for (const t of act) {
      if (e.has(t)) continue;
      const [m, addr, mxid] = t.split("\u0000") as [string, string, string];
      const stored = normaliseAddress(m, addr);
      const want = expected.get(`${m}\u0000${stored}`);
      if (want === mxid) echo++;
      else if (
        want === undefined &&
        asked.some(([am, aa]) => am === m && aa === addr) &&
        asciiLower(addr) !== stored
      )
        casefold++;
      else unexplained.push(t.replaceAll("\u0000", " "));
    }
    const seen = new Set(
      act.map((t) => {
        const [m, addr] = t.split("\u0000") as [string, string];
        return `${m}\u0000${normaliseAddress(m, addr)}`;
      }),
    );
    for (const k of expected.keys())
      if (!seen.has(k)) unexplained.push(`missing ${k.replaceAll("\u0000", " ")}`);
    if (unexplained.length || Number(rec.status) !== got.status) {
      this.differ(
        `POST v1 bulk_lookup (${name})`,
        unexplained.length ? "(see the seraph line)" : rec.status,
        unexplained.join("; ") || got.status,
      );
      return;
    }
    if (echo) this.fixed("echo_address");
    if (casefold) this.fixed("casefold");
  }

  private checkV2NoneProbes(
    queries: Array<{ query_address: string; stored_address: string; mxid: string }>,
    rec: Recorded,
    got: Answer,
  ): void {
    this.result.questions++;
    const exp = ((expectedParsed(rec) as { mappings?: Record<string, string> })?.mappings ?? {}) as Record<
      string,
      string
    >;
    const act = ((parse(got.raw) as { mappings?: Record<string, string> })?.mappings ?? {}) as Record<
      string,
      string
    >;
    if (Number(rec.status) === got.status && sameJson(exp, act)) {
      this.result.identical++;
      return;
    }
    const unexplained: string[] = [];
    let echo = 0;
    let casefold = 0;
    for (const qy of queries) {
      const key = `${qy.query_address} email`;
      const storedKey = `${qy.stored_address} email`;
      const sydent = exp[storedKey] ?? exp[key];
      const seraph = act[key];
      if (sydent === seraph && exp[key] === seraph) continue;
      if (sydent !== undefined && seraph === sydent) echo++;
      else if (sydent === undefined && seraph === qy.mxid && this.isCasefoldFix(qy, seraph)) casefold++;
      else unexplained.push(`${key}: sydent ${sydent ?? "-"}, seraph ${seraph ?? "-"}`);
    }
    if (unexplained.length || Number(rec.status) !== got.status) {
      this.differ(
        "POST v2 lookup none (case probes)",
        "(see the seraph line)",
        unexplained.join("; ") || got.status,
      );
      return;
    }
    if (echo) this.fixed("echo_address");
    if (casefold) this.fixed("casefold");
  }
}

/** Reads a fixture's recorded answers (`expected.json`). */
export function readRecorded(path: string): Json {
  return JSON.parse(readFileSync(path, "utf8")) as Json;
}

/**
 * Verifies in process: builds Seraph from `config` (nothing listens, no background work) and answers the
 * recorded questions through fastify inject.
 */
export async function verifyRecorded(config: ResolvedConfig, expected: Json): Promise<VerifyResult> {
  const seraph = await createSeraph(config, { logger: pino({ level: "silent" }) });
  try {
    const ask: Asker = async (method, path, opts = {}) => {
      const res = await seraph.app.inject({
        method,
        url: path,
        headers: {
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
          ...(opts.body !== undefined ? { "content-type": "application/json" } : {}),
        },
        ...(opts.body !== undefined ? { payload: JSON.stringify(opts.body) } : {}),
      });
      return { status: res.statusCode, raw: res.body };
    };
    return await new RecordedVerifier(ask).run(expected);
  } finally {
    await seraph.close();
  }
}

export function formatVerify(r: VerifyResult): string {
  const lines = [
    `verify: ${r.questions} recorded questions; ${r.identical} answered identically`,
    ...Object.entries(r.fixed).map(
      ([k, n]) => `  ${String(n).padStart(5)} differ by a documented fix: ${FIXED[k as FixedKind]}`,
    ),
  ];
  if (r.differences.length === 0) lines.push("verify: no other difference");
  else {
    lines.push(`verify: ${r.differences.length} DIFFERENCE(S):`);
    for (const d of r.differences) lines.push(d);
  }
  return `${lines.join("\n")}\n`;
}
