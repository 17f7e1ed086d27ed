// The generic registry store: create/get/list/watch/update/delete for one resource over a Backend.
// Shaped like k8s.io/apiserver/pkg/registry/generic/registry.Store.

import type { UserInfo } from "../auth.ts";
import { randomUUID } from "node:crypto";
import type { DeleteOptions, KubeObject, ResourceInfo } from "../../api/index.ts";
import { formatFieldError, groupVersion, objectFields, parseFieldSelector, parseLabelSelector, validateFieldSelector } from "../../api/index.ts";
import type { FieldError } from "../../api/index.ts";
import type { Backend, KeyValue } from "../storage/index.ts";
import { isStorageError, MATCH_ALL, type CacheEvent, type EventSink, type WatchCache } from "../storage/index.ts";
import { ApiError, errors } from "../errors.ts";
import { deepEqual, type Strategy, type StrategyContext } from "./strategy.ts";
import type { StorageMetrics } from "../metrics.ts";

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  resourceVersionMatch?: string;
}

export interface WatchOptions {
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  allowWatchBookmarks?: boolean;
}


export interface WriteOptions {
  dryRun?: boolean;
  fieldManager?: string;
  /** Who asks (admission plugins see it as userInfo); absent for the apiserver's own writes. */
  user?: UserInfo;
}

export interface KubeList {
  apiVersion: string;
  kind: string;
  metadata: { resourceVersion: string; continue?: string; remainingItemCount?: number };
  items: KubeObject[];
}

/** Mutates a copy of the current object into the desired one; current is undefined when absent. */
export type TryUpdate = (current: KubeObject | undefined) => Promise<KubeObject> | KubeObject;

const GENERATE_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789";
const MAX_UPDATE_RETRIES = 20;
const FRESHNESS_WAIT_MS = 250;

export class Store {
  readonly info: ResourceInfo;
  readonly gr: { group: string; resource: string };
  private readonly apiVersion: string;

  /**
   * `cache` is the registry's watch cache over all of /registry/: one backend watch for every
   * resource, so any write advances every resource's view (a quiet resource is never stale).
   */
  constructor(
    readonly strategy: Strategy,
    private readonly backend: Backend,
    private readonly ctx: StrategyContext,
    readonly cache: WatchCache<KubeObject>,
    private readonly metrics?: StorageMetrics,
  ) {
    this.info = strategy.info;
    this.gr = { group: this.info.group, resource: this.info.resource };
    this.apiVersion = groupVersion(this.info);
  }

  // ---- keys and encoding ----------------------------------------------------------------------

  /** /registry/<resource>/ or /registry/<resource>/<namespace>/ */
  prefix(namespace?: string): string {
    const base = `/registry/${this.info.resource}/`;
    return this.info.namespaced && namespace ? `${base}${namespace}/` : base;
  }

  key(namespace: string, name: string): string {
    return this.info.namespaced ? `/registry/${this.info.resource}/${namespace}/${name}` : `/registry/${this.info.resource}/${name}`;
  }

  /** The stored value never carries resourceVersion: it is the key's modRevision, set on read. */
  decode(kv: KeyValue): KubeObject {
    const obj = JSON.parse(kv.value) as KubeObject;
    obj.apiVersion = this.apiVersion;
    obj.kind = this.info.kind;
    obj.metadata.resourceVersion = String(kv.modRevision);
    return obj;
  }

  private encode(obj: KubeObject): string {
    const { resourceVersion: _rv, ...meta } = obj.metadata;
    return JSON.stringify({ ...obj, apiVersion: this.apiVersion, kind: this.info.kind, metadata: meta });
  }

  private async timed<T>(op: string, fn: () => Promise<T>): Promise<T> {
    const end = this.metrics?.storageLatency.startTimer({ operation: op, type: this.info.resource });
    try {
      return await fn();
    } catch (e) {
      throw storageToApiError(e, this.gr);
    } finally {
      end?.();
    }
  }

  // ---- reads ----------------------------------------------------------------------------------

  async get(namespace: string, name: string): Promise<KubeObject> {
    const { kv } = await this.timed("get", () => this.backend.get(this.key(namespace, name)));
    if (!kv) throw errors.notFound(this.gr, name);
    return this.decode(kv);
  }

