import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { latestSmsCode, readSmsOutbox } from "../../../test/support/fake-sms.js";
import { captureLogger } from "../../core/logger.js";
import { createSmsProvider, renderSmsBody, SmsSendError, smsConfigSchema } from "./index.js";

function makeLog() {
  return captureLogger();
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "seraph-sms-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("log provider", () => {
  it("is the default and appends one JSON line per SMS to <outbox_dir>/sms.log (0600)", async () => {
    const outbox = path.join(dir, "outbox");
    const cfg = smsConfigSchema.parse({ outbox_dir: outbox });
    const log = makeLog();
    const sms = createSmsProvider(cfg, log);
    expect(sms.name).toBe("log");

    await sms.send({ to: "+447400123456", body: renderSmsBody(cfg.body_template, "987650"), from: "Seraph" });
    await Promise.all([
      sms.send({ to: "+33612345678", body: "Your code is 000001" }),
      sms.send({ to: "+33612345678", body: "Your code is 000002" }),
    ]);

    const lines = await readSmsOutbox(outbox);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toEqual({
      ts: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      to: "+447400123456",
      from: "Seraph",
      body: "Your code is 987650",
    });
    expect(lines[1]?.from).toBeNull();
    expect(await latestSmsCode(outbox, "+447400123456")).toBe("987650");
    expect(await latestSmsCode(outbox, "+33612345678")).toBe("000002");
    expect(await latestSmsCode(outbox, "+4915112345678")).toBeUndefined();

    const file = path.join(outbox, "sms.log");
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(outbox)).mode & 0o777).toBe(0o700);

    // Logs name the recipient and the file, never the body or the code.
    expect(log.lines.filter((l) => l.level === "info")).toHaveLength(3);
    expect(log.lines[0]?.obj).toMatchObject({ provider: "log", to: "+447400123456", file });
    expect(JSON.stringify(log.lines)).not.toMatch(/987650|00000[12]|Your code/);
    await sms.close();
  });

  it("without outbox_dir drops messages and warns once at startup", async () => {
    const log = makeLog();
    const sms = createSmsProvider(smsConfigSchema.parse({}), log);
    expect(log.lines).toEqual([expect.objectContaining({ level: "warn" })]);
    await sms.send({ to: "+447400123456", body: "Your code is 654321" });
    expect(JSON.stringify(log.lines)).not.toContain("654321");
    await sms.close();
  });

  it("rejects non-E.164 destinations, unwritable outboxes, and sends after close", async () => {
    const blocker = path.join(dir, "file");
    await import("node:fs/promises").then((fs) => fs.writeFile(blocker, "x"));
    const sms = createSmsProvider(
      smsConfigSchema.parse({ outbox_dir: path.join(blocker, "sub") }),
      makeLog(),
    );
    await expect(sms.send({ to: "07400123456", body: "x" })).rejects.toMatchObject({ reason: "rejected" });
    const err = await sms.send({ to: "+447400123456", body: "x" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmsSendError);
    expect(err).toMatchObject({ reason: "config" });
    await sms.close();
    await expect(sms.send({ to: "+447400123456", body: "x" })).rejects.toMatchObject({
      reason: "unreachable",
    });
  });
});
