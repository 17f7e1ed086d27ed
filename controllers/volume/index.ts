// The PersistentVolume controller (pkg/controller/volume/persistentvolume) with, in the same process,
// what the CSI sidecars of kubelab's two simulated drivers do (external-provisioner, external-resizer):
//   - claims: static binding (pre-bound claimRef / volumeName first, else the smallest matching PV of
//     the claim's class), dynamic provisioning for zonal.csi.kubelab.io / regional.csi.kubelab.io
//     (Immediate at once, WaitForFirstConsumer once the scheduler wrote volume.kubernetes.io/selected-node),
//     Lost when a bound claim's volume disappears, expansion of bound claims;
//   - volumes: Available / Bound / Released / Failed, and the reclaim policy once the claim is gone
//     (Delete: the host directory <volume-dir>/<handle> and the object; Retain: stays Released).
// Keys are "pvc:<namespace>/<name>" and "pv:<name>" on one queue.

import { rm } from "node:fs/promises";
import { join } from "node:path";
import {
  AnnBindCompleted,
  AnnBoundByController,
  AnnDynamicallyProvisioned,
  AnnSelectedNode,
  AnnStorageProvisioner,
  labelSelectorAsSelector,
  ZONAL_PROVISIONER,
  type Node,
  type PersistentVolume,
  type PersistentVolumeClaim,
  type StorageClass,
} from "../../api/index.ts";
import { isAlreadyExists, isConflict, isNotFound } from "../../client/errors.ts";
import type { Client, EventRecorder, Lister, ObjectKey, ReconcileContext, Reconciler, Result } from "../../client/types.ts";
import { deepCopy, errorMessage } from "../podcontrol.ts";
import { supportedAccessModes } from "./classes.ts";
import {
  accessModesContain,
  bytes,
  claimRequest,
  isKubelabHandle,
  KUBELAB_PROVISIONERS,
  REGION_LABEL,
  roundUpToGi,
  volumeCapacity,
  volumeFitsNode,
  volumeHandle,
  ZONE_LABEL,
} from "./util.ts";

export const claimKey = (ns: string, name: string): ObjectKey => `pvc:${ns}/${name}`;
export const volumeKey = (name: string): ObjectKey => `pv:${name}`;

/** Upstream's messages (pv_controller.go, external-provisioner, external-resizer). */
export const Messages = {
  waitForFirstConsumer: "waiting for first consumer to be created before binding",
  noClass: "no persistent volumes available for this claim and no storage class is set",
  externalProvisioning: (p: string) =>
    `Waiting for a volume to be created either by the external provisioner '${p}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.`,
  provisioning: (claim: string) => `External provisioner is provisioning volume for claim "${claim}"`,
  provisioned: (pv: string) => `Successfully provisioned volume ${pv}`,
  provisionFailed: (cls: string, why: string) => `failed to provision volume with StorageClass "${cls}": ${why}`,
  classNotFound: (cls: string) => `storageclass.storage.k8s.io "${cls}" not found`,
  claimLost: "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
  claimMisbound: "Two claims are bound to the same volume, this one is bound incorrectly",
  resizing: (pv: string) => `External resizer is resizing volume ${pv}`,
  resized: "Resize volume succeeded",
};

export interface PersistentVolumeControllerDeps {
  client: Client;
  claims: Lister<PersistentVolumeClaim>;
  volumes: Lister<PersistentVolume>;
  classes: Lister<StorageClass>;
  nodes: Lister<Node>;
  /** Events of the binder ("persistentvolume-controller"). */
  recorder: EventRecorder;
  /** Events of a driver's sidecars (provisioner, resizer), by driver name; default `recorder`. */
  driverRecorder?: (driver: string) => EventRecorder;
  /** --volume-dir: where the simulated cloud keeps each volume's data, as <dir>/<volumeHandle>. */
  volumeDir?: string;
}

function annotations(o: { metadata: { annotations?: Record<string, string> } }): Record<string, string> {
  return o.metadata.annotations ?? {};
}

function nsName(claim: Readonly<PersistentVolumeClaim>): string {
  return `${claim.metadata.namespace}/${claim.metadata.name}`;
}

/** The PV's claimRef names this claim (and, when it carries a uid, this very claim). */
function refersTo(pv: Readonly<PersistentVolume>, claim: Readonly<PersistentVolumeClaim>): boolean {
  const ref = pv.spec?.claimRef;
  if (!ref) return false;
  if (ref.namespace !== claim.metadata.namespace || ref.name !== claim.metadata.name) return false;
  return !ref.uid || ref.uid === claim.metadata.uid;
}

