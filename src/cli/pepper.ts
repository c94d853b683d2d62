import { randomToken } from "../crypto/hash.js";
import { migrateToLatest, openStore } from "../store/database.js";
import { KyselyPepperRepository } from "../store/peppers.js";
import { CONFIG_OPTION, type Command, configFrom } from "./command.js";

export const pepperRotate: Command = {
  name: "pepper rotate",
  summary: "start a lookup pepper rotation (running servers rehash, then switch)",
  usage: "[--config FILE]",
  options: { config: CONFIG_OPTION },
  examples: ["seraph pepper rotate --config /etc/seraph/seraph.yaml"],
  async run({ values }) {
    const store = await openStore(configFrom(values).database);
    try {
      await migrateToLatest(store);
      const repo = new KyselyPepperRepository(store.db);
      await repo.insertIfAbsent(randomToken(32), "pending", Date.now());
      process.stdout.write("a new lookup pepper is pending; running servers rehash and switch to it\n");
    } finally {
      await store.close();
    }
    return 0;
  },
};
