// The kubelet's node side: register the Node (pkg/kubelet/kubelet_node_status.go), heartbeat on its
// Lease in kube-node-lease (pkg/kubelet/nodelease), and report NodeStatus — patched only when it
// changed or every 5 minutes, as upstream does since node heartbeats moved to Leases.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { release } from "node:os";
import type { Lease, Node, NodeCondition, NodeStatus } from "../api/index.ts";
import { isAlreadyExists, isConflict, isNotFound, microTime, realClock, type Clock, type Context } from "../client/index.ts";
import { HOSTNAME_LABEL, NODE_LEASE_NAMESPACE, REGION_LABEL, ZONE_LABEL, type KubeletOptions } from "./types.ts";

export const KUBELET_VERSION = "v1.32.0-kubelab";
export const DEFAULT_CAPACITY: Readonly<Record<string, string>> = { cpu: "8", memory: "32Gi", pods: "110", "ephemeral-storage": "100Gi" };
export const INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type";
/** With Leases carrying the heartbeat, an unchanged status is still re-sent this often (nodeStatusReportFrequency). */
export const NODE_STATUS_REPORT_FREQUENCY_MS = 5 * 60_000;
/** Ready's message before the first status sync has judged readiness (upstream's, before the runtime answered). */
export const NOT_YET_READY_MESSAGE = "container runtime status check may not have completed yet";

/** Readiness as the status loop sees it. */
export type Readiness = { ready: boolean; message: string };

function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** A hex digest of the node name and a purpose: ids that are stable across restarts and distinct per node. */
function stableHex(nodeName: string, purpose: string): string {
  return createHash("sha256").update(`${purpose}:${nodeName}`).digest("hex").slice(0, 32);
}

function asUUID(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

let osImageCache: string | undefined;
function osImage(): string {
  if (osImageCache === undefined) {
    osImageCache = "Linux";
    try {
      const m = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync("/etc/os-release", "utf8"));
      if (m?.[1]) osImageCache = m[1];
    } catch {
      // No os-release: keep "Linux".
    }
  }
  return osImageCache;
}

/** The labels the kubelet owns on its Node (upstream's default labels), then opts.labels. */
export function nodeLabels(opts: KubeletOptions): Record<string, string> {
  return {
    [HOSTNAME_LABEL]: opts.nodeName,
    [ZONE_LABEL]: opts.zone,
    [REGION_LABEL]: opts.region,
    "kubernetes.io/os": "linux",
    "kubernetes.io/arch": "amd64",
    "beta.kubernetes.io/os": "linux",
    "beta.kubernetes.io/arch": "amd64",
    [INSTANCE_TYPE_LABEL]: "kubelab",
    ...(opts.labels ?? {}),
  };
}

/** Everything in NodeStatus except conditions: capacity, addresses, the kubelet endpoint, nodeInfo. */
function staticStatus(opts: KubeletOptions): Omit<NodeStatus, "conditions"> {
  const capacity = { ...DEFAULT_CAPACITY, ...(opts.capacity ?? {}) };
  return {
    capacity,
    allocatable: { ...capacity },
    addresses: [
      { type: "InternalIP", address: opts.nodeIP },
      { type: "Hostname", address: opts.nodeName },
    ],
    daemonEndpoints: { kubeletEndpoint: { Port: opts.port } },
    nodeInfo: {
      machineID: stableHex(opts.nodeName, "machine-id"),
      systemUUID: asUUID(stableHex(opts.nodeName, "system-uuid")),
      bootID: asUUID(stableHex(opts.nodeName, "boot-id")),
      kernelVersion: release(),
      osImage: osImage(),
      containerRuntimeVersion: opts.runtimeVersion ?? "",
      kubeletVersion: KUBELET_VERSION,
      kubeProxyVersion: KUBELET_VERSION,
      operatingSystem: "linux",
      architecture: "amd64",
    },
  };
}

