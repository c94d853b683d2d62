import { CASEFOLD_DATA } from "./casefold-table.js";

let table: Map<number, string> | undefined;

function foldTable(): Map<number, string> {
  if (table) return table;
  table = new Map();
  for (const entry of CASEFOLD_DATA.split(";")) {
    const [cp, folded] = entry.split(":") as [string, string];
    table.set(
      Number.parseInt(cp, 16),
      String.fromCodePoint(...folded.split(" ").map((h) => Number.parseInt(h, 16))),
    );
  }
  return table;
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/**
 * Full Unicode case folding, the same as Python's `str.casefold()` (which sydent applies to email
 * addresses). `toLowerCase()` is not case folding: `Strauß` folds to `strauss`.
 */
export function casefold(s: string): string {
  if (isAscii(s)) return s.toLowerCase();
  const t = foldTable();
  let out = "";
  for (const ch of s) {
    const folded = t.get(ch.codePointAt(0)!);
    out += folded ?? ch;
  }
  return out;
}
