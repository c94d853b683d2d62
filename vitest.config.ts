import { defineConfig } from "vitest/config";

// Generous: CLI tests start several TypeScript processes, and CI may share its cores with other work.
const shared = { testTimeout: 120_000, hookTimeout: 120_000 };

export default defineConfig({
  test: {
    pool: "forks",
    // One embedded PostgreSQL for the whole run (test/support/postgres.ts).
    globalSetup: ["test/support/pg-global-setup.ts"],
    projects: [
      {
        extends: true,
        test: {
          ...shared,
          name: "sqlite",
          include: ["src/**/*.test.ts", "test/**/*.test.ts"],
          exclude: ["test/postgres/**"],
        },
      },
      {
        // The same API and end-to-end suites, on PostgreSQL.
        extends: true,
        test: {
          ...shared,
          name: "postgres",
          // test/postgres: what only PostgreSQL can do (several instances, outages, migrate-db).
          include: [
            "test/api/**/*.test.ts",
            "test/e2e/**/*.test.ts",
            "test/postgres/**/*.test.ts",
            "test/import/import-sydent.test.ts",
          ],
          exclude: ["test/e2e/cli.test.ts"],
          env: { SERAPH_TEST_BACKEND: "postgres" },
        },
      },
    ],
  },
});
