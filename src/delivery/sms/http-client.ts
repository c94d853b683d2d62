/** One POST with a hard deadline over a dedicated undici Agent, and the HTTP-status → error-reason mapping. */
import type * as Undici from "undici";
import type { Agent } from "undici";
import { lazyModule } from "../../core/lazy-module.js";
import { SmsSendError, type SmsSendErrorReason } from "./types.js";

/** At most this much of a response body is read (error details only); the rest is discarded. */
const MAX_RESPONSE_BYTES = 64 * 1024;

export interface HttpAnswer {
  status: number;
  text: string;
  /** The body parsed as JSON, when it is JSON. */
  json: unknown;
}

/** undici, loaded when an HTTP SMS provider is made (the `log` provider, the default, never needs it). */
const undici = lazyModule<typeof Undici>("undici");

export function createAgent(timeoutMs: number): Agent {
  const { Agent } = undici();
  return new Agent({
    connect: { timeout: timeoutMs },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    keepAliveTimeout: 30_000,
    connections: 32,
  });
}

const TIMEOUT_CODES = new Set(["UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"]);

/**
 * POSTs `body` and returns the status and (capped) body. Never follows redirects. Network failures reject with
 * {@link SmsSendError} `unreachable`, the deadline (connect + headers + body) with `timeout`. `what` names the
 * provider in error messages; the URL is never included (it may carry secrets in its query).
 */
export async function postWithDeadline(
  agent: Agent,
  url: URL,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
  what: string,
): Promise<HttpAnswer> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  try {
    const res = await undici().request(url, {
      method: "POST",
      headers,
      body,
      dispatcher: agent,
      signal: ac.signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      const b = chunk as Buffer;
      if (size + b.length > MAX_RESPONSE_BYTES) {
        chunks.push(b.subarray(0, MAX_RESPONSE_BYTES - size));
        res.body.destroy();
        break;
      }
      chunks.push(b);
      size += b.length;
    }
    const text = Buffer.concat(chunks).toString("utf8");
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, text, json };
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    if (ac.signal.aborted || (typeof code === "string" && TIMEOUT_CODES.has(code))) {
      throw new SmsSendError(`${what} did not answer within ${timeoutMs} ms`, "timeout", { cause: err });
    }
    const detail = typeof code === "string" ? ` (${code})` : "";
    throw new SmsSendError(`${what} is unreachable${detail}`, "unreachable", { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

/** `undefined` for 2xx; otherwise why the provider refused. See {@link SmsSendErrorReason}. */
export function reasonForStatus(status: number): SmsSendErrorReason | undefined {
  if (status >= 200 && status < 300) return undefined;
  if ([401, 403, 404, 405, 407].includes(status)) return "config";
  if (status === 408 || status === 429) return "unreachable";
  if (status >= 400 && status < 500) return "rejected";
  if (status >= 500 && status < 600) return "unreachable";
  return "bad_response";
}

/** Makes provider-supplied text safe for an error message / log line: no secrets, no control characters, short. */
export function cleanText(text: string, secrets: readonly string[]): string {
  let t = text;
  for (const s of secrets) if (s) t = t.split(s).join("[redacted]");
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
  t = t.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
  return t.length > 200 ? `${t.slice(0, 200)}…` : t;
}

/** Tracks sends in flight so `close()` can wait for them; after close, sends fail fast. */
export class SendTracker {
  private readonly inFlight = new Set<Promise<unknown>>();
  private closed = false;

  constructor(private readonly what: string) {}

  run(fn: () => Promise<void>): Promise<void> {
    if (this.closed) {
      return Promise.reject(new SmsSendError(`${this.what} is closed`, "unreachable"));
    }
    const p = fn();
    const tracked = p.catch(() => undefined);
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
    return p;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.inFlight]);
  }
}
