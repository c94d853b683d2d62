import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SHUTDOWN_DEADLINE_MS } from "../../src/cli/serve.js";

const UNIT = resolve(import.meta.dirname, "..", "..", "contrib", "systemd", "seraph.service");
const text = readFileSync(UNIT, "utf8");
const hasAnalyze = spawnSync("systemd-analyze", ["--version"]).status === 0;
const dir = mkdtempSync(join(tmpdir(), "seraph-unit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function directive(name: string): string | undefined {
  return new RegExp(`^${name}=(.*)$`, "m").exec(text)?.[1];
}

describe("contrib/systemd/seraph.service", () => {
  it("runs as a dedicated user in a sandbox, restarts on failure and leaves time for the drain", () => {
    expect(directive("User")).toBe("seraph");
    expect(directive("StateDirectory")).toBe("seraph");
    expect(directive("ProtectSystem")).toBe("strict");
    expect(directive("NoNewPrivileges")).toBe("true");
    expect(directive("PrivateTmp")).toBe("true");
    expect(directive("Restart")).toBe("on-failure");
    expect(directive("KillSignal")).toBe("SIGTERM");
    expect(Number(directive("TimeoutStopSec"))).toBeGreaterThan(SHUTDOWN_DEADLINE_MS / 1000);
    expect(directive("ExecStart")).toMatch(/dist\/main\.js serve --config /);
    expect(directive("ExecStart")).not.toContain("npx");
  });

  it.skipIf(!hasAnalyze)("passes systemd-analyze verify without a warning", () => {
    // The unit names /usr/bin/node; verify checks that the binary exists, so point it at this Node.
    const unit = join(dir, "seraph.service");
    writeFileSync(unit, text.replace("/usr/bin/node", process.execPath));
    const res = spawnSync("systemd-analyze", ["verify", unit], { encoding: "utf8" });
    expect(res.status, res.stderr).toBe(0);
    expect(res.stderr.trim()).toBe("");
  });
});
