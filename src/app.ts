import type { FastifyInstance } from "fastify";
import pino, { type Logger } from "pino";
import { registerAccountRoutes } from "./api/account.js";
import { registerInviteRoutes } from "./api/invites.js";
import { registerPubkeyRoutes } from "./api/pubkey.js";
import { registerStatusRoutes } from "./api/status.js";
import { registerTermsRoutes } from "./api/terms.js";
import type { ResolvedConfig } from "./config/load.js";
import { loadOrCreateKeyFile } from "./crypto/key-file.js";
import { createMailer, type Mailer } from "./delivery/index.js";
import { HomeserverClient } from "./federation/index.js";
import { requireAuth } from "./http/auth.js";
import { V1, V2 } from "./http/routes.js";
import { createHttpServer } from "./http/server.js";
import { AccountService } from "./identity/accounts.js";
import { InviteService } from "./identity/invites.js";
import { KeyService } from "./identity/keys.js";
import { HomeserverOpenIdVerifier } from "./identity/openid.js";
import { Terms } from "./identity/terms.js";
import { KyselyAccountRepository } from "./store/accounts.js";
import { KyselyAssociationRepository } from "./store/associations.js";
import { migrateToLatest, openStore, type Store } from "./store/database.js";
import { KyselyInviteRepository } from "./store/invites.js";
import { KyselyKeyRepository } from "./store/keys.js";

/** A wired Seraph instance: HTTP app, services and the resources they hold. */
export interface Seraph {
  readonly app: FastifyInstance;
  readonly config: ResolvedConfig;
  readonly store: Store;
  readonly keys: KeyService;
  readonly log: Logger;
  /** Starts listening; resolves with the base URL actually bound. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

export interface SeraphOptions {
  logger?: Logger;
  /** Replaces the configured mailer (tests). */
  mailer?: Mailer;
  now?: () => number;
  /** Replaces the homeserver client built from `federation.*` (tests inject DNS stubs this way). */
  homeservers?: HomeserverClient;
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
  const store = openStore({ sqlite: config.database.sqlite });
  try {
    const applied = await migrateToLatest(store);
    if (applied.length) log.info({ applied }, "database migrated");

    const { keys: fileKeys, created } = loadOrCreateKeyFile(config.signing_key_path);
    if (created) log.info({ path: config.signing_key_path }, "generated a new signing key");
    const keyRepo = new KyselyKeyRepository(store.db);
    const keys = await KeyService.load(fileKeys, keyRepo, now());

    const mailer = opts.mailer ?? createMailer(config.email, log);
    const invites = new InviteService(
      {
        serverName: config.server_name,
        publicBaseUrl: config.public_base_url,
        defaultWebClientLocation: config.email.web_client_location,
        signUrlPrefix: config.v1.enabled ? V1.prefix : V2.prefix,
        usernameRevealChars: config.invites.username_obfuscate_characters,
        domainRevealChars: config.invites.domain_obfuscate_characters,
      },
      new KyselyInviteRepository(store.db),
      new KyselyAssociationRepository(store.db),
      keyRepo,
      keys,
      mailer,
      now,
    );
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
    const { app, routes } = await createHttpServer({
      maxBodyBytes: config.http.max_body_bytes,
      trustProxy: config.http.trusted_proxies.length ? config.http.trusted_proxies : false,
      rateLimit: limits.enabled,
      logger: log,
    });
    registerStatusRoutes(routes, { v1: config.v1.enabled });
    const allowQuery = config.auth.allow_query_token;
    const authNoTerms = requireAuth(accounts, allowQuery, true);
    const auth = requireAuth(accounts, allowQuery);
    registerAccountRoutes(routes, accounts, {
      authNoTerms,
      registerPerMinute: limits.register_per_minute,
      authPerMinute: limits.authenticated_per_minute,
    });
    registerTermsRoutes(routes, terms, accounts, {
      authNoTerms,
      authPerMinute: limits.authenticated_per_minute,
    });
    for (const mount of config.v1.enabled ? [V1, V2] : [V2]) {
      registerPubkeyRoutes(routes, mount, keys);
      registerInviteRoutes(routes, mount, invites, config.public_base_url, {
        auth: mount.version === "v2" ? auth : undefined,
        perMinute: limits.store_invite_per_minute,
      });
    }

    let closed = false;
    return {
      app,
      config,
      store,
      keys,
      log,
      async listen() {
        const address = await app.listen({ host: config.listen.host, port: config.listen.port });
        return address;
      },
      async close() {
        if (closed) return;
        closed = true;
        await app.close();
        await mailer.close();
        if (!opts.homeservers) await homeservers.close();
        await store.close();
      },
    };
  } catch (e) {
    await store.close();
    throw e;
  }
}
