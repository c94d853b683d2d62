/**
 * Fills a Seraph database with benchmark data: N email associations `user{i}@example.org` →
 * `@user{i}:hs.example` with their lookup hashes under the current pepper, an access token for a bench
 * user and one ephemeral key. Batched multi-row inserts in one transaction (100k associations take a few
 * seconds on SQLite and on PostgreSQL).
 *
 * Standalone: `npx tsx bench/seed.ts --config seraph.yaml --associations 100000` (prints the token).
 * The database must not hold associations yet.
 */
import { randomBytes } from "node:crypto";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { CompiledQuery, type Transaction } from "kysely";
import { loadConfig } from "../src/config/load.js";
import { encodeBase64 } from "../src/crypto/base64.js";
import type { SigningKey } from "../src/crypto/ed25519.js";
import { randomToken, sha256Hex } from "../src/crypto/hash.js";
import { signAssociation } from "../src/services/signed-association.js";
import { type DatabaseOptions, migrateToLatest, openStore, type Store } from "../src/store/database.js";
import type { Database } from "../src/store/schema.js";
import { lookupHash } from "../src/threepid/normalise.js";

export const BENCH_MEDIUM = "email";
export const BENCH_USER = "@bench:hs.example";

export function benchAddress(i: number): string {
  return `user${i}@example.org`;
}

export function benchMxid(i: number): string {
  return `@user${i}:hs.example`;
}

export interface SeedOptions {
  associations: number;
  /** The access token to create (default: a random one). */
  token?: string;
  /**
   * Age given to a pepper the seed creates. Seraph re-checks for associations lacking a hash under the
   * current pepper every 10 s during `lookup.previous_pepper_grace_seconds` after its activation; the
   * default (2 days) benchmarks the steady state. 0 = activated now, as on a fresh install or after a
   * rotation.
   */
  pepperAgeMs?: number;
  /**
   * How long ago the associations were bound (their `ts` and `not_before`); default 1 day. A rotation
   * hashes the binds of its last `rotation_settle_seconds` in one pass, so 0 makes all of them recent.
   */
  bindAgeMs?: number;
  /**
   * Stores each association's signed JSON as a bind does (v1 lookup then answers stored bytes); without
   * it the server's background task signs them all after start, which is not the steady state.
   */
  signWith?: { serverName: string; key: SigningKey };
  /** Rows per INSERT statement. */
  batch?: number;
  now?: number;
}

export interface SeedResult {
  associations: number;
  pepper: string;
  pepperId: number;
  token: string;
  userId: string;
  /** A valid ephemeral public key (unpadded base64), for `/pubkey/ephemeral/isvalid`. */
  ephemeralKey: string;
  ms: number;
}

/** `?` for SQLite, `$1, $2…` for PostgreSQL. */
function placeholders(dialect: Store["dialect"]): () => string {
  let n = 0;
  return dialect === "sqlite" ? () => "?" : () => `$${++n}`;
}

async function currentPepper(
  tx: Transaction<Database>,
  now: number,
  ageMs: number,
): Promise<{ id: number; pepper: string }> {
  const existing = await tx
    .selectFrom("lookup_peppers")
    .select(["id", "pepper"])
    .where("state", "=", "current")
    .executeTakeFirst();
  if (existing) return existing;
  const ts = now - ageMs;
  return tx
    .insertInto("lookup_peppers")
    .values({ pepper: randomToken(32), state: "current", created_ts: ts, activated_ts: ts, retired_ts: null })
    .returning(["id", "pepper"])
    .executeTakeFirstOrThrow();
}

