// The kubelet's public surface: the node agent, its contracts and the runtime contract.

export { Kubelet } from "./kubelet.ts";
export { kubeletMetrics, registerKubeletMetrics, trackNode, type NodeMetricsSource, type RuntimeCounts } from "./metrics.ts";
export * from "./types.ts";
export * from "./runtime/types.ts";
export { PodSyncer, type PodSyncerOptions } from "./sync.ts";
export { GenericPLEG, type PodLifecycleEvent, type PodRuntimeStatus } from "./pleg.ts";
export { StatusManager, generateAPIPodStatus, getPhase } from "./status.ts";
export { ProbeManager, type ProbeKind, type ProbeResult } from "./prober.ts";
export { VolumeManager, hostsFileContent } from "./volumes.ts";
export { registerNode, runNodeLease, runNodeStatus } from "./node.ts";
export { startKubeletServer, type KubeletServerOptions } from "./server.ts";
export { runPool, splitNodeCIDRs, nodeIPOf, POOL_LABEL, type PoolOptions } from "./pool.ts";
export { runCloudPool, wantedInstances, type CloudPoolOptions } from "./cloudpool.ts";
export { SimRuntime, type SimRuntimeOptions } from "./runtime/sim.ts";
// The containerd side (runtime/cri.ts, runtime/containerd.ts) is NOT re-exported here: it pulls in
// grpc-js and the CRI codecs, so callers import it on demand (a simulated pool never loads it).
export type { CriRuntime } from "./runtime/cri.ts";
export type { ContainerdHost } from "./runtime/containerd.ts";
export { formPodDNS, parseResolvConf, readHostDNS, type DNSConfig, type KubeletDNSOptions } from "./dns.ts";
export { SERVICE_INTERFACE } from "./runtime/hoststate.ts";
