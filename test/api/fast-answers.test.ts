/**
 * The constant answers (versions, status, pubkey, isvalid) are written before fastify routes the request
 * (src/http/fast-path.ts). They must be what fastify would answer, headers included, and follow the keyring
 * at once; HEAD, OPTIONS, other methods and anything unusual still go the normal way.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rotateKeys, writeKeyFile } from "../../src/crypto/key-file.js";
import { V1, V2 } from "../support/paths.js";
import { call, freePort, startSeraph, type TestSeraph } from "../support/seraph.js";

const lines: Array<Record<string, unknown>> = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const l of chunk.toString("utf8").split("\n")) if (l.trim()) lines.push(JSON.parse(l));
    done();
  },
});

let is: TestSeraph;
let dir: string;
let metricsUrl: string;
let oldKey: string;
let currentKey: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "seraph-fast-"));
  // Two long-term keys: ed25519:1 signs, ed25519:0 is still published until revoked.
  const keys = rotateKeys(rotateKeys([]));
  writeKeyFile(join(dir, "signing.key"), keys);
  currentKey = keys[0]!.publicKeyBase64;
  oldKey = keys[1]!.publicKeyBase64;
  const port = await freePort();
  metricsUrl = `http://127.0.0.1:${port}/metrics`;
  is = await startSeraph(
    { log: { level: "info" }, metrics: { enabled: true, port } },
    { dir, logger: pino({ level: "info" }, sink) },
  );
});
afterAll(async () => {
  await is?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The headers a client sees, without those Node adds per connection (date, keep-alive). */
function stableHeaders(h: Headers | Record<string, unknown>): Record<string, string> {
  const entries = h instanceof Headers ? [...h.entries()] : Object.entries(h).map(([k, v]) => [k, String(v)]);
  return Object.fromEntries(
    entries.filter(([k]) => !["date", "connection", "keep-alive", "transfer-encoding"].includes(k!)),
  );
}

const PATHS = [
  "/_matrix/identity/versions",
  V2,
  V1,
  `${V2}/pubkey/ed25519:0`,
  `${V2}/pubkey/ed25519:1`,
  `${V1}/pubkey/ed25519:1`,
  `${V2}/pubkey/ed25519%3A1`,
];

