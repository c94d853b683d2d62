import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { seraphCli } from "../support/process.js";

const dir = mkdtempSync(join(tmpdir(), "seraph-config-check-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("seraph config check", () => {
  it("prints the resolved configuration with every secret masked", () => {
    writeFileSync(
      join(dir, "seraph.yaml"),
      [
        "server_name: id.example.org",
        "database:",
        "  postgres: { url: 'postgres://seraph:pg-secret-1@db.internal/seraph' }",
        "email:",
        "  smtp: { host: smtp.example.org, username: seraph, password: smtp-secret-2 }",
        "rate_limit: { redis_url: 'redis://:redis-secret-3@redis.internal:6379' }",
        "sms:",
        "  provider: http",
        "  http: { url: 'https://sms.example.org/send', bearer_token: sms-secret-4 }",
      ].join("\n"),
    );
    const res = seraphCli(["config", "check", "--config", "seraph.yaml"], {
      cwd: dir,
      env: { SERAPH_LISTEN__PORT: "8123" },
    });
    expect(res.status, res.stderr).toBe(0);
    for (const s of ["pg-secret-1", "smtp-secret-2", "redis-secret-3", "sms-secret-4"])
      expect(res.stdout).not.toContain(s);
    const cfg = parse(res.stdout);
    expect(cfg.listen.port).toBe(8123);
    expect(cfg.email.smtp.port).toBe(587);
    expect(cfg.email.smtp.password).toBe("********");
    expect(cfg.email.smtp.username).toBe("seraph");
    expect(cfg.database.postgres.url).toBe("postgres://seraph:***@db.internal/seraph");
    expect(cfg.sms.http.bearer_token).toBe("********");
    expect(cfg.public_base_url).toBe("http://127.0.0.1:8123");

    writeFileSync(join(dir, "bad.yaml"), "listen: { port: eighty }\n");
    const bad = seraphCli(["config", "check", "--config", "bad.yaml"], { cwd: dir });
    expect(bad.status).toBe(78);
    expect(bad.stderr).toContain("listen.port");
    expect(bad.stdout).toBe("");
  });
});
