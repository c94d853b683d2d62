import { createServer, type Server, type Socket } from "node:net";
import { Kysely, sql } from "kysely";
import type pg from "pg";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createTestDatabase, dropTestDatabase } from "../../test/support/postgres.js";
import { NO_LOG } from "../core/logger.js";
import { KyselyHashRepository } from "./association-hashes.js";
import { KyselyAssociationRepository } from "./associations.js";
import { migrateToLatest, openStore, type Store, storeOver } from "./database.js";
import { createPostgresDialect, pingPostgres } from "./postgres.js";
import type { Database } from "./schema.js";

const quiet = NO_LOG;

/** Opens a Kysely store over a fresh pool on `url`. */
function openPg(url: string, statementTimeoutMs = 10_000, logger = quiet) {
  const { dialect, pool } = createPostgresDialect({ url, poolSize: 4, statementTimeoutMs }, logger);
  const db = new Kysely<Database>({ dialect });
  const store: Store = storeOver(db, "postgres");
  return { store, db, pool };
}

let url: string;
let store: Store;
let db: Kysely<Database>;
let pool: pg.Pool;

beforeAll(async () => {
  url = await createTestDatabase();
  ({ store, db, pool } = openPg(url));
  await pingPostgres(pool);
  await migrateToLatest(store);
});

afterAll(async () => {
  await store?.close();
  if (url) await dropTestDatabase(url);
});

describe("PostgreSQL migrations", () => {
  it("is idempotent", async () => {
    expect(await migrateToLatest(store)).toEqual([]);
  });

  it("creates the same tables, columns, types and nullability as on SQLite", async () => {
    const sqlite = await openStore({ sqlite: { path: ":memory:" } });
    try {
      await migrateToLatest(sqlite);
      const pgTables = await db.introspection.getTables();
      const sqliteTables = await sqlite.db.introspection.getTables();
      const names = (ts: typeof pgTables) => ts.map((t) => t.name).sort();
      expect(names(pgTables)).toEqual(names(sqliteTables));
      expect(names(pgTables)).toEqual(
        expect.arrayContaining(["associations", "association_hashes", "invites"]),
      );

      // SQLite reports non-INTEGER primary-key columns as nullable (a legacy quirk); PostgreSQL does not.
      const pk = await sql<{ table_name: string; column_name: string }>`
        select tc.table_name, kcu.column_name
        from information_schema.table_constraints tc
        join information_schema.key_column_usage kcu
          on kcu.constraint_schema = tc.constraint_schema and kcu.constraint_name = tc.constraint_name
        where tc.constraint_type = 'PRIMARY KEY' and tc.table_schema = 'public'`.execute(db);
      const isPk = new Set(pk.rows.map((r) => `${r.table_name}.${r.column_name}`));
      const pgType: Record<string, string> = { bigint: "int8", integer: "int4", text: "text" };

      for (const lite of sqliteTables) {
        const onPg = pgTables.find((t) => t.name === lite.name);
        const expected = lite.columns.map((c) => {
          const key = `${lite.name}.${c.name}`;
          const autoId = c.dataType.toLowerCase() === "integer" && c.isAutoIncrementing;
          return `${key} ${autoId ? "int8" : (pgType[c.dataType.toLowerCase()] ?? c.dataType.replace(/\(.*\)$/, ""))}${c.isNullable && !isPk.has(key) ? " null" : ""}`;
        });
        const actual = onPg?.columns.map(
          (c) => `${lite.name}.${c.name} ${c.dataType}${c.isNullable ? " null" : ""}`,
        );
        expect(actual?.sort()).toEqual(expected.sort());
      }
    } finally {
      await sqlite.close();
    }
  });

  it("creates the same named indexes as on SQLite", async () => {
    const sqlite = await openStore({ sqlite: { path: ":memory:" } });
    try {
      await migrateToLatest(sqlite);
      const lite = await sql<{ name: string }>`
        select name from sqlite_master where type = 'index' and sql is not null`.execute(sqlite.db);
      const onPg = await sql<{ indexname: string }>`
        select indexname from pg_indexes where schemaname = 'public'`.execute(db);
      expect(lite.rows.length).toBeGreaterThan(3);
      expect(onPg.rows.map((r) => r.indexname)).toEqual(expect.arrayContaining(lite.rows.map((r) => r.name)));
    } finally {
      await sqlite.close();
    }
  });
});

