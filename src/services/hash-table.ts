/**
 * An exact in-memory map from lookup hash to mxid, compact enough for millions of entries: a sha256 lookup
 * hash (43 unpadded base64url characters) is held as nine 30-bit words in one Int32Array instead of a
 * JavaScript string key, its mxid as UTF-8 in one shared buffer, and it is found by open addressing with
 * linear probing: about 80 bytes per hash instead of about 200 for a `Map` of strings. A hash of any other
 * form (never written by Seraph, but possible in an imported database) goes into a small `Map`.
 *
 *   const t = new HashTable();
 *   t.set("n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg", "@alice:example.org");
 *   t.get("n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg"); // "@alice:example.org"
 */
export class HashTable {
  /** Room for this many entries in the per-entry arrays. */
  private capacity: number;
  /**
   * Entry i's row, words [i * ROW, (i + 1) * ROW): its key (WORDS words), then where its mxid starts in
   * `bytes` (FREE for a free entry) and its length in bytes. One row, so that a hit touches one place in
   * memory besides its slot and its mxid (at a million entries each is a cache and TLB miss).
   */
  private rows: Int32Array;
  private bytes: Buffer;
  private bytesUsed = 0;
  /** Bytes of `bytes` no entry points to any more (replaced or deleted mxids). */
  private bytesFreed = 0;
  /** Entry index + 1; EMPTY or DELETED. Its length is a power of two. */
  private slots: Int32Array;
  private readonly freeEntries: number[] = [];
  private entries = 0;
  private live = 0;
  private deleted = 0;
  /** Hashes that are not 43 base64url characters, and mxids longer than MAX_MXID_BYTES. */
  private readonly odd = new Map<string, string>();
  private readonly scratch = new Int32Array(WORDS);
  private readonly batch = {
    keys: new Int32Array(GROUP * WORDS),
    first: new Int32Array(GROUP),
    found: new Int32Array(GROUP),
  };
  /** The sum of what `getMany` touched ahead, kept so that those loads cannot be optimised away. */
  touchedSum = 0;

  /**
   * `expected`: how many hashes it will hold, if known: everything is allocated once at that size
   * (growing by copies leaves freed blocks that the allocator may not give back to the system).
   */
  constructor(expected = 0) {
    this.capacity = Math.max(1024, expected + (expected >> 4));
    this.rows = new Int32Array(this.capacity * ROW);
    this.bytes = Buffer.allocUnsafe(Math.max(64 * 1024, expected * MXID_BYTES_GUESS));
    let slots = 2048;
    while (slots < (expected + 1) * 2) slots *= 2;
    this.slots = new Int32Array(slots);
  }

  /** Number of hashes held. */
  get size(): number {
    return this.live + this.odd.size;
  }

  get(hash: string): string | undefined {
    return this.getMany([hash])[0]?.mxid;
  }

  /**
   * The mxids of those of `hashes` that are held, in their order. Each group of hashes is looked up in
   * phases (all keys, then all their slots, then all their rows, then all their mxids) instead of one hash
   * after the other: at a million entries every step is a cache and TLB miss, and loads that do not depend
   * on each other are waited for together.
   */
  getMany(hashes: readonly string[]): Array<{ hash: string; mxid: string }> {
    const out: Array<{ hash: string; mxid: string }> = [];
    const { keys, first, found } = this.batch;
    const slots = this.slots;
    const rows = this.rows;
    const mask = slots.length - 1;
    for (let from = 0; from < hashes.length; from += GROUP) {
      const n = Math.min(GROUP, hashes.length - from);
      let touched = 0;
      for (let i = 0; i < n; i++) {
        first[i] = encode(hashes[from + i]!, keys, i * WORDS) ? start(keys, i * WORDS, mask) : -1;
      }
      for (let i = 0; i < n; i++) if (first[i]! >= 0) touched += slots[first[i]!]!;
      for (let i = 0; i < n; i++) {
        const v = first[i]! >= 0 ? slots[first[i]!]! : 0;
        if (v > 0) touched += rows[(v - 1) * ROW]!;
      }
      for (let i = 0; i < n; i++) {
        const slot = first[i]! >= 0 ? this.find(keys, i * WORDS) : -1;
        found[i] = slot < 0 ? -1 : (slots[slot]! - 1) * ROW;
        if (found[i]! >= 0) touched += this.bytes[rows[found[i]! + AT]!]!;
      }
      this.touchedSum = touched;
      for (let i = 0; i < n; i++) {
        const hash = hashes[from + i]!;
        const row = found[i]!;
        if (row >= 0) {
          const at = rows[row + AT]!;
          out.push({ hash, mxid: this.bytes.toString("utf8", at, at + rows[row + LENGTH]!) });
        } else if (this.odd.size > 0) {
          const mxid = this.odd.get(hash);
          if (mxid !== undefined) out.push({ hash, mxid });
        }
      }
    }
    return out;
  }

