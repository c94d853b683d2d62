import { existsSync } from "node:fs";
import { copyDatabase } from "../store/copy.js";
import { type DatabaseOptions, migrateToLatest, openStore } from "../store/database.js";
import { CONFIG_OPTION, type Command, configFrom, stringOption, UsageError } from "./command.js";

export const migrate: Command = {
  name: "migrate",
  summary: "apply database migrations and exit",
  usage: "[--config FILE]",
  options: { config: CONFIG_OPTION },
  examples: ["seraph migrate --config /etc/seraph/seraph.yaml"],
  details: "Servers also migrate at start; run this once before a rolling restart of several instances.",
  async run({ values }) {
    const store = await openStore(configFrom(values).database);
    try {
      const applied = await migrateToLatest(store);
      process.stdout.write(applied.length ? `applied: ${applied.join(", ")}\n` : "database is up to date\n");
    } finally {
      await store.close();
    }
    return 0;
  },
};

/** Parses `sqlite:PATH`, `postgres:URL` or a bare `postgres://…` URL into database options. */
function databaseTarget(spec: string | undefined, flag: string): DatabaseOptions {
  if (!spec) throw new UsageError(`migrate-db needs ${flag} sqlite:PATH or ${flag} postgres:URL`);
  const pg = { pool_size: 4, statement_timeout_ms: 0, ssl: { enabled: false, verify_certificates: true } };
  if (spec.startsWith("sqlite:")) return { sqlite: { path: spec.slice("sqlite:".length) } };
  if (spec.startsWith("postgres://") || spec.startsWith("postgresql://")) {
    return { sqlite: { path: ":memory:" }, postgres: { url: spec, ...pg } };
  }
  if (spec.startsWith("postgres:"))
    return { sqlite: { path: ":memory:" }, postgres: { url: spec.slice(9), ...pg } };
  throw new UsageError(`${flag} must be sqlite:PATH or postgres:URL`);
}

export const migrateDb: Command = {
  name: "migrate-db",
  summary: "copy a whole database (e.g. SQLite into PostgreSQL), verifying row counts",
  usage: "--from sqlite:PATH|postgres:URL --to sqlite:PATH|postgres:URL",
  options: {
    from: { type: "string", valueName: "DB", description: "source: sqlite:PATH or postgres:URL" },
    to: {
      type: "string",
      valueName: "DB",
      description: "target (must be empty): sqlite:PATH or postgres:URL",
    },
  },
  examples: ["seraph migrate-db --from sqlite:/var/lib/seraph/seraph.db --to postgres://seraph@db/seraph"],
  details: "Stop the servers first. The target gets the schema, then every table in one transaction.",
  async run({ values }) {
    const fromOpts = databaseTarget(stringOption(values, "from"), "--from");
    const toOpts = databaseTarget(stringOption(values, "to"), "--to");
    if (!fromOpts.postgres && !existsSync(fromOpts.sqlite.path)) {
      throw new UsageError(`--from: no SQLite file at ${fromOpts.sqlite.path}`);
    }
    const from = await openStore(fromOpts);
    try {
      const to = await openStore(toOpts);
      try {
        const counts = await copyDatabase(from, to, (table, rows) => {
          if (rows % 100_000 === 0) process.stdout.write(`  ${table}: ${rows} rows\n`);
        });
        for (const c of counts)
          process.stdout.write(`${c.table.padEnd(22)} ${String(c.target).padStart(10)} rows\n`);
        process.stdout.write("copy complete: every table has the same number of rows in both databases\n");
      } finally {
        await to.close();
      }
    } finally {
      await from.close();
    }
    return 0;
  },
};
