// The scheduling queue (upstream's PriorityQueue): activeQ by priority then arrival, backoffQ by
// backoff expiry, and unschedulable pods parked until a cluster event their rejectors registered.

import { Gauge, type Registry } from "prom-client";
import type { Pod } from "../api/index.ts";
import type { Clock } from "../client/index.ts";
import { podKey } from "./framework/nodeinfo.ts";
import type { ClusterEvent, PodInfo } from "./framework/types.ts";

export const DEFAULT_POD_INITIAL_BACKOFF_MS = 1_000;
export const DEFAULT_POD_MAX_BACKOFF_MS = 10_000;
/** Unschedulable pods older than this are retried even without an event (the safety net). */
export const DEFAULT_POD_MAX_IN_UNSCHEDULABLE_MS = 5 * 60_000;

/** Events that match every registration: the periodic flush, and forced moves. */
export const UNSCHEDULABLE_TIMEOUT: ClusterEvent = { resource: "*", actionType: 1 | 2 | 4 | 8 | 16 | 32 | 64 | 128 | 256 };

/** A pod in the queue with its attempt history (framework.QueuedPodInfo). */
export interface QueuedPodInfo extends PodInfo {
  /** When it last entered the queue (or last failed): ordering and backoff start. */
  timestamp: number;
  /** When it first entered the queue; for the attempt-duration metric. */
  initialAttemptTimestamp: number;
  /** Scheduling attempts so far. */
  attempts: number;
  /** Plugins that rejected it in the last attempt; empty means "any event may help". */
  unschedulablePlugins: Set<string>;
  /** Held back by spec.schedulingGates. */
  gated: boolean;
}

/** Upstream's Heap: a binary heap with keyed lookup, update and delete. */
export class Heap<T> {
  private readonly items: T[] = [];
  private readonly index = new Map<string, number>();
  constructor(
    private readonly keyOf: (item: T) => string,
    private readonly less: (a: T, b: T) => boolean,
  ) {}

  get size(): number {
    return this.items.length;
  }
  has(key: string): boolean {
    return this.index.has(key);
  }
  get(key: string): T | undefined {
    const i = this.index.get(key);
    return i === undefined ? undefined : this.items[i];
  }
  peek(): T | undefined {
    return this.items[0];
  }
  list(): readonly T[] {
    return this.items;
  }
  /** Adds, or replaces the item with the same key and re-orders it. */
  addOrUpdate(item: T): void {
    const key = this.keyOf(item);
    const i = this.index.get(key);
    if (i !== undefined) {
      this.items[i] = item;
      this.fix(i);
      return;
    }
    this.items.push(item);
    this.index.set(key, this.items.length - 1);
    this.up(this.items.length - 1);
  }
  delete(key: string): T | undefined {
    const i = this.index.get(key);
    if (i === undefined) return undefined;
    const item = this.items[i]!;
    const last = this.items.pop()!;
    this.index.delete(key);
    if (i < this.items.length) {
      this.items[i] = last;
      this.index.set(this.keyOf(last), i);
      this.fix(i);
    }
    return item;
  }
  pop(): T | undefined {
    const top = this.items[0];
    if (top !== undefined) this.delete(this.keyOf(top));
    return top;
  }
  private fix(i: number): void {
    if (!this.up(i)) this.down(i);
  }
  private swap(i: number, j: number): void {
    const a = this.items[i]!;
    const b = this.items[j]!;
    this.items[i] = b;
    this.items[j] = a;
    this.index.set(this.keyOf(b), i);
    this.index.set(this.keyOf(a), j);
  }
  private up(i: number): boolean {
    const start = i;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(this.items[i]!, this.items[parent]!)) break;
      this.swap(i, parent);
      i = parent;
    }
    return i !== start;
  }
  private down(i: number): void {
    const n = this.items.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) return;
      const r = l + 1;
      const child = r < n && this.less(this.items[r]!, this.items[l]!) ? r : l;
      if (!this.less(this.items[child]!, this.items[i]!)) return;
      this.swap(i, child);
      i = child;
    }
  }
}

export function podPriority(pod: Readonly<Pod>): number {
  return pod.spec?.priority ?? 0;
}

