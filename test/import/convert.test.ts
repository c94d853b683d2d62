import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { Presentation } from "../../src/delivery/brands.js";
import { TemplateStore } from "../../src/delivery/templates.js";
import { PageRenderer } from "../../src/http/pages.js";
import { configFromSydent } from "../../src/import/config-from-sydent.js";
import { SydentInputError } from "../../src/import/sydent-config.js";
import { convertJinja, templatesFromSydent } from "../../src/import/templates-from-sydent.js";
import { seraphCli } from "../support/process.js";
import { copyFixture } from "./support.js";

const cleanup: string[] = [];
afterAll(() => {
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});
const sydent = copyFixture();
cleanup.push(join(sydent, ".."));

const ctx = { to: "dana@example.org", from: "IS <noreply@is.test>", messageIdHost: "is.test" };

describe("config from-sydent", () => {
  it("translates the fixture's sydent.conf into a configuration that loads", () => {
    const yaml = configFromSydent(join(sydent, "sydent.conf"));
    const file = join(sydent, "seraph.yaml");
    writeFileSync(file, yaml);
    const cfg = loadConfig(file, {});
    expect(cfg.server_name).toBe("sydent-fixture.test");
    expect(cfg.listen).toEqual({ host: "127.0.0.1", port: 49333 });
    expect(cfg.public_base_url).toBe("http://127.0.0.1:49333");
    expect(cfg.terms.path).toBe(join(sydent, "terms.yaml"));
    expect(cfg.email.default_brand).toBe("is-test");
    expect(cfg.email.smtp).toMatchObject({ host: "127.0.0.1", port: 52491, tls: "none" });
    expect(cfg.federation.ip_allowlist).toEqual(["127.0.0.1/32"]);
    expect(cfg.federation.verify_certificates).toBe(false);
    expect(cfg.v1.enable_bind).toBe(true);
    // Options without an equivalent are listed as comments, secrets are not shown.
    expect(yaml).toMatch(/^# .*internalapi\.http\.port = 47833: no internal API/m);
    expect(yaml).toMatch(/^# .*ed25519\.signingkey = \(secret, not shown\)/m);
    expect(yaml).not.toContain("jBTnjTN098wNV6fbLmEpDnCm9");
  });

  it("is a command that prints the YAML", () => {
    const res = seraphCli(["config", "from-sydent", join(sydent, "sydent.conf")]);
    expect(res.status).toBe(0);
    expect(res.stdout).toContain("server_name: sydent-fixture.test");
    expect(() => configFromSydent(join(sydent, "nope.conf"))).toThrow(SydentInputError);
  }, 120_000);

  it("import-sydent refuses bad input with exit code 65 and writes nothing", () => {
    const dir = mkdtempSync(join(tmpdir(), "seraph-cli-import-"));
    cleanup.push(dir);
    const notDb = join(dir, "sydent.db");
    writeFileSync(notDb, "not a database\n");
    const yaml = join(dir, "seraph.yaml");
    writeFileSync(
      yaml,
      `server_name: sydent-fixture.test\ndatabase: {sqlite: {path: ${join(dir, "seraph.db")}}}\nsigning_key_path: ${join(dir, "signing.key")}\n`,
    );
    const res = seraphCli([
      "import-sydent",
      "--sydent-db",
      notDb,
      "--sydent-config",
      join(sydent, "sydent.conf"),
      "--config",
      yaml,
    ]);
    expect(res.status).toBe(65);
    expect(res.stderr).toContain("is not an SQLite database");
    expect(existsSync(join(dir, "seraph.db"))).toBe(false);
    expect(existsSync(join(dir, "signing.key"))).toBe(false);
  }, 120_000);
});

describe("templates from-sydent", () => {
  it("converts the fixture's brand, and the converted templates render", async () => {
    const dest = mkdtempSync(join(tmpdir(), "seraph-tpl-"));
    cleanup.push(dest);
    const report = templatesFromSydent(join(sydent, "templates_root"), dest, {
      verification: "Your Validation Token",
      invite: "%(sender_display_name)s has invited you to chat",
      inviteSpace: "%(sender_display_name)s has invited you to a space",
    });
    expect(report.warnings).toEqual([]);
    const store = new TemplateStore(dest);
    const v = await store.load("is-test", "verification");
    if (v.kind !== "raw") throw new Error("expected a raw template");
    const mail = store.renderRaw(v, { token: "abc123" }, { ...ctx, template: "verification" });
    expect(mail.message).toBe("<<<abc123>>>\r\n");
    const inv = await store.load("is-test", "invite");
    if (inv.kind !== "raw") throw new Error("expected a raw template");
    const rendered = store.renderRaw(
      inv,
      { token: "t0k", room_alias: "", room_name: 'Caf\u00e9 "quotes"', sender_display_name: "Bob" },
      { ...ctx, template: "invite" },
    );
    expect(JSON.parse(rendered.message)).toEqual({
      token: "t0k",
      room_alias: "",
      room_avatar_url: "",
      room_name: 'Caf\u00e9 "quotes"',
      sender_display_name: "Bob",
      sender_avatar_url: "",
    });
    const look = new Presentation({ templatesDir: dest, defaultBrand: "is-test", brands: {} });
    const page = new PageRenderer(look).page("success", { brand: "is-test", lang: "en", medium: "email" });
    expect(page).toContain("matrix_is_tester:email_submit_get_response");
    expect(readFileSync(join(dest, "is-test", "invite.subject.eta"), "utf8")).toContain(
      'it.room_type === "m.space"',
    );
  });

  it("converts a shipped-style multipart template: escapes HTML, replaces the matrix.org sign URL", async () => {
    const src = [
      "Date: {{ date|safe }}",
      "From: {{ from|safe }}",
      "To: {{ to|safe }}",
      "Message-ID: {{ messageid|safe }}",
      "Subject: {{ subject_header_value|safe }}",
      "MIME-Version: 1.0",
      'Content-Type: multipart/alternative; boundary="{{ multipart_boundary|safe }}"',
      "",
      "--{{ multipart_boundary|safe }}",
      "Content-Type: text/plain; charset=UTF-8",
      "",
      "{{ sender_display_name|safe }} {% if bracketed_room_name %}into {{ bracketed_room_name }}{% else %}into a room{% endif %}",
      "{{ web_client_location }}/#/room/{{ room_id|urlencode }}?signurl=https%%3A%%2F%%2Fmatrix.org%%2F_matrix%%2Fidentity%%2Fapi%%2Fv1%%2Fsign-ed25519%%3Ftoken%%3D{{ token }}%%26private_key%%3D{{ ephemeral_private_key }}",
      "{# a comment #}--{{ multipart_boundary|safe }}",
      "Content-Type: text/html; charset=UTF-8",
      "",
      '<p style="width: 100%%">{{ sender_display_name }}</p>',
      '<a href="https://app.element.io/#/room/{{ room_id_forurl }}">join</a>',
      "--{{ multipart_boundary|safe }}--",
      "",
    ].join("\n");
    const { text, warnings } = convertJinja(src);
    expect(warnings).toEqual([]);
    expect(text).not.toContain("matrix.org");
    const dir = mkdtempSync(join(tmpdir(), "seraph-tpl-"));
    cleanup.push(dir);
    mkdirSync(join(dir, "brand"));
    writeFileSync(join(dir, "brand", "invite.eml"), text);
    const store = new TemplateStore(dir);
    const t = await store.load("brand", "invite");
    if (t.kind !== "raw") throw new Error("expected a raw template");
    const { message } = store.renderRaw(
      t,
      {
        sender_display_name: "<b>Eve</b>",
        bracketed_room_name: "(Room)",
        room_id: "!r:hs.example",
        web_client_location: "https://chat.example.org",
        sign_url: "https://is.example.org/_matrix/identity/api/v1/sign-ed25519?token=T&private_key=K",
        token: "T",
        ephemeral_private_key: "K",
      },
      { ...ctx, template: "invite" },
    );
    expect(message).toContain("\r\n<b>Eve</b> into (Room)\r\n");
    expect(message).toContain('<p style="width: 100%">&lt;b&gt;Eve&lt;/b&gt;</p>');
    expect(message).toContain(
      `https://chat.example.org/#/room/!r%3Ahs.example?signurl=${encodeURIComponent("https://is.example.org/_matrix/identity/api/v1/sign-ed25519?token=T&private_key=K")}`,
    );
    expect(message).toContain('<a href="https://chat.example.org/#/room/!r%3Ahs.example">');
    expect(message).toMatch(/^Date: .+\r\nFrom: IS <noreply@is.test>\r\nTo: dana@example.org\r\n/);
  });
});
