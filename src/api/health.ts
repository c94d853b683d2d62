import { endpoint } from "../http/endpoint.js";

/** Liveness and readiness probes for load balancers and orchestrators. */
export function healthEndpoints(opts: { ping: () => Promise<boolean>; stopping: () => boolean }) {
  return {
    /** # `GET /_seraph/health`: the process answers. */
    health: endpoint({
      async handle() {
        return { status: "ok" };
      },
    }),

    /** # `GET /_seraph/ready`: it can serve (database reachable, not stopping). */
    ready: endpoint({
      async handle(_req, reply) {
        if (opts.stopping()) {
          reply.code(503);
          return { errcode: "M_UNKNOWN", error: "Shutting down" };
        }
        if (!(await opts.ping())) {
          reply.code(503);
          return { errcode: "M_UNKNOWN", error: "Database unreachable" };
        }
        return { status: "ready" };
      },
    }),
  };
}
