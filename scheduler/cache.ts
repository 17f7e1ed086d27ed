// The scheduler cache (upstream's internal/cache): nodes and pods from informers plus pods assumed
// between Reserve and the bind landing, and the per-cycle Snapshot built from it incrementally.

import type { Node, Pod } from "../api/index.ts";
import type { Clock } from "../client/index.ts";
import { addPod, newNodeInfo, podKey, removePod, setNode } from "./framework/nodeinfo.ts";
import type { NodeInfo, NodeInfoLister } from "./framework/types.ts";

export const ZONE_LABEL = "topology.kubernetes.io/zone";
export const REGION_LABEL = "topology.kubernetes.io/region";
/** How long an assumed pod whose binding finished may wait for the informer to confirm it. */
export const DEFAULT_ASSUMED_POD_TTL_MS = 30_000;

/** Upstream's utilnode.GetZoneKey: region and zone, "" when the node has neither. */
export function zoneKey(node: Readonly<Node>): string {
  const labels = node.metadata.labels ?? {};
  const zone = labels[ZONE_LABEL] ?? labels["failure-domain.beta.kubernetes.io/zone"] ?? "";
  const region = labels[REGION_LABEL] ?? labels["failure-domain.beta.kubernetes.io/region"] ?? "";
  return region || zone ? `${region}:\u0000:${zone}` : "";
}

/**
 * Upstream's nodeTree: node names grouped by zone; `list()` takes one node from each zone in turn,
 * so a scheduler that stops after N feasible nodes still looks at every zone.
 */
export class NodeTree {
  private readonly zones = new Map<string, string[]>();
  private readonly zoneOf = new Map<string, string>();

  get size(): number {
    return this.zoneOf.size;
  }

  add(node: Readonly<Node>): void {
    const name = node.metadata.name ?? "";
    const zone = zoneKey(node);
    const current = this.zoneOf.get(name);
    if (current === zone) return;
    if (current !== undefined) this.remove(name);
    let names = this.zones.get(zone);
    if (!names) this.zones.set(zone, (names = []));
    names.push(name);
    this.zoneOf.set(name, zone);
  }

  remove(name: string): void {
    const zone = this.zoneOf.get(name);
    if (zone === undefined) return;
    this.zoneOf.delete(name);
    const names = this.zones.get(zone)!;
    names.splice(names.indexOf(name), 1);
    if (names.length === 0) this.zones.delete(zone);
  }

  /** Node names interleaved across zones: z1[0], z2[0], z3[0], z1[1], ... */
  list(): string[] {
    const out: string[] = [];
    const lists = [...this.zones.values()];
    for (let i = 0; out.length < this.zoneOf.size; i++) {
      for (const names of lists) if (i < names.length) out.push(names[i]!);
    }
    return out;
  }
}

/**
 * The read-only view a scheduling cycle works on (framework.Snapshot). Its NodeInfos are immutable;
 * `Cache.updateSnapshot` replaces only those that changed since the snapshot's last update.
 */
export class Snapshot implements NodeInfoLister {
  /** @internal */ nodeInfoMap = new Map<string, NodeInfo>();
  /** @internal */ nodeInfoList: NodeInfo[] = [];
  /** @internal */ indexOf = new Map<string, number>();
  /** @internal */ withAffinity: NodeInfo[] = [];
  /** @internal */ withRequiredAntiAffinity: NodeInfo[] = [];

  list(): readonly NodeInfo[] {
    return this.nodeInfoList;
  }
  get(nodeName: string): NodeInfo | undefined {
    return this.nodeInfoMap.get(nodeName);
  }
  havePodsWithAffinityList(): readonly NodeInfo[] {
    return this.withAffinity;
  }
  havePodsWithRequiredAntiAffinityList(): readonly NodeInfo[] {
    return this.withRequiredAntiAffinity;
  }
  /** @internal */
  setList(list: NodeInfo[]): void {
    this.nodeInfoList = list;
    this.indexOf = new Map(list.map((n, i) => [n.node.metadata.name ?? "", i]));
    this.rebuildAffinityLists();
  }
  /** @internal */
  rebuildAffinityLists(): void {
    this.withAffinity = this.nodeInfoList.filter((n) => n.podsWithAffinity.length > 0);
    this.withRequiredAntiAffinity = this.nodeInfoList.filter((n) => n.podsWithRequiredAntiAffinity.length > 0);
  }
}

