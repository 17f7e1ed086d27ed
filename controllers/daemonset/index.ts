// The DaemonSet controller (pkg/controller/daemon): one daemon pod on every node that should run it.
// Each pod is created with a required node affinity naming its node, so the scheduler places it;
// pods leave nodes that stop qualifying; RollingUpdate replaces old pods within maxUnavailable (or
// surges up to maxSurge), OnDelete waits for the user; ControllerRevisions record each template
// for `kubectl rollout history/undo`. Expectations keep a stale cache from doubling a pod.

import {
  DefaultDaemonSetUniqueLabelKey,
  labelSelectorAsSelector,
  type ControllerRevision,
  type DaemonSet,
  type DaemonSetStatus,
  type Node,
  type Pod,
  type Selector,
} from "../../api/index.ts";
import { isAlreadyExists, isNotFound, TerminalError } from "../../client/errors.ts";
import type { Client, Clock, EventRecorder, Lister, ObjectKey, ReconcileContext, Reconciler, ResourceClient, Result } from "../../client/types.ts";
import { computeHash, semanticEqual } from "../deployment/util.ts";
import { Expectations } from "../expectations.ts";
import { sortControllerRevisions } from "../history/index.ts";
import {
  ControllerRefManager,
  deepCopy,
  errorMessage,
  getControllerOf,
  isPodAvailable,
  isPodReady,
  keyOf,
  newControllerRef,
  PodControl,
  recheckController,
} from "../podcontrol.ts";
import {
  allowsSurge,
  byCreationTimestampAndPhase,
  createPodTemplate,
  getTargetNodeName,
  getTemplateGeneration,
  isPodUpdated,
  nodeShouldRunDaemonPod,
  replaceDaemonSetPodNodeNameNodeAffinity,
  rollingUpdateCount,
} from "./util.ts";

export * from "./util.ts";

export const DaemonSetGVK = { apiVersion: "apps/v1", kind: "DaemonSet" } as const;
/** The daemon controller's BurstReplicas: at most this many creates or deletes per sync. */
export const DaemonSetBurstReplicas = 250;
/** controller.SlowStartInitialBatchSize */
const SlowStartInitialBatchSize = 1;
/** StatusUpdateRetries: one fresh read and retry after a failed status write. */
const StatusUpdateRetries = 1;

// Event reasons, as upstream's.
export const SelectingAllReason = "SelectingAll";
export const FailedDaemonPodReason = "FailedDaemonPod";
export const SucceededDaemonPodReason = "SucceededDaemonPod";

/** failedPodsBackoff: flowcontrol.NewBackOff(1s, 15min), keyed by DaemonSet uid and node. */
export const FailedPodBackoffInitialMs = 1_000;
export const FailedPodBackoffMaxMs = 15 * 60_000;

/**
 * The DaemonSet's ControllerExpectations: creations are counted, deletions tracked by the uids of
 * the pods deleted (so an unrelated pod's deletion never satisfies them). Set both before a sync
 * issues its requests; observe from the informer handlers, or for each request that failed.
 */
export class DaemonSetExpectations {
  private readonly creations: Expectations;
  private readonly deletions: Expectations;

  constructor(opts: { clock?: Pick<Clock, "now"> } = {}) {
    this.creations = new Expectations(opts);
    this.deletions = new Expectations(opts);
  }

  /** SetExpectations: replaces what the key waits for with `adds` creations and the deletion of these pods. */
  setExpectations(key: ObjectKey, adds: number, deleteUIDs: readonly string[]): void {
    this.creations.expectCreations(key, adds);
    this.deletions.expectDeletions(key, deleteUIDs);
  }

  creationObserved(key: ObjectKey): void {
    this.creations.creationObserved(key);
  }

  deletionObserved(key: ObjectKey, uid: string): void {
    this.deletions.deletionObserved(key, uid);
  }

  satisfied(key: ObjectKey): boolean {
    return this.creations.satisfied(key) && this.deletions.satisfied(key);
  }

  delete(key: ObjectKey): void {
    this.creations.delete(key);
    this.deletions.delete(key);
  }

  /** Pending counts for logs and tests. */
  get(key: ObjectKey): { add: number; del: number } | undefined {
    const c = this.creations.get(key);
    const d = this.deletions.get(key);
    if (!c && !d) return undefined;
    return { add: c?.add ?? 0, del: d?.del ?? 0 };
  }
}

/** flowcontrol.Backoff as the daemon controller uses it: per key, doubling from 1 s to 15 min, forgotten after 2×max idle. */
class FailedPodsBackoff {
  private readonly entries = new Map<string, { backoffMs: number; lastUpdate: number }>();
  constructor(private readonly clock: Pick<Clock, "now">) {}

  /** IsInBackOffSinceUpdate. */
  inBackoff(key: string): boolean {
    const e = this.entries.get(key);
    return e !== undefined && this.clock.now() - e.lastUpdate < e.backoffMs;
  }

  get(key: string): number {
    return this.entries.get(key)?.backoffMs ?? 0;
  }

  next(key: string): void {
    const now = this.clock.now();
    const e = this.entries.get(key);
    if (!e || now - e.lastUpdate > 2 * FailedPodBackoffMaxMs) {
      this.entries.set(key, { backoffMs: FailedPodBackoffInitialMs, lastUpdate: now });
      return;
    }
    e.backoffMs = Math.min(e.backoffMs * 2, FailedPodBackoffMaxMs);
    e.lastUpdate = now;
  }
}