/** The pressure conditions the kubelet always reports False (it measures no pressure), with their events. */
const PRESSURE: { type: string; reason: string; message: string; event: string }[] = [
  { type: "MemoryPressure", reason: "KubeletHasSufficientMemory", message: "kubelet has sufficient memory available", event: "NodeHasSufficientMemory" },
  { type: "DiskPressure", reason: "KubeletHasNoDiskPressure", message: "kubelet has no disk pressure", event: "NodeHasNoDiskPressure" },
  { type: "PIDPressure", reason: "KubeletHasSufficientPID", message: "kubelet has sufficient PID available", event: "NodeHasSufficientPID" },
];

/**
 * The conditions upstream's setters compute from the previous ones: every heartbeat time is now; a
 * transition time moves only when the status changes. Returns the events to record (by reason):
 * NodeHas* when a pressure condition is first set, NodeReady/NodeNotReady when Ready flips (not when
 * it is first set).
 */
function computeConditions(prev: readonly NodeCondition[] | undefined, readiness: Readiness, nowMs: number): { conditions: NodeCondition[]; events: string[] } {
  const now = rfc3339(nowMs);
  const events: string[] = [];
  const byType = new Map((prev ?? []).map((c) => [c.type, c]));
  const conditions: NodeCondition[] = [];
  for (const p of PRESSURE) {
    const old = byType.get(p.type);
    const changed = old?.status !== "False";
    conditions.push({
      type: p.type,
      status: "False",
      lastHeartbeatTime: now,
      lastTransitionTime: changed ? now : (old?.lastTransitionTime ?? now),
      reason: p.reason,
      message: p.message,
    });
    if (changed) events.push(p.event);
  }
  const ready: NodeCondition = readiness.ready
    ? { type: "Ready", status: "True", lastHeartbeatTime: now, lastTransitionTime: now, reason: "KubeletReady", message: "kubelet is posting ready status" }
    : { type: "Ready", status: "False", lastHeartbeatTime: now, lastTransitionTime: now, reason: "KubeletNotReady", message: readiness.message };
  const oldReady = byType.get("Ready");
  if (oldReady) {
    if (oldReady.status === ready.status) ready.lastTransitionTime = oldReady.lastTransitionTime ?? now;
    else events.push(readiness.ready ? "NodeReady" : "NodeNotReady");
  }
  conditions.push(ready);
  // Conditions other components own (e.g. NetworkUnavailable) are kept as they are.
  for (const c of prev ?? []) if (!PRESSURE.some((p) => p.type === c.type) && c.type !== "Ready") conditions.push({ ...c });
  return { conditions, events };
}

/** The Node as the kubelet registers it (upstream's initialNode + the status setters, not yet ready). */
export function initialNode(opts: KubeletOptions, nowMs: number): Node {
  const node: Node = {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: opts.nodeName, labels: nodeLabels(opts) },
    spec: {
      ...(opts.podCIDR ? { podCIDR: opts.podCIDR, podCIDRs: [opts.podCIDR] } : {}),
      ...(opts.providerID ? { providerID: opts.providerID } : {}),
      ...(opts.registerWithTaints?.length ? { taints: opts.registerWithTaints.map((t) => ({ ...t })) } : {}),
    },
    status: { ...staticStatus(opts), conditions: computeConditions(undefined, { ready: false, message: NOT_YET_READY_MESSAGE }, nowMs).conditions },
  };
  return node;
}

/** How events about the Node refer to it: upstream's nodeRef uses the node name as its UID (kubectl describe looks for that). */
function nodeRef(nodeName: string): Node {
  return { apiVersion: "v1", kind: "Node", metadata: { name: nodeName, uid: nodeName } };
}

function recordNodeEvent(opts: KubeletOptions, reason: string): void {
  opts.recorder.event(nodeRef(opts.nodeName), "Normal", reason, `Node ${opts.nodeName} status is now: ${reason}`);
}

/** Exponential backoff 100 ms → 7 s, as upstream's registration loop. */
function nextDelay(d: number): number {
  return Math.min(d * 2, 7_000);
}

/**
 * Registers the Node: create it; when it already exists (a restarted kubelet), bring the labels we
 * own, spec.podCIDR (if unset) and the static status (capacity, addresses, kubelet port, nodeInfo) up
 * to date, as upstream's tryRegisterWithAPIServer reconciles. Retries with backoff until it succeeds
 * or ctx aborts (then it returns without registering).
 */
