import { resolve } from "node:path";
import { stringify } from "yaml";
import { maskSecrets } from "../config/mask.js";
import { CONFIG_OPTION, type Command, configFrom } from "./command.js";

export const configCheck: Command = {
  name: "config check",
  summary: "validate the configuration and print it resolved (defaults filled in, secrets masked)",
  usage: "[--config FILE]",
  options: { config: CONFIG_OPTION },
  examples: ["seraph config check --config /etc/seraph/seraph.yaml"],
  details: `Reads the file and SERAPH_* environment overrides exactly as 'seraph serve' does. Exit 0 when the
configuration is valid, 78 (and which key is wrong) when it is not. Nothing is contacted; see
'seraph doctor' for that.`,
  async run({ values }) {
    const cfg = configFrom(values);
    const source = typeof values.config === "string" ? values.config : process.env.SERAPH_CONFIG;
    const masked = maskSecrets(JSON.parse(JSON.stringify(cfg)));
    process.stdout.write(
      `# configuration ${source ? resolve(source) : "(none: development defaults)"} is valid\n` +
        `# resolved, with defaults; secrets masked\n${stringify(masked)}`,
    );
    return 0;
  },
};
