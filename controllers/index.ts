// The controllers' public surface: reconcilers, their dependencies, and the event-handler mappings
// the controller-manager wires to shared informers.

export { Expectations, ExpectationsTimeoutMs } from "./expectations.ts";
export {
  activePodsRank,
  ControllerRefManager,
  getControllerOf,
  getPodFromTemplate,
  isPodActive,
  isPodAvailable,
  isPodReady,
  newControllerRef,
  PodControl,
  podsToDelete,
  slowStartBatch,
} from "./podcontrol.ts";
export { BurstReplicas, calculateStatus as calculateReplicaSetStatus, ReplicaSetController, ReplicaSetPodHandlers, type ReplicaSetControllerDeps } from "./replicaset/index.ts";
export { computeHash, DeploymentController, DeploymentHandlers, RevisionHistoryAnnotation, type DeploymentControllerDeps } from "./deployment/index.ts";
export { CONTROLLERS } from "./registry.ts";
export { DEFAULT_CONTROLLER_MANAGER_CONFIG, type ControllerEnv, type ControllerManagerConfig, type ControllerSetup, type StartedController } from "./env.ts";
export { computeZoneState, NodeLifecycleController, PodGCController, TaintEvictionController } from "./node/index.ts";
