// The kubelet's public surface: the node agent, its contracts and the runtime contract.

export { Kubelet } from "./kubelet.ts";
export * from "./types.ts";
export * from "./runtime/types.ts";
export { PodSyncer, type PodSyncerOptions } from "./sync.ts";
export { GenericPLEG, type PodLifecycleEvent, type PodRuntimeStatus } from "./pleg.ts";
export { StatusManager, generateAPIPodStatus, getPhase } from "./status.ts";
export { ProbeManager, type ProbeKind, type ProbeResult } from "./prober.ts";
export { VolumeManager, hostsFileContent } from "./volumes.ts";
// node side, logs server, pool (kubelet/node.ts, server.ts, pool.ts):
