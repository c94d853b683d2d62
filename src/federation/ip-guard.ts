/**
 * Which IP addresses Seraph may connect to when it talks to homeservers (the SSRF guard;
 * compare sydent CVE-2021-29431).
 *
 * Decision for an address:
 * 1. Not an IP address, or an IPv6 address with a zone id → refused.
 * 2. IPv4-mapped IPv6 (`::ffff:a.b.c.d`) → decided as the IPv4 address `a.b.c.d`.
 * 3. In the allowlist → allowed (the allowlist wins over every deny rule).
 * 4. In the denylist (defaults + configured) → refused.
 * 5. NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`) → decided as the embedded IPv4 address.
 * 6. Otherwise allowed.
 *
 * IPv4 and IPv6 rules are kept in separate `net.BlockList`s, because a single BlockList silently matches
 * IPv4 addresses against IPv4-mapped IPv6 rules and vice versa.
 */
import { BlockList, isIP } from "node:net";

/** Always refused unless allowlisted (IPv4). */
export const DEFAULT_IPV4_DENYLIST: readonly string[] = [
  "0.0.0.0/8", // "this network"
  "10.0.0.0/8", // private
  "100.64.0.0/10", // CGNAT
  "127.0.0.0/8", // loopback
  "169.254.0.0/16", // link-local (incl. cloud metadata 169.254.169.254)
  "172.16.0.0/12", // private
  "192.0.0.0/24", // IETF protocol assignments
  "192.0.2.0/24", // TEST-NET-1
  "192.88.99.0/24", // 6to4 relay anycast (deprecated)
  "192.168.0.0/16", // private
  "198.18.0.0/15", // benchmarking
  "198.51.100.0/24", // TEST-NET-2
  "203.0.113.0/24", // TEST-NET-3
  "224.0.0.0/4", // multicast
  "240.0.0.0/4", // reserved
  "255.255.255.255/32", // broadcast
];

/** Always refused unless allowlisted (IPv6). IPv4-embedding prefixes are handled separately, see above. */
export const DEFAULT_IPV6_DENYLIST: readonly string[] = [
  "::/128", // unspecified
  "::1/128", // loopback
  "::/96", // IPv4-compatible (deprecated); also covers the two above
  "::ffff:0:0:0/96", // IPv4-translated (SIIT), not routable on the Internet
  "100::/64", // discard-only
  "64:ff9b:1::/48", // local-use NAT64
  "2001:db8::/32", // documentation
  "fc00::/7", // unique local
  "fe80::/10", // link-local
  "fec0::/10", // site-local (deprecated)
  "ff00::/8", // multicast
];

export interface IpGuardOptions {
  /** CIDRs (or bare addresses) that are allowed even if denied by a default or configured rule. */
  allowlist?: readonly string[];
  /** Extra CIDRs (or bare addresses) to refuse, on top of the defaults. */
  denylist?: readonly string[];
}

export interface Cidr {
  address: string;
  prefix: number;
  family: "ipv4" | "ipv6";
}

/**
 * Parses `addr/prefix` or a bare address. IPv4-mapped IPv6 CIDRs with prefix >= 96 are turned into the
 * equivalent IPv4 CIDR. Throws a TypeError for anything invalid.
 */
export function parseCidr(s: string): Cidr {
  const slash = s.indexOf("/");
  const address = (slash === -1 ? s : s.slice(0, slash)).trim();
  const family = isIP(address);
  if (family === 0 || address.includes("%")) throw new TypeError(`invalid CIDR ${JSON.stringify(s)}`);
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const p = s.slice(slash + 1).trim();
    if (!/^[0-9]{1,3}$/.test(p) || Number(p) > max) throw new TypeError(`invalid CIDR ${JSON.stringify(s)}`);
    prefix = Number(p);
  }
  if (family === 6) {
    const bytes = ipv6ToBytes(address);
    if (isMapped(bytes) && prefix >= 96) {
      return { address: bytesToIPv4(bytes, 12), prefix: prefix - 96, family: "ipv4" };
    }
  }
  return { address, prefix, family: family === 4 ? "ipv4" : "ipv6" };
}

