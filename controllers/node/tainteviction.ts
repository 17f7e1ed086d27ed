// The taint eviction controller (pkg/controller/tainteviction): a pod on a node with NoExecute
// taints is deleted at once when it does not tolerate one of them, after the shortest
// tolerationSeconds when it tolerates them all for a while, and never when it tolerates them
// forever. Scheduled deletions are cancelled when the taints go (or the pod leaves the node).

import { toleratesTaint, type Node, type Pod, type Taint, type Toleration } from "../../api/index.ts";
import { INDEX_NODE_NAME, isNotFound, type Client, type Clock, type Context, type EventRecorder, type Lister, type ObjectKey } from "../../client/index.ts";
import { splitKey } from "../../client/index.ts";
import { deepCopy } from "../podcontrol.ts";
import { updatePodCondition } from "./util.ts";

/** Attempts at deleting a pod whose time is up (upstream `retries`). */
const DeleteRetries = 5;
const DeleteRetryDelayMs = 10;

export interface TaintEvictionControllerDeps {
  client: Client;
  nodes: Lister<Node>;
  pods: Lister<Pod>;
  recorder: EventRecorder;
  clock: Clock;
}

/** A scheduled deletion; `timer` undefined once it ran successfully (kept so it is not scheduled again). */
interface ScheduledEviction {
  at: number;
  uid: string;
  timer?: { cancel(): void };
}

/** The NoExecute taints of a node (getNoExecuteTaints). */
export function noExecuteTaints(node: Readonly<Node> | undefined): Taint[] {
  return (node?.spec?.taints ?? []).filter((t) => t.effect === "NoExecute");
}

/**
 * GetMatchingTolerations: for each taint, the first toleration tolerating it; undefined when some
 * taint is not tolerated.
 */
export function matchingTolerations(taints: readonly Taint[], tolerations: readonly Toleration[] | undefined): { taint: Taint; toleration: Toleration }[] | undefined {
  const out: { taint: Taint; toleration: Toleration }[] = [];
  for (const taint of taints) {
    const toleration = (tolerations ?? []).find((t) => toleratesTaint(t, taint));
    if (!toleration) return undefined;
    out.push({ taint, toleration });
  }
  return out;
}

/**
 * When the pod must go: now when a taint is not tolerated; else the earliest of each taint's
 * timeAdded (now when unset) plus its toleration's tolerationSeconds (≤ 0 means at once);
 * undefined when every matching toleration is unbounded.
 */
export function evictionTime(taints: readonly Taint[], tolerations: readonly Toleration[] | undefined, now: number): number | undefined {
  const used = matchingTolerations(taints, tolerations);
  if (!used) return now;
  let at: number | undefined;
  for (const { taint, toleration } of used) {
    if (toleration.tolerationSeconds === undefined || toleration.tolerationSeconds === null) continue;
    const added = taint.timeAdded ? Date.parse(taint.timeAdded) : NaN;
    const start = Number.isNaN(added) ? now : added;
    const t = start + Math.max(0, toleration.tolerationSeconds) * 1000;
    if (at === undefined || t < at) at = t;
  }
  return at;
}

export class TaintEvictionController {
  private readonly scheduled = new Map<string, ScheduledEviction>();
  private readonly stop = new AbortController();

  constructor(private readonly deps: TaintEvictionControllerDeps) {}

  /** Pods with a deletion pending, by "namespace/name" (for tests and metrics). */
  pending(): Map<string, number> {
    return new Map([...this.scheduled].filter(([, s]) => s.timer).map(([k, s]) => [k, s.at]));
  }

  /** handleNodeUpdate: re-evaluates every pod on the node (key: node name). */
  async reconcileNode(ctx: Context, name: ObjectKey): Promise<void> {
    const node = this.deps.nodes.get(name);
    const taints = noExecuteTaints(node);
    const pods = this.deps.pods.byIndex(INDEX_NODE_NAME, name);
    if (taints.length === 0) {
      for (const pod of pods) this.cancelWithEvent(ctx, pod);
      return;
    }
    for (const pod of pods) this.processPodOnNode(ctx, pod, taints);
  }

  /** handlePodUpdate: re-evaluates one pod against its node's taints (key: namespace/name). */
  async reconcilePod(ctx: Context, key: ObjectKey): Promise<void> {
    const pod = this.deps.pods.get(key);
    if (!pod || !pod.spec?.nodeName) {
      this.cancel(key);
      return;
    }
    const taints = noExecuteTaints(this.deps.nodes.get(pod.spec.nodeName));
    if (taints.length === 0) {
      this.cancelWithEvent(ctx, pod);
      return;
    }
    this.processPodOnNode(ctx, pod, taints);
  }

  /** Cancels every scheduled deletion (the controller is stopping). */
  shutdown(): void {
    this.stop.abort();
    for (const s of this.scheduled.values()) s.timer?.cancel();
    this.scheduled.clear();
  }

