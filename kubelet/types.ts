// The kubelet's contracts: what one node agent needs (KubeletOptions) and what it offers to the
// process that hosts it (a single-node `kubelab kubelet`, or a pool of simulated nodes).

import type { Node, Pod, Taint } from "../api/core/v1.ts";
import type { Client, Clock, Context, EventRecorder, Informer, Logger } from "../client/index.ts";
import type { Runtime } from "./runtime/types.ts";
import type { KubeletDNSOptions } from "./dns.ts";

export const ZONE_LABEL = "topology.kubernetes.io/zone";
export const REGION_LABEL = "topology.kubernetes.io/region";
export const HOSTNAME_LABEL = "kubernetes.io/hostname";
/** The Lease namespace every kubelet heartbeats in. */
export const NODE_LEASE_NAMESPACE = "kube-node-lease";

export interface KubeletOptions {
  nodeName: string;
  zone: string;
  region: string;
  client: Client;
  /**
   * A pod informer shared by every kubelet of the process (a pool shares one), listing pods with
   * `spec.nodeName` set; the kubelet reads its own pods through the `spec.nodeName` index and
   * must ignore pods bound elsewhere. Already started by the host process.
   */
  pods: Informer<Pod>;
  /**
   * A node informer that sees this kubelet's Node (a single kubelet watches `metadata.name=<node>`;
   * a pool shares one over its nodes' pool label), already started by the host process. The node
   * status loop reads the Node from its cache instead of GETting it every round (upstream's node
   * lister). Without it the loop GETs.
   */
  nodes?: Informer<Node>;
  runtime: Runtime;
  /** Where pod directories (volumes) and logs live: `<rootDir>/pods/<uid>/volumes/...`, `<rootDir>/logs/<ns>_<name>_<uid>/...`. */
  rootDir: string;
  /** The simulated cloud's disks, shared by every node: a persistentVolumeClaim volume is `<volumeDir>/<volumeHandle>` (default `<rootDir>/volumes`). */
  volumeDir?: string;
  /** The node's InternalIP; the kubelet's HTTP server (logs) listens on it. */
  nodeIP: string;
  /** Port of the kubelet's HTTP server (status.daemonEndpoints.kubeletEndpoint.Port). */
  port: number;
  /** spec.podCIDR written at registration, informational (the runtime allocates pod IPs). */
  podCIDR?: string;
  /** status.capacity; allocatable = capacity (no reservations). Default cpu 8, memory 32Gi, pods 110, ephemeral-storage 100Gi. */
  capacity?: Record<string, string>;
  /** Extra node labels (beyond hostname/zone/region/os/arch). */
  labels?: Record<string, string>;
  /** spec.taints at registration only (upstream's --register-with-taints). */
  registerWithTaints?: Taint[];
  /** spec.providerID (the cloud instance, e.g. kubelab:///local-1a/i-0123456789abcdef0); set once. */
  providerID?: string;
  /** status.nodeInfo.containerRuntimeVersion, e.g. "containerd://1.6.20" or "sim://0.1.0". */
  runtimeVersion?: string;
  recorder: EventRecorder;
  clock?: Clock;
  log: Logger;
  /** Intervals (ms); tests shorten them. */
  leaseDurationSeconds?: number; // default 40
  leaseRenewIntervalMs?: number; // default 10_000
  nodeStatusUpdateFrequencyMs?: number; // default 10_000 (sent when changed, or every 5 min)
  plegRelistPeriodMs?: number; // default 1_000
  /** Restart backoff: initial and max (default 10 s → 300 s), as upstream's crash-loop backoff. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /**
   * Pod DNS (--cluster-dns, --cluster-domain, --resolv-conf; kubelet/dns.ts). Without it sandboxes
   * get spec.dnsConfig as given (simulated pods resolve nothing).
   */
  dns?: KubeletDNSOptions;
}

/** One node agent. */
export interface NodeAgent {
  readonly nodeName: string;
  /** Registers the Node, then runs lease, node status, PLEG, pod workers and the HTTP server until ctx aborts. */
  run(ctx: Context): Promise<void>;
  /** Number of pods it currently runs (for metrics/bench). */
  podCount(): number;
}
