// The garbage collector: deletes dependents whose owners are all gone (Background propagation),
// strips ownerReferences from the dependents of an owner deleted with Orphan, and deletes the
// dependents of an owner deleted with Foreground before letting the owner go
// (pkg/controller/garbagecollector's attemptToDeleteItem, orphanDependents and
// processDeletingDependentsItem, folded into one reconciler).

import { findKind, type KubeObject, type OwnerReference, type ResourceInfo } from "../../api/index.ts";
import { isConflict, isNotFound } from "../../client/errors.ts";
import { INDEX_OWNER_UID, type Client, type Lister, type ObjectKey, type ReconcileContext, type Reconciler, type Result } from "../../client/types.ts";
import { errorMessage } from "../podcontrol.ts";

export const FinalizerOrphan = "orphan";
export const FinalizerDeleteDependents = "foregroundDeletion";

/** The resources the garbage collector watches, as (group, resource) of the shared informers. */
export const GCResources: readonly { group: string; resource: string }[] = [
  { group: "", resource: "pods" },
  { group: "apps", resource: "replicasets" },
  { group: "apps", resource: "deployments" },
  { group: "apps", resource: "daemonsets" },
  { group: "apps", resource: "controllerrevisions" },
  { group: "apps", resource: "statefulsets" },
  { group: "", resource: "persistentvolumeclaims" },
  { group: "batch", resource: "jobs" },
  { group: "", resource: "services" },
  { group: "", resource: "configmaps" },
  { group: "", resource: "secrets" },
  { group: "", resource: "endpoints" },
  { group: "discovery.k8s.io", resource: "endpointslices" },
];

/** One watched resource: what it is and its informer's cache. */
export interface GCResource {
  info: ResourceInfo;
  lister: Lister<KubeObject>;
}

/** Who an object is: its resource, place and uid (the graph's node identity, upstream's objectReference). */
export interface Identity {
  info: ResourceInfo;
  namespace: string;
  name: string;
  uid: string;
}

/**
 * A queue key naming one object by resource, namespace, name and uid:
 * "replicasets.apps|default|web-5d4f|<uid>". The uid is part of the key so a recreated object of the
 * same name is a different node, as in upstream's graph.
 */
export function gcKey(id: Identity): ObjectKey {
  const gr = id.info.group ? `${id.info.resource}.${id.info.group}` : id.info.resource;
  return `${gr}|${id.namespace}|${id.name}|${id.uid}`;
}

function parseKey(key: ObjectKey, resources: ReadonlyMap<string, GCResource>): Identity | undefined {
  const [gr, namespace, name, uid] = key.split("|");
  const r = resources.get(gr ?? "");
  if (!r || name === undefined || uid === undefined) return undefined;
  return { info: r.info, namespace: namespace ?? "", name, uid };
}

function groupResource(info: Pick<ResourceInfo, "group" | "resource">): string {
  return info.group ? `${info.resource}.${info.group}` : info.resource;
}

function cacheKey(namespace: string, name: string): ObjectKey {
  return namespace ? `${namespace}/${name}` : name;
}

export function hasFinalizer(obj: Readonly<KubeObject>, f: string): boolean {
  return (obj.metadata.finalizers ?? []).includes(f);
}

/** Being deleted with Foreground propagation: waiting for its blocking dependents to go. */
function isDeletingDependents(obj: Readonly<KubeObject>): boolean {
  return !!obj.metadata.deletionTimestamp && hasFinalizer(obj, FinalizerDeleteDependents);
}

/** How an owner reference stands: the owner exists, is gone, or exists and waits for its dependents. */
type OwnerState = "solid" | "dangling" | "waiting" | "unknown";

export interface GarbageCollectorDeps {
  client: Client;
  /** The watched resources; together their ownerUid indexes are the owner → dependents graph. */
  resources: readonly GCResource[];
}

/**
 * Reconciles one object (key from gcKey). For an object being deleted with the `orphan` finalizer,
 * releases its dependents and removes the finalizer; with `foregroundDeletion`, deletes its
 * dependents and removes the finalizer once no blocking dependent remains; otherwise, deletes it
 * when every owner is gone. An owner missing from the cache is confirmed by a live GET before
 * anything is deleted: a stale cache must never delete.
 */
export class GarbageCollector implements Reconciler {
  private readonly byGR = new Map<string, GCResource>();

