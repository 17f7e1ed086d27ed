// The node controllers: lifecycle (health, condition taints, zone-rate-limited NoExecute tainting),
// taint-based eviction, and the pod garbage collector's orphan pass.

export { computeZoneState, NodeLifecycleController, NodeEvictionPeriodMs, type NodeLifecycleControllerDeps, type ZoneState } from "./lifecycle.ts";
export { evictionTime, matchingTolerations, noExecuteTaints, TaintEvictionController, type TaintEvictionControllerDeps } from "./tainteviction.ts";
export { PodGCController, PodGCCheckPeriodMs, PodGCQuarantineMs, type PodGCControllerDeps } from "./podgc.ts";
export { RateLimitedTimedQueue, TokenBucketLimiter } from "./ratelimited.ts";
export {
  getZoneKey,
  NotReadyTaintTemplate,
  TaintNodeNotReady,
  TaintNodeUnreachable,
  TaintNodeUnschedulable,
  UnreachableTaintTemplate,
} from "./util.ts";
export { setupNodeLifecycleController, setupPodGCController, setupTaintEvictionController } from "./setup.ts";
