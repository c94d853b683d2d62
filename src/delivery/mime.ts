/**
 * Small RFC 5322 / RFC 2047 helpers used by the mailer. Kept free of I/O so they are easy to test.
 */
import { randomBytes, randomUUID } from "node:crypto";
import addressparser from "nodemailer/lib/addressparser";

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Replaces lone UTF-16 surrogates (which make `encodeURIComponent` throw) with U+FFFD. */
export function toWellFormed(s: string): string {
  return s.replace(LONE_SURROGATE, "\uFFFD");
}

/**
 * Text for a header such as Subject: every control character (C0 including CR/LF/TAB, DEL, C1) and the
 * Unicode line/paragraph separators become a space, runs of whitespace collapse to one space, and the
 * result is trimmed. Nothing that survives this can start a new header line.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
const HEADER_UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

export function sanitizeHeaderText(s: string): string {
  return s.replace(HEADER_UNSAFE, " ").replace(/\s+/g, " ").trim();
}

/** Replaces CR, LF (and NUL) by a space: applied to every value handed to a raw `.eml` template. */
export function stripLineBreaks(s: string): string {
  return s.replace(/\r\n|[\r\n\0]/g, " ");
}

const HTML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

/** Longest subject (in UTF-8 bytes) put into an encoded header, so the header line stays far below 998. */
const MAX_SUBJECT_BYTES = 480;
/** 45 bytes of payload give 60 base64 characters: `=?UTF-8?B?` + 60 + `?=` = 72 <= 75 (RFC 2047 §2). */
const WORD_PAYLOAD_BYTES = 45;

/**
 * Encodes header text (already sanitised, one line) for a raw message. Plain printable ASCII without
 * anything that looks like an encoded-word is returned as is; otherwise the text becomes a sequence of
 * RFC 2047 `B` encoded-words separated by single spaces (no folding: values given to raw templates are
 * single-line by design). Words never split a UTF-8 character.
 */
export function encodeHeaderText(text: string): string {
  const clean = toWellFormed(sanitizeHeaderText(text));
  if (/^[\x20-\x7e]*$/.test(clean) && !clean.includes("=?") && clean.length <= MAX_SUBJECT_BYTES) {
    return clean;
  }
  const words: string[] = [];
  let chunk: Buffer[] = [];
  let chunkLen = 0;
  let total = 0;
  const flush = (): void => {
    if (chunkLen > 0) words.push(`=?UTF-8?B?${Buffer.concat(chunk).toString("base64")}?=`);
    chunk = [];
    chunkLen = 0;
  };
  for (const ch of clean) {
    const bytes = Buffer.from(ch, "utf8");
    if (total + bytes.length > MAX_SUBJECT_BYTES) break;
    if (chunkLen + bytes.length > WORD_PAYLOAD_BYTES) flush();
    chunk.push(bytes);
    chunkLen += bytes.length;
    total += bytes.length;
  }
  flush();
  return words.join(" ");
}

/**
 * A Subject for nodemailer. Nodemailer writes a printable-ASCII subject as it is, so `=?UTF-8?B?…?=` taken
 * from a display name would reach the header undecoded and the reader's mail client would decode it (text
 * the inviter chose, shown as if it were ours). Such a subject is encoded here, so that it reads literally.
 */
export function subjectHeader(subject: string): string {
  return subject.includes("=?") ? encodeHeaderText(subject) : subject;
}

/** RFC 5322 date-time in UTC, e.g. `Thu, 27 Nov 2025 16:18:00 +0000`. */
export function rfc2822Date(d: Date = new Date()): string {
  return d.toUTCString().replace(/GMT$/, "+0000");
}

const BOUNDARY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** 32 random alphanumeric characters from the CSPRNG (rejection sampling, no modulo bias). */
export function randomBoundary(length = 32): string {
  let out = "";
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < 248) out += BOUNDARY_ALPHABET[b % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

/** `<uuid@hostname>`, the format of sydent's `messageid` (angle brackets included). */
export function makeMessageId(hostname: string): string {
  return `<${randomUUID()}@${hostname}>`;
}

/** Bare address of the first mailbox in a From-style value (`"Name" <a@b>` or `a@b`), or undefined. */
export function mailboxAddress(value: string): string | undefined {
  const first = addressparser(value, { flatten: true })[0];
  return first?.address || undefined;
}

/** Host name for Message-IDs: the explicit one, else the domain of `from`, else `localhost`. */
export function messageIdHost(explicit: string | undefined, from: string): string {
  const candidate = explicit ?? mailboxAddress(from)?.split("@").pop() ?? "";
  const cleaned = candidate.replace(/[^A-Za-z0-9.-]/g, "");
  return cleaned || "localhost";
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we reject
const ADDRESS_FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u2028\u2029<>,;:"()[\]\\\s]/;

/**
 * True when `to` is exactly one bare address (`local@domain`), with no display name, comment, group,
 * list separator, whitespace or control character, and nodemailer's parser reads it back unchanged.
 * This rules out header injection through `To:` and sending to more recipients than asked
 * (compare CVE-2019-11340).
 */
export function isSingleBareAddress(to: string): boolean {
  if (typeof to !== "string" || to.length < 3 || to.length > 320) return false;
  if (ADDRESS_FORBIDDEN.test(to)) return false;
  const at = to.lastIndexOf("@");
  if (at <= 0 || at === to.length - 1 || to.indexOf("@") !== at) return false;
  const parsed = addressparser(to, { flatten: true });
  return parsed.length === 1 && parsed[0]?.address === to;
}
