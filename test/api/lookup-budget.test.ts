import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HomeserverClient } from "../../src/federation/index.js";
import { createStubDns, type FakeHomeserver, startFakeHomeserver } from "../support/fake-homeserver.js";
import { REDIS_SERVER, startRedis } from "../support/redis.js";
import { call, freePort, startSeraph, type TestSeraph } from "../support/seraph.js";

// The lookup budget: hashes (v2) and threepids (v1) per account and per IP per hour, 429 M_LIMIT_EXCEEDED
// with retry_after_ms beyond it, a metric and a log line; algorithm "none" counts the same; plaintext
// lookups can be switched off.

const V2 = "/_matrix/identity/v2";
const V1 = "/_matrix/identity/api/v1";
let hs: FakeHomeserver;
let serverName: string;
const dns = createStubDns({ hosts: { "hs.test": "127.0.0.1" } });
const homeservers = () =>
  new HomeserverClient({
    dns,
    ipAllowlist: ["127.0.0.1/32"],
    verifyCertificates: false,
    requestTimeoutMs: 1500,
  });

beforeAll(async () => {
  hs = await startFakeHomeserver({ serverName: "hs.test" });
  serverName = `hs.test:${hs.port}`;
});
afterAll(async () => {
  await hs?.close();
});

async function register(is: TestSeraph, localpart: string): Promise<Record<string, string>> {
  const oidc = `oidc-${localpart}-${Math.random().toString(36).slice(2)}`;
  hs.setUserinfo(oidc, `@${localpart}:${serverName}`);
  const reg = await call(`${is.url}${V2}/account/register`, {
    body: { access_token: oidc, matrix_server_name: serverName },
  });
  expect(reg.status).toBe(200);
  return { authorization: `Bearer ${reg.body.token as string}` };
}

const hashes = (n: number, tag = "") => Array.from({ length: n }, (_, i) => `h${tag}${i}`.padEnd(43, "A"));

async function lookup(
  is: TestSeraph,
  headers: Record<string, string>,
  addresses: string[],
  algorithm = "sha256",
) {
  const pepper = (await call(`${is.url}${V2}/hash_details`, { headers })).body.lookup_pepper;
  return call(`${is.url}${V2}/lookup`, { headers, body: { addresses, algorithm, pepper } });
}

describe("lookup budget", () => {
  let is: TestSeraph;
  let metricsUrl: string;
  const lines: string[] = [];
  beforeAll(async () => {
    const port = await freePort();
    metricsUrl = `http://127.0.0.1:${port}/metrics`;
    const stream = new Writable({
      write(chunk: Buffer, _e, done) {
        lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
        done();
      },
    });
    is = await startSeraph(
      {
        log: { level: "info" },
        metrics: { enabled: true, port },
        rate_limit: {
          enabled: true,
          lookup_per_account: { burst: 10, per_hour: 1 },
          lookup_per_ip: { burst: 20, per_hour: 1 },
          v1_lookup_per_ip: { burst: 5, per_hour: 1 },
        },
      },
      { homeservers: homeservers(), logger: pino({ level: "info" }, stream) },
    );
  });
  afterAll(async () => is?.close());

  it("counts hashes per account, sha256 and none alike, then answers 429 with retry_after_ms", async () => {
    const alice = await register(is, "alice");
    expect((await lookup(is, alice, hashes(6))).status).toBe(200);
    expect((await lookup(is, alice, ["a@example.org email", "b@example.org email"], "none")).status).toBe(
      200,
    );
    const over = await lookup(is, alice, hashes(3));
    expect(over.status).toBe(429);
    expect(over.body.errcode).toBe("M_LIMIT_EXCEEDED");
    expect(over.body.retry_after_ms).toBeGreaterThan(0);
    expect(Number(over.headers.get("retry-after"))).toBeGreaterThan(0);
    // Plain addresses count the same.
    const two = ["c@example.org email", "447700900002 msisdn"];
    expect((await lookup(is, alice, two, "none")).status).toBe(200);
    expect((await lookup(is, alice, ["d@example.org email"], "none")).status).toBe(429);

    // Another account has its own budget...
    const bob = await register(is, "bob");
    expect((await lookup(is, bob, hashes(10, "b"))).status).toBe(200);
    // ...but both come from one IP, whose budget (20) is now spent too.
    const carol = await register(is, "carol");
    expect((await lookup(is, carol, hashes(5, "c"))).status).toBe(429);

    // A counter metric of refusals, and one log line per exhausted account naming no address or hash.
    const text = await (await fetch(metricsUrl)).text();
    expect(text).toMatch(/seraph_lookup_refused_total\{scope="account"\} 2/);
    expect(text).toMatch(/seraph_lookup_refused_total\{scope="ip"\} 1/);
    const logged = lines.filter((l) => l.includes("lookup budget exhausted"));
    expect(logged.filter((l) => l.includes(`@alice:${serverName}`))).toHaveLength(1);
    for (const l of logged) {
      expect(l).not.toContain("example.org email");
      expect(l).not.toContain(hashes(1)[0]);
    }
  });

  it("limits unauthenticated v1 lookup and bulk_lookup per IP", async () => {
    expect((await call(`${is.url}${V1}/lookup?medium=email&address=x@example.org`)).status).toBe(200);
    const bulk = await call(`${is.url}${V1}/bulk_lookup`, {
      body: {
        threepids: [
          ["email", "a@example.org"],
          ["email", "b@example.org"],
          ["msisdn", "447700900001"],
        ],
      },
    });
    expect(bulk.status).toBe(200);
    const tooMany = await call(`${is.url}${V1}/bulk_lookup`, {
      body: {
        threepids: [
          ["email", "c@example.org"],
          ["email", "d@example.org"],
        ],
      },
    });
    expect(tooMany.status).toBe(429);
    expect(tooMany.body.errcode).toBe("M_LIMIT_EXCEEDED");
    expect(tooMany.body.retry_after_ms).toBeGreaterThan(0);
    expect((await call(`${is.url}${V1}/lookup?medium=email&address=x@example.org`)).status).toBe(200);
    expect((await call(`${is.url}${V1}/lookup?medium=email&address=x@example.org`)).status).toBe(429);
  });
});

