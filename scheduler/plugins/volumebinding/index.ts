// VolumeBinding: a pod's claims must be usable from the node. Bound claims' volumes must admit the
// node (node affinity); unbound WaitForFirstConsumer claims are matched to a static PV that fits the
// node or provisioned in the node's topology (the class's allowedTopologies). Reserve assumes the
// choice, PreBind writes it (PV claimRef, or the claim's selected-node annotation) and waits until
// the volume controller has bound every claim. Upstream pkg/scheduler/framework/plugins/volumebinding
// (volume_binding.go and binder.go: FindPodVolumes, AssumePodVolumes, BindPodVolumes).

import {
  AnnBindCompleted,
  AnnBoundByController,
  AnnSelectedNode,
  parseQuantity,
  type Node,
  type PersistentVolume,
  type PersistentVolumeClaim,
  type Pod,
  type StorageClass,
  type TopologySelectorTerm,
} from "../../../api/index.ts";
import { realClock, type Clock } from "../../../client/index.ts";
import {
  ActionType,
  Status,
  type ClusterEvent,
  type CycleState,
  type EnqueueExtensions,
  type FilterPlugin,
  type Handle,
  type NodeInfo,
  type PluginFactory,
  type PreBindPlugin,
  type PreFilterPlugin,
  type PreFilterResult,
  type ReservePlugin,
} from "../../framework/types.ts";
import { nodeSelectorMatches } from "../../../api/index.ts";

export const NAME = "VolumeBinding";

export const ErrReasonBindConflict = "node(s) didn't find available persistent volumes to bind";
export const ErrReasonNodeConflict = "node(s) had volume node affinity conflict";
export const ErrReasonPVNotExist = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)";
export const ErrReasonUnboundImmediatePVC = "pod has unbound immediate PersistentVolumeClaims";

/** upstream's volume.NotSupportedProvisioner: a class for static volumes only. */
const NOT_SUPPORTED_PROVISIONER = "kubernetes.io/no-provisioner";
/** Deprecated claim annotation that still wins over spec.storageClassName (GetPersistentVolumeClaimClass). */
const BETA_STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class";
/** Upstream's default bindTimeoutSeconds is 600; the storage contract bounds ours at 60. */
export const DEFAULT_BIND_TIMEOUT_SECONDS = 60;
const POLL_INTERVAL_MS = 100;

/** The pod's claims, sorted by what Filter must do with them (upstream's PodVolumeClaims). */
export interface PodVolumeClaims {
  /** Fully bound claims and their volumes (undefined: the PV the claim names does not exist). */
  bound: { claim: Readonly<PersistentVolumeClaim>; pv: Readonly<PersistentVolume> | undefined }[];
  /** Unbound claims of a WaitForFirstConsumer class: bound or provisioned once the pod has a node. */
  delayed: Readonly<PersistentVolumeClaim>[];
  /** Static candidates for the delayed claims: unbound PVs of their classes (upstream's unboundVolumesDelayBinding), looked up once per cycle. */
  candidates: Readonly<PersistentVolume>[];
}

/** What Filter decided for one node (upstream's PodVolumes): static bindings and claims to provision. */
export interface PodVolumes {
  staticBindings: { pv: Readonly<PersistentVolume>; claim: Readonly<PersistentVolumeClaim> }[];
  dynamicProvisions: Readonly<PersistentVolumeClaim>[];
}

interface StateData {
  claims: PodVolumeClaims;
  /** Node name → its decision, written by Filter. */
  podVolumesByNode: Map<string, PodVolumes>;
  /** Filter writes the map from one cycle; preemption's clones share it, which is harmless. */
  clone(): StateData;
}

const STATE_KEY = `PreFilter${NAME}`;

export interface VolumeBindingOptions {
  /** How long PreBind waits for the claims to be bound (seconds; upstream's bindTimeoutSeconds). */
  bindTimeoutSeconds?: number;
  clock?: Clock;
}

export function claimClass(claim: Readonly<PersistentVolumeClaim>): string {
  return claim.metadata.annotations?.[BETA_STORAGE_CLASS_ANNOTATION] ?? claim.spec?.storageClassName ?? "";
}

/** volumeName set and the controller finished both halves of the binding (isPVCFullyBound). */
export function isClaimFullyBound(claim: Readonly<PersistentVolumeClaim>): boolean {
  return !!claim.spec?.volumeName && claim.metadata.annotations?.[AnnBindCompleted] !== undefined;
}

/** Every term's label requirements hold on the node; no terms admit every node (MatchTopologySelectorTerms). */
export function matchTopologySelectorTerms(terms: readonly TopologySelectorTerm[] | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!terms || terms.length === 0) return true;
  return terms.some((t) => (t.matchLabelExpressions ?? []).every((r) => labels[r.key] !== undefined && r.values.includes(labels[r.key]!)));
}

