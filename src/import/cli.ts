import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { loadConfig } from "../config/load.js";
import { configFromSydent } from "./config-from-sydent.js";
import { ImportInterrupted, importSydent } from "./importer.js";
import { createProgress } from "./progress.js";
import { recordFromLive } from "./record-live.js";
import { formatReport } from "./report.js";
import { SydentConfig, SydentInputError } from "./sydent-config.js";
import { SydentDb } from "./sydent-db.js";

export { IMPORT_HELP } from "./help.js";

import { templatesFromSydent } from "./templates-from-sydent.js";
import { formatVerify, readRecorded, verifyRecorded } from "./verify.js";

/** Exit codes: 65 (EX_DATAERR) for input that cannot be imported, 1 when --verify finds a difference. */
const EXIT_DATA = 65;

/**
 * The sydent commands (`import-sydent`, `config from-sydent`); undefined when `argv` is another command.
 * Resolves with the exit code.
 */
export function sydentCommand(argv: readonly string[]): Promise<number> | undefined {
  if (argv[0] === "import-sydent") return guarded(() => importCommand(argv.slice(1)));
  if (argv[0] === "config" && argv[1] === "from-sydent") return guarded(() => configCommand(argv.slice(2)));
  if (argv[0] === "templates" && argv[1] === "from-sydent")
    return guarded(() => templatesCommand(argv.slice(2)));
  return undefined;
}

async function guarded(run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof SydentInputError || e instanceof ImportInterrupted) {
      process.stderr.write(`seraph: ${e.message}\n`);
      return EXIT_DATA;
    }
    throw e;
  }
}

async function configCommand(args: readonly string[]): Promise<number> {
  const [path] = args;
  if (!path) throw new SydentInputError("config from-sydent needs the path of sydent.conf");
  process.stdout.write(configFromSydent(path));
  return 0;
}

async function templatesCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: { "sydent-config": { type: "string" } },
  });
  const [src, dest] = positionals;
  if (!src || !dest)
    throw new SydentInputError("templates from-sydent needs SRC (sydent's templates.path) and DEST");
  const conf = values["sydent-config"] ? SydentConfig.read(values["sydent-config"]) : undefined;
  const subjects = {
    ...(conf?.get("email", "email.subject") ? { verification: conf.get("email", "email.subject")! } : {}),
    ...(conf?.get("email", "email.invite.subject")
      ? { invite: conf.get("email", "email.invite.subject")! }
      : {}),
    ...(conf?.get("email", "email.invite.subject_space")
      ? { inviteSpace: conf.get("email", "email.invite.subject_space")! }
      : {}),
  };
  const report = templatesFromSydent(src, dest, subjects);
  for (const f of report.written) process.stdout.write(`wrote ${join(dest, f)}\n`);
  for (const w of report.warnings) process.stdout.write(`warning: ${w}\n`);
  return 0;
}

async function importCommand(args: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      "sydent-db": { type: "string" },
      "sydent-config": { type: "string" },
      config: { type: "string", short: "c" },
      "dry-run": { type: "boolean" },
      verify: { type: "boolean" },
      expected: { type: "string" },
      against: { type: "string" },
      merge: { type: "boolean" },
      "replace-key": { type: "boolean" },
      peers: { type: "string" },
      sessions: { type: "boolean" },
      resume: { type: "boolean" },
      "rotate-pepper": { type: "boolean" },
    },
  });
  const sydentDb = values["sydent-db"];
  const sydentConfig = values["sydent-config"];
  if (!sydentDb || !sydentConfig) {
    throw new SydentInputError("import-sydent needs --sydent-db PATH and --sydent-config PATH");
  }
  const peers = values.peers ?? "import";
  if (peers !== "import" && peers !== "skip") throw new SydentInputError("--peers must be import or skip");
  const config = loadConfig(values.config ?? process.env.SERAPH_CONFIG);
  const report = await importSydent({
    sydentDb,
    sydentConfig,
    config,
    dryRun: values["dry-run"] ?? false,
    merge: values.merge ?? false,
    replaceKey: values["replace-key"] ?? false,
    peers,
    sessions: values.sessions ?? false,
    resume: values.resume ?? false,
    rotatePepper: values["rotate-pepper"] ?? false,
    progress: createProgress(),
  });
  process.stdout.write(formatReport(report));
  if (!values.verify) return 0;
  if (report.dryRun) {
    process.stdout.write("--verify skipped: a dry run imports nothing to verify\n");
    return 0;
  }
  let recorded: Record<string, unknown>;
  if (values.against) {
    // Ask a live sydent (e.g. one started on a copy of the database) the same questions.
    const db = SydentDb.open(sydentDb, { quickCheck: false });
    try {
      recorded = await recordFromLive(db, SydentConfig.read(sydentConfig), values.against, {
        limit: 10_000,
        now: Date.now(),
        importPeers: peers === "import",
      });
    } finally {
      db.close();
    }
  } else {
    const expected = values.expected ?? join(dirname(sydentDb), "expected.json");
    if (!existsSync(expected)) {
      throw new SydentInputError(
        `--verify needs sydent's answers: no ${expected} (pass --expected FILE, or --against URL of a running sydent)`,
      );
    }
    recorded = readRecorded(expected);
  }
  const result = await verifyRecorded(config, recorded);
  process.stdout.write(formatVerify(result));
  return result.differences.length === 0 ? 0 : 1;
}