  constructor(private readonly deps: GarbageCollectorDeps) {
    for (const r of deps.resources) this.byGR.set(groupResource(r.info), r);
  }

  async reconcile(ctx: ReconcileContext, key: ObjectKey): Promise<Result> {
    const id = parseKey(key, this.byGR);
    if (!id) return {};
    const obj = this.cached(id);
    // Gone (or replaced by a namesake): its dependents were enqueued by the delete event.
    if (!obj) return {};
    if (obj.metadata.deletionTimestamp) {
      if (hasFinalizer(obj, FinalizerOrphan)) await this.orphanDependents(ctx, id, obj);
      else if (hasFinalizer(obj, FinalizerDeleteDependents)) await this.processDeletingDependents(ctx, id, obj);
      return {};
    }
    await this.attemptToDeleteItem(ctx, id, obj);
    return {};
  }

  // ---- the graph -------------------------------------------------------------------------------

  /** The object named by `id` in the cache, if it is the same object (uid). */
  private cached(id: Identity): Readonly<KubeObject> | undefined {
    const o = this.byGR.get(groupResource(id.info))?.lister.get(cacheKey(id.namespace, id.name));
    return o && o.metadata.uid === id.uid ? o : undefined;
  }

  /** Every cached object with an ownerReference to `uid`. */
  dependents(uid: string): { id: Identity; obj: Readonly<KubeObject> }[] {
    const out: { id: Identity; obj: Readonly<KubeObject> }[] = [];
    for (const r of this.deps.resources) {
      for (const obj of r.lister.byIndex(INDEX_OWNER_UID, uid)) out.push({ id: identityOf(r.info, obj), obj });
    }
    return out;
  }

  /** The identity an owner reference of a dependent in `namespace` points to; undefined when its kind is unknown or misplaced. */
  ownerIdentity(ref: Readonly<OwnerReference>, namespace: string): Identity | undefined {
    const info = findKind(ref.apiVersion, ref.kind);
    if (!info) return undefined;
    // A cluster-scoped dependent cannot have a namespaced owner (upstream reports OwnerRefInvalidNamespace).
    if (info.namespaced && !namespace) return undefined;
    return { info, namespace: info.namespaced ? namespace : "", name: ref.name, uid: ref.uid };
  }

  // ---- (a) dependents whose owners are gone ---------------------------------------------------

  private async attemptToDeleteItem(ctx: ReconcileContext, id: Identity, obj: Readonly<KubeObject>): Promise<void> {
    const refs = obj.metadata.ownerReferences ?? [];
    if (refs.length === 0) return;
    // Cheap first pass from the cache: most objects have a live owner right there.
    if (refs.every((r) => this.cachedOwnerState(r, id.namespace) === "solid")) return;

    // Act only on the object as it is now, never on the cached copy.
    const latest = await this.getLive(id);
    if (!latest) return;
    const states = new Map<string, OwnerState>();
    for (const ref of latest.metadata.ownerReferences ?? []) states.set(ref.uid, await this.ownerState(ctx, ref, id.namespace));
    const uids = (s: OwnerState) => [...states].filter(([, v]) => v === s).map(([k]) => k);
    const solid = uids("solid").length + uids("unknown").length;
    const dangling = uids("dangling");
    const waiting = uids("waiting");
    if (dangling.length === 0 && waiting.length === 0) return;

    const client = this.deps.client.resource(id.info.group, id.info.resource);
    if (solid > 0) {
      // Another owner still wants it: drop only the references to owners that are gone or going.
      ctx.log.info({ object: gcKey(id), owners: [...dangling, ...waiting] }, "removing references to deleted owners");
      await client.patch(id.namespace, id.name, "strategic", deleteOwnerRefsPatch(id.uid, [...dangling, ...waiting]));
      return;
    }
    let policy: "Background" | "Foreground" | "Orphan";
    if (waiting.length > 0 && this.dependents(id.uid).length > 0) {
      // An owner is waiting for this one, and this one has dependents of its own: cascade in the foreground.
      policy = "Foreground";
    } else if (hasFinalizer(latest, FinalizerOrphan)) {
      policy = "Orphan";
    } else if (hasFinalizer(latest, FinalizerDeleteDependents)) {
      policy = "Foreground";
    } else {
      policy = "Background";
    }
    ctx.log.info({ object: gcKey(id), policy }, "deleting object whose owners are gone");
    try {
      await client.delete(id.namespace, id.name, { propagationPolicy: policy, preconditions: { uid: id.uid } });
    } catch (e) {
      // Gone already, or replaced by a namesake (uid precondition): nothing of ours left to delete.
      if (isNotFound(e) || isConflict(e)) return;
      throw e;
    }
  }

