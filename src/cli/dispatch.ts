/**
 * The `seraph` dispatcher: finds the command named by the leading words of the command line (the longest
 * registered name wins, `keys revoke KEY` → `keys revoke` with argument KEY), parses that command's options
 * strictly, runs it, and maps failures to exit codes (2 usage, 78 configuration, 1 anything else).
 */

import { parseArgs } from "node:util";
import { packageVersion } from "../core/package-root.js";
import { KeyFileError } from "../crypto/key-file.js";
import {
  type Command,
  ConfigError,
  EXIT_CONFIG,
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  type OptionValues,
  UsageError,
} from "./command.js";
import { commandHelp, globalHelp, usageError } from "./help.js";

export interface Output {
  out(text: string): void;
  err(text: string): void;
  /** Logs an unexpected failure with its stack (to the JSON log, not the terminal). */
  fatal(err: unknown): void;
}

/** The outcome: an exit code, or `running` for a command that keeps the process alive (serve). */
export type Outcome = { exit: number } | { running: true };

const DEFAULT_COMMAND = "serve";

function stringOptionNames(commands: readonly Command[]): Set<string> {
  const names = new Set<string>();
  for (const c of commands)
    for (const [name, o] of Object.entries(c.options)) {
      if (o.type !== "string") continue;
      names.add(`--${name}`);
      if (o.short) names.add(`-${o.short}`);
    }
  return names;
}

/** The indices of the command words in `argv` (tokens that are neither options nor option values). */
function wordIndices(argv: string[], valued: Set<string>): number[] {
  const out: number[] = [];
  for (let i = 0; i < argv.length; i++) {
    const t = argv[i]!;
    if (t === "--") break;
    if (t.startsWith("-") && t !== "-") {
      if (!t.includes("=") && valued.has(t)) i++;
      continue;
    }
    out.push(i);
  }
  return out;
}

export async function dispatch(argv: string[], commands: readonly Command[], io: Output): Promise<Outcome> {
  const version = packageVersion();
  const words = wordIndices(argv, stringOptionNames(commands));
  const wordText = words.map((i) => argv[i]!);
  const wantsHelp = argv.some((a) => a === "--help" || a === "-h");

  if (wordText.length === 0 && (argv.includes("--version") || argv.includes("-V"))) {
    io.out(`seraph ${version}\n`);
    return { exit: EXIT_OK };
  }
  if (wordText[0] === "help") {
    const rest = wordText.slice(1).join(" ");
    const cmd = commands.find((c) => c.name === rest);
    if (cmd) io.out(commandHelp(cmd));
    else if (rest && commands.some((c) => c.name.startsWith(`${rest} `)))
      io.out(globalHelp(commands, version, rest));
    else io.out(globalHelp(commands, version));
    return { exit: EXIT_OK };
  }
  if (wordText.length === 0 && wantsHelp) {
    io.out(globalHelp(commands, version));
    return { exit: EXIT_OK };
  }

  // The longest registered name made of the leading words.
  let cmd: Command | undefined;
  let used = 0;
  for (const c of commands) {
    const parts = c.name.split(" ");
    if (parts.length > used && parts.every((p, i) => wordText[i] === p)) {
      cmd = c;
      used = parts.length;
    }
  }
  if (wordText.length === 0) {
    cmd = commands.find((c) => c.name === DEFAULT_COMMAND);
  }
  if (!cmd) {
    const group = wordText[0]!;
    if (commands.some((c) => c.name.startsWith(`${group} `))) {
      if (wantsHelp) {
        io.out(globalHelp(commands, version, group));
        return { exit: EXIT_OK };
      }
      const sub = wordText[1];
      io.err(
        `seraph: ${sub === undefined ? `${group} needs a command` : `unknown command "${group} ${sub}"`}\n\n${globalHelp(commands, version, group)}`,
      );
      return { exit: EXIT_USAGE };
    }
    io.err(`seraph: unknown command "${group}"; run 'seraph --help' for the list of commands\n`);
    return { exit: EXIT_USAGE };
  }

  const drop = new Set(words.slice(0, used));
  const rest = argv.filter((_, i) => !drop.has(i));
  let values: OptionValues;
  let positionals: string[];
  try {
    const options: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> = {
      help: { type: "boolean", short: "h" },
    };
    for (const [name, o] of Object.entries(cmd.options)) {
      options[name] = { type: o.type, ...(o.short ? { short: o.short } : {}), multiple: o.multiple ?? false };
    }
    ({ values, positionals } = parseArgs({ args: rest, options, allowPositionals: true, strict: true }));
  } catch (e) {
    io.err(usageError(cmd, (e as Error).message));
    return { exit: EXIT_USAGE };
  }
  if (values.help) {
    io.out(commandHelp(cmd));
    return { exit: EXIT_OK };
  }
  if (positionals.length > (cmd.maxArgs ?? 0)) {
    io.err(usageError(cmd, `unexpected argument "${positionals[cmd.maxArgs ?? 0]}"`));
    return { exit: EXIT_USAGE };
  }
  try {
    const code = await cmd.run({ values, args: positionals });
    return cmd.name === DEFAULT_COMMAND && code === undefined ? { running: true } : { exit: code ?? EXIT_OK };
  } catch (e) {
    if (e instanceof ConfigError || e instanceof KeyFileError) {
      io.err(`seraph: ${e.message}\n`);
      return { exit: EXIT_CONFIG };
    }
    if (e instanceof UsageError) {
      io.err(usageError(cmd, e.message));
      return { exit: EXIT_USAGE };
    }
    io.err(`seraph: ${(e as Error)?.message ?? String(e)}\n`);
    io.fatal(e);
    return { exit: EXIT_FAILURE };
  }
}
