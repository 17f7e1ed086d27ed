// The cluster autoscaler (upstream kubernetes/autoscaler cluster-autoscaler's StaticAutoscaler.RunOnce,
// simplified): every scan interval, one loop over informer caches — scale up node groups for pods
// kube-scheduler marked unschedulable (the least-waste group+zone whose template node passes the
// scheduler's Filter plugins), then find unneeded nodes and, after scale-down-unneeded-time and
// outside scale-down-delay-after-add, delete them through the simulated cloud's ConfigMaps
// (controllers/cloud/types.ts); finally the kube-system/cluster-autoscaler-status ConfigMap.

import type { Registry as MetricsRegistry } from "prom-client";
import type { ConfigMap, KubeObject, Node, PersistentVolume, PersistentVolumeClaim, Pod, PodDisruptionBudget, StorageClass } from "../../../api/index.ts";
import {
  newEventRecorder,
  newInformer,
  newSharedInformerFactory,
  realClock,
  type Client,
  type Clock,
  type Context,
  type EventRecorder,
  type Lister,
  type Logger,
} from "../../../client/index.ts";
import type { Handle } from "../../../scheduler/framework/types.ts";
import { updateCloudGroup } from "../cloudapi.ts";
import { CLOUD_LABEL, CLOUD_NAMESPACE, type Topology } from "../types.ts";
import { isBeingDeleted, isNodeReady, nodeGroups, type GroupInfo } from "./clusterstate.ts";
import { deleteNode, findUnneeded, type Candidate, type DeleteOptions } from "./scaledown.ts";
import { newAutoscalerMetrics, type AutoscalerMetrics } from "./metrics.ts";
import { addUpcomingNodes, filterOutSchedulable, isUnschedulablePod, planScaleUp, triggeredScaleUpMessage, type ScaleUpPlan } from "./scaleup.ts";
import { ClusterSnapshot, PredicateChecker } from "./simulator.ts";
import { StatusTracker, writeStatus, type StatusDocument } from "./status.ts";

export { TO_BE_DELETED_TAINT } from "./clusterstate.ts";
export { STATUS_CONFIGMAP, LAST_UPDATED_ANNOTATION } from "./status.ts";

export interface AutoscalerOptions {
  client: Client;
  topology: Topology;
  log: Logger;
  clock?: Clock;
  /** --scan-interval (default 10 s). */
  scanIntervalMs: number;
  /** --scale-down-unneeded-time (default 10 min). */
  scaleDownUnneededTimeMs: number;
  /** --scale-down-delay-after-add (default 10 min). */
  scaleDownDelayAfterAddMs: number;
  /** Default 0.5. */
  scaleDownUtilizationThreshold?: number;
  /** Default 15 min. */
  maxNodeProvisionTimeMs?: number;
  /** How long a NotReady node must be unneeded before it is removed (--scale-down-unready-time); default 20 min. */
  scaleDownUnreadyTimeMs?: number;
  /** Where upstream's cluster_autoscaler_* metrics register; none when absent. */
  metricsRegistry?: MetricsRegistry;
}

export const DEFAULT_SCALE_DOWN_UTILIZATION_THRESHOLD = 0.5;
export const DEFAULT_MAX_NODE_PROVISION_TIME_MS = 15 * 60_000;
export const DEFAULT_SCALE_DOWN_UNREADY_TIME_MS = 20 * 60_000;
/** Upstream's --scale-down-delay-after-failure default. */
export const SCALE_DOWN_DELAY_AFTER_FAILURE_MS = 3 * 60_000;
/** NotTriggerScaleUp is recorded at most this often per pod. */
export const NOT_TRIGGER_SCALE_UP_INTERVAL_MS = 60_000;
/** Upstream's node group backoff after a failed scale-up: 5 min, doubling to 30 min, forgotten after 3 h without failures. */
export const INITIAL_BACKOFF_MS = 5 * 60_000;
export const MAX_BACKOFF_MS = 30 * 60_000;
export const BACKOFF_RESET_MS = 3 * 3_600_000;
/** Upstream's --max-empty-bulk-delete default. */
export const MAX_EMPTY_BULK_DELETE = 10;