function className(o: { spec?: { storageClassName?: string } }): string {
  return o.spec?.storageClassName ?? "";
}

export class PersistentVolumeController implements Reconciler {
  constructor(private readonly deps: PersistentVolumeControllerDeps) {}

  async reconcile(ctx: ReconcileContext, key: ObjectKey): Promise<Result | void> {
    try {
      if (key.startsWith("pvc:")) return await this.syncClaim(ctx, key.slice(4));
      if (key.startsWith("pv:")) return await this.syncVolume(ctx, key.slice(3));
    } catch (e) {
      // Another writer got there first: the informer brings the new state and the key back.
      if (isConflict(e)) return { requeue: true };
      throw e;
    }
  }

  private driverRecorder(driver: string): EventRecorder {
    return this.deps.driverRecorder?.(driver) ?? this.deps.recorder;
  }

  // ---- claims -------------------------------------------------------------------------------

  private async syncClaim(ctx: ReconcileContext, key: string): Promise<Result | void> {
    const claim = this.deps.claims.get(key);
    if (!claim || claim.metadata.deletionTimestamp) return;
    const volumeName = claim.spec?.volumeName ?? "";
    if (!volumeName) return this.syncUnboundClaim(ctx, claim);
    const pv = this.deps.volumes.get(volumeName);
    if (!pv) {
      if (claim.status?.phase === "Bound") {
        await this.claimPhase(claim, "Lost");
        this.deps.recorder.event(claim, "Warning", "ClaimLost", Messages.claimLost);
      }
      return; // a user pre-bound the claim to a volume that does not exist (yet): stay Pending
    }
    if (!pv.spec?.claimRef) {
      // volumeName pre-binding: the user chose the volume; complete the PV's half.
      return this.bind(ctx, claim, pv);
    }
    if (refersTo(pv, claim)) {
      if (!this.bindingComplete(claim, pv)) return this.bind(ctx, claim, pv);
      return this.expand(ctx, claim, pv);
    }
    // The volume belongs to another claim.
    if (claim.status?.phase === "Bound") {
      await this.claimPhase(claim, "Lost");
      this.deps.recorder.event(claim, "Warning", "ClaimMisbound", Messages.claimMisbound);
    } else {
      this.deps.recorder.event(claim, "Warning", "FailedBinding", `volume "${volumeName}" already bound to a different claim.`);
    }
  }

  private bindingComplete(claim: Readonly<PersistentVolumeClaim>, pv: Readonly<PersistentVolume>): boolean {
    return (
      claim.status?.phase === "Bound" &&
      annotations(claim)[AnnBindCompleted] === "yes" &&
      pv.status?.phase === "Bound" &&
      pv.spec?.claimRef?.uid === claim.metadata.uid
    );
  }

  private async syncUnboundClaim(ctx: ReconcileContext, claim: Readonly<PersistentVolumeClaim>): Promise<Result | void> {
    const cls = className(claim);
    const sc = cls ? this.deps.classes.get(cls) : undefined;
    const delayed = sc?.volumeBindingMode === "WaitForFirstConsumer";
    const selectedNode = annotations(claim)[AnnSelectedNode];
    const node = selectedNode ? this.deps.nodes.get(selectedNode) : undefined;

    const pv = this.findMatchingVolume(claim, delayed ? node : undefined, delayed && !selectedNode);
    if (pv) return this.bind(ctx, claim, pv);

    if (!cls) {
      this.deps.recorder.event(claim, "Normal", "FailedBinding", Messages.noClass);
      return;
    }
    if (!sc) {
      this.deps.recorder.event(claim, "Warning", "ProvisioningFailed", Messages.classNotFound(cls));
      return;
    }
    if (delayed && !selectedNode) {
      this.deps.recorder.event(claim, "Normal", "WaitForFirstConsumer", Messages.waitForFirstConsumer);
      return;
    }
    let current = claim;
    if (annotations(claim)[AnnStorageProvisioner] !== sc.provisioner) {
      const next = deepCopy(claim);
      next.metadata.annotations = { ...annotations(next), [AnnStorageProvisioner]: sc.provisioner };
      current = await this.deps.client.resource<PersistentVolumeClaim>("", "persistentvolumeclaims").update(next);
      this.deps.recorder.event(claim, "Normal", "ExternalProvisioning", Messages.externalProvisioning(sc.provisioner));
    }
    if (!KUBELAB_PROVISIONERS.includes(sc.provisioner)) return; // someone else's driver: it provisions
    return this.provision(ctx, current, sc, delayed ? selectedNode : undefined);
  }

