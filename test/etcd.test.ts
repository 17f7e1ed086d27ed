// `kubelab up --etcd` on a real etcd: kubectl flows, resourceVersion = mod_revision, restart, watch replay.

import { Etcd3 } from "etcd3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEtcd, type EtcdHandle } from "./harness/etcd.ts";
import { startKubelab, type Kubelab } from "./harness/kubelab.ts";

let etcd: EtcdHandle;
let k: Kubelab;
let client: Etcd3;

beforeAll(async () => {
  etcd = await startEtcd();
  k = await startKubelab({ etcd: etcd.url });
  client = new Etcd3({ hosts: etcd.endpoints });
});

afterAll(async () => {
  client?.close();
  await k?.stop({ clean: true });
  await etcd?.stop();
});

async function ok(args: string[], input?: string): Promise<string> {
  const r = await k.kubectl(args, input === undefined ? {} : { input });
  expect(r.code, `kubectl ${args.join(" ")} failed:\n${r.stderr}${r.stdout}`).toBe(0);
  return r.stdout;
}

interface CM {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; uid: string; resourceVersion: string };
  data?: Record<string, string>;
}

async function getCM(name: string, ns: string): Promise<CM> {
  return JSON.parse(await ok(["get", "configmap", name, "-n", ns, "-o", "json"])) as CM;
}

async function modRevision(key: string): Promise<string | undefined> {
  const res = await client.get(key).exec();
  return res.kvs[0]?.mod_revision;
}

function manifest(name: string, ns: string, data: Record<string, string>): string {
  return JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: ns }, data });
}

