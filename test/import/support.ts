import { chmodSync, cpSync, mkdtempSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Kysely, sql } from "kysely";
import { type ResolvedConfig, resolveConfig } from "../../src/config/load.js";
import type { Database } from "../../src/store/schema.js";
import { testDatabase } from "../support/seraph.js";

/** The read-only fixture made by a live sydent 2.6.1 (see its README.md). */
export const FIXTURE = join(import.meta.dirname, "..", "..", "..", "shared", "fixtures", "sydent-small");

/** A writable copy of the fixture in a fresh temp folder. */
export function copyFixture(): string {
  const dir = mkdtempSync(join(tmpdir(), "seraph-sydent-"));
  const dest = join(dir, "sydent");
  cpSync(FIXTURE, dest, { recursive: true });
  const makeWritable = (p: string) => {
    chmodSync(p, statSync(p).isDirectory() ? 0o755 : 0o644);
    if (statSync(p).isDirectory()) for (const f of readdirSync(p)) makeWritable(join(p, f));
  };
  makeWritable(dest);
  return dest;
}

/** The Seraph configuration an import into `dir` uses (the test backend's database). */
export async function importConfig(dir: string, sydentDir: string, extra: Record<string, unknown> = {}) {
  const cfg: ResolvedConfig = resolveConfig({
    server_name: "sydent-fixture.test",
    database: await testDatabase(dir),
    signing_key_path: join(dir, "signing.key"),
    terms: { path: join(sydentDir, "terms.yaml") },
    log: { level: "silent" },
    email: { outbox_dir: join(dir, "outbox") },
    ...extra,
  });
  return cfg;
}

/** Every row of every Seraph table, without generated ids, in a stable order (to compare two databases). */
export async function dumpDatabase(db: Kysely<Database>): Promise<Record<string, unknown[]>> {
  const q = async (text: string) => (await sql.raw(text).execute(db)).rows as unknown[];
  return {
    associations: await q(
      "select medium, address, mxid, ts, not_before, not_after, signed_json from associations order by medium, address",
    ),
    association_hashes: await q(
      `select p.pepper, h.hash, a.medium, a.address from association_hashes h
       join lookup_peppers p on p.id = h.pepper_id join associations a on a.id = h.association_id
       order by p.pepper, h.hash`,
    ),
    lookup_peppers: await q(
      "select pepper, state, created_ts, activated_ts, retired_ts from lookup_peppers order by pepper",
    ),
    invites: await q(
      "select token, medium, address, room_id, sender, ephemeral_public_key, params_json, received_ts from invites order by token",
    ),
    ephemeral_keys: await q("select public_key, created_ts from ephemeral_keys order by public_key"),
    accounts: await q("select user_id, created_ts, sydent_consent_version from accounts order by user_id"),
    access_tokens: await q(
      "select token_hash, user_id, created_ts, expires_ts from access_tokens order by token_hash",
    ),
    accepted_terms: await q("select user_id, url, accepted_ts from accepted_terms order by user_id, url"),
    validation_sessions: await q(
      "select sid, medium, address, client_secret, token, send_attempt, validated_ts, created_ts, mtime from validation_sessions order by sid",
    ),
    onbind_jobs: await q(
      "select medium, address, mxid, attempts, next_attempt_ts, created_ts from onbind_jobs order by medium, address",
    ),
    signing_keys: await q(
      "select public_key, key_id, created_ts, revoked_ts from signing_keys order by public_key",
    ),
    sydent_import: await q("select phase, cursor, rows, done, state_json from sydent_import order by phase"),
  };
}
