// The node lifecycle controller (pkg/controller/nodelifecycle): watches node heartbeats (the Ready
// condition and the node's Lease in kube-node-lease), marks silent nodes Unknown and their pods not
// ready, keeps the condition taints in step with the node's conditions (NoSchedule at once, NoExecute
// through a per-zone rate-limited queue), and slows or stops that tainting when a zone — or the whole
// cluster — looks disrupted rather than a few nodes broken.

import { NamespaceNodeLease, type Lease, type Node, type NodeCondition, type NodeStatus, type Pod, type Taint } from "../../api/index.ts";
import {
  INDEX_NODE_NAME,
  isNotFound,
  type Client,
  type Clock,
  type Context,
  type EventRecorder,
  type Lister,
  type ObjectKey,
  type ReconcileContext,
  type Reconciler,
  type Result,
} from "../../client/index.ts";
import type { ControllerManagerConfig } from "../env.ts";
import { deepCopy } from "../podcontrol.ts";
import { RateLimitedTimedQueue, type TimedValue } from "./ratelimited.ts";
import {
  ConditionTaintKeys,
  getNodeCondition,
  getZoneKey,
  LabelNodeExcludeDisruption,
  markPodsNotReady,
  microTimeOf,
  NodeConditionToTaintKey,
  NotReadyTaintTemplate,
  removeTaintOffNode,
  rfc3339,
  swapNodeControllerTaint,
  taintExists,
  TaintNodeUnschedulable,
  UnreachableTaintTemplate,
} from "./util.ts";

/** How often the NoExecute tainting queues are drained (scheduler.NodeEvictionPeriod). */
export const NodeEvictionPeriodMs = 100;
/** Attempts at updating one node's health in a pass (scheduler.NodeHealthUpdateRetry). */
const NodeHealthUpdateRetry = 5;
/** Nodes whose health is checked concurrently in one pass. */
const MonitorConcurrency = 16;

export type ZoneState = "Initial" | "Normal" | "PartialDisruption" | "FullDisruption";

/** The conditions a silent node's kubelet owns, set to Unknown by the controller. */
const KubeletConditionTypes = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] as const;

/** What the controller last saw of a node, with times on the controller's own clock. */
interface NodeHealthData {
  /** When the controller last observed a new heartbeat (condition or lease). */
  probeTimestamp: number;
  /** When the controller observed the Ready condition's last transition. */
  readyTransitionTimestamp: number;
  status: Readonly<NodeStatus> | undefined;
  lease?: Readonly<Lease>;
}

interface HealthResult {
  gracePeriodMs: number;
  /** The Ready condition as the node had it (a made-up Unknown one when it has none). */
  observed: NodeCondition;
  /** The Ready condition after this pass (Unknown when the controller just marked it so). */
  current: NodeCondition | undefined;
}

/**
 * ComputeZoneState: a zone with no Ready node is fully disrupted; one where at least 3 nodes and
 * at least `unhealthyZoneThreshold` of them are not Ready is partially disrupted. Returns the
 * number of not-Ready nodes and the state.
 */
export function computeZoneState(readyConditions: readonly (NodeCondition | undefined)[], unhealthyZoneThreshold: number): [number, ZoneState] {
  let ready = 0;
  let notReady = 0;
  for (const c of readyConditions) {
    if (c?.status === "True") ready++;
    else notReady++;
  }
  if (ready === 0 && notReady > 0) return [notReady, "FullDisruption"];
  if (notReady > 2 && notReady / (notReady + ready) >= unhealthyZoneThreshold) return [notReady, "PartialDisruption"];
  return [notReady, "Normal"];
}

export interface NodeLifecycleControllerDeps {
  client: Client;
  nodes: Lister<Node>;
  /** Leases of every namespace; only kube-node-lease's are read. */
  leases: Lister<Lease>;
  pods: Lister<Pod>;
  recorder: EventRecorder;
  clock: Clock;
  config: ControllerManagerConfig;
}

/**
 * The reconciler half handles node keys (the NoSchedule condition taints, doNoScheduleTaintingPass);
 * `monitorNodeHealth` and `doNoExecuteTaintingPass` are the two periodic loops `run` drives.
 */
