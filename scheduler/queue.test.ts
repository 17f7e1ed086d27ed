import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import type { Pod } from "../api/index.ts";
import { FakeClock } from "../client/index.ts";
import { ActionType, type ClusterEvent } from "./framework/types.ts";
import { SchedulingQueue, type QueuedPodInfo } from "./queue.ts";

function pendingPod(name: string, priority?: number, extra: Partial<NonNullable<Pod["spec"]>> = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default", uid: `uid-${name}` },
    spec: { containers: [{ name: "c" }], ...(priority !== undefined ? { priority } : {}), ...extra },
  };
}

const nodeAdd: ClusterEvent = { resource: "Node", actionType: ActionType.Add };
const nodeTaint: ClusterEvent = { resource: "Node", actionType: ActionType.UpdateNodeTaint };
const pvcAdd: ClusterEvent = { resource: "PersistentVolumeClaim", actionType: ActionType.Add };
const podDelete: ClusterEvent = { resource: "Pod", actionType: ActionType.Delete };

const eventMap = new Map<string, ClusterEvent[]>([
  ["NodeResourcesFit", [{ resource: "Node", actionType: ActionType.Add | ActionType.UpdateNodeAllocatable }, { resource: "Pod", actionType: ActionType.Delete }]],
  ["TaintToleration", [{ resource: "Node", actionType: ActionType.Add | ActionType.UpdateNodeTaint }]],
]);

function newQueue(): { queue: SchedulingQueue; clock: FakeClock } {
  const clock = new FakeClock();
  return { queue: new SchedulingQueue({ clock, clusterEventMap: eventMap }), clock };
}

/** Pops the pod and reports the attempt as rejected by `plugins`. */
async function failAttempt(queue: SchedulingQueue, plugins: string[]): Promise<QueuedPodInfo> {
  const info = (await queue.pop())!;
  queue.addUnschedulable(info, plugins);
  queue.done(info.pod);
  return info;
}

describe("SchedulingQueue ordering", () => {
  it("pops higher priority first and equal priorities in arrival order", async () => {
    const { queue, clock } = newQueue();
    queue.add(pendingPod("low", 1));
    await clock.advance(10);
    queue.add(pendingPod("default-first"));
    await clock.advance(10);
    queue.add(pendingPod("high", 1000));
    await clock.advance(10);
    queue.add(pendingPod("default-second"));
    const order: string[] = [];
    for (let i = 0; i < 4; i++) order.push((await queue.pop())!.pod.metadata.name!);
    expect(order).toEqual(["high", "low", "default-first", "default-second"]);
  });

  it("pop waits for a pod to be added and resolves undefined when aborted", async () => {
    const { queue } = newQueue();
    const waiting = queue.pop();
    queue.add(pendingPod("late"));
    expect((await waiting)!.pod.metadata.name).toBe("late");
    const ac = new AbortController();
    const aborted = queue.pop(ac.signal);
    ac.abort();
    expect(await aborted).toBeUndefined();
  });

  it("a pod with scheduling gates is held as gated until an update removes them", async () => {
    const { queue } = newQueue();
    const gated = pendingPod("gated", 0, { schedulingGates: [{ name: "example.com/wait" }] });
    queue.add(gated);
    expect(queue.whereIs(gated)).toBe("gated");
    queue.moveAllToActiveOrBackoff(nodeAdd);
    expect(queue.whereIs(gated)).toBe("gated");
    queue.update(gated, pendingPod("gated"));
    expect(queue.whereIs(gated)).toBe("active");
  });

  it("a deleted pod leaves every queue", async () => {
    const { queue } = newQueue();
    const p = pendingPod("p");
    queue.add(p);
    queue.delete(p);
    expect(queue.whereIs(p)).toBeUndefined();
    expect(queue.pendingCounts()).toEqual({ active: 0, backoff: 0, unschedulable: 0, gated: 0 });
  });
});

