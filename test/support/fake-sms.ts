/**
 * A fake SMS gateway for tests on 127.0.0.1 (random port), usable both as a fake Twilio (point
 * `sms.twilio.api_base_url` at `fake.url`) and as the generic JSON webhook (`sms.http.url = fake.url + "/sms"`).
 *
 *   const fake = await startFakeSms();
 *   ... send ...
 *   const [req] = await fake.waitForRequests(1);
 *   req.path; req.headers.authorization; req.form?.Body; req.json
 *   fake.failNext(2, 400, { code: 21211, message: "bad To" });  // next 2 requests answer 400 with that JSON
 *   fake.hang();                                                // from now on, never answer (until hang(false))
 *   await fake.close();                                          // also drops hanging connections
 *
 * Default answers: a Twilio-like 201 `{sid, status: "queued", to, from, body, …}` for
 * `POST /2010-04-01/Accounts/{sid}/Messages.json`, 200 `{"ok": true}` for anything else.
 * Default failure bodies: Twilio-shaped `{code, message, more_info, status}` on the Twilio path, `{error}` elsewhere.
 *
 * `readSmsOutbox(dir)` parses the `log` provider's `<dir>/sms.log` and `latestSmsCode(dir, to)` extracts the last
 * code sent to a number, for end-to-end tests.
 */
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";

export const TWILIO_MESSAGES_PATH = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/;

export interface FakeSmsRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  rawBody: string;
  /** Parsed `application/x-www-form-urlencoded` body (last value wins for repeated keys). */
  form?: Record<string, string>;
  /** Parsed JSON body. */
  json?: unknown;
  /** Decoded `Authorization: Basic` credentials, if sent. */
  basicAuth?: { username: string; password: string };
  /** `Authorization: Bearer` token, if sent. */
  bearer?: string;
  /** Time the request was fully received (ms since epoch). */
  time: number;
}

export interface FakeSmsFailure {
  status: number;
  /** JSON body to answer; a string is sent as is (text/plain). */
  body?: unknown;
}

export interface FakeSms {
  readonly host: string;
  readonly port: number;
  /** `http://127.0.0.1:<port>` (no trailing slash). */
  readonly url: string;
  /** Every request received, in arrival order (hanging ones included). */
  readonly requests: FakeSmsRequest[];
  /** Answers the next `n` requests with `status` (default 500) and `body` (default: see the module doc). */
  failNext(n: number, status?: number, body?: unknown): void;
  /** `true` (default): record but never answer requests from now on; `false`: answer again. */
  hang(on?: boolean): void;
  /** Resolves with the first `n` requests once at least `n` have arrived; rejects after `timeoutMs`. */
  waitForRequests(n: number, timeoutMs?: number): Promise<FakeSmsRequest[]>;
  /** Forgets recorded requests. */
  clear(): void;
  /** Stops listening and destroys every open connection (hanging requests included). */
  close(): Promise<void>;
}

function parseAuth(h: string | undefined): Pick<FakeSmsRequest, "basicAuth" | "bearer"> {
  if (!h) return {};
  const [scheme, value = ""] = h.split(" ", 2);
  if (scheme?.toLowerCase() === "basic") {
    const decoded = Buffer.from(value, "base64").toString("utf8");
    const i = decoded.indexOf(":");
    return i < 0 ? {} : { basicAuth: { username: decoded.slice(0, i), password: decoded.slice(i + 1) } };
  }
  if (scheme?.toLowerCase() === "bearer") return { bearer: value };
  return {};
}

function defaultFailureBody(status: number, isTwilio: boolean): unknown {
  if (!isTwilio) return { error: `fake failure ${status}` };
  return {
    code: status >= 500 ? 20500 : 21211,
    message: status >= 500 ? "Internal Server Error" : "The 'To' number is not a valid phone number.",
    more_info: "https://www.twilio.com/docs/errors/21211",
    status,
  };
}

