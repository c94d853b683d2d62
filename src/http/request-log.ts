import { randomBytes } from "node:crypto";
import type { FastifyBaseLogger } from "fastify";
import type { Bindings, ChildLoggerOptions, Level, LogFn, Logger } from "pino";

/**
 * Request ids: a random prefix per process (so that ids of workers and restarts do not collide) and a
 * counter. Unique and cheap: drawing random bytes per request cost more than routing it.
 */
export function requestIdGenerator(): () => string {
  const prefix = randomBytes(4).toString("hex");
  let n = 0;
  return () => `${prefix}${(++n).toString(36)}`;
}

/**
 * The per-request logger fastify hands out as `req.log`: the pino child with the request id is made only
 * when a line is actually written (most requests write none below `info`). Same output as the child.
 */
export class LazyRequestLogger implements FastifyBaseLogger {
  #child: Logger | undefined;

  constructor(
    private readonly parent: Logger,
    private readonly bindings: Bindings,
    private readonly options: ChildLoggerOptions,
  ) {}

  get logger(): Logger {
    if (this.#child === undefined) this.#child = this.parent.child(this.bindings, this.options);
    return this.#child;
  }

  get level(): string {
    return this.#child ? this.#child.level : this.parent.level;
  }

  set level(level: string) {
    this.logger.level = level;
  }

  /** The pino child if one was made, else the parent: both answer the same to `isLevelEnabled`. */
  levelSource(): Logger {
    return this.#child ?? this.parent;
  }

  declare readonly fatal: LogFn;
  declare readonly error: LogFn;
  declare readonly warn: LogFn;
  declare readonly info: LogFn;
  declare readonly debug: LogFn;
  declare readonly trace: LogFn;

  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.logger.child(bindings, options);
  }
}

// One shared function per level on the prototype (no closures per request): write through the child only
// when the level is enabled.
for (const level of ["fatal", "error", "warn", "info", "debug", "trace"] as const satisfies Level[]) {
  Object.defineProperty(LazyRequestLogger.prototype, level, {
    value(this: LazyRequestLogger, ...args: Parameters<LogFn>) {
      if (this.levelSource().isLevelEnabled(level)) this.logger[level](...args);
    },
  });
}

/** fastify's `childLoggerFactory` making {@link LazyRequestLogger}s. */
export function lazyRequestLoggers(
  logger: FastifyBaseLogger,
  bindings: Bindings,
  options: ChildLoggerOptions,
): FastifyBaseLogger {
  return new LazyRequestLogger(logger as Logger, bindings, options);
}
