import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { seraphCli } from "../support/process.js";
import { call, freePort, startSeraph, testDatabase } from "../support/seraph.js";

let dir: string;
let configPath: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "seraph-admin-cli-"));
  configPath = join(dir, "seraph.yaml");
  writeFileSync(
    configPath,
    stringify({
      server_name: "is.test",
      database: await testDatabase(dir),
      signing_key_path: join(dir, "signing.key"),
      log: { level: "silent" },
    }),
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cli = (...args: string[]) => seraphCli(["admin", ...args, "--config", configPath], { cwd: dir });

describe("seraph admin (on the database, server stopped)", () => {
  it("creates a token, binds, erases and shows the audit trail", async () => {
    const token = cli("token", "create", "alice-ops");
    expect(token.status, token.stderr).toBe(0);
    const secret = token.stdout.trim();
    expect(secret).toMatch(/^seraph_admin_[A-Za-z0-9]{40}$/);

    const bind = cli("bindings", "add", "Cli.User@Example.org", "@cli:hs.test");
    expect(bind.status, bind.stderr).toBe(0);
    expect(bind.stdout).toContain("bound email cli.user@example.org to @cli:hs.test");
    // The token made offline works on the server, which sees the same database.
    const adminPort = await freePort();
    const is = await startSeraph({ admin: { enabled: true, listen: { port: adminPort } } }, { dir });
    try {
      const res = await call(`http://127.0.0.1:${adminPort}/admin/v1/bindings?mxid=@cli:hs.test`, {
        headers: { authorization: `Bearer ${secret}` },
      });
      expect(res.status).toBe(200);
      expect(res.body.items).toEqual([
        expect.objectContaining({ address: "cli.user@example.org", mxid: "@cli:hs.test" }),
      ]);
    } finally {
      await is.close();
    }

    const erase = cli(
      "subjects",
      "erase",
      "--address",
      "cli.user@example.org",
      "--mxid",
      "@cli:hs.test",
      "--json",
    );
    expect(erase.status, erase.stderr).toBe(0);
    expect(JSON.parse(erase.stdout).deleted).toMatchObject({ associations: 1 });

    const audit = cli("audit", "--address", "cli.user@example.org");
    expect(audit.status, audit.stderr).toBe(0);
    expect(audit.stdout).toMatch(/subject\.erase/);
    expect(audit.stdout).toMatch(/binding\.create/);
    expect(audit.stdout).not.toContain("cli.user@example.org");
    expect(audit.stdout).toMatch(/^id\s+ts\s+actor/m);
  }, 300_000);

  it("explains each command and refuses a missing argument", () => {
    const help = cli("invites", "--help");
    expect(help.status).toBe(0);
    expect(help.stdout).toContain("seraph admin invites revoke ID");
    const missing = cli("bindings", "add", "only@example.org");
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain("missing MXID");
  }, 120_000);
});
