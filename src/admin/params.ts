import { MatrixError } from "../core/errors.js";

export type JsonObject = Record<string, unknown>;

/**
 * Hand-written checks for the admin API's bodies (its listener is apart from the public route table).
 */

/** The request body as a JSON object, or M_NOT_JSON. A missing body counts as `{}`. */
export function bodyObject(body: unknown): JsonObject {
  if (body === undefined || body === null) return {};
  if (typeof body !== "object" || Array.isArray(body)) {
    throw new MatrixError("M_NOT_JSON", "Request body is not a JSON object");
  }
  return body as JsonObject;
}

/** Throws M_MISSING_PARAMS naming every absent (or empty) key. */
export function requireKeys(obj: JsonObject, names: readonly string[]): void {
  const missing = names.filter((n) => obj[n] === undefined || obj[n] === null || obj[n] === "");
  if (missing.length) throw new MatrixError("M_MISSING_PARAMS", `Missing parameters: ${missing.join(", ")}`);
}

/** A required string parameter: absent → M_MISSING_PARAMS, another type → M_INVALID_PARAM. */
export function requireString(obj: JsonObject, name: string, maxLength = 65_536): string {
  const v = obj[name];
  if (v === undefined || v === null || v === "")
    throw new MatrixError("M_MISSING_PARAMS", `Missing parameter: ${name}`);
  if (typeof v !== "string") throw new MatrixError("M_INVALID_PARAM", `${name} must be a string`);
  if (v.length > maxLength) throw new MatrixError("M_INVALID_PARAM", `${name} is too long`);
  return v;
}

/** An optional string parameter: absent → undefined, another type → M_INVALID_PARAM. */
export function optionalString(obj: JsonObject, name: string, maxLength = 65_536): string | undefined {
  const v = obj[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new MatrixError("M_INVALID_PARAM", `${name} must be a string`);
  if (v.length > maxLength) throw new MatrixError("M_INVALID_PARAM", `${name} is too long`);
  return v;
}

/** Query parameters as a flat string map (repeated keys keep the first value). */
export function queryString(query: unknown, name: string): string | undefined {
  if (typeof query !== "object" || query === null) return undefined;
  const v = (query as Record<string, unknown>)[name];
  if (Array.isArray(v)) return typeof v[0] === "string" ? v[0] : undefined;
  return typeof v === "string" ? v : undefined;
}
