import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, freePort, startSeraph, type TestSeraph } from "../support/seraph.js";
import { type SmtpSink, startSmtpSink } from "../support/smtp-sink.js";

const V1 = "/_matrix/identity/api/v1";

let is: TestSeraph;
let sink: SmtpSink;
let admin: string;
let metricsUrl: string;
let token: string;

beforeAll(async () => {
  sink = await startSmtpSink();
  const adminPort = await freePort();
  const metricsPort = await freePort();
  admin = `http://127.0.0.1:${adminPort}`;
  metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  is = await startSeraph({
    email: { smtp: { host: sink.host, port: sink.port, tls: "none" } },
    admin: { enabled: true, listen: { port: adminPort }, sydent_internal_api: true },
    metrics: { enabled: true, port: metricsPort },
    // Deliveries to this homeserver fail at once (loopback is not allowed), so jobs stay "failing".
    onbind: { poll_interval_ms: 50, initial_backoff_seconds: 60 },
  });
  token = await is.seraph.admin.tokens.create("ops", "test");
});
afterAll(async () => {
  await is?.close();
  await sink?.close();
});

const auth = (t = token) => ({ authorization: `Bearer ${t}` });
const get = (path: string, t = token) => call(`${admin}${path}`, { headers: auth(t) });
const send = (method: string, path: string, body?: unknown, t = token) =>
  call(`${admin}${path}`, { method, headers: auth(t), ...(body === undefined ? {} : { body }) });

async function auditRows(action: string) {
  const res = await get(`/admin/v1/audit?action=${action}&limit=1000`);
  return res.body.items as Array<Record<string, unknown>>;
}

async function storeInvite(address: string, extra: Record<string, unknown> = {}) {
  return call(`${is.url}${V1}/store-invite`, {
    body: { medium: "email", address, room_id: "!room:hs.test", sender: "@bob:hs.test", ...extra },
  });
}

describe("admin API authentication", () => {
  it("refuses requests without a token, with a wrong one and with a revoked one", async () => {
    for (const path of ["/admin/v1/audit", "/admin/v1/bindings", "/admin/v1/subjects?mxid=@a:b.c"]) {
      const none = await call(`${admin}${path}`);
      expect(none.status).toBe(401);
      expect(none.body.errcode).toBe("M_UNAUTHORIZED");
      const wrong = await get(path, "seraph_admin_notarealtoken");
      expect(wrong.status).toBe(401);
      expect(wrong.body.errcode).toBe("M_UNAUTHORIZED");
    }
    const other = await is.seraph.admin.tokens.create("temp", "test");
    expect((await get("/admin/v1/audit", other)).status).toBe(200);
    await is.seraph.admin.tokens.revoke("temp", "test");
    expect((await get("/admin/v1/audit", other)).status).toBe(401);
    // Unauthenticated mutations change nothing.
    const bind = await call(`${admin}/admin/v1/bindings`, {
      body: { address: "x@example.org", mxid: "@x:hs.test" },
    });
    expect(bind.status).toBe(401);
    expect((await get("/admin/v1/bindings?address=x@example.org")).body.items).toEqual([]);
    // The admin API is not on the public listener.
    expect((await call(`${is.url}/admin/v1/audit`, { headers: auth() })).status).toBe(404);
  });
});

