// The kube-system/cluster-autoscaler-status ConfigMap (upstream's clusterstate/api types and
// utils.WriteStatusConfigMap, the structured YAML of cluster-autoscaler 1.30+): cluster-wide and
// per node group health with node counts, scale-up and scale-down conditions, each with
// lastProbeTime and lastTransitionTime; annotation cluster-autoscaler.kubernetes.io/last-updated.

import { stringify } from "yaml";
import type { ConfigMap, Node } from "../../../api/index.ts";
import { isNotFound, type Client } from "../../../client/index.ts";
import { rfc3339 } from "../../podcontrol.ts";
import { isBeingDeleted, isNodeReady, type GroupInfo } from "./clusterstate.ts";

export const STATUS_CONFIGMAP = "cluster-autoscaler-status";
export const STATUS_NAMESPACE = "kube-system";
export const LAST_UPDATED_ANNOTATION = "cluster-autoscaler.kubernetes.io/last-updated";
/** Upstream's OkTotalUnreadyCount and MaxTotalUnreadyPercentage. */
export const OK_TOTAL_UNREADY_COUNT = 3;
export const MAX_TOTAL_UNREADY_PERCENTAGE = 45;
/** The status is rewritten at least this often even when nothing changed. */
export const STATUS_REFRESH_MS = 60_000;

