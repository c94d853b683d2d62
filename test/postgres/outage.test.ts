import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { V1 } from "../support/paths.js";
import { type PostgresCluster, startPostgres } from "../support/postgres.js";
import { call, startSeraph, type TestSeraph } from "../support/seraph.js";

// This suite stops and restarts PostgreSQL, so it gets a cluster of its own.
let cluster: PostgresCluster;
let is: TestSeraph;

beforeAll(async () => {
  cluster = await startPostgres();
  const url = await cluster.createDatabase();
  is = await startSeraph({ database: { postgres: { url, pool_size: 4, statement_timeout_ms: 2000 } } });
}, 60_000);

afterAll(async () => {
  await is?.close();
  await cluster?.stop();
});

/** Sends `total` lookups, `concurrency` at a time, and counts the statuses. */
async function load(total: number, concurrency: number): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  let sent = 0;
  const worker = async () => {
    while (sent < total) {
      sent++;
      const res = await fetch(`${is.url}${V1}/lookup?medium=email&address=nobody%40example.org`);
      await res.arrayBuffer();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return statuses;
}

describe("PostgreSQL outage", () => {
  it("answers 503 quickly while the database is down and recovers by itself", async () => {
    expect((await load(50, 5)).get(200)).toBe(50);

    await cluster.stopServer("immediate");
    const started = Date.now();
    const during = await load(200, 10);
    const elapsed = Date.now() - started;
    expect(
      [...during.keys()].every((s) => s === 503),
      JSON.stringify([...during]),
    ).toBe(true);
    expect(elapsed).toBeLessThan(30_000);
    const down = await call(`${is.url}${V1}/lookup?medium=email&address=x%40example.org`);
    expect(down.body).toEqual({ errcode: "M_UNKNOWN", error: expect.any(String) });
    expect((await call(`${is.url}/_seraph/ready`)).status).toBe(503);
    expect((await call(`${is.url}/_seraph/health`)).status).toBe(200);

    await cluster.startServer();
    await expect
      .poll(async () => (await call(`${is.url}/_seraph/ready`)).status, { timeout: 15_000 })
      .toBe(200);
    expect((await load(100, 10)).get(200)).toBe(100);
  }, 90_000);
});
