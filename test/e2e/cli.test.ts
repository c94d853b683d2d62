import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { seraphCli, spawnSeraphProcess } from "../support/process.js";
import { freePort } from "../support/seraph.js";

const children: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill("SIGKILL");
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "seraph-cli-"));
  dirs.push(d);
  return d;
}

function runCli(args: string[], cwd: string, env: Record<string, string> = {}) {
  return seraphCli(args, { cwd, env });
}

/** Starts `seraph serve` and resolves once it prints where it listens. */
function serve(
  cwd: string,
  env: Record<string, string>,
): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawnSeraphProcess(["serve"], { cwd, env });
  children.push(child);
  let out = "";
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`no listening line:\n${out}`)), 30_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes("Seraph listening on")) {
        clearTimeout(timer);
        res({ child, output: () => out });
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.once("exit", (code) => rej(new Error(`exited ${code}:\n${out}`)));
  });
}

describe("seraph CLI", () => {
  it("starts with no config at all: SQLite and key under ./data, outbox mail, clean SIGTERM", async () => {
    const cwd = tempDir();
    const port = await freePort();
    const { child, output } = await serve(cwd, { SERAPH_LISTEN__PORT: String(port) });
    expect(output()).toContain(`http://127.0.0.1:${port}`);
    const versions = await fetch(`http://127.0.0.1:${port}/_matrix/identity/versions`);
    expect(versions.status).toBe(200);
    expect(existsSync(join(cwd, "data", "seraph.db"))).toBe(true);
    expect(statSync(join(cwd, "data", "signing.key")).mode & 0o777).toBe(0o600);

    const res = await fetch(`http://127.0.0.1:${port}/_matrix/identity/api/v1/store-invite`, {
      method: "POST",
      body: JSON.stringify({
        medium: "email",
        address: "a@example.org",
        room_id: "!r:h.test",
        sender: "@s:h.test",
      }),
    });
    expect(res.status).toBe(200);
    expect(existsSync(join(cwd, "data", "outbox"))).toBe(true);

    const exit = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    child.kill("SIGTERM");
    expect(await exit).toBe(0);
  });

  it("accepts a sydent key file and shows, rotates and revokes keys", () => {
    const cwd = tempDir();
    const seed = Buffer.alloc(32, 7).toString("base64").replace(/=+$/, "");
    writeFileSync(join(cwd, "sydent.key"), `ed25519 0 ${seed}\n`, { mode: 0o600 });
    writeFileSync(
      join(cwd, "seraph.yaml"),
      "signing_key_path: ./sydent.key\ndatabase:\n  sqlite:\n    path: ./db.sqlite\n",
    );
    const show = runCli(["keys", "show", "--config", "seraph.yaml"], cwd);
    expect(show.status, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/^ed25519:0\t\S{43}\tcurrent$/m);
    const oldKey = /^ed25519:0\t(\S+)/m.exec(show.stdout)?.[1];

    expect(runCli(["keys", "generate", "--config", "seraph.yaml"], cwd).status).toBe(2);
    const rotate = runCli(["keys", "generate", "--rotate", "--config", "seraph.yaml"], cwd);
    expect(rotate.status, rotate.stderr).toBe(0);
    expect(readFileSync(join(cwd, "sydent.key"), "utf8")).toMatch(/^ed25519 1 \S+\ned25519 0 \S+\n$/);
    const after = runCli(["keys", "show", "--config", "seraph.yaml"], cwd);
    expect(after.stdout).toMatch(/^ed25519:1\t\S{43}\tcurrent$/m);
    expect(after.stdout).toContain(`ed25519:0\t${oldKey}\tvalid`);
    const revoke = runCli(["keys", "revoke", "ed25519:0", "--config", "seraph.yaml"], cwd);
    expect(revoke.stdout).toContain("1 key(s) revoked");
    expect(runCli(["keys", "show", "--config", "seraph.yaml"], cwd).stdout).toContain(`${oldKey}\trevoked`);
  });

  it("stores the signed association at bind and forgets it when its key is revoked", () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, "seraph.yaml"), "database:\n  sqlite:\n    path: ./db.sqlite\n");
    expect(runCli(["keys", "generate", "--config", "seraph.yaml"], cwd).status).toBe(0);
    const bind = (address: string) =>
      runCli(["admin", "bindings", "add", address, "@u:h.test", "--json", "--config", "seraph.yaml"], cwd);
    expect(bind("old@example.org").status).toBe(0);
    expect(runCli(["keys", "generate", "--rotate", "--config", "seraph.yaml"], cwd).status).toBe(0);
    expect(bind("new@example.org").status).toBe(0);
    const stored = () => {
      const db = new Database(join(cwd, "db.sqlite"), { readonly: true });
      try {
        const rows = db.prepare("select address, signed_json from associations order by address").all();
        return rows as Array<{ address: string; signed_json: string | null }>;
      } finally {
        db.close();
      }
    };
    const before = stored();
    expect(before.map((r) => r.address)).toEqual(["new@example.org", "old@example.org"]);
    expect(JSON.parse(before[0]!.signed_json!).signatures.localhost).toHaveProperty(["ed25519:1"]);
    expect(JSON.parse(before[1]!.signed_json!).signatures.localhost).toHaveProperty(["ed25519:0"]);

    const revoke = runCli(["keys", "revoke", "ed25519:0", "--config", "seraph.yaml"], cwd);
    expect(revoke.status, revoke.stderr).toBe(0);
    expect(revoke.stdout).toContain("1 stored association signature(s)");
    const after = stored();
    expect(after[0]!.signed_json).toBe(before[0]!.signed_json);
    expect(after[1]!.signed_json).toBeNull();
  });

  it("explains a bad configuration: which key and what was expected, exit code 78", () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, "bad.yaml"), "listen:\n  port: eighty\nunknown_key: 1\n");
    const res = runCli(["serve", "--config", "bad.yaml"], cwd);
    expect(res.status).toBe(78);
    expect(res.stderr).toContain("listen.port");
    expect(res.stderr).toMatch(/expected number/);
    expect(res.stderr).toContain("unknown_key");
    const env = runCli(["migrate"], cwd, { SERAPH_EMAIL__SMTP__TLS: "maybe" });
    expect(env.status).toBe(78);
    expect(env.stderr).toContain("SERAPH_EMAIL__SMTP__TLS");
  });

  it("migrates and prints help", () => {
    const cwd = tempDir();
    const first = runCli(["migrate"], cwd);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toContain("0001_foundation");
    expect(runCli(["migrate"], cwd).stdout).toContain("up to date");
    const help = runCli(["--help"], cwd);
    expect(help.stdout).toContain("seraph serve");
    expect(runCli(["frobnicate"], cwd).status).toBe(2);
  });
});
