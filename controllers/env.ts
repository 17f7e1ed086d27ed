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
  /** The controller-manager's tunables (flags); DEFAULT_CONTROLLER_MANAGER_CONFIG when none are given. */
  config: ControllerManagerConfig;
}

/** kube-controller-manager's node lifecycle options (NodeLifecycleControllerConfiguration), in ms and qps. */
export interface ControllerManagerConfig {
  /** --node-monitor-period: how often node health is checked. */
  nodeMonitorPeriodMs: number;
  /** --node-monitor-grace-period: how long a node may go without a heartbeat before it is Unknown. */
  nodeMonitorGracePeriodMs: number;
  /** --node-startup-grace-period: the same, for a node whose kubelet never posted a Ready condition. */
  nodeStartupGracePeriodMs: number;
  /** --node-eviction-rate: nodes per second tainted NoExecute in a healthy zone. */
  nodeEvictionRate: number;
  /** --secondary-node-eviction-rate: nodes per second in a partially disrupted zone of a large cluster. */
  secondaryNodeEvictionRate: number;
  /** --large-cluster-size-threshold: above this many nodes a zone counts as large. */
  largeClusterSizeThreshold: number;
  /** --unhealthy-zone-threshold: the fraction of not-Ready nodes (at least 3) that makes a zone partially disrupted. */
  unhealthyZoneThreshold: number;
  /** --resource-quota-sync-period: how often every ResourceQuota's usage is recomputed in full (default 5 min). */
  resourceQuotaSyncPeriodMs?: number;
  /** --volume-dir: the simulated cloud's disks, one directory <dir>/<volumeHandle> per volume (deleted with a Delete-policy volume). */
  volumeDir?: string;
  /** --cluster-signing-cert-file / --cluster-signing-key-file: the CA (PEM files) the CSR signer issues kubelets' certificates with. */
  clusterSigningCertFile?: string;
  clusterSigningKeyFile?: string;
  /** --cluster-signing-duration: the longest validity a signed certificate gets (default 1 year). */
  clusterSigningDurationMs?: number;
  /** --root-ca-file: the CA published to every namespace as ConfigMap kube-root-ca.crt. */
  rootCAFile?: string;
  /** --service-account-private-key-file: the key legacy ServiceAccount token Secrets are signed with. */
  serviceAccountPrivateKeyFile?: string;
}

export const DEFAULT_CONTROLLER_MANAGER_CONFIG: Readonly<ControllerManagerConfig> = Object.freeze({
  nodeMonitorPeriodMs: 5_000,
  nodeMonitorGracePeriodMs: 50_000,
  nodeStartupGracePeriodMs: 60_000,
  nodeEvictionRate: 0.1,
  secondaryNodeEvictionRate: 0.01,
  largeClusterSizeThreshold: 50,
  unhealthyZoneThreshold: 0.55,
});

export interface StartedController {
  name: string;
  /** Waits for its informers to sync, then runs its workers until ctx aborts. */
  run(ctx: Context): Promise<void>;
}

/** Builds a controller: registers its event handlers on the shared informers and returns its runner. */
export type ControllerSetup = (env: ControllerEnv) => StartedController;
