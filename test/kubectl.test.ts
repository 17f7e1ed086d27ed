// End to end: the real kubectl (1.32) against `kubelab up` on the embedded store.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify as stringifyYaml } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startKubelab, type Kubelab, type KubectlResult } from "./harness/kubelab.ts";

let k: Kubelab;

beforeAll(async () => {
  k = await startKubelab();
});

afterAll(async () => {
  await k?.stop({ clean: true });
});

/** Runs kubectl and fails the test (showing stderr) unless it exits 0. */
async function ok(args: string[], input?: string): Promise<string> {
  const r = await k.kubectl(args, input === undefined ? {} : { input });
  expect(r.code, `kubectl ${args.join(" ")} failed:\n${r.stderr}${r.stdout}`).toBe(0);
  return r.stdout;
}

/** Runs kubectl expecting a failure; returns the result. */
async function fails(args: string[], input?: string): Promise<KubectlResult> {
  const r = await k.kubectl(args, input === undefined ? {} : { input });
  expect(r.code, `kubectl ${args.join(" ")} unexpectedly succeeded:\n${r.stdout}`).not.toBe(0);
  return r;
}

interface Obj {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string>; annotations?: Record<string, string>; uid?: string };
  [k: string]: unknown;
}

async function getJson<T = Obj>(args: string[]): Promise<T> {
  return JSON.parse(await ok(["get", ...args, "-o", "json"])) as T;
}

function names(out: string): string[] {
  return out
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)
    .sort();
}

function cm(name: string, data: Record<string, string>, extra: { namespace?: string; labels?: Record<string, string> } = {}): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name, ...(extra.namespace ? { namespace: extra.namespace } : {}), ...(extra.labels ? { labels: extra.labels } : {}) },
    data,
  });
}

describe("discovery and version", () => {
  it("kubectl version shows a v1.32 server", async () => {
    const out = await ok(["version"]);
    expect(out).toMatch(/Server Version: v1\.32\.\d+/);
  });

  it("api-resources lists all 40 resources with short names", async () => {
    const out = await ok(["api-resources", "--no-headers"]);
    const lines = out.split("\n").filter((l) => l.trim());
    expect(lines).toHaveLength(40);
    const byName = new Map(lines.map((l) => [l.split(/\s+/)[0], l.split(/\s+/)]));
    expect(byName.get("pods")?.[1]).toBe("po");
    expect(byName.get("deployments")?.[1]).toBe("deploy");
    expect(byName.get("priorityclasses")?.[1]).toBe("pc");
    expect(byName.get("statefulsets")?.[1]).toBe("sts");
    expect(byName.get("daemonsets")?.[1]).toBe("ds");
    expect(byName.get("cronjobs")?.[1]).toBe("cj");
    expect(byName.get("poddisruptionbudgets")?.[1]).toBe("pdb");
    expect(byName.get("resourcequotas")?.[1]).toBe("quota");
    expect(byName.get("limitranges")?.[1]).toBe("limits");
    expect(byName.get("certificatesigningrequests")?.[1]).toBe("csr");
    for (const r of [
      "namespaces", "nodes", "pods", "services", "endpoints", "events", "configmaps", "secrets", "persistentvolumes",
      "persistentvolumeclaims", "serviceaccounts", "deployments", "replicasets", "jobs", "ingresses", "ingressclasses",
      "leases", "endpointslices", "storageclasses", "priorityclasses", "statefulsets", "daemonsets",
      "controllerrevisions", "cronjobs", "poddisruptionbudgets", "resourcequotas", "limitranges", "volumeattachments",
      "csidrivers", "roles", "rolebindings", "clusterroles", "clusterrolebindings", "certificatesigningrequests",
      "tokenreviews", "selfsubjectreviews", "subjectaccessreviews", "localsubjectaccessreviews",
      "selfsubjectaccessreviews", "selfsubjectrulesreviews",
    ]) {
      expect(byName.has(r), `api-resources is missing ${r}`).toBe(true);
    }
  });

  it("get --raw /version and /metrics", async () => {
    const v = JSON.parse(await ok(["get", "--raw", "/version"])) as { major: string; minor: string; gitVersion: string };
    expect(v.major).toBe("1");
    expect(v.minor).toBe("32");
    expect(v.gitVersion).toMatch(/^v1\.32\.\d+/);
    const metrics = await ok(["get", "--raw", "/metrics"]);
    expect(metrics).toContain("apiserver_request_total");
  });
});

