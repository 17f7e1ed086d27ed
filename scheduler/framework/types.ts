// The scheduling framework's contracts, shaped like kube-scheduler's pkg/scheduler/framework:
// extension points, Status codes, CycleState, NodeInfo aggregates, and the plugin handle.

import type { Node, Pod } from "../../api/index.ts";
import type { Client, EventRecorder } from "../../client/index.ts";

/** Status codes, as framework.Code. Plugins return them; only bugs throw. */
export const Code = {
  Success: 0,
  Error: 1,
  Unschedulable: 2,
  UnschedulableAndUnresolvable: 3,
  Wait: 4,
  Skip: 5,
} as const;
export type Code = (typeof Code)[keyof typeof Code];

/** The result of a plugin call: a code, human-readable reasons, and the plugin that failed. */
export class Status {
  constructor(
    readonly code: Code = Code.Success,
    readonly reasons: readonly string[] = [],
    public plugin = "",
  ) {}
  static success(): Status {
    return SUCCESS;
  }
  static error(reason: string): Status {
    return new Status(Code.Error, [reason]);
  }
  static unschedulable(...reasons: string[]): Status {
    return new Status(Code.Unschedulable, reasons);
  }
  static unresolvable(...reasons: string[]): Status {
    return new Status(Code.UnschedulableAndUnresolvable, reasons);
  }
  static skip(): Status {
    return new Status(Code.Skip);
  }
  isSuccess(): boolean {
    return this.code === Code.Success;
  }
  isSkip(): boolean {
    return this.code === Code.Skip;
  }
  /** Unschedulable or UnschedulableAndUnresolvable. */
  isRejected(): boolean {
    return this.code === Code.Unschedulable || this.code === Code.UnschedulableAndUnresolvable;
  }
  withPlugin(name: string): Status {
    // The shared success status is never renamed: callers get their own copy.
    if (this === SUCCESS) return new Status(Code.Success, [], name);
    this.plugin = name;
    return this;
  }
  message(): string {
    return this.reasons.join(", ");
  }
}
const SUCCESS = new Status(Code.Success);

/** Per-cycle scratch space plugins share (e.g. PreFilter results read by Filter), as framework.CycleState. */
export class CycleState {
  private readonly data = new Map<string, unknown>();
  read<T>(key: string): T | undefined {
    return this.data.get(key) as T | undefined;
  }
  write(key: string, value: unknown): void {
    this.data.set(key, value);
  }
  delete(key: string): void {
    this.data.delete(key);
  }
  /** For preemption's what-if runs: a shallow copy (plugins store immutable or cloneable values). */
  clone(): CycleState {
    const c = new CycleState();
    for (const [k, v] of this.data) {
      const cloneable = v as { clone?: () => unknown } | undefined;
      c.write(k, cloneable && typeof cloneable.clone === "function" ? cloneable.clone() : v);
    }
    return c;
  }
}

/** Resource amounts in base units: milliCPU, bytes, and counts (framework.Resource). */
export interface Resource {
  milliCPU: number;
  memory: number;
  ephemeralStorage: number;
  /** Max pods (allocatable) or pods counted (requested). */
  allowedPodNumber: number;
  /** Extended resources by name. */
  scalar: Record<string, number>;
}

/** A pod with what the scheduler precomputes about it. */
export interface PodInfo {
  pod: Readonly<Pod>;
}

/**
 * A node and the aggregates of the pods on it (assumed pods included), as framework.NodeInfo.
 * Filter and Score read these instead of walking pods. Read-only to plugins.
 */
export interface NodeInfo {
  node: Readonly<Node>;
  pods: readonly PodInfo[];
  /** Sum of the pods' requests (init containers counted as upstream's effective request). */
  requested: Resource;
  /** Like requested, but a pod with no request counts as 100m CPU / 200 MiB (scoring defaults). */
  nonZeroRequested: Resource;
  allocatable: Resource;
  /** Host ports in use: "<protocol>/<hostIP>/<port>" with hostIP "0.0.0.0" for all addresses. */
  usedPorts: ReadonlySet<string>;
  /** Pods with any (anti-)affinity terms, and those with required anti-affinity. */
  podsWithAffinity: readonly PodInfo[];
  podsWithRequiredAntiAffinity: readonly PodInfo[];
  /** Bumped on every change; the snapshot copies only changed NodeInfos. */
  generation: number;
}

/** The per-cycle read-only view of the cluster (framework.SharedLister). */
export interface NodeInfoLister {
  list(): readonly NodeInfo[];
  get(nodeName: string): NodeInfo | undefined;
  havePodsWithAffinityList(): readonly NodeInfo[];
  havePodsWithRequiredAntiAffinityList(): readonly NodeInfo[];
}

/** What plugins may use beyond their arguments (framework.Handle). */
export interface Handle {
  /** The snapshot of this scheduling cycle. */
  snapshot(): NodeInfoLister;
  client: Client;
  recorder: EventRecorder;
  /** PersistentVolumeClaim/StorageClass/PV access for volume plugins; may be absent in tests. */
  volumes?: {
    pvc(namespace: string, name: string): Readonly<import("../../api/index.ts").KubeObject> | undefined;
    pv(name: string): Readonly<import("../../api/index.ts").KubeObject> | undefined;
    storageClass(name: string): Readonly<import("../../api/index.ts").KubeObject> | undefined;
    /** Every PersistentVolume (VolumeBinding's static candidates); absent: none. */
    listPVs?(): readonly Readonly<import("../../api/index.ts").KubeObject>[];
  };
}

