/**
 * What every `seraph` command is made of: a name (one or more words, `keys generate`), a one-line summary,
 * its usage line, its options (node:util parseArgs descriptors with a description), an example, and `run`.
 * The dispatcher (src/cli/main.ts, through ./dispatch.ts) parses the options strictly for the matched command.
 */
import { ConfigError, loadConfig, type ResolvedConfig } from "../config/load.js";

/** Exit codes: 0 ok, 1 runtime failure, 2 usage error, 78 configuration error (EX_CONFIG). */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_CONFIG = 78;

/** A mistake in how the command was called: the command's usage is printed and the exit code is 2. */
export class UsageError extends Error {}

export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
  /** Shown in `--help`, e.g. `FILE`. */
  valueName?: string;
  description: string;
}

export type OptionValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface CommandInput {
  values: OptionValues;
  /** Arguments after the command's words (`keys revoke KEY` → `["KEY"]`). */
  args: string[];
}

export interface Command {
  /** One or more words: `serve`, `keys generate`, `config check`. */
  name: string;
  summary: string;
  /** Everything after `seraph <name>`, e.g. `[--config FILE] [--rotate]`. */
  usage: string;
  options: Record<string, OptionSpec>;
  /** Full command lines, one per entry. */
  examples: string[];
  /** How many arguments may follow the command's words (default 0). */
  maxArgs?: number;
  /** Longer explanation for `--help` (optional). */
  details?: string;
  /** Resolves with the exit code (default 0); throws UsageError, ConfigError or anything else (exit 1). */
  run(input: CommandInput): Promise<number | undefined>;
}

/** `--config FILE`: shared by every command that reads the configuration. */
export const CONFIG_OPTION: OptionSpec = {
  type: "string",
  short: "c",
  valueName: "FILE",
  description: "configuration file (default: $SERAPH_CONFIG; without either, development defaults)",
};

/** Loads the configuration named by `--config`, else by SERAPH_CONFIG, else the defaults. */
export function configFrom(values: OptionValues): ResolvedConfig {
  const path = values.config;
  if (path !== undefined && typeof path !== "string") throw new UsageError("--config takes one FILE");
  return loadConfig(path ?? process.env.SERAPH_CONFIG);
}

export function stringOption(values: OptionValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
}

export { ConfigError };
