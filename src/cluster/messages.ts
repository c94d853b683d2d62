/** The messages between the primary and the workers of `seraph serve --workers N` (node:cluster IPC). */

/** A worker's rate-limit question (the buckets live in the primary, see shared-limits.ts). */
export type LimitAsk =
  /**
   * Take `cost` tokens of the bucket `key` (burst, refilled per hour) and, when that is allowed, up to `ahead`
   * more for the worker to spend itself (see WorkerLimits).
   */
  | {
      seraph: "limit-take";
      id: number;
      key: string;
      burst: number;
      perHour: number;
      cost: number;
      ahead: number;
    }
  /** Give `tokens` taken ahead and not spent back to the bucket `key` (not answered). */
  | { seraph: "limit-return"; id: number; key: string; burst: number; perHour: number; tokens: number }
  /**
   * Count a request of a per-route fixed window and, while the window stays within `max`, reserve up to
   * `ahead` more counts for the worker to hand out itself (see WorkerLimits).
   */
  | { seraph: "limit-incr"; id: number; key: string; windowMs: number; max: number; ahead: number }
  /** Give back `count` reserved counts not handed out, if the window that began at `start` still runs. */
  | { seraph: "limit-uncount"; id: number; key: string; start: number; count: number };

/**
 * The primary's answer: `wait` for a take (0 = allowed) and the tokens `granted` ahead; for a count,
 * `current`/`ttl`, the counts `granted` after `current` and the `start` of the window.
 */
export interface LimitAnswer {
  seraph: "limit-answer";
  id: number;
  wait?: number;
  granted?: number;
  current?: number;
  ttl?: number;
  start?: number;
}

/** Primary → worker. */
export type ToWorker =
  /** This worker now runs (or no longer runs) the shared background tasks. */
  | { seraph: "leader"; leader: boolean }
  /** A shared task was kicked in another worker: run it soon. */
  | { seraph: "kick"; task: string }
  /** The answers to one `limits` message, in its order. */
  | { seraph: "limit-answers"; answers: LimitAnswer[] };

/** Worker → primary. */
export type ToPrimary =
  /** The worker has opened the database and listens; `address` is the base URL it bound. */
  | { seraph: "listening"; address: string }
  /** A shared task was kicked here but runs in the leader. */
  | { seraph: "kick"; task: string }
  /** The rate-limit questions of one turn of the worker's event loop (one message instead of one each). */
  | { seraph: "limits"; asks: LimitAsk[] };

function isObject(m: unknown): m is Record<string, unknown> {
  return typeof m === "object" && m !== null;
}

const isNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

export function isToWorker(m: unknown): m is ToWorker {
  return (
    isObject(m) &&
    ((m.seraph === "leader" && typeof m.leader === "boolean") ||
      (m.seraph === "kick" && typeof m.task === "string") ||
      (m.seraph === "limit-answers" && Array.isArray(m.answers) && m.answers.every(isLimitAnswer)))
  );
}

function isLimitAnswer(m: unknown): m is LimitAnswer {
  return isObject(m) && m.seraph === "limit-answer" && isNumber(m.id);
}

function isLimitAsk(m: unknown): m is LimitAsk {
  if (!isObject(m) || !isNumber(m.id) || typeof m.key !== "string") return false;
  if (m.seraph === "limit-take") {
    return isNumber(m.burst) && isNumber(m.perHour) && isNumber(m.cost) && isNumber(m.ahead);
  }
  if (m.seraph === "limit-return") return isNumber(m.burst) && isNumber(m.perHour) && isNumber(m.tokens);
  if (m.seraph === "limit-uncount") return isNumber(m.start) && isNumber(m.count);
  return m.seraph === "limit-incr" && isNumber(m.windowMs) && isNumber(m.max) && isNumber(m.ahead);
}

export function isToPrimary(m: unknown): m is ToPrimary {
  if (!isObject(m)) return false;
  switch (m.seraph) {
    case "listening":
      return typeof m.address === "string";
    case "kick":
      return typeof m.task === "string";
    case "limits":
      return Array.isArray(m.asks) && m.asks.every(isLimitAsk);
    default:
      return false;
  }
}