  private selectors(labelSelector?: string, fieldSelector?: string): (o: KubeObject) => boolean {
    let ls;
    let fs;
    try {
      ls = labelSelector ? parseLabelSelector(labelSelector) : undefined;
    } catch (e) {
      throw errors.badRequest(`unable to parse requirement: ${(e as Error).message}`.replace("unable to parse requirement: unable to parse requirement: ", "unable to parse requirement: "));
    }
    try {
      fs = fieldSelector ? parseFieldSelector(fieldSelector) : undefined;
      if (fs) validateFieldSelector(fs, this.info);
    } catch (e) {
      throw errors.badRequest((e as Error).message);
    }
    if ((!ls || ls.empty()) && (!fs || fs.empty())) return MATCH_ALL;
    const info = this.info;
    return (o) => (!ls || ls.matches(o.metadata.labels)) && (!fs || fs.matches(objectFields(o, info)));
  }

  async list(namespace: string, opts: ListOptions): Promise<KubeList> {
    const filter = this.selectors(opts.labelSelector, opts.fieldSelector);
    const limit = opts.limit && opts.limit > 0 ? opts.limit : 0;
    const rv = parseResourceVersion(opts.resourceVersion);
    const exact = opts.resourceVersionMatch === "Exact";
    if (opts.resourceVersionMatch && opts.resourceVersionMatch !== "Exact" && opts.resourceVersionMatch !== "NotOlderThan") {
      throw errors.badRequest(`resourceVersionMatch: Unsupported value: "${opts.resourceVersionMatch}": supported values: "Exact", "NotOlderThan"`);
    }
    if (opts.resourceVersionMatch && opts.resourceVersion === undefined) {
      throw errors.badRequest("resourceVersionMatch is forbidden unless resourceVersion is provided");
    }
    if (opts.continue && opts.resourceVersion && opts.resourceVersion !== "0") {
      throw errors.badRequest("specifying resource version is not allowed when using continue");
    }
    // Paged or exact-revision lists read the store; everything else is served from the watch cache.
    if (opts.continue || (limit > 0 && rv !== 0) || exact) {
      return this.listFromStorage(namespace, filter, limit, opts.continue, exact ? rv : undefined);
    }
    if (rv !== 0) {
      // A consistent read from the cache: wait until it has seen the store's current revision. If it
      // cannot catch up quickly (the last write was outside /registry/), read the store instead.
      const current = await this.timed("currentRevision", () => this.backend.currentRevision());
      const fresh = await this.cache.waitUntilFresh(Math.max(current, rv ?? 0), AbortSignal.timeout(FRESHNESS_WAIT_MS)).then(
        () => true,
        () => false,
      );
      if (!fresh) return this.listFromStorage(namespace, filter, 0, undefined, undefined);
    }
    const { revision, items } = this.cache.list(this.prefix(namespace));
    const out: KubeObject[] = [];
    for (const it of items) if (filter(it.obj)) out.push(it.obj);
    return this.makeList(out, String(revision));
  }

  private makeList(items: KubeObject[], resourceVersion: string, cont?: string, remaining?: number): KubeList {
    const meta: KubeList["metadata"] = { resourceVersion };
    if (cont) meta.continue = cont;
    if (remaining !== undefined && cont) meta.remainingItemCount = remaining;
    return { apiVersion: this.apiVersion, kind: this.info.listKind, metadata: meta, items };
  }

  private async listFromStorage(
    namespace: string,
    filter: (o: KubeObject) => boolean,
    limit: number,
    cont: string | undefined,
    atRevision: number | undefined,
  ): Promise<KubeList> {
    const prefix = this.prefix(namespace);
    let revision = atRevision ?? 0;
    let startKey: string | undefined;
    if (cont) {
      const c = decodeContinue(cont, prefix);
      revision = c.rv;
      startKey = c.start;
    }
    const items: KubeObject[] = [];
    let more = false;
    let remaining = 0;
    let lastKey = "";
    // Keep reading pages until the filtered result fills the limit, as the apiserver does.
    for (;;) {
      const want = limit > 0 ? Math.max(limit - items.length, 1) : 0;
      const res = await this.timed("list", () =>
        this.backend.list(prefix, { revision: revision || undefined, limit: want, startKey }),
      ).catch((e: unknown) => {
        if (isApiError410(e) && cont) {
          throw errors.gone(
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
          );
        }
        throw e;
      });
      revision = res.revision;
      for (const kv of res.kvs) {
        lastKey = kv.key;
        const o = this.decode(kv);
        if (filter(o)) items.push(o);
      }
      more = res.more;
      remaining = res.remaining;
      if (!more || limit === 0 || items.length >= limit) break;
      startKey = lastKey + "\u0000";
    }
    const next = more ? encodeContinue(revision, lastKey + "\u0000", prefix) : undefined;
    return this.makeList(items, String(revision), next, more ? remaining : undefined);
  }

