// The Scheduler (upstream's scheduler.go, eventhandlers.go and schedule_one.go): informers feed the
// queue and the cache; scheduleOne pops a pod, runs its profile's framework, assumes and binds.

import { Counter, Histogram, type Registry as MetricsRegistry } from "prom-client";
import type { Node, Pod, PodCondition } from "../api/index.ts";
import {
  newEventRecorder,
  newSharedInformerFactory,
  objectKey,
  realClock,
  type Client,
  type Clock,
  type Context,
  type EventRecorder,
  type Informer,
  type SharedInformerFactory,
} from "../client/index.ts";
import { Cache, Snapshot } from "./cache.ts";
import { FitError, Framework, type PluginRegistry, type Profile } from "./framework/runtime.ts";
import { ActionType, Status, type ClusterEvent, type CycleState, type Handle } from "./framework/types.ts";
import { SchedulingQueue, type QueuedPodInfo } from "./queue.ts";

export interface SchedulerOptions {
  client: Client;
  /** One framework per profile; pods pick theirs by spec.schedulerName. */
  profiles: Profile[];
  /** Plugin name → factory (the plugins' registry.ts for the in-tree set). */
  registry: PluginRegistry;
  /** Default: a new factory on `client` (started by run). */
  informerFactory?: SharedInformerFactory;
  clock?: Clock;
  /** Default: an apiserver-backed recorder for component "default-scheduler". */
  recorder?: EventRecorder;
  /** Where scheduler metrics register; none when absent. */
  metricsRegistry?: MetricsRegistry;
  /** Uniform [0, 1): score tie-breaking and metric sampling. */
  random?: () => number;
  /** Queue backoff overrides (tests). */
  podInitialBackoffMs?: number;
  podMaxBackoffMs?: number;
}

type Result = "scheduled" | "unschedulable" | "error";

interface SchedulerMetrics {
  attempts: Counter<"result" | "profile">;
  duration: Histogram<"result" | "profile">;
  sli: Histogram<"attempts">;
}

/** Upstream's attempts label of scheduler_pod_scheduling_sli_duration_seconds: the count, or "15+". */
function attemptsLabel(attempts: number): string {
  return attempts >= 15 ? "15+" : String(attempts);
}

/**
 * The scheduler. `run(ctx)` starts the informers and loops `scheduleOne` until ctx.signal aborts;
 * each pod's binding runs asynchronously, so the next pod is scheduled while the bind is in flight
 * (the assumed pod keeps the cache honest meanwhile).
 */
export class Scheduler {
  readonly cache: Cache;
  readonly queue: SchedulingQueue;
  readonly frameworks = new Map<string, Framework>();
  private readonly client: Client;
  private readonly clock: Clock;
  private readonly recorder: EventRecorder;
  private readonly factory: SharedInformerFactory;
  private readonly podInformer: Informer<Pod>;
  private readonly nodeInformer: Informer<Node>;
  private readonly snapshot = new Snapshot();
  private readonly bindings = new Set<Promise<void>>();
  private readonly metrics: SchedulerMetrics | undefined;

