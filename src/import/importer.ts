import { existsSync } from "node:fs";
import type { ResolvedConfig } from "../config/load.js";
import { nulField } from "../core/nul.js";
import type { SigningKey } from "../crypto/ed25519.js";
import { randomToken } from "../crypto/hash.js";
import { readKeyFile, writeKeyFile } from "../crypto/key-file.js";
import { normalisePublicKey } from "../crypto/keyring.js";
import { migrateToLatest, openStore } from "../store/database.js";
import { bump, type Counters, type ImportedBinding, mapInvite, mapSession, pickBinding } from "./mapping.js";
import type { SqliteBindingWriter } from "./sqlite-bindings.js";
import { SydentConfig, SydentInputError } from "./sydent-config.js";
import { SydentDb, type SydentGlobalRow } from "./sydent-db.js";
import { ImportWriter, type PhaseState, type Tx } from "./writer.js";

/** Receives progress: one phase at a time, `tick` with rows read. */
export interface ProgressSink {
  start(phase: string, total: number): void;
  tick(rows: number): void;
  stop(): void;
}

export interface ImportOptions {
  sydentDb: string;
  sydentConfig: string;
  config: ResolvedConfig;
  dryRun?: boolean;
  merge?: boolean;
  replaceKey?: boolean;
  peers?: "import" | "skip";
  sessions?: boolean;
  resume?: boolean;
  rotatePepper?: boolean;
  /** The import's clock (ms); fixed for a run and kept for `--resume`. Default: now. */
  now?: number;
  /** Source rows per transaction. */
  batchSize?: number;
  progress?: ProgressSink;
  /** Tests: throw inside the transaction of batch n+1 (rolled back), as a kill mid-import would. */
  interruptAfterBatches?: number;
  /** Tests: how `interruptAfterBatches` stops the import: a thrown error (default), or SIGKILL of this process. */
  interruptBy?: "throw" | "kill";
}

export interface PhaseReport {
  phase: string;
  rows: number;
  counters: Counters;
}

export interface ImportReport {
  dryRun: boolean;
  resumed: boolean;
  serverName: string;
  publicKey: string;
  keyAction: "written" | "unchanged" | "replaced" | "would write" | "would replace";
  pepper: string;
  rotationStarted: boolean;
  phases: PhaseReport[];
  /** sydent bugs the import fixed, and how many rows each touched. */
  fixedBugs: Record<string, number>;
  seconds: number;
}

/** Thrown by `interruptAfterBatches` (tests). */
export class ImportInterrupted extends Error {}

/**
 * Source rows per transaction. Large, because every commit rewrites the pages of the hash index it touched
 * (hashes are random): at 10 000 rows a 1M-binding import wrote 4.5 GB; memory stays bounded by the batch.
 */
const DEFAULT_BATCH = 50_000;

const NO_PROGRESS: ProgressSink = { start() {}, tick() {}, stop() {} };

const PHASES = [
  "bindings",
  "ephemeral_keys",
  "invites",
  "accounts",
  "tokens",
  "accepted_terms",
  "sessions",
] as const;
type Phase = (typeof PHASES)[number];

interface RunContext {
  opts: ImportOptions;
  db: SydentDb;
  writer: ImportWriter | undefined;
  now: number;
  batchSize: number;
  importPeers: boolean;
  merge: boolean;
  ownServer: string;
  pepper: { id: number; pepper: string };
  progress: ProgressSink;
  batches: number;
  /** Row counts of the sydent tables, read once (progress totals). */
  counts?: ReturnType<SydentDb["counts"]>;
}

/**
 * Imports a stopped sydent's database and signing key into Seraph (see docs/migrating-from-sydent.md).
 * Every input is checked before anything is written; each batch is one transaction that also records the
 * phase's cursor, so an interrupted import continues with `resume`.
 */
