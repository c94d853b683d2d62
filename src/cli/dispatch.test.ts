import { describe, expect, it } from "vitest";
import { COMMANDS } from "./commands.js";
import { dispatch } from "./dispatch.js";

async function run(argv: string[]) {
  let out = "";
  let err = "";
  const outcome = await dispatch(argv, COMMANDS, {
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
    fatal: () => {},
  });
  return { code: "exit" in outcome ? outcome.exit : "running", out, err };
}

describe("seraph command line", () => {
  it("prints the package version", async () => {
    const r = await run(["--version"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^seraph \d+\.\d+\.\d+\n$/);
  });

  it("lists every command on --help, and each command has its own help page", async () => {
    const all = await run(["--help"]);
    for (const c of COMMANDS) expect(all.out).toContain(`seraph ${c.name}`);
    for (const c of COMMANDS) {
      const r = await run([...c.name.split(" "), "--help"]);
      expect(r.code).toBe(0);
      expect(r.out).toContain(`Usage:\n  seraph ${c.name}`);
      expect(r.out).toMatch(/Options:\n(.|\n)*--help/);
      expect(r.out).toMatch(/Examples?:\n {2}seraph /);
      expect(r.out).not.toContain("Commands:");
    }
    const keys = await run(["keys", "generate", "--help"]);
    expect(keys.out).toContain("--rotate");
    expect(keys.out).not.toContain("--from");
    expect((await run(["help", "migrate-db"])).out).toContain("--from DB");
  });

  it("answers a usage error with the command's usage only, exit 2", async () => {
    const bad = await run(["keys", "generate", "--bogus"]);
    expect(bad.code).toBe(2);
    expect(bad.out).toBe("");
    expect(bad.err).toContain("Usage: seraph keys generate [--config FILE] [--rotate]");
    expect(bad.err).not.toContain("migrate-db");
    const extra = await run(["migrate", "now"]);
    expect(extra.code).toBe(2);
    expect(extra.err).toContain('unexpected argument "now"');
    expect(extra.err).toContain("Usage: seraph migrate");
    const noDb = await run(["migrate-db", "--from", "sqlite:/nonexistent/x.db"]);
    expect(noDb.code).toBe(2);
    expect(noDb.err).toContain("Usage: seraph migrate-db");
    const group = await run(["keys"]);
    expect(group.code).toBe(2);
    expect(group.err).toContain("seraph keys show");
    expect(group.err).not.toContain("seraph serve");
    expect((await run(["frobnicate"])).code).toBe(2);
  });

  it("finds options before the command words", async () => {
    const r = await run(["--config", "/nonexistent/seraph.yaml", "config", "check"]);
    expect(r.code).toBe(78);
    expect(r.err).toContain("cannot read config file /nonexistent/seraph.yaml");
  });
});
