import type { Kysely } from "kysely";
import type { Database } from "../store/schema.js";

/**
 * Whether the database holds an import from sydent that has not finished (its `_run` phase is not done):
 * serving it would answer from part of the data and, on SQLite, without the bindings' lookup hashes and
 * secondary indexes, which a fresh import adds only at the end of its bindings phase.
 */
export async function hasUnfinishedSydentImport(db: Kysely<Database>): Promise<boolean> {
  const run = await db
    .selectFrom("sydent_import")
    .select("done")
    .where("phase", "=", "_run")
    .executeTakeFirst();
  return run !== undefined && Number(run.done) !== 1;
}
