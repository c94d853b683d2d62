import { describe, expect, it } from "vitest";
import type { LimitAnswer, LimitAsk } from "./messages.js";
import { FixedWindowCounter, PrimaryLimits, WorkerLimits } from "./shared-limits.js";

/** Two workers wired to one primary through an in-process channel (the real one is cluster IPC). */
function cluster(now: () => number, messages: number[] = [], asked: LimitAsk[] = []) {
  const primary = new PrimaryLimits(now);
  const worker = (): WorkerLimits => {
    const w: WorkerLimits = new WorkerLimits(
      {
        send: (asks) => {
          messages.push(asks.length);
          asked.push(...asks);
          void primary.answerAll(asks).then((answers) => {
            for (const a of answers) w.receive(a);
          });
        },
      },
      now,
    );
    return w;
  };
  return [worker(), worker()] as const;
}

describe("rate limits shared through the primary", () => {
  it("spends one bucket per key whichever worker asks", async () => {
    const [a, b] = cluster(() => 1_000);
    const rule = { burst: 3, perHour: 1 };
    const waits = [];
    for (const w of [a, b, a, b]) waits.push(await w.keyed.take("email:x@example.org", rule));
    expect(waits.slice(0, 3)).toEqual([0, 0, 0]);
    expect(waits[3]).toBeGreaterThan(0);
    expect(await b.keyed.take("email:other@example.org", rule)).toBe(0);
  });

  it("counts per route and key in fixed windows", async () => {
    let t = 0;
    const [a, b] = cluster(() => t);
    const store = (w: WorkerLimits, url: string) =>
      new (w.routeStore())().child({ routeInfo: { method: "POST", url } } as never);
    const incr = (s: ReturnType<typeof store>, key: string) =>
      new Promise<{ current: number; ttl: number }>((resolve, reject) =>
        s.incr(key, (err, r) => (err || !r ? reject(err) : resolve(r)), 60_000, 10),
      );
    const ra = store(a, "/register");
    const rb = store(b, "/register");
    expect(await incr(ra, "1.2.3.4")).toEqual({ current: 1, ttl: 60_000 });
    t = 1_000;
    expect(await incr(rb, "1.2.3.4")).toEqual({ current: 2, ttl: 59_000 });
    expect((await incr(store(b, "/lookup"), "1.2.3.4")).current).toBe(1);
    t = 61_000;
    expect(await incr(ra, "1.2.3.4")).toEqual({ current: 1, ttl: 60_000 });
  });

  describe("route counters reserved ahead", () => {
    const store = (w: WorkerLimits, url = "/account") =>
      new (w.routeStore())().child({ routeInfo: { method: "GET", url } } as never);
    const incr = (s: ReturnType<typeof store>, max: number, windowMs = 60_000) =>
      new Promise<{ current: number; ttl: number }>((resolve, reject) =>
        s.incr("1.2.3.4", (err, r) => (err || !r ? reject(err) : resolve(r)), windowMs, max),
      );

    it("hands out a twentieth of the limit without asking, for up to a second", async () => {
      let t = 1_000;
      const messages: number[] = [];
      const [a] = cluster(() => t, messages);
      const s = store(a);
      const currents = [];
      for (let i = 0; i < 6; i++) currents.push((await incr(s, 100)).current);
      expect(currents).toEqual([1, 2, 3, 4, 5, 6]);
      expect(messages).toEqual([1]);
      expect((await incr(s, 100)).current).toBe(7);
      expect(messages).toEqual([1, 1]);
      t += 1_000;
      // Past the second the rest is given back (in the same message as the next question).
      expect((await incr(s, 100)).current).toBe(8);
      expect(messages).toEqual([1, 1, 2]);
    });

    it("never hands out more than the limit, whichever workers reserve", async () => {
      const [a, b] = cluster(() => 1_000);
      const sa = store(a);
      const sb = store(b);
      const currents: number[] = [];
      for (let i = 0; i < 30; i++) {
        currents.push((await incr(sa, 40)).current, (await incr(sb, 40)).current);
      }
      expect(new Set(currents).size).toBe(currents.length);
      expect(currents.filter((c) => c <= 40)).toHaveLength(40);
    });

    it("gives the counts it did not hand out back to the window", async () => {
      let t = 1_000;
      const [a, b] = cluster(() => t);
      expect((await incr(store(a), 100)).current).toBe(1);
      t += 1_000;
      a.returnExpired();
      expect((await incr(store(b), 100)).current).toBe(2);
    });

    it("ends a reservation with the primary's window, however late its answer came", async () => {
      let t = 1_000;
      const primary = new PrimaryLimits(() => t);
      // The primary answers when asked; the answers reach the worker when `deliver` says.
      const sent: Array<Promise<LimitAnswer[]>> = [];
      const w = new WorkerLimits({ send: (asks) => sent.push(primary.answerAll(asks)) }, () => t);
      const deliver = async () => {
        for (const a of (await sent.shift()) ?? []) w.receive(a);
      };
      const s = store(w);
      const first = incr(s, 100, 500);
      await new Promise((resolve) => setImmediate(resolve));
      t = 1_400; // the answer (counted at 1,000: window to 1,500) arrives 400 ms late
      await deliver();
      expect(await first).toEqual({ current: 1, ttl: 500 });
      t = 1_450;
      expect((await incr(s, 100, 500)).current).toBe(2);
      t = 1_600; // the primary's window is over: ask, do not hand out the old window's counts
      const next = incr(s, 100, 500);
      await new Promise((resolve) => setImmediate(resolve));
      expect(sent).toHaveLength(1);
      await deliver();
      expect(await next).toEqual({ current: 1, ttl: 500 });
    });

    it("hands out no reserved count after the window ends", async () => {
      let t = 1_000;
      const [a] = cluster(() => t);
      const s = store(a);
      expect(await incr(s, 100, 500)).toEqual({ current: 1, ttl: 500 });
      t += 600;
      expect(await incr(s, 100, 500)).toEqual({ current: 1, ttl: 500 });
    });
  });

  it("sends the questions of one turn in one message, and answers each its own", async () => {
    const messages: number[] = [];
    const [a] = cluster(() => 1_000, messages);
    const rule = { burst: 2, perHour: 1 };
    const waits = await Promise.all([
      a.keyed.take("k", rule),
      a.keyed.take("k", rule),
      a.keyed.take("k", rule),
      a.keyed.take("other", rule),
    ]);
    expect(messages).toEqual([4]);
    expect(waits.slice(0, 2)).toEqual([0, 0]);
    expect(waits[2]).toBeGreaterThan(0);
    expect(waits[3]).toBe(0);
    expect(await a.keyed.take("other", rule)).toBe(0);
    expect(messages).toEqual([4, 1]);
  });

  it("spends a twentieth of the burst taken ahead without asking, for up to a second", async () => {
    let t = 1_000;
    const messages: number[] = [];
    const [a] = cluster(() => t, messages);
    const rule = { burst: 100, perHour: 1 };
    for (let i = 0; i < 12; i++) expect(await a.keyed.take("v1:1.2.3.4", rule)).toBe(0);
    // 1 + 5 ahead, 1 + 5 ahead: two questions for twelve checks.
    expect(messages).toEqual([1, 1]);
    t += 1_001;
    expect(await a.keyed.take("v1:1.2.3.4", rule)).toBe(0);
    // The expired grant (nothing left of it) goes back with the next question: nothing to give back here.
    expect(messages).toEqual([1, 1, 1]);
  });

  it("gives the tokens it did not spend back to the primary's bucket", async () => {
    let t = 1_000;
    const [a, b] = cluster(() => t);
    const rule = { burst: 100, perHour: 0 };
    expect(await a.keyed.take("k", rule)).toBe(0); // 1 spent, 5 ahead: 94 left in the primary
    expect(await a.keyed.take("k", rule)).toBe(0); // from the 5
    t += 1_001;
    a.returnExpired();
    await new Promise((r) => setTimeout(r, 10));
    // 98 back in the bucket: b may take 98 at once, then nothing.
    expect(await b.keyed.take("k", rule, 98)).toBe(0);
    expect(await b.keyed.take("k", rule)).toBeGreaterThan(0);
  });

  it("gives back the rest of a grant when a request costs more than it holds", async () => {
    const [a, b] = cluster(() => 1_000);
    const rule = { burst: 100, perHour: 0 };
    expect(await a.keyed.take("k", rule, 1)).toBe(0); // 1 + 5 ahead: 94 left
    expect(await a.keyed.take("k", rule, 10)).toBe(0); // asks: 10 + 5 ahead, the old 5 go back: 84 left
    await new Promise((r) => setTimeout(r, 10));
    expect(await b.keyed.take("k", rule, 84)).toBe(0);
    expect(await b.keyed.take("k", rule)).toBeGreaterThan(0);
  });

  it("never lets more than the burst through, whichever workers take ahead", async () => {
    const [a, b] = cluster(() => 1_000);
    const rule = { burst: 40, perHour: 1 };
    let allowed = 0;
    for (let i = 0; i < 60; i++) if ((await (i % 3 === 0 ? a : b).keyed.take("k", rule)) === 0) allowed++;
    // At most what the other worker still holds ahead (2 tokens) is refused early.
    expect(allowed).toBeLessThanOrEqual(40);
    expect(allowed).toBeGreaterThanOrEqual(38);
    // A cost larger than what is held ahead asks the primary, which refuses: the bucket is empty.
    expect(await a.keyed.take("k", rule, 3)).toBeGreaterThan(0);
  });

  it("asks for tokens ahead once per key while a question is on its way", async () => {
    const asked: LimitAsk[] = [];
    const [a] = cluster(() => 1_000, [], asked);
    const rule = { burst: 100, perHour: 1 };
    await Promise.all([a.keyed.take("k", rule), a.keyed.take("k", rule), a.keyed.take("j", rule)]);
    expect(asked.map((q) => (q.seraph === "limit-take" ? [q.key, q.ahead] : []))).toEqual([
      ["k", 5],
      ["k", 0],
      ["j", 5],
    ]);
  });

  it("lets a request through when the primary does not answer", async () => {
    const w = new WorkerLimits({ send: () => undefined });
    expect(await w.keyed.take("k", { burst: 1, perHour: 1 })).toBe(0);
  }, 10_000);

  it("bounds the counters it keeps", () => {
    const c = new FixedWindowCounter(() => 0, 10);
    for (let i = 0; i < 100; i++) c.incr(`k${i}`, 1000);
    expect(c.incr("k99", 1000).current).toBe(2);
    expect(c.incr("k0", 1000).current).toBe(1);
  });
});