  /**
   * findBestMatchForClaim: a volume pre-bound to the claim wins; else the smallest Available volume
   * of the claim's class with enough capacity, the access modes, the volume mode, the selector's
   * labels and (delayed binding) node affinity admitting the selected node.
   */
  findMatchingVolume(claim: Readonly<PersistentVolumeClaim>, node: Readonly<Node> | undefined, noNodeYet: boolean): Readonly<PersistentVolume> | undefined {
    const request = claimRequest(claim) ?? 0;
    const cls = className(claim);
    const mode = claim.spec?.volumeMode ?? "Filesystem";
    const selector = claim.spec?.selector ? labelSelectorAsSelector(claim.spec.selector) : undefined;
    let best: Readonly<PersistentVolume> | undefined;
    for (const pv of this.deps.volumes.list()) {
      if (pv.metadata.deletionTimestamp) continue;
      const preBound = refersTo(pv, claim);
      if (pv.spec?.claimRef && !preBound) continue;
      if (pv.status?.phase === "Released" || pv.status?.phase === "Failed") continue;
      if (className(pv) !== cls) continue;
      if ((pv.spec?.volumeMode ?? "Filesystem") !== mode) continue;
      if (!accessModesContain(pv.spec?.accessModes, claim.spec?.accessModes)) continue;
      const cap = volumeCapacity(pv) ?? 0;
      if (cap < request) continue;
      if (!preBound && selector && !selector.matches(pv.metadata.labels)) continue;
      if (node && !volumeFitsNode(pv, node)) continue;
      // Delayed binding without a node yet: only a pre-bound volume may be taken now.
      if (noNodeYet && !preBound) continue;
      if (preBound) return pv;
      if (!best || cap < (volumeCapacity(best) ?? 0)) best = pv;
    }
    return best;
  }

  /** bind(): the PV's half (claimRef, Bound), then the claim's (volumeName, annotations, Bound status). */
  private async bind(ctx: ReconcileContext, claim: Readonly<PersistentVolumeClaim>, pv: Readonly<PersistentVolume>): Promise<void> {
    const pvs = this.deps.client.resource<PersistentVolume>("", "persistentvolumes");
    const pvcs = this.deps.client.resource<PersistentVolumeClaim>("", "persistentvolumeclaims");
    let volume = pv;
    if (volume.spec?.claimRef?.uid !== claim.metadata.uid) {
      const next = deepCopy(volume);
      next.spec ??= {};
      const preBoundByUser = !!next.spec.claimRef;
      next.spec.claimRef = {
        kind: "PersistentVolumeClaim",
        namespace: claim.metadata.namespace,
        name: claim.metadata.name,
        uid: claim.metadata.uid,
        apiVersion: "v1",
        resourceVersion: claim.metadata.resourceVersion,
      };
      if (!preBoundByUser) next.metadata.annotations = { ...annotations(next), [AnnBoundByController]: "yes" };
      volume = await pvs.update(next);
    }
    if (volume.status?.phase !== "Bound") {
      const next = deepCopy(volume);
      next.status = { ...next.status, phase: "Bound" };
      volume = await pvs.updateStatus(next);
    }
    let c: Readonly<PersistentVolumeClaim> = claim;
    if (c.spec?.volumeName !== volume.metadata.name || annotations(c)[AnnBindCompleted] !== "yes") {
      const next = deepCopy(c);
      next.spec ??= {};
      const byController = !next.spec.volumeName;
      next.spec.volumeName = volume.metadata.name;
      next.metadata.annotations = { ...annotations(next), [AnnBindCompleted]: "yes", ...(byController ? { [AnnBoundByController]: "yes" } : {}) };
      c = await pvcs.update(next);
    }
    if (c.status?.phase !== "Bound" || !c.status.capacity) {
      const next = deepCopy(c);
      next.status = { ...next.status, phase: "Bound", accessModes: volume.spec?.accessModes, capacity: { ...(volume.spec?.capacity ?? {}) } };
      c = await pvcs.updateStatus(next);
    }
    ctx.log.info({ claim: nsName(claim), volume: volume.metadata.name }, "bound claim to volume");
  }

