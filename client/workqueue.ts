// The rate-limited work queue of keys (client-go's workqueue: Type + delaying queue + rate limiters),
// with its metrics.

import { Counter, Gauge, Histogram, register as defaultRegistry, type Registry } from "prom-client";
import { realClock } from "./clock.ts";
import type { Clock, ObjectKey, WorkQueue } from "./types.ts";

export interface RateLimitingQueueOptions {
  /** The `name` label of the metrics (the controller's name). */
  name?: string;
  clock?: Clock;
  /** Per-key exponential backoff: baseDelayMs · 2^failures, capped at maxDelayMs (5 ms → 1000 s). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** The overall token bucket (50 qps, burst 300). */
  qps?: number;
  burst?: number;
  /** Where metrics register; default prom-client's global registry; null for none. */
  registry?: Registry | null;
}

/** client-go's RateLimiter: how long to wait before re-adding a key, and its failure history. */
export interface RateLimiter<K> {
  when(key: K): number;
  forget(key: K): void;
  numRequeues(key: K): number;
}

/** Per-key exponential backoff (ItemExponentialFailureRateLimiter). */
export class ItemExponentialFailureRateLimiter<K> implements RateLimiter<K> {
  private readonly failures = new Map<K, number>();
  constructor(
    private readonly baseMs: number,
    private readonly maxMs: number,
  ) {}
  when(key: K): number {
    const exp = this.failures.get(key) ?? 0;
    this.failures.set(key, exp + 1);
    const backoff = this.baseMs * 2 ** exp;
    return Number.isFinite(backoff) ? Math.min(backoff, this.maxMs) : this.maxMs;
  }
  forget(key: K): void {
    this.failures.delete(key);
  }
  numRequeues(key: K): number {
    return this.failures.get(key) ?? 0;
  }
}

/** A token bucket shared by every key (BucketRateLimiter over golang.org/x/time/rate's Reserve). */
export class BucketRateLimiter<K> implements RateLimiter<K> {
  private tokens: number;
  private last: number;
  constructor(
    private readonly qps: number,
    private readonly burst: number,
    private readonly clock: Pick<Clock, "now">,
  ) {
    this.tokens = burst;
    this.last = clock.now();
  }
  when(): number {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.qps) / 1000);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000;
  }
  forget(): void {}
  numRequeues(): number {
    return 0;
  }
}

/** The longest wait any of the limiters asks for (MaxOfRateLimiter). */
export class MaxOfRateLimiter<K> implements RateLimiter<K> {
  private readonly limiters: RateLimiter<K>[];
  constructor(...limiters: RateLimiter<K>[]) {
    this.limiters = limiters;
  }
  when(key: K): number {
    let max = 0;
    for (const l of this.limiters) max = Math.max(max, l.when(key));
    return max;
  }
  forget(key: K): void {
    for (const l of this.limiters) l.forget(key);
  }
  numRequeues(key: K): number {
    let max = 0;
    for (const l of this.limiters) max = Math.max(max, l.numRequeues(key));
    return max;
  }
}

interface QueueMetrics {
  depth: Gauge<"name">;
  adds: Counter<"name">;
  queueDuration: Histogram<"name">;
  workDuration: Histogram<"name">;
  retries: Counter<"name">;
}

const DURATION_BUCKETS = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10]; // client-go's ExponentialBuckets(1e-8, 10, 10)
const metricsByRegistry = new WeakMap<Registry, QueueMetrics>();

/** The workqueue metrics of a registry, created once per registry and shared by its queues. */
export function workqueueMetrics(registry: Registry): QueueMetrics {
  let m = metricsByRegistry.get(registry);
  if (m) return m;
  const get = <M>(name: string, make: () => M): M => (registry.getSingleMetric(name) as M | undefined) ?? make();
  const registers = [registry];
  m = {
    depth: get("workqueue_depth", () => new Gauge({ name: "workqueue_depth", help: "Current depth of the workqueue", labelNames: ["name"], registers })),
    adds: get("workqueue_adds_total", () => new Counter({ name: "workqueue_adds_total", help: "Total number of adds handled by the workqueue", labelNames: ["name"], registers })),
    queueDuration: get(
      "workqueue_queue_duration_seconds",
      () => new Histogram({ name: "workqueue_queue_duration_seconds", help: "How long in seconds an item stays in the workqueue before being requested", labelNames: ["name"], buckets: DURATION_BUCKETS, registers }),
    ),
    workDuration: get(
      "workqueue_work_duration_seconds",
      () => new Histogram({ name: "workqueue_work_duration_seconds", help: "How long in seconds processing an item from the workqueue takes", labelNames: ["name"], buckets: DURATION_BUCKETS, registers }),
    ),
    retries: get("workqueue_retries_total", () => new Counter({ name: "workqueue_retries_total", help: "Total number of retries handled by the workqueue", labelNames: ["name"], registers })),
  };
  metricsByRegistry.set(registry, m);
  return m;
}

