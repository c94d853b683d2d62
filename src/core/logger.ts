/**
 * The part of a pino logger that services and adapters use: structured fields first, then the message.
 * One type for every layer, so a test can pass a capturing logger anywhere.
 */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

/** A logger that writes nothing. */
export const NO_LOG: Logger = { info() {}, warn() {}, error() {}, debug() {} };

export interface LogLine {
  level: "info" | "warn" | "error" | "debug";
  obj: object;
  msg: string;
}

/** A logger that keeps every line in `lines` (tests read what would have been logged). */
export function captureLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine["level"]) => (obj: object, msg?: string) => {
    lines.push({ level, obj, msg: msg ?? "" });
  };
  return { lines, info: at("info"), warn: at("warn"), error: at("error"), debug: at("debug") };
}