export async function importSydent(opts: ImportOptions): Promise<ImportReport> {
  const started = Date.now();
  const sydentConf = SydentConfig.read(opts.sydentConfig);
  const serverName = sydentConf.serverName;
  const key = sydentConf.signingKey;
  const db = SydentDb.open(opts.sydentDb);
  try {
    const pepper = db.pepper();
    if (opts.config.server_name !== serverName) {
      throw new SydentInputError(
        `Seraph's server_name is "${opts.config.server_name}" but sydent signed as "${serverName}": set server_name: ${serverName} in Seraph's configuration (homeservers check signatures under that name)`,
      );
    }
    const keyPlan = planKey(opts.config.signing_key_path, key, opts.replaceKey ?? false);
    const report: ImportReport = {
      dryRun: opts.dryRun ?? false,
      resumed: false,
      serverName,
      publicKey: key.publicKeyBase64,
      keyAction: keyPlan.action,
      pepper,
      rotationStarted: false,
      phases: [],
      fixedBugs: {},
      seconds: 0,
    };
    const base = {
      opts,
      db,
      batchSize: opts.batchSize ?? DEFAULT_BATCH,
      ownServer: serverName,
      progress: opts.progress ?? NO_PROGRESS,
      batches: 0,
    };
    if (opts.dryRun) {
      if (keyPlan.action === "written") report.keyAction = "would write";
      if (keyPlan.action === "replaced") report.keyAction = "would replace";
      const ctx: RunContext = {
        ...base,
        writer: undefined,
        now: opts.now ?? Date.now(),
        importPeers: (opts.peers ?? "import") === "import",
        merge: opts.merge ?? false,
        pepper: { id: 0, pepper },
      };
      for (const phase of PHASES) {
        if (phase === "sessions" && !opts.sessions) continue;
        const state: PhaseState = { phase, cursor: "", rows: 0, done: false, counters: {} };
        await runPhase(ctx, phase, state);
        report.phases.push({ phase, rows: state.rows, counters: state.counters });
      }
      return finish(report, started);
    }

    const store = await openStore(opts.config.database);
    try {
      await migrateToLatest(store);
      const writer = new ImportWriter(store.db, store.dialect);
      if (store.dialect === "sqlite") await writer.tuneSqlite();
      const phases = await writer.phases();
      const run = phases.get("_run");
      let now: number;
      let importPeers: boolean;
      let withSessions: boolean;
      let merge: boolean;
      if (run && !run.done) {
        if (!opts.resume) {
          throw new SydentInputError(
            "a previous import into this database did not finish: run the same command again with --resume",
          );
        }
        now = run.counters.now!;
        importPeers = run.counters.import_peers === 1;
        withSessions = run.counters.sessions === 1;
        merge = run.counters.merge === 1;
        report.resumed = true;
      } else {
        if (opts.resume)
          throw new SydentInputError("--resume: there is no unfinished import in this database");
        merge = opts.merge ?? false;
        if (!merge) {
          if (run?.done) {
            throw new SydentInputError(
              "this database already holds a finished import from sydent; pass --merge to import again, keeping what is there",
            );
          }
          const full = await writer.nonEmptyTables();
          if (full.length) {
            throw new SydentInputError(
              `the Seraph database is not empty (${full.join(", ")}): import into an empty database, or pass --merge to add sydent's data and skip what is already there`,
            );
          }
        }
        now = opts.now ?? Date.now();
        importPeers = (opts.peers ?? "import") === "import";
        withSessions = opts.sessions ?? false;
      }

      applyKey(opts.config.signing_key_path, keyPlan);
      const keyRepo = store.repos.keys;
      if (keyPlan.replacedPublicKey)
        await keyRepo.revokeSigningKey(keyPlan.replacedPublicKey, now, key.publicKeyBase64);
      await keyRepo.recordSigningKey(key, now);

      let rehash = false;
      let pepperId: number;
      if (!run || run.done) {
        const installed = await writer.transaction(async (tx) => {
          await writer.clearPhases(tx);
          const p = await writer.installPepper(tx, pepper, merge, now);
          await writer.saveState(
            {
              phase: "_run",
              cursor: "",
              rows: 0,
              done: false,
              counters: {
                now,
                import_peers: importPeers ? 1 : 0,
                sessions: withSessions ? 1 : 0,
                merge: merge ? 1 : 0,
                rehash: 0,
              },
            },
            now,
            tx,
          );
          return p;
        });
        pepperId = installed.id;
        rehash = installed.rehash;
        if (rehash) {
          await writer.saveState(
            {
              phase: "_run",
              cursor: "",
              rows: 0,
              done: false,
              counters: {
                now,
                import_peers: importPeers ? 1 : 0,
                sessions: withSessions ? 1 : 0,
                merge: merge ? 1 : 0,
                rehash: 1,
              },
            },
            now,
          );
        }
      } else {
        rehash = run.counters.rehash === 1;
        const row = await store.db
          .selectFrom("lookup_peppers")
          .select("id")
          .where("pepper", "=", pepper)
          .where("state", "=", "current")
          .executeTakeFirst();
        if (!row)
          throw new SydentInputError(
            "--resume: sydent's pepper is no longer current here; start the import again",
          );
        pepperId = row.id;
      }
      const current = await writer.phases();
      const ctx: RunContext = { ...base, writer, now, importPeers, merge, pepper: { id: pepperId, pepper } };
      for (const phase of PHASES) {
        if (phase === "sessions" && !withSessions) continue;
        const state = current.get(phase) ?? { phase, cursor: "", rows: 0, done: false, counters: {} };
        if (!state.done) await runPhase(ctx, phase, state);
        report.phases.push({ phase, rows: state.rows, counters: state.counters });
      }
      if (rehash) {
        // Merging into a Seraph that had its own pepper: its associations get hashes under sydent's pepper too.
        const state = current.get("rehash") ?? {
          phase: "rehash",
          cursor: "0",
          rows: 0,
          done: false,
          counters: {},
        };
        let after = Number(state.cursor || "0");
        for (;;) {
          const last = await writer.rehashAfter(ctx.pepper, after, ctx.batchSize);
          if (last === undefined) break;
          after = last;
          state.cursor = String(last);
          await writer.saveState(state, now);
        }
        state.done = true;
        await writer.saveState(state, now);
      }
      if (opts.rotatePepper) {
        await writer.startRotation(randomToken(32), now);
        report.rotationStarted = true;
      }
      const runState = (await writer.phases()).get("_run")!;
      runState.done = true;
      await writer.saveState(runState, now);
      return finish(report, started);
    } finally {
      if (store.dialect === "sqlite")
        await new ImportWriter(store.db, store.dialect).untuneSqlite().catch(() => {});
      await store.close();
    }
  } finally {
    db.close();
  }
}

