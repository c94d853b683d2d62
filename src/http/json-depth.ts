/** Deepest nesting of arrays and objects accepted in a request body. Matrix bodies need a handful. */
export const MAX_JSON_DEPTH = 64;

/**
 * Whether `raw` (JSON text) nests arrays or objects deeper than `max`, found by one pass over the text that
 * skips string contents. Checked before JSON.parse, so that a body nested 10,000 levels deep is refused at
 * once and never reaches code that recurses over it (JSON.stringify, canonical JSON) and overflows the stack.
 */
export function jsonDepthExceeds(raw: string, max = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}
