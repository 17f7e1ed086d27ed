// Wires the DaemonSet controller to the shared informers: DaemonSet events enqueue the set; pod
// events enqueue the owning set (recording expectation observations); node events enqueue the sets
// whose verdict for that node may have changed; revision events enqueue their owner.

import type { ControllerRevision, DaemonSet, Node, Pod } from "../../api/index.ts";
import { newRateLimitingQueue, objectKey, runController, type ObjectKey } from "../../client/index.ts";
import type { ControllerSetup } from "../env.ts";
import { DaemonSetController, DaemonSetExpectations, DaemonSetHandlers } from "./index.ts";

export const setupDaemonSetController: ControllerSetup = (env) => {
  const pods = env.informers.informer<Pod>("", "pods");
  const nodes = env.informers.informer<Node>("", "nodes");
  const sets = env.informers.informer<DaemonSet>("apps", "daemonsets");
  const revisions = env.informers.informer<ControllerRevision>("apps", "controllerrevisions");
  const queue = newRateLimitingQueue<ObjectKey>({ name: "daemonset", registry: env.registry });
  const expectations = new DaemonSetExpectations();
  const handlers = new DaemonSetHandlers({ daemonSets: sets.lister, expectations });
  const add = (keys: ObjectKey[]) => keys.forEach((k) => queue.add(k));
  sets.addEventHandler({ onAdd: (o) => queue.add(objectKey(o)), onUpdate: (_, o) => queue.add(objectKey(o)), onDelete: (o) => queue.add(objectKey(o)) });
  pods.addEventHandler({
    onAdd: (p) => add(handlers.onPodAdd(p)),
    onUpdate: (a, b) => {
      add(handlers.onPodUpdate(a, b));
      const later = handlers.onPodReadyLater(a, b);
      if (later) queue.addAfter(later.key, later.afterMs);
    },
    onDelete: (p) => add(handlers.onPodDelete(p)),
  });
  nodes.addEventHandler({ onAdd: (n) => add(handlers.onNodeAdd(n)), onUpdate: (a, b) => add(handlers.onNodeUpdate(a, b)), onDelete: () => add(handlers.onNodeDelete()) });
  revisions.addEventHandler({
    onAdd: (r) => add(handlers.onRevision(r)),
    onUpdate: (a, b) => add([...new Set([...handlers.onRevision(a), ...handlers.onRevision(b)])]),
    onDelete: (r) => add(handlers.onRevision(r)),
  });
  const reconciler = new DaemonSetController({
    client: env.client,
    daemonSets: sets.lister,
    pods: pods.lister,
    nodes: nodes.lister,
    revisions: revisions.lister,
    expectations,
    recorder: env.recorder("daemonset-controller"),
  });
  return {
    name: "daemonset",
    run: (ctx) => runController(ctx, { name: "daemonset", reconciler, queue, workers: env.workers, informers: [pods, nodes, sets, revisions] }),
  };
};