export class NodeLifecycleController implements Reconciler {
  private readonly health = new Map<string, NodeHealthData>();
  private readonly knownNodes = new Map<string, Readonly<Node>>();
  private readonly nodesToRetry = new Set<string>();
  readonly zoneStates = new Map<string, ZoneState>();
  readonly zoneTainters = new Map<string, RateLimitedTimedQueue>();
  private tainting = false;

  constructor(private readonly deps: NodeLifecycleControllerDeps) {}

  private now(): number {
    return this.deps.clock.now();
  }

  // ---- NoSchedule condition taints (key: node name) --------------------------------------------

  /** doNoScheduleTaintingPass: the node's condition and unschedulable NoSchedule taints match its status and spec. */
  async reconcile(ctx: ReconcileContext, key: ObjectKey): Promise<Result> {
    const node = this.deps.nodes.get(key);
    if (!node) return {};
    const want: Taint[] = [];
    for (const c of node.status?.conditions ?? []) {
      const taintKey = NodeConditionToTaintKey[c.type]?.[c.status];
      if (taintKey) want.push({ key: taintKey, effect: "NoSchedule" });
    }
    if (node.spec?.unschedulable) want.push({ key: TaintNodeUnschedulable, effect: "NoSchedule" });
    const have = (node.spec?.taints ?? []).filter((t) => t.effect === "NoSchedule" && (t.key === TaintNodeUnschedulable || ConditionTaintKeys.has(t.key)));
    const add = want.filter((t) => !taintExists(have, t));
    const remove = have.filter((t) => !taintExists(want, t));
    if (add.length === 0 && remove.length === 0) return {};
    if (!(await swapNodeControllerTaint(ctx, this.deps.client, add, remove, node, this.now()))) {
      throw new Error(`failed to swap taints of node ${key}`);
    }
    return {};
  }

  // ---- pods landing on a not-ready node (key: pod namespace/name) ------------------------------

  /** processPod: a pod (newly) bound to a node the controller sees as not Ready is marked not ready too. */
  async processPod(ctx: Context, key: ObjectKey): Promise<void> {
    const pod = this.deps.pods.get(key);
    const nodeName = pod?.spec?.nodeName;
    if (!pod || !nodeName) return;
    const health = this.health.get(nodeName);
    if (!health || !this.deps.nodes.get(nodeName)) return;
    const ready = getNodeCondition(health.status, "Ready");
    if (!ready || ready.status === "True") return;
    await markPodsNotReady(ctx, this.deps.client, this.deps.recorder, [pod], nodeName, this.now());
  }

  // ---- health monitoring ------------------------------------------------------------------------

