/**
 * Outgoing email: renders a template of a brand and hands the message to a pooled SMTP transport, or,
 * without SMTP configured, writes it to an outbox directory as one `.eml` file per message.
 */
import { randomBytes } from "node:crypto";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type * as Nodemailer from "nodemailer";
import type { SendMailOptions, Transporter } from "nodemailer";

import { lazyModule } from "../core/lazy-module.js";
import type { Logger } from "../core/logger.js";
import { type BrandInput, Presentation, printfNamed } from "./brands.js";
import {
  isSingleBareAddress,
  mailboxAddress,
  makeMessageId,
  messageIdHost,
  sanitizeHeaderText,
  subjectHeader,
} from "./mime.js";
import { isTemplateName, type TemplateHelpers, type TemplateName, TemplateStore } from "./templates.js";

export type { TemplateName } from "./templates.js";

export interface SmtpConfig {
  host: string;
  port: number;
  /** `tls`: implicit TLS (port 465); `starttls`: STARTTLS required; `none`: plain text, STARTTLS ignored. */
  tls: "none" | "starttls" | "tls";
  username?: string;
  password?: string;
  /** Verify the server certificate (chain and host name). Keep true in production (CVE-2023-38686). */
  verify_certificates: boolean;
  /** Pooled SMTP connections (`email.smtp.pool_size`, default 5). */
  pool_size?: number | undefined;
}

export interface EmailConfig {
  /** From header, e.g. `Matrix <noreply@example.org>`; also the envelope sender. */
  from: string;
  smtp?: SmtpConfig;
  templates_dir: string;
  default_brand: string;
  /** Used when `smtp` is not set: one `.eml` file per message. */
  outbox_dir: string;
  /** Host part of Message-IDs (and the SMTP EHLO name when set); default: the domain of `from`. */
  hostname?: string;
  /** Brand settings (`email.brands`), over the built-in `matrix-org` and `vector-im`. */
  brands?: Record<string, BrandInput>;
}

export interface OutgoingEmail {
  template: TemplateName;
  brand?: string;
  /** Language of the message (a shipped catalogue); default: the brand's `default_language`. */
  lang?: string | undefined;
  /** One bare address (`user@example.org`). */
  to: string;
  vars: Record<string, string>;
  /** Extra headers for structured templates (e.g. List-Unsubscribe); values must not contain line breaks. */
  headers?: Record<string, string>;
}

export interface Mailer {
  /** Renders and delivers one message. Rejects with {@link EmailSendError} on any failure. */
  send(mail: OutgoingEmail): Promise<void>;
  /** Waits for messages in flight, then closes SMTP connections. Further sends fail. */
  close(): Promise<void>;
}

export type EmailSendErrorReason = "invalid_recipient" | "template" | "delivery" | "closed";

/**
 * Thrown by {@link Mailer.send}. The message never contains template variables, tokens or
 * credentials; the underlying error (if any) is attached as `cause`.
 */
export class EmailSendError extends Error {
  override name = "EmailSendError";
  readonly reason: EmailSendErrorReason;
  constructor(message: string, reason: EmailSendErrorReason = "delivery", options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
  }
}

/** SMTP timeouts (ms): a dead or stalling server must fail a send quickly, not hang a request. */
const SMTP_CONNECTION_TIMEOUT = 5_000;
const SMTP_GREETING_TIMEOUT = 5_000;
const SMTP_SOCKET_TIMEOUT = 20_000;
const SMTP_DNS_TIMEOUT = 5_000;
/** Pooled SMTP connections unless `email.smtp.pool_size` says otherwise. */
const SMTP_DEFAULT_POOL_SIZE = 5;
const SMTP_MAX_MESSAGES_PER_CONNECTION = 500;

/**
 * How Seraph connects to its SMTP server (host, TLS mode, certificate check, credentials, EHLO name): the
 * mailer's pool and `seraph doctor`'s check use the same settings.
 */