/** The caches one loop reads. */
export interface AutoscalerListers {
  pods: Lister<Pod>;
  nodes: Lister<Node>;
  pdbs: Lister<PodDisruptionBudget>;
  /** The node group ConfigMaps (kube-system, kubelab.io/cloud=nodegroup). */
  configMaps: Lister<ConfigMap>;
  pvcs?: Lister<PersistentVolumeClaim>;
  pvs?: Lister<PersistentVolume>;
  storageClasses?: Lister<StorageClass>;
}

/** What one loop did (for tests and logs). */
export interface LoopResult {
  scaleUp?: { group: string; from: number; to: number; pods: string[] };
  plan: ScaleUpPlan;
  unneeded: string[];
  /** Nodes whose deletion started this loop. */
  deleting: string[];
  status?: StatusDocument;
}

function podName(p: Readonly<KubeObject>): string {
  return `${p.metadata.namespace}/${p.metadata.name}`;
}

/**
 * The autoscaler's state across loops: unneeded-since per node, the last scale-up and scale-down
 * failure, the deletion under way (one drain at a time, running beside the loops), the status
 * conditions' transition times, and when each pod last got NotTriggerScaleUp.
 */
export class Autoscaler {
  private readonly clock: Clock;
  private readonly checker: PredicateChecker;
  private readonly status = new StatusTracker();
  private readonly unneededSince = new Map<string, number>();
  private readonly notTriggeredAt = new Map<string, number>();
  /** Node groups whose scale-up failed (instances never registered): no scale-up until `until`. */
  private readonly backoff = new Map<string, { until: number; durationMs: number; lastFailure: number; errorCode: string; errorMessage: string }>();
  private lastScaleUp = Number.NEGATIVE_INFINITY;
  private lastScaleDownFailure = Number.NEGATIVE_INFINITY;
  private inFlight: Promise<void> | undefined;
  private readonly threshold: number;
  private readonly maxProvisionMs: number;
  private readonly metrics: AutoscalerMetrics | undefined;

  constructor(
    private readonly opts: AutoscalerOptions,
    private readonly listers: AutoscalerListers,
    private readonly recorder: EventRecorder,
    private readonly deleteOptions: DeleteOptions = {},
  ) {
    this.clock = opts.clock ?? realClock;
    this.threshold = opts.scaleDownUtilizationThreshold ?? DEFAULT_SCALE_DOWN_UTILIZATION_THRESHOLD;
    this.maxProvisionMs = opts.maxNodeProvisionTimeMs ?? DEFAULT_MAX_NODE_PROVISION_TIME_MS;
    const { pvcs, pvs, storageClasses } = listers;
    const volumes: Handle["volumes"] = {
      pvc: (ns, name) => pvcs?.get(`${ns}/${name}`),
      pv: (name) => pvs?.get(name),
      storageClass: (name) => storageClasses?.get(name),
      listPVs: () => pvs?.list() ?? [],
    };
    this.checker = new PredicateChecker({ client: opts.client, volumes, recorder });
    this.metrics = opts.metricsRegistry && newAutoscalerMetrics(opts.metricsRegistry);
  }

  /** The deletion under way, if any (resolves when it has finished, successfully or not). */
  deletion(): Promise<void> | undefined {
    return this.inFlight;
  }

