import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createTestDatabase, dropTestDatabase, startPostgres } from "../test/support/postgres.js";

/** Where the PostgreSQL benchmarks get a database from. */
export interface BenchPostgres {
  readonly description: string;
  /** The postmaster's pid when the cluster runs on this machine (its backends are its children). */
  postmasterPid(): number | undefined;
  /** A fresh, empty database; returns its URL. */
  createDatabase(): Promise<string>;
  /** Drops the databases made here (existing server) or stops the embedded cluster. */
  stop(): Promise<void>;
}

/**
 * An existing server given by a superuser URL, or else a throwaway embedded cluster (the test
 * suite's: fsync off, which only matters for writes).
 */
export async function createPostgresCluster(adminUrl?: string): Promise<BenchPostgres> {
  if (adminUrl) {
    const made: string[] = [];
    const host = new URL(adminUrl).host;
    return {
      description: `existing server ${host}`,
      postmasterPid: () => undefined,
      async createDatabase() {
        const url = await createTestDatabase(adminUrl);
        made.push(url);
        return url;
      },
      async stop() {
        for (const url of made) await dropTestDatabase(url, adminUrl);
      },
    };
  }
  const cluster = await startPostgres();
  return {
    description: `embedded cluster on port ${cluster.port}`,
    postmasterPid: () => {
      try {
        const pid = Number(readFileSync(join(cluster.dataDir, "postmaster.pid"), "utf8").split("\n", 1)[0]);
        return Number.isInteger(pid) && pid > 0 ? pid : undefined;
      } catch {
        return undefined;
      }
    },
    createDatabase: () => cluster.createDatabase(),
    stop: () => cluster.stop(),
  };
}
