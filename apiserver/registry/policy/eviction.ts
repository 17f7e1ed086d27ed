// The pods/eviction subresource (upstream's EvictionREST): a pod is deleted only if the one
// PodDisruptionBudget covering it allows a disruption, which is taken from the budget's status
// (disruptionsAllowed - 1, the pod recorded in disruptedPods) by a resourceVersion-checked status
// update before the pod is deleted. Otherwise 429, which `kubectl drain` retries every 5 s.

import type { DeleteOptions, KubeObject, Pod, PodCondition, PodDisruptionBudget } from "../../../api/index.ts";
import { DisruptionAllowedCondition, DisruptionBudgetCause, InsufficientPodsReason, labelSelectorAsSelector } from "../../../api/index.ts";
import { ApiError, errors, isApiError, successStatus } from "../../errors.ts";
import type { Registry } from "../registry.ts";
import { rfc3339 } from "../store.ts";

/** Upstream's MaxDisruptedPodSize: past this many unconfirmed evictions the budget refuses more. */
export const MaxDisruptedPodSize = 2000;
/** Attempts at the budget's status update when other evictions race for it (upstream's EvictionsRetry steps). */
const EVICTION_RETRIES = 20;

const TOO_MANY_REQUESTS = "Cannot evict pod as it would violate the pod's disruption budget.";
const PDB_GR = { group: "policy", resource: "poddisruptionbudget" };

export interface EvictionResult {
  code: number;
  body: unknown;
}

/** The budget's status is for an older spec, or a racing eviction changed the pod: the client should retry soon. */
function stillProcessing(pdbName: string): ApiError {
  return new ApiError(429, "TooManyRequests", TOO_MANY_REQUESTS, {
    causes: [{ reason: DisruptionBudgetCause, message: `The disruption budget ${pdbName} is still being processed by the server.` }],
    retryAfterSeconds: 10,
  });
}

function violates(pdb: Readonly<PodDisruptionBudget>): ApiError {
  const s = pdb.status;
  return new ApiError(429, "TooManyRequests", TOO_MANY_REQUESTS, {
    causes: [
      {
        reason: DisruptionBudgetCause,
        message: `The disruption budget ${pdb.metadata.name ?? ""} needs ${s?.desiredHealthy ?? 0} healthy pods and has ${s?.currentHealthy ?? 0} currently`,
      },
    ],
  });
}

