import { dirname, join } from "node:path";
import { stringify } from "yaml";
import { SydentConfig } from "./sydent-config.js";

type Tree = { [k: string]: Tree | string | number | boolean | string[] };

function set(tree: Tree, path: string, value: Tree[string]): void {
  const parts = path.split(".");
  let node = tree;
  for (const p of parts.slice(0, -1)) {
    node[p] ??= {};
    node = node[p] as Tree;
  }
  node[parts[parts.length - 1]!] = value;
}

/** sydent's ConfigParser.getboolean. */
function bool(v: string): boolean | undefined {
  const s = v.toLowerCase();
  if (["1", "yes", "true", "on"].includes(s)) return true;
  if (["0", "no", "false", "off"].includes(s)) return false;
  return undefined;
}

function int(v: string): number | undefined {
  return /^-?\d+$/.test(v) ? Number(v) : undefined;
}

/** A comma-separated sydent IP list as CIDRs (a bare address becomes /32 or /128). */
function cidrs(v: string): string[] {
  return v
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => (s.includes("/") ? s : s.includes(":") ? `${s}/128` : `${s}/32`));
}

const LOG_LEVELS: Record<string, string> = {
  CRITICAL: "fatal",
  FATAL: "fatal",
  ERROR: "error",
  WARNING: "warn",
  WARN: "warn",
  INFO: "info",
  DEBUG: "debug",
  NOTSET: "info",
};

const TLS: Record<string, string> = { "0": "none", SSL: "tls", TLS: "tls", STARTTLS: "starttls" };

/** Options without a Seraph equivalent, and what to do instead. */
const NO_EQUIVALENT: Record<string, string> = {
  "log.path": "Seraph logs to standard output; redirect it or let systemd/journald keep it",
  "pidfile.path": "run Seraph under a supervisor (systemd, a container) instead of a pid file",
  sentry_dsn: "no Sentry integration; use the logs and /metrics",
  delete_tokens_on_bind:
    "Seraph always deletes invites once the homeserver accepted their onbind (sydent's default)",
  "internalapi.http.bind_address": "no internal API; bind through the v2 API with an account token",
  "internalapi.http.port": "no internal API; bind through the v2 API with an account token",
  "replication.https.certfile": "no replication between identity servers",
  "replication.https.cacert": "no replication between identity servers",
  "replication.https.bind_address": "no replication between identity servers",
  "replication.https.port": "no replication between identity servers",
  obey_x_forwarded_for:
    "list your reverse proxies in http.trusted_proxies (Seraph trusts X-Forwarded-For only from them)",
  verify_response_template: "put verify_response_template.html (eta) in the brand folder",
  "email.subject": "subjects come from verification.subject.eta in the brand folder",
  "email.invite.subject": "subjects come from invite.subject.eta in the brand folder",
  "email.invite.subject_space":
    "subjects come from invite.subject.eta in the brand folder (room_type is a variable)",
  "email.template": "use brand folders under email.templates_dir",
  "email.invite_template": "use brand folders under email.templates_dir",
  "email.ratelimit_sender.burst":
    "Seraph limits invites per address and per sender: rate_limit.invites_per_sender",
  "email.ratelimit_sender.rate_hz":
    "Seraph limits invites per address and per sender: rate_limit.invites_per_sender",
  "email.third_party_invite_homeserver_blocklist": "no invite blocklists",
  "email.third_party_invite_room_blocklist": "no invite blocklists",
  "email.third_party_invite_keyword_blocklist": "no invite blocklists",
  username: "sydent speaks OpenMarket; set sms.provider (twilio or http) and its settings",
  password: "sydent speaks OpenMarket; set sms.provider (twilio or http) and its settings",
  "ed25519.signingkey":
    "`seraph import-sydent` writes this key into signing_key_path (never into a config file)",
  "db.file": "Seraph has its own database: `seraph import-sydent` copies sydent's into database.sqlite.path",
};

/**
 * Translates a `sydent.conf` into a Seraph YAML configuration: every option with a Seraph equivalent becomes
 * a key; the others are listed as YAML comments with what to do instead.
 */
