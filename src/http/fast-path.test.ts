import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { clientAddress, plainQueryValues } from "./fast-path.js";

const KEYS = ["medium", "address"] as const;

describe("plainQueryValues", () => {
  it("reads exactly the named keys, in any order, percent-decoded", () => {
    expect(plainQueryValues("medium=email&address=a%40b.org", KEYS)).toEqual({
      medium: "email",
      address: "a@b.org",
    });
    expect(plainQueryValues("address=a@b.org&medium=email", KEYS)).toEqual({
      medium: "email",
      address: "a@b.org",
    });
    // Everything after the first `=` is the value, as URLSearchParams reads it.
    expect(plainQueryValues("medium=a=b&address=c", KEYS)).toEqual({ medium: "a=b", address: "c" });
  });

  it("declines what fastify's parser reads differently or the schema refuses", () => {
    for (const query of [
      "",
      "medium=email",
      "medium=email&address=",
      "medium=&address=x",
      "medium=email&address=x&address=y",
      "medium=email&medium=msisdn",
      "medium=email&address=x&extra=1",
      "medium=email&address=a+b",
      "medium=email&address=a%2",
      "medium=email&address=%E0%A4%A",
      "medi%75m=email&address=x",
      "medium&address=x",
      "medium=email&address=x#frag",
      "mediumx=email&address=x",
    ]) {
      expect(plainQueryValues(query, KEYS), query).toBeUndefined();
    }
  });
});

/** A request as proxy-addr reads it: the peer's address and the forwarding header. */
function request(peer: string, forwardedFor?: string): IncomingMessage {
  return {
    socket: { remoteAddress: peer },
    headers: forwardedFor === undefined ? {} : { "x-forwarded-for": forwardedFor },
  } as unknown as IncomingMessage;
}

describe("clientAddress", () => {
  it("is the peer without trusted proxies, whatever the headers say", () => {
    expect(clientAddress(false)(request("127.0.0.1", "203.0.113.9"))).toBe("127.0.0.1");
  });

  it("is the first untrusted hop from the peer's side behind trusted proxies", () => {
    const ip = clientAddress(["127.0.0.1", "10.0.0.0/8"]);
    expect(ip(request("127.0.0.1", "203.0.113.9"))).toBe("203.0.113.9");
    expect(ip(request("127.0.0.1", "198.51.100.1, 203.0.113.9, 10.1.2.3"))).toBe("203.0.113.9");
    // A peer that is not a trusted proxy is the client, whatever it forwards.
    expect(ip(request("192.0.2.5", "203.0.113.9"))).toBe("192.0.2.5");
    expect(ip(request("127.0.0.1"))).toBe("127.0.0.1");
  });

  it("trusts every hop when trust is `true`, as fastify does", () => {
    expect(clientAddress(true)(request("192.0.2.5", "198.51.100.1, 203.0.113.9"))).toBe("198.51.100.1");
  });
});
