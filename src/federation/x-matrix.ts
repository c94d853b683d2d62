/**
 * X-Matrix request authentication (S2S "Request Authentication"), as homeservers use it towards identity servers
 * for `POST /3pid/unbind` (BEHAVIOUR.md §8):
 *
 * - The header is `Authorization: X-Matrix origin="hs",destination="is",key="ed25519:k",sig="<b64>"`, parsed as
 *   RFC 9110 auth-params (see {@link parseXMatrixHeaders}).
 * - The signed JSON is `{method, uri, origin, destination_is: <our server name>, content?}`: Synapse signs
 *   identity-server requests with `destination_is`, not `destination`. The header's `destination`, when present,
 *   must equal our server name.
 * - The origin's key comes from {@link ServerKeyCache} (which fetches `/_matrix/key/v2/server`).
 *
 * Callers: Node keeps only the first `Authorization` header in `req.headers`; pass
 * `req.headersDistinct.authorization` (fastify: `request.raw.headersDistinct.authorization`) to see all of them,
 * and pass the request target exactly as received (`request.raw.url`) as `uri`.
 */
import { verify } from "node:crypto";
import { decodeBase64 } from "../crypto/base64.js";
import { type SigningKey, signingBytes, signJson } from "../crypto/ed25519.js";
import { FederationError } from "./errors.js";
import type { ServerKeyCache } from "./key-cache.js";
import { parseServerName } from "./server-name.js";

/** One X-Matrix credential (one `Authorization` header). */
export interface XMatrixAuth {
  origin: string;
  /** Absent when the sender did not include it (allowed for older servers). */
  destination?: string;
  key: string;
  sig: string;
}

export type XMatrixErrorReason =
  /** No `Authorization: X-Matrix` header at all. */
  | "missing"
  /** X-Matrix header(s) present but none usable, different origins, or a body that is not canonical JSON. */
  | "malformed"
  /** The key was found and the signature does not verify (or is not a 64-byte base64 signature). */
  | "bad_signature"
  /** The origin does not list the key id (after the allowed refetch), or the algorithm is not ed25519. */
  | "unknown_key"
  /** The key is listed but its `valid_until_ts` has passed. */
  | "expired_key"
  /** The origin's keys could not be fetched: see `federationError` (e.g. `invalid_server_name` vs `unreachable`). */
  | "fetch_failed"
  /** The header's `destination` is not our server name. */
  | "wrong_destination";

export class XMatrixError extends Error {
  override readonly name = "XMatrixError";
  readonly reason: XMatrixErrorReason;
  /** The claimed origin, when one was parsed. */
  readonly origin?: string;
  /** For `fetch_failed`: the underlying error (also the `cause`). */
  readonly federationError?: FederationError;

  constructor(
    reason: XMatrixErrorReason,
    message: string,
    options: { origin?: string; federationError?: FederationError } = {},
  ) {
    super(message, options.federationError === undefined ? undefined : { cause: options.federationError });
    this.reason = reason;
    if (options.origin !== undefined) this.origin = options.origin;
    if (options.federationError !== undefined) this.federationError = options.federationError;
  }
}

export function isXMatrixError(e: unknown): e is XMatrixError {
  return e instanceof XMatrixError;
}

// ---------------------------------------------------------------------------------------------------------------
// Header parsing

/** Header values longer than this are ignored as malformed (Node caps all headers at 16 KiB anyway). */
const MAX_HEADER_LENGTH = 8192;
/** At most this many `Authorization` headers are looked at. */
const MAX_HEADERS = 16;
/** At most this many credentials are checked per request. */
const MAX_VERIFY_ATTEMPTS = 8;
const MAX_KEY_ID_LENGTH = 255;
const MAX_SIG_LENGTH = 256;

const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]$/;
const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;

function isTchar(c: string): boolean {
  return TCHAR.test(c);
}

function isWs(c: string | undefined): boolean {
  return c === " " || c === "\t";
}

/**
 * Characters of an unquoted value: RFC 9110 `token` characters plus, for compatibility (the spec asks recipients
 * to accept `:`; Synapse and sydent split on commas and accept anything), every other visible ASCII character
 * except `"`, `\` and `,`. So `key=ed25519:abc`, `origin=[::1]:8448` and an unquoted base64 `sig` with `/` work.
 */
