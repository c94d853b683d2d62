import cliProgress from "cli-progress";
import type { ProgressSink } from "./importer.js";

/**
 * Progress of an import: a bar with rows per second and ETA on a terminal, otherwise one plain line per
 * 10 % of each phase (log files, CI).
 */
export function createProgress(stream: NodeJS.WriteStream = process.stderr): ProgressSink {
  return stream.isTTY ? new BarProgress(stream) : new LineProgress(stream);
}

class BarProgress implements ProgressSink {
  private bar: cliProgress.SingleBar | undefined;
  private started = 0;
  private value = 0;

  constructor(private readonly stream: NodeJS.WriteStream) {}

  start(phase: string, total: number): void {
    this.bar = new cliProgress.SingleBar(
      {
        stream: this.stream,
        format: `${phase.padEnd(15)} [{bar}] {percentage}% | {value}/{total} rows | {rate} rows/s | ETA {eta_formatted}`,
        hideCursor: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    this.started = Date.now();
    this.value = 0;
    this.bar.start(Math.max(total, 1), 0, { rate: 0 });
  }

  tick(rows: number): void {
    this.value += rows;
    const seconds = Math.max((Date.now() - this.started) / 1000, 0.001);
    this.bar?.update(this.value, { rate: Math.round(this.value / seconds) });
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}

class LineProgress implements ProgressSink {
  private phase = "";
  private total = 0;
  private value = 0;
  private nextTenth = 1;
  private started = 0;

  constructor(private readonly stream: NodeJS.WritableStream) {}

  start(phase: string, total: number): void {
    this.phase = phase;
    this.total = total;
    this.value = 0;
    this.nextTenth = 1;
    this.started = Date.now();
  }

  tick(rows: number): void {
    this.value += rows;
    if (this.total <= 0) return;
    let reached = 0;
    while (this.nextTenth <= 10 && this.value * 10 >= this.total * this.nextTenth) reached = this.nextTenth++;
    if (reached === 0) return;
    // One line per 10 %; a batch that crosses several steps at once prints the last one.
    const seconds = Math.max((Date.now() - this.started) / 1000, 0.001);
    const rate = Math.round(this.value / seconds);
    this.stream.write(`${this.phase}: ${reached * 10}% (${this.value}/${this.total} rows, ${rate} rows/s)\n`);
  }

  stop(): void {}
}
