// The embedded store persists under the data dir: stop `kubelab up`, start it again, objects are still there.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startKubelab, type Kubelab } from "./harness/kubelab.ts";

let k: Kubelab;

beforeAll(async () => {
  k = await startKubelab();
});

afterAll(async () => {
  await k?.stop({ clean: true });
});

async function ok(args: string[], input?: string): Promise<string> {
  const r = await k.kubectl(args, input === undefined ? {} : { input });
  expect(r.code, `kubectl ${args.join(" ")} failed:\n${r.stderr}${r.stdout}`).toBe(0);
  return r.stdout;
}

interface Meta {
  metadata: { name: string; uid: string; resourceVersion: string; creationTimestamp: string };
  data?: Record<string, string>;
  spec?: { replicas?: number };
}

describe("embedded store persistence", () => {
  it("objects survive a restart of kubelab up on the same data dir", async () => {
    await ok(["create", "namespace", "keep"]);
    await ok(["create", "configmap", "kept", "-n", "keep", "--from-literal=a=1"]);
    await ok(["patch", "configmap", "kept", "-n", "keep", "--type", "merge", "-p", '{"data":{"b":"2"}}']);
    await ok(["create", "deployment", "web", "-n", "keep", "--image=nginx", "--replicas=3"]);
    await ok(["create", "configmap", "gone", "-n", "keep", "--from-literal=a=1"]);
    await ok(["delete", "configmap", "gone", "-n", "keep"]);
    const before = JSON.parse(await ok(["get", "configmap", "kept", "-n", "keep", "-o", "json"])) as Meta;

    const dataDir = k.dataDir;
    await k.stop();
    k = await startKubelab({ dataDir });

    const after = JSON.parse(await ok(["get", "configmap", "kept", "-n", "keep", "-o", "json"])) as Meta;
    expect(after.data).toEqual({ a: "1", b: "2" });
    expect(after.metadata.uid).toBe(before.metadata.uid);
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
    expect(after.metadata.creationTimestamp).toBe(before.metadata.creationTimestamp);
    expect(await ok(["get", "namespace", "keep", "-o", "name"])).toBe("namespace/keep\n");
    expect(await ok(["get", "deployment", "web", "-n", "keep", "-o", "jsonpath={.spec.replicas}"])).toBe("3");
    const gone = await k.kubectl(["get", "configmap", "gone", "-n", "keep"]);
    expect(gone.stderr.trim()).toBe('Error from server (NotFound): configmaps "gone" not found');

    // The revision counter continues: a new write gets a higher resourceVersion, and updates still check it.
    await ok(["patch", "configmap", "kept", "-n", "keep", "--type", "merge", "-p", '{"data":{"c":"3"}}']);
    const next = JSON.parse(await ok(["get", "configmap", "kept", "-n", "keep", "-o", "json"])) as Meta;
    expect(Number(next.metadata.resourceVersion)).toBeGreaterThan(Number(before.metadata.resourceVersion));
    const stale = { ...before, apiVersion: "v1", kind: "ConfigMap", data: { x: "y" } };
    const conflict = await k.kubectl(["replace", "-f", "-"], { input: JSON.stringify(stale) });
    expect(conflict.code).not.toBe(0);
    expect(conflict.stderr).toContain("the object has been modified");
  });
});