function isUnquotedValueChar(c: string): boolean {
  const code = c.charCodeAt(0);
  return code >= 0x21 && code <= 0x7e && c !== '"' && c !== "\\" && c !== ",";
}

/** qdtext: HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text. */
function isQdtext(c: string): boolean {
  const code = c.charCodeAt(0);
  return (
    code === 0x09 ||
    code === 0x20 ||
    code === 0x21 ||
    (code >= 0x23 && code <= 0x5b) ||
    (code >= 0x5d && code <= 0x7e) ||
    (code >= 0x80 && code <= 0xff)
  );
}

/** quoted-pair: "\" ( HTAB / SP / VCHAR / obs-text ). */
function isQuotedPairChar(c: string): boolean {
  const code = c.charCodeAt(0);
  return code === 0x09 || (code >= 0x20 && code <= 0x7e) || (code >= 0x80 && code <= 0xff);
}

type Credential =
  /** Not an X-Matrix credential (another scheme, or not a credential at all). */
  | { kind: "other" }
  /** X-Matrix, but not usable. */
  | { kind: "bad" }
  | { kind: "ok"; auth: XMatrixAuth };

const KNOWN_PARAMS = new Set(["origin", "destination", "key", "sig"]);

/** Parses one header value (one credential: `scheme 1*SP auth-param *( OWS "," OWS auth-param )`). */
function parseCredential(raw: unknown): Credential {
  if (typeof raw !== "string") return { kind: "other" };
  let i = 0;
  const s = raw;
  const n = s.length;
  while (i < n && isWs(s[i])) i++;
  const schemeStart = i;
  while (i < n && isTchar(s[i]!)) i++;
  const scheme = s.slice(schemeStart, i);
  if (scheme.toLowerCase() !== "x-matrix") return { kind: "other" };
  if (n > MAX_HEADER_LENGTH) return { kind: "bad" };
  if (!isWs(s[i])) return { kind: "bad" }; // "X-Matrix" alone, or "X-Matrixfoo"
  const params = new Map<string, string>();
  for (;;) {
    // OWS, then empty list elements are allowed (RFC 9110 §5.6.1).
    while (i < n && (isWs(s[i]) || s[i] === ",")) i++;
    if (i >= n) break;
    const nameStart = i;
    while (i < n && isTchar(s[i]!)) i++;
    if (i === nameStart) return { kind: "bad" };
    const name = s.slice(nameStart, i).toLowerCase();
    while (isWs(s[i])) i++;
    if (s[i] !== "=") return { kind: "bad" };
    i++;
    while (isWs(s[i])) i++;
    let value = "";
    if (s[i] === '"') {
      i++;
      let closed = false;
      while (i < n) {
        const c = s[i]!;
        if (c === '"') {
          closed = true;
          i++;
          break;
        }
        if (c === "\\") {
          const next = s[i + 1];
          if (next === undefined || !isQuotedPairChar(next)) return { kind: "bad" };
          value += next;
          i += 2;
          continue;
        }
        if (!isQdtext(c)) return { kind: "bad" };
        value += c;
        i++;
      }
      if (!closed) return { kind: "bad" };
    } else {
      const start = i;
      while (i < n && isUnquotedValueChar(s[i]!)) i++;
      value = s.slice(start, i);
    }
    while (isWs(s[i])) i++;
    if (i < n && s[i] !== ",") return { kind: "bad" };
    if (KNOWN_PARAMS.has(name)) {
      // RFC 9110: each parameter name only once. A repeated one is ambiguous, so the credential is refused.
      if (params.has(name)) return { kind: "bad" };
      params.set(name, value);
    }
  }
  const origin = params.get("origin");
  const key = params.get("key");
  const sig = params.get("sig");
  const destination = params.get("destination");
  if (origin === undefined || parseServerName(origin) === null) return { kind: "bad" };
  if (key === undefined || key.length > MAX_KEY_ID_LENGTH || !PRINTABLE_ASCII.test(key))
    return { kind: "bad" };
  if (sig === undefined || sig.length > MAX_SIG_LENGTH || !PRINTABLE_ASCII.test(sig)) return { kind: "bad" };
  return {
    kind: "ok",
    auth: destination === undefined ? { origin, key, sig } : { origin, destination, key, sig },
  };
}

