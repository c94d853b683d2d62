/**
 * vitest globalSetup: one PostgreSQL cluster for the whole test run, shared by every suite through
 * `inject("pgAdminUrl")`; suites create their own database with `createTestDatabase()`.
 *
 * Set SERAPH_TEST_PG_URL to a superuser URL (e.g. a CI service container) to use an existing server
 * instead of the embedded one. A server that cannot be started or reached fails the run.
 */
import pg from "pg";
import type { TestProject } from "vitest/node";
import { startPostgres } from "./postgres.js";

async function checkReachable(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
    await client.query("select 1");
  } finally {
    await client.end().catch(() => undefined);
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.SERAPH_TEST_PG_URL;
  if (external) {
    try {
      await checkReachable(external);
    } catch (err) {
      throw new Error(`SERAPH_TEST_PG_URL is set but the server is unreachable: ${(err as Error).message}`, {
        cause: err,
      });
    }
    project.provide("pgAdminUrl", external);
    return async () => {};
  }

  const started = performance.now();
  let cluster: Awaited<ReturnType<typeof startPostgres>>;
  try {
    cluster = await startPostgres();
  } catch (err) {
    throw new Error(
      `could not start the embedded PostgreSQL for the tests: ${(err as Error).message}\n` +
        "(set SERAPH_TEST_PG_URL to a superuser URL to use an existing server instead)",
      { cause: err },
    );
  }
  if (process.env.SERAPH_TEST_PG_VERBOSE) {
    console.info(
      `embedded PostgreSQL on port ${cluster.port} in ${Math.round(performance.now() - started)} ms`,
    );
  }
  project.provide("pgAdminUrl", cluster.adminUrl);
  return async () => {
    await cluster.stop();
  };
}
