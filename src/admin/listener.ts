import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { createHttpServer } from "../http/server.js";
import type { AdminConfig } from "./config.js";
import type { AdminParts } from "./index.js";
import { AdminRouteList, registerAdminRoutes, registerSydentInternalRoutes } from "./routes.js";

/** The admin API on its own listener (keep it off the public interface: 127.0.0.1 by default). */
export async function createAdminListener(
  config: AdminConfig,
  admin: AdminParts,
  log: Logger,
  isDatabaseDown: (err: Error) => boolean,
): Promise<FastifyInstance> {
  const routes = new AdminRouteList();
  registerAdminRoutes(routes, admin.service, admin.tokens);
  if (config.sydent_internal_api) {
    registerSydentInternalRoutes(
      routes,
      admin.service,
      admin.tokens,
      config.sydent_internal_api_allow_unauthenticated_from,
    );
  }
  return createHttpServer(
    {
      maxBodyBytes: 1024 * 1024,
      trustProxy: false,
      rateLimit: {
        enabled: false,
        perMinute: {
          none: undefined,
          register: undefined,
          authenticated: undefined,
          "request-token": undefined,
          "store-invite": undefined,
        },
      },
      guards: {
        token: undefined,
        "token-without-terms": undefined,
        "token-or-query-token": undefined,
        "token-or-confirm-form": undefined,
        "session-or-signature": undefined,
      },
      logger: log.child({ listener: "admin" }),
      isDatabaseDown,
    },
    routes.rows,
  );
}
