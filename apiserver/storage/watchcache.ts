// The apiserver's per-resource watch cache (the Kubernetes "cacher"): one backend watch per
// resource prefix, the current decoded objects, and a window of recent changes. Client watches are
// served from it with selector transitions, bookmarks, and "too old resource version" errors.

import {
  StorageError,
  hasProgressWatch,
  isResourceExpired,
  type Backend,
  type KeyValue,
  type WatchEvent,
  type WatchProgress,
} from "./interface.ts";
import { AsyncQueue, SortedKeys, expired, sleep } from "./util.ts";

export type CacheEvent<T> =
  | { type: "ADDED" | "MODIFIED" | "DELETED"; obj: T; revision: number }
  | { type: "BOOKMARK"; revision: number };

export interface WatchCacheOptions<T = unknown> {
  /** Changes kept in the window for watches from an older revision. Default 1000. */
  capacity?: number;
  /** How often watchers that asked for bookmarks get one (when the revision advanced). Default 1000 ms. */
  bookmarkIntervalMs?: number;
  /** A watcher with more undelivered events than this is terminated (code Timeout). Default 100_000. */
  maxWatcherQueue?: number;
  /** Backend progress-notification interval while the prefix is quiet. Default 1000 ms. */
  progressIntervalMs?: number;
  /** How long a watch from a revision newer than the cache waits before failing. Default 3000 ms. */
  futureRevisionWaitMs?: number;
  /**
   * A copy of `obj` whose resourceVersion is `revision`. When an update makes an object stop
   * matching a watcher's filter, the watcher gets DELETED with the previous state at the update's
   * revision, as the Kubernetes cacher does; without this option the new state is sent.
   */
  withRevision?: (obj: T, revision: number) => T;
  /** Page size when (re)listing the prefix. Default 1000. */
  listPageSize?: number;
}

export interface CacheItem<T> {
  readonly key: string;
  readonly obj: T;
  readonly modRevision: number;
}

interface Change<T> {
  key: string;
  revision: number;
  kind: "put" | "delete";
  /** The new object for a put; the last object for a delete. */
  obj: T;
  /** The object before this change, if the key existed. */
  prevObj: T | undefined;
  /** prevObj at this change's revision (built once, on first use). */
  prevAtRevision?: () => T;
}

/**
 * Where a watcher's events go. AsyncQueue is one (for `watch`); the apiserver's watch handler is
 * another (for `subscribe`), so that delivering an event to a thousand watchers is a thousand
 * synchronous calls rather than a thousand promise chains. `length` is the sink's backlog: past
 * the cache's limit the watcher is ended as too slow.
 */
export interface EventSink<T> {
  push(ev: CacheEvent<T>): void;
  fail(err: unknown, immediate?: boolean): void;
  end(): void;
  readonly length: number;
}

interface CacheWatcher<T> {
  keyPrefix: string;
  filter: (obj: T) => boolean;
  queue: EventSink<T>;
  bookmarks: boolean;
  /** Revision of the last event or bookmark queued to this watcher. */
  lastSent: number;
}

