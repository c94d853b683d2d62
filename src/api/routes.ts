import type { unsubscribeEndpoints } from "../admin/unsubscribe.js";
import type { Access, Endpoint, RateClass, Route } from "../http/endpoint.js";
import type { accountEndpoints } from "./account.js";
import type { associationEndpoints } from "./associations.js";
import type { healthEndpoints } from "./health.js";
import type { inviteEndpoints } from "./invites.js";
import type { lookupEndpoints } from "./lookup.js";
import type { pubkeyEndpoints } from "./pubkey.js";
import type { statusEndpoints } from "./status.js";
import type { termsEndpoints } from "./terms.js";
import type { validationEndpoints } from "./validation.js";

/** The endpoint groups, each built by its module from the service it calls. */
export interface Endpoints {
  status: ReturnType<typeof statusEndpoints>;
  health: ReturnType<typeof healthEndpoints>;
  account: ReturnType<typeof accountEndpoints>;
  terms: ReturnType<typeof termsEndpoints>;
  lookup: ReturnType<typeof lookupEndpoints>;
  pubkey: ReturnType<typeof pubkeyEndpoints>;
  invites: ReturnType<typeof inviteEndpoints>;
  validation: ReturnType<typeof validationEndpoints>;
  associations: ReturnType<typeof associationEndpoints>;
  unsubscribe: ReturnType<typeof unsubscribeEndpoints>;
}

/** Which optional parts of the API are served (`v1.enabled`, `v1.enable_bind`). */
export interface RouteSwitches {
  v1: boolean;
  v1Bind: boolean;
}

const row = (
  method: Route["method"],
  path: string,
  access: Access,
  limit: RateClass,
  endpoint: Endpoint,
): Route => ({ method, path, access, limit, endpoint });

/**
 * Every route Seraph serves: method, full spec path, who may call it, its rate-limit class, its handler.
 * The 404/405 answers and CORS read from this list. v1 routes are served only with `v1.enabled`.
 */
