// The controller harness: workers pop keys from the queue and call the reconciler, with exception
// capture, a per-reconcile timeout, a reconcile id in every log line, and the requeue policy of
// controller-runtime; plus the event handlers that turn informer events into keys.

import { randomUUID } from "node:crypto";
import type { KubeObject } from "../api/index.ts";
import { realClock } from "./clock.ts";
import { isConflict, isTerminal } from "./errors.ts";
import type { Logger } from "./log.ts";
import { objectKey } from "./store.ts";
import type { Clock, Context, Informer, ObjectKey, Reconciler, Result, WorkQueue } from "./types.ts";

export interface ControllerOptions {
  /** Names the controller in logs (`controller`) and should match its queue's metrics name. */
  name: string;
  reconciler: Reconciler;
  queue: WorkQueue<ObjectKey>;
  /** Concurrent reconciles (of different keys: the queue never hands one key to two workers). Default 1. */
  workers?: number;
  /**
   * Aborts the reconcile's signal after this long (default 60 s; 0: never). A reconciler that ignores
   * its signal keeps its worker until it returns.
   */
  timeoutMs?: number;
  /** Default ctx.log. */
  log?: Logger;
  /** Workers start once these informers have synced. */
  informers?: readonly Pick<Informer, "waitForSync">[];
  clock?: Clock;
}

/**
 * Runs the workers until ctx.signal aborts, then shuts the queue down and resolves once the
 * in-flight reconciles have returned. Keys still queued at that moment are dropped (the next
 * leader or process relists and re-queues everything anyway).
 */
export async function runController(ctx: Context, opts: ControllerOptions): Promise<void> {
  const log = (opts.log ?? ctx.log).child({ controller: opts.name });
  const { queue, signal } = { queue: opts.queue, signal: ctx.signal };
  const onAbort = (): void => queue.shutDown();
  if (signal.aborted) return onAbort();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    if (opts.informers?.length) {
      try {
        await Promise.all(opts.informers.map((i) => i.waitForSync(signal)));
      } catch (e) {
        if (signal.aborted) return;
        throw e;
      }
      log.info("caches synced");
    }
    const workers = Math.max(1, opts.workers ?? 1);
    log.info({ workers }, "starting workers");
    await Promise.all(Array.from({ length: workers }, () => worker(ctx, opts, log)));
    log.info("workers stopped");
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

async function worker(ctx: Context, opts: ControllerOptions, log: Logger): Promise<void> {
  for (;;) {
    const key = await opts.queue.get();
    if (key === undefined) return;
    if (ctx.signal.aborted) {
      opts.queue.done(key);
      return;
    }
    try {
      await processKey(ctx, opts, log, key);
    } finally {
      opts.queue.done(key);
    }
  }
}

/** One reconcile of one key and what it means for the queue (controller-runtime's reconcileHandler). */
export async function processKey(ctx: Context, opts: ControllerOptions, log: Logger, key: ObjectKey): Promise<void> {
  const { queue } = opts;
  const reconcileID = randomUUID();
  const rlog = log.child({ reconcileID, key });
  const ac = new AbortController();
  const onAbort = (): void => ac.abort(ctx.signal.reason);
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const timer = timeoutMs > 0 ? (opts.clock ?? realClock).setTimeout(() => ac.abort(new Error(`reconcile timed out after ${timeoutMs} ms`)), timeoutMs) : undefined;
  let result: Result | void;
  try {
    result = await opts.reconciler.reconcile({ signal: ac.signal, log: rlog, reconcileID }, key);
  } catch (e) {
    if (isTerminal(e)) {
      rlog.error({ err: e }, "reconcile failed terminally; not requeued");
      queue.forget(key);
    } else if (isConflict(e)) {
      // A write raced with another (or our cache was stale): routine under optimistic concurrency.
      rlog.info({ requeues: queue.numRequeues(key), reason: (e as Error).message }, "conflict; requeued with backoff");
      queue.addRateLimited(key);
    } else {
      rlog.error({ err: e, requeues: queue.numRequeues(key) }, "reconcile failed; requeued with backoff");
      queue.addRateLimited(key);
    }
    return;
  } finally {
    timer?.cancel();
    ctx.signal.removeEventListener("abort", onAbort);
  }
  if (result?.requeueAfterMs !== undefined && result.requeueAfterMs > 0) {
    queue.forget(key);
    queue.addAfter(key, result.requeueAfterMs);
  } else if (result?.requeue) {
    queue.addRateLimited(key);
  } else {
    queue.forget(key);
  }
}

/** Enqueues an object's own key on add, update and delete. */
export function enqueueOnChange<T extends KubeObject>(informer: Informer<T>, queue: WorkQueue<ObjectKey>, keyFn: (obj: Readonly<T>) => ObjectKey = objectKey): void {
  informer.addEventHandler({
    onAdd: (o) => queue.add(keyFn(o)),
    onUpdate: (_, n) => queue.add(keyFn(n)),
    onDelete: (o) => queue.add(keyFn(o)),
  });
}

/** The key of the object's controlling owner of `ownerKind` (same namespace), or undefined. */
export function controllerOwnerKey(obj: Readonly<KubeObject>, ownerKind: string): ObjectKey | undefined {
  const ref = obj.metadata.ownerReferences?.find((r) => r.controller === true);
  if (!ref || ref.kind !== ownerKind) return undefined;
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${ref.name}` : ref.name;
}

/**
 * sample-controller's handleObject: maps a child (e.g. a Pod) to its controller owner's key (e.g.
 * its ReplicaSet) on add, update and delete. Resyncs (same resourceVersion) are ignored; when an
 * update changes the controller reference, both the old and the new owner are enqueued.
 */
export function enqueueOwner<T extends KubeObject>(informer: Informer<T>, queue: WorkQueue<ObjectKey>, ownerKind: string): void {
  const enqueue = (o: Readonly<T>): void => {
    const k = controllerOwnerKey(o, ownerKind);
    if (k !== undefined) queue.add(k);
  };
  informer.addEventHandler({
    onAdd: enqueue,
    onUpdate: (old, cur) => {
      if (old.metadata.resourceVersion === cur.metadata.resourceVersion) return;
      const before = controllerOwnerKey(old, ownerKind);
      const after = controllerOwnerKey(cur, ownerKind);
      if (before !== undefined && before !== after) queue.add(before);
      if (after !== undefined) queue.add(after);
    },
    onDelete: enqueue,
  });
}