describe("imperative create (protobuf request bodies)", () => {
  it("create namespace", async () => {
    expect(await ok(["create", "namespace", "team-a"])).toContain("namespace/team-a created");
    const ns = await getJson(["namespace", "team-a"]);
    expect(ns.kind).toBe("Namespace");
    expect(ns.metadata.name).toBe("team-a");
  });

  it("create configmap --from-literal", async () => {
    expect(await ok(["create", "configmap", "lit", "--from-literal=a=1", "--from-literal=b=two"])).toContain("configmap/lit created");
    const c = await getJson<Obj & { data: Record<string, string> }>(["configmap", "lit"]);
    expect(c.data).toEqual({ a: "1", b: "two" });
  });

  it("create deployment web --image=nginx --replicas=2", async () => {
    expect(await ok(["create", "deployment", "web", "--image=nginx", "--replicas=2"])).toContain("deployment.apps/web created");
    const d = await getJson<Obj & { spec: { replicas: number; template: { spec: { containers: { name: string; image: string }[] } } } }>(["deployment", "web"]);
    expect(d.spec.replicas).toBe(2);
    expect(d.spec.template.spec.containers).toEqual([expect.objectContaining({ name: "nginx", image: "nginx" })]);
  });

  it("create secret generic", async () => {
    expect(await ok(["create", "secret", "generic", "creds", "--from-literal=password=s3cret"])).toContain("secret/creds created");
    const s = await getJson<Obj & { data: Record<string, string>; type: string }>(["secret", "creds"]);
    expect(Buffer.from(s.data.password, "base64").toString()).toBe("s3cret");
    expect(s.type).toBe("Opaque");
  });

  it("apply of a Secret with stringData stores it in data, and stringData is never read back", async () => {
    const manifest = "apiVersion: v1\nkind: Secret\nmetadata: {name: str-data}\ndata: {a: eA==}\nstringData: {a: b, user: admin}\n";
    expect(await ok(["apply", "-f", "-"], manifest)).toContain("secret/str-data created");
    const s = await getJson<Obj & { data: Record<string, string>; stringData?: unknown }>(["secret", "str-data"]);
    expect(s.data).toStrictEqual({ a: Buffer.from("b").toString("base64"), user: Buffer.from("admin").toString("base64") });
    expect(s.stringData).toBeUndefined();
    // An update through stringData (apply again) changes the value, as upstream.
    expect(await ok(["apply", "-f", "-"], manifest.replace("user: admin", "user: root"))).toContain("secret/str-data configured");
    expect(Buffer.from((await getJson<Obj & { data: Record<string, string> }>(["secret", "str-data"])).data.user, "base64").toString()).toBe("root");
  });

  it("create service clusterip", async () => {
    expect(await ok(["create", "service", "clusterip", "websvc", "--tcp=80:8080"])).toContain("service/websvc created");
    const s = await getJson<Obj & { spec: { type: string; ports: { port: number; targetPort: number }[] } }>(["service", "websvc"]);
    expect(s.spec.type).toBe("ClusterIP");
    expect(s.spec.ports[0]).toMatchObject({ port: 80, targetPort: 8080 });
  });

  it("create job", async () => {
    expect(await ok(["create", "job", "once", "--image=busybox", "--", "echo", "hi"])).toContain("job.batch/once created");
    const j = await getJson<Obj & { spec: { template: { spec: { containers: { image: string; command: string[] }[] } } } }>(["job", "once"]);
    expect(j.spec.template.spec.containers[0].image).toBe("busybox");
    expect(j.spec.template.spec.containers[0].command).toEqual(["echo", "hi"]);
  });

  it("create serviceaccount", async () => {
    expect(await ok(["create", "serviceaccount", "robot"])).toContain("serviceaccount/robot created");
    expect((await getJson(["serviceaccount", "robot"])).metadata.name).toBe("robot");
  });
});

