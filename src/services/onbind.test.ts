import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { captureLogger } from "../core/logger.js";
import {
  generateSeed,
  publicKeyObject,
  type SigningKey,
  signingKeyFromSeed,
  verifyJsonSignature,
} from "../crypto/ed25519.js";
import { FederationError } from "../federation/errors.js";
import { migrateToLatest, openStore, type Store } from "../store/database.js";
import { KeyService } from "./keys.js";
import { OnbindDelivery, type OnbindSettings, type OnbindTransport } from "./onbind.js";

const SERVER = "id.example.org";
const settings: OnbindSettings = {
  serverName: SERVER,
  maxAttempts: 5,
  maxAgeMs: 24 * 3_600_000,
  initialBackoffMs: 10_000,
  maxBackoffMs: 60_000,
  leaseMs: 120_000,
  inviteLifetimeMs: 7 * 86_400_000,
};

interface Call {
  server: string;
  body: Record<string, unknown>;
}

/** The homeserver is outside the machine: this transport records each call and answers as told. */
class FakeTransport implements OnbindTransport {
  readonly calls: Call[] = [];
  /** Errors to throw, one per call, before answering normally. */
  readonly failures: Error[] = [];
  /** When set, calls wait for it (a request in flight). */
  gate: Promise<void> | null = null;

  async postOnbind(server: string, body: object): Promise<void> {
    this.calls.push({ server, body: body as Record<string, unknown> });
    if (this.gate) await this.gate;
    const failure = this.failures.shift();
    if (failure) throw failure;
  }
}

const httpStatus = (status: number) =>
  new FederationError("http_status", `homeserver answered ${status}`, { status, errcode: "M_UNKNOWN" });

let store: Store;
let clock: number;
let key: SigningKey;
let keys: KeyService;
let transport: FakeTransport;
let log: ReturnType<typeof captureLogger>;

function delivery(overrides: Partial<OnbindSettings> = {}, t: OnbindTransport = transport): OnbindDelivery {
  return new OnbindDelivery(
    { ...settings, ...overrides },
    store.repos.onbindJobs,
    store.repos.invites,
    store.repos.associations,
    t,
    store.transaction,
    keys,
    log,
    () => clock,
  );
}

beforeEach(async () => {
  store = await openStore({ sqlite: { path: ":memory:" } });
  await migrateToLatest(store);
  clock = Date.UTC(2026, 0, 1);
  key = signingKeyFromSeed(generateSeed());
  keys = await KeyService.load([key], store.repos.keys, clock);
  transport = new FakeTransport();
  log = captureLogger();
});
afterEach(async () => store?.close());

let inviteCounter = 0;

/** Two invites waiting for `address`, its association to `mxid`, and the onbind job a bind queues. */
async function bound(address: string, mxid: string, invites = 2) {
  const tokens: string[] = [];
  for (let i = 0; i < invites; i++) {
    const token = `tok${++inviteCounter}${randomBytes(16).toString("hex")}`;
    tokens.push(token);
    await store.repos.invites.insert({
      token,
      medium: "email",
      address,
      roomId: `!room${i}:inviter.test`,
      sender: `@inviter${i}:inviter.test`,
      ephemeralPublicKey: randomBytes(32).toString("base64url"),
      params: {
        medium: "email",
        address,
        room_id: `!room${i}:inviter.test`,
        sender: `@inviter${i}:inviter.test`,
      },
      receivedTs: clock,
    });
  }
  await store.repos.associations.upsert({
    medium: "email",
    address,
    mxid,
    ts: clock,
    notBefore: clock,
    notAfter: clock + 100 * 365 * 86_400_000,
  });
  await store.repos.onbindJobs.queue({ medium: "email", address, mxid }, clock);
  return tokens;
}

const jobs = () => store.db.selectFrom("onbind_jobs").selectAll().execute();
const invitesFor = (address: string) => store.repos.invites.findByThreepid("email", address);

