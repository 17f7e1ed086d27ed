// Test doubles for the client contracts: a FakeClient over an in-memory object tracker that records
// every call (client-go's fake clientset + testing.Fake), a fixed-array Lister, an EventRecorder
// that records strings, and a Clock whose time only moves when a test says so.

import { randomUUID } from "node:crypto";
import {
  findKind,
  groupVersion,
  objectFields,
  parseFieldSelector,
  parseLabelSelector,
  RESOURCES,
  type DeleteOptions,
  type KubeObject,
  type ResourceInfo,
} from "../api/index.ts";
import { applyPatch } from "../api/patch/index.ts";
import { ClientError, type StatusBody } from "./errors.ts";
import { defaultIndexers, objectKey, Store } from "./store.ts";
import type {
  Client,
  Clock,
  EventRecorder,
  IndexFunc,
  Lister,
  ListOptions,
  ObjectList,
  PatchType,
  ResourceClient,
  WatchEvent,
  WriteOptions,
} from "./types.ts";

// ---- actions and reactors ----------------------------------------------------------------------

export type Verb = "get" | "list" | "watch" | "create" | "update" | "patch" | "delete" | "bind" | "evict";

/** One recorded call, in the shape of client-go's testing.Action. */
export interface Action {
  verb: Verb;
  group: string;
  resource: string;
  /** "" for cluster-scoped resources and for all-namespace lists/watches. */
  namespace: string;
  /** "" for list and watch. */
  name: string;
  subresource?: string;
  /** The body sent (create, update, bind, evict): a copy. */
  object?: KubeObject;
  patchType?: PatchType;
  patch?: unknown;
  /** For list and watch. */
  listOptions?: ListOptions;
  /** For delete and evict. */
  deleteOptions?: DeleteOptions;
}

/**
 * What a reactor decides: not handled (return undefined) lets the next reactor, and finally the
 * tracker, answer; `{ error }` rejects the call with it; `{ object }` answers with it.
 */
export type Reaction = { error: unknown } | { object?: KubeObject | ObjectList } | undefined | void;
export type ReactionFunc = (action: Action) => Reaction | Promise<Reaction>;
/** Answers a watch with a scripted stream; undefined falls through to the tracker's watch. */
export type WatchReactionFunc = (action: Action, signal: AbortSignal) => AsyncIterable<WatchEvent> | undefined;

interface Reactor<F> {
  verb: Verb | "*";
  resource: string;
  fn: F;
}

// ---- errors, in the apiserver's words ----------------------------------------------------------

function qualified(info: ResourceInfo): string {
  return info.group ? `${info.resource}.${info.group}` : info.resource;
}

function statusError(code: number, reason: string, message: string, info?: ResourceInfo, name?: string): ClientError {
  const status: StatusBody = {
    kind: "Status",
    apiVersion: "v1",
    status: "Failure",
    message,
    reason,
    code,
    details: info ? { name, group: info.group, kind: info.resource } : undefined,
  };
  return new ClientError(code, reason, message, status);
}

export const fakeErrors = {
  notFound: (info: ResourceInfo, name: string) => statusError(404, "NotFound", `${qualified(info)} "${name}" not found`, info, name),
  alreadyExists: (info: ResourceInfo, name: string) =>
    statusError(409, "AlreadyExists", `${qualified(info)} "${name}" already exists`, info, name),
  conflict: (info: ResourceInfo, name: string, why = "the object has been modified; please apply your changes to the latest version and try again") =>
    statusError(409, "Conflict", `Operation cannot be fulfilled on ${qualified(info)} "${name}": ${why}`, info, name),
  invalid: (info: ResourceInfo, name: string, message: string) =>
    statusError(422, "Invalid", `${info.kind} "${name}" is invalid: ${message}`, info, name),
  badRequest: (message: string) => statusError(400, "BadRequest", message),
  gone: (message = "too old resource version") => statusError(410, "Expired", message),
  internal: (message: string) => statusError(500, "InternalError", `Internal error occurred: ${message}`),
  tooManyRequests: (message = "Too many requests, please try again later.") => statusError(429, "TooManyRequests", message),
};

