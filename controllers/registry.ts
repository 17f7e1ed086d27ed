// The controllers a controller-manager can run, by name (`--controllers`). Adding one is one line.

import type { ControllerSetup } from "./env.ts";
import { setupDeploymentController } from "./deployment/setup.ts";
import { setupReplicaSetController } from "./replicaset/setup.ts";

export const CONTROLLERS: Record<string, ControllerSetup> = {
  replicaset: setupReplicaSetController,
  deployment: setupDeploymentController,
};
