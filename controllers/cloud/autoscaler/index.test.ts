// runAutoscaler end to end over a FakeClient (its informers list and watch the tracker) with a
// FakeClock: a pending pod scales its group up; the serverless ConfigMaps are not node groups; the
// loop runs every scan interval and stops when the context aborts.

import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import type { ConfigMap, Event } from "../../../api/index.ts";
import { FakeClient, FakeClock, fakeErrors, flushPromises, newLogger } from "../../../client/index.ts";
import { cloudConfigMap } from "../cloudapi.ts";
import { serverlessConfigMapName } from "../types.ts";
import { runAutoscaler } from "./index.ts";
import { STATUS_CONFIGMAP } from "./status.ts";
import { groupConfigMap, harness, makeNode, makePod, T0, topology } from "./testing.ts";

async function until(clock: FakeClock, cond: () => boolean, stepMs = 1000, maxSteps = 100): Promise<void> {
  for (let i = 0; i < maxSteps && !cond(); i++) {
    await flushPromises();
    if (!cond()) await clock.advance(stepMs);
  }
  expect(cond()).toBe(true);
}

describe("runAutoscaler", () => {
  it("watches the cluster and scales a group up for a pending pod", async () => {
    const clock = new FakeClock(T0);
    const serverless = cloudConfigMap(serverlessConfigMapName("fargate", "local-1a"), {
      kind: "serverless",
      group: "fargate",
      zone: "local-1a",
      minSize: 0,
      maxSize: 0,
      desiredCapacity: 0,
      instances: [],
    });
    const client = new FakeClient(
      [groupConfigMap({ group: "general", zone: "local-1a", min: 1, max: 5, instances: ["n1"] }), serverless, makeNode("n1", { group: "general", zone: "local-1a" }), makePod("busy", { nodeName: "n1", cpu: "3500m" })],
      { clock },
    );
    const log = newLogger("autoscaler-test");
    const ac = new AbortController();
    const done = runAutoscaler({ signal: ac.signal, log }, { client, topology, log, clock, scanIntervalMs: 10_000, scaleDownUnneededTimeMs: 600_000, scaleDownDelayAfterAddMs: 600_000 });
    const desired = () => Number((client.tracker("", "configmaps", "kube-system", "kubelab-nodegroup-general-local-1a") as ConfigMap).data?.desiredCapacity);
    await until(clock, () => client.tracker("", "configmaps", "kube-system", STATUS_CONFIGMAP) !== undefined);
    expect(desired()).toBe(1);
    await client.resource("", "pods").create("default", makePod("web", { cpu: "3" }));
    await until(clock, () => desired() === 2);
    await until(clock, () => client.trackerList("", "events").some((e) => (e as Event).reason === "TriggeredScaleUp"));
    const ev = client.trackerList("", "events").find((e) => (e as Event).reason === "TriggeredScaleUp") as Event;
    expect(ev.involvedObject.name).toBe("web");
    expect(ev.source?.component).toBe("cluster-autoscaler");
    expect(ev.message).toBe("pod triggered scale-up: [{kubelab-nodegroup-general-local-1a 1->2 (max: 5)}]");
    // The serverless ConfigMap is left alone.
    expect(client.writeActions().filter((a) => a.name === serverless.metadata.name)).toEqual([]);
    ac.abort();
    await done;
  });

  it("exports upstream's metrics when given a registry, twice on the same registry without clashing", async () => {
    const registry = new Registry();
    const objects = [groupConfigMap({ group: "general", zone: "local-1a", max: 5 }), makePod("a", { cpu: "3" }), makePod("b", { cpu: "3" })];
    harness(objects, { metricsRegistry: registry });
    const h = harness(objects, { metricsRegistry: registry });
    await h.autoscaler.runOnce(h.ctx);
    const text = await registry.metrics();
    expect(text).toContain("cluster_autoscaler_scaled_up_nodes_total 2");
    expect(text).toContain("cluster_autoscaler_unschedulable_pods_count 2");
    expect(text).toContain('cluster_autoscaler_node_groups_count{node_group_type="autoscaled"} 1');
    expect(text).toContain("cluster_autoscaler_cluster_safe_to_autoscale 1");
  });

  it("returns quietly when aborted before its caches sync", async () => {
    const clock = new FakeClock(T0);
    const client = new FakeClient([], { clock });
    client.prependReactor("list", "nodes", () => ({ error: fakeErrors.internal("etcd is down") }));
    const log = newLogger("autoscaler-test");
    const ac = new AbortController();
    const done = runAutoscaler({ signal: ac.signal, log }, { client, topology, log, clock, scanIntervalMs: 10_000, scaleDownUnneededTimeMs: 600_000, scaleDownDelayAfterAddMs: 600_000 });
    await clock.advance(5_000);
    ac.abort();
    await expect(done).resolves.toBeUndefined();
    expect(client.tracker("", "configmaps", "kube-system", STATUS_CONFIGMAP)).toBeUndefined();
  });
});
