// Scale-down (upstream's core/scaledown: eligibility, unneeded, actuation; simulator/drain and
// utils/drain): which nodes of the node groups are unneeded — utilization of cpu and memory below
// the threshold, every pod movable (replicated, not kube-system without a PDB, no local storage,
// PDB allowing it) and fitting on the other nodes by the scheduler's Filter plugins, group above
// minSize — and the deletion of one: taint ToBeDeletedByClusterAutoscaler, evict its pods through
// the eviction API (429 from a PodDisruptionBudget retried until the drain timeout), wait for them
// to go, then terminate its instance with desiredCapacity−1 in one CAS update and delete the Node.

import { labelSelectorAsSelector, type Node, type Pod, type PodDisruptionBudget, type Taint } from "../../../api/index.ts";
import { isClientError, isConflict, isNotFound, type Client, type Clock, type Context, type EventRecorder } from "../../../client/index.ts";
import { podRequests, resourceFromList } from "../../../scheduler/framework/nodeinfo.ts";
import { updateCloudGroup } from "../cloudapi.ts";
import { NODEGROUP_LABEL } from "../types.ts";
import { groupOfNode, isBeingDeleted, isNodeReady, TO_BE_DELETED_TAINT, type GroupInfo } from "./clusterstate.ts";
import { asPending, type ClusterSnapshot, type PredicateChecker } from "./simulator.ts";

export const MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror";
export const SAFE_TO_EVICT_ANNOTATION = "cluster-autoscaler.kubernetes.io/safe-to-evict";
export const SCALE_DOWN_DISABLED_ANNOTATION = "cluster-autoscaler.kubernetes.io/scale-down-disabled";

/** Upstream's UnremovableReason names (simulator.UnremovableReason), as the status and logs show them. */
export type UnremovableReason =
  | "ScaleDownDisabledAnnotation"
  | "NotAutoscaled"
  | "NodeGroupMinSizeReached"
  | "NotUnderutilized"
  | "NotReady"
  | "BlockedByPod"
  | "NoPlaceToMovePods"
  | "BeingDeleted";

/** Upstream's drain.BlockingPodReason names. */
export type BlockingPodReason = "NotReplicated" | "LocalStorageRequested" | "NotSafeToEvictAnnotation" | "UnmovableKubeSystemPod" | "NotEnoughPdb";

export interface Utilization {
  cpu: number;
  memory: number;
}

export interface Candidate {
  node: Readonly<Node>;
  group: GroupInfo;
  /** The pods a drain evicts (DaemonSet and mirror pods excluded). */
  pods: Readonly<Pod>[];
  utilization: Utilization;
  /** False for a node NotReady past max-node-provision-time: removed after scale-down-unready-time instead. */
  ready: boolean;
}

export interface Unremovable {
  node: string;
  reason: UnremovableReason;
  /** For BlockedByPod: "<ns>/<name>: <BlockingPodReason>". */
  detail?: string;
}

function controllerOf(pod: Readonly<Pod>) {
  return (pod.metadata.ownerReferences ?? []).find((r) => r.controller);
}

export function isDaemonSetPod(pod: Readonly<Pod>): boolean {
  return controllerOf(pod)?.kind === "DaemonSet";
}

export function isMirrorPod(pod: Readonly<Pod>): boolean {
  return pod.metadata.annotations?.[MIRROR_POD_ANNOTATION] !== undefined;
}

function isTerminal(pod: Readonly<Pod>): boolean {
  return pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";
}

/** The pods a drain would have to move off a node: running there, not finished, not DaemonSet or mirror pods. */
export function podsToMove(pods: readonly Readonly<Pod>[]): Readonly<Pod>[] {
  return pods.filter((p) => !isTerminal(p) && !isDaemonSetPod(p) && !isMirrorPod(p));
}

/** Upstream's utilization: sum of the requests of the pods that would move over the node's allocatable, per resource. */
export function nodeUtilization(node: Readonly<Node>, pods: readonly Readonly<Pod>[]): Utilization {
  const alloc = resourceFromList(node.status?.allocatable);
  let cpu = 0;
  let memory = 0;
  for (const p of podsToMove(pods)) {
    if (p.metadata.deletionTimestamp) continue;
    const r = podRequests(p);
    cpu += r.milliCPU;
    memory += r.memory;
  }
  return { cpu: alloc.milliCPU > 0 ? cpu / alloc.milliCPU : 1, memory: alloc.memory > 0 ? memory / alloc.memory : 1 };
}

