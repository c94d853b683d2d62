/** `seraph doctor`'s SMS and Redis checks against a fake Twilio and a real redis-server (when installed). */
import { afterAll, describe, expect, it } from "vitest";
import { type ResolvedConfig, resolveConfig } from "../../src/config/load.js";
import { Report } from "../../src/doctor/report.js";
import { checkRedis, checkSms } from "../../src/doctor/sms.js";
import { startFakeSms } from "../support/fake-sms.js";
import { REDIS_SERVER, startRedis } from "../support/redis.js";
import { freePort } from "../support/seraph.js";

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

const SID = `AC${"0123456789abcdef".repeat(2)}`;

function config(tree: Record<string, unknown>): ResolvedConfig {
  return resolveConfig(tree);
}

describe("doctor: sms and redis", () => {
  it("checks Twilio credentials with a dry account request, never a message", async () => {
    const fake = await startFakeSms();
    cleanups.push(() => fake.close());
    const cfg = config({
      sms: {
        provider: "twilio",
        twilio: { account_sid: SID, auth_token: "tok-secret", from: "+447700900000", api_base_url: fake.url },
      },
    });
    const ok = new Report();
    await checkSms(cfg, ok);
    expect(ok.findings.map((f) => [f.check, f.status])).toEqual([["credentials", "pass"]]);
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]!.method).toBe("GET");
    expect(fake.requests[0]!.path).toBe(`/2010-04-01/Accounts/${SID}.json`);
    expect(fake.requests[0]!.headers.authorization).toBe(
      `Basic ${Buffer.from(`${SID}:tok-secret`).toString("base64")}`,
    );

    fake.failNext(1, 401, { code: 20003, message: "Authenticate" });
    const bad = new Report();
    await checkSms(cfg, bad);
    expect(bad.findings[0]!.status).toBe("fail");
    expect(bad.findings[0]!.fix).toContain("auth_token");
    expect(JSON.stringify(bad.findings)).not.toContain("tok-secret");

    const log = new Report();
    await checkSms(config({}), log);
    expect(log.findings[0]!.status).toBe("warn");
    expect(log.findings[0]!.detail).toContain("no phone receives them");
  });

  it("reports Redis down, and up when redis-server is installed", async () => {
    const port = await freePort();
    const down = new Report();
    await checkRedis(config({ rate_limit: { redis_url: `redis://:pw-9@127.0.0.1:${port}` } }), down);
    expect(down.findings[0]!.status).toBe("fail");
    expect(down.findings[0]!.detail).not.toContain("pw-9");
    if (!REDIS_SERVER) return;
    const redis = await startRedis();
    cleanups.push(() => redis.stop());
    const up = new Report();
    await checkRedis(config({ rate_limit: { redis_url: redis.url } }), up);
    expect(up.findings[0]!.status).toBe("pass");
    expect(up.findings[0]!.detail).toContain("PONG");
  });
});
