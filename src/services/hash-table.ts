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
  private capacity = 1024;
  /** Entry i's key: words [i * WORDS, (i + 1) * WORDS). */
  private keys = new Int32Array(WORDS * 1024);
  /** Where entry i's mxid starts in `bytes` (UTF-8); FREE for a free entry. */
  private mxidAt = new Int32Array(1024);
  private mxidLength = new Uint16Array(1024);
  private bytes = Buffer.allocUnsafe(64 * 1024);
  private bytesUsed = 0;
  /** Bytes of `bytes` no entry points to any more (replaced or deleted mxids). */
  private bytesFreed = 0;
  /** Entry index + 1; EMPTY or DELETED. Its length is a power of two. */
  private slots = new Int32Array(2048);
  private readonly freeEntries: number[] = [];
  private entries = 0;
  private live = 0;
  private deleted = 0;
  /** Hashes that are not 43 base64url characters, and mxids too long for `mxidLength`. */
  private readonly odd = new Map<string, string>();
  private readonly scratch = new Int32Array(WORDS);

  /** Number of hashes held. */
  get size(): number {
    return this.live + this.odd.size;
  }

  get(hash: string): string | undefined {
    if (!encode(hash, this.scratch)) return this.odd.get(hash);
    const slot = this.find(this.scratch);
    if (slot < 0) return this.odd.size === 0 ? undefined : this.odd.get(hash);
    const entry = this.slots[slot]! - 1;
    const at = this.mxidAt[entry]!;
    return this.bytes.toString("utf8", at, at + this.mxidLength[entry]!);
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
      this.bytesFreed += this.mxidLength[entry]!;
      this.storeMxid(entry, mxid);
      return;
    }
    if ((this.live + this.deleted + 1) * 2 > this.slots.length) this.resize();
    const entry = this.freeEntries.pop() ?? this.newEntry();
    this.keys.set(this.scratch, entry * WORDS);
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
    this.bytesFreed += this.mxidLength[entry]!;
    this.mxidAt[entry] = FREE;
    this.freeEntries.push(entry);
    this.live--;
    this.deleted++;
  }

  private newEntry(): number {
    if (this.entries === this.capacity) {
      const capacity = Math.ceil(this.capacity * 1.5);
      const keys = new Int32Array(capacity * WORDS);
      keys.set(this.keys);
      this.keys = keys;
      const at = new Int32Array(capacity);
      at.set(this.mxidAt);
      this.mxidAt = at;
      const length = new Uint16Array(capacity);
      length.set(this.mxidLength);
      this.mxidLength = length;
      this.capacity = capacity;
    }
    return this.entries++;
  }

  private storeMxid(entry: number, mxid: string): void {
    if (this.bytesUsed + mxid.length * 3 > this.bytes.length) this.makeRoom(mxid.length * 3);
    const n = this.bytes.write(mxid, this.bytesUsed, "utf8");
    this.mxidAt[entry] = this.bytesUsed;
    this.mxidLength[entry] = n;
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
    for (let e = 0; e < this.entries; e++) {
      const at = this.mxidAt[e]!;
      if (at === FREE) continue;
      const n = this.mxidLength[e]!;
      this.bytes.copy(bytes, used, at, at + n);
      this.mxidAt[e] = used;
      used += n;
    }
    this.bytes = bytes;
    this.bytesUsed = used;
    this.bytesFreed = 0;
  }

  /** Gives back most of the room kept for growth (once a table is built: about 1/16 is kept). */
  trim(): void {
    const capacity = Math.max(1024, this.entries + (this.entries >> 4));
    if (capacity < this.capacity) {
      this.keys = this.keys.slice(0, capacity * WORDS);
      this.mxidAt = this.mxidAt.slice(0, capacity);
      this.mxidLength = this.mxidLength.slice(0, capacity);
      this.capacity = capacity;
    }
    const liveBytes = this.bytesUsed - this.bytesFreed;
    this.repack(liveBytes + (liveBytes >> 4));
  }

  /** The slot holding `key`, or -1. */
  private find(key: Int32Array): number {
    const slots = this.slots;
    const mask = slots.length - 1;
    const keys = this.keys;
    for (let s = start(key, 0, mask); ; s = (s + 1) & mask) {
      const v = slots[s]!;
      if (v === EMPTY) return -1;
      if (v === DELETED) continue;
      const base = (v - 1) * WORDS;
      let i = 0;
      while (i < WORDS && keys[base + i] === key[i]) i++;
      if (i === WORDS) return s;
    }
  }

  private insertSlot(entry: number): void {
    const slots = this.slots;
    const mask = slots.length - 1;
    let s = start(this.keys, entry * WORDS, mask);
    while (slots[s]! > 0) s = (s + 1) & mask;
    if (slots[s] === DELETED) this.deleted--;
    slots[s] = entry + 1;
  }

  /** Rebuilds the slots: twice as many when more than a quarter are live, else as many (dropping tombstones). */
  private resize(): void {
    const size = (this.live + 1) * 4 > this.slots.length ? this.slots.length * 2 : this.slots.length;
    this.slots = new Int32Array(size);
    this.deleted = 0;
    for (let e = 0; e < this.entries; e++) if (this.mxidAt[e] !== FREE) this.insertSlot(e);
  }
}

/** 43 characters, five per word and three in the last. */
const WORDS = 9;
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
function encode(hash: string, out: Int32Array): boolean {
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
    out[w] = word;
  }
  return true;
}

/** The first slot to probe: the first two words mixed (the words of a sha256 hash are already uniform). */
function start(words: Int32Array, at: number, mask: number): number {
  return (words[at]! ^ Math.imul(words[at + 1]!, 0x9e3779b1)) & mask;
}