export function pdbsForPod(pod: Readonly<Pod>, pdbs: readonly Readonly<PodDisruptionBudget>[]): Readonly<PodDisruptionBudget>[] {
  return pdbs.filter((b) => b.metadata.namespace === pod.metadata.namespace && labelSelectorAsSelector(b.spec?.selector).matches(pod.metadata.labels ?? {}));
}

/**
 * Why a pod keeps its node (upstream's drain rules with skip-nodes-with-local-storage and
 * skip-nodes-with-system-pods on), or undefined when it may be evicted. `budget` is the remaining
 * disruptionsAllowed per PDB (namespace/name), decremented for each pod that will be evicted.
 */
export function blockingReason(pod: Readonly<Pod>, pdbs: readonly Readonly<PodDisruptionBudget>[], budget: Map<string, number>): BlockingPodReason | undefined {
  const safe = pod.metadata.annotations?.[SAFE_TO_EVICT_ANNOTATION];
  if (safe === "false") return "NotSafeToEvictAnnotation";
  const matching = pdbsForPod(pod, pdbs);
  if (safe !== "true") {
    if (!controllerOf(pod)) return "NotReplicated";
    if (pod.metadata.namespace === "kube-system" && matching.length === 0) return "UnmovableKubeSystemPod";
    if ((pod.spec?.volumes ?? []).some((v) => v.emptyDir || v.hostPath)) return "LocalStorageRequested";
  }
  for (const b of matching) {
    const key = `${b.metadata.namespace}/${b.metadata.name}`;
    const left = budget.get(key) ?? b.status?.disruptionsAllowed ?? 0;
    if (left < 1) return "NotEnoughPdb";
  }
  for (const b of matching) {
    const key = `${b.metadata.namespace}/${b.metadata.name}`;
    budget.set(key, (budget.get(key) ?? b.status?.disruptionsAllowed ?? 0) - 1);
  }
  return undefined;
}

export interface FindUnneededInput {
  groups: readonly GroupInfo[];
  /** Every Node, and the pods bound to each. */
  nodes: readonly Readonly<Node>[];
  podsByNode: ReadonlyMap<string, readonly Readonly<Pod>[]>;
  pdbs: readonly Readonly<PodDisruptionBudget>[];
  /** Where pods may move: the Ready, schedulable nodes not being deleted, with their pods. Consumed (nodes found unneeded are removed, their pods placed). */
  snapshot: ClusterSnapshot;
  checker: PredicateChecker;
  threshold: number;
  /** With maxNodeProvisionTimeMs: NotReady nodes launched longer ago are candidates too. Absent: they never are. */
  now?: number;
  maxNodeProvisionTimeMs?: number;
}

/**
 * Upstream's unneeded-node search: candidates in name order; each one's pods are re-placed on the
 * remaining nodes (including pods moved there from earlier candidates), so two nodes whose pods
 * only fit on each other are never both unneeded.
 */
