// Wires the EndpointSlice controller: services enqueue themselves, pods the services selecting them,
// nodes whose zone changed the services of their pods, and managed slices their service (recording
// expectation observations on the way).

import type { EndpointSlice, Node, Pod, Service } from "../../api/index.ts";
import { INDEX_NODE_NAME, newRateLimitingQueue, objectKey, runController, type ObjectKey } from "../../client/index.ts";
import { PodServiceHandlers } from "../endpoints/util.ts";
import type { ControllerSetup } from "../env.ts";
import { EndpointSliceController, nodeZoneChangedKeys, serviceKeyOfSlice, SliceExpectations } from "./index.ts";

export const setupEndpointSliceController: ControllerSetup = (env) => {
  const services = env.informers.informer<Service>("", "services");
  const pods = env.informers.informer<Pod>("", "pods");
  const nodes = env.informers.informer<Node>("", "nodes");
  const slices = env.informers.informer<EndpointSlice>("discovery.k8s.io", "endpointslices");
  const queue = newRateLimitingQueue<ObjectKey>({ name: "endpoint_slice", registry: env.registry });
  const expectations = new SliceExpectations();
  const podHandlers = new PodServiceHandlers(services.lister);
  const add = (keys: ObjectKey[]) => keys.forEach((k) => queue.add(k));
  services.addEventHandler({ onAdd: (o) => queue.add(objectKey(o)), onUpdate: (_, o) => queue.add(objectKey(o)), onDelete: (o) => queue.add(objectKey(o)) });
  pods.addEventHandler({ onAdd: (p) => add(podHandlers.onAdd(p)), onUpdate: (a, b) => add(podHandlers.onUpdate(a, b)), onDelete: (p) => add(podHandlers.onDelete(p)) });
  nodes.addEventHandler({
    onAdd: (n) => add(nodeZoneChangedKeys(undefined, n, pods.lister, services.lister, INDEX_NODE_NAME)),
    onUpdate: (a, b) => add(nodeZoneChangedKeys(a, b, pods.lister, services.lister, INDEX_NODE_NAME)),
  });
  slices.addEventHandler({
    onAdd: (s) => {
      const k = serviceKeyOfSlice(s);
      if (k === undefined) return;
      expectations.creationObserved(k);
      queue.add(k);
    },
    onUpdate: (a, b) => {
      const k = serviceKeyOfSlice(b);
      if (k !== undefined && a.metadata.resourceVersion !== b.metadata.resourceVersion) queue.add(k);
    },
    onDelete: (s) => {
      const k = serviceKeyOfSlice(s);
      if (k === undefined) return;
      expectations.deletionObserved(k, s.metadata.uid ?? "");
      queue.add(k);
    },
  });
  const reconciler = new EndpointSliceController({
    client: env.client,
    services: services.lister,
    pods: pods.lister,
    nodes: nodes.lister,
    endpointSlices: slices.lister,
    expectations,
  });
  return {
    name: "endpointslice",
    run: (ctx) => runController(ctx, { name: "endpointslice", reconciler, queue, workers: env.workers, informers: [services, pods, nodes, slices] }),
  };
};