  /** The owner's state from the cache alone; "dangling" here only means "not in the cache". */
  private cachedOwnerState(ref: Readonly<OwnerReference>, namespace: string): OwnerState {
    const oid = this.ownerIdentity(ref, namespace);
    if (!oid) return "unknown";
    const r = this.byGR.get(groupResource(oid.info));
    const owner = r?.lister.get(cacheKey(oid.namespace, oid.name));
    if (!owner || owner.metadata.uid !== ref.uid) return "dangling";
    return isDeletingDependents(owner) ? "waiting" : "solid";
  }

  /**
   * The owner's state, confirmed with a live GET when the cache does not have it (isDangling). An
   * owner of unknown kind is "unknown" and keeps its dependents, as the safe choice.
   */
  private async ownerState(ctx: ReconcileContext, ref: Readonly<OwnerReference>, namespace: string): Promise<OwnerState> {
    const cachedState = this.cachedOwnerState(ref, namespace);
    if (cachedState !== "dangling") {
      if (cachedState === "unknown") ctx.log.warn({ owner: ref }, "owner reference of unknown kind or scope; keeping the dependent");
      return cachedState;
    }
    const oid = this.ownerIdentity(ref, namespace)!;
    try {
      const live = await this.deps.client.resource(oid.info.group, oid.info.resource).get(oid.namespace, oid.name);
      // A namesake with another uid is not our owner: ours is gone.
      if (live.metadata.uid !== ref.uid) return "dangling";
      return isDeletingDependents(live) ? "waiting" : "solid";
    } catch (e) {
      if (isNotFound(e)) return "dangling";
      throw e;
    }
  }