export async function registerNode(ctx: Context, opts: KubeletOptions): Promise<void> {
  const clock = opts.clock ?? realClock;
  const nodes = opts.client.resource<Node>("", "nodes");
  const log = ctx.log;
  opts.recorder.event(nodeRef(opts.nodeName), "Normal", "Starting", "Starting kubelet.");
  let delay = 100;
  while (!ctx.signal.aborted) {
    try {
      const node = initialNode(opts, clock.now());
      try {
        await nodes.create("", node);
        for (const p of PRESSURE) recordNodeEvent(opts, p.event);
        log.info("successfully registered node");
        return;
      } catch (e) {
        if (!isAlreadyExists(e)) throw e;
      }
      await reconcileExistingNode(opts, node);
      log.info("node was previously registered; updated it");
      return;
    } catch (e) {
      log.warn({ err: e, retryInMs: delay }, "unable to register node with the API server");
      await clock.sleep(delay, ctx.signal);
      delay = nextDelay(delay);
    }
  }
}

async function reconcileExistingNode(opts: KubeletOptions, wanted: Node): Promise<void> {
  const nodes = opts.client.resource<Node>("", "nodes");
  const existing = await nodes.get("", opts.nodeName);
  const labels = wanted.metadata.labels ?? {};
  const labelPatch: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) if (existing.metadata.labels?.[k] !== v) labelPatch[k] = v;
  const meta: { metadata?: { labels: Record<string, string> }; spec?: { podCIDR?: string; podCIDRs?: string[]; providerID?: string } } = {};
  if (Object.keys(labelPatch).length) meta.metadata = { labels: labelPatch };
  // spec.podCIDR and spec.providerID cannot change once set; only fill them in.
  if (opts.podCIDR && !existing.spec?.podCIDR) meta.spec = { podCIDR: opts.podCIDR, podCIDRs: [opts.podCIDR] };
  if (opts.providerID && !existing.spec?.providerID) meta.spec = { ...(meta.spec ?? {}), providerID: opts.providerID };
  if (meta.metadata || meta.spec) await nodes.patch("", opts.nodeName, "merge", meta);
  // Conditions are left to the status loop, which judges readiness; the rest is ours.
  const { conditions: _ignored, ...rest } = wanted.status ?? {};
  void _ignored;
  const cur = existing.status ?? {};
  const changed = (Object.keys(rest) as (keyof typeof rest)[]).some((k) => canonicalJSON(cur[k]) !== canonicalJSON(rest[k]));
  if (changed) await nodes.patch("", opts.nodeName, "merge", { status: rest }, { subresource: "status" });
}

// ---- Lease ----------------------------------------------------------------------------------------

const MAX_LEASE_UPDATE_RETRIES = 5;

/**
 * Heartbeats on `kube-node-lease/<nodeName>` until ctx aborts: ensure the Lease exists (owned by the
 * Node, so it goes when the Node goes), then every renew interval set renewTime with an update of the
 * last Lease we wrote — no GET on the happy path; a conflict refetches and retries (5 tries), after
 * which the next round falls back to ensuring the Lease. The first renew after creation comes at a
 * random point of the interval, so a thousand nodes registered together do not renew together.
 */
