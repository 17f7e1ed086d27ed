// Pod workers (upstream's podWorkers): one serialised worker per pod UID. A trigger while the pod is
// syncing causes exactly one more sync after it; delayed triggers (backoff, volume retries) are
// timers on the injected clock, the earliest one per pod kept.

import type { Clock, Logger } from "../client/index.ts";

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
}

export class PodWorkers {
  private readonly workers = new Map<string, Worker>();
  private readonly timers = new Map<string, { at: number; cancel(): void }>();
  private stopped = false;

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
    if (this.stopped || !uid) return;
    const w = this.workers.get(uid);
    if (w) {
      w.dirty = true;
      return;
    }
    const worker: Worker = { dirty: false, running: Promise.resolve() };
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
      this.update(uid);
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
        let outcome: SyncOutcome = {};
        try {
          outcome = await this.sync(uid);
        } catch (e) {
          this.log.warn({ err: e, podUID: uid }, "pod sync failed");
          outcome = { requeueAfterMs: this.errorRetryMs };
        }
        if (outcome.done) {
          this.timers.get(uid)?.cancel();
          this.timers.delete(uid);
          this.onDone(uid);
        } else if (outcome.requeueAfterMs !== undefined) this.enqueueAfter(uid, outcome.requeueAfterMs);
        if (!w.dirty || this.stopped) break;
      }
    } finally {
      this.workers.delete(uid);
    }
  }
}
