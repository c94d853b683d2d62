import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { stringify } from "yaml";
import { freePort } from "./seraph.js";

const ROOT = resolve(import.meta.dirname, "..", "..");
const MAIN = join(ROOT, "src", "main.ts");

/**
 * Node arguments that run TypeScript through tsx's loader in the same process (the `tsx` command would
 * add a parent process, and a SIGKILL sent to that parent would leave the server running).
 */
export const TS_NODE_ARGS = [
  "--require",
  join(ROOT, "node_modules", "tsx", "dist", "preflight.cjs"),
  "--import",
  pathToFileURL(join(ROOT, "node_modules", "tsx", "dist", "loader.mjs")).href,
];

/** This process's environment without SERAPH_* variables (the test runner's own would read as configuration). */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith("SERAPH_")) env[k] = v;
  return { ...env, ...extra };
}

/** Runs the `seraph` command line to completion. */
export function seraphCli(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  return spawnSync(process.execPath, [...TS_NODE_ARGS, MAIN, ...args], {
    cwd: opts.cwd,
    env: cleanEnv(opts.env),
    encoding: "utf8",
    timeout: 60_000,
  });
}

/**
 * Starts `seraph serve` in its own process (resolved once it prints where it listens), as one process
 * unless `SERAPH_SERVER__WORKERS` in `opts.env` says otherwise.
 */
export function spawnSeraphProcess(
  args: string[],
  opts: { cwd: string; env?: Record<string, string> },
): ChildProcess {
  return spawn(process.execPath, [...TS_NODE_ARGS, MAIN, ...args], {
    cwd: opts.cwd,
    env: cleanEnv({ SERAPH_SERVER__WORKERS: "1", ...opts.env }),
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** A Seraph running in its own process (`seraph serve` with a generated YAML config). */
export interface SeraphProcess {
  url: string;
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): void;
}

/** Starts `seraph serve` with `config` (merged with a free port and quiet logs); resolves once it listens. */
export async function spawnSeraph(
  config: Record<string, unknown>,
  dir?: string,
  startTimeoutMs = 30_000,
): Promise<SeraphProcess> {
  const cwd = dir ?? mkdtempSync(join(tmpdir(), "seraph-proc-"));
  const port = await freePort();
  const full = {
    log: { level: "warn" },
    // One process unless a test asks for a cluster (the default, "auto", forks one per core).
    server: { workers: 1 },
    ...config,
    listen: { host: "127.0.0.1", port },
    public_base_url: `http://127.0.0.1:${port}`,
  };
  const path = join(cwd, `seraph-${port}.yaml`);
  writeFileSync(path, stringify(full));
  // The file decides the number of workers (spawnSeraphProcess would otherwise pin it to 1).
  const workers = String((full.server as { workers?: unknown }).workers ?? 1);
  const child = spawnSeraphProcess(["serve", "--config", path], {
    cwd,
    env: { SERAPH_SERVER__WORKERS: workers },
  });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  await new Promise<void>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`Seraph did not start:\n${out}`)), startTimeoutMs);
    const check = () => {
      if (out.includes("Seraph listening on")) {
        clearTimeout(timer);
        res();
      }
    };
    child.stdout?.on("data", check);
    exited.then((code) => {
      clearTimeout(timer);
      rej(new Error(`Seraph exited with ${code}:\n${out}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    output: () => out,
    exited,
    kill: (signal = "SIGTERM") => {
      child.kill(signal);
    },
  };
}
