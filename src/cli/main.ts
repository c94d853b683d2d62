/** The `seraph` command line (run by src/main.ts): every command is listed in ./commands.ts. */
import { createLogger } from "../app.js";
import { loadConfig } from "../config/load.js";
import { COMMANDS } from "./commands.js";
import { dispatch } from "./dispatch.js";

const argv = process.argv.slice(2);
// `import-sydent`, `config from-sydent`, `templates from-sydent`: loaded only for these (src/import/cli.ts).
const sydent = /^(import-sydent|config|templates)$/.test(argv[0] ?? "")
  ? (await import("../import/cli.js")).sydentCommand(argv)
  : undefined;
// `seraph admin ...` has its own sub-commands and help (src/admin/cli.ts), loaded only for them.
const run = sydent
  ? sydent.then((exit) => ({ exit }))
  : argv[0] === "admin"
    ? import("../admin/cli.js")
        .then(({ adminMain }) =>
          adminMain(argv.slice(1), (path) => loadConfig(path ?? process.env.SERAPH_CONFIG)),
        )
        .then((exit) => ({ exit }))
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