  /**
   * One pass of monitorNodeHealth: notice added and deleted nodes, update each node's health
   * (Unknown after the grace period), queue or clear its NoExecute taint, mark its pods not ready
   * when it just stopped being Ready, then adjust the zones' tainting rates.
   */
  async monitorNodeHealth(ctx: Context): Promise<void> {
    const nodes = this.deps.nodes.list();
    const seen = new Set<string>();
    for (const node of nodes) {
      const name = node.metadata.name ?? "";
      seen.add(name);
      if (this.knownNodes.has(name)) continue;
      ctx.log.info({ node: name }, "controller observed a new node");
      this.deps.recorder.event(node, "Normal", "RegisteredNode", `Registered Node ${name} in Controller`);
      this.knownNodes.set(name, node);
      this.addZoneTainterForNode(node);
      await this.markNodeAsReachable(ctx, node);
    }
    for (const [name, node] of this.knownNodes) {
      if (seen.has(name)) continue;
      ctx.log.info({ node: name }, "controller observed a node deletion");
      this.deps.recorder.event(node, "Normal", "RemovingNode", `Removing Node ${name} from Controller`);
      this.knownNodes.delete(name);
      this.health.delete(name);
      this.nodesToRetry.delete(name);
      this.zoneTainters.get(getZoneKey(node))?.remove(name);
    }

    const zoneConditions = new Map<string, (NodeCondition | undefined)[]>();
    await parallelize(nodes, MonitorConcurrency, async (cached) => {
      let node: Readonly<Node> = cached;
      let result: HealthResult | undefined;
      for (let attempt = 1; attempt <= NodeHealthUpdateRetry && !result; attempt++) {
        try {
          result = await this.tryUpdateNodeHealth(ctx, node);
        } catch (e) {
          ctx.log.warn({ err: e, node: node.metadata.name }, "failed to update node health; re-reading the node");
          try {
            node = await this.deps.client.resource<Node>("", "nodes").get("", cached.metadata.name ?? "");
          } catch (ge) {
            if (!isNotFound(ge)) ctx.log.error({ err: ge, node: cached.metadata.name }, "failed to get node");
            return;
          }
        }
      }
      if (!result) {
        ctx.log.error({ node: node.metadata.name }, "update health of node failed, skipping it in this pass");
        return;
      }
      const name = node.metadata.name ?? "";
      if (!(LabelNodeExcludeDisruption in (node.metadata.labels ?? {}))) {
        const zone = getZoneKey(node);
        let list = zoneConditions.get(zone);
        if (!list) zoneConditions.set(zone, (list = []));
        list.push(result.current);
      }
      if (result.current) {
        const pods = this.deps.pods.byIndex(INDEX_NODE_NAME, name);
        await this.processTaintBasedEviction(ctx, node, result.observed);
        const justFailed = result.current.status !== "True" && result.observed.status === "True";
        if (justFailed) this.deps.recorder.event(node, "Normal", "NodeNotReady", `Node ${name} status is now: NodeNotReady`);
        if (justFailed || (this.nodesToRetry.has(name) && result.observed.status !== "True")) {
          try {
            await markPodsNotReady(ctx, this.deps.client, this.deps.recorder, pods, name, this.now());
          } catch (e) {
            ctx.log.error({ err: e, node: name }, "unable to mark all pods NotReady on node; queuing for retry");
            this.nodesToRetry.add(name);
            return;
          }
        }
      }
      this.nodesToRetry.delete(name);
    });
    await this.handleDisruption(ctx, zoneConditions, nodes);
  }

