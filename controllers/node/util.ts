// Helpers shared by the node controllers: the well-known node taints, zone keys, node conditions,
// taint updates with optimistic concurrency (controller.AddOrUpdateTaintOnNode/RemoveTaintOffNode),
// and marking a node's pods not ready (nodelifecycle/controller_utils.MarkPodsNotReady).

import type { Node, NodeCondition, NodeStatus, Pod, PodCondition, PodStatus, Taint } from "../../api/index.ts";
import { isConflict, isNotFound, type Client, type Context, type EventRecorder } from "../../client/index.ts";
import { deepCopy } from "../podcontrol.ts";

export const TaintNodeNotReady = "node.kubernetes.io/not-ready";
export const TaintNodeUnreachable = "node.kubernetes.io/unreachable";
export const TaintNodeUnschedulable = "node.kubernetes.io/unschedulable";
export const TaintNodeMemoryPressure = "node.kubernetes.io/memory-pressure";
export const TaintNodeDiskPressure = "node.kubernetes.io/disk-pressure";
export const TaintNodeNetworkUnavailable = "node.kubernetes.io/network-unavailable";
export const TaintNodePIDPressure = "node.kubernetes.io/pid-pressure";

export const UnreachableTaintTemplate: Readonly<Taint> = Object.freeze({ key: TaintNodeUnreachable, effect: "NoExecute" });
export const NotReadyTaintTemplate: Readonly<Taint> = Object.freeze({ key: TaintNodeNotReady, effect: "NoExecute" });

/** Which NoSchedule taint each node condition status maps to (nodeConditionToTaintKeyStatusMap). */
export const NodeConditionToTaintKey: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  Ready: { False: TaintNodeNotReady, Unknown: TaintNodeUnreachable },
  MemoryPressure: { True: TaintNodeMemoryPressure },
  DiskPressure: { True: TaintNodeDiskPressure },
  NetworkUnavailable: { True: TaintNodeNetworkUnavailable },
  PIDPressure: { True: TaintNodePIDPressure },
};

/** The condition taint keys (taintKeyToNodeConditionMap's keys). */
export const ConditionTaintKeys: ReadonlySet<string> = new Set(Object.values(NodeConditionToTaintKey).flatMap((m) => Object.values(m)));

export const LabelTopologyZone = "topology.kubernetes.io/zone";
export const LabelTopologyRegion = "topology.kubernetes.io/region";
const LabelFailureDomainZone = "failure-domain.beta.kubernetes.io/zone";
const LabelFailureDomainRegion = "failure-domain.beta.kubernetes.io/region";
/** Nodes with this label do not count towards their zone's health (isNodeExcludedFromDisruptionChecks). */
export const LabelNodeExcludeDisruption = "node.kubernetes.io/exclude-disruption";

/** utilnode.GetZoneKey: "" for nodes without region and zone labels, else region:\0:zone. */
export function getZoneKey(node: Readonly<Node>): string {
  const labels = node.metadata.labels ?? {};
  const region = labels[LabelTopologyRegion] ?? labels[LabelFailureDomainRegion] ?? "";
  const zone = labels[LabelTopologyZone] ?? labels[LabelFailureDomainZone] ?? "";
  if (!region && !zone) return "";
  return `${region}:\x00:${zone}`;
}

export function getNodeCondition(status: Readonly<NodeStatus> | undefined, type: string): NodeCondition | undefined {
  return status?.conditions?.find((c) => c.type === type);
}

/** metav1.Time as the API writes it: RFC 3339, whole seconds. */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** A (Micro)Time in microseconds since the epoch; 0 for absent or unparsable. */
export function microTimeOf(s: string | undefined): number {
  if (!s) return 0;
  const m = /^(.*?)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(s);
  if (!m) return 0;
  const base = Date.parse(m[1]! + m[3]!);
  if (Number.isNaN(base)) return 0;
  const frac = (m[2] ?? "").padEnd(6, "0").slice(0, 6);
  return base * 1000 + Number(frac);
}

/** Taint.MatchTaint: same key and effect. */
export function matchTaint(a: Readonly<Taint>, b: Readonly<Taint>): boolean {
  return a.key === b.key && a.effect === b.effect;
}

export function taintExists(taints: readonly Taint[] | undefined, taint: Readonly<Taint>): boolean {
  return (taints ?? []).some((t) => matchTaint(t, taint));
}

/**
 * The node's taints after removing `remove` and adding (or updating) `add`, or undefined when that
 * changes nothing. A taint already present with the same value keeps its timeAdded: re-adding it
 * must not restart the tolerationSeconds of the pods counting from it.
 */
export function applyTaintChanges(current: readonly Taint[] | undefined, add: readonly Taint[], remove: readonly Taint[]): Taint[] | undefined {
  let taints = [...(current ?? [])];
  let changed = false;
  for (const r of remove) {
    const next = taints.filter((t) => !matchTaint(t, r));
    if (next.length !== taints.length) changed = true;
    taints = next;
  }
  for (const a of add) {
    const i = taints.findIndex((t) => matchTaint(t, a));
    if (i < 0) {
      taints.push({ ...a });
      changed = true;
    } else if ((taints[i]!.value ?? "") !== (a.value ?? "")) {
      taints[i] = { ...a };
      changed = true;
    }
  }
  return changed ? taints : undefined;
}