describe("apply", () => {
  it("client-side apply: created, unchanged, configured", async () => {
    expect(await ok(["apply", "-f", "-"], cm("applied", { k: "v1" }))).toContain("configmap/applied created");
    expect(await ok(["apply", "-f", "-"], cm("applied", { k: "v1" }))).toContain("configmap/applied unchanged");
    expect(await ok(["apply", "-f", "-"], cm("applied", { k: "v2", extra: "x" }))).toContain("configmap/applied configured");
    const c = await getJson<Obj & { data: Record<string, string> }>(["configmap", "applied"]);
    expect(c.data).toEqual({ k: "v2", extra: "x" });
    expect(c.metadata.annotations?.["kubectl.kubernetes.io/last-applied-configuration"]).toContain('"v2"');
    // Removing a key from the manifest removes it from the object (three-way merge).
    expect(await ok(["apply", "-f", "-"], cm("applied", { k: "v2" }))).toContain("configmap/applied configured");
    expect((await getJson<Obj & { data: Record<string, string> }>(["configmap", "applied"])).data).toEqual({ k: "v2" });
  });

  it("server-side apply creates and then updates", async () => {
    expect(await ok(["apply", "--server-side", "-f", "-"], cm("ssa", { a: "1" }))).toContain("configmap/ssa serverside-applied");
    expect((await getJson<Obj & { data: Record<string, string> }>(["configmap", "ssa"])).data).toEqual({ a: "1" });
    expect(await ok(["apply", "--server-side", "-f", "-"], cm("ssa", { a: "2" }))).toContain("configmap/ssa serverside-applied");
    expect((await getJson<Obj & { data: Record<string, string> }>(["configmap", "ssa"])).data).toEqual({ a: "2" });
  });

  it("create -f a Pod manifest (server-side validation)", async () => {
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "solo", labels: { app: "solo" } },
      spec: { containers: [{ name: "c", image: "busybox", command: ["sleep", "3600"] }] },
    };
    expect(await ok(["create", "-f", "-"], JSON.stringify(pod))).toContain("pod/solo created");
    const p = await getJson<Obj & { spec: { containers: { name: string }[] } }>(["pod", "solo"]);
    expect(p.spec.containers[0].name).toBe("c");
  });
});