  /**
   * tryUpdateNodeHealth: refreshes the node's probe timestamp when its Ready condition's heartbeat
   * or its Lease's renewTime moved (as observed now, not by the kubelet's clock), and once the
   * grace period has passed without either, sets its kubelet conditions to Unknown (PUT status
   * with the cached resourceVersion: a conflict is thrown, and the caller re-reads the node).
   */
  private async tryUpdateNodeHealth(ctx: Context, cached: Readonly<Node>): Promise<HealthResult> {
    const name = cached.metadata.name ?? "";
    const now = this.now();
    const created = Date.parse(cached.metadata.creationTimestamp ?? "") || now;
    let health = this.health.get(name);
    const currentReady = getNodeCondition(cached.status, "Ready");
    let observed: NodeCondition;
    let gracePeriodMs: number;
    if (!currentReady) {
      // The kubelet never posted status: treat it as Unknown since creation, with the startup grace.
      observed = { type: "Ready", status: "Unknown", lastHeartbeatTime: cached.metadata.creationTimestamp, lastTransitionTime: cached.metadata.creationTimestamp };
      gracePeriodMs = this.deps.config.nodeStartupGracePeriodMs;
      health = health ? { ...health, status: cached.status } : { status: cached.status, probeTimestamp: created, readyTransitionTimestamp: created };
    } else {
      observed = { ...currentReady };
      gracePeriodMs = this.deps.config.nodeMonitorGracePeriodMs;
    }
    const savedReady = health ? getNodeCondition(health.status, "Ready") : undefined;
    const savedLease = health?.lease;
    if (!health) {
      // First sight of the node (e.g. the controller just started): it gets a full grace period.
      health = { status: cached.status, probeTimestamp: now, readyTransitionTimestamp: now };
    } else if (!savedReady && currentReady) {
      health = { status: cached.status, probeTimestamp: now, readyTransitionTimestamp: now };
    } else if (savedReady && !currentReady) {
      ctx.log.error({ node: name }, "ReadyCondition was removed from status of node");
      health = { status: cached.status, probeTimestamp: now, readyTransitionTimestamp: now };
    } else if (savedReady && currentReady && savedReady.lastHeartbeatTime !== currentReady.lastHeartbeatTime) {
      const transition = savedReady.lastTransitionTime !== currentReady.lastTransitionTime ? now : health.readyTransitionTimestamp;
      health = { status: cached.status, probeTimestamp: now, readyTransitionTimestamp: transition };
    }
    // A renewed lease is a heartbeat too (a kubelet renewing its lease but never posting status is healthy).
    const lease = this.deps.leases.get(`${NamespaceNodeLease}/${name}`);
    if (lease && (!savedLease || microTimeOf(savedLease.spec?.renewTime) < microTimeOf(lease.spec?.renewTime))) {
      health = { ...health, lease, probeTimestamp: now };
    } else if (savedLease) {
      health = { ...health, lease: savedLease };
    }
    this.health.set(name, health);

    if (now <= health.probeTimestamp + gracePeriodMs) return { gracePeriodMs, observed, current: currentReady };

    const node = deepCopy(cached) as Node;
    const status = (node.status ??= {});
    const conditions = (status.conditions ??= []);
    for (const type of KubeletConditionTypes) {
      const c = conditions.find((x) => x.type === type);
      if (!c) {
        conditions.push({
          type,
          status: "Unknown",
          reason: "NodeStatusNeverUpdated",
          message: "Kubelet never posted node status.",
          lastHeartbeatTime: node.metadata.creationTimestamp,
          lastTransitionTime: rfc3339(now),
        });
      } else if (c.status !== "Unknown") {
        c.status = "Unknown";
        c.reason = "NodeStatusUnknown";
        c.message = "Kubelet stopped posting node status.";
        c.lastTransitionTime = rfc3339(now);
      }
    }
    const current = getNodeCondition(status, "Ready");
    if (!sameCondition(current, observed)) {
      ctx.log.info({ node: name, sinceProbeMs: now - health.probeTimestamp }, "node stopped posting status; marking its conditions Unknown");
      await this.deps.client.resource<Node>("", "nodes").updateStatus(node);
      this.health.set(name, { status, probeTimestamp: health.probeTimestamp, readyTransitionTimestamp: now, lease: health.lease });
    }
    return { gracePeriodMs, observed, current };
  }

  /** processTaintBaseEviction: queue the NoExecute taint matching the observed Ready status, or clear it. */
  private async processTaintBasedEviction(ctx: Context, node: Readonly<Node>, observed: NodeCondition): Promise<void> {
    const taints = node.spec?.taints;
    switch (observed.status) {
      case "False":
        // Already unreachable: switch to not-ready at once rather than waiting for the rate limiter.
        if (taintExists(taints, UnreachableTaintTemplate)) {
          if (!(await swapNodeControllerTaint(ctx, this.deps.client, [NotReadyTaintTemplate], [UnreachableTaintTemplate], node, this.now()))) {
            ctx.log.error({ node: node.metadata.name }, "failed to instantly swap UnreachableTaint to NotReadyTaint; will try again in the next cycle");
          }
        } else if (this.markNodeForTainting(node, "False")) {
          ctx.log.info({ node: node.metadata.name }, "node is NotReady; adding it to the taint queue");
        }
        break;
      case "Unknown":
        if (taintExists(taints, NotReadyTaintTemplate)) {
          if (!(await swapNodeControllerTaint(ctx, this.deps.client, [UnreachableTaintTemplate], [NotReadyTaintTemplate], node, this.now()))) {
            ctx.log.error({ node: node.metadata.name }, "failed to instantly swap NotReadyTaint to UnreachableTaint; will try again in the next cycle");
          }
        } else if (this.markNodeForTainting(node, "Unknown")) {
          ctx.log.info({ node: node.metadata.name }, "node is unresponsive; adding it to the taint queue");
        }
        break;
      case "True":
        if (await this.markNodeAsReachable(ctx, node)) ctx.log.info({ node: node.metadata.name }, "node is healthy again, removed all taints");
        break;
    }
  }

