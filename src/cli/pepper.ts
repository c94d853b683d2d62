import { randomToken } from "../crypto/hash.js";
import { withMigratedStore } from "../store/database.js";
import { CONFIG_OPTION, type Command, configFrom } from "./command.js";

export const pepperRotate: Command = {
  name: "pepper rotate",
  summary: "start a lookup pepper rotation (running servers rehash, then switch)",
  usage: "[--config FILE]",
  options: { config: CONFIG_OPTION },
  examples: ["seraph pepper rotate --config /etc/seraph/seraph.yaml"],
  async run({ values }) {
    await withMigratedStore(configFrom(values).database, (store) =>
      store.repos.peppers.insertIfAbsent(randomToken(32), "pending", Date.now()),
    );
    process.stdout.write("a new lookup pepper is pending; running servers rehash and switch to it\n");
    return 0;
  },
};
