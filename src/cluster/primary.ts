import cluster, { type Worker } from "node:cluster";
import { createServer, type Server } from "node:http";
import pino from "pino";
import type { ResolvedConfig } from "../config/load.js";
import { isToPrimary, type ToWorker } from "./messages.js";
import { PrimaryLimits } from "./shared-limits.js";

/** The longest wait before a crashed worker is replaced (the wait doubles while workers keep crashing early). */
const MAX_RESTART_DELAY_MS = 30_000;
/** A worker that lived this long counts as healthy: the next replacement starts at once again. */
const HEALTHY_AFTER_MS = 10_000;
/** How long workers may take to drain on SIGTERM before they are killed. */
const DRAIN_MS = 12_000;

interface Member {
  worker: Worker;
  startedAt: number;
  listening: boolean;
}

/**
 * The primary of `seraph serve --workers N`: forks the workers (the first alone, so that it migrates
 * the database before the others open it), holds the listener they share, picks one listening worker
 * as the leader of the shared background tasks (another one when it dies), replaces workers that
 * crash, serves the workers' metrics summed on the metrics listener, and on SIGTERM or SIGINT drains
 * every worker before it exits. It opens no database itself.
 */
export async function runPrimary(cfg: ResolvedConfig, count: number): Promise<void> {
  const log = pino({ level: cfg.log.level });
  // Without Redis the workers' rate limits live here, so that they hold for the whole listener.
  const limits = cfg.rate_limit.redis_url ? undefined : new PrimaryLimits();
  const members = new Map<number, Member>();
  let leader: number | undefined;
  let stopping = false;
  let restarts = 0;
  let restartDelay = 0;
  let metricsServer: Server | undefined;

  const tell = (m: Member, msg: ToWorker) => {
    if (m.worker.isConnected()) m.worker.send(msg);
  };
  const elect = () => {
    if (stopping || (leader !== undefined && members.has(leader))) return;
    leader = undefined;
    const next = [...members.values()].find((m) => m.listening && m.worker.isConnected());
    if (!next) return;
    leader = next.worker.id;
    tell(next, { seraph: "leader", leader: true });
    log.info({ pid: next.worker.process.pid }, "background tasks now run in this worker");
  };

  let firstListening: (address: string) => void = () => undefined;
  let startFailed: (err: Error) => void = () => undefined;
  let started = false;

  const fork = () => {
    const worker = cluster.fork();
    const m: Member = { worker, startedAt: Date.now(), listening: false };
    members.set(worker.id, m);
    worker.on("message", (msg: unknown) => {
      if (!isToPrimary(msg)) return;
      if (msg.seraph === "limits") {
        if (limits)
          void limits.answerAll(msg.asks).then((answers) => {
            if (answers.length > 0) tell(m, { seraph: "limit-answers", answers });
          });
      } else if (msg.seraph === "listening") {
        m.listening = true;
        firstListening(msg.address);
        elect();
      } else {
        const lead = leader === undefined ? undefined : members.get(leader);
        if (lead) tell(lead, { seraph: "kick", task: msg.task });
      }
    });
    worker.on("exit", (code, signal) => {
      members.delete(worker.id);
      if (leader === worker.id) leader = undefined;
      if (stopping) return;
      if (!started) {
        startFailed(new Error(`a worker exited during start (${signal ?? `exit code ${code}`})`));
        return;
      }
      const lived = Date.now() - m.startedAt;
      restartDelay = lived >= HEALTHY_AFTER_MS ? 0 : Math.min(MAX_RESTART_DELAY_MS, restartDelay * 2 || 500);
      log.warn(
        { pid: worker.process.pid, code, signal, restart_in_ms: restartDelay },
        "worker exited; starting a replacement",
      );
      elect();
      setTimeout(() => {
        if (stopping) return;
        restarts++;
        fork();
      }, restartDelay);
    });
    return m;
  };

  const waitListening = (expected: number) =>
    new Promise<string>((resolve, reject) => {
      let address: string | undefined;
      let listening = 0;
      firstListening = (a) => {
        address ??= a;
        if (++listening === expected) resolve(address);
      };
      startFailed = reject;
    });

  const stopAll = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down: draining every worker");
    const alive = [...members.values()];
    const exits = alive.map(
      (m) => new Promise<void>((r) => (m.worker.isDead() ? r() : m.worker.once("exit", () => r()))),
    );
    for (const m of alive) m.worker.process.kill("SIGTERM");
    const kill = setTimeout(() => {
      for (const m of alive) if (!m.worker.isDead()) m.worker.process.kill("SIGKILL");
    }, DRAIN_MS);
    await Promise.all(exits);
    clearTimeout(kill);
    await new Promise<void>((r) => (metricsServer ? metricsServer.close(() => r()) : r()));
    const clean = alive.every((m) => m.worker.process.exitCode === 0);
    process.exit(clean ? 0 : 1);
  };
  process.on("SIGTERM", () => void stopAll("SIGTERM"));
  process.on("SIGINT", () => void stopAll("SIGINT"));

  let address: string;
  try {
    // The first worker migrates the database alone; the others start once it listens.
    fork();
    address = await waitListening(1);
    for (let i = 1; i < count; i++) fork();
    if (count > 1) await waitListening(count - 1);
    started = true;
  } catch (err) {
    stopping = true;
    for (const m of members.values()) m.worker.process.kill("SIGTERM");
    throw err;
  }

  if (cfg.metrics.enabled) {
    metricsServer = await serveMetrics(cfg.metrics.host, cfg.metrics.port, () => ({
      workers: [...members.values()].filter((m) => m.listening).length,
      restarts,
    }));
  }

  const line = `Seraph listening on ${address} (server_name ${cfg.server_name}, public URL ${cfg.public_base_url}, ${count} workers)`;
  log.info({ address, workers: count }, line);
  process.stdout.write(`${line}\n`);
  if (!cfg.email.smtp) {
    process.stdout.write(`No SMTP configured: emails are written to ${cfg.email.outbox_dir}\n`);
  }
  if (cfg.sms.provider === "log") {
    process.stdout.write(`SMS provider "log": text messages are written to ${cfg.sms.outbox_dir}/sms.log\n`);
  }
}

/** `GET /metrics` on the primary: every worker's registry summed (prom-client), plus the cluster's own gauges. */
async function serveMetrics(
  host: string,
  port: number,
  state: () => { workers: number; restarts: number },
): Promise<Server> {
  const { AggregatorRegistry, Counter, Gauge, Registry } = await import("prom-client");
  const aggregator = new AggregatorRegistry();
  const own = new Registry();
  new Gauge({
    name: "seraph_cluster_workers",
    help: "Worker processes that listen",
    registers: [own],
    collect() {
      this.set(state().workers);
    },
  });
  let counted = 0;
  new Counter({
    name: "seraph_cluster_worker_restarts_total",
    help: "Workers replaced after they exited",
    registers: [own],
    collect() {
      const { restarts } = state();
      this.inc(restarts - counted);
      counted = restarts;
    },
  });
  const server = createServer((req, res) => {
    if (req.url !== "/metrics") {
      res.writeHead(404).end();
      return;
    }
    Promise.all([aggregator.clusterMetrics(), own.metrics()]).then(
      ([workers, mine]) =>
        res.writeHead(200, { "content-type": aggregator.contentType }).end(`${workers}\n${mine}`),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
