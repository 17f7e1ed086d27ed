import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import type { Node, Pod } from "../api/index.ts";
import { FakeClient, FakeClock, FakeRecorder, flushPromises, newLogger, type Context } from "../client/index.ts";
import type { PluginRegistry } from "./framework/runtime.ts";
import { ActionType, Status, type BindPlugin, type ClusterEvent, type CycleState, type EnqueueExtensions, type FilterPlugin, type Handle, type NodeInfo } from "./framework/types.ts";
import { Scheduler } from "./scheduler.ts";

/** Rejects a node when the pod's cpu request (in whole cores, from the "cores" label) exceeds the node's "cores" label. */
class CoresFit implements FilterPlugin, EnqueueExtensions {
  readonly name = "CoresFit";
  filter(_s: CycleState, pod: Readonly<Pod>, info: NodeInfo): Status {
    const want = Number(pod.metadata.labels?.["cores"] ?? 0);
    const have = Number(info.node.metadata.labels?.["cores"] ?? 0) - info.pods.length;
    return want <= have ? Status.success() : Status.unschedulable("Insufficient cpu");
  }
  eventsToRegister(): ClusterEvent[] {
    return [{ resource: "Node", actionType: ActionType.Add | ActionType.UpdateNodeAllocatable }];
  }
}

/** Binds through pods/binding, like DefaultBinder. */
class ApiBinder implements BindPlugin {
  readonly name = "ApiBinder";
  constructor(private readonly handle: Handle) {}
  async bind(_s: CycleState, pod: Readonly<Pod>, nodeName: string): Promise<Status> {
    try {
      await this.handle.client.bind(pod.metadata.namespace ?? "", pod.metadata.name ?? "", nodeName, { uid: pod.metadata.uid ?? "" });
      return Status.success();
    } catch (e) {
      return Status.error(String(e));
    }
  }
}

const registry: PluginRegistry = {
  CoresFit: () => new CoresFit(),
  ApiBinder: (_args, handle) => new ApiBinder(handle),
};

function node(name: string, cores: number): Node {
  return { apiVersion: "v1", kind: "Node", metadata: { name, labels: { cores: String(cores) } }, status: { allocatable: { cpu: String(cores), pods: "110" } } };
}

function pod(name: string, cores: number): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default", uid: `uid-${name}`, labels: { cores: String(cores) } },
    spec: { containers: [{ name: "c", image: "x" }] },
    status: { phase: "Pending" },
  };
}

interface Fixture {
  clock: FakeClock;
  client: FakeClient;
  recorder: FakeRecorder;
  metrics: Registry;
  scheduler: Scheduler;
  stop: () => Promise<void>;
}

const running: Fixture[] = [];
afterEach(async () => {
  for (const f of running.splice(0)) await f.stop();
});

function start(objects: (Node | Pod)[]): Fixture {
  const clock = new FakeClock();
  const client = new FakeClient(objects, { clock });
  const recorder = new FakeRecorder();
  const metrics = new Registry();
  const scheduler = new Scheduler({
    client,
    clock,
    recorder,
    metricsRegistry: metrics,
    registry,
    profiles: [{ schedulerName: "default-scheduler", plugins: [{ name: "CoresFit" }, { name: "ApiBinder" }] }],
    random: () => 0.5,
  });
  const ac = new AbortController();
  const ctx: Context = { signal: ac.signal, log: newLogger("scheduler-test") };
  const done = scheduler.run(ctx);
  const f: Fixture = {
    clock,
    client,
    recorder,
    metrics,
    scheduler,
    stop: async () => {
      ac.abort();
      await done;
    },
  };
  running.push(f);
  return f;
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await flushPromises();
  expect(cond()).toBe(true);
}

function trackedPod(client: FakeClient, name: string): Pod {
  return client.tracker("", "pods", "default", name) as Pod;
}

describe("Scheduler", () => {
  it("binds a pending pod to the node that fits and records a Scheduled event", async () => {
    const f = start([node("small", 1), node("big", 8), pod("web", 4)]);
    await until(() => !!trackedPod(f.client, "web").spec?.nodeName);
    expect(trackedPod(f.client, "web").spec!.nodeName).toBe("big");
    await until(() => f.recorder.events.length > 0);
    expect(f.recorder.events).toEqual(["Normal Scheduled Successfully assigned default/web to big"]);
    expect(await f.metrics.metrics()).toContain('scheduler_schedule_attempts_total{result="scheduled",profile="default-scheduler"} 1');
  });

  it("an unschedulable pod gets a FailedScheduling event and PodScheduled=False with kube-scheduler's message", async () => {
    const f = start([node("a", 1), node("b", 2), pod("huge", 16)]);
    await until(() => trackedPod(f.client, "huge").status?.conditions?.some((c) => c.type === "PodScheduled") ?? false);
    const msg = "0/2 nodes are available: 2 Insufficient cpu.";
    expect(f.recorder.events).toEqual([`Warning FailedScheduling ${msg}`]);
    expect(trackedPod(f.client, "huge").status!.conditions).toEqual([
      expect.objectContaining({ type: "PodScheduled", status: "False", reason: "Unschedulable", message: msg }),
    ]);
    expect(trackedPod(f.client, "huge").spec?.nodeName).toBeUndefined();
    expect(f.scheduler.queue.whereIs(pod("huge", 16))).toBe("unschedulable");
    expect(await f.metrics.metrics()).toContain('scheduler_schedule_attempts_total{result="unschedulable",profile="default-scheduler"} 1');
  });

  it("a node added later makes the parked pod schedulable without waiting for the five-minute flush", async () => {
    const f = start([node("a", 1), pod("huge", 16)]);
    await until(() => f.scheduler.queue.whereIs(pod("huge", 16)) === "unschedulable");
    await f.client.resource<Node>("", "nodes").create("", node("giant", 32));
    await until(() => f.scheduler.queue.whereIs(pod("huge", 16)) !== "unschedulable");
    // Still inside its 1 s backoff: it waits in backoffQ, then binds once the backoff flush runs.
    expect(f.scheduler.queue.whereIs(pod("huge", 16))).toBe("backoff");
    await f.clock.advance(1_000);
    await until(() => trackedPod(f.client, "huge").spec?.nodeName === "giant");
  });

  it("two pods that each fit only alone are not both bound to the same node (the assumed pod counts)", async () => {
    const f = start([node("one", 4), pod("first", 4), pod("second", 4)]);
    await until(() => f.recorder.events.length >= 2);
    const bound = ["first", "second"].filter((n) => trackedPod(f.client, n).spec?.nodeName === "one");
    expect(bound).toHaveLength(1);
    expect(f.recorder.events.filter((e) => e.startsWith("Warning FailedScheduling"))).toHaveLength(1);
  });

  it("pods for another scheduler are left alone", async () => {
    const other = pod("other", 1);
    other.spec!.schedulerName = "my-scheduler";
    const f = start([node("a", 4), other, pod("mine", 1)]);
    await until(() => !!trackedPod(f.client, "mine").spec?.nodeName);
    expect(trackedPod(f.client, "other").spec?.nodeName).toBeUndefined();
    expect(f.scheduler.queue.whereIs(other)).toBeUndefined();
  });
});
