import { createServer } from "node:http";
import type { FastifyInstance } from "fastify";
import type * as Prom from "prom-client";
import type { Mailer } from "../delivery/index.js";
import type { SmsProvider } from "../delivery/sms/index.js";
import { observeFastAnswers } from "../http/fast-path.js";

/** What the services count with; without metrics served, calls do nothing. */
export interface CounterLike<L extends string> {
  inc(labels: Partial<Record<L, string>>): void;
}

const NOT_COUNTED = { inc() {} };

/**
 * Prometheus metrics of one Seraph process. prom-client is loaded only when metrics are served
 * (`Metrics.create(true)`); otherwise the counters do nothing (nobody could read them).
 */
export class Metrics {
  /** The registry; undefined when metrics are not served. */
  readonly registry: Prom.Registry | undefined;
  readonly requests: Prom.Counter<"method" | "route" | "status"> | undefined;
  readonly duration: Prom.Histogram<"route"> | undefined;
  readonly emails: CounterLike<"template" | "result">;
  readonly sms: CounterLike<"result">;
  readonly onbind: CounterLike<"result">;
  readonly lookupRefused: CounterLike<"scope">;

  /** `enabled`: serve metrics (loads prom-client, collects Node's process metrics too). */
  static async create(enabled: boolean): Promise<Metrics> {
    return new Metrics(enabled ? await import("prom-client") : undefined);
  }

  private constructor(prom: typeof Prom | undefined) {
    if (!prom) {
      this.registry = undefined;
      this.requests = undefined;
      this.duration = undefined;
      this.emails = NOT_COUNTED;
      this.sms = NOT_COUNTED;
      this.onbind = NOT_COUNTED;
      this.lookupRefused = NOT_COUNTED;
      return;
    }
    const registry = new prom.Registry();
    this.registry = registry;
    this.requests = new prom.Counter({
      name: "seraph_http_requests_total",
      help: "HTTP requests by route pattern, method and status",
      labelNames: ["method", "route", "status"] as const,
      registers: [registry],
    });
    this.duration = new prom.Histogram({
      name: "seraph_http_request_duration_seconds",
      help: "HTTP request duration by route pattern",
      labelNames: ["route"] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
    this.emails = new prom.Counter({
      name: "seraph_emails_total",
      help: "Emails by template and result (sent, failed)",
      labelNames: ["template", "result"] as const,
      registers: [registry],
    });
    this.sms = new prom.Counter({
      name: "seraph_sms_total",
      help: "SMS by result (sent, failed)",
      labelNames: ["result"] as const,
      registers: [registry],
    });
    this.onbind = new prom.Counter({
      name: "seraph_onbind_deliveries_total",
      help: "onbind delivery attempts by result (delivered, failed)",
      labelNames: ["result"] as const,
      registers: [registry],
    });
    this.lookupRefused = new prom.Counter({
      name: "seraph_lookup_refused_total",
      help: "Lookups refused by the lookup budget, by scope (account, ip, v1_ip)",
      labelNames: ["scope"] as const,
      registers: [registry],
    });
    prom.collectDefaultMetrics({ register: registry });
  }

  /** Counts and times every request of `app` by its route pattern (never by raw URL: no tokens, bounded labels). */
  instrument(app: FastifyInstance): void {
    const { requests, duration } = this;
    if (!requests || !duration) return;
    app.addHook("onResponse", (req, reply, done) => {
      const route = req.routeOptions.url ?? "unmatched";
      requests.inc({ method: req.method, route, status: String(reply.statusCode) });
      duration.observe({ route }, reply.elapsedTime / 1000);
      done();
    });
    // The constant answers written before fastify routes them (src/http/fast-path.ts) count the same way.
    observeFastAnswers(app, (method, route, status, seconds) => {
      requests.inc({ method, route, status: String(status) });
      duration.observe({ route }, seconds);
    });
  }

  /** Wraps an async function so that each call counts as `ok` or `failed` on `count`. */
  static counted<A extends unknown[], R>(
    fn: (...args: A) => Promise<R>,
    count: (ok: boolean, ...args: A) => void,
  ): (...args: A) => Promise<R> {
    return async (...args: A) => {
      try {
        const out = await fn(...args);
        count(true, ...args);
        return out;
      } catch (e) {
        count(false, ...args);
        throw e;
      }
    };
  }

  /** Serves `GET /metrics` on its own listener (keep it off the public interface); resolves with its URL. */
  async serve(host: string, port: number): Promise<{ url: string; close: () => Promise<void> }> {
    const registry = this.registry;
    if (!registry) throw new Error("metrics are not enabled");
    const server = createServer((req, res) => {
      if (req.url !== "/metrics") {
        res.writeHead(404).end();
        return;
      }
      registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
    const bound = server.address();
    const boundPort = typeof bound === "object" && bound ? bound.port : port;
    const url = `http://${host.includes(":") ? `[${host}]` : host}:${boundPort}/metrics`;
    return { url, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  }
}

/** The mailer, with every message counted by template and result. */
export function countedMailer(mailer: Mailer, metrics: Metrics): Mailer {
  return {
    send: Metrics.counted(
      (mail: Parameters<Mailer["send"]>[0]) => mailer.send(mail),
      (ok, mail) => metrics.emails.inc({ template: mail.template, result: ok ? "sent" : "failed" }),
    ),
    close: () => mailer.close(),
  };
}

/** The SMS provider, with every message counted by result. */
export function countedSms(sms: SmsProvider, metrics: Metrics): SmsProvider {
  return {
    name: sms.name,
    send: Metrics.counted(
      (msg: Parameters<SmsProvider["send"]>[0]) => sms.send(msg),
      (ok) => metrics.sms.inc({ result: ok ? "sent" : "failed" }),
    ),
    close: () => sms.close(),
  };
}