/** Attempts at a taint update before giving up (UpdateTaintBackoff.Steps). */
const TaintUpdateAttempts = 5;

/**
 * Adds `add` and removes `remove` on the node in one write, with the node's resourceVersion as a
 * precondition: the first attempt uses the given (cached) node, a conflict re-reads it from the API.
 * Added taints get timeAdded = now (SwapNodeControllerTaint). True when the node ends up as asked.
 */
export async function swapNodeControllerTaint(
  ctx: Context,
  client: Client,
  add: readonly Taint[],
  remove: readonly Taint[],
  node: Readonly<Node>,
  now: number,
): Promise<boolean> {
  const stamped = add.map((t) => ({ ...t, timeAdded: rfc3339(now) }));
  const nodes = client.resource<Node>("", "nodes");
  let current: Readonly<Node> = node;
  for (let attempt = 1; ; attempt++) {
    const taints = applyTaintChanges(current.spec?.taints, stamped, remove);
    if (!taints) return true;
    try {
      await nodes.patch("", current.metadata.name ?? "", "merge", { metadata: { resourceVersion: current.metadata.resourceVersion }, spec: { taints } });
      ctx.log.debug({ node: current.metadata.name, add: add.map((t) => `${t.key}:${t.effect}`), remove: remove.map((t) => `${t.key}:${t.effect}`) }, "updated node taints");
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      if (!isConflict(e) || attempt >= TaintUpdateAttempts) {
        ctx.log.error({ err: e, node: node.metadata.name }, "failed to update node taints");
        return false;
      }
    }
    try {
      current = await nodes.get("", node.metadata.name ?? "");
    } catch (e) {
      ctx.log.error({ err: e, node: node.metadata.name }, "failed to get node to update its taints");
      return false;
    }
  }
}

/** RemoveTaintOffNode: no API call when the node has none of the taints. */
export async function removeTaintOffNode(ctx: Context, client: Client, node: Readonly<Node>, now: number, ...taints: Taint[]): Promise<boolean> {
  if (!taints.some((t) => taintExists(node.spec?.taints, t))) return true;
  return swapNodeControllerTaint(ctx, client, [], taints, node, now);
}

/**
 * podutil.UpdatePodCondition: sets the condition (lastTransitionTime moves only when the status
 * does); true when anything changed.
 */
export function updatePodCondition(status: PodStatus, cond: PodCondition, now: number): boolean {
  const conditions = (status.conditions ??= []);
  const i = conditions.findIndex((c) => c.type === cond.type);
  if (i < 0) {
    conditions.push({ ...cond, lastTransitionTime: cond.lastTransitionTime ?? rfc3339(now) });
    return true;
  }
  const old = conditions[i]!;
  const next: PodCondition = { ...cond };
  next.lastTransitionTime = old.status === cond.status ? old.lastTransitionTime : (cond.lastTransitionTime ?? rfc3339(now));
  const same =
    old.status === next.status &&
    (old.reason ?? "") === (next.reason ?? "") &&
    (old.message ?? "") === (next.message ?? "") &&
    (old.lastProbeTime ?? null) === (next.lastProbeTime ?? null) &&
    old.lastTransitionTime === next.lastTransitionTime;
  conditions[i] = next;
  return !same;
}

/**
 * MarkPodsNotReady: the Ready condition of each pod on the node becomes False (updateStatus from
 * the cached copy), with a `NodeNotReady` event. A pod already gone is skipped; other errors are
 * collected and thrown together at the end, so the caller retries.
 */
export async function markPodsNotReady(
  ctx: Context,
  client: Client,
  recorder: EventRecorder,
  pods: readonly Readonly<Pod>[],
  nodeName: string,
  now: number,
): Promise<void> {
  const errs: unknown[] = [];
  const podClient = client.resource<Pod>("", "pods");
  for (const p of pods) {
    if (p.spec?.nodeName !== nodeName) continue;
    const ready = p.status?.conditions?.find((c) => c.type === "Ready");
    if (!ready) continue;
    const pod = deepCopy(p) as Pod;
    pod.status ??= {};
    if (!updatePodCondition(pod.status, { ...ready, status: "False" }, now)) continue;
    ctx.log.debug({ pod: `${pod.metadata.namespace}/${pod.metadata.name}`, node: nodeName }, "updating ready status of pod to false");
    try {
      await podClient.updateStatus(pod);
    } catch (e) {
      if (isNotFound(e)) continue;
      ctx.log.info({ err: e, pod: `${pod.metadata.namespace}/${pod.metadata.name}` }, "failed to update status for pod");
      errs.push(e);
      continue;
    }
    recorder.event(pod, "Warning", "NodeNotReady", "Node is not ready");
  }
  if (errs.length === 1) throw errs[0];
  if (errs.length > 1) throw new AggregateError(errs, `failed to mark ${errs.length} pods not ready on node ${nodeName}`);
}
