import { createSeraph } from "../app.js";
import { runServe } from "../cluster/serve.js";
import type { ResolvedConfig } from "../config/load.js";
import { packageVersion } from "../core/package-root.js";
import { CONFIG_OPTION, type Command, configFrom, stringOption } from "./command.js";
import { dangerWarnings, startupLines } from "./startup.js";

/** How long a SIGTERM/SIGINT drain may take before the process gives up and exits 1. */
export const SHUTDOWN_DEADLINE_MS = 10_000;

export const serve: Command = {
  name: "serve",
  summary: "run the server (the default command)",
  usage: "[--config FILE] [--workers N|auto]",
  options: {
    config: CONFIG_OPTION,
    workers: {
      type: "string",
      valueName: "N|auto",
      description:
        "processes on one listener (overrides server.workers; auto = one per core, 1 = one process)",
    },
  },
  examples: ["seraph serve --config /etc/seraph/seraph.yaml", "seraph serve --workers 1"],
  details: `On SIGTERM or SIGINT the server reports not-ready, stops accepting connections, finishes requests
and background jobs in flight and exits 0 (1 if that takes more than ${SHUTDOWN_DEADLINE_MS / 1000} s).`,
  async run({ values }) {
    await runServe(configFrom(values), stringOption(values, "workers"), serveOne);
    return undefined;
  },
};

/** One serving process: listens, prints where, drains on SIGTERM/SIGINT. */
async function serveOne(cfg: ResolvedConfig): Promise<void> {
  const seraph = await createSeraph(cfg);
  const address = await seraph.listen();
  const lines = startupLines(cfg, { api: address, metrics: seraph.metricsUrl }, packageVersion());
  seraph.log.info({ address }, lines[0]!);
  // createSeraph has logged each one; the terminal sees them too.
  const warnings = dangerWarnings(cfg);
  process.stdout.write(`${[...lines, ...warnings].join("\n")}\n`);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    seraph.log.info({ signal }, "shutting down");
    const deadline = setTimeout(() => process.exit(1), SHUTDOWN_DEADLINE_MS);
    deadline.unref();
    seraph.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}