  /** One loop: scale up, scale down, status. */
  async runOnce(ctx: Context): Promise<LoopResult> {
    const now = this.clock.now();
    const nodes = this.listers.nodes.list();
    const nodeMap = new Map(nodes.map((n) => [n.metadata.name ?? "", n]));
    const groups = nodeGroups(this.listers.configMaps.list(), nodeMap, now, this.maxProvisionMs, ctx.log);
    const allPods = this.listers.pods.list();
    const podsByNode = new Map<string, Readonly<Pod>[]>();
    for (const p of allPods) {
      const n = p.spec?.nodeName;
      if (!n || p.status?.phase === "Succeeded" || p.status?.phase === "Failed") continue;
      podsByNode.set(n, [...(podsByNode.get(n) ?? []), p]);
    }
    // The scheduler's world: Ready nodes not being deleted, with their pods.
    const base = new ClusterSnapshot();
    for (const n of nodes) if (isNodeReady(n) && !isBeingDeleted(n)) base.addNode(n, podsByNode.get(n.metadata.name ?? "") ?? []);
    const pending = allPods.filter(isUnschedulablePod);
    for (const g of groups) if (g.counts.longUnregistered > 0) await this.removeOldUnregistered(ctx, g, nodeMap, now);

    // ---- scale-up ----
    const upSnap = base.clone();
    addUpcomingNodes(upSnap, groups, this.opts.topology.region);
    const { unschedulable } = filterOutSchedulable(upSnap, this.checker, pending);
    this.metrics?.lastActivity.set({ activity: "main" }, now / 1000);
    this.metrics?.unschedulablePods.set(unschedulable.length);
    this.metrics?.nodeGroupsCount.set({ node_group_type: "autoscaled" }, groups.length);
    const inBackoff = new Map([...this.backoff].filter(([, b]) => b.until > now).map(([name, b]) => [name, { errorCode: b.errorCode, errorMessage: b.errorMessage }]));
    const plan = planScaleUp({ groups, snapshot: upSnap, pending: unschedulable, checker: this.checker, region: this.opts.topology.region, backoff: new Set(inBackoff.keys()) });
    const result: LoopResult = { plan, unneeded: [], deleting: [] };
    if (plan.best) {
      const best = plan.best;
      try {
        let from = best.from;
        let to = best.to;
        let max = best.group.state.maxSize;
        const written = await updateCloudGroup(this.opts.client, best.group.name, (cur) => {
          if (!cur || cur.desiredCapacity >= cur.maxSize) return undefined;
          from = cur.desiredCapacity;
          to = Math.min(cur.desiredCapacity + best.nodeCount, cur.maxSize);
          max = cur.maxSize;
          return { ...cur, desiredCapacity: to };
        });
        if (written && written.desiredCapacity === to && to > from) {
          this.lastScaleUp = now;
          const message = triggeredScaleUpMessage([{ name: best.group.name, from, to, max }]);
          for (const p of best.pods) this.recorder.event(p, "Normal", "TriggeredScaleUp", message);
          result.scaleUp = { group: best.group.name, from, to, pods: best.pods.map(podName) };
          this.metrics?.scaledUpNodes.inc(to - from);
          this.metrics?.lastActivity.set({ activity: "scaleUp" }, now / 1000);
          // The status below shows the new target and the nodes now coming.
          best.group.state.desiredCapacity = to;
          best.group.upcoming += to - from;
          ctx.log.info({ group: best.group.name, from, to, pods: best.pods.length }, "scale-up: setting group size");
        }
      } catch (e) {
        ctx.log.error({ err: e, group: best.group.name }, "scale-up failed");
        this.metrics?.failedScaleUps.inc({ reason: "cloudProviderError" });
      }
    }
    const stillPending = new Set(pending.map((p) => p.metadata.uid ?? podName(p)));
    for (const k of this.notTriggeredAt.keys()) if (!stillPending.has(k)) this.notTriggeredAt.delete(k);
    // As upstream's EventingScaleUpStatusProcessor: no NotTriggerScaleUp in a loop that attempted a scale-up.
    for (const { pod, message } of plan.best ? [] : plan.noScaleUp) {
      const key = pod.metadata.uid ?? podName(pod);
      const last = this.notTriggeredAt.get(key);
      if (last !== undefined && now - last < NOT_TRIGGER_SCALE_UP_INTERVAL_MS) continue;
      this.notTriggeredAt.set(key, now);
      this.recorder.event(pod, "Normal", "NotTriggerScaleUp", message);
    }

    // ---- scale-down ----
    // Unneeded nodes are tracked every loop; none is deleted in a loop that scaled up (as upstream).
    const candidates = new Map<string, number>();
    {
      const downSnap = base.clone();
      // Pending pods that fit existing nodes will land there: the capacity they take is not free.
      filterOutSchedulable(downSnap, this.checker, pending.filter((p) => !unschedulable.includes(p)));
      const { unneeded, unremovable } = findUnneeded({
        groups,
        nodes,
        podsByNode,
        pdbs: this.listers.pdbs.list(),
        snapshot: downSnap,
        checker: this.checker,
        threshold: this.threshold,
        now,
        maxNodeProvisionTimeMs: this.maxProvisionMs,
      });
      const names = new Set(unneeded.map((c) => c.node.metadata.name ?? ""));
      for (const k of this.unneededSince.keys()) if (!names.has(k)) this.unneededSince.delete(k);
      for (const c of unneeded) {
        const name = c.node.metadata.name ?? "";
        if (!this.unneededSince.has(name)) this.unneededSince.set(name, now);
        candidates.set(c.group.name, (candidates.get(c.group.name) ?? 0) + 1);
      }
      result.unneeded = [...names];
      this.metrics?.unneededNodes.set(names.size);
      if (unremovable.length) ctx.log.debug({ unremovable }, "nodes not removable");
      result.deleting = result.scaleUp ? [] : this.startDeletion(ctx, unneeded, now);
    }

    // ---- status ----
    const doc = this.status.build({ now, groups, nodes, candidates, backoff: inBackoff });
    result.status = doc;
    if (this.metrics) {
      const c = doc.clusterWide.health.nodeCounts;
      this.metrics.nodesCount.set({ state: "ready" }, c.registered.ready);
      this.metrics.nodesCount.set({ state: "unready" }, c.registered.unready.total);
      this.metrics.nodesCount.set({ state: "notStarted" }, c.registered.notStarted);
      this.metrics.nodesCount.set({ state: "longUnregistered" }, c.longUnregistered);
      this.metrics.nodesCount.set({ state: "unregistered" }, c.unregistered);
      this.metrics.safeToAutoscale.set(doc.clusterWide.health.status === "Healthy" ? 1 : 0);
    }
    if (this.status.shouldWrite(doc, now)) {
      try {
        await writeStatus(this.opts.client, doc);
        this.status.written(doc, now);
      } catch (e) {
        ctx.log.warn({ err: e }, "cannot write the cluster-autoscaler-status ConfigMap");
      }
    }
    return result;
  }