  set(hash: string, mxid: string): void {
    const regular = encode(hash, this.scratch);
    if (!regular || (mxid.length > MAX_MXID_BYTES / 3 && Buffer.byteLength(mxid) > MAX_MXID_BYTES)) {
      if (regular) this.remove();
      this.odd.set(hash, mxid);
      return;
    }
    if (this.odd.size > 0) this.odd.delete(hash);
    const found = this.find(this.scratch);
    if (found >= 0) {
      const entry = this.slots[found]! - 1;
      this.bytesFreed += this.rows[entry * ROW + LENGTH]!;
      // Its old bytes are garbage now: a repack made room for the new ones must not keep them.
      this.rows[entry * ROW + AT] = FREE;
      this.storeMxid(entry, mxid);
      return;
    }
    if ((this.live + this.deleted + 1) * 2 > this.slots.length) this.resize();
    const entry = this.freeEntries.pop() ?? this.newEntry();
    this.rows.set(this.scratch, entry * ROW);
    this.storeMxid(entry, mxid);
    this.insertSlot(entry);
    this.live++;
  }

  delete(hash: string): void {
    if (this.odd.size > 0) this.odd.delete(hash);
    if (encode(hash, this.scratch)) this.remove();
  }

  /** Removes the entry whose key is in `scratch`, if any. */
  private remove(): void {
    const slot = this.find(this.scratch);
    if (slot < 0) return;
    const entry = this.slots[slot]! - 1;
    this.slots[slot] = DELETED;
    this.bytesFreed += this.rows[entry * ROW + LENGTH]!;
    this.rows[entry * ROW + AT] = FREE;
    this.freeEntries.push(entry);
    this.live--;
    this.deleted++;
  }

  private newEntry(): number {
    if (this.entries === this.capacity) {
      const capacity = Math.ceil(this.capacity * 1.5);
      const rows = new Int32Array(capacity * ROW);
      rows.set(this.rows);
      this.rows = rows;
      this.capacity = capacity;
    }
    return this.entries++;
  }

  private storeMxid(entry: number, mxid: string): void {
    if (this.bytesUsed + mxid.length * 3 > this.bytes.length) this.makeRoom(mxid.length * 3);
    const n = this.bytes.write(mxid, this.bytesUsed, "utf8");
    this.rows[entry * ROW + AT] = this.bytesUsed;
    this.rows[entry * ROW + LENGTH] = n;
    this.bytesUsed += n;
  }

  /** Drops the freed bytes when they are most of the buffer, else grows it by half. */
  private makeRoom(need: number): void {
    const liveBytes = this.bytesUsed - this.bytesFreed;
    const grown = liveBytes * 2 <= this.bytes.length ? this.bytes.length : Math.ceil(this.bytes.length * 1.5);
    this.repack(Math.max(grown, liveBytes + need * 2));
  }

