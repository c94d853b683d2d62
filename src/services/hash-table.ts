/** Members of a JSON object, `"k":"v",…` without the braces, in UTF-8; `count` of them. */
export interface JsonMembers {
  readonly count: number;
  readonly members: Buffer;
}

/**
 * An exact in-memory map from lookup hash to mxid, compact enough for millions of entries. A sha256 lookup
 * hash (43 unpadded base64url characters) and its mxid live in one 64-byte row of one Int32Array: the hash
 * as nine words of its 6-bit characters (exact, nothing dropped), the mxid's UTF-8 bytes beside it when
 * they fit (28 bytes: `@localpart:server.name` mostly does), else in a shared buffer. Rows are found by
 * linear probing in that same array, so a lookup at a million entries touches one place in memory (one
 * cache and TLB miss) where a table of pointers would touch three. A hash of any other form (never written
 * by Seraph, but possible in an imported database) goes into a small `Map`.
 *
 *   const t = new HashTable();
 *   t.set("n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg", "@alice:example.org");
 *   t.get("n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg"); // "@alice:example.org"
 */
export class HashTable {
  /** Rows in `rows`; at most MAX_LOAD of them are used. */
  private capacity: number;
  /**
   * Row r is words [r * ROW, (r + 1) * ROW): KEY_WORDS words of the key, then META (the key's last 18 bits
   * and the mxid's length code: EMPTY_CODE for a free row, 1 + n for n bytes inline, OUTSIDE for bytes in
   * `outside`), then the inline bytes (or, for OUTSIDE, their offset and length).
   */
  private rows: Int32Array;
  /** The bytes of `rows`, for the inline mxids. */
  private rowBytes: Buffer;
  /** mxids too long for a row. */
  private outside: Buffer;
  private outsideUsed = 0;
  /** Bytes of `outside` no row points to any more (replaced or deleted mxids). */
  private outsideFreed = 0;
  private live = 0;
  /** Hashes that are not 43 base64url characters, and mxids longer than MAX_MXID_BYTES. */
  private readonly odd = new Map<string, string>();
  private readonly scratch = new Int32Array(WORDS);
  private readonly span: { bytes: Buffer; start: number; end: number } = {
    bytes: Buffer.alloc(0),
    start: 0,
    end: 0,
  };
  private readonly batch = { keys: new Int32Array(GROUP * WORDS), found: new Int32Array(GROUP) };
  /** The arrays `RowSet` reuses, by size. */
  private readonly rowSets = new Map<number, Int32Array>();
  /** The sum of what `getMany` touched ahead, kept so that those loads cannot be optimised away. */
  touchedSum = 0;

  /**
   * `expected`: how many hashes it will hold, if known: everything is allocated once at that size
   * (growing by copies leaves freed blocks that the allocator may not give back to the system).
   */
  constructor(expected = 0) {
    this.capacity = rowsFor(expected);
    this.rows = new Int32Array(this.capacity * ROW);
    this.rowBytes = Buffer.from(this.rows.buffer, this.rows.byteOffset, this.rows.byteLength);
    this.outside = Buffer.allocUnsafe(4096);
  }

  /** Number of hashes held. */
  get size(): number {
    return this.live + this.odd.size;
  }

  /** Bytes of the rows and the shared mxid buffer (not the `odd` map). */
  get bytes(): number {
    return this.rows.byteLength + this.outside.length;
  }

  get(hash: string): string | undefined {
    return this.getMany([hash])[0]?.mxid;
  }

  /**
   * The mxids of those of `hashes` that are held, each hash once, in the order first asked (see `findGroup`
   * for how a group of them is looked up).
   */
  getMany(hashes: readonly string[]): Array<{ hash: string; mxid: string }> {
    const out: Array<{ hash: string; mxid: string }> = [];
    const found = this.batch.found;
    const given = new RowSet(this.rowSets, hashes.length);
    const oddGiven = new Set<string>();
    for (let from = 0; from < hashes.length; from += GROUP) {
      const n = this.findGroup(hashes, from);
      for (let i = 0; i < n; i++) {
        const hash = hashes[from + i]!;
        if (found[i]! >= 0) {
          if (given.add(found[i]!)) out.push({ hash, mxid: this.mxidAt(found[i]!) });
        } else {
          const mxid = this.oddMxid(hash, oddGiven);
          if (mxid !== undefined) out.push({ hash, mxid });
        }
      }
    }
    return out;
  }

