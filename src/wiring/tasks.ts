import type { ResolvedConfig } from "../config/load.js";
import type { BackgroundTasks } from "../infra/background.js";
import type { KeyService } from "../services/keys.js";
import type { Services } from "./services.js";

/** The background work of an instance: onbind delivery, pepper maintenance, reaping, key refresh. */
export function startTasks(
  tasks: BackgroundTasks,
  config: ResolvedConfig,
  s: Services & { keys: KeyService },
): void {
  tasks.add("onbind", config.onbind.poll_interval_ms, () => s.onbind.runDue());
  tasks.add("lookup-peppers", config.lookup.maintenance_interval_seconds * 1000, () => s.lookup.maintain());
  tasks.add("session-reaper", 10 * 60_000, () => s.validation.reap());
  tasks.add("invite-purge", 60 * 60_000, () => s.onbind.purgeExpiredInvites());
  // Stores a signature for associations that have none (older data, a revoked key), for v1 lookup: 500
  // a second at most while there is a backlog (about 35 minutes per million), so requests are not held up.
  tasks.add("sign-associations", 10 * 60_000, () => s.associations.signStored(500), { busyDelayMs: 1000 });
  // Revocations made with `seraph keys revoke` (possibly by another instance) reach this one.
  tasks.add("keys-refresh", 60_000, () => s.keys.refresh(), { everyProcess: true });
}
