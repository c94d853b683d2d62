import type { RouteTable } from "../http/routes.js";

/** Spec versions this server implements (every one, patch versions included). */
export const SUPPORTED_VERSIONS = [
  "r0.1.0",
  "r0.2.0",
  "r0.2.1",
  "r0.3.0",
  "v1.1",
  "v1.2",
  "v1.3",
  "v1.4",
  "v1.5",
  "v1.6",
  "v1.7",
  "v1.8",
  "v1.9",
  "v1.10",
  "v1.11",
  "v1.12",
  "v1.13",
  "v1.14",
  "v1.15",
  "v1.16",
  "v1.17",
  "v1.18",
  "v1.19",
] as const;

/** `GET /_matrix/identity/versions` and the v1/v2 status pings. */
export function registerStatusRoutes(routes: RouteTable, opts: { v1: boolean }): void {
  const versions = { versions: SUPPORTED_VERSIONS };
  routes.add("GET", "/_matrix/identity/versions", async () => versions);
  routes.add("GET", "/_matrix/identity/v2", async () => ({}));
  if (opts.v1) routes.add("GET", "/_matrix/identity/api/v1", async () => ({}));
}