  /**
   * What `getMany` finds, written as the members of a JSON object (`"hash":"mxid",…` in UTF-8), straight from
   * the rows: no string and no object per hash. The text is what `JSON.stringify` writes for the same pairs.
   *
   *   t.getManyJson(["n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg"]).members.toString();
   *   // '"n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg":"@alice:example.org"'
   */
  getManyJson(hashes: readonly string[]): JsonMembers {
    const found = this.batch.found;
    const given = new RowSet(this.rowSets, hashes.length);
    const oddGiven = new Set<string>();
    const out = new JsonWriter(hashes.length * (HASH_LENGTH + 6 + INLINE_BYTES));
    let count = 0;
    for (let from = 0; from < hashes.length; from += GROUP) {
      const n = this.findGroup(hashes, from);
      for (let i = 0; i < n; i++) {
        const hash = hashes[from + i]!;
        const row = found[i]!;
        if (row >= 0) {
          if (!given.add(row)) continue;
          // A hash held in a row is 43 base64url characters: nothing to escape.
          out.member(count++, hash);
          const m = this.mxidBytes(row);
          out.stringBytes(m.bytes, m.start, m.end);
        } else {
          const mxid = this.oddMxid(hash, oddGiven);
          if (mxid === undefined) continue;
          out.member(count++, JSON.stringify(hash).slice(1, -1));
          out.string(mxid);
        }
      }
    }
    return { count, members: out.done() };
  }

  /**
   * Looks up the group of at most GROUP hashes from `hashes[from]` and returns its size: `batch.found[i]`
   * is the row of hash `from + i`, or -1. In phases (all keys, then both cache lines of the first row of
   * each, then the comparisons) instead of one hash after the other: at a million entries each first row
   * is a cache and TLB miss, and loads that do not depend on each other are waited for together.
   */
  private findGroup(hashes: readonly string[], from: number): number {
    const { keys, found } = this.batch;
    const rows = this.rows;
    const n = Math.min(GROUP, hashes.length - from);
    let touched = 0;
    for (let i = 0; i < n; i++) {
      found[i] = encode(hashes[from + i]!, keys, i * WORDS) ? home(keys, i * WORDS, this.capacity) : -1;
    }
    // Both ends of each first row: a row is 64 bytes but its buffer is not 64-byte aligned (glibc puts a
    // large one 16 bytes into its pages), so it spans two cache lines, and the mxid is in the second.
    for (let i = 0; i < n; i++) {
      const base = found[i]! * ROW;
      if (base >= 0) touched += rows[base + META]! + rows[base + ROW - 1]!;
    }
    this.touchedSum = touched;
    for (let i = 0; i < n; i++) if (found[i]! >= 0) found[i] = this.probe(keys, i * WORDS, found[i]!);
    return n;
  }

  /** The mxid of a hash not in the rows (an odd one), unless `given` has it already (then added to it). */
  private oddMxid(hash: string, given: Set<string>): string | undefined {
    if (this.odd.size === 0) return undefined;
    const mxid = this.odd.get(hash);
    if (mxid === undefined || given.has(hash)) return undefined;
    given.add(hash);
    return mxid;
  }

