import { endpoint } from "../http/endpoint.js";
import { precomputedAnswer } from "../http/fast-path.js";

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

/** A constant JSON answer, serialised once (also as the bytes the fast path writes). */
function constant(value: object) {
  const body = JSON.stringify(value);
  const answer = precomputedAnswer(body);
  return endpoint({
    // The query string, if any, changes nothing (as for `handle`).
    precomputed: () => answer,
    async handle(_req, reply) {
      reply.type("application/json; charset=utf-8");
      return body;
    },
  });
}

/** The versions list and the v1/v2 status pings. */
export function statusEndpoints() {
  return {
    /** # `GET /_matrix/identity/versions` */
    versions: constant({ versions: SUPPORTED_VERSIONS }),
    /** # `GET /_matrix/identity/v2` (and `GET /_matrix/identity/api/v1`) */
    status: constant({}),
  };
}
