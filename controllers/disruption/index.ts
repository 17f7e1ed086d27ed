// The disruption controller: keeps each PodDisruptionBudget's status — expectedPods,
// desiredHealthy, currentHealthy, disruptionsAllowed, the DisruptionAllowed condition — as
// upstream's pkg/controller/disruption computes it, percentages resolved against the scale of the
// pods' controllers (Deployment, ReplicaSet, StatefulSet). Pods the eviction API recorded in
// disruptedPods count as gone until they are deleted or DeletionTimeout passes.

import {
  DisruptionAllowedCondition,
  InsufficientPodsReason,
  labelSelectorAsSelector,
  scaledValue,
  SufficientPodsReason,
  SyncFailedReason,
  type Condition,
  type Deployment,
  type OwnerReference,
  type Pod,
  type PodDisruptionBudget,
  type PodDisruptionBudgetStatus,
  type ReplicaSet,
  type StatefulSet,
} from "../../api/index.ts";
import { isConflict } from "../../client/errors.ts";
import type { Client, Clock, EventRecorder, Lister, ObjectKey, ReconcileContext, Reconciler, ResourceClient, Result } from "../../client/types.ts";
import { deepCopy, errorMessage, getControllerOf, isPodReady, parseTime, rfc3339 } from "../podcontrol.ts";

/** How long a pod recorded in disruptedPods may take to be deleted before it counts again. */
export const DeletionTimeoutMs = 2 * 60_000;

export interface DisruptionControllerDeps {
  client: Client;
  pdbs: Lister<PodDisruptionBudget>;
  pods: Lister<Pod>;
  replicaSets: Lister<ReplicaSet>;
  deployments: Lister<Deployment>;
  statefulSets: Lister<StatefulSet>;
  recorder: EventRecorder;
  clock?: Pick<Clock, "now">;
}

interface ControllerAndScale {
  uid: string;
  scale: number;
}

type Finder = (ref: Readonly<OwnerReference>, namespace: string) => ControllerAndScale | undefined;

function isAppsKind(ref: Readonly<OwnerReference>, kind: string): boolean {
  const group = ref.apiVersion.includes("/") ? ref.apiVersion.slice(0, ref.apiVersion.indexOf("/")) : "";
  return ref.kind === kind && (group === "apps" || group === "extensions");
}

/** The pods a budget selects: a null selector selects none, `{}` every pod of the namespace (policy/v1). */
export function podsForPdb(pdb: Readonly<PodDisruptionBudget>, pods: Lister<Pod>): readonly Readonly<Pod>[] {
  return pods.listNamespace(pdb.metadata.namespace ?? "", labelSelectorAsSelector(pdb.spec?.selector));
}

/** The budgets whose selector matches the pod's labels. */
export function pdbsForPod(pod: Readonly<Pod>, pdbs: Lister<PodDisruptionBudget>): readonly Readonly<PodDisruptionBudget>[] {
  return pdbs.listNamespace(pod.metadata.namespace ?? "").filter((pdb) => {
    try {
      return labelSelectorAsSelector(pdb.spec?.selector).matches(pod.metadata.labels ?? {});
    } catch {
      return false;
    }
  });
}

/** SetStatusCondition: lastTransitionTime moves only when the status does. */
function setCondition(conditions: Condition[], cond: Omit<Condition, "lastTransitionTime">, now: string): Condition[] {
  const out = [...conditions];
  const i = out.findIndex((c) => c.type === cond.type);
  if (i < 0) out.push({ ...cond, lastTransitionTime: now });
  else out[i] = { ...cond, lastTransitionTime: out[i]!.status === cond.status ? out[i]!.lastTransitionTime : now };
  return out;
}

/** UpdateDisruptionAllowedCondition. */
export function disruptionAllowedCondition(status: PodDisruptionBudgetStatus, now: string): Condition[] {
  const allowed = status.disruptionsAllowed > 0;
  return setCondition(
    status.conditions ?? [],
    {
      type: DisruptionAllowedCondition,
      status: allowed ? "True" : "False",
      reason: allowed ? SufficientPodsReason : InsufficientPodsReason,
      message: "",
      observedGeneration: status.observedGeneration ?? 0,
    },
    now,
  );
}