  constructor(opts: SchedulerOptions) {
    this.client = opts.client;
    this.clock = opts.clock ?? realClock;
    this.recorder = opts.recorder ?? newEventRecorder(opts.client, { component: "default-scheduler", clock: this.clock });
    this.factory = opts.informerFactory ?? newSharedInformerFactory(opts.client, { clock: this.clock });
    this.podInformer = this.factory.informer<Pod>("", "pods");
    this.nodeInformer = this.factory.informer<Node>("", "nodes");
    const pvcs = this.factory.informer("", "persistentvolumeclaims");
    const pvs = this.factory.informer("", "persistentvolumes");
    const storageClasses = this.factory.informer("storage.k8s.io", "storageclasses");
    const volumes: NonNullable<Handle["volumes"]> = {
      pvc: (namespace, name) => pvcs.lister.get(`${namespace}/${name}`),
      pv: (name) => pvs.lister.get(name),
      storageClass: (name) => storageClasses.lister.get(name),
      listPVs: () => pvs.lister.list(),
    };

    for (const profile of opts.profiles) {
      if (this.frameworks.has(profile.schedulerName)) throw new Error(`scheduler: duplicate profile "${profile.schedulerName}"`);
      this.frameworks.set(
        profile.schedulerName,
        new Framework(profile, opts.registry, {
          client: opts.client,
          recorder: this.recorder,
          volumes,
          ...(opts.metricsRegistry ? { metricsRegistry: opts.metricsRegistry } : {}),
          ...(opts.random ? { random: opts.random } : {}),
        }),
      );
    }
    const eventMap = new Map<string, ClusterEvent[]>();
    for (const fwk of this.frameworks.values()) for (const [k, v] of fwk.clusterEventMap()) eventMap.set(k, [...(eventMap.get(k) ?? []), ...v]);

    this.cache = new Cache({ clock: this.clock });
    this.queue = new SchedulingQueue({
      clock: this.clock,
      clusterEventMap: eventMap,
      ...(opts.metricsRegistry ? { registry: opts.metricsRegistry } : {}),
      ...(opts.podInitialBackoffMs !== undefined ? { podInitialBackoffMs: opts.podInitialBackoffMs } : {}),
      ...(opts.podMaxBackoffMs !== undefined ? { podMaxBackoffMs: opts.podMaxBackoffMs } : {}),
    });
    if (opts.metricsRegistry) {
      this.metrics = {
        attempts: new Counter({
          name: "scheduler_schedule_attempts_total",
          help: "Number of attempts to schedule pods, by the result.",
          labelNames: ["result", "profile"] as const,
          registers: [opts.metricsRegistry],
        }),
        duration: new Histogram({
          name: "scheduler_scheduling_attempt_duration_seconds",
          help: "Scheduling attempt latency in seconds (scheduling algorithm + binding).",
          labelNames: ["result", "profile"] as const,
          buckets: [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384],
          registers: [opts.metricsRegistry],
        }),
        sli: new Histogram({
          name: "scheduler_pod_scheduling_sli_duration_seconds",
          help: "E2e latency for a pod being scheduled, from the time the pod enters the scheduling queue and might involve multiple scheduling attempts.",
          labelNames: ["attempts"] as const,
          buckets: Array.from({ length: 20 }, (_, i) => 0.01 * 2 ** i), // ExponentialBuckets(0.01, 2, 20)
          registers: [opts.metricsRegistry],
        }),
      };
    }
    this.addEventHandlers();
    for (const [inf, resource] of [
      [pvcs, "PersistentVolumeClaim"],
      [pvs, "PersistentVolume"],
      [storageClasses, "StorageClass"],
    ] as const) {
      inf.addEventHandler({
        onAdd: () => this.queue.moveAllToActiveOrBackoff({ resource, actionType: ActionType.Add }),
        onUpdate: () => this.queue.moveAllToActiveOrBackoff({ resource, actionType: ActionType.Update }),
        onDelete: () => this.queue.moveAllToActiveOrBackoff({ resource, actionType: ActionType.Delete }),
      });
    }
  }

  /** Starts informers, waits for their first lists, then schedules until ctx.signal aborts. */
  async run(ctx: Context): Promise<void> {
    this.factory.start(ctx);
    await this.factory.waitForCacheSync(ctx.signal);
    const background = [this.queue.run(ctx.signal), this.cache.run(ctx.signal)];
    while (!ctx.signal.aborted) {
      try {
        if (!(await this.scheduleOne(ctx))) break;
      } catch (e) {
        ctx.log.error({ err: e }, "scheduleOne failed");
      }
    }
    this.queue.close();
    await Promise.all(background);
    await this.waitForBindings();
  }

  /** Resolves when every binding started so far has finished (tests, shutdown). */
  async waitForBindings(): Promise<void> {
    while (this.bindings.size > 0) await Promise.all([...this.bindings]);
  }

  /** Schedules the next pod; false when the queue is closed or ctx aborted. */
  async scheduleOne(ctx: Context): Promise<boolean> {
    const qp = await this.queue.pop(ctx.signal);
    if (!qp) return false;
    const pod = qp.pod;
    const fwk = this.frameworks.get(pod.spec?.schedulerName ?? "default-scheduler");
    if (!fwk || pod.metadata.deletionTimestamp || this.cache.isAssumedPod(pod)) {
      this.queue.done(pod);
      return true;
    }
    const started = performance.now();
    const state = fwk.newCycleState();
    fwk.setSnapshot(this.cache.updateSnapshot(this.snapshot));

    let host: string;
    try {
      host = (await fwk.schedulePod(state, pod)).suggestedHost;
    } catch (e) {
      if (e instanceof FitError) {
        if (fwk.hasPostFilterPlugins()) {
          const r = await fwk.runPostFilterPlugins(state, pod, e.diagnosis.nodeToStatus);
          e.setPostFilterMsg(r.status.message());
          if (r.nominatedNodeName) await this.setNominatedNodeName(ctx, pod, r.nominatedNodeName);
        }
        await this.handleFailure(ctx, fwk, qp, "Unschedulable", e.message, e.diagnosis.unschedulablePlugins, started);
      } else {
        await this.handleFailure(ctx, fwk, qp, "SchedulerError", errorMessage(e), [], started);
      }
      return true;
    }

    // Assume: the pod counts on `host` from now on, so the next cycle does not double-book it.
    const assumed: Pod = { ...pod, spec: { ...pod.spec!, nodeName: host } };
    try {
      this.cache.assumePod(assumed);
    } catch (e) {
      await this.handleFailure(ctx, fwk, qp, "SchedulerError", errorMessage(e), [], started);
      return true;
    }
    const reserve = fwk.runReservePluginsReserve(state, assumed, host);
    if (!reserve.isSuccess()) {
      await this.undo(ctx, fwk, state, qp, assumed, host, reserve, started);
      return true;
    }
    const permit = fwk.runPermitPlugins(state, assumed, host);
    if (!permit.isSuccess()) {
      await this.undo(ctx, fwk, state, qp, assumed, host, permit, started);
      return true;
    }
    const binding = this.bindingCycle(ctx, fwk, state, qp, assumed, host, started);
    this.bindings.add(binding);
    void binding.finally(() => this.bindings.delete(binding));
    return true;
  }

