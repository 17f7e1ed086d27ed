// coordination.k8s.io/v1 types: Lease (node heartbeats and leader election).

import type { KubeObject } from "../meta.ts";

export interface LeaseSpec {
  holderIdentity?: string;
  /** How long a holder keeps the lease without renewing it; must be > 0 when set. */
  leaseDurationSeconds?: number;
  /** RFC 3339 with microseconds ("MicroTime"). */
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
  strategy?: string;
  preferredHolder?: string;
}

export interface Lease extends KubeObject {
  spec?: LeaseSpec;
}

/** Namespace holding the kubelets' node leases. */
export const NamespaceNodeLease = "kube-node-lease";
