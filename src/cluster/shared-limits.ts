/**
 * Rate limits shared by the workers of one `seraph serve --workers N` without Redis: the buckets live in
 * the primary, and each worker asks it over the cluster IPC channel. Without this, every worker would
 * keep its own buckets and a client could spend each limit once per worker.
 */
import type { FastifyRateLimitStore } from "@fastify/rate-limit";
import type { RouteLimitStore } from "../http/server.js";
import { type BucketRule, type KeyedRateLimiter, MemoryRateLimiter } from "../infra/rate-limiter.js";
import type { LimitAnswer, LimitAsk } from "./messages.js";

/** How long a worker waits for the primary's answer before letting the request through (fail open, as with Redis). */
const ANSWER_TIMEOUT_MS = 2000;
/** Route counters kept by the primary before the expired and then the oldest are dropped. */
const MAX_ROUTE_KEYS = 100_000;

/** Per-route request counters in fixed windows (the semantics of @fastify/rate-limit's own store). */
export class FixedWindowCounter {
  /** In least-recently-used-first order. */
  private readonly windows = new Map<string, { count: number; start: number; window: number }>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly maxKeys = MAX_ROUTE_KEYS,
  ) {}

  /** Counts one request for `key`; returns the count in the current window and the ms left in it. */
  incr(key: string, windowMs: number): { current: number; ttl: number } {
    const now = this.now();
    let w = this.windows.get(key);
    if (w) this.windows.delete(key);
    if (!w || w.start + windowMs <= now) {
      if (!w && this.windows.size >= this.maxKeys) this.evict(now);
      w = { count: 0, start: now, window: windowMs };
    }
    w.count += 1;
    this.windows.set(key, w);
    return { current: w.count, ttl: w.start + windowMs - now };
  }

  private evict(now: number): void {
    for (const [k, w] of this.windows) if (w.start + w.window <= now) this.windows.delete(k);
    let drop = this.windows.size >= this.maxKeys ? Math.ceil(this.maxKeys / 10) : 0;
    for (const k of this.windows.keys()) {
      if (drop-- <= 0) break;
      this.windows.delete(k);
    }
  }
}

/** The primary's side: answers the workers' questions from one set of buckets. */
export class PrimaryLimits {
  private readonly keyed: MemoryRateLimiter;
  private readonly routes: FixedWindowCounter;

  constructor(now: () => number = Date.now) {
    this.keyed = new MemoryRateLimiter(now);
    this.routes = new FixedWindowCounter(now);
  }

  async answer(ask: Exclude<LimitAsk, { seraph: "limit-return" }>): Promise<LimitAnswer> {
    if (ask.seraph === "limit-take") {
      const rule = { burst: ask.burst, perHour: ask.perHour };
      const wait = await this.keyed.take(ask.key, rule, ask.cost);
      const granted = wait === 0 ? this.keyed.takeAhead(ask.key, rule, ask.ahead) : 0;
      return { seraph: "limit-answer", id: ask.id, wait, granted };
    }
    const { current, ttl } = this.routes.incr(ask.key, ask.windowMs);
    return { seraph: "limit-answer", id: ask.id, current, ttl };
  }

  /** The answers to one message of questions, in its order; tokens given back are taken, not answered. */
  answerAll(asks: readonly LimitAsk[]): Promise<LimitAnswer[]> {
    const answers: Array<Promise<LimitAnswer>> = [];
    for (const ask of asks) {
      if (ask.seraph === "limit-return") {
        this.keyed.giveBack(ask.key, { burst: ask.burst, perHour: ask.perHour }, ask.tokens);
      } else {
        answers.push(this.answer(ask));
      }
    }
    return Promise.all(answers);
  }
}

/** A message type without its `id` (distributed over the union). */
type WithoutId<T> = T extends LimitAsk ? Omit<T, "id"> : never;

/**
 * How a worker reaches the primary: `send` the questions of one turn of the event loop (one IPC message);
 * answers come back through `WorkerLimits.receive`.
 */
export interface LimitChannel {
  send(asks: LimitAsk[]): void;
}

/** Questions sent together, and the timer that lets their requests through if the primary never answers. */
interface Sent {
  unanswered: number;
  readonly timer: NodeJS.Timeout;
}

/** Tokens of a per-key bucket a worker takes ahead: this share of the burst (v1 lookups: 100 of 2000). */
const AHEAD_SHARE = 1 / 20;
/** Tokens taken ahead and not spent within this are given back to the primary's bucket. */
const AHEAD_MS = 1000;
/** Keys with tokens taken ahead, at most (the expired ones go back first, then the oldest). */
const MAX_AHEAD_KEYS = 10_000;

/** Tokens of one key that this worker took from the primary's bucket and spends itself. */
interface Ahead {
  tokens: number;
  readonly burst: number;
  readonly perHour: number;
  readonly until: number;
}

/**
 * The worker's side: a keyed limiter and a route-limit store class, both asking the primary. The questions
 * asked during one turn of the event loop go in one message: an IPC message costs both processes some
 * 30 µs of CPU on the bench machine, more than the question itself. For the per-key buckets (lookup
 * budgets, per-address limits) a worker also takes a twentieth of the burst ahead, when the bucket has it,
 * and spends it without asking for up to a second, then gives back what it did not spend: the primary's
 * bucket is always charged first, so no key ever gets more than its limit; meanwhile a key may be refused
 * that much earlier on another worker.
 */