export function smtpConnectionOptions(smtp: SmtpConfig, ehloName: string | undefined) {
  return {
    host: smtp.host,
    port: smtp.port,
    secure: smtp.tls === "tls",
    requireTLS: smtp.tls === "starttls",
    ignoreTLS: smtp.tls === "none",
    ...(smtp.username ? { auth: { user: smtp.username, pass: smtp.password ?? "" } } : {}),
    tls: { rejectUnauthorized: smtp.verify_certificates, minVersion: "TLSv1.2" as const },
    ...(ehloName ? { name: ehloName } : {}),
    logger: false,
  };
}

/** nodemailer (a large module), loaded when the first message is sent: an idle process does not need it. */
const nodemailer = lazyModule<typeof Nodemailer>("nodemailer");

function createSmtpTransport(smtp: SmtpConfig, ehloName: string | undefined): Transporter {
  return nodemailer().createTransport({
    ...smtpConnectionOptions(smtp, ehloName),
    pool: true,
    connectionTimeout: SMTP_CONNECTION_TIMEOUT,
    greetingTimeout: SMTP_GREETING_TIMEOUT,
    socketTimeout: SMTP_SOCKET_TIMEOUT,
    dnsTimeout: SMTP_DNS_TIMEOUT,
    maxConnections: smtp.pool_size ?? SMTP_DEFAULT_POOL_SIZE,
    maxMessages: SMTP_MAX_MESSAGES_PER_CONNECTION,
    disableFileAccess: true,
    disableUrlAccess: true,
  });
}

/** Writes complete messages as `<UTC time>-<seq>-<random>.eml`, atomically (temp file + rename), mode 0600. */
class Outbox {
  private ready: Promise<unknown> | undefined;
  private seq = 0;
  constructor(private readonly dir: string) {}

  async write(message: Buffer | string): Promise<string> {
    this.ready ??= mkdir(this.dir, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    await this.ready;
    const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(".", "");
    this.seq = (this.seq + 1) % 1_000_000;
    const name = `${stamp}-${String(this.seq).padStart(6, "0")}-${randomBytes(6).toString("hex")}.eml`;
    const file = path.join(this.dir, name);
    const tmp = path.join(this.dir, `.${name}.tmp`);
    try {
      await writeFile(tmp, message, { mode: 0o600, flag: "wx" });
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
    return file;
  }
}

function causeSummary(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { error: String(err) };
  const e = err as Error & { code?: unknown; responseCode?: unknown; command?: unknown };
  return {
    // eta parse errors embed the whole compiled template; keep log lines short.
    error: e.message.length > 300 ? `${e.message.slice(0, 300)}…` : e.message,
    ...(e.code !== undefined ? { code: e.code } : {}),
    ...(e.responseCode !== undefined ? { responseCode: e.responseCode } : {}),
    ...(e.command !== undefined ? { command: e.command } : {}),
  };
}

/** Extra headers with every line break and control character removed (no header injection). */
function sanitizedHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (/^[A-Za-z0-9-]{1,64}$/.test(k)) out[k] = sanitizeHeaderText(v);
  }
  return out;
}

