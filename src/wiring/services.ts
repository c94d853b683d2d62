import type { ResolvedConfig } from "../config/load.js";
import type { Logger } from "../core/logger.js";
import { ServerKeyCache } from "../federation/index.js";
import type { BackgroundTasks } from "../infra/background.js";
import { Metrics } from "../infra/metrics.js";
import type { KeyedRateLimiter } from "../infra/rate-limiter.js";
import { type AccountService, createAccountService } from "../services/accounts.js";
import { AssociationService } from "../services/associations.js";
import { HomeserverRequestAuth } from "../services/homeserver-auth.js";
import { createInviteService, type InviteGuard, type InviteService } from "../services/invites.js";
import type { KeyService } from "../services/keys.js";
import { createLookupService, type LookupService } from "../services/lookup.js";
import { type BudgetedLookup, budgetEvents, createBudgetedLookup } from "../services/lookup-budget.js";
import { createOnbindDelivery, type OnbindDelivery } from "../services/onbind.js";
import { HomeserverOpenIdVerifier } from "../services/openid.js";
import { Terms } from "../services/terms.js";
import { createValidationService, type ValidationService } from "../services/validation.js";
import type { Store } from "../store/database.js";
import { repositories } from "../store/repositories.js";
import type { Outbound } from "./outbound.js";

/** The domain services of one instance. */
export interface Services {
  terms: Terms;
  accounts: AccountService;
  validation: ValidationService;
  lookup: LookupService;
  associations: AssociationService;
  invites: InviteService;
  onbind: OnbindDelivery;
  homeserverAuth: HomeserverRequestAuth;
  /** Lookups with the lookup budget charged first (what the lookup endpoints call). */
  budgetedLookup: BudgetedLookup;
}

interface ServiceDeps {
  store: Store;
  out: Outbound;
  keys: KeyService;
  limiter: KeyedRateLimiter;
  tasks: BackgroundTasks;
  metrics: Metrics;
  /** Abuse controls and unsubscribe links for store-invite (the admin module's policy). */
  guard: InviteGuard;
  log: Logger;
  now: () => number;
}

/** Builds every service from its configuration section over the repositories of `store`. */
export async function createServices(config: ResolvedConfig, d: ServiceDeps): Promise<Services> {
  const { store, out, keys, limiter, now } = d;
  const repos = store.repos;
  const transact = store.transaction;
  const terms = Terms.load(config.terms.path);
  // Reads that may come from a streaming replica (database.postgres.read_replicas); the primary otherwise.
  const reads = repositories(store.reader(), store.dialect);
  const accounts = createAccountService(config.accounts, {
    repo: repos.accounts,
    verifier: new HomeserverOpenIdVerifier(out.homeservers),
    terms,
    now,
    replica: store.reader() === store.db ? undefined : reads.accounts,
  });
  const validation = createValidationService(config, {
    sessions: repos.sessions,
    mailer: out.mailer,
    phones: out.sms,
    limiter,
    now,
  });
  const lookup = await createLookupService(config.lookup, {
    repos,
    transact,
    now,
    reads,
    indexEvents: {
      ready: (hashes, ms) => d.log.info({ hashes, ms }, "lookup hashes read into memory"),
      failed: (err) => d.log.warn({ err: err.message }, "reading the lookup hashes into memory failed"),
    },
  });
  const associations = new AssociationService(
    config.server_name,
    repos,
    transact,
    validation,
    keys,
    () => d.tasks.kick("onbind"),
    now,
  );
  const invites = createInviteService(config, {
    invites: repos.invites,
    associations: repos.associations,
    keys,
    mailer: out.mailer,
    limiter,
    guard: d.guard,
    now,
  });
  const postOnbind = Metrics.counted(
    (server: string, body: object) => out.homeservers.postOnbind(server, body),
    (ok) => d.metrics.onbind.inc({ result: ok ? "delivered" : "failed" }),
  );
  const onbind = createOnbindDelivery(config, {
    jobs: repos.onbindJobs,
    invites: repos.invites,
    associations: repos.associations,
    transport: { postOnbind },
    transact,
    keys,
    log: d.log,
    now,
  });
  const homeserverAuth = new HomeserverRequestAuth(
    config.server_name,
    new ServerKeyCache(out.homeservers, { now }),
  );
  const budgetedLookup = createBudgetedLookup(config, {
    lookup,
    signed: associations,
    limiter,
    events: budgetEvents((scope) => d.metrics.lookupRefused.inc({ scope }), d.log, now),
  });
  return {
    terms,
    accounts,
    validation,
    lookup,
    associations,
    invites,
    onbind,
    homeserverAuth,
    budgetedLookup,
  };
}