  set(hash: string, mxid: string): void {
    const regular = encode(hash, this.scratch);
    if (!regular || (mxid.length > MAX_MXID_BYTES / 3 && Buffer.byteLength(mxid) > MAX_MXID_BYTES)) {
      if (regular) this.remove();
      this.odd.set(hash, mxid);
      return;
    }
    if (this.odd.size > 0) this.odd.delete(hash);
    let row = this.probe(this.scratch, 0, home(this.scratch, 0, this.capacity));
    if (row >= 0) {
      this.freeOutside(row);
    } else {
      if (this.live + 1 > this.capacity * MAX_LOAD) this.rebuild(Math.ceil(this.capacity * GROWTH));
      row = this.freeRow(this.scratch, 0);
      this.rows.set(this.scratch.subarray(0, KEY_WORDS), row * ROW);
      this.live++;
    }
    this.storeMxid(row, this.scratch[KEY_WORDS]!, mxid);
  }

  delete(hash: string): void {
    if (this.odd.size > 0) this.odd.delete(hash);
    if (encode(hash, this.scratch)) this.remove();
  }

  /** Gives back the room kept for growth when it is more than an eighth (once a table is built). */
  trim(): void {
    const capacity = rowsFor(this.live);
    if (capacity + (capacity >> 3) < this.capacity) this.rebuild(capacity);
    const live = this.outsideUsed - this.outsideFreed;
    if (live + (live >> 3) + 4096 < this.outside.length) this.repack(live);
  }

  /** The row holding the key at `keys[at]`, probing from row `from`; -1 when none does. */
  private probe(keys: Int32Array, at: number, from: number): number {
    const rows = this.rows;
    const capacity = this.capacity;
    const first = keys[at]!;
    const meta = keys[at + KEY_WORDS]!;
    for (let r = from; ; r = r + 1 === capacity ? 0 : r + 1) {
      const base = r * ROW;
      const m = rows[base + META]!;
      if (m === EMPTY_CODE) return -1;
      if ((m & TAIL_MASK) !== meta || rows[base]! !== first) continue;
      let i = 1;
      while (i < KEY_WORDS && rows[base + i] === keys[at + i]) i++;
      if (i === KEY_WORDS) return r;
    }
  }

  /** The first free row on the probe sequence of the key at `keys[at]` (there is one: load < 1). */
  private freeRow(keys: Int32Array, at: number): number {
    const rows = this.rows;
    let r = home(keys, at, this.capacity);
    while (rows[r * ROW + META] !== EMPTY_CODE) r = r + 1 === this.capacity ? 0 : r + 1;
    return r;
  }

  private mxidAt(row: number): string {
    const m = this.mxidBytes(row);
    return m.bytes.toString("utf8", m.start, m.end);
  }

  /** Where `row`'s mxid is: its UTF-8 is `bytes[start, end)` (a scratch object, valid until the next call). */
  private mxidBytes(row: number): { bytes: Buffer; start: number; end: number } {
    const base = row * ROW;
    const code = this.rows[base + META]! >>> CODE_SHIFT;
    const m = this.span;
    if (code === OUTSIDE) {
      m.bytes = this.outside;
      m.start = this.rows[base + INLINE]!;
      m.end = m.start + this.rows[base + INLINE + 1]!;
    } else {
      m.bytes = this.rowBytes;
      m.start = base * 4 + INLINE * 4;
      m.end = m.start + code - 1;
    }
    return m;
  }

  /** Writes `mxid` into `row` (its key already there) with the key's last bits `tail`. */
  private storeMxid(row: number, tail: number, mxid: string): void {
    const base = row * ROW;
    if (mxid.length <= INLINE_BYTES) {
      const n = this.rowBytes.write(mxid, base * 4 + INLINE * 4, INLINE_BYTES, "utf8");
      // write() stops short of a character that does not fit: then the bytes go outside.
      if (n === Buffer.byteLength(mxid)) {
        this.rows[base + META] = tail | ((n + 1) << CODE_SHIFT);
        return;
      }
    }
    if (this.outsideUsed + mxid.length * 3 > this.outside.length) this.makeRoom(mxid.length * 3);
    const n = this.outside.write(mxid, this.outsideUsed, "utf8");
    this.rows[base + INLINE] = this.outsideUsed;
    this.rows[base + INLINE + 1] = n;
    this.rows[base + META] = tail | (OUTSIDE << CODE_SHIFT);
    this.outsideUsed += n;
  }