  private async bindingCycle(ctx: Context, fwk: Framework, state: CycleState, qp: QueuedPodInfo, assumed: Pod, host: string, started: number): Promise<void> {
    try {
      const pre = await fwk.runPreBindPlugins(state, assumed, host);
      if (!pre.isSuccess()) return await this.undo(ctx, fwk, state, qp, assumed, host, pre, started);
      const bound = await fwk.runBindPlugins(state, assumed, host);
      if (!bound.isSuccess()) {
        const status = bound.isSkip() ? Status.error("no bind plugin bound the pod") : bound;
        return await this.undo(ctx, fwk, state, qp, assumed, host, status, started);
      }
      this.cache.finishBinding(assumed);
      this.observe(fwk, "scheduled", started);
      this.metrics?.sli.observe({ attempts: attemptsLabel(qp.attempts) }, (this.clock.now() - qp.initialAttemptTimestamp) / 1000);
      this.recorder.event(qp.pod, "Normal", "Scheduled", `Successfully assigned ${objectKey(qp.pod)} to ${host}`);
      fwk.runPostBindPlugins(state, assumed, host);
      this.queue.done(qp.pod);
    } catch (e) {
      ctx.log.error({ err: e, pod: objectKey(qp.pod) }, "binding cycle failed");
      this.cache.forgetPod(assumed);
      await this.handleFailure(ctx, fwk, qp, "SchedulerError", errorMessage(e), [], started);
    }
  }

  /** Unreserve, forget the assumed pod, and report the failure. */
  private async undo(ctx: Context, fwk: Framework, state: CycleState, qp: QueuedPodInfo, assumed: Pod, host: string, status: Status, started: number): Promise<void> {
    fwk.runReservePluginsUnreserve(state, assumed, host);
    this.cache.forgetPod(assumed);
    // A bind that lost a race (pod deleted, or bound elsewhere) shows up as an informer event shortly.
    const rejected = status.isRejected();
    await this.handleFailure(ctx, fwk, qp, rejected ? "Unschedulable" : "SchedulerError", status.message(), rejected && status.plugin ? [status.plugin] : [], started);
  }

  /**
   * Upstream's handleSchedulingFailure: a FailedScheduling event, the pod back in the queue (if it
   * still exists unassigned), and PodScheduled=False with the reason and message on its status.
   */
  private async handleFailure(
    ctx: Context,
    fwk: Framework,
    qp: QueuedPodInfo,
    reason: "Unschedulable" | "SchedulerError",
    message: string,
    rejectors: Iterable<string>,
    started: number,
  ): Promise<void> {
    const pod = qp.pod;
    this.observe(fwk, reason === "Unschedulable" ? "unschedulable" : "error", started);
    this.recorder.event(pod, "Warning", "FailedScheduling", message);
    const current = this.podInformer.lister.get(objectKey(pod));
    if (current && !current.spec?.nodeName && current.metadata.uid === pod.metadata.uid) {
      this.queue.addUnschedulable({ ...qp, pod: current }, rejectors);
    }
    this.queue.done(pod);
    if (current && !current.spec?.nodeName) await this.setPodScheduledFalse(ctx, current, reason, message);
  }