  private async claimPhase(claim: Readonly<PersistentVolumeClaim>, phase: "Lost" | "Pending"): Promise<void> {
    if (claim.status?.phase === phase) return;
    const next = deepCopy(claim);
    next.status = { ...next.status, phase };
    await this.deps.client.resource<PersistentVolumeClaim>("", "persistentvolumeclaims").updateStatus(next);
  }

  // ---- provisioning (the drivers' external-provisioner) ---------------------------------------

  /** Why the class's driver cannot provision this claim, or the volume's zone. */
  private provisionPlan(claim: Readonly<PersistentVolumeClaim>, sc: Readonly<StorageClass>, selectedNode: string | undefined): { error: string } | { zone?: string; region?: string } {
    const driver = sc.provisioner;
    const supported = supportedAccessModes(driver);
    for (const m of claim.spec?.accessModes ?? []) {
      if (!supported.includes(m)) {
        return { error: `rpc error: code = InvalidArgument desc = access mode ${m} not supported: ${driver} volumes support only ${supported.join(", ")}` };
      }
    }
    const request = claimRequest(claim) ?? 0;
    const max = sc.parameters?.maxSize;
    if (max !== undefined) {
      const maxBytes = bytes(max);
      if (maxBytes === undefined) return { error: `rpc error: code = InvalidArgument desc = invalid maxSize parameter "${max}"` };
      if (request > maxBytes) {
        return { error: `rpc error: code = OutOfRange desc = requested size ${claim.spec?.resources?.requests?.storage} is more than the class's maxSize ${max}` };
      }
    }
    if (driver !== ZONAL_PROVISIONER) return {};
    if (selectedNode) {
      const node = this.deps.nodes.get(selectedNode);
      if (!node) return { error: `rpc error: code = NotFound desc = selected node "${selectedNode}" not found` };
      const zone = node.metadata.labels?.[ZONE_LABEL];
      if (!zone) return { error: `rpc error: code = InvalidArgument desc = node "${selectedNode}" has no ${ZONE_LABEL} label` };
      return { zone, region: node.metadata.labels?.[REGION_LABEL] };
    }
    // Immediate zonal class: a zone its allowedTopologies admit, else the first zone with nodes.
    const allowed = (sc.allowedTopologies ?? []).flatMap((t) => (t.matchLabelExpressions ?? []).filter((e) => e.key === ZONE_LABEL).flatMap((e) => e.values));
    const zones = [...new Set(this.deps.nodes.list().map((n) => n.metadata.labels?.[ZONE_LABEL]).filter((z): z is string => !!z))].sort();
    const zone = allowed.length ? allowed.slice().sort()[0] : zones[0];
    if (!zone) return { error: "rpc error: code = ResourceExhausted desc = no zone to place the volume in: no node carries a zone label" };
    const region = this.deps.nodes.list().find((n) => n.metadata.labels?.[ZONE_LABEL] === zone)?.metadata.labels?.[REGION_LABEL];
    return { zone, region };
  }

