// DefaultTolerationSeconds admission: unit cases, and through an apiserver started with other seconds.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeObject } from "../../../../api/index.ts";
import { ApiServer } from "../../../server.ts";
import { openBackend, type Backend } from "../../../storage/index.ts";
import { DEFAULT_ADMISSION_OPTIONS } from "../../strategy.ts";
import { admitDefaultTolerationSeconds } from "./strategy.ts";

const notReady = (s: number) => ({ key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute", tolerationSeconds: s });
const unreachable = (s: number) => ({ key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute", tolerationSeconds: s });

function podWith(tolerations?: unknown[]): KubeObject {
  return { apiVersion: "v1", kind: "Pod", metadata: { name: "p" }, spec: { containers: [{ name: "c", image: "nginx" }], ...(tolerations ? { tolerations } : {}) } };
}

function admitted(tolerations?: unknown[]): unknown {
  const pod = podWith(tolerations);
  admitDefaultTolerationSeconds(pod, DEFAULT_ADMISSION_OPTIONS);
  return (pod.spec as { tolerations?: unknown }).tolerations;
}

describe("DefaultTolerationSeconds admission", () => {
  it("adds not-ready and unreachable NoExecute tolerations of 300 s to a pod without tolerations", () => {
    expect(admitted()).toEqual([notReady(300), unreachable(300)]);
  });

  it("keeps the pod's own tolerations and appends the defaults after them", () => {
    const own = { key: "dedicated", operator: "Equal", value: "gpu", effect: "NoSchedule" };
    expect(admitted([own])).toEqual([own, notReady(300), unreachable(300)]);
  });

  it("adds nothing for a taint the pod already tolerates, whatever its seconds", () => {
    expect(admitted([notReady(10)])).toEqual([notReady(10), unreachable(300)]);
    expect(admitted([{ key: "node.kubernetes.io/unreachable", operator: "Exists" }])).toEqual([{ key: "node.kubernetes.io/unreachable", operator: "Exists" }, notReady(300)]);
  });

  it("adds nothing to a pod tolerating every taint (no key) with NoExecute or any effect", () => {
    expect(admitted([{ operator: "Exists" }])).toEqual([{ operator: "Exists" }]);
    expect(admitted([{ operator: "Exists", effect: "NoExecute" }])).toEqual([{ operator: "Exists", effect: "NoExecute" }]);
  });

  it("a NoSchedule toleration of the same key does not count", () => {
    const ns = { key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoSchedule" };
    expect(admitted([ns])).toEqual([ns, notReady(300), unreachable(300)]);
  });

  describe("through the apiserver with --default-*-toleration-seconds", () => {
    let backend: Backend;
    let server: ApiServer;
    let base = "";
    beforeAll(async () => {
      backend = await openBackend("memory://");
      server = new ApiServer({ backend, admission: { defaultNotReadyTolerationSeconds: 60, defaultUnreachableTolerationSeconds: 120 } });
      const port = await server.start(0);
      base = `http://127.0.0.1:${port}`;
    });
    afterAll(async () => {
      await server.stop();
      await backend.close();
    });

    it("a created pod carries the configured seconds; an update does not add them again", async () => {
      const r = await fetch(`${base}/api/v1/namespaces/default/pods`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(podWith()) });
      expect(r.status).toBe(201);
      const created = (await r.json()) as KubeObject;
      expect((created.spec as { tolerations?: unknown }).tolerations).toEqual([notReady(60), unreachable(120)]);
      const u = await fetch(`${base}/api/v1/namespaces/default/pods/p`, {
        method: "PATCH",
        headers: { "Content-Type": "application/merge-patch+json" },
        body: JSON.stringify({ metadata: { labels: { a: "b" } } }),
      });
      expect(u.status).toBe(200);
      expect(((await u.json()) as KubeObject).spec).toMatchObject({ tolerations: [notReady(60), unreachable(120)] });
    });
  });
});
