/**
 * A real SMTP server on 127.0.0.1 (random port) for tests: collects every message, raw and parsed.
 *
 *   const sink = await startSmtpSink();                 // plain SMTP, no STARTTLS, auth optional
 *   const sink = await startSmtpSink({ tls: "tls" });   // implicit TLS with a fresh self-signed cert
 *   ... send mail to sink.host:sink.port ...
 *   const [msg] = await sink.waitForMessages(1);
 *   msg.parsed.subject; msg.headerBlock; msg.envelope.to
 *   sink.failNext(2);                                   // next 2 RCPT TO get "550 ..."
 *   await sink.close();
 */
import { type ParsedMail, simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";
import { createSelfSignedCertificate } from "./tls.js";

export interface SinkMessage {
  /** The message exactly as received (DATA, dot-unstuffed). */
  raw: Buffer;
  /** `raw` as a UTF-8 string. */
  rawText: string;
  /** Everything before the first empty line (the top-level header block, unfolded lines kept as is). */
  headerBlock: string;
  parsed: ParsedMail;
  envelope: { from: string; to: string[] };
  /** Username the client authenticated as, if it did. */
  user?: string;
  /** Whether the session was TLS-protected (implicit TLS or STARTTLS). */
  secure: boolean;
}

export interface SmtpSinkOptions {
  /** `none` (default): no TLS at all; `starttls`: offers STARTTLS; `tls`: implicit TLS. */
  tls?: "none" | "starttls" | "tls";
  /** Require AUTH PLAIN/LOGIN with these credentials (allowed without TLS too). */
  auth?: { username: string; password: string };
}

export interface SmtpSink {
  readonly host: string;
  readonly port: number;
  /** Messages received so far, in arrival order. */
  readonly messages: SinkMessage[];
  /** Number of TCP connections accepted so far (useful to check connection reuse). */
  readonly connectionCount: number;
  /** PEM of the self-signed certificate when TLS is enabled. */
  readonly certPem?: string;
  /** Rejects the next `n` RCPT TO commands with `code` (default 550). */
  failNext(n: number, code?: number, message?: string): void;
  /** Resolves with the first `n` messages once at least `n` have arrived; rejects after `timeoutMs`. */
  waitForMessages(n: number, timeoutMs?: number): Promise<SinkMessage[]>;
  /** Forgets the messages received so far. */
  clear(): void;
  close(): Promise<void>;
}

/** A self-signed certificate for localhost / 127.0.0.1 (shared with the other test servers). */
export function selfSignedCert(): Promise<{ key: string; cert: string }> {
  return createSelfSignedCertificate({ dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
}

export async function startSmtpSink(opts: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const tls = opts.tls ?? "none";
  const tlsMaterial = tls === "none" ? undefined : await selfSignedCert();
  const messages: SinkMessage[] = [];
  const waiters = new Set<() => void>();
  let failRemaining = 0;
  let failCode = 550;
  let failMessage = "Mailbox unavailable";
  let connections = 0;

  const notify = (): void => {
    for (const w of [...waiters]) w();
  };

  const server = new SMTPServer({
    secure: tls === "tls",
    ...(tlsMaterial ? { key: tlsMaterial.key, cert: tlsMaterial.cert } : {}),
    ...(tls === "none" ? { disabledCommands: ["STARTTLS"] } : {}),
    authOptional: !opts.auth,
    allowInsecureAuth: true,
    logger: false,
    closeTimeout: 200,
    onConnect(_session, callback) {
      connections++;
      callback();
    },
    onAuth(auth, _session, callback) {
      if (opts.auth && auth.username === opts.auth.username && auth.password === opts.auth.password) {
        callback(null, { user: auth.username });
      } else {
        callback(new Error("Invalid username or password"));
      }
    },
    onRcptTo(_address, _session, callback) {
      if (failRemaining > 0) {
        failRemaining--;
        callback(Object.assign(new Error(failMessage), { responseCode: failCode }));
        return;
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        const raw = Buffer.concat(chunks);
        const rawText = raw.toString("utf8");
        const end = rawText.search(/\r?\n\r?\n/);
        const envelope = {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((a) => a.address),
        };
        const user = typeof session.user === "string" ? session.user : undefined;
        const secure = Boolean(session.secure);
        callback();
        simpleParser(raw).then(
          (parsed) => {
            messages.push({
              raw,
              rawText,
              headerBlock: end === -1 ? rawText : rawText.slice(0, end),
              parsed,
              envelope,
              ...(user !== undefined ? { user } : {}),
              secure,
            });
            notify();
          },
          (err: unknown) => {
            // Should not happen with real MIME; surface it (the waiting test then times out).
            console.error("smtp-sink: mailparser failed", err);
          },
        );
      });
    },
  });
  server.on("error", () => {
    // Client-side resets (e.g. a refused TLS handshake) surface here; they are expected in tests.
  });

  await new Promise<void>((resolve, reject) => {
    server.server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.server.off("error", reject);
      resolve();
    });
  });
  const address = server.server.address();
  if (address === null || typeof address === "string") throw new Error("smtp-sink: no TCP address");

  return {
    host: "127.0.0.1",
    port: address.port,
    messages,
    get connectionCount() {
      return connections;
    },
    ...(tlsMaterial ? { certPem: tlsMaterial.cert } : {}),
    failNext(n: number, code = 550, message = "Mailbox unavailable") {
      failRemaining = n;
      failCode = code;
      failMessage = message;
    },
    waitForMessages(n: number, timeoutMs = 5_000): Promise<SinkMessage[]> {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          if (messages.length < n) return false;
          clearTimeout(timer);
          waiters.delete(onMessage);
          resolve(messages.slice(0, n));
          return true;
        };
        const onMessage = (): void => {
          check();
        };
        const timer = setTimeout(() => {
          waiters.delete(onMessage);
          reject(
            new Error(`smtp-sink: expected ${n} message(s), got ${messages.length} after ${timeoutMs} ms`),
          );
        }, timeoutMs);
        if (!check()) waiters.add(onMessage);
      });
    },
    clear() {
      messages.length = 0;
    },
    close(): Promise<void> {
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
