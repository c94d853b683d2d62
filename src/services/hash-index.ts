import type { HashRepository } from "../store/association-hashes.js";
import { HashTable, type JsonMembers } from "./hash-table.js";

/** Hashes read per statement while the index is built (the event loop runs between two). */
const SCAN_PAGE = 10_000;
/** How long a failed build waits before the next lookup tries again. */
const RETRY_MS = 5_000;

/** What the index reads: the lookup's own reads (a replica when configured). */
export type HashIndexReads = Pick<HashRepository, "changesSince" | "count" | "scan" | "version">;

/** What the index reports (logged by the caller). */
export interface HashIndexEvents {
  /** The hashes were read: how many, in how many milliseconds. */
  ready(hashes: number, ms: number): void;
  /** A read failed while the index was built (lookups go to the database; it is tried again later). */
  failed(err: Error): void;
}

const SILENT: HashIndexEvents = { ready: () => {}, failed: () => {} };

/**
 * The current pepper's lookup hashes held in memory (`lookup.hash_index: memory`), exact across workers and
 * instances: before it answers a lookup it reads the change log of `association_hashes` above the version it
 * holds (one statement; written by the table's triggers, so every writer is covered) and applies it. A
 * 100-hash lookup is then one small read and 100 probes of a hash table instead of 100 index searches of a
 * B-tree that no longer fits the CPU caches at a million associations. It is built on first use, a page at a
 * time; until it is ready, and when the log was pruned past what it holds, lookups are answered by the
 * database as before.
 *
 *   const index = new HashIndex(repos.hashes);
 *   const rows = (await index.lookup(pepperId, hashes)) ?? (await repos.hashes.lookup(pepperId, hashes));
 */
export class HashIndex {
  private table: HashTable | undefined;
  private pepperId = -1;
  /** The version of `association_hashes` that `table` reflects. */
  private applied = 0;
  /** Raised to abandon a build or a sync under way (a new pepper, a rebuild). */
  private generation = 0;
  private building = false;
  private retryAt = 0;
  private syncing: Promise<boolean> | undefined;
  private nextSync: Promise<boolean> | undefined;

  constructor(
    private readonly reads: HashIndexReads,
    private readonly events: HashIndexEvents = SILENT,
    private readonly now: () => number = Date.now,
  ) {}

  /** Hashes held (0 while not built). */
  get size(): number {
    return this.table?.size ?? 0;
  }

  /**
   * The bound ones among `hashes` under `pepperId`, as of a moment after this call began; undefined when the
   * index cannot answer yet (the caller asks the database).
   */
  async lookup(
    pepperId: number,
    hashes: readonly string[],
  ): Promise<Array<{ hash: string; mxid: string }> | undefined> {
    return (await this.ready(pepperId))?.getMany(hashes);
  }

  /** The same as `lookup`, written as the members of a JSON object (see `HashTable.getManyJson`). */
  async lookupJson(pepperId: number, hashes: readonly string[]): Promise<JsonMembers | undefined> {
    return (await this.ready(pepperId))?.getManyJson(hashes);
  }

  /** The table of `pepperId`, brought up to the database's version; undefined when it cannot answer yet. */
  private async ready(pepperId: number): Promise<HashTable | undefined> {
    if (this.prepare(pepperId)) return undefined;
    // A failed read of the log (the database is down) leaves the answer to the database's own lookup,
    // which fails or fails over as any read does.
    if (!(await this.sync().catch(() => false))) return undefined;
    // A rebuild or another pepper may have started while the log was read.
    const table = this.table;
    if (table === undefined || this.pepperId !== pepperId) return undefined;
    return table;
  }

  /**
   * Starts reading `pepperId`'s hashes in the background unless they are held or being read (at start-up,
   * so that the first lookups find them); true when they are not ready yet.
   */
  prepare(pepperId: number): boolean {
    if (pepperId === this.pepperId && (this.table !== undefined || this.building))
      return this.table === undefined;
    this.build(pepperId);
    return true;
  }

  /** Starts reading every hash of `pepperId` (in the background), dropping what is held. */
  private build(pepperId: number): void {
    if (pepperId === this.pepperId && this.now() < this.retryAt) return;
    const generation = ++this.generation;
    this.pepperId = pepperId;
    this.table = undefined;
    this.building = true;
    this.retryAt = 0;
    const started = this.now();
    void (async () => {
      try {
        // The oldest version the table and any of its pages was read at (with replicas, pages may come from
        // different servers): the next sync applies the changes above it, made while the pages were read.
        let version = await this.reads.version();
        const count = await this.reads.count(pepperId);
        // The first page sizes the arena: an even sample of the mxids on PostgreSQL (pages in hash order),
        // the oldest rows on SQLite (in rowid order). A poor sample costs one copy of the arena, no more.
        let page = await this.reads.scan(pepperId, undefined, SCAN_PAGE);
        if (generation !== this.generation) return;
        const table = new HashTable(
          count,
          page.rows.map((r) => r.mxid),
        );
        for (;;) {
          if (generation !== this.generation) return;
          if (page.version < version) version = page.version;
          for (const r of page.rows) table.set(r.hash, r.mxid);
          if (page.next === undefined) break;
          await new Promise<void>((resolve) => setImmediate(resolve));
          page = await this.reads.scan(pepperId, page.next, SCAN_PAGE);
        }
        if (generation !== this.generation) return;
        table.trim();
        this.table = table;
        this.applied = version;
        this.events.ready(table.size, this.now() - started);
      } catch (err) {
        if (generation === this.generation) this.retryAt = this.now() + RETRY_MS;
        this.events.failed(err instanceof Error ? err : new Error(String(err)));
      } finally {
        if (generation === this.generation) this.building = false;
      }
    })();
  }

  /**
   * Brings the table up to the database's version: resolves true when it is (false: it is being rebuilt). A
   * call made while a sync is under way waits for the next one, which starts after it: its answer then
   * includes every change committed before the call.
   */
  private sync(): Promise<boolean> {
    if (this.syncing === undefined) {
      this.syncing = this.syncOnce().finally(() => {
        this.syncing = undefined;
      });
      return this.syncing;
    }
    this.nextSync ??= this.syncing.then(
      () => this.startNext(),
      () => this.startNext(),
    );
    return this.nextSync;
  }

  private startNext(): Promise<boolean> {
    this.nextSync = undefined;
    return this.sync();
  }

  private async syncOnce(): Promise<boolean> {
    const generation = this.generation;
    const pepperId = this.pepperId;
    const applied = this.applied;
    const c = await this.reads.changesSince(pepperId, applied);
    const table = this.table;
    // A build finished meanwhile (another base): this answer goes to the database, the next sync applies.
    if (generation !== this.generation || table === undefined || applied !== this.applied) return false;
    // Nothing newer (a replica behind another one may even show an older version: nothing to apply).
    if (c.version <= applied) return true;
    if (c.lowest !== applied + 1 || c.tooMany || c.changes.some((ch) => ch.hash === null)) {
      // The log was pruned past our version, or too much changed to apply row by row.
      this.build(pepperId);
      return false;
    }
    for (const ch of c.changes) {
      if (ch.hash === null) continue;
      if (ch.mxid === null) table.delete(ch.hash);
      else table.set(ch.hash, ch.mxid);
    }
    this.applied = c.version;
    return true;
  }
}