describe("bindings", () => {
  it("creates without validation, lists, searches, deletes, and audits each action", async () => {
    const created = await send("POST", "/admin/v1/bindings", {
      address: "Ann@Example.org",
      mxid: "@ann:hs.test",
    });
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({ medium: "email", address: "ann@example.org", mxid: "@ann:hs.test" });
    expect(created.body.signatures).toHaveProperty("is.test");
    const looked = await call(`${is.url}${V1}/lookup?medium=email&address=ann@example.org`);
    expect(looked.body.mxid).toBe("@ann:hs.test");

    await send("POST", "/admin/v1/bindings", { address: "ann2@example.org", mxid: "@ann:hs.test" });
    const byMxid = await get("/admin/v1/bindings?mxid=@ann:hs.test");
    expect((byMxid.body.items as unknown[]).length).toBe(2);
    const page1 = await get("/admin/v1/bindings?medium=email&limit=1");
    expect((page1.body.items as unknown[]).length).toBe(1);
    const page2 = await get(`/admin/v1/bindings?medium=email&limit=1&from=${page1.body.next_from}`);
    expect(page2.body.items).not.toEqual(page1.body.items);

    const bad = await send("POST", "/admin/v1/bindings", { address: "not an email", mxid: "@a:hs.test" });
    expect(bad.status).toBe(400);
    expect((await send("POST", "/admin/v1/bindings", { address: "a@b.org" })).body.errcode).toBe(
      "M_MISSING_PARAMS",
    );

    const removed = await send("DELETE", "/admin/v1/bindings?address=ann@example.org");
    expect(removed.body).toEqual({ removed: true });
    expect((await call(`${is.url}${V1}/lookup?medium=email&address=ann@example.org`)).body).toEqual({});

    const rows = await auditRows("binding.create");
    expect(rows.length).toBeGreaterThanOrEqual(2);
    expect(rows[0]).toMatchObject({ actor: "ops", result: "ok" });
    expect(JSON.stringify(rows)).not.toContain("ann@example.org");
    expect(JSON.stringify(rows)).not.toContain("@ann:hs.test");
    expect(rows.some((r) => r.targetRedacted === "a...@exa... @a...:hs....")).toBe(true);
    const del = await auditRows("binding.delete");
    expect(del[0]).toMatchObject({ actor: "ops", result: "ok" });
    // The same person's rows are found again by address, through the keyed hash.
    const about = await get("/admin/v1/audit?address=ANN@example.org");
    expect((about.body.items as Array<{ action: string }>).map((r) => r.action)).toEqual(
      expect.arrayContaining(["binding.create", "binding.delete"]),
    );
  });

  it("serves sydent's internal bind and unbind with sydent's bodies", async () => {
    const unauth = await call(`${admin}/_matrix/identity/internal/bind`, {
      body: { medium: "email", address: "sy@example.org", mxid: "@sy:hs.test" },
    });
    expect(unauth.status).toBe(401);
    const bound = await send("POST", "/_matrix/identity/internal/bind", {
      medium: "email",
      address: "Sy@Example.org",
      mxid: "@sy:hs.test",
    });
    expect(bound.status).toBe(200);
    expect(bound.body).toMatchObject({
      medium: "email",
      address: "sy@example.org",
      mxid: "@sy:hs.test",
      not_before: expect.any(Number),
      not_after: expect.any(Number),
      ts: expect.any(Number),
    });
    const missing = await send("POST", "/_matrix/identity/internal/bind", { medium: "email" });
    expect(missing.status).toBe(400);
    expect(missing.body.errcode).toBe("M_MISSING_PARAMS");
    const unbound = await send("POST", "/_matrix/identity/internal/unbind", {
      medium: "email",
      address: "sy@example.org",
      mxid: "@sy:hs.test",
    });
    expect(unbound.status).toBe(200);
    expect(unbound.body).toEqual({});
    expect((await call(`${is.url}${V1}/lookup?medium=email&address=sy@example.org`)).body).toEqual({});
  });
});

