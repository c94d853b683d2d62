import type { FastifyInstance, FastifyRequest, preHandlerAsyncHookHandler } from "fastify";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { InvitePolicy } from "../admin/abuse.js";
import { unsubscribeEndpoints } from "../admin/unsubscribe.js";
import { accountEndpoints } from "../api/account.js";
import { associationEndpoints } from "../api/associations.js";
import { healthEndpoints } from "../api/health.js";
import { inviteEndpoints } from "../api/invites.js";
import { lookupEndpoints } from "../api/lookup.js";
import { pubkeyEndpoints } from "../api/pubkey.js";
import { routeTable } from "../api/routes.js";
import { statusEndpoints } from "../api/status.js";
import { termsEndpoints } from "../api/terms.js";
import { isConfirmForm, validationEndpoints } from "../api/validation.js";
import type { ResolvedConfig } from "../config/load.js";
import type { Presentation } from "../delivery/brands.js";
import { requireAuth } from "../http/auth.js";
import { PageRenderer } from "../http/pages.js";
import { createHttpServer, type RouteLimitStore } from "../http/server.js";
import type { KeyService } from "../services/keys.js";
import { NextLinkPolicy } from "../services/next-link.js";
import { isDatabaseUnavailable } from "../store/errors.js";
import type { Services } from "./services.js";

/** Builds the public HTTP API: every endpoint group over its service, mounted by the route table. */
export async function createApi(
  config: ResolvedConfig,
  s: Services & { keys: KeyService; invitePolicy: InvitePolicy; presentation: Presentation },
  deps: {
    ping: () => Promise<boolean>;
    stopping: () => boolean;
    redis: Redis | undefined;
    /** Per-route counters kept elsewhere (the cluster primary); else in this process or Redis. */
    routeStore?: RouteLimitStore | undefined;
    log: Logger;
  },
): Promise<FastifyInstance> {
  const endpoints = {
    status: statusEndpoints(),
    health: healthEndpoints({ ping: deps.ping, stopping: deps.stopping }),
    account: accountEndpoints(s.accounts),
    terms: termsEndpoints(s.terms, s.accounts),
    lookup: lookupEndpoints(s.budgetedLookup),
    pubkey: pubkeyEndpoints(s.keys),
    invites: inviteEndpoints(s.invites, config.public_base_url, s.presentation),
    validation: validationEndpoints(s.validation, {
      pages: new PageRenderer(s.presentation),
      nextLinks: new NextLinkPolicy(config.validation.next_link_allowlist),
      confirmWithButton: config.validation.confirm_link_with_button,
      isUnavailable: isDatabaseUnavailable,
    }),
    associations: associationEndpoints(s.validation, s.associations, (req) => s.homeserverAuth.verify(req)),
    unsubscribe: unsubscribeEndpoints(s.invitePolicy),
  };
  const routes = routeTable(endpoints, { v1: config.v1.enabled, v1Bind: config.v1.enable_bind });
  const limits = config.rate_limit;
  // `hash_details_only`: Synapse sends its token for hash_details only as ?access_token=.
  const allowQuery = config.auth.allow_query_token === true;
  return createHttpServer(
    {
      isDatabaseDown: isDatabaseUnavailable,
      rateLimit: {
        enabled: limits.enabled,
        redis: deps.redis,
        store: deps.routeStore,
        perMinute: {
          none: undefined,
          register: limits.register_per_minute,
          authenticated: limits.authenticated_per_minute,
          "request-token": limits.request_token_per_minute,
          "store-invite": limits.store_invite_per_minute,
        },
      },
      guards: {
        token: requireAuth(s.accounts, allowQuery),
        "token-or-confirm-form": confirmFormOr(
          config.validation.confirm_link_with_button,
          requireAuth(s.accounts, allowQuery),
        ),
        "token-or-query-token": requireAuth(s.accounts, config.auth.allow_query_token !== false),
        "token-without-terms": requireAuth(s.accounts, allowQuery, true),
        "session-or-signature": undefined,
      },
      maxBodyBytes: config.http.max_body_bytes,
      limits: {
        requestTimeoutMs: config.http.request_timeout_seconds * 1000,
        connectionTimeoutMs: config.http.connection_timeout_seconds * 1000,
        maxConnections: config.http.max_connections,
      },
      trustProxy: config.http.trusted_proxies.length ? config.http.trusted_proxies : false,
      logger: deps.log,
    },
    routes,
  );
}

/**
 * The confirmation page's form (`validation.confirm_link_with_button`) is posted by a browser without an
 * access token: it proves no more than the GET of the emailed link does, so it is let through like the GET.
 */
function confirmFormOr(
  enabled: boolean,
  guard: (req: FastifyRequest) => Promise<void>,
): preHandlerAsyncHookHandler {
  return async (req) => {
    if (enabled && isConfirmForm(req)) return;
    await guard(req);
  };
}
