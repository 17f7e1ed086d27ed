// Wires the garbage collector to the shared informers of every resource it watches: each informer's
// events become GC keys, and the informers' ownerUid indexes together form the dependency graph.

import { findResource, type KubeObject } from "../../api/index.ts";
import { newRateLimitingQueue, runController, type Informer, type ObjectKey } from "../../client/index.ts";
import type { ControllerSetup } from "../env.ts";
import { GarbageCollector, GarbageCollectorHandlers, GCResources, type GCResource } from "./index.ts";

export const setupGarbageCollector: ControllerSetup = (env) => {
  const queue = newRateLimitingQueue<ObjectKey>({ name: "garbagecollector", registry: env.registry });
  const informers: Informer<KubeObject>[] = [];
  const resources: GCResource[] = [];
  for (const { group, resource } of GCResources) {
    const info = findResource(group, "v1", resource);
    if (!info) throw new Error(`garbage collector: unknown resource ${resource}.${group}`);
    const informer = env.informers.informer<KubeObject>(group, resource);
    informers.push(informer);
    resources.push({ info, lister: informer.lister });
  }
  const reconciler = new GarbageCollector({ client: env.client, resources });
  const handlers = new GarbageCollectorHandlers(reconciler);
  const add = (keys: ObjectKey[]) => keys.forEach((k) => queue.add(k));
  resources.forEach(({ info }, i) => {
    informers[i]!.addEventHandler({
      onAdd: (o) => add(handlers.onAdd(info, o)),
      onUpdate: (a, b) => add(handlers.onUpdate(info, a, b)),
      onDelete: (o) => add(handlers.onDelete(info, o)),
    });
  });
  return {
    name: "garbagecollector",
    run: (ctx) => runController(ctx, { name: "garbagecollector", reconciler, queue, workers: env.workers, informers }),
  };
};
