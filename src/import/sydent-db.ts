import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import BetterSqlite3 from "better-sqlite3";
import { SydentInputError } from "./sydent-config.js";

/** The schema version sydent 2.x migrates its database to (`PRAGMA user_version`). */
export const SYDENT_SCHEMA_VERSION = 5;

/** Tables and the columns the importer reads. */
const REQUIRED: Record<string, readonly string[]> = {
  global_threepid_associations: [
    "id",
    "medium",
    "address",
    "mxid",
    "ts",
    "notBefore",
    "notAfter",
    "originServer",
    "originId",
    "sgAssoc",
  ],
  local_threepid_associations: ["id", "medium", "address", "mxid", "ts"],
  hashing_metadata: ["id", "lookup_pepper"],
  invite_tokens: ["id", "medium", "address", "room_id", "sender", "token", "received_ts", "sent_ts"],
  ephemeral_public_keys: ["id", "public_key", "persistence_ts"],
  accounts: ["user_id", "created_ts", "consent_version"],
  tokens: ["token", "user_id"],
  accepted_terms_urls: ["user_id", "url"],
  threepid_validation_sessions: ["id", "medium", "address", "clientSecret", "validated", "mtime"],
  threepid_token_auths: ["id", "validationSession", "token", "sendAttemptNumber"],
};

/** A row of `global_threepid_associations`, with the local tombstone (an unbind) of its address, if any. */
export interface SydentGlobalRow {
  id: number;
  medium: string;
  address: string;
  mxid: string;
  ts: number;
  notBefore: number;
  notAfter: number;
  originServer: string;
  originId: number;
  sgAssoc: string;
  /** The `ts` of the address's local row when that row is a tombstone (mxid null; 0 when it has no ts), else null. */
  tombstoneTs: number | null;
}

export interface SydentInviteRow {
  id: number;
  medium: string;
  address: string;
  room_id: string;
  sender: string;
  token: string;
  received_ts: number | null;
  sent_ts: number | null;
  /** The ephemeral key stored by the same store-invite (same id, same second), if it can be told. */
  public_key: string | null;
}

export interface SydentKeyRow {
  id: number;
  public_key: string;
  persistence_ts: number | null;
}

export interface SydentAccountRow {
  user_id: string;
  created_ts: number;
  consent_version: string | null;
}

export interface SydentTokenRow {
  token: string;
  user_id: string;
  created_ts: number | null;
}

export interface SydentTermsRow {
  user_id: string;
  url: string;
  created_ts: number | null;
}

export interface SydentSessionRow {
  id: number;
  medium: string;
  address: string;
  clientSecret: string;
  validated: number;
  mtime: number;
  token: string | null;
  sendAttemptNumber: number | null;
}

type GlobalTuple = [number, string, string, string, number, number, number, string, number, string];

/**
 * Orders (medium, address) keys as SQLite's BINARY collation does (UTF-8 bytes, i.e. code points), not as
 * JavaScript's `<` does (UTF-16 units, which puts U+E000–U+FFFF after the supplementary planes).
 */
export function compareKeys(m1: string, a1: string, m2: string, a2: string): number {
  return compareCodePoints(m1, m2) || compareCodePoints(a1, a2);
}

function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (D800–DFFF) encode code points above FFFF: they sort after E000–FFFF in UTF-8.
    if (x >= 0xd800) x += x < 0xe000 ? 0x2000 : -0x800;
    if (y >= 0xd800) y += y < 0xe000 ? 0x2000 : -0x800;
    return x - y;
  }
  return a.length - b.length;
}

/** Counts of what the sydent database holds (for progress totals and the report). */
export interface SydentCounts {
  globalAssociations: number;
  peerAssociations: number;
  invites: number;
  ephemeralKeys: number;
  accounts: number;
  tokens: number;
  acceptedTerms: number;
  sessions: number;
}

/** The sydent database, opened read-only after checks that it is one, complete and of a known version. */
export class SydentDb {
  private constructor(
    readonly path: string,
    private readonly db: BetterSqlite3.Database,
  ) {}