  /**
   * Events for this resource, straight from the watch cache (no per-event wrapping: with a thousand
   * watchers every hop counts). Selector errors throw here, before anything is streamed; storage
   * errors (410 too old) surface from the iterator as StorageErrors — see storageToApiError.
   */
  watch(namespace: string, opts: WatchOptions, signal: AbortSignal): AsyncIterable<CacheEvent<KubeObject>> {
    const filter = this.selectors(opts.labelSelector, opts.fieldSelector);
    const rv = parseResourceVersion(opts.resourceVersion) ?? 0;
    // Older than the cache's window (e.g. just after a restart) but maybe still in the store's
    // history: replay from the store itself, as the apiserver does without a watch cache.
    if (rv > 0 && rv < this.cache.oldestRevision()) return this.watchFromStorage(namespace, rv, filter, signal);
    return this.cache.watch(this.prefix(namespace), rv, filter, signal, { bookmarks: opts.allowWatchBookmarks });
  }

  /**
   * The validated parts of a watch request, so that bad selectors fail before the response starts.
   * `start(sink)` then feeds events into `sink` (synchronously from the watch cache).
   */
  prepareWatch(namespace: string, opts: WatchOptions, signal: AbortSignal): { start(sink: EventSink<KubeObject>): Promise<void> } {
    const filter = this.selectors(opts.labelSelector, opts.fieldSelector);
    const rv = parseResourceVersion(opts.resourceVersion) ?? 0;
    return {
      start: async (sink) => {
        if (rv > 0 && rv < this.cache.oldestRevision()) {
          void (async () => {
            try {
              for await (const ev of this.watchFromStorage(namespace, rv, filter, signal)) sink.push(ev);
              sink.end();
            } catch (e) {
              sink.fail(storageToApiError(e, this.gr));
            }
          })();
          return;
        }
        await this.cache.subscribe(this.prefix(namespace), rv, filter, sink, signal, { bookmarks: opts.allowWatchBookmarks });
      },
    };
  }

  private async *watchFromStorage(
    namespace: string,
    afterRevision: number,
    filter: (o: KubeObject) => boolean,
    signal: AbortSignal,
  ): AsyncGenerator<CacheEvent<KubeObject>> {
    for await (const ev of this.backend.watch(this.prefix(namespace), afterRevision, signal)) {
      const obj = this.decode(ev.kv);
      const prevMatch = ev.prevKv !== undefined && filter(this.decode(ev.prevKv));
      if (ev.type === "delete") {
        if (prevMatch) yield { type: "DELETED", obj, revision: ev.revision };
        continue;
      }
      const match = filter(obj);
      if (match && prevMatch) yield { type: "MODIFIED", obj, revision: ev.revision };
      else if (match) yield { type: "ADDED", obj, revision: ev.revision };
      else if (prevMatch) {
        // No longer matching: the previous state, at this change's revision.
        const prev = this.decode(ev.prevKv!);
        prev.metadata.resourceVersion = String(ev.revision);
        yield { type: "DELETED", obj: prev, revision: ev.revision };
      }
    }
  }

  /** The object a BOOKMARK event carries: only the resourceVersion. */
  bookmarkObject(revision: number): KubeObject {
    return { apiVersion: this.apiVersion, kind: this.info.kind, metadata: { resourceVersion: String(revision) } };
  }

  // ---- writes ---------------------------------------------------------------------------------

