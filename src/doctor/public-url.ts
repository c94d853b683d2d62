/** `public_base_url` reaches this very server: the status endpoint answers, and serves our signing key. */
import { isIP } from "node:net";
import type { ResolvedConfig } from "../config/load.js";
import type { SigningKey } from "../crypto/ed25519.js";
import { errorText, type Report } from "./report.js";

const TIMEOUT_MS = 10_000;

function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || (isIP(h) === 4 && h.startsWith("127."));
}

async function getJson(url: string): Promise<{ status: number; json: unknown }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS), redirect: "manual" });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json };
}

function fetchFailure(e: unknown): string {
  const cause = (e as { cause?: unknown })?.cause;
  return errorText(cause ?? e);
}

export async function checkPublicUrl(
  cfg: ResolvedConfig,
  key: SigningKey | undefined,
  report: Report,
): Promise<void> {
  const g = report.group("public_base_url");
  const base = cfg.public_base_url;
  const url = new URL(base);
  if (url.protocol === "http:") {
    g.warn(
      "https",
      `${base} is plain http${isLoopbackHost(url.hostname) ? " (fine on loopback for tests)" : ""}`,
      "the spec requires HTTPS: put a TLS reverse proxy in front (contrib/nginx/) and set public_base_url to https://…",
    );
  } else {
    g.pass("https", base);
  }
  const statusUrl = `${base}/_matrix/identity/v2`;
  try {
    const { status, json } = await getJson(statusUrl);
    if (status !== 200 || typeof json !== "object" || json === null) {
      g.fail(
        "reaches Seraph",
        `GET ${statusUrl} answered ${status}${json === undefined ? " (not JSON)" : ""}`,
        "the proxy must forward /_matrix/identity/ to Seraph's listen address",
      );
      return;
    }
    g.pass("reaches Seraph", `GET ${statusUrl}: 200`);
  } catch (e) {
    g.fail(
      "reaches Seraph",
      `GET ${statusUrl}: ${fetchFailure(e)}`,
      `start seraph serve, and check that ${url.host} resolves to the proxy (or to listen.host:listen.port)`,
    );
    return;
  }
  if (!key) return;
  const keyUrl = `${base}/_matrix/identity/v2/pubkey/${encodeURIComponent(key.keyId)}`;
  try {
    const { status, json } = await getJson(keyUrl);
    const served = (json as { public_key?: unknown } | undefined)?.public_key;
    if (status === 200 && served === key.publicKeyBase64) {
      g.pass("serves our key", `${key.keyId} ${key.publicKeyBase64}`);
    } else {
      g.fail(
        "serves our key",
        status === 200
          ? `${key.keyId} there is ${String(served)}, the key file has ${key.publicKeyBase64}`
          : `GET ${keyUrl} answered ${status}`,
        "public_base_url reaches another server or instance with another key file: point it at this one, or copy the key file to every instance and restart",
      );
    }
  } catch (e) {
    g.fail("serves our key", `GET ${keyUrl}: ${fetchFailure(e)}`, "check the proxy and the server's log");
  }
}
