/** The messages between the primary and the workers of `seraph serve --workers N` (node:cluster IPC). */

/** Primary → worker. */
export type ToWorker =
  /** This worker now runs (or no longer runs) the shared background tasks. */
  | { seraph: "leader"; leader: boolean }
  /** A shared task was kicked in another worker: run it soon. */
  | { seraph: "kick"; task: string };

/** Worker → primary. */
export type ToPrimary =
  /** The worker has opened the database and listens; `address` is the base URL it bound. */
  | { seraph: "listening"; address: string }
  /** A shared task was kicked here but runs in the leader. */
  | { seraph: "kick"; task: string };

function isObject(m: unknown): m is Record<string, unknown> {
  return typeof m === "object" && m !== null;
}

export function isToWorker(m: unknown): m is ToWorker {
  return (
    isObject(m) &&
    ((m.seraph === "leader" && typeof m.leader === "boolean") ||
      (m.seraph === "kick" && typeof m.task === "string"))
  );
}

export function isToPrimary(m: unknown): m is ToPrimary {
  return (
    isObject(m) &&
    ((m.seraph === "listening" && typeof m.address === "string") ||
      (m.seraph === "kick" && typeof m.task === "string"))
  );
}