export function createMailer(cfg: EmailConfig, log: Logger, presentation?: Presentation): Mailer {
  const look =
    presentation ??
    new Presentation({
      templatesDir: cfg.templates_dir,
      defaultBrand: cfg.default_brand,
      brands: cfg.brands,
    });
  const envelopeFrom = mailboxAddress(cfg.from);
  if (!envelopeFrom) throw new Error("email.from is not a valid address");
  const idHost = messageIdHost(cfg.hostname, cfg.from);
  const store = new TemplateStore(cfg.templates_dir);

  // Both transports are made for the first message (nodemailer is loaded then).
  let smtp: Transporter | undefined;
  const smtpTransport = (c: SmtpConfig): Transporter => {
    if (smtp) return smtp;
    smtp = createSmtpTransport(c, cfg.hostname);
    // A pooled connection can fail while idle; nodemailer re-emits that as 'error', which would crash
    // the process without a listener.
    smtp.on("error", (err: unknown) => log.warn(causeSummary(err), "SMTP transport error"));
    return smtp;
  };
  // Without SMTP, nodemailer still builds the MIME message (stream transport, CRLF), we store it.
  let composer: Transporter | undefined;
  const composerTransport = (): Transporter =>
    (composer ??= nodemailer().createTransport({ streamTransport: true, buffer: true, newline: "windows" }));
  const outbox = cfg.smtp ? undefined : new Outbox(path.resolve(cfg.outbox_dir));

  if (
    !store.hasTemplates(cfg.default_brand, "invite") ||
    !store.hasTemplates(cfg.default_brand, "verification")
  ) {
    log.warn(
      { templates_dir: cfg.templates_dir, default_brand: cfg.default_brand },
      "default email brand has no templates; emails of brands without their own will fail",
    );
  }

  const inFlight = new Set<Promise<void>>();
  let closed = false;

  /** The folder whose templates a brand uses: its own set, else the default brand's. */
  function templateBrand(brand: string, name: TemplateName): string {
    return store.hasTemplates(brand, name) ? brand : cfg.default_brand;
  }

  async function deliver(mail: OutgoingEmail): Promise<void> {
    if (!isTemplateName(mail.template)) throw new EmailSendError("unknown email template", "template");
    if (!isSingleBareAddress(mail.to)) {
      throw new EmailSendError("invalid recipient address", "invalid_recipient");
    }
    const brand = look.brandName(mail.brand);
    const settings = look.brand(brand);
    const lang = look.catalogues.match(mail.lang) ?? settings.default_language;
    const helpers = (value: (name: string) => string): TemplateHelpers => ({
      t: (key, params) => look.t(lang, key, params),
      printf: (format) => printfNamed(format, value),
    });
    const ctx = {
      template: mail.template,
      to: mail.to,
      from: cfg.from,
      messageIdHost: idHost,
      look: look.lookVars({ brand: settings, lang }),
      helpers,
    };

    let options: SendMailOptions;
    let messageId: string;
    try {
      const loaded = await store.load(templateBrand(brand, mail.template), mail.template);
      const envelope = { from: envelopeFrom, to: [mail.to] };
      if (loaded.kind === "raw") {
        const r = store.renderRaw(loaded, mail.vars, ctx);
        messageId = r.messageId;
        options = { envelope, raw: r.message };
      } else {
        const r = store.renderStructured(loaded, mail.vars, ctx);
        messageId = makeMessageId(idHost);
        options = {
          envelope,
          from: cfg.from,
          to: mail.to,
          subject: subjectHeader(r.subject),
          text: r.text,
          ...(r.html !== undefined ? { html: r.html } : {}),
          messageId,
          date: new Date(),
          headers: { "Content-Language": lang, ...(mail.headers ? sanitizedHeaders(mail.headers) : {}) },
          disableFileAccess: true,
          disableUrlAccess: true,
        };
      }
    } catch (err) {
      log.warn({ template: mail.template, brand, ...causeSummary(err) }, "email template failed");
      throw new EmailSendError("failed to render email template", "template", { cause: err });
    }

    try {
      if (cfg.smtp) {
        await smtpTransport(cfg.smtp).sendMail(options);
        log.info({ to: mail.to, template: mail.template, brand, lang, messageId }, "email sent");
      } else {
        const raw =
          typeof options.raw === "string"
            ? options.raw
            : (await composerTransport().sendMail(options)).message;
        const file = await outbox!.write(raw as Buffer | string);
        log.info({ to: mail.to, template: mail.template, brand, lang, file }, "email written to outbox");
      }
    } catch (err) {
      log.warn(
        { to: mail.to, template: mail.template, brand, ...causeSummary(err) },
        "email delivery failed",
      );
      throw new EmailSendError("failed to deliver email", "delivery", { cause: err });
    }
  }

  return {
    async send(mail: OutgoingEmail): Promise<void> {
      if (closed) throw new EmailSendError("mailer is closed", "closed");
      const p = deliver(mail);
      const tracked = p.catch(() => undefined);
      inFlight.add(tracked);
      void tracked.finally(() => inFlight.delete(tracked));
      return p;
    },
    async close(): Promise<void> {
      closed = true;
      await Promise.allSettled([...inFlight]);
      smtp?.close();
      composer?.close();
    },
  };
}