/** Whether an event a plugin registered covers the event that happened. */
export function eventMatches(registered: ClusterEvent, happened: ClusterEvent): boolean {
  const resourceOk = registered.resource === "*" || happened.resource === "*" || registered.resource === happened.resource;
  return resourceOk && (registered.actionType & happened.actionType) !== 0;
}

export interface SchedulingQueueOptions {
  clock: Clock;
  /**
   * Plugin name → the cluster events that may make a pod it rejected schedulable (EventsToRegister).
   * A rejecting plugin missing here is treated as interested in every event, as upstream does.
   */
  clusterEventMap?: ReadonlyMap<string, readonly ClusterEvent[]>;
  /** Default 1 s, doubling per attempt up to podMaxBackoffMs (default 10 s). */
  podInitialBackoffMs?: number;
  podMaxBackoffMs?: number;
  /** Default 5 min. */
  podMaxInUnschedulablePodsDurationMs?: number;
  /** Where `scheduler_pending_pods` registers; none when absent. */
  registry?: Registry;
}

/**
 * The queue between informers and the scheduling loop. `pop` hands out the highest-priority pod;
 * after an attempt the scheduler calls `addUnschedulable` (rejected or failed) and always `done`.
 * Events that arrive while a pod is being scheduled are remembered, so a rejection that raced an
 * event which could have helped goes to backoff rather than waiting for the next such event.
 */
export class SchedulingQueue {
  private readonly clock: Clock;
  private readonly eventMap: ReadonlyMap<string, readonly ClusterEvent[]>;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly maxInUnschedulableMs: number;

  private readonly activeQ = new Heap<QueuedPodInfo>(
    (p) => podKey(p.pod),
    (a, b) => {
      const pa = podPriority(a.pod);
      const pb = podPriority(b.pod);
      return pa > pb || (pa === pb && a.timestamp < b.timestamp);
    },
  );
  private readonly backoffQ = new Heap<QueuedPodInfo>(
    (p) => podKey(p.pod),
    (a, b) => this.backoffExpiry(a) < this.backoffExpiry(b),
  );
  private readonly unschedulable = new Map<string, QueuedPodInfo>();
  /** Pods popped and not yet `done`, with the event sequence number at pop time. */
  private readonly inFlight = new Map<string, number>();
  private inFlightEvents: { seq: number; event: ClusterEvent }[] = [];
  private eventSeq = 0;
  private waiters: (() => void)[] = [];
  private closed = false;

  constructor(opts: SchedulingQueueOptions) {
    this.clock = opts.clock;
    this.eventMap = opts.clusterEventMap ?? new Map();
    this.initialBackoffMs = opts.podInitialBackoffMs ?? DEFAULT_POD_INITIAL_BACKOFF_MS;
    this.maxBackoffMs = opts.podMaxBackoffMs ?? DEFAULT_POD_MAX_BACKOFF_MS;
    this.maxInUnschedulableMs = opts.podMaxInUnschedulablePodsDurationMs ?? DEFAULT_POD_MAX_IN_UNSCHEDULABLE_MS;
    if (opts.registry) {
      const queue = this;
      new Gauge({
        name: "scheduler_pending_pods",
        help: "Number of pending pods, by the queue type.",
        labelNames: ["queue"] as const,
        registers: [opts.registry],
        collect() {
          const c = queue.pendingCounts();
          for (const [k, v] of Object.entries(c)) this.set({ queue: k }, v);
        },
      });
    }
  }

  // ---- informer side ----

  /** A new unassigned pod (or one re-added): to activeQ, or parked as gated. Updates it if already queued. */
  add(pod: Readonly<Pod>): void {
    const key = podKey(pod);
    if (this.activeQ.has(key) || this.backoffQ.has(key) || this.unschedulable.has(key)) {
      this.update(undefined, pod);
      return;
    }
    const now = this.clock.now();
    const info: QueuedPodInfo = {
      pod,
      timestamp: now,
      initialAttemptTimestamp: now,
      attempts: 0,
      unschedulablePlugins: new Set(),
      gated: isGated(pod),
    };
    if (info.gated) this.unschedulable.set(key, info);
    else this.pushActive(info);
  }