function finish(report: ImportReport, started: number): ImportReport {
  const get = (phase: string, key: string) =>
    report.phases.find((p) => p.phase === phase)?.counters[key] ?? 0;
  report.fixedBugs = {
    "signed associations carrying another address's invites, re-signed without them": get(
      "bindings",
      "fixed_leaked_invites",
    ),
    "addresses stored without full case folding, folded": get("bindings", "fixed_casefold_address"),
    "non-ASCII addresses that sydent's lower() could not match in another case, now matched": get(
      "bindings",
      "non_ascii_addresses",
    ),
    "invites sydent marked sent but never delivered, queued for delivery": get(
      "invites",
      "queued_for_delivery",
    ),
  };
  report.seconds = (Date.now() - started) / 1000;
  return report;
}

interface KeyPlan {
  action: "written" | "unchanged" | "replaced";
  key: SigningKey;
  keys: SigningKey[];
  replacedPublicKey?: string;
}

/** Decides what happens to the key file: refuses a different key unless `replace`. Writes nothing. */
function planKey(path: string, key: SigningKey, replace: boolean): KeyPlan {
  if (!existsSync(path)) return { action: "written", key, keys: [key] };
  const existing = readKeyFile(path);
  const first = existing[0]!;
  if (first.publicKeyBase64 === key.publicKeyBase64 && first.keyId === key.keyId) {
    return { action: "unchanged", key, keys: existing };
  }
  if (!replace) {
    throw new SydentInputError(
      `the key file ${path} holds another signing key (${first.keyId} ${first.publicKeyBase64}) than sydent's (${key.keyId} ${key.publicKeyBase64}); homeservers trust sydent's. Pass --replace-key to make sydent's key current`,
    );
  }
  const rest = existing.filter((k) => k.keyId !== key.keyId && k.publicKeyBase64 !== key.publicKeyBase64);
  const dropped = existing.find((k) => k.keyId === key.keyId && k.publicKeyBase64 !== key.publicKeyBase64);
  return {
    action: "replaced",
    key,
    keys: [key, ...rest],
    ...(dropped ? { replacedPublicKey: dropped.publicKeyBase64 } : {}),
  };
}