export interface DaemonSetControllerDeps {
  client: Client;
  daemonSets: Lister<DaemonSet>;
  pods: Lister<Pod>;
  nodes: Lister<Node>;
  revisions: Lister<ControllerRevision>;
  expectations: DaemonSetExpectations;
  recorder: EventRecorder;
  clock?: Pick<Clock, "now">;
  burstReplicas?: number;
}

/** Daemon pods by the node they are on (or are meant for). */
type NodeToDaemonPods = Map<string, Readonly<Pod>[]>;

/** What one sync found to do: pods to delete, nodes to create a pod on, and when to look again. */
interface SyncPlan {
  podsToDelete: Readonly<Pod>[];
  nodesNeedingDaemonPods: string[];
  requeueAfterMs?: number;
}

export class DaemonSetController implements Reconciler {
  private readonly dsClient: ResourceClient<DaemonSet>;
  private readonly crClient: ResourceClient<ControllerRevision>;
  private readonly podClient: ResourceClient<Pod>;
  private readonly podControl: PodControl;
  private readonly clock: Pick<Clock, "now">;
  private readonly burstReplicas: number;
  private readonly failedPodsBackoff: FailedPodsBackoff;

  constructor(private readonly deps: DaemonSetControllerDeps) {
    this.dsClient = deps.client.resource<DaemonSet>("apps", "daemonsets");
    this.crClient = deps.client.resource<ControllerRevision>("apps", "controllerrevisions");
    this.podClient = deps.client.resource<Pod>("", "pods");
    this.podControl = new PodControl(deps.client, deps.recorder);
    this.clock = deps.clock ?? { now: () => Date.now() };
    this.burstReplicas = deps.burstReplicas ?? DaemonSetBurstReplicas;
    this.failedPodsBackoff = new FailedPodsBackoff(this.clock);
  }

  /** syncDaemonSet. */
  async reconcile(ctx: ReconcileContext, key: ObjectKey): Promise<Result> {
    const { daemonSets, nodes, expectations } = this.deps;
    const ds = daemonSets.get(key);
    if (!ds) {
      // Deleted: its pods and revisions are the garbage collector's.
      expectations.delete(key);
      return {};
    }
    let selector: Selector;
    try {
      selector = labelSelectorAsSelector(ds.spec?.selector);
    } catch (e) {
      throw new TerminalError(`invalid selector on DaemonSet ${key}: ${errorMessage(e)}`, { cause: e });
    }
    if (selector.empty()) {
      this.deps.recorder.event(ds, "Warning", SelectingAllReason, "This daemon set is selecting all pods. A non-empty selector is required.");
      return {};
    }
    // Being deleted: its revisions may already be gone or orphaned, so no status can be trusted.
    if (ds.metadata.deletionTimestamp) return {};

    const nodeList = nodes.list();
    const { cur, old } = await this.constructHistory(ctx, ds, selector);
    const hash = cur.metadata.labels?.[DefaultDaemonSetUniqueLabelKey] ?? "";
    // Read before listing pods: an observation arriving in between costs one more round, never a double create.
    const satisfied = expectations.satisfied(key);
    const pods = await this.claimPods(ds, selector);

    if (!satisfied) {
      // Only status: observedGeneration is not raised for a generation this sync did not act on.
      return this.updateStatus(ds, nodeList, pods, hash, false);
    }
    let syncErr: unknown;
    let requeueAfterMs: number | undefined;
    try {
      requeueAfterMs = await this.updateDaemonSet(ctx, key, ds, nodeList, pods, hash, old);
    } catch (e) {
      syncErr = e;
    }
    let statusResult: Result = {};
    try {
      statusResult = await this.updateStatus(ds, nodeList, pods, hash, true);
    } catch (e) {
      if (syncErr === undefined) throw e;
      ctx.log.error({ err: e, daemonSet: key }, "failed to update status");
    }
    if (syncErr !== undefined) throw syncErr;
    return earliest(statusResult, requeueAfterMs);
  }

  // ---- pods ------------------------------------------------------------------------------------

  /** getDaemonPods: every pod of the namespace the DaemonSet owns, after adopting matching orphans and releasing strays. */
  private claimPods(ds: Readonly<DaemonSet>, selector: Selector): Promise<Readonly<Pod>[]> {
    const m = new ControllerRefManager<Pod>({
      controller: ds,
      gvk: DaemonSetGVK,
      selector,
      children: this.podClient,
      canAdopt: () => recheckController(this.dsClient, ds),
    });
    return m.claim(this.deps.pods.listNamespace(ds.metadata.namespace ?? ""));
  }

  /**
   * getNodesToDaemonPods: the pods grouped by target node. Terminal pods already being deleted are
   * left out (the kubelet or pod GC is finishing them) unless `includeDeletedTerminal`.
   */
  private nodesToDaemonPods(pods: readonly Readonly<Pod>[], includeDeletedTerminal: boolean): NodeToDaemonPods {
    const out: NodeToDaemonPods = new Map();
    for (const pod of pods) {
      const terminal = pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";
      if (!includeDeletedTerminal && terminal && pod.metadata.deletionTimestamp) continue;
      const node = getTargetNodeName(pod);
      if (node === undefined) continue;
      const list = out.get(node);
      if (list) list.push(pod);
      else out.set(node, [pod]);
    }
    return out;
  }