function conditionsAreUpToDate(pdb: Readonly<PodDisruptionBudget>): boolean {
  const c = pdb.status?.conditions?.find((x) => x.type === DisruptionAllowedCondition);
  if (!c || (pdb.status?.observedGeneration ?? 0) !== (pdb.metadata.generation ?? 0)) return false;
  if ((pdb.status?.disruptionsAllowed ?? 0) > 0) return c.status === "True" && c.reason === SufficientPodsReason;
  return c.status === "False" && c.reason === InsufficientPodsReason;
}

function sameDisruptedPods(a: Record<string, string> | undefined, b: Record<string, string>): boolean {
  const ak = Object.keys(a ?? {});
  if (ak.length !== Object.keys(b).length) return false;
  return ak.every((k) => k in b && parseTime(a![k]) === parseTime(b[k]));
}

export class DisruptionController implements Reconciler {
  private readonly pdbClient: ResourceClient<PodDisruptionBudget>;
  private readonly clock: Pick<Clock, "now">;

  constructor(private readonly deps: DisruptionControllerDeps) {
    this.pdbClient = deps.client.resource<PodDisruptionBudget>("policy", "poddisruptionbudgets");
    this.clock = deps.clock ?? { now: () => Date.now() };
  }

  async reconcile(ctx: ReconcileContext, key: ObjectKey): Promise<Result> {
    const pdb = this.deps.pdbs.get(key);
    if (!pdb) return {};
    try {
      return await this.trySync(ctx, pdb);
    } catch (e) {
      // A conflict only means a newer budget is on its way: retry without the fail-safe.
      if (isConflict(e)) throw e;
      ctx.log.error({ err: e, pdb: key }, "failed to sync PDB");
      await this.failSafe(pdb, e);
      // Upstream waits for the next pod event; a backoff retry also heals a lagging controller cache.
      return { requeue: true };
    }
  }

  private async trySync(ctx: ReconcileContext, pdb: Readonly<PodDisruptionBudget>): Promise<Result> {
    const { recorder } = this.deps;
    const pods = podsForPdb(pdb, this.deps.pods);
    if (pods.length === 0) recorder.event(pdb, "Normal", "NoPods", "No matching pods found");
    let counts: { expectedCount: number; desiredHealthy: number; unmanagedPods: string[] };
    try {
      counts = this.getExpectedPodCount(pdb, pods);
    } catch (e) {
      recorder.event(pdb, "Warning", "CalculateExpectedPodCountFailed", `Failed to calculate the number of expected pods: ${errorMessage(e)}`);
      throw e;
    }
    if (counts.unmanagedPods.length > 0) {
      ctx.log.debug({ pods: counts.unmanagedPods }, "found unmanaged pods associated with this PDB");
      recorder.event(
        pdb,
        "Warning",
        "UnmanagedPods",
        `Pods selected by this PodDisruptionBudget (selector: ${formatSelector(pdb)}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set ".spec.minAvailable" field of the PDB to an integer value.`,
      );
    }
    const now = this.clock.now();
    const { disruptedPods, recheckAt } = this.buildDisruptedPodMap(pods, pdb, now);
    const currentHealthy = countHealthyPods(pods, disruptedPods, now);
    await this.updatePdbStatus(pdb, currentHealthy, counts.desiredHealthy, counts.expectedCount, disruptedPods);
    // Wake when a recorded disruption expires, so the pod counts again if it was never deleted.
    return recheckAt !== undefined ? { requeueAfterMs: Math.max(1, recheckAt - now) } : {};
  }

