#!/usr/bin/env node
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { createLogger, createSeraph } from "./app.js";
import { runServe } from "./cluster/serve.js";
import { ConfigError, loadConfig, type ResolvedConfig } from "./config/load.js";
import { randomToken } from "./crypto/hash.js";
import { KeyFileError, readKeyFile, rotateKeys, writeKeyFile } from "./crypto/key-file.js";
import { KeyService } from "./identity/keys.js";
import { copyDatabase } from "./store/copy.js";
import { type DatabaseOptions, migrateToLatest, openStore } from "./store/database.js";
import { KyselyKeyRepository } from "./store/keys.js";
import { KyselyPepperRepository } from "./store/peppers.js";

const HELP = `seraph: a Matrix identity server

Usage:
  seraph serve   [--config FILE] [--workers N|auto]
                                          run the server (default command); --workers overrides
                                          server.workers (processes on one listener)
  seraph migrate [--config FILE]          apply database migrations and exit
  seraph keys generate [--config FILE] [--rotate]
                                          create the signing key file; with --rotate, add a new
                                          current key in front of the existing ones
  seraph migrate-db --from sqlite:PATH --to postgres:URL
                                          copy a whole database (e.g. a single node's SQLite file
                                          into PostgreSQL), verifying row counts
  seraph pepper rotate [--config FILE]    start a lookup pepper rotation (running servers rehash)
  seraph keys show [--config FILE]        print key ids and public keys
  seraph keys revoke KEY [--config FILE]  revoke an old key (by key id or public key)
  seraph --help

Without --config, SERAPH_CONFIG names the file; without either, development defaults apply
(127.0.0.1:8090, SQLite under ./data). Any key can be set with SERAPH_<KEY> variables,
e.g. SERAPH_LISTEN__PORT=8091 (see docs/configuration.md).
`;

/** Exit codes: 0 ok, 1 runtime failure, 2 usage error, 78 configuration error (EX_CONFIG). */
const EXIT_USAGE = 2;
const EXIT_CONFIG = 78;

class UsageError extends Error {}

function config(path: string | undefined): ResolvedConfig {
  return loadConfig(path ?? process.env.SERAPH_CONFIG);
}

async function serve(cfg: ResolvedConfig): Promise<void> {
  const seraph = await createSeraph(cfg);
  const address = await seraph.listen();
  const line = `Seraph listening on ${address} (server_name ${cfg.server_name}, public URL ${cfg.public_base_url})`;
  seraph.log.info({ address }, line);
  process.stdout.write(`${line}\n`);
  if (!cfg.email.smtp) {
    process.stdout.write(`No SMTP configured: emails are written to ${cfg.email.outbox_dir}\n`);
  }
  if (cfg.sms.provider === "log") {
    process.stdout.write(`SMS provider "log": text messages are written to ${cfg.sms.outbox_dir}/sms.log\n`);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    seraph.log.info({ signal }, "shutting down");
    const deadline = setTimeout(() => process.exit(1), 10_000);
    deadline.unref();
    seraph.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

async function migrate(cfg: ResolvedConfig): Promise<void> {
  const store = await openStore(cfg.database);
  try {
    const applied = await migrateToLatest(store);
    process.stdout.write(applied.length ? `applied: ${applied.join(", ")}\n` : "database is up to date\n");
  } finally {
    await store.close();
  }
}

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

async function migrateDb(fromSpec: string | undefined, toSpec: string | undefined): Promise<void> {
  const fromOpts = databaseTarget(fromSpec, "--from");
  const toOpts = databaseTarget(toSpec, "--to");
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
}

async function pepper(cfg: ResolvedConfig, action: string | undefined): Promise<void> {
  if (action !== "rotate") throw new UsageError("pepper needs: rotate");
  const store = await openStore(cfg.database);
  try {
    await migrateToLatest(store);
    const repo = new KyselyPepperRepository(store.db);
    await repo.insertIfAbsent(randomToken(32), "pending", Date.now());
    process.stdout.write("a new lookup pepper is pending; running servers rehash and switch to it\n");
  } finally {
    await store.close();
  }
}

async function keys(
  cfg: ResolvedConfig,
  action: string | undefined,
  arg: string | undefined,
  rotate: boolean,
) {
  const path = cfg.signing_key_path;
  if (action === "generate") {
    if (existsSync(path) && !rotate) {
      throw new UsageError(`${path} already exists; use --rotate to add a new current key`);
    }
    const keys = existsSync(path) ? rotateKeys(readKeyFile(path)) : rotateKeys([]);
    writeKeyFile(path, keys);
    process.stdout.write(`${keys[0]!.keyId} ${keys[0]!.publicKeyBase64} written to ${path}\n`);
    return;
  }
  const store = await openStore(cfg.database);
  try {
    await migrateToLatest(store);
    const repo = new KyselyKeyRepository(store.db);
    if (action === "show") {
      // Loading records the file's keys as published, so that they are listed with the older ones.
      const keys = await KeyService.load(readKeyFile(path), repo, Date.now());
      const current = keys.signingKey;
      for (const k of await repo.allSigningKeys()) {
        const state = k.revokedTs
          ? "revoked"
          : k.publicKeyBase64 === current.publicKeyBase64
            ? "current"
            : "valid";
        process.stdout.write(`${k.keyId}\t${k.publicKeyBase64}\t${state}\n`);
      }
    } else if (action === "revoke") {
      if (!arg) throw new UsageError("keys revoke needs a key id or public key");
      const current = readKeyFile(path)[0]!;
      if (arg === current.publicKeyBase64) {
        throw new UsageError(
          "refusing to revoke the current signing key; rotate first (keys generate --rotate)",
        );
      }
      // By key id, this revokes older keys that had the same id (a regenerated key file), never the current one.
      const n = await repo.revokeSigningKey(arg, Date.now(), current.publicKeyBase64);
      process.stdout.write(`${n} key(s) revoked; running servers stop accepting them within a minute\n`);
    } else {
      throw new UsageError("keys needs one of: generate, show, revoke");
    }
  } finally {
    await store.close();
  }
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: "string", short: "c" },
      help: { type: "boolean", short: "h" },
      rotate: { type: "boolean" },
      from: { type: "string" },
      to: { type: "string" },
      workers: { type: "string" },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const [command = "serve", sub, arg] = positionals;
  switch (command) {
    case "serve":
      return runServe(config(values.config), values.workers, serve);
    case "migrate":
      return migrate(config(values.config));
    case "migrate-db":
      return migrateDb(values.from, values.to);
    case "pepper":
      return pepper(config(values.config), sub);
    case "keys":
      return keys(config(values.config), sub, arg, values.rotate ?? false);
    case "help":
      process.stdout.write(HELP);
      return;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof KeyFileError) {
    process.stderr.write(`seraph: ${err.message}\n`);
    process.exit(EXIT_CONFIG);
  }
  if (err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
    process.stderr.write(`seraph: ${(err as Error).message}\n\n${HELP}`);
    process.exit(EXIT_USAGE);
  }
  process.stderr.write(`seraph: ${(err as Error).message ?? String(err)}\n`);
  createLogger("error").error({ err }, "fatal");
  process.exit(1);
});
