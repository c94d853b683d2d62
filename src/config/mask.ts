/**
 * A copy of the configuration that is safe to print: secret values (passwords, tokens) are replaced by
 * `********`, and passwords inside URLs (`postgres://user:pw@db/…`, `redis://:pw@redis`) by `***`.
 */
export const MASK = "********";

const SECRET_KEY = /(^|_)(password|pass|secret|token)$/;

function maskUrl(value: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return value;
  try {
    const url = new URL(value);
    if (url.password === "") return value;
    url.password = "***";
    return url.href;
  } catch {
    return value;
  }
}

type Json = string | number | boolean | null | undefined | Json[] | { [key: string]: Json };

export function maskSecrets(value: Json, key = ""): Json {
  if (typeof value === "string") return SECRET_KEY.test(key) ? MASK : maskUrl(value);
  if (Array.isArray(value)) return value.map((v) => maskSecrets(v, ""));
  if (value !== null && typeof value === "object") {
    const out: { [key: string]: Json } = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = maskSecrets(v, k);
    return out;
  }
  return value;
}