/** Moves the clock to the job's next attempt. */
async function untilDue(): Promise<void> {
  const [job] = await jobs();
  if (!job) throw new Error("no job left");
  clock = Math.max(clock, job.next_attempt_ts);
}

describe("delivery", () => {
  it("posts to the mxid's homeserver, then removes the job and its invites", async () => {
    const tokens = await bound("alice@example.org", "@alice:hs.test");
    await bound("bob@example.org", "@bob:other.test:8448", 1);
    expect(await delivery().runDue()).toBe(2);
    expect(transport.calls.map((c) => c.server).sort()).toEqual(["hs.test", "other.test:8448"]);
    expect(await jobs()).toHaveLength(0);
    expect(await invitesFor("alice@example.org")).toHaveLength(0);
    expect(await invitesFor("bob@example.org")).toHaveLength(0);
    for (const t of tokens) expect(await store.repos.invites.findByToken(t)).toBeUndefined();
    // The association itself stays.
    expect((await store.repos.associations.findByThreepid("email", "alice@example.org"))?.mxid).toBe(
      "@alice:hs.test",
    );
    // Nothing is due any more.
    expect(await delivery().runDue()).toBe(0);
    expect(transport.calls).toHaveLength(2);
  });

  it("sends sydent's body: the signed association plus the invites, each with a signed block", async () => {
    const tokens = await bound("alice@example.org", "@alice:hs.test");
    const assoc = await store.repos.associations.findByThreepid("email", "alice@example.org");
    await delivery().runDue();
    expect(transport.calls).toHaveLength(1);
    const { body } = transport.calls[0]!;
    const publicKey = publicKeyObject(key.publicKey);

    const { invites, ...association } = body;
    expect(association).toEqual({
      medium: "email",
      address: "alice@example.org",
      mxid: "@alice:hs.test",
      ts: assoc!.ts,
      not_before: assoc!.notBefore,
      not_after: assoc!.notAfter,
      signatures: { [SERVER]: { [key.keyId]: expect.any(String) } },
    });
    expect(verifyJsonSignature(association, SERVER, key.keyId, publicKey)).toBe(true);
    expect(
      verifyJsonSignature({ ...association, mxid: "@mallory:hs.test" }, SERVER, key.keyId, publicKey),
    ).toBe(false);

    expect(invites).toEqual(
      tokens.map((token, i) => ({
        medium: "email",
        address: "alice@example.org",
        mxid: "@alice:hs.test",
        room_id: `!room${i}:inviter.test`,
        sender: `@inviter${i}:inviter.test`,
        signed: {
          mxid: "@alice:hs.test",
          token,
          signatures: { [SERVER]: { [key.keyId]: expect.any(String) } },
        },
      })),
    );
    for (const invite of invites as Array<{ signed: Record<string, unknown> }>) {
      expect(verifyJsonSignature(invite.signed, SERVER, key.keyId, publicKey)).toBe(true);
      // The proof is bound to its token and mxid.
      expect(verifyJsonSignature({ ...invite.signed, token: "other" }, SERVER, key.keyId, publicKey)).toBe(
        false,
      );
    }
    // Signed with this server's key only: another key does not verify it.
    const other = publicKeyObject(signingKeyFromSeed(generateSeed()).publicKey);
    expect(verifyJsonSignature(association, SERVER, key.keyId, other)).toBe(false);
  });

  it("logs no invite token, address or signature", async () => {
    const tokens = await bound("alice@example.org", "@alice:hs.test");
    transport.failures.push(httpStatus(500));
    await delivery().runDue();
    await untilDue();
    await delivery().runDue();
    const logged = JSON.stringify(log.lines);
    expect(log.lines.length).toBeGreaterThan(0);
    for (const t of tokens) expect(logged).not.toContain(t);
    expect(logged).not.toContain("alice@example.org");
  });
});

