import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Kysely } from "kysely";
import { afterAll, describe, expect, it } from "vitest";
import { sha256Hex } from "../../src/crypto/hash.js";
import { type AdminDatabase, adminDb } from "../../src/store/admin-schema.js";
import { copyDatabase } from "../../src/store/copy.js";
import { type DatabaseOptions, migrateToLatest, openStore, type Store } from "../../src/store/database.js";
import { lookupHash } from "../../src/threepid/normalise.js";
import { V1, V2 } from "../support/paths.js";
import { createTestDatabase } from "../support/postgres.js";
import { seraphCli } from "../support/process.js";
import { call, startSeraph, type TestSeraph } from "../support/seraph.js";

const _ROOT = resolve(import.meta.dirname, "..", "..");
const TOKEN = "migration-test-token";

function cli(args: string[]) {
  return seraphCli(args);
}

const servers: TestSeraph[] = [];
afterAll(async () => {
  for (const s of servers) await s.close();
});

const ADMIN_TABLES = ["admin_tokens", "audit_log", "suppressions", "blocklist", "admin_secrets"] as const;

/** Every row of the admin tables, in a stable order. */
async function adminRows(db: Kysely<AdminDatabase>) {
  const out: Record<string, unknown[]> = {};
  for (const t of ADMIN_TABLES) {
    const rows = await db.selectFrom(t).selectAll().execute();
    out[t] = rows.map((r) => JSON.stringify(r)).sort();
  }
  return out;
}

/** What a client sees: public key, v1 signed lookups, the pepper and v2 lookups of every address. */
async function answers(is: TestSeraph, emails: string[]) {
  const pubkey = (await call(`${is.url}${V2}/pubkey/ed25519:0`)).body;
  const v1 = [];
  for (const e of emails) v1.push((await call(`${is.url}${V1}/lookup?medium=email&address=${e}`)).body);
  const auth = { authorization: `Bearer ${TOKEN}` };
  const details = (await call(`${is.url}${V2}/hash_details`, { headers: auth })).body as {
    lookup_pepper: string;
  };
  const hashes = emails.map((e) => lookupHash(e, "email", details.lookup_pepper));
  const v2 = (
    await call(`${is.url}${V2}/lookup`, {
      headers: auth,
      body: { algorithm: "sha256", pepper: details.lookup_pepper, addresses: hashes },
    })
  ).body;
  return { pubkey, v1, details, v2 };
}

