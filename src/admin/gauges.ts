import type * as Prom from "prom-client";
import type { Registry } from "prom-client";
import { lazyModule } from "../core/lazy-module.js";
import { packageVersion } from "../core/package-root.js";
import type { KyselyAdminViewRepository } from "../store/admin-views.js";
import type { RefusalReason } from "./abuse.js";

const promClient = lazyModule<typeof Prom>("prom-client");

/**
 * Gauges an operator alerts on, read from the database at each scrape, the build info series and the
 * refused-invite counter. Returns the function that counts a refusal.
 */
export function registerAdminMetrics(
  registry: Registry,
  views: KyselyAdminViewRepository,
  now: () => number = Date.now,
): (reason: RefusalReason) => void {
  // Only with metrics served, when Metrics.create has loaded prom-client already (the same module).
  const { Counter, Gauge } = promClient();
  const refused = new Counter({
    name: "seraph_invites_refused_total",
    help: "store-invite requests refused by the abuse controls, by reason (server, room, keyword, suppressed)",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  const build = new Gauge({
    name: "seraph_build_info",
    help: "Always 1; the labels tell the running version and Node.js",
    labelNames: ["version", "node"] as const,
    registers: [registry],
  });
  build.set({ version: packageVersion(), node: process.version }, 1);

  let pending: ReturnType<KyselyAdminViewRepository["counts"]> | undefined;
  /** One set of queries per scrape, shared by the gauges. */
  const counts = () => {
    pending ??= views.counts().finally(() => {
      pending = undefined;
    });
    return pending;
  };
  const gauge = (
    name: string,
    help: string,
    read: (c: Awaited<ReturnType<KyselyAdminViewRepository["counts"]>>) => number,
  ) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        this.set(read(await counts()));
      },
    });
  gauge("seraph_associations", "3PID associations held", (c) => c.associations);
  gauge("seraph_invites_pending", "Stored invites not yet delivered", (c) => c.invites);
  gauge("seraph_onbind_jobs_pending", "onbind deliveries waiting", (c) => c.onbindPending);
  gauge("seraph_onbind_jobs_failing", "onbind deliveries that failed at least once", (c) => c.onbindFailing);
  gauge("seraph_validation_sessions", "Validation sessions held", (c) => c.sessions);
  const age = (name: string, help: string, pick: "pepperTs" | "signingKeyTs") =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const ts = (await views.keyAges())[pick];
        if (ts !== undefined) this.set((now() - ts) / 1000);
      },
    });
  age("seraph_lookup_pepper_age_seconds", "Age of the current lookup pepper", "pepperTs");
  age("seraph_signing_key_age_seconds", "Age of the newest valid long-term signing key", "signingKeyTs");
  return (reason) => refused.inc({ reason });
}
