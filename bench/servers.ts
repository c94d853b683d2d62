/** The processes a benchmark drives: `seraph serve` instances and the bare node:http ceiling. */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { appendFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { log } from "./measure.js";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

export interface Instance {
  url: string;
  child: ChildProcess;
  warnings: number;
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

/** CPUs the server processes are confined to (`--pin`), as taskset's list; undefined: anywhere. */
let serverCpus: string | undefined;

/**
 * Confines the server processes started from now on to `serverCpus` and this process (the load generator,
 * all its threads) to `clientCpus` (Linux `taskset`): the two then never share a core, and a run does not
 * depend on where the scheduler happened to put them.
 */
export function pinProcesses(server: string, client: string): void {
  execFileSync("taskset", ["-a", "-pc", client, String(process.pid)], { stdio: "ignore" });
  serverCpus = server;
}

/**
 * Spawns `node [nodeOptions] <argv...>` (under `taskset` when pinned) and resolves once a stdout line matches
 * `listening`. Lines starting with `{` are log records (at level warn: worth seeing) and are counted.
 */
async function startProcess(
  name: string,
  argv: string[],
  nodeOptions: string[],
  listening: RegExp,
): Promise<Instance> {
  // SERAPH_* variables would override the generated config: keep them out.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("SERAPH_")));
  const command = [process.execPath, ...nodeOptions, ...argv];
  // taskset execs the command: the child's pid is node's.
  if (serverCpus !== undefined) command.unshift("taskset", "-c", serverCpus);
  // BENCH_SERVER_OUT=FILE keeps every line the servers print, line-buffered (V8's --trace-* output too).
  const serverOut = process.env.BENCH_SERVER_OUT;
  if (serverOut) command.unshift("stdbuf", "-oL");
  const child = spawn(command[0]!, command.slice(1), {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const instance: Instance = { url: "", child, warnings: 0 };
  let output = "";
  await new Promise<void>((ready, fail) => {
    const timer = setTimeout(() => fail(new Error(`${name} did not start:\n${output}`)), 60_000);
    let partial = "";
    const onData = (chunk: Buffer) => {
      const lines = (partial + chunk.toString("utf8")).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        if (serverOut) appendFileSync(serverOut, `${line}\n`);
        if (!instance.url) output += `${line}\n`;
        const m = listening.exec(line);
        if (m && !instance.url) {
          instance.url = m[1]!;
          clearTimeout(timer);
          ready();
        } else if (line.startsWith("{")) {
          instance.warnings++;
          log(`[${name}] ${line}`);
        }
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (c: Buffer) => {
      if (serverOut) appendFileSync(serverOut, c);
      output += c.toString();
      if (instance.url) log(`[${name}] ${c.toString().trimEnd()}`);
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      fail(new Error(`${name} exited (${signal ?? code}):\n${output}`));
    });
  });
  return instance;
}

/**
 * `seraph serve --config <path>`: from src/ the same as `tsx src/main.ts serve` without tsx's wrapper
 * process; `built`: `node dist/main.js serve`, as deployed (see {@link buildIfStale}).
 */
export function startSeraph(
  configPath: string,
  index: number,
  nodeOptions: string[],
  built: boolean,
): Promise<Instance> {
  const entry = built ? ["dist/main.js"] : ["--import", "tsx", "src/main.ts"];
  return startProcess(
    `seraph#${index}`,
    [...entry, "serve", "--config", configPath],
    nodeOptions,
    /^Seraph listening on (\S+)/,
  );
}

/** Builds dist/ from src/ when dist/ is older (`npm start`'s own check, scripts/build-if-needed.mjs). */
export function buildIfStale(): void {
  execFileSync(process.execPath, ["scripts/build-if-needed.mjs"], { cwd: ROOT, stdio: "inherit" });
}

/** The bare node:http server (bench/bare-server.mjs, plain node without tsx) with `workers` cluster workers. */
export async function startBare(workers: number | "auto", nodeOptions: string[]): Promise<Instance> {
  const port = await freePort();
  return startProcess(
    "bare",
    ["bench/bare-server.mjs", "--port", String(port), "--workers", String(workers)],
    nodeOptions,
    /^bare node:http listening on (\S+)/,
  );
}

export async function stopInstance(inst: Instance): Promise<void> {
  const { child } = inst;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(timer);
}
