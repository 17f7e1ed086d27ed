// The pod lifecycle event generator (upstream's GenericPLEG): relists the runtime's sandboxes and
// containers of this node every period, diffs against the previous relist and tells the pod workers
// which pods changed. It also owns the runtime cache: the last ContainerStatus per container, so a
// pod sync asks the runtime for the status of changed containers only.

import type { Clock, Context, Logger } from "../client/index.ts";
import { kubeletMetrics, type ContainerStateLabel, type RuntimeCounts } from "./metrics.ts";
import {
  isRuntimeNotFound,
  LABEL_NODE,
  LABEL_POD_UID,
  type Container,
  type ContainerStatus,
  type PodSandbox,
  type PodSandboxStatus,
  type Runtime,
} from "./runtime/types.ts";

export type PodLifecycleEventType = "ContainerStarted" | "ContainerDied" | "ContainerRemoved" | "ContainerChanged";

export interface PodLifecycleEvent {
  podUID: string;
  type: PodLifecycleEventType;
  /** The container (or sandbox) id. */
  data: string;
}

/** What the runtime knows about one pod: newest first. */
export interface PodRuntimeStatus {
  uid: string;
  sandboxes: PodSandboxStatus[];
  containers: ContainerStatus[];
}

/** Unhealthy when no relist completed for this long (upstream's relistThreshold). */
export const RELIST_THRESHOLD_MS = 3 * 60_000;

type PlegState = "running" | "exited" | "unknown" | "non-existent";

function plegState(s: Container["state"] | PodSandbox["state"] | undefined): PlegState {
  switch (s) {
    case "CONTAINER_RUNNING":
    case "SANDBOX_READY":
      return "running";
    case "CONTAINER_EXITED":
    case "SANDBOX_NOTREADY":
      return "exited";
    case undefined:
      return "non-existent";
    default:
      return "unknown"; // CREATED, UNKNOWN
  }
}

function containerStateLabel(s: Container["state"]): ContainerStateLabel {
  switch (s) {
    case "CONTAINER_CREATED":
      return "created";
    case "CONTAINER_RUNNING":
      return "running";
    case "CONTAINER_EXITED":
      return "exited";
    default:
      return "unknown";
  }
}

