import type { Config } from "../config/schema.js";
import { MatrixError } from "../core/errors.js";
import { randomToken } from "../crypto/hash.js";
import type { AssociationRow, PepperRecord } from "../store/peppers.js";
import { type Repositories, type Transact, writingHashes } from "../store/repositories.js";
import { lookupHash, normaliseAddress } from "../threepid/normalise.js";
import { HashIndex, type HashIndexEvents } from "./hash-index.js";
import type { JsonMembers } from "./hash-table.js";

/** The hash algorithms `hash_details` offers. */
export type LookupAlgorithm = "sha256" | "none";

export interface LookupSettings {
  maxAddresses: number;
  /** How long a replaced pepper is still accepted. */
  previousPepperGraceMs: number;
  /** Automatic rotation interval; 0 = only when an operator asks. */
  rotationIntervalMs: number;
  rehashBatchSize: number;
  /**
   * How long a new pepper waits before it can become current: longer than any bind transaction, so that a
   * bind that did not see the pending pepper has committed and can be hashed before the switch.
   */
  rotationSettleMs: number;
  /** Hold the current pepper's hashes in memory (`lookup.hash_index: memory`). */
  memoryIndex: boolean;
}

const PEPPER_CACHE_MS = 5_000;
const MIN_RELOAD_MS = 1_000;
/**
 * How long the change log of `association_hashes` is kept: a process whose in-memory index has not asked for
 * longer than this (no lookups) reads the whole index again on its next lookup.
 */
const CHANGE_LOG_RETENTION_MS = 10 * 60_000;

interface PepperView {
  current: PepperRecord;
  accepted: Map<string, PepperRecord>;
  pending: PepperRecord | undefined;
  retired: PepperRecord[];
  loadedAt: number;
}

/**
 * What a v2 lookup found: each string sent that is bound, once, with its mxid (`hash` is the string as
 * sent: a hash, or `address medium` for the algorithm `none`). An array, not an object: an object with
 * a thousand new keys cost ~450 µs to build, more than the lookup itself. From the in-memory index it
 * comes already written as the members of the JSON object (`"hash":"mxid",…`): no string per hash.
 */
export type Mappings = ReadonlyArray<{ readonly hash: string; readonly mxid: string }> | JsonMembers;

/** Hashed and plain lookups, and the pepper they use (rotation with a grace period, rehashing in batches). */
export class LookupService {
  private view: PepperView | undefined;
  private loading: Promise<PepperView> | undefined;
  private readonly index: HashIndex | undefined;
  /** The table's version at each maintenance step (what the change log is pruned by). */
  private readonly versions: Array<{ ts: number; version: number }> = [];

  constructor(
    private readonly settings: LookupSettings,
    private readonly repos: Pick<Repositories, "peppers" | "associations" | "hashes">,
    private readonly transact: Transact,
    private readonly now: () => number = Date.now,
    /** Where lookups read (a read replica when configured; writes always go through `repos`). */
    private readonly reads: Pick<Repositories, "associations" | "hashes"> = repos,
    indexEvents?: HashIndexEvents,
  ) {
    this.index = settings.memoryIndex ? new HashIndex(reads.hashes, indexEvents, now) : undefined;
  }

  /** Creates the first pepper when there is none (safe to call from several instances). */
  async init(): Promise<void> {
    await this.repos.peppers.insertIfAbsent(randomToken(32), "current", this.now());
    const view = await this.reload();
    this.index?.prepare(view.current.id);
  }