  /**
   * Opens `path` read-only. Refuses (SydentInputError) a file that is not an SQLite database, has no
   * sydent tables, another schema version, a hot journal or WAL (sydent still running, or a copy made
   * mid-write) or fails SQLite's quick check.
   */
  static open(path: string, opts: { quickCheck?: boolean } = {}): SydentDb {
    if (!existsSync(path)) throw new SydentInputError(`no sydent database at ${path}`);
    const st = statSync(path);
    if (!st.isFile()) throw new SydentInputError(`${path} is not a file`);
    const header = Buffer.alloc(16);
    const fd = openSync(path, "r");
    let n: number;
    try {
      n = readSync(fd, header, 0, 16, 0);
    } finally {
      closeSync(fd);
    }
    if (n < 16 || header.toString("latin1") !== "SQLite format 3\u0000") {
      throw new SydentInputError(`${path} is not an SQLite database, so not a sydent database`);
    }
    for (const suffix of ["-journal", "-wal"]) {
      const side = `${path}${suffix}`;
      if (existsSync(side) && statSync(side).size > 0) {
        throw new SydentInputError(
          `${side} exists: the database is half-written (sydent is still running, or the copy was taken while it wrote). Stop sydent cleanly and copy sydent.db again`,
        );
      }
    }
    let db: BetterSqlite3.Database;
    try {
      db = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
    } catch (e) {
      throw new SydentInputError(`cannot open ${path}: ${(e as Error).message}`);
    }
    try {
      const version = db.pragma("user_version", { simple: true }) as number;
      const tables = new Set(
        (
          db.prepare("select name from sqlite_master where type = 'table'").all() as Array<{ name: string }>
        ).map((r) => r.name),
      );
      if (!tables.has("global_threepid_associations") || !tables.has("local_threepid_associations")) {
        throw new SydentInputError(`${path} is an SQLite database but not a sydent one (no threepid tables)`);
      }
      if (version !== SYDENT_SCHEMA_VERSION) {
        throw new SydentInputError(
          `${path}: sydent schema version ${version} (PRAGMA user_version); this importer reads version ${SYDENT_SCHEMA_VERSION} (sydent 2.x). Start the newer sydent once on it to migrate it, stop it, and import again`,
        );
      }
      for (const [table, columns] of Object.entries(REQUIRED)) {
        if (!tables.has(table)) throw new SydentInputError(`${path}: sydent table ${table} is missing`);
        const have = new Set(
          (db.pragma(`table_info(${table})`) as Array<{ name: string }>).map((c) => c.name.toLowerCase()),
        );
        const missing = columns.filter((c) => !have.has(c.toLowerCase()));
        if (missing.length) {
          throw new SydentInputError(`${path}: table ${table} lacks column(s) ${missing.join(", ")}`);
        }
      }
      if (opts.quickCheck !== false) {
        const check = db.pragma("quick_check", { simple: true });
        if (check !== "ok") {
          throw new SydentInputError(`${path} is damaged or half-written (quick_check: ${String(check)})`);
        }
      }
    } catch (e) {
      db.close();
      if (e instanceof SydentInputError) throw e;
      throw new SydentInputError(`${path} cannot be read: ${(e as Error).message}`);
    }
    return new SydentDb(path, db);
  }

  close(): void {
    this.db.close();
  }

  /** The lookup pepper sydent hands out in `hash_details`. */
  pepper(): string {
    const row = this.db.prepare("select lookup_pepper from hashing_metadata order by id limit 1").get() as
      | { lookup_pepper: string | null }
      | undefined;
    if (!row?.lookup_pepper) {
      throw new SydentInputError(
        `${this.path}: hashing_metadata holds no lookup_pepper (was sydent ever started?)`,
      );
    }
    return row.lookup_pepper;
  }

  counts(ownServer: string, sessionsSince: number): SydentCounts {
    const n = (q: string, ...args: unknown[]) => (this.db.prepare(q).get(...args) as { n: number }).n;
    return {
      globalAssociations: n("select count(*) as n from global_threepid_associations"),
      peerAssociations: n(
        "select count(*) as n from global_threepid_associations where originServer != ?",
        ownServer,
      ),
      invites: n("select count(*) as n from invite_tokens"),
      ephemeralKeys: n("select count(*) as n from ephemeral_public_keys"),
      accounts: n("select count(*) as n from accounts"),
      tokens: n("select count(*) as n from tokens"),
      acceptedTerms: n("select count(*) as n from accepted_terms_urls"),
      sessions: n("select count(*) as n from threepid_validation_sessions where mtime >= ?", sessionsSince),
    };
  }

  /**
   * Global associations after `(medium, address)`, grouped by address and newest first within one (the order
   * sydent's lookups pick the answer in), each with the local tombstone of its address. Streams.
   */
  *globalAssociations(after: readonly [string, string]): Generator<SydentGlobalRow> {
    for (const group of this.globalGroups(after)) yield* group;
  }

