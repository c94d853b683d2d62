import { createHmac } from "node:crypto";
import type { AuditQuery, AuditRow, KyselyAuditLogRepository } from "../store/audit-log.js";
import { redactEmail } from "../threepid/redact.js";

export interface AuditLogger {
  info(obj: object, msg: string): void;
}

/** A target as the audit log keeps it: redacted for people, keyed hash for matching. */
export interface AuditTarget {
  redacted: string;
  hmac: string;
}

function redactPart(s: string, keep = 3): string {
  const chars = Array.from(s);
  return chars.length > keep ? `${chars.slice(0, keep).join("")}...` : `${chars.slice(0, 1).join("")}...`;
}

/** `alice@example.org` → `ali...@exa...`, `@alice:example.org` → `@ali...:exa...`, `447700900123` → `447...`. */
export function redactIdentifier(id: string): string {
  if (id.startsWith("@") && id.includes(":")) {
    const colon = id.indexOf(":");
    return `@${redactPart(id.slice(1, colon))}:${redactPart(id.slice(colon + 1))}`;
  }
  if (id.includes("@")) return redactEmail(id, 3, 3);
  return redactPart(id);
}

/**
 * Appends admin actions to the audit log (and the process log). Addresses and Matrix IDs are never written
 * in full: only redacted, plus an HMAC under a key kept in the database, so that an erased subject leaves no
 * copy behind while a later request about the same identifier still matches its earlier rows.
 */
export class Auditor {
  constructor(
    private readonly repo: KyselyAuditLogRepository,
    private readonly hmacKey: string,
    private readonly log: AuditLogger,
    private readonly now: () => number = Date.now,
  ) {}

  /** The keyed hash of an identifier (already normalised). */
  hmac(identifier: string): string {
    return createHmac("sha256", this.hmacKey).update(identifier, "utf8").digest("hex");
  }

  target(...identifiers: Array<string | undefined>): AuditTarget | undefined {
    const ids = identifiers.filter((i): i is string => i !== undefined && i !== "");
    if (ids.length === 0) return undefined;
    return { redacted: ids.map(redactIdentifier).join(" "), hmac: ids.map((i) => this.hmac(i)).join(" ") };
  }

  async record(
    actor: string,
    action: string,
    target: AuditTarget | undefined,
    result: string,
    detail?: Record<string, string | number | boolean>,
  ): Promise<void> {
    const entry = {
      ts: this.now(),
      actor,
      action,
      targetRedacted: target?.redacted ?? null,
      targetHmac: target?.hmac ?? null,
      result,
      detail: detail ? JSON.stringify(detail) : null,
    };
    await this.repo.append(entry);
    this.log.info(
      { audit: { actor, action, target: entry.targetRedacted, result, detail } },
      `admin action ${action}`,
    );
  }

  async page(q: AuditQuery): Promise<AuditRow[]> {
    return this.repo.page(q);
  }
}
