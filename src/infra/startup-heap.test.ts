import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { TS_NODE_ARGS } from "../../test/support/process.js";
import { NEW_SPACE_CAP } from "./startup-heap.js";

const MODULE = pathToFileURL(join(import.meta.dirname, "startup-heap.ts")).href;

/**
 * A process that imports the module as `seraph serve` does, says start-up is over, then makes garbage of
 * which a good part survives a few collections (what V8 answers by growing its new space), and prints the
 * largest new space it saw, in bytes.
 */
const SCRIPT = `
import { getHeapSpaceStatistics } from "node:v8";
const { startupDone } = await import(${JSON.stringify(MODULE)});
startupDone();
const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size;
let largest = 0;
let keep = [];
for (let round = 0; round < 300; round++) {
  for (let j = 0; j < 20000; j++) keep.push({ a: j, b: "x" + j });
  if (keep.length > 400000) keep = keep.slice(200000);
  // The collections' observers run between two turns.
  await new Promise((resolve) => setImmediate(resolve));
  largest = Math.max(largest, newSpace());
}
console.log(largest);
`;

function largestNewSpace(nodeFlags: string[]): number {
  const dir = mkdtempSync(join(tmpdir(), "seraph-heap-"));
  const script = join(dir, "grow.mjs");
  writeFileSync(script, SCRIPT);
  const run = spawnSync(process.execPath, [...TS_NODE_ARGS, ...nodeFlags, script, "serve"], {
    encoding: "utf8",
    env: { ...process.env, NODE_OPTIONS: "" },
    timeout: 120_000,
  });
  expect(run.stderr).toBe("");
  expect(run.status).toBe(0);
  return Number(run.stdout.trim());
}

describe("the young generation of a server", () => {
  it("grows after start-up only up to NEW_SPACE_CAP", () => {
    const largest = largestNewSpace([]);
    expect(largest).toBeGreaterThan(NEW_SPACE_CAP / 2);
    expect(largest).toBeLessThanOrEqual(NEW_SPACE_CAP);
  });

  it("is left to V8 when the operator sizes it (the same load then grows it past the cap)", () => {
    expect(largestNewSpace(["--max-semi-space-size=16"])).toBeGreaterThan(NEW_SPACE_CAP);
  });
});