  /**
   * The global associations after `(medium, address)` as one group per address, in the order of sydent's
   * `(medium, address)` index, each group newest first (`ts`, then `id`, descending). Streams: two cursors in
   * index order (the rows, and the local tombstones) merged here, which costs about a third less CPU than a
   * join and an ORDER BY on `ts` (bench/README.md).
   */
  *globalGroups(after: readonly [string, string]): Generator<SydentGlobalRow[]> {
    const rows = this.db
      .prepare(
        `select id, medium, address, mxid, ts, notBefore, notAfter, originServer, originId, sgAssoc
         from global_threepid_associations where (medium, address) > (?, ?) order by medium, address`,
      )
      .raw(true)
      .iterate(after[0], after[1]) as IterableIterator<GlobalTuple>;
    const tombstones = this.db
      .prepare(
        `select medium, address, coalesce(ts, 0) from local_threepid_associations
         where mxid is null and (medium, address) > (?, ?) order by medium, address`,
      )
      .raw(true)
      .iterate(after[0], after[1]) as IterableIterator<[string, string, number]>;
    let tomb = tombstones.next();
    let group: SydentGlobalRow[] = [];
    const finish = (): SydentGlobalRow[] => {
      const g = group;
      group = [];
      if (g.length > 1) g.sort((x, y) => y.ts - x.ts || y.id - x.id);
      const { medium, address } = g[0]!;
      while (!tomb.done && compareKeys(tomb.value[0], tomb.value[1], medium, address) < 0)
        tomb = tombstones.next();
      if (!tomb.done && tomb.value[0] === medium && tomb.value[1] === address) {
        for (const r of g) r.tombstoneTs = tomb.value[2];
      }
      return g;
    };
    try {
      for (const t of rows) {
        const last = group[group.length - 1];
        if (last && (last.medium !== t[1] || last.address !== t[2])) yield finish();
        group.push({
          id: t[0],
          medium: t[1],
          address: t[2],
          mxid: t[3],
          ts: t[4],
          notBefore: t[5],
          notAfter: t[6],
          originServer: t[7],
          originId: t[8],
          sgAssoc: t[9],
          tombstoneTs: null,
        });
      }
      if (group.length) yield finish();
    } finally {
      rows.return?.();
      tombstones.return?.();
    }
  }

  invites(afterId: number): IterableIterator<SydentInviteRow> {
    return this.db
      .prepare(
        `select i.id, i.medium, i.address, i.room_id, i.sender, i.token, i.received_ts, i.sent_ts,
                k.public_key as public_key
         from invite_tokens i
         left join ephemeral_public_keys k on k.id = i.id and abs(k.persistence_ts - i.received_ts) <= 2
         where i.id > ? order by i.id`,
      )
      .iterate(afterId) as IterableIterator<SydentInviteRow>;
  }

  ephemeralKeys(afterId: number): IterableIterator<SydentKeyRow> {
    return this.db
      .prepare("select id, public_key, persistence_ts from ephemeral_public_keys where id > ? order by id")
      .iterate(afterId) as IterableIterator<SydentKeyRow>;
  }

  accounts(afterUser: string): IterableIterator<SydentAccountRow> {
    return this.db
      .prepare("select user_id, created_ts, consent_version from accounts where user_id > ? order by user_id")
      .iterate(afterUser) as IterableIterator<SydentAccountRow>;
  }

  tokens(afterToken: string): IterableIterator<SydentTokenRow> {
    return this.db
      .prepare(
        `select t.token, t.user_id, a.created_ts from tokens t left join accounts a on a.user_id = t.user_id
         where t.token > ? order by t.token`,
      )
      .iterate(afterToken) as IterableIterator<SydentTokenRow>;
  }

  acceptedTerms(after: readonly [string, string]): IterableIterator<SydentTermsRow> {
    return this.db
      .prepare(
        `select u.user_id, u.url, a.created_ts from accepted_terms_urls u
         left join accounts a on a.user_id = u.user_id
         where (u.user_id, u.url) > (?, ?) order by u.user_id, u.url`,
      )
      .iterate(after[0], after[1]) as IterableIterator<SydentTermsRow>;
  }

  /** Validation sessions modified at or after `since` (ms), with their newest token. */
  sessions(afterId: number, since: number): IterableIterator<SydentSessionRow> {
    return this.db
      .prepare(
        `select s.id, s.medium, s.address, s.clientSecret, s.validated, s.mtime,
                (select t.token from threepid_token_auths t where t.validationSession = s.id order by t.id desc limit 1) as token,
                (select t.sendAttemptNumber from threepid_token_auths t where t.validationSession = s.id order by t.id desc limit 1) as sendAttemptNumber
         from threepid_validation_sessions s where s.id > ? and s.mtime >= ? order by s.id`,
      )
      .iterate(afterId, since) as IterableIterator<SydentSessionRow>;
  }
}