function applyKey(path: string, plan: KeyPlan): void {
  if (plan.action !== "unchanged") writeKeyFile(path, plan.keys);
}

/** Runs one phase from its cursor to the end, a transaction per batch. */
async function runPhase(ctx: RunContext, phase: Phase, state: PhaseState): Promise<void> {
  const c = state.counters;
  ctx.counts ??= ctx.db.counts(ctx.ownServer, sessionsSince(ctx));
  const counts = ctx.counts;
  const totals: Record<Phase, number> = {
    bindings: counts.globalAssociations,
    ephemeral_keys: counts.ephemeralKeys,
    invites: counts.invites,
    accounts: counts.accounts,
    tokens: counts.tokens,
    accepted_terms: counts.acceptedTerms,
    sessions: counts.sessions,
  };
  ctx.progress.start(phase, totals[phase]);
  ctx.progress.tick(state.rows);
  const flush = async (n: number, cursor: string, write: (w: ImportWriter, tx: Tx) => Promise<void>) => {
    state.rows += n;
    state.cursor = cursor;
    if (ctx.writer) {
      const w = ctx.writer;
      await w.transaction(async (tx) => {
        await write(w, tx);
        interruptIfAsked(ctx);
        await w.saveState(state, ctx.now, tx);
      });
    }
    ctx.batches++;
    ctx.progress.tick(n);
    // SQLite work is synchronous: let timers (the progress bar's redraws) run between batches.
    await new Promise<void>((resolve) => setImmediate(resolve));
  };
  const cursorOf = (fallback: string) => state.cursor || fallback;
  /**
   * A list phase: the rows after the cursor, each mapped to what is written (undefined: skipped, counted by
   * `map`), a transaction per batch with the cursor (the last row read) saved in it. `write` returns how many
   * were already there; the rest count as `counter`.
   */
  const copy = async <R, V extends object>(
    source: Iterable<R>,
    cursorAfter: (row: R) => string,
    map: (row: R) => V | undefined,
    write: (w: ImportWriter, tx: Tx, values: V[]) => Promise<number>,
    counter = "imported",
  ): Promise<void> => {
    let batch: V[] = [];
    let rows = 0;
    let last = "";
    const put = async () => {
      const values = batch;
      await flush(rows, last, async (w, tx) => {
        const skipped = await write(w, tx, values);
        bump(c, "already_present", skipped);
        bump(c, counter, values.length - skipped);
      });
      if (!ctx.writer) bump(c, counter, values.length);
      batch = [];
      rows = 0;
    };
    for (const row of source) {
      rows++;
      last = cursorAfter(row);
      const value = map(row);
      if (value !== undefined) {
        // A NUL (sydent stored what it was sent) cannot be stored on PostgreSQL: skipped and counted.
        if (nulField(value) === undefined) batch.push(value);
        else bump(c, "nul_skipped");
      }
      if (rows >= ctx.batchSize) await put();
    }
    if (rows > 0) await put();
  };

  const fast = phase === "bindings" ? ctx.writer?.fastBindings(ctx.merge) : undefined;
  if (fast) {
    await runFastBindings(ctx, state, fast);
  } else if (phase === "bindings") {
    const after = JSON.parse(cursorOf('["",""]')) as [string, string];
    const rules = { ownServer: ctx.ownServer, importPeers: ctx.importPeers, now: ctx.now };
    let batch = new Map<string, ImportedBinding>();
    let rows = 0;
    let last: [string, string] = after;
    const write = async () => {
      const values = [...batch.values()];
      await flush(rows, JSON.stringify(last), async (w, tx) => {
        const skipped = await w.writeBindings(tx, values, ctx.pepper, ctx.merge);
        bump(c, ctx.merge ? "already_present" : "folded_together", skipped);
        bump(c, "imported", values.length - skipped);
      });
      if (!ctx.writer) bump(c, "imported", values.length);
      batch = new Map();
      rows = 0;
    };
    for (const group of ctx.db.globalGroups(after)) {
      const b = pickBinding(group, rules, c);
      rows += group.length;
      last = [group[0]!.medium, group[0]!.address];
      if (b) {
        const k = `${b.medium}\u0000${b.address}`;
        const prev = batch.get(k);
        if (prev) bump(c, ctx.merge ? "already_present" : "folded_together");
        if (!prev || b.ts > prev.ts) batch.set(k, b);
      }
      if (rows >= ctx.batchSize) await write();
    }
    if (rows > 0 || batch.size > 0) await write();
  } else if (phase === "ephemeral_keys") {
    await copy(
      ctx.db.ephemeralKeys(Number(cursorOf("0"))),
      (row) => String(row.id),
      (row) => {
        const publicKey = normalisePublicKey(row.public_key);
        if (publicKey === null) {
          bump(c, "invalid_skipped");
          return undefined;
        }
        // sydent keeps persistence_ts in seconds.
        return { publicKey, createdTs: row.persistence_ts === null ? ctx.now : row.persistence_ts * 1000 };
      },
      (w, tx, values) => w.writeEphemeralKeys(tx, values),
    );
  } else if (phase === "invites") {
    await copy(
      ctx.db.invites(Number(cursorOf("0"))),
      (row) => String(row.id),
      (row) => mapInvite(row, ctx.now, c),
      async (w, tx, values) => {
        const [skipped, queued] = await w.writeInvites(tx, values, ctx.now);
        bump(c, "queued_for_delivery", queued);
        return skipped;
      },
    );
  } else if (phase === "accounts") {
    await copy(
      ctx.db.accounts(cursorOf("")),
      (row) => row.user_id,
      (row) => {
        if (row.consent_version !== null) bump(c, "with_consent_version");
        return {
          userId: row.user_id,
          createdTs: row.created_ts,
          consentVersion: row.consent_version === null ? null : String(row.consent_version),
        };
      },
      (w, tx, values) => w.writeAccounts(tx, values),
    );
  } else if (phase === "tokens") {
    await copy(
      ctx.db.tokens(cursorOf("")),
      (row) => row.token,
      (row) => {
        if (row.created_ts === null) bump(c, "without_account_row");
        return { token: row.token, userId: row.user_id, createdTs: row.created_ts ?? ctx.now };
      },
      (w, tx, values) => w.writeTokens(tx, values),
      "imported_as_hashes",
    );
  } else if (phase === "accepted_terms") {
    await copy(
      ctx.db.acceptedTerms(JSON.parse(cursorOf('["",""]')) as [string, string]),
      (row) => JSON.stringify([row.user_id, row.url]),
      // sydent does not record when; the account's creation is the best date known.
      (row) => ({ userId: row.user_id, url: row.url, acceptedTs: row.created_ts ?? ctx.now }),
      (w, tx, values) => w.writeAcceptedTerms(tx, values),
    );
  } else {
    await copy(
      ctx.db.sessions(Number(cursorOf("-1")), sessionsSince(ctx)),
      (row) => String(row.id),
      (row) => mapSession(row, c),
      (w, tx, values) => w.writeSessions(tx, values),
    );
  }
  state.done = true;
  if (ctx.writer) await ctx.writer.saveState(state, ctx.now);
  ctx.progress.stop();
}

