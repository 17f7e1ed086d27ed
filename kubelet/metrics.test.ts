import { Registry, type Histogram } from "prom-client";
import { describe, expect, it } from "vitest";
import { FakeClock, newLogger } from "../client/index.ts";
import { kubeletMetrics, registerKubeletMetrics, trackNode, type RuntimeCounts } from "./metrics.ts";
import { GenericPLEG } from "./pleg.ts";
import { PodWorkers } from "./podworkers.ts";
import { FakeRuntime } from "./runtime/fake.ts";
import { LABEL_NODE, LABEL_POD_UID } from "./runtime/types.ts";

const log = newLogger("kubelet-metrics-test");
log.level = "silent";

/** Count and sum of a histogram series (the metrics are process-wide: tests compare before and after). */
async function histogram<L extends string>(h: Histogram<L>, labels: Record<string, string> = {}) {
  const { values } = await h.get();
  const match = (v: { labels: Partial<Record<string, string | number>> }) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want);
  const count = values.find((v) => v.metricName?.endsWith("_count") && match(v))?.value ?? 0;
  const sum = values.find((v) => v.metricName?.endsWith("_sum") && match(v))?.value ?? 0;
  return { count, sum };
}

describe("pod worker metrics", () => {
  it("times each sync by operation type and observes the start duration once, when a sync leaves the pod Running", async () => {
    const clock = new FakeClock();
    let running = false;
    let startsRunning = false; // whether the next sync leaves the pod Running
    let syncMs = 250; // how long a sync takes on the fake clock
    const w = new PodWorkers(
      async () => {
        if (syncMs) await clock.advance(syncMs);
        running = startsRunning;
        return { requeueAfterMs: 1_000 };
      },
      clock,
      log,
    );
    w.podRunning = () => running;
    const op = (o: string) => histogram(kubeletMetrics.podWorkerDuration, { operation_type: o });
    const [create0, update0, sync0, start0] = [await op("create"), await op("update"), await op("sync"), await histogram(kubeletMetrics.podStartDuration)];

    w.update("u1"); // first sight: "create"
    await w.idle();
    expect((await op("create")).count - create0.count).toBe(1);
    expect((await op("create")).sum - create0.sum).toBeCloseTo(0.25);

    startsRunning = true; // the next sync (an informer change: "update") is the one that finds it Running
    w.update("u1");
    await w.idle();
    expect((await op("update")).count - update0.count).toBe(1);
    const start = await histogram(kubeletMetrics.podStartDuration);
    expect(start.count - start0.count).toBe(1);
    expect(start.sum - start0.sum).toBeCloseTo(0.5); // first seen at t0, Running after the second sync ends at t0 + 500 ms

    syncMs = 0;
    await clock.advance(1_000); // the requeue timer: a "sync"; already Running, so no second start
    await w.idle();
    expect((await op("sync")).count - sync0.count).toBeGreaterThanOrEqual(1);
    expect((await histogram(kubeletMetrics.podStartDuration)).count - start0.count).toBe(1);
    await w.stop();
  });
});

describe("PLEG and node gauges", () => {
  it("counts running pods and containers by state at each relist and serves them per process", async () => {
    const clock = new FakeClock();
    const rt = new FakeRuntime(clock);
    rt.images.set("img", "sha256:1");
    const pleg = new GenericPLEG({ runtime: rt, nodeName: "n1", clock, log, onEvent: () => undefined });
    const labels = { [LABEL_NODE]: "n1", [LABEL_POD_UID]: "u1" };
    const sbConfig = { metadata: { name: "p", namespace: "d", uid: "u1", attempt: 0 }, hostname: "p", logDirectory: "/x", portMappings: [], labels, annotations: {} };
    const sb = await rt.runPodSandbox(sbConfig);
    const cfg = (name: string) => ({
      metadata: { name, attempt: 0 },
      image: "img",
      command: [],
      args: [],
      envs: [],
      mounts: [],
      logPath: `${name}/0.log`,
      labels,
      annotations: {},
      resources: { cpuShares: 2, cpuQuota: 0, cpuPeriod: 0, memoryLimitInBytes: 0 },
      ports: [],
    });
    const a = await rt.createContainer(sb, cfg("a"), sbConfig);
    await rt.startContainer(a);
    await rt.createContainer(sb, cfg("b"), sbConfig); // created, never started
    const relists0 = await histogram(kubeletMetrics.plegRelistDuration);
    await pleg.relist();
    expect(pleg.runtimeCounts()).toEqual({ runningPods: 1, containers: { created: 1, running: 1, exited: 0, unknown: 0 } } satisfies RuntimeCounts);
    expect((await histogram(kubeletMetrics.plegRelistDuration)).count - relists0.count).toBe(1);
    rt.exit(a, 1);
    await pleg.relist();
    expect(pleg.runtimeCounts().containers).toMatchObject({ running: 0, exited: 1 });

    const registry = new Registry();
    registerKubeletMetrics(registry);
    registerKubeletMetrics(registry); // twice is harmless
    const untrack = [trackNode({ nodeName: "n1", runtimeCounts: () => pleg.runtimeCounts() }), trackNode({ nodeName: "n2", runtimeCounts: () => pleg.runtimeCounts() })];
    const text = await registry.metrics();
    expect(text).toContain('kubelet_node_name{node="n1"} 1');
    expect(text).toContain('kubelet_node_name{node="n2"} 1');
    expect(text).toContain("kubelet_running_pods 2"); // summed over the process's nodes
    expect(text).toContain('kubelet_running_containers{container_state="exited"} 2');
    expect(text).toContain('kubelet_running_containers{container_state="created"} 2');
    untrack[1]();
    const after = await registry.metrics();
    expect(after).not.toContain('node="n2"');
    expect(after).toContain("kubelet_running_pods 1");
    untrack[0]();
  });
});