  /** updateDaemonSet: manage, then (when the cache has caught up) the rolling update, then history cleanup. */
  private async updateDaemonSet(
    ctx: ReconcileContext,
    key: ObjectKey,
    ds: Readonly<DaemonSet>,
    nodeList: readonly Readonly<Node>[],
    pods: readonly Readonly<Pod>[],
    hash: string,
    old: readonly Readonly<ControllerRevision>[],
  ): Promise<number | undefined> {
    const nodeToDaemonPods = this.nodesToDaemonPods(pods, false);
    const plan = this.manage(ds, nodeList, nodeToDaemonPods, hash);
    await this.syncNodes(ctx, key, ds, plan.podsToDelete, plan.nodesNeedingDaemonPods, hash);
    if (this.deps.expectations.satisfied(key) && ds.spec?.updateStrategy?.type === "RollingUpdate") {
      const update = this.rollingUpdate(ctx, ds, nodeList, nodeToDaemonPods, hash);
      await this.syncNodes(ctx, key, ds, update.podsToDelete, update.nodesNeedingDaemonPods, hash);
    }
    await this.cleanupHistory(ds, pods, old);
    return plan.requeueAfterMs;
  }

  /**
   * manage: for each node, the daemon pod to create or the pods to delete (podsShouldBeOnNode),
   * plus unscheduled pods whose target node no longer exists (the pod GC never sees those: they
   * have no spec.nodeName). Pods bound to a deleted node are the pod GC's.
   */
  private manage(ds: Readonly<DaemonSet>, nodeList: readonly Readonly<Node>[], nodeToDaemonPods: NodeToDaemonPods, hash: string): SyncPlan {
    const plan: SyncPlan = { podsToDelete: [], nodesNeedingDaemonPods: [] };
    for (const node of nodeList) this.podsShouldBeOnNode(node, nodeToDaemonPods, ds, hash, plan);
    const existing = new Set(nodeList.map((n) => n.metadata.name ?? ""));
    for (const [node, pods] of nodeToDaemonPods) {
      if (existing.has(node)) continue;
      for (const pod of pods) if (!pod.spec?.nodeName) plan.podsToDelete.push(pod);
    }
    return plan;
  }

  /** podsShouldBeOnNode. */
  private podsShouldBeOnNode(node: Readonly<Node>, nodeToDaemonPods: NodeToDaemonPods, ds: Readonly<DaemonSet>, hash: string, plan: SyncPlan): void {
    const nodeName = node.metadata.name ?? "";
    const { shouldRun, shouldContinueRunning } = nodeShouldRunDaemonPod(node, ds);
    const daemonPods = nodeToDaemonPods.get(nodeName);
    if (shouldRun && !daemonPods) {
      plan.nodesNeedingDaemonPods.push(nodeName);
      return;
    }
    if (shouldContinueRunning) {
      const running: Readonly<Pod>[] = [];
      for (const pod of daemonPods ?? []) {
        if (pod.metadata.deletionTimestamp) continue;
        const phase = pod.status?.phase;
        if (phase === "Failed") {
          // The kubelet rejecting the pod and the controller recreating it can fight forever: back off per node.
          const backoffKey = `${ds.metadata.uid ?? ""}/${nodeName}`;
          if (this.failedPodsBackoff.inBackoff(backoffKey)) {
            const delay = this.failedPodsBackoff.get(backoffKey);
            plan.requeueAfterMs = plan.requeueAfterMs === undefined ? delay : Math.min(plan.requeueAfterMs, delay);
            continue;
          }
          this.failedPodsBackoff.next(backoffKey);
          this.deps.recorder.event(ds, "Warning", FailedDaemonPodReason, `Found failed daemon pod ${pod.metadata.namespace}/${pod.metadata.name} on node ${nodeName}, will try to kill it`);
          plan.podsToDelete.push(pod);
        } else if (phase === "Succeeded") {
          this.deps.recorder.event(ds, "Normal", SucceededDaemonPodReason, `Found succeeded daemon pod ${pod.metadata.namespace}/${pod.metadata.name} on node ${nodeName}, will try to delete it`);
          plan.podsToDelete.push(pod);
        } else {
          running.push(pod);
        }
      }
      running.sort(byCreationTimestampAndPhase);
      if (!allowsSurge(ds)) {
        // Without surge a node keeps only its oldest pod.
        plan.podsToDelete.push(...running.slice(1));
        return;
      }
      if (running.length <= 1) {
        // Surging: the node needs at least one pod that is not being deleted.
        if (running.length === 0 && shouldRun) plan.nodesNeedingDaemonPods.push(nodeName);
        return;
      }
      // With surge a node may hold the oldest old pod (while ready) and the oldest new pod (until available).
      let oldestNew: Readonly<Pod> | undefined;
      let oldestOld: Readonly<Pod> | undefined;
      for (const pod of running) {
        if (pod.metadata.labels?.[DefaultDaemonSetUniqueLabelKey] === hash) {
          if (!oldestNew) {
            oldestNew = pod;
            continue;
          }
        } else if (!oldestOld) {
          oldestOld = pod;
          continue;
        }
        plan.podsToDelete.push(pod);
      }
      if (oldestNew && oldestOld) {
        if (!isPodReady(oldestOld)) plan.podsToDelete.push(oldestOld);
        else if (isPodAvailable(oldestNew, ds.spec?.minReadySeconds ?? 0, this.clock.now())) plan.podsToDelete.push(oldestOld);
      }
      return;
    }
    if (daemonPods) {
      // The node no longer qualifies: every daemon pod on it goes.
      for (const pod of daemonPods) if (!pod.metadata.deletionTimestamp) plan.podsToDelete.push(pod);
    }
  }

