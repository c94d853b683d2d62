import type { Kysely } from "kysely";
import { adminDb } from "./admin-schema.js";
import type { Database } from "./schema.js";

export interface AuditEntry {
  ts: number;
  actor: string;
  action: string;
  targetRedacted: string | null;
  targetHmac: string | null;
  result: string;
  detail: string | null;
}

export interface AuditRow extends AuditEntry {
  id: number;
}

export interface AuditQuery {
  /** Rows with an id below this (the previous page's `next_from`). */
  before?: number | undefined;
  limit: number;
  action?: string | undefined;
  actor?: string | undefined;
  targetHmac?: string | undefined;
}

/** The audit log: rows are appended, never updated or deleted by Seraph. */
export class KyselyAuditLogRepository {
  private readonly db;
  constructor(db: Kysely<Database>) {
    this.db = adminDb(db);
  }

  async append(e: AuditEntry): Promise<void> {
    await this.db
      .insertInto("audit_log")
      .values({
        ts: e.ts,
        actor: e.actor,
        action: e.action,
        target_redacted: e.targetRedacted,
        target_hmac: e.targetHmac,
        result: e.result,
        detail: e.detail,
      })
      .execute();
  }

  /** Newest first. */
  async page(q: AuditQuery): Promise<AuditRow[]> {
    let query = this.db.selectFrom("audit_log").selectAll().orderBy("id", "desc").limit(q.limit);
    if (q.before !== undefined) query = query.where("id", "<", q.before);
    if (q.action !== undefined) query = query.where("action", "=", q.action);
    if (q.actor !== undefined) query = query.where("actor", "=", q.actor);
    // A row about several identifiers holds their hashes separated by spaces (hex only, so LIKE is exact).
    if (q.targetHmac !== undefined) query = query.where("target_hmac", "like", `%${q.targetHmac}%`);
    const rows = await query.execute();
    return rows.map((r) => ({
      id: Number(r.id),
      ts: Number(r.ts),
      actor: r.actor,
      action: r.action,
      targetRedacted: r.target_redacted,
      targetHmac: r.target_hmac,
      result: r.result,
      detail: r.detail,
    }));
  }
}
