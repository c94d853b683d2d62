import { describe, expect, it } from "vitest";
import { MemoryRateLimiter } from "./rate-limiter.js";

describe("MemoryRateLimiter", () => {
  it("allows a burst, then refills at the rule's rate", async () => {
    let now = 0;
    const rl = new MemoryRateLimiter(() => now);
    const rule = { burst: 2, perHour: 60 };
    expect(await rl.take("a", rule)).toBe(0);
    expect(await rl.take("a", rule)).toBe(0);
    expect(await rl.take("a", rule)).toBe(60_000);
    now += 60_000;
    expect(await rl.take("a", rule)).toBe(0);
    expect(await rl.take("b", rule)).toBe(0);
  });

  it("cannot be reset by flooding it with new keys", async () => {
    let now = 0;
    const rl = new MemoryRateLimiter(() => now, 1000);
    const sms = { burst: 1, perHour: 1 };
    await rl.take("sms:victim", sms);
    expect(await rl.take("sms:victim", sms)).toBeGreaterThan(0);
    // The victim is used again while an attacker fills the map with fresh keys.
    for (let i = 0; i < 5000; i++) {
      await rl.take(`email:x${i}@example.org`, { burst: 5, perHour: 12 });
      if (i % 500 === 0) {
        now += 1;
        expect(await rl.take("sms:victim", sms)).toBeGreaterThan(0);
      }
    }
    expect(await rl.take("sms:victim", sms)).toBeGreaterThan(0);
  });
});
