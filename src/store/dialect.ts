import { type RawBuilder, sql } from "kysely";

/** The SQL engines Seraph runs on. Every query that differs between them goes through this module. */
export type Dialect = "sqlite" | "postgres";

/** The column type of an auto-increment primary key in the dialect's idiom. */
export function idType(dialect: Dialect) {
  return dialect === "sqlite" ? ("integer" as const) : ("bigserial" as const);
}

/** A one-column table of `values` bound as one parameter: `h.hash in ${valueList(d, hashes)}`. */
export function valueList(dialect: Dialect, values: readonly string[]): RawBuilder<unknown> {
  return dialect === "sqlite"
    ? sql`(select value from json_each(${JSON.stringify(values)}))`
    : sql`(select unnest(${sql.val(values)}::text[]))`;
}

/** A two-column table `q(medium, address)` of `pairs`, bound as one or two parameters. */
export function pairTable(
  dialect: Dialect,
  pairs: ReadonlyArray<readonly [string, string]>,
): RawBuilder<unknown> {
  return dialect === "sqlite"
    ? sql`(select json_extract(value, '$[0]') as medium, json_extract(value, '$[1]') as address from json_each(${JSON.stringify(pairs)})) q`
    : sql`unnest(${sql.val(pairs.map((p) => p[0]))}::text[], ${sql.val(pairs.map((p) => p[1]))}::text[]) as q(medium, address)`;
}
