// Small helpers shared by the storage drivers and the watch cache: key ranges, a sorted key index,
// and an unbounded async queue that adapts push-style producers into async iterables.

import { StorageError } from "./interface.ts";

/**
 * The first string greater than every string starting with `prefix` (etcd's "prefix + 1"), or
 * undefined for the empty prefix (no upper bound). Keys are compared as JavaScript strings
 * (UTF-16 code units), which equals etcd's byte order for the ASCII keys kubelab uses.
 */
export function prefixEnd(prefix: string): string | undefined {
  let p = prefix;
  while (p.length > 0) {
    const last = p.charCodeAt(p.length - 1);
    if (last < 0xffff) return p.slice(0, -1) + String.fromCharCode(last + 1);
    p = p.slice(0, -1);
  }
  return undefined;
}

/** A sorted array of unique strings with binary-search insert/remove/range. */
export class SortedKeys {
  private keys: string[] = [];

  get size(): number {
    return this.keys.length;
  }

  clear(): void {
    this.keys = [];
  }

  /** Index of the first key >= `key`. */
  lowerBound(key: string): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.keys[mid]! < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Inserts `key` if absent. */
  insert(key: string): void {
    const n = this.keys.length;
    // Fast path: appending in order (the common case when loading or creating sequential names).
    if (n === 0 || this.keys[n - 1]! < key) {
      this.keys.push(key);
      return;
    }
    const i = this.lowerBound(key);
    if (this.keys[i] !== key) this.keys.splice(i, 0, key);
  }

  remove(key: string): void {
    const i = this.lowerBound(key);
    if (this.keys[i] === key) this.keys.splice(i, 1);
  }

  at(i: number): string | undefined {
    return this.keys[i];
  }

  /** [start, end) indexes of the keys under `prefix`, starting at `startKey` when given. */
  range(prefix: string, startKey?: string): [number, number] {
    const from = startKey !== undefined && startKey > prefix ? startKey : prefix;
    const endKey = prefixEnd(prefix);
    const start = this.lowerBound(from);
    const end = endKey === undefined ? this.keys.length : this.lowerBound(endKey);
    return [start, Math.max(start, end)];
  }
}

/**
 * An unbounded FIFO that a producer pushes into and one consumer reads as an async iterator.
 * `fail(err)` makes the consumer throw after draining what was queued before it; `end()` makes it
 * return after draining. Items are stored in an array with a moving head, so push/shift are O(1).
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private head = 0;
  private waiter: (() => void) | undefined;
  private done = false;
  private error: unknown = undefined;
  private failed = false;

  /** `onClose` runs once when the consumer stops early (break/return) — unregister the producer there. */
  constructor(private readonly onClose?: () => void) {}

  get length(): number {
    return this.items.length - this.head;
  }

  get closed(): boolean {
    return this.done || this.failed;
  }

  push(item: T): void {
    if (this.done || this.failed) return;
    this.items.push(item);
    this.wake();
  }

  end(): void {
    if (this.done || this.failed) return;
    this.done = true;
    this.wake();
  }

  /** Ends the stream with an error. With `immediate`, queued items are discarded. */
  fail(err: unknown, immediate = false): void {
    if (this.done || this.failed) return;
    this.failed = true;
    this.error = err;
    if (immediate) {
      this.items = [];
      this.head = 0;
    }
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w();
    }
  }

  private shift(): T {
    const item = this.items[this.head]!;
    this.items[this.head] = undefined as T;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  async next(): Promise<IteratorResult<T>> {
    for (;;) {
      if (this.length > 0) return { value: this.shift(), done: false };
      if (this.failed) throw this.error;
      if (this.done) return { value: undefined, done: true };
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.next(),
      return: async () => {
        this.end();
        this.onClose?.();
        this.items = [];
        this.head = 0;
        return { value: undefined, done: true };
      },
    };
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

export function expired(afterRevision: number, compacted: number): StorageError {
  return new StorageError(
    "ResourceExpired",
    `too old resource version: ${afterRevision} (${compacted})`,
  );
}
