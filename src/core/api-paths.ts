/** The API prefixes the spec defines. Every route's full path is written out in `routes.ts`. */
export const V1_PREFIX = "/_matrix/identity/api/v1";
export const V2_PREFIX = "/_matrix/identity/v2";

/** The API prefix a route path is served under (`/_matrix/identity/v2` or `/_matrix/identity/api/v1`). */
export function apiPrefix(routePath: string | undefined): string {
  return routePath?.startsWith(V1_PREFIX) ? V1_PREFIX : V2_PREFIX;
}