/**
 * The bindings of a fresh import into SQLite (`SqliteBindingWriter`): each batch's rows go into the batch's
 * transaction as they are read, a statement's worth at a time (nothing is held per batch, so hardly anything
 * outlives V8's young generation); then one transaction hashes them all, builds the indexes and marks the phase
 * done. Two sydent spellings of one address: the newer binding wins in the database, and `imported` and
 * `folded_together` are set from what the table holds at the end (exact, whatever the batch size).
 */
async function runFastBindings(ctx: RunContext, state: PhaseState, fast: SqliteBindingWriter): Promise<void> {
  const c = state.counters;
  const w = ctx.writer!;
  const rules = { ownServer: ctx.ownServer, importPeers: ctx.importPeers, now: ctx.now };
  const indexes = await w.dropIndexesOnce(fast, ctx.now);
  const groups = ctx.db.globalGroups(JSON.parse(state.cursor || '["",""]') as [string, string]);
  const buffer: ImportedBinding[] = [];
  let finished = false;
  try {
    while (!finished) {
      let rows = 0;
      await w.transaction(async (tx) => {
        let written = 0;
        let skipped = 0;
        let last: SydentGlobalRow | undefined;
        const write = () => {
          const n = fast.write(buffer);
          skipped += n;
          written += buffer.length - n;
          buffer.length = 0;
        };
        while (rows < ctx.batchSize) {
          const next = groups.next();
          if (next.done) {
            finished = true;
            break;
          }
          const group = next.value;
          rows += group.length;
          last = group[0]!;
          const b = pickBinding(group, rules, c);
          if (b && buffer.push(b) === fast.rowsPerStatement) write();
        }
        if (buffer.length) write();
        interruptIfAsked(ctx);
        bump(c, "imported", written);
        bump(c, "folded_together", skipped);
        state.rows += rows;
        if (last) state.cursor = JSON.stringify([last.medium, last.address]);
        if (rows > 0) await w.saveState(state, ctx.now, tx);
      });
      ctx.batches++;
      ctx.progress.tick(rows);
      // Let timers (the progress bar's redraws) run between batches.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } finally {
    groups.return(undefined);
  }
  ctx.progress.stop();
  ctx.progress.start("binding hashes", c.imported ?? 0);
  // One transaction: the hashes, the indexes, the exact counts, and the phase marked done.
  const hashed = await fast.withoutForeignKeys(() =>
    w.transaction(async (tx) => {
      const n = fast.buildHashes(ctx.pepper, indexes);
      const stored = fast.count();
      const total = (c.imported ?? 0) + (c.folded_together ?? 0);
      c.imported = stored;
      c.folded_together = total - stored;
      state.done = true;
      await w.saveState(state, ctx.now, tx);
      await w.saveState(
        {
          phase: "_indexes",
          cursor: JSON.stringify(indexes),
          rows: indexes.length,
          done: true,
          counters: {},
        },
        ctx.now,
        tx,
      );
      return n;
    }),
  );
  ctx.progress.tick(hashed);
}

/** Tests: stops the import inside a batch's transaction, after its writes, as a kill mid-import would. */
function interruptIfAsked(ctx: RunContext): void {
  const after = ctx.opts.interruptAfterBatches;
  if (after === undefined || ctx.batches < after) return;
  // The uncommitted batch stays on disk (a hot journal, or uncommitted WAL frames) for the next open.
  if (ctx.opts.interruptBy === "kill") process.kill(process.pid, "SIGKILL");
  throw new ImportInterrupted(`interrupted after ${ctx.batches} batches`);
}

/** Sessions younger than Seraph's session lifetime are worth importing (older ones have expired). */
function sessionsSince(ctx: RunContext): number {
  return ctx.now - ctx.opts.config.validation.session_lifetime_seconds * 1000;
}