  /**
   * The pod changed. Queued pods are updated in place; a parked pod whose spec or labels changed is
   * retried (the change may be what it needed); a pod the queue does not hold is added.
   */
  update(old: Readonly<Pod> | undefined, pod: Readonly<Pod>): void {
    const key = podKey(pod);
    const active = this.activeQ.get(key);
    if (active) {
      this.activeQ.addOrUpdate({ ...active, pod });
      return;
    }
    const backoff = this.backoffQ.get(key);
    if (backoff) {
      this.backoffQ.addOrUpdate({ ...backoff, pod });
      return;
    }
    const parked = this.unschedulable.get(key);
    if (parked) {
      const info: QueuedPodInfo = { ...parked, pod, gated: isGated(pod) };
      const oldPod = old ?? parked.pod;
      if (info.gated) {
        this.unschedulable.set(key, info);
      } else if (parked.gated || specOrLabelsChanged(oldPod, pod)) {
        this.unschedulable.delete(key);
        if (parked.gated) this.pushActive(info);
        else this.requeue(info);
      } else {
        this.unschedulable.set(key, info);
      }
      return;
    }
    if (!this.inFlight.has(key)) this.add(pod);
  }

  delete(pod: Readonly<Pod>): void {
    const key = podKey(pod);
    this.activeQ.delete(key);
    this.backoffQ.delete(key);
    this.unschedulable.delete(key);
  }

  // ---- scheduling loop side ----