  private invalid(obj: KubeObject, errs: FieldError[]): ApiError {
    return errors.invalid(
      this.info.group,
      this.info.kind,
      obj.metadata?.name ?? obj.metadata?.generateName ?? "",
      errs.map((e) => ({ field: e.field, message: formatFieldError(e), cause: formatFieldError({ ...e, field: "" }).replace(/^: /, ""), type: e.type })),
    );
  }

  async create(namespace: string, input: KubeObject, opts: WriteOptions = {}): Promise<KubeObject> {
    // apiVersion and kind first, as Kubernetes serializes them.
    const { apiVersion: _a, kind: _k, ...rest } = structuredClone(input);
    const obj: KubeObject = { apiVersion: this.apiVersion, kind: this.info.kind, ...rest };
    obj.metadata ??= {};
    if (this.info.namespaced) obj.metadata.namespace = namespace;
    else delete obj.metadata.namespace;
    if (obj.metadata.resourceVersion) {
      throw this.invalid(obj, [
        { type: "FieldValueInvalid", field: "metadata.resourceVersion", badValue: obj.metadata.resourceVersion, detail: "resourceVersion should not be set on objects to be created" },
      ]);
    }
    const generated = !obj.metadata.name && !!obj.metadata.generateName;
    if (generated) obj.metadata.name = generateName(obj.metadata.generateName!);
    delete obj.metadata.uid;
    delete obj.metadata.deletionTimestamp;
    delete obj.metadata.deletionGracePeriodSeconds;
    delete obj.metadata.generation;
    obj.metadata.uid = randomUUID();
    obj.metadata.creationTimestamp = rfc3339(this.ctx.now());
    this.strategy.defaults(obj);
    const attrs = { operation: "CREATE" as const, info: this.info, namespace, name: obj.metadata.name ?? "", object: obj, dryRun: !!opts.dryRun, userInfo: opts.user };
    // Mutating admission (LimitRanger defaults) runs before the strategy derives anything from the
    // spec (a pod's QoS class); validating admission (LimitRanger, ResourceQuota) right before the write.
    await this.ctx.registry.admission.admit(attrs);
    await this.strategy.prepareForCreate(obj, this.ctx);
    const errs = this.strategy.validate(obj);
    if (errs.length) throw this.invalid(obj, errs);
    if (this.info.namespaced) await this.ctx.registry.checkNamespaceAcceptsCreate(namespace, this.gr, obj.metadata.name ?? "");
    await this.ctx.registry.admission.validate(attrs);
    if (opts.dryRun) return obj;

    for (let attempt = 0; ; attempt++) {
      const res = await this.timed("create", () => this.backend.create(this.key(namespace, obj.metadata.name!), this.encode(obj)));
      if (res.succeeded) {
        obj.metadata.resourceVersion = String(res.revision);
        return obj;
      }
      // A generated name that collided: try another, as the apiserver does a few times.
      if (generated && attempt < 3) {
        obj.metadata.name = generateName(obj.metadata.generateName!);
        continue;
      }
      await this.ctx.registry.admission.release(attrs);
      throw errors.alreadyExists(this.gr, obj.metadata.name!);
    }
  }