// ---- a small async queue, also used for watch streams ------------------------------------------

/** An unbounded async channel: push/end from producers, `for await` from one consumer. */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiter?: () => void;
  private ended = false;

  constructor(private readonly signal?: AbortSignal) {
    if (signal?.aborted) this.ended = true;
    else signal?.addEventListener("abort", () => this.end(), { once: true });
  }

  push(item: T): void {
    if (this.ended) return;
    this.items.push(item);
    this.wake();
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  get isEnded(): boolean {
    return this.ended;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.signal?.aborted) return;
      const item = this.items.shift();
      if (item !== undefined) {
        yield item;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }
}

// ---- FakeClient ---------------------------------------------------------------------------------

const NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789";

function infoFor(group: string, resource: string): ResourceInfo {
  const info = RESOURCES.find((r) => r.group === group && r.resource === resource);
  if (!info) throw new Error(`FakeClient: unknown resource ${JSON.stringify(resource)} in group ${JSON.stringify(group)}`);
  return info;
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

interface WatcherEntry {
  namespace: string;
  queue: AsyncQueue<WatchEvent>;
  filter: (obj: KubeObject) => boolean;
}

interface Tracked {
  objects: Map<string, KubeObject>;
  /** Every change, for watches that resume from a resourceVersion. */
  history: { rv: number; event: WatchEvent }[];
  watchers: Set<WatcherEntry>;
}

export interface FakeClientOptions {
  /** Timestamps (creationTimestamp, deletionTimestamp) come from this clock; default the real time. */
  clock?: Pick<Clock, "now">;
}

/**
 * A Client over an in-memory tracker. Every call is recorded in `actions` before reactors or the
 * tracker answer it. The tracker behaves like the apiserver where controllers can tell: create
 * assigns uid/resourceVersion/creationTimestamp/generation and honours generateName; update with a
 * stale resourceVersion is a 409 Conflict; update bumps generation when spec changes; updateStatus
 * changes only status; delete of an object with finalizers sets deletionTimestamp, and removing the
 * last finalizer then deletes it; watches see changes (and replay from a resourceVersion).
 */
export class FakeClient implements Client {
  readonly actions: Action[] = [];
  private readonly reactors: Reactor<ReactionFunc>[] = [];
  private readonly watchReactors: Reactor<WatchReactionFunc>[] = [];
  private readonly tracked = new Map<string, Tracked>();
  private rv = 0;
  private nameSeq = 0;
  private readonly clock: Pick<Clock, "now">;

  constructor(objects: KubeObject[] = [], opts: FakeClientOptions = {}) {
    this.clock = opts.clock ?? { now: () => Date.now() };
    for (const o of objects) this.seed(o);
  }

  /** Adds an object to the tracker without recording an action (as client-go's NewSimpleClientset). */
  seed(obj: KubeObject): KubeObject {
    const info = findKind(obj.apiVersion ?? "", obj.kind ?? "");
    if (!info) throw new Error(`FakeClient: unknown apiVersion/kind ${obj.apiVersion}/${obj.kind}`);
    const o = clone(obj);
    o.metadata.uid ??= randomUUID();
    o.metadata.creationTimestamp ??= this.timestamp();
    o.metadata.resourceVersion = String(++this.rv);
    this.store(info).objects.set(this.key(info, o.metadata.namespace ?? "", o.metadata.name ?? ""), o);
    return clone(o);
  }

  /** Forgets recorded actions (after seeding or a first reconcile). */
  clearActions(): void {
    this.actions.length = 0;
  }

  /** Actions other than get/list/watch: what a reconcile changed. */
  writeActions(): Action[] {
    return this.actions.filter((a) => a.verb !== "get" && a.verb !== "list" && a.verb !== "watch");
  }

  /** Runs `fn` before the tracker (and before reactors added earlier) for matching calls; "*" matches all. */
  prependReactor(verb: Verb | "*", resource: string, fn: ReactionFunc): void {
    this.reactors.unshift({ verb, resource, fn });
  }

  /** Scripts watch streams: `fn` answers watches on `resource` ("*" for all) unless it returns undefined. */
  prependWatchReactor(resource: string, fn: WatchReactionFunc): void {
    this.watchReactors.unshift({ verb: "watch", resource, fn });
  }

  /** The tracker's current copy of an object, bypassing actions and reactors. */
  tracker(group: string, resource: string, namespace: string, name: string): KubeObject | undefined {
    const info = infoFor(group, resource);
    const o = this.store(info).objects.get(this.key(info, namespace, name));
    return o && clone(o);
  }

  /** Every object the tracker holds for a resource, bypassing actions and reactors. */
  trackerList(group: string, resource: string): KubeObject[] {
    return [...this.store(infoFor(group, resource)).objects.values()].map(clone);
  }

  resource<T extends KubeObject = KubeObject>(group: string, resource: string): ResourceClient<T> {
    return new FakeResourceClient<T>(this, infoFor(group, resource));
  }

  async bind(namespace: string, pod: string, node: string, opts: { uid?: string } = {}): Promise<void> {
    const binding: KubeObject = {
      apiVersion: "v1",
      kind: "Binding",
      metadata: { name: pod, namespace, ...(opts.uid ? { uid: opts.uid } : {}) },
      target: { apiVersion: "v1", kind: "Node", name: node },
    };
    const info = infoFor("", "pods");
    await this.invoke({ verb: "bind", group: "", resource: "pods", namespace, name: pod, subresource: "binding", object: binding }, () => {
      const cur = this.getTracked(info, namespace, pod);
      if (opts.uid && cur.metadata.uid !== opts.uid) throw fakeErrors.conflict(info, pod, "Precondition failed: UID in precondition does not match");
      const spec = (cur.spec ?? {}) as { nodeName?: string };
      if (spec.nodeName) throw fakeErrors.conflict(info, pod, `pod ${pod} is already assigned to node "${spec.nodeName}"`);
      const next = clone(cur);
      next.spec = { ...spec, nodeName: node };
      this.write(info, next, "MODIFIED");
      return undefined;
    });
  }

  async evict(namespace: string, pod: string, opts: DeleteOptions = {}): Promise<void> {
    const eviction: KubeObject = { apiVersion: "policy/v1", kind: "Eviction", metadata: { name: pod, namespace }, deleteOptions: opts };
    const info = infoFor("", "pods");
    await this.invoke(
      { verb: "evict", group: "", resource: "pods", namespace, name: pod, subresource: "eviction", object: eviction, deleteOptions: opts },
      () => {
        this.deleteTracked(info, namespace, pod, opts);
        return undefined;
      },
    );
  }

  // ---- internals used by FakeResourceClient ----

  /** Records the action, runs reactors, then the tracker. */
  async invoke<R>(action: Action, tracker: () => R): Promise<R> {
    this.actions.push(clone(action));
    for (const r of this.reactors) {
      if ((r.verb !== "*" && r.verb !== action.verb) || (r.resource !== "*" && r.resource !== action.resource)) continue;
      const reaction = await r.fn(clone(action));
      if (!reaction) continue;
      if ("error" in reaction) throw reaction.error;
      return clone(reaction.object) as R;
    }
    return tracker();
  }

  watchFor(info: ResourceInfo, namespace: string, opts: ListOptions, signal: AbortSignal): AsyncIterable<WatchEvent> {
    const action: Action = { verb: "watch", group: info.group, resource: info.resource, namespace, name: "", listOptions: { ...opts } };
    this.actions.push(clone(action));
    for (const r of this.watchReactors) {
      if (r.resource !== "*" && r.resource !== info.resource) continue;
      const stream = r.fn(clone(action), signal);
      if (stream) return stream;
    }
    const st = this.store(info);
    const filter = this.listFilter(info, namespace, opts);
    const queue = new AsyncQueue<WatchEvent>(signal);
    const entry: WatcherEntry = { namespace, queue, filter };
    const from = opts.resourceVersion && opts.resourceVersion !== "0" ? Number(opts.resourceVersion) : undefined;
    if (from !== undefined) {
      for (const h of st.history) if (h.rv > from && filter(h.event.object)) queue.push(clone(h.event));
    }
    st.watchers.add(entry);
    signal.addEventListener("abort", () => st.watchers.delete(entry), { once: true });
    return queue;
  }

  listFilter(info: ResourceInfo, namespace: string, opts: ListOptions = {}): (obj: KubeObject) => boolean {
    const labels = opts.labelSelector ? parseLabelSelector(opts.labelSelector) : undefined;
    const fields = opts.fieldSelector ? parseFieldSelector(opts.fieldSelector) : undefined;
    return (obj) =>
      (!namespace || obj.metadata.namespace === namespace) &&
      (!labels || labels.matches(obj.metadata.labels)) &&
      (!fields || fields.matches(objectFields(obj, info)));
  }

  listTracked(info: ResourceInfo, namespace: string, opts: ListOptions = {}): ObjectList {
    const filter = this.listFilter(info, namespace, opts);
    const items = [...this.store(info).objects.values()].filter(filter).map(clone);
    items.sort((a, b) => objectKey(a).localeCompare(objectKey(b)));
    return { apiVersion: groupVersion(info), kind: info.listKind, metadata: { resourceVersion: String(this.rv) }, items };
  }

  getTracked(info: ResourceInfo, namespace: string, name: string): KubeObject {
    const o = this.store(info).objects.get(this.key(info, namespace, name));
    if (!o) throw fakeErrors.notFound(info, name);
    return o;
  }

  createTracked(info: ResourceInfo, namespace: string, obj: KubeObject, dryRun?: boolean): KubeObject {
    const o = clone(obj);
    o.apiVersion = groupVersion(info);
    o.kind = info.kind;
    o.metadata ??= {};
    if (info.namespaced) o.metadata.namespace = namespace || o.metadata.namespace;
    else delete o.metadata.namespace;
    if (!o.metadata.name && o.metadata.generateName) o.metadata.name = o.metadata.generateName + this.randomSuffix();
    const name = o.metadata.name;
    if (!name) throw fakeErrors.invalid(info, "", "metadata.name: Required value: name or generateName is required");
    if (info.namespaced && !o.metadata.namespace) throw fakeErrors.badRequest("the namespace of the provided object is empty");
    if (this.store(info).objects.has(this.key(info, o.metadata.namespace ?? "", name))) throw fakeErrors.alreadyExists(info, name);
    if (o.metadata.resourceVersion) throw fakeErrors.badRequest("resourceVersion should not be set on objects to be created");
    o.metadata.uid = randomUUID();
    o.metadata.creationTimestamp = this.timestamp();
    o.metadata.generation = 1;
    delete o.metadata.deletionTimestamp;
    if (dryRun) return clone(o);
    return this.write(info, o, "ADDED");
  }

  updateTracked(info: ResourceInfo, obj: KubeObject, opts: { statusOnly?: boolean; dryRun?: boolean } = {}): KubeObject {
    const ns = info.namespaced ? (obj.metadata.namespace ?? "") : "";
    const name = obj.metadata.name ?? "";
    const cur = this.getTracked(info, ns, name);
    if (obj.metadata.resourceVersion && obj.metadata.resourceVersion !== cur.metadata.resourceVersion) throw fakeErrors.conflict(info, name);
    if (obj.metadata.uid && obj.metadata.uid !== cur.metadata.uid) throw fakeErrors.conflict(info, name, "Precondition failed: UID in precondition does not match");
    let next: KubeObject;
    if (opts.statusOnly) {
      next = clone(cur);
      next.status = clone(obj.status);
    } else {
      next = clone(obj);
      next.apiVersion = groupVersion(info);
      next.kind = info.kind;
      // Immutable and server-owned metadata.
      next.metadata.uid = cur.metadata.uid;
      next.metadata.creationTimestamp = cur.metadata.creationTimestamp;
      next.metadata.deletionTimestamp = cur.metadata.deletionTimestamp;
      next.metadata.generation = cur.metadata.generation;
      if (info.namespaced) next.metadata.namespace = ns;
      if (JSON.stringify(next.spec) !== JSON.stringify(cur.spec)) next.metadata.generation = (cur.metadata.generation ?? 0) + 1;
    }
    if (opts.dryRun) return clone(next);
    if (next.metadata.deletionTimestamp && !(next.metadata.finalizers ?? []).length) {
      this.remove(info, next);
      return clone(next);
    }
    return this.write(info, next, "MODIFIED");
  }

  patchTracked(
    info: ResourceInfo,
    namespace: string,
    name: string,
    type: PatchType,
    patch: unknown,
    opts: WriteOptions & { subresource?: string; force?: boolean } = {},
  ): KubeObject {
    const ns = info.namespaced ? namespace : "";
    const existing = this.store(info).objects.get(this.key(info, ns, name));
    if (!existing && type !== "apply") throw fakeErrors.notFound(info, name);
    let patched: KubeObject;
    try {
      patched = applyPatch(existing ? clone(existing) : undefined, { patchType: type, patch }, { apiVersion: groupVersion(info), kind: info.kind }, {
        fieldManager: opts.fieldManager,
        now: new Date(this.clock.now()),
      }) as KubeObject;
    } catch (e) {
      const pe = e as { name?: string; code?: number; reason?: string; message?: string };
      if (pe.name === "PatchError") throw statusError(pe.code ?? 400, pe.reason ?? "BadRequest", pe.message ?? "patch failed", info, name);
      throw e;
    }
    if (!existing) {
      patched.metadata ??= {};
      patched.metadata.name ??= name;
      return this.createTracked(info, ns, patched, opts.dryRun);
    }
    if (patched.metadata?.resourceVersion && patched.metadata.resourceVersion !== existing.metadata.resourceVersion) throw fakeErrors.conflict(info, name);
    patched.metadata = { ...patched.metadata, resourceVersion: existing.metadata.resourceVersion };
    if (opts.subresource === "status") {
      const next = clone(existing);
      next.status = patched.status;
      patched = next;
    }
    return this.updateTracked(info, patched, { dryRun: opts.dryRun });
  }

  deleteTracked(info: ResourceInfo, namespace: string, name: string, opts: Omit<DeleteOptions, "dryRun"> & { dryRun?: boolean | string[] } = {}): void {
    const ns = info.namespaced ? namespace : "";
    const cur = this.getTracked(info, ns, name);
    const pre = opts.preconditions;
    if (pre?.uid && pre.uid !== cur.metadata.uid) throw fakeErrors.conflict(info, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${cur.metadata.uid}`);
    if (pre?.resourceVersion && pre.resourceVersion !== cur.metadata.resourceVersion) throw fakeErrors.conflict(info, name);
    if (Array.isArray(opts.dryRun) ? opts.dryRun.length > 0 : opts.dryRun) return;
    const finalizers = [...(cur.metadata.finalizers ?? [])];
    const policy = opts.propagationPolicy ?? (opts.orphanDependents ? "Orphan" : undefined);
    if (policy === "Foreground" && !finalizers.includes("foregroundDeletion")) finalizers.push("foregroundDeletion");
    if (policy === "Orphan" && !finalizers.includes("orphan")) finalizers.push("orphan");
    if (finalizers.length) {
      if (cur.metadata.deletionTimestamp && finalizers.length === (cur.metadata.finalizers ?? []).length) return;
      const next = clone(cur);
      next.metadata.finalizers = finalizers;
      next.metadata.deletionTimestamp ??= this.timestamp();
      next.metadata.deletionGracePeriodSeconds ??= 0;
      this.write(info, next, "MODIFIED");
      return;
    }
    this.remove(info, cur);
  }

  private write(info: ResourceInfo, obj: KubeObject, type: "ADDED" | "MODIFIED"): KubeObject {
    obj.metadata.resourceVersion = String(++this.rv);
    const st = this.store(info);
    st.objects.set(this.key(info, obj.metadata.namespace ?? "", obj.metadata.name ?? ""), obj);
    this.notify(st, { type, object: obj });
    return clone(obj);
  }

  private remove(info: ResourceInfo, obj: KubeObject): void {
    const st = this.store(info);
    st.objects.delete(this.key(info, obj.metadata.namespace ?? "", obj.metadata.name ?? ""));
    const last = clone(obj);
    last.metadata.resourceVersion = String(++this.rv);
    this.notify(st, { type: "DELETED", object: last });
  }

  private notify(st: Tracked, event: WatchEvent): void {
    const rv = Number(event.object.metadata.resourceVersion);
    st.history.push({ rv, event: clone(event) });
    for (const w of st.watchers) if (w.filter(event.object)) w.queue.push(clone(event));
  }

  private store(info: ResourceInfo): Tracked {
    const k = `${info.group}/${info.resource}`;
    let st = this.tracked.get(k);
    if (!st) this.tracked.set(k, (st = { objects: new Map(), history: [], watchers: new Set() }));
    return st;
  }

  private key(info: ResourceInfo, namespace: string, name: string): string {
    return info.namespaced ? `${namespace}/${name}` : name;
  }

  private timestamp(): string {
    return new Date(this.clock.now()).toISOString().replace(/\.\d{3}Z$/, "Z");
  }

  private randomSuffix(): string {
    // Deterministic per client, so tests can predict generated names: n → 5 chars of NAME_CHARS.
    let n = this.nameSeq++;
    let s = "";
    for (let i = 0; i < 5; i++) {
      s += NAME_CHARS[n % NAME_CHARS.length];
      n = Math.floor(n / NAME_CHARS.length);
    }
    return s;
  }
}

class FakeResourceClient<T extends KubeObject> implements ResourceClient<T> {
  constructor(
    private readonly fake: FakeClient,
    readonly info: ResourceInfo,
  ) {}

  private base(verb: Verb, namespace: string, name: string): Action {
    return { verb, group: this.info.group, resource: this.info.resource, namespace: this.info.namespaced ? namespace : "", name };
  }

  get(namespace: string, name: string): Promise<T> {
    return this.fake.invoke(this.base("get", namespace, name), () => clone(this.fake.getTracked(this.info, this.info.namespaced ? namespace : "", name)) as T);
  }

  list(namespace: string, opts: ListOptions = {}): Promise<ObjectList<T>> {
    return this.fake.invoke({ ...this.base("list", namespace, ""), listOptions: { ...opts } }, () => this.fake.listTracked(this.info, this.info.namespaced ? namespace : "", opts) as ObjectList<T>);
  }

  watch(namespace: string, opts: ListOptions, signal: AbortSignal): AsyncIterable<WatchEvent<T>> {
    return this.fake.watchFor(this.info, this.info.namespaced ? namespace : "", opts, signal) as AsyncIterable<WatchEvent<T>>;
  }

  create(namespace: string, obj: T, opts: WriteOptions = {}): Promise<T> {
    const ns = this.info.namespaced ? namespace || (obj.metadata.namespace ?? "") : "";
    return this.fake.invoke({ ...this.base("create", ns, obj.metadata.name ?? ""), object: obj }, () => this.fake.createTracked(this.info, ns, obj, opts.dryRun) as T);
  }

  update(obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.fake.invoke({ ...this.base("update", obj.metadata.namespace ?? "", obj.metadata.name ?? ""), object: obj }, () => this.fake.updateTracked(this.info, obj, { dryRun: opts.dryRun }) as T);
  }

  updateStatus(obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.fake.invoke(
      { ...this.base("update", obj.metadata.namespace ?? "", obj.metadata.name ?? ""), subresource: "status", object: obj },
      () => this.fake.updateTracked(this.info, obj, { statusOnly: true, dryRun: opts.dryRun }) as T,
    );
  }

  patch(namespace: string, name: string, type: PatchType, patch: unknown, opts: WriteOptions & { subresource?: string; force?: boolean } = {}): Promise<T> {
    const action: Action = { ...this.base("patch", namespace, name), patchType: type, patch };
    if (opts.subresource) action.subresource = opts.subresource;
    return this.fake.invoke(action, () => this.fake.patchTracked(this.info, namespace, name, type, patch, opts) as T);
  }

  async delete(namespace: string, name: string, opts: DeleteOptions & { dryRun?: boolean } = {}): Promise<void> {
    await this.fake.invoke({ ...this.base("delete", namespace, name), deleteOptions: { ...opts } }, () => {
      this.fake.deleteTracked(this.info, namespace, name, opts);
      return undefined;
    });
  }
}

// ---- listers, recorder, clock -------------------------------------------------------------------

/**
 * A Lister over a fixed set of objects (copied and frozen), with the standard indexes (namespace,
 * ownerUid, spec.nodeName) plus any given — sample-controller's "lister preloaded with objects".
 */
export function fakeLister<T extends KubeObject = KubeObject>(objects: readonly T[], indexers: Record<string, IndexFunc<T>> = {}): Lister<T> {
  const store = new Store<T>({ ...defaultIndexers<T>(), ...indexers });
  for (const o of objects) store.upsert(clone(o));
  return store;
}

/** Records events as "Type Reason message" strings (client-go's record.FakeRecorder). */
export class FakeRecorder implements EventRecorder {
  readonly events: string[] = [];
  /** The objects the events were about, parallel to `events`. */
  readonly objects: Readonly<KubeObject>[] = [];
  event(obj: Readonly<KubeObject>, type: "Normal" | "Warning", reason: string, message: string): void {
    this.events.push(`${type} ${reason} ${message}`);
    this.objects.push(obj);
  }
}

interface FakeTimer {
  at: number;
  seq: number;
  fn: () => void;
}

/** Lets every pending promise continuation (and I/O callback) run, without advancing any clock. */
export function flushPromises(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * A Clock that moves only on `advance`. Timers fire in due order, each followed by a flush of
 * pending promise continuations, so code woken by a timer can schedule the next one before time
 * moves on — sleeps and timers resolve deterministically without any real waiting.
 */
export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly timers: FakeTimer[] = [];

  constructor(start: number = Date.UTC(2024, 0, 1, 0, 0, 0)) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): { cancel(): void } {
    const timer: FakeTimer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(timer);
    return {
      cancel: () => {
        const i = this.timers.indexOf(timer);
        if (i >= 0) this.timers.splice(i, 1);
      },
    };
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const onAbort = (): void => {
        t.cancel();
        resolve();
      };
      const t = this.setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Timers not yet fired. */
  pending(): number {
    return this.timers.length;
  }

  /** When the next timer is due, or undefined. */
  nextAt(): number | undefined {
    return this.next()?.at;
  }

  /** Moves time forward by `ms`, firing every timer that falls due (including ones scheduled on the way). */
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    await flushPromises();
    for (;;) {
      const next = this.next();
      if (!next || next.at > target) break;
      this.timers.splice(this.timers.indexOf(next), 1);
      this.t = Math.max(this.t, next.at);
      next.fn();
      await flushPromises();
    }
    this.t = target;
    await flushPromises();
  }

  /** Advances to the next timer and fires it (and any due at the same instant); false when none is pending. */
  async step(): Promise<boolean> {
    const at = this.nextAt();
    if (at === undefined) return false;
    await this.advance(at - this.t);
    return true;
  }

  private next(): FakeTimer | undefined {
    let best: FakeTimer | undefined;
    for (const t of this.timers) if (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    return best;
  }
}
