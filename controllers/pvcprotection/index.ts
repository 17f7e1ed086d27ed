// The PVC protection controller (pkg/controller/volume/pvcprotection): a claim keeps the
// kubernetes.io/pvc-protection finalizer while it exists; once it is being deleted the finalizer is
// removed as soon as no scheduled, not-yet-finished pod uses it — so a claim in use outlives its delete.

import { PVCProtectionFinalizer, type PersistentVolumeClaim, type Pod } from "../../api/index.ts";
import { isNotFound, isConflict } from "../../client/errors.ts";
import type { Client, Lister, ObjectKey, ReconcileContext, Reconciler, Result } from "../../client/types.ts";
import { deepCopy } from "../podcontrol.ts";

export interface PVCProtectionDeps {
  client: Client;
  claims: Lister<PersistentVolumeClaim>;
  pods: Lister<Pod>;
}

/** The claim names a pod's volumes refer to (persistentVolumeClaim and generic ephemeral volumes). */
export function claimNamesOf(pod: Readonly<Pod>): string[] {
  const out: string[] = [];
  for (const v of pod.spec?.volumes ?? []) {
    if (v.persistentVolumeClaim?.claimName) out.push(v.persistentVolumeClaim.claimName);
    else if ((v as { ephemeral?: unknown }).ephemeral) out.push(`${pod.metadata.name}-${v.name}`);
  }
  return out;
}

/** Upstream's podUsesPVC: only a scheduled pod that has not finished holds its claims. */
export function podUsesClaim(pod: Readonly<Pod>, claim: string): boolean {
  if (!pod.spec?.nodeName) return false;
  const phase = pod.status?.phase;
  if (phase === "Succeeded" || phase === "Failed") return false;
  return claimNamesOf(pod).includes(claim);
}

export class PVCProtectionController implements Reconciler {
  constructor(private readonly deps: PVCProtectionDeps) {}

  async reconcile(ctx: ReconcileContext, key: ObjectKey): Promise<Result | void> {
    const claim = this.deps.claims.get(key);
    if (!claim) return;
    const finalizers = claim.metadata.finalizers ?? [];
    const has = finalizers.includes(PVCProtectionFinalizer);
    const namespace = claim.metadata.namespace ?? "";
    const name = claim.metadata.name ?? "";
    if (!claim.metadata.deletionTimestamp) {
      if (has) return;
      return this.write(ctx, claim, [...finalizers, PVCProtectionFinalizer]);
    }
    if (!has) return;
    const users = this.deps.pods.listNamespace(namespace).filter((p) => podUsesClaim(p, name));
    if (users.length > 0) {
      ctx.log.debug({ claim: key, pods: users.map((p) => p.metadata.name) }, "claim is in use; keeping its protection finalizer");
      return;
    }
    // The cache may lag a just-scheduled pod: ask the apiserver before letting the claim go (as upstream).
    const live = await this.deps.client.resource<Pod>("", "pods").list(namespace);
    if (live.items.some((p) => podUsesClaim(p, name))) return;
    return this.write(ctx, claim, finalizers.filter((f) => f !== PVCProtectionFinalizer));
  }

  private async write(ctx: ReconcileContext, claim: Readonly<PersistentVolumeClaim>, finalizers: string[]): Promise<Result | void> {
    const next = deepCopy(claim);
    next.metadata.finalizers = finalizers;
    try {
      await this.deps.client.resource<PersistentVolumeClaim>("", "persistentvolumeclaims").update(next);
      ctx.log.info({ claim: `${claim.metadata.namespace}/${claim.metadata.name}`, finalizers }, "updated the claim's protection finalizer");
    } catch (e) {
      if (isNotFound(e)) return;
      if (isConflict(e)) return { requeue: true };
      throw e;
    }
  }
}