  /**
   * The optimistic-concurrency loop (guaranteedUpdate): read, let `tryUpdate` produce the desired
   * object, apply the strategy, compare-and-swap; retry on a lost race unless the caller pinned a
   * resourceVersion. `subresource` "status" applies the status strategy.
   */
  async update(
    namespace: string,
    name: string,
    tryUpdate: TryUpdate,
    opts: WriteOptions & { subresource?: string; forceAllowCreate?: boolean } = {},
  ): Promise<{ obj: KubeObject; created: boolean }> {
    const key = this.key(namespace, name);
    for (let attempt = 0; attempt < MAX_UPDATE_RETRIES; attempt++) {
      const { kv } = await this.timed("get", () => this.backend.get(key));
      const current = kv ? this.decode(kv) : undefined;
      const next = await tryUpdate(current ? structuredClone(current) : undefined);
      if (!current) {
        if (!(this.strategy.allowCreateOnUpdate || opts.forceAllowCreate) || opts.subresource) throw errors.notFound(this.gr, name);
        delete next.metadata.resourceVersion;
        next.metadata.name = name;
        return { obj: await this.create(namespace, next, opts), created: true };
      }
      if (next.metadata === undefined || typeof next.metadata !== "object") throw errors.badRequest("metadata must be an object");
      const pinned = next.metadata.resourceVersion;
      if (pinned && pinned !== current.metadata.resourceVersion) throw errors.conflict(this.gr, name);
      if (next.metadata.name !== undefined && next.metadata.name !== name) {
        throw errors.badRequest(`the name of the object (${next.metadata.name}) does not match the name on the URL (${name})`);
      }
      next.apiVersion = this.apiVersion;
      next.kind = this.info.kind;
      next.metadata.name = name;
      if (this.info.namespaced) {
        if (next.metadata.namespace && next.metadata.namespace !== namespace) {
          throw errors.badRequest("the namespace of the provided object does not match the namespace sent on the request");
        }
        next.metadata.namespace = namespace;
      }
      if (next.metadata.uid && next.metadata.uid !== current.metadata.uid) {
        throw errors.conflict(this.gr, name, `Precondition failed: UID in precondition: ${next.metadata.uid}, UID in object meta: ${current.metadata.uid}`);
      }
      // Fields only the server sets.
      next.metadata.uid = current.metadata.uid;
      next.metadata.creationTimestamp = current.metadata.creationTimestamp;
      next.metadata.deletionTimestamp = current.metadata.deletionTimestamp;
      next.metadata.deletionGracePeriodSeconds = current.metadata.deletionGracePeriodSeconds;
      if (current.metadata.deletionTimestamp === undefined) delete next.metadata.deletionTimestamp;
      if (current.metadata.deletionGracePeriodSeconds === undefined) delete next.metadata.deletionGracePeriodSeconds;
      next.metadata.generation = current.metadata.generation;
      if (next.metadata.generation === undefined) delete next.metadata.generation;
      if (current.metadata.deletionTimestamp && (next.metadata.finalizers?.length ?? 0) > (current.metadata.finalizers?.length ?? 0)) {
        const added = (next.metadata.finalizers ?? []).filter((f) => !(current.metadata.finalizers ?? []).includes(f));
        if (added.length) {
          throw this.invalid(next, [
            { type: "FieldValueForbidden", field: "metadata.finalizers", detail: `no new finalizers can be added if the object is being deleted, found new finalizers []string{"${added.join('", "')}"}` },
          ]);
        }
      }

      this.strategy.defaults(next);
      // binding and finalize handlers change only the fields their subresource owns.
      const owned = opts.subresource === "binding" || opts.subresource === "finalize";
      if (opts.subresource === "status") this.strategy.prepareForStatusUpdate(next, current);
      else if (!owned) this.strategy.prepareForUpdate(next, current, this.ctx);
      next.metadata.resourceVersion = current.metadata.resourceVersion;
      const errs = owned ? this.strategy.validate(next) : this.strategy.validateUpdate(next, current);
      if (errs.length) throw this.invalid(next, errs);
      const admitted = !deepEqual(next, current) ? { operation: "UPDATE" as const, info: this.info, namespace, name, object: next, oldObject: current, subresource: opts.subresource, dryRun: !!opts.dryRun, userInfo: opts.user } : undefined;
      if (admitted) await this.ctx.registry.admission.validate(admitted);

      // No-op writes are skipped, unless encryption at rest read it with an old key (a rewrite rotates it).
      if (deepEqual(next, current) && !kv?.stale) return { obj: current, created: false };
      if (this.strategy.shouldDeleteDuringUpdate(next, current)) {
        if (opts.dryRun) return { obj: next, created: false };
        const del = await this.timed("delete", () => this.backend.delete(key, kv!.modRevision));
        if (del.succeeded) {
          next.metadata.resourceVersion = String(del.revision);
          return { obj: next, created: false };
        }
        continue; // a pinned resourceVersion is checked against the new current at the top of the loop
      }
      if (opts.dryRun) return { obj: next, created: false };
      const res = await this.timed("update", () => this.backend.update(key, this.encode(next), kv!.modRevision));
      if (res.succeeded) {
        next.metadata.resourceVersion = String(res.revision);
        return { obj: next, created: false };
      }
      // The object moved under us: what admission charged for this attempt is given back before the retry.
      if (admitted) await this.ctx.registry.admission.release(admitted);
      // No conflict yet: a patch (or a tryUpdate) carries the resourceVersion it was applied to, which
      // is not a precondition. The retry re-applies it to the new current; a resourceVersion the
      // caller really pinned no longer matches there and is a 409 at the top of the loop.
    }
    throw errors.conflict(this.gr, name, "too many concurrent updates; please try again");
  }