  /**
   * Upstream's RemoveOldUnregisteredNodes: instances that got no Node within max-node-provision-time
   * are terminated (desiredCapacity decremented with them, never below minSize), so the group can be
   * scaled again instead of waiting for them forever.
   */
  private async removeOldUnregistered(ctx: Context, g: GroupInfo, nodes: ReadonlyMap<string, Readonly<Node>>, now: number): Promise<void> {
    const stale = (i: { name: string; launchTime: string }) => !nodes.has(i.name) && now - Date.parse(i.launchTime) > this.maxProvisionMs;
    let removed: string[] = [];
    try {
      const written = await updateCloudGroup(this.opts.client, g.name, (cur) => {
        removed = [];
        if (!cur) return undefined;
        const n = Math.min(cur.instances.filter(stale).length, cur.desiredCapacity - cur.minSize);
        if (n <= 0) return undefined;
        removed = cur.instances.filter(stale).slice(0, n).map((i) => i.name);
        return { ...cur, instances: cur.instances.filter((i) => !removed.includes(i.name)), desiredCapacity: cur.desiredCapacity - n };
      });
      if (!written || removed.length === 0) return;
      ctx.log.warn({ group: g.name, instances: removed, maxNodeProvisionTimeMs: this.maxProvisionMs }, "removing instances that never registered a Node; backing off the group");
      g.state = written;
      g.counts.longUnregistered -= removed.length;
      this.backOff(g.name, now, "timeout", `Scale-up timed out for node group ${g.name} after ${Math.round(this.maxProvisionMs / 60_000)}m`);
      this.metrics?.failedScaleUps.inc({ reason: "timeout" });
    } catch (e) {
      ctx.log.error({ err: e, group: g.name }, "cannot remove unregistered instances");
    }
  }

  /** Puts a group in exponential backoff (upstream's ExponentialBackoff for node groups). */
  private backOff(group: string, now: number, errorCode: string, errorMessage: string): void {
    const prev = this.backoff.get(group);
    const durationMs = prev && now - prev.lastFailure < BACKOFF_RESET_MS ? Math.min(prev.durationMs * 2, MAX_BACKOFF_MS) : INITIAL_BACKOFF_MS;
    this.backoff.set(group, { until: now + durationMs, durationMs, lastFailure: now, errorCode, errorMessage });
  }

