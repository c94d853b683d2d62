import { describe, expect, it } from "vitest";
import type { KyselyAuditLogRepository } from "../store/audit-log.js";
import type { KyselyBlocklistRepository } from "../store/blocklist.js";
import type { KyselySuppressionRepository } from "../store/suppressions.js";
import { InvitePolicy } from "./abuse.js";
import { Auditor, redactIdentifier } from "./audit.js";

function policy(
  now: () => number,
  blocked: Array<{ kind: "server" | "room" | "keyword"; value: string }> = [],
) {
  const audit = new Auditor({} as KyselyAuditLogRepository, "audit-key", { info() {} }, now);
  const blocklist = {
    list: async () => blocked.map((b) => ({ ...b, reason: null, createdTs: 0 })),
  } as unknown as KyselyBlocklistRepository;
  const suppressions = { has: async () => false } as unknown as KyselySuppressionRepository;
  return new InvitePolicy(
    { publicBaseUrl: "https://is.test", unsubscribeLinkLifetimeMs: 1000, unsubscribePath: "/u" },
    blocklist,
    suppressions,
    audit,
    "link-key",
    () => {},
    now,
  );
}

const params = (url: string) => Object.fromEntries(new URL(url).searchParams);

describe("unsubscribe links", () => {
  it("verify until they expire, and not once altered", () => {
    let t = 1_000_000;
    const p = policy(() => t);
    const link = p.unsubscribeUrl("email", "alice@example.org");
    expect(link).not.toContain("alice");
    expect(p.verifyLink(params(link))).toBe("ok");
    for (const k of ["h", "m", "r", "e", "s"]) {
      const bad = { ...params(link), [k]: k === "e" ? "9999999999" : `${params(link)[k]}x` };
      expect(p.verifyLink(bad), k).toBe("invalid");
    }
    expect(p.verifyLink({ ...params(link), s: undefined })).toBe("invalid");
    t += 1001;
    expect(p.verifyLink(params(link))).toBe("expired");
  });
});

describe("blocklist matching", () => {
  const candidate = (over: Record<string, unknown>) => ({
    medium: "email",
    address: "a@example.org",
    sender: "@s:good.test",
    roomId: "!r:good.test",
    params: {},
    ...over,
  });
  it("matches servers exactly or by *.suffix, on the sender and the room", async () => {
    const p = policy(Date.now, [
      { kind: "server", value: "evil.test" },
      { kind: "server", value: "*.spam.test" },
    ]);
    await expect(p.check(candidate({ sender: "@x:evil.test" }))).rejects.toMatchObject({
      errcode: "M_FORBIDDEN",
    });
    await expect(p.check(candidate({ sender: "@x:evil.test:8448" }))).rejects.toMatchObject({ status: 403 });
    await expect(p.check(candidate({ roomId: "!r:a.b.spam.test" }))).rejects.toMatchObject({ status: 403 });
    await expect(p.check(candidate({ sender: "@x:spam.test" }))).rejects.toMatchObject({ status: 403 });
    await expect(p.check(candidate({ sender: "@x:notevil.test" }))).resolves.toBeUndefined();
    await expect(p.check(candidate({ sender: "@x:evil.test.example" }))).resolves.toBeUndefined();
  });
});

describe("redaction", () => {
  it("never keeps a whole address or Matrix ID", () => {
    expect(redactIdentifier("alice@example.org")).toBe("ali...@exa...");
    expect(redactIdentifier("@alice:example.org")).toBe("@ali...:exa...");
    expect(redactIdentifier("447700900123")).toBe("447...");
    expect(redactIdentifier("@a:b")).toBe("@a...:b...");
  });
});