  /**
   * DELETE: checks preconditions, then either marks the object (finalizers, graceful pod deletion)
   * or removes it. `deleted` is false when the object still exists with a deletionTimestamp.
   */
  async delete(namespace: string, name: string, options: DeleteOptions, opts: WriteOptions = {}): Promise<{ obj: KubeObject; deleted: boolean }> {
    const key = this.key(namespace, name);
    for (let attempt = 0; attempt < MAX_UPDATE_RETRIES; attempt++) {
      const { kv } = await this.timed("get", () => this.backend.get(key));
      if (!kv) throw errors.notFound(this.gr, name);
      const current = this.decode(kv);
      const pre = options.preconditions;
      if (pre?.uid && pre.uid !== current.metadata.uid) {
        throw errors.conflict(this.gr, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${current.metadata.uid}`);
      }
      if (pre?.resourceVersion && pre.resourceVersion !== current.metadata.resourceVersion) {
        throw errors.conflict(
          this.gr,
          name,
          `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${current.metadata.resourceVersion}`,
        );
      }
      await this.ctx.registry.admission.validate({ operation: "DELETE", info: this.info, namespace, name, object: current, oldObject: current, dryRun: !!opts.dryRun, userInfo: opts.user });
      const next = structuredClone(current);
      const finalizers = withPropagationFinalizers(next.metadata.finalizers ?? [], propagationPolicy(options, this.strategy));
      const grace = this.strategy.gracefulDeletion(current, options);
      const now = this.ctx.now();

      let mark = false;
      if (this.strategy.markForDeletion?.(next, now)) {
        if (finalizers.length > 0) next.metadata.finalizers = finalizers;
        if (!next.metadata.deletionTimestamp) {
          next.metadata.deletionTimestamp = rfc3339(now);
          next.metadata.deletionGracePeriodSeconds = 0;
        }
        mark = true;
      } else if (finalizers.length > 0) {
        next.metadata.finalizers = finalizers;
        if (!next.metadata.deletionTimestamp) {
          next.metadata.deletionTimestamp = rfc3339(now);
          next.metadata.deletionGracePeriodSeconds = grace.graceful ? grace.gracePeriodSeconds : 0;
        }
        mark = true;
      } else if (grace.graceful) {
        // Graceful deletion: the owner of the object (the kubelet) removes it when done. A shorter
        // grace period may replace a longer one, never the reverse.
        const prev = current.metadata.deletionGracePeriodSeconds;
        if (prev !== undefined && prev <= grace.gracePeriodSeconds && current.metadata.deletionTimestamp) {
          return { obj: current, deleted: false };
        }
        next.metadata.deletionTimestamp = rfc3339(new Date(now.getTime() + grace.gracePeriodSeconds * 1000));
        next.metadata.deletionGracePeriodSeconds = grace.gracePeriodSeconds;
        mark = true;
      }
      if (mark) {
        if (next.metadata.finalizers && next.metadata.finalizers.length === 0) delete next.metadata.finalizers;
        if (deepEqual(next, current)) return { obj: current, deleted: false };
        if (opts.dryRun) return { obj: next, deleted: false };
        const res = await this.timed("update", () => this.backend.update(key, this.encode(next), kv.modRevision));
        if (res.succeeded) {
          next.metadata.resourceVersion = String(res.revision);
          return { obj: next, deleted: false };
        }
        continue;
      }
      if (opts.dryRun) return { obj: current, deleted: true };
      const res = await this.timed("delete", () => this.backend.delete(key, kv.modRevision));
      if (res.succeeded) {
        current.metadata.resourceVersion = String(res.revision);
        return { obj: current, deleted: true };
      }
      if (!res.kv) throw errors.notFound(this.gr, name);
    }
    throw errors.conflict(this.gr, name, "too many concurrent updates; please try again");
  }

  /** DELETE on a collection: every object matching the selectors, one at a time. */
  async deleteCollection(namespace: string, listOpts: ListOptions, options: DeleteOptions, opts: WriteOptions = {}): Promise<KubeList> {
    const list = await this.list(namespace, { ...listOpts, limit: undefined, continue: undefined });
    const out: KubeObject[] = [];
    for (const item of list.items) {
      try {
        const r = await this.delete(item.metadata.namespace ?? "", item.metadata.name!, options, opts);
        out.push(r.obj);
      } catch (e) {
        if (!(e instanceof ApiError && e.code === 404)) throw e;
      }
    }
    return this.makeList(out, list.metadata.resourceVersion);
  }
}

// ---- helpers ----------------------------------------------------------------------------------

function propagationPolicy(options: DeleteOptions, strategy: Strategy): "Background" | "Orphan" | "Foreground" {
  if (options.propagationPolicy === "Orphan" || options.propagationPolicy === "Foreground" || options.propagationPolicy === "Background") {
    return options.propagationPolicy;
  }
  if (options.orphanDependents === true) return "Orphan";
  if (options.orphanDependents === false) return "Background";
  return strategy.defaultPropagationPolicy;
}

/** The garbage collector's finalizers for a propagation policy, as the apiserver sets them on delete. */
function withPropagationFinalizers(finalizers: string[], policy: "Background" | "Orphan" | "Foreground"): string[] {
  const rest = finalizers.filter((f) => f !== "orphan" && f !== "foregroundDeletion");
  if (policy === "Orphan") return [...rest, "orphan"];
  if (policy === "Foreground") return [...rest, "foregroundDeletion"];
  return rest;
}

function generateName(base: string): string {
  const b = base.length > 58 ? base.slice(0, 58) : base;
  let s = "";
  for (let i = 0; i < 5; i++) s += GENERATE_NAME_CHARS[Math.floor(Math.random() * GENERATE_NAME_CHARS.length)];
  return b + s;
}

/** RFC 3339 with second precision, as metav1.Time serializes. */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** undefined for "", 0 for "0", else the number; a malformed value is a 400. */
export function parseResourceVersion(rv: string | undefined): number | undefined {
  if (rv === undefined || rv === "") return undefined;
  if (!/^\d+$/.test(rv)) throw errors.badRequest(`Invalid value: "${rv}": resourceVersion: must be a non-negative integer`);
  const n = Number(rv);
  if (!Number.isSafeInteger(n)) throw errors.badRequest(`Invalid value: "${rv}": resourceVersion: out of range`);
  return n;
}

interface ContinueToken {
  v: string;
  rv: number;
  start: string;
}

function encodeContinue(rv: number, startKey: string, prefix: string): string {
  const token: ContinueToken = { v: "meta.k8s.io/v1", rv, start: startKey.slice(prefix.length) };
  return Buffer.from(JSON.stringify(token)).toString("base64url");
}

function decodeContinue(token: string, prefix: string): { rv: number; start: string } {
  try {
    const t = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as Partial<ContinueToken>;
    if (t.v !== "meta.k8s.io/v1" || typeof t.rv !== "number" || typeof t.start !== "string" || t.start.includes("..")) throw new Error("bad");
    return { rv: t.rv, start: prefix + t.start };
  } catch {
    throw errors.badRequest("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)");
  }
}

function isApiError410(e: unknown): boolean {
  return e instanceof ApiError && e.code === 410;
}

/** Maps a StorageError to the Status the client sees. */
export function storageToApiError(e: unknown, gr: { group: string; resource: string }): unknown {
  if (!isStorageError(e)) return e;
  switch (e.code) {
    case "NotFound":
      return errors.notFound(gr, keyName(e.key));
    case "Exists":
      return errors.alreadyExists(gr, keyName(e.key));
    case "Conflict":
      return errors.conflict(gr, keyName(e.key));
    case "ResourceExpired":
      return errors.gone(e.message.startsWith("too old resource version") ? e.message : `too old resource version: ${e.message}`);
    case "Unreachable":
    case "Timeout":
      return errors.timeout(`storage unavailable: ${e.message}`);
    case "Invalid":
      return errors.badRequest(e.message);
    default:
      return errors.internal(e.message);
  }
}

function keyName(key: string | undefined): string {
  if (!key) return "";
  const i = key.lastIndexOf("/");
  return i >= 0 ? key.slice(i + 1) : key;
}
