/**
 * Email: connects to the SMTP server as Seraph would (EHLO, STARTTLS or implicit TLS with certificate
 * verification, AUTH) without sending (nodemailer's `verify()`), or sends one test message through the real
 * mailer and templates with `--send-test-mail ADDRESS`. Without SMTP: where the outbox is, and that it is
 * writable.
 */
import { accessSync, constants, existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import nodemailer from "nodemailer";
import type { ResolvedConfig } from "../config/load.js";
import { NO_LOG } from "../core/logger.js";
import { createMailer, EmailSendError } from "../delivery/index.js";
import { smtpConnectionOptions } from "../delivery/mailer.js";
import { errorText, type Group, type Report } from "./report.js";

function writableFolder(path: string): boolean {
  let dir = resolve(path);
  while (!existsSync(dir)) dir = dirname(dir);
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

/** Which SMTP stage an error belongs to, and what to do about it. */
function classify(e: unknown, smtp: NonNullable<ResolvedConfig["email"]["smtp"]>) {
  const err = e as { code?: string; message?: string; responseCode?: number };
  const msg = err.message ?? "";
  const certificate = /certificate|self.signed|CERT_|unable to verify/i.test(msg + (err.code ?? ""));
  if (certificate)
    return {
      stage: "tls" as const,
      fix: `the certificate of ${smtp.host} is not trusted or not for that name: use the name on its certificate as email.smtp.host, install the CA (NODE_EXTRA_CA_CERTS), or fix the server's certificate`,
    };
  if (err.code === "EAUTH")
    return { stage: "auth" as const, fix: "check email.smtp.username and email.smtp.password" };
  if (err.code === "ETLS" || /STARTTLS/i.test(msg))
    return {
      stage: "tls" as const,
      fix:
        smtp.tls === "starttls"
          ? `${smtp.host}:${smtp.port} does not offer STARTTLS: use tls: tls (port 465) if it speaks implicit TLS`
          : "check email.smtp.tls and email.smtp.port (465 is implicit TLS, 587 STARTTLS)",
    };
  if (err.code === "ESOCKET" && /wrong version number|packet length|ssl/i.test(msg))
    return {
      stage: "tls" as const,
      fix: "the server does not speak TLS on this port: tls: starttls for 587/25, tls: tls for 465",
    };
  if (err.code === "EDNS")
    return { stage: "connect" as const, fix: `email.smtp.host ${smtp.host} does not resolve` };
  return {
    stage: "connect" as const,
    fix: `check email.smtp.host and email.smtp.port, and that a firewall lets this machine reach ${smtp.host}:${smtp.port}`,
  };
}

export async function checkMail(cfg: ResolvedConfig, report: Report, testAddress?: string): Promise<void> {
  const g = report.group("email");
  const smtp = cfg.email.smtp;
  if (!smtp) {
    const dir = resolve(cfg.email.outbox_dir);
    g.warn(
      "delivery",
      `no email.smtp: emails are written to ${dir}, nobody receives them`,
      "set email.smtp (host, port, tls, username, password) in production",
    );
    if (writableFolder(dir)) g.pass("outbox writable", dir);
    else
      g.fail("outbox writable", `${dir} is not writable`, `make ${dir} writable by the user running Seraph`);
  } else {
    await verifySmtp(cfg, smtp, g);
  }
  if (testAddress !== undefined) await sendTestMail(cfg, testAddress, g);
}

async function verifySmtp(
  cfg: ResolvedConfig,
  smtp: NonNullable<ResolvedConfig["email"]["smtp"]>,
  g: Group,
): Promise<void> {
  const target = `${smtp.host}:${smtp.port}`;
  const mode = { none: "no TLS", starttls: "STARTTLS required", tls: "implicit TLS" }[smtp.tls];
  if (smtp.tls === "none" && !isLoopback(smtp.host)) {
    g.warn(
      "encryption",
      `tls: none to ${smtp.host}: mail and the SMTP password cross the network in clear text`,
      "use tls: starttls (587) or tls: tls (465)",
    );
  }
  if (smtp.tls !== "none" && !smtp.verify_certificates) {
    g.warn(
      "certificate check",
      "email.smtp.verify_certificates is false: anyone on the path can read the mail",
      "set verify_certificates: true and give the server a valid certificate",
    );
  }
  // The mailer's own connection settings, one connection, shorter timeouts.
  const transport = nodemailer.createTransport({
    ...smtpConnectionOptions(smtp, cfg.email.hostname),
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 20_000,
  });
  try {
    await transport.verify();
    g.pass("connect + EHLO", target);
    if (smtp.tls !== "none")
      g.pass(
        "TLS",
        `${mode}${smtp.verify_certificates ? ", certificate verified" : ", certificate NOT verified"}`,
      );
    g.pass("AUTH", smtp.username ? `accepted for ${smtp.username}` : "not configured (none sent)");
  } catch (e) {
    const { stage, fix } = classify(e, smtp);
    const detail = `${target} (${mode}): ${errorText(e)}`;
    if (stage === "connect") {
      g.fail("connect + EHLO", detail, fix);
      return;
    }
    g.pass("connect + EHLO", target);
    if (stage === "tls") {
      g.fail("TLS", detail, fix);
      return;
    }
    if (smtp.tls !== "none") g.pass("TLS", mode);
    g.fail("AUTH", detail, fix);
  } finally {
    transport.close();
  }
}

async function sendTestMail(cfg: ResolvedConfig, address: string, g: Group): Promise<void> {
  const mailer = createMailer(cfg.email, NO_LOG);
  try {
    await mailer.send({
      template: "verification",
      to: address,
      vars: {
        token: "123456",
        link: `${cfg.public_base_url}/_matrix/identity/v2/validate/email/submitToken?doctor=test`,
        address,
        ipaddress: "",
        brand: "",
      },
    });
    g.pass(
      "test mail",
      cfg.email.smtp
        ? `a verification email (test values) to ${address} was accepted by ${cfg.email.smtp.host}`
        : `written to the outbox ${resolve(cfg.email.outbox_dir)} (no SMTP configured)`,
    );
  } catch (e) {
    const cause = e instanceof EmailSendError ? (e.cause ?? e) : e;
    g.fail(
      "test mail",
      `${address}: ${errorText(cause)}`,
      e instanceof EmailSendError && e.reason === "invalid_recipient"
        ? "give one bare address such as you@example.org"
        : "see the SMTP checks above; a refused recipient or sender is the server's policy (email.from must be allowed to send)",
    );
  } finally {
    await mailer.close();
  }
}