describe("answers written before routing", () => {
  it("are byte for byte what fastify answers, headers included", async () => {
    const pk = (k: string) => `${V2}/pubkey/isvalid?public_key=${k}`;
    const paths = [
      ...PATHS,
      pk(encodeURIComponent(currentKey)),
      pk(currentKey.replaceAll("+", "%2B")),
      `${V1}/pubkey/isvalid?public_key=${encodeURIComponent(oldKey)}`,
      pk("A".repeat(43)),
      `/_matrix/identity/versions?x=1`,
    ];
    for (const path of paths) {
      const served = await call(`${is.url}${path}`);
      // inject() goes through fastify itself, never through the listener the fast path sits on.
      const routed = await is.seraph.app.inject({ method: "GET", url: path });
      expect(served.status, path).toBe(200);
      expect(served.text, path).toBe(routed.body);
      expect(stableHeaders(served.headers), path).toEqual(stableHeaders(routed.headers));
    }
    expect((await call(`${is.url}${V2}/pubkey/ed25519:1`)).body).toEqual({ public_key: currentKey });
    // A raw `+` is a space in a query string (so the key is not valid), whoever answers.
    const plus = await call(`${is.url}${V2}/pubkey/isvalid?public_key=${currentKey.replaceAll("+", "%2B")}`);
    expect(plus.body).toEqual({ valid: true });
  });

  it("leave HEAD, OPTIONS, other methods and unusual requests to fastify, unchanged", async () => {
    const key = `${V2}/pubkey/ed25519:1`;
    const head = await fetch(`${is.url}${key}`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(
      String(JSON.stringify({ public_key: currentKey }).length),
    );
    expect(head.headers.get("access-control-allow-origin")).toBe("*");
    expect(await head.text()).toBe("");

    const options = await call(`${is.url}${key}`, { method: "OPTIONS" });
    expect(options.status).toBe(200);
    expect(options.headers.get("access-control-allow-methods")).toBe("GET, POST, PUT, DELETE, OPTIONS");

    for (const path of PATHS) {
      const post = await call(`${is.url}${path}`, { method: "POST", body: {} });
      expect(post.status, path).toBe(405);
      expect(post.body).toEqual({ errcode: "M_UNRECOGNIZED", error: "Method not allowed" });
    }

    // Trailing slash, unknown key, missing or repeated parameter, a static sibling: the normal answers.
    expect((await call(`${is.url}${V2}/`)).body).toEqual({});
    expect((await call(`${is.url}${key}/`)).body).toEqual({ public_key: currentKey });
    expect((await call(`${is.url}${V2}/pubkey/ed25519:9`)).body.errcode).toBe("M_NOT_FOUND");
    expect((await call(`${is.url}${V2}/pubkey/isvalid`)).body.errcode).toBe("M_MISSING_PARAMS");
    expect((await call(`${is.url}${V2}/pubkey/isvalid?public_key=`)).body.errcode).toBe("M_MISSING_PARAMS");
    const first = encodeURIComponent(currentKey);
    const twice = await call(`${is.url}${V2}/pubkey/isvalid?public_key=${first}&public_key=x`);
    expect(twice.body).toEqual({ valid: true });
    expect((await call(`${is.url}${V2}/pubkey/isvali%64?public_key=x`)).body).toEqual({ valid: false });
    expect((await call(`${is.url}${V2}/pubkey/%E0%A4%A`)).status).toBe(400);
  });

  it("follow the keyring at once: a revoked key is gone from pubkey and isvalid", async () => {
    const old = `${V2}/pubkey/ed25519:0`;
    const valid = `${V2}/pubkey/isvalid?public_key=${encodeURIComponent(oldKey)}`;
    expect((await call(`${is.url}${old}`)).body).toEqual({ public_key: oldKey });
    expect((await call(`${is.url}${valid}`)).body).toEqual({ valid: true });

    await is.seraph.store.repos.keys.revokeSigningKey("ed25519:0", Date.now(), currentKey);
    await is.seraph.keys.refresh();

    const gone = await call(`${is.url}${old}`);
    expect(gone.status).toBe(404);
    expect(gone.body.errcode).toBe("M_NOT_FOUND");
    expect((await call(`${is.url}${valid}`)).body).toEqual({ valid: false });
    expect((await call(`${is.url}${V2}/pubkey/ed25519:1`)).body).toEqual({ public_key: currentKey });
  });

  it("are logged like any request (path only, with a request id) and counted in the metrics", async () => {
    lines.length = 0;
    await call(`${is.url}${V2}/pubkey/isvalid?public_key=${encodeURIComponent(currentKey)}`);
    await call(`${is.url}/_matrix/identity/versions`);
    const paths = [`${V2}/pubkey/isvalid`, "/_matrix/identity/versions"];
    const logged = lines.filter((l) => l.msg === "request" && paths.includes(l.path as string));
    expect(logged).toEqual([
      expect.objectContaining({ method: "GET", path: `${V2}/pubkey/isvalid`, status: 200 }),
      expect.objectContaining({ method: "GET", path: "/_matrix/identity/versions", status: 200 }),
    ]);
    expect(typeof logged[0]!.reqId).toBe("string");
    expect(logged[0]!.reqId).not.toBe(logged[1]!.reqId);
    expect(JSON.stringify(lines)).not.toContain(encodeURIComponent(currentKey));

    const text = await (await fetch(metricsUrl)).text();
    expect(text).toMatch(
      /seraph_http_requests_total\{method="GET",route="\/_matrix\/identity\/versions",status="200"\} [1-9]/,
    );
    expect(text).toMatch(
      /seraph_http_requests_total\{method="GET",route="\/_matrix\/identity\/v2\/pubkey\/:keyId",status="200"\} [1-9]/,
    );
    expect(text).toMatch(
      /seraph_http_request_duration_seconds_count\{route="\/_matrix\/identity\/v2"\} [1-9]/,
    );
  });
});
