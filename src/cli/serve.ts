import { createSeraph } from "../app.js";
import { CONFIG_OPTION, type Command, configFrom, packageVersion } from "./command.js";
import { dangerWarnings, startupLines } from "./startup.js";

/** How long a SIGTERM/SIGINT drain may take before the process gives up and exits 1. */
export const SHUTDOWN_DEADLINE_MS = 10_000;

export const serve: Command = {
  name: "serve",
  summary: "run the server (the default command)",
  usage: "[--config FILE]",
  options: { config: CONFIG_OPTION },
  examples: ["seraph serve --config /etc/seraph/seraph.yaml"],
  details: `On SIGTERM or SIGINT the server reports not-ready, stops accepting connections, finishes requests
and background jobs in flight and exits 0 (1 if that takes more than ${SHUTDOWN_DEADLINE_MS / 1000} s).`,
  async run({ values }) {
    const cfg = configFrom(values);
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
    return undefined;
  },
};
