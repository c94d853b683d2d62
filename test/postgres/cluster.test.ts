import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { simpleParser } from "mailparser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { lookupHash } from "../../src/threepid/normalise.js";
import { type FakeHomeserver, ONBIND_PATH, startFakeHomeserver } from "../support/fake-homeserver.js";
import { V2 } from "../support/paths.js";
import { createTestDatabase } from "../support/postgres.js";
import { type SeraphProcess, seraphCli, spawnSeraph } from "../support/process.js";
import { call, freePort } from "../support/seraph.js";

let hs: FakeHomeserver;
let serverName: string;
let dir: string;
let config: Record<string, unknown>;
const processes: SeraphProcess[] = [];

async function start(): Promise<SeraphProcess> {
  const p = await spawnSeraph(config, dir);
  processes.push(p);
  return p;
}

beforeAll(async () => {
  const port = await freePort();
  serverName = `127.0.0.1:${port}`;
  hs = await startFakeHomeserver({ serverName, port });
  dir = mkdtempSync(join(tmpdir(), "seraph-cluster-"));
  writeFileSync(
    join(dir, "terms.yaml"),
    stringify({
      docs: { privacy: { version: "1", langs: { en: { name: "Privacy", url: "https://is.test/p1" } } } },
    }),
  );
  config = {
    server_name: "is.test",
    database: { postgres: { url: await createTestDatabase(), pool_size: 4 } },
    signing_key_path: join(dir, "signing.key"),
    email: { outbox_dir: join(dir, "outbox") },
    terms: { path: join(dir, "terms.yaml") },
    federation: { ip_allowlist: ["127.0.0.1/32"], verify_certificates: false, request_timeout_ms: 1000 },
    rate_limit: { enabled: false },
    onbind: {
      poll_interval_ms: 100,
      initial_backoff_seconds: 0.1,
      max_backoff_seconds: 0.5,
      lease_seconds: 3,
    },
    lookup: { maintenance_interval_seconds: 0.2, rotation_settle_seconds: 0.5 },
  };
}, 60_000);

afterAll(async () => {
  for (const p of processes) p.kill("SIGKILL");
  await hs?.close();
});

const mxid = (localpart: string) => `@${localpart}:${serverName}`;
const auth = (token: string) => ({ authorization: `Bearer ${token}` });