/** Expands a valid IPv6 address (as accepted by `net.isIPv6`, without zone id) to 16 bytes. */
export function ipv6ToBytes(ip: string): Uint8Array {
  let text = ip;
  const lastColon = text.lastIndexOf(":");
  if (text.includes(".", lastColon)) {
    // Rewrite a trailing dotted quad as two hex groups: "::ffff:1.2.3.4" -> "::ffff:102:304".
    const [a, b, c, d] = text
      .slice(lastColon + 1)
      .split(".")
      .map(Number);
    text = `${text.slice(0, lastColon + 1)}${((a! << 8) | b!).toString(16)}:${((c! << 8) | d!).toString(16)}`;
  }
  const parse = (part: string): number[] =>
    part === "" ? [] : part.split(":").map((g) => Number.parseInt(g, 16));
  const gap = text.indexOf("::");
  let groups: number[];
  if (gap === -1) {
    groups = parse(text);
  } else {
    const head = parse(text.slice(0, gap));
    const tail = parse(text.slice(gap + 2));
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const g = groups[i] ?? 0;
    out[i * 2] = (g >> 8) & 0xff;
    out[i * 2 + 1] = g & 0xff;
  }
  return out;
}

function bytesToIPv4(b: Uint8Array, offset: number): string {
  return `${b[offset]}.${b[offset + 1]}.${b[offset + 2]}.${b[offset + 3]}`;
}

function isMapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

function isNat64(b: Uint8Array): boolean {
  // 64:ff9b::/96
  if (b[0] !== 0x00 || b[1] !== 0x64 || b[2] !== 0xff || b[3] !== 0x9b) return false;
  for (let i = 4; i < 12; i++) if (b[i] !== 0) return false;
  return true;
}

function is6to4(b: Uint8Array): boolean {
  // 2002::/16
  return b[0] === 0x20 && b[1] === 0x02;
}

/**
 * If `ip` is an IPv6 address that embeds an IPv4 address (IPv4-mapped, NAT64 or 6to4), returns that
 * IPv4 address; otherwise null.
 */
export function embeddedIPv4(ip: string): string | null {
  if (isIP(ip) !== 6) return null;
  const b = ipv6ToBytes(ip);
  if (isMapped(b) || isNat64(b)) return bytesToIPv4(b, 12);
  if (is6to4(b)) return bytesToIPv4(b, 2);
  return null;
}

export class IpGuard {
  readonly #allow4 = new BlockList();
  readonly #allow6 = new BlockList();
  readonly #deny4 = new BlockList();
  readonly #deny6 = new BlockList();

  constructor(options: IpGuardOptions = {}) {
    for (const c of options.allowlist ?? []) this.#add(c, this.#allow4, this.#allow6);
    for (const c of [...DEFAULT_IPV4_DENYLIST, ...DEFAULT_IPV6_DENYLIST, ...(options.denylist ?? [])]) {
      this.#add(c, this.#deny4, this.#deny6);
    }
  }

  #add(text: string, v4: BlockList, v6: BlockList): void {
    const c = parseCidr(text);
    (c.family === "ipv4" ? v4 : v6).addSubnet(c.address, c.prefix, c.family);
  }

  /** True if Seraph may connect to `ip` (a bare IPv4 or IPv6 address, no brackets). */
  isAllowed(ip: string): boolean {
    const family = isIP(ip);
    if (family === 0 || ip.includes("%")) return false;
    if (family === 4) {
      if (this.#allow4.check(ip, "ipv4")) return true;
      return !this.#deny4.check(ip, "ipv4");
    }
    const bytes = ipv6ToBytes(ip);
    if (isMapped(bytes)) return this.isAllowed(bytesToIPv4(bytes, 12));
    if (this.#allow6.check(ip, "ipv6")) return true;
    if (this.#deny6.check(ip, "ipv6")) return false;
    if (isNat64(bytes)) return this.isAllowed(bytesToIPv4(bytes, 12));
    if (is6to4(bytes)) return this.isAllowed(bytesToIPv4(bytes, 2));
    return true;
  }
}
