import type { Registry } from "prom-client";
import { type ClusterMember, createSeraph } from "../app.js";
import type { ResolvedConfig } from "../config/load.js";
import { isToWorker, type ToPrimary } from "./messages.js";
import { WorkerLimits } from "./shared-limits.js";

function send(m: ToPrimary): void {
  if (process.connected) process.send?.(m);
}

/** The worker's side of leadership and metrics: what the primary tells it, and what it passes on. */
class WorkerMember implements ClusterMember {
  private leader = false;
  private listener: ((task: string | undefined) => void) | undefined;
  /** Rate limits asked of the primary (used when no Redis is configured). */
  readonly limits = new WorkerLimits({ send: (asks) => send({ seraph: "limits", asks }) });

  constructor() {
    process.on("message", (m: unknown) => {
      if (!isToWorker(m)) return;
      if (m.seraph === "limit-answers") {
        for (const a of m.answers) this.limits.receive(a);
      } else if (m.seraph === "leader") {
        const gained = m.leader && !this.leader;
        this.leader = m.leader;
        if (gained) this.listener?.(undefined);
      } else {
        this.listener?.(m.task);
      }
    });
  }

  isLeader(): boolean {
    return this.leader;
  }

  forward(task: string): void {
    send({ seraph: "kick", task });
  }

  onKick(listener: (task: string | undefined) => void): void {
    this.listener = listener;
  }

  shareMetrics(registry: Registry): void {
    void import("prom-client").then(({ AggregatorRegistry, Gauge }) => {
      const member = this;
      new Gauge({
        name: "seraph_background_leader",
        help: "1 in the worker process that runs the shared background tasks, 0 in the others",
        labelNames: ["pid"] as const,
        registers: [registry],
        collect() {
          this.set({ pid: String(process.pid) }, member.isLeader() ? 1 : 0);
        },
      });
      // Answers the primary's requests for this worker's metrics (prom-client's cluster protocol).
      new AggregatorRegistry();
      AggregatorRegistry.setRegistries([registry]);
    });
  }
}

/**
 * One worker of `seraph serve --workers N`: a whole Seraph on the primary's listener. It tells the
 * primary when it listens, runs the shared background tasks only while it is the leader, and drains
 * (finishes the requests it has, then exits) on SIGTERM or SIGINT, or when the primary is gone.
 */
export async function runWorker(cfg: ResolvedConfig): Promise<void> {
  const member = new WorkerMember();
  const seraph = await createSeraph(cfg, { cluster: member });
  let stopping = false;
  const stop = (why: string) => {
    if (stopping) return;
    stopping = true;
    seraph.log.info({ why, pid: process.pid }, "worker shutting down");
    const deadline = setTimeout(() => process.exit(1), 10_000);
    deadline.unref();
    seraph.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("disconnect", () => stop("primary gone"));
  const address = await seraph.listen();
  send({ seraph: "listening", address });
}
