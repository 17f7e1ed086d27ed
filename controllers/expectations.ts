// ControllerExpectations: what a controller has asked the apiserver to do and not yet seen in its cache,
// so a reconcile running on a stale cache never creates (or deletes) the same pods twice.

import type { Clock, ObjectKey } from "../client/types.ts";

/** Expectations older than this are treated as satisfied: a lost watch event must not wedge a controller. */
export const ExpectationsTimeoutMs = 5 * 60 * 1000;

interface ControlleeExpectations {
  add: number;
  del: number;
  timestamp: number;
}

/**
 * client-go's ControllerExpectations combined with UIDTrackingControllerExpectations: creations are
 * counted (a created pod's name is unknown until the server answers), deletions are tracked by the
 * deleted pods' uids so that only the deletion of a pod we asked to delete lowers the count.
 *
 * Call `expectCreations`/`expectDeletions` BEFORE issuing the requests, and `creationObserved`/
 * `deletionObserved` from the informer's event handlers (or for each request that failed).
 */
export class Expectations {
  private readonly store = new Map<ObjectKey, ControlleeExpectations>();
  private readonly deletedUIDs = new Map<ObjectKey, Set<string>>();
  private readonly clock: Pick<Clock, "now">;

  constructor(opts: { clock?: Pick<Clock, "now"> } = {}) {
    this.clock = opts.clock ?? { now: () => Date.now() };
  }

  /** Replaces the key's expectations with `n` creations. */
  expectCreations(key: ObjectKey, n: number): void {
    this.store.set(key, { add: n, del: 0, timestamp: this.clock.now() });
  }

  /** Replaces the key's expectations with the deletion of these pods (by uid). */
  expectDeletions(key: ObjectKey, uids: readonly string[]): void {
    const set = new Set(uids);
    this.deletedUIDs.set(key, set);
    this.store.set(key, { add: 0, del: set.size, timestamp: this.clock.now() });
  }

  /** The informer saw a pod this controller created (or a create failed and will not be seen). */
  creationObserved(key: ObjectKey): void {
    this.lower(key, 1, 0);
  }

  /** The informer saw a pod deleted; counts only when it was one this controller meant to delete. */
  deletionObserved(key: ObjectKey, uid: string): void {
    const set = this.deletedUIDs.get(key);
    if (!set || !set.has(uid)) return;
    set.delete(uid);
    this.lower(key, 0, 1);
  }

  /** True when nothing is pending for the key, when the key has no record, or when the record expired. */
  satisfied(key: ObjectKey): boolean {
    const e = this.store.get(key);
    if (!e) return true;
    if (e.add <= 0 && e.del <= 0) return true;
    return this.clock.now() - e.timestamp > ExpectationsTimeoutMs;
  }

  /** Forgets the key (its controller object is gone). */
  delete(key: ObjectKey): void {
    this.store.delete(key);
    this.deletedUIDs.delete(key);
  }

  /** The pending counts, for logs and tests; undefined when there is no record. */
  get(key: ObjectKey): { add: number; del: number } | undefined {
    const e = this.store.get(key);
    return e ? { add: e.add, del: e.del } : undefined;
  }

  private lower(key: ObjectKey, add: number, del: number): void {
    const e = this.store.get(key);
    if (!e) return;
    e.add -= add;
    e.del -= del;
  }
}
