/** Public surface of the federation module (the homeserver client and its building blocks). */
export {
  HomeserverClient,
  type HomeserverClientOptions,
  MAX_RESPONSE_BYTES,
  type ServerKeys,
} from "./client.js";
export { createSystemDnsResolver, type DnsResolver, type LookupAddress, type SrvRecord } from "./dns.js";
export { FederationError, type FederationErrorKind, isFederationError } from "./errors.js";
export {
  DEFAULT_IPV4_DENYLIST,
  DEFAULT_IPV6_DENYLIST,
  IpGuard,
  type IpGuardOptions,
  parseCidr,
} from "./ip-guard.js";
export { ServerKeyCache, type ServerKeySource } from "./key-cache.js";
export { DEFAULT_FEDERATION_PORT, type ResolvedServer, ServerNameResolver } from "./resolver.js";
export {
  formatHost,
  isValidServerName,
  type ParsedServerName,
  parseServerName,
  serverPartOfUserId,
} from "./server-name.js";
export {
  isXMatrixError,
  parseXMatrixHeaders,
  signXMatrixRequest,
  verifyXMatrixRequest,
  type XMatrixAuth,
  XMatrixError,
} from "./x-matrix.js";