/**
 * client-go's rate-limiting queue. `dirty` holds keys waiting to be processed, `processing` the
 * keys handed to workers: a key added while processing stays dirty and is queued again by `done`,
 * so no key is ever on two workers and no add is lost.
 */
export class RateLimitingQueue<K = ObjectKey> implements WorkQueue<K> {
  private readonly queue: K[] = [];
  private readonly dirty = new Set<K>();
  private readonly processing = new Set<K>();
  private readonly waiters: (() => void)[] = [];
  private readonly waiting = new Map<K, { at: number; timer: { cancel(): void } }>();
  private readonly addedAt = new Map<K, number>();
  private readonly startedAt = new Map<K, number>();
  private shuttingDown = false;
  private readonly clock: Clock;
  private readonly limiter: RateLimiter<K>;
  private readonly name: string;
  private readonly metrics?: QueueMetrics;

  constructor(opts: RateLimitingQueueOptions = {}, limiter?: RateLimiter<K>) {
    this.clock = opts.clock ?? realClock;
    this.name = opts.name ?? "";
    this.limiter =
      limiter ??
      new MaxOfRateLimiter<K>(
        new ItemExponentialFailureRateLimiter<K>(opts.baseDelayMs ?? 5, opts.maxDelayMs ?? 1_000_000),
        new BucketRateLimiter<K>(opts.qps ?? 50, opts.burst ?? 300, this.clock),
      );
    const registry = opts.registry === undefined ? defaultRegistry : opts.registry;
    if (registry) this.metrics = workqueueMetrics(registry);
    if (this.metrics) {
      // As client-go's queue metrics provider: a queue's series exist from its creation, at zero,
      // so every queue of a process is listed before it sees its first key.
      const labels = { name: this.name };
      this.metrics.depth.set(labels, 0);
      this.metrics.adds.inc(labels, 0);
      this.metrics.retries.inc(labels, 0);
      this.metrics.queueDuration.zero(labels);
      this.metrics.workDuration.zero(labels);
    }
  }

  add(key: K): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.metrics?.adds.inc({ name: this.name });
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    this.enqueue(key);
  }

  addAfter(key: K, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    const at = this.clock.now() + delayMs;
    const prev = this.waiting.get(key);
    if (prev && prev.at <= at) return; // already due sooner
    prev?.timer.cancel();
    const timer = this.clock.setTimeout(() => {
      this.waiting.delete(key);
      this.add(key);
    }, delayMs);
    this.waiting.set(key, { at, timer });
  }

  addRateLimited(key: K): void {
    this.metrics?.retries.inc({ name: this.name });
    this.addAfter(key, this.limiter.when(key));
  }

  forget(key: K): void {
    this.limiter.forget(key);
  }

  numRequeues(key: K): number {
    return this.limiter.numRequeues(key);
  }

  async get(): Promise<K | undefined> {
    for (;;) {
      if (this.queue.length) {
        const key = this.queue.shift()!;
        this.processing.add(key);
        this.dirty.delete(key);
        const now = this.clock.now();
        const added = this.addedAt.get(key);
        this.addedAt.delete(key);
        this.startedAt.set(key, now);
        if (this.metrics) {
          this.metrics.depth.dec({ name: this.name });
          if (added !== undefined) this.metrics.queueDuration.observe({ name: this.name }, (now - added) / 1000);
        }
        return key;
      }
      if (this.shuttingDown) return undefined;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  done(key: K): void {
    this.processing.delete(key);
    const started = this.startedAt.get(key);
    this.startedAt.delete(key);
    if (this.metrics && started !== undefined) this.metrics.workDuration.observe({ name: this.name }, (this.clock.now() - started) / 1000);
    if (this.dirty.has(key)) this.enqueue(key);
  }

  len(): number {
    return this.queue.length;
  }

  /** Stops accepting adds, drops pending delayed adds; get() drains what is queued, then returns undefined. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const w of this.waiting.values()) w.timer.cancel();
    this.waiting.clear();
    for (const w of this.waiters.splice(0)) w();
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  private enqueue(key: K): void {
    this.queue.push(key);
    this.addedAt.set(key, this.clock.now());
    this.metrics?.depth.inc({ name: this.name });
    this.waiters.shift()?.();
  }
}

/** A rate-limited work queue: per-key exponential backoff (5 ms → 1000 s) max'd with a 50 qps / 300 burst bucket. */
export function newRateLimitingQueue<K = ObjectKey>(opts: RateLimitingQueueOptions = {}): RateLimitingQueue<K> {
  return new RateLimitingQueue<K>(opts);
}
