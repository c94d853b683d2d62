import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { V1 } from "../support/paths.js";
import { REDIS_SERVER, startRedis } from "../support/redis.js";
import { call, startSeraph, type TestSeraph } from "../support/seraph.js";

// CI installs redis-server (.ci/run); on a machine without it this suite says so and is skipped.
describe.skipIf(!REDIS_SERVER)("rate limits shared through Redis", () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let a: TestSeraph;
  let b: TestSeraph;

  beforeAll(async () => {
    redis = await startRedis();
    const config = {
      rate_limit: {
        enabled: true,
        redis_url: redis.url,
        request_token_per_minute: 1000,
        email_per_address: { burst: 2, per_hour: 1 },
        store_invite_per_minute: 3,
      },
    };
    a = await startSeraph(config);
    b = await startSeraph(config);
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await redis?.stop();
  });

  it("counts per-IP route limits across instances", async () => {
    const invite = (on: TestSeraph) =>
      call(`${on.url}${V1}/store-invite`, {
        body: { medium: "email", address: "x@example.org", room_id: "!r:h", sender: "@s:h" },
      });
    expect((await invite(a)).status).toBe(200);
    expect((await invite(b)).status).toBe(200);
    expect((await invite(a)).status).toBe(200);
    const limited = await invite(b);
    expect(limited.status).toBe(429);
    expect(limited.body.errcode).toBe("M_LIMIT_EXCEEDED");
  });

  it("counts per-address email limits across instances", async () => {
    const request = (on: TestSeraph, attempt: number) =>
      call(`${on.url}${V1}/validate/email/requestToken`, {
        body: { client_secret: `s${attempt}`, email: "limited@example.org", send_attempt: 1 },
      });
    expect((await request(a, 1)).status).toBe(200);
    expect((await request(b, 2)).status).toBe(200);
    const third = await request(a, 3);
    expect(third.status).toBe(429);
    expect(third.body.retry_after_ms).toBeGreaterThan(0);
  });
});