  /**
   * syncNodes: sets expectations, creates pods for `nodes` in slow-start batches (each pinned to its
   * node by node affinity), deletes `podsToDelete`; both capped at burstReplicas. Throws the first error.
   */
  private async syncNodes(ctx: ReconcileContext, key: ObjectKey, ds: Readonly<DaemonSet>, podsToDelete: readonly Readonly<Pod>[], nodes: readonly string[], hash: string): Promise<void> {
    if (podsToDelete.length === 0 && nodes.length === 0) return;
    const { expectations } = this.deps;
    const createDiff = Math.min(nodes.length, this.burstReplicas);
    const victims = podsToDelete.slice(0, this.burstReplicas);
    // Expect before acting: the informer may deliver a created pod before create() resolves.
    expectations.setExpectations(key, createDiff, victims.map((p) => p.metadata.uid ?? ""));
    const ns = ds.metadata.namespace ?? "";
    const errors: unknown[] = [];
    if (createDiff > 0) {
      ctx.log.debug({ daemonSet: key, nodes: nodes.slice(0, createDiff) }, "nodes needing daemon pods, creating");
      const template = createPodTemplate(ds.spec?.template ?? {}, getTemplateGeneration(ds), hash);
      const ref = newControllerRef(ds, DaemonSetGVK);
      let pos = 0;
      for (let batch = Math.min(createDiff, SlowStartInitialBatchSize); batch > 0; ) {
        const errorsBefore = errors.length;
        await Promise.all(
          nodes.slice(pos, pos + batch).map(async (nodeName) => {
            const podTemplate = deepCopy(template);
            podTemplate.spec ??= { containers: [] };
            podTemplate.spec.affinity = replaceDaemonSetPodNodeNameNodeAffinity(podTemplate.spec.affinity, nodeName);
            try {
              await this.podControl.createPod(ns, podTemplate, ds, ref);
            } catch (e) {
              // This creation will never be observed.
              expectations.creationObserved(key);
              errors.push(e);
            }
          }),
        );
        pos += batch;
        const skipped = createDiff - pos;
        if (errors.length > errorsBefore && skipped > 0) {
          // Slow start: a failing batch stops the rest; they are retried on the next sync.
          for (let i = 0; i < skipped; i++) expectations.creationObserved(key);
          break;
        }
        batch = Math.min(2 * batch, skipped);
      }
    }
    if (victims.length > 0) {
      ctx.log.debug({ daemonSet: key, pods: victims.map((p) => p.metadata.name) }, "pods to delete for daemon set, deleting");
      await Promise.all(
        victims.map(async (pod) => {
          try {
            await this.podControl.deletePod(ns, pod.metadata.name ?? "", ds);
          } catch (e) {
            expectations.deletionObserved(key, pod.metadata.uid ?? "");
            if (!isNotFound(e)) errors.push(e);
          }
        }),
      );
    }
    if (errors.length > 0) throw errors[0];
  }

  // ---- rolling update --------------------------------------------------------------------------

