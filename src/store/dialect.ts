import { type RawBuilder, sql } from "kysely";

/** The SQL engines Seraph runs on. Every query that differs between them goes through this module. */
export type Dialect = "sqlite" | "postgres";

/** The column type of an auto-increment primary key in the dialect's idiom. */
export function idType(dialect: Dialect) {
  return dialect === "sqlite" ? ("integer" as const) : ("bigserial" as const);
}

/**
 * A list of strings as one query parameter: a JSON array on SQLite (read with `json_each(?)`), a `text[]`
 * on PostgreSQL (read with `unnest($n::text[])`).
 */
export function valueParameter(dialect: Dialect, values: readonly string[]): string | readonly string[] {
  return dialect === "sqlite" ? JSON.stringify(values) : values;
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