/** A snapshot of these NodeInfos in the given order (for plugin tests and what-if runs). */
export function newSnapshot(infos: readonly NodeInfo[]): Snapshot {
  const s = new Snapshot();
  for (const n of infos) s.nodeInfoMap.set(n.node.metadata.name ?? "", n);
  s.setList([...infos]);
  return s;
}

interface NodeItem {
  /** Absent when pods arrived for a node the informer has not delivered (or already deleted). */
  node?: Readonly<Node>;
  info: NodeInfo;
}

interface PodState {
  pod: Readonly<Pod>;
  nodeName: string;
  assumed: boolean;
  /** Set by finishBinding: when an unconfirmed assumed pod is dropped. */
  deadline?: number;
}

export interface CacheOptions {
  clock: Clock;
  /** Default 30 s. */
  assumedPodTTLMs?: number;
}

/**
 * The scheduler's cache. Informer handlers call add/update/remove; the scheduling cycle calls
 * assumePod after Reserve so the next cycle sees the pod's resources used before the bind lands,
 * finishBinding once the bind call returned, forgetPod when it failed. Not thread-safe and needs
 * not be: everything runs on one event loop.
 */
export class Cache {
  private readonly clock: Clock;
  private readonly ttlMs: number;
  private readonly nodes = new Map<string, NodeItem>();
  private readonly pods = new Map<string, PodState>();
  private readonly tree = new NodeTree();
  /** Node names changed since `lastSnapshot` was updated; `treeChanged` when membership or order changed. */
  private dirty = new Set<string>();
  private treeChanged = true;
  private lastSnapshot: Snapshot | undefined;

  constructor(opts: CacheOptions) {
    this.clock = opts.clock;
    this.ttlMs = opts.assumedPodTTLMs ?? DEFAULT_ASSUMED_POD_TTL_MS;
  }

  // ---- nodes ----

  addNode(node: Readonly<Node>): void {
    const name = node.metadata.name ?? "";
    const item = this.nodes.get(name);
    if (item) item.info = setNode(item.info, node);
    else this.nodes.set(name, { info: newNodeInfo(node, []) });
    this.nodes.get(name)!.node = node;
    this.tree.add(node);
    this.dirty.add(name);
    this.treeChanged = true;
  }

  updateNode(_old: Readonly<Node> | undefined, node: Readonly<Node>): void {
    const name = node.metadata.name ?? "";
    const item = this.nodes.get(name);
    if (!item?.node || zoneKey(item.node) !== zoneKey(node)) this.treeChanged = true;
    this.addNode(node);
  }

  removeNode(node: Readonly<Node>): void {
    const name = node.metadata.name ?? "";
    const item = this.nodes.get(name);
    if (!item) return;
    // Pods still on it stay until their own deletes arrive (informers deliver them separately).
    if (item.info.pods.length === 0) this.nodes.delete(name);
    else delete item.node;
    this.tree.remove(name);
    this.dirty.add(name);
    this.treeChanged = true;
  }

  nodeCount(): number {
    return this.tree.size;
  }

  // ---- pods from the informer (assigned pods only) ----

  /** An assigned pod appeared; confirms it if it was assumed (moving it if it landed elsewhere). */
  addPod(pod: Readonly<Pod>): void {
    const key = podKey(pod);
    const state = this.pods.get(key);
    const nodeName = pod.spec?.nodeName ?? "";
    if (state) {
      this.removeFromNode(state.pod, state.nodeName);
    }
    this.addToNode(pod, nodeName);
    this.pods.set(key, { pod, nodeName, assumed: false });
  }

  updatePod(_old: Readonly<Pod> | undefined, pod: Readonly<Pod>): void {
    this.addPod(pod);
  }

  removePod(pod: Readonly<Pod>): void {
    const key = podKey(pod);
    const state = this.pods.get(key);
    if (!state) return;
    this.removeFromNode(state.pod, state.nodeName);
    this.pods.delete(key);
  }

  // ---- assumed pods ----

  /** Counts the pod on `pod.spec.nodeName` until the informer confirms it or it is forgotten. Throws if already known. */
  assumePod(pod: Readonly<Pod>): void {
    const key = podKey(pod);
    if (this.pods.has(key)) throw new Error(`pod ${key} is already in the cache, so can't be assumed`);
    const nodeName = pod.spec?.nodeName ?? "";
    this.addToNode(pod, nodeName);
    this.pods.set(key, { pod, nodeName, assumed: true });
  }

  /** The bind call returned; the assumed pod now expires after the TTL unless the informer confirms it. */
  finishBinding(pod: Readonly<Pod>): void {
    const state = this.pods.get(podKey(pod));
    if (state?.assumed) state.deadline = this.clock.now() + this.ttlMs;
  }

