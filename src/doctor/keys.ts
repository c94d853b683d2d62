/** Signing key: the file is readable and private, and its current key is the one the database publishes. */
import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import type { ResolvedConfig } from "../config/load.js";
import type { SigningKey } from "../crypto/ed25519.js";
import { readKeyFile } from "../crypto/key-file.js";
import type { Store } from "../store/database.js";
import { errorText, type Report } from "./report.js";

/** Returns the current signing key when the file could be read. */
export async function checkSigningKey(
  cfg: ResolvedConfig,
  store: Store | undefined,
  report: Report,
): Promise<SigningKey | undefined> {
  const g = report.group("signing key");
  const path = resolve(cfg.signing_key_path);
  if (!existsSync(path)) {
    g.warn(
      "readable",
      `${path} does not exist`,
      "seraph serve creates one at first start; to keep an existing identity, copy the old key file there",
    );
    return undefined;
  }
  let keys: SigningKey[];
  try {
    keys = readKeyFile(path);
  } catch (e) {
    g.fail(
      "readable",
      errorText(e),
      `make ${path} readable by the user running Seraph, with lines "ed25519 <version> <base64 seed>"`,
    );
    return undefined;
  }
  const current = keys[0]!;
  g.pass("readable", `${path}: ${keys.length} key(s), current ${current.keyId}`);

  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    g.fail(
      "mode 0600",
      `${path} has mode 0${mode.toString(8)}: other users can read the server's private key`,
      `chmod 600 ${path}`,
    );
  } else {
    g.pass("mode 0600", `mode 0${mode.toString(8)}`);
  }

  if (store) {
    try {
      const published = await store.repos.keys.allSigningKeys();
      const row = published.find((k) => k.publicKeyBase64 === current.publicKeyBase64);
      if (row?.revokedTs) {
        g.fail(
          "published",
          `the current key ${current.keyId} is revoked in the database`,
          "rotate to a new key: seraph keys generate --rotate, then restart",
        );
      } else if (!row) {
        const others = published.filter((k) => !k.revokedTs).length;
        g.warn(
          "published",
          `the current key ${current.keyId} is not in the database yet${others ? ` (it publishes ${others} other key(s))` : ""}`,
          "seraph serve records it at start; if this is not the key file the server used, check signing_key_path",
        );
      } else {
        g.pass("published", `${current.keyId} is recorded in the database as published`);
      }
    } catch (e) {
      g.fail("published", errorText(e), "run seraph migrate, then seraph doctor again");
    }
  }
  return current;
}
