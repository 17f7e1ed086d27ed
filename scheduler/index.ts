// The scheduler's public surface: the Scheduler, its queue and cache, and the framework contracts
// plugins and profiles are written against.

export * from "./framework/types.ts";
export {
  emptyResource,
  cloneResource,
  resourceFromList,
  addResource,
  podRequests,
  nonZeroRequests,
  podHostPorts,
  hostPortKey,
  hasAffinity,
  hasRequiredAntiAffinity,
  podKey,
  newPodInfo,
  newNodeInfo,
  setNode,
  addPod,
  removePod,
  nextGeneration,
  DEFAULT_MILLI_CPU_REQUEST,
  DEFAULT_MEMORY_REQUEST,
} from "./framework/nodeinfo.ts";
export {
  Framework,
  FitError,
  FrameworkError,
  fitErrorMessage,
  numFeasibleNodesToFind,
  DEFAULT_SCHEDULER_NAME,
  NO_NODE_AVAILABLE_MSG,
  type Profile,
  type PluginConfig,
  type PluginRegistry,
  type Diagnosis,
  type ScheduleResult,
  type FrameworkOptions,
} from "./framework/runtime.ts";
export { Cache, Snapshot, NodeTree, newSnapshot, zoneKey, ZONE_LABEL, REGION_LABEL, DEFAULT_ASSUMED_POD_TTL_MS, type CacheOptions } from "./cache.ts";
export {
  SchedulingQueue,
  Heap,
  eventMatches,
  podPriority,
  UNSCHEDULABLE_TIMEOUT,
  DEFAULT_POD_INITIAL_BACKOFF_MS,
  DEFAULT_POD_MAX_BACKOFF_MS,
  DEFAULT_POD_MAX_IN_UNSCHEDULABLE_MS,
  type QueuedPodInfo,
  type SchedulingQueueOptions,
} from "./queue.ts";
export { Scheduler, nodeChange, type SchedulerOptions } from "./scheduler.ts";