function isPodReady(pod: Readonly<Pod>): boolean {
  return (pod.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
}

/** Terminal and pending pods cause no further disruption (canIgnorePDB); nor does one already being deleted. */
function canIgnorePDB(pod: Readonly<Pod>): boolean {
  const phase = pod.status?.phase;
  return phase === "Succeeded" || phase === "Failed" || phase === "Pending" || pod.metadata.deletionTimestamp !== undefined;
}

function shouldEnforceResourceVersion(pod: Readonly<Pod>): boolean {
  const phase = pod.status?.phase;
  return !(phase === "Succeeded" || phase === "Failed" || pod.metadata.deletionTimestamp !== undefined);
}

function withResourceVersion(options: DeleteOptions, rv: string | undefined): DeleteOptions {
  return { ...options, preconditions: { ...options.preconditions, resourceVersion: rv } };
}

export class EvictionREST {
  constructor(private readonly registry: Registry) {}

  private get pods() {
    return this.registry.store("", "pods");
  }

  private get budgets() {
    return this.registry.store("policy", "poddisruptionbudgets");
  }

  /** POST pods/NAME/eviction with the Eviction's deleteOptions. */
  async create(namespace: string, name: string, original: DeleteOptions, dryRun: boolean): Promise<EvictionResult> {
    const success: EvictionResult = { code: 201, body: { ...successStatus(), code: 201 } };
    // A caller's own resourceVersion precondition is theirs to retry; ours (below) is retried here.
    const callerPinnedRV = original.preconditions?.resourceVersion !== undefined && original.preconditions.resourceVersion !== "";

    const pod = (await this.pods.get(namespace, name)) as Pod;
    // Evicting a terminal or pending pod disrupts nothing further: delete it, no budget checked.
    if (!dryRun && canIgnorePDB(pod)) {
      const opts = shouldEnforceResourceVersion(pod) && !callerPinnedRV ? withResourceVersion(original, pod.metadata.resourceVersion) : original;
      await this.addConditionAndDeletePod(namespace, name, opts, dryRun);
      return success;
    }
    if (pod.metadata.deletionTimestamp) return success;

    const pdbs = await this.podDisruptionBudgets(pod);
    if (pdbs.length > 1) {
      return {
        code: 500,
        body: {
          kind: "Status",
          apiVersion: "v1",
          metadata: {},
          status: "Failure",
          message: "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
          code: 500,
        },
      };
    }

    let updateDeletionOptions = false;
    let pdbName = "";
    if (pdbs.length === 1) {
      let pdb = pdbs[0]!;
      pdbName = pdb.metadata.name ?? "";
      if (!isPodReady(pod) && pdb.spec?.unhealthyPodEvictionPolicy === "AlwaysAllow") {
        updateDeletionOptions = true;
      } else {
        for (let attempt = 0; ; attempt++) {
          // IfHealthyBudget: an unready pod counts toward nothing, so it may go while the budget is met.
          const s = pdb.status;
          if (!isPodReady(pod) && (s?.currentHealthy ?? 0) >= (s?.desiredHealthy ?? 0) && (s?.desiredHealthy ?? 0) > 0) {
            updateDeletionOptions = true;
            break;
          }
          try {
            await this.checkAndDecrement(namespace, name, pdb, dryRun);
            break;
          } catch (e) {
            if (!(isApiError(e) && e.code === 409) || attempt + 1 >= EVICTION_RETRIES) {
              if (isApiError(e) && e.code === 409) throw errors.timeout(`couldn't update PodDisruptionBudget "${pdbName}" due to conflicts`);
              throw e;
            }
            pdb = (await this.budgets.get(namespace, pdbName)) as PodDisruptionBudget;
          }
        }
      }
    }

    // The pod must not have turned Ready since the unready-pod decision was made on it.
    const opts = updateDeletionOptions && !callerPinnedRV ? withResourceVersion(original, pod.metadata.resourceVersion) : original;
    try {
      await this.addConditionAndDeletePod(namespace, name, opts, dryRun);
    } catch (e) {
      if (isApiError(e) && e.code === 409 && updateDeletionOptions && !callerPinnedRV) throw stillProcessing(pdbName);
      throw e;
    }
    return success;
  }

  /** The budgets in the pod's namespace whose selector matches it (a null selector matches nothing). */
  private async podDisruptionBudgets(pod: Readonly<Pod>): Promise<PodDisruptionBudget[]> {
    const list = await this.budgets.list(pod.metadata.namespace ?? "", {});
    const out: PodDisruptionBudget[] = [];
    for (const item of list.items as PodDisruptionBudget[]) {
      try {
        if (labelSelectorAsSelector(item.spec?.selector).matches(pod.metadata.labels ?? {})) out.push(item);
      } catch {
        // An invalid selector matches no pod.
      }
    }
    return out;
  }

  /** Takes one disruption from the budget, or refuses with 429; the status write is pinned to the budget's resourceVersion. */
  private async checkAndDecrement(namespace: string, podName: string, pdb: Readonly<PodDisruptionBudget>, dryRun: boolean): Promise<void> {
    const name = pdb.metadata.name ?? "";
    const status = pdb.status ?? { disruptionsAllowed: 0, currentHealthy: 0, desiredHealthy: 0, expectedPods: 0 };
    if ((status.observedGeneration ?? 0) < (pdb.metadata.generation ?? 0)) throw stillProcessing(name);
    if (status.disruptionsAllowed < 0) throw errors.forbidden(PDB_GR, name, "pdb disruptions allowed is negative");
    if (Object.keys(status.disruptedPods ?? {}).length > MaxDisruptedPodSize) {
      throw errors.forbidden(PDB_GR, name, "DisruptedPods map too big - too many evictions not confirmed by PDB controller");
    }
    if (status.disruptionsAllowed === 0) throw violates(pdb);
    if (dryRun) return;

    const next: PodDisruptionBudget = structuredClone(pdb) as PodDisruptionBudget;
    const ns = next.status!;
    ns.disruptionsAllowed = status.disruptionsAllowed - 1;
    if (ns.disruptionsAllowed === 0) {
      // UpdateDisruptionAllowedCondition: the budget is now exhausted.
      const conditions = ns.conditions ?? [];
      const i = conditions.findIndex((c) => c.type === DisruptionAllowedCondition);
      const now = this.registry.now();
      const cond = { type: DisruptionAllowedCondition, status: "False" as const, reason: InsufficientPodsReason, message: "", observedGeneration: ns.observedGeneration ?? 0, lastTransitionTime: now };
      if (i < 0) conditions.push(cond);
      else {
        const old = conditions[i]!;
        conditions[i] = { ...cond, message: old.status === "False" ? old.message : "", lastTransitionTime: old.status === "False" ? old.lastTransitionTime : now };
      }
      ns.conditions = conditions;
    }
    // Tells the disruption controller this pod is about to go, so it no longer counts it as healthy.
    ns.disruptedPods = { ...ns.disruptedPods, [podName]: this.registry.now() };
    await this.budgets.update(namespace, name, () => next as KubeObject, { subresource: "status" });
  }

  /** Adds the DisruptionTarget condition (as upstream since 1.31), then deletes the pod with `options`. */
  private async addConditionAndDeletePod(namespace: string, name: string, options: DeleteOptions, dryRun: boolean): Promise<void> {
    let opts = options;
    if (!dryRun) {
      const updated = await this.pods.update(
        namespace,
        name,
        (cur) => {
          if (!cur) throw errors.notFound(this.pods.gr, name);
          const pre = options.preconditions;
          if (pre?.uid && pre.uid !== cur.metadata.uid) {
            throw errors.conflict(this.pods.gr, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${cur.metadata.uid}`);
          }
          if (pre?.resourceVersion && pre.resourceVersion !== cur.metadata.resourceVersion) {
            throw errors.conflict(
              this.pods.gr,
              name,
              `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${cur.metadata.resourceVersion}`,
            );
          }
          if (cur.metadata.deletionTimestamp) return cur;
          const pod = cur as Pod;
          const conditions: PodCondition[] = [...(pod.status?.conditions ?? [])];
          const cond: PodCondition = { type: "DisruptionTarget", status: "True", reason: "EvictionByEvictionAPI", message: "Eviction API: evicting" };
          const i = conditions.findIndex((c) => c.type === "DisruptionTarget");
          if (i < 0) conditions.push({ ...cond, lastTransitionTime: rfc3339(this.registry.ctx.now()) });
          else if (conditions[i]!.status !== "True") conditions[i] = { ...cond, lastTransitionTime: rfc3339(this.registry.ctx.now()) };
          else conditions[i] = { ...conditions[i]!, reason: cond.reason, message: cond.message };
          pod.status = { ...pod.status, conditions };
          return pod;
        },
        { subresource: "status" },
      );
      // Our own write moved the resourceVersion the precondition pinned.
      if (opts.preconditions?.resourceVersion) opts = withResourceVersion(opts, updated.obj.metadata.resourceVersion);
    }
    await this.pods.delete(namespace, name, opts, { dryRun });
  }
}
