import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { TemplateStore } from "./templates.js";

describe("TemplateStore.hasTemplates", () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("keeps a yes, and looks again for a no after ten seconds", async () => {
    dir = await mkdtemp(path.join(tmpdir(), "seraph-templates-"));
    const store = new TemplateStore(dir);
    const t0 = 1_000_000;
    expect(store.hasTemplates("late", "invite", t0)).toBe(false);

    await mkdir(path.join(dir, "late"));
    await writeFile(path.join(dir, "late", "invite.subject.eta"), "Hi");
    expect(store.hasTemplates("late", "invite", t0 + 5_000)).toBe(false);
    expect(store.hasTemplates("late", "invite", t0 + 10_000)).toBe(true);
    // Other names of the brand are looked up on their own.
    expect(store.hasTemplates("late", "verification", t0 + 10_000)).toBe(false);

    await rm(path.join(dir, "late"), { recursive: true });
    expect(store.hasTemplates("late", "invite", t0 + 60_000)).toBe(true);
  });

  it("says no for names that are not brand folders", () => {
    const store = new TemplateStore(tmpdir());
    expect(store.hasTemplates("../etc", "invite")).toBe(false);
  });
});