  /** Copies the live mxids into a new buffer of `size` bytes (at least what they need). */
  private repack(size: number): void {
    const bytes = Buffer.allocUnsafe(Math.max(size, 1024));
    let used = 0;
    const rows = this.rows;
    for (let r = 0; r < this.entries * ROW; r += ROW) {
      const at = rows[r + AT]!;
      if (at === FREE) continue;
      const n = rows[r + LENGTH]!;
      this.bytes.copy(bytes, used, at, at + n);
      rows[r + AT] = used;
      used += n;
    }
    this.bytes = bytes;
    this.bytesUsed = used;
    this.bytesFreed = 0;
  }

  /** Gives back the room kept for growth when it is more than an eighth (once a table is built). */
  trim(): void {
    const capacity = Math.max(1024, this.entries + (this.entries >> 4));
    if (capacity + (capacity >> 4) < this.capacity) {
      this.rows = this.rows.slice(0, capacity * ROW);
      this.capacity = capacity;
    }
    const liveBytes = this.bytesUsed - this.bytesFreed;
    if (liveBytes + (liveBytes >> 3) + 1024 < this.bytes.length) this.repack(liveBytes + (liveBytes >> 4));
  }

  /** The slot holding `key`, or -1. */
  private find(key: Int32Array, at = 0): number {
    const slots = this.slots;
    const mask = slots.length - 1;
    const rows = this.rows;
    for (let s = start(key, at, mask); ; s = (s + 1) & mask) {
      const v = slots[s]!;
      if (v === EMPTY) return -1;
      if (v === DELETED) continue;
      const base = (v - 1) * ROW;
      let i = 0;
      while (i < WORDS && rows[base + i] === key[at + i]) i++;
      if (i === WORDS) return s;
    }
  }

  private insertSlot(entry: number): void {
    const slots = this.slots;
    const mask = slots.length - 1;
    let s = start(this.rows, entry * ROW, mask);
    while (slots[s]! > 0) s = (s + 1) & mask;
    if (slots[s] === DELETED) this.deleted--;
    slots[s] = entry + 1;
  }

  /** Rebuilds the slots: twice as many when more than a quarter are live, else as many (dropping tombstones). */
  private resize(): void {
    const size = (this.live + 1) * 4 > this.slots.length ? this.slots.length * 2 : this.slots.length;
    this.slots = new Int32Array(size);
    this.deleted = 0;
    for (let e = 0; e < this.entries; e++) if (this.rows[e * ROW + AT] !== FREE) this.insertSlot(e);
  }
}

/** 43 characters, five per word and three in the last. */
const WORDS = 9;
/** Bytes per mxid allocated ahead for an expected number of hashes (`@localpart:server.name`). */
const MXID_BYTES_GUESS = 24;
/** Hashes looked up together by `getMany`. */
const GROUP = 64;
/** A row: the key's words, the mxid's offset and its length. */
const ROW = WORDS + 2;
const AT = WORDS;
const LENGTH = WORDS + 1;
const HASH_LENGTH = 43;
const EMPTY = 0;
const DELETED = -1;
const FREE = -1;
/** Longer mxids (the Matrix limit is 255 bytes) go to the `odd` map. */
const MAX_MXID_BYTES = 65_535;

/** The 6-bit value of each base64url character by char code; -1 for any other. */
const SEXTET = new Int8Array(128).fill(-1);
for (const [i, c] of [..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"].entries()) {
  SEXTET[c.charCodeAt(0)] = i;
}

/** Writes the words of a 43-character base64url string into `out`; false for any other string. */
function encode(hash: string, out: Int32Array, at = 0): boolean {
  if (hash.length !== HASH_LENGTH) return false;
  let i = 0;
  for (let w = 0; w < WORDS; w++) {
    const end = Math.min(i + 5, HASH_LENGTH);
    let word = 0;
    for (; i < end; i++) {
      const code = hash.charCodeAt(i);
      const v = code < 128 ? SEXTET[code]! : -1;
      if (v < 0) return false;
      word = (word << 6) | v;
    }
    out[at + w] = word;
  }
  return true;
}

/** The first slot to probe: the first two words mixed (the words of a sha256 hash are already uniform). */
function start(words: Int32Array, at: number, mask: number): number {
  return (words[at]! ^ Math.imul(words[at + 1]!, 0x9e3779b1)) & mask;
}
