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

/**
 * A sorted set of unique strings with positional access: a list of sorted chunks (at most
 * CHUNK keys each), so inserts and removes move at most one chunk's worth of entries even with
 * ~100k keys inserted in random order. Positions are global indexes in key order.
 */
export class SortedKeys {
  private static readonly CHUNK = 512;
  private chunks: string[][] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  clear(): void {
    this.chunks = [];
    this.count = 0;
  }

  /** Index of the first chunk whose last key is >= key (chunks.length if none). */
  private chunkFor(key: string): number {
    let lo = 0;
    let hi = this.chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = this.chunks[mid]!;
      if (c[c.length - 1]! < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private static lower(arr: string[], key: string): number {
    let lo = 0;
    let hi = arr.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (arr[mid]! < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Global index of the first key >= `key`. */
  lowerBound(key: string): number {
    const ci = this.chunkFor(key);
    let base = 0;
    for (let i = 0; i < ci; i++) base += this.chunks[i]!.length;
    if (ci === this.chunks.length) return base;
    return base + SortedKeys.lower(this.chunks[ci]!, key);
  }

  /** Inserts `key` if absent. */
  insert(key: string): void {
    if (this.chunks.length === 0) {
      this.chunks.push([key]);
      this.count++;
      return;
    }
    let ci = this.chunkFor(key);
    if (ci === this.chunks.length) ci--; // beyond the last key: append to the last chunk
    const c = this.chunks[ci]!;
    const i = SortedKeys.lower(c, key);
    if (c[i] === key) return;
    c.splice(i, 0, key);
    this.count++;
    if (c.length > SortedKeys.CHUNK) this.chunks.splice(ci + 1, 0, c.splice(c.length >>> 1));
  }

  remove(key: string): void {
    const ci = this.chunkFor(key);
    const c = this.chunks[ci];
    if (!c) return;
    const i = SortedKeys.lower(c, key);
    if (c[i] !== key) return;
    c.splice(i, 1);
    this.count--;
    if (c.length === 0) this.chunks.splice(ci, 1);
  }

  has(key: string): boolean {
    const c = this.chunks[this.chunkFor(key)];
    return c !== undefined && c[SortedKeys.lower(c, key)] === key;
  }

  /** The keys at global indexes [from, to), in order. */
  slice(from: number, to: number): string[] {
    const out: string[] = [];
    if (to <= from) return out;
    let base = 0;
    for (const c of this.chunks) {
      const end = base + c.length;
      if (end > from) {
        const s = Math.max(0, from - base);
        const e = Math.min(c.length, to - base);
        for (let i = s; i < e; i++) out.push(c[i]!);
        if (end >= to) break;
      }
      base = end;
    }
    return out;
  }

  /** [start, end) global indexes of the keys under `prefix`, starting at `startKey` when given. */
  range(prefix: string, startKey?: string): [number, number] {
    const from = startKey !== undefined && startKey > prefix ? startKey : prefix;
    const endKey = prefixEnd(prefix);
    const start = this.lowerBound(from);
    const end = endKey === undefined ? this.count : this.lowerBound(endKey);
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
  /** Consumers waiting in next() while the queue was empty, oldest first; producers hand items to them directly. */
  private pending: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void }[] = [];
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
    const p = this.pending.shift();
    if (p) {
      p.resolve({ value: item, done: false });
      return;
    }
    this.items.push(item);
  }

  end(): void {
    if (this.done || this.failed) return;
    this.done = true;
    for (const p of this.pending.splice(0)) p.resolve({ value: undefined, done: true });
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
    for (const p of this.pending.splice(0)) p.reject(err);
  }

  private shift(): T {
    const item = this.items[this.head]!;
    this.items[this.head] = undefined as T;
    this.head++;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.length > 0) return Promise.resolve({ value: this.shift(), done: false });
    if (this.failed) return Promise.reject(this.error);
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.next(),
      return: async () => {
        this.end();
        this.items = [];
        this.head = 0;
        this.onClose?.();
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
