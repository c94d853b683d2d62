/** What `seraph serve` prints when it is up: where it listens, what it uses, and settings to worry about. */
import { isIP } from "node:net";
import { resolve } from "node:path";
import type { ResolvedConfig } from "../config/load.js";
import { configWarnings } from "../config/warnings.js";
import { safeUrl } from "../doctor/database.js";

export interface Listeners {
  /** The API's bound base URL (from fastify). */
  api: string;
  metrics?: string | undefined;
}

function _isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || (isIP(h) === 4 && h.startsWith("127."));
}

export function startupLines(cfg: ResolvedConfig, listeners: Listeners, version: string): string[] {
  const lines = [
    `Seraph listening on ${listeners.api} (server_name ${cfg.server_name}, public URL ${cfg.public_base_url}, version ${version})`,
  ];
  if (listeners.metrics) lines.push(`Metrics on ${listeners.metrics}`);
  const pg = cfg.database.postgres;
  lines.push(
    `Database: ${pg ? `PostgreSQL ${safeUrl(pg.url)}` : `SQLite ${resolve(cfg.database.sqlite.path)}`}`,
  );
  lines.push(`Signing key: ${resolve(cfg.signing_key_path)}`);
  const smtp = cfg.email.smtp;
  lines.push(
    smtp
      ? `Mail: SMTP ${smtp.host}:${smtp.port} (${{ none: "no TLS", starttls: "STARTTLS", tls: "TLS" }[smtp.tls]}) from ${cfg.email.from}`
      : `No SMTP configured: emails are written to ${resolve(cfg.email.outbox_dir)}`,
  );
  if (cfg.sms.provider === "log")
    lines.push(`SMS provider "log": text messages are written to ${resolve(cfg.sms.outbox_dir, "sms.log")}`);
  else lines.push(`SMS provider "${cfg.sms.provider}"`);
  return lines;
}

/** Settings that are fine in a test rig and wrong in production, one warning each. */
export function dangerWarnings(cfg: ResolvedConfig): string[] {
  return configWarnings(cfg).map((w) => `Warning: ${w.message}`);
}