  /** getExpectedPodCount: an integer minAvailable needs no controllers; anything else is scaled against them. */
  getExpectedPodCount(pdb: Readonly<PodDisruptionBudget>, pods: readonly Readonly<Pod>[]): { expectedCount: number; desiredHealthy: number; unmanagedPods: string[] } {
    const spec = pdb.spec ?? {};
    if (spec.maxUnavailable !== undefined && spec.maxUnavailable !== null) {
      const { expectedCount, unmanagedPods } = this.getExpectedScale(pods);
      const maxUnavailable = scaledValue(spec.maxUnavailable, expectedCount, true);
      return { expectedCount, desiredHealthy: Math.max(0, expectedCount - maxUnavailable), unmanagedPods };
    }
    if (spec.minAvailable !== undefined && spec.minAvailable !== null) {
      if (typeof spec.minAvailable === "number") return { expectedCount: pods.length, desiredHealthy: spec.minAvailable, unmanagedPods: [] };
      const { expectedCount, unmanagedPods } = this.getExpectedScale(pods);
      return { expectedCount, desiredHealthy: scaledValue(spec.minAvailable, expectedCount, true), unmanagedPods };
    }
    return { expectedCount: 0, desiredHealthy: 0, unmanagedPods: [] };
  }

  /** The sum of the scales of the controllers managing the pods; pods without a controller are reported. */
  private getExpectedScale(pods: readonly Readonly<Pod>[]): { expectedCount: number; unmanagedPods: string[] } {
    const scales = new Map<string, number>();
    const unmanagedPods: string[] = [];
    for (const pod of pods) {
      const ref = getControllerOf(pod);
      if (!ref) {
        unmanagedPods.push(pod.metadata.name ?? "");
        continue;
      }
      if (scales.has(ref.uid)) continue;
      let found: ControllerAndScale | undefined;
      for (const finder of this.finders()) {
        found = finder(ref, pod.metadata.namespace ?? "");
        if (found) break;
      }
      if (!found) throw new Error(`found no controllers for pod ${JSON.stringify(pod.metadata.name ?? "")}`);
      scales.set(found.uid, found.scale);
    }
    let expectedCount = 0;
    for (const s of scales.values()) expectedCount += s;
    return { expectedCount, unmanagedPods };
  }

  /** The pod's controller and its desired replicas: a Deployment (through its ReplicaSet), a bare ReplicaSet, a StatefulSet. */
  private finders(): Finder[] {
    const { replicaSets, deployments, statefulSets } = this.deps;
    const rsFor = (ref: Readonly<OwnerReference>, ns: string): Readonly<ReplicaSet> | undefined => {
      if (!isAppsKind(ref, "ReplicaSet")) return undefined;
      const rs = replicaSets.get(`${ns}/${ref.name}`);
      return rs && rs.metadata.uid === ref.uid ? rs : undefined;
    };
    return [
      (ref, ns) => {
        const rs = rsFor(ref, ns);
        const dref = rs ? getControllerOf(rs) : undefined;
        if (!dref || !isAppsKind(dref, "Deployment")) return undefined;
        const d = deployments.get(`${ns}/${dref.name}`);
        if (!d || d.metadata.uid !== dref.uid) return undefined;
        return { uid: d.metadata.uid ?? "", scale: d.spec?.replicas ?? 1 };
      },
      (ref, ns) => {
        const rs = rsFor(ref, ns);
        if (!rs) return undefined;
        // A ReplicaSet under a Deployment is counted through the Deployment.
        if (getControllerOf(rs)?.kind === "Deployment") return undefined;
        return { uid: rs.metadata.uid ?? "", scale: rs.spec?.replicas ?? 1 };
      },
      (ref, ns) => {
        if (!isAppsKind(ref, "StatefulSet")) return undefined;
        const ss = statefulSets.get(`${ns}/${ref.name}`);
        if (!ss || ss.metadata.uid !== ref.uid) return undefined;
        return { uid: ss.metadata.uid ?? "", scale: ss.spec?.replicas ?? 1 };
      },
    ];
  }