  private async getLive(id: Identity): Promise<KubeObject | undefined> {
    try {
      const o = await this.deps.client.resource(id.info.group, id.info.resource).get(id.namespace, id.name);
      return o.metadata.uid === id.uid ? o : undefined;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  // ---- (b) Orphan ---------------------------------------------------------------------------

  private async orphanDependents(ctx: ReconcileContext, id: Identity, owner: Readonly<KubeObject>): Promise<void> {
    const errors: unknown[] = [];
    await Promise.all(
      this.dependents(id.uid).map(async (d) => {
        try {
          await this.deps.client.resource(d.id.info.group, d.id.info.resource).patch(d.id.namespace, d.id.name, "strategic", deleteOwnerRefsPatch(d.id.uid, [id.uid]));
        } catch (e) {
          // Gone, or recreated under the same name (uid precondition): nothing to release.
          if (!isNotFound(e) && !isConflict(e)) errors.push(e);
        }
      }),
    );
    if (errors.length > 0) throw new Error(`orphaning dependents of ${gcKey(id)}: ${errors.map(errorMessage).join("; ")}`, { cause: errors[0] });
    ctx.log.info({ object: gcKey(id) }, "dependents orphaned; removing the orphan finalizer");
    await this.removeFinalizer(id, owner, FinalizerOrphan);
  }

  // ---- (c) Foreground -----------------------------------------------------------------------

  private async processDeletingDependents(ctx: ReconcileContext, id: Identity, owner: Readonly<KubeObject>): Promise<void> {
    const dependents = this.dependents(id.uid);
    const blocking = dependents.filter((d) => d.obj.metadata.ownerReferences?.some((r) => r.uid === id.uid && r.blockOwnerDeletion === true));
    if (blocking.length === 0) {
      ctx.log.info({ object: gcKey(id) }, "no blocking dependents left; removing the foregroundDeletion finalizer");
      await this.removeFinalizer(id, owner, FinalizerDeleteDependents);
      return;
    }
    // Upstream's graph builder queues every dependent of an owner entering foreground deletion; we
    // process them here. Their deletions enqueue this owner again (see GarbageCollectorHandlers).
    const results = await Promise.allSettled(
      dependents.filter((d) => !d.obj.metadata.deletionTimestamp).map((d) => this.attemptToDeleteItem(ctx, d.id, d.obj)),
    );
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
  }

  /** Removes one finalizer, the resourceVersion guarding against a concurrent change (re-read once on conflict). */
  private async removeFinalizer(id: Identity, cached: Readonly<KubeObject>, finalizer: string): Promise<void> {
    const client = this.deps.client.resource(id.info.group, id.info.resource);
    let obj: Readonly<KubeObject> | undefined = cached;
    for (let attempt = 0; ; attempt++) {
      if (!obj || obj.metadata.uid !== id.uid || !hasFinalizer(obj, finalizer)) return;
      const rest = (obj.metadata.finalizers ?? []).filter((f) => f !== finalizer);
      const patch = { metadata: { finalizers: rest.length > 0 ? rest : null, resourceVersion: obj.metadata.resourceVersion } };
      try {
        await client.patch(id.namespace, id.name, "merge", patch);
        return;
      } catch (e) {
        if (isNotFound(e)) return;
        if (attempt >= 1 || !isConflict(e)) throw e;
        obj = await this.getLive(id);
      }
    }
  }
}

/** The strategic merge patch removing the references to `ownerUIDs`, failing if the dependent was recreated (its uid). */
export function deleteOwnerRefsPatch(dependentUID: string, ownerUIDs: readonly string[]): unknown {
  return { metadata: { ownerReferences: ownerUIDs.map((uid) => ({ $patch: "delete", uid })), uid: dependentUID } };
}

export function identityOf(info: ResourceInfo, obj: Readonly<KubeObject>): Identity {
  return { info, namespace: obj.metadata.namespace ?? "", name: obj.metadata.name ?? "", uid: obj.metadata.uid ?? "" };
}

// ---------------------------------------------------------------------------------------------
// Event handlers: what to enqueue when the graph changes (upstream's GraphBuilder.processGraphChanges).

function ownersChanged(a: Readonly<KubeObject>, b: Readonly<KubeObject>): boolean {
  return JSON.stringify(a.metadata.ownerReferences ?? []) !== JSON.stringify(b.metadata.ownerReferences ?? []);
}

function deletionChanged(a: Readonly<KubeObject>, b: Readonly<KubeObject>): boolean {
  return a.metadata.deletionTimestamp !== b.metadata.deletionTimestamp || JSON.stringify(a.metadata.finalizers ?? []) !== JSON.stringify(b.metadata.finalizers ?? []);
}

/** Maps informer events of the watched resources to GC keys. */
export class GarbageCollectorHandlers {
  constructor(private readonly gc: GarbageCollector) {}

  /** A new object: check its owners (it may have been created pointing at an owner already gone). */
  onAdd(info: ResourceInfo, obj: Readonly<KubeObject>): ObjectKey[] {
    return [gcKey(identityOf(info, obj))];
  }

  /**
   * Owner references or deletion state changed: the object itself, and every owner it pointed to
   * (a foreground owner may have been waiting on it).
   */
  onUpdate(info: ResourceInfo, oldObj: Readonly<KubeObject>, cur: Readonly<KubeObject>): ObjectKey[] {
    if (oldObj.metadata.resourceVersion === cur.metadata.resourceVersion) return [];
    if (!ownersChanged(oldObj, cur) && !deletionChanged(oldObj, cur)) return [];
    const keys = new Set<ObjectKey>([gcKey(identityOf(info, cur))]);
    for (const k of this.ownerKeys(oldObj)) keys.add(k);
    for (const k of this.ownerKeys(cur)) keys.add(k);
    return [...keys];
  }

  /** Gone: its dependents may now be orphans, and its owners may have been waiting for it. */
  onDelete(_info: ResourceInfo, obj: Readonly<KubeObject>): ObjectKey[] {
    const keys = new Set<ObjectKey>();
    for (const d of this.gc.dependents(obj.metadata.uid ?? "")) keys.add(gcKey(d.id));
    for (const k of this.ownerKeys(obj)) keys.add(k);
    return [...keys];
  }

  private ownerKeys(obj: Readonly<KubeObject>): ObjectKey[] {
    const out: ObjectKey[] = [];
    for (const ref of obj.metadata.ownerReferences ?? []) {
      const oid = this.gc.ownerIdentity(ref, obj.metadata.namespace ?? "");
      if (oid) out.push(gcKey(oid));
    }
    return out;
  }
}
