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

  it("drops the least recently used bucket when full, not the first added", async () => {
    const rl = new MemoryRateLimiter(() => 0, 10);
    const once = { burst: 1, perHour: 1 };
    for (let i = 0; i < 10; i++) expect(await rl.take(`k${i}`, once)).toBe(0);
    expect(await rl.take("k0", once)).toBeGreaterThan(0); // used last now
    expect(await rl.take("k10", once)).toBe(0); // full: k1 goes
    expect(await rl.take("k1", once)).toBe(0); // a fresh bucket (k2 goes)
    expect(await rl.take("k0", once)).toBeGreaterThan(0);
    expect(await rl.take("k3", once)).toBeGreaterThan(0);
    expect(await rl.take("k2", once)).toBe(0);
  });
});

describe("MemoryRateLimiter with a cost", () => {
  it("takes the cost, needs at most the burst, and goes into debt for a request larger than the burst", async () => {
    let now = 0;
    const rl = new MemoryRateLimiter(() => now);
    const rule = { burst: 100, perHour: 3600 }; // one token a second
    expect(await rl.take("k", rule, 60)).toBe(0);
    expect(await rl.take("k", rule, 60)).toBe(20_000); // 40 left, 60 needed
    expect(await rl.take("k", rule, 40)).toBe(0);
    now += 100_000; // full again
    expect(await rl.take("k", rule, 300)).toBe(0); // from a full bucket; 200 in debt
    expect(await rl.take("k", rule, 1)).toBe(201_000);
    now += 201_000;
    expect(await rl.take("k", rule, 1)).toBe(0);
  });
});

describe("MemoryRateLimiter.takeAhead", () => {
  it("takes whole tokens the bucket has, never into debt, and the bucket refills from there", async () => {
    let now = 0;
    const rl = new MemoryRateLimiter(() => now);
    const rule = { burst: 10, perHour: 3600 }; // one token a second
    expect(rl.takeAhead("k", rule, 5)).toBe(0); // no bucket yet: nothing was charged
    expect(await rl.take("k", rule, 3)).toBe(0);
    expect(rl.takeAhead("k", rule, 5)).toBe(5);
    expect(rl.takeAhead("k", rule, 5)).toBe(2);
    expect(rl.takeAhead("k", rule, 5)).toBe(0);
    expect(await rl.take("k", rule)).toBe(1000);
    now += 2_000;
    expect(await rl.take("k", rule)).toBe(0);
  });
});

describe("MemoryRateLimiter.giveBack", () => {
  it("puts tokens back up to the burst, and does nothing for a full (absent) bucket", async () => {
    const rl = new MemoryRateLimiter(() => 0);
    const rule = { burst: 10, perHour: 0 };
    rl.giveBack("k", rule, 5);
    expect(await rl.take("k", rule, 10)).toBe(0);
    rl.giveBack("k", rule, 4);
    expect(await rl.take("k", rule, 4)).toBe(0);
    expect(await rl.take("k", rule)).toBeGreaterThan(0);
    rl.giveBack("k", rule, 50);
    expect(await rl.take("k", rule, 10)).toBe(0);
    expect(await rl.take("k", rule)).toBeGreaterThan(0);
  });
});
