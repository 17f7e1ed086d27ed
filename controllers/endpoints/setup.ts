// Wires the Endpoints controller: service events enqueue the service, pod events the services
// selecting the pod, and an Endpoints deleted by hand its service (so it comes back).

import type { Endpoints, Pod, Service } from "../../api/index.ts";
import { newRateLimitingQueue, objectKey, runController, type ObjectKey } from "../../client/index.ts";
import type { ControllerSetup } from "../env.ts";
import { EndpointsController, PodServiceHandlers } from "./index.ts";

export const setupEndpointsController: ControllerSetup = (env) => {
  const services = env.informers.informer<Service>("", "services");
  const pods = env.informers.informer<Pod>("", "pods");
  const endpoints = env.informers.informer<Endpoints>("", "endpoints");
  const queue = newRateLimitingQueue<ObjectKey>({ name: "endpoint", registry: env.registry });
  const handlers = new PodServiceHandlers(services.lister);
  const add = (keys: ObjectKey[]) => keys.forEach((k) => queue.add(k));
  services.addEventHandler({ onAdd: (o) => queue.add(objectKey(o)), onUpdate: (_, o) => queue.add(objectKey(o)), onDelete: (o) => queue.add(objectKey(o)) });
  pods.addEventHandler({ onAdd: (p) => add(handlers.onAdd(p)), onUpdate: (a, b) => add(handlers.onUpdate(a, b)), onDelete: (p) => add(handlers.onDelete(p)) });
  endpoints.addEventHandler({ onDelete: (e) => (services.lister.get(objectKey(e)) ? queue.add(objectKey(e)) : undefined) });
  const reconciler = new EndpointsController({ client: env.client, services: services.lister, pods: pods.lister, endpoints: endpoints.lister });
  return {
    name: "endpoints",
    run: (ctx) => runController(ctx, { name: "endpoints", reconciler, queue, workers: env.workers, informers: [services, pods, endpoints] }),
  };
};
