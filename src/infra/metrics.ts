import { createServer } from "node:http";
import type { FastifyInstance } from "fastify";
import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";
import type { Mailer } from "../delivery/index.js";
import type { SmsProvider } from "../delivery/sms/index.js";

/** Prometheus metrics of one Seraph process. */
export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: "seraph_http_requests_total",
    help: "HTTP requests by route pattern, method and status",
    labelNames: ["method", "route", "status"] as const,
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: "seraph_http_request_duration_seconds",
    help: "HTTP request duration by route pattern",
    labelNames: ["route"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly emails = new Counter({
    name: "seraph_emails_total",
    help: "Emails by template and result (sent, failed)",
    labelNames: ["template", "result"] as const,
    registers: [this.registry],
  });
  readonly sms = new Counter({
    name: "seraph_sms_total",
    help: "SMS by result (sent, failed)",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly onbind = new Counter({
    name: "seraph_onbind_deliveries_total",
    help: "onbind delivery attempts by result (delivered, failed)",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });

  readonly lookupRefused = new Counter({
    name: "seraph_lookup_refused_total",
    help: "Lookups refused by the lookup budget, by scope (account, ip, v1_ip)",
    labelNames: ["scope"] as const,
    registers: [this.registry],
  });

  /** `processMetrics`: also collect Node's process metrics (event-loop lag, GC, memory); off when unused. */
  constructor(processMetrics: boolean) {
    if (processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /** Counts and times every request of `app` by its route pattern (never by raw URL: no tokens, bounded labels). */
  instrument(app: FastifyInstance): void {
    app.addHook("onResponse", async (req, reply) => {
      const route = req.routeOptions.url ?? "unmatched";
      this.requests.inc({ method: req.method, route, status: String(reply.statusCode) });
      this.duration.observe({ route }, reply.elapsedTime / 1000);
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
    const server = createServer((req, res) => {
      if (req.url !== "/metrics") {
        res.writeHead(404).end();
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": this.registry.contentType }).end(text),
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