/** Seeds an open, migrated store (see the module comment). */
export async function seedStore(store: Store, opts: SeedOptions): Promise<SeedResult> {
  const started = performance.now();
  const n = opts.associations;
  const batch = opts.batch ?? 5000;
  const now = opts.now ?? Date.now();
  const token = opts.token ?? randomBytes(32).toString("base64url");
  const ephemeralKey = encodeBase64(randomBytes(32));
  const bound = now - (opts.bindAgeMs ?? 86_400_000);
  const notAfter = now + 100 * 365 * 86_400_000;

  const pepper = await store.db.transaction().execute(async (tx) => {
    const existing = await tx
      .selectFrom("associations")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .executeTakeFirstOrThrow();
    if (Number(existing.n) > 0) {
      throw new Error(`the database already holds ${existing.n} associations; seed a fresh one`);
    }
    const pepper = await currentPepper(tx, now, opts.pepperAgeMs ?? 2 * 86_400_000);

    for (let start = 0; start < n; start += batch) {
      const end = Math.min(n, start + batch);
      const ph = placeholders(store.dialect);
      const rows: string[] = [];
      const params: Array<string | null> = [];
      for (let i = start; i < end; i++) {
        // Only strings (and nulls) are bound; the numbers are ours and inlined.
        rows.push(`('${BENCH_MEDIUM}', ${ph()}, ${ph()}, ${bound}, ${bound}, ${notAfter}, ${ph()})`);
        const record = {
          medium: BENCH_MEDIUM,
          address: benchAddress(i),
          mxid: benchMxid(i),
          ts: bound,
          notBefore: bound,
          notAfter,
        };
        const signed = opts.signWith
          ? JSON.stringify(signAssociation(record, opts.signWith.serverName, opts.signWith.key))
          : null;
        params.push(record.address, record.mxid, signed);
      }
      const inserted = await tx.executeQuery<{ id: number | string; address: string; mxid: string }>(
        CompiledQuery.raw(
          `insert into associations (medium, address, mxid, ts, not_before, not_after, signed_json) values ${rows.join(", ")} returning id, address, mxid`,
          params,
        ),
      );
      const hashPh = placeholders(store.dialect);
      const hashRows: string[] = [];
      const hashes: string[] = [];
      for (const r of inserted.rows) {
        hashRows.push(`(${pepper.id}, ${hashPh()}, ${Number(r.id)}, ${hashPh()})`);
        hashes.push(lookupHash(r.address, BENCH_MEDIUM, pepper.pepper), r.mxid);
      }
      await tx.executeQuery(
        CompiledQuery.raw(
          `insert into association_hashes (pepper_id, hash, association_id, mxid) values ${hashRows.join(", ")}`,
          hashes,
        ),
      );
    }

    await tx
      .insertInto("accounts")
      .values({ user_id: BENCH_USER, created_ts: now })
      .onConflict((oc) => oc.column("user_id").doNothing())
      .execute();
    await tx
      .insertInto("access_tokens")
      .values({ token_hash: sha256Hex(token), user_id: BENCH_USER, created_ts: now, expires_ts: null })
      .execute();
    await tx.insertInto("ephemeral_keys").values({ public_key: ephemeralKey, created_ts: now }).execute();
    return pepper;
  });

  // PostgreSQL's autovacuum would analyze the fresh tables within a minute or so; do it now so the
  // planner has statistics. (SQLite: Seraph never runs ANALYZE, so neither do we.)
  if (store.dialect === "postgres") await store.db.executeQuery(CompiledQuery.raw("analyze"));

  return {
    associations: n,
    pepper: pepper.pepper,
    pepperId: Number(pepper.id),
    token,
    userId: BENCH_USER,
    ephemeralKey,
    ms: performance.now() - started,
  };
}

/** Opens the configured database, migrates it, seeds it and closes it. */
export async function seedDatabase(database: DatabaseOptions, opts: SeedOptions): Promise<SeedResult> {
  const store = await openStore(database);
  try {
    await migrateToLatest(store);
    return await seedStore(store, opts);
  } finally {
    await store.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      config: { type: "string" },
      associations: { type: "string", default: "100000" },
      token: { type: "string" },
    },
  });
  const cfg = loadConfig(values.config ?? process.env.SERAPH_CONFIG);
  const n = Number(values.associations);
  if (!Number.isInteger(n) || n < 0) throw new Error("--associations must be a non-negative integer");
  const r = await seedDatabase(cfg.database, {
    associations: n,
    ...(values.token === undefined ? {} : { token: values.token }),
  });
  process.stdout.write(
    `seeded ${r.associations} associations in ${(r.ms / 1000).toFixed(2)} s\n` +
      `pepper ${r.pepper} (id ${r.pepperId})\n` +
      `access token for ${r.userId}: ${r.token}\n` +
      `ephemeral public key: ${r.ephemeralKey}\n`,
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
