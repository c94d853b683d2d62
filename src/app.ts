import type { FastifyInstance } from "fastify";
import pino, { type Logger } from "pino";
import type PinoPretty from "pino-pretty";
import type { AdminParts } from "./admin/index.js";
import { wireAdmin } from "./admin/wire.js";
import type { ResolvedConfig } from "./config/load.js";
import { configWarnings } from "./config/warnings.js";
import { lazyModule } from "./core/lazy-module.js";
import { loadOrCreateKeyFile } from "./crypto/key-file.js";
import type { Mailer } from "./delivery/index.js";
import type { SmsProvider } from "./delivery/sms/index.js";
import type { HomeserverClient } from "./federation/index.js";
import type { RouteLimitStore } from "./http/server.js";
import { hasUnfinishedSydentImport } from "./import/unfinished.js";
import { type BackgroundGate, BackgroundTasks } from "./infra/background.js";
import { withAddressRedaction } from "./infra/log-redaction.js";
import { Metrics } from "./infra/metrics.js";
import type { KeyedRateLimiter } from "./infra/rate-limiter.js";
import { connectRedis, keyedLimiter } from "./infra/redis.js";
import { KeyService } from "./services/keys.js";
import type { LookupService } from "./services/lookup.js";
import type { OnbindDelivery } from "./services/onbind.js";
import { migrateToLatest, openStore, type Store } from "./store/database.js";
import { repositories } from "./store/repositories.js";
import { createApi } from "./wiring/api.js";
import { createOutbound } from "./wiring/outbound.js";
import { createServices, type Services } from "./wiring/services.js";
import { startTasks } from "./wiring/tasks.js";

/** A wired Seraph instance: HTTP app, services and the resources they hold. */
export interface Seraph {
  readonly app: FastifyInstance;
  readonly config: ResolvedConfig;
  readonly store: Store;
  readonly keys: KeyService;
  readonly lookup: LookupService;
  readonly onbind: OnbindDelivery;
  readonly log: Logger;
  /** Operator tools: admin API, personal data, invites, abuse controls (docs/admin.md). */
  readonly admin: AdminParts;
  /** Starts listening and the background tasks; resolves with the base URL actually bound. */
  listen(): Promise<string>;
  /** After listen(): the metrics endpoint's absolute URL, when metrics are served. */
  readonly metricsUrl: string | undefined;
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
  /** Rate limits kept by the primary for all workers (used unless Redis shares them). */
  limits: { keyed: KeyedRateLimiter; routeStore(): RouteLimitStore };
}

/** pino-pretty, only for the human log format (not needed, nor loaded, for JSON lines). */
const pinoPretty = lazyModule<typeof PinoPretty>("pino-pretty");

/**
 * Creates the process logger; secrets in headers and query strings are never written. `pretty`: one coloured
 * human line per entry (pino-pretty); `json`: JSON lines. Default: pretty on a terminal, JSON otherwise.
 */
export function createLogger(level: string, format?: "pretty" | "json"): Logger {
  const options = {
    level,
    redact: { paths: ["req.headers.authorization", "*.password", "*.access_token", "*.client_secret"] },
  };
  if ((format ?? (process.stdout.isTTY ? "pretty" : "json")) === "json") return pino(options);
  return pino(
    options,
    pinoPretty()({ sync: true, colorize: process.stdout.isTTY === true, translateTime: "SYS:standard" }),
  );
}

/** The logger of a Seraph instance: addresses redacted unless `log.redact_addresses` is off; warns about
 * dangerous settings once. */
function processLogger(config: ResolvedConfig, given: Logger | undefined): Logger {
  const base = given ?? createLogger(config.log.level, config.log.format);
  const log = config.log.redact_addresses ? withAddressRedaction(base) : base;
  for (const w of configWarnings(config)) log.warn({ setting: w.key }, w.message);
  return log;
}

/** Loads (or creates) the key file and records its keys as published. */
async function loadKeys(path: string, store: Store, log: Logger, now: number): Promise<KeyService> {
  const { keys, created } = loadOrCreateKeyFile(path);
  if (created) log.info({ path }, "generated a new signing key");
  // Ephemeral key checks may read from a streaming replica (database.postgres.read_replicas).
  const replica = store.reader() === store.db ? undefined : repositories(store.reader(), store.dialect).keys;
  return KeyService.load(keys, store.repos.keys, now, replica);
}

/**
 * Builds a Seraph instance from configuration: opens and migrates the database, loads (or creates) the
 * signing key, builds every service and mounts the API. Does not listen yet. Closes in reverse order.
 */
export async function createSeraph(config: ResolvedConfig, opts: SeraphOptions = {}): Promise<Seraph> {
  const log = processLogger(config, opts.logger);
  const now = opts.now ?? Date.now;
  const closers: Array<() => Promise<void>> = [];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch((err) => log.warn({ err }, "close failed"));
  };
  try {
    const store = await openStore(config.database, log);
    closers.push(() => store.close());
    const applied = await migrateToLatest(store);
    if (applied.length) log.info({ applied }, "database migrated");
    if (await hasUnfinishedSydentImport(store.db)) {
      throw new Error(
        "this database holds an import from sydent that has not finished: run the same `seraph import-sydent` command with --resume first",
      );
    }
    const keys = await loadKeys(config.signing_key_path, store, log, now());
    // prom-client, the counters, the per-request hook and process metrics only when metrics are served.
    const metrics = await Metrics.create(config.metrics.enabled);
    const out = createOutbound(config, log, metrics, opts);
    closers.push(() => out.close());
    const redis = await connectRedis(config.rate_limit, log);
    if (redis) closers.push(async () => void redis.disconnect());
    const tasks = new BackgroundTasks(log, opts.cluster);
    const shared = redis ? undefined : opts.cluster?.limits;
    const limiter = shared?.keyed ?? keyedLimiter(redis, log, now);
    let services: Services | undefined;
    const admin = await wireAdmin(config, store, {
      log,
      keys,
      registry: metrics.registry,
      kickOnbind: () => tasks.kick("onbind"),
      invites: () => services!.invites,
      now,
    });
    const guard = admin.parts.policy;
    services = await createServices(config, { store, out, keys, limiter, tasks, metrics, guard, log, now });
    let stopping = false;
    const app = await createApi(
      config,
      { ...services, keys, invitePolicy: guard, presentation: out.presentation },
      { ping: store.ping, stopping: () => stopping, redis, routeStore: shared?.routeStore(), log },
    );
    if (config.metrics.enabled) metrics.instrument(app);
    closers.push(() => app.close());
    let metricsUrl: string | undefined;
    return {
      app,
      config,
      store,
      keys,
      lookup: services.lookup,
      onbind: services.onbind,
      log,
      admin: admin.parts,
      get metricsUrl() {
        return metricsUrl;
      },
      async listen() {
        const address = await app.listen({ host: config.listen.host, port: config.listen.port });
        if (metrics.registry && opts.cluster) opts.cluster.shareMetrics(metrics.registry);
        else if (config.metrics.enabled) {
          const served = await metrics.serve(config.metrics.host, config.metrics.port);
          metricsUrl = served.url;
          closers.push(served.close);
        }
        const closeAdmin = await admin.listen();
        if (closeAdmin) closers.push(closeAdmin);
        startTasks(tasks, config, { ...services, keys });
        admin.addTasks(tasks);
        return address;
      },
      async close() {
        if (stopping) return;
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
