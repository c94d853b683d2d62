import cluster from "node:cluster";
import { availableParallelism } from "node:os";
import { ConfigError, type ResolvedConfig } from "../config/load.js";
import { startupDone } from "../infra/startup-heap.js";

/** `--workers` (or `server.workers`) as a number of processes: "auto" is one per available core. */
export function workerCount(value: string | number | undefined, configured: number | "auto"): number {
  const v = value ?? configured;
  if (v === "auto") return availableParallelism();
  const n = typeof v === "number" ? v : /^\d+$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > 1024) {
    throw new ConfigError(`--workers must be "auto" or a whole number from 1 to 1024, not ${String(v)}`);
  }
  return n;
}

/**
 * `seraph serve`: one process (`single`, as before) when one worker is asked for; otherwise this
 * process becomes the node:cluster primary and forks N workers that share its listener, or — when
 * it is one of those workers — serves as one.
 */
export async function runServe(
  cfg: ResolvedConfig,
  workersFlag: string | undefined,
  single: (cfg: ResolvedConfig) => Promise<void>,
): Promise<void> {
  if (cluster.isWorker) {
    const { runWorker } = await import("./worker.js");
    await runWorker(cfg);
    return startupDone();
  }
  const n = workerCount(workersFlag, cfg.server.workers);
  if (n === 1) {
    await single(cfg);
    return startupDone();
  }
  startupDone();
  const { runPrimary } = await import("./primary.js");
  return runPrimary(cfg, n);
}