describe("seraph migrate-db", () => {
  it("copies a populated SQLite database into PostgreSQL with identical answers", async () => {
    const dir = mkdtempSync(join(tmpdir(), "seraph-migrate-"));
    const sqlitePath = join(dir, "seraph.db");
    const source = await startSeraph({}, { dir, backend: "sqlite" });
    servers.push(source);
    const emails = Array.from({ length: 40 }, (_, i) => `user${i}@example.org`);
    const db = source.seraph.store.db;
    await db
      .insertInto("access_tokens")
      .values({ token_hash: sha256Hex(TOKEN), user_id: "@m:hs.test", created_ts: 1, expires_ts: null })
      .execute();
    const pepper = await db
      .selectFrom("lookup_peppers")
      .select(["id", "pepper"])
      .where("state", "=", "current")
      .executeTakeFirstOrThrow();
    for (const [i, address] of emails.entries()) {
      const { id } = await db
        .insertInto("associations")
        .values({
          medium: "email",
          address,
          mxid: `@user${i}:hs.test`,
          ts: 1000 + i,
          not_before: 1000,
          not_after: 9e12,
        })
        .returning("id")
        .executeTakeFirstOrThrow();
      await db
        .insertInto("association_hashes")
        .values({
          pepper_id: pepper.id,
          hash: lookupHash(address, "email", pepper.pepper),
          association_id: id,
          mxid: `@user${i}:hs.test`,
        })
        .execute();
    }
    const invite = await call(`${source.url}${V1}/store-invite`, {
      body: { medium: "email", address: "pending@example.org", room_id: "!r:hs.test", sender: "@s:hs.test" },
    });
    expect(invite.status).toBe(200);
    // The operator's side: a token, audit entries, a suppression, a blocklist entry; the store-invite above
    // created the unsubscribe-link key in admin_secrets.
    const admin = adminDb(db);
    await admin
      .insertInto("admin_tokens")
      .values({ name: "ops", token_hash: sha256Hex("ops-token"), created_ts: 5, revoked_ts: null })
      .execute();
    for (const action of ["token.create", "bindings.delete"]) {
      await admin
        .insertInto("audit_log")
        .values({
          ts: 6,
          actor: "ops",
          action,
          target_redacted: "u***@example.org",
          target_hmac: "h",
          result: "ok",
          detail: null,
        })
        .execute();
    }
    await admin
      .insertInto("suppressions")
      .values({
        address_hmac: "s1",
        medium: "email",
        redacted: "n***@example.org",
        source: "unsubscribe",
        created_ts: 7,
      })
      .execute();
    await admin
      .insertInto("blocklist")
      .values({ kind: "server", value: "bad.example", reason: "spam", created_ts: 8 })
      .execute();
    const adminBefore = await adminRows(admin);
    expect(adminBefore.admin_secrets?.length).toBeGreaterThan(0);
    const before = await answers(source, emails);
    expect(Object.keys(before.v2.mappings as object)).toHaveLength(40);
    await source.close();
    servers.pop();

    const url = await createTestDatabase();
    const copy = cli(["migrate-db", "--from", `sqlite:${sqlitePath}`, "--to", `postgres:${url}`]);
    expect(copy.status, copy.stderr).toBe(0);
    expect(copy.stdout).toMatch(/associations\s+40 rows/);
    expect(copy.stdout).toContain("copy complete");

    const target = await startSeraph({ database: { postgres: { url } } }, { dir, backend: "sqlite" });
    servers.push(target);
    expect(target.seraph.store.dialect).toBe("postgres");
    expect(await answers(target, emails)).toEqual(before);
    const targetAdmin = adminDb(target.seraph.store.db);
    expect(await adminRows(targetAdmin)).toEqual(adminBefore);
    // The audit log's sequence continues after the copied ids.
    const { id } = await targetAdmin
      .insertInto("audit_log")
      .values({
        ts: 9,
        actor: "ops",
        action: "x",
        target_redacted: null,
        target_hmac: null,
        result: "ok",
        detail: null,
      })
      .returning("id")
      .executeTakeFirstOrThrow();
    expect(id).toBeGreaterThan(2);
    // Sequences continue after the copied ids: new rows work.
    const more = await call(`${target.url}${V1}/store-invite`, {
      body: { medium: "email", address: "later@example.org", room_id: "!r:hs.test", sender: "@s:hs.test" },
    });
    expect(more.status).toBe(200);

    const again = cli(["migrate-db", "--from", `sqlite:${sqlitePath}`, "--to", `postgres:${url}`]);
    expect(again.status).not.toBe(0);
    expect(again.stderr).toContain("not empty");
  }, 90_000);

  it("copies the hashes with one change-log row instead of one each, both ways, and leaves the log on", async () => {
    const dir = mkdtempSync(join(tmpdir(), "seraph-migrate-log-"));
    const pg = { pool_size: 2, statement_timeout_ms: 0, ssl: { enabled: false, verify_certificates: true } };
    const sqliteAt = (name: string): DatabaseOptions => ({ sqlite: { path: join(dir, name) } });
    const postgresAt = (url: string): DatabaseOptions => ({
      sqlite: { path: ":memory:" },
      postgres: { url, ...pg },
    });
    const changes = async (store: Store) =>
      (await store.db.selectFrom("association_hash_changes").select(["pepper_id", "hash"]).execute()).map(
        (c) => `${c.pepper_id}:${c.hash}`,
      );
    const hashRow = (pepperId: number, i: number) => ({
      pepper_id: pepperId,
      hash: lookupHash(`user${i}@example.org`, "email", "p"),
      association_id: i + 1,
      mxid: `@user${i}:hs.test`,
    });
    const associationRow = (i: number) => ({
      medium: "email",
      address: `user${i}@example.org`,
      mxid: `@user${i}:hs.test`,
      ts: 1,
      not_before: 1,
      not_after: 9e12,
    });
    // A source with 30 hashes under the current pepper, its own change log pruned.
    const first = await openStore(sqliteAt("first.db"));
    await migrateToLatest(first);
    const { id: pepperId } = await first.db
      .insertInto("lookup_peppers")
      .values({ pepper: "p", state: "current", created_ts: 1, activated_ts: 1, retired_ts: null })
      .returning("id")
      .executeTakeFirstOrThrow();
    for (let i = 0; i < 30; i++) {
      await first.db.insertInto("associations").values(associationRow(i)).execute();
      await first.db.insertInto("association_hashes").values(hashRow(pepperId, i)).execute();
    }
    await first.db.deleteFrom("association_hash_changes").execute();
    const url = await createTestDatabase();
    const second = await openStore(postgresAt(url));
    const third = await openStore(sqliteAt("third.db"));
    try {
      // SQLite into PostgreSQL, then PostgreSQL into SQLite: the triggers of each kind are turned off and on.
      for (const [from, to] of [
        [first, second],
        [second, third],
      ] as const) {
        await copyDatabase(from, to);
        expect(await changes(to)).toEqual(["null:null"]);
        expect(await to.db.selectFrom("association_hashes").select("hash").execute()).toHaveLength(30);
        const { id } = await to.db
          .insertInto("associations")
          .values(associationRow(30))
          .returning("id")
          .executeTakeFirstOrThrow();
        const extra = { ...hashRow(pepperId, 30), association_id: Number(id) };
        await to.db.insertInto("association_hashes").values(extra).execute();
        expect(await changes(to)).toEqual(["null:null", `${pepperId}:${extra.hash}`]);
        await to.db.deleteFrom("association_hashes").where("hash", "=", extra.hash).execute();
        await to.db.deleteFrom("associations").where("id", "=", id).execute();
        await to.db.deleteFrom("association_hash_changes").execute();
      }
    } finally {
      for (const store of [first, second, third]) await store.close();
    }
  }, 90_000);

  it("refuses a row holding a NUL character, naming it, and leaves PostgreSQL empty", async () => {
    const dir = mkdtempSync(join(tmpdir(), "seraph-migrate-nul-"));
    const source = await startSeraph({}, { dir, backend: "sqlite" });
    // Written before NUL was refused over HTTP: SQLite stored it.
    const { id } = await source.seraph.store.db
      .insertInto("invites")
      .values({
        token: "t",
        medium: "email",
        address: "a@example.org",
        room_id: "!r\u0000:hs.test",
        sender: "@s:hs.test",
        ephemeral_public_key: "",
        params_json: "{}",
        received_ts: 1,
        lang: null,
        brand: null,
      })
      .returning("id")
      .executeTakeFirstOrThrow();
    await source.close();
    const url = await createTestDatabase();
    const copy = cli(["migrate-db", "--from", `sqlite:${join(dir, "seraph.db")}`, "--to", `postgres:${url}`]);
    expect(copy.status).not.toBe(0);
    expect(copy.stderr).toContain(`invites row id ${id} holds a NUL character in room_id`);
    const target = await startSeraph({ database: { postgres: { url } } }, { dir, backend: "sqlite" });
    servers.push(target);
    const rows = await target.seraph.store.db.selectFrom("invites").select("id").execute();
    expect(rows).toEqual([]);
  }, 90_000);
});