interface Waiter {
  rev: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * WatchCache<T>: see the file comment. Objects (T) are decoded once, when the change arrives, and
 * shared by every list and watcher: treat them as read-only.
 *
 * Semantics (as the Kubernetes cacher):
 * - `watch(p, 0, ...)` first sends ADDED for every current object under `p` passing the filter
 *   (revision = the object's modRevision), then live changes.
 * - `watch(p, rv, ...)` with rv older than the window → throws ResourceExpired
 *   ("too old resource version: rv (oldest)"); rv newer than the cache → waits up to
 *   `futureRevisionWaitMs` for the cache to catch up, then throws Timeout ("Too large resource version").
 * - Filter transitions: old matched & new not → DELETED (new object); old not & new matches → ADDED;
 *   both → MODIFIED; neither → nothing. Deletes carry the last object.
 * - If the backend watch fails it is resumed from the cache revision (no loss, no duplicates). If
 *   that revision was compacted the cache relists; watchers then get ResourceExpired (their window
 *   is broken) and must re-list/re-watch.
 */
export class WatchCache<T> {
  private readonly capacity: number;
  private readonly withRevision?: (obj: T, revision: number) => T;
  private readonly bookmarkIntervalMs: number;
  private readonly maxWatcherQueue: number;
  private readonly progressIntervalMs: number;
  private readonly futureRevisionWaitMs: number;
  private readonly listPageSize: number;

  private store = new Map<string, CacheItem<T>>();
  private index = new SortedKeys();
  private window: Change<T>[] = [];
  private windowHead = 0;
  /** Every change with revision > windowOldest is in the window. */
  private windowOldest = 0;
  private rev = 0;
  private readonly watchers = new Set<CacheWatcher<T>>();
  private waiters: Waiter[] = [];
  private startPromise: Promise<void> | undefined;
  private ready = false;
  private stopped = false;
  private readonly abort = new AbortController();
  private bookmarkTimer: NodeJS.Timeout | undefined;
  private requestProgress: () => void = () => {};

  constructor(
    private readonly backend: Backend,
    readonly prefix: string,
    private readonly decode: (kv: KeyValue) => T,
    opts: WatchCacheOptions<T> = {},
  ) {
    this.capacity = Math.max(1, opts.capacity ?? 1000);
    this.bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 1000;
    this.maxWatcherQueue = opts.maxWatcherQueue ?? 100_000;
    this.progressIntervalMs = opts.progressIntervalMs ?? 1000;
    this.futureRevisionWaitMs = opts.futureRevisionWaitMs ?? 3000;
    this.withRevision = opts.withRevision;
    this.listPageSize = opts.listPageSize ?? 1000;
  }

  /** Lists the prefix and starts watching; resolves once the initial list is loaded. Idempotent. */
  start(): Promise<void> {
    if (this.stopped) return Promise.reject(new StorageError("InternalError", "watch cache stopped"));
    this.startPromise ??= (async () => {
      await this.relist();
      this.ready = true;
      this.bookmarkTimer = setInterval(() => this.sendBookmarks(), this.bookmarkIntervalMs);
      this.bookmarkTimer.unref();
      void this.run();
    })();
    return this.startPromise;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort();
    if (this.bookmarkTimer) clearInterval(this.bookmarkTimer);
    for (const w of this.watchers) w.queue.end();
    this.watchers.clear();
    const err = new StorageError("InternalError", "watch cache stopped");
    for (const w of this.waiters) w.reject(err);
    this.waiters = [];
  }

  /** The latest revision the cache has observed (events or backend progress). */
  revision(): number {
    return this.rev;
  }

  /** The oldest revision a watch can start after (older → ResourceExpired). */
  oldestRevision(): number {
    return this.windowOldest;
  }

  /** Resolves when the cache has observed revision >= rev. Rejects (Timeout) if `signal` aborts first. */
  waitUntilFresh(rev: number, signal?: AbortSignal): Promise<void> {
    if (this.ready && this.rev >= rev) return Promise.resolve();
    if (this.stopped) return Promise.reject(new StorageError("InternalError", "watch cache stopped"));
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.waiters = this.waiters.filter((x) => x !== waiter);
        reject(new StorageError("Timeout", `Too large resource version: ${rev}, current: ${this.rev}`));
      };
      const waiter: Waiter = {
        rev,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        reject: (e) => {
          signal?.removeEventListener("abort", onAbort);
          reject(e);
        },
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
      if (this.ready) this.requestProgress();
    });
  }

  /** The current object at `key`, if any. */
  get(key: string): CacheItem<T> | undefined {
    return this.store.get(key);
  }

  /** Current objects under `keyPrefix` (which should lie under the cache prefix), in key order. */
  list(keyPrefix: string = this.prefix): { revision: number; items: CacheItem<T>[] } {
    const [s, e] = this.index.range(keyPrefix);
    const items = this.index.slice(s, e).map((k) => this.store.get(k)!);
    return { revision: this.rev, items };
  }

  /** See the class comment. The watch is registered now if the cache is ready (else once it is). */
  watch(
    keyPrefix: string,
    afterRevision: number,
    filter: (obj: T) => boolean,
    signal: AbortSignal,
    opts: { bookmarks?: boolean } = {},
  ): AsyncIterable<CacheEvent<T>> {
    if (this.ready && (afterRevision <= this.rev || this.stopped)) {
      return this.register(keyPrefix, afterRevision, filter, signal, opts);
    }
    const self = this;
    return (async function* () {
      const deadline = AbortSignal.any([signal, AbortSignal.timeout(self.futureRevisionWaitMs)]);
      try {
        await self.start();
        await self.waitUntilFresh(afterRevision, deadline);
      } catch (e) {
        if (signal.aborted) return;
        throw e;
      }
      yield* self.register(keyPrefix, afterRevision, filter, signal, opts);
    })();
  }

  /**
   * Like `watch`, but events are pushed into `sink` synchronously as the cache applies them.
   * Resolves once the watcher is registered (after waiting for a future revision, if asked);
   * errors (ResourceExpired, Timeout, stopped) are delivered through `sink.fail`.
   */
  async subscribe(
    keyPrefix: string,
    afterRevision: number,
    filter: (obj: T) => boolean,
    sink: EventSink<T>,
    signal: AbortSignal,
    opts: { bookmarks?: boolean } = {},
  ): Promise<void> {
    if (!(this.ready && (afterRevision <= this.rev || this.stopped))) {
      const deadline = AbortSignal.any([signal, AbortSignal.timeout(this.futureRevisionWaitMs)]);
      try {
        await this.start();
        await this.waitUntilFresh(afterRevision, deadline);
      } catch (e) {
        if (signal.aborted) sink.end();
        else sink.fail(e);
        return;
      }
    }
    this.register(keyPrefix, afterRevision, filter, signal, opts, sink);
  }

