import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256Hex } from "../../src/crypto/hash.js";
import { type FuzzRequest, fuzzAgent, requestArbitrary, routesFromTree, send } from "../support/fuzz.js";
import { call, startSeraph, type TestSeraph } from "../support/seraph.js";

// A bounded fuzz run over every route (malformed and deeply nested JSON, wrong types, huge strings, wrong
// methods and content types, odd query strings): never a 5xx, always a Matrix error body, and the server
// keeps serving. `npm run fuzz` runs the same generator for 100,000 requests against a real process.

const TOKEN = "fuzz-access-token";
let is: TestSeraph;
const agent = fuzzAgent(4);

beforeAll(async () => {
  is = await startSeraph({ lookup: { max_addresses: 1000 } });
  await is.seraph.store.db
    .insertInto("access_tokens")
    .values({
      token_hash: sha256Hex(TOKEN),
      user_id: "@fuzz:hs.test",
      created_ts: Date.now(),
      expires_ts: null,
    })
    .execute();
});
afterAll(async () => {
  await agent.close();
  await is?.close();
});

describe("fuzzing every route", () => {
  it("never answers 5xx or a non-Matrix error, and keeps serving", async () => {
    const routes = routesFromTree(is.seraph.app.printRoutes({ commonPrefix: false }));
    expect(routes.length).toBeGreaterThan(30);
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(requestArbitrary(routes, TOKEN), async (req: FuzzRequest) => {
        const outcome = await send(is.url, agent, req);
        sent++;
        if (outcome !== "client" && outcome.problem !== undefined) {
          throw new Error(`${req.method} ${req.path.slice(0, 200)}: ${outcome.problem}`);
        }
      }),
      { numRuns: 2000, seed: 20261201, endOnFailure: true },
    );
    expect(sent).toBe(2000);
    expect((await call(`${is.url}/_matrix/identity/v2`)).status).toBe(200);
  }, 120_000);
});
