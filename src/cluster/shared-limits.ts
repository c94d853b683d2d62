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

  /**
   * Counts one request for `key`, and `ahead` more when they keep the window within `max` (reserved for a
   * worker to hand out); returns the count of this request, the ms left in the window, the counts reserved
   * after it and when the window began.
   *
   *   counter.incr("GET /x 1.2.3.4", 60_000); // { current: 1, ttl: 60000, granted: 0, start: … }
   */
  incr(
    key: string,
    windowMs: number,
    max = Number.POSITIVE_INFINITY,
    ahead = 0,
  ): { current: number; ttl: number; granted: number; start: number } {
    const now = this.now();
    let w = this.windows.get(key);
    if (w) this.windows.delete(key);
    if (!w || w.start + windowMs <= now) {
      if (!w && this.windows.size >= this.maxKeys) this.evict(now);
      w = { count: 0, start: now, window: windowMs };
    }
    w.count += 1;
    const current = w.count;
    const granted = ahead > 0 && current + ahead <= max ? ahead : 0;
    w.count += granted;
    this.windows.set(key, w);
    return { current, ttl: w.start + windowMs - now, granted, start: w.start };
  }

  /** Takes back `count` reserved counts of `key`'s window that began at `start`, if it still runs. */
  uncount(key: string, start: number, count: number): void {
    const w = this.windows.get(key);
    if (w && w.start === start && w.start + w.window > this.now()) w.count = Math.max(0, w.count - count);
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

  async answer(ask: Exclude<LimitAsk, { seraph: "limit-return" | "limit-uncount" }>): Promise<LimitAnswer> {
    if (ask.seraph === "limit-take") {
      const rule = { burst: ask.burst, perHour: ask.perHour };
      const wait = await this.keyed.take(ask.key, rule, ask.cost);
      const granted = wait === 0 ? this.keyed.takeAhead(ask.key, rule, ask.ahead) : 0;
      return { seraph: "limit-answer", id: ask.id, wait, granted };
    }
    const { current, ttl, granted, start } = this.routes.incr(ask.key, ask.windowMs, ask.max, ask.ahead);
    return { seraph: "limit-answer", id: ask.id, current, ttl, granted, start };
  }

  /** The answers to one message of questions, in its order; tokens given back are taken, not answered. */
  answerAll(asks: readonly LimitAsk[]): Promise<LimitAnswer[]> {
    const answers: Array<Promise<LimitAnswer>> = [];
    for (const ask of asks) {
      if (ask.seraph === "limit-return") {
        this.keyed.giveBack(ask.key, { burst: ask.burst, perHour: ask.perHour }, ask.tokens);
      } else if (ask.seraph === "limit-uncount") {
        this.routes.uncount(ask.key, ask.start, ask.count);
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

/** Counts of one route key's window that the primary reserved for this worker: `next` to `last`. */
interface Counts {
  next: number;
  readonly last: number;
  /** When the primary's window began (it names the window when counts go back) and ends, on this clock. */
  readonly start: number;
  readonly windowEnd: number;
  /** Handed out until then: AHEAD_MS after the question, or the window's end if that comes first. */
  readonly until: number;
}

/**
 * The worker's side: a keyed limiter and a route-limit store class, both asking the primary. The questions
 * asked during one turn of the event loop go in one message: an IPC message costs both processes some
 * 30 µs of CPU on the bench machine, more than the question itself. For the per-key buckets (lookup
 * budgets, per-address limits) a worker also takes a twentieth of the burst ahead, when the bucket has it,
 * and spends it without asking for up to a second, then gives back what it did not spend: the primary's
 * bucket is always charged first, so no key ever gets more than its limit; meanwhile a key may be refused
 * that much earlier on another worker. Per-route counters work the same way: a worker reserves a twentieth
 * of the route's limit in the primary's window (while the window stays within it) and hands those counts
 * out itself, then gives back what it did not.
 */
export class WorkerLimits {
  private readonly ahead = new Map<string, Ahead>();
  /** Route counts reserved in the primary's windows, handed out here. */
  private readonly counts = new Map<string, Counts>();
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

  /** Gives the reserved counts of `key` not handed out back to the primary's window and forgets them. */
  private uncount(key: string, c: Counts): void {
    this.counts.delete(key);
    const count = c.last - c.next + 1;
    if (count > 0 && c.windowEnd > this.now()) {
      this.queue({ seraph: "limit-uncount", key, start: c.start, count });
    }
  }

  /** Gives back every grant and reservation older than AHEAD_MS (run every AHEAD_MS while any is held). */
  returnExpired(): void {
    const now = this.now();
    for (const [k, a] of this.ahead) if (a.until <= now) this.giveBack(k, a);
    for (const [k, c] of this.counts) if (c.until <= now) this.uncount(k, c);
    if (this.ahead.size === 0 && this.counts.size === 0 && this.sweeper !== undefined) {
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
    this.makeRoom(this.ahead, (k, a) => this.giveBack(k, a));
    this.ahead.set(key, { tokens, burst: rule.burst, perHour: rule.perHour, until: now + AHEAD_MS });
    this.sweep();
  }

  /** Keeps the counts after `current` that the primary reserved for `key` (see `routeStore`). */
  private keepCounts(
    key: string,
    asked: number,
    a: { current: number; ttl: number; granted: number; start: number },
  ): void {
    const left = this.counts.get(key);
    if (left !== undefined) this.uncount(key, left);
    this.makeRoom(this.counts, (k, c) => this.uncount(k, c));
    this.counts.set(key, {
      next: a.current + 1,
      last: a.current + a.granted,
      start: a.start,
      windowEnd: asked + a.ttl,
      until: asked + Math.min(a.ttl, AHEAD_MS),
    });
    this.sweep();
  }

  /** At MAX_AHEAD_KEYS keys in `held`: the expired go back, then the oldest tenth (`release` each). */
  private makeRoom<T>(held: Map<string, T>, release: (key: string, value: T) => void): void {
    if (held.size < MAX_AHEAD_KEYS) return;
    this.returnExpired();
    let drop = held.size >= MAX_AHEAD_KEYS ? Math.ceil(MAX_AHEAD_KEYS / 10) : 0;
    for (const [k, v] of held) {
      if (drop-- <= 0) break;
      release(k, v);
    }
  }

  private sweep(): void {
    if (this.sweeper === undefined) {
      this.sweeper = setInterval(() => this.returnExpired(), AHEAD_MS);
      this.sweeper.unref();
    }
  }

  /**
   * Counts a request of route key `key` in the primary's fixed window of `windowMs`: from the counts
   * reserved here when there are any left, else by asking (and reserving a twentieth of `max` ahead).
   */
  private async countRoute(
    key: string,
    windowMs: number,
    max: number,
  ): Promise<{ current: number; ttl: number }> {
    const now = this.now();
    const held = this.counts.get(key);
    if (held !== undefined) {
      if (held.until > now && held.next <= held.last) {
        return { current: held.next++, ttl: held.windowEnd - now };
      }
      this.uncount(key, held);
    }
    const first = !this.asking.has(key);
    if (first) this.asking.add(key);
    // (IPC carries JSON: a limit that is not a finite number reserves nothing.)
    const limit = Number.isFinite(max) ? max : 0;
    const ahead = first ? Math.floor(limit * AHEAD_SHARE) : 0;
    try {
      const a = await this.ask({ seraph: "limit-incr", key, windowMs, max: limit, ahead });
      if (a?.current === undefined || a.ttl === undefined) throw new Error("no answer from the primary");
      if (a.granted && a.start !== undefined) {
        // Timed from the question, not the answer: the primary counted after it was asked, so the
        // reservation ends no later than the primary's window, however long the answer took.
        this.keepCounts(key, now, { current: a.current, ttl: a.ttl, granted: a.granted, start: a.start });
      }
      return { current: a.current, ttl: a.ttl };
    } finally {
      if (first) this.asking.delete(key);
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
        max: number,
      ): void {
        limits.countRoute(this.prefix + key, timeWindow, max).then(
          (r) => done(null, r),
          (err: Error) => done(err),
        );
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
