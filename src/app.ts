import type { FastifyInstance } from "fastify";
import { sql } from "kysely";
import pino, { type Logger } from "pino";
import { registerAccountRoutes } from "./api/account.js";
import { registerAssociationRoutes } from "./api/associations.js";
import { registerHealthRoutes } from "./api/health.js";
import { registerInviteRoutes } from "./api/invites.js";
import { registerV1LookupRoutes, registerV2LookupRoutes } from "./api/lookup.js";
import { registerPubkeyRoutes } from "./api/pubkey.js";
import { registerStatusRoutes } from "./api/status.js";
import { registerTermsRoutes } from "./api/terms.js";
import { registerValidationRoutes } from "./api/validation.js";
import type { ResolvedConfig } from "./config/load.js";
import { loadOrCreateKeyFile } from "./crypto/key-file.js";
import { createMailer, type Mailer } from "./delivery/index.js";
import { createSmsProvider, type SmsProvider } from "./delivery/sms/index.js";
import { SmsCodeSender } from "./delivery/sms/phone-codes.js";
import { HomeserverClient, ServerKeyCache } from "./federation/index.js";
import { requireAuth } from "./http/auth.js";
import { Metrics } from "./http/metrics.js";
import { PageRenderer } from "./http/pages.js";
import { V1, V2 } from "./http/routes.js";
import { createHttpServer } from "./http/server.js";
import { AccountService } from "./identity/accounts.js";
import { AssociationService } from "./identity/associations.js";
import { type BackgroundGate, BackgroundTasks } from "./identity/background.js";
import { HomeserverRequestAuth } from "./identity/homeserver-auth.js";
import { InviteService } from "./identity/invites.js";
import { KeyService } from "./identity/keys.js";
import { LookupService } from "./identity/lookup.js";
import { NextLinkPolicy } from "./identity/next-link.js";
import { OnbindDelivery } from "./identity/onbind.js";
import { HomeserverOpenIdVerifier } from "./identity/openid.js";
import { MemoryRateLimiter } from "./identity/rate-limiter.js";
import { RedisRateLimiter } from "./identity/redis-rate-limiter.js";
import { Terms } from "./identity/terms.js";
import { ValidationService } from "./identity/validation.js";
import { KyselyAccountRepository } from "./store/accounts.js";
import { KyselyAssociationRepository } from "./store/associations.js";
import { migrateToLatest, openStore, type Store } from "./store/database.js";
import { isDatabaseUnavailable } from "./store/errors.js";
import { KyselyInviteRepository } from "./store/invites.js";
import { KyselyKeyRepository } from "./store/keys.js";
import { KyselyOnbindJobRepository } from "./store/onbind-jobs.js";
import { KyselyPepperRepository } from "./store/peppers.js";
import { KyselySessionRepository } from "./store/sessions.js";

/** A wired Seraph instance: HTTP app, services and the resources they hold. */
export interface Seraph {
  readonly app: FastifyInstance;
  readonly config: ResolvedConfig;
  readonly store: Store;
  readonly keys: KeyService;
  readonly lookup: LookupService;
  readonly onbind: OnbindDelivery;
  readonly log: Logger;
  /** Starts listening and the background tasks; resolves with the base URL actually bound. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

export interface SeraphOptions {
  logger?: Logger;
  /** Replaces the configured mailer (tests). */
  mailer?: Mailer;
  /** Replaces the configured SMS provider (tests). */
  sms?: SmsProvider;
  now?: () => number;
  /** Replaces the homeserver client built from `federation.*` (tests inject DNS stubs this way). */
  homeservers?: HomeserverClient;
  /** Set in a worker of `seraph serve --workers N` (src/cluster/worker.ts). */
  cluster?: ClusterMember;
}

/** What a cluster worker changes: shared background tasks only in the leader, metrics served by the primary. */
export interface ClusterMember extends BackgroundGate {
  /** Hands the registry to the primary's metrics listener instead of serving it here. */
  shareMetrics(registry: Metrics["registry"]): void;
}

/** Creates the process logger; secrets in headers and query strings are never written. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    redact: { paths: ["req.headers.authorization", "*.password", "*.access_token", "*.client_secret"] },
  });
}

/**
 * Builds a Seraph instance from configuration: opens and migrates the database, loads (or creates) the
 * signing key, and mounts every API. Does not listen yet.
 */
