// Wires the node controllers to the shared informers: node lifecycle (health, condition taints,
// per-zone NoExecute tainting), taint-based eviction, and the pod garbage collector.

import type { Lease, Node, Pod } from "../../api/index.ts";
import { newRateLimitingQueue, objectKey, realClock, runController, type Context, type ObjectKey, type Reconciler } from "../../client/index.ts";
import type { ControllerSetup } from "../env.ts";
import { NodeLifecycleController } from "./lifecycle.ts";
import { PodGCController } from "./podgc.ts";
import { TaintEvictionController } from "./tainteviction.ts";

const reconcilerOf = (fn: (ctx: Context, key: ObjectKey) => Promise<void>): Reconciler => ({ reconcile: async (ctx, key) => fn(ctx, key) });

export const setupNodeLifecycleController: ControllerSetup = (env) => {
  const nodes = env.informers.informer<Node>("", "nodes");
  const pods = env.informers.informer<Pod>("", "pods");
  const leases = env.informers.informer<Lease>("coordination.k8s.io", "leases");
  const controller = new NodeLifecycleController({
    client: env.client,
    nodes: nodes.lister,
    leases: leases.lister,
    pods: pods.lister,
    recorder: env.recorder("node-controller"),
    clock: realClock,
    config: env.config,
  });
  const nodeQueue = newRateLimitingQueue<ObjectKey>({ name: "node_lifecycle_controller", registry: env.registry });
  const podQueue = newRateLimitingQueue<ObjectKey>({ name: "node_lifecycle_controller_pods", registry: env.registry });
  nodes.addEventHandler({ onAdd: (n) => nodeQueue.add(objectKey(n)), onUpdate: (_, n) => nodeQueue.add(objectKey(n)) });
  // A pod newly bound (or moved) may sit on a node already not Ready.
  pods.addEventHandler({
    onAdd: (p) => (p.spec?.nodeName ? podQueue.add(objectKey(p)) : undefined),
    onUpdate: (a, b) => (b.spec?.nodeName && a.spec?.nodeName !== b.spec.nodeName ? podQueue.add(objectKey(b)) : undefined),
  });
  const informers = [nodes, pods, leases];
  return {
    name: "nodelifecycle",
    run: async (ctx) => {
      const workers = [
        runController(ctx, { name: "nodelifecycle", reconciler: controller, queue: nodeQueue, workers: env.workers, informers }),
        runController(ctx, { name: "nodelifecycle-pods", reconciler: reconcilerOf((c, k) => controller.processPod(c, k)), queue: podQueue, workers: env.workers, informers }),
      ];
      await Promise.all(informers.map((i) => i.waitForSync(ctx.signal)));
      await Promise.all([...workers, controller.runLoops(ctx)]);
    },
  };
};

export const setupTaintEvictionController: ControllerSetup = (env) => {
  const nodes = env.informers.informer<Node>("", "nodes");
  const pods = env.informers.informer<Pod>("", "pods");
  const controller = new TaintEvictionController({ client: env.client, nodes: nodes.lister, pods: pods.lister, recorder: env.recorder("taint-eviction-controller"), clock: realClock });
  const nodeQueue = newRateLimitingQueue<ObjectKey>({ name: "taint_eviction_nodes", registry: env.registry });
  const podQueue = newRateLimitingQueue<ObjectKey>({ name: "taint_eviction_pods", registry: env.registry });
  const noExecute = (n: Readonly<Node>) => JSON.stringify((n.spec?.taints ?? []).filter((t) => t.effect === "NoExecute"));
  nodes.addEventHandler({
    onAdd: (n) => nodeQueue.add(objectKey(n)),
    onUpdate: (a, b) => (noExecute(a) !== noExecute(b) ? nodeQueue.add(objectKey(b)) : undefined),
    onDelete: (n) => nodeQueue.add(objectKey(n)),
  });
  pods.addEventHandler({
    onAdd: (p) => podQueue.add(objectKey(p)),
    onUpdate: (a, b) =>
      a.spec?.nodeName !== b.spec?.nodeName || JSON.stringify(a.spec?.tolerations) !== JSON.stringify(b.spec?.tolerations) || a.metadata.deletionTimestamp !== b.metadata.deletionTimestamp
        ? podQueue.add(objectKey(b))
        : undefined,
    onDelete: (p) => podQueue.add(objectKey(p)),
  });
  const informers = [nodes, pods];
  return {
    name: "taint-eviction-controller",
    run: async (ctx) => {
      try {
        await Promise.all([
          runController(ctx, { name: "taint-eviction-nodes", reconciler: reconcilerOf((c, k) => controller.reconcileNode(c, k)), queue: nodeQueue, workers: env.workers, informers }),
          runController(ctx, { name: "taint-eviction-pods", reconciler: reconcilerOf((c, k) => controller.reconcilePod(c, k)), queue: podQueue, workers: env.workers, informers }),
        ]);
      } finally {
        controller.shutdown();
      }
    },
  };
};

export const setupPodGCController: ControllerSetup = (env) => {
  const nodes = env.informers.informer<Node>("", "nodes");
  const pods = env.informers.informer<Pod>("", "pods");
  const controller = new PodGCController({ client: env.client, nodes: nodes.lister, pods: pods.lister, clock: realClock });
  return {
    name: "podgc",
    run: async (ctx) => {
      await Promise.all([nodes.waitForSync(ctx.signal), pods.waitForSync(ctx.signal)]);
      await controller.run(ctx);
    },
  };
};