describe("failures", () => {
  it("retries a 5xx with exponential backoff, capped, and records the error", async () => {
    await bound("alice@example.org", "@alice:hs.test");
    const service = delivery();
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      transport.failures.push(httpStatus(i % 2 === 0 ? 502 : 503));
      const failedAt = clock;
      expect(await service.runDue()).toBe(1);
      const [job] = await jobs();
      expect(job?.attempts).toBe(i + 1);
      expect(job?.locked_until).toBeNull();
      expect(job?.last_error).toBe(`homeserver answered ${i % 2 === 0 ? 502 : 503}`);
      waits.push(job!.next_attempt_ts - failedAt);
      // Not due before its time.
      clock = job!.next_attempt_ts - 1;
      expect(await service.runDue()).toBe(0);
      await untilDue();
    }
    // 10 s, 20 s, 40 s, then the 60 s cap, each plus a jitter of less than a second.
    const base = [10_000, 20_000, 40_000, 60_000];
    waits.forEach((w, i) => {
      expect(w).toBeGreaterThanOrEqual(base[i]!);
      expect(w).toBeLessThan(base[i]! + 1000);
    });
    expect(waits[1]).toBeGreaterThan(waits[0]!);
    expect(waits[2]).toBeGreaterThan(waits[1]!);
    expect(transport.calls).toHaveLength(4);
    // The next attempt succeeds.
    expect(await service.runDue()).toBe(1);
    expect(transport.calls).toHaveLength(5);
    expect(await jobs()).toHaveLength(0);
    expect(await invitesFor("alice@example.org")).toHaveLength(0);
  });

  it("retries 408, 429 and network failures", async () => {
    await bound("alice@example.org", "@alice:hs.test");
    transport.failures.push(
      httpStatus(408),
      httpStatus(429),
      new FederationError("unreachable", "connection refused"),
      new FederationError("timeout", "no answer in time"),
      new Error("socket hang up"),
    );
    const service = delivery({ maxAttempts: 10 });
    for (let i = 1; i <= 5; i++) {
      await service.runDue();
      const [job] = await jobs();
      expect(job?.attempts).toBe(i);
      await untilDue();
    }
    await service.runDue();
    expect(transport.calls).toHaveLength(6);
    expect(await jobs()).toHaveLength(0);
    expect(await invitesFor("alice@example.org")).toHaveLength(0);
  });

  it("abandons a 4xx other than 408/429 at once, keeping the invites", async () => {
    for (const status of [400, 401, 403, 404, 405]) {
      const address = `user${status}@example.org`;
      await bound(address, `@u${status}:hs.test`);
      transport.failures.push(httpStatus(status));
      expect(await delivery().runDue()).toBe(1);
      expect(await jobs()).toHaveLength(0);
      expect(await invitesFor(address)).toHaveLength(2);
    }
    expect(transport.calls).toHaveLength(5);
    expect(log.lines.filter((l) => l.msg === "onbind delivery abandoned")).toHaveLength(5);
    clock += 365 * 86_400_000;
    expect(await delivery().runDue()).toBe(0);
    expect(transport.calls).toHaveLength(5);
  });

  it("abandons after max_attempts", async () => {
    await bound("alice@example.org", "@alice:hs.test");
    const service = delivery({ maxAttempts: 3 });
    for (let i = 0; i < 10; i++) transport.failures.push(httpStatus(500));
    for (let i = 1; i <= 2; i++) {
      await service.runDue();
      expect((await jobs())[0]?.attempts).toBe(i);
      await untilDue();
    }
    await service.runDue();
    expect(transport.calls).toHaveLength(3);
    expect(await jobs()).toHaveLength(0);
    expect(await invitesFor("alice@example.org")).toHaveLength(2);
    expect(log.lines.at(-1)).toMatchObject({ level: "warn", msg: "onbind delivery abandoned" });
  });

  it("abandons a failure once max_age has passed since the bind", async () => {
    await bound("alice@example.org", "@alice:hs.test");
    const service = delivery({ maxAgeMs: 60_000, maxAttempts: 100 });
    for (let i = 0; i < 10; i++) transport.failures.push(httpStatus(503));
    await service.runDue();
    expect(await jobs()).toHaveLength(1);
    clock += 59_000;
    await service.runDue();
    expect(await jobs()).toHaveLength(1);
    clock += 1_000; // 60 s after the bind
    await untilDue();
    await service.runDue();
    expect(transport.calls).toHaveLength(3);
    expect(await jobs()).toHaveLength(0);
    expect(await invitesFor("alice@example.org")).toHaveLength(2);
  });
});

