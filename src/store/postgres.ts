import { readFileSync } from "node:fs";
import { PostgresDialect } from "kysely";
import pg from "pg";
import Cursor from "pg-cursor";
import type { Logger } from "../core/logger.js";
import { preparingPool } from "./prepared-statements.js";

/** TLS settings for the PostgreSQL connection (`database.postgres.ssl` in the config). */
export interface PostgresSslOptions {
  enabled: boolean;
  /** Verify the server's certificate chain and host name. */
  verifyCertificates: boolean;
  /** PEM bundle of CAs to trust instead of Node's default store. */
  caPath?: string;
}

export interface PostgresOptions {
  /** `postgres://user:password@host:port/database`. */
  url: string;
  /** Maximum number of pooled connections. */
  poolSize: number;
  /** Server-side `statement_timeout` for every connection; 0 disables it. */
  statementTimeoutMs: number;
  /** How long establishing a connection (TCP + TLS + auth) may take. Defaults to 5 s. */
  connectTimeoutMs?: number;
  /** How long an unused pooled connection stays open. Defaults to 30 s. */
  idleTimeoutMs?: number;
  /**
   * With `enabled: true`, TLS is configured from here and the URL must not carry `ssl*` parameters
   * (pg lets URL parameters silently override these options). Otherwise the URL decides (no
   * `sslmode` in the URL means no TLS).
   */
  ssl?: PostgresSslOptions;
}

/** The OID of `int8` / `bigint` (also `bigserial` and `count(*)`). */
const INT8_OID = 20;

/** URL parameters that would override the `ssl` option inside pg. */
const URL_SSL_PARAMS = ["ssl", "sslmode", "sslcert", "sslkey", "sslrootcert", "sslcrl", "uselibpqcompat"];

function parseInt8(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) {
    // pg catches parser errors and rejects the query with this error.
    throw new RangeError(`bigint value ${value} is outside the safe integer range`);
  }
  return n;
}

/**
 * Per-pool type parsers: `bigint` columns become JS numbers (our timestamps and ids stay below
 * 2^53; larger values reject the query instead of losing precision). Everything else keeps pg's
 * defaults. This does not touch the process-wide `pg.types` registry.
 */
const seraphTypes: pg.CustomTypesConfig = {
  getTypeParser: (oid: number, format?: "text" | "binary") => {
    if (oid === INT8_OID && format !== "binary") return parseInt8;
    return pg.types.getTypeParser(oid, format);
  },
};

function sslConfig(url: string, ssl: PostgresSslOptions | undefined): pg.PoolConfig["ssl"] {
  if (ssl === undefined || !ssl.enabled) return undefined;
  let params: URLSearchParams;
  try {
    params = new URL(url).searchParams;
  } catch {
    throw new Error("database.postgres.url is not a valid URL");
  }
  const clash = URL_SSL_PARAMS.filter((p) => params.has(p));
  if (clash.length > 0) {
    throw new Error(
      `database.postgres.url sets ${clash.join(", ")}; configure TLS either in the URL or in database.postgres.ssl, not both`,
    );
  }
  let ca: string | undefined;
  if (ssl.caPath !== undefined) {
    try {
      ca = readFileSync(ssl.caPath, "utf8");
    } catch (err) {
      throw new Error(`cannot read database.postgres.ssl.caPath ${ssl.caPath}: ${(err as Error).message}`);
    }
  }
  return { rejectUnauthorized: ssl.verifyCertificates, ...(ca === undefined ? {} : { ca }) };
}

/**
 * Builds a pg pool and the Kysely dialect over it. Does not connect: call `pingPostgres` to check
 * the database is reachable. The caller owns the pool (`Kysely#destroy()` ends it).
 */
export function createPostgresDialect(
  opts: PostgresOptions,
  logger: Logger,
): { dialect: PostgresDialect; pool: pg.Pool } {
  const config: pg.PoolConfig = {
    connectionString: opts.url,
    max: opts.poolSize,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5_000,
    idleTimeoutMillis: opts.idleTimeoutMs ?? 30_000,
    // Sent in the startup packet, so it applies to every statement on every pooled connection.
    statement_timeout: opts.statementTimeoutMs > 0 ? opts.statementTimeoutMs : false,
    application_name: "seraph",
    keepAlive: true,
    types: seraphTypes,
  };
  const ssl = sslConfig(opts.url, opts.ssl);
  if (ssl !== undefined) config.ssl = ssl;

  const pool = new pg.Pool(config);
  // An idle pooled connection that dies (server restart, admin kill, network drop) is emitted here;
  // without a listener the process would crash. The pool discards the client and reconnects later.
  pool.on("error", (err: Error & { code?: string }) => {
    logger.warn({ err, code: err.code }, "idle PostgreSQL connection failed; it will be replaced");
  });
  return { dialect: new PostgresDialect({ pool: preparingPool(pool), cursor: TypedCursor }), pool };
}

/** A cursor (Kysely's `stream()`, e.g. `seraph migrate-db --from postgres:…`) that reads bigints as the pool does. */
class TypedCursor<T> extends Cursor<T> {
  constructor(text: string, values: readonly unknown[]) {
    super(text, values, { types: seraphTypes });
  }
}

/** Resolves once the database answers a trivial query; rejects with pg's error otherwise. */
export async function pingPostgres(pool: pg.Pool): Promise<void> {
  await pool.query("select 1");
}
