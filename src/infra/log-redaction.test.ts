import { Writable } from "node:stream";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { redactAddresses, redactPhone, withAddressRedaction } from "./log-redaction.js";

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString("utf8").split("\n").filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  return { lines, log: pino({ level: "info" }, stream) };
}

describe("address redaction in logs", () => {
  it("redacts phone numbers and addresses inside free text", () => {
    expect(redactPhone("+447400123456")).toBe("+44...56");
    expect(redactAddresses("550 <bob@example.com>: rejected; To +44 7400 123456 invalid")).toBe(
      "550 <b...@exa...>: rejected; To +44...56 invalid",
    );
    expect(redactAddresses("connect ECONNREFUSED 127.0.0.1:25")).toBe("connect ECONNREFUSED 127.0.0.1:25");
  });

  it("redacts `to` and `error` and still hides secrets, in children too", () => {
    const { lines, log } = capture();
    const red = withAddressRedaction(log);
    red.info({ to: "alice@example.org", error: "no mailbox alice@example.org" }, "a");
    red.child({ reqId: "r" }).info({ to: "+447400123456", x: { client_secret: "s3cret" } }, "b");
    expect(lines[0]).toMatchObject({ to: "ali...@exa...", error: "no mailbox ali...@exa..." });
    expect(lines[1]).toMatchObject({ to: "+44...56", x: { client_secret: "[Redacted]" }, reqId: "r" });
  });
});
