import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { spawnSeraphProcess } from "../support/process.js";
import { startSeraph, type TestSeraph } from "../support/seraph.js";

let s: TestSeraph | undefined;

/** Runs the CLI without blocking this process (the Seraph under test answers from this event loop). */
function cli(
  args: string[],
  cwd: string,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawnSeraphProcess(args, { cwd });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((res) => child.once("close", (status) => res({ status, stdout, stderr })));
}
afterAll(async () => {
  await s?.close();
});

describe("seraph doctor (command line)", () => {
  it("exits 0 on a working set-up, 1 with a fix once something is wrong", async () => {
    s = await startSeraph({}, { backend: "sqlite" });
    const c = s.seraph.config;
    const file = join(s.dir, "seraph.yaml");
    writeFileSync(
      file,
      stringify({
        server_name: c.server_name,
        public_base_url: c.public_base_url,
        listen: c.listen,
        database: { sqlite: { path: c.database.sqlite.path } },
        signing_key_path: c.signing_key_path,
        email: { outbox_dir: c.email.outbox_dir },
      }),
    );
    const ok = await cli(["doctor", "--config", file], s.dir);
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^database\n {2}pass {2}reachable/);
    expect(ok.stdout).toContain("0 failures");

    chmodSync(c.signing_key_path, 0o640);
    const bad = await cli(["doctor", "--config", file], s.dir);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/FAIL {2}mode 0600 +.* has mode 0640/);
    expect(bad.stdout).toContain(`fix: chmod 600 ${c.signing_key_path}`);
    expect(bad.stdout).toContain("1 failure");
  }, 180_000);
});