  private processPodOnNode(ctx: Context, pod: Readonly<Pod>, taints: readonly Taint[]): void {
    const key = podKey(pod);
    // Already going away: nothing to add.
    if (pod.metadata.deletionTimestamp) {
      this.cancel(key);
      return;
    }
    const now = this.deps.clock.now();
    const at = evictionTime(taints, pod.spec?.tolerations, now);
    if (at === undefined) {
      ctx.log.debug({ pod: key }, "current tolerations for pod tolerate forever, cancelling any scheduled deletion");
      this.cancelWithEvent(ctx, pod);
      return;
    }
    const existing = this.scheduled.get(key);
    if (existing && existing.uid === pod.metadata.uid) {
      // Done already, or due no later than the new time: keep it.
      if (!existing.timer || existing.at <= at) return;
      this.cancelWithEvent(ctx, pod);
    } else if (existing) {
      this.cancel(key);
    }
    if (at <= now) ctx.log.info({ pod: key, node: pod.spec?.nodeName }, "not all taints are tolerated; deleting pod");
    this.schedule(ctx, pod, at);
  }

  private schedule(ctx: Context, pod: Readonly<Pod>, at: number): void {
    const key = podKey(pod);
    const entry: ScheduledEviction = { at, uid: pod.metadata.uid ?? "" };
    const fireCtx: Context = { signal: this.stop.signal, log: ctx.log };
    entry.timer = this.deps.clock.setTimeout(() => void this.fire(fireCtx, key, entry), Math.max(0, at - this.deps.clock.now()));
    this.scheduled.set(key, entry);
  }

  private async fire(ctx: Context, key: string, entry: ScheduledEviction): Promise<void> {
    if (this.scheduled.get(key) !== entry || ctx.signal.aborted) return;
    const { namespace, name } = splitKey(key);
    ctx.log.info({ pod: key }, "deleting pod (NoExecute taint)");
    this.deps.recorder.event(podRef(namespace, name, entry.uid), "Normal", "TaintManagerEviction", `Marking for deletion Pod ${key}`);
    let err: unknown;
    for (let i = 0; i < DeleteRetries; i++) {
      try {
        await this.addConditionAndDeletePod(namespace, name, entry.uid);
        err = undefined;
        break;
      } catch (e) {
        err = e;
        if (isNotFound(e)) {
          err = undefined;
          break;
        }
        await this.deps.clock.sleep(DeleteRetryDelayMs, ctx.signal);
      }
    }
    if (this.scheduled.get(key) !== entry) return;
    if (err === undefined) {
      entry.timer = undefined; // kept, so the pod is not scheduled again while it terminates
    } else {
      ctx.log.error({ err, pod: key }, "failed to delete pod for a NoExecute taint");
      this.scheduled.delete(key); // the next update of the pod or node schedules it again
    }
  }

  /** addConditionAndDeletePod: DisruptionTarget=True (DeletionByTaintManager), then delete. */
  private async addConditionAndDeletePod(namespace: string, name: string, uid: string): Promise<void> {
    const pods = this.deps.client.resource<Pod>("", "pods");
    const pod = await pods.get(namespace, name);
    if (uid && pod.metadata.uid !== uid) return; // a new pod of the same name: not ours to delete
    if (pod.metadata.deletionTimestamp) return;
    const next = deepCopy(pod);
    next.status ??= {};
    const changed = updatePodCondition(
      next.status,
      { type: "DisruptionTarget", status: "True", reason: "DeletionByTaintManager", message: "Taint manager: deleting due to NoExecute taint" },
      this.deps.clock.now(),
    );
    if (changed) await pods.updateStatus(next);
    await pods.delete(namespace, name, { preconditions: { uid: pod.metadata.uid } });
  }

  private cancel(key: string): boolean {
    const s = this.scheduled.get(key);
    if (!s) return false;
    s.timer?.cancel();
    this.scheduled.delete(key);
    return true;
  }

  /** cancelWorkWithEvent: cancelling a pending deletion is recorded on the pod. */
  private cancelWithEvent(ctx: Context, pod: Readonly<Pod>): void {
    const key = podKey(pod);
    const s = this.scheduled.get(key);
    if (!s || !s.timer) {
      // A deletion already carried out stays remembered until the pod is gone.
      return;
    }
    this.cancel(key);
    ctx.log.info({ pod: key }, "cancelling scheduled deletion of pod");
    this.deps.recorder.event(pod, "Normal", "TaintManagerEviction", `Cancelling deletion of Pod ${key}`);
  }
}

function podKey(pod: Readonly<Pod>): string {
  return `${pod.metadata.namespace ?? ""}/${pod.metadata.name ?? ""}`;
}

function podRef(namespace: string, name: string, uid: string): Pod {
  return { apiVersion: "v1", kind: "Pod", metadata: { namespace, name, ...(uid ? { uid } : {}) } };
}