export class WorkerLimits {
  private readonly ahead = new Map<string, Ahead>();
  /** Keys whose question to the primary (with tokens ahead) is on its way: others ask for none. */
  private readonly asking = new Set<string>();
  private next = 1;
  private readonly waiting = new Map<
    number,
    { resolve: (a: LimitAnswer | undefined) => void; sent?: Sent }
  >();
  private pending: LimitAsk[] | undefined;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly channel: LimitChannel,
    private readonly now: () => number = Date.now,
  ) {}

  /** Hands an answer from the primary to the request that waits for it. */
  receive(answer: LimitAnswer): void {
    const w = this.waiting.get(answer.id);
    if (!w) return;
    this.waiting.delete(answer.id);
    if (w.sent && --w.sent.unanswered === 0) clearTimeout(w.sent.timer);
    w.resolve(answer);
  }

  private ask(q: WithoutId<LimitAsk>): Promise<LimitAnswer | undefined> {
    return new Promise((resolve) => {
      this.waiting.set(this.queue(q), { resolve });
    });
  }

  /** Puts a question in the next message; returns its id. */
  private queue(q: WithoutId<LimitAsk>): number {
    const id = this.next++;
    if (this.pending === undefined) {
      this.pending = [];
      setImmediate(() => this.flush());
    }
    this.pending.push({ ...q, id } as LimitAsk);
    return id;
  }

  /** Gives the unspent tokens of `key`'s grant back to the primary (in the next message) and forgets it. */
  private giveBack(key: string, a: Ahead): void {
    this.ahead.delete(key);
    if (a.tokens > 0) {
      this.queue({ seraph: "limit-return", key, burst: a.burst, perHour: a.perHour, tokens: a.tokens });
    }
  }

  /** Gives back the tokens of every grant older than AHEAD_MS (run every AHEAD_MS while any is held). */
  returnExpired(): void {
    const now = this.now();
    for (const [k, a] of this.ahead) if (a.until <= now) this.giveBack(k, a);
    if (this.ahead.size === 0 && this.sweeper !== undefined) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private flush(): void {
    const asks = this.pending ?? [];
    this.pending = undefined;
    if (asks.length === 0) return;
    const timer = setTimeout(() => {
      for (const a of asks) {
        const w = this.waiting.get(a.id);
        if (!w) continue;
        this.waiting.delete(a.id);
        w.resolve(undefined);
      }
    }, ANSWER_TIMEOUT_MS);
    timer.unref();
    const sent: Sent = { unanswered: 0, timer };
    for (const a of asks) {
      const w = this.waiting.get(a.id);
      if (w) {
        w.sent = sent;
        sent.unanswered++;
      }
    }
    if (sent.unanswered === 0) clearTimeout(timer);
    this.channel.send(asks);
  }

  /** Per-key buckets (addresses, numbers, countries, lookup budgets) kept in the primary. */
  readonly keyed: KeyedRateLimiter = {
    take: async (key: string, rule: BucketRule, cost = 1): Promise<number> => {
      const held = this.ahead.get(key);
      if (held !== undefined) {
        if (held.until > this.now() && held.burst === rule.burst && held.perHour === rule.perHour) {
          if (held.tokens >= cost) {
            held.tokens -= cost;
            return 0;
          }
        } else {
          this.giveBack(key, held);
        }
      }
      const first = !this.asking.has(key);
      if (first) this.asking.add(key);
      const ahead = first ? Math.floor(rule.burst * AHEAD_SHARE) : 0;
      try {
        const a = await this.ask({ seraph: "limit-take", key, ...rule, cost, ahead });
        if (a?.granted) this.keep(key, rule, a.granted);
        return a?.wait ?? 0;
      } finally {
        if (first) this.asking.delete(key);
      }
    },
  };

  /** Keeps `tokens` granted ahead for `key` for AHEAD_MS; what is left of its last grant goes back. */
  private keep(key: string, rule: BucketRule, tokens: number): void {
    const now = this.now();
    const left = this.ahead.get(key);
    if (left !== undefined) this.giveBack(key, left);
    if (this.ahead.size >= MAX_AHEAD_KEYS) {
      this.returnExpired();
      let drop = this.ahead.size >= MAX_AHEAD_KEYS ? Math.ceil(MAX_AHEAD_KEYS / 10) : 0;
      for (const [k, a] of this.ahead) {
        if (drop-- <= 0) break;
        this.giveBack(k, a);
      }
    }
    this.ahead.set(key, { tokens, burst: rule.burst, perHour: rule.perHour, until: now + AHEAD_MS });
    if (this.sweeper === undefined) {
      this.sweeper = setInterval(() => this.returnExpired(), AHEAD_MS);
      this.sweeper.unref();
    }
  }

  /** A store for @fastify/rate-limit whose counters are kept in the primary, one namespace per route. */
  routeStore(): RouteLimitStore {
    const limits = this;
    // The plugin constructs the store with its options (unused here) and makes a child per route.
    class PrimaryStore implements FastifyRateLimitStore {
      private prefix = "";
      incr(
        key: string,
        done: (error: Error | null, result?: { current: number; ttl: number }) => void,
        timeWindow: number,
      ): void {
        limits.ask({ seraph: "limit-incr", key: this.prefix + key, windowMs: timeWindow }).then((a) => {
          if (a?.current === undefined || a.ttl === undefined) done(new Error("no answer from the primary"));
          else done(null, { current: a.current, ttl: a.ttl });
        });
      }
      /** The plugin passes the route's merged limit options, with the route itself as `routeInfo`. */
      child(params: Parameters<FastifyRateLimitStore["child"]>[0]): FastifyRateLimitStore {
        const route = Reflect.get(params, "routeInfo") as
          | { method?: string | string[]; url?: string }
          | undefined;
        const child = new PrimaryStore();
        child.prefix = `${String(route?.method ?? "")} ${route?.url ?? ""} `;
        return child;
      }
    }
    return PrimaryStore;
  }
}