function quantity(q: string | number | undefined): number {
  if (q === undefined) return 0;
  try {
    return parseQuantity(q);
  } catch {
    return 0;
  }
}

/**
 * The smallest available PV of the claim's class that fits it and the node (upstream's
 * FindMatchingVolume with delayBinding): a PV pre-bound to this claim wins; PVs bound or pre-bound to
 * other claims, being deleted, too small, missing an access mode, failing the claim's selector or
 * the node affinity, or in `exclude`, are skipped.
 */
export function findMatchingVolume(
  claim: Readonly<PersistentVolumeClaim>,
  pvs: readonly Readonly<PersistentVolume>[],
  node: Readonly<Node>,
  exclude: ReadonlySet<string>,
): Readonly<PersistentVolume> | undefined {
  const cls = claimClass(claim);
  const request = quantity(claim.spec?.resources?.requests?.storage);
  const modes = claim.spec?.accessModes ?? [];
  let best: Readonly<PersistentVolume> | undefined;
  let bestSize = Infinity;
  for (const pv of pvs) {
    const name = pv.metadata.name ?? "";
    if (exclude.has(name) || pv.metadata.deletionTimestamp) continue;
    if ((pv.spec?.storageClassName ?? "") !== cls) continue;
    const ref = pv.spec?.claimRef;
    const preBoundHere = ref && ref.name === claim.metadata.name && ref.namespace === claim.metadata.namespace && (!ref.uid || ref.uid === claim.metadata.uid);
    if (ref && !preBoundHere) continue;
    if ((pv.spec?.volumeMode ?? "Filesystem") !== (claim.spec?.volumeMode ?? "Filesystem")) continue;
    const size = quantity(pv.spec?.capacity?.storage);
    if (size < request) continue;
    const have = new Set(pv.spec?.accessModes ?? []);
    if (!modes.every((m) => have.has(m))) continue;
    if (claim.spec?.selector && !selectorMatches(claim.spec.selector, pv.metadata.labels ?? {})) continue;
    if (!nodeSelectorMatches(pv.spec?.nodeAffinity?.required, node)) continue;
    if (preBoundHere) return pv;
    if (pv.status?.phase && pv.status.phase !== "Available" && pv.status.phase !== "Pending") continue;
    if (size < bestSize) {
      best = pv;
      bestSize = size;
    }
  }
  return best;
}

function selectorMatches(sel: NonNullable<NonNullable<PersistentVolumeClaim["spec"]>["selector"]>, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const v = labels[e.key];
    const values = e.values ?? [];
    if (e.operator === "In" && (v === undefined || !values.includes(v))) return false;
    if (e.operator === "NotIn" && v !== undefined && values.includes(v)) return false;
    if (e.operator === "Exists" && v === undefined) return false;
    if (e.operator === "DoesNotExist" && v !== undefined) return false;
  }
  return true;
}

export class VolumeBinding implements PreFilterPlugin, FilterPlugin, ReservePlugin, PreBindPlugin, EnqueueExtensions {
  readonly name = NAME;
  private readonly bindTimeoutMs: number;
  private readonly clock: Clock;
  /** Assume cache: PV name → the claim ("ns/name") a reserved pod will bind it to, until PreBind ends. */
  private readonly assumedPVs = new Map<string, string>();

  constructor(
    private readonly handle: Handle,
    opts: VolumeBindingOptions = {},
  ) {
    this.bindTimeoutMs = (opts.bindTimeoutSeconds ?? DEFAULT_BIND_TIMEOUT_SECONDS) * 1000;
    this.clock = opts.clock ?? realClock;
  }

  /** Claims binding, volumes or classes appearing, or a node whose labels fit a volume, can help. */
  eventsToRegister(): ClusterEvent[] {
    return [
      { resource: "PersistentVolumeClaim", actionType: ActionType.Add | ActionType.Update },
      { resource: "PersistentVolume", actionType: ActionType.Add | ActionType.Update },
      { resource: "StorageClass", actionType: ActionType.Add | ActionType.Update },
      { resource: "Node", actionType: ActionType.Add | ActionType.UpdateNodeLabel },
    ];
  }