  /** The next pod to schedule; waits for one. Resolves undefined when the signal aborts or the queue closes. */
  async pop(signal?: AbortSignal): Promise<QueuedPodInfo | undefined> {
    for (;;) {
      if (this.closed || signal?.aborted) return undefined;
      const info = this.activeQ.pop();
      if (info) {
        info.attempts++;
        this.inFlight.set(podKey(info.pod), this.eventSeq);
        return info;
      }
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          signal?.removeEventListener("abort", wake);
          resolve();
        };
        this.waiters.push(wake);
        signal?.addEventListener("abort", wake, { once: true });
      });
    }
  }

  /**
   * After a failed attempt: parks the pod as unschedulable, remembering which plugins rejected it;
   * or, when an event those plugins care about arrived during the attempt (or no plugin rejected it,
   * i.e. an error), sends it to backoff. A pod already back in the queue (updated meanwhile) is kept.
   */
  addUnschedulable(podInfo: QueuedPodInfo, rejectorPlugins: Iterable<string>): void {
    const key = podKey(podInfo.pod);
    if (this.activeQ.has(key) || this.backoffQ.has(key) || this.unschedulable.has(key)) return;
    const info: QueuedPodInfo = {
      ...podInfo,
      timestamp: this.clock.now(),
      unschedulablePlugins: new Set(rejectorPlugins),
      gated: isGated(podInfo.pod),
    };
    const poppedAt = this.inFlight.get(key);
    const missedEvent =
      poppedAt !== undefined && this.inFlightEvents.some((e) => e.seq > poppedAt && this.podMatchesEvent(info, e.event));
    if (info.gated || (info.unschedulablePlugins.size > 0 && !missedEvent)) {
      this.unschedulable.set(key, info);
    } else {
      this.backoffQ.addOrUpdate(info);
    }
  }

  /** The attempt for this pod is over (bound, parked or dropped). */
  done(pod: Readonly<Pod>): void {
    this.inFlight.delete(podKey(pod));
    if (this.inFlight.size === 0) this.inFlightEvents = [];
    else {
      const oldest = Math.min(...this.inFlight.values());
      this.inFlightEvents = this.inFlightEvents.filter((e) => e.seq > oldest);
    }
  }

  // ---- events and flushes ----

  /** A cluster event: parked pods whose rejecting plugins registered it go to activeQ (or backoffQ if still backing off). */
  moveAllToActiveOrBackoff(event: ClusterEvent): void {
    this.eventSeq++;
    if (this.inFlight.size > 0) this.inFlightEvents.push({ seq: this.eventSeq, event });
    const moved: QueuedPodInfo[] = [];
    for (const info of this.unschedulable.values()) {
      if (!info.gated && this.podMatchesEvent(info, event)) moved.push(info);
    }
    for (const info of moved) {
      this.unschedulable.delete(podKey(info.pod));
      this.requeue(info);
    }
  }

  /** Moves pods whose backoff expired to activeQ. */
  flushBackoffQCompleted(): void {
    const now = this.clock.now();
    for (;;) {
      const head = this.backoffQ.peek();
      if (!head || this.backoffExpiry(head) > now) return;
      this.backoffQ.pop();
      this.pushActive(head);
    }
  }

  /** Retries pods parked longer than the maximum (default 5 min) even without an event. */
  flushUnschedulablePodsLeftover(): void {
    const now = this.clock.now();
    const old: QueuedPodInfo[] = [];
    for (const info of this.unschedulable.values()) {
      if (!info.gated && now - info.timestamp >= this.maxInUnschedulableMs) old.push(info);
    }
    for (const info of old) {
      this.unschedulable.delete(podKey(info.pod));
      this.requeue(info);
    }
  }

  /** The periodic flushes (backoff every 1 s, leftovers every 30 s, as upstream) until the signal aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const loop = async (periodMs: number, fn: () => void): Promise<void> => {
      while (!signal.aborted) {
        await this.clock.sleep(periodMs, signal);
        if (!signal.aborted) fn();
      }
    };
    await Promise.all([loop(1_000, () => this.flushBackoffQCompleted()), loop(30_000, () => this.flushUnschedulablePodsLeftover())]);
  }

  /** Wakes pending pops, which resolve undefined. */
  close(): void {
    this.closed = true;
    this.wake();
  }

  // ---- introspection ----

  pendingCounts(): { active: number; backoff: number; unschedulable: number; gated: number } {
    let gated = 0;
    for (const p of this.unschedulable.values()) if (p.gated) gated++;
    return { active: this.activeQ.size, backoff: this.backoffQ.size, unschedulable: this.unschedulable.size - gated, gated };
  }

  /** Which queue holds the pod, if any. */
  whereIs(pod: Readonly<Pod>): "active" | "backoff" | "unschedulable" | "gated" | undefined {
    const key = podKey(pod);
    if (this.activeQ.has(key)) return "active";
    if (this.backoffQ.has(key)) return "backoff";
    const u = this.unschedulable.get(key);
    if (u) return u.gated ? "gated" : "unschedulable";
    return undefined;
  }

  /** Every pending pod (for debugging and preemption's nominated pods). */
  pendingPods(): Readonly<Pod>[] {
    return [...this.activeQ.list(), ...this.backoffQ.list(), ...this.unschedulable.values()].map((p) => p.pod);
  }

  // ---- internals ----

  /** Upstream's calculateBackoffDuration: initial × 2^(attempts−1), capped. */
  backoffDurationMs(info: QueuedPodInfo): number {
    let d = this.initialBackoffMs;
    for (let i = 1; i < info.attempts; i++) {
      d *= 2;
      if (d >= this.maxBackoffMs) return this.maxBackoffMs;
    }
    return Math.min(d, this.maxBackoffMs);
  }

  private backoffExpiry(info: QueuedPodInfo): number {
    return info.timestamp + this.backoffDurationMs(info);
  }

  private requeue(info: QueuedPodInfo): void {
    if (info.attempts > 0 && this.backoffExpiry(info) > this.clock.now()) this.backoffQ.addOrUpdate(info);
    else this.pushActive(info);
  }

  private pushActive(info: QueuedPodInfo): void {
    this.activeQ.addOrUpdate(info);
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private podMatchesEvent(info: QueuedPodInfo, event: ClusterEvent): boolean {
    if (event.resource === "*" && event.actionType === UNSCHEDULABLE_TIMEOUT.actionType) return true;
    if (info.unschedulablePlugins.size === 0) return true;
    for (const plugin of info.unschedulablePlugins) {
      const registered = this.eventMap.get(plugin);
      if (!registered) return true;
      if (registered.some((r) => eventMatches(r, event))) return true;
    }
    return false;
  }
}

function isGated(pod: Readonly<Pod>): boolean {
  return (pod.spec?.schedulingGates?.length ?? 0) > 0;
}

function specOrLabelsChanged(a: Readonly<Pod>, b: Readonly<Pod>): boolean {
  return (
    JSON.stringify(a.spec) !== JSON.stringify(b.spec) ||
    JSON.stringify(a.metadata.labels ?? {}) !== JSON.stringify(b.metadata.labels ?? {}) ||
    JSON.stringify(a.metadata.annotations ?? {}) !== JSON.stringify(b.metadata.annotations ?? {})
  );
}