export function findUnneeded(input: FindUnneededInput): { unneeded: Candidate[]; unremovable: Unremovable[] } {
  const { groups, nodes, podsByNode, pdbs, checker, threshold } = input;
  let snapshot = input.snapshot;
  const unneeded: Candidate[] = [];
  const unremovable: Unremovable[] = [];
  const removed = new Map<string, number>();
  const byName = [...nodes].sort((a, b) => (a.metadata.name ?? "").localeCompare(b.metadata.name ?? ""));
  const budget = new Map<string, number>();
  for (const node of byName) {
    const name = node.metadata.name ?? "";
    if (!node.metadata.labels?.[NODEGROUP_LABEL]) continue;
    const group = groupOfNode(groups, node);
    if (!group) {
      unremovable.push({ node: name, reason: "NotAutoscaled" });
      continue;
    }
    if (isBeingDeleted(node)) {
      unremovable.push({ node: name, reason: "BeingDeleted" });
      continue;
    }
    if (node.metadata.annotations?.[SCALE_DOWN_DISABLED_ANNOTATION] === "true") {
      unremovable.push({ node: name, reason: "ScaleDownDisabledAnnotation" });
      continue;
    }
    const ready = isNodeReady(node);
    if (!ready) {
      // Still booting (launched within max-node-provision-time): not a candidate yet.
      const launched = Date.parse(group.state.instances.find((i) => i.name === name)?.launchTime ?? "");
      if (input.now === undefined || !Number.isFinite(launched) || input.now - launched <= (input.maxNodeProvisionTimeMs ?? 0)) {
        unremovable.push({ node: name, reason: "NotReady" });
        continue;
      }
    }
    if (node.spec?.unschedulable) {
      unremovable.push({ node: name, reason: "NotReady" });
      continue;
    }
    // The snapshot's pods: those bound here, plus pending ones the simulation placed here and pods moved from earlier candidates.
    const pods = snapshot.get(name)?.pods.map((p) => p.pod) ?? podsByNode.get(name) ?? [];
    const utilization = nodeUtilization(node, pods);
    // An unready node is removable whatever its utilization (upstream: after scale-down-unready-time).
    if (ready && Math.max(utilization.cpu, utilization.memory) >= threshold) {
      unremovable.push({ node: name, reason: "NotUnderutilized" });
      continue;
    }
    const already = removed.get(group.name) ?? 0;
    if (group.state.desiredCapacity - already - 1 < group.state.minSize) {
      unremovable.push({ node: name, reason: "NodeGroupMinSizeReached" });
      continue;
    }
    const moving = podsToMove(pods).filter((p) => !p.metadata.deletionTimestamp);
    const nodeBudget = new Map(budget);
    let blocked: string | undefined;
    for (const p of moving) {
      const r = blockingReason(p, pdbs, nodeBudget);
      if (r) {
        blocked = `${p.metadata.namespace}/${p.metadata.name}: ${r}`;
        break;
      }
    }
    if (blocked) {
      unremovable.push({ node: name, reason: "BlockedByPod", detail: blocked });
      continue;
    }
    const sim = snapshot.clone();
    sim.removeNode(name);
    let placedAll = true;
    for (const p of moving) {
      const pending = asPending(p);
      const dest = checker.fitsAny(sim, pending);
      if (!dest) {
        placedAll = false;
        break;
      }
      sim.addPod(dest, pending);
    }
    if (!placedAll) {
      unremovable.push({ node: name, reason: "NoPlaceToMovePods" });
      continue;
    }
    snapshot = sim;
    for (const [k, v] of nodeBudget) budget.set(k, v);
    removed.set(group.name, already + 1);
    unneeded.push({ node, group, pods: moving, utilization, ready });
  }
  return { unneeded, unremovable };
}

// ---- actuation ----

export interface DeleteDeps {
  client: Client;
  recorder: EventRecorder;
  clock: Clock;
  /** The node's current pods (from the informer). */
  podsOnNode(nodeName: string): readonly Readonly<Pod>[];
}

export interface DeleteOptions {
  /** Between eviction attempts of a pod the API refused (429). Default 5 s. */
  evictionRetryMs?: number;
  /** Give up draining after this long. Default 2 min. */
  maxDrainMs?: number;
  /** How often the node's pods are re-read while waiting for evicted ones to go. Default 1 s. */
  pollMs?: number;
}

export const DEFAULT_EVICTION_RETRY_MS = 5_000;
export const DEFAULT_MAX_DRAIN_MS = 120_000;
/** Upstream's --max-graceful-termination-sec default: the longest grace period an evicted pod gets. */
export const MAX_GRACEFUL_TERMINATION_S = 600;
/** Upstream's PodEvictionHeadroom: extra wait beyond the grace period for evicted pods to go. */
export const POD_EVICTION_HEADROOM_S = 30;

export interface DeleteResult {
  ok: boolean;
  error?: string;
}

function errMsg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function updateNodeTaints(client: Client, name: string, fn: (taints: Taint[]) => Taint[] | undefined): Promise<void> {
  const nodes = client.resource<Node>("", "nodes");
  for (let attempt = 1; ; attempt++) {
    const node = await nodes.get("", name);
    const next = fn([...(node.spec?.taints ?? [])]);
    if (!next) return;
    node.spec = { ...(node.spec ?? {}), taints: next };
    if (next.length === 0) delete node.spec.taints;
    try {
      await nodes.update(node);
      return;
    } catch (e) {
      if (isConflict(e) && attempt < 5) continue;
      throw e;
    }
  }
}

