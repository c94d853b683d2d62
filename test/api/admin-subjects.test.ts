import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HomeserverClient } from "../../src/federation/index.js";
import { createStubDns, type FakeHomeserver, startFakeHomeserver } from "../support/fake-homeserver.js";
import { call, freePort, startSeraph, type TestSeraph } from "../support/seraph.js";
import { type SmtpSink, startSmtpSink } from "../support/smtp-sink.js";

const V1 = "/_matrix/identity/api/v1";
const V2 = "/_matrix/identity/v2";

let sink: SmtpSink;
let hs: FakeHomeserver;
let serverName: string;
let is: TestSeraph;
let admin: string;
let adminToken: string;
const dns = createStubDns({ hosts: { "hs.test": "127.0.0.1" } });

function termsFile(): string {
  const dir = mkdtempSync(join(tmpdir(), "seraph-terms-"));
  const path = join(dir, "terms.yaml");
  writeFileSync(
    path,
    `master_version: "1"
docs:
  privacy:
    version: "1"
    langs:
      en: { name: "Privacy Policy", url: "https://is.test/privacy/en/1.html" }
`,
  );
  return path;
}

beforeAll(async () => {
  sink = await startSmtpSink();
  const port = await freePort();
  serverName = `hs.test:${port}`;
  hs = await startFakeHomeserver({ serverName, port });
  const adminPort = await freePort();
  admin = `http://127.0.0.1:${adminPort}`;
  is = await startSeraph(
    {
      email: { smtp: { host: sink.host, port: sink.port, tls: "none" } },
      terms: { path: termsFile() },
      admin: { enabled: true, listen: { port: adminPort } },
      onbind: { poll_interval_ms: 50, initial_backoff_seconds: 0.05, max_backoff_seconds: 0.2 },
    },
    {
      homeservers: new HomeserverClient({
        dns,
        ipAllowlist: ["127.0.0.1/32"],
        verifyCertificates: false,
        requestTimeoutMs: 2000,
      }),
    },
  );
  adminToken = await is.seraph.admin.tokens.create("dpo", "test");
});

afterAll(async () => {
  await is?.close();
  await hs?.close();
  await sink?.close();
});

const mxidOf = (localpart: string) => `@${localpart}:${serverName}`;
const adminCall = (method: string, path: string, body?: unknown) =>
  call(`${admin}${path}`, {
    method,
    headers: { authorization: `Bearer ${adminToken}` },
    ...(body === undefined ? {} : { body }),
  });

/** Registers `localpart` through the fake homeserver's OpenID userinfo and accepts the terms. */
async function register(localpart: string): Promise<Record<string, string>> {
  const oidc = `oidc-${localpart}-${Math.random()}`;
  hs.setUserinfo(oidc, mxidOf(localpart));
  const reg = await call(`${is.url}${V2}/account/register`, {
    body: { access_token: oidc, token_type: "Bearer", matrix_server_name: serverName, expires_in: 3600 },
  });
  expect(reg.status).toBe(200);
  const headers = { authorization: `Bearer ${reg.body.token as string}` };
  const terms = await call(`${is.url}${V2}/terms`, {
    headers,
    body: { user_accepts: ["https://is.test/privacy/en/1.html"] },
  });
  expect(terms.status).toBe(200);
  return headers;
}

/** Validates `email` through the emailed link and binds it to `mxid` with the public v2 API. */
async function validateAndBind(headers: Record<string, string>, email: string, mxid: string) {
  const secret = `secret-${Math.random().toString(36).slice(2)}`;
  const req = await call(`${is.url}${V2}/validate/email/requestToken`, {
    headers,
    body: { client_secret: secret, email, send_attempt: 1 },
  });
  expect(req.status).toBe(200);
  const sid = req.body.sid as string;
  const linkIn = (text: string | undefined) => /https?:\/\/\S+submitToken\?\S+/.exec(text ?? "")?.[0];
  let link: string | undefined;
  await expect
    .poll(() => {
      link = sink.messages.map((m) => linkIn(m.parsed.text)).find((l) => l?.includes(`sid=${sid}`));
      return link !== undefined;
    })
    .toBe(true);
  expect((await fetch(link!)).status).toBe(200);
  const bound = await call(`${is.url}${V2}/3pid/bind`, {
    headers,
    body: { sid, client_secret: secret, mxid },
  });
  expect(bound.status).toBe(200);
}