  /** Starts deleting the nodes unneeded long enough (empty ones in bulk, at most one to drain) unless in cooldown. */
  private startDeletion(ctx: Context, unneeded: readonly Candidate[], now: number): string[] {
    if (this.inFlight) return [];
    if (now - this.lastScaleUp < this.opts.scaleDownDelayAfterAddMs) return [];
    if (now - this.lastScaleDownFailure < SCALE_DOWN_DELAY_AFTER_FAILURE_MS) return [];
    const unreadyTime = this.opts.scaleDownUnreadyTimeMs ?? DEFAULT_SCALE_DOWN_UNREADY_TIME_MS;
    const ready = unneeded.filter((c) => now - (this.unneededSince.get(c.node.metadata.name ?? "") ?? now) >= (c.ready ? this.opts.scaleDownUnneededTimeMs : unreadyTime));
    const empty = ready.filter((c) => c.pods.length === 0).slice(0, MAX_EMPTY_BULK_DELETE);
    const drain = empty.length === 0 ? ready.filter((c) => c.pods.length > 0).slice(0, 1) : [];
    const targets = [...empty, ...drain];
    if (targets.length === 0) return [];
    const deps = {
      client: this.opts.client,
      recorder: this.recorder,
      clock: this.clock,
      podsOnNode: (name: string) => this.listers.pods.byIndex("spec.nodeName", name),
    };
    const run = async (): Promise<void> => {
      const results = await Promise.all(
        targets.map(async (c) => {
          const name = c.node.metadata.name ?? "";
          ctx.log.info({ node: name, group: c.group.name, pods: c.pods.length, unneededForMs: now - (this.unneededSince.get(name) ?? now) }, "scale-down: removing node");
          const r = await deleteNode(ctx, deps, { node: c.node, group: c.group }, this.deleteOptions);
          this.unneededSince.delete(name);
          if (r.ok) {
            this.metrics?.scaledDownNodes.inc({ reason: c.pods.length === 0 ? "empty" : "underutilized" });
            this.metrics?.lastActivity.set({ activity: "scaleDown" }, this.clock.now() / 1000);
          }
          return r;
        }),
      );
      if (results.some((r) => !r.ok)) this.lastScaleDownFailure = this.clock.now();
    };
    this.inFlight = run()
      .catch((e: unknown) => {
        ctx.log.error({ err: e }, "scale-down failed");
        this.lastScaleDownFailure = this.clock.now();
      })
      .finally(() => {
        this.inFlight = undefined;
      });
    return targets.map((c) => c.node.metadata.name ?? "");
  }
}

/** Runs the autoscaler until ctx aborts: informers, then one loop every scan interval. */
export async function runAutoscaler(ctx: Context, opts: AutoscalerOptions): Promise<void> {
  const clock = opts.clock ?? realClock;
  const log = opts.log;
  const factory = newSharedInformerFactory(opts.client, { clock, log });
  const pods = factory.informer<Pod>("", "pods");
  const nodes = factory.informer<Node>("", "nodes");
  const pdbs = factory.informer<PodDisruptionBudget>("policy", "poddisruptionbudgets");
  const pvcs = factory.informer<PersistentVolumeClaim>("", "persistentvolumeclaims");
  const pvs = factory.informer<PersistentVolume>("", "persistentvolumes");
  const storageClasses = factory.informer<StorageClass>("storage.k8s.io", "storageclasses");
  const cms = newInformer<ConfigMap>(opts.client, "", "configmaps", { namespace: CLOUD_NAMESPACE, labelSelector: `${CLOUD_LABEL}=nodegroup`, clock, log });
  const ictx: Context = { signal: ctx.signal, log };
  factory.start(ictx);
  const cmsDone = cms.run(ictx).catch((e: unknown) => log.error({ err: e }, "node group ConfigMap informer stopped"));
  try {
    await Promise.all([factory.waitForCacheSync(ctx.signal), cms.waitForSync(ctx.signal)]);
  } catch (e) {
    // Aborted before the caches filled (lost the lease, shutting down): not a failure.
    if (!ctx.signal.aborted) throw e;
  }
  if (ctx.signal.aborted) {
    await cmsDone;
    return;
  }
  const recorder = newEventRecorder(opts.client, { component: "cluster-autoscaler", clock, log });
  const autoscaler = new Autoscaler(
    opts,
    { pods: pods.lister, nodes: nodes.lister, pdbs: pdbs.lister, configMaps: cms.lister, pvcs: pvcs.lister, pvs: pvs.lister, storageClasses: storageClasses.lister },
    recorder,
  );
  log.info({ scanIntervalMs: opts.scanIntervalMs, scaleDownUnneededTimeMs: opts.scaleDownUnneededTimeMs, scaleDownDelayAfterAddMs: opts.scaleDownDelayAfterAddMs }, "cluster autoscaler running");
  while (!ctx.signal.aborted) {
    try {
      await autoscaler.runOnce(ctx);
    } catch (e) {
      log.error({ err: e }, "autoscaler loop failed");
    }
    await clock.sleep(opts.scanIntervalMs, ctx.signal);
  }
  await autoscaler.deletion();
  await cmsDone;
}
