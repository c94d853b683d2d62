import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { ResolvedConfig } from "../config/load.js";
import type { JsonValue } from "../core/errors.js";
import type { BackgroundTasks } from "../infra/background.js";
import type { InviteService } from "../services/invites.js";
import type { KeyService } from "../services/keys.js";
import { KyselyAdminViewRepository } from "../store/admin-views.js";
import type { Store } from "../store/database.js";
import { isDatabaseUnavailable } from "../store/errors.js";
import { registerAdminMetrics } from "./gauges.js";
import { type AdminParts, createAdmin } from "./index.js";
import { createAdminListener } from "./listener.js";

/** The admin features as the server composes them (see src/app.ts). */
export interface AdminWiring {
  parts: AdminParts;
  /** Starts the admin listener when `admin.enabled`; resolves with its closer. */
  listen(): Promise<(() => Promise<void>) | undefined>;
  /** Adds the purge of stale accounts and expired tokens. */
  addTasks(tasks: BackgroundTasks): void;
}

export async function wireAdmin(
  config: ResolvedConfig,
  store: Store,
  deps: {
    log: Logger;
    keys: KeyService;
    /** Undefined when metrics are not served: the admin gauges and counters are then not kept. */
    registry: import("prom-client").Registry | undefined;
    kickOnbind: () => void;
    invites: () => InviteService;
    now: () => number;
  },
): Promise<AdminWiring> {
  const views = new KyselyAdminViewRepository(store.db);
  const onRefused = deps.registry ? registerAdminMetrics(deps.registry, views, deps.now) : () => {};
  const parts = await createAdmin(store, {
    serverName: config.server_name,
    publicBaseUrl: config.public_base_url,
    unsubscribeLinkDays: config.admin.unsubscribe_link_days,
    log: deps.log,
    keys: deps.keys,
    kickOnbind: deps.kickOnbind,
    onRefused,
    now: deps.now,
    resendInvite: async (id) => {
      const invite = await views.invite(id);
      if (!invite) return false;
      await deps
        .invites()
        .resendInvite({ ...invite, params: JSON.parse(invite.params) as Record<string, JsonValue> }, (key) =>
          views.replaceEphemeralKey(id, invite.ephemeralPublicKey, key, deps.now()),
        );
      return true;
    },
  });
  return {
    parts,
    async listen() {
      if (!config.admin.enabled) return undefined;
      const app: FastifyInstance = await createAdminListener(
        config.admin,
        parts,
        deps.log,
        isDatabaseUnavailable,
      );
      const address = await app.listen({ host: config.admin.listen.host, port: config.admin.listen.port });
      deps.log.info({ address }, "admin API listening");
      return () => app.close();
    },
    addTasks(tasks) {
      const days = config.admin.purge_stale_accounts_days;
      tasks.add("account-purge", config.admin.purge_interval_minutes * 60_000, async () => {
        const tokens = await parts.subjects.purgeExpiredTokens(deps.now());
        const accounts =
          days > 0 ? await parts.subjects.purgeStaleAccounts(deps.now() - days * 86_400_000) : 0;
        return tokens + accounts;
      });
    },
  };
}
