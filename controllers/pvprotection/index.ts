// The PV protection controller (pkg/controller/volume/pvprotection): a PersistentVolume keeps the
// kubernetes.io/pv-protection finalizer while it exists; once it is being deleted the finalizer goes
// as soon as the volume is no longer Bound to a claim.

import { PVProtectionFinalizer, type PersistentVolume } from "../../api/index.ts";
import { isConflict, isNotFound } from "../../client/errors.ts";
import type { Client, Lister, ObjectKey, ReconcileContext, Reconciler, Result } from "../../client/types.ts";
import { deepCopy } from "../podcontrol.ts";

export interface PVProtectionDeps {
  client: Client;
  volumes: Lister<PersistentVolume>;
}

export class PVProtectionController implements Reconciler {
  constructor(private readonly deps: PVProtectionDeps) {}

  async reconcile(ctx: ReconcileContext, key: ObjectKey): Promise<Result | void> {
    const pv = this.deps.volumes.get(key);
    if (!pv) return;
    const finalizers = pv.metadata.finalizers ?? [];
    const has = finalizers.includes(PVProtectionFinalizer);
    if (!pv.metadata.deletionTimestamp) {
      if (has) return;
      return this.write(ctx, pv, [...finalizers, PVProtectionFinalizer]);
    }
    // Upstream's isVolumeUsed: a Bound volume is in use by its claim.
    if (!has || pv.status?.phase === "Bound") return;
    return this.write(ctx, pv, finalizers.filter((f) => f !== PVProtectionFinalizer));
  }

  private async write(ctx: ReconcileContext, pv: Readonly<PersistentVolume>, finalizers: string[]): Promise<Result | void> {
    const next = deepCopy(pv);
    next.metadata.finalizers = finalizers;
    try {
      await this.deps.client.resource<PersistentVolume>("", "persistentvolumes").update(next);
      ctx.log.info({ volume: pv.metadata.name, finalizers }, "updated the volume's protection finalizer");
    } catch (e) {
      if (isNotFound(e)) return;
      if (isConflict(e)) return { requeue: true };
      throw e;
    }
  }
}
