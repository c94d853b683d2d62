import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { createHttpServer } from "../http/server.js";
import type { AdminConfig } from "./config.js";
import type { AdminParts } from "./index.js";
import { registerAdminRoutes, registerSydentInternalRoutes } from "./routes.js";

/** The admin API on its own listener (keep it off the public interface: 127.0.0.1 by default). */
export async function createAdminListener(
  config: AdminConfig,
  admin: AdminParts,
  log: Logger,
  isUnavailable: (err: unknown) => boolean,
): Promise<FastifyInstance> {
  const { app, routes } = await createHttpServer({
    maxBodyBytes: 1024 * 1024,
    trustProxy: false,
    rateLimit: false,
    logger: log.child({ listener: "admin" }),
    isUnavailable,
  });
  registerAdminRoutes(routes, admin.service, admin.tokens);
  if (config.sydent_internal_api) {
    registerSydentInternalRoutes(
      routes,
      admin.service,
      admin.tokens,
      config.sydent_internal_api_allow_unauthenticated_from,
    );
  }
  return app;
}
