/** `seraph doctor` against real local servers: Seraph, the SMTP sink, the fake homeserver, a stopped database. */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { ResolvedConfig } from "../../src/config/load.js";
import { type Finding, formatReport } from "../../src/doctor/report.js";
import { type DoctorOptions, runDoctor } from "../../src/doctor/run.js";
import { createStubDns, startFakeHomeserver, USERINFO_PATH } from "../support/fake-homeserver.js";
import { freePort, startSeraph, type TestSeraph } from "../support/seraph.js";
import { startSmtpSink } from "../support/smtp-sink.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function seraph(config: Record<string, unknown> = {}): Promise<TestSeraph> {
  const s = await startSeraph({ log: { level: "silent" }, ...config }, { backend: "sqlite" });
  cleanups.push(() => s.close());
  return s;
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "seraph-doctor-"));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function doctor(cfg: ResolvedConfig, opts: DoctorOptions = {}) {
  const report = await runDoctor(cfg, opts);
  const find = (group: string, check: string): Finding => {
    const f = report.findings.find((x) => x.group === group && x.check === check);
    if (!f) throw new Error(`no ${group} / ${check} in\n${formatReport(report)}`);
    return f;
  };
  return { report, find, text: formatReport(report) };
}

describe("seraph doctor", () => {
  it("passes a healthy set-up and sends a test mail through the real SMTP path", async () => {
    const sink = await startSmtpSink({ auth: { username: "seraph", password: "right" } });
    cleanups.push(() => sink.close());
    const s = await seraph({
      email: {
        smtp: { host: "127.0.0.1", port: sink.port, tls: "none", username: "seraph", password: "right" },
      },
    });
    const { report, find, text } = await doctor(s.seraph.config, { sendTestMail: "alice@example.org" });
    expect(report.failed, text).toBe(false);
    for (const c of ["reachable", "migrated", "writable"]) expect(find("database", c).status).toBe("pass");
    for (const c of ["readable", "mode 0600", "published"])
      expect(find("signing key", c).status).toBe("pass");
    expect(find("public_base_url", "https").status).toBe("warn");
    expect(find("public_base_url", "reaches Seraph").status).toBe("pass");
    expect(find("public_base_url", "serves our key").status).toBe("pass");
    expect(find("email", "connect + EHLO").status).toBe("pass");
    expect(find("email", "AUTH").detail).toContain("accepted for seraph");
    expect(find("email", "test mail").status).toBe("pass");
    const [mail] = await sink.waitForMessages(1);
    expect(mail!.envelope.to).toEqual(["alice@example.org"]);
    expect(mail!.user).toBe("seraph");
    expect(find("templates", "brand matrix-org").status).toBe("pass");
    expect(text).toMatch(/\d+ passed, \d+ warnings?, 0 failures\n$/);
  });

  it("tells what to fix: key mode, a URL reaching another server, SMTP TLS, AUTH, terms, templates", async () => {
    const s = await seraph();
    const other = await seraph();
    const dir = tempDir();
    chmodSync(s.seraph.config.signing_key_path, 0o644);
    writeFileSync(join(dir, "terms.yaml"), "docs: [not, a, mapping]\n");
    mkdirSync(join(dir, "templates", "broken"), { recursive: true });
    writeFileSync(
      join(dir, "templates", "broken", "invite.eml"),
      "Subject: <%= it.room_name.nope.deeper %>\n",
    );
    const plain = await startSmtpSink({ auth: { username: "seraph", password: "right" } });
    cleanups.push(() => plain.close());
    const cfg: ResolvedConfig = {
      ...s.seraph.config,
      public_base_url: other.url,
      terms: { path: join(dir, "terms.yaml") },
      email: {
        ...s.seraph.config.email,
        templates_dir: join(dir, "templates"),
        default_brand: "broken",
        smtp: { host: "127.0.0.1", port: plain.port, tls: "tls", verify_certificates: true },
      },
    };
    const { report, find, text } = await doctor(cfg);
    expect(report.failed).toBe(true);
    const mode = find("signing key", "mode 0600");
    expect(mode.status).toBe("fail");
    expect(mode.fix).toBe(`chmod 600 ${s.seraph.config.signing_key_path}`);
    const key = find("public_base_url", "serves our key");
    expect(key.status).toBe("fail");
    expect(key.fix).toContain("another server");
    expect(find("email", "TLS").status).toBe("fail");
    expect(find("terms", "terms file").status).toBe("fail");
    expect(find("templates", "brand broken").status).toBe("fail");
    for (const f of report.findings.filter((x) => x.status === "fail")) expect(f.fix, f.check).toBeTruthy();
    expect(text).toContain("fix: chmod 600");

    // STARTTLS against a self-signed certificate: refused while certificates are verified.
    const tls = await startSmtpSink({ tls: "starttls" });
    cleanups.push(() => tls.close());
    const smtp = { host: "127.0.0.1", port: tls.port, tls: "starttls" as const, verify_certificates: true };
    const cert = await doctor({ ...s.seraph.config, email: { ...s.seraph.config.email, smtp } });
    expect(cert.find("email", "connect + EHLO").status).toBe("pass");
    expect(cert.find("email", "TLS").status).toBe("fail");
    expect(cert.find("email", "TLS").detail).toMatch(/certificate/i);
    const unverified = await doctor({
      ...s.seraph.config,
      email: { ...s.seraph.config.email, smtp: { ...smtp, verify_certificates: false } },
    });
    expect(unverified.find("email", "TLS").status).toBe("pass");
    expect(unverified.find("email", "certificate check").status).toBe("warn");

    // Wrong password.
    const auth = await doctor({
      ...s.seraph.config,
      email: {
        ...s.seraph.config.email,
        smtp: {
          host: "127.0.0.1",
          port: plain.port,
          tls: "none",
          verify_certificates: true,
          username: "seraph",
          password: "wrong",
        },
      },
    });
    expect(auth.find("email", "AUTH").status).toBe("fail");
    expect(auth.find("email", "AUTH").fix).toContain("email.smtp.password");
  });

  it("reports a stopped database and an unreachable public URL", async () => {
    const dir = tempDir();
    const port = await freePort();
    const s = await seraph();
    const cfg: ResolvedConfig = {
      ...s.seraph.config,
      database: {
        ...s.seraph.config.database,
        postgres: {
          url: `postgres://seraph:pw-123@127.0.0.1:${port}/seraph`,
          pool_size: 1,
          statement_timeout_ms: 1000,
          ssl: { enabled: false, verify_certificates: true },
        },
      },
      public_base_url: `http://127.0.0.1:${port}`,
      signing_key_path: join(dir, "absent.key"),
    };
    const { find, text } = await doctor(cfg);
    const db = find("database", "reachable");
    expect(db.status).toBe("fail");
    expect(db.detail).toContain(`127.0.0.1:${port}`);
    expect(db.detail).not.toContain("pw-123");
    expect(db.fix).toContain("start PostgreSQL");
    expect(find("public_base_url", "reaches Seraph").status).toBe("fail");
    expect(text).not.toContain("pw-123");
  });

  it("--homeserver: every resolution step, the IP guard's reason, TLS, and the OpenID endpoint", async () => {
    const hs = await startFakeHomeserver({ serverName: "hs.test" });
    cleanups.push(() => hs.close());
    hs.setWellKnown({ body: { "m.server": `hs.test:${hs.port}` } });
    const dns = createStubDns({ hosts: { "hs.test": "127.0.0.1" } });
    const s = await seraph();
    const fed = { ...s.seraph.config.federation, ip_allowlist: ["127.0.0.1/32"] };
    const base = { ...s.seraph.config, federation: fed };
    const opts = { dns, wellKnownPort: hs.port, caCertificates: [hs.certificate!] };

    const ok = await doctor(base, { ...opts, homeserver: "hs.test" });
    const g = "homeserver hs.test";
    expect(ok.find(g, "well-known").detail).toContain(`m.server hs.test:${hs.port}`);
    expect(ok.find(g, "target").detail).toContain(`hs.test:${hs.port} via explicit port after delegation`);
    expect(ok.find(g, "addresses").detail).toContain("127.0.0.1 allowed");
    expect(ok.find(g, "TLS certificate").status).toBe("pass");
    const userinfo = ok.find(g, "openid userinfo");
    expect(userinfo.status, ok.text).toBe("pass");
    expect(userinfo.detail).toContain("401 M_UNKNOWN_TOKEN");
    expect(hs.requestsTo(USERINFO_PATH)).toHaveLength(1);
    expect(hs.requestsTo(USERINFO_PATH)[0]!.host).toBe(`hs.test:${hs.port}`);

    // The certificate is not trusted without the CA.
    const untrusted = await doctor(base, { dns, wellKnownPort: hs.port, homeserver: `hs.test:${hs.port}` });
    expect(untrusted.find(`homeserver hs.test:${hs.port}`, "TLS certificate").status).toBe("fail");

    // Without the allowlist the guard refuses loopback, says why, and nothing reaches the homeserver.
    hs.clearLogs();
    const refused = await doctor(s.seraph.config, { ...opts, homeserver: "hs.test" });
    const guard = refused.find(g, "IP guard 127.0.0.1");
    expect(guard.status).toBe("fail");
    expect(guard.detail).toContain("127.0.0.0/8 (default denylist)");
    expect(guard.fix).toContain("federation.ip_allowlist");
    expect(refused.find(g, "well-known").detail).toContain("forbidden_address");
    expect(hs.requests).toHaveLength(0);
    expect(refused.find(g, "SRV _matrix-fed._tcp").detail).toContain("_matrix-fed._tcp.hs.test: no records");
  });
});
