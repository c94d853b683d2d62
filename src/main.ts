#!/usr/bin/env node
/** The `seraph` command line: every command lives in src/cli/ and is listed in src/cli/commands.ts. */
import { adminMain } from "./admin/cli.js";
import { createLogger } from "./app.js";
import { COMMANDS } from "./cli/commands.js";
import { dispatch } from "./cli/dispatch.js";
import { loadConfig } from "./config/load.js";

const argv = process.argv.slice(2);
// `import-sydent`, `config from-sydent`, `templates from-sydent`: loaded only for these (src/import/cli.ts).
const sydent = /^(import-sydent|config|templates)$/.test(argv[0] ?? "")
  ? (await import("./import/cli.js")).sydentCommand(argv)
  : undefined;
// `seraph admin ...` has its own sub-commands and help (src/admin/cli.ts).
const run = sydent
  ? sydent.then((exit) => ({ exit }))
  : argv[0] === "admin"
    ? adminMain(argv.slice(1), (path) => loadConfig(path ?? process.env.SERAPH_CONFIG)).then((exit) => ({
        exit,
      }))
    : dispatch(argv, COMMANDS, {
        out: (text) => process.stdout.write(text),
        err: (text) => process.stderr.write(text),
        fatal: (err) => createLogger("error").error({ err }, "fatal"),
      });
run.then(
  (outcome) => {
    if ("exit" in outcome) {
      process.exitCode = outcome.exit;
      // Let stdout drain, then exit even if a library left a handle open.
      process.stdout.write("", () => process.exit(outcome.exit));
    }
  },
  (err: unknown) => {
    process.stderr.write(`seraph: ${(err as Error)?.message ?? String(err)}\n`);
    process.exit(1);
  },
);
