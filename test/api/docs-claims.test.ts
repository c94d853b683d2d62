import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, startSeraph, type TestSeraph } from "../support/seraph.js";

// Claims of docs/validation.md that are about behaviour.

const V1 = "/_matrix/identity/api/v1";
let is: TestSeraph;
beforeAll(async () => {
  is = await startSeraph({});
});
afterAll(async () => is?.close());

describe("docs/validation.md", () => {
  it("M_TOKEN_INCORRECT: the message says when the wrong token closed the session", async () => {
    const req = await call(`${is.url}${V1}/validate/email/requestToken`, {
      body: { client_secret: "claims-1", email: "claims@example.org", send_attempt: 1 },
    });
    const sid = req.body.sid as string;
    const submit = () =>
      call(`${is.url}${V1}/validate/email/submitToken`, {
        body: { sid, client_secret: "claims-1", token: "wrong" },
      });
    const messages: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await submit();
      expect(res.body.errcode).toBe("M_TOKEN_INCORRECT");
      messages.push(res.body.error as string);
    }
    expect(messages[0]).toBe("Wrong token (4 attempts left)");
    expect(messages[3]).toBe("Wrong token (1 attempt left)");
    expect(messages[4]).toMatch(/session is now closed/);
    const after = await submit();
    expect(after.body.errcode).toBe("M_SESSION_EXPIRED");
  });
});
