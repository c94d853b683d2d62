import { randomBytes } from "node:crypto";
import type { KeyService } from "../services/keys.js";
import { KyselyAdminSecretRepository } from "../store/admin-secrets.js";
import { KyselyAdminTokenRepository } from "../store/admin-tokens.js";
import { KyselyAdminViewRepository } from "../store/admin-views.js";
import { KyselyAuditLogRepository } from "../store/audit-log.js";
import { KyselyBlocklistRepository } from "../store/blocklist.js";
import type { Store } from "../store/database.js";
import { KyselySubjectRepository } from "../store/subjects.js";
import { KyselySuppressionRepository } from "../store/suppressions.js";
import { InvitePolicy, type RefusalReason } from "./abuse.js";
import { type AuditLogger, Auditor } from "./audit.js";
import { AdminService } from "./service.js";
import { AdminTokens } from "./tokens.js";

/** Path of the unsubscribe page on the public listener. */
export const UNSUBSCRIBE_PATH = "/_seraph/unsubscribe";

export interface AdminParts {
  service: AdminService;
  tokens: AdminTokens;
  policy: InvitePolicy;
  audit: Auditor;
  subjects: KyselySubjectRepository;
  views: KyselyAdminViewRepository;
}

export interface AdminOptions {
  serverName: string;
  publicBaseUrl: string;
  unsubscribeLinkDays: number;
  log: AuditLogger;
  keys?: KeyService | undefined;
  kickOnbind?: () => void;
  resendInvite?: (id: number) => Promise<boolean>;
  onRefused?: (reason: RefusalReason) => void;
  now?: () => number;
}

/** Builds the operator services over a migrated store (used by the server and by `seraph admin`). */
export async function createAdmin(store: Store, opts: AdminOptions): Promise<AdminParts> {
  const now = opts.now ?? Date.now;
  const secrets = new KyselyAdminSecretRepository(store.db);
  const gen = () => randomBytes(32).toString("base64url");
  const audit = new Auditor(
    new KyselyAuditLogRepository(store.db),
    await secrets.getOrCreate("audit_hmac_key", gen, now()),
    opts.log,
    now,
  );
  const policy = new InvitePolicy(
    {
      publicBaseUrl: opts.publicBaseUrl,
      unsubscribeLinkLifetimeMs: opts.unsubscribeLinkDays * 86_400_000,
      unsubscribePath: UNSUBSCRIBE_PATH,
    },
    new KyselyBlocklistRepository(store.db),
    new KyselySuppressionRepository(store.db),
    audit,
    await secrets.getOrCreate("unsubscribe_link_key", gen, now()),
    opts.onRefused,
    now,
  );
  const views = new KyselyAdminViewRepository(store.db);
  const subjects = new KyselySubjectRepository(store.db, store.dialect);
  const service = new AdminService({
    serverName: opts.serverName,
    views,
    subjects,
    associations: store.repos.associations,
    transact: store.transaction,
    policy,
    audit,
    keys: opts.keys,
    ...(opts.kickOnbind ? { kickOnbind: opts.kickOnbind } : {}),
    ...(opts.resendInvite ? { resendInvite: opts.resendInvite } : {}),
    now,
  });
  const tokens = new AdminTokens(new KyselyAdminTokenRepository(store.db), audit, now);
  return { service, tokens, policy, audit, subjects, views };
}
