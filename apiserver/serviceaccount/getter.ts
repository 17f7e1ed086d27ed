// The objects tokens refer to, read inside the apiserver: the watch cache first, the store when the
// cache has not seen the object (upstream's getter from listers with a live fallback).

import type { KubeObject, Pod, Secret, ServiceAccount } from "../../api/index.ts";
import type { Registry } from "../registry/registry.ts";
import type { ServiceAccountTokenGetter } from "./claims.ts";

/**
 * A getter over the registry. The cache can lag a write by a moment (a token requested for a pod
 * created an instant ago), so a miss is asked of the store before it counts as "not found".
 */
export function registryTokenGetter(registry: Registry): ServiceAccountTokenGetter {
  const get = async <T extends KubeObject>(resource: string, namespace: string, name: string): Promise<T | undefined> => {
    const store = registry.store("", resource);
    const cached = store.cache.get(store.key(namespace, name));
    if (cached) return cached.obj as T;
    try {
      return (await store.get(namespace, name)) as T;
    } catch (e) {
      if ((e as { code?: number }).code === 404) return undefined;
      throw e;
    }
  };
  return {
    getServiceAccount: (ns, name) => get<ServiceAccount>("serviceaccounts", ns, name),
    getPod: (ns, name) => get<Pod>("pods", ns, name),
    getSecret: (ns, name) => get<Secret>("secrets", ns, name),
    getNode: (name) => get<KubeObject>("nodes", "", name),
  };
}