describe("SchedulingQueue events", () => {
  it("a pod rejected by NodeResourcesFit moves to active as soon as a Node Add event arrives", async () => {
    const { queue, clock } = newQueue();
    const p = pendingPod("needs-cpu");
    queue.add(p);
    await failAttempt(queue, ["NodeResourcesFit"]);
    expect(queue.whereIs(p)).toBe("unschedulable");
    await clock.advance(2_000); // past its 1 s backoff, with no flush running
    queue.moveAllToActiveOrBackoff(nodeAdd);
    expect(queue.whereIs(p)).toBe("active");
    expect((await queue.pop())!.pod.metadata.name).toBe("needs-cpu");
  });

  const unrelated: { name: string; event: ClusterEvent }[] = [
    { name: "a node taint change does not move a pod rejected only for cpu", event: nodeTaint },
    { name: "a PVC being added does not move a pod rejected only for cpu", event: pvcAdd },
  ];
  it.each(unrelated)("$name", async ({ event }) => {
    const { queue, clock } = newQueue();
    const p = pendingPod("needs-cpu");
    queue.add(p);
    await failAttempt(queue, ["NodeResourcesFit"]);
    await clock.advance(2_000);
    queue.moveAllToActiveOrBackoff(event);
    expect(queue.whereIs(p)).toBe("unschedulable");
  });

  it("a pod rejected by two plugins moves on an event either of them registered", async () => {
    const { queue, clock } = newQueue();
    const p = pendingPod("both");
    queue.add(p);
    await failAttempt(queue, ["NodeResourcesFit", "TaintToleration"]);
    await clock.advance(2_000);
    queue.moveAllToActiveOrBackoff(nodeTaint);
    expect(queue.whereIs(p)).toBe("active");
  });

  it("a pod rejected by a plugin that registered no events moves on any event", async () => {
    const { queue, clock } = newQueue();
    const p = pendingPod("unknown");
    queue.add(p);
    await failAttempt(queue, ["SomeCustomPlugin"]);
    await clock.advance(2_000);
    queue.moveAllToActiveOrBackoff(pvcAdd);
    expect(queue.whereIs(p)).toBe("active");
  });

  it("a pod moved while still backing off waits in backoff and becomes active when the backoff ends", async () => {
    const { queue, clock } = newQueue();
    const p = pendingPod("fresh");
    queue.add(p);
    await failAttempt(queue, ["NodeResourcesFit"]);
    queue.moveAllToActiveOrBackoff(podDelete);
    expect(queue.whereIs(p)).toBe("backoff");
    const ac = new AbortController();
    const running = queue.run(ac.signal);
    await clock.advance(999);
    expect(queue.whereIs(p)).toBe("backoff");
    await clock.advance(1);
    expect(queue.whereIs(p)).toBe("active");
    ac.abort();
    await running;
  });

  it("a relevant event that arrives during the attempt sends the rejected pod to backoff, not to wait", async () => {
    const { queue } = newQueue();
    const p = pendingPod("raced");
    queue.add(p);
    const info = (await queue.pop())!;
    queue.moveAllToActiveOrBackoff(nodeAdd);
    queue.addUnschedulable(info, ["NodeResourcesFit"]);
    queue.done(info.pod);
    expect(queue.whereIs(p)).toBe("backoff");
  });

  it("an irrelevant event during the attempt still parks the pod as unschedulable", async () => {
    const { queue } = newQueue();
    const p = pendingPod("raced");
    queue.add(p);
    const info = (await queue.pop())!;
    queue.moveAllToActiveOrBackoff(pvcAdd);
    queue.addUnschedulable(info, ["NodeResourcesFit"]);
    expect(queue.whereIs(p)).toBe("unschedulable");
  });

  it("an attempt that failed with an error rather than a rejection goes to backoff", async () => {
    const { queue } = newQueue();
    const p = pendingPod("errored");
    queue.add(p);
    await failAttempt(queue, []);
    expect(queue.whereIs(p)).toBe("backoff");
  });

  it("unschedulable pods are retried by the periodic flush after five minutes without an event", async () => {
    const { queue, clock } = newQueue();
    const p = pendingPod("forgotten");
    queue.add(p);
    await failAttempt(queue, ["NodeResourcesFit"]);
    const ac = new AbortController();
    const running = queue.run(ac.signal);
    await clock.advance(4 * 60_000);
    expect(queue.whereIs(p)).toBe("unschedulable");
    await clock.advance(60_000 + 30_000);
    expect(queue.whereIs(p)).toBe("active");
    ac.abort();
    await running;
  });
});

describe("SchedulingQueue backoff", () => {
  it("backoff doubles per attempt from 1 s and is capped at 10 s", async () => {
    const { queue } = newQueue();
    const p = pendingPod("p");
    const durations: number[] = [];
    for (let attempts = 1; attempts <= 6; attempts++) {
      durations.push(queue.backoffDurationMs({ pod: p, timestamp: 0, initialAttemptTimestamp: 0, attempts, unschedulablePlugins: new Set(), gated: false }));
    }
    expect(durations).toEqual([1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
  });

  it("the third failed attempt waits four seconds in backoff", async () => {
    const { queue, clock } = newQueue();
    const p = pendingPod("p");
    queue.add(p);
    for (let i = 0; i < 3; i++) {
      await failAttempt(queue, []);
      if (i < 2) {
        await clock.advance(10_000);
        queue.flushBackoffQCompleted();
      }
    }
    await clock.advance(3_999);
    queue.flushBackoffQCompleted();
    expect(queue.whereIs(p)).toBe("backoff");
    await clock.advance(1);
    queue.flushBackoffQCompleted();
    expect(queue.whereIs(p)).toBe("active");
  });
});

describe("SchedulingQueue metrics", () => {
  it("reports scheduler_pending_pods per queue", async () => {
    const clock = new FakeClock();
    const registry = new Registry();
    const queue = new SchedulingQueue({ clock, clusterEventMap: eventMap, registry });
    queue.add(pendingPod("a"));
    queue.add(pendingPod("b"));
    queue.add(pendingPod("g", 0, { schedulingGates: [{ name: "x" }] }));
    const info = (await queue.pop())!;
    queue.addUnschedulable(info, ["NodeResourcesFit"]);
    const text = await registry.metrics();
    expect(text).toContain('scheduler_pending_pods{queue="active"} 1');
    expect(text).toContain('scheduler_pending_pods{queue="unschedulable"} 1');
    expect(text).toContain('scheduler_pending_pods{queue="gated"} 1');
    expect(text).toContain('scheduler_pending_pods{queue="backoff"} 0');
  });
});