  preFilter(state: CycleState, pod: Readonly<Pod>): { result?: PreFilterResult; status: Status } {
    const volumes = this.handle.volumes;
    if (!volumes) return { status: Status.skip() };
    const namespace = pod.metadata.namespace ?? "";
    const claims: PodVolumeClaims = { bound: [], delayed: [], candidates: [] };
    let any = false;
    for (const v of pod.spec?.volumes ?? []) {
      const claimName = v.persistentVolumeClaim?.claimName;
      if (!claimName) continue;
      any = true;
      const claim = volumes.pvc(namespace, claimName) as Readonly<PersistentVolumeClaim> | undefined;
      if (!claim) return { status: Status.unresolvable(`persistentvolumeclaim "${claimName}" not found`) };
      if (claim.metadata.deletionTimestamp) return { status: Status.unresolvable(`persistentvolumeclaim "${claimName}" is being deleted`) };
      if (isClaimFullyBound(claim)) {
        claims.bound.push({ claim, pv: volumes.pv(claim.spec!.volumeName!) as Readonly<PersistentVolume> | undefined });
        continue;
      }
      const className = claimClass(claim);
      const sc = className ? (volumes.storageClass(className) as Readonly<StorageClass> | undefined) : undefined;
      // No class, a class that binds at once, or a claim pre-bound to a PV: the PV controller binds it, not the scheduler.
      if (sc?.volumeBindingMode !== "WaitForFirstConsumer" || claim.spec?.volumeName) return { status: Status.unresolvable(ErrReasonUnboundImmediatePVC) };
      claims.delayed.push(claim);
    }
    if (!any) return { status: Status.skip() };
    if (claims.delayed.length > 0) {
      const classes = new Set(claims.delayed.map(claimClass));
      const names = new Set(claims.delayed.map((c) => `${c.metadata.namespace}/${c.metadata.name}`));
      claims.candidates = (volumes.listPVs?.() ?? []).filter((o) => {
        const pv = o as Readonly<PersistentVolume>;
        const ref = pv.spec?.claimRef;
        return classes.has(pv.spec?.storageClassName ?? "") && (!ref || names.has(`${ref.namespace}/${ref.name}`));
      }) as Readonly<PersistentVolume>[];
    }
    const data: StateData = { claims, podVolumesByNode: new Map(), clone: () => data };
    state.write(STATE_KEY, data);
    return { status: Status.success() };
  }

  filter(state: CycleState, _pod: Readonly<Pod>, nodeInfo: NodeInfo): Status {
    const s = state.read<StateData>(STATE_KEY);
    if (!s) return Status.success();
    const node = nodeInfo.node;
    const reasons = new Set<string>();
    for (const { pv } of s.claims.bound) {
      if (!pv) reasons.add(ErrReasonPVNotExist);
      else if (!nodeSelectorMatches(pv.spec?.nodeAffinity?.required, node)) reasons.add(ErrReasonNodeConflict);
    }
    const podVolumes: PodVolumes = { staticBindings: [], dynamicProvisions: [] };
    if (s.claims.delayed.length > 0) {
      const volumes = this.handle.volumes!;
      const exclude = new Set<string>();
      for (const claim of s.claims.delayed) {
        const key = `${claim.metadata.namespace}/${claim.metadata.name}`;
        for (const [pv, owner] of this.assumedPVs) if (owner !== key) exclude.add(pv);
        const pv = findMatchingVolume(claim, s.claims.candidates, node, exclude);
        if (pv) {
          exclude.add(pv.metadata.name ?? "");
          podVolumes.staticBindings.push({ pv, claim });
          continue;
        }
        // Nothing static fits: the class must be able to provision in this node's topology.
        const sc = volumes.storageClass(claimClass(claim)) as Readonly<StorageClass> | undefined;
        if (!sc || !sc.provisioner || sc.provisioner === NOT_SUPPORTED_PROVISIONER || !matchTopologySelectorTerms(sc.allowedTopologies, node.metadata.labels ?? {})) {
          reasons.add(ErrReasonBindConflict);
          continue;
        }
        podVolumes.dynamicProvisions.push(claim);
      }
    }
    if (reasons.size > 0) return Status.unresolvable(...reasons);
    s.podVolumesByNode.set(node.metadata.name ?? "", podVolumes);
    return Status.success();
  }

  /** Assumes the node's static bindings, so the next pods' Filter does not hand out the same PVs (AssumePodVolumes). */
  reserve(state: CycleState, _pod: Readonly<Pod>, nodeName: string): Status {
    const pv = state.read<StateData>(STATE_KEY)?.podVolumesByNode.get(nodeName);
    if (!pv) return Status.success();
    for (const b of pv.staticBindings) {
      const key = `${b.claim.metadata.namespace}/${b.claim.metadata.name}`;
      const owner = this.assumedPVs.get(b.pv.metadata.name ?? "");
      if (owner !== undefined && owner !== key) return Status.unschedulable(ErrReasonBindConflict);
    }
    for (const b of pv.staticBindings) this.assumedPVs.set(b.pv.metadata.name ?? "", `${b.claim.metadata.namespace}/${b.claim.metadata.name}`);
    return Status.success();
  }

  unreserve(state: CycleState, _pod: Readonly<Pod>, nodeName: string): void {
    const pv = state.read<StateData>(STATE_KEY)?.podVolumesByNode.get(nodeName);
    for (const b of pv?.staticBindings ?? []) this.assumedPVs.delete(b.pv.metadata.name ?? "");
  }

