/**
 * Reads from PostgreSQL streaming replicas (`database.postgres.read_replicas`).
 *
 * `ReplicaReader.db` is a Kysely whose connections come from a healthy replica — one that answers and
 * whose replay is at most `max_replica_lag_ms` behind the primary — and from the primary when none
 * is. A health check runs every `checkIntervalMs`: it reads the primary's WAL position, then each
 * replica's replay position and the time of its last replayed commit. A replica that has replayed up
 * to the primary's position has no lag; else its lag is the time since its last replayed commit
 * (how stale its answers may be). A replica whose connection fails while serving a read is marked
 * down at once and the read is run again on the primary (reads only: never inside a transaction),
 * so an outage costs no failed request; the next check that reaches it and finds it caught up lets
 * it serve again.
 */
import {
  type CompiledQuery,
  type DatabaseConnection,
  type Driver,
  Kysely,
  PostgresAdapter,
  PostgresDialect,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from "kysely";
import type pg from "pg";
import type { Logger } from "../core/logger.js";
import { isDatabaseUnavailable } from "./errors.js";
import { preparingPool } from "./prepared-statements.js";
import type { Database } from "./schema.js";

export interface ReplicaOptions {
  /** One pool per replica URL (built like the primary's). */
  pools: ReadonlyArray<{ url: string; pool: pg.Pool }>;
  /** The primary's pool: the fallback, and where the WAL position is read. */
  primary: pg.Pool;
  maxLagMs: number;
  checkIntervalMs: number;
  log: Logger;
}

/** What the health check last found about one replica (exposed for tests and metrics). */
export interface ReplicaState {
  /** The replica's URL without its password. */
  readonly name: string;
  /** Serves reads now. */
  readonly healthy: boolean;
  /** Milliseconds behind the primary at the last check (NaN when it did not answer). */
  readonly lagMs: number;
  /** Why it is skipped, when it is. */
  readonly reason: string | undefined;
}

class Replica implements ReplicaState {
  healthy = false;
  lagMs = Number.NaN;
  reason: string | undefined = "not checked yet";
  readonly driver: Driver;

  constructor(
    readonly name: string,
    readonly pool: pg.Pool,
  ) {
    this.driver = new PostgresDialect({ pool: preparingPool(pool) }).createDriver();
    // A replica that goes down also breaks connections that are checked out between two queries; pg
    // emits that on the client, where nothing else listens (the failing query itself is failed over).
    pool.on("connect", (client) => client.on("error", () => undefined));
  }
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(invalid URL)";
  }
}

/** The read side of a PostgreSQL store with replicas. */
export class ReplicaReader {
  /** Reads: a healthy replica's connection, or the primary's. */
  readonly db: Kysely<Database>;
  private readonly replicas: Replica[];
  private readonly primary: Driver;
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private next = 0;
  private closed = false;

  constructor(private readonly opts: ReplicaOptions) {
    this.replicas = opts.pools.map((p) => new Replica(redact(p.url), p.pool));
    // A second driver over the primary's pool: the store's own Kysely keeps owning (and ending) it.
    this.primary = new PostgresDialect({ pool: preparingPool(opts.primary) }).createDriver();
    const driver = new ReadDriver(this);
    this.db = new Kysely<Database>({
      dialect: {
        createAdapter: () => new PostgresAdapter(),
        createDriver: () => driver,
        createIntrospector: (db) => new PostgresIntrospector(db),
        createQueryCompiler: () => new PostgresQueryCompiler(),
      },
    });
  }

