// Test helpers for the node controllers: a Lister that always reads the FakeClient's tracker (so a
// controller sees its own writes on the next pass, as it would through an informer), and builders.

import type { KubeObject, Lease, Node, NodeCondition, Pod, Selector, Taint, Toleration } from "../../api/index.ts";
import { fakeLister, type FakeClient, type Lister, type ObjectKey } from "../../client/index.ts";

/** A Lister over the tracker's current objects of one resource. */
export class TrackerLister<T extends KubeObject> implements Lister<T> {
  constructor(
    private readonly client: FakeClient,
    private readonly group: string,
    private readonly resource: string,
  ) {}
  private snapshot(): Lister<T> {
    return fakeLister(this.client.trackerList(this.group, this.resource) as T[]);
  }
  get(key: ObjectKey): Readonly<T> | undefined {
    return this.snapshot().get(key);
  }
  list(selector?: Selector): readonly Readonly<T>[] {
    return this.snapshot().list(selector);
  }
  listNamespace(namespace: string, selector?: Selector): readonly Readonly<T>[] {
    return this.snapshot().listNamespace(namespace, selector);
  }
  byIndex(index: string, value: string): readonly Readonly<T>[] {
    return this.snapshot().byIndex(index, value);
  }
}

export const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

export function node(name: string, o: { ready?: "True" | "False" | "Unknown"; heartbeat?: number; zone?: string; taints?: Taint[]; unschedulable?: boolean; created?: number } = {}): Node {
  const conditions: NodeCondition[] = [];
  if (o.ready) {
    const t = iso(o.heartbeat ?? 0);
    conditions.push({ type: "Ready", status: o.ready, lastHeartbeatTime: t, lastTransitionTime: t, reason: o.ready === "True" ? "KubeletReady" : "KubeletNotReady" });
    for (const type of ["MemoryPressure", "DiskPressure", "PIDPressure"]) conditions.push({ type, status: "False", lastHeartbeatTime: t, lastTransitionTime: t });
  }
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name, uid: `uid-${name}`, ...(o.created !== undefined ? { creationTimestamp: iso(o.created) } : {}), ...(o.zone ? { labels: { "topology.kubernetes.io/zone": o.zone } } : {}) },
    spec: { ...(o.taints ? { taints: o.taints } : {}), ...(o.unschedulable ? { unschedulable: true } : {}) },
    status: { conditions },
  };
}

export function lease(nodeName: string, renew: number): Lease {
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: { name: nodeName, namespace: "kube-node-lease" },
    spec: { holderIdentity: nodeName, leaseDurationSeconds: 40, renewTime: new Date(renew).toISOString().replace("Z", "000Z") },
  };
}

export function pod(name: string, nodeName: string, o: { tolerations?: Toleration[]; terminating?: boolean; ready?: boolean } = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default", uid: `uid-${name}`, ...(o.terminating ? { deletionTimestamp: "2024-01-01T00:00:00Z", deletionGracePeriodSeconds: 30, finalizers: ["example.com/keep"] } : {}) },
    spec: { nodeName, containers: [{ name: "c", image: "nginx" }], ...(o.tolerations ? { tolerations: o.tolerations } : {}) },
    status: { phase: "Running", conditions: [{ type: "Ready", status: o.ready === false ? "False" : "True" }] },
  };
}