  /**
   * rollingUpdate: without surge, deletes old pods so that at most maxUnavailable nodes lack an
   * available pod (manage then creates the new ones); with surge, creates new pods beside old
   * available ones (at most maxSurge at a time) and deletes each old pod once its replacement is
   * available.
   */
  private rollingUpdate(ctx: ReconcileContext, ds: Readonly<DaemonSet>, nodeList: readonly Readonly<Node>[], nodeToDaemonPods: NodeToDaemonPods, hash: string): SyncPlan {
    const nowMs = this.clock.now();
    const minReady = ds.spec?.minReadySeconds ?? 0;
    const available = (p: Readonly<Pod>) => isPodAvailable(p, minReady, nowMs);
    const generation = getTemplateGeneration(ds);
    let desiredNumberScheduled = 0;
    for (const node of nodeList) if (nodeShouldRunDaemonPod(node, ds).shouldRun) desiredNumberScheduled++;
    const maxSurge = rollingUpdateCount(ds, "maxSurge", desiredNumberScheduled);
    let maxUnavailable = rollingUpdateCount(ds, "maxUnavailable", desiredNumberScheduled);
    // An impossible configuration (both 0) falls back to one unavailable node, as upstream.
    if (desiredNumberScheduled > 0 && maxUnavailable === 0 && maxSurge === 0) maxUnavailable = 1;

    if (maxSurge === 0) {
      let numUnavailable = 0;
      const allowedReplacements: Readonly<Pod>[] = [];
      const candidates: Readonly<Pod>[] = [];
      for (const pods of nodeToDaemonPods.values()) {
        const found = findUpdatedPodsOnNode(pods, hash, generation);
        if (!found) {
          // Excess pods: manage cleans this node up; count it as unavailable meanwhile.
          numUnavailable++;
          continue;
        }
        const { newPod, oldPod } = found;
        if ((!oldPod && !newPod) || (oldPod && newPod)) {
          numUnavailable++;
        } else if (newPod) {
          if (!available(newPod)) numUnavailable++;
        } else if (oldPod) {
          if (!available(oldPod)) {
            allowedReplacements.push(oldPod);
            numUnavailable++;
          } else if (numUnavailable < maxUnavailable) {
            candidates.push(oldPod);
          }
        }
      }
      const remaining = Math.min(Math.max(0, maxUnavailable - numUnavailable), candidates.length);
      ctx.log.debug({ daemonSet: keyOf(ds), replacements: allowedReplacements.length, maxUnavailable, numUnavailable, candidates: candidates.length }, "daemon set allowing replacements");
      return { podsToDelete: [...allowedReplacements, ...candidates.slice(0, remaining)], nodesNeedingDaemonPods: [] };
    }

    const oldPodsToDelete: Readonly<Pod>[] = [];
    const shouldNotRunPodsToDelete: Readonly<Pod>[] = [];
    const candidateNewNodes: string[] = [];
    const allowedNewNodes: string[] = [];
    let numSurge = 0;
    let numAvailable = 0;
    for (const [nodeName, pods] of nodeToDaemonPods) {
      const found = findUpdatedPodsOnNode(pods, hash, generation);
      if (!found) {
        numSurge++;
        continue;
      }
      const { newPod, oldPod } = found;
      if (oldPod) {
        if (available(oldPod)) numAvailable++;
      } else if (newPod && available(newPod)) {
        numAvailable++;
      }
      if (!oldPod) continue;
      if (!newPod) {
        const node = this.deps.nodes.get(nodeName);
        const shouldRun = node ? nodeShouldRunDaemonPod(node, ds).shouldRun : false;
        if (!available(oldPod)) {
          if (!shouldRun) oldPodsToDelete.push(oldPod);
          else allowedNewNodes.push(nodeName);
          continue;
        }
        if (!shouldRun) {
          shouldNotRunPodsToDelete.push(oldPod);
          continue;
        }
        if (numSurge >= maxSurge) continue;
        candidateNewNodes.push(nodeName);
        continue;
      }
      // Already surged here: wait for the new pod, then retire the old one.
      if (!available(newPod)) {
        numSurge++;
        continue;
      }
      oldPodsToDelete.push(oldPod);
    }
    // With surge the owner expects full availability: a pod on a node that stopped qualifying goes
    // only once enough pods elsewhere are available.
    const deletable = Math.min(numAvailable - desiredNumberScheduled, shouldNotRunPodsToDelete.length);
    if (deletable > 0) oldPodsToDelete.push(...shouldNotRunPodsToDelete.slice(0, deletable));
    const remainingSurge = Math.min(Math.max(0, maxSurge - numSurge), candidateNewNodes.length);
    ctx.log.debug({ daemonSet: keyOf(ds), replacements: allowedNewNodes.length, maxSurge, numSurge, candidates: candidateNewNodes.length }, "daemon set allowing replacements");
    return { podsToDelete: oldPodsToDelete, nodesNeedingDaemonPods: [...allowedNewNodes, ...candidateNewNodes.slice(0, remainingSurge)] };
  }

  // ---- status ----------------------------------------------------------------------------------

  /** updateDaemonSetStatus + storeDaemonSetStatus. */
  private async updateStatus(ds: Readonly<DaemonSet>, nodeList: readonly Readonly<Node>[], pods: readonly Readonly<Pod>[], hash: string, updateObservedGen: boolean): Promise<Result> {
    const status = calculateStatus(ds, nodeList, this.nodesToDaemonPods(pods, false), hash, this.clock.now());
    const cur = ds.status;
    const generation = ds.metadata.generation ?? 0;
    const same =
      cur !== undefined &&
      (cur.desiredNumberScheduled ?? 0) === status.desiredNumberScheduled &&
      (cur.currentNumberScheduled ?? 0) === status.currentNumberScheduled &&
      (cur.numberMisscheduled ?? 0) === status.numberMisscheduled &&
      (cur.numberReady ?? 0) === status.numberReady &&
      (cur.updatedNumberScheduled ?? 0) === status.updatedNumberScheduled &&
      (cur.numberAvailable ?? 0) === status.numberAvailable &&
      (cur.numberUnavailable ?? 0) === status.numberUnavailable &&
      (cur.observedGeneration ?? 0) >= generation;
    if (!same) {
      let toUpdate = deepCopy(ds);
      for (let i = 0; ; i++) {
        const next: DaemonSetStatus = { ...(toUpdate.status ?? {}), ...status };
        if (updateObservedGen) next.observedGeneration = generation;
        // As Go serializes DaemonSetStatus: these counts are omitempty.
        for (const f of ["observedGeneration", "updatedNumberScheduled", "numberAvailable", "numberUnavailable"] as const) if (!next[f]) delete next[f];
        toUpdate.status = next;
        try {
          await this.dsClient.updateStatus(toUpdate);
          break;
        } catch (e) {
          if (i >= StatusUpdateRetries) throw e;
          toUpdate = await this.dsClient.get(ds.metadata.namespace ?? "", ds.metadata.name ?? "");
        }
      }
    }
    // Ready pods become available after minReadySeconds without any event to wake us.
    const minReady = ds.spec?.minReadySeconds ?? 0;
    if (minReady > 0 && status.numberReady !== status.numberAvailable) return { requeueAfterMs: minReady * 1000 };
    return {};
  }

  // ---- history ---------------------------------------------------------------------------------

