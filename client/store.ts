// The indexed object cache behind informers and listers (client-go's cache.Indexer / threadSafeMap).

import type { KubeObject, Selector } from "../api/index.ts";
import {
  INDEX_NAMESPACE,
  INDEX_NODE_NAME,
  INDEX_OWNER_UID,
  type IndexFunc,
  type Lister,
  type ObjectKey,
} from "./types.ts";

/** client-go's MetaNamespaceKeyFunc: "namespace/name", or "name" for cluster-scoped objects. */
export function objectKey(obj: Readonly<KubeObject>): ObjectKey {
  const ns = obj.metadata.namespace;
  return ns ? `${ns}/${obj.metadata.name ?? ""}` : (obj.metadata.name ?? "");
}

/** client-go's SplitMetaNamespaceKey: the inverse of objectKey ("" namespace for cluster-scoped). */
export function splitKey(key: ObjectKey): { namespace: string; name: string } {
  const i = key.indexOf("/");
  return i < 0 ? { namespace: "", name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

export const indexByNamespace: IndexFunc = (obj) => (obj.metadata.namespace ? [obj.metadata.namespace] : []);
export const indexByOwnerUid: IndexFunc = (obj) => (obj.metadata.ownerReferences ?? []).map((r) => r.uid);
export const indexByNodeName: IndexFunc = (obj) => {
  const spec = obj.spec as { nodeName?: unknown } | undefined;
  return spec && typeof spec.nodeName === "string" && spec.nodeName ? [spec.nodeName] : [];
};

/** The indexers every cache has: namespace, owner uid and (harmless on kinds without it) spec.nodeName. */
export function defaultIndexers<T extends KubeObject>(): Record<string, IndexFunc<T>> {
  return { [INDEX_NAMESPACE]: indexByNamespace, [INDEX_OWNER_UID]: indexByOwnerUid, [INDEX_NODE_NAME]: indexByNodeName };
}

/**
 * A keyed, indexed cache. JavaScript runs one callback at a time, so "thread-safe" reduces to: every
 * mutation updates the items and every index together, synchronously. Objects are frozen on the way
 * in so a reader that tries to modify a cached object fails loudly instead of corrupting the cache.
 */
export class Store<T extends KubeObject = KubeObject> implements Lister<T> {
  private readonly items = new Map<ObjectKey, Readonly<T>>();
  private readonly indexers = new Map<string, IndexFunc<T>>();
  /** index name → value → keys */
  private readonly indices = new Map<string, Map<string, Set<ObjectKey>>>();

  constructor(indexers: Record<string, IndexFunc<T>> = defaultIndexers<T>()) {
    for (const [name, fn] of Object.entries(indexers)) this.addIndexer(name, fn);
  }

  addIndexer(name: string, fn: IndexFunc<T>): void {
    this.indexers.set(name, fn);
    const index = new Map<string, Set<ObjectKey>>();
    this.indices.set(name, index);
    for (const [key, obj] of this.items) for (const v of fn(obj)) addTo(index, v, key);
  }

  /** Adds or replaces; returns the previous object, if any. */
  upsert(obj: T): Readonly<T> | undefined {
    const key = objectKey(obj);
    const old = this.items.get(key);
    if (old) this.unindex(key, old);
    const frozen = deepFreeze(obj);
    this.items.set(key, frozen);
    for (const [name, fn] of this.indexers) for (const v of fn(frozen)) addTo(this.indices.get(name)!, v, key);
    return old;
  }

  /** Removes by key; returns the removed object, if any. */
  remove(key: ObjectKey): Readonly<T> | undefined {
    const old = this.items.get(key);
    if (!old) return undefined;
    this.unindex(key, old);
    this.items.delete(key);
    return old;
  }

  keys(): ObjectKey[] {
    return [...this.items.keys()];
  }

  get(key: ObjectKey): Readonly<T> | undefined {
    return this.items.get(key);
  }

  list(selector?: Selector): readonly Readonly<T>[] {
    const out: Readonly<T>[] = [];
    for (const obj of this.items.values()) if (!selector || selector.matches(obj.metadata.labels)) out.push(obj);
    return out;
  }

  listNamespace(namespace: string, selector?: Selector): readonly Readonly<T>[] {
    return this.byIndex(INDEX_NAMESPACE, namespace).filter((o) => !selector || selector.matches(o.metadata.labels));
  }

  byIndex(index: string, value: string): readonly Readonly<T>[] {
    const idx = this.indices.get(index);
    if (!idx) throw new Error(`index ${JSON.stringify(index)} does not exist`);
    const keys = idx.get(value);
    if (!keys) return [];
    const out: Readonly<T>[] = [];
    for (const k of keys) {
      const o = this.items.get(k);
      if (o) out.push(o);
    }
    return out;
  }

  private unindex(key: ObjectKey, obj: Readonly<T>): void {
    for (const [name, fn] of this.indexers) {
      const idx = this.indices.get(name)!;
      for (const v of fn(obj)) {
        const set = idx.get(v);
        if (!set) continue;
        set.delete(key);
        if (set.size === 0) idx.delete(v);
      }
    }
  }
}

function addTo(index: Map<string, Set<ObjectKey>>, value: string, key: ObjectKey): void {
  let set = index.get(value);
  if (!set) index.set(value, (set = new Set()));
  set.add(key);
}

export function deepFreeze<T>(v: T): Readonly<T> {
  if (v !== null && typeof v === "object" && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v as object)) deepFreeze(child);
  }
  return v;
}
