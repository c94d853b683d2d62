import { existsSync } from "node:fs";
import { readKeyFile, rotateKeys, writeKeyFile } from "../crypto/key-file.js";
import { KeyService } from "../services/keys.js";
import { withMigratedStore } from "../store/database.js";
import { CONFIG_OPTION, type Command, configFrom, UsageError } from "./command.js";

export const keysGenerate: Command = {
  name: "keys generate",
  summary: "create the signing key file; with --rotate, add a new current key in front",
  usage: "[--config FILE] [--rotate]",
  options: {
    config: CONFIG_OPTION,
    rotate: {
      type: "boolean",
      description: "the file exists: add a new current key, keep the old ones published",
    },
  },
  examples: ["seraph keys generate --config /etc/seraph/seraph.yaml", "seraph keys generate --rotate"],
  async run({ values }) {
    const path = configFrom(values).signing_key_path;
    if (existsSync(path) && !values.rotate) {
      throw new UsageError(`${path} already exists; use --rotate to add a new current key`);
    }
    const keys = existsSync(path) ? rotateKeys(readKeyFile(path)) : rotateKeys([]);
    writeKeyFile(path, keys);
    process.stdout.write(`${keys[0]!.keyId} ${keys[0]!.publicKeyBase64} written to ${path}\n`);
    return 0;
  },
};

export const keysShow: Command = {
  name: "keys show",
  summary: "print key ids, public keys and their state (current, valid, revoked)",
  usage: "[--config FILE]",
  options: { config: CONFIG_OPTION },
  examples: ["seraph keys show --config /etc/seraph/seraph.yaml"],
  async run({ values }) {
    const cfg = configFrom(values);
    await withMigratedStore(cfg.database, async (store) => {
      const repo = store.repos.keys;
      // Loading records the file's keys as published, so that they are listed with the older ones.
      const keys = await KeyService.load(readKeyFile(cfg.signing_key_path), repo, Date.now());
      const current = keys.signingKey;
      for (const k of await repo.allSigningKeys()) {
        const state = k.revokedTs
          ? "revoked"
          : k.publicKeyBase64 === current.publicKeyBase64
            ? "current"
            : "valid";
        process.stdout.write(`${k.keyId}\t${k.publicKeyBase64}\t${state}\n`);
      }
    });
    return 0;
  },
};

export const keysRevoke: Command = {
  name: "keys revoke",
  summary: "revoke an old key (by key id or public key)",
  usage: "KEY [--config FILE]",
  maxArgs: 1,
  options: { config: CONFIG_OPTION },
  examples: ["seraph keys revoke ed25519:0 --config /etc/seraph/seraph.yaml"],
  details: "Running servers stop accepting the key within a minute. The current key cannot be revoked.",
  async run({ values, args }) {
    const arg = args[0];
    if (!arg) throw new UsageError("keys revoke needs a key id or public key");
    const cfg = configFrom(values);
    const current = readKeyFile(cfg.signing_key_path)[0]!;
    if (arg === current.publicKeyBase64) {
      throw new UsageError(
        "refusing to revoke the current signing key; rotate first (keys generate --rotate)",
      );
    }
    const [n, resigned] = await withMigratedStore(cfg.database, async (store) => {
      // By key id, this revokes older keys that had the same id (a regenerated key file), never the current one.
      const ids = await store.repos.keys.revokeSigningKey(arg, Date.now(), current.publicKeyBase64);
      // Stored signed associations by a revoked key are signed again with the current key when next read.
      const assocs = store.repos.associations;
      let forgotten = 0;
      for (const id of new Set(ids)) forgotten += await assocs.forgetSignaturesBy(id);
      return [ids.length, forgotten];
    });
    process.stdout.write(
      `${n} key(s) revoked; running servers stop accepting them within a minute; ` +
        `${resigned} stored association signature(s) will be made again with the current key\n`,
    );
    return 0;
  },
};