export async function createSeraph(config: ResolvedConfig, opts: SeraphOptions = {}): Promise<Seraph> {
  const log = opts.logger ?? createLogger(config.log.level);
  const now = opts.now ?? Date.now;
  const store = await openStore(config.database, log);
  const closers: Array<() => Promise<void>> = [() => store.close()];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch((err) => log.warn({ err }, "close failed"));
  };
  try {
    const applied = await migrateToLatest(store);
    if (applied.length) log.info({ applied }, "database migrated");

    // Keys
    const { keys: fileKeys, created } = loadOrCreateKeyFile(config.signing_key_path);
    if (created) log.info({ path: config.signing_key_path }, "generated a new signing key");
    const keyRepo = new KyselyKeyRepository(store.db);
    const keys = await KeyService.load(fileKeys, keyRepo, now());

    // prom-client, the counters, the per-request hook and process metrics only when metrics are served.
    const metrics = await Metrics.create(config.metrics.enabled);

    // Outbound: mail, SMS, homeservers (counted for /metrics)
    const rawMailer = opts.mailer ?? createMailer(config.email, log);
    closers.push(() => rawMailer.close());
    const mailer: Mailer = {
      send: Metrics.counted(
        (mail) => rawMailer.send(mail),
        (ok, mail) => metrics.emails.inc({ template: mail.template, result: ok ? "sent" : "failed" }),
      ),
      close: () => rawMailer.close(),
    };
    const rawSms = opts.sms ?? createSmsProvider(config.sms, log);
    const sms = new SmsCodeSender(config.sms, {
      name: rawSms.name,
      send: Metrics.counted(
        (msg) => rawSms.send(msg),
        (ok) => metrics.sms.inc({ result: ok ? "sent" : "failed" }),
      ),
      close: () => rawSms.close(),
    });
    closers.push(() => sms.close());
    const homeservers =
      opts.homeservers ??
      new HomeserverClient({
        ipAllowlist: config.federation.ip_allowlist,
        ipDenylist: config.federation.ip_denylist,
        verifyCertificates: config.federation.verify_certificates,
        connectTimeoutMs: config.federation.connect_timeout_ms,
        requestTimeoutMs: config.federation.request_timeout_ms,
        logger: log,
        userAgent: "Seraph",
      });
    if (!opts.homeservers) closers.push(() => homeservers.close());

    // Rate limits: in this process, or shared by every instance through Redis.
    // ioredis is loaded only when Redis is configured.
    const redis = config.rate_limit.redis_url
      ? new (await import("ioredis")).Redis(config.rate_limit.redis_url, {
          maxRetriesPerRequest: 1,
          enableOfflineQueue: false,
          lazyConnect: true,
        })
      : undefined;
    if (redis) {
      redis.on("error", (err: Error) => log.warn({ err: err.message }, "Redis connection error"));
      closers.push(async () => {
        redis.disconnect();
      });
      // Limits fail open while Redis is away; they apply again once it is back.
      await redis
        .connect()
        .catch((err: Error) => log.warn({ err: err.message }, "Redis unreachable at start"));
    }
    const keyedLimiter = redis ? new RedisRateLimiter(redis, log) : new MemoryRateLimiter(now);
    /** A configured bucket, or no limit at all when `rate_limit.enabled` is false (test rigs). */
    const limitRule = (b: { burst: number; per_hour: number }) =>
      config.rate_limit.enabled ? { burst: b.burst, perHour: b.per_hour } : { burst: 1e12, perHour: 1e12 };

    // Domain services
    const tasks = new BackgroundTasks(log, opts.cluster);
    const invitesRepo = new KyselyInviteRepository(store.db);
    const associationsRepo = new KyselyAssociationRepository(store.db, store.dialect);
    const invites = new InviteService(
      {
        serverName: config.server_name,
        publicBaseUrl: config.public_base_url,
        defaultWebClientLocation: config.email.web_client_location,
        signUrlPrefix: config.v1.enabled ? V1.prefix : V2.prefix,
        usernameRevealChars: config.invites.username_obfuscate_characters,
        domainRevealChars: config.invites.domain_obfuscate_characters,
        webClientAllowlist: config.email.web_client_allowlist,
        limits: {
          perAddress: limitRule(config.rate_limit.invites_per_address),
          perSender: limitRule(config.rate_limit.invites_per_sender),
        },
      },
      invitesRepo,
      associationsRepo,
      keys,
      mailer,
      keyedLimiter,
      now,
    );
    const terms = Terms.load(config.terms.path);
    const accounts = new AccountService(
      {
        tokenLifetimeSeconds: config.accounts.token_lifetime_seconds,
        homeserverAllowlist: config.accounts.homeserver_allowlist,
      },
      new KyselyAccountRepository(store.db),
      new HomeserverOpenIdVerifier(homeservers),
      terms,
      now,
    );
    const limits = config.rate_limit;
    const validation = new ValidationService(
      {
        publicBaseUrl: config.public_base_url,
        sessionLifetimeMs: config.validation.session_lifetime_seconds * 1000,
        maxTokenAttempts: config.validation.max_token_attempts,
        limits: {
          emailPerAddress: limitRule(limits.email_per_address),
          smsPerNumber: limitRule(limits.sms_per_number),
          smsPerCountry: limitRule(limits.sms_per_country),
        },
      },
      new KyselySessionRepository(store.db),
      mailer,
      sms,
      keyedLimiter,
      now,
    );
    const lookup = new LookupService(
      {
        maxAddresses: config.lookup.max_addresses,
        previousPepperGraceMs: config.lookup.previous_pepper_grace_seconds * 1000,
        rotationIntervalMs: config.lookup.pepper_rotation_days * 86_400_000,
        rehashBatchSize: config.lookup.rehash_batch_size,
        rotationSettleMs: config.lookup.rotation_settle_seconds * 1000,
      },
      new KyselyPepperRepository(store.db),
      new KyselyAssociationRepository(store.reader(), store.dialect), // lookups may read from a replica
      now,
    );
    await lookup.init();
    const associations = new AssociationService(
      config.server_name,
      associationsRepo,
      validation,
      keys,
      () => tasks.kick("onbind"),
      now,
    );
    const onbind = new OnbindDelivery(
      {
        serverName: config.server_name,
        maxAttempts: config.onbind.max_attempts,
        maxAgeMs: config.onbind.max_age_hours * 3_600_000,
        initialBackoffMs: config.onbind.initial_backoff_seconds * 1000,
        maxBackoffMs: config.onbind.max_backoff_seconds * 1000,
        leaseMs: Math.max(config.onbind.lease_seconds * 1000, config.federation.request_timeout_ms * 2),
        inviteLifetimeMs: config.invites.lifetime_days * 86_400_000,
      },
      new KyselyOnbindJobRepository(store.db),
      invitesRepo,
      associationsRepo,
      {
        postOnbind: Metrics.counted(
          (server: string, body: object) => homeservers.postOnbind(server, body),
          (ok) => metrics.onbind.inc({ result: ok ? "delivered" : "failed" }),
        ),
      },
      keys,
      log,
      now,
    );
    const homeserverAuth = new HomeserverRequestAuth(
      config.server_name,
      new ServerKeyCache(homeservers, { now }),
    );

    // HTTP
    const { app, routes } = await createHttpServer({
      maxBodyBytes: config.http.max_body_bytes,
      trustProxy: config.http.trusted_proxies.length ? config.http.trusted_proxies : false,
      rateLimit: limits.enabled,
      rateLimitRedis: redis,
      logger: log,
      isUnavailable: isDatabaseUnavailable,
    });
    if (config.metrics.enabled) metrics.instrument(app);
    let stopping = false;
    registerHealthRoutes(routes, {
      stopping: () => stopping,
      databaseReachable: async () => {
        try {
          await sql`select 1`.execute(store.db);
          return true;
        } catch {
          return false;
        }
      },
    });
    registerStatusRoutes(routes, { v1: config.v1.enabled });
    const allowQuery = config.auth.allow_query_token;
    const authNoTerms = requireAuth(accounts, allowQuery, true);
    const auth = requireAuth(accounts, allowQuery);
    const authPerMinute = limits.authenticated_per_minute;
    registerAccountRoutes(routes, accounts, {
      authNoTerms,
      registerPerMinute: limits.register_per_minute,
      authPerMinute,
    });
    registerTermsRoutes(routes, terms, accounts, { authNoTerms, authPerMinute });
    registerV2LookupRoutes(routes, lookup, { auth, authPerMinute });
    if (config.v1.enabled) registerV1LookupRoutes(routes, lookup, associations);
    const pages = new PageRenderer(config.email.templates_dir, config.email.default_brand);
    const nextLinks = new NextLinkPolicy(config.validation.next_link_allowlist);
    for (const mount of config.v1.enabled ? [V1, V2] : [V2]) {
      const mountAuth = mount.version === "v2" ? auth : undefined;
      registerPubkeyRoutes(routes, mount, keys);
      registerInviteRoutes(routes, mount, invites, config.public_base_url, {
        auth: mountAuth,
        perMinute: limits.store_invite_per_minute,
      });
      registerValidationRoutes(routes, mount, validation, {
        auth: mountAuth,
        requestTokenPerMinute: limits.request_token_per_minute,
        authPerMinute,
        pages,
        nextLinks,
      });
      registerAssociationRoutes(routes, mount, validation, associations, {
        auth: mountAuth,
        authPerMinute,
        bind: mount.version === "v2" || config.v1.enable_bind,
        verifyHomeserver: (req) => homeserverAuth.verify(req),
      });
    }
    closers.push(() => app.close());

    // Background work (started by listen)
    const startTasks = () => {
      tasks.add("onbind", config.onbind.poll_interval_ms, () => onbind.runDue());
      tasks.add("lookup-peppers", config.lookup.maintenance_interval_seconds * 1000, () => lookup.maintain());
      tasks.add("session-reaper", 10 * 60_000, () => validation.reap());
      tasks.add("invite-purge", 60 * 60_000, () => onbind.purgeExpiredInvites());
      // Revocations made with `seraph keys revoke` (possibly by another instance) reach this one.
      tasks.add("keys-refresh", 60_000, () => keys.refresh(), { everyProcess: true });
    };

    let closed = false;
    return {
      app,
      config,
      store,
      keys,
      lookup,
      onbind,
      log,
      async listen() {
        const address = await app.listen({ host: config.listen.host, port: config.listen.port });
        if (metrics.registry && opts.cluster) opts.cluster.shareMetrics(metrics.registry);
        else if (config.metrics.enabled) {
          const server = await metrics.serve(config.metrics.host, config.metrics.port);
          closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
        }
        startTasks();
        return address;
      },
      async close() {
        if (closed) return;
        closed = true;
        stopping = true;
        await tasks.stop();
        await closeAll();
      },
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}
