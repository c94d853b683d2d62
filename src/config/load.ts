import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { PACKAGE_TEMPLATES_DIR } from "../core/package-root.js";
import { type Config, configSchema } from "./schema.js";

/** The configuration with derived defaults filled in (base URL, template folder). */
type SmtpSettings = NonNullable<Config["email"]["smtp"]> & { port: number };

export type ResolvedConfig = Config & {
  public_base_url: string;
  email: Omit<Config["email"], "smtp"> & { templates_dir: string; smtp?: SmtpSettings | undefined };
  sms: Config["sms"] & { outbox_dir: string };
};

/** A configuration problem a person can act on: which key, what was expected. */
export class ConfigError extends Error {}

export const ENV_PREFIX = "SERAPH_";

type Tree = Record<string, unknown>;

/**
 * Applies `SERAPH_<PATH>` environment variables, where path segments are joined by `__`:
 * `SERAPH_LISTEN__PORT=8091`, `SERAPH_EMAIL__SMTP__HOST=mail`. Values are read as YAML scalars or
 * flow collections, so `8091` is a number, `true` a boolean and `[a, b]` a list.
 */
export function applyEnvOverrides(tree: Tree, env: NodeJS.ProcessEnv): string[] {
  const applied: string[] = [];
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || raw === undefined) continue;
    if (name === "SERAPH_CONFIG") continue;
    const path = name.slice(ENV_PREFIX.length).toLowerCase().split("__");
    if (path.some((p) => p === "")) continue;
    let node: Tree = tree;
    for (const segment of path.slice(0, -1)) {
      const next = node[segment];
      if (typeof next !== "object" || next === null || Array.isArray(next)) node[segment] = {};
      node = node[segment] as Tree;
    }
    let value: unknown;
    try {
      value = parseYaml(raw);
    } catch {
      value = raw;
    }
    node[path[path.length - 1]!] = value ?? raw;
    applied.push(name);
  }
  return applied;
}

function describeIssue(issue: z.core.$ZodIssue, envNames: string[]): string {
  const key = issue.path.join(".") || "(top level)";
  const envName = ENV_PREFIX + issue.path.map(String).join("__").toUpperCase();
  const fromEnv = envNames.includes(envName) ? ` (from ${envName})` : "";
  if (issue.code === "unrecognized_keys") {
    const where = issue.path.length ? `${key}: ` : "";
    return `${where}unknown key(s) ${issue.keys.join(", ")}; see docs/configuration.md`;
  }
  return `${key}${fromEnv}: ${issue.message}`;
}

/** Validates a raw configuration tree (after env overrides) and fills derived defaults. */
export function resolveConfig(tree: Tree, envNames: string[] = []): ResolvedConfig {
  const parsed = configSchema.safeParse(tree);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  - ${describeIssue(i, envNames)}`);
    throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
  }
  const cfg = parsed.data;
  if (cfg.accounts.homeserver_allowlist.length > 0 && cfg.v1.enabled) {
    throw new ConfigError(
      "invalid configuration:\n  - accounts.homeserver_allowlist: the unauthenticated v1 API would bypass it; set v1.enabled: false",
    );
  }
  const host = cfg.listen.host.includes(":") ? `[${cfg.listen.host}]` : cfg.listen.host;
  const publicHost = host === "0.0.0.0" || host === "[::]" ? "127.0.0.1" : host;
  const public_base_url = (cfg.public_base_url ?? `http://${publicHost}:${cfg.listen.port}`).replace(
    /\/+$/,
    "",
  );
  const templates_dir = cfg.email.templates_dir ?? PACKAGE_TEMPLATES_DIR;
  const sms = { ...cfg.sms, outbox_dir: cfg.sms.outbox_dir ?? cfg.email.outbox_dir };
  const smtp = cfg.email.smtp && {
    ...cfg.email.smtp,
    port: cfg.email.smtp.port ?? { tls: 465, starttls: 587, none: 25 }[cfg.email.smtp.tls],
  };
  return { ...cfg, public_base_url, email: { ...cfg.email, templates_dir, smtp }, sms };
}

/**
 * Loads the configuration: the YAML file at `path` (optional), then environment overrides, then validation.
 * Without a file every key has its development default (127.0.0.1:8090, SQLite under ./data).
 */
export function loadConfig(path: string | undefined, env: NodeJS.ProcessEnv = process.env): ResolvedConfig {
  let tree: Tree = {};
  if (path !== undefined) {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (e) {
      throw new ConfigError(`cannot read config file ${path}: ${(e as Error).message}`);
    }
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch (e) {
      throw new ConfigError(`config file ${path} is not valid YAML: ${(e as Error).message}`);
    }
    if (doc !== null && doc !== undefined) {
      if (typeof doc !== "object" || Array.isArray(doc)) {
        throw new ConfigError(`config file ${path} must be a YAML mapping of keys to values`);
      }
      tree = doc as Tree;
    }
  }
  const envNames = applyEnvOverrides(tree, env);
  return resolveConfig(tree, envNames);
}