export async function runNodeLease(ctx: Context, opts: KubeletOptions): Promise<void> {
  const clock = opts.clock ?? realClock;
  const renewMs = opts.leaseRenewIntervalMs ?? 10_000;
  const leases = opts.client.resource<Lease>("coordination.k8s.io", "leases");
  const nodes = opts.client.resource<Node>("", "nodes");
  const log = ctx.log.child({ lease: `${NODE_LEASE_NAMESPACE}/${opts.nodeName}` });
  let latest: Lease | undefined;

  const spec = () => ({ holderIdentity: opts.nodeName, leaseDurationSeconds: opts.leaseDurationSeconds ?? 40, renewTime: microTime(clock.now()) });

  /** Sets the Node as the owner when we can see it (it may not be registered yet). */
  const withOwner = async (lease: Lease): Promise<Lease> => {
    if (lease.metadata.ownerReferences?.some((r) => r.kind === "Node" && r.name === opts.nodeName)) return lease;
    try {
      // The node informer's copy when there is one (no GET); the apiserver's otherwise.
      const node = opts.nodes?.lister.get(opts.nodeName) ?? (await nodes.get("", opts.nodeName));
      if (!node.metadata.uid) return lease;
      return { ...lease, metadata: { ...lease.metadata, ownerReferences: [{ apiVersion: "v1", kind: "Node", name: opts.nodeName, uid: node.metadata.uid }] } };
    } catch (e) {
      log.info({ err: e }, "failed to get node when setting the lease owner");
      return lease;
    }
  };

  /** Gets or creates the Lease; true when this call created it (its renewTime is fresh). */
  const ensureLease = async (): Promise<{ lease: Lease; created: boolean }> => {
    try {
      return { lease: await leases.get(NODE_LEASE_NAMESPACE, opts.nodeName), created: false };
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    const lease = await withOwner({
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name: opts.nodeName, namespace: NODE_LEASE_NAMESPACE },
      spec: spec(),
    });
    return { lease: await leases.create(NODE_LEASE_NAMESPACE, lease), created: true };
  };

  const backoffEnsureLease = async (): Promise<{ lease: Lease; created: boolean } | undefined> => {
    let delay = 200;
    while (!ctx.signal.aborted) {
      try {
        return await ensureLease();
      } catch (e) {
        log.warn({ err: e, retryInMs: delay }, "failed to ensure the node lease exists");
        await clock.sleep(delay, ctx.signal);
        delay = nextDelay(delay);
      }
    }
    return undefined;
  };

  /** Renews from `base`; on a conflict refetches and retries. True when renewed. */
  const retryUpdateLease = async (base: Lease): Promise<boolean> => {
    for (let i = 0; i < MAX_LEASE_UPDATE_RETRIES && !ctx.signal.aborted; i++) {
      try {
        const next = await withOwner({ ...base, spec: { ...base.spec, ...spec() } });
        latest = await leases.update(next);
        return true;
      } catch (e) {
        if (isConflict(e)) {
          try {
            base = await leases.get(NODE_LEASE_NAMESPACE, opts.nodeName);
          } catch (ge) {
            log.warn({ err: ge }, "failed to get the node lease after a conflict");
            return false;
          }
          continue;
        }
        log.warn({ err: e }, "failed to update the node lease");
        return false;
      }
    }
    return false;
  };

  const sync = async (): Promise<void> => {
    if (latest && (await retryUpdateLease(latest))) return;
    if (latest) log.info("failed to update the lease using the latest lease; falling back to ensuring it");
    latest = undefined;
    const ensured = await backoffEnsureLease();
    if (!ensured) return;
    if (ensured.created) latest = ensured.lease;
    else await retryUpdateLease(ensured.lease);
  };

  let first = true;
  while (!ctx.signal.aborted) {
    await sync();
    await clock.sleep(leaseSleepMs(renewMs, first), ctx.signal);
    first = false;
  }
}

/** Upstream's lease controller renews with wait.JitterUntil(sync, renewInterval, 0.04, sliding). */
export const LEASE_RENEW_JITTER = 0.04;

/**
 * How long the lease loop sleeps after a sync: after the first one (the Lease was just created or
 * found), a uniformly random point of the interval, so nodes started together — a pool registers a
 * thousand within seconds — renew spread over the whole interval instead of in bursts; after that,
 * the interval plus upstream's jitter (up to 4 % more).
 */
export function leaseSleepMs(renewMs: number, first: boolean, random: () => number = Math.random): number {
  if (first) return Math.floor(random() * renewMs);
  return renewMs + Math.floor(random() * LEASE_RENEW_JITTER * renewMs);
}

// ---- NodeStatus -------------------------------------------------------------------------------------

const NODE_STATUS_UPDATE_RETRIES = 5;