  /**
   * BindPodVolumes: pre-binds each static PV (claimRef) and writes the selected node on each claim to
   * provision, then waits until the volume controller has bound them all. An error (a failed write,
   * the annotation removed by a failed provisioning, the timeout) sends the pod back to the queue.
   */
  async preBind(state: CycleState, _pod: Readonly<Pod>, nodeName: string): Promise<Status> {
    const s = state.read<StateData>(STATE_KEY);
    const podVolumes = s?.podVolumesByNode.get(nodeName);
    if (!s || !podVolumes || (podVolumes.staticBindings.length === 0 && podVolumes.dynamicProvisions.length === 0)) return Status.skip();
    try {
      await this.bindAPIUpdate(podVolumes, nodeName);
      const deadline = this.clock.now() + this.bindTimeoutMs;
      for (;;) {
        const err = this.checkBindings(podVolumes, nodeName);
        if (err === true) return Status.success();
        if (err) return Status.error(`binding volumes: ${err}`);
        if (this.clock.now() >= deadline) return Status.error("binding volumes: context deadline exceeded");
        await this.clock.sleep(POLL_INTERVAL_MS);
      }
    } catch (e) {
      return Status.error(`binding volumes: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      for (const b of podVolumes.staticBindings) this.assumedPVs.delete(b.pv.metadata.name ?? "");
    }
  }

  private async bindAPIUpdate(pv: PodVolumes, nodeName: string): Promise<void> {
    const client = this.handle.client;
    for (const b of pv.staticBindings) {
      if (b.pv.spec?.claimRef?.uid === b.claim.metadata.uid) continue;
      await client.resource<PersistentVolume>("", "persistentvolumes").patch("", b.pv.metadata.name ?? "", "merge", {
        metadata: { annotations: { [AnnBoundByController]: "yes" }, resourceVersion: b.pv.metadata.resourceVersion },
        spec: {
          claimRef: {
            kind: "PersistentVolumeClaim",
            apiVersion: "v1",
            namespace: b.claim.metadata.namespace,
            name: b.claim.metadata.name,
            uid: b.claim.metadata.uid,
            resourceVersion: b.claim.metadata.resourceVersion,
          },
        },
      });
    }
    for (const claim of pv.dynamicProvisions) {
      if (claim.metadata.annotations?.[AnnSelectedNode] === nodeName) continue;
      await client
        .resource<PersistentVolumeClaim>("", "persistentvolumeclaims")
        .patch(claim.metadata.namespace ?? "", claim.metadata.name ?? "", "merge", { metadata: { annotations: { [AnnSelectedNode]: nodeName } } });
    }
  }

  /** true: all bound; a string: a failure; undefined: not yet (upstream's checkBindings). */
  private checkBindings(pv: PodVolumes, nodeName: string): true | string | undefined {
    const volumes = this.handle.volumes!;
    const node = this.handle.snapshot().get(nodeName)?.node;
    let done = true;
    for (const { claim: c } of [...pv.staticBindings, ...pv.dynamicProvisions.map((claim) => ({ claim }))]) {
      const claim = volumes.pvc(c.metadata.namespace ?? "", c.metadata.name ?? "") as Readonly<PersistentVolumeClaim> | undefined;
      if (!claim || claim.metadata.uid !== c.metadata.uid) return `PVC "${c.metadata.namespace}/${c.metadata.name}" was deleted`;
      // Our own write may not have reached the informer yet (upstream reads its assume cache here).
      if (pv.dynamicProvisions.includes(c) && claim.metadata.resourceVersion === c.metadata.resourceVersion && c.metadata.annotations?.[AnnSelectedNode] !== nodeName) {
        done = false;
        continue;
      }
      if (pv.dynamicProvisions.includes(c) && claim.metadata.annotations?.[AnnSelectedNode] !== nodeName) {
        // The provisioner removes the annotation when it fails: the signal to schedule again.
        return `provisioning failed for PVC "${claim.metadata.name}"`;
      }
      if (claim.spec?.volumeName) {
        const bound = volumes.pv(claim.spec.volumeName) as Readonly<PersistentVolume> | undefined;
        if (!bound) {
          done = false; // the PV may not have reached our cache yet
          continue;
        }
        if (node && !nodeSelectorMatches(bound.spec?.nodeAffinity?.required, node)) return `pv "${bound.metadata.name}" node affinity doesn't match node "${nodeName}"`;
      }
      if (!isClaimFullyBound(claim)) done = false;
    }
    return done ? true : undefined;
  }
}

export const newVolumeBinding: PluginFactory = (args, handle) => {
  const t = args?.["bindTimeoutSeconds"];
  return new VolumeBinding(handle, typeof t === "number" ? { bindTimeoutSeconds: t } : {});
};