export async function startFakeSms(opts: { host?: string } = {}): Promise<FakeSms> {
  const host = opts.host ?? "127.0.0.1";
  const requests: FakeSmsRequest[] = [];
  const failures: FakeSmsFailure[] = [];
  let hanging = false;
  let waiters: Array<() => void> = [];

  function notify(): void {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  }

  function send(res: ServerResponse, status: number, body: unknown): void {
    const isText = typeof body === "string";
    const payload = isText ? body : JSON.stringify(body);
    res.writeHead(status, {
      "content-type": isText ? "text/plain; charset=utf-8" : "application/json",
      "content-length": Buffer.byteLength(payload),
    });
    res.end(payload);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const rawBody = Buffer.concat(chunks).toString("utf8");
    const u = new URL(req.url ?? "/", "http://fake.invalid");
    const ct = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
    const rec: FakeSmsRequest = {
      method: req.method ?? "",
      path: u.pathname,
      query: u.searchParams,
      headers: req.headers,
      rawBody,
      ...parseAuth(req.headers.authorization),
      time: Date.now(),
    };
    if (ct === "application/x-www-form-urlencoded") {
      rec.form = Object.fromEntries(new URLSearchParams(rawBody));
    } else if (ct === "application/json") {
      try {
        rec.json = JSON.parse(rawBody);
      } catch {
        // recorded raw only
      }
    }
    requests.push(rec);
    notify();

    if (hanging) return; // never answer; close() destroys the socket
    const twilioMatch = TWILIO_MESSAGES_PATH.exec(rec.path);
    const failure = failures.shift();
    if (failure) {
      send(res, failure.status, failure.body ?? defaultFailureBody(failure.status, twilioMatch !== null));
      return;
    }
    if (twilioMatch && rec.method === "POST") {
      const f = rec.form ?? {};
      send(res, 201, {
        sid: `SM${randomBytes(16).toString("hex")}`,
        account_sid: decodeURIComponent(twilioMatch[1] ?? ""),
        to: f.To ?? null,
        from: f.From ?? null,
        messaging_service_sid: f.MessagingServiceSid ?? null,
        body: f.Body ?? "",
        status: "queued",
        num_segments: "1",
        direction: "outbound-api",
        api_version: "2010-04-01",
        error_code: null,
        error_message: null,
      });
      return;
    }
    send(res, 200, { ok: true });
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host.includes(":") ? `[${host}]` : host;

  return {
    host,
    port,
    url: `http://${urlHost}:${port}`,
    requests,
    failNext(n, status = 500, body) {
      for (let i = 0; i < n; i++) failures.push({ status, body });
    },
    hang(on = true) {
      hanging = on;
    },
    waitForRequests(n, timeoutMs = 5_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`fake SMS: ${requests.length}/${n} requests after ${timeoutMs} ms`)),
          timeoutMs,
        );
        const check = (): void => {
          if (requests.length >= n) {
            clearTimeout(timer);
            resolve(requests.slice(0, n));
          } else {
            waiters.push(check);
          }
        };
        check();
      });
    },
    clear() {
      requests.length = 0;
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** One line of the `log` SMS provider's outbox file (`<outbox_dir>/sms.log`). */
export interface SmsOutboxLine {
  ts: string;
  to: string;
  from: string | null;
  body: string;
}

/** Parses `<outboxDir>/sms.log`; `[]` if the file does not exist yet. */
export async function readSmsOutbox(outboxDir: string): Promise<SmsOutboxLine[]> {
  let text: string;
  try {
    text = await readFile(path.join(outboxDir, "sms.log"), "utf8");
  } catch (err) {
    if ((err as { code?: unknown }).code === "ENOENT") return [];
    throw err;
  }
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as SmsOutboxLine);
}

/**
 * The last run of 4+ digits in the latest SMS to `to` (E.164 with `+`) in the outbox, i.e. the validation code
 * with the default body template; `undefined` if none was sent.
 */
export async function latestSmsCode(outboxDir: string, to: string): Promise<string | undefined> {
  const lines = await readSmsOutbox(outboxDir);
  const last = lines.filter((l) => l.to === to).at(-1);
  return last?.body.match(/\d{4,}/g)?.at(-1);
}
