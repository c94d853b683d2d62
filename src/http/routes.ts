import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from "fastify";

/** Which API a route is mounted under. v1 and v2 routes share their handlers. */
export interface ApiMount {
  readonly version: "v1" | "v2";
  /** Path prefix, e.g. `/_matrix/identity/v2`. */
  readonly prefix: string;
}

export const V1: ApiMount = { version: "v1", prefix: "/_matrix/identity/api/v1" };
export const V2: ApiMount = { version: "v2", prefix: "/_matrix/identity/v2" };

type Handler = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

/** Per-route options: an auth preHandler and a rate limit (requests per minute per client IP). */
export interface RouteOptions {
  preHandler?: Handler | undefined;
  perMinute?: number | undefined;
}

/**
 * Registers routes and remembers their paths, so that a known path asked with the wrong method can be
 * answered 405 rather than 404.
 */
export class RouteTable {
  private readonly patterns: RegExp[] = [];

  constructor(
    private readonly app: FastifyInstance,
    private readonly rateLimited: boolean,
  ) {}

  add(method: HTTPMethods, url: string, handler: Handler, opts: RouteOptions = {}): void {
    const escaped = url.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/:[A-Za-z_]+/g, "[^/]+");
    this.patterns.push(new RegExp(`^${escaped}/?$`));
    const config =
      opts.perMinute && this.rateLimited ? { rateLimit: { max: opts.perMinute, timeWindow: 60_000 } } : {};
    this.app.route({
      method,
      url,
      handler,
      config,
      ...(opts.preHandler ? { preHandler: opts.preHandler } : {}),
    });
  }

  /** Whether some route exists for this path under any method. */
  knowsPath(path: string): boolean {
    return this.patterns.some((p) => p.test(path));
  }
}