describe("kubelab on etcd", () => {
  it("kubectl flows: create namespace, apply, get, patch, replace conflict, delete", async () => {
    expect(await ok(["create", "namespace", "shop"])).toContain("namespace/shop created");
    expect(await ok(["apply", "-f", "-"], manifest("cfg", "shop", { a: "1" }))).toContain("configmap/cfg created");
    expect(await ok(["apply", "-f", "-"], manifest("cfg", "shop", { a: "1" }))).toContain("configmap/cfg unchanged");
    expect(await ok(["apply", "-f", "-"], manifest("cfg", "shop", { a: "2" }))).toContain("configmap/cfg configured");
    expect(await ok(["get", "configmaps", "-n", "shop", "-o", "name"])).toContain("configmap/cfg");
    expect(await ok(["get", "configmaps", "-n", "shop"])).toMatch(/^cfg\s+1\s/m);

    const stale = await getCM("cfg", "shop");
    expect(await ok(["patch", "configmap", "cfg", "-n", "shop", "--type", "merge", "-p", '{"data":{"b":"3"}}'])).toContain("configmap/cfg patched");
    expect((await getCM("cfg", "shop")).data).toEqual({ a: "2", b: "3" });

    stale.data = { overwritten: "yes" };
    const conflict = await k.kubectl(["replace", "-f", "-"], { input: JSON.stringify(stale) });
    expect(conflict.code).not.toBe(0);
    expect(conflict.stderr).toContain('Operation cannot be fulfilled on configmaps "cfg": the object has been modified');
    expect((await getCM("cfg", "shop")).data).toEqual({ a: "2", b: "3" });

    expect(await ok(["delete", "configmap", "cfg", "-n", "shop"])).toContain('configmap "cfg" deleted');
    const gone = await k.kubectl(["get", "configmap", "cfg", "-n", "shop"]);
    expect(gone.stderr.trim()).toBe('Error from server (NotFound): configmaps "cfg" not found');
    expect(await modRevision("/registry/configmaps/shop/cfg")).toBeUndefined();
  });

  it("metadata.resourceVersion is the etcd mod_revision of the object's key", async () => {
    await ok(["create", "configmap", "rev", "--from-literal=a=1"]);
    const created = await getCM("rev", "default");
    expect(await modRevision("/registry/configmaps/default/rev")).toBe(created.metadata.resourceVersion);

    await ok(["patch", "configmap", "rev", "--type", "merge", "-p", '{"data":{"a":"2"}}']);
    const patched = await getCM("rev", "default");
    expect(Number(patched.metadata.resourceVersion)).toBeGreaterThan(Number(created.metadata.resourceVersion));
    expect(await modRevision("/registry/configmaps/default/rev")).toBe(patched.metadata.resourceVersion);

    // A list's resourceVersion is the store revision it was read at: at least the newest object's.
    const list = JSON.parse(await ok(["get", "--raw", "/api/v1/namespaces/default/configmaps"])) as { metadata: { resourceVersion: string } };
    expect(Number(list.metadata.resourceVersion)).toBeGreaterThanOrEqual(Number(patched.metadata.resourceVersion));
    const header = await client.get("/registry/configmaps/default/rev").exec();
    expect(Number(list.metadata.resourceVersion)).toBeLessThanOrEqual(Number(header.header.revision));
  });

  it("a watch from an older resourceVersion replays what happened since, in order", async () => {
    await ok(["create", "configmap", "hist", "--from-literal=a=1"]);
    const rv = (await getCM("hist", "default")).metadata.resourceVersion;
    await ok(["patch", "configmap", "hist", "--type", "merge", "-p", '{"data":{"a":"2"}}']);
    await ok(["patch", "configmap", "hist", "--type", "merge", "-p", '{"data":{"a":"3"}}']);
    await ok(["create", "configmap", "hist2", "--from-literal=x=1"]);
    await ok(["delete", "configmap", "hist"]);

    const out = await ok(["get", "--raw", `/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=${rv}&timeoutSeconds=2`]);
    const events = out
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as { type: string; object: CM });
    const seen = events.filter((e) => e.type !== "BOOKMARK").map((e) => `${e.type} ${e.object.metadata.name} ${e.object.data?.a ?? e.object.data?.x ?? ""}`);
    expect(seen).toEqual(["MODIFIED hist 2", "MODIFIED hist 3", "ADDED hist2 1", "DELETED hist 3"]);
    // Every replayed event is newer than the starting point, and resourceVersions strictly increase:
    // a DELETED event carries the revision of the delete (upstream), so a client resuming from it
    // does not see the delete again.
    const rvs = events.filter((e) => e.type !== "BOOKMARK").map((e) => Number(e.object.metadata.resourceVersion));
    expect(rvs.every((r) => r > Number(rv))).toBe(true);
    expect(rvs.every((r, i) => i === 0 || r > rvs[i - 1]), `event resourceVersions ${rvs.join(", ")}`).toBe(true);
    const resumed = await ok(["get", "--raw", `/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=${rvs[rvs.length - 1]}&timeoutSeconds=1`]);
    expect(resumed.split("\n").filter((l) => l.includes('"DELETED"'))).toEqual([]);
  });

  it("data survives restarting kubelab on the same etcd", async () => {
    await ok(["create", "namespace", "durable"]);
    await ok(["create", "configmap", "kept", "-n", "durable", "--from-literal=a=1"]);
    await ok(["create", "deployment", "web", "-n", "durable", "--image=nginx", "--replicas=2"]);
    const before = await getCM("kept", "durable");

    const dataDir = k.dataDir;
    await k.stop();
    k = await startKubelab({ etcd: etcd.url, dataDir });

    const after = await getCM("kept", "durable");
    expect(after.data).toEqual({ a: "1" });
    expect(after.metadata.uid).toBe(before.metadata.uid);
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
    expect(await ok(["get", "deployment", "web", "-n", "durable", "-o", "jsonpath={.spec.replicas}"])).toBe("2");
    expect(await ok(["get", "namespaces", "-o", "name"])).toContain("namespace/durable");

    // Writes still work after the restart and keep matching etcd.
    await ok(["patch", "configmap", "kept", "-n", "durable", "--type", "merge", "-p", '{"data":{"b":"2"}}']);
    const next = await getCM("kept", "durable");
    expect(await modRevision("/registry/configmaps/durable/kept")).toBe(next.metadata.resourceVersion);

    // A fresh kubelab (new data dir, new PKI) on the same etcd sees the same objects.
    const fresh = await startKubelab({ etcd: etcd.url });
    try {
      const r = await fresh.kubectl(["get", "configmap", "kept", "-n", "durable", "-o", "jsonpath={.metadata.uid} {.data.b}"]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`${before.metadata.uid} 2`);
    } finally {
      await fresh.stop({ clean: true });
    }
  });
});