/** Go's time.Time.String() in UTC: "2006-01-02 15:04:05.999999999 +0000 UTC" (trailing zeros of the fraction dropped). */
export function goTimeString(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2006-01-02T15:04:05.123Z
  const frac = iso.slice(20, 23).replace(/0+$/, "");
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${frac ? "." + frac : ""} +0000 UTC`;
}

export interface NodeCount {
  registered: { total: number; ready: number; notStarted: number; beingDeleted?: number; unready: { total: number; resourceUnready: number } };
  longUnregistered: number;
  unregistered: number;
}

interface Timed {
  status: string;
  lastProbeTime: string;
  lastTransitionTime: string;
}

export interface StatusDocument {
  time: string;
  autoscalerStatus: "Running" | "Initializing";
  clusterWide: {
    health: Timed & { nodeCounts: NodeCount };
    scaleUp: Timed;
    scaleDown: Timed & { candidates?: number };
  };
  nodeGroups: {
    name: string;
    health: Timed & { nodeCounts: NodeCount; cloudProviderTarget: number; minSize: number; maxSize: number };
    scaleUp: Timed & { backoffInfo?: { errorCode: string; errorMessage: string } };
    scaleDown: Timed & { candidates?: number };
  }[];
}

export interface StatusInput {
  now: number;
  groups: readonly GroupInfo[];
  /** Every Node in the cluster. */
  nodes: readonly Readonly<Node>[];
  /** Scale-down candidates (unneeded nodes) per group name. */
  candidates: ReadonlyMap<string, number>;
  /** Groups in scale-up backoff, with why (upstream's BackoffInfo). */
  backoff?: ReadonlyMap<string, { errorCode: string; errorMessage: string }>;
}

function healthy(unready: number, total: number): boolean {
  return !(unready > OK_TOTAL_UNREADY_COUNT && unready > (MAX_TOTAL_UNREADY_PERCENTAGE / 100) * total);
}

function groupCounts(g: GroupInfo): NodeCount {
  const c = g.counts;
  return {
    registered: {
      total: c.registered,
      ready: c.ready,
      notStarted: c.notStarted,
      ...(c.beingDeleted ? { beingDeleted: c.beingDeleted } : {}),
      unready: { total: c.unready, resourceUnready: 0 },
    },
    longUnregistered: c.longUnregistered,
    unregistered: c.unregistered,
  };
}

/**
 * Builds the status, remembering when each condition last changed (lastTransitionTime) across calls.
 * `changed` tells whether anything but the probe times differs from the previous build.
 */
export class StatusTracker {
  private readonly transitions = new Map<string, { status: string; since: number }>();
  private lastSignature = "";
  private lastWritten = 0;

  private timed(key: string, status: string, now: number): Timed {
    const prev = this.transitions.get(key);
    const since = prev && prev.status === status ? prev.since : now;
    this.transitions.set(key, { status, since });
    return { status, lastProbeTime: rfc3339(now), lastTransitionTime: rfc3339(since) };
  }

  build(input: StatusInput): StatusDocument {
    const { now, groups, nodes, candidates, backoff } = input;
    let ready = 0;
    let beingDeleted = 0;
    for (const n of nodes) {
      if (isNodeReady(n)) ready++;
      if (isBeingDeleted(n)) beingDeleted++;
    }
    const sum = (f: (g: GroupInfo) => number) => groups.reduce((a, g) => a + f(g), 0);
    const notStarted = sum((g) => g.counts.notStarted);
    const longUnregistered = sum((g) => g.counts.longUnregistered);
    const unregistered = sum((g) => g.counts.unregistered);
    const unready = Math.max(0, nodes.length - ready - notStarted);
    const totalCandidates = [...candidates.values()].reduce((a, b) => a + b, 0);
    const clusterCounts: NodeCount = {
      registered: { total: nodes.length, ready, notStarted, ...(beingDeleted ? { beingDeleted } : {}), unready: { total: unready, resourceUnready: 0 } },
      longUnregistered,
      unregistered,
    };
    const inProgress = groups.some((g) => g.upcoming > 0);
    const doc: StatusDocument = {
      time: goTimeString(now),
      autoscalerStatus: "Running",
      clusterWide: {
        health: { ...this.timed("cluster/health", healthy(unready + longUnregistered, nodes.length + longUnregistered) ? "Healthy" : "Unhealthy", now), nodeCounts: clusterCounts },
        scaleUp: this.timed("cluster/scaleUp", inProgress ? "InProgress" : "NoActivity", now),
        scaleDown: { ...this.timed("cluster/scaleDown", totalCandidates > 0 ? "CandidatesPresent" : "NoCandidates", now), ...(totalCandidates > 0 ? { candidates: totalCandidates } : {}) },
      },
      nodeGroups: groups.map((g) => {
        const n = candidates.get(g.name) ?? 0;
        const c = g.counts;
        const isHealthy = healthy(c.unready + c.longUnregistered, c.registered + c.unregistered + c.longUnregistered);
        return {
          name: g.name,
          health: {
            ...this.timed(`${g.name}/health`, isHealthy ? "Healthy" : "Unhealthy", now),
            nodeCounts: groupCounts(g),
            cloudProviderTarget: g.state.desiredCapacity,
            minSize: g.state.minSize,
            maxSize: g.state.maxSize,
          },
          scaleUp: backoff?.has(g.name)
            ? { ...this.timed(`${g.name}/scaleUp`, "Backoff", now), backoffInfo: backoff.get(g.name)! }
            : this.timed(`${g.name}/scaleUp`, g.upcoming > 0 ? "InProgress" : "NoActivity", now),
          scaleDown: { ...this.timed(`${g.name}/scaleDown`, n > 0 ? "CandidatesPresent" : "NoCandidates", now), ...(n > 0 ? { candidates: n } : {}) },
        };
      }),
    };
    // Key order as upstream's structs: status, nodeCounts, ..., lastProbeTime, lastTransitionTime.
    return reorder(doc);
  }

  /** Whether the document differs from the last one written (probe times ignored) or the last write is a minute old. */
  shouldWrite(doc: StatusDocument, now: number): boolean {
    return signature(doc) !== this.lastSignature || now - this.lastWritten >= STATUS_REFRESH_MS;
  }

  written(doc: StatusDocument, now: number): void {
    this.lastSignature = signature(doc);
    this.lastWritten = now;
  }
}

function signature(doc: StatusDocument): string {
  return JSON.stringify(doc, (k, v) => (k === "time" || k === "lastProbeTime" ? undefined : v));
}

function reorder(doc: StatusDocument): StatusDocument {
  const t = <T extends Timed>(o: T): T => {
    const { lastProbeTime, lastTransitionTime, ...rest } = o;
    return { ...rest, lastProbeTime, lastTransitionTime } as T;
  };
  return {
    ...doc,
    clusterWide: { health: t(doc.clusterWide.health), scaleUp: t(doc.clusterWide.scaleUp), scaleDown: t(doc.clusterWide.scaleDown) },
    nodeGroups: doc.nodeGroups.map((g) => ({ name: g.name, health: t(g.health), scaleUp: t(g.scaleUp), scaleDown: t(g.scaleDown) })),
  };
}

/** The YAML of data.status. */
export function statusYAML(doc: StatusDocument): string {
  return stringify(doc, { lineWidth: 0 });
}

/** Creates or updates the status ConfigMap. */
export async function writeStatus(client: Client, doc: StatusDocument): Promise<void> {
  const cms = client.resource<ConfigMap>("", "configmaps");
  const data = { status: statusYAML(doc) };
  let cur: ConfigMap | undefined;
  try {
    cur = await cms.get(STATUS_NAMESPACE, STATUS_CONFIGMAP);
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  if (!cur) {
    await cms.create(STATUS_NAMESPACE, {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: STATUS_CONFIGMAP, namespace: STATUS_NAMESPACE, annotations: { [LAST_UPDATED_ANNOTATION]: doc.time } },
      data,
    });
    return;
  }
  cur.metadata.annotations = { ...(cur.metadata.annotations ?? {}), [LAST_UPDATED_ANNOTATION]: doc.time };
  cur.data = data;
  await cms.update(cur);
}