  /** Undoes assumePod (bind failed, or Permit/PreBind rejected). */
  forgetPod(pod: Readonly<Pod>): void {
    const key = podKey(pod);
    const state = this.pods.get(key);
    if (!state?.assumed) return;
    this.removeFromNode(state.pod, state.nodeName);
    this.pods.delete(key);
  }

  isAssumedPod(pod: Readonly<Pod>): boolean {
    return this.pods.get(podKey(pod))?.assumed ?? false;
  }

  /** The cached pod (assumed or confirmed), if any. */
  getPod(pod: Readonly<Pod>): Readonly<Pod> | undefined {
    return this.pods.get(podKey(pod))?.pod;
  }

  podCount(): number {
    return this.pods.size;
  }

  /** Drops assumed pods whose binding finished more than the TTL ago without the informer confirming them. */
  cleanupExpiredAssumedPods(): Readonly<Pod>[] {
    const now = this.clock.now();
    const expired: Readonly<Pod>[] = [];
    for (const [key, state] of this.pods) {
      if (!state.assumed || state.deadline === undefined || now < state.deadline) continue;
      this.removeFromNode(state.pod, state.nodeName);
      this.pods.delete(key);
      expired.push(state.pod);
    }
    return expired;
  }

  /** Runs cleanupExpiredAssumedPods every `periodMs` (upstream: 1 s) until the signal aborts. */
  async run(signal: AbortSignal, periodMs = 1_000): Promise<void> {
    while (!signal.aborted) {
      await this.clock.sleep(periodMs, signal);
      if (!signal.aborted) this.cleanupExpiredAssumedPods();
    }
  }

  // ---- snapshot ----

  /**
   * Brings `snapshot` up to date: only NodeInfos whose generation changed are replaced; the list is
   * rebuilt (zone-interleaved) only when nodes were added or removed, the affinity lists only when a
   * changed node has or had pods with affinity.
   */
  updateSnapshot(snapshot: Snapshot = new Snapshot()): Snapshot {
    const full = snapshot !== this.lastSnapshot;
    const names = full ? [...this.nodes.keys(), ...snapshot.nodeInfoMap.keys()] : [...this.dirty];
    let affinityChanged = full;
    let membershipChanged = full || this.treeChanged;
    for (const name of names) {
      const item = this.nodes.get(name);
      const prev = snapshot.nodeInfoMap.get(name);
      if (!item?.node) {
        if (prev) {
          snapshot.nodeInfoMap.delete(name);
          membershipChanged = true;
          affinityChanged = true;
        }
        continue;
      }
      if (prev && prev.generation === item.info.generation) continue;
      if (!prev) membershipChanged = true;
      if (!prev || prev.podsWithAffinity.length > 0 || item.info.podsWithAffinity.length > 0) affinityChanged = true;
      snapshot.nodeInfoMap.set(name, item.info);
      const idx = snapshot.indexOf.get(name);
      if (!membershipChanged && idx !== undefined) snapshot.nodeInfoList[idx] = item.info;
    }
    if (membershipChanged) {
      snapshot.setList(this.tree.list().map((n) => snapshot.nodeInfoMap.get(n)!).filter((n) => n !== undefined));
    } else if (affinityChanged) {
      snapshot.rebuildAffinityLists();
    }
    this.dirty = new Set();
    this.treeChanged = false;
    this.lastSnapshot = snapshot;
    return snapshot;
  }

  // ---- internals ----

  private item(nodeName: string): NodeItem {
    let item = this.nodes.get(nodeName);
    if (!item) {
      // A pod for a node not (yet) known: keep its NodeInfo so the node's arrival finds it.
      const placeholder: Node = { apiVersion: "v1", kind: "Node", metadata: { name: nodeName } };
      item = { info: newNodeInfo(placeholder, []) };
      this.nodes.set(nodeName, item);
    }
    return item;
  }

  private addToNode(pod: Readonly<Pod>, nodeName: string): void {
    const item = this.item(nodeName);
    item.info = addPod(item.info, pod);
    this.dirty.add(nodeName);
  }

  private removeFromNode(pod: Readonly<Pod>, nodeName: string): void {
    const item = this.nodes.get(nodeName);
    if (!item) return;
    item.info = removePod(item.info, pod);
    this.dirty.add(nodeName);
    if (!item.node && item.info.pods.length === 0) this.nodes.delete(nodeName);
  }
}