  private register(
    keyPrefix: string,
    afterRevision: number,
    filter: (obj: T) => boolean,
    signal: AbortSignal,
    opts: { bookmarks?: boolean },
    sink?: EventSink<T>,
  ): AsyncIterable<CacheEvent<T>> {
    const cleanup = () => {
      this.watchers.delete(w);
      signal.removeEventListener("abort", onAbort);
    };
    const onAbort = () => {
      cleanup();
      w.queue.end();
    };
    const queue = sink ? undefined : new AsyncQueue<CacheEvent<T>>(cleanup);
    const w: CacheWatcher<T> = {
      keyPrefix,
      filter,
      queue: sink ?? queue!,
      bookmarks: opts.bookmarks === true,
      lastSent: afterRevision,
    };
    const result = (): AsyncIterable<CacheEvent<T>> => queue ?? EMPTY;
    if (this.stopped) {
      w.queue.fail(new StorageError("InternalError", "watch cache stopped"));
      return result();
    }
    if (signal.aborted) {
      w.queue.end();
      return result();
    }
    if (afterRevision === 0) {
      const [s, e] = this.index.range(keyPrefix);
      for (const k of this.index.slice(s, e)) {
        const item = this.store.get(k)!;
        if (filter(item.obj)) w.queue.push({ type: "ADDED", obj: item.obj, revision: item.modRevision });
      }
    } else if (afterRevision < this.windowOldest) {
      w.queue.fail(expired(afterRevision, this.windowOldest));
      return result();
    } else {
      for (let i = this.windowStartAfter(afterRevision); i < this.window.length; i++) {
        const c = this.window[i]!;
        if (!c.key.startsWith(keyPrefix)) continue;
        const ev = transition(c, filter);
        if (ev) w.queue.push(ev);
      }
    }
    w.lastSent = afterRevision;
    this.watchers.add(w);
    signal.addEventListener("abort", onAbort, { once: true });
    return result();
  }

  /** Index into `window` of the first change with revision > rev. */
  private windowStartAfter(rev: number): number {
    let lo = this.windowHead;
    let hi = this.window.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.window[mid]!.revision <= rev) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  // ---- feeding the cache ----

