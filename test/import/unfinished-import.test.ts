import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/database.js";
import { startSeraph } from "../support/seraph.js";

const dir = mkdtempSync(join(tmpdir(), "seraph-unfinished-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function setRun(done: number): Promise<void> {
  const store = await openStore({ sqlite: { path: join(dir, "seraph.db") } });
  try {
    await store.db
      .insertInto("sydent_import")
      .values({ phase: "_run", cursor: "", rows: 0, done, state_json: "{}", updated_ts: 1 })
      .onConflict((oc) => oc.column("phase").doUpdateSet({ done }))
      .execute();
  } finally {
    await store.close();
  }
}

describe("serving a database whose import from sydent has not finished", () => {
  it("is refused until the import is finished", async () => {
    const first = await startSeraph({}, { dir, backend: "sqlite" });
    await first.close();

    await setRun(0);
    await expect(startSeraph({}, { dir, backend: "sqlite" })).rejects.toThrow(
      /import from sydent that has not finished: run the same `seraph import-sydent` command with --resume/,
    );

    await setRun(1);
    const again = await startSeraph({}, { dir, backend: "sqlite" });
    await again.close();
  });
});
