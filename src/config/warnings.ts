import type { Config } from "./schema.js";

/** A setting that works but puts users at risk; logged as a warning at start. */
export interface ConfigWarning {
  /** The configuration key, e.g. `email.smtp.tls`. */
  key: string;
  message: string;
}

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

function plainHttpWithCredentials(url: string, hasToken: boolean): boolean {
  try {
    const u = new URL(url);
    return u.protocol === "http:" && (hasToken || u.username !== "" || u.password !== "");
  } catch {
    return false;
  }
}

/**
 * The dangerous settings of a configuration: credentials sent in clear, certificates not checked, links in
 * emails over plain http. Pure, so that it can be tested without starting anything.
 */
export function configWarnings(config: Config): ConfigWarning[] {
  const out: ConfigWarning[] = [];
  const smtp = config.email.smtp;
  if (smtp && smtp.tls === "none" && smtp.username !== undefined) {
    out.push({
      key: "email.smtp.tls",
      message:
        "email.smtp.tls is none while email.smtp.username is set: the SMTP credentials are sent in clear; use starttls or tls",
    });
  }
  const http = config.sms.http;
  if (http && plainHttpWithCredentials(http.url, http.bearer_token !== undefined)) {
    out.push({
      key: "sms.http.url",
      message: "sms.http.url is plain http:// and carries credentials: they are sent in clear; use https://",
    });
  }
  // (sms.twilio.api_base_url must be https already, except on loopback: the schema refuses it.)
  if (!config.federation.verify_certificates) {
    out.push({
      key: "federation.verify_certificates",
      message:
        "federation.verify_certificates is false: anyone on the network path can impersonate a homeserver (OpenID tokens, signing keys, onbind)",
    });
  }
  const base = config.public_base_url;
  if (base !== undefined) {
    const u = new URL(base);
    if (u.protocol !== "https:" && !LOOPBACK_HOSTS.has(u.hostname)) {
      out.push({
        key: "public_base_url",
        message:
          "public_base_url is not https: the validation and invite links in emails (which carry tokens) travel in clear",
      });
    }
  }
  if (config.federation.ip_allowlist.length) {
    out.push({
      key: "federation.ip_allowlist",
      message: `federation.ip_allowlist lets homeserver requests reach ${config.federation.ip_allowlist.join(", ")} (SSRF guard relaxed)`,
    });
  }
  if (smtp && smtp.tls !== "none" && !smtp.verify_certificates) {
    out.push({
      key: "email.smtp.verify_certificates",
      message: "email.smtp.verify_certificates is false: the SMTP connection can be intercepted",
    });
  }
  if (!config.rate_limit.enabled) {
    out.push({
      key: "rate_limit.enabled",
      message: "rate_limit.enabled is false: no request is ever limited",
    });
  }
  if (config.v1.enable_bind) {
    out.push({
      key: "v1.enable_bind",
      message: "v1.enable_bind is true: unauthenticated v1 binds are accepted",
    });
  }
  if (config.metrics.enabled && !LOOPBACK_HOSTS.has(config.metrics.host)) {
    out.push({
      key: "metrics.host",
      message: `metrics listen on ${config.metrics.host}: keep /metrics off public interfaces`,
    });
  }
  return out;
}