  /**
   * Counts `row`'s outside bytes, if any, as freed, and points the row at none (an empty inline mxid): a
   * repack while its new mxid is stored must not keep them.
   */
  private freeOutside(row: number): void {
    const base = row * ROW;
    const meta = this.rows[base + META]!;
    if (meta >>> CODE_SHIFT !== OUTSIDE) return;
    this.outsideFreed += this.rows[base + INLINE + 1]!;
    this.rows[base + META] = (meta & TAIL_MASK) | (1 << CODE_SHIFT);
  }

  /** Removes the row whose key is in `scratch`, if any, and moves later rows of its run back into the gap. */
  private remove(): void {
    let gap = this.probe(this.scratch, 0, home(this.scratch, 0, this.capacity));
    if (gap < 0) return;
    this.freeOutside(gap);
    this.live--;
    const rows = this.rows;
    const capacity = this.capacity;
    for (let r = gap + 1 === capacity ? 0 : gap + 1; ; r = r + 1 === capacity ? 0 : r + 1) {
      if (rows[r * ROW + META] === EMPTY_CODE) break;
      const h = home(rows, r * ROW, capacity);
      // The row at r may fill the gap if its home is not cyclically within (gap, r].
      const between = gap <= r ? h > gap && h <= r : h > gap || h <= r;
      if (between) continue;
      rows.copyWithin(gap * ROW, r * ROW, (r + 1) * ROW);
      gap = r;
    }
    rows.fill(0, gap * ROW, (gap + 1) * ROW);
  }

  /** Moves every row into a new array of `capacity` rows. */
  private rebuild(capacity: number): void {
    const old = this.rows;
    const oldCapacity = this.capacity;
    this.capacity = capacity;
    this.rows = new Int32Array(capacity * ROW);
    this.rowBytes = Buffer.from(this.rows.buffer, this.rows.byteOffset, this.rows.byteLength);
    for (let r = 0; r < oldCapacity; r++) {
      if (old[r * ROW + META] === EMPTY_CODE) continue;
      const to = this.freeRow(old, r * ROW);
      this.rows.set(old.subarray(r * ROW, (r + 1) * ROW), to * ROW);
    }
  }

  /** Drops the freed outside bytes when they are most of the buffer, else grows it by half. */
  private makeRoom(need: number): void {
    const live = this.outsideUsed - this.outsideFreed;
    const grown =
      live * 2 <= this.outside.length ? this.outside.length : Math.ceil(this.outside.length * 1.5);
    this.repack(Math.max(grown, live + need * 2));
  }

  /** Copies the live outside mxids into a new buffer of `size` bytes (at least what they need). */
  private repack(size: number): void {
    const bytes = Buffer.allocUnsafe(Math.max(size, 4096));
    let used = 0;
    const rows = this.rows;
    for (let base = 0; base < this.capacity * ROW; base += ROW) {
      if (rows[base + META]! >>> CODE_SHIFT !== OUTSIDE) continue;
      const at = rows[base + INLINE]!;
      const n = rows[base + INLINE + 1]!;
      this.outside.copy(bytes, used, at, at + n);
      rows[base + INLINE] = used;
      used += n;
    }
    this.outside = bytes;
    this.outsideUsed = used;
    this.outsideFreed = 0;
  }
}

/** 43 characters: five per word in eight words, the last three in the ninth (18 bits). */
const WORDS = 9;
const KEY_WORDS = WORDS - 1;
/** Words per row: 64 bytes. */
const ROW = 16;
/** The word holding the key's last 18 bits and the mxid's length code. */
const META = KEY_WORDS;
const TAIL_MASK = (1 << 18) - 1;
const CODE_SHIFT = 18;
const EMPTY_CODE = 0;
/** Length code: the mxid is in `outside` (offset and length in the first two inline words). */
const OUTSIDE = 63;
const INLINE = META + 1;
const INLINE_BYTES = (ROW - INLINE) * 4;
/** At most this share of the rows is used: a hit reads ~2.5 rows, a miss ~8.5 (neighbours in memory). */
const MAX_LOAD = 0.75;
/**
 * A table is built (and trimmed) for this share, so the binds after a build (a million: ~40,000 of them)
 * fill the room up to MAX_LOAD before the first copy.
 */
