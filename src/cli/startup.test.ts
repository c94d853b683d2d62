import { describe, expect, it } from "vitest";
import { resolveConfig } from "../config/load.js";
import { dangerWarnings, startupLines } from "./startup.js";

describe("start-up lines", () => {
  it("name every listener, the database and key file as absolute paths, and where mail goes", () => {
    const cfg = resolveConfig({
      database: { postgres: { url: "postgres://seraph:pw-1@db/seraph" } },
      email: { smtp: { host: "smtp.example.org" } },
    });
    const lines = startupLines(
      cfg,
      { api: "http://127.0.0.1:8090", metrics: "http://127.0.0.1:9092/metrics" },
      "0.2.0",
    );
    expect(lines[0]).toMatch(/^Seraph listening on http:\/\/127\.0\.0\.1:8090 /);
    expect(lines).toContain("Metrics on http://127.0.0.1:9092/metrics");
    expect(lines).toContain("Database: PostgreSQL postgres://seraph:***@db/seraph");
    expect(lines.find((l) => l.startsWith("Signing key: /"))).toBeTruthy();
    expect(lines).toContain("Mail: SMTP smtp.example.org:587 (STARTTLS) from Seraph <noreply@localhost>");
    expect(lines.join("\n")).not.toContain("pw-1");
    const sqlite = startupLines(resolveConfig({}), { api: "http://127.0.0.1:8090" }, "0.2.0");
    expect(sqlite.find((l) => l.startsWith("Database: SQLite /"))).toBeTruthy();
    expect(sqlite.find((l) => l.startsWith("No SMTP configured: emails are written to /"))).toBeTruthy();
  });

  it("warn about dangerous settings, one line each, and not about a development set-up", () => {
    expect(dangerWarnings(resolveConfig({}))).toEqual([]);
    const w = dangerWarnings(
      resolveConfig({
        public_base_url: "http://id.example.org",
        federation: { verify_certificates: false, ip_allowlist: ["10.0.0.0/8"] },
        rate_limit: { enabled: false },
      }),
    );
    expect(w).toHaveLength(4);
    for (const line of w) expect(line).toMatch(/^Warning: /);
  });
});
