// Pod workers (upstream's podWorkers): one serialised worker per pod UID. A trigger while the pod is
// syncing causes exactly one more sync after it; delayed triggers (backoff, volume retries) are
// timers on the injected clock, the earliest one per pod kept. Each sync is timed into
// kubelet_pod_worker_duration_seconds, and a pod's first sync that leaves it Running into
// kubelet_pod_start_duration_seconds (kubelet/metrics.ts).

import type { Clock, Logger } from "../client/index.ts";
import { kubeletMetrics, type PodWorkerOperation } from "./metrics.ts";

/** What one sync asks for: run again after a delay, or forget the pod (it is gone and cleaned up). */
export interface SyncOutcome {
  requeueAfterMs?: number;
  /** The pod is finished and cleaned up: drop its worker state. */
  done?: boolean;
}

export type SyncFunc = (uid: string) => Promise<SyncOutcome>;

interface Worker {
  dirty: boolean;
  running: Promise<void>;
  /** The next sync's operation_type: "update" once anything but a timer asked for it. */
  next: PodWorkerOperation;
}

export class PodWorkers {
  private readonly workers = new Map<string, Worker>();
  private readonly timers = new Map<string, { at: number; cancel(): void }>();
  /** When a worker was first asked to sync each pod (upstream's firstSeenTime); dropped when the pod is done. */
  private readonly firstSeen = new Map<string, number>();
  private stopped = false;
  /**
   * Whether the kubelet's latest status of the pod says Running (the Kubelet sets it from its status
   * manager). A sync that turns it from false to true observes kubelet_pod_start_duration_seconds,
   * as upstream's SyncPod does on Pending → Running.
   */
  podRunning?: (uid: string) => boolean;

  constructor(
    private readonly sync: SyncFunc,
    private readonly clock: Clock,
    private readonly log: Logger,
    /** Retry delay after a sync throws. */
    private readonly errorRetryMs = 2_000,
    /** Called when a pod's worker reports it done. */
    private readonly onDone: (uid: string) => void = () => undefined,
  ) {}

  /** Syncs the pod now, or once more after the sync in progress. */
  update(uid: string): void {
    this.trigger(uid, "update");
  }

  private trigger(uid: string, cause: "update" | "sync"): void {
    if (this.stopped || !uid) return;
    const w = this.workers.get(uid);
    if (w) {
      w.dirty = true;
      if (cause === "update") w.next = "update";
      return;
    }
    const first = !this.firstSeen.has(uid);
    if (first) this.firstSeen.set(uid, this.clock.now());
    const worker: Worker = { dirty: false, running: Promise.resolve(), next: first ? "create" : cause };
    this.workers.set(uid, worker);
    worker.running = this.loop(uid, worker);
  }

  /** Syncs the pod after `ms` (an earlier pending timer wins). */
  enqueueAfter(uid: string, ms: number): void {
    if (this.stopped) return;
    const at = this.clock.now() + ms;
    const cur = this.timers.get(uid);
    if (cur && cur.at <= at) return;
    cur?.cancel();
    const t = this.clock.setTimeout(() => {
      if (this.timers.get(uid) === entry) this.timers.delete(uid);
      this.trigger(uid, "sync");
    }, ms);
    const entry = { at, cancel: () => t.cancel() };
    this.timers.set(uid, entry);
  }

  /** Pods with a worker syncing right now. */
  busy(): string[] {
    return [...this.workers.keys()];
  }

  /** Stops triggering and waits for syncs in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) t.cancel();
    this.timers.clear();
    await Promise.allSettled([...this.workers.values()].map((w) => w.running));
  }

  /** Resolves when no sync is running (tests). */
  async idle(): Promise<void> {
    while (this.workers.size) await Promise.allSettled([...this.workers.values()].map((w) => w.running));
  }

  private async loop(uid: string, w: Worker): Promise<void> {
    try {
      for (;;) {
        w.dirty = false;
        const op = w.next;
        w.next = "sync";
        let outcome: SyncOutcome = {};
        const wasRunning = this.podRunning?.(uid) ?? true;
        const start = this.clock.now();
        try {
          outcome = await this.sync(uid);
        } catch (e) {
          this.log.warn({ err: e, podUID: uid }, "pod sync failed");
          outcome = { requeueAfterMs: this.errorRetryMs };
        }
        const end = this.clock.now();
        kubeletMetrics.podWorkerDuration.observe({ operation_type: op }, (end - start) / 1000);
        const seen = this.firstSeen.get(uid);
        if (!wasRunning && seen !== undefined && this.podRunning?.(uid)) kubeletMetrics.podStartDuration.observe((end - seen) / 1000);
        if (outcome.done) {
          this.timers.get(uid)?.cancel();
          this.timers.delete(uid);
          this.firstSeen.delete(uid);
          this.onDone(uid);
        } else if (outcome.requeueAfterMs !== undefined) this.enqueueAfter(uid, outcome.requeueAfterMs);
        if (!w.dirty || this.stopped) break;
      }
    } finally {
      this.workers.delete(uid);
    }
  }
}