const BUILD_LOAD = 0.72;
/** A full table grows by a quarter: the copy holds 2.25× the rows for a moment, not 3×. */
const GROWTH = 1.25;
/** Hashes looked up together by `getMany`. */
const GROUP = 64;
const HASH_LENGTH = 43;
/** Longer mxids (the Matrix limit is 255 bytes) go to the `odd` map. */
const MAX_MXID_BYTES = 65_535;

function rowsFor(entries: number): number {
  return Math.max(1024, Math.ceil((entries + 1) / BUILD_LOAD));
}

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

/**
 * The row where the key at `words[at]` starts its probe: its first two words mixed into 30 bits (the words of
 * a sha256 hash are already uniform), scaled to `capacity` (the product's rounding, past 2^53, is far
 * smaller than `capacity`: the result stays below it).
 */
function home(words: Int32Array, at: number, capacity: number): number {
  const h = (words[at]! ^ Math.imul(words[at + 1]!, 0x9e3779b1)) >>> 2;
  return Math.floor((h * capacity) / 1073741824);
}

/**
 * A set of row numbers for one `getMany` call (the rows already answered), by open addressing in an array
 * reused between calls: a duplicate hash in a request is found without hashing its string.
 */
class RowSet {
  private readonly slots: Int32Array;
  private readonly shift: number;

  constructor(reuse: Map<number, Int32Array>, expected: number) {
    let bits = 4;
    while (1 << bits < expected * 2) bits++;
    let slots = reuse.get(bits);
    if (slots === undefined) {
      slots = new Int32Array(1 << bits);
      reuse.set(bits, slots);
    }
    slots.fill(-1);
    this.slots = slots;
    this.shift = 32 - bits;
  }

  /** Adds `row`; false when it was there already. */
  add(row: number): boolean {
    const slots = this.slots;
    const mask = slots.length - 1;
    for (let s = Math.imul(row, 0x9e3779b1) >>> this.shift; ; s = (s + 1) & mask) {
      const held = slots[s]!;
      if (held === row) return false;
      if (held === -1) {
        slots[s] = row;
        return true;
      }
    }
  }
}

/** JSON text written into a Buffer that grows by doubling. */
class JsonWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(expected: number) {
    this.buf = Buffer.allocUnsafe(Math.max(expected, 64));
  }

  /** `"key":` (after a comma unless it is the first), `key` already escaped. */
  member(index: number, key: string): void {
    this.room(key.length * 3 + 4);
    const b = this.buf;
    if (index > 0) b[this.pos++] = COMMA;
    b[this.pos++] = QUOTE;
    this.pos += b.write(key, this.pos, "utf8");
    b[this.pos++] = QUOTE;
    b[this.pos++] = COLON;
  }

  /** The UTF-8 `bytes[start, end)` as a JSON string (escaped as `JSON.stringify` would when they need it). */
  stringBytes(bytes: Buffer, start: number, end: number): void {
    this.room(end - start + 2);
    const b = this.buf;
    let pos = this.pos;
    b[pos++] = QUOTE;
    for (let i = start; i < end; i++) {
      const c = bytes[i]!;
      if (c < 0x20 || c === QUOTE || c === BACKSLASH) {
        this.string(bytes.toString("utf8", start, end));
        return;
      }
      b[pos++] = c;
    }
    b[pos++] = QUOTE;
    this.pos = pos;
  }

  /** `s` as a JSON string. */
  string(s: string): void {
    const json = JSON.stringify(s);
    this.room(json.length * 3);
    this.pos += this.buf.write(json, this.pos, "utf8");
  }

  /** The text written (a view of the buffer, which is not used again). */
  done(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }
}

const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;
const BACKSLASH = 0x5c;