  private async reload(): Promise<PepperView> {
    this.loading ??= (async () => {
      try {
        const now = this.now();
        const live = await this.repos.peppers.live();
        const current = live.find((p) => p.state === "current");
        if (!current) throw new Error("no current lookup pepper");
        const accepted = new Map<string, PepperRecord>([[current.pepper, current]]);
        const retired: PepperRecord[] = [];
        for (const p of live) {
          if (p.state !== "previous") continue;
          if ((p.retiredTs ?? 0) + this.settings.previousPepperGraceMs > now) accepted.set(p.pepper, p);
          else retired.push(p);
        }
        this.view = {
          current,
          accepted,
          pending: live.find((p) => p.state === "pending"),
          retired,
          loadedAt: now,
        };
        return this.view;
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }

  private async pepperView(): Promise<PepperView> {
    const v = this.view;
    if (v && this.now() - v.loadedAt < PEPPER_CACHE_MS) return v;
    return this.reload();
  }

  /** `GET /hash_details`. */
  async hashDetails(): Promise<{ lookup_pepper: string; algorithms: string[] }> {
    return { lookup_pepper: (await this.pepperView()).current.pepper, algorithms: ["none", "sha256"] };
  }

  /** Resolves a pepper given by a client: the current one, or a previous one in its grace period. */
  private async acceptedPepper(pepper: string): Promise<PepperRecord | undefined> {
    let v = await this.pepperView();
    const hit = v.accepted.get(pepper);
    if (
      hit &&
      (hit.state === "current" || (hit.retiredTs ?? 0) + this.settings.previousPepperGraceMs > this.now())
    ) {
      return hit;
    }
    // Another instance may have rotated a moment ago.
    if (this.now() - v.loadedAt >= MIN_RELOAD_MS) v = await this.reload();
    return v.accepted.get(pepper);
  }

  /** `POST /lookup`: the strings sent that are bound, each once, with their mxid. */
  async lookup(addresses: readonly string[], algorithm: LookupAlgorithm, pepper: string): Promise<Mappings> {
    if (addresses.length > this.settings.maxAddresses) {
      throw new MatrixError("M_TOO_LARGE", `At most ${this.settings.maxAddresses} addresses per request`, {
        status: 400,
      });
    }
    const used = await this.acceptedPepper(pepper);
    if (!used) {
      const current = (await this.pepperView()).current.pepper;
      throw new MatrixError("M_INVALID_PEPPER", "Unknown or expired pepper", {
        extra: { algorithm, lookup_pepper: current },
      });
    }
    if (algorithm === "sha256") {
      // Each hash once: the table answers a repeated hash once, the database matches each row once.
      const indexed = used.state === "current" ? await this.index?.lookupJson(used.id, addresses) : undefined;
      return indexed ?? (await this.reads.hashes.lookup(used.id, addresses));
    }
    // "none": each entry is "<address> <medium>".
    const byPair = new Map<string, string[]>();
    const pairs: Array<[string, string]> = [];
    for (const entry of addresses) {
      const space = entry.lastIndexOf(" ");
      if (space <= 0) continue;
      const medium = entry.slice(space + 1);
      const address = normaliseAddress(medium, entry.slice(0, space));
      const key = `${medium}\u0000${address}`;
      const list = byPair.get(key);
      if (list) {
        if (!list.includes(entry)) list.push(entry);
      } else {
        byPair.set(key, [entry]);
        pairs.push([medium, address]);
      }
    }
    const mappings: Array<{ hash: string; mxid: string }> = [];
    for (const r of await this.reads.associations.lookupThreepids(pairs)) {
      for (const entry of byPair.get(`${r.medium}\u0000${r.address}`) ?? [])
        mappings.push({ hash: entry, mxid: r.mxid });
    }
    return mappings;
  }

  /** v1 `bulk_lookup`: `[[medium, address, mxid], ...]` for the pairs that are bound. */
  async bulkLookup(
    threepids: ReadonlyArray<readonly [string, string]>,
  ): Promise<Array<[string, string, string]>> {
    if (threepids.length > this.settings.maxAddresses) {
      throw new MatrixError("M_TOO_LARGE", `At most ${this.settings.maxAddresses} threepids per request`, {
        status: 400,
      });
    }
    const wanted = new Map<string, Array<[string, string]>>();
    const pairs: Array<[string, string]> = [];
    for (const [medium, address] of threepids) {
      const key = `${medium}\u0000${normaliseAddress(medium, address)}`;
      const list = wanted.get(key);
      if (list) list.push([medium, address]);
      else {
        wanted.set(key, [[medium, address]]);
        pairs.push([medium, normaliseAddress(medium, address)]);
      }
    }
    const out: Array<[string, string, string]> = [];
    for (const r of await this.reads.associations.lookupThreepids(pairs)) {
      for (const [medium, address] of wanted.get(`${r.medium}\u0000${r.address}`) ?? [])
        out.push([medium, address, r.mxid]);
    }
    return out;
  }

  /** Starts a rotation: a new pending pepper that becomes current once every association is hashed with it. */
  async rotate(): Promise<void> {
    await this.repos.peppers.insertIfAbsent(randomToken(32), "pending", this.now());
    await this.reload();
  }

  /**
   * One step of background pepper work: hash the next batch of associations (in id order, from the pending
   * pepper's cursor) under the pending pepper; once all are hashed and the pepper is older than the settle
   * time, hash the associations bound since it was created (a bind whose transaction began before the pending
   * pepper existed may have been skipped) and make it current. Also rotates when due and drops the hashes of
   * peppers past their grace period. Returns the rows touched (0 = nothing to do). Safe on several instances:
   * hashing is idempotent and the switch is guarded.
   */
  async maintain(): Promise<number> {
    const v = await this.reload();
    const now = this.now();
    const batch = this.settings.rehashBatchSize;
    const hashes = (p: PepperRecord, rows: ReadonlyArray<AssociationRow>) =>
      rows.map((r) => ({
        pepperId: p.id,
        associationId: r.id,
        hash: lookupHash(r.address, r.medium, p.pepper),
      }));
    let touched = 0;
    const pending = v.pending;
    if (pending) {
      const rows = await this.repos.peppers.associationsAfter(pending.rehashCursor, batch);
      if (rows.length) {
        const cursor = rows[rows.length - 1]!.id;
        await writingHashes(this.transact)(async (r) => {
          await r.hashes.insert(hashes(pending, rows));
          await r.peppers.advanceCursor(pending.id, cursor);
        });
      }
      touched += rows.length;
      if (rows.length < batch && pending.createdTs + this.settings.rotationSettleMs <= now) {
        const recent = await this.repos.peppers.associationsSince(
          pending.createdTs - this.settings.rotationSettleMs,
        );
        await writingHashes(this.transact)((r) => r.hashes.insert(hashes(pending, recent)));
        // Under the version lock: a write to the pending pepper (not logged) is then either committed
        // before the switch or logged after it. A table of the new pepper read from a replica that was
        // behind the switch is read again once the replica logs it.
        const activated = await writingHashes(this.transact)(async (r) => {
          if (!(await r.peppers.activate(pending.id, now))) return false;
          await r.hashes.logReread(pending.id);
          return true;
        });
        if (activated) await this.reload();
      }
    } else if (
      this.settings.rotationIntervalMs > 0 &&
      (v.current.activatedTs ?? v.current.createdTs) + this.settings.rotationIntervalMs <= now
    ) {
      await this.rotate();
      touched += 1;
    }
    for (const r of v.retired) {
      const dropped = await writingHashes(this.transact)((t) => t.hashes.deleteForPepper(r.id, batch));
      if (dropped < batch) await this.repos.peppers.deleteRetired(r.id);
      touched += dropped;
    }
    await this.pruneChangeLog(now);
    return touched;
  }

  /** Forgets the hash changes older than the retention (by the versions this instance saw at its steps). */
  private async pruneChangeLog(now: number): Promise<void> {
    this.versions.push({ ts: now, version: await this.repos.hashes.version() });
    let upTo: number | undefined;
    while (this.versions.length > 1 && this.versions[0]!.ts + CHANGE_LOG_RETENTION_MS <= now) {
      upTo = this.versions.shift()!.version;
    }
    if (upTo !== undefined) await this.repos.hashes.pruneChanges(upTo);
  }
}

/** Builds the lookup service from `lookup.*` and loads (or creates) the peppers. */
export async function createLookupService(
  config: Config["lookup"],
  deps: {
    repos: Repositories;
    transact: Transact;
    now: () => number;
    reads?: Repositories;
    /** What the in-memory index reports (read, or a read failed: lookups go to the database meanwhile). */
    indexEvents?: HashIndexEvents;
  },
): Promise<LookupService> {
  const service = new LookupService(
    {
      maxAddresses: config.max_addresses,
      previousPepperGraceMs: config.previous_pepper_grace_seconds * 1000,
      rotationIntervalMs: config.pepper_rotation_days * 86_400_000,
      rehashBatchSize: config.rehash_batch_size,
      rotationSettleMs: config.rotation_settle_seconds * 1000,
      memoryIndex: config.hash_index === "memory",
    },
    deps.repos,
    deps.transact,
    deps.now,
    deps.reads,
    deps.indexEvents,
  );
  await service.init();
  return service;
}