describe("stale jobs", () => {
  it("drops a job whose association now names another mxid, without sending", async () => {
    await bound("alice@example.org", "@alice:hs.test");
    await store.repos.associations.upsert({
      medium: "email",
      address: "alice@example.org",
      mxid: "@alice2:elsewhere.test",
      ts: clock + 1,
      notBefore: clock + 1,
      notAfter: clock + 1e12,
    });
    expect(await delivery().runDue()).toBe(1);
    expect(transport.calls).toHaveLength(0);
    expect(await jobs()).toHaveLength(0);
    // The invites wait for the new binding's own delivery.
    expect(await invitesFor("alice@example.org")).toHaveLength(2);
  });

  it("drops a job whose association is gone, or whose invites are gone, without sending", async () => {
    await bound("alice@example.org", "@alice:hs.test");
    await store.repos.associations.delete("email", "alice@example.org", "@alice:hs.test");
    const tokens = await bound("bob@example.org", "@bob:hs.test");
    await store.repos.invites.deleteTokens(tokens);
    expect(await delivery().runDue()).toBe(2);
    expect(transport.calls).toHaveLength(0);
    expect(await jobs()).toHaveLength(0);
  });
});

describe("leases", () => {
  it("does not deliver one due job twice when two instances claim it at once", async () => {
    await bound("alice@example.org", "@alice:hs.test");
    const a = delivery();
    const b = delivery();
    const claimed = await Promise.all([a.runDue(), b.runDue(), a.runDue()]);
    expect(claimed.reduce((x, y) => x + y, 0)).toBe(1);
    expect(transport.calls).toHaveLength(1);
    expect(await jobs()).toHaveLength(0);
  });

  it("leaves a job in flight to its owner until the lease runs out, then lets another instance take it", async () => {
    await bound("alice@example.org", "@alice:hs.test");
    const stuck = new FakeTransport();
    stuck.gate = new Promise<void>(() => {}); // the owner never hears back (it died mid-request)
    const owner = delivery({}, stuck);
    const other = delivery();
    const inFlight = owner.runDue();
    await new Promise((r) => setTimeout(r, 20));
    expect(stuck.calls).toHaveLength(1);
    expect(await other.runDue()).toBe(0);
    clock += settings.leaseMs; // the lease runs until this instant, included
    expect(await other.runDue()).toBe(0);
    expect(transport.calls).toHaveLength(0);
    clock += 1;
    expect(await other.runDue()).toBe(1);
    expect(transport.calls).toHaveLength(1);
    expect(await jobs()).toHaveLength(0);
    expect(await invitesFor("alice@example.org")).toHaveLength(0);
    void inFlight;
  });
});

describe("purgeExpiredInvites", () => {
  it("removes invites older than the invite lifetime, delivered or not", async () => {
    const t0 = clock;
    await bound("old@example.org", "@old:hs.test");
    clock = t0 + 1000;
    await bound("new@example.org", "@new:hs.test");
    clock = t0 + settings.inviteLifetimeMs + 1;
    // Two invites and their two ephemeral keys.
    expect(await delivery().purgeExpiredInvites()).toBe(4);
    expect(await invitesFor("old@example.org")).toHaveLength(0);
    expect(await invitesFor("new@example.org")).toHaveLength(2);
  });
});