/** Adds ToBeDeletedByClusterAutoscaler=<unix seconds>:NoSchedule (upstream's MarkToBeDeleted). */
export async function markToBeDeleted(client: Client, name: string, nowMs: number): Promise<void> {
  await updateNodeTaints(client, name, (taints) =>
    taints.some((t) => t.key === TO_BE_DELETED_TAINT) ? undefined : [...taints, { key: TO_BE_DELETED_TAINT, value: String(Math.floor(nowMs / 1000)), effect: "NoSchedule" }],
  );
}

/** Removes the taint (upstream's CleanToBeDeleted). */
export async function cleanToBeDeleted(client: Client, name: string): Promise<void> {
  try {
    await updateNodeTaints(client, name, (taints) => (taints.some((t) => t.key === TO_BE_DELETED_TAINT) ? taints.filter((t) => t.key !== TO_BE_DELETED_TAINT) : undefined));
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
}

/** Evicts one pod until the API accepts (or the pod is gone) or `deadline`; false on timeout. */
async function evictWithRetry(ctx: Context, deps: DeleteDeps, pod: Readonly<Pod>, deadline: number, retryMs: number): Promise<boolean> {
  const ns = pod.metadata.namespace ?? "";
  const name = pod.metadata.name ?? "";
  deps.recorder.event(pod, "Normal", "ScaleDown", "deleting pod for node scale down");
  for (;;) {
    try {
      await deps.client.evict(ns, name, {
        gracePeriodSeconds: Math.min(pod.spec?.terminationGracePeriodSeconds ?? 30, MAX_GRACEFUL_TERMINATION_S),
        ...(pod.metadata.uid ? { preconditions: { uid: pod.metadata.uid } } : {}),
      });
      return true;
    } catch (e) {
      // Gone, or replaced by a pod of the same name (the UID precondition failed): nothing left to evict.
      if (isNotFound(e) || (isConflict(e) && /UID/.test(errMsg(e)))) return true;
      const code = isClientError(e) ? e.code : 0;
      ctx.log.info({ pod: `${ns}/${name}`, code, err: errMsg(e) }, code === 429 ? "eviction refused by a PodDisruptionBudget; retrying" : "eviction failed; retrying");
    }
    if (ctx.signal.aborted || deps.clock.now() + retryMs > deadline) return false;
    await deps.clock.sleep(retryMs, ctx.signal);
  }
}

/** Waits until the evicted pods are gone, or each has been terminating longer than its grace period; false on timeout. */
async function waitForPodsGone(ctx: Context, deps: DeleteDeps, node: string, pods: readonly Readonly<Pod>[], evictedAt: number, deadline: number, pollMs: number): Promise<boolean> {
  const uids = new Set(pods.map((p) => p.metadata.uid ?? `${p.metadata.namespace}/${p.metadata.name}`));
  for (;;) {
    const now = deps.clock.now();
    const left = deps.podsOnNode(node).filter((p) => uids.has(p.metadata.uid ?? `${p.metadata.namespace}/${p.metadata.name}`));
    const stuck = left.filter((p) => !(p.metadata.deletionTimestamp && now - evictedAt > ((p.spec?.terminationGracePeriodSeconds ?? 30) + 1) * 1000));
    if (stuck.length === 0) return true;
    if (ctx.signal.aborted || now + pollMs > deadline) return false;
    await deps.clock.sleep(pollMs, ctx.signal);
  }
}

/**
 * Deletes one node of a group: taint, drain (when it has pods), terminate the instance with
 * desiredCapacity−1 (never below minSize), delete the Node. On failure the taint is removed and a
 * ScaleDownFailed event recorded.
 */
export async function deleteNode(ctx: Context, deps: DeleteDeps, target: { node: Readonly<Node>; group: GroupInfo }, opts: DeleteOptions = {}): Promise<DeleteResult> {
  const name = target.node.metadata.name ?? "";
  const retryMs = opts.evictionRetryMs ?? DEFAULT_EVICTION_RETRY_MS;
  const pollMs = opts.pollMs ?? 1000;
  const started = deps.clock.now();
  const deadline = started + (opts.maxDrainMs ?? DEFAULT_MAX_DRAIN_MS);
  const fail = async (error: string): Promise<DeleteResult> => {
    ctx.log.warn({ node: name, err: error }, "scale-down failed");
    try {
      await cleanToBeDeleted(deps.client, name);
    } catch (e) {
      ctx.log.warn({ node: name, err: errMsg(e) }, "cannot remove the ToBeDeletedByClusterAutoscaler taint");
    }
    deps.recorder.event(target.node, "Warning", "ScaleDownFailed", error);
    return { ok: false, error };
  };
  // The group may have shrunk since the loop looked (a user, another deletion): check before disrupting anything.
  let precheck: string | undefined;
  try {
    await updateCloudGroup(deps.client, target.group.name, (cur) => {
      precheck = !cur
        ? `node group ${target.group.name} is gone`
        : !cur.instances.some((i) => i.name === name)
          ? `instance ${name} is not in ${target.group.name}`
          : cur.desiredCapacity - 1 < cur.minSize
            ? `node group ${target.group.name} min size reached (${cur.minSize})`
            : undefined;
      return undefined;
    });
  } catch (e) {
    precheck = `cannot read node group ${target.group.name}: ${errMsg(e)}`;
  }
  if (precheck) {
    ctx.log.info({ node: name, reason: precheck }, "scale-down skipped");
    return { ok: false, error: precheck };
  }
  try {
    await markToBeDeleted(deps.client, name, started);
  } catch (e) {
    if (isNotFound(e)) return { ok: false, error: `node ${name} is gone` };
    return fail(`failed to mark the node as toBeDeleted/unschedulable: ${errMsg(e)}`);
  }
  deps.recorder.event(target.node, "Normal", "ScaleDown", "marked the node as toBeDeleted/unschedulable");

  const pods = podsToMove(deps.podsOnNode(name));
  if (pods.length > 0) {
    const results = await Promise.all(pods.map((p) => evictWithRetry(ctx, deps, p, deadline, retryMs)));
    const failed = pods.filter((_, i) => !results[i]).map((p) => `${p.metadata.namespace}/${p.metadata.name}`);
    if (failed.length > 0) return fail(`failed to drain the node, aborting ScaleDown: failed to evict pods ${failed.join(", ")} within ${Math.round((deadline - started) / 1000)}s`);
    // Upstream waits up to the longest grace period plus PodEvictionHeadroom (30 s) for them to go.
    const evictedAt = deps.clock.now();
    const grace = Math.min(Math.max(...pods.map((p) => p.spec?.terminationGracePeriodSeconds ?? 30)), MAX_GRACEFUL_TERMINATION_S);
    if (!(await waitForPodsGone(ctx, deps, name, pods, evictedAt, evictedAt + (grace + POD_EVICTION_HEADROOM_S) * 1000, pollMs))) {
      return fail("failed to drain the node, aborting ScaleDown: evicted pods did not terminate in time");
    }
  }

  let refusal: string | undefined;
  try {
    await updateCloudGroup(deps.client, target.group.name, (cur) => {
      refusal = undefined;
      if (!cur) return (refusal = `node group ${target.group.name} is gone`), undefined;
      if (!cur.instances.some((i) => i.name === name)) return (refusal = `instance ${name} is not in ${target.group.name}`), undefined;
      if (cur.desiredCapacity - 1 < cur.minSize) return (refusal = `node group ${target.group.name} min size reached (${cur.minSize})`), undefined;
      return { ...cur, instances: cur.instances.filter((i) => i.name !== name), desiredCapacity: cur.desiredCapacity - 1 };
    });
  } catch (e) {
    return fail(`failed to delete the instance of node ${name}: ${errMsg(e)}`);
  }
  if (refusal) return fail(`failed to delete node ${name}: ${refusal}`);
  try {
    await deps.client.resource<Node>("", "nodes").delete("", name);
  } catch (e) {
    if (!isNotFound(e)) ctx.log.warn({ node: name, err: errMsg(e) }, "cannot delete the Node (the node group controller will)");
  }
  ctx.log.info({ node: name, group: target.group.name, pods: pods.length }, "scaled down: node removed");
  return { ok: true };
}
