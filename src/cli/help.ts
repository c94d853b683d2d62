/** Help pages: the global list of commands, and one command's usage, options and example. */
import type { Command, OptionSpec } from "./command.js";

const HELP_OPTION: OptionSpec = { type: "boolean", short: "h", description: "show this help" };

export function usageLine(cmd: Command): string {
  return `seraph ${cmd.name}${cmd.usage ? ` ${cmd.usage}` : ""}`;
}

/** `seraph: message` plus the command's usage only (what a usage error prints). */
export function usageError(cmd: Command, message: string): string {
  return `seraph: ${message}\nUsage: ${usageLine(cmd)}\n(seraph ${cmd.name} --help for options and an example)\n`;
}

export function commandHelp(cmd: Command): string {
  const rows = Object.entries({ ...cmd.options, help: HELP_OPTION }).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : "    "}--${name}${o.type === "string" ? ` ${o.valueName ?? "VALUE"}` : ""}`;
    return [flag, o.description] as const;
  });
  const width = Math.max(...rows.map(([f]) => f.length)) + 2;
  const options = rows.map(([f, d]) => `  ${f.padEnd(width)}${d}`).join("\n");
  const details = cmd.details ? `\n${cmd.details.trim()}\n` : "";
  return `seraph ${cmd.name}: ${cmd.summary}

Usage:
  ${usageLine(cmd)}
${details}
Options:
${options}

Example${cmd.examples.length > 1 ? "s" : ""}:
${cmd.examples.map((e) => `  ${e}`).join("\n")}
`;
}

/** The page for `seraph --help`, or for a group of commands (`seraph keys --help`). */
export function globalHelp(commands: readonly Command[], version: string, group?: string): string {
  const list = group ? commands.filter((c) => c.name.startsWith(`${group} `)) : commands;
  const width = Math.max(...list.map((c) => c.name.length)) + 2;
  const lines = list.map((c) => `  seraph ${c.name.padEnd(width)}${c.summary}`).join("\n");
  if (group) {
    return `seraph ${group}: one of

${lines}

Run 'seraph ${group} <command> --help' for a command's options and an example.
`;
  }
  return `seraph ${version}: a Matrix identity server

Usage: seraph <command> [options]     (without a command: serve)

Commands:
${lines}
  seraph ${"--version".padEnd(width)}print the version
  seraph ${"--help".padEnd(width)}this page

Run 'seraph <command> --help' for a command's options and an example.

Without --config, SERAPH_CONFIG names the file; without either, development defaults apply
(127.0.0.1:8090, SQLite under ./data). Any key can be set with SERAPH_<KEY> variables,
e.g. SERAPH_LISTEN__PORT=8091 (see docs/configuration.md).
`;
}
