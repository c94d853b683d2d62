import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, freePort, startSeraph, type TestSeraph } from "../support/seraph.js";

let is: TestSeraph;
let metricsUrl: string;

beforeAll(async () => {
  const port = await freePort();
  metricsUrl = `http://127.0.0.1:${port}/metrics`;
  is = await startSeraph({ metrics: { enabled: true, port } });
});
afterAll(async () => is?.close());

describe("Prometheus metrics", () => {
  it("counts requests by route pattern and emails by outcome, on their own listener", async () => {
    await call(`${is.url}/_matrix/identity/api/v1/store-invite`, {
      body: { medium: "email", address: "m@example.org", room_id: "!r:h", sender: "@s:h" },
    });
    await call(`${is.url}/_matrix/identity/v2/account?access_token=secret-token-value`);
    const text = await (await fetch(metricsUrl)).text();
    expect(text).toContain('seraph_emails_total{template="invite",result="sent"} 1');
    expect(text).toMatch(
      /seraph_http_requests_total\{method="POST",route="\/_matrix\/identity\/api\/v1\/store-invite",status="200"\} 1/,
    );
    expect(text).toContain("process_cpu_seconds_total");
    expect(text).not.toContain("secret-token-value");
    expect((await fetch(`${is.url}/metrics`)).status).toBe(404);
  });
});
