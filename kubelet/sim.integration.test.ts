// The pod side against the real simulated runtime (real clock, loopback pod IPs): HTTP readiness
// probes on the sim's echo server, crash restarts, and graceful deletion.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Pod } from "../api/core/v1.ts";
import { FakeClient, FakeRecorder, newInformer, newLogger } from "../client/index.ts";
import { SimRuntime } from "./runtime/sim.ts";
import { PodSyncer } from "./sync.ts";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, fn: () => boolean, ms = 8_000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe("PodSyncer with SimRuntime", () => {
  it("runs a pod Ready through an HTTP readiness probe, restarts a crashing one, and finishes a graceful deletion", async () => {
    const log = newLogger("kubelet-sim-test");
    log.level = "silent";
    const client = new FakeClient();
    const informer = newInformer<Pod>(client, "", "pods", { log });
    const runtime = new SimRuntime({ nodeName: "sim-1", zone: "z", podCIDR: "127.77.3.0/24", log });
    const rootDir = await mkdtemp(join(tmpdir(), "kubelet-sim-"));
    const recorder = new FakeRecorder();
    const syncer = new PodSyncer({ nodeName: "sim-1", client, pods: informer, runtime, rootDir, nodeIP: runtime.nodeIP, recorder, log, plegRelistPeriodMs: 50, backoffInitialMs: 200, backoffMaxMs: 1_000 });
    const ac = new AbortController();
    const ctx = { signal: ac.signal, log };
    const informerDone = informer.run(ctx);
    const done = syncer.run(ctx);
    await informer.waitForSync(ac.signal);
    await sleep(50); // the watch is open (the fake tracker cannot replay from an empty list's resourceVersion)
    const pods = client.resource<Pod>("", "pods");
    const get = (name: string): Pod => client.tracker("", "pods", "default", name) as Pod;
    try {
      await pods.create("default", {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "web", namespace: "default", finalizers: ["test/hold"], deletionGracePeriodSeconds: 5 },
        spec: {
          nodeName: "sim-1",
          containers: [{ name: "app", image: "busybox", ports: [{ name: "http", containerPort: 8080 }], readinessProbe: { httpGet: { port: "http", path: "/" }, periodSeconds: 1 } }],
        },
      });
      await waitFor("web Ready", () => get("web").status?.conditions?.find((c) => c.type === "Ready")?.status === "True");
      const web = get("web");
      expect(web.status?.phase).toBe("Running");
      expect(web.status?.podIP).toMatch(/^127\.77\.3\./);
      expect(web.status?.containerStatuses?.[0].containerID).toMatch(/^sim:\/\//);

      await pods.create("default", {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "crash", namespace: "default", annotations: { "sim.kubelab.io/exit-after": "50ms", "sim.kubelab.io/exit-code": "3" } },
        spec: { nodeName: "sim-1", containers: [{ name: "app", image: "busybox" }] },
      });
      await waitFor("crash restarted twice", () => (get("crash").status?.containerStatuses?.[0].restartCount ?? 0) >= 2);
      expect(get("crash").status?.containerStatuses?.[0].lastState?.terminated?.exitCode).toBe(3);

      await pods.delete("default", "web");
      await waitFor("web's deletion finished", () => client.actions.some((a) => a.verb === "delete" && a.name === "web" && a.deleteOptions?.gracePeriodSeconds === 0));
      expect(recorder.events).toContain("Normal Killing Stopping container app");
      await waitFor("web forgotten", () => syncer.podCount() === 1);
    } finally {
      ac.abort();
      await done;
      await informerDone;
      await runtime.close();
      await rm(rootDir, { recursive: true, force: true });
    }
  });
});
