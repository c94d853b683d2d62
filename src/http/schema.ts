import type { FastifySchemaValidationError } from "fastify/types/schema.js";
import { MatrixError } from "../core/errors.js";

/**
 * Small builders for the JSON schemas that fastify compiles once per route (ajv). A schema names the
 * shape a handler may rely on; `schemaError` maps a failure to the Matrix error the spec asks for.
 *
 * @example const body = object({ sid: string(255), client_secret: string(255) }, { next_link: string(4096) });
 */
export type JsonSchema = Readonly<Record<string, unknown>>;

/** The longest string a schema accepts unless it says otherwise, in characters. */
export const MAX_STRING = 65_536;

/** A non-empty string of at most `max` characters (an empty string counts as missing). */
export const string = (max = MAX_STRING, extra: JsonSchema = {}): JsonSchema => ({
  type: "string",
  minLength: 1,
  maxLength: max,
  ...extra,
});

/** A string that may be empty. */
export const anyString = (max = MAX_STRING): JsonSchema => ({ type: "string", maxLength: max });

/**
 * The index of the first of `strings` longer than `max` characters (code points, as `maxLength` counts),
 * or -1: for long lists of strings, where ajv's `maxLength` counts every item's characters one by one
 * (~100 µs for a thousand hashes). Counts only a string whose UTF-16 length is past `max`.
 *
 *   tooLong(["ab", "abcd"], 3); // 1
 */
export function tooLong(strings: readonly string[], max = MAX_STRING): number {
  for (let i = 0; i < strings.length; i++) {
    const s = strings[i]!;
    if (s.length > max && [...s].length > max) return i;
  }
  return -1;
}

/** Present and not null, of any type: for keys whose wrong type the service answers in its own terms. */
export const present = (): JsonSchema => ({ not: { anyOf: [{ type: "null" }, { const: "" }] } });

/** An optional key that may also be sent as `null` (read as absent). */
export const nullable = (schema: JsonSchema): JsonSchema => ({ ...schema, type: [schema.type, "null"] });

export const number = (): JsonSchema => ({ type: "number" });

/** A list of `items` (its length is a domain rule, checked by the service). */
export const array = (items: JsonSchema): JsonSchema => ({ type: "array", items });

/** An object with `required` keys (present, not null, not "") and `optional` ones; other keys are allowed. */
export function object(
  required: Record<string, JsonSchema>,
  optional: Record<string, JsonSchema> = {},
): JsonSchema {
  return {
    type: "object",
    required: Object.keys(required),
    properties: { ...required, ...optional },
  };
}

/** Query strings: every value arrives as a string; repeated keys keep the first value (see `firstValues`). */
export function query(required: Record<string, JsonSchema>, optional: Record<string, JsonSchema> = {}) {
  return object(required, optional);
}

/** ajv options: no type coercion in bodies (a number is not a string), every missing key reported. */
export const AJV_OPTIONS = {
  coerceTypes: false,
  removeAdditional: false,
  useDefaults: false,
  allErrors: true,
  verbose: true,
} as const;

function fieldName(e: FastifySchemaValidationError): string {
  const path = e.instancePath.replace(/^\//, "").replaceAll("/", ".");
  return path === "" ? "body" : path;
}

function isMissing(e: FastifySchemaValidationError): boolean {
  if (e.keyword === "required") return true;
  const data = (e as { data?: unknown }).data;
  if (data === null && e.instancePath.split("/").length === 2) return true;
  return (
    data === "" &&
    (e.keyword === "minLength" || e.keyword === "not") &&
    e.instancePath.split("/").length === 2
  );
}

/**
 * The Matrix error for a schema failure: a body that is not an object is M_NOT_JSON, absent top-level
 * keys M_MISSING_PARAMS (naming all of them), anything else M_INVALID_PARAM naming the first bad key.
 */
export function schemaError(errors: readonly FastifySchemaValidationError[], context: string): MatrixError {
  const rootType = errors.find((e) => e.instancePath === "" && e.keyword === "type");
  if (rootType && context === "body")
    return new MatrixError("M_NOT_JSON", "Request body is not a JSON object");
  const missing = errors
    .filter(isMissing)
    .map((e) =>
      e.keyword === "required"
        ? String((e.params as { missingProperty?: string }).missingProperty)
        : fieldName(e),
    );
  if (missing.length) {
    const names = [...new Set(missing)];
    return new MatrixError(
      "M_MISSING_PARAMS",
      names.length === 1 ? `Missing parameter: ${names[0]}` : `Missing parameters: ${names.join(", ")}`,
    );
  }
  const first = errors[0];
  const name = first ? fieldName(first) : context;
  const why =
    first?.keyword === "maxLength" || first?.keyword === "maxItems"
      ? "is too long"
      : "has the wrong type or format";
  return new MatrixError("M_INVALID_PARAM", `${name} ${why}`);
}
