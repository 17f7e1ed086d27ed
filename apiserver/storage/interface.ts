// The storage contract every driver implements: a small, kine-shaped key/value API with revisions.

/**
 * One stored key. `modRevision` is the store revision of the key's last write and becomes the
 * object's `metadata.resourceVersion`; `createRevision` is the revision that created it.
 * Values are the serialized object (JSON text).
 */
export interface KeyValue {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  /** Read through encryption at rest with a key (or provider) other than the one writes use now: an unchanged update still rewrites it (key rotation). */
  stale?: boolean;
}

/**
 * A change seen by a watch. `revision` is the store revision of the change (equal to
 * `kv.modRevision` for a put; for a delete it is the revision of the deletion, and `kv` holds the
 * last value the key had, with `modRevision` set to the deletion revision).
 */
export interface WatchEvent {
  type: "put" | "delete";
  /** True when the put created the key (there was no previous value). */
  created: boolean;
  kv: KeyValue;
  /** The previous value, when the key existed before this event. */
  prevKv?: KeyValue;
  revision: number;
}

export interface ListOptions {
  /** Read the keys as they were at this revision (0 or undefined: the current revision). */
  revision?: number;
  /** At most this many keys (0 or undefined: no limit). */
  limit?: number;
  /** Start at this key (inclusive), for continuing a paged list. */
  startKey?: string;
}

export interface ListResult {
  /** The revision the list was read at. Continue a paged list at this same revision. */
  revision: number;
  kvs: KeyValue[];
  /** True when keys remain after the last one returned. */
  more: boolean;
  /** Keys remaining after the last one returned (only meaningful when `more`). */
  remaining: number;
}

/** The result of a write. On a failed compare-and-swap `succeeded` is false and `kv` is the current value (if any). */
export interface WriteResult {
  revision: number;
  succeeded: boolean;
  kv?: KeyValue;
}

/**
 * Backend is what the apiserver's storage layer needs from a key/value store. Modelled on kine's
 * Backend and etcd's KV API:
 * - Every call reports the store revision; revisions increase by one per successful write.
 * - A failed compare-and-swap (update/delete with a stale revision, create of an existing key) is a
 *   result with `succeeded: false`, not an exception. Exceptions mean the store is unreachable or broken.
 * - `watch(prefix, afterRevision)` yields every change with revision > afterRevision exactly once and in
 *   revision order. If afterRevision has been compacted away, the iterator throws a StorageError with
 *   code "ResourceExpired" (the apiserver turns it into 410 Gone, "too old resource version").
 */
export interface Backend {
  /** The highest revision the store has assigned. */
  currentRevision(): Promise<number>;
  get(key: string): Promise<{ revision: number; kv?: KeyValue }>;
  /** Creates `key`; fails (succeeded false, kv = current) if it exists. */
  create(key: string, value: string): Promise<WriteResult>;
  /** Replaces `key` if its modRevision equals `expectedRevision`; fails with the current kv otherwise (or no kv if absent). */
  update(key: string, value: string, expectedRevision: number): Promise<WriteResult>;
  /**
   * Deletes `key`. With `expectedRevision` (> 0) only if its modRevision matches. On success `kv` is
   * the deleted value, with `modRevision` set to the deletion revision (as in the watch event).
   * Absent key: succeeded false, no kv.
   */
  delete(key: string, expectedRevision?: number): Promise<WriteResult>;
  /**
   * Keys starting with `prefix`, in key order. A `revision` older than `compactedRevision()` throws
   * ResourceExpired; one newer than the current revision throws Invalid.
   */
  list(prefix: string, opts?: ListOptions): Promise<ListResult>;
  /** Number of keys under `prefix` now. */
  count(prefix: string): Promise<{ revision: number; count: number }>;
  /** Changes under `prefix` after `afterRevision`, until `signal` aborts (then the iterator returns). */
  watch(prefix: string, afterRevision: number, signal: AbortSignal): AsyncIterable<WatchEvent>;
  /** Forgets history at and before `revision`; watches and lists before it then fail with ResourceExpired. */
  compact(revision: number): Promise<void>;
  /** The oldest revision still readable (history before it was compacted). */
  compactedRevision(): Promise<number>;
  close(): Promise<void>;
}

export type StorageErrorCode =
  | "NotFound"
  | "Exists"
  | "Conflict"
  | "Unreachable"
  | "Timeout"
  | "Invalid"
  | "ResourceExpired"
  | "InternalError";

/** The one error type of the storage layer, checked by `code` (see isNotFound, isConflict...). */
export class StorageError extends Error {
  override readonly name = "StorageError";
  constructor(
    readonly code: StorageErrorCode,
    message: string,
    readonly key?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isStorageError(e: unknown, code?: StorageErrorCode): e is StorageError {
  return (
    typeof e === "object" &&
    e !== null &&
    (e as { name?: unknown }).name === "StorageError" &&
    (code === undefined || (e as StorageError).code === code)
  );
}
export const isNotFound = (e: unknown) => isStorageError(e, "NotFound");
export const isConflict = (e: unknown) => isStorageError(e, "Conflict");
export const isExists = (e: unknown) => isStorageError(e, "Exists");
export const isResourceExpired = (e: unknown) => isStorageError(e, "ResourceExpired");

/**
 * A progress notification from a watch: every change under the watched prefix with revision <=
 * `revision` has already been yielded (the next change, if any, has a higher revision). Lets a
 * consumer advance its revision while its prefix is quiet (etcd's progress notify).
 */
export interface WatchProgress {
  type: "progress";
  revision: number;
}

/** A watch that interleaves progress notifications with the changes (see `ProgressBackend`). */
export interface ProgressWatch extends AsyncIterable<WatchEvent | WatchProgress> {
  /** Asks for a progress notification soon (best effort; a notification always arrives in order). */
  requestProgress(): void;
}

/**
 * Optional capability of a Backend (both built-in drivers have it): `watch` plus in-order progress
 * notifications, periodically (every `progressIntervalMs`, default 1000) and on request. The watch
 * cache uses it so its revision advances even when its prefix is quiet.
 */
export interface ProgressBackend extends Backend {
  watchWithProgress(
    prefix: string,
    afterRevision: number,
    signal: AbortSignal,
    opts?: { progressIntervalMs?: number },
  ): ProgressWatch;
}

export function hasProgressWatch(b: Backend): b is ProgressBackend {
  return typeof (b as Partial<ProgressBackend>).watchWithProgress === "function";
}
