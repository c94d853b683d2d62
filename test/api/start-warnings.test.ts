import { Writable } from "node:stream";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { startSeraph } from "../support/seraph.js";

describe("warnings at start", () => {
  it("logs one warning per dangerous setting", async () => {
    const lines: Array<{ level: number; setting?: string; msg: string }> = [];
    const stream = new Writable({
      write(chunk: Buffer, _e, done) {
        for (const l of chunk.toString("utf8").split("\n").filter(Boolean)) lines.push(JSON.parse(l));
        done();
      },
    });
    const is = await startSeraph(
      {
        log: { level: "warn" },
        federation: { verify_certificates: false },
        email: { smtp: { host: "127.0.0.1", port: 1, tls: "none", username: "seraph" } },
      },
      { logger: pino({ level: "warn" }, stream) },
    );
    await is.close();
    const settings = lines.filter((l) => l.level === 40 && l.setting).map((l) => l.setting);
    expect(settings).toEqual(expect.arrayContaining(["email.smtp.tls", "federation.verify_certificates"]));
    expect(new Set(settings).size).toBe(settings.length);
  });
});
