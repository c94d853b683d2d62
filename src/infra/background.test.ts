import { describe, expect, it, vi } from "vitest";
import { NO_LOG } from "../core/logger.js";
import { type BackgroundGate, BackgroundTasks } from "./background.js";

const quiet = NO_LOG;

/** A gate whose leadership the test flips, recording forwarded kicks. */
function gate(leader: boolean) {
  let listener: ((task: string | undefined) => void) | undefined;
  const forwarded: string[] = [];
  const g: BackgroundGate & { leader: boolean } = {
    leader,
    isLeader: () => g.leader,
    forward: (task) => forwarded.push(task),
    onKick: (l) => {
      listener = l;
    },
  };
  return { g, forwarded, deliver: (task: string | undefined) => listener?.(task) };
}

function counter() {
  let n = 0;
  let wake: () => void = () => undefined;
  return {
    run: async () => {
      n++;
      wake();
      return 0;
    },
    count: () => n,
    next: () => new Promise<void>((r) => (wake = r)),
  };
}

const settle = () => new Promise((r) => setTimeout(r, 100));

describe("BackgroundTasks with a cluster gate", () => {
  it("runs shared tasks only in the leader, and everyProcess tasks everywhere", async () => {
    const { g } = gate(false);
    const tasks = new BackgroundTasks(quiet, g);
    const shared = counter();
    const local = counter();
    const ranLocal = local.next();
    tasks.add("shared", 60_000, shared.run);
    tasks.add("local", 60_000, local.run, { everyProcess: true });
    await ranLocal;
    await settle();
    expect(shared.count()).toBe(0);
    await tasks.stop();
  });

  it("passes kicks of shared tasks on to the leader, and runs every shared task on becoming leader", async () => {
    const { g, forwarded, deliver } = gate(false);
    const tasks = new BackgroundTasks(quiet, g);
    const shared = counter();
    tasks.add("shared", 60_000, shared.run);
    await settle();
    tasks.kick("shared");
    expect(forwarded).toEqual(["shared"]);
    g.leader = true;
    const ran = shared.next();
    deliver(undefined);
    await ran;
    expect(shared.count()).toBe(1);
    const again = shared.next();
    deliver("shared");
    await again;
    expect(shared.count()).toBe(2);
    await tasks.stop();
  });

  it("without a gate, runs every task in this process", async () => {
    const tasks = new BackgroundTasks(quiet);
    const shared = counter();
    const ran = shared.next();
    tasks.add("shared", 60_000, shared.run);
    await ran;
    expect(shared.count()).toBe(1);
    await tasks.stop();
  });
});

describe("BackgroundTasks busyDelayMs", () => {
  it("waits busyDelayMs, not the interval, after a run that found more to do", async () => {
    vi.useFakeTimers();
    const tasks = new BackgroundTasks(quiet);
    try {
      const runs: number[] = [];
      let backlog = 3;
      tasks.add(
        "backlog",
        3_600_000,
        async () => {
          runs.push(Date.now());
          return backlog-- > 0 ? 1 : 0;
        },
        { busyDelayMs: 1000 },
      );
      const start = Date.now();
      await vi.advanceTimersByTimeAsync(50);
      expect(runs).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(999);
      expect(runs).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(3_000);
      // Three busy runs, each followed by a 1 s pause, then the idle one; the next waits an hour.
      expect(runs.map((t) => t - start)).toEqual([50, 1050, 2050, 3050]);
      await vi.advanceTimersByTimeAsync(60_000);
      expect(runs).toHaveLength(4);
    } finally {
      await tasks.stop();
      vi.useRealTimers();
    }
  });
});