async function register(on: SeraphProcess, localpart: string): Promise<string> {
  const oidc = `oidc-${localpart}`;
  hs.setUserinfo(oidc, mxid(localpart));
  const res = await call(`${on.url}${V2}/account/register`, {
    body: { access_token: oidc, token_type: "Bearer", matrix_server_name: serverName, expires_in: 60 },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  const token = res.body.token as string;
  await call(`${on.url}${V2}/terms`, {
    headers: auth(token),
    body: { user_accepts: ["https://is.test/p1"] },
  });
  return token;
}

/** The validation token mailed for `sid` (both instances write to the same outbox folder). */
async function mailedToken(sid: string): Promise<string> {
  let found: string | undefined;
  await expect
    .poll(
      async () => {
        for (const f of readdirSync(join(dir, "outbox")).filter((n) => n.endsWith(".eml"))) {
          const mail = await simpleParser(readFileSync(join(dir, "outbox", f)));
          const link = /https?:\/\/\S+submitToken\?\S+/.exec(mail.text ?? "")?.[0];
          if (link && new URL(link).searchParams.get("sid") === sid)
            found = new URL(link).searchParams.get("token")!;
        }
        return found;
      },
      { timeout: 5000 },
    )
    .toBeDefined();
  return found!;
}

async function validateAndBind(
  requestOn: SeraphProcess,
  submitOn: SeraphProcess,
  bindOn: SeraphProcess,
  who: string,
  email: string,
) {
  const token = await register(requestOn, who);
  const secret = `secret-${who}`;
  const req = await call(`${requestOn.url}${V2}/validate/email/requestToken`, {
    headers: auth(token),
    body: { client_secret: secret, email, send_attempt: 1 },
  });
  expect(req.status, JSON.stringify(req.body)).toBe(200);
  const sid = req.body.sid as string;
  const submitted = await call(`${submitOn.url}${V2}/validate/email/submitToken`, {
    headers: auth(token),
    body: { sid, client_secret: secret, token: await mailedToken(sid) },
  });
  expect(submitted.body).toEqual({ success: true });
  const bound = await call(`${bindOn.url}${V2}/3pid/bind`, {
    headers: auth(token),
    body: { sid, client_secret: secret, mxid: mxid(who) },
  });
  expect(bound.status, JSON.stringify(bound.body)).toBe(200);
  return { token, sid, secret };
}

async function lookupOn(on: SeraphProcess, token: string, email: string): Promise<string | undefined> {
  const { lookup_pepper } = (await call(`${on.url}${V2}/hash_details`, { headers: auth(token) })).body as {
    lookup_pepper: string;
  };
  const hash = lookupHash(email, "email", lookup_pepper);
  const res = await call(`${on.url}${V2}/lookup`, {
    headers: auth(token),
    body: { algorithm: "sha256", pepper: lookup_pepper, addresses: [hash] },
  });
  return (res.body.mappings as Record<string, string>)[hash];
}

describe("two Seraph processes on one PostgreSQL", () => {
  let a: SeraphProcess;
  let b: SeraphProcess;

  beforeAll(async () => {
    a = await start();
    b = await start();
  }, 60_000);

  it("share sessions, tokens, terms and associations", async () => {
    const { token } = await validateAndBind(a, b, a, "user1", "user1@example.org");
    expect(await lookupOn(b, token, "user1@example.org")).toBe(mxid("user1"));
    // Terms were accepted on A (in register): B lets the user in.
    const invite = await call(`${b.url}${V2}/store-invite`, {
      headers: auth(token),
      body: { medium: "email", address: "someone@example.org", room_id: "!r:x", sender: mxid("user1") },
    });
    expect(invite.status, JSON.stringify(invite.body)).toBe(200);
  });

  it("see each other's binds and unbinds at the next hashed lookup (in-memory indexes kept exact)", async () => {
    const email = "exact@example.org";
    const { token, sid, secret } = await validateAndBind(a, a, a, "exact", email);
    for (let i = 0; i < 3; i++) {
      expect(await lookupOn(b, token, email)).toBe(mxid("exact"));
      expect(await lookupOn(a, token, email)).toBe(mxid("exact"));
    }
    const unbound = await call(`${a.url}${V2}/3pid/unbind`, {
      headers: auth(token),
      body: {
        sid,
        client_secret: secret,
        mxid: mxid("exact"),
        threepid: { medium: "email", address: email },
      },
    });
    expect(unbound.status, JSON.stringify(unbound.body)).toBe(200);
    expect(await lookupOn(b, token, email)).toBeUndefined();
    expect(await lookupOn(a, token, email)).toBeUndefined();
  });

  it("deliver an invite stored on A exactly once, whichever worker wins", async () => {
    const inviter = await register(a, "inviter");
    const stored = await call(`${a.url}${V2}/store-invite`, {
      headers: auth(inviter),
      body: { medium: "email", address: "invitee@example.org", room_id: "!room:x", sender: mxid("inviter") },
    });
    expect(stored.status).toBe(200);
    await validateAndBind(b, a, b, "invitee", "invitee@example.org");
    const forInvitee = () =>
      hs.onbind.delivered.filter((body) => (body as { mxid?: string }).mxid === mxid("invitee")).length;
    await expect.poll(forInvitee, { timeout: 5000 }).toBe(1);
    await new Promise((r) => setTimeout(r, 1500));
    expect(forInvitee()).toBe(1);
  });

  it("see a pepper rotation started through A's configuration", async () => {
    const token = await register(b, "rotation");
    const before = (await call(`${b.url}${V2}/hash_details`, { headers: auth(token) })).body.lookup_pepper;
    writeFileSync(join(dir, "cli.yaml"), stringify(config));
    const rotated = seraphCli(["pepper", "rotate", "--config", join(dir, "cli.yaml")]);
    expect(rotated.status, rotated.stderr).toBe(0);
    await expect
      .poll(
        async () => (await call(`${b.url}${V2}/hash_details`, { headers: auth(token) })).body.lookup_pepper,
        {
          timeout: 10_000,
        },
      )
      .not.toBe(before);
    expect(await lookupOn(b, token, "user1@example.org")).toBe(mxid("user1"));
    expect(await lookupOn(a, token, "user1@example.org")).toBe(mxid("user1"));
  });

  it("stop cleanly on SIGTERM (exit code 0)", async () => {
    b.kill("SIGTERM");
    expect(await b.exited).toBe(0);
    const ready = await call(`${a.url}/_seraph/ready`);
    expect(ready.body).toEqual({ status: "ready" });
  });

  it("hand a delivery over when the instance holding it is killed (at-least-once)", async () => {
    const inviter = await register(a, "inviter2");
    await call(`${a.url}${V2}/store-invite`, {
      headers: auth(inviter),
      body: { medium: "email", address: "victim@example.org", room_id: "!room2:x", sender: mxid("inviter2") },
    });
    // The homeserver accepts the connection and never answers: A holds the job when it dies.
    let held = 0;
    hs.route("POST", ONBIND_PATH, () => {
      held++;
    });
    await validateAndBind(a, a, a, "victim", "victim@example.org");
    await expect.poll(() => held, { timeout: 5000 }).toBeGreaterThan(0);
    a.kill("SIGKILL");
    await a.exited;
    hs.route("POST", ONBIND_PATH, null);

    const c = await start();
    const forVictim = () =>
      hs.onbind.delivered.filter((body) => (body as { mxid?: string }).mxid === mxid("victim")).length;
    await expect.poll(forVictim, { timeout: 15_000 }).toBe(1);
    c.kill("SIGTERM");
    expect(await c.exited).toBe(0);
  }, 60_000);
});