/** Every row of every table, as text. */
async function everyRow(): Promise<Record<string, string[]>> {
  const db = is.seraph.store.db;
  const tables =
    is.seraph.store.dialect === "sqlite"
      ? (
          await sql<{ name: string }>`select name from sqlite_master where type = 'table'`.execute(db)
        ).rows.map((r) => r.name)
      : (
          await sql<{
            name: string;
          }>`select tablename as name from pg_tables where schemaname = current_schema()`.execute(db)
        ).rows.map((r) => r.name);
  expect(tables).toEqual(expect.arrayContaining(["associations", "invites", "audit_log", "suppressions"]));
  const out: Record<string, string[]> = {};
  for (const t of tables) {
    const { rows } = await sql<Record<string, unknown>>`select * from ${sql.table(t)}`.execute(db);
    out[t] = rows.map((r) => JSON.stringify(r).toLowerCase());
  }
  return out;
}

describe("a subject's personal data", () => {
  it("exports everything held about a person and erases it all, leaving no row mentioning them", async () => {
    const address = "alice.subject@example.org";
    const mxid = mxidOf("alice");
    const alice = await register("alice");
    // An invite to her (before she binds) and one from her.
    expect(
      (
        await call(`${is.url}${V1}/store-invite`, {
          body: { medium: "email", address, room_id: "!a:hs.test", sender: "@bob:hs.test" },
        })
      ).status,
    ).toBe(200);
    const from = await call(`${is.url}${V2}/store-invite`, {
      headers: alice,
      body: { medium: "email", address: "carol.friend@example.org", room_id: "!b:hs.test", sender: mxid },
    });
    expect(from.status).toBe(200);
    // Deliveries fail, so the onbind job and the invite to her stay.
    hs.onbind.failNext(100_000, 503);
    const attempts = hs.onbind.bodies.length;
    await validateAndBind(alice, address, mxid);
    await expect.poll(() => hs.onbind.bodies.length, { timeout: 10_000 }).toBeGreaterThan(attempts);

    const exported = await adminCall(
      "GET",
      `/admin/v1/subjects?address=${encodeURIComponent(address)}&mxid=${encodeURIComponent(mxid)}`,
    );
    expect(exported.status).toBe(200);
    const doc = exported.body as Record<string, Array<Record<string, unknown>>>;
    expect(doc.associations).toEqual([expect.objectContaining({ address, mxid })]);
    expect(doc.association_hashes!.length).toBeGreaterThan(0);
    expect(doc.accounts).toEqual([expect.objectContaining({ user_id: mxid })]);
    expect(doc.access_tokens).toHaveLength(1);
    expect(doc.access_tokens![0]!.token_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(doc)).not.toContain(alice.authorization!.slice(7));
    expect(doc.accepted_terms).toEqual([
      expect.objectContaining({ url: "https://is.test/privacy/en/1.html" }),
    ]);
    expect(doc.validation_sessions).toEqual([expect.objectContaining({ address })]);
    expect(doc.validation_sessions![0]).not.toHaveProperty("client_secret");
    expect(doc.invites_to).toEqual([expect.objectContaining({ address, sender: "@bob:hs.test" })]);
    expect(doc.invites_from).toEqual([expect.objectContaining({ address: "carol.friend@example.org" })]);
    expect(doc.ephemeral_keys).toHaveLength(2);
    expect(doc.onbind_jobs).toEqual([expect.objectContaining({ address, mxid })]);

    const before = await everyRow();
    const mentions = (rows: Record<string, string[]>) =>
      Object.entries(rows).flatMap(([t, list]) =>
        list.filter((r) => r.includes(address) || r.includes(mxid.toLowerCase())).map((r) => `${t}: ${r}`),
      );
    expect(mentions(before).length).toBeGreaterThanOrEqual(8);

    const erased = await adminCall(
      "DELETE",
      `/admin/v1/subjects?address=${encodeURIComponent(address)}&mxid=${encodeURIComponent(mxid)}`,
    );
    expect(erased.status).toBe(200);
    expect(erased.body.deleted).toEqual({
      associations: 1,
      association_hashes: doc.association_hashes!.length,
      accounts: 1,
      access_tokens: 1,
      accepted_terms: 1,
      validation_sessions: 1,
      invites: 2,
      ephemeral_keys: 2,
      onbind_jobs: 1,
    });
    expect(mentions(await everyRow())).toEqual([]);

    // Her token no longer works, and lookups find nothing.
    expect((await call(`${is.url}${V2}/account`, { headers: alice })).status).toBe(401);
    expect((await call(`${is.url}${V1}/lookup?medium=email&address=${address}`)).body).toEqual({});
    // The audit trail still matches a later request about her, through the keyed hash.
    const audit = await adminCall("GET", `/admin/v1/audit?address=${encodeURIComponent(address)}`);
    const actions = (audit.body.items as Array<{ action: string; actor: string }>).map((r) => r.action);
    expect(actions).toEqual(expect.arrayContaining(["subject.export", "subject.erase"]));
    const byMxid = await adminCall("GET", `/admin/v1/audit?mxid=${encodeURIComponent(mxid)}`);
    expect((byMxid.body.items as unknown[]).length).toBeGreaterThanOrEqual(2);
    hs.onbind.failNext(0);
  });

  it("refuses a subject without an identifier", async () => {
    const res = await adminCall("GET", "/admin/v1/subjects");
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe("M_MISSING_PARAMS");
    expect((await adminCall("DELETE", "/admin/v1/subjects?mxid=nobody")).body.errcode).toBe(
      "M_INVALID_PARAM",
    );
  });
});

