// The node lifecycle controller's per-zone tainting queue (nodelifecycle/scheduler's
// RateLimitedTimedQueue): a set of node names ordered by when they may be processed, drained by
// `tryProcess` no faster than a token bucket allows — which is how eviction is rate limited per zone.

import type { Clock } from "../../client/index.ts";

/** Tokens taken per `tryProcess` step: upstream's EvictionRateLimiterBurst. */
export const EvictionRateLimiterBurst = 1;

/** flowcontrol.RateLimiter's non-blocking half. */
export interface TryAcceptLimiter {
  readonly qps: number;
  tryAccept(): boolean;
}

/** flowcontrol.NewTokenBucketRateLimiter: `burst` tokens to start with, refilled at `qps` per second. */
export class TokenBucketLimiter implements TryAcceptLimiter {
  private tokens: number;
  private last: number;

  constructor(
    readonly qps: number,
    private readonly burst: number,
    private readonly clock: Pick<Clock, "now">,
  ) {
    this.tokens = burst;
    this.last = clock.now();
  }

  tryAccept(): boolean {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    // Refills add up in many small steps: tolerate their rounding, or a token due at 10 s comes at 10.1 s.
    if (this.tokens < 1 - 1e-9) return false;
    this.tokens -= 1;
    return true;
  }
}

/** flowcontrol.NewFakeNeverRateLimiter: a stopped queue (qps 0). */
export class NeverLimiter implements TryAcceptLimiter {
  readonly qps = 0;
  tryAccept(): boolean {
    return false;
  }
}

export function newLimiter(qps: number, clock: Pick<Clock, "now">): TryAcceptLimiter {
  return qps <= 0 ? new NeverLimiter() : new TokenBucketLimiter(qps, EvictionRateLimiterBurst, clock);
}

/** One queued node: its name, the uid it had when queued, and when it may next be tried. */
export interface TimedValue {
  value: string;
  uid: string;
  addedAt: number;
  processAt: number;
}

/**
 * What to do with a value: true when done (it leaves the queue, but stays remembered so it is not
 * queued again until `remove`); false plus a wait to retry it later.
 */
export type ActionFunc = (value: TimedValue) => Promise<[done: boolean, retryAfterMs: number]>;

export class RateLimitedTimedQueue {
  /** Every value added and not yet removed, including those already processed. */
  private readonly set = new Set<string>();
  private queue: TimedValue[] = [];
  private limiter: TryAcceptLimiter;

  constructor(
    qps: number,
    private readonly clock: Pick<Clock, "now">,
  ) {
    this.limiter = newLimiter(qps, clock);
  }

  get qps(): number {
    return this.limiter.qps;
  }

  /** Queues a value unless it is already known (queued or processed); true when added. */
  add(value: string, uid: string): boolean {
    if (this.set.has(value)) return false;
    const now = this.clock.now();
    this.set.add(value);
    this.push({ value, uid, addedAt: now, processAt: now });
    return true;
  }

  /** Forgets a value, so it may be added again; true when it was known. */
  remove(value: string): boolean {
    if (!this.set.delete(value)) return false;
    this.queue = this.queue.filter((v) => v.value !== value);
    return true;
  }

  /** Queued, not yet processed. */
  has(value: string): boolean {
    return this.queue.some((v) => v.value === value);
  }

  len(): number {
    return this.queue.length;
  }

  clear(): void {
    this.set.clear();
    this.queue = [];
  }

  /**
   * Processes due values in order while the limiter grants a token for each: done values leave the
   * queue; failed ones are retried after their wait. Callers run one pass at a time.
   */
  async tryProcess(fn: ActionFunc): Promise<void> {
    for (let head = this.queue[0]; head; head = this.queue[0]) {
      if (!this.limiter.tryAccept()) return;
      const now = this.clock.now();
      if (now < head.processAt) return;
      this.queue.shift();
      const [done, waitMs] = await fn(head);
      // Removed while being processed (the node recovered or went away): nothing to retry.
      if (!done && this.set.has(head.value) && !this.has(head.value)) this.push({ ...head, processAt: now + waitMs + 1 });
    }
  }

  /**
   * Replaces the limiter with one at `qps` (0 stops the queue). When the old one had no token to
   * give, the new one starts drained too, so a swap is not a free extra eviction (as upstream).
   */
  swapLimiter(qps: number): void {
    if (this.limiter.qps === qps) return;
    const next = newLimiter(qps, this.clock);
    if (qps > 0 && !this.limiter.tryAccept()) next.tryAccept();
    this.limiter = next;
  }

  private push(v: TimedValue): void {
    let i = this.queue.length;
    while (i > 0 && this.queue[i - 1]!.processAt > v.processAt) i--;
    this.queue.splice(i, 0, v);
  }
}
