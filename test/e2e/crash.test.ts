import { describe, expect, it } from "vitest";
import { crashDuringBinds } from "../support/crash.js";
import { BACKEND } from "../support/seraph.js";

// kill -9 of a serving process during validate→bind cycles: every bind answered 200 survives the restart.
// SQLite here; PostgreSQL in test/postgres/crash.test.ts.
describe.runIf(BACKEND === "sqlite")("a crash during binds (SQLite)", () => {
  it("keeps every acknowledged bind", async () => {
    const killAfter = 200 + Math.floor(Math.random() * 50);
    const result = await crashDuringBinds({ killAfter });
    console.info(`crash test (sqlite): acknowledged ${result.acknowledged}, present ${result.present}`);
    expect(result.acknowledged).toBeGreaterThanOrEqual(killAfter);
    expect(result.missing).toEqual([]);
  }, 300_000);
});
