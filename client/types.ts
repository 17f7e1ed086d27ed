// The client library's contracts: what controllers, the scheduler and kubelets program against.
// Implementations live beside this file (rest.ts, informer.ts, workqueue.ts, ...); fakes in testing.ts.

import type { DeleteOptions, KubeObject, ResourceInfo, Selector } from "../api/index.ts";
import type { Logger } from "./log.ts";

/** Passed first to everything that does work: cancellation and a logger carrying request context. */
export interface Context {
  signal: AbortSignal;
  log: Logger;
}

/** "namespace/name", or "name" for cluster-scoped objects (client-go's MetaNamespaceKeyFunc). */
export type ObjectKey = string;

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

export interface WatchEvent<T extends KubeObject = KubeObject> {
  type: WatchEventType;
  /** For ERROR, a metav1.Status (as an object); for BOOKMARK, an object with only metadata.resourceVersion. */
  object: T;
}

export interface ObjectList<T extends KubeObject = KubeObject> {
  apiVersion: string;
  kind: string;
  metadata: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  items: T[];
}

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  resourceVersionMatch?: "Exact" | "NotOlderThan";
  timeoutSeconds?: number;
  allowWatchBookmarks?: boolean;
}

export interface WriteOptions {
  dryRun?: boolean;
  fieldManager?: string;
}

export type PatchType = "json" | "merge" | "strategic" | "apply";

/**
 * Typed access to one resource. Every method rejects with a ClientError (see errors.ts) carrying
 * the server's Status for API failures; network failures reject with the underlying error.
 * Objects returned are the caller's own copies.
 */
export interface ResourceClient<T extends KubeObject = KubeObject> {
  readonly info: ResourceInfo;
  get(namespace: string, name: string): Promise<T>;
  list(namespace: string, opts?: ListOptions): Promise<ObjectList<T>>;
  /** A watch stream; ends when the server ends it or `signal` aborts. ERROR events are yielded, not thrown. */
  watch(namespace: string, opts: ListOptions, signal: AbortSignal): AsyncIterable<WatchEvent<T>>;
  create(namespace: string, obj: T, opts?: WriteOptions): Promise<T>;
  /** PUT of the whole object; metadata.resourceVersion, when set, is a precondition (409 on mismatch). */
  update(obj: T, opts?: WriteOptions): Promise<T>;
  /** PUT of the status subresource. */
  updateStatus(obj: T, opts?: WriteOptions): Promise<T>;
  patch(
    namespace: string,
    name: string,
    type: PatchType,
    patch: unknown,
    opts?: WriteOptions & { subresource?: string; force?: boolean },
  ): Promise<T>;
  delete(namespace: string, name: string, opts?: DeleteOptions & { dryRun?: boolean }): Promise<void>;
}

/** The whole API, by group and plural resource name, plus the subresources with their own bodies. */
export interface Client {
  resource<T extends KubeObject = KubeObject>(group: string, resource: string): ResourceClient<T>;
  /** POST pods/<name>/binding. */
  bind(namespace: string, pod: string, node: string, opts?: { uid?: string }): Promise<void>;
  /** POST pods/<name>/eviction (policy/v1). */
  evict(namespace: string, pod: string, opts?: DeleteOptions): Promise<void>;
}

/**
 * A read-only view of an informer's cache. NEVER modify objects from a lister: they are shared
 * with every other reader of the cache.
 */
export interface Lister<T extends KubeObject = KubeObject> {
  /** By key ("ns/name" or "name"). */
  get(key: ObjectKey): Readonly<T> | undefined;
  /** Every object (optionally matching a label selector). */
  list(selector?: Selector): readonly Readonly<T>[];
  /** The objects of one namespace (optionally matching a label selector). */
  listNamespace(namespace: string, selector?: Selector): readonly Readonly<T>[];
  /** The objects an indexer maps to `value` (see INDEX_*). */
  byIndex(index: string, value: string): readonly Readonly<T>[];
}

/** Index names every informer understands. */
export const INDEX_NAMESPACE = "namespace";
/** ownerReferences[].uid */
export const INDEX_OWNER_UID = "ownerUid";
/** spec.nodeName (pods) */
export const INDEX_NODE_NAME = "spec.nodeName";

export type IndexFunc<T extends KubeObject = KubeObject> = (obj: Readonly<T>) => string[];

export interface EventHandler<T extends KubeObject = KubeObject> {
  onAdd?(obj: Readonly<T>): void;
  onUpdate?(oldObj: Readonly<T>, newObj: Readonly<T>): void;
  /** Called with the last known state (a DeletedFinalStateUnknown-like object after a relist is not used: the last state is passed). */
  onDelete?(obj: Readonly<T>): void;
}

/**
 * List, then watch from the list's resourceVersion; re-watch when a watch ends; relist on 410 Gone;
 * reconnect with backoff 1 s → 30 s, reset by the first event. Handlers run in event order.
 */
export interface Informer<T extends KubeObject = KubeObject> {
  readonly lister: Lister<T>;
  addEventHandler(handler: EventHandler<T>): void;
  addIndexer(name: string, fn: IndexFunc<T>): void;
  hasSynced(): boolean;
  /** Resolves once the first list has been delivered to the handlers. */
  waitForSync(signal: AbortSignal): Promise<void>;
  /** Runs until ctx.signal aborts. */
  run(ctx: Context): Promise<void>;
}

/** One informer per resource per process, shared by every controller in it. */
export interface SharedInformerFactory {
  informer<T extends KubeObject = KubeObject>(group: string, resource: string): Informer<T>;
  start(ctx: Context): void;
  waitForCacheSync(signal: AbortSignal): Promise<void>;
}

/** Injected time, so tests run without sleeping. */
export interface Clock {
  now(): number;
  /** Resolves after `ms` (or at once when `signal` aborts). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  setTimeout(fn: () => void, ms: number): { cancel(): void };
}

/**
 * A rate-limited work queue of keys (client-go's RateLimitingInterface): a key is never handed to
 * two workers at once; one added while being processed is handed out again after `done`.
 */
export interface WorkQueue<K = ObjectKey> {
  add(key: K): void;
  addAfter(key: K, delayMs: number): void;
  /** Adds after the key's backoff (per-key exponential 5 ms → 1000 s, combined with a 50 qps / 300 burst bucket). */
  addRateLimited(key: K): void;
  /** Clears the key's backoff history (after a successful reconcile). */
  forget(key: K): void;
  numRequeues(key: K): number;
  /** The next key, or undefined once shut down and drained. */
  get(): Promise<K | undefined>;
  done(key: K): void;
  len(): number;
  shutDown(): void;
}

export interface Result {
  /** Requeue with backoff (as if the reconcile had failed, without logging an error). */
  requeue?: boolean;
  /** Requeue after this delay (e.g. minReadySeconds, ttlSecondsAfterFinished). */
  requeueAfterMs?: number;
}

/** Context of one reconcile: its logger carries `reconcileID`. */
export interface ReconcileContext extends Context {
  reconcileID: string;
}

/**
 * Level-based: called with a key whenever anything about that object may have changed. Throw to
 * retry with backoff; throw a TerminalError for failures retrying cannot fix (logged, not requeued).
 */
export interface Reconciler {
  reconcile(ctx: ReconcileContext, key: ObjectKey): Promise<Result | void>;
}

/** Records Kubernetes Events about an object, aggregating repeats (count, lastTimestamp) as upstream does. */
export interface EventRecorder {
  event(obj: Readonly<KubeObject>, type: "Normal" | "Warning", reason: string, message: string): void;
}
