/**
 * The development provider: nothing leaves the machine. With `outbox_dir`, each SMS is appended to
 * `<outbox_dir>/sms.log` (mode 0600, directory 0700) as one JSON line `{"ts","to","from","body"}`; that file is
 * where a developer or a test reads the code. The log line carries only `to`, `from` and the file path, never
 * the body. Without `outbox_dir` the message is dropped (a warning says so at startup).
 */
import { appendFile, chmod, mkdir } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "../../core/logger.js";
import { SendTracker } from "./http-client.js";
import { isE164, type SmsMessage, type SmsProvider, SmsSendError } from "./types.js";

export const SMS_OUTBOX_FILE = "sms.log";

/** One line of `sms.log`. */
export interface SmsOutboxEntry {
  /** ISO 8601 time of the send. */
  ts: string;
  to: string;
  from: string | null;
  body: string;
}

export function createLogProvider(outboxDir: string | undefined, log: Logger): SmsProvider {
  const file = outboxDir !== undefined ? path.join(path.resolve(outboxDir), SMS_OUTBOX_FILE) : undefined;
  if (!file) {
    log.warn(
      { provider: "log" },
      "SMS provider is 'log' without sms.outbox_dir: text messages are dropped, not delivered",
    );
  }
  const tracker = new SendTracker("SMS provider 'log'");
  let prepared: Promise<void> | undefined;
  // Appends are chained so lines never interleave.
  let chain: Promise<unknown> = Promise.resolve();

  async function prepare(f: string): Promise<void> {
    await mkdir(path.dirname(f), { recursive: true, mode: 0o700 });
    await appendFile(f, "", { mode: 0o600 });
    await chmod(f, 0o600); // also tighten a file left by an older run
  }

  async function write(f: string, line: string): Promise<void> {
    prepared ??= prepare(f).catch((err: unknown) => {
      prepared = undefined;
      throw err;
    });
    await prepared;
    await appendFile(f, line, { mode: 0o600 });
  }

  async function deliver(msg: SmsMessage): Promise<void> {
    if (!isE164(msg.to)) throw new SmsSendError("invalid destination number (not E.164)", "rejected");
    const from = msg.from ?? null;
    if (!file) {
      log.info({ provider: "log", to: msg.to, from }, "SMS dropped (no sms.outbox_dir)");
      return;
    }
    const entry: SmsOutboxEntry = { ts: new Date().toISOString(), to: msg.to, from, body: msg.body };
    const line = `${JSON.stringify(entry)}\n`;
    const p = chain.then(() => write(file, line));
    chain = p.catch(() => undefined);
    try {
      await p;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      log.warn({ provider: "log", to: msg.to, file, code }, "SMS outbox write failed");
      throw new SmsSendError("cannot write the SMS outbox file", "config", { cause: err });
    }
    log.info({ provider: "log", to: msg.to, from, file }, "SMS written to outbox");
  }

  return {
    name: "log",
    send: (msg) => tracker.run(() => deliver(msg)),
    close: () => tracker.close(),
  };
}
