/**
 * What a serving process with the embedded defaults (SQLite, no Redis, no SMTP, no SMS provider, metrics off)
 * loads: none of the clients it has no use for yet (docs/deployment.md, idle memory). A lazy load lost in a
 * merge shows here, not only in the RSS.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, expect, it } from "vitest";
import { stringify } from "yaml";
import { cleanEnv, TS_NODE_ARGS } from "../support/process.js";
import { call, freePort } from "../support/seraph.js";

const ROOT = resolve(import.meta.dirname, "..", "..");
const dir = mkdtempSync(join(tmpdir(), "seraph-idle-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Packages only some configurations or the first use of a feature need. */
const NOT_AT_IDLE = [
  "nodemailer",
  "undici",
  "libphonenumber-js",
  "prom-client",
  "ioredis",
  "pg",
  "pino-pretty",
  "smtp-server",
];

it("a serving process with the embedded defaults loads none of the unconfigured clients", async () => {
  const port = await freePort();
  const trace = join(dir, "modules.txt");
  writeFileSync(trace, "");
  const config = join(dir, "seraph.yaml");
  writeFileSync(
    config,
    stringify({
      server_name: "is.test",
      listen: { host: "127.0.0.1", port },
      public_base_url: `http://127.0.0.1:${port}`,
      database: { sqlite: { path: join(dir, "seraph.db") } },
      signing_key_path: join(dir, "signing.key"),
      email: { outbox_dir: join(dir, "outbox"), from: "Seraph <noreply@is.test>" },
      log: { level: "warn", format: "json" },
      server: { workers: 1 },
    }),
  );
  const child = spawn(
    process.execPath,
    [
      ...TS_NODE_ARGS,
      "--import",
      join(ROOT, "test", "support", "module-trace.mjs"),
      join(ROOT, "src", "main.ts"),
      "serve",
      "--config",
      config,
    ],
    { cwd: dir, env: cleanEnv({ MODULE_TRACE_FILE: trace }), stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  try {
    await new Promise<void>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`did not start:\n${out}`)), 60_000);
      child.stdout.on("data", () => {
        if (out.includes("Seraph listening on")) {
          clearTimeout(timer);
          res();
        }
      });
      void exited.then(() => rej(new Error(`exited:\n${out}`)));
    });
    // The cheap paths and a lookup-free v2 call change nothing.
    expect((await call(`http://127.0.0.1:${port}/_matrix/identity/v2/pubkey/ed25519:0`)).status).toBe(200);
    expect((await call(`http://127.0.0.1:${port}/_matrix/identity/v2`)).status).toBe(200);
  } finally {
    child.kill("SIGTERM");
    await exited;
  }
  // nodemailer's address parser is one small file (src/delivery/mime.ts checks addresses with it).
  const loaded = readFileSync(trace, "utf8")
    .split("\n")
    .filter((url) => !/\/node_modules\/nodemailer\/.*\/addressparser\//.test(url));
  expect(loaded.some((url) => url.includes("/node_modules/fastify/"))).toBe(true);
  for (const name of NOT_AT_IDLE) {
    expect(
      loaded.filter((url) => url.includes(`/node_modules/${name}/`)),
      name,
    ).toEqual([]);
  }
});