describe("invites and onbind jobs", () => {
  it("lists pending invites and revokes one: keys invalid, token unknown, audited", async () => {
    const stored = await storeInvite("inv@example.org", { room_id: "!list:hs.test" });
    expect(stored.status).toBe(200);
    const ephemeral = (stored.body.public_keys as Array<{ public_key: string }>)[1]!.public_key;
    const isValid = async () =>
      (await call(`${is.url}${V1}/pubkey/ephemeral/isvalid?public_key=${encodeURIComponent(ephemeral)}`)).body
        .valid;
    expect(await isValid()).toBe(true);

    const list = await get("/admin/v1/invites?room_id=!list:hs.test");
    const items = list.body.items as Array<{ id: number; address: string; sender: string }>;
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ address: "inv@example.org", sender: "@bob:hs.test" });
    expect((await get("/admin/v1/invites?sender=@bob:hs.test")).body.items).toEqual(
      expect.arrayContaining([expect.objectContaining({ id: items[0]!.id })]),
    );
    expect((await get("/admin/v1/invites?room_id=!list:hs.test&older_than_days=1")).body.items).toEqual([]);

    const revoked = await send("DELETE", `/admin/v1/invites/${items[0]!.id}`);
    expect(revoked.status).toBe(200);
    expect(await isValid()).toBe(false);
    const sign = await call(`${is.url}${V1}/sign-ed25519`, {
      body: { mxid: "@inv:hs.test", token: stored.body.token, private_key: "A".repeat(43) },
    });
    expect(sign.status).toBe(404);
    expect((await send("DELETE", `/admin/v1/invites/${items[0]!.id}`)).status).toBe(404);
    expect((await send("DELETE", "/admin/v1/invites/abc")).body.errcode).toBe("M_INVALID_PARAM");
    const rows = await auditRows("invite.revoke");
    expect(rows.map((r) => r.result)).toEqual(["not_found", "ok"]);
  });

  it("resends an invite's email with a new key", async () => {
    sink.clear();
    await storeInvite("again@example.org");
    await sink.waitForMessages(1);
    const [inv] = (await get("/admin/v1/invites?address=again@example.org")).body.items as Array<{
      id: number;
      ephemeralPublicKey: string;
    }>;
    expect((await send("POST", `/admin/v1/invites/${inv!.id}/resend`)).status).toBe(200);
    const [, second] = await sink.waitForMessages(2);
    expect(second!.envelope.to).toEqual(["again@example.org"]);
    const [after] = (await get("/admin/v1/invites?address=again@example.org")).body.items as Array<{
      ephemeralPublicKey: string;
    }>;
    expect(after!.ephemeralPublicKey).not.toBe(inv!.ephemeralPublicKey);
    expect((await auditRows("invite.resend"))[0]).toMatchObject({ result: "ok" });
  });

  it("lists failing onbind jobs, retries one now and drops it", async () => {
    await storeInvite("job@example.org");
    await send("POST", "/admin/v1/bindings", { address: "job@example.org", mxid: "@job:127.0.0.1:1" });
    let job: { id: number; attempts: number; lastError: string } | undefined;
    await expect
      .poll(
        async () => {
          const items = (await get("/admin/v1/onbind?failing=true")).body.items as Array<typeof job>;
          job = items.find((j) => j?.attempts !== undefined);
          return job?.attempts ?? 0;
        },
        { timeout: 10_000 },
      )
      .toBeGreaterThan(0);
    expect(job!.lastError).toBeTruthy();
    expect((await send("POST", `/admin/v1/onbind/${job!.id}/retry`)).status).toBe(200);
    await expect
      .poll(async () => {
        const items = (await get("/admin/v1/onbind")).body.items as Array<{ id: number; attempts: number }>;
        return items.find((j) => j.id === job!.id)?.attempts ?? 0;
      })
      .toBeGreaterThan(job!.attempts);
    expect((await send("DELETE", `/admin/v1/onbind/${job!.id}`)).status).toBe(200);
    expect((await get("/admin/v1/onbind")).body.items).toEqual([]);
    expect((await send("DELETE", `/admin/v1/onbind/${job!.id}`)).status).toBe(404);
    expect((await auditRows("onbind.retry"))[0]).toMatchObject({ result: "ok" });
    expect((await auditRows("onbind.drop")).map((r) => r.result)).toEqual(["not_found", "ok"]);
  });
});