  /**
   * constructHistory: the revision matching the current template (created when missing, renumbered
   * to be the newest when an old one became current again, duplicates merged) and the old ones.
   */
  private async constructHistory(
    ctx: ReconcileContext,
    ds: Readonly<DaemonSet>,
    selector: Selector,
  ): Promise<{ cur: Readonly<ControllerRevision>; old: Readonly<ControllerRevision>[] }> {
    const histories = await this.controlledHistories(ds, selector);
    const current: Readonly<ControllerRevision>[] = [];
    const old: Readonly<ControllerRevision>[] = [];
    for (let history of histories) {
      // Revisions without the hash label (created by hand) get their name as the hash.
      if (!history.metadata.labels?.[DefaultDaemonSetUniqueLabelKey]) {
        const toUpdate = deepCopy(history);
        toUpdate.metadata.labels = { ...(toUpdate.metadata.labels ?? {}), [DefaultDaemonSetUniqueLabelKey]: toUpdate.metadata.name ?? "" };
        history = await this.crClient.update(toUpdate);
      }
      if (matchRevision(ds, history)) current.push(history);
      else old.push(history);
    }
    const currRevision = maxRevision(old) + 1;
    let cur: Readonly<ControllerRevision>;
    if (current.length === 0) {
      cur = await this.snapshot(ctx, ds, currRevision);
    } else {
      cur = await this.dedupCurHistories(ds, current);
      if ((cur.revision ?? 0) < currRevision) {
        const toUpdate = deepCopy(cur);
        toUpdate.revision = currRevision;
        cur = await this.crClient.update(toUpdate);
      }
    }
    return { cur, old };
  }

  /** controlledHistories: the revisions the DaemonSet owns, adopting matching orphans and releasing strays. */
  private controlledHistories(ds: Readonly<DaemonSet>, selector: Selector): Promise<Readonly<ControllerRevision>[]> {
    const m = new ControllerRefManager<ControllerRevision>({
      controller: ds,
      gvk: DaemonSetGVK,
      selector,
      children: this.crClient,
      canAdopt: () => recheckController(this.dsClient, ds),
    });
    return m.claim(this.deps.revisions.listNamespace(ds.metadata.namespace ?? ""));
  }

  /**
   * snapshot: creates the revision `<ds>-<hash>` of the current template. An existing revision of
   * that name with other data is a hash collision: status.collisionCount is bumped and the error
   * returned, so the next sync hashes differently.
   */
  private async snapshot(ctx: ReconcileContext, ds: Readonly<DaemonSet>, revision: number): Promise<Readonly<ControllerRevision>> {
    const hash = computeHash(ds.spec?.template ?? {}, ds.status?.collisionCount);
    const name = `${ds.metadata.name ?? ""}-${hash}`;
    const ns = ds.metadata.namespace ?? "";
    const history: ControllerRevision = {
      apiVersion: "apps/v1",
      kind: "ControllerRevision",
      metadata: {
        name,
        namespace: ns,
        labels: { ...(ds.spec?.template?.metadata?.labels ?? {}), [DefaultDaemonSetUniqueLabelKey]: hash },
        ownerReferences: [newControllerRef(ds, DaemonSetGVK)],
      },
      data: getPatch(ds),
      revision,
    };
    if (ds.metadata.annotations) history.metadata.annotations = { ...ds.metadata.annotations };
    try {
      return await this.crClient.create(ns, history);
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
      const existing = await this.crClient.get(ns, name);
      if (matchRevision(ds, existing)) return existing;
      const currDS = await this.dsClient.get(ns, ds.metadata.name ?? "");
      if ((currDS.status?.collisionCount ?? undefined) !== (ds.status?.collisionCount ?? undefined)) {
        throw new Error(`found a stale collision count (${ds.status?.collisionCount ?? 0}, expected ${currDS.status?.collisionCount ?? 0}) of DaemonSet "${ds.metadata.name}" while processing; will retry until it is updated`, { cause: e });
      }
      currDS.status = { ...(currDS.status ?? emptyStatus()), collisionCount: (currDS.status?.collisionCount ?? 0) + 1 };
      await this.dsClient.updateStatus(currDS);
      ctx.log.info({ daemonSet: keyOf(ds), collisionCount: currDS.status.collisionCount }, "found a hash collision for DaemonSet - bumping collisionCount to resolve it");
      throw e;
    }
  }

  /** dedupCurHistories: keeps the highest-numbered current revision, moves pods off the others' hashes, deletes the others. */
  private async dedupCurHistories(ds: Readonly<DaemonSet>, current: readonly Readonly<ControllerRevision>[]): Promise<Readonly<ControllerRevision>> {
    if (current.length === 1) return current[0]!;
    let keep = current[0]!;
    for (const c of current) if ((c.revision ?? 0) >= (keep.revision ?? 0)) keep = c;
    const keepHash = keep.metadata.labels?.[DefaultDaemonSetUniqueLabelKey] ?? "";
    const ns = ds.metadata.namespace ?? "";
    for (const dup of current) {
      if (dup.metadata.name === keep.metadata.name) continue;
      const dupHash = dup.metadata.labels?.[DefaultDaemonSetUniqueLabelKey];
      for (const pod of this.deps.pods.listNamespace(ns)) {
        if (getControllerOf(pod)?.uid !== ds.metadata.uid || pod.metadata.labels?.[DefaultDaemonSetUniqueLabelKey] !== dupHash) continue;
        await this.podClient.patch(ns, pod.metadata.name ?? "", "strategic", { metadata: { labels: { [DefaultDaemonSetUniqueLabelKey]: keepHash } } });
      }
      await this.crClient.delete(ns, dup.metadata.name ?? "");
    }
    return keep;
  }

