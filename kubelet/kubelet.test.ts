import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Node, Pod } from "../api/core/v1.ts";
import { FakeClient, FakeClock, FakeRecorder, flushPromises, newInformer, newLogger } from "../client/index.ts";
import { Kubelet } from "./kubelet.ts";
import { FakeRuntime } from "./runtime/fake.ts";
import { criLogLine } from "./runtime/types.ts";
import { writeFile, mkdir } from "node:fs/promises";

const realSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

describe("Kubelet", () => {
  it("registers its Node, runs its pods, serves their logs, reports Ready, and stops without killing pods", async () => {
    const clock = new FakeClock();
    const client = new FakeClient([], { clock });
    const log = newLogger("kubelet-test");
    log.level = "silent";
    const informer = newInformer<Pod>(client, "", "pods", { clock, log });
    const runtime = new FakeRuntime(clock, "sim");
    runtime.images.set("busybox", "sha256:b");
    const rootDir = await mkdtemp(join(tmpdir(), "kubelet-"));
    const ac = new AbortController();
    const ctx = { signal: ac.signal, log };
    const informerDone = informer.run(ctx);
    // Port 0 is not allowed by a fixed Node port; pick a free one.
    const port = await new Promise<number>((resolve) => {
      const s = http.createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const kubelet = new Kubelet({
      nodeName: "n1",
      zone: "zone-a",
      region: "region-1",
      client,
      pods: informer,
      runtime,
      rootDir,
      nodeIP: "127.0.0.1",
      port,
      recorder: new FakeRecorder(),
      clock,
      log,
    });
    const done = kubelet.run(ctx);
    try {
      for (let i = 0; i < 50 && !client.tracker("", "nodes", "", "n1"); i++) await realSleep(5);
      expect(client.tracker("", "nodes", "", "n1")).toBeDefined();
      const created = await client.resource<Pod>("", "pods").create("default", {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "web", namespace: "default" },
        spec: { nodeName: "n1", containers: [{ name: "app", image: "busybox", imagePullPolicy: "IfNotPresent" }] },
      });
      for (let i = 0; i < 100 && (client.tracker("", "pods", "default", "web") as Pod).status?.phase !== "Running"; i++) {
        await flushPromises();
        await realSleep(5);
      }
      const pod = client.tracker("", "pods", "default", "web") as Pod;
      expect(pod.status?.phase).toBe("Running");
      expect(pod.status?.containerStatuses?.[0].containerID).toMatch(/^sim:\/\//);
      expect(kubelet.podCount()).toBe(1);
      expect(kubelet.readiness()).toEqual({ ready: true, message: "kubelet is posting ready status" });
      // The logs server finds the pod's log by its uid.
      const dir = join(rootDir, "logs", `default_web_${created.metadata.uid}`, "app");
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, "0.log"), criLogLine(Date.UTC(2024, 0, 1), "stdout", "hello"));
      const res = await get(`http://127.0.0.1:${port}/containerLogs/default/web/app`);
      expect(res).toEqual({ status: 200, body: "hello\n" });
      const node = client.tracker("", "nodes", "", "n1") as Node;
      expect(node.metadata.labels?.["topology.kubernetes.io/zone"]).toBe("zone-a");
    } finally {
      ac.abort();
      await done;
      await informerDone;
      await rm(rootDir, { recursive: true, force: true });
    }
    // Shutdown leaves the pod's containers running.
    expect([...runtime.containers.values()].map((c) => c.state)).toEqual(["CONTAINER_RUNNING"]);
  });
});
