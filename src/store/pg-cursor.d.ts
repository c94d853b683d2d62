/** The part of pg-cursor (no types of its own) that the PostgreSQL dialect uses: Kysely's `stream()`. */
declare module "pg-cursor" {
  import type { CustomTypesConfig } from "pg";

  export default class Cursor<T = unknown> {
    constructor(text: string, values?: readonly unknown[], config?: { types?: CustomTypesConfig });
    read(rowCount: number): Promise<T[]>;
    close(): Promise<void>;
  }
}