describe("PostgreSQL dialect", () => {
  it("returns bigint columns and count(*) as numbers", async () => {
    const big = Number.MAX_SAFE_INTEGER;
    const inserted = await db
      .insertInto("associations")
      .values({
        medium: "email",
        address: "big@example.org",
        mxid: "@big:example.org",
        ts: 1_700_000_000_123,
        not_before: 0,
        not_after: big,
      })
      .returning("id")
      .executeTakeFirstOrThrow();
    expect(typeof inserted.id).toBe("number");

    const row = await db
      .selectFrom("associations")
      .selectAll()
      .where("address", "=", "big@example.org")
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ id: inserted.id, ts: 1_700_000_000_123, not_before: 0, not_after: big });

    const { n } = await db
      .selectFrom("associations")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .executeTakeFirstOrThrow();
    expect(n).toBeTypeOf("number");
  });

  it("rejects a bigint beyond 2^53 instead of rounding it, and the pool keeps working", async () => {
    await expect(sql`select 9007199254740993::bigint as v`.execute(db)).rejects.toThrow(/safe integer/);
    const ok = await sql<{ v: number }>`select 42::bigint as v`.execute(db);
    expect(ok.rows[0]?.v).toBe(42);
  });

  it("does not change pg's process-wide bigint parser", async () => {
    const { default: pgModule } = await import("pg");
    expect(pgModule.types.getTypeParser(20, "text")("5")).toBe("5");
  });

  it("answers the repository's lookup queries through indexes", async () => {
    const n = 5000;
    const [pepper] = await db
      .insertInto("lookup_peppers")
      .values({ pepper: "p1", state: "current", created_ts: 1, activated_ts: 1, retired_ts: null })
      .returning("id")
      .execute();
    const pepperId = pepper!.id;
    for (let i = 0; i < n; i += 1000) {
      const assocs = Array.from({ length: 1000 }, (_, j) => ({
        medium: "email",
        address: `user${i + j}@example.org`,
        mxid: `@user${i + j}:example.org`,
        ts: 1,
        not_before: 0,
        not_after: 2,
      }));
      const ids = await db
        .insertInto("associations")
        .values(assocs)
        .returning(["id", "address", "mxid"])
        .execute();
      await db
        .insertInto("association_hashes")
        .values(
          ids.map((r) => ({
            pepper_id: pepperId,
            hash: `hash-${r.address}`,
            association_id: r.id,
            mxid: r.mxid,
          })),
        )
        .execute();
    }
    await sql`analyze`.execute(db);

    // Run the real repository methods, capturing the SQL they send, then EXPLAIN exactly that.
    const seen: { sql: string; parameters: readonly unknown[] }[] = [];
    const { dialect, pool: logged } = createPostgresDialect(
      { url, poolSize: 1, statementTimeoutMs: 10_000 },
      quiet,
    );
    const spy = new Kysely<Database>({
      dialect,
      log: (e) => {
        if (e.level === "query") seen.push({ sql: e.query.sql, parameters: e.query.parameters });
      },
    });
    try {
      const repo = new KyselyAssociationRepository(spy, "postgres");
      const hits = await new KyselyHashRepository(spy, "postgres").lookup(pepperId, [
        "hash-user17@example.org",
        "hash-user4242@example.org",
        "nope",
      ]);
      expect(hits.map((h) => h.mxid).sort()).toEqual(["@user17:example.org", "@user4242:example.org"]);
      const pairs = await repo.lookupThreepids([["email", "user99@example.org"]]);
      expect(pairs.map((p) => p.mxid)).toEqual(["@user99:example.org"]);

      // v1 lookups of one turn: one statement for all of them.
      const found = await Promise.all(
        ["user1@example.org", "user4999@example.org", "nobody@example.org"].map((a) =>
          repo.findByThreepid("email", a),
        ),
      );
      expect(found.map((a) => a?.mxid)).toEqual(["@user1:example.org", "@user4999:example.org", undefined]);

      expect(seen).toHaveLength(3);
      expect(seen[2]!.sql).toContain("unnest($1::text[], $2::text[]) with ordinality");
      for (const q of seen) {
        const plan = await logged.query<{ "QUERY PLAN": string }>(`explain ${q.sql}`, [...q.parameters]);
        const text = plan.rows.map((r) => r["QUERY PLAN"]).join("\n");
        expect(text, q.sql).toMatch(/Index (Only )?Scan|Bitmap Index Scan/);
        expect(text, q.sql).not.toMatch(/Seq Scan on (associations|association_hashes)/);
      }
    } finally {
      await spy.destroy();
    }

    // The plain `= any($1)` form, with sequential scans ruled out: it must have an index to use.
    const plan = await db.connection().execute(async (conn) => {
      await sql`set enable_seqscan = off`.execute(conn);
      return sql<{ "QUERY PLAN": string }>`
        explain select a.mxid from association_hashes h join associations a on a.id = h.association_id
        where h.pepper_id = ${pepperId} and h.hash = any(${["hash-user1@example.org"]})`.execute(conn);
    });
    expect(plan.rows.map((r) => r["QUERY PLAN"]).join("\n")).toMatch(/association_hashes_pk/);
  });

  it("runs the hot reads of one turn as one statement, each read answered with its own rows", async () => {
    const sent: string[] = [];
    const { dialect } = createPostgresDialect({ url, poolSize: 4, statementTimeoutMs: 10_000 }, quiet);
    const spy = new Kysely<Database>({
      dialect,
      log: (e) => {
        if (e.level === "query") sent.push(e.query.sql);
      },
    });
    try {
      const accounts = storeOver(spy, "postgres").repos.accounts;
      for (const u of ["a", "b", "c"]) await accounts.createToken(`@${u}:batch.test`, `batch-${u}`, 1, null);
      await accounts.addAcceptedUrls("@a:batch.test", ["https://t.test/1", "https://t.test/2"], 1);
      await accounts.addAcceptedUrls("@c:batch.test", ["https://t.test/3"], 1);
      sent.length = 0;

      const tokens = ["batch-c", "none", "batch-a", "batch-b", "batch-a"];
      const users = await Promise.all(tokens.map((t) => accounts.userForToken(t, 2)));
      expect(users).toEqual(["@c:batch.test", undefined, "@a:batch.test", "@b:batch.test", "@a:batch.test"]);
      const urls = await Promise.all(["@a", "@b", "@c"].map((u) => accounts.acceptedUrls(`${u}:batch.test`)));
      expect(urls.map((u) => u.sort())).toEqual([
        ["https://t.test/1", "https://t.test/2"],
        [],
        ["https://t.test/3"],
      ]);
      expect(sent).toHaveLength(2);
      expect(sent.every((q) => q.includes("with ordinality"))).toBe(true);

      // Keys that PostgreSQL's array syntax would otherwise read differently reach it as they are.
      const awkward = [
        'q"uote@x.test',
        "back\\slash@x.test",
        "comma,{brace}@x.test",
        "NULL",
        " pad ",
        "é@x.test",
      ];
      const assocRepo = storeOver(spy, "postgres").repos.associations;
      for (const [n, address] of awkward.entries()) {
        await spy
          .insertInto("associations")
          .values({ medium: "email", address, mxid: `@awk${n}:x.test`, ts: 1, not_before: 0, not_after: 2 })
          .execute();
      }
      sent.length = 0;
      const awkwardFound = await Promise.all(awkward.map((a) => assocRepo.findByThreepid("email", a)));
      expect(awkwardFound.map((a) => a?.mxid)).toEqual(awkward.map((_, n) => `@awk${n}:x.test`));
      expect(sent).toHaveLength(1);

      // A read asked not to wait joins the batch all the same (it waits for a round trip anyway).
      sent.length = 0;
      const mixed = [accounts.userForToken("batch-a", 2, false), accounts.userForToken("batch-b", 2)];
      expect(await Promise.all(mixed)).toEqual(["@a:batch.test", "@b:batch.test"]);
      expect(sent).toEqual([expect.stringContaining("with ordinality")]);

      // A lone read, and reads inside a transaction, run the plain statement.
      sent.length = 0;
      expect(await accounts.userForToken("batch-b", 2)).toBe("@b:batch.test");
      expect(await accounts.userForToken("batch-a", 2, false)).toBe("@a:batch.test");
      await spy.transaction().execute(async (tx) => {
        const inTx = storeOver(tx, "postgres").repos.accounts;
        expect(await Promise.all([inTx.userForToken("batch-a", 2), inTx.userForToken("batch-c", 2)])).toEqual(
          ["@a:batch.test", "@c:batch.test"],
        );
      });
      const reads = sent.filter((q) => q.includes("access_tokens"));
      expect(reads).toHaveLength(4);
      expect(reads.some((q) => q.includes("unnest"))).toBe(false);
    } finally {
      await spy.destroy();
    }
  });

  it("rejects each read of a failed batch (none waits for ever), and serves the next turn", async () => {
    const { dialect } = createPostgresDialect({ url, poolSize: 2, statementTimeoutMs: 300 }, quiet);
    const spy = new Kysely<Database>({ dialect });
    const keys = storeOver(spy, "postgres").repos.keys;
    try {
      await keys.ephemeralKeyExists("warm-up");
      // A lock no read can pass until released: the batch's statement runs past statement_timeout.
      let release: () => void = () => undefined;
      const held = new Promise<void>((r) => {
        release = r;
      });
      let locked: () => void = () => undefined;
      const isLocked = new Promise<void>((r) => {
        locked = r;
      });
      const holder = db.transaction().execute(async (tx) => {
        await sql`lock table ephemeral_keys in access exclusive mode`.execute(tx);
        locked();
        await held;
      });
      await isLocked;
      const outcomes = await Promise.allSettled(["k1", "k2", "k3"].map((k) => keys.ephemeralKeyExists(k)));
      release();
      await holder;
      expect(outcomes.map((o) => o.status)).toEqual(["rejected", "rejected", "rejected"]);
      expect(await Promise.all(["k1", "k2"].map((k) => keys.ephemeralKeyExists(k)))).toEqual([false, false]);
    } finally {
      await spy.destroy();
    }
  });

  it("prepares each SELECT of named columns once per connection, and not `select *`", async () => {
    const { dialect, pool: one } = createPostgresDialect(
      { url, poolSize: 1, statementTimeoutMs: 10_000 },
      quiet,
    );
    const single = new Kysely<Database>({ dialect });
    try {
      const accounts = storeOver(single, "postgres").repos.accounts;
      for (let i = 0; i < 3; i++) expect(await accounts.userForToken("no-such-token", 0)).toBeUndefined();
      await single.selectFrom("accounts").selectAll().execute();
      // One connection: the statements it has prepared so far (this query is one of them afterwards).
      const { rows } = await sql<{ statement: string }>`select statement from pg_prepared_statements`.execute(
        single,
      );
      const texts = rows.map((r) => r.statement);
      expect(texts.filter((t) => t.includes("from access_tokens"))).toHaveLength(1);
      expect(texts.some((t) => t.includes("*"))).toBe(false);
      expect(one.totalCount).toBe(1);
    } finally {
      await single.destroy();
    }
  });

  it("cancels statements that run past statement_timeout", async () => {
    const short = openPg(url, 200);
    try {
      const shown = await sql<{ statement_timeout: string }>`show statement_timeout`.execute(short.db);
      expect(shown.rows[0]?.statement_timeout).toBe("200ms");
      const started = Date.now();
      await expect(sql`select pg_sleep(3)`.execute(short.db)).rejects.toMatchObject({
        code: "57014",
        message: expect.stringMatching(/statement timeout/),
      });
      expect(Date.now() - started).toBeLessThan(2000);
      await expect(sql`select 1`.execute(short.db)).resolves.toBeDefined();
    } finally {
      await short.store.close();
    }
  });

  it("logs, and survives, an idle pooled connection being killed", async () => {
    const warn = vi.fn();
    const watched = openPg(url, 10_000, { ...NO_LOG, warn });
    try {
      const pid = (await watched.pool.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]?.pid;
      expect(watched.pool.idleCount).toBe(1);
      await sql`select pg_terminate_backend(${pid})`.execute(db);
      await vi.waitFor(() => expect(warn).toHaveBeenCalledOnce());
      expect(warn.mock.calls[0]?.[0]).toMatchObject({ code: "57P01" });
      await expect(pingPostgres(watched.pool)).resolves.toBeUndefined();
    } finally {
      await watched.store.close();
    }
  });

  it("accepts a pino logger", () => {
    const { pool: p } = createPostgresDialect(
      { url, poolSize: 1, statementTimeoutMs: 0 },
      pino({ level: "silent" }),
    );
    return p.end();
  });
});