export interface Plugin {
  readonly name: string;
}

/** Optional result of PreFilter: restricts the nodes Filter runs on (e.g. NodeName). */
export interface PreFilterResult {
  nodeNames?: ReadonlySet<string>;
}

export interface PreFilterPlugin extends Plugin {
  preFilter(state: CycleState, pod: Readonly<Pod>, nodes: readonly NodeInfo[]): { result?: PreFilterResult; status: Status };
}

export interface FilterPlugin extends Plugin {
  filter(state: CycleState, pod: Readonly<Pod>, nodeInfo: NodeInfo): Status;
}

/** Node name → the status Filter gave it (for messages and preemption). */
export type NodeToStatusMap = ReadonlyMap<string, Status>;

export interface PostFilterPlugin extends Plugin {
  postFilter(state: CycleState, pod: Readonly<Pod>, filtered: NodeToStatusMap): Promise<{ nominatedNodeName?: string; status: Status }>;
}

export interface PreScorePlugin extends Plugin {
  preScore(state: CycleState, pod: Readonly<Pod>, nodes: readonly NodeInfo[]): Status;
}

export interface NodeScore {
  name: string;
  score: number;
}

/** Scores are 0..MAX_NODE_SCORE after normalization; the framework multiplies by the plugin weight. */
export const MAX_NODE_SCORE = 100;

export interface ScorePlugin extends Plugin {
  score(state: CycleState, pod: Readonly<Pod>, nodeInfo: NodeInfo): { score: number; status: Status };
  /** Rescales raw scores in place to 0..MAX_NODE_SCORE. */
  normalizeScore?(state: CycleState, pod: Readonly<Pod>, scores: NodeScore[]): Status;
}

export interface ReservePlugin extends Plugin {
  reserve(state: CycleState, pod: Readonly<Pod>, nodeName: string): Status;
  unreserve(state: CycleState, pod: Readonly<Pod>, nodeName: string): void;
}

export interface PermitPlugin extends Plugin {
  permit(state: CycleState, pod: Readonly<Pod>, nodeName: string): { status: Status; timeoutMs?: number };
}

export interface PreBindPlugin extends Plugin {
  preBind(state: CycleState, pod: Readonly<Pod>, nodeName: string): Promise<Status>;
}

export interface BindPlugin extends Plugin {
  /** Skip: let the next bind plugin bind. */
  bind(state: CycleState, pod: Readonly<Pod>, nodeName: string): Promise<Status>;
}

export interface PostBindPlugin extends Plugin {
  postBind(state: CycleState, pod: Readonly<Pod>, nodeName: string): void;
}

/** Kinds of cluster change that may make a rejected pod schedulable (framework.ClusterEvent). */
export type EventResource = "Pod" | "Node" | "PersistentVolumeClaim" | "PersistentVolume" | "StorageClass" | "*";
export const ActionType = {
  Add: 1,
  Delete: 2,
  UpdateNodeAllocatable: 4,
  UpdateNodeLabel: 8,
  UpdateNodeTaint: 16,
  UpdateNodeCondition: 32,
  UpdatePodLabel: 64,
  UpdatePodScaleDown: 128,
  Update: 4 | 8 | 16 | 32 | 64 | 128 | 256,
  All: 1 | 2 | 4 | 8 | 16 | 32 | 64 | 128 | 256,
} as const;

export interface ClusterEvent {
  resource: EventResource;
  actionType: number;
}

/** Plugins that reject pods say which events could help them (EnqueueExtensions). */
export interface EnqueueExtensions {
  eventsToRegister(): ClusterEvent[];
}

/** Builds a plugin from its args (from the profile config) and the handle; registry.ts maps names to these. */
export type PluginFactory = (args: Record<string, unknown> | undefined, handle: Handle) => Plugin;

export function isFilterPlugin(p: Plugin): p is FilterPlugin {
  return typeof (p as Partial<FilterPlugin>).filter === "function";
}
export function isPreFilterPlugin(p: Plugin): p is PreFilterPlugin {
  return typeof (p as Partial<PreFilterPlugin>).preFilter === "function";
}
export function isPostFilterPlugin(p: Plugin): p is PostFilterPlugin {
  return typeof (p as Partial<PostFilterPlugin>).postFilter === "function";
}
export function isPreScorePlugin(p: Plugin): p is PreScorePlugin {
  return typeof (p as Partial<PreScorePlugin>).preScore === "function";
}
export function isScorePlugin(p: Plugin): p is ScorePlugin {
  return typeof (p as Partial<ScorePlugin>).score === "function";
}
export function isReservePlugin(p: Plugin): p is ReservePlugin {
  return typeof (p as Partial<ReservePlugin>).reserve === "function";
}
export function isPermitPlugin(p: Plugin): p is PermitPlugin {
  return typeof (p as Partial<PermitPlugin>).permit === "function";
}
export function isPreBindPlugin(p: Plugin): p is PreBindPlugin {
  return typeof (p as Partial<PreBindPlugin>).preBind === "function";
}
export function isBindPlugin(p: Plugin): p is BindPlugin {
  return typeof (p as Partial<BindPlugin>).bind === "function";
}
export function isPostBindPlugin(p: Plugin): p is PostBindPlugin {
  return typeof (p as Partial<PostBindPlugin>).postBind === "function";
}
export function hasEnqueueExtensions(p: Plugin): p is Plugin & EnqueueExtensions {
  return typeof (p as Partial<EnqueueExtensions>).eventsToRegister === "function";
}
