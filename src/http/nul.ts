/**
 * U+0000 in a request. No Matrix identifier, address, token or URL holds one, and PostgreSQL text cannot:
 * a NUL that reached a query there failed it (500), and one stored on SQLite could never be moved to
 * PostgreSQL. Requests carrying one are refused before any route runs, on both backends alike.
 */
export const NUL_REFUSED = { errcode: "M_INVALID_PARAM", error: "NUL characters are not allowed" } as const;

/** Whether a request target (path and query, still percent-encoded) encodes a NUL. */
export function urlHoldsNul(url: string): boolean {
  return url.includes("%00");
}

/**
 * Whether JSON text holds a NUL in a string or a key (`\u0000`; a raw NUL is not valid JSON). Exact: an
 * escaped backslash followed by `u0000` is text, not a NUL. One native search when there is none.
 *
 *   jsonHoldsNul('{"a":"x\\u0000"}'); // true
 *   jsonHoldsNul('{"a":"x\\\\u0000"}'); // false: a backslash, then "u0000"
 */
export function jsonHoldsNul(raw: string): boolean {
  let i = raw.indexOf("\\u0000");
  while (i !== -1) {
    // The backslash escapes the `u` unless it is itself escaped: count the backslashes before it.
    let run = 0;
    while (i - run - 1 >= 0 && raw.charCodeAt(i - run - 1) === 0x5c) run++;
    if (run % 2 === 0) return true;
    i = raw.indexOf("\\u0000", i + 1);
  }
  return false;
}
