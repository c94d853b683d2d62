import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { stringify } from "yaml";
import { freePort } from "./seraph.js";

const ROOT = resolve(import.meta.dirname, "..", "..");
const TSX = join(ROOT, "node_modules", ".bin", "tsx");
const MAIN = join(ROOT, "src", "main.ts");

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
export async function spawnSeraph(config: Record<string, unknown>, dir?: string): Promise<SeraphProcess> {
  const cwd = dir ?? mkdtempSync(join(tmpdir(), "seraph-proc-"));
  const port = await freePort();
  const full = {
    log: { level: "warn" },
    ...config,
    listen: { host: "127.0.0.1", port },
    public_base_url: `http://127.0.0.1:${port}`,
  };
  const path = join(cwd, `seraph-${port}.yaml`);
  writeFileSync(path, stringify(full));
  // The test runner's own SERAPH_TEST_* variables would read as configuration overrides.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("SERAPH_")));
  const child = spawn(TSX, [MAIN, "serve", "--config", path], {
    cwd,
    env,
    stdio: ["ignore", "pipe", "pipe"],
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
    const timer = setTimeout(() => rej(new Error(`Seraph did not start:\n${out}`)), 30_000);
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
