// The autoscaler's scheduling simulation (upstream cluster-autoscaler's simulator/ and
// predicatechecker/): a mutable set of NodeInfos — real nodes, template nodes of node groups,
// "upcoming" nodes not yet registered — and a PredicateChecker that runs the REAL scheduler's
// PreFilter and Filter plugins (scheduler/plugins) of a pod against one node of that set, so the
// autoscaler's what-ifs agree with what kube-scheduler will do.

import type { Node, Pod } from "../../../api/index.ts";
import type { Client, EventRecorder } from "../../../client/index.ts";
import { newSnapshot } from "../../../scheduler/cache.ts";
import { addPod, newNodeInfo, removePod } from "../../../scheduler/framework/nodeinfo.ts";
import { Framework } from "../../../scheduler/framework/runtime.ts";
import { Status, type Handle, type NodeInfo, type NodeInfoLister } from "../../../scheduler/framework/types.ts";
import { inTreeRegistry } from "../../../scheduler/plugins/registry.ts";
import type { CloudGroupState } from "../cloudapi.ts";
import { REGION_LABEL, ZONE_LABEL } from "../types.ts";

/** The scheduler's Filter plugins, in the default profile's order (no Score/Bind: only "does it fit"). */
export const FILTER_PLUGINS = [
  "NodeUnschedulable",
  "NodeName",
  "TaintToleration",
  "NodeAffinity",
  "NodePorts",
  "NodeResourcesFit",
  "VolumeBinding",
  "VolumeZone",
  "PodTopologySpread",
  "InterPodAffinity",
] as const;

export const HOSTNAME_LABEL = "kubernetes.io/hostname";

/** A mutable what-if cluster: NodeInfos by name, with pods added and removed; `lister()` is the scheduler's view of it. */
export class ClusterSnapshot {
  private readonly infos = new Map<string, NodeInfo>();
  private cached: NodeInfoLister | undefined;

  constructor(nodes: readonly { node: Readonly<Node>; pods: readonly Readonly<Pod>[] }[] = []) {
    for (const n of nodes) this.addNode(n.node, n.pods);
  }

  addNode(node: Readonly<Node>, pods: readonly Readonly<Pod>[] = []): void {
    this.infos.set(node.metadata.name ?? "", newNodeInfo(node, pods));
    this.cached = undefined;
  }

  removeNode(name: string): void {
    this.infos.delete(name);
    this.cached = undefined;
  }

  addPod(nodeName: string, pod: Readonly<Pod>): void {
    const info = this.infos.get(nodeName);
    if (!info) throw new Error(`simulator: no node ${nodeName}`);
    this.infos.set(nodeName, addPod(info, pod));
    this.cached = undefined;
  }

  removePod(nodeName: string, pod: Readonly<Pod>): void {
    const info = this.infos.get(nodeName);
    if (!info) return;
    const next = removePod(info, pod);
    if (next !== info) {
      this.infos.set(nodeName, next);
      this.cached = undefined;
    }
  }

  get(name: string): NodeInfo | undefined {
    return this.infos.get(name);
  }

  has(name: string): boolean {
    return this.infos.has(name);
  }

  names(): string[] {
    return [...this.infos.keys()];
  }

  /** An independent copy (NodeInfos are immutable, so the copy shares them). */
  clone(): ClusterSnapshot {
    const c = new ClusterSnapshot();
    for (const [k, v] of this.infos) c.infos.set(k, v);
    return c;
  }

  lister(): NodeInfoLister {
    this.cached ??= newSnapshot([...this.infos.values()]);
    return this.cached;
  }
}

export interface PredicateCheckerOptions {
  client: Client;
  volumes?: Handle["volumes"];
  recorder?: EventRecorder;
}

/** Runs the scheduler's PreFilter + Filter plugins for one pod on one node of a ClusterSnapshot. */
export class PredicateChecker {
  private readonly fwk: Framework;

  constructor(opts: PredicateCheckerOptions) {
    this.fwk = new Framework({ schedulerName: "cluster-autoscaler", plugins: FILTER_PLUGINS.map((name) => ({ name })) }, inTreeRegistry, {
      client: opts.client,
      recorder: opts.recorder ?? { event: () => undefined },
      ...(opts.volumes ? { volumes: opts.volumes } : {}),
    });
  }

  /** Success, or the rejecting plugin's Status (its reasons are kube-scheduler's words). */
  check(snapshot: ClusterSnapshot, pod: Readonly<Pod>, nodeName: string): Status {
    if (!snapshot.has(nodeName)) return Status.unresolvable(`node ${nodeName} not found`);
    const pre = this.preFilter(snapshot, pod);
    if (pre instanceof Status) return pre;
    return pre(nodeName);
  }

  /** The first of `candidates` (default: every node) the pod fits on, or undefined. PreFilter runs once. */
  fitsAny(snapshot: ClusterSnapshot, pod: Readonly<Pod>, candidates: readonly string[] = snapshot.names()): string | undefined {
    if (candidates.length === 0) return undefined;
    const pre = this.preFilter(snapshot, pod);
    if (pre instanceof Status) return undefined;
    return candidates.find((name) => pre(name).isSuccess());
  }

  /** PreFilter over the snapshot: a rejection, or the Filter pass for one node of it. */
  private preFilter(snapshot: ClusterSnapshot, pod: Readonly<Pod>): Status | ((nodeName: string) => Status) {
    const lister = snapshot.lister();
    this.fwk.setSnapshot(lister);
    const state = this.fwk.newCycleState();
    const pre = this.fwk.runPreFilterPlugins(state, pod, lister.list());
    if (!pre.status.isSuccess()) return pre.status;
    const allowed = pre.result?.nodeNames;
    return (nodeName) => {
      const info = snapshot.get(nodeName);
      if (!info) return Status.unresolvable(`node ${nodeName} not found`);
      if (allowed && !allowed.has(nodeName)) return Status.unresolvable("node(s) didn't satisfy the pod's PreFilter node set");
      // The snapshot is fixed for this pod's pass: plugins read it through the handle.
      this.fwk.setSnapshot(lister);
      return this.fwk.runFilterPlugins(state, pod, info);
    };
  }
}

/**
 * The Node a group would launch (upstream's TemplateNodeInfo): the template's labels over the
 * kubelet's well-known ones (hostname = the node's name), capacity = allocatable, taints, Ready.
 * Undefined when the ConfigMap has no template.
 */
export function templateNode(group: Pick<CloudGroupState, "group" | "zone" | "template">, name: string, region?: string): Node | undefined {
  const t = group.template;
  if (!t) return undefined;
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      labels: {
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        [ZONE_LABEL]: group.zone,
        ...(region ? { [REGION_LABEL]: region } : {}),
        ...t.labels,
        [HOSTNAME_LABEL]: name,
      },
    },
    spec: t.taints.length ? { taints: t.taints.map((x) => ({ ...x })) } : {},
    status: {
      capacity: { ...t.capacity },
      allocatable: { ...t.capacity },
      conditions: [{ type: "Ready", status: "True" }],
    },
  };
}

/** `template-node-for-<group>-<zone>-<suffix>`, as upstream names template nodes. */
export function templateNodeName(group: Pick<CloudGroupState, "group" | "zone">, suffix: string | number): string {
  return `template-node-for-${group.group}-${group.zone}-${suffix}`;
}

/** A copy of a bound pod as a pending one (for moving it elsewhere in a what-if). */
export function asPending(pod: Readonly<Pod>): Pod {
  const p = structuredClone(pod) as Pod;
  if (p.spec) delete p.spec.nodeName;
  return p;
}