export function configFromSydent(path: string): string {
  const conf = SydentConfig.read(path);
  const out: Tree = {};
  const notes: string[] = [];
  const here = dirname(conf.path);
  const handled = new Set<string>();
  const g = (section: string, key: string) => {
    handled.add(key.toLowerCase());
    return conf.get(section, key);
  };
  const note = (section: string, key: string, why: string) => {
    const v = conf.get(section, key);
    if (v === undefined) return;
    const shown = /password|signingkey/i.test(key) ? "(secret, not shown)" : v;
    notes.push(`[${section}] ${key} = ${shown}: ${why}`);
  };

  // [general]
  const serverName = g("general", "server.name");
  if (serverName) set(out, "server_name", serverName);
  else
    notes.push(
      "[general] server.name is unset: sydent used the host name; set server_name to the name it signed with",
    );
  const level = g("general", "log.level");
  if (level) set(out, "log.level", LOG_LEVELS[level.toUpperCase()] ?? "info");
  if (g("general", "terms.path")) set(out, "terms.path", conf.resolvePath("general", "terms.path")!);
  const limit = int(g("general", "address_lookup_limit") ?? "");
  if (limit !== undefined) set(out, "lookup.max_addresses", limit);
  if (g("general", "templates.path")) {
    const src = conf.resolvePath("general", "templates.path")!;
    const dest = `${src.replace(/\/+$/, "")}-seraph`;
    set(out, "email.templates_dir", dest);
    notes.push(
      `[general] templates.path = ${src}: sydent's Jinja templates do not work as is; convert them with \`seraph templates from-sydent ${src} ${dest}\` (email.templates_dir points there)`,
    );
  }
  const brand = g("general", "brand.default");
  if (brand) set(out, "email.default_brand", brand);
  const promPort = int(g("general", "prometheus_port") ?? "");
  if (promPort !== undefined) {
    set(out, "metrics.enabled", true);
    set(out, "metrics.port", promPort);
    const addr = g("general", "prometheus_addr");
    if (addr) set(out, "metrics.host", addr);
  }
  const v1Assoc = bool(g("general", "enable_v1_associations") ?? "");
  if (v1Assoc !== undefined) set(out, "v1.enable_bind", v1Assoc);
  const v1Access = bool(g("general", "enable_v1_access") ?? "");
  if (v1Access !== undefined) set(out, "v1.enabled", v1Access);
  const deny = g("general", "ip.blacklist");
  if (deny) set(out, "federation.ip_denylist", cidrs(deny));
  const allow = g("general", "ip.whitelist");
  if (allow) set(out, "federation.ip_allowlist", cidrs(allow));
  const hsAllow = g("general", "homeserver_allow_list");
  if (hsAllow) {
    set(
      out,
      "accounts.homeserver_allowlist",
      hsAllow
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
    );
  }

  // [db]: Seraph's own database next to sydent's.
  const dbFile = conf.resolvePath("db", "db.file");
  handled.add("db.file");
  set(out, "database.sqlite.path", join(dbFile ? dirname(dbFile) : here, "seraph.db"));
  set(out, "signing_key_path", join(here, "seraph-signing.key"));
  handled.add("ed25519.signingkey");

  // [http]
  const host = g("http", "clientapi.http.bind_address");
  if (host) set(out, "listen.host", host);
  const port = int(g("http", "clientapi.http.port") ?? "");
  if (port !== undefined) set(out, "listen.port", port);
  const base = g("http", "client_http_base");
  if (base) set(out, "public_base_url", base);
  const verify = bool(g("http", "federation.verifycerts") ?? "");
  if (verify !== undefined) set(out, "federation.verify_certificates", verify);

  // [email]
  const hostname = g("email", "email.hostname");
  if (hostname) set(out, "email.hostname", hostname);
  const from = g("email", "email.from");
  if (from) set(out, "email.from", from.replace("{hostname}", hostname ?? serverName ?? "localhost"));
  const smtpHost = g("email", "email.smtphost");
  if (smtpHost) {
    set(out, "email.smtp.host", smtpHost);
    const smtpPort = int(g("email", "email.smtpport") ?? "");
    if (smtpPort !== undefined) set(out, "email.smtp.port", smtpPort);
    const tls = g("email", "email.tlsmode") ?? "0";
    set(out, "email.smtp.tls", TLS[tls.toUpperCase()] ?? "starttls");
    const user = g("email", "email.smtpusername");
    if (user) set(out, "email.smtp.username", user);
    const pass = g("email", "email.smtppassword");
    if (pass) set(out, "email.smtp.password", pass);
  }
  for (const k of ["email.smtpport", "email.tlsmode", "email.smtpusername", "email.smtppassword"])
    handled.add(k);
  const web = g("email", "email.default_web_client_location");
  if (web) set(out, "email.web_client_location", web);
  const userChars = int(g("email", "email.third_party_invite_username_obfuscate_characters") ?? "");
  if (userChars !== undefined) set(out, "invites.username_obfuscate_characters", userChars);
  const domainChars = int(g("email", "email.third_party_invite_domain_obfuscate_characters") ?? "");
  if (domainChars !== undefined) set(out, "invites.domain_obfuscate_characters", domainChars);

  // [sms]
  const body = g("sms", "bodytemplate");
  if (body) set(out, "sms.body_template", body);
  for (const [prefix, target] of [
    ["msisdn.ratelimit", "rate_limit.sms_per_number"],
    ["country.ratelimit", "rate_limit.sms_per_country"],
  ] as const) {
    const burst = int(g("sms", `${prefix}.burst`) ?? "");
    const hz = Number(g("sms", `${prefix}.rate_hz`) ?? Number.NaN);
    if (burst !== undefined && Number.isFinite(hz)) {
      set(out, `${target}.burst`, burst);
      set(out, `${target}.per_hour`, hz * 3600);
    }
  }
  const sms = conf.ownKeys("sms");
  for (const k of sms.filter((k) => k.startsWith("originators.") || k.startsWith("smsrule."))) {
    handled.add(k);
    note(
      "sms",
      k,
      k.startsWith("originators.")
        ? `becomes sms.originators."${k.slice(12)}": {type, text} (one originator per key)`
        : "becomes sms.country_rules, keyed by ISO region (GB), not calling code",
    );
  }

  // Everything else that is set: known to have no equivalent, or unknown.
  for (const section of ["DEFAULT", ...conf.sectionNames]) {
    for (const key of conf.ownKeys(section)) {
      const why = NO_EQUIVALENT[key];
      if (why !== undefined) {
        if (section === "DEFAULT" && conf.sectionNames.some((s) => conf.ownKeys(s).includes(key))) continue;
        note(section, key, why);
      } else if (!handled.has(key)) {
        note(section, key, "not known to this converter: check docs/configuration.md");
      }
    }
  }

  const header = [
    `# Seraph configuration translated from ${conf.path} by \`seraph config from-sydent\`.`,
    "# Check it, then run `seraph import-sydent` (docs/migrating-from-sydent.md).",
    "",
  ].join("\n");
  const footer = notes.length
    ? `\n# sydent options without a Seraph key (what to do instead):\n${[...new Set(notes)].map((n) => `#   ${n.replace(/\n/g, " ")}`).join("\n")}\n`
    : "";
  return `${header}${stringify(out)}${footer}`;
}
