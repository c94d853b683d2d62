import type { RouteTable } from "../http/routes.js";

/** `/_seraph/health` (the process answers) and `/_seraph/ready` (it can serve: database reachable, not stopping). */
export function registerHealthRoutes(
  routes: RouteTable,
  opts: { databaseReachable: () => Promise<boolean>; stopping: () => boolean },
): void {
  routes.add("GET", "/_seraph/health", async () => ({ status: "ok" }));
  routes.add("GET", "/_seraph/ready", async (_req, reply) => {
    if (opts.stopping()) {
      reply.code(503);
      return { errcode: "M_UNKNOWN", error: "Shutting down" };
    }
    if (!(await opts.databaseReachable())) {
      reply.code(503);
      return { errcode: "M_UNKNOWN", error: "Database unreachable" };
    }
    return { status: "ready" };
  });
}