  private async run(): Promise<void> {
    let backoff = 100;
    while (!this.stopped) {
      try {
        const signal = this.abort.signal;
        let stream: AsyncIterable<WatchEvent | WatchProgress>;
        if (hasProgressWatch(this.backend)) {
          const pw = this.backend.watchWithProgress(this.prefix, this.rev, signal, {
            progressIntervalMs: this.progressIntervalMs,
          });
          this.requestProgress = () => pw.requestProgress();
          stream = pw;
        } else {
          stream = this.backend.watch(this.prefix, this.rev, signal);
        }
        if (this.waiters.length > 0) this.requestProgress();
        for await (const e of stream) {
          backoff = 100;
          if (e.type === "progress") this.advance(e.revision);
          else this.apply(e);
        }
        if (this.stopped) return;
        throw new StorageError("Unreachable", "backend watch ended");
      } catch (e) {
        if (this.stopped) return;
        this.requestProgress = () => {};
        if (isResourceExpired(e)) {
          try {
            await this.relist();
            continue;
          } catch {
            // fall through to the backoff
          }
        }
        await sleep(backoff, this.abort.signal);
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  }

  /** Loads the prefix (paged, at one revision). After the first load, breaks every watcher's window. */
  private async relist(): Promise<void> {
    const store = new Map<string, CacheItem<T>>();
    const index = new SortedKeys();
    let revision = 0;
    let startKey: string | undefined;
    for (;;) {
      const page = await this.backend.list(this.prefix, {
        limit: this.listPageSize,
        ...(revision ? { revision } : {}),
        ...(startKey !== undefined ? { startKey } : {}),
      });
      revision = page.revision;
      for (const kv of page.kvs) {
        store.set(kv.key, { key: kv.key, obj: this.decode(kv), modRevision: kv.modRevision });
        index.insert(kv.key);
      }
      if (!page.more || page.kvs.length === 0) break;
      startKey = page.kvs[page.kvs.length - 1]!.key + "\0";
    }
    if (this.stopped) return;
    const wasReady = this.ready;
    this.store = store;
    this.index = index;
    this.window = [];
    this.windowHead = 0;
    this.windowOldest = revision;
    const old = this.rev;
    this.rev = Math.max(this.rev, revision);
    if (wasReady) {
      const err = expired(old, revision);
      for (const w of this.watchers) w.queue.fail(err, true);
      this.watchers.clear();
    }
    this.notifyWaiters();
  }

  private advance(revision: number): void {
    if (revision <= this.rev) return;
    this.rev = revision;
    this.notifyWaiters();
  }

  private apply(ev: WatchEvent): void {
    if (ev.revision <= this.rev) return; // already seen
    const key = ev.kv.key;
    const prev = this.store.get(key);
    let change: Change<T> | undefined;
    if (ev.type === "put") {
      let obj: T | undefined;
      try {
        obj = this.decode(ev.kv);
      } catch (e) {
        console.warn(`watch cache ${this.prefix}: cannot decode ${key} at ${ev.revision}: ${String(e)}`);
      }
      if (obj !== undefined) {
        this.store.set(key, { key, obj, modRevision: ev.revision });
        if (!prev) this.index.insert(key);
        change = { key, revision: ev.revision, kind: "put", obj, prevObj: prev?.obj };
        const withRevision = this.withRevision;
        if (prev && withRevision) {
          let copy: T | undefined;
          const prevObj = prev.obj;
          const rev = ev.revision;
          change.prevAtRevision = () => (copy ??= withRevision(prevObj, rev));
        }
      }
    } else if (prev) {
      this.store.delete(key);
      this.index.remove(key);
      // The DELETED event carries the last state at the deletion's revision (its resourceVersion),
      // so a client resuming from it does not see the delete again.
      let obj = prev.obj;
      try {
        obj = this.decode(ev.kv);
      } catch {
        // keep the last decoded state
      }
      change = { key, revision: ev.revision, kind: "delete", obj, prevObj: prev.obj };
    }
    this.rev = ev.revision;
    if (change) {
      this.window.push(change);
      if (this.window.length - this.windowHead > this.capacity) {
        this.windowOldest = this.window[this.windowHead]!.revision;
        this.window[this.windowHead] = undefined as unknown as Change<T>;
        this.windowHead++;
        if (this.windowHead > 1024 && this.windowHead * 2 > this.window.length) {
          this.window = this.window.slice(this.windowHead);
          this.windowHead = 0;
        }
      }
      // Watchers without selectors (the common case) share one event object per change.
      let shared: CacheEvent<T> | undefined;
      for (const w of this.watchers) {
        if (!key.startsWith(w.keyPrefix)) continue;
        const ce = w.filter === MATCH_ALL ? (shared ??= transition(change, MATCH_ALL)) : transition(change, w.filter);
        if (ce) this.send(w, ce);
      }
    }
    this.notifyWaiters();
  }

  private send(w: CacheWatcher<T>, ev: CacheEvent<T>): void {
    if (w.queue.length >= this.maxWatcherQueue) {
      this.watchers.delete(w);
      w.queue.fail(
        new StorageError(
          "Timeout",
          `watcher too slow: more than ${this.maxWatcherQueue} events undelivered; re-watch from the last resourceVersion seen`,
        ),
        true,
      );
      return;
    }
    w.queue.push(ev);
    w.lastSent = ev.revision;
  }

  private sendBookmarks(): void {
    for (const w of this.watchers) {
      if (w.bookmarks && this.rev > w.lastSent) this.send(w, { type: "BOOKMARK", revision: this.rev });
    }
  }

  private notifyWaiters(): void {
    if (this.waiters.length === 0) return;
    const keep: Waiter[] = [];
    for (const w of this.waiters) {
      if (this.rev >= w.rev) w.resolve();
      else keep.push(w);
    }
    this.waiters = keep;
  }
}

/** The filter of a watch without selectors; the cache recognises it and shares event objects. */
export const MATCH_ALL = (): boolean => true;

const EMPTY: AsyncIterable<never> = { [Symbol.asyncIterator]: () => ({ next: async () => ({ value: undefined, done: true }) }) };

function transition<T>(c: Change<T>, filter: (obj: T) => boolean): CacheEvent<T> | undefined {
  const prevMatch = c.prevObj !== undefined && filter(c.prevObj);
  if (c.kind === "delete") return prevMatch ? { type: "DELETED", obj: c.obj, revision: c.revision } : undefined;
  const curMatch = filter(c.obj);
  if (curMatch && prevMatch) return { type: "MODIFIED", obj: c.obj, revision: c.revision };
  if (curMatch) return { type: "ADDED", obj: c.obj, revision: c.revision };
  if (prevMatch) return { type: "DELETED", obj: c.prevAtRevision?.() ?? c.obj, revision: c.revision };
  return undefined;
}