  /** Queues the node for its NoExecute taint; a node whose taint went missing may be queued again. */
  private markNodeForTainting(node: Readonly<Node>, status: "False" | "Unknown"): boolean {
    const queue = this.addZoneTainterForNode(node);
    const name = node.metadata.name ?? "";
    const template = status === "False" ? NotReadyTaintTemplate : UnreachableTaintTemplate;
    if (!taintExists(node.spec?.taints, template)) queue.remove(name);
    return queue.add(name, node.metadata.uid ?? "");
  }

  /** Removes both NoExecute condition taints and forgets the node in its zone's queue; true when it was queued. */
  private async markNodeAsReachable(ctx: Context, node: Readonly<Node>): Promise<boolean> {
    if (!(await removeTaintOffNode(ctx, this.deps.client, node, this.now(), UnreachableTaintTemplate, NotReadyTaintTemplate))) {
      ctx.log.error({ node: node.metadata.name }, "failed to remove NoExecute taints from node");
    }
    return this.addZoneTainterForNode(node).remove(node.metadata.name ?? "");
  }

  private addZoneTainterForNode(node: Readonly<Node>): RateLimitedTimedQueue {
    const zone = getZoneKey(node);
    let q = this.zoneTainters.get(zone);
    if (!q) {
      this.zoneStates.set(zone, "Initial");
      this.zoneTainters.set(zone, (q = new RateLimitedTimedQueue(this.deps.config.nodeEvictionRate, this.deps.clock)));
    }
    return q;
  }

  // ---- disruption handling ---------------------------------------------------------------------

  /**
   * handleDisruption: a zone's tainting rate follows its state — Normal at --node-eviction-rate,
   * PartialDisruption at the secondary rate in large zones and not at all in small ones,
   * FullDisruption at the normal rate (the zone's nodes are probably really gone) — unless every
   * zone is fully disrupted: then the control plane is more likely cut off than every node dead,
   * so all NoExecute taints are removed and tainting stops until some node is Ready again.
   */
  async handleDisruption(ctx: Context, zoneConditions: ReadonlyMap<string, readonly (NodeCondition | undefined)[]>, nodes: readonly Readonly<Node>[]): Promise<void> {
    const newStates = new Map<string, ZoneState>();
    let allAreFullyDisrupted = true;
    for (const [zone, conds] of zoneConditions) {
      const [, state] = computeZoneState(conds, this.deps.config.unhealthyZoneThreshold);
      if (state !== "FullDisruption") allAreFullyDisrupted = false;
      newStates.set(zone, state);
      if (!this.zoneStates.has(zone)) this.zoneStates.set(zone, "Initial");
    }
    let allWasFullyDisrupted = true;
    for (const [zone, state] of [...this.zoneStates]) {
      if (!zoneConditions.has(zone)) {
        this.zoneStates.delete(zone);
        continue;
      }
      if (state !== "FullDisruption") {
        allWasFullyDisrupted = false;
        break;
      }
    }
    if (allAreFullyDisrupted && allWasFullyDisrupted) return;
    if (allAreFullyDisrupted) {
      ctx.log.info("controller detected that all nodes are not-Ready; entering master disruption mode");
      for (const node of nodes) await this.markNodeAsReachable(ctx, node);
      for (const zone of this.zoneStates.keys()) this.zoneTainters.get(zone)?.swapLimiter(0);
      for (const zone of this.zoneStates.keys()) this.zoneStates.set(zone, "FullDisruption");
      return;
    }
    if (allWasFullyDisrupted) {
      ctx.log.info("controller detected that some nodes are Ready; exiting master disruption mode");
      // Every node gets a fresh grace period: their heartbeats may have been lost on our side.
      const now = this.now();
      for (const node of nodes) {
        const h = this.health.get(node.metadata.name ?? "");
        if (h) this.health.set(node.metadata.name ?? "", { ...h, probeTimestamp: now, readyTransitionTimestamp: now });
      }
      for (const zone of this.zoneStates.keys()) {
        const state = newStates.get(zone) ?? "Normal";
        this.setLimiterInZone(zone, zoneConditions.get(zone)?.length ?? 0, state);
        this.zoneStates.set(zone, state);
      }
      return;
    }
    for (const [zone, state] of [...this.zoneStates]) {
      const next = newStates.get(zone) ?? "Normal";
      if (state === next) continue;
      ctx.log.info({ zone, state: next }, "controller detected that zone is now in new state");
      this.setLimiterInZone(zone, zoneConditions.get(zone)?.length ?? 0, next);
      this.zoneStates.set(zone, next);
    }
  }

