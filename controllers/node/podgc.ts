// The pod garbage collector's node-related passes (pkg/controller/podgc): pods bound to a node that
// no longer exists are marked Failed and force-deleted (no kubelet will ever finish them), and
// terminating pods that were never scheduled are force-deleted.

import type { Node, Pod } from "../../api/index.ts";
import { isNotFound, type Client, type Clock, type Context, type Lister } from "../../client/index.ts";
import { deepCopy } from "../podcontrol.ts";
import { updatePodCondition } from "./util.ts";

/** How often the collector runs (gcCheckPeriod). */
export const PodGCCheckPeriodMs = 20_000;
/** How long a node must stay missing before its pods count as orphaned (quarantineTime). */
export const PodGCQuarantineMs = 40_000;

export interface PodGCControllerDeps {
  client: Client;
  nodes: Lister<Node>;
  pods: Lister<Pod>;
  clock: Clock;
}

export class PodGCController {
  /** Node names pods refer to but the cache lacks, with when they were first found missing. */
  private readonly missingSince = new Map<string, number>();

  constructor(private readonly deps: PodGCControllerDeps) {}

  async gc(ctx: Context): Promise<void> {
    const pods = this.deps.pods.list();
    await this.gcOrphaned(ctx, pods);
    await this.gcUnscheduledTerminating(ctx, pods);
  }

  /**
   * A node missing from the cache is quarantined first (it may just not be in the cache yet), then
   * checked against the API: only a node the apiserver does not know makes its pods orphans.
   */
  private async gcOrphaned(ctx: Context, pods: readonly Readonly<Pod>[]): Promise<void> {
    const now = this.deps.clock.now();
    const referenced = new Set<string>();
    for (const pod of pods) {
      const node = pod.spec?.nodeName;
      if (!node || this.deps.nodes.get(node)) continue;
      referenced.add(node);
      if (!this.missingSince.has(node)) this.missingSince.set(node, now);
    }
    const deleted = new Set<string>();
    for (const [node, since] of [...this.missingSince]) {
      if (!referenced.has(node) || this.deps.nodes.get(node)) {
        this.missingSince.delete(node);
        continue;
      }
      if (now - since < PodGCQuarantineMs) continue;
      this.missingSince.delete(node);
      try {
        await this.deps.client.resource<Node>("", "nodes").get("", node);
      } catch (e) {
        if (isNotFound(e)) deleted.add(node);
        else ctx.log.error({ err: e, node }, "error while getting node");
      }
    }
    for (const pod of pods) {
      if (!deleted.has(pod.spec?.nodeName ?? "")) continue;
      ctx.log.info({ pod: `${pod.metadata.namespace}/${pod.metadata.name}`, node: pod.spec?.nodeName }, "found orphaned pod assigned to the node, deleting");
      try {
        await this.markFailedAndDelete(pod, { type: "DisruptionTarget", status: "True", reason: "DeletionByPodGC", message: "PodGC: node no longer exists" });
      } catch (e) {
        if (!isNotFound(e)) ctx.log.error({ err: e, pod: `${pod.metadata.namespace}/${pod.metadata.name}` }, "failed to delete orphaned pod");
      }
    }
  }

  /** Terminating pods nobody scheduled: no kubelet will confirm their end, so they are force-deleted. */
  private async gcUnscheduledTerminating(ctx: Context, pods: readonly Readonly<Pod>[]): Promise<void> {
    for (const pod of pods) {
      if (!pod.metadata.deletionTimestamp || pod.spec?.nodeName) continue;
      ctx.log.info({ pod: `${pod.metadata.namespace}/${pod.metadata.name}` }, "force deleting unscheduled terminating pod");
      try {
        await this.markFailedAndDelete(pod);
      } catch (e) {
        if (!isNotFound(e)) ctx.log.error({ err: e, pod: `${pod.metadata.namespace}/${pod.metadata.name}` }, "failed to delete unscheduled terminating pod");
      }
    }
  }

  /** markFailedAndDeletePodWithCondition: phase Failed (with the condition) unless finished, then delete with grace 0. */
  private async markFailedAndDelete(cached: Readonly<Pod>, condition?: { type: string; status: "True"; reason: string; message: string }): Promise<void> {
    const pods = this.deps.client.resource<Pod>("", "pods");
    const ns = cached.metadata.namespace ?? "";
    const name = cached.metadata.name ?? "";
    const phase = cached.status?.phase;
    if (phase !== "Succeeded" && phase !== "Failed") {
      const pod = deepCopy(cached) as Pod;
      const status = (pod.status ??= {});
      status.phase = "Failed";
      if (condition) updatePodCondition(status, condition, this.deps.clock.now());
      await pods.patch(ns, name, "merge", { metadata: { uid: cached.metadata.uid }, status: { phase: "Failed", conditions: status.conditions ?? [] } }, { subresource: "status" });
    }
    await pods.delete(ns, name, { gracePeriodSeconds: 0, preconditions: { uid: cached.metadata.uid } });
  }

  /** Runs `gc` every check period until ctx aborts. */
  async run(ctx: Context): Promise<void> {
    while (!ctx.signal.aborted) {
      try {
        await this.gc(ctx);
      } catch (e) {
        ctx.log.error({ err: e }, "pod garbage collection failed");
      }
      await this.deps.clock.sleep(PodGCCheckPeriodMs, ctx.signal);
    }
  }
}
