import type { Logger } from "../core/logger.js";

/**
 * Which process runs the shared background tasks when several serve one listener (`server.workers`):
 * exactly one of them leads at a time (src/cluster/). Tasks added with `everyProcess` run everywhere.
 */
export interface BackgroundGate {
  /** Whether this process runs the shared tasks now. */
  isLeader(): boolean;
  /** Passes a kick of a shared task made here, where it does not run, on to the leader. */
  forward(task: string): void;
  /** Registers the receiver of kicks forwarded to this process (`undefined`: every task, on becoming leader). */
  onKick(listener: (task: string | undefined) => void): void;
}

interface Task {
  name: string;
  everyProcess: boolean;
  intervalMs: number;
  /** Delay before the next run of a task whose run found more to do (0: at once). */
  busyDelayMs: number;
  run: () => Promise<unknown>;
  timer?: NodeJS.Timeout;
  running?: Promise<void>;
  again: boolean;
}

/**
 * Periodic background work (delivery, reaping, rehashing). Each task runs at most once at a time in this
 * process; `kick` runs it as soon as possible; `stop` waits for running tasks to finish.
 */
export class BackgroundTasks {
  private readonly tasks = new Map<string, Task>();
  private stopped = false;

  constructor(
    private readonly log: Logger,
    private readonly gate?: BackgroundGate,
  ) {
    gate?.onKick((name) => {
      if (name !== undefined) this.kickHere(name);
      else for (const t of this.tasks.values()) if (!t.everyProcess) this.schedule(t, 0);
    });
  }

  /**
   * `everyProcess`: runs in every process (e.g. refreshing what this process caches), not only in the leader.
   * `busyDelayMs`: a run that returns a number above 0 (it did a full batch) is followed after this delay
   * (default 0: at once); a pause that spreads a long backlog so that it does not hold up requests.
   */
  add(
    name: string,
    intervalMs: number,
    run: () => Promise<unknown>,
    opts: { everyProcess?: boolean; busyDelayMs?: number } = {},
  ): void {
    const task: Task = {
      name,
      intervalMs,
      busyDelayMs: opts.busyDelayMs ?? 0,
      run,
      again: false,
      everyProcess: opts.everyProcess ?? false,
    };
    this.tasks.set(name, task);
    this.schedule(task, Math.min(intervalMs, 50));
  }

  private schedule(task: Task, delay: number): void {
    if (this.stopped) return;
    clearTimeout(task.timer);
    task.timer = setTimeout(() => this.fire(task), delay);
    task.timer.unref();
  }

  private fire(task: Task): void {
    if (this.stopped) return;
    if (!task.everyProcess && this.gate && !this.gate.isLeader()) {
      this.schedule(task, task.intervalMs);
      return;
    }
    if (task.running) {
      task.again = true;
      return;
    }
    task.running = (async () => {
      let more = false;
      try {
        const result = await task.run();
        more = typeof result === "number" && result > 0;
      } catch (err) {
        this.log.warn({ task: task.name, err }, "background task failed");
      } finally {
        task.running = undefined;
      }
      // Busy tasks (a full batch) continue at once; idle ones wait for their interval.
      const kicked = task.again;
      task.again = false;
      this.schedule(task, kicked ? 0 : more ? task.busyDelayMs : task.intervalMs);
    })();
  }

  /** Runs a task soon, without waiting for its interval (in the leader, for a shared task). */
  kick(name: string): void {
    const task = this.tasks.get(name);
    if (task && !task.everyProcess && this.gate && !this.gate.isLeader()) this.gate.forward(name);
    else this.kickHere(name);
  }

  private kickHere(name: string): void {
    const task = this.tasks.get(name);
    // While it runs, a timer set now would be replaced when the run ends: ask for another run instead.
    if (task?.running) task.again = true;
    else if (task) this.schedule(task, 0);
  }

  /** Stops scheduling and waits for the tasks that are running. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.tasks.values()) clearTimeout(t.timer);
    await Promise.all([...this.tasks.values()].map((t) => t.running));
  }
}