describe("abuse controls", () => {
  it("refuses invites from blocked homeservers, rooms and keywords, counted in metrics", async () => {
    for (const [kind, value] of [
      ["server", "*.evil.test"],
      ["room", "!spam:hs.test"],
      ["keyword", "Free Crypto"],
    ]) {
      expect((await send("POST", "/admin/v1/blocklist", { kind, value })).body).toEqual({ added: true });
    }
    const cases = [
      { sender: "@x:a.evil.test" },
      { room_id: "!spam:hs.test" },
      { room_name: "Get FREE CRYPTO now" },
      { sender_display_name: "free crypto bot" },
    ];
    for (const extra of cases) {
      const res = await storeInvite("victim@example.org", extra);
      expect(res.status, JSON.stringify(extra)).toBe(403);
      expect(res.body.errcode).toBe("M_FORBIDDEN");
    }
    expect((await storeInvite("victim@example.org", { room_name: "Book club" })).status).toBe(200);
    const list = await get("/admin/v1/blocklist?kind=keyword");
    expect(list.body.entries).toEqual([expect.objectContaining({ kind: "keyword", value: "free crypto" })]);
    const metrics = await (await fetch(metricsUrl)).text();
    expect(metrics).toContain('seraph_invites_refused_total{reason="server"} 1');
    expect(metrics).toContain('seraph_invites_refused_total{reason="room"} 1');
    expect(metrics).toContain('seraph_invites_refused_total{reason="keyword"} 2');
    expect(metrics).toMatch(/seraph_invites_pending \d+/);
    expect(metrics).toMatch(/seraph_associations \d+/);
    expect(metrics).toMatch(/seraph_onbind_jobs_failing \d+/);
    expect(metrics).toMatch(/seraph_validation_sessions \d+/);
    expect(metrics).toMatch(/seraph_lookup_pepper_age_seconds \d/);
    expect(metrics).toMatch(/seraph_signing_key_age_seconds \d/);
    expect(metrics).toMatch(/seraph_build_info\{version="[^"]+",node="v\d/);
    expect(
      (await send("DELETE", "/admin/v1/blocklist", { kind: "server", value: "*.evil.test" })).body,
    ).toEqual({ removed: true });
    expect((await storeInvite("victim@example.org", { sender: "@x:a.evil.test" })).status).toBe(200);
    expect((await send("POST", "/admin/v1/blocklist", { kind: "nope", value: "x" })).status).toBe(400);
  });

  it("refuses store-invite to a suppressed address without sending mail", async () => {
    expect((await send("POST", "/admin/v1/suppressions", { address: "Quiet@Example.org" })).body).toEqual({
      added: true,
    });
    expect((await get("/admin/v1/suppressions?address=quiet@example.org")).body).toEqual({
      suppressed: true,
    });
    const res = await storeInvite("quiet@example.org");
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe("M_FORBIDDEN");
    expect((await get("/admin/v1/invites?address=quiet@example.org")).body.items).toEqual([]);
    // A mail to another address proves the mailer was idle, not slow.
    await storeInvite("loud@example.org");
    const to = (address: string) => sink.messages.filter((m) => m.envelope.to.includes(address));
    await expect.poll(() => to("loud@example.org").length).toBe(1);
    expect(to("quiet@example.org")).toHaveLength(0);
    const list = (await get("/admin/v1/suppressions")).body.items as Array<Record<string, unknown>>;
    expect(JSON.stringify(list)).not.toContain("quiet@example.org");
    expect(list[0]).toMatchObject({ redacted: "qui...@exa...", source: "operator" });
    expect((await send("DELETE", "/admin/v1/suppressions?address=quiet@example.org")).body).toEqual({
      removed: true,
    });
    expect((await storeInvite("quiet@example.org")).status).toBe(200);
  });
});

describe("audit log", () => {
  it("pages newest first and records reads too", async () => {
    const first = await get("/admin/v1/audit?limit=2");
    const items = first.body.items as Array<{ id: number; actor: string }>;
    expect(items).toHaveLength(2);
    expect(items[0]!.id).toBeGreaterThan(items[1]!.id);
    const next = await get(`/admin/v1/audit?limit=2&from=${first.body.next_from}`);
    expect((next.body.items as Array<{ id: number }>)[0]!.id).toBeLessThan(items[1]!.id);
    expect((await auditRows("audit.read")).length).toBeGreaterThan(0);
    expect((await get("/admin/v1/audit?limit=0")).body.errcode).toBe("M_INVALID_PARAM");
  });
});

describe("sydent's internal API from an allowed source", () => {
  it("binds without a token from allowed CIDRs only (sydent-bind scripts keep working)", async () => {
    const port = await freePort();
    const other = await startSeraph({
      admin: {
        enabled: true,
        listen: { port },
        sydent_internal_api: true,
        sydent_internal_api_allow_unauthenticated_from: ["127.0.0.1/32", "::1/128"],
      },
    });
    try {
      const res = await call(`http://127.0.0.1:${port}/_matrix/identity/internal/bind`, {
        body: { medium: "email", address: "script@example.org", mxid: "@script:hs.test" },
      });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ address: "script@example.org", mxid: "@script:hs.test" });
      // The rest of the admin API still needs a token.
      expect((await call(`http://127.0.0.1:${port}/admin/v1/bindings`)).status).toBe(401);
      const rows = await other.seraph.admin.audit.page({ limit: 10, action: "binding.create" });
      expect(rows[0]).toMatchObject({ actor: "sydent-internal", result: "ok" });
    } finally {
      await other.close();
    }
  });
});
