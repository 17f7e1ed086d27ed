// Wires the namespace controller to the shared namespace informer: a namespace is queued once it is
// being deleted, and requeues itself while content remains.

import type { Namespace } from "../../api/index.ts";
import { newRateLimitingQueue, objectKey, runController, type ObjectKey } from "../../client/index.ts";
import type { ControllerSetup } from "../env.ts";
import { NamespaceController, namespaceFinalizer } from "./index.ts";

export const setupNamespaceController: ControllerSetup = (env) => {
  const namespaces = env.informers.informer<Namespace>("", "namespaces");
  const queue = newRateLimitingQueue<ObjectKey>({ name: "namespace", registry: env.registry });
  const enqueue = (ns: Readonly<Namespace>): void => {
    if (ns.metadata.deletionTimestamp) queue.add(objectKey(ns));
  };
  namespaces.addEventHandler({ onAdd: enqueue, onUpdate: (_, ns) => enqueue(ns) });
  const reconciler = new NamespaceController({ client: env.client, namespaces: namespaces.lister, finalize: namespaceFinalizer(env.client) });
  return { name: "namespace", run: (ctx) => runController(ctx, { name: "namespace", reconciler, queue, workers: env.workers, informers: [namespaces] }) };
};