function parseAll(values: string | readonly string[] | undefined): {
  entries: XMatrixAuth[];
  xMatrix: number;
} {
  const list: readonly unknown[] =
    typeof values === "string" ? [values] : Array.isArray(values) ? values : [];
  const entries: XMatrixAuth[] = [];
  let xMatrix = 0;
  let seen = 0;
  for (const v of list) {
    if (seen++ >= MAX_HEADERS) break;
    let c: Credential;
    try {
      c = parseCredential(v);
    } catch {
      c = { kind: "bad" };
    }
    if (c.kind === "other") continue;
    xMatrix++;
    if (c.kind === "ok") entries.push(c.auth);
  }
  return { entries, xMatrix };
}

/**
 * Parses `Authorization` header value(s) into X-Matrix credentials, one per header.
 *
 * RFC 9110 §11.4 auth-params: scheme `X-Matrix` (case-insensitive) followed by spaces, then comma-separated
 * `name=value` (names case-insensitive, optional whitespace around `,` and `=`, empty elements allowed); values are
 * quoted strings (backslash escapes are undone) or unquoted (see `isUnquotedValueChar`: `:` is accepted).
 * Unknown parameters are ignored. A credential is dropped when it has a syntax error, a repeated
 * origin/destination/key/sig, a missing origin/key/sig, or an origin that is not a valid server name.
 * Other schemes (e.g. `Bearer`) are ignored. Never throws: unusable input gives `[]`.
 */
export function parseXMatrixHeaders(values: string | string[] | undefined): XMatrixAuth[] {
  return parseAll(values).entries;
}

// ---------------------------------------------------------------------------------------------------------------
// Signing and verification

/** The JSON object that is signed (without `signatures`). */
function requestObject(
  method: string,
  uri: string,
  origin: string,
  destinationField: "destination_is" | "destination",
  destination: string,
  body: unknown,
): Record<string, unknown> {
  const obj: Record<string, unknown> = { method, uri, origin, [destinationField]: destination };
  // Like Synapse (`if content is not None`): no body, or a JSON `null` body, means no `content`.
  if (body !== undefined && body !== null) obj.content = body;
  return obj;
}