describe("revoking an invite", () => {
  it("stops its pending delivery to the homeserver", async () => {
    const invite = (address: string) =>
      call(`${is.url}${V1}/store-invite`, {
        body: { medium: "email", address, room_id: "!r:hs.test", sender: "@bob:hs.test" },
      });
    expect((await invite("dave.revoked@example.org")).status).toBe(200);
    hs.onbind.failNext(100_000, 503);
    const attempts = hs.onbind.bodies.length;
    await adminCall("POST", "/admin/v1/bindings", {
      address: "dave.revoked@example.org",
      mxid: mxidOf("dave"),
    });
    await expect.poll(() => hs.onbind.bodies.length, { timeout: 10_000 }).toBeGreaterThan(attempts);
    const [inv] = (await adminCall("GET", "/admin/v1/invites?address=dave.revoked@example.org")).body
      .items as Array<{ id: number }>;
    expect((await adminCall("DELETE", `/admin/v1/invites/${inv!.id}`)).status).toBe(200);
    const jobs = (await adminCall("GET", "/admin/v1/onbind")).body.items as Array<{ address: string }>;
    expect(jobs.filter((j) => j.address === "dave.revoked@example.org")).toEqual([]);

    // Deliveries work again: a later invite arrives, the revoked one never does.
    hs.onbind.failNext(0);
    const delivered = hs.onbind.delivered.length;
    await invite("erin.later@example.org");
    await adminCall("POST", "/admin/v1/bindings", {
      address: "erin.later@example.org",
      mxid: mxidOf("erin"),
    });
    await expect.poll(() => hs.onbind.delivered.length, { timeout: 10_000 }).toBe(delivered + 1);
    const addresses = hs.onbind.delivered.map((b) => (b as { address: string }).address);
    expect(addresses).toContain("erin.later@example.org");
    expect(addresses).not.toContain("dave.revoked@example.org");
  });
});