function byNewest<T extends { createdAt: number; id: string }>(a: T, b: T): number {
  return b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

export interface PLEGOptions {
  runtime: Runtime;
  nodeName: string;
  clock: Clock;
  log: Logger;
  relistPeriodMs?: number;
  onEvent(e: PodLifecycleEvent): void;
}

export class GenericPLEG {
  /** container/sandbox id → last seen state (from the previous relist). */
  private last = new Map<string, { uid: string; state: PlegState }>();
  private readonly containerCache = new Map<string, ContainerStatus>();
  private readonly sandboxCache = new Map<string, PodSandboxStatus>();
  private lastRelist = 0;
  private readonly started: number;
  private counts: RuntimeCounts = { runningPods: 0, containers: { created: 0, running: 0, exited: 0, unknown: 0 } };

  constructor(private readonly opts: PLEGOptions) {
    this.started = opts.clock.now();
  }

  /** Relists every period until ctx aborts. */
  async run(ctx: Context): Promise<void> {
    const period = this.opts.relistPeriodMs ?? 1_000;
    while (!ctx.signal.aborted) {
      try {
        await this.relist();
      } catch (e) {
        ctx.log.warn({ err: e }, "PLEG relist failed");
      }
      await this.opts.clock.sleep(period, ctx.signal);
    }
  }

  /** Healthy while relists complete (upstream's PLEG health check). */
  healthy(): { ok: boolean; message: string } {
    const since = this.opts.clock.now() - (this.lastRelist || this.started);
    if (since > RELIST_THRESHOLD_MS) return { ok: false, message: `pleg was last seen active ${Math.round(since / 1000)}s ago; threshold is ${RELIST_THRESHOLD_MS / 1000}s` };
    return { ok: true, message: "" };
  }

  /** Running pods and containers by state as of the last relist (kubelet_running_pods, kubelet_running_containers). */
  runtimeCounts(): RuntimeCounts {
    return this.counts;
  }

  /** One relist: list, refresh the cache for changed containers, emit events per pod. */
  async relist(): Promise<void> {
    const start = this.opts.clock.now();
    if (this.lastRelist) kubeletMetrics.plegRelistInterval.observe((start - this.lastRelist) / 1000);
    try {
      await this.relistOnce();
    } finally {
      kubeletMetrics.plegRelistDuration.observe((this.opts.clock.now() - start) / 1000);
    }
  }

  private async relistOnce(): Promise<void> {
    const selector = { [LABEL_NODE]: this.opts.nodeName };
    const [sandboxes, containers] = await Promise.all([
      this.opts.runtime.listPodSandbox({ labelSelector: selector }),
      this.opts.runtime.listContainers({ labelSelector: selector }),
    ]);
    const next = new Map<string, { uid: string; state: PlegState }>();
    for (const s of sandboxes) next.set(s.id, { uid: s.metadata.uid, state: plegState(s.state) });
    for (const c of containers) next.set(c.id, { uid: c.labels[LABEL_POD_UID] ?? "", state: plegState(c.state) });
    const events: PodLifecycleEvent[] = [];
    for (const [id, cur] of next) {
      const old = this.last.get(id)?.state ?? "non-existent";
      if (old !== cur.state) events.push(...eventsFor(cur.uid, id, old, cur.state));
    }
    for (const [id, old] of this.last) if (!next.has(id)) events.push(...eventsFor(old.uid, id, old.state, "non-existent"));
    const counts: RuntimeCounts = { runningPods: new Set(sandboxes.filter((s) => s.state === "SANDBOX_READY").map((s) => s.metadata.uid)).size, containers: { created: 0, running: 0, exited: 0, unknown: 0 } };
    for (const c of containers) counts.containers[containerStateLabel(c.state)]++;
    this.counts = counts;
    // Refresh the cache for what changed before anyone is told, so their sync reads fresh statuses.
    await Promise.all([
      ...containers.map((c) => this.refreshContainer(c)),
      ...sandboxes.map((s) => this.refreshSandbox(s)),
    ]);
    for (const id of this.containerCache.keys()) if (!next.has(id)) this.containerCache.delete(id);
    for (const id of this.sandboxCache.keys()) if (!next.has(id)) this.sandboxCache.delete(id);
    this.last = next;
    this.lastRelist = this.opts.clock.now();
    for (const e of events) if (e.podUID) this.opts.onEvent(e);
  }

  /** The runtime's current view of one pod (lists by uid; statuses from the cache when unchanged). */
  async podStatus(uid: string): Promise<PodRuntimeStatus> {
    const selector = { [LABEL_POD_UID]: uid };
    const [sandboxes, containers] = await Promise.all([
      this.opts.runtime.listPodSandbox({ labelSelector: selector }),
      this.opts.runtime.listContainers({ labelSelector: selector }),
    ]);
    const sb = (await Promise.all(sandboxes.map((s) => this.refreshSandbox(s)))).filter((s): s is PodSandboxStatus => !!s);
    const cs = (await Promise.all(containers.map((c) => this.refreshContainer(c)))).filter((c): c is ContainerStatus => !!c);
    return { uid, sandboxes: sb.sort(byNewest), containers: cs.sort(byNewest) };
  }

  private async refreshContainer(c: Container): Promise<ContainerStatus | undefined> {
    const cached = this.containerCache.get(c.id);
    if (cached && cached.state === c.state) return cached;
    try {
      const st = await this.opts.runtime.containerStatus(c.id);
      this.containerCache.set(c.id, st);
      return st;
    } catch (e) {
      if (isRuntimeNotFound(e)) {
        this.containerCache.delete(c.id);
        return undefined;
      }
      throw e;
    }
  }

  private async refreshSandbox(s: PodSandbox): Promise<PodSandboxStatus | undefined> {
    const cached = this.sandboxCache.get(s.id);
    if (cached && cached.state === s.state) return cached;
    try {
      const st = await this.opts.runtime.podSandboxStatus(s.id);
      this.sandboxCache.set(s.id, st);
      return st;
    } catch (e) {
      if (isRuntimeNotFound(e)) {
        this.sandboxCache.delete(s.id);
        return undefined;
      }
      throw e;
    }
  }
}

/** upstream's generateEvents. */
function eventsFor(podUID: string, id: string, old: PlegState, cur: PlegState): PodLifecycleEvent[] {
  if (old === cur) return [];
  switch (cur) {
    case "running":
      return [{ podUID, type: "ContainerStarted", data: id }];
    case "exited":
      return [{ podUID, type: "ContainerDied", data: id }];
    case "unknown":
      return [{ podUID, type: "ContainerChanged", data: id }];
    case "non-existent":
      if (old === "exited") return [{ podUID, type: "ContainerRemoved", data: id }];
      return [
        { podUID, type: "ContainerDied", data: id },
        { podUID, type: "ContainerRemoved", data: id },
      ];
  }
}
