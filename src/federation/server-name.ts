/**
 * Strict parsing of Matrix server names and user IDs (spec appendix "Server Name", "User Identifiers").
 *
 * The grammar is `server_name = hostname [ ":" port ]` with `hostname = IPv4address / "[" IPv6address "]" / dns-name`.
 * Choices where the spec is loose (all stricter than the spec grammar, never looser):
 * - The whole server name is at most 255 characters.
 * - A DNS name is a sequence of non-empty labels of `[A-Za-z0-9-]`, each at most 63 characters. A trailing dot
 *   (`example.com.`) is rejected, so one server has one spelling (the spec says names are case-sensitive,
 *   and Synapse rejects it too). Upper case is accepted (the spec only discourages it).
 * - A DNS name whose last label is numeric (`127.1`, `1.2.3.4.5`) or hex (`0x7f000001`) is rejected: URL
 *   parsers and `getaddrinfo` would read it as an IPv4 address.
 * - IPv4 literals are four decimal octets 0..255 without leading zeros (`010.0.0.1` is rejected: some parsers
 *   read it as octal).
 * - IPv6 literals must be bracketed, valid per `net.isIPv6`, and use only hex digits, `:` and `.` (no zone id).
 * - The port is 1..65535, written without leading zeros.
 */
import { isIPv4, isIPv6 } from "node:net";

export interface ParsedServerName {
  /** The hostname: a DNS name, a dotted-quad IPv4 address, or an IPv6 address **without** brackets. */
  host: string;
  /** The explicit port, if the server name has one. */
  port?: number;
  /** True for IPv4 and IPv6 literals. */
  ipLiteral: boolean;
}

export const MAX_SERVER_NAME_LENGTH = 255;
/** Spec: "The length of a user ID, including the `@` sigil and the domain, MUST NOT exceed 255 bytes." */
export const MAX_USER_ID_LENGTH = 255;

const DNS_LABEL = /^[A-Za-z0-9-]{1,63}$/;
const NUMERIC_LABEL = /^(?:[0-9]+|0x[0-9a-f]*)$/i;
const IPV4_OCTET = /^(?:0|[1-9][0-9]{0,2})$/;
const IPV6_CHARS = /^[0-9A-Fa-f:.]{2,45}$/;
const PORT = /^[1-9][0-9]{0,4}$/;

/** True if `s` is a DNS name acceptable as (the hostname part of) a server name. */
export function isValidDnsName(s: string): boolean {
  if (s.length === 0 || s.length > MAX_SERVER_NAME_LENGTH) return false;
  const labels = s.split(".");
  for (const label of labels) if (!DNS_LABEL.test(label)) return false;
  return !NUMERIC_LABEL.test(labels[labels.length - 1]!);
}

/** True if `s` is a dotted-quad IPv4 literal as accepted in server names (no leading zeros). */
export function isStrictIPv4(s: string): boolean {
  const parts = s.split(".");
  if (parts.length !== 4) return false;
  for (const p of parts) if (!IPV4_OCTET.test(p) || Number(p) > 255) return false;
  return isIPv4(s);
}

function parseHostname(hostname: string): { host: string; ipLiteral: boolean } | null {
  if (hostname.startsWith("[")) {
    if (!hostname.endsWith("]")) return null;
    const inner = hostname.slice(1, -1);
    if (!IPV6_CHARS.test(inner) || !isIPv6(inner)) return null;
    return { host: inner, ipLiteral: true };
  }
  if (isStrictIPv4(hostname)) return { host: hostname, ipLiteral: true };
  if (isValidDnsName(hostname)) return { host: hostname, ipLiteral: false };
  return null;
}

/**
 * Parses and validates a server name. Returns null for anything that is not strictly valid
 * (empty, too long, whitespace, userinfo, paths, bad port, unbracketed IPv6, ...).
 */
export function parseServerName(s: string): ParsedServerName | null {
  if (typeof s !== "string" || s.length === 0 || s.length > MAX_SERVER_NAME_LENGTH) return null;
  let hostname = s;
  let portText: string | undefined;
  const lastColon = s.lastIndexOf(":");
  if (s.startsWith("[")) {
    const close = s.indexOf("]");
    if (close === -1) return null;
    hostname = s.slice(0, close + 1);
    const rest = s.slice(close + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) return null;
      portText = rest.slice(1);
    }
  } else if (lastColon !== -1) {
    hostname = s.slice(0, lastColon);
    portText = s.slice(lastColon + 1);
  }
  const parsed = parseHostname(hostname);
  if (parsed === null) return null;
  if (portText === undefined) return parsed;
  if (!PORT.test(portText)) return null;
  const port = Number(portText);
  if (port < 1 || port > 65535) return null;
  return { ...parsed, port };
}

/** True if `s` is a valid server name (see {@link parseServerName}). */
export function isValidServerName(s: string): boolean {
  return parseServerName(s) !== null;
}

/**
 * Formats a host for use in a URL or `Host` header: IPv6 addresses get brackets.
 * (`host` as returned by {@link parseServerName}.)
 */
export function formatHost(host: string, port?: number): string {
  const h = isIPv6(host) ? `[${host}]` : host;
  return port === undefined ? h : `${h}:${port}`;
}

/**
 * Validates a Matrix user ID `@localpart:server_name` and returns its server part, or null.
 *
 * The localpart must be non-empty and consist of printable ASCII other than `:` (U+0021..U+007E): this is the
 * current grammar plus the ASCII part of the historical one, so legacy IDs such as `@Alice:example.org` are
 * accepted. Whitespace, control characters and non-ASCII are refused. The whole ID is at most 255 bytes.
 */
export function serverPartOfUserId(userId: string): string | null {
  if (typeof userId !== "string" || userId.length < 4 || userId.length > MAX_USER_ID_LENGTH) return null;
  if (!userId.startsWith("@")) return null;
  const colon = userId.indexOf(":");
  if (colon < 2) return null;
  const localpart = userId.slice(1, colon);
  for (let i = 0; i < localpart.length; i++) {
    const c = localpart.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return null;
  }
  const server = userId.slice(colon + 1);
  return parseServerName(server) === null ? null : server;
}