  /** Runs the first check (so that healthy replicas serve from the start) and schedules the next ones. */
  async start(): Promise<void> {
    await this.check();
    this.schedule();
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      void this.check().finally(() => this.schedule());
    }, this.opts.checkIntervalMs);
    this.timer.unref();
  }

  get states(): readonly ReplicaState[] {
    return this.replicas;
  }

  /** Checks every replica now (also called by the timer). */
  check(): Promise<void> {
    this.checking ??= this.runCheck().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  private async runCheck(): Promise<void> {
    let primaryLsn: string | undefined;
    try {
      const r = await this.opts.primary.query<{ lsn: string }>("select pg_current_wal_lsn()::text as lsn");
      primaryLsn = r.rows[0]?.lsn;
    } catch {
      // The primary is away: replicas may still serve reads, judged by their replay time alone.
    }
    await Promise.all(this.replicas.map((r) => this.checkOne(r, primaryLsn)));
  }

  private async checkOne(r: Replica, primaryLsn: string | undefined): Promise<void> {
    const was = r.healthy;
    try {
      const q = await r.pool.query<{ recovery: boolean; caught_up: boolean | null; since_ms: number | null }>(
        `select pg_is_in_recovery() as recovery,
                ($1::pg_lsn is not null and pg_last_wal_replay_lsn() >= $1::pg_lsn) as caught_up,
                (extract(epoch from (clock_timestamp() - pg_last_xact_replay_timestamp())) * 1000)::float8 as since_ms`,
        [primaryLsn ?? null],
      );
      const row = q.rows[0]!;
      if (!row.recovery) {
        // Promoted (or not a replica at all): it is no longer fed by the primary.
        r.lagMs = Number.NaN;
        r.healthy = false;
        r.reason = "not in recovery (promoted, or not a replica)";
      } else {
        r.lagMs = row.caught_up ? 0 : (row.since_ms ?? Number.POSITIVE_INFINITY);
        r.healthy = r.lagMs <= this.opts.maxLagMs;
        r.reason = r.healthy ? undefined : `lagging ${Math.round(r.lagMs)} ms behind the primary`;
      }
    } catch (err) {
      r.lagMs = Number.NaN;
      r.healthy = false;
      r.reason = `unreachable: ${(err as Error).message}`;
    }
    if (was !== r.healthy) {
      this.opts.log.warn(
        { replica: r.name, lag_ms: Number.isFinite(r.lagMs) ? Math.round(r.lagMs) : null, reason: r.reason },
        r.healthy ? "read replica serves reads again" : "read replica skipped",
      );
    }
  }

  /** A healthy replica, round robin; undefined when there is none. */
  pick(): Replica | undefined {
    const n = this.replicas.length;
    for (let i = 0; i < n; i++) {
      const r = this.replicas[(this.next + i) % n]!;
      if (r.healthy) {
        this.next = (this.next + i + 1) % n;
        return r;
      }
    }
    return undefined;
  }

  /** Takes a replica out of service after a connection failure (the next good check restores it). */
  markDown(r: Replica, err: unknown): void {
    if (!r.healthy) return;
    r.healthy = false;
    r.reason = `failed: ${(err as Error).message}`;
    this.opts.log.warn({ replica: r.name, reason: r.reason }, "read replica skipped");
  }

  primaryDriver(): Driver {
    return this.primary;
  }

  /** Stops checking and closes the replicas' pools (not the primary's). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.checking;
    await this.db.destroy();
  }

  replicaDrivers(): Driver[] {
    return this.replicas.map((r) => r.driver);
  }
}

/** A connection of the read Kysely: on a replica (with failover to the primary) or on the primary. */
class ReadConnection implements DatabaseConnection {
  inTransaction = false;

  constructor(
    readonly inner: DatabaseConnection,
    readonly driver: Driver,
    readonly replica: Replica | undefined,
    private readonly reader: ReplicaReader,
  ) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    try {
      return await this.inner.executeQuery<R>(query);
    } catch (err) {
      if (!this.replica || this.inTransaction || !isDatabaseUnavailable(err)) throw err;
      this.reader.markDown(this.replica, err);
      const primary = this.reader.primaryDriver();
      const conn = await primary.acquireConnection();
      try {
        return await conn.executeQuery<R>(query);
      } finally {
        await primary.releaseConnection(conn);
      }
    }
  }

  streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.inner.streamQuery<R>(query, chunkSize);
  }
}

class ReadDriver implements Driver {
  constructor(private readonly reader: ReplicaReader) {}

  async init(): Promise<void> {
    await Promise.all(this.reader.replicaDrivers().map((d) => d.init()));
    await this.reader.primaryDriver().init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const replica = this.reader.pick();
    if (replica) {
      try {
        return new ReadConnection(
          await replica.driver.acquireConnection(),
          replica.driver,
          replica,
          this.reader,
        );
      } catch (err) {
        if (!isDatabaseUnavailable(err)) throw err;
        this.reader.markDown(replica, err);
      }
    }
    const primary = this.reader.primaryDriver();
    return new ReadConnection(await primary.acquireConnection(), primary, undefined, this.reader);
  }

  async beginTransaction(conn: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const c = conn as ReadConnection;
    c.inTransaction = true;
    await c.driver.beginTransaction(c.inner, settings);
  }

  async commitTransaction(conn: DatabaseConnection): Promise<void> {
    const c = conn as ReadConnection;
    c.inTransaction = false;
    await c.driver.commitTransaction(c.inner);
  }

  async rollbackTransaction(conn: DatabaseConnection): Promise<void> {
    const c = conn as ReadConnection;
    c.inTransaction = false;
    await c.driver.rollbackTransaction(c.inner);
  }

  async releaseConnection(conn: DatabaseConnection): Promise<void> {
    const c = conn as ReadConnection;
    await c.driver.releaseConnection(c.inner);
  }

  async destroy(): Promise<void> {
    // The replicas' pools only: the primary's belongs to the store.
    await Promise.all(this.reader.replicaDrivers().map((d) => d.destroy()));
  }
}