  private async setPodScheduledFalse(ctx: Context, pod: Readonly<Pod>, reason: string, message: string): Promise<void> {
    const conditions = pod.status?.conditions ?? [];
    const prev = conditions.find((c) => c.type === "PodScheduled");
    if (prev && prev.status === "False" && prev.reason === reason && prev.message === message) return;
    const cond: PodCondition = {
      type: "PodScheduled",
      status: "False",
      lastProbeTime: null,
      lastTransitionTime: prev?.status === "False" && prev.lastTransitionTime ? prev.lastTransitionTime : rfc3339(this.clock.now()),
      reason,
      message,
    };
    const next = [...conditions.filter((c) => c.type !== "PodScheduled"), cond];
    try {
      await this.client.resource<Pod>("", "pods").patch(pod.metadata.namespace ?? "", pod.metadata.name ?? "", "merge", { status: { conditions: next } }, { subresource: "status" });
    } catch (e) {
      ctx.log.warn({ err: e, pod: objectKey(pod) }, "updating PodScheduled condition failed");
    }
  }

  private async setNominatedNodeName(ctx: Context, pod: Readonly<Pod>, node: string): Promise<void> {
    try {
      await this.client.resource<Pod>("", "pods").patch(pod.metadata.namespace ?? "", pod.metadata.name ?? "", "merge", { status: { nominatedNodeName: node } }, { subresource: "status" });
    } catch (e) {
      ctx.log.warn({ err: e, pod: objectKey(pod) }, "setting nominatedNodeName failed");
    }
  }

  private observe(fwk: Framework, result: Result, started: number): void {
    if (!this.metrics) return;
    const labels = { result, profile: fwk.profileName };
    this.metrics.attempts.inc(labels);
    this.metrics.duration.observe(labels, (performance.now() - started) / 1000);
  }

  private responsibleFor(pod: Readonly<Pod>): boolean {
    return this.frameworks.has(pod.spec?.schedulerName ?? "default-scheduler");
  }

  /** Upstream's addAllEventHandlers: assigned pods and nodes to the cache, unassigned pods to the queue, changes to the queue as events. */
  private addEventHandlers(): void {
    const move = (resource: ClusterEvent["resource"], actionType: number): void => {
      if (actionType !== 0) this.queue.moveAllToActiveOrBackoff({ resource, actionType });
    };
    this.podInformer.addEventHandler({
      onAdd: (pod) => {
        if (isTerminal(pod)) return;
        if (pod.spec?.nodeName) {
          this.cache.addPod(pod);
          move("Pod", ActionType.Add);
        } else if (this.responsibleFor(pod)) {
          this.queue.add(pod);
        }
      },
      onUpdate: (old, pod) => {
        if (pod.spec?.nodeName) {
          if (isTerminal(pod)) {
            // A finished pod no longer uses its node's resources.
            this.cache.removePod(pod);
            move("Pod", ActionType.Delete);
          } else if (!old.spec?.nodeName) {
            this.queue.delete(pod);
            this.cache.addPod(pod);
            move("Pod", ActionType.Add);
          } else {
            this.cache.updatePod(old, pod);
            if (!sameJSON(old.metadata.labels, pod.metadata.labels)) move("Pod", ActionType.UpdatePodLabel);
          }
        } else if (this.responsibleFor(pod) && !this.cache.isAssumedPod(pod)) {
          if (isTerminal(pod)) this.queue.delete(pod);
          else this.queue.update(old, pod);
        }
      },
      onDelete: (pod) => {
        if (pod.spec?.nodeName) {
          this.cache.removePod(pod);
          move("Pod", ActionType.Delete);
        } else {
          this.queue.delete(pod);
          if (this.cache.isAssumedPod(pod)) this.cache.forgetPod(pod);
        }
      },
    });
    this.nodeInformer.addEventHandler({
      onAdd: (node) => {
        this.cache.addNode(node);
        move("Node", ActionType.Add);
      },
      onUpdate: (old, node) => {
        this.cache.updateNode(old, node);
        move("Node", nodeChange(old, node));
      },
      onDelete: (node) => {
        this.cache.removeNode(node);
        move("Node", ActionType.Delete);
      },
    });
  }
}

/** Which kinds of node change happened (upstream's nodeSchedulingPropertiesChange). */
export function nodeChange(old: Readonly<Node>, node: Readonly<Node>): number {
  let action = 0;
  if (!sameJSON(old.status?.allocatable, node.status?.allocatable)) action |= ActionType.UpdateNodeAllocatable;
  if (!sameJSON(old.metadata.labels, node.metadata.labels)) action |= ActionType.UpdateNodeLabel;
  if (!sameJSON(old.spec?.taints, node.spec?.taints) || !!old.spec?.unschedulable !== !!node.spec?.unschedulable) action |= ActionType.UpdateNodeTaint;
  if (!sameJSON(conditionStatuses(old), conditionStatuses(node))) action |= ActionType.UpdateNodeCondition;
  return action;
}

function conditionStatuses(node: Readonly<Node>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const c of node.status?.conditions ?? []) out[c.type] = c.status;
  return out;
}

function sameJSON(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

function isTerminal(pod: Readonly<Pod>): boolean {
  return pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

