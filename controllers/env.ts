// What every controller gets from the controller-manager, and what it gives back: the shape of
// `setup` functions, so that adding a controller to the process is one line in the registry.

import type { Registry } from "prom-client";
import type { Client, Context, EventRecorder, SharedInformerFactory } from "../client/index.ts";

export interface ControllerEnv {
  client: Client;
  /** One informer per resource for the whole process: call informer(group, resource) freely. */
  informers: SharedInformerFactory;
  /** Metrics registry of the process (work queues register here). */
  registry: Registry;
  /** Concurrent reconciles per controller. */
  workers: number;
  /** An event recorder whose source.component is `component` (e.g. "replicaset-controller"). */
  recorder(component: string): EventRecorder;
}

export interface StartedController {
  name: string;
  /** Waits for its informers to sync, then runs its workers until ctx aborts. */
  run(ctx: Context): Promise<void>;
}

/** Builds a controller: registers its event handlers on the shared informers and returns its runner. */
export type ControllerSetup = (env: ControllerEnv) => StartedController;