  /** cleanupHistory: deletes the oldest old revisions beyond revisionHistoryLimit that no pod (even a finished one) still uses. */
  private async cleanupHistory(ds: Readonly<DaemonSet>, pods: readonly Readonly<Pod>[], old: readonly Readonly<ControllerRevision>[]): Promise<void> {
    const toKeep = ds.spec?.revisionHistoryLimit ?? 10;
    let toKill = old.length - toKeep;
    if (toKill <= 0) return;
    const liveHashes = new Set<string>();
    for (const list of this.nodesToDaemonPods(pods, true).values()) {
      for (const pod of list) {
        const h = pod.metadata.labels?.[DefaultDaemonSetUniqueLabelKey];
        if (h) liveHashes.add(h);
      }
    }
    for (const history of sortControllerRevisions(old)) {
      if (toKill <= 0) break;
      if (liveHashes.has(history.metadata.labels?.[DefaultDaemonSetUniqueLabelKey] ?? "")) continue;
      try {
        await this.crClient.delete(history.metadata.namespace ?? "", history.metadata.name ?? "");
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
      toKill--;
    }
  }
}

function emptyStatus(): DaemonSetStatus {
  return { currentNumberScheduled: 0, numberMisscheduled: 0, desiredNumberScheduled: 0, numberReady: 0 };
}

/** The sooner of a status requeue and a sync requeue. */
function earliest(r: Result, afterMs: number | undefined): Result {
  if (afterMs === undefined) return r;
  if (r.requeueAfterMs === undefined || afterMs < r.requeueAfterMs) return { ...r, requeueAfterMs: afterMs };
  return r;
}

/**
 * getPatch: the revision's data, a strategic merge patch replacing spec.template — what
 * `kubectl rollout undo` sends back to restore it.
 */
export function getPatch(ds: Readonly<DaemonSet>): unknown {
  return { spec: { template: { ...deepCopy(ds.spec?.template ?? {}), $patch: "replace" } } };
}

/** Match: the revision holds the DaemonSet's current template. */
export function matchRevision(ds: Readonly<DaemonSet>, history: Readonly<ControllerRevision>): boolean {
  return semanticEqual(getPatch(ds), history.data);
}

function maxRevision(revisions: readonly Readonly<ControllerRevision>[]): number {
  let max = 0;
  for (const r of revisions) max = Math.max(max, r.revision ?? 0);
  return max;
}

/** findUpdatedPodsOnNode: the node's one new and one old pod (either may be missing); undefined with more than one of either. */
function findUpdatedPodsOnNode(pods: readonly Readonly<Pod>[], hash: string, generation: number | undefined): { newPod?: Readonly<Pod>; oldPod?: Readonly<Pod> } | undefined {
  let newPod: Readonly<Pod> | undefined;
  let oldPod: Readonly<Pod> | undefined;
  for (const pod of pods) {
    if (pod.metadata.deletionTimestamp) continue;
    if (isPodUpdated(pod, hash, generation)) {
      if (newPod) return undefined;
      newPod = pod;
    } else {
      if (oldPod) return undefined;
      oldPod = pod;
    }
  }
  return { newPod, oldPod };
}

/** The counts of updateDaemonSetStatus: per node that should run the pod, its oldest daemon pod decides ready/available/updated. */
export function calculateStatus(
  ds: Readonly<DaemonSet>,
  nodeList: readonly Readonly<Node>[],
  nodeToDaemonPods: ReadonlyMap<string, readonly Readonly<Pod>[]>,
  hash: string,
  nowMs: number,
): Required<Pick<DaemonSetStatus, "desiredNumberScheduled" | "currentNumberScheduled" | "numberMisscheduled" | "numberReady" | "updatedNumberScheduled" | "numberAvailable" | "numberUnavailable">> {
  let desired = 0;
  let current = 0;
  let misscheduled = 0;
  let ready = 0;
  let updated = 0;
  let available = 0;
  const generation = getTemplateGeneration(ds);
  const minReady = ds.spec?.minReadySeconds ?? 0;
  for (const node of nodeList) {
    const { shouldRun } = nodeShouldRunDaemonPod(node, ds);
    const pods = nodeToDaemonPods.get(node.metadata.name ?? "") ?? [];
    const scheduled = pods.length > 0;
    if (!shouldRun) {
      if (scheduled) misscheduled++;
      continue;
    }
    desired++;
    if (!scheduled) continue;
    current++;
    const pod = [...pods].sort(byCreationTimestampAndPhase)[0]!;
    if (isPodReady(pod)) {
      ready++;
      if (isPodAvailable(pod, minReady, nowMs)) available++;
    }
    if (isPodUpdated(pod, hash, generation)) updated++;
  }
  return {
    desiredNumberScheduled: desired,
    currentNumberScheduled: current,
    numberMisscheduled: misscheduled,
    numberReady: ready,
    updatedNumberScheduled: updated,
    numberAvailable: available,
    numberUnavailable: desired - available,
  };
}

// ---------------------------------------------------------------------------------------------
// Event handlers: the harness wires these to the informers and adds the returned keys.

/**
 * Maps pod, node and revision events to DaemonSet keys, recording expectation observations
 * (daemon_controller.go addPod/updatePod/deletePod, addNode/updateNode, addHistory/…).
 */
export class DaemonSetHandlers {
  constructor(private readonly deps: { daemonSets: Lister<DaemonSet>; expectations: DaemonSetExpectations }) {}

