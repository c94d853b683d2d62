/** The DNS operations server-name resolution needs, injectable for tests. */
import dns from "node:dns";

export interface SrvRecord {
  name: string;
  port: number;
  priority: number;
  weight: number;
}

export interface LookupAddress {
  address: string;
  /** 4 or 6 */
  family: number;
}

export interface DnsResolver {
  /**
   * SRV records for `name`. Must reject with an error whose `code` is `ENOTFOUND` or `ENODATA` when there are
   * none (or resolve to an empty array).
   */
  resolveSrv(name: string): Promise<SrvRecord[]>;
  /** All A/AAAA addresses (CNAMEs followed) for `host`. */
  lookup(host: string): Promise<LookupAddress[]>;
}

/** node:dns: SRV through a `Resolver` (timeout 1000 ms, 2 tries), addresses through `dns.lookup` (all: true). */
export function createSystemDnsResolver(): DnsResolver {
  const resolver = new dns.promises.Resolver({ timeout: 1000, tries: 2 });
  return {
    resolveSrv: (name) => resolver.resolveSrv(name),
    lookup: (host) => dns.promises.lookup(host, { all: true, verbatim: true }),
  };
}

/** True for SRV errors that just mean "there is no such record". */
export function isNoRecordsError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === "ENOTFOUND" || code === "ENODATA" || code === dns.NOTFOUND || code === dns.NODATA;
}
