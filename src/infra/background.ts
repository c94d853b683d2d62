import type { Logger } from "../core/logger.js";

interface Task {
  name: string;
  intervalMs: number;
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

  constructor(private readonly log: Logger) {}

  add(name: string, intervalMs: number, run: () => Promise<unknown>): void {
    const task: Task = { name, intervalMs, run, again: false };
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
      const again = task.again || more;
      task.again = false;
      this.schedule(task, again ? 0 : task.intervalMs);
    })();
  }

  /** Runs a task soon, without waiting for its interval. */
  kick(name: string): void {
    const task = this.tasks.get(name);
    if (task) this.schedule(task, 0);
  }

  /** Stops scheduling and waits for the tasks that are running. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.tasks.values()) clearTimeout(t.timer);
    await Promise.all([...this.tasks.values()].map((t) => t.running));
  }
}