  onPodAdd(pod: Readonly<Pod>): ObjectKey[] {
    // A pod that arrives already being deleted (after a relist) counts as a deletion.
    if (pod.metadata.deletionTimestamp) return this.onPodDelete(pod);
    const owner = this.resolveOwner(pod);
    if (owner) {
      this.deps.expectations.creationObserved(keyOf(owner));
      return [keyOf(owner)];
    }
    if (getControllerOf(pod)) return [];
    return this.matching(pod).map(keyOf);
  }

  onPodUpdate(oldPod: Readonly<Pod>, cur: Readonly<Pod>): ObjectKey[] {
    if (oldPod.metadata.resourceVersion === cur.metadata.resourceVersion) return [];
    if (cur.metadata.deletionTimestamp) return this.onPodDelete(cur);
    const keys = new Set<ObjectKey>();
    const oldOwner = this.resolveOwner(oldPod);
    const curOwner = this.resolveOwner(cur);
    if (oldOwner && oldOwner.metadata.uid !== curOwner?.metadata.uid) keys.add(keyOf(oldOwner));
    if (curOwner) keys.add(keyOf(curOwner));
    else if (!getControllerOf(cur)) for (const ds of this.matching(cur)) keys.add(keyOf(ds));
    return [...keys];
  }

  /**
   * A pod that just became Ready is available only minReadySeconds later, and no event says so:
   * the owner's key and when to look again (minReadySeconds plus a second against clock skew, as upstream).
   */
  onPodReadyLater(oldPod: Readonly<Pod>, cur: Readonly<Pod>): { key: ObjectKey; afterMs: number } | undefined {
    if (isPodReady(oldPod) || !isPodReady(cur)) return undefined;
    const owner = this.resolveOwner(cur);
    const minReady = owner?.spec?.minReadySeconds ?? 0;
    return owner && minReady > 0 ? { key: keyOf(owner), afterMs: (minReady + 1) * 1000 } : undefined;
  }

  onPodDelete(pod: Readonly<Pod>): ObjectKey[] {
    const owner = this.resolveOwner(pod);
    if (!owner) return [];
    this.deps.expectations.deletionObserved(keyOf(owner), pod.metadata.uid ?? "");
    return [keyOf(owner)];
  }

  /** A new node: every DaemonSet that should run there. */
  onNodeAdd(node: Readonly<Node>): ObjectKey[] {
    return this.deps.daemonSets.list().filter((ds) => nodeShouldRunDaemonPod(node, ds).shouldRun).map(keyOf);
  }

  /** A node change that may matter (not just a heartbeat): the DaemonSets whose verdict for it changed. */
  onNodeUpdate(oldNode: Readonly<Node>, cur: Readonly<Node>): ObjectKey[] {
    if (shouldIgnoreNodeUpdate(oldNode, cur)) return [];
    return this.deps.daemonSets
      .list()
      .filter((ds) => {
        const a = nodeShouldRunDaemonPod(oldNode, ds);
        const b = nodeShouldRunDaemonPod(cur, ds);
        return a.shouldRun !== b.shouldRun || a.shouldContinueRunning !== b.shouldContinueRunning;
      })
      .map(keyOf);
  }

  /** A deleted node changes every DaemonSet's desired count; its pods are the pod GC's. */
  onNodeDelete(): ObjectKey[] {
    return this.deps.daemonSets.list().map(keyOf);
  }

  /** Revision events: the owning DaemonSet, or for an orphan every DaemonSet that selects it. */
  onRevision(history: Readonly<ControllerRevision>): ObjectKey[] {
    const ref = getControllerOf(history);
    if (ref) {
      if (ref.kind !== DaemonSetGVK.kind) return [];
      const ds = this.deps.daemonSets.get(`${history.metadata.namespace ?? ""}/${ref.name}`);
      return ds && ds.metadata.uid === ref.uid ? [keyOf(ds)] : [];
    }
    return this.matching(history).map(keyOf);
  }

  private resolveOwner(pod: Readonly<Pod>): Readonly<DaemonSet> | undefined {
    const ref = getControllerOf(pod);
    if (!ref || ref.kind !== DaemonSetGVK.kind) return undefined;
    const ds = this.deps.daemonSets.get(`${pod.metadata.namespace ?? ""}/${ref.name}`);
    return ds && ds.metadata.uid === ref.uid ? ds : undefined;
  }

  private matching(obj: Readonly<Pod | ControllerRevision>): Readonly<DaemonSet>[] {
    return this.deps.daemonSets.listNamespace(obj.metadata.namespace ?? "").filter((ds) => {
      try {
        const sel = labelSelectorAsSelector(ds.spec?.selector);
        return !sel.empty() && sel.matches(obj.metadata.labels);
      } catch {
        return false;
      }
    });
  }
}

/** shouldIgnoreNodeUpdate: only heartbeats (condition times) and the resourceVersion changed. */
export function shouldIgnoreNodeUpdate(oldNode: Readonly<Node>, cur: Readonly<Node>): boolean {
  const strip = (n: Readonly<Node>) => {
    const c = deepCopy(n);
    delete c.metadata.resourceVersion;
    if (c.status?.conditions) c.status.conditions = c.status.conditions.map((x) => ({ ...x, lastHeartbeatTime: undefined, lastTransitionTime: undefined }));
    return c;
  };
  return semanticEqual(strip(oldNode), strip(cur));
}
