/**
 * `npm run fuzz [-- --requests N --concurrency C --seed S]`: the fuzz generator of the test suite
 * (test/support/fuzz.ts) against a real `seraph serve` process on SQLite, 100,000 requests by default.
 * Prints the figures (requests, 5xx, other problems, crashes) and exits 1 on any problem.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import fc from "fast-check";
import { sha256Hex } from "../../src/crypto/hash.js";
import { fuzzAgent, requestArbitrary, routesFromTree, send } from "../support/fuzz.js";
import { spawnSeraph } from "../support/process.js";
import { startSeraph } from "../support/seraph.js";

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "100000" },
    concurrency: { type: "string", default: "8" },
    seed: { type: "string", default: String(Date.now() % 2 ** 31) },
  },
});
const total = Number(values.requests);
const concurrency = Number(values.concurrency);
const seed = Number(values.seed);
const TOKEN = "fuzz-access-token";

const dir = mkdtempSync(join(tmpdir(), "seraph-fuzz-"));
const config = {
  server_name: "is.test",
  database: { sqlite: { path: join(dir, "seraph.db") } },
  signing_key_path: join(dir, "signing.key"),
  email: { outbox_dir: join(dir, "outbox"), from: "Seraph <noreply@is.test>" },
  sms: { outbox_dir: join(dir, "sms") },
  rate_limit: { enabled: false },
  lookup: { max_addresses: 1000 },
};

// Create and migrate the database, with an access token, in-process; then serve it from its own process.
const setup = await startSeraph(config, { dir });
await setup.seraph.store.db
  .insertInto("access_tokens")
  .values({
    token_hash: sha256Hex(TOKEN),
    user_id: "@fuzz:is.test",
    created_ts: Date.now(),
    expires_ts: null,
  })
  .execute();
const routes = routesFromTree(setup.seraph.app.printRoutes({ commonPrefix: false }));
await setup.close();

const proc = await spawnSeraph(config, dir);
let crashed = false;
proc.exited.then(() => {
  crashed = true;
});
const agent = fuzzAgent(concurrency);
const gen = requestArbitrary(routes, TOKEN);
const statuses = new Map<number, number>();
const problems: string[] = [];
let done = 0;
let skipped = 0;
let fiveXx = 0;
const started = Date.now();

console.log(`fuzz: ${total} requests over ${routes.length} routes, concurrency ${concurrency}, seed ${seed}`);
const batch = 500;
for (let offset = 0; offset < total && !crashed; offset += batch) {
  const reqs = fc.sample(gen, { numRuns: Math.min(batch, total - offset), seed: seed + offset });
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < reqs.length && !crashed) {
        const req = reqs[next++]!;
        try {
          const outcome = await send(proc.url, agent, req);
          if (outcome === "client") skipped++;
          else {
            statuses.set(outcome.status, (statuses.get(outcome.status) ?? 0) + 1);
            if (outcome.status >= 500) fiveXx++;
            if (outcome.problem) problems.push(`${req.method} ${req.path.slice(0, 160)}: ${outcome.problem}`);
          }
        } catch (e) {
          problems.push(`${req.method} ${req.path.slice(0, 160)}: request failed: ${(e as Error).message}`);
        }
        done++;
      }
    }),
  );
  if ((offset / batch) % 20 === 19)
    console.log(`  ${done} requests, ${Math.round((Date.now() - started) / 1000)} s`);
}
const alive =
  !crashed &&
  (await fetch(`${proc.url}/_matrix/identity/v2`).then(
    (r) => r.status === 200,
    () => false,
  ));
// Decided before the process is stopped on purpose (its exit would count as a crash otherwise).
const crashes = crashed ? 1 : 0;
proc.kill("SIGTERM");
await proc.exited;
await agent.close();
rmSync(dir, { recursive: true, force: true });

const byStatus = [...statuses.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}: ${n}`);
console.log(
  `requests: ${done} in ${Math.round((Date.now() - started) / 1000)} s (not sent by the client: ${skipped})`,
);
console.log(`statuses: ${byStatus.join(", ")}`);
console.log(
  `5xx: ${fiveXx}; other problems: ${problems.length - fiveXx}; crashes: ${crashes}; serving after: ${alive}`,
);
for (const p of problems.slice(0, 20)) console.log(`  ${p}`);
process.exit(problems.length === 0 && crashes === 0 && alive ? 0 : 1);