function quote(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export interface SignXMatrixRequestOptions {
  method: string;
  /** Path and `?query`, exactly as sent. */
  uri: string;
  /** Parsed JSON body; `undefined` (or `null`) for none. */
  body?: unknown;
  /** Our server name (the signing entity). */
  origin: string;
  /** The receiving server's name: signed as `destinationField` and sent as the header's `destination`. */
  destination: string;
  key: SigningKey;
  /**
   * The JSON field that carries `destination`: `destination_is` (homeserver → identity server, as Synapse does;
   * the default) or `destination` (ordinary S2S requests).
   */
  destinationField?: "destination_is" | "destination";
}

/** Signs a request and returns the `Authorization` header value `X-Matrix origin="…",destination="…",key="…",sig="…"`. */
export function signXMatrixRequest(opts: SignXMatrixRequestOptions): string {
  const obj = requestObject(
    opts.method,
    opts.uri,
    opts.origin,
    opts.destinationField ?? "destination_is",
    opts.destination,
    opts.body,
  );
  const sig = signJson(obj, opts.origin, opts.key).signatures[opts.origin]![opts.key.keyId]!;
  return `X-Matrix origin=${quote(opts.origin)},destination=${quote(opts.destination)},key=${quote(opts.key.keyId)},sig=${quote(sig)}`;
}

export interface VerifyXMatrixRequestOptions {
  method: string;
  /** Request path + `?query`, exactly as received (e.g. `request.raw.url`). */
  uri: string;
  /** The parsed JSON body, or `undefined` when the request had none. */
  body: unknown;
  /** The `Authorization` header value(s): pass all of them (`headersDistinct.authorization`). */
  headers: string | string[] | undefined;
  /** Our own server name: the `destination_is` homeservers sign. */
  ownServerName: string;
  keys: ServerKeyCache;
  /** Time at which the key must be valid (default: the key cache's clock). */
  now?: () => number;
}

export interface XMatrixVerified {
  /** The authenticated origin server name. */
  origin: string;
  /** The key id whose signature verified. */
  keyId: string;
}

/** Order in which a failure reason is reported when several credentials fail differently. */
const REASON_RANK: Record<"bad_signature" | "expired_key" | "fetch_failed" | "unknown_key", number> = {
  bad_signature: 4,
  expired_key: 3,
  fetch_failed: 2,
  unknown_key: 1,
};

/**
 * Verifies an X-Matrix signed request. Resolves with the origin if at least one credential's signature verifies
 * with a currently valid key of that origin. All credentials must name the same origin, and every `destination`
 * present must equal `ownServerName`. Rejects with {@link XMatrixError}; when several credentials fail, the
 * reason reported is the first of bad_signature, expired_key, fetch_failed, unknown_key that occurred.
 *
 * The caller still has to check that the origin is allowed to act (e.g. it owns the `mxid`).
 */
export async function verifyXMatrixRequest(opts: VerifyXMatrixRequestOptions): Promise<XMatrixVerified> {
  const { entries, xMatrix } = parseAll(opts.headers);
  if (xMatrix === 0) throw new XMatrixError("missing", "no X-Matrix Authorization header");
  const first = entries[0];
  if (first === undefined) throw new XMatrixError("malformed", "malformed X-Matrix Authorization header");
  const origin = first.origin;
  if (entries.some((e) => e.origin !== origin)) {
    throw new XMatrixError("malformed", "X-Matrix headers name different origins");
  }
  if (entries.some((e) => e.destination !== undefined && e.destination !== opts.ownServerName)) {
    throw new XMatrixError("wrong_destination", "X-Matrix destination is not this server", { origin });
  }

  let bytes: Buffer;
  try {
    bytes = signingBytes(
      requestObject(opts.method, opts.uri, origin, "destination_is", opts.ownServerName, opts.body),
    );
  } catch {
    throw new XMatrixError("malformed", "request body cannot be encoded as canonical JSON", { origin });
  }

  const at = opts.now?.();
  let worst: keyof typeof REASON_RANK | undefined;
  let fetchError: FederationError | undefined;
  const note = (reason: keyof typeof REASON_RANK): void => {
    if (worst === undefined || REASON_RANK[reason] > REASON_RANK[worst]) worst = reason;
  };

  for (const entry of entries.slice(0, MAX_VERIFY_ATTEMPTS)) {
    if (!entry.key.startsWith("ed25519:")) {
      note("unknown_key");
      continue;
    }
    const sig = decodeBase64(entry.sig);
    if (sig === null || sig.length !== 64) {
      note("bad_signature");
      continue;
    }
    let lookup: Awaited<ReturnType<ServerKeyCache["getVerifyKey"]>>;
    try {
      lookup = await opts.keys.getVerifyKey(origin, entry.key, at);
    } catch (e) {
      fetchError ??=
        e instanceof FederationError
          ? e
          : new FederationError("unreachable", `server keys of ${origin}: unexpected failure`, { cause: e });
      note("fetch_failed");
      continue;
    }
    if (lookup.status !== "ok") {
      note(lookup.status);
      continue;
    }
    let ok = false;
    try {
      ok = verify(null, bytes, lookup.key, sig);
    } catch {
      ok = false;
    }
    if (ok) return { origin, keyId: entry.key };
    note("bad_signature");
  }

  const reason = worst ?? "unknown_key";
  const messages: Record<typeof reason, string> = {
    bad_signature: "X-Matrix signature does not verify",
    expired_key: "X-Matrix signing key has expired",
    fetch_failed: `could not fetch the keys of ${origin}`,
    unknown_key: "X-Matrix signing key is not known",
  };
  throw new XMatrixError(reason, messages[reason], {
    origin,
    ...(reason === "fetch_failed" && fetchError !== undefined ? { federationError: fetchError } : {}),
  });
}
