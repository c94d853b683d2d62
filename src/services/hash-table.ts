/** Members of a JSON object, `"k":"v",…` without the braces, in UTF-8; `count` of them. */
export interface JsonMembers {
  readonly count: number;
  readonly members: Buffer;
}

/**
 * An exact in-memory map from lookup hash to mxid, compact enough for millions of entries. Each entry (a
 * sha256 lookup hash, 43 unpadded base64url characters, as nine words of its 6-bit characters, exact; then
 * a byte, the number of the mxid's server name, and the UTF-8 of its localpart, or 0 and the whole mxid)
 * is written once into one dense Int32Array, the arena, in as many words as it needs (12 for
 * `@user123456:hs.example`). The first 255 server names are numbered as they come; an identity server
 * mostly serves a few. The entries are found through a table of slots of two words, probed linearly: 30
 * bits of the hash (a tag) and where its entry starts. A miss, most of what a lookup asks, reads only slots
 * (eight to a cache line) and a hit one more place; the table of slots can be kept fuller than one of
 * whole entries, and no room is reserved for long mxids: 59 bytes per entry at a million where rows of 64
 * bytes with the mxid inside took 89. A hash of any other form (never written by Seraph, but possible in
 * an imported database) and an mxid longer than MAX_MXID_BYTES go into a small `Map`.
 *
 *   const t = new HashTable();
 *   t.set("n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg", "@alice:example.org");
 *   t.get("n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg"); // "@alice:example.org"
 */
export class HashTable {
  /** Slots in `slots`; at most MAX_LOAD of them are used. */
  private capacity: number;
  /** Slot s is words 2s (the key's TAG_WORD) and 2s + 1 (1 + its entry's offset in `arena`; 0: free). */
  private slots: Int32Array;
  /**
   * The entries from word 0 to `used`: WORDS words of the key (the last holding its final 18 bits and the
   * mxid's length in bytes above them), then the mxid's bytes, padded to a word. Replaced and deleted
   * entries stay until a repack (`freed` words of them).
   */
  private arena: Int32Array;
  /** The bytes of `arena`, for the mxids. */
  private arenaBytes: Buffer;
  private used = 0;
  private freed = 0;
  private live = 0;
  /** Hashes that are not 43 base64url characters, and mxids longer than MAX_MXID_BYTES. */
  private readonly odd = new Map<string, string>();
  private readonly scratch = new Int32Array(WORDS);
  private readonly span: { bytes: Buffer; start: number; end: number; server: number } = {
    bytes: Buffer.alloc(0),
    start: 0,
    end: 0,
    server: 0,
  };
  /** Server names by number as the UTF-8 of `:name` (0: none, the mxid is kept whole), and numbers by name. */
  private readonly serverNames: Buffer[] = [Buffer.alloc(0)];
  private readonly serverNumbers = new Map<string, number>();
  private readonly batch = { keys: new Int32Array(GROUP * WORDS), found: new Int32Array(GROUP) };
  /** The arrays `SlotSet` reuses, by size. */
  private readonly slotSets = new Map<number, Int32Array>();
  /** The sum of what `getMany` touched ahead, kept so that those loads cannot be optimised away. */
  touchedSum = 0;

  /**
   * `expected`: how many hashes it will hold, if known: the slots are allocated once at that size, and the
   * arena for short mxids (it grows by a quarter when they are longer; `trim` gives back what is left).
   * `sample`: some of the mxids it will hold (e.g. the first page of a scan): the arena is then sized for
   * their mean length plus the room `trim` keeps, so that, when they are typical, neither copies it.
   *
   *   new HashTable(1_000_000, firstPage.map((r) => r.mxid));
   */
  constructor(expected = 0, sample: readonly string[] = []) {
    this.capacity = slotsFor(expected);
    this.slots = new Int32Array(this.capacity * 2);
    this.arena = new Int32Array(arenaWordsFor(expected, sample));
    this.arenaBytes = bytesOf(this.arena);
  }

  /** Number of hashes held. */
  get size(): number {
    return this.live + this.odd.size;
  }