  /** disruptedPods without the pods since deleted and the entries past DeletionTimeout; the earliest expiry still ahead. */
  private buildDisruptedPodMap(pods: readonly Readonly<Pod>[], pdb: Readonly<PodDisruptionBudget>, now: number): { disruptedPods: Record<string, string>; recheckAt?: number } {
    const recorded = pdb.status?.disruptedPods;
    const disruptedPods: Record<string, string> = {};
    let recheckAt: number | undefined;
    if (!recorded) return { disruptedPods };
    for (const pod of pods) {
      if (pod.metadata.deletionTimestamp) continue; // already being deleted
      const name = pod.metadata.name ?? "";
      const at = recorded[name];
      if (at === undefined) continue;
      const expectedDeletion = parseTime(at) + DeletionTimeoutMs;
      if (expectedDeletion < now) {
        this.deps.recorder.event(pod, "Warning", "NotDeleted", `Pod was expected by PDB ${pdb.metadata.namespace ?? ""}/${pdb.metadata.name ?? ""} to be deleted but it wasn't`);
      } else {
        if (recheckAt === undefined || expectedDeletion < recheckAt) recheckAt = expectedDeletion;
        disruptedPods[name] = at;
      }
    }
    return recheckAt === undefined ? { disruptedPods } : { disruptedPods, recheckAt };
  }

  private async updatePdbStatus(pdb: Readonly<PodDisruptionBudget>, currentHealthy: number, desiredHealthy: number, expectedCount: number, disruptedPods: Record<string, string>): Promise<void> {
    // expectedCount > 0 keeps a budget that matched no pods safe when its first pods appear before this runs again.
    let disruptionsAllowed = currentHealthy - desiredHealthy;
    if (expectedCount <= 0 || disruptionsAllowed <= 0) disruptionsAllowed = 0;
    const s = pdb.status;
    if (
      s &&
      s.currentHealthy === currentHealthy &&
      s.desiredHealthy === desiredHealthy &&
      s.expectedPods === expectedCount &&
      s.disruptionsAllowed === disruptionsAllowed &&
      sameDisruptedPods(s.disruptedPods, disruptedPods) &&
      (s.observedGeneration ?? 0) === (pdb.metadata.generation ?? 0) &&
      conditionsAreUpToDate(pdb)
    ) {
      return;
    }
    const next = deepCopy(pdb) as PodDisruptionBudget;
    const status: PodDisruptionBudgetStatus = {
      currentHealthy,
      desiredHealthy,
      expectedPods: expectedCount,
      disruptionsAllowed,
      observedGeneration: pdb.metadata.generation ?? 0,
      conditions: pdb.status?.conditions ?? [],
    };
    if (Object.keys(disruptedPods).length > 0) status.disruptedPods = disruptedPods;
    status.conditions = disruptionAllowedCondition(status, rfc3339(this.clock.now()));
    next.status = status;
    await this.pdbClient.updateStatus(next);
  }

  /** Any failure to compute the status leaves the budget allowing no disruption. */
  private async failSafe(pdb: Readonly<PodDisruptionBudget>, err: unknown): Promise<void> {
    const next = deepCopy(pdb) as PodDisruptionBudget;
    const status = next.status ?? { disruptionsAllowed: 0, currentHealthy: 0, desiredHealthy: 0, expectedPods: 0 };
    status.disruptionsAllowed = 0;
    status.conditions = setCondition(
      status.conditions ?? [],
      { type: DisruptionAllowedCondition, status: "False", reason: SyncFailedReason, message: errorMessage(err), observedGeneration: status.observedGeneration ?? 0 },
      rfc3339(this.clock.now()),
    );
    next.status = status;
    await this.pdbClient.updateStatus(next);
  }
}

/** Ready pods that are neither being deleted nor recorded as about to be evicted. */
export function countHealthyPods(pods: readonly Readonly<Pod>[], disruptedPods: Record<string, string>, now: number): number {
  let n = 0;
  for (const pod of pods) {
    if (pod.metadata.deletionTimestamp) continue;
    const at = disruptedPods[pod.metadata.name ?? ""];
    if (at !== undefined && parseTime(at) + DeletionTimeoutMs > now) continue;
    if (isPodReady(pod)) n++;
  }
  return n;
}

/** The selector as Go's %v prints a *metav1.LabelSelector, near enough for an event message. */
function formatSelector(pdb: Readonly<PodDisruptionBudget>): string {
  const sel = pdb.spec?.selector;
  if (!sel) return "nil";
  const labels = Object.entries(sel.matchLabels ?? {})
    .map(([k, v]) => `${k}:${v}`)
    .join(" ");
  return `&LabelSelector{MatchLabels:map[string]string{${labels}},MatchExpressions:[]LabelSelectorRequirement{},}`;
}