describe("lookup budget and refused bodies", () => {
  let is: TestSeraph;
  beforeAll(async () => {
    is = await startSeraph(
      { rate_limit: { enabled: true, lookup_per_account: { burst: 10, per_hour: 1 } } },
      { homeservers: homeservers() },
    );
  });
  afterAll(async () => is?.close());

  it("charges nothing for a lookup refused for an over-long address or an unknown algorithm", async () => {
    const dave = await register(is, "dave");
    const overLong = [...hashes(9), "x".repeat(65_537)];
    for (let i = 0; i < 3; i++) expect((await lookup(is, dave, overLong)).status).toBe(400);
    expect((await lookup(is, dave, hashes(9), "md5")).status).toBe(400);
    // The whole burst is still there, and then spent.
    expect((await lookup(is, dave, hashes(10))).status).toBe(200);
    expect((await lookup(is, dave, hashes(1, "d"))).status).toBe(429);
  });
});

describe("lookup addresses", () => {
  let is: TestSeraph;
  beforeAll(async () => {
    is = await startSeraph({}, { homeservers: homeservers() });
  });
  afterAll(async () => {
    await is?.close();
  });

  it("refuses one longer than 65,536 characters by its index, and takes one of 65,536 astral characters", async () => {
    const headers = await register(is, "long");
    const long = await lookup(is, headers, ["h".padEnd(43, "A"), "x".repeat(65_537)]);
    expect(long.status).toBe(400);
    expect(long.body).toEqual({ errcode: "M_INVALID_PARAM", error: "addresses.1 is too long" });
    const astral = await lookup(is, headers, ["😀".repeat(65_536)]);
    expect(astral.status).toBe(200);
    expect(astral.body).toEqual({ mappings: {} });
    const notString = await lookup(is, headers, ["a", 5 as unknown as string]);
    expect(notString.status).toBe(400);
    expect(notString.body.errcode).toBe("M_INVALID_PARAM");
  });
});

describe("lookup.allow_plaintext: false", () => {
  let is: TestSeraph;
  beforeAll(async () => {
    is = await startSeraph({ lookup: { allow_plaintext: false } }, { homeservers: homeservers() });
  });
  afterAll(async () => is?.close());

  it("offers and accepts sha256 only", async () => {
    const dave = await register(is, "dave");
    const details = await call(`${is.url}${V2}/hash_details`, { headers: dave });
    expect(details.body.algorithms).toEqual(["sha256"]);
    const plain = await lookup(is, dave, ["a@example.org email"], "none");
    expect(plain.status).toBe(400);
    expect(plain.body.errcode).toBe("M_INVALID_PARAM");
    expect((await lookup(is, dave, hashes(2))).status).toBe(200);
  });
});

// CI installs redis-server (.ci/run); on a machine without it this suite says so and is skipped.
describe.skipIf(!REDIS_SERVER)("lookup budget shared through Redis", () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let a: TestSeraph;
  let b: TestSeraph;
  beforeAll(async () => {
    redis = await startRedis();
    const config = {
      rate_limit: {
        enabled: true,
        redis_url: redis.url,
        lookup_per_account: { burst: 10, per_hour: 1 },
        lookup_per_ip: { burst: 1000, per_hour: 1 },
        v1_lookup_per_ip: { burst: 4, per_hour: 1 },
      },
    };
    a = await startSeraph(config, { homeservers: homeservers() });
    b = await startSeraph(config, { homeservers: homeservers(), dir: a.dir });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
    await redis?.stop();
  });

  it("counts one account's hashes on every instance", async () => {
    const erin = await register(a, "erin");
    expect((await lookup(a, erin, hashes(6))).status).toBe(200);
    const over = await lookup(b, erin, hashes(6));
    expect(over.status).toBe(429);
    expect(over.body.errcode).toBe("M_LIMIT_EXCEEDED");
  });

  it("counts v1 threepids per IP on every instance", async () => {
    const bulk = (on: TestSeraph, n: number) =>
      call(`${on.url}${V1}/bulk_lookup`, {
        body: { threepids: Array.from({ length: n }, (_, i) => ["email", `u${i}@example.org`]) },
      });
    expect((await bulk(a, 3)).status).toBe(200);
    expect((await bulk(b, 2)).status).toBe(429);
  });
});