describe("get", () => {
  beforeAll(async () => {
    await ok(["create", "namespace", "sel"]);
    const items = [
      cm("a1", { x: "1" }, { namespace: "sel", labels: { tier: "a", env: "prod" } }),
      cm("b1", { x: "1" }, { namespace: "sel", labels: { tier: "b", env: "prod" } }),
      cm("c1", { x: "1" }, { namespace: "sel", labels: { tier: "c", env: "dev" } }),
      cm("n1", { x: "1" }, { namespace: "sel" }),
      cm("a2", { x: "1" }, { namespace: "sel", labels: { tier: "a", env: "dev" } }),
      cm("b2", { x: "1" }, { namespace: "sel", labels: { tier: "b" } }),
    ];
    // A multi-document stream (kubectl splits it client side).
    await ok(["apply", "-f", "-"], items.map((i) => stringifyYaml(JSON.parse(i))).join("---\n"));
  });

  it("apply -f of a kind: List manifest", async () => {
    const list = { apiVersion: "v1", kind: "List", items: [JSON.parse(cm("listed", { a: "1" }, { namespace: "sel" })) as unknown] };
    expect(await ok(["apply", "-f", "-"], JSON.stringify(list))).toContain("configmap/listed created");
    await ok(["delete", "configmap", "listed", "-n", "sel"]);
  });

  it("-o yaml, -o json, -o name, -o wide", async () => {
    const yaml = await ok(["get", "configmap", "a1", "-n", "sel", "-o", "yaml"]);
    expect(yaml).toMatch(/^apiVersion: v1$/m);
    expect(yaml).toMatch(/^kind: ConfigMap$/m);
    expect(yaml).toMatch(/^ {2}name: a1$/m);
    const json = JSON.parse(await ok(["get", "configmap", "a1", "-n", "sel", "-o", "json"])) as Obj;
    expect(json).toMatchObject({ kind: "ConfigMap", apiVersion: "v1", metadata: { name: "a1", namespace: "sel", labels: { tier: "a" } } });
    expect(json.metadata.uid).toBeTruthy();
    expect(json.metadata.resourceVersion).toMatch(/^\d+$/);
    expect(await ok(["get", "configmap", "a1", "-n", "sel", "-o", "name"])).toBe("configmap/a1\n");
    const wide = await ok(["get", "pods", "-o", "wide"]);
    const header = wide.split("\n")[0].split(/\s{2,}/);
    expect(header).toEqual(expect.arrayContaining(["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]));
    expect(wide).toMatch(/^solo\s/m);
  });

  it("a list as a Table: kubectl get deployments shows the real columns", async () => {
    const out = await ok(["get", "deployments"]);
    const [header, ...rows] = out.trim().split("\n");
    expect(header.trim().split(/\s+/)).toEqual(["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    expect(rows.some((r) => r.startsWith("web "))).toBe(true);
  });

  it("-A lists across namespaces with a NAMESPACE column", async () => {
    const out = await ok(["get", "configmaps", "-A"]);
    const lines = out.trim().split("\n");
    expect(lines[0].trim().split(/\s+/).slice(0, 2)).toEqual(["NAMESPACE", "NAME"]);
    expect(lines.some((l) => /^sel\s+a1\s/.test(l))).toBe(true);
    expect(lines.some((l) => /^default\s+lit\s/.test(l))).toBe(true);
  });

  it("-l with equality and set-based selectors", async () => {
    expect(names(await ok(["get", "cm", "-n", "sel", "-l", "tier=a", "-o", "name"]))).toEqual(["configmap/a1", "configmap/a2"]);
    expect(names(await ok(["get", "cm", "-n", "sel", "-l", "tier!=a", "-o", "name"]))).toEqual(
      expect.arrayContaining(["configmap/b1", "configmap/b2", "configmap/c1", "configmap/n1"]),
    );
    expect(names(await ok(["get", "cm", "-n", "sel", "-l", "tier in (a,b)", "-o", "name"]))).toEqual([
      "configmap/a1", "configmap/a2", "configmap/b1", "configmap/b2",
    ]);
    expect(names(await ok(["get", "cm", "-n", "sel", "-l", "tier notin (a,b),tier", "-o", "name"]))).toEqual(["configmap/c1"]);
    expect(names(await ok(["get", "cm", "-n", "sel", "-l", "tier,env=prod", "-o", "name"]))).toEqual(["configmap/a1", "configmap/b1"]);
    expect(names(await ok(["get", "cm", "-n", "sel", "-l", "!env,tier", "-o", "name"]))).toEqual(["configmap/b2"]);
    const none = await k.kubectl(["get", "cm", "-n", "sel", "-l", "tier=zzz"]);
    expect(none.code).toBe(0);
    expect(none.stderr).toContain("No resources found in sel namespace.");
  });

  it("--field-selector metadata.name=x", async () => {
    expect(names(await ok(["get", "cm", "-n", "sel", "--field-selector", "metadata.name=b1", "-o", "name"]))).toEqual(["configmap/b1"]);
    expect(names(await ok(["get", "cm", "-n", "sel", "--field-selector", "metadata.name!=b1", "-l", "tier=b", "-o", "name"]))).toEqual(["configmap/b2"]);
  });

  it("--chunk-size 2 pages through 6 objects and returns them all", async () => {
    const r = await k.kubectl(["get", "cm", "-n", "sel", "--chunk-size", "2", "-o", "name", "-v=6"]);
    expect(r.code, r.stderr).toBe(0);
    const got = names(r.stdout).filter((n) => /^configmap\/(a1|a2|b1|b2|c1|n1)$/.test(n));
    expect(got).toEqual(["configmap/a1", "configmap/a2", "configmap/b1", "configmap/b2", "configmap/c1", "configmap/n1"]);
    expect(new Set(names(r.stdout)).size).toBe(names(r.stdout).length); // no duplicates across pages
    // It really paged: several list requests, the later ones with a continue token.
    expect(r.stderr).toMatch(/GET https:\/\/\S+\/configmaps\?continue=\S+limit=2/);
    // The table path (no -o) pages too.
    const table = await ok(["get", "cm", "-n", "sel", "--chunk-size", "2", "--no-headers"]);
    expect(table.trim().split("\n")).toHaveLength(names(r.stdout).length);
  });
});

describe("mutations", () => {
  it("label and annotate, with and without --overwrite", async () => {
    await ok(["create", "configmap", "tagme", "--from-literal=a=1"]);
    expect(await ok(["label", "configmap", "tagme", "tier=frontend"])).toContain("configmap/tagme labeled");
    const again = await fails(["label", "configmap", "tagme", "tier=backend"]);
    expect(again.stderr).toContain("'tier' already has a value (frontend), and --overwrite is false");
    await ok(["label", "configmap", "tagme", "tier=backend", "--overwrite"]);
    expect((await getJson(["configmap", "tagme"])).metadata.labels).toEqual({ tier: "backend" });
    expect(await ok(["annotate", "configmap", "tagme", "owner=alice"])).toContain("configmap/tagme annotated");
    await fails(["annotate", "configmap", "tagme", "owner=bob"]);
    await ok(["annotate", "configmap", "tagme", "owner=bob", "--overwrite"]);
    expect((await getJson(["configmap", "tagme"])).metadata.annotations?.owner).toBe("bob");
    await ok(["label", "configmap", "tagme", "tier-"]);
    expect((await getJson(["configmap", "tagme"])).metadata.labels?.tier).toBeUndefined();
  });

  it("patch --type merge and --type json", async () => {
    await ok(["create", "configmap", "patchme", "--from-literal=a=1", "--from-literal=b=2"]);
    expect(await ok(["patch", "configmap", "patchme", "--type", "merge", "-p", '{"data":{"a":"10","b":null,"c":"3"}}'])).toContain("configmap/patchme patched");
    expect((await getJson<Obj & { data: Record<string, string> }>(["configmap", "patchme"])).data).toEqual({ a: "10", c: "3" });
    await ok(["patch", "configmap", "patchme", "--type", "json", "-p", '[{"op":"replace","path":"/data/a","value":"11"},{"op":"remove","path":"/data/c"},{"op":"add","path":"/data/d","value":"4"}]']);
    expect((await getJson<Obj & { data: Record<string, string> }>(["configmap", "patchme"])).data).toEqual({ a: "11", d: "4" });
    // A failing JSON patch test op changes nothing.
    const bad = await fails(["patch", "configmap", "patchme", "--type", "json", "-p", '[{"op":"test","path":"/data/a","value":"nope"},{"op":"remove","path":"/data/a"}]']);
    expect(bad.stderr).toMatch(/invalid/i);
    expect((await getJson<Obj & { data: Record<string, string> }>(["configmap", "patchme"])).data).toEqual({ a: "11", d: "4" });
  });

  it("set image uses a strategic merge patch and keeps everything else", async () => {
    const before = await getJson<Obj & { spec: Record<string, unknown> }>(["deployment", "web"]);
    expect(await ok(["set", "image", "deployment/web", "nginx=nginx:2"])).toContain("deployment.apps/web image updated");
    type Dep = Obj & { spec: { replicas: number; selector: unknown; template: { metadata: { labels: Record<string, string> }; spec: { containers: { name: string; image: string }[] } } } };
    const after = await getJson<Dep>(["deployment", "web"]);
    expect(after.spec.template.spec.containers).toHaveLength(1);
    expect(after.spec.template.spec.containers[0]).toMatchObject({ name: "nginx", image: "nginx:2" });
    const b = before as unknown as Dep;
    expect(after.spec.replicas).toBe(b.spec.replicas);
    expect(after.spec.selector).toEqual(b.spec.selector);
    expect(after.spec.template.metadata.labels).toEqual(b.spec.template.metadata.labels);
    expect(after.metadata.uid).toBe(before.metadata.uid);
    expect(Number(after.metadata.resourceVersion)).toBeGreaterThan(Number(before.metadata.resourceVersion));
  });

  it("replace -f with a stale resourceVersion is a Conflict", async () => {
    await ok(["create", "configmap", "racy", "--from-literal=a=1"]);
    const stale = await getJson<Obj & { data: Record<string, string> }>(["configmap", "racy"]);
    await ok(["patch", "configmap", "racy", "--type", "merge", "-p", '{"data":{"a":"2"}}']);
    stale.data = { a: "mine" };
    const r = await fails(["replace", "-f", "-"], JSON.stringify(stale));
    expect(r.stderr).toContain("Conflict");
    expect(r.stderr).toContain('Operation cannot be fulfilled on configmaps "racy": the object has been modified; please apply your changes to the latest version and try again');
    expect((await getJson<Obj & { data: Record<string, string> }>(["configmap", "racy"])).data).toEqual({ a: "2" });
    // With the current resourceVersion the replace goes through.
    const fresh = await getJson<Obj & { data: Record<string, string> }>(["configmap", "racy"]);
    fresh.data = { a: "mine" };
    expect(await ok(["replace", "-f", "-"], JSON.stringify(fresh))).toContain("configmap/racy replaced");
  });

  it("scale deployment web --replicas=5", async () => {
    expect(await ok(["scale", "deployment", "web", "--replicas=5"])).toContain("deployment.apps/web scaled");
    expect(await ok(["get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"])).toBe("5");
    // --current-replicas uses GET+PUT on the scale subresource.
    await ok(["scale", "deployment", "web", "--current-replicas=5", "--replicas=3"]);
    expect(await ok(["get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"])).toBe("3");
    const wrong = await fails(["scale", "deployment", "web", "--current-replicas=9", "--replicas=1"]);
    expect(wrong.stderr).toMatch(/Expected replicas to be 9, was 3/);
  });

  it("delete, then the object is NotFound", async () => {
    await ok(["create", "configmap", "doomed", "--from-literal=a=1"]);
    expect(await ok(["delete", "configmap", "doomed"])).toContain('configmap "doomed" deleted');
    const r = await fails(["get", "configmap", "doomed"]);
    expect(r.stderr.trim()).toBe('Error from server (NotFound): configmaps "doomed" not found');
  });

  it("describe deployment and configmap", async () => {
    const d = await ok(["describe", "deployment", "web"]);
    expect(d).toMatch(/^Name:\s+web$/m);
    expect(d).toMatch(/^Namespace:\s+default$/m);
    expect(d).toMatch(/nginx:2/);
    const c = await ok(["describe", "configmap", "lit"]);
    expect(c).toMatch(/^Name:\s+lit$/m);
    expect(c).toContain("two");
  });
});

describe("errors", () => {
  it("get a missing pod prints the upstream message", async () => {
    const r = await fails(["get", "pod", "x"]);
    expect(r.stderr.trim()).toBe('Error from server (NotFound): pods "x" not found');
  });

  it("a duplicate create is AlreadyExists", async () => {
    const r = await fails(["create", "configmap", "lit", "--from-literal=a=1"]);
    // kubectl's typed-client generators wrap the server's message.
    expect(r.stderr.trim()).toBe('error: failed to create configmap: configmaps "lit" already exists');
    const f = await fails(["create", "-f", "-"], cm("lit", { a: "1" }));
    expect(f.stderr).toContain('Error from server (AlreadyExists): error when creating "STDIN": configmaps "lit" already exists');
  });

  it("an invalid name is Invalid and names metadata.name", async () => {
    const r = await fails(["create", "configmap", "Bad_Name", "--from-literal=a=1"]);
    expect(r.stderr).toContain('ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"');
    const f1 = await fails(["create", "-f", "-"], cm("Bad_Name", { a: "1" }));
    expect(f1.stderr).toContain('The ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"');
    const f = await fails(["get", "configmap", "Bad_Name"]);
    expect(f.stderr).toContain("NotFound");
  });
});

describe("strict field validation", () => {
  // kubectl sends fieldValidation=Strict and, because the server's OpenAPI says it supports it, skips
  // client-side validation: a typo in a manifest must be rejected by the server, not stored.
  it("create -f / apply -f with an unknown field is a BadRequest naming the field", async () => {
    const typo = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "typo" },
      spec: { replcas: 3, selector: { matchLabels: { a: "b" } }, template: { metadata: { labels: { a: "b" } }, spec: { containers: [{ name: "c", image: "x" }] } } },
    };
    const created = await k.kubectl(["create", "-f", "-"], { input: JSON.stringify(typo) });
    expect(created.code, `kubectl create -f accepted an unknown field:\n${created.stdout}`).not.toBe(0);
    expect(created.stderr).toContain('strict decoding error: unknown field "spec.replcas"');
    const applied = await k.kubectl(["apply", "-f", "-"], { input: JSON.stringify(typo) });
    expect(applied.code, `kubectl apply -f accepted an unknown field:\n${applied.stdout}`).not.toBe(0);
    expect(applied.stderr).toContain('unknown field "spec.replcas"');
    const get = await k.kubectl(["get", "deployment", "typo"]);
    expect(get.stderr).toContain("NotFound");
    // --validate=false (fieldValidation=Ignore) drops the unknown field instead of storing it.
    expect(await ok(["create", "--validate=false", "-f", "-"], JSON.stringify(typo))).toContain("deployment.apps/typo created");
    const spec = JSON.parse(await ok(["get", "deployment", "typo", "-o", "jsonpath={.spec}"])) as Record<string, unknown>;
    expect(spec.replcas).toBeUndefined();
    expect(spec.replicas).toBe(1);
  });
});

describe("watch", () => {
  it("get -w --output-watch-events shows ADDED, MODIFIED and DELETED", async () => {
    await ok(["create", "namespace", "watched"]);
    await ok(["create", "configmap", "w0", "-n", "watched", "--from-literal=a=1"]);
    const cacheDir = mkdtempSync(join(tmpdir(), "kubectl-watch-cache-"));
    const child = spawn("kubectl", ["--kubeconfig", k.kubeconfig, "--cache-dir", cacheDir, "get", "configmaps", "-n", "watched", "-w", "--output-watch-events"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const waitFor = async (re: RegExp, what: string): Promise<void> => {
      const deadline = Date.now() + 20_000;
      while (!re.test(out)) {
        if (child.exitCode !== null) throw new Error(`kubectl -w exited (${child.exitCode}) before ${what}:\n${out}\n${err}`);
        if (Date.now() > deadline) throw new Error(`no ${what} in kubectl -w output:\n${out}\n${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      await waitFor(/^ADDED\s+w0\s/m, "initial ADDED w0");
      await ok(["create", "configmap", "w1", "-n", "watched", "--from-literal=a=1"]);
      await waitFor(/^ADDED\s+w1\s/m, "ADDED w1");
      await ok(["patch", "configmap", "w1", "-n", "watched", "--type", "merge", "-p", '{"data":{"b":"2"}}']);
      await waitFor(/^MODIFIED\s+w1\s+2\s/m, "MODIFIED w1 with 2 keys");
      await ok(["delete", "configmap", "w1", "-n", "watched"]);
      await waitFor(/^DELETED\s+w1\s/m, "DELETED w1");
      const events = out.split("\n").filter((l) => /\bw1\b/.test(l)).map((l) => l.split(/\s+/)[0]);
      expect(events).toEqual(["ADDED", "MODIFIED", "DELETED"]);
      expect(out.split("\n")[0].trim().split(/\s+/)).toEqual(["EVENT", "NAME", "DATA", "AGE"]);
    } finally {
      child.kill("SIGTERM");
      rmSync(cacheDir, { recursive: true, force: true });
    }
  });
});

describe("nodes: cordon and uncordon", () => {
  it("cordon sets spec.unschedulable, uncordon clears it", async () => {
    const node = { apiVersion: "v1", kind: "Node", metadata: { name: "worker-1", labels: { "kubernetes.io/hostname": "worker-1" } }, spec: {} };
    expect(await ok(["apply", "-f", "-"], JSON.stringify(node))).toContain("node/worker-1 created");
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "bound", namespace: "default" },
      spec: { nodeName: "worker-1", containers: [{ name: "c", image: "busybox" }] },
    };
    await ok(["apply", "-f", "-"], JSON.stringify(pod));
    expect(await ok(["get", "pod", "bound", "-o", "jsonpath={.spec.nodeName}"])).toBe("worker-1");
    expect(names(await ok(["get", "pods", "-A", "--field-selector", "spec.nodeName=worker-1", "-o", "name"]))).toEqual(["pod/bound"]);

    expect(await ok(["cordon", "worker-1"])).toContain("node/worker-1 cordoned");
    expect(await ok(["get", "node", "worker-1", "-o", "jsonpath={.spec.unschedulable}"])).toBe("true");
    expect(await ok(["get", "nodes"])).toMatch(/^worker-1\s+\S*SchedulingDisabled/m);
    expect(await ok(["cordon", "worker-1"])).toContain("node/worker-1 already cordoned");

    expect(await ok(["uncordon", "worker-1"])).toContain("node/worker-1 uncordoned");
    expect(await ok(["get", "node", "worker-1", "-o", "jsonpath={.spec.unschedulable}"])).toBe("");
  });

  it("drain evicts the pods bound to the node and cordons it", async () => {
    const r = await k.kubectl(["drain", "worker-1", "--force", "--ignore-daemonsets", "--grace-period=0", "--timeout=30s"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("evicting pod default/bound");
    expect(r.stdout).toContain("pod/bound evicted");
    expect(r.stdout).toContain("node/worker-1 drained");
    const gone = await k.kubectl(["get", "pod", "bound"]);
    expect(gone.stderr.trim()).toBe('Error from server (NotFound): pods "bound" not found');
    expect(await ok(["get", "node", "worker-1", "-o", "jsonpath={.spec.unschedulable}"])).toBe("true");
    await ok(["uncordon", "worker-1"]);
  });
});
