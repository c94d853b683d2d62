import { MatrixError } from "../core/errors.js";
import { endpoint } from "../http/endpoint.js";
import { anyString, array, object, string, tooLong } from "../http/schema.js";
import type { Mappings } from "../services/lookup.js";
import type { BudgetedLookup } from "../services/lookup-budget.js";

interface LookupBody {
  addresses: string[];
  algorithm: string;
  pepper: string;
}

/** Hashed lookups (v2) and the legacy plain ones (v1). */
export function lookupEndpoints(lookup: BudgetedLookup) {
  return {
    /** # `GET /_matrix/identity/v2/hash_details` */
    hashDetails: endpoint({
      async handle() {
        return lookup.hashDetails();
      },
    }),

    /** # `POST /_matrix/identity/v2/lookup` */
    lookup: endpoint<{ Body: LookupBody }>({
      schema: {
        // The items' length is checked below (`tooLong`: ajv's maxLength is slow on a thousand items).
        body: object({ addresses: array({ type: "string" }), algorithm: string(64), pepper: string(256) }),
      },
      async handle(req, reply) {
        const { addresses, algorithm, pepper } = req.body;
        const long = tooLong(addresses);
        if (long >= 0) throw new MatrixError("M_INVALID_PARAM", `addresses.${long} is too long`);
        if (algorithm !== "sha256" && algorithm !== "none") {
          throw new MatrixError("M_INVALID_PARAM", "Unsupported algorithm: use sha256 or none");
        }
        const caller = { userId: req.caller?.userId, ip: req.ip };
        const found = await lookup.lookup(caller, addresses, algorithm, pepper);
        reply.type("application/json; charset=utf-8");
        return mappingsJson(found);
      },
    }),

    /** # `GET /_matrix/identity/api/v1/lookup` */
    lookupOne: endpoint<{ Querystring: { medium: string; address: string } }>({
      schema: { querystring: object({ medium: string(64), address: string(1024) }) },
      async handle(req, reply) {
        // JSON text, so that an association imported from sydent is answered byte for byte.
        reply.type("application/json; charset=utf-8");
        return (await lookup.lookupSignedJson(req.ip, req.query.medium, req.query.address)) ?? "{}";
      },
    }),

    /** # `POST /_matrix/identity/api/v1/bulk_lookup` */
    bulkLookup: endpoint<{ Body: { threepids: Array<[string, string]> } }>({
      schema: {
        body: object({
          threepids: array({ type: "array", items: anyString(), minItems: 2, maxItems: 2 }),
        }),
      },
      async handle(req) {
        return { threepids: await lookup.bulkLookup(req.ip, req.body.threepids) };
      },
    }),
  };
}

/** JSON text that needs no escaping (checked, then copied as it is). */
const PLAIN = /^[\w\-.:@=/+ ]*$/;
const text = (s: string) => (PLAIN.test(s) ? `"${s}"` : JSON.stringify(s));

const OPEN = Buffer.from('{"mappings":{');
const CLOSE = Buffer.from("}}");

/**
 * `{"mappings":{…}}` written as text: a thousand hashes take ~80 µs, where an object with a thousand
 * new keys and `JSON.stringify` took ~450. Members already written (the in-memory index) are wrapped as
 * they are.
 *
 *   mappingsJson([{ hash: "h1", mxid: "@a:hs" }]); // '{"mappings":{"h1":"@a:hs"}}'
 */
export function mappingsJson(found: Mappings): string | Buffer {
  if ("members" in found) return Buffer.concat([OPEN, found.members, CLOSE]);
  let out = '{"mappings":{';
  for (let i = 0; i < found.length; i++) {
    const m = found[i]!;
    out += `${i === 0 ? "" : ","}${text(m.hash)}:${text(m.mxid)}`;
  }
  return `${out}}}`;
}