  private setLimiterInZone(zone: string, zoneSize: number, state: ZoneState): void {
    const q = this.zoneTainters.get(zone);
    if (!q) return;
    const c = this.deps.config;
    switch (state) {
      case "Normal":
      case "FullDisruption":
        q.swapLimiter(c.nodeEvictionRate);
        break;
      case "PartialDisruption":
        q.swapLimiter(zoneSize > c.largeClusterSizeThreshold ? c.secondaryNodeEvictionRate : 0);
        break;
      case "Initial":
        break;
    }
  }

  // ---- NoExecute tainting ----------------------------------------------------------------------

  /** doNoExecuteTaintingPass: each zone's queue, at its rate, gets the NoExecute taint matching the node's Ready status. */
  async doNoExecuteTaintingPass(ctx: Context): Promise<void> {
    if (this.tainting) return;
    this.tainting = true;
    try {
      for (const queue of [...this.zoneTainters.values()]) {
        await queue.tryProcess((v) => this.taintQueuedNode(ctx, v));
      }
    } finally {
      this.tainting = false;
    }
  }

  private async taintQueuedNode(ctx: Context, v: TimedValue): Promise<[boolean, number]> {
    const node = this.deps.nodes.get(v.value);
    if (!node) {
      ctx.log.info({ node: v.value }, "node no longer present in the lister");
      return [true, 0];
    }
    const ready = getNodeCondition(node.status, "Ready");
    if (!ready) return [false, 50];
    let add: Readonly<Taint>;
    let opposite: Readonly<Taint>;
    if (ready.status === "False") [add, opposite] = [NotReadyTaintTemplate, UnreachableTaintTemplate];
    else if (ready.status === "Unknown") [add, opposite] = [UnreachableTaintTemplate, NotReadyTaintTemplate];
    else return [true, 0]; // Ready again: nothing to taint
    return [await swapNodeControllerTaint(ctx, this.deps.client, [add], [opposite], node, this.now()), 0];
  }

  /** Runs both periodic loops until ctx aborts (wait.UntilWithContext: the next pass starts a period after the last one ended). */
  async runLoops(ctx: Context): Promise<void> {
    const loop = async (periodMs: number, fn: () => Promise<void>, what: string): Promise<void> => {
      while (!ctx.signal.aborted) {
        try {
          await fn();
        } catch (e) {
          ctx.log.error({ err: e }, `${what} failed`);
        }
        await this.deps.clock.sleep(periodMs, ctx.signal);
      }
    };
    await Promise.all([
      loop(this.deps.config.nodeMonitorPeriodMs, () => this.monitorNodeHealth(ctx), "monitoring node health"),
      loop(NodeEvictionPeriodMs, () => this.doNoExecuteTaintingPass(ctx), "NoExecute tainting pass"),
    ]);
  }
}

function sameCondition(a: NodeCondition | undefined, b: NodeCondition | undefined): boolean {
  if (!a || !b) return a === b;
  return (
    a.type === b.type &&
    a.status === b.status &&
    (a.reason ?? "") === (b.reason ?? "") &&
    (a.message ?? "") === (b.message ?? "") &&
    (a.lastHeartbeatTime ?? "") === (b.lastHeartbeatTime ?? "") &&
    (a.lastTransitionTime ?? "") === (b.lastTransitionTime ?? "")
  );
}

/** Runs fn over items with at most n in flight (workqueue.ParallelizeUntil). */
async function parallelize<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}
