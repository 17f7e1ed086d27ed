// The client library every component uses: contracts (types.ts), errors, logging, and — as they
// land — the REST client, informers, work queue, controller harness, leader election and events.

export { newLogger, type Logger } from "./log.ts";
export { isLocalAddress, isLocallyReachable } from "./local.ts";
export * from "./types.ts";
export * from "./errors.ts";
export { Store, objectKey, splitKey, defaultIndexers, indexByNamespace, indexByOwnerUid, indexByNodeName } from "./store.ts";
export {
  FakeClient,
  FakeClock,
  FakeRecorder,
  fakeLister,
  fakeErrors,
  flushPromises,
  AsyncQueue,
  type Action,
  type Verb,
  type Reaction,
  type ReactionFunc,
  type WatchReactionFunc,
  type FakeClientOptions,
} from "./testing.ts";
export { RestClient, loadKubeconfig, resourcePath, errorFromResponse, PATCH_CONTENT_TYPES, type RestConfig, type RestClientOptions } from "./rest.ts";
export { newInformer, newSharedInformerFactory, ListWatchInformer, type InformerOptions, type SharedInformerFactoryOptions } from "./informer.ts";
export { realClock } from "./clock.ts";
export {
  newRateLimitingQueue,
  RateLimitingQueue,
  ItemExponentialFailureRateLimiter,
  BucketRateLimiter,
  MaxOfRateLimiter,
  workqueueMetrics,
  type RateLimiter,
  type RateLimitingQueueOptions,
} from "./workqueue.ts";
export { runController, processKey, enqueueOnChange, enqueueOwner, controllerOwnerKey, type ControllerOptions } from "./controller.ts";
export { runLeaderElection, microTime, type LeaderElectionOptions } from "./leaderelection.ts";
export { ClientMetrics, defaultClientMetrics, type LeaderElectionMetrics, type RestClientMetrics } from "./metrics.ts";
export { newEventRecorder, KubeEventRecorder, type EventRecorderOptions } from "./events.ts";