describe("PostgreSQL connection failures", () => {
  let blackhole: Server;
  const sockets = new Set<Socket>();
  beforeAll(async () => {
    // Accepts TCP connections and never answers: the connect timeout must fire.
    blackhole = createServer((s) => {
      sockets.add(s);
      s.on("error", () => {});
    });
    await new Promise<void>((r) => blackhole.listen(0, "127.0.0.1", r));
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => blackhole.close(r));
  });

  it("fails fast when the server does not answer", async () => {
    const port = (blackhole.address() as { port: number }).port;
    const { pool: p } = createPostgresDialect(
      {
        url: `postgres://u:p@127.0.0.1:${port}/db`,
        poolSize: 1,
        statementTimeoutMs: 0,
        connectTimeoutMs: 300,
      },
      quiet,
    );
    const started = Date.now();
    await expect(pingPostgres(p)).rejects.toThrow(/timeout/i);
    expect(Date.now() - started).toBeLessThan(3000);
    await p.end();
  });

  it("refuses TLS settings in both the URL and the config", () => {
    expect(() =>
      createPostgresDialect(
        {
          url: "postgres://u:p@db.example/seraph?sslmode=verify-full",
          poolSize: 1,
          statementTimeoutMs: 0,
          ssl: { enabled: true, verifyCertificates: true },
        },
        quiet,
      ),
    ).toThrow(/sslmode/);
  });

  it("maps the TLS options onto the pool", () => {
    const { pool: p } = createPostgresDialect(
      {
        url: "postgres://u:p@db.example/seraph",
        poolSize: 1,
        statementTimeoutMs: 0,
        ssl: { enabled: true, verifyCertificates: false },
      },
      quiet,
    );
    expect((p.options as pg.PoolConfig).ssl).toEqual({ rejectUnauthorized: false });
    return p.end();
  });
});
