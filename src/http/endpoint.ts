import type { OutgoingHttpHeaders } from "node:http";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { JsonSchema } from "./schema.js";

/** A whole `200` JSON answer, serialised once: its bytes and its headers (CORS, type, length). */
export interface PrecomputedAnswer {
  readonly body: Buffer;
  readonly headers: OutgoingHttpHeaders;
}

/**
 * An endpoint's answer from memory, without fastify: `param` is the route's one path parameter
 * (percent-decoded, as fastify gives it; "" for a route without one), `query` the raw query string ("" without
 * one). `undefined` sends the request the normal way (fastify, with validation, errors and everything else).
 */
export type PrecomputedHandler = (param: string, query: string) => PrecomputedAnswer | undefined;

/** Typed parts of a request, as its schemas guarantee them. */
export interface RequestParts {
  Body?: object;
  Querystring?: object;
  Params?: object;
}

/**
 * One endpoint: the schemas fastify compiles for it (validated before `handle` runs) and its handler.
 * Handlers shape the answer; the rules live in the service they call.
 */
export interface Endpoint<P extends RequestParts = RequestParts> {
  readonly schema?: { body?: JsonSchema; querystring?: JsonSchema; params?: JsonSchema };
  /** Pre-serialised answer bodies (status → JSON schema) where the shape is fixed: faster than JSON.stringify. */
  readonly response?: Record<number, JsonSchema>;
  /**
   * For a `GET` open to anyone: its `200` answer from memory, served before fastify routes the request
   * (src/http/fast-path.ts); must agree with `handle`, which serves everything it declines (and HEAD).
   */
  readonly precomputed?: PrecomputedHandler;
  handle(
    req: FastifyRequest<{ Body: P["Body"]; Querystring: P["Querystring"]; Params: P["Params"] }>,
    reply: FastifyReply,
  ): Promise<object | string>;
}

/** Builds an endpoint with its request types inferred from the type argument. */
export function endpoint<P extends RequestParts>(e: Endpoint<P>): Endpoint<P> {
  return e;
}

/**
 * Who may call a route:
 * - `none`: anyone;
 * - `token`: a valid access token of a user who accepted the current terms (v2);
 * - `token-without-terms`: a valid access token, terms not required (logout and terms endpoints);
 * - `token-or-query-token`: like `token`, and `?access_token=` is accepted unless `auth.allow_query_token` is
 *   false (Synapse sends its token for `hash_details` only that way);
 * - `token-or-confirm-form`: like `token`, or the confirmation page's form when
 *   `validation.confirm_link_with_button` is on (a browser posting what the emailed link carries);
 * - `session-or-signature`: proves itself in the request (a validated session, or the homeserver's X-Matrix
 *   signature; checked by the handler).
 */
export type Access =
  | "none"
  | "token"
  | "token-without-terms"
  | "token-or-query-token"
  | "token-or-confirm-form"
  | "session-or-signature";

/** Per-IP request budget classes (`rate_limit.*_per_minute`); `none` has no per-route limit. */
export type RateClass = "none" | "register" | "authenticated" | "request-token" | "store-invite";

/** One row of the route table. */
export interface Route {
  readonly method: "GET" | "POST" | "DELETE";
  /** The full path as the spec writes it, with `:param` for path parameters. */
  readonly path: string;
  readonly access: Access;
  readonly limit: RateClass;
  readonly endpoint: Endpoint;
}
