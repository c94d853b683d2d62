import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../core/package-root.js";
import { ConfigError, loadConfig, resolveConfig } from "./load.js";
import { configSchema } from "./schema.js";

const dir = mkdtempSync(join(tmpdir(), "seraph-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
/** Writes `text` to a new temporary file and returns its path. */
function tempFile(text: string): string {
  fileCount += 1;
  const path = join(dir, `config-${fileCount}.yaml`);
  writeFileSync(path, text);
  return path;
}

/** Runs `fn`, expects a ConfigError, and returns its message. */
function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error("expected a ConfigError");
}

const EXAMPLE = resolve(PACKAGE_ROOT, "config.example.yaml");
const DOCS = resolve(PACKAGE_ROOT, "docs", "configuration.md");

type Def = {
  type: string;
  shape?: Record<string, { _zod: { def: Def } }>;
  innerType?: { _zod: { def: Def } };
};

/** Every leaf key path of the schema, e.g. `email.smtp.host`. */
function schemaKeyPaths(def: Def = configSchema._zod.def as unknown as Def, prefix: string[] = []): string[] {
  if ((def.type === "default" || def.type === "prefault" || def.type === "optional") && def.innerType) {
    return schemaKeyPaths(def.innerType._zod.def, prefix);
  }
  if (def.type === "object" && def.shape) {
    return Object.entries(def.shape).flatMap(([k, v]) => schemaKeyPaths(v._zod.def, [...prefix, k]));
  }
  return [prefix.join(".")];
}

describe("loadConfig without a file", () => {
  it("gives the development defaults", () => {
    const cfg = loadConfig(undefined, {});
    expect(cfg.server_name).toBe("localhost");
    expect(cfg.listen).toEqual({ host: "127.0.0.1", port: 8090 });
    expect(cfg.public_base_url).toBe("http://127.0.0.1:8090");
    expect(cfg.database).toEqual({ sqlite: { path: "./data/seraph.db" } });
    expect(cfg.signing_key_path).toBe("./data/signing.key");
    expect(cfg.log.level).toBe("info");
    expect(cfg.http).toEqual({
      max_body_bytes: 512 * 1024,
      trusted_proxies: [],
      request_timeout_seconds: 30,
      connection_timeout_seconds: 90,
      max_connections: 1000,
    });
    expect(cfg.email).toEqual({
      from: "Seraph <noreply@localhost>",
      templates_dir: resolve(PACKAGE_ROOT, "templates"),
      default_brand: "matrix-org",
      outbox_dir: "./data/outbox",
      web_client_location: "https://app.element.io",
      web_client_allowlist: [],
      brands: {},
      show_requester_ip: false,
      avatar_media_servers: [],
      smtp: undefined,
    });
    expect(cfg.email.smtp).toBeUndefined();
    expect(cfg.invites).toEqual({
      lifetime_days: 365,
      username_obfuscate_characters: 3,
      domain_obfuscate_characters: 3,
    });
    expect(cfg.v1).toEqual({ enabled: true, enable_bind: false });
    expect(cfg.auth).toEqual({ allow_query_token: true });
    expect(cfg.accounts).toEqual({ token_lifetime_seconds: 0, homeserver_allowlist: [] });
    expect(cfg.terms).toEqual({});
    expect(cfg.federation).toEqual({
      ip_allowlist: [],
      ip_denylist: [],
      verify_certificates: true,
      connect_timeout_ms: 5000,
      request_timeout_ms: 10000,
    });
    expect(cfg.rate_limit).toMatchObject({
      enabled: true,
      register_per_minute: 10,
      authenticated_per_minute: 600,
      store_invite_per_minute: 30,
      request_token_per_minute: 30,
      invites_per_address: { burst: 5, per_hour: 12 },
      invites_per_sender: { burst: 10, per_hour: 60 },
      email_per_address: { burst: 5, per_hour: 12 },
      sms_per_number: { burst: 5, per_hour: 1 },
      sms_per_country: { burst: 50, per_hour: 60 },
    });
    expect(cfg.validation).toEqual({
      session_lifetime_seconds: 86400,
      max_token_attempts: 5,
      next_link_allowlist: [],
      confirm_link_with_button: false,
    });
    expect(cfg.lookup).toEqual({
      max_addresses: 10000,
      pepper_rotation_days: 0,
      previous_pepper_grace_seconds: 3600,
      rehash_batch_size: 1000,
      maintenance_interval_seconds: 10,
      rotation_settle_seconds: 30,
      allow_plaintext: true,
      hash_index: "memory",
    });
    expect(cfg.onbind).toEqual({
      max_attempts: 100,
      max_age_hours: 72,
      initial_backoff_seconds: 2,
      max_backoff_seconds: 3600,
      poll_interval_ms: 2000,
      lease_seconds: 120,
    });
  });

  it("ignores the process environment when given an explicit one", () => {
    expect(loadConfig(undefined, { PATH: "/bin", HOME: "/root" })).toEqual(loadConfig(undefined, {}));
  });
});

describe("loadConfig with a YAML file", () => {
  it("reads values and keeps the defaults of keys it does not set", () => {
    const path = tempFile(`
server_name: id.example.org
listen:
  port: 9000
database:
  sqlite:
    path: /var/lib/seraph/seraph.db
email:
  from: Example <noreply@example.org>
  smtp:
    host: smtp.example.org
    port: 465
    tls: tls
    username: seraph
    password: secret
federation:
  ip_denylist: [198.51.100.0/24]
rate_limit:
  enabled: false
`);
    const cfg = loadConfig(path, {});
    expect(cfg.server_name).toBe("id.example.org");
    expect(cfg.listen).toEqual({ host: "127.0.0.1", port: 9000 });
    expect(cfg.database.sqlite.path).toBe("/var/lib/seraph/seraph.db");
    expect(cfg.email.from).toBe("Example <noreply@example.org>");
    expect(cfg.email.smtp).toEqual({
      host: "smtp.example.org",
      port: 465,
      tls: "tls",
      username: "seraph",
      password: "secret",
      verify_certificates: true,
    });
    expect(cfg.email.outbox_dir).toBe("./data/outbox");
    expect(cfg.federation.ip_denylist).toEqual(["198.51.100.0/24"]);
    expect(cfg.federation.verify_certificates).toBe(true);
    expect(cfg.rate_limit.enabled).toBe(false);
    expect(cfg.rate_limit.register_per_minute).toBe(10);
    expect(cfg.public_base_url).toBe("http://127.0.0.1:9000");
  });

  it("treats an empty file as all defaults", () => {
    expect(loadConfig(tempFile(""), {})).toEqual(loadConfig(undefined, {}));
    expect(loadConfig(tempFile("# only a comment\n"), {})).toEqual(loadConfig(undefined, {}));
  });

  it("keeps relative paths as written (they are relative to the working directory)", () => {
    const cfg = loadConfig(
      tempFile("signing_key_path: keys/signing.key\nemail:\n  templates_dir: tpl\n"),
      {},
    );
    expect(cfg.signing_key_path).toBe("keys/signing.key");
    expect(cfg.email.templates_dir).toBe("tpl");
  });

  it("reports a missing file, invalid YAML and a non-mapping document", () => {
    const missing = join(dir, "does-not-exist.yaml");
    expect(configError(() => loadConfig(missing, {}))).toContain(`cannot read config file ${missing}`);
    expect(configError(() => loadConfig(tempFile("listen: [unclosed\n"), {}))).toContain("not valid YAML");
    expect(configError(() => loadConfig(tempFile("- a\n- b\n"), {}))).toContain("must be a YAML mapping");
    expect(configError(() => loadConfig(tempFile("just text\n"), {}))).toContain("must be a YAML mapping");
  });

  it("rejects a section left empty (null)", () => {
    expect(configError(() => loadConfig(tempFile("terms:\n  # path: x\n"), {}))).toContain("terms");
  });
});

describe("environment overrides", () => {
  it("reads numbers, booleans and lists as YAML", () => {
    const cfg = loadConfig(undefined, {
      SERAPH_LISTEN__PORT: "8091",
      SERAPH_V1__ENABLED: "false",
      SERAPH_AUTH__ALLOW_QUERY_TOKEN: "false",
      SERAPH_FEDERATION__IP_DENYLIST: "[10.0.0.0/8, '::1/128']",
      SERAPH_HTTP__TRUSTED_PROXIES: "[127.0.0.1]",
      SERAPH_ACCOUNTS__TOKEN_LIFETIME_SECONDS: "3600",
    });
    expect(cfg.listen.port).toBe(8091);
    expect(cfg.v1.enabled).toBe(false);
    expect(cfg.auth.allow_query_token).toBe(false);
    expect(cfg.federation.ip_denylist).toEqual(["10.0.0.0/8", "::1/128"]);
    expect(cfg.http.trusted_proxies).toEqual(["127.0.0.1"]);
    expect(cfg.accounts.token_lifetime_seconds).toBe(3600);
    expect(cfg.public_base_url).toBe("http://127.0.0.1:8091");
  });

  it("creates a nested section that the file does not have", () => {
    const cfg = loadConfig(undefined, {
      SERAPH_EMAIL__SMTP__HOST: "mail.example.org",
      SERAPH_EMAIL__SMTP__PORT: "587",
    });
    expect(cfg.email.smtp).toEqual({
      host: "mail.example.org",
      port: 587,
      tls: "starttls",
      verify_certificates: true,
    });
    expect(cfg.email.from).toBe("Seraph <noreply@localhost>");
  });

  it("wins over the file and merges with its other keys", () => {
    const path = tempFile(`
listen:
  host: 0.0.0.0
  port: 9000
email:
  smtp:
    host: smtp.example.org
    username: seraph
`);
    const cfg = loadConfig(path, {
      SERAPH_LISTEN__PORT: "9001",
      SERAPH_EMAIL__SMTP__PASSWORD: "'123456'",
      SERAPH_EMAIL__SMTP__VERIFY_CERTIFICATES: "true",
    });
    expect(cfg.listen).toEqual({ host: "0.0.0.0", port: 9001 });
    expect(cfg.email.smtp).toMatchObject({
      host: "smtp.example.org",
      username: "seraph",
      password: "123456",
      verify_certificates: true,
    });
  });

  it("sets top-level keys and keeps plain text as a string", () => {
    const cfg = loadConfig(undefined, {
      SERAPH_SERVER_NAME: "id.example.org",
      SERAPH_PUBLIC_BASE_URL: "https://id.example.org/",
      SERAPH_EMAIL__SMTP__HOST: "smtp.example.org",
      SERAPH_EMAIL__SMTP__PASSWORD: "",
    });
    expect(cfg.server_name).toBe("id.example.org");
    expect(cfg.public_base_url).toBe("https://id.example.org");
    expect(cfg.email.smtp?.password).toBe("");
  });

  it("does not treat SERAPH_CONFIG as a key", () => {
    expect(loadConfig(undefined, { SERAPH_CONFIG: "/nowhere.yaml" })).toEqual(loadConfig(undefined, {}));
  });
});

describe("configuration errors", () => {
  it("names an unknown key in the file", () => {
    const msg = configError(() => loadConfig(tempFile("listen:\n  prot: 80\n"), {}));
    expect(msg).toContain("listen: unknown key(s) prot");
    const top = configError(() => loadConfig(tempFile("sever_name: x\n"), {}));
    expect(top).toContain("unknown key(s) sever_name");
  });

  it("names an unknown key that came from the environment", () => {
    expect(configError(() => loadConfig(undefined, { SERAPH_BOGUS: "1" }))).toContain("unknown key(s) bogus");
    expect(configError(() => loadConfig(undefined, { SERAPH_EMAIL__SMPT__HOST: "x" }))).toContain(
      "email: unknown key(s) smpt",
    );
  });

  it("names the key path of a wrong type in the file, without an env var", () => {
    const msg = configError(() => loadConfig(tempFile("listen:\n  port: eighty\n"), {}));
    expect(msg).toContain("listen.port:");
    expect(msg).not.toContain("SERAPH_");
    const nested = configError(() =>
      loadConfig(tempFile("email:\n  smtp:\n    host: h\n    tls: yes\n"), {}),
    );
    expect(nested).toContain("email.smtp.tls");
  });

  it("names the key path and the variable of a wrong type from the environment", () => {
    const msg = configError(() => loadConfig(undefined, { SERAPH_LISTEN__PORT: "eighty" }));
    expect(msg).toContain("listen.port (from SERAPH_LISTEN__PORT)");
    const bool = configError(() => loadConfig(undefined, { SERAPH_V1__ENABLED: "yes" }));
    expect(bool).toContain("v1.enabled (from SERAPH_V1__ENABLED)");
    const secret = configError(() =>
      loadConfig(undefined, { SERAPH_EMAIL__SMTP__HOST: "h", SERAPH_EMAIL__SMTP__PASSWORD: "123456" }),
    );
    expect(secret).toContain("email.smtp.password (from SERAPH_EMAIL__SMTP__PASSWORD)");
  });

  it("reports values out of range and a missing required key", () => {
    expect(configError(() => loadConfig(undefined, { SERAPH_LISTEN__PORT: "70000" }))).toContain(
      "listen.port (from SERAPH_LISTEN__PORT)",
    );
    expect(configError(() => loadConfig(tempFile("http:\n  max_body_bytes: 10\n"), {}))).toContain(
      "http.max_body_bytes",
    );
    expect(configError(() => loadConfig(undefined, { SERAPH_EMAIL__SMTP__PORT: "587" }))).toContain(
      "email.smtp.host",
    );
  });

  it("lists every problem at once", () => {
    const msg = configError(() =>
      loadConfig(tempFile("log:\n  level: loud\nfederation:\n  connect_timeout_ms: 1\n"), {}),
    );
    expect(msg).toContain("log.level");
    expect(msg).toContain("federation.connect_timeout_ms");
  });
});

describe("public_base_url", () => {
  const url = (tree: Record<string, unknown>) => resolveConfig(tree).public_base_url;

  it("is derived from listen when not set", () => {
    expect(url({})).toBe("http://127.0.0.1:8090");
    expect(url({ listen: { host: "10.1.2.3", port: 9000 } })).toBe("http://10.1.2.3:9000");
    expect(url({ listen: { host: "id.internal" } })).toBe("http://id.internal:8090");
    expect(url({ listen: { host: "::1" } })).toBe("http://[::1]:8090");
  });

  it("uses 127.0.0.1 for the wildcard addresses", () => {
    expect(url({ listen: { host: "0.0.0.0", port: 8100 } })).toBe("http://127.0.0.1:8100");
    expect(url({ listen: { host: "::" } })).toBe("http://127.0.0.1:8090");
  });

  it("strips trailing slashes from a configured URL", () => {
    expect(url({ public_base_url: "https://id.example.org/" })).toBe("https://id.example.org");
    expect(url({ public_base_url: "https://example.org/identity//" })).toBe("https://example.org/identity");
    expect(url({ public_base_url: "https://id.example.org" })).toBe("https://id.example.org");
  });

  it("accepts only http and https URLs", () => {
    expect(configError(() => url({ public_base_url: "ftp://id.example.org" }))).toContain("public_base_url");
    expect(configError(() => url({ public_base_url: "id.example.org" }))).toContain("public_base_url");
  });
});

describe("config.example.yaml", () => {
  const text = readFileSync(EXAMPLE, "utf8");

  it("loads and equals the defaults", () => {
    const cfg = loadConfig(EXAMPLE, {});
    expect(cfg.listen).toEqual({ host: "127.0.0.1", port: 8090 });
    expect(cfg).toEqual(loadConfig(undefined, {}));
  });

  it("mentions every key of the schema", () => {
    const lines = text.split("\n");
    for (const path of schemaKeyPaths()) {
      const leaf = path.split(".").pop()!;
      const found = lines.some((l) => new RegExp(`^\\s*#?${leaf}:`).test(l));
      expect(found, `config.example.yaml lacks ${path}`).toBe(true);
    }
  });

  it("still loads with every optional setting uncommented", () => {
    // "#key: value" lines are settings; "# text" lines are explanations.
    const uncommented = text.replace(/^(\s*)#(?=[^\s#])/gm, "$1");
    const cfg = loadConfig(tempFile(uncommented), {});
    expect(cfg.public_base_url).toMatch(/^https:\/\//);
    expect(cfg.email.smtp?.host).toBeTruthy();
    expect(cfg.email.smtp?.port).toBe(25);
    expect(cfg.terms.path).toBeTruthy();
    expect(cfg.database.postgres?.pool_size).toBe(10);
  });
});

describe("docs/configuration.md", () => {
  it("documents every key of the schema", () => {
    const docs = readFileSync(DOCS, "utf8");
    for (const path of schemaKeyPaths()) {
      expect(docs.includes(`\`${path}\``), `docs/configuration.md lacks \`${path}\``).toBe(true);
    }
  });
});
