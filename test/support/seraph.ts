import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { createSeraph, type Seraph, type SeraphOptions } from "../../src/app.js";
import { resolveConfig } from "../../src/config/load.js";
import { createTestDatabase } from "./postgres.js";

/** Which database the API and end-to-end suites run on (the `postgres` vitest project sets it). */
export const BACKEND: "sqlite" | "postgres" =
  process.env.SERAPH_TEST_BACKEND === "postgres" ? "postgres" : "sqlite";

/** One PostgreSQL database per test folder, so that a restarted Seraph finds its data again. */
const databases = new Map<string, string>();

/** The `database` config for a test folder on the current backend. */
export async function testDatabase(dir: string, backend = BACKEND): Promise<Tree> {
  if (backend === "sqlite") return { sqlite: { path: join(dir, "seraph.db") } };
  let url = databases.get(dir);
  if (url === undefined) {
    url = await createTestDatabase();
    databases.set(dir, url);
  }
  return { postgres: { url, pool_size: 5 } };
}

/** Finds a free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

type Tree = Record<string, unknown>;

function merge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      typeof v === "object" && v !== null && !Array.isArray(v) && typeof b === "object" && b !== null
        ? merge(b as Tree, v as Tree)
        : v;
  }
  return out;
}

export interface TestSeraph {
  /** Base URL, e.g. http://127.0.0.1:PORT */
  url: string;
  seraph: Seraph;
  /** Temporary folder holding the database, key file and outbox. */
  dir: string;
  close(): Promise<void>;
}

/**
 * Starts a real Seraph on a free loopback port with a fresh SQLite file and key file in a temp folder.
 * `config` is merged over the test defaults (as a YAML file would be).
 */
export async function startSeraph(
  config: Tree = {},
  opts: SeraphOptions & { dir?: string; backend?: "sqlite" | "postgres" } = {},
): Promise<TestSeraph> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "seraph-test-"));
  const port = await freePort();
  const base: Tree = {
    server_name: "is.test",
    public_base_url: `http://127.0.0.1:${port}`,
    listen: { host: "127.0.0.1", port },
    database: await testDatabase(dir, opts.backend),
    signing_key_path: join(dir, "signing.key"),
    log: { level: "silent" },
    email: { outbox_dir: join(dir, "outbox"), from: "Seraph <noreply@is.test>" },
    rate_limit: { enabled: false },
  };
  const cfg = resolveConfig(merge(base, config));
  const seraph = await createSeraph(cfg, { logger: pino({ level: cfg.log.level }), ...opts });
  await seraph.listen();
  return {
    url: `http://127.0.0.1:${port}`,
    seraph,
    dir,
    async close() {
      await seraph.close();
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A JSON request helper: returns status, parsed body and headers. */
export async function call(
  url: string,
  init: { method?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers; text: string }> {
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  let payload: string | undefined;
  if (init.rawBody !== undefined) payload = init.rawBody;
  else if (init.body !== undefined) {
    payload = JSON.stringify(init.body);
    headers["content-type"] ??= "application/json";
  }
  const res = await fetch(url, {
    method: init.method ?? (payload === undefined ? "GET" : "POST"),
    headers,
    body: payload,
  });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = {};
  }
  return { status: res.status, body, headers: res.headers, text };
}