/** JSON with object keys sorted: the server may return fields in another order than we sent them. */
function canonicalJSON(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJSON).join(",")}]`;
  if (v && typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJSON(x)}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

/** The status without heartbeat times: what "changed" means for deciding whether to patch. */
function comparable(status: NodeStatus | undefined): string {
  const s = status ?? {};
  const conditions = (s.conditions ?? []).map(({ lastHeartbeatTime: _h, ...c }) => c).sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
  return canonicalJSON({ ...s, conditions });
}

/** True when both are resourceVersions of this apiserver (decimal revisions) and `a` is older than `b`. */
function olderRV(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return false;
  return BigInt(a) < BigInt(b);
}

/**
 * Every nodeStatusUpdateFrequency (first at once), reads the current Node — others change it too:
 * the node lifecycle controller sets Ready Unknown when the Lease lapses — and computes the status
 * from `readiness()`; patches nodes/status only when something other than heartbeat times changed,
 * or when 5 minutes passed since the last patch (the Lease is the frequent heartbeat). Records
 * NodeReady/NodeNotReady when Ready flips. A failed round is retried at once (5 tries), then waits
 * for the next one.
 *
 * With `opts.nodes` (a node informer that sees this Node) a round's first try reads the Node from
 * the informer's cache, as upstream's kubelet reads its node lister — no request unless something
 * changed; it GETs only when the cache has no copy yet (just registered) and on retries (a failed
 * patch may mean the cache was stale). Until the informer has seen our last patch, the patch's
 * answer stands in for its older copy. Without an informer every try GETs.
 */
export async function runNodeStatus(ctx: Context, opts: KubeletOptions, readiness: () => Readiness): Promise<void> {
  const clock: Clock = opts.clock ?? realClock;
  const everyMs = opts.nodeStatusUpdateFrequencyMs ?? 10_000;
  const nodes = opts.client.resource<Node>("", "nodes");
  const informer = opts.nodes;
  const log = ctx.log;
  let lastReportMs = -Infinity;
  /** The Node as our last patch left it. */
  let written: Readonly<Node> | undefined;

  /** When the last round ended; a round that starts much later than planned reads the server. */
  let lastRoundMs: number | undefined;

  const current = async (attempt: number, late: boolean): Promise<Readonly<Node>> => {
    if (informer && attempt === 0 && !late) {
      const cached = informer.lister.get(opts.nodeName);
      if (cached) {
        return written && olderRV(cached.metadata.resourceVersion, written.metadata.resourceVersion) ? written : cached;
      }
    }
    return nodes.get("", opts.nodeName);
  };

  const sync = async (): Promise<void> => {
    // A round far behind its schedule (the process was stopped, or starved of CPU) cannot trust the
    // informer: what others wrote meanwhile — the node lifecycle controller's Ready=Unknown — may
    // still be unread on its watch, and a status that looks unchanged would not be sent for minutes.
    const late = lastRoundMs !== undefined && clock.now() - lastRoundMs > 2 * everyMs;
    for (let i = 0; i < NODE_STATUS_UPDATE_RETRIES && !ctx.signal.aborted; i++) {
      try {
        const cur = await current(i, late);
        const now = clock.now();
        const { conditions, events } = computeConditions(cur.status?.conditions, readiness(), now);
        const status: NodeStatus = { ...cur.status, ...staticStatus(opts), conditions };
        if (comparable(status) === comparable(cur.status) && now - lastReportMs < NODE_STATUS_REPORT_FREQUENCY_MS) return;
        // Strategic merge: conditions and addresses merge by type, so others' conditions survive.
        written = await nodes.patch("", opts.nodeName, "strategic", { status: { ...staticStatus(opts), conditions } }, { subresource: "status" });
        lastReportMs = now;
        for (const e of events) recordNodeEvent(opts, e);
        return;
      } catch (e) {
        log.warn({ err: e, attempt: i + 1 }, "error updating node status, will retry");
      }
    }
  };

  while (!ctx.signal.aborted) {
    await sync();
    lastRoundMs = clock.now();
    await clock.sleep(everyMs, ctx.signal);
  }
}