export function routeTable(e: Endpoints, on: RouteSwitches): Route[] {
  const v2: Route[] = [
    row("GET", "/_matrix/identity/versions", "none", "none", e.status.versions),
    row("GET", "/_matrix/identity/v2", "none", "none", e.status.status),

    row("POST", "/_matrix/identity/v2/account/register", "none", "register", e.account.register),
    // Element starts its terms dialog from this answer's 403 M_TERMS_NOT_SIGNED (as sydent gates it).
    row("GET", "/_matrix/identity/v2/account", "token", "authenticated", e.account.whoami),
    row(
      "POST",
      "/_matrix/identity/v2/account/logout",
      "token-without-terms",
      "authenticated",
      e.account.logout,
    ),
    row("GET", "/_matrix/identity/v2/terms", "none", "none", e.terms.get),
    row("POST", "/_matrix/identity/v2/terms", "token-without-terms", "authenticated", e.terms.accept),

    row(
      "GET",
      "/_matrix/identity/v2/hash_details",
      "token-or-query-token",
      "authenticated",
      e.lookup.hashDetails,
    ),
    row("POST", "/_matrix/identity/v2/lookup", "token", "authenticated", e.lookup.lookup),

    row("GET", "/_matrix/identity/v2/pubkey/isvalid", "none", "none", e.pubkey.isValid),
    row("GET", "/_matrix/identity/v2/pubkey/ephemeral/isvalid", "none", "none", e.pubkey.isValidEphemeral),
    row("GET", "/_matrix/identity/v2/pubkey/:keyId", "none", "none", e.pubkey.publicKey),

    row("POST", "/_matrix/identity/v2/store-invite", "token", "store-invite", e.invites.storeInvite),
    row("POST", "/_matrix/identity/v2/sign-ed25519", "token", "store-invite", e.invites.signEd25519),

    row(
      "POST",
      "/_matrix/identity/v2/validate/email/requestToken",
      "token",
      "request-token",
      e.validation.requestEmailToken,
    ),
    row(
      "POST",
      "/_matrix/identity/v2/validate/email/submitToken",
      "token-or-confirm-form",
      "authenticated",
      e.validation.submitToken,
    ),
    row(
      "GET",
      "/_matrix/identity/v2/validate/email/submitToken",
      "none",
      "none",
      e.validation.submitEmailFromBrowser,
    ),
    row(
      "POST",
      "/_matrix/identity/v2/validate/msisdn/requestToken",
      "token",
      "request-token",
      e.validation.requestMsisdnToken,
    ),
    row(
      "POST",
      "/_matrix/identity/v2/validate/msisdn/submitToken",
      "token-or-confirm-form",
      "authenticated",
      e.validation.submitToken,
    ),
    row(
      "GET",
      "/_matrix/identity/v2/validate/msisdn/submitToken",
      "none",
      "none",
      e.validation.submitMsisdnFromBrowser,
    ),

    row(
      "GET",
      "/_matrix/identity/v2/3pid/getValidated3pid",
      "token",
      "authenticated",
      e.associations.getValidated3pid,
    ),
    row("POST", "/_matrix/identity/v2/3pid/bind", "token", "authenticated", e.associations.bind),
    row(
      "POST",
      "/_matrix/identity/v2/3pid/unbind",
      "session-or-signature",
      "authenticated",
      e.associations.unbind,
    ),

    // The link in every invite email (signed, expiring; see docs/admin.md).
    row("GET", "/_seraph/unsubscribe", "none", "none", e.unsubscribe.page),
    row("POST", "/_seraph/unsubscribe", "none", "store-invite", e.unsubscribe.confirm),

    row("GET", "/_seraph/health", "none", "none", e.health.health),
    row("GET", "/_seraph/ready", "none", "none", e.health.ready),
  ];
  if (!on.v1) return v2;

  const v1: Route[] = [
    row("GET", "/_matrix/identity/api/v1", "none", "none", e.status.status),

    row("GET", "/_matrix/identity/api/v1/lookup", "none", "none", e.lookup.lookupOne),
    row("POST", "/_matrix/identity/api/v1/bulk_lookup", "none", "none", e.lookup.bulkLookup),

    row("GET", "/_matrix/identity/api/v1/pubkey/isvalid", "none", "none", e.pubkey.isValid),
    row(
      "GET",
      "/_matrix/identity/api/v1/pubkey/ephemeral/isvalid",
      "none",
      "none",
      e.pubkey.isValidEphemeral,
    ),
    row("GET", "/_matrix/identity/api/v1/pubkey/:keyId", "none", "none", e.pubkey.publicKey),

    row("POST", "/_matrix/identity/api/v1/store-invite", "none", "store-invite", e.invites.storeInvite),
    row("POST", "/_matrix/identity/api/v1/sign-ed25519", "none", "store-invite", e.invites.signEd25519),

    row(
      "POST",
      "/_matrix/identity/api/v1/validate/email/requestToken",
      "none",
      "request-token",
      e.validation.requestEmailToken,
    ),
    row(
      "POST",
      "/_matrix/identity/api/v1/validate/email/submitToken",
      "none",
      "authenticated",
      e.validation.submitToken,
    ),
    row(
      "GET",
      "/_matrix/identity/api/v1/validate/email/submitToken",
      "none",
      "none",
      e.validation.submitEmailFromBrowser,
    ),
    row(
      "POST",
      "/_matrix/identity/api/v1/validate/msisdn/requestToken",
      "none",
      "request-token",
      e.validation.requestMsisdnToken,
    ),
    row(
      "POST",
      "/_matrix/identity/api/v1/validate/msisdn/submitToken",
      "none",
      "authenticated",
      e.validation.submitToken,
    ),
    row(
      "GET",
      "/_matrix/identity/api/v1/validate/msisdn/submitToken",
      "none",
      "none",
      e.validation.submitMsisdnFromBrowser,
    ),

    row(
      "GET",
      "/_matrix/identity/api/v1/3pid/getValidated3pid",
      "none",
      "authenticated",
      e.associations.getValidated3pid,
    ),
    row(
      "POST",
      "/_matrix/identity/api/v1/3pid/unbind",
      "session-or-signature",
      "authenticated",
      e.associations.unbind,
    ),
  ];
  // v1 bind is off by default: anyone who knows a session's secret could bind it without an account.
  const v1Bind = row(
    "POST",
    "/_matrix/identity/api/v1/3pid/bind",
    "none",
    "authenticated",
    e.associations.bind,
  );
  return [...v2, ...v1, ...(on.v1Bind ? [v1Bind] : [])];
}