  private async provision(ctx: ReconcileContext, claim: Readonly<PersistentVolumeClaim>, sc: Readonly<StorageClass>, selectedNode: string | undefined): Promise<Result | void> {
    const driver = sc.provisioner;
    const events = this.driverRecorder(driver);
    const name = `pvc-${claim.metadata.uid}`;
    const existing = this.deps.volumes.get(name);
    if (existing) return refersTo(existing, claim) ? this.bind(ctx, claim, existing) : undefined;
    const plan = this.provisionPlan(claim, sc, selectedNode);
    if ("error" in plan) {
      events.event(claim, "Warning", "ProvisioningFailed", Messages.provisionFailed(sc.metadata.name ?? "", plan.error));
      // Upstream's "rescheduling": drop the node so the scheduler picks again.
      if (selectedNode) {
        await this.deps.client
          .resource<PersistentVolumeClaim>("", "persistentvolumeclaims")
          .patch(claim.metadata.namespace ?? "", claim.metadata.name ?? "", "merge", { metadata: { annotations: { [AnnSelectedNode]: null } } });
      }
      return;
    }
    events.event(claim, "Normal", "Provisioning", Messages.provisioning(nsName(claim)));
    const request = claim.spec?.resources?.requests?.storage ?? "1Gi";
    const zonal = driver === ZONAL_PROVISIONER;
    const labels: Record<string, string> = {};
    if (plan.zone) labels[ZONE_LABEL] = plan.zone;
    if (plan.region) labels[REGION_LABEL] = plan.region;
    const pv: PersistentVolume = {
      apiVersion: "v1",
      kind: "PersistentVolume",
      metadata: { name, annotations: { [AnnDynamicallyProvisioned]: driver }, ...(Object.keys(labels).length ? { labels } : {}) },
      spec: {
        capacity: { storage: zonal ? roundUpToGi(request) : request },
        accessModes: [...(claim.spec?.accessModes ?? ["ReadWriteOnce"])],
        persistentVolumeReclaimPolicy: sc.reclaimPolicy ?? "Delete",
        storageClassName: sc.metadata.name,
        volumeMode: claim.spec?.volumeMode ?? "Filesystem",
        claimRef: { kind: "PersistentVolumeClaim", namespace: claim.metadata.namespace, name: claim.metadata.name, uid: claim.metadata.uid, apiVersion: "v1" },
        csi: { driver, volumeHandle: volumeHandle(driver, claim.metadata.uid ?? name), ...(zonal ? { fsType: "ext4" } : {}) },
        ...(sc.mountOptions?.length ? { mountOptions: [...sc.mountOptions] } : {}),
        ...(zonal && plan.zone ? { nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: ZONE_LABEL, operator: "In", values: [plan.zone] }] }] } } } : {}),
      },
    };
    let created: PersistentVolume;
    try {
      created = await this.deps.client.resource<PersistentVolume>("", "persistentvolumes").create("", pv);
    } catch (e) {
      if (isAlreadyExists(e)) return { requeue: true };
      events.event(claim, "Warning", "ProvisioningFailed", Messages.provisionFailed(sc.metadata.name ?? "", errorMessage(e)));
      throw e;
    }
    events.event(claim, "Normal", "ProvisioningSucceeded", Messages.provisioned(name));
    ctx.log.info({ claim: nsName(claim), volume: name, zone: plan.zone }, "provisioned volume");
    await this.bind(ctx, claim, created);
  }

  // ---- expansion (the drivers' external-resizer) ----------------------------------------------

  private async expand(ctx: ReconcileContext, claim: Readonly<PersistentVolumeClaim>, pv: Readonly<PersistentVolume>): Promise<void> {
    const request = claimRequest(claim);
    const statusCap = bytes(claim.status?.capacity?.storage);
    if (request === undefined || statusCap === undefined || request <= statusCap) return;
    const sc = this.deps.classes.get(className(claim));
    const driver = pv.spec?.csi?.driver ?? "";
    if (!sc || sc.allowVolumeExpansion !== true || !KUBELAB_PROVISIONERS.includes(driver)) return;
    const events = this.driverRecorder(driver);
    const requested = claim.spec?.resources?.requests?.storage ?? "";
    const max = sc.parameters?.maxSize;
    const maxBytes = max !== undefined ? bytes(max) : undefined;
    if (maxBytes !== undefined && request > maxBytes) {
      events.event(claim, "Warning", "VolumeResizeFailed", `resize volume "${pv.metadata.name}" by resizer "${driver}" failed: rpc error: code = OutOfRange desc = requested size ${requested} is more than the class's maxSize ${max}`);
      return;
    }
    const size = driver === ZONAL_PROVISIONER ? roundUpToGi(requested) : requested;
    let volume = pv;
    if ((volumeCapacity(pv) ?? 0) < request) {
      events.event(claim, "Normal", "Resizing", Messages.resizing(pv.metadata.name ?? ""));
      const next = deepCopy(pv);
      next.spec = { ...next.spec, capacity: { ...(next.spec?.capacity ?? {}), storage: size } };
      volume = await this.deps.client.resource<PersistentVolume>("", "persistentvolumes").update(next);
    }
    const next = deepCopy(claim);
    const status = { ...next.status, capacity: { ...(next.status?.capacity ?? {}), storage: volume.spec?.capacity?.storage ?? size } } as NonNullable<PersistentVolumeClaim["status"]> & {
      allocatedResources?: Record<string, string | number>;
    };
    status.allocatedResources = { storage: requested };
    next.status = status;
    await this.deps.client.resource<PersistentVolumeClaim>("", "persistentvolumeclaims").updateStatus(next);
    events.event(claim, "Normal", "VolumeResizeSuccessful", Messages.resized);
    ctx.log.info({ claim: nsName(claim), volume: pv.metadata.name, size }, "expanded volume");
  }

  // ---- volumes --------------------------------------------------------------------------------

  private async syncVolume(ctx: ReconcileContext, name: string): Promise<Result | void> {
    const pv = this.deps.volumes.get(name);
    if (!pv) return;
    const ref = pv.spec?.claimRef;
    if (!ref) {
      await this.volumePhase(pv, "Available");
      return;
    }
    const claim = this.deps.claims.get(`${ref.namespace}/${ref.name}`);
    if (!ref.uid) {
      // Pre-bound by a user to a claim that may not exist yet: Available to that claim only.
      if (pv.status?.phase !== "Available" && pv.status?.phase !== "Bound") await this.volumePhase(pv, "Available");
      return;
    }
    if (claim && claim.metadata.uid === ref.uid) {
      const vn = claim.spec?.volumeName ?? "";
      if (vn === name || vn === "") {
        // Bound, or the claim's half is still to be written (syncClaim does it).
        if (vn === name && pv.status?.phase !== "Bound") await this.volumePhase(pv, "Bound");
        return;
      }
      // The claim is bound to another volume: a volume the controller bound is given back.
      if (annotations(pv)[AnnBoundByController] === "yes") {
        const next = deepCopy(pv);
        delete next.spec!.claimRef;
        const ann = { ...annotations(next) };
        delete ann[AnnBoundByController];
        next.metadata.annotations = ann;
        const updated = await this.deps.client.resource<PersistentVolume>("", "persistentvolumes").update(next);
        await this.volumePhase(updated, "Available");
        return;
      }
    }
    if (!claim) {
      // The cache may lag: ask the apiserver before releasing anything (as upstream's syncVolume does).
      try {
        const live = await this.deps.client.resource<PersistentVolumeClaim>("", "persistentvolumeclaims").get(ref.namespace ?? "", ref.name ?? "");
        if (live.metadata.uid === ref.uid) return { requeueAfterMs: 1000 };
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
    // The claim is gone (or was replaced): the volume is released and its reclaim policy applies.
    return this.reclaim(ctx, pv);
  }

  private async volumePhase(pv: Readonly<PersistentVolume>, phase: "Available" | "Bound" | "Released" | "Failed", message?: { reason: string; message: string }): Promise<Readonly<PersistentVolume>> {
    if (pv.status?.phase === phase && (!message || pv.status.message === message.message)) return pv;
    const next = deepCopy(pv);
    next.status = { ...next.status, phase, ...(message ? { reason: message.reason, message: message.message } : { reason: undefined, message: undefined }) };
    return this.deps.client.resource<PersistentVolume>("", "persistentvolumes").updateStatus(next);
  }

  private async reclaim(ctx: ReconcileContext, pv: Readonly<PersistentVolume>): Promise<Result | void> {
    if (pv.status?.phase === "Failed") return;
    const policy = pv.spec?.persistentVolumeReclaimPolicy ?? "Retain";
    const released = await this.volumePhase(pv, "Released");
    if (policy === "Retain") return;
    if (pv.metadata.deletionTimestamp) return;
    const provisionedBy = annotations(pv)[AnnDynamicallyProvisioned];
    const driver = pv.spec?.csi?.driver;
    if (policy !== "Delete" || !provisionedBy || !KUBELAB_PROVISIONERS.includes(provisionedBy) || driver !== provisionedBy) {
      const why =
        policy === "Delete"
          ? `error getting deleter volume plugin for volume "${pv.metadata.name}": no deletable volume plugin matched`
          : `no volume plugin matched name: kubernetes.io/${policy.toLowerCase()}r`;
      this.deps.recorder.event(pv, "Warning", policy === "Delete" ? "VolumeFailedDelete" : "VolumeFailedRecycle", why);
      await this.volumePhase(released, "Failed", { reason: policy === "Delete" ? "VolumeFailedDelete" : "VolumeFailedRecycle", message: why });
      return;
    }
    const handle = pv.spec?.csi?.volumeHandle ?? "";
    if (this.deps.volumeDir && isKubelabHandle(handle)) {
      try {
        await rm(join(this.deps.volumeDir, handle), { recursive: true, force: true });
      } catch (e) {
        const why = `rpc error: code = Internal desc = could not delete volume ${handle}: ${errorMessage(e)}`;
        this.driverRecorder(driver).event(pv, "Warning", "VolumeFailedDelete", why);
        return { requeue: true };
      }
    }
    try {
      await this.deps.client.resource<PersistentVolume>("", "persistentvolumes").delete("", pv.metadata.name ?? "", {});
      ctx.log.info({ volume: pv.metadata.name, handle }, "deleted released volume");
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }
}
