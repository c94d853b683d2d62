/**
 * The first key of `row` whose string value holds a NUL character (U+0000), which PostgreSQL text cannot
 * store; undefined when none does. Seraph refuses NUL in every request (src/http/nul.ts); rows that came
 * from elsewhere (a sydent database, an older Seraph on SQLite) are checked with this.
 *
 *   nulField({ room_id: "!r\u0000:hs", ts: 1 }); // "room_id"
 */
export function nulField(row: object): string | undefined {
  for (const [key, v] of Object.entries(row)) if (typeof v === "string" && v.includes("\u0000")) return key;
  return undefined;
}