  /** Bytes of the slots and the arena (not the `odd` map). */
  get bytes(): number {
    return this.slots.byteLength + this.arena.byteLength;
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
    const given = new SlotSet(this.slotSets, hashes.length);
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
   * the arena: no string and no object per hash. The text is what `JSON.stringify` writes for the same pairs.
   *
   *   t.getManyJson(["n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg"]).members.toString();
   *   // '"n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg":"@alice:example.org"'
   */
  getManyJson(hashes: readonly string[]): JsonMembers {
    const found = this.batch.found;
    const given = new SlotSet(this.slotSets, hashes.length);
    const oddGiven = new Set<string>();
    const out = new JsonWriter(hashes.length * (HASH_LENGTH + 6 + TYPICAL_MXID_BYTES));
    let count = 0;
    for (let from = 0; from < hashes.length; from += GROUP) {
      const n = this.findGroup(hashes, from);
      for (let i = 0; i < n; i++) {
        const hash = hashes[from + i]!;
        const slot = found[i]!;
        if (slot >= 0) {
          if (!given.add(slot)) continue;
          // A hash held in the arena is 43 base64url characters: nothing to escape.
          out.member(count++, hash);
          const m = this.mxidBytes(slot);
          out.stringBytes(m.bytes, m.start, m.end, m.server === 0 ? undefined : this.serverNames[m.server]);
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
   * is the slot of hash `from + i`, or -1. In phases (all keys, then the first slot of each, then the first
   * slot whose tag matches, then its entry, then the comparisons) instead of one hash after the other: at a
   * million entries each first slot and each entry is a cache and TLB miss, and loads that do not depend on
   * each other are waited for together.
   */
  private findGroup(hashes: readonly string[], from: number): number {
    const { keys, found } = this.batch;
    const slots = this.slots;
    const arena = this.arena;
    const n = Math.min(GROUP, hashes.length - from);
    let touched = 0;
    for (let i = 0; i < n; i++) {
      found[i] = encode(hashes[from + i]!, keys, i * WORDS) ? home(keys, i * WORDS, this.capacity) : -1;
    }
    for (let i = 0; i < n; i++) if (found[i]! >= 0) touched += slots[found[i]! * 2 + 1]!;
    for (let i = 0; i < n; i++) if (found[i]! >= 0) found[i] = this.candidate(keys, i * WORDS, found[i]!);
    // Both ends of the key: an entry is 4-byte aligned, so it may span two cache lines.
    for (let i = 0; i < n; i++) {
      const slot = found[i]!;
      if (slot >= 0) {
        const at = slots[slot * 2 + 1]! - 1;
        touched += arena[at]! + arena[at + TAIL]!;
      }
    }
    this.touchedSum = touched;
    for (let i = 0; i < n; i++) if (found[i]! >= 0) found[i] = this.confirm(keys, i * WORDS, found[i]!);
    return n;
  }

  /** The mxid of a hash not in the arena (an odd one), unless `given` has it already (then added to it). */
  private oddMxid(hash: string, given: Set<string>): string | undefined {
    if (this.odd.size === 0) return undefined;
    const mxid = this.odd.get(hash);
    if (mxid === undefined || given.has(hash)) return undefined;
    given.add(hash);
    return mxid;
  }

  set(hash: string, mxid: string): void {
    const regular = encode(hash, this.scratch);
    // `@localpart:server` is kept as the server's number and the localpart; anything else as it is.
    // (Not numbered for an mxid too long to keep here: the numbers go to names that are kept.)
    const colon =
      regular && mxid.length <= MAX_MXID_BYTES && mxid.charCodeAt(0) === AT ? mxid.indexOf(":") : -1;
    const server = colon > 0 ? this.serverNumber(mxid.slice(colon + 1)) : 0;
    const body = server > 0 ? mxid.slice(1, colon) : mxid;
    const length = regular && body.length < MAX_MXID_BYTES ? 1 + Buffer.byteLength(body) : MAX_MXID_BYTES + 1;
    if (length > MAX_MXID_BYTES) {
      if (regular) this.remove();
      this.odd.set(hash, mxid);
      return;
    }
    if (this.odd.size > 0) this.odd.delete(hash);
    const keys = this.scratch;
    let slot = this.probe(keys, 0, home(keys, 0, this.capacity));
    const heldAt = slot >= 0 ? this.slots[slot * 2 + 1]! - 1 : -1;
    const held = heldAt >= 0 ? this.arena[heldAt + TAIL]! >>> LENGTH_SHIFT : -1;
    if (heldAt >= 0 && words(held) === words(length)) {
      this.writeEntry(heldAt, keys, server, body, length);
      return;
    }
    // Room first: an allocation that fails leaves the table as it was.
    if (slot < 0 && this.live + 1 > this.capacity * MAX_LOAD) this.rebuild(Math.ceil(this.capacity * GROWTH));
    const need = WORDS + words(length);
    if (this.used + need > this.arena.length) this.makeRoom(need);
    if (slot >= 0) {
      // The old entry (moved by a repack, if one ran) is dropped.
      this.freed += WORDS + words(held);
    } else {
      slot = this.freeSlot(keys, 0);
      this.slots[slot * 2] = keys[TAG_WORD]!;
      this.live++;
    }
    const at = this.used;
    this.used += need;
    this.writeEntry(at, keys, server, body, length);
    this.slots[slot * 2 + 1] = at + 1;
  }

  delete(hash: string): void {
    if (this.odd.size > 0) this.odd.delete(hash);
    if (encode(hash, this.scratch)) this.remove();
  }

  /** Sizes the room kept for growth for the binds after a build (once a table is built). */
  trim(): void {
    const capacity = slotsFor(this.live);
    if (capacity + (capacity >> 3) < this.capacity) this.rebuild(capacity);
    // The arena keeps room for a thirty-second more (the binds after a build: a million leaves room for
    // ~30,000) before its first copy, and gives back room beyond twice that.
    const live = this.used - this.freed;
    const keep = live + (live >> 5) + 1024;
    if (this.arena.length < keep - (live >> 6) || this.arena.length > keep + (live >> 5)) {
      if (this.freed === 0) this.copyArena(keep);
      else this.repack(keep);
    }
  }

  /** The slot of the key at `keys[at]`, probing from slot `from`; -1 when none has it. */
  private probe(keys: Int32Array, at: number, from: number): number {
    const slot = this.candidate(keys, at, from);
    return slot < 0 ? -1 : this.confirm(keys, at, slot);
  }

  /** The first slot from `from` whose tag is the key's, or -1 at a free slot. */
  private candidate(keys: Int32Array, at: number, from: number): number {
    const slots = this.slots;
    const capacity = this.capacity;
    const tag = keys[at + TAG_WORD]!;
    for (let s = from; ; s = s + 1 === capacity ? 0 : s + 1) {
      if (slots[s * 2 + 1] === 0) return -1;
      if (slots[s * 2] === tag) return s;
    }
  }

  /** `slot` if its entry's key is the one at `keys[at]`, else the next slot on its probe sequence that is. */
  private confirm(keys: Int32Array, at: number, slot: number): number {
    const arena = this.arena;
    for (let s = slot; ; ) {
      const e = this.slots[s * 2 + 1]! - 1;
      let i = 0;
      while (i < TAIL && arena[e + i] === keys[at + i]) i++;
      if (i === TAIL && (arena[e + TAIL]! & TAIL_MASK) === keys[at + TAIL]) return s;
      s = this.candidate(keys, at, s + 1 === this.capacity ? 0 : s + 1);
      if (s < 0) return -1;
    }
  }

  /** The first free slot on the probe sequence of the key at `keys[at]` (there is one: load < 1). */
  private freeSlot(keys: Int32Array, at: number): number {
    const slots = this.slots;
    let s = home(keys, at, this.capacity);
    while (slots[s * 2 + 1] !== 0) s = s + 1 === this.capacity ? 0 : s + 1;
    return s;
  }

  private mxidAt(slot: number): string {
    const m = this.mxidBytes(slot);
    const text = m.bytes.toString("utf8", m.start, m.end);
    return m.server === 0 ? text : `@${text}${this.serverNames[m.server]!.toString("utf8")}`;
  }

  /**
   * Where `slot`'s mxid is: the UTF-8 `bytes[start, end)` is the whole mxid (`server` 0) or its localpart, of
   * `@localpart` + `serverNames[server]` (a scratch object, valid until the next call).
   */
  private mxidBytes(slot: number): { bytes: Buffer; start: number; end: number; server: number } {
    const at = this.slots[slot * 2 + 1]! - 1;
    const m = this.span;
    const first = (at + WORDS) * 4;
    m.bytes = this.arenaBytes;
    m.server = this.arenaBytes[first]!;
    m.start = first + 1;
    m.end = first + (this.arena[at + TAIL]! >>> LENGTH_SHIFT);
    return m;
  }

  /**
   * Writes the key at `keys[0]`, `server` and `body` (`length` bytes with the server's: room for them there) at
   * word `at`.
   */
  private writeEntry(at: number, keys: Int32Array, server: number, body: string, length: number): void {
    this.arena.set(keys.subarray(0, TAIL), at);
    this.arena[at + TAIL] = keys[TAIL]! | (length << LENGTH_SHIFT);
    const first = (at + WORDS) * 4;
    this.arenaBytes[first] = server;
    this.arenaBytes.write(body, first + 1, length - 1, "utf8");
  }

  /**
   * The number (1–255) of the server name `name`, given to it now if there is room; 0 when the names are
   * full or `name` is empty or would need escaping in JSON (never so for a valid server name).
   */
  private serverNumber(name: string): number {
    const known = this.serverNumbers.get(name);
    if (known !== undefined) return known;
    const number = this.serverNames.length;
    if (number > 255 || name === "" || JSON.stringify(name).length !== name.length + 2) return 0;
    this.serverNames.push(Buffer.from(`:${name}`, "utf8"));
    this.serverNumbers.set(name, number);
    return number;
  }

  /** Removes the key in `scratch`, if held, and moves later slots of its run back into the gap. */
  private remove(): void {
    let gap = this.probe(this.scratch, 0, home(this.scratch, 0, this.capacity));
    if (gap < 0) return;
    const slots = this.slots;
    const arena = this.arena;
    this.freed += WORDS + words(arena[slots[gap * 2 + 1]! - 1 + TAIL]! >>> LENGTH_SHIFT);
    this.live--;
    const capacity = this.capacity;
    for (let s = gap + 1 === capacity ? 0 : gap + 1; ; s = s + 1 === capacity ? 0 : s + 1) {
      const ref = slots[s * 2 + 1]!;
      if (ref === 0) break;
      const h = home(arena, ref - 1, capacity);
      // The slot at s may fill the gap if its home is not cyclically within (gap, s].
      const between = gap <= s ? h > gap && h <= s : h > gap || h <= s;
      if (between) continue;
      slots[gap * 2] = slots[s * 2]!;
      slots[gap * 2 + 1] = ref;
      gap = s;
    }
    slots[gap * 2] = 0;
    slots[gap * 2 + 1] = 0;
  }

  /** Moves every slot into a new table of `capacity` slots. */
  private rebuild(capacity: number): void {
    const slots = new Int32Array(capacity * 2);
    const old = this.slots;
    const oldCapacity = this.capacity;
    this.capacity = capacity;
    this.slots = slots;
    for (let s = 0; s < oldCapacity; s++) {
      const ref = old[s * 2 + 1]!;
      if (ref === 0) continue;
      let to = home(this.arena, ref - 1, capacity);
      while (this.slots[to * 2 + 1] !== 0) to = to + 1 === capacity ? 0 : to + 1;
      this.slots[to * 2] = old[s * 2]!;
      this.slots[to * 2 + 1] = ref;
    }
  }

  /** Room for `need` more words: drops the freed entries when they are a third or more, else grows by a quarter. */
  private makeRoom(need: number): void {
    const live = this.used - this.freed;
    if (this.freed * 2 >= live) {
      this.repack(Math.max(this.arena.length, live + need * 2));
      return;
    }
    this.copyArena(Math.max(Math.ceil(this.arena.length * ARENA_GROWTH), this.used + need * 2));
  }

  /** Copies the arena as it is (every offset stays) into a new one of `size` words, at least `used`. */
  private copyArena(size: number): void {
    const arena = new Int32Array(Math.max(size, this.used));
    arena.set(this.arena.subarray(0, this.used));
    this.arena = arena;
    this.arenaBytes = bytesOf(arena);
  }

  /** Copies the live entries into a new arena of `size` words (at least what they need), in slot order. */
  private repack(size: number): void {
    const old = this.arena;
    const arena = new Int32Array(Math.max(size, this.used - this.freed, 1024));
    const slots = this.slots;
    let used = 0;
    for (let s = 0; s < this.capacity; s++) {
      const ref = slots[s * 2 + 1]!;
      if (ref === 0) continue;
      const from = ref - 1;
      const n = WORDS + words(old[from + TAIL]! >>> LENGTH_SHIFT);
      arena.set(old.subarray(from, from + n), used);
      slots[s * 2 + 1] = used + 1;
      used += n;
    }
    this.arena = arena;
    this.arenaBytes = bytesOf(arena);
    this.used = used;
    this.freed = 0;
  }
}

/** 43 characters: five per word in eight words, the last three in the ninth (18 bits). */
const WORDS = 9;
/** The word of a key with its last 18 bits (and, in the arena, the mxid's length above them). */
const TAIL = WORDS - 1;
const TAIL_MASK = (1 << 18) - 1;
const LENGTH_SHIFT = 18;
/** The key word kept in its slot (30 uniform bits, not the ones `home` is made of). */
const TAG_WORD = 2;
/** Longer mxids (the Matrix limit is 255 bytes) go to the `odd` map; the length fits in 13 bits. */
const MAX_MXID_BYTES = 8191;
/** At most this share of the slots is used: a miss reads ~20 slots (three cache lines), a hit ~3.6. */
const MAX_LOAD = 0.84;
/**
 * A table is built (and trimmed) for this share, so the binds after a build (a million: ~50,000 of them)
 * fill the room up to MAX_LOAD before the first copy.
 */
const BUILD_LOAD = 0.8;
/** A full table grows by a quarter: the copy holds 2.25× the slots for a moment, not 3×. */
const GROWTH = 1.25;
/** Words of arena allocated per expected entry: a key, a server's number and a 15-byte localpart. */
const ARENA_WORDS_EACH = WORDS + 4;
const ARENA_GROWTH = 1.25;
/** What a response is sized for per hash found. */
const TYPICAL_MXID_BYTES = 28;
/** Hashes looked up together by `getMany`. */
const GROUP = 64;
const HASH_LENGTH = 43;

/**
 * The arena's first size for `expected` entries: what `trim` keeps (a thirty-second more than their words,
 * plus 1024) at the mean size of the `sample`'s entries, or ARENA_WORDS_EACH each without one.
 */
function arenaWordsFor(expected: number, sample: readonly string[]): number {
  if (sample.length === 0) return Math.max(1024, expected * ARENA_WORDS_EACH);
  let total = 0;
  for (const mxid of sample) total += entryWords(mxid);
  const each = total / sample.length;
  return Math.ceil(expected * each * (1 + 1 / 32)) + 1024;
}

/** The words `set` writes for `mxid` in the arena (as for `@localpart:server` with a numbered server). */
function entryWords(mxid: string): number {
  const colon = mxid.charCodeAt(0) === AT ? mxid.indexOf(":") : -1;
  const length = 1 + Buffer.byteLength(colon > 0 ? mxid.slice(1, colon) : mxid);
  return length > MAX_MXID_BYTES ? 0 : WORDS + words(length);
}

/** Words that hold `bytes` bytes. */
function words(bytes: number): number {
  return (bytes + 3) >>> 2;
}

function bytesOf(a: Int32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function slotsFor(entries: number): number {
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
 * A set of slot numbers for one `getMany` call (the slots already answered), by open addressing in an array
 * reused between calls: a duplicate hash in a request is found without hashing its string.
 */
class SlotSet {
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

  /** Adds `slot`; false when it was there already. */
  add(slot: number): boolean {
    const slots = this.slots;
    const mask = slots.length - 1;
    for (let s = Math.imul(slot, 0x9e3779b1) >>> this.shift; ; s = (s + 1) & mask) {
      const held = slots[s]!;
      if (held === slot) return false;
      if (held === -1) {
        slots[s] = slot;
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

  /**
   * The UTF-8 `bytes[start, end)` as a JSON string (escaped as `JSON.stringify` would when they need it); with
   * `suffix` (a server's `:name`, which never needs escaping), as the string `@` + them + `suffix`.
   */
  stringBytes(bytes: Buffer, start: number, end: number, suffix?: Buffer): void {
    // Byte by byte: Buffer.copy's native call costs more than a loop over ten bytes.
    this.room(end - start + (suffix?.length ?? 0) + 3);
    const b = this.buf;
    let pos = this.pos;
    b[pos++] = QUOTE;
    if (suffix !== undefined) b[pos++] = AT;
    for (let i = start; i < end; i++) {
      const c = bytes[i]!;
      if (c < 0x20 || c === QUOTE || c === BACKSLASH) {
        const text = bytes.toString("utf8", start, end);
        this.string(suffix === undefined ? text : `@${text}${suffix.toString("utf8")}`);
        return;
      }
      b[pos++] = c;
    }
    if (suffix !== undefined) for (let i = 0; i < suffix.length; i++) b[pos++] = suffix[i]!;
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
const AT = 0x40;
const COMMA = 0x2c;
const COLON = 0x3a;
const BACKSLASH = 0x5c;
