// Robustness: 10,000 deterministic (seeded) malformed requests against a running kubelab, sent
// twice: once over one keep-alive connection (so that an early answer that left part of a body on
// the connection would break the requests after it) and once on a fresh connection each. No request
// may get a 5xx or go unanswered, every 4xx must be a JSON Status with a message, the server must
// stay up, and nothing half-written may be left behind.

import https from "node:https";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonObject, request, type RawResponse } from "./harness/http.ts";
import { startKubelab, type Kubelab } from "./harness/kubelab.ts";

const SEED = 0x6b75626c; // "kubl"
/** Requests in one pass of the fuzz (each pass is sent twice: keep-alive, then fresh connections). */
const TOTAL = 10_000;
const NS = "fuzz";

let k: Kubelab;
/** One keep-alive connection: each request goes on the connection the last one left, if it was kept. */
let agent: https.Agent;
/** A fresh connection for every request. */
let freshAgent: https.Agent;

// ---------------------------------------------------------------------------------------------
// Deterministic randomness

class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    // mulberry32
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

// ---------------------------------------------------------------------------------------------
// Valid templates the fuzzer mutates

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const container: Json = {
  name: "c",
  image: "busybox",
  command: ["sleep", "3600"],
  ports: [{ containerPort: 80, protocol: "TCP" }],
  env: [{ name: "A", value: "1" }],
  resources: { limits: { cpu: "100m", memory: "64Mi" } },
};
const podSpec: Json = { containers: [container] };
const meta = (name: string, extra: Record<string, Json> = {}): Json => ({ name, namespace: NS, labels: { app: "fz" }, ...extra });

const T = {
  configmap: { apiVersion: "v1", kind: "ConfigMap", metadata: meta("fz-cm"), data: { k: "v", other: "x" } },
  secret: { apiVersion: "v1", kind: "Secret", metadata: meta("fz-secret"), type: "Opaque", data: { k: "dg==" } },
  pod: { apiVersion: "v1", kind: "Pod", metadata: meta("fz-pod"), spec: podSpec },
  p1: { apiVersion: "v1", kind: "Pod", metadata: meta("p1"), spec: { ...(podSpec as Record<string, Json>), nodeName: "n1" } },
  deployment: {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: meta("fz-deploy"),
    spec: { replicas: 1, selector: { matchLabels: { app: "fz" } }, template: { metadata: { labels: { app: "fz" } }, spec: podSpec } },
  },
  replicaset: {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: meta("fz-rs"),
    spec: { replicas: 1, selector: { matchLabels: { app: "fz" } }, template: { metadata: { labels: { app: "fz" } }, spec: podSpec } },
  },
  job: { apiVersion: "batch/v1", kind: "Job", metadata: meta("fz-job"), spec: { template: { spec: { ...(podSpec as Record<string, Json>), restartPolicy: "Never" } } } },
  service: { apiVersion: "v1", kind: "Service", metadata: meta("fz-svc"), spec: { selector: { app: "fz" }, ports: [{ port: 80, targetPort: 8080 }] } },
  node: { apiVersion: "v1", kind: "Node", metadata: { name: "fz-node", labels: { zone: "a" } }, spec: { unschedulable: false } },
  namespace: { apiVersion: "v1", kind: "Namespace", metadata: { name: "fz-ns" } },
  scale: { apiVersion: "autoscaling/v1", kind: "Scale", metadata: { name: "d1", namespace: NS }, spec: { replicas: 2 } },
  binding: { apiVersion: "v1", kind: "Binding", metadata: { name: "p1", namespace: NS }, target: { apiVersion: "v1", kind: "Node", name: "n1" } },
  eviction: { apiVersion: "policy/v1", kind: "Eviction", metadata: { name: "p1", namespace: NS }, deleteOptions: { gracePeriodSeconds: 0 } },
  ingress: {
    apiVersion: "networking.k8s.io/v1",
    kind: "Ingress",
    metadata: meta("fz-ing"),
    spec: { rules: [{ host: "a.example", http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "svc1", port: { number: 80 } } } }] } }] },
  },
  lease: { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: meta("fz-lease"), spec: { holderIdentity: "me", leaseDurationSeconds: 15 } },
  event: { apiVersion: "v1", kind: "Event", metadata: meta("fz-ev"), involvedObject: { kind: "Pod", name: "p1", namespace: NS }, reason: "R", message: "m", type: "Normal" },
  pvc: { apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: meta("fz-pvc"), spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } } },
  deleteOptions: { apiVersion: "v1", kind: "DeleteOptions", propagationPolicy: "Background", gracePeriodSeconds: 0 },
} satisfies Record<string, Json>;

const C = "/api/v1/namespaces/fuzz";
const A = "/apis/apps/v1/namespaces/fuzz";

/** Write targets: method, path, and the valid body it takes. */
const WRITES: { method: string; path: string; tpl: Json }[] = [
  { method: "POST", path: `${C}/configmaps`, tpl: T.configmap },
  { method: "PUT", path: `${C}/configmaps/target`, tpl: { ...T.configmap, metadata: meta("target") } },
  { method: "POST", path: `${C}/secrets`, tpl: T.secret },
  { method: "POST", path: `${C}/pods`, tpl: T.pod },
  { method: "PUT", path: `${C}/pods/p1`, tpl: T.p1 },
  { method: "PUT", path: `${C}/pods/p1/status`, tpl: { ...T.p1, status: { phase: "Running", podIP: "10.0.0.1" } } },
  { method: "POST", path: `${C}/pods/p1/binding`, tpl: T.binding },
  { method: "POST", path: `${C}/bindings`, tpl: T.binding },
  { method: "POST", path: `${C}/pods/p1/eviction`, tpl: T.eviction },
  { method: "POST", path: `${A}/deployments`, tpl: T.deployment },
  { method: "PUT", path: `${A}/deployments/d1`, tpl: { ...T.deployment, metadata: meta("d1") } },
  { method: "PUT", path: `${A}/deployments/d1/scale`, tpl: T.scale },
  { method: "PUT", path: `${A}/deployments/d1/status`, tpl: { ...T.deployment, metadata: meta("d1"), status: { replicas: 1, observedGeneration: 1 } } },
  { method: "POST", path: `${A}/replicasets`, tpl: T.replicaset },
  { method: "POST", path: "/apis/batch/v1/namespaces/fuzz/jobs", tpl: T.job },
  { method: "POST", path: `${C}/services`, tpl: T.service },
  { method: "PUT", path: `${C}/services/svc1/status`, tpl: { ...T.service, metadata: meta("svc1"), status: { loadBalancer: {} } } },
  { method: "POST", path: "/api/v1/nodes", tpl: T.node },
  { method: "PUT", path: "/api/v1/nodes/n1/status", tpl: { ...T.node, metadata: { name: "n1" }, status: { conditions: [{ type: "Ready", status: "True" }] } } },
  { method: "POST", path: "/api/v1/namespaces", tpl: T.namespace },
  { method: "PUT", path: `${C}/finalize`, tpl: { apiVersion: "v1", kind: "Namespace", metadata: { name: NS }, spec: { finalizers: ["kubernetes"] } } },
  { method: "POST", path: "/apis/networking.k8s.io/v1/namespaces/fuzz/ingresses", tpl: T.ingress },
  { method: "POST", path: "/apis/coordination.k8s.io/v1/namespaces/fuzz/leases", tpl: T.lease },
  { method: "POST", path: `${C}/events`, tpl: T.event },
  { method: "POST", path: `${C}/persistentvolumeclaims`, tpl: T.pvc },
];

/** Patch targets (existing objects) and their subresources. */
const PATCHES = [
  `${C}/configmaps/target`,
  `${C}/pods/p1`,
  `${C}/pods/p1/status`,
  `${A}/deployments/d1`,
  `${A}/deployments/d1/scale`,
  `${A}/deployments/d1/status`,
  "/api/v1/nodes/n1",
  "/api/v1/nodes/n1/status",
  `${C}/services/svc1`,
  `${C}/secrets/s1`,
];

const PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json", "application/apply-patch+yaml"] as const;
const LIST_PATHS = [`${C}/configmaps`, "/api/v1/configmaps", "/api/v1/pods", `${C}/pods`, "/apis/apps/v1/deployments", `${A}/deployments`, "/api/v1/nodes", `${C}/events`];

// ---------------------------------------------------------------------------------------------
// Case generation

interface Case {
  label: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  chunked?: boolean;
  /** The bearer token: the cluster's (default), another string, or none. */
  token?: string | false;
  /** Watches and log follows: a 2xx answer is fine, stop reading after the headers. */
  stream?: boolean;
  /** Runs after every other case (DELETEs would remove the targets). */
  late?: boolean;
}

function ct(type: string): Record<string, string> {
  return { "Content-Type": type };
}

function withQuery(path: string, q: string): string {
  return path + (path.includes("?") ? "&" : "?") + q;
}

/** Returns `tpl` as JSON text mutated in one of many ways. */
function mutateJson(rng: Rng, tpl: Json): string {
  const text = JSON.stringify(tpl);
  const kind = rng.int(9);
  switch (kind) {
    case 0:
      return text.slice(0, rng.int(text.length));
    case 1: {
      const i = rng.int(text.length);
      return text.slice(0, i) + String.fromCharCode(rng.int(256)) + text.slice(i + 1);
    }
    case 2: {
      const i = rng.int(text.length);
      const tok = rng.pick(["{", "}", "[", "]", ",", ":", '"', "\\", "null", "1e999", "-", "\u0000", "\ud800", "\\u0000", "\\ud800", "NaN", "'", "//"]);
      return text.slice(0, i) + tok + text.slice(i);
    }
    case 3: {
      const i = rng.int(text.length);
      return text.slice(0, i) + text.slice(i + 1 + rng.int(20));
    }
    default: {
      // Structural: replace a random node with a value of a wrong type.
      const copy = JSON.parse(text) as Json;
      const weird: Json[] = [
        null, 0, -1, 1e308, -1e308, 3.5, true, "", "x".repeat(70_000), [], {}, [null], "\u0000", "💥", "Bad_Name!", "../../etc",
        { $patch: "delete" }, { $retainKeys: "x" }, JSON.parse('{"__proto__":{"polluted":1}}') as Json, 9007199254740993, -0,
        { a: { a: { a: { a: { a: { a: { a: { a: "deep" } } } } } } } }, ["x", 1, null, {}],
      ];
      const paths: (string | number)[][] = [];
      const walk = (v: Json, p: (string | number)[]): void => {
        paths.push(p);
        if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...p, i]));
        else if (v && typeof v === "object") for (const [key, x] of Object.entries(v)) walk(x, [...p, key]);
      };
      walk(copy, []);
      const target = rng.pick(paths.filter((p) => p.length > 0));
      let parent = copy as Record<string | number, Json>;
      for (const seg of target.slice(0, -1)) parent = parent[seg] as Record<string | number, Json>;
      const last = target[target.length - 1];
      const op = rng.int(4);
      if (op === 0) delete parent[last];
      else if (op === 1) parent[`${String(last)}Unknown`] = rng.pick(weird);
      else parent[last] = rng.pick(weird);
      return JSON.stringify(copy);
    }
  }
}

function nest(open: string, close: string, depth: number, inner = "1"): string {
  return open.repeat(depth) + inner + close.repeat(depth);
}

function objectBomb(depth: number): string {
  return '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
}

function generate(): Case[] {
  const rng = new Rng(SEED);
  const cases: Case[] = [];
  const add = (c: Case): void => {
    cases.push(c);
  };
  const bodyTypes = ["application/json", ...PATCH_TYPES, "application/vnd.kubernetes.protobuf", "application/yaml", ""];

  // 1. Random bytes to write and patch endpoints, with every content type.
  for (let i = 0; i < 120; i++) {
    const useWrite = rng.next() < 0.6;
    const w = rng.pick(WRITES);
    const method = useWrite ? w.method : "PATCH";
    const path = useWrite ? w.path : withQuery(rng.pick(PATCHES), "fieldManager=fuzz");
    const type = rng.pick(bodyTypes);
    const body = rng.bytes(rng.pick([0, 1, 4, 16, 100, 1000, 5000]));
    if (rng.next() < 0.3) body.write("k8s\u0000", 0, "latin1");
    add({ label: "random bytes", method, path, headers: type ? ct(type) : {}, body });
  }

  // 2. Mutated valid JSON to every write endpoint and as every kind of patch.
  for (let i = 0; i < 220; i++) {
    const w = rng.pick(WRITES);
    if (rng.next() < 0.6) {
      add({ label: "mutated json", method: w.method, path: w.path, headers: ct("application/json"), body: mutateJson(rng, w.tpl) });
    } else {
      const type = rng.pick(PATCH_TYPES.slice(1));
      const path = rng.pick(PATCHES);
      const patch = path.includes("configmaps") ? { ...T.configmap, metadata: meta("target") } : path.includes("deployments/d1/scale") ? T.scale : w.tpl;
      add({ label: "mutated json patch", method: "PATCH", path: withQuery(path, "fieldManager=fuzz"), headers: ct(type), body: mutateJson(rng, patch) });
    }
  }

  // 3. Wrong kinds for the path.
  const wrongKinds: [string, Json][] = [
    [`${C}/configmaps`, T.pod],
    [`${C}/pods`, T.configmap],
    [`${C}/configmaps`, { ...T.configmap, apiVersion: "apps/v1" }],
    [`${C}/configmaps`, { ...T.configmap, apiVersion: "v2" }],
    [`${C}/configmaps`, { ...T.configmap, kind: "Status" }],
    [`${C}/configmaps`, { apiVersion: "v1", kind: "ConfigMapList", items: [T.configmap] }],
    [`${C}/configmaps`, T.deleteOptions],
    [`${C}/configmaps`, T.binding],
    [`${C}/configmaps`, { ...T.configmap, kind: "" }],
    [`${C}/configmaps`, { ...T.configmap, kind: 42 }],
    [`${C}/configmaps`, { ...T.configmap, apiVersion: null }],
    [`${A}/deployments`, T.pod],
    [`${A}/deployments`, T.scale],
    [`${A}/deployments`, { ...T.deployment, apiVersion: "extensions/v1beta1" }],
    [`${A}/deployments/d1/scale`, T.deployment],
    [`${A}/deployments/d1/scale`, { ...T.scale, apiVersion: "apps/v1" }],
    [`${C}/pods/p1/binding`, T.eviction],
    [`${C}/pods/p1/binding`, { ...T.binding, target: { kind: "Pod", name: "n1" } }],
    [`${C}/pods/p1/binding`, { ...T.binding, target: {} }],
    [`${C}/pods/p1/binding`, { ...T.binding, target: { kind: "Node", name: "does-not-exist" } }],
    [`${C}/pods/p1/eviction`, T.binding],
    [`${C}/pods/p1/eviction`, { ...T.eviction, apiVersion: "policy/v1beta1" }],
    [`${C}/pods/p1/eviction`, { ...T.eviction, deleteOptions: "now" }],
    ["/api/v1/nodes", T.pod],
    ["/api/v1/namespaces", T.configmap],
    [`${C}/services`, { ...T.service, spec: { ports: "80" } }],
    ["/api/v1/namespaces/fuzz/deployments", T.deployment],
    ["/apis/batch/v1/namespaces/fuzz/jobs", T.deployment],
  ];
  for (const [path, tpl] of wrongKinds) {
    const method = path.endsWith("/scale") ? "PUT" : "POST";
    add({ label: "wrong kind", method, path, headers: ct("application/json"), body: JSON.stringify(tpl) });
  }
  for (const path of [`${C}/configmaps/target`, `${A}/deployments/d1`]) {
    add({ label: "wrong kind (PUT)", method: "PUT", path, headers: ct("application/json"), body: JSON.stringify(T.pod) });
    add({ label: "wrong kind (apply)", method: "PATCH", path: withQuery(path, "fieldManager=fuzz"), headers: ct("application/apply-patch+yaml"), body: JSON.stringify(T.node) });
  }

  // 4. Namespace (and name) contradicting the path.
  const other = (tpl: Record<string, Json>, md: Record<string, Json>): string => JSON.stringify({ ...tpl, metadata: { ...(tpl.metadata as Record<string, Json>), ...md } });
  add({ label: "namespace mismatch", method: "POST", path: `${C}/configmaps`, headers: ct("application/json"), body: other(T.configmap, { namespace: "other" }) });
  add({ label: "namespace mismatch", method: "POST", path: `${C}/configmaps`, headers: ct("application/json"), body: other(T.configmap, { namespace: "" }) });
  add({ label: "namespace mismatch", method: "POST", path: `${C}/configmaps`, headers: ct("application/json"), body: other(T.configmap, { namespace: 7 }) });
  add({ label: "namespace mismatch", method: "PUT", path: `${C}/configmaps/target`, headers: ct("application/json"), body: other(T.configmap, { name: "target", namespace: "other" }) });
  add({ label: "name mismatch", method: "PUT", path: `${C}/configmaps/target`, headers: ct("application/json"), body: other(T.configmap, { name: "not-target" }) });
  add({ label: "namespace mismatch", method: "PATCH", path: `${C}/configmaps/target`, headers: ct("application/merge-patch+json"), body: '{"metadata":{"namespace":"other"}}' });
  add({ label: "name change", method: "PATCH", path: `${C}/configmaps/target`, headers: ct("application/merge-patch+json"), body: '{"metadata":{"name":"renamed"}}' });
  add({ label: "namespace mismatch", method: "PATCH", path: withQuery(`${C}/configmaps/target`, "fieldManager=fuzz"), headers: ct("application/apply-patch+yaml"), body: other(T.configmap, { name: "target", namespace: "other" }) });
  add({ label: "namespace mismatch", method: "POST", path: `${C}/pods/p1/eviction`, headers: ct("application/json"), body: other(T.eviction, { namespace: "other" }) });
  add({ label: "name mismatch", method: "POST", path: `${C}/pods/p1/eviction`, headers: ct("application/json"), body: other(T.eviction, { name: "p2" }) });
  add({ label: "namespace mismatch", method: "POST", path: `${C}/pods/p1/binding`, headers: ct("application/json"), body: other(T.binding, { namespace: "other" }) });
  add({ label: "name mismatch", method: "PUT", path: `${A}/deployments/d1/scale`, headers: ct("application/json"), body: other(T.scale, { name: "d2" }) });
  add({ label: "cluster-scoped with namespace", method: "POST", path: "/api/v1/nodes", headers: ct("application/json"), body: other(T.node, { name: "fz-node-ns", namespace: NS }) });
  add({ label: "missing namespace", method: "POST", path: "/api/v1/namespaces/does-not-exist/configmaps", headers: ct("application/json"), body: other(T.configmap, { namespace: "does-not-exist" }) });
  add({ label: "invalid namespace in path", method: "POST", path: "/api/v1/namespaces/Bad_NS/configmaps", headers: ct("application/json"), body: other(T.configmap, { namespace: "Bad_NS" }) });

  // 5. Bodies over 3 MiB, and a large but legal one.
  const big = (n: number): string => `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"huge"},"data":{"a":"${"x".repeat(n)}"}}`;
  add({ label: ">3MiB json", method: "POST", path: `${C}/configmaps`, headers: ct("application/json"), body: big(3 * 1024 * 1024 + 10) });
  add({ label: ">3MiB json chunked", method: "POST", path: `${C}/configmaps`, headers: ct("application/json"), body: big(3 * 1024 * 1024 + 10), chunked: true });
  add({ label: ">3MiB patch", method: "PATCH", path: `${C}/configmaps/target`, headers: ct("application/merge-patch+json"), body: `{"data":{"a":"${"y".repeat(4 * 1024 * 1024)}"}}` });
  add({ label: ">3MiB random", method: "PUT", path: `${C}/configmaps/target`, headers: ct("application/vnd.kubernetes.protobuf"), body: rng.bytes(3 * 1024 * 1024 + 1) });
  add({ label: "2MiB configmap", method: "POST", path: `${C}/configmaps`, headers: ct("application/json"), body: big(2 * 1024 * 1024) });

  // 6. Nesting bombs.
  for (const depth of [101, 1_000, 10_000, 100_000]) {
    const arr = nest("[", "]", depth);
    const obj = objectBomb(depth);
    const inCm = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"bomb","namespace":"fuzz"},"data":${objectBomb(depth)}}`;
    add({ label: `array bomb ${depth}`, method: "POST", path: `${C}/configmaps`, headers: ct("application/json"), body: arr });
    add({ label: `object bomb ${depth}`, method: "POST", path: `${C}/configmaps`, headers: ct("application/json"), body: obj });
    add({ label: `object bomb in configmap ${depth}`, method: "POST", path: `${C}/configmaps`, headers: ct("application/json"), body: inCm });
    add({ label: `object bomb PUT ${depth}`, method: "PUT", path: `${A}/deployments/d1`, headers: ct("application/json"), body: obj });
    for (const type of PATCH_TYPES) {
      add({ label: `array bomb ${type} ${depth}`, method: "PATCH", path: withQuery(`${C}/configmaps/target`, "fieldManager=fuzz"), headers: ct(type), body: arr });
      add({ label: `object bomb ${type} ${depth}`, method: "PATCH", path: withQuery(`${A}/deployments/d1`, "fieldManager=fuzz"), headers: ct(type), body: `{"spec":${obj}}` });
    }
    add({ label: `yaml bomb ${depth}`, method: "POST", path: `${C}/configmaps`, headers: ct("application/yaml"), body: "- ".repeat(Math.min(depth, 20_000)) + "x" });
    add({ label: `json-patch value bomb ${depth}`, method: "PATCH", path: `${C}/configmaps/target`, headers: ct("application/json-patch+json"), body: `[{"op":"add","path":"/data/x","value":${arr}}]` });
  }
  const laughs = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (let i = 1; i <= 9; i++) {
    const prev = String.fromCharCode(96 + i);
    const cur = String.fromCharCode(97 + i);
    laughs.push(`${cur}: &${cur} [${Array(9).fill(`*${prev}`).join(",")}]`);
  }
  add({ label: "billion laughs apply", method: "PATCH", path: withQuery(`${C}/configmaps/target`, "fieldManager=fuzz"), headers: ct("application/apply-patch+yaml"), body: laughs.join("\n") });
  add({ label: "billion laughs create", method: "POST", path: `${C}/configmaps`, headers: ct("application/yaml"), body: laughs.join("\n") });
  add({ label: "recursive yaml alias", method: "PATCH", path: withQuery(`${C}/configmaps/target`, "fieldManager=fuzz"), headers: ct("application/apply-patch+yaml"), body: "&a [*a]" });

  // 7. Invalid label and field selectors, on lists and on watches.
  const labelSelectors = [
    "a in (", "a in ()", "in (a)", "=", "==", "a==", "!", "!!a", "a!=b!=c", "a=b,", ",", "a notin", "a,,b", "a=b c", "a/b/c=d",
    `${"x".repeat(1000)}=1`, `a=${"v".repeat(100)}`, "a>1", "a<b", "a in (b,c", "a=(b)", "%", "\u0000", "a=b)", "(a)", "key=💥",
    "a exists", "-a=b", "a=-b-", "a in (b c)", "a notin ((b))", "a=b=c", "!a=b", "a in b",
  ];
  const fieldSelectors = [
    "foo=bar", "metadata.name", "=x", "metadata.name==x==y", "metadata.name!x", "spec.nodeName=a", "metadata.namespace in (a)",
    "status.phase=Running", ",", "metadata.name=a,,", "\u0000", "metadata.labels.x=1", `metadata.name=${"n".repeat(2000)}`, "metadata.name=a=b",
    "metadata.name!=", "!metadata.name",
  ];
  labelSelectors.forEach((s, i) => {
    const path = withQuery(LIST_PATHS[i % LIST_PATHS.length], `labelSelector=${encodeURIComponent(s)}`);
    add({ label: "bad labelSelector", method: "GET", path });
    if (i % 3 === 0) add({ label: "bad labelSelector watch", method: "GET", path: withQuery(path, "watch=1&timeoutSeconds=1"), stream: true });
  });
  fieldSelectors.forEach((s, i) => {
    const path = withQuery(LIST_PATHS[i % LIST_PATHS.length], `fieldSelector=${encodeURIComponent(s)}`);
    add({ label: "bad fieldSelector", method: "GET", path });
    if (i % 3 === 0) add({ label: "bad fieldSelector watch", method: "GET", path: withQuery(path, "watch=1&timeoutSeconds=1"), stream: true });
  });
  add({ label: "bad labelSelector on deletecollection", method: "DELETE", path: `${C}/configmaps?labelSelector=${encodeURIComponent("a in (")}`, late: true });
  add({ label: "bad fieldSelector on deletecollection", method: "DELETE", path: `${C}/configmaps?fieldSelector=foo%3Dbar`, late: true });

  // 8. Bad resourceVersion / limit / continue / timeoutSeconds and friends.
  const badRv = ["abc", "-1", "1.5", "0x10", "99999999999999999999999", "1e3", " ", "%00", "18446744073709551616", "9007199254740993"];
  const badLimit = ["-1", "abc", "0.5", "1e99", "99999999999999999999", "", "NaN", "Infinity", "-0"];
  const badContinue = [
    "garbage", "!!!", Buffer.from('{"rv":-1}').toString("base64"), Buffer.from("{}").toString("base64"), rng.bytes(30).toString("base64"),
    Buffer.from('{"v":"meta.k8s.io/v1","rv":1,"start":"zzz"}').toString("base64url"), Buffer.from('{"v":"meta.k8s.io/v1","rv":"x","start":{}}').toString("base64url"),
    "%ZZ", "a".repeat(3000),
  ];
  const badTimeout = ["-5", "abc", "1e99", "99999999999999", "0.5", ""];
  for (const v of badRv) {
    add({ label: "bad resourceVersion list", method: "GET", path: `${C}/configmaps?resourceVersion=${encodeURIComponent(v)}` });
    add({ label: "bad resourceVersion get", method: "GET", path: `${C}/configmaps/target?resourceVersion=${encodeURIComponent(v)}` });
    add({ label: "bad resourceVersion watch", method: "GET", path: `${C}/configmaps?watch=1&timeoutSeconds=1&resourceVersion=${encodeURIComponent(v)}`, stream: true });
    add({ label: "bad resourceVersion in body", method: "PUT", path: `${C}/configmaps/target`, headers: ct("application/json"), body: other(T.configmap, { name: "target", resourceVersion: v }) });
    add({ label: "bad resourceVersion in patch", method: "PATCH", path: `${C}/configmaps/target`, headers: ct("application/merge-patch+json"), body: JSON.stringify({ metadata: { resourceVersion: v } }) });
  }
  for (const v of badLimit) {
    add({ label: "bad limit", method: "GET", path: `${C}/configmaps?limit=${encodeURIComponent(v)}` });
    add({ label: "bad limit all namespaces", method: "GET", path: `/api/v1/configmaps?limit=${encodeURIComponent(v)}` });
  }
  for (const v of badContinue) {
    add({ label: "bad continue", method: "GET", path: `${C}/configmaps?limit=1&continue=${encodeURIComponent(v)}` });
    add({ label: "bad continue all namespaces", method: "GET", path: `/api/v1/pods?continue=${encodeURIComponent(v)}` });
  }
  for (const v of badTimeout) {
    add({ label: "bad timeoutSeconds watch", method: "GET", path: `${C}/configmaps?watch=1&timeoutSeconds=${encodeURIComponent(v)}`, stream: true });
    add({ label: "bad timeoutSeconds list", method: "GET", path: `${C}/configmaps?timeoutSeconds=${encodeURIComponent(v)}` });
  }
  for (const q of [
    "resourceVersionMatch=bogus", "resourceVersionMatch=Exact", "resourceVersionMatch=NotOlderThan&resourceVersion=0", "resourceVersionMatch=Exact&resourceVersion=1&continue=x",
    "watch=maybe", "watch=2", "allowWatchBookmarks=maybe&watch=1&timeoutSeconds=1", "sendInitialEvents=true", "sendInitialEvents=maybe&watch=1&timeoutSeconds=1",
    "limit=1&resourceVersion=0&continue=abc", "pretty=maybe", "includeObject=Bogus", "watch=1&watch=0&timeoutSeconds=1",
  ]) {
    add({ label: "bad list query", method: "GET", path: `${C}/configmaps?${q}`, stream: q.includes("watch=1") });
  }
  for (const q of ["dryRun=bogus", "dryRun=All&dryRun=Bogus", "fieldValidation=bogus", `fieldManager=${"m".repeat(200)}`, "fieldManager=%00%01", "pretty=maybe"]) {
    add({ label: "bad write query", method: "POST", path: `${C}/configmaps?${q}`, headers: ct("application/json"), body: other(T.configmap, { name: "fz-query" }) });
    add({ label: "bad patch query", method: "PATCH", path: `${C}/configmaps/target?${q}`, headers: ct("application/merge-patch+json"), body: '{"data":{"q":"1"}}' });
  }
  add({ label: "apply without fieldManager", method: "PATCH", path: `${C}/configmaps/target`, headers: ct("application/apply-patch+yaml"), body: other(T.configmap, { name: "target" }) });
  add({ label: "apply force=maybe", method: "PATCH", path: `${C}/configmaps/target?fieldManager=fuzz&force=maybe`, headers: ct("application/apply-patch+yaml"), body: other(T.configmap, { name: "target" }) });
  add({ label: "force on non-apply", method: "PATCH", path: `${C}/configmaps/target?force=true`, headers: ct("application/merge-patch+json"), body: "{}" });

  // Pod log with bad parameters (follow may stream).
  for (const q of [
    "tailLines=-1", "tailLines=abc", "limitBytes=-1", "limitBytes=0", "limitBytes=abc", "sinceSeconds=-1", "sinceSeconds=abc", "sinceTime=garbage",
    "sinceSeconds=1&sinceTime=2020-01-01T00:00:00Z", "container=nope", "previous=maybe", "timestamps=maybe", "follow=maybe", "tailLines=99999999999999999999",
  ]) {
    add({ label: "bad log query", method: "GET", path: `${C}/pods/p1/log?${q}`, stream: true });
  }
  add({ label: "log of missing pod", method: "GET", path: `${C}/pods/nope/log` });
  add({ label: "POST to log", method: "POST", path: `${C}/pods/p1/log`, headers: ct("application/json"), body: "{}" });

  // 9. Unknown paths.
  const unknownPaths = [
    "/foo", "/api/v2", "/api/v1/foos", `${C}/foos`, "/apis/nope/v1", "/apis/nope/v1/foos", "/apis/apps/v9/deployments", `${A}/deployments/d1/bogus`,
    `${C}/configmaps/target/status`, `${C}/configmaps/target/scale`, `${C}/pods/p1/exec`, `${C}/pods/p1/portforward`, `${C}/pods/p1/attach`, `${C}/pods/p1/proxy`,
    "/api/v1/namespaces//configmaps", `${C}/configmaps/`, `${C}/configmaps/a/b/c/d`, "/api//v1", "/api/v1/namespaces/%zz/configmaps", `${C}/configmaps/%00`,
    `${C}/configmaps/..%2f..%2fetc`, `${C}/configmaps/${"a".repeat(5000)}`, "/openapi/v3/apis/nope/v1", "/openapi/v3/api/v1?hash=zzz", "/apis/apps/v1/namespaces/fuzz/replicasets/x/scale",
    "/metrics/foo", "/healthz/foo", "/version/x", "/api/v1/nodes/n1/proxy", "/logs", "/.well-known/openid-configuration", "/api/v1/componentstatuses",
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", "/api/v1/namespaces/fuzz/configmaps/target/target", "/apis/apps/v1/namespaces/fuzz/deployments/d1/scale/x",
    "/api/v1/namespaces/fuzz/pods/p1/binding/x", "/apis/", "/apis/apps/", "/api/v1/namespaces/fuzz/namespaces", "/api/v1/nodes/n1/pods",
  ];
  for (const p of unknownPaths) {
    add({ label: "unknown path", method: "GET", path: p });
    add({ label: "unknown path", method: "POST", path: p, headers: ct("application/json"), body: JSON.stringify(T.configmap) });
    add({ label: "unknown path", method: "DELETE", path: p, late: true });
  }

  // 10. Unknown methods.
  for (const method of ["OPTIONS", "TRACE", "PROPFIND", "MKCOL", "PURGE", "SEARCH"]) {
    for (const p of [`${C}/configmaps`, `${C}/configmaps/target`, `${C}/pods/p1/status`, `${A}/deployments/d1/scale`, "/api", "/apis", "/api/v1", "/foo"]) {
      add({ label: "unknown method", method, path: p });
    }
  }
  for (const [method, p] of [["PUT", `${C}/configmaps`], ["PATCH", `${C}/configmaps`], ["POST", `${C}/configmaps/target`], ["DELETE", "/api"], ["POST", "/version"], ["PUT", "/healthz"], ["POST", `${C}/pods/p1/log`], ["GET", `${C}/pods/p1/eviction`], ["GET", `${C}/pods/p1/binding`], ["DELETE", `${A}/deployments/d1/scale`], ["POST", "/metrics"], ["PATCH", "/api/v1/namespaces/fuzz/pods/p1/eviction"]] as const) {
    add({ label: "method not allowed", method, path: p, headers: ct("application/json"), body: "{}" });
  }

  // 11. Every patch content type with garbage.
  const garbagePatches: Record<(typeof PATCH_TYPES)[number], string[]> = {
    "application/json-patch+json": [
      '[{"op":"explode"}]', '[{"op":"add","path":"no-slash","value":1}]', '[{"op":"remove","path":"/metadata"}]', '[{"op":"replace","path":"/metadata/name","value":"other"}]',
      '[{"op":"move","from":"/data","path":"/data/x"}]', '[{"op":"copy","from":"/nope","path":"/x"}]', "{}", '"str"', "[1,2,3]", '[{"op":"add","path":"/data/~2","value":1}]',
      '[{"op":"add","path":"/spec/containers/99999999999/name","value":"x"}]', '[{"op":"add","path":"/spec/containers/-1","value":{}}]', '[{"op":"replace","path":"/kind","value":"Pod"}]',
      '[{"op":"replace","path":"/metadata/namespace","value":"other"}]', '[{"op":"replace","path":"/metadata/uid","value":"x"}]', '[{"op":"replace","path":"/metadata/resourceVersion","value":"abc"}]',
      '[{"op":"add","path":"/metadata/labels","value":{"bad key!":"v"}}]', '[{"op":"replace","path":"","value":null}]', '[{"op":"add","path":"/__proto__/polluted","value":1}]',
      '[{"op":"add","path":"/constructor/prototype/polluted","value":1}]', '[{"op":"test","path":"/metadata/name"}]', '[{"op":"add","path":"/data"}]', '[{"path":"/data/a","value":"1"}]',
      '[{"op":"add","path":"/data/a","value":"1","from":7}]', '[{"op":"remove","path":"/data/a/b/c"}]', `[${Array(5000).fill('{"op":"add","path":"/data/a","value":"1"}').join(",")}]`,
      "[null]", '[{"op":null,"path":null}]', '[{"op":"add","path":"/metadata/creationTimestamp","value":"not a time"}]', '[{"op":"add","path":"/metadata/deletionTimestamp","value":"2020-01-01T00:00:00Z"}]',
    ],
    "application/merge-patch+json": [
      "null", "[]", '"x"', "42", '{"metadata":null}', '{"metadata":{"name":"other"}}', '{"kind":"Pod"}', '{"apiVersion":"v2"}', '{"data":{"k":1}}', '{"data":[1]}',
      '{"metadata":{"labels":{"-bad-":"x"}}}', '{"spec":{"replicas":"many"}}', '{"metadata":{"resourceVersion":"1"}}', '{"metadata":{"uid":"other"}}',
      '{"__proto__":{"polluted":1}}', '{"constructor":{"prototype":{"polluted":1}}}', '{"metadata":{"__proto__":{"polluted":1}}}', '{"spec":{"containers":null}}',
      '{"spec":{"containers":[{"name":"c","image":null}]}}', '{"metadata":{"creationTimestamp":"yesterday"}}', '{"metadata":{"generation":"x"}}', '{"status":"broken"}',
      '{"metadata":{"finalizers":"x"}}', '{"metadata":{"ownerReferences":[{}]}}', '{"metadata":{"managedFields":[{"manager":1}]}}',
    ],
    "application/strategic-merge-patch+json": [
      '{"$patch":"delete"}', '{"$patch":"replace"}', '{"$patch":"bogus"}', '{"spec":{"containers":[{"$patch":"delete"}]}}', '{"spec":{"containers":[{"name":"c","$patch":"bogus"}]}}',
      '{"spec":{"$setElementOrder/containers":"x"}}', '{"spec":{"$setElementOrder/containers":[{"nomergekey":1}]}}', '{"$retainKeys":["a"]}', '{"spec":{"$retainKeys":"notalist"}}',
      '{"$deleteFromPrimitiveList/finalizers":"x"}', '{"metadata":{"$deleteFromPrimitiveList/finalizers":[{"a":1}]}}', '{"spec":{"containers":"notalist"}}', '{"spec":{"containers":[1,2]}}',
      '{"spec":{"containers":[{"name":null}]}}', '{"metadata":{"finalizers":{"$patch":"replace"}}}', '{"spec":{"template":{"spec":{"containers":[{"name":"c","ports":[{"$patch":"delete"}]}]}}}}',
      '{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"zzz"}],"containers":[]}}}}', '{"__proto__":{"polluted":1}}', '{"spec":{"containers":[{"name":"c","env":[{"name":"A","$patch":"replace"}]}]}}',
      "null", "[]", "42", '{"metadata":{"labels":{"$patch":"delete"}}}', '{"spec":{"template":{"spec":{"containers":[{"$retainKeys":["name"],"name":"c"}]}}}}', '{"status":{"conditions":[{"type":null}]}}',
    ],
    "application/apply-patch+yaml": [
      "garbage: [", ": : :", "{a: *unknown}", "42", "null", "[]", "~", "!!js/function 'function(){}'", "!!binary xx", "\tkey: value", "---\n---\n", "a: b\n---\nc: d",
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\n", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: target\n", `${"k".repeat(70_000)}: v`,
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: target\n  namespace: fuzz\ndata:\n  a: [1, 2]\n", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: target\n  managedFields: 7\n",
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: target\n__proto__:\n  polluted: 1\n", "? [a, b]\n: c\n", "a: !!set {x, y}", "a: 0x1F\nb: .inf\nc: .nan\nd: 2001-12-14t21:59:43.10-05:00",
      "\ufeffapiVersion: v1", "%YAML 9.9\n---\na: b", "a: &x 1\nb: *x\nc: *y",
    ],
  };
  for (const type of PATCH_TYPES) {
    garbagePatches[type].forEach((body, i) => {
      const path = withQuery(PATCHES[i % PATCHES.length], "fieldManager=fuzz");
      add({ label: `garbage ${type}`, method: "PATCH", path, headers: ct(type), body });
      if (i % 2 === 0) add({ label: `garbage ${type} (configmap)`, method: "PATCH", path: withQuery(`${C}/configmaps/target`, "fieldManager=fuzz"), headers: ct(type), body });
    });
  }
  add({ label: "patch with json content type", method: "PATCH", path: `${C}/configmaps/target`, headers: ct("application/json"), body: '{"data":{"a":"1"}}' });
  add({ label: "patch without content type", method: "PATCH", path: `${C}/configmaps/target`, body: '{"data":{"a":"1"}}' });
  add({ label: "patch of missing object", method: "PATCH", path: `${C}/configmaps/nope`, headers: ct("application/merge-patch+json"), body: '{"data":{"a":"1"}}' });
  add({ label: "json patch of missing object", method: "PATCH", path: `${C}/configmaps/nope`, headers: ct("application/json-patch+json"), body: '[{"op":"add","path":"/data","value":{}}]' });

  // 12. Protobuf content type with garbage.
  const pb = "application/vnd.kubernetes.protobuf";
  const magic = Buffer.from("k8s\u0000", "latin1");
  const pbBodies: Buffer[] = [
    Buffer.alloc(0), magic, Buffer.concat([magic, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])]), Buffer.concat([magic, Buffer.from([0x0a, 0x05, 0x0a, 0x02, 0x76])]),
    Buffer.concat([magic, Buffer.from([0x0a, 0x0f, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x09]), Buffer.from("ConfigMap"), Buffer.from([0x12, 0xff, 0xff, 0x03])]),
    Buffer.concat([magic, Buffer.from([0x0a, 0x0d, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x07]), Buffer.from("Unknown"), Buffer.from([0x12, 0x02, 0x0a, 0x00])]),
    Buffer.concat([magic, Buffer.from([0x0a, 0x0f, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x09]), Buffer.from("ConfigMap"), Buffer.from([0x12, 0x04, 0x0a, 0x02, 0x0a, 0x7f])]),
    Buffer.concat([magic, Buffer.from([0x0a, 0x0f, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x09]), Buffer.from("ConfigMap"), Buffer.from([0x12, 0x03, 0x0a, 0x01, 0x0a])]),
    Buffer.concat([magic, Buffer.from([0x0a, 0x0f, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x09]), Buffer.from("ConfigMap"), Buffer.from([0x1a, 0x00, 0x22, 0x04]), Buffer.from("gzip")]),
    Buffer.from('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"json-as-pb"}}'),
  ];
  for (let i = 0; i < 30; i++) pbBodies.push(Buffer.concat([magic, rng.bytes(rng.int(200))]));
  pbBodies.forEach((body, i) => {
    const w = WRITES[i % WRITES.length];
    add({ label: "protobuf garbage", method: w.method, path: w.path, headers: ct(pb), body });
    if (i % 4 === 0) add({ label: "protobuf garbage (create configmap)", method: "POST", path: `${C}/configmaps`, headers: ct(pb), body });
  });
  add({ label: "protobuf patch", method: "PATCH", path: `${C}/configmaps/target`, headers: ct(pb), body: pbBodies[3] });
  add({ label: "protobuf accept only", method: "GET", path: `${C}/configmaps/target`, headers: { Accept: pb } });
  add({ label: "bogus accept", method: "GET", path: `${C}/configmaps/target`, headers: { Accept: "application/xml" } });
  add({ label: "bogus table accept", method: "GET", path: `${C}/configmaps`, headers: { Accept: "application/json;as=Table;v=v9;g=meta.k8s.io" } });
  add({ label: "garbage accept", method: "GET", path: `${C}/configmaps`, headers: { Accept: ";;;,,,=" } });

  // 13. Wrong Content-Type for creates and updates.
  const wrongTypes = [
    "text/plain", "application/xml", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "application/json; charset=latin1", "application/jsonx", "json",
    "application/json-patch+json", "application/strategic-merge-patch+json", ";;;", `application/${"x".repeat(2000)}`, "application/json; charset=utf-16", "application/cbor", "image/png",
  ];
  for (const type of wrongTypes) {
    add({ label: `create with ${type.slice(0, 40)}`, method: "POST", path: `${C}/configmaps`, headers: ct(type), body: other(T.configmap, { name: "fz-ct" }) });
    add({ label: `update with ${type.slice(0, 40)}`, method: "PUT", path: `${C}/configmaps/target`, headers: ct(type), body: other(T.configmap, { name: "target" }) });
  }

  // DELETE with garbage bodies and bad options (run last: they may delete things).
  const deleteBodies = ["{", "[]", "null", '{"propagationPolicy":"Bogus"}', '{"gracePeriodSeconds":-5}', '{"gracePeriodSeconds":"x"}', '{"preconditions":{"uid":"nope"}}', '{"preconditions":{"resourceVersion":"1"}}', '{"kind":"Pod"}', '{"dryRun":["Bogus"]}', '{"orphanDependents":true,"propagationPolicy":"Foreground"}'];
  deleteBodies.forEach((body, i) => {
    add({ label: "delete with bad body", method: "DELETE", path: `${C}/configmaps/victim-${i}`, headers: ct("application/json"), body, late: true });
  });
  add({ label: "delete with protobuf garbage", method: "DELETE", path: `${C}/configmaps/victim-pb`, headers: ct(pb), body: Buffer.concat([magic, rng.bytes(40)]), late: true });
  for (const q of ["gracePeriodSeconds=-5", "gracePeriodSeconds=abc", "propagationPolicy=Bogus", "dryRun=Bogus", "orphanDependents=maybe"]) {
    add({ label: "delete with bad query", method: "DELETE", path: `${C}/configmaps/victim-q?${q}`, late: true });
  }
  // 14. Up to TOTAL: a seeded mix of the above with valid requests and early rejections interleaved,
  // so that on one keep-alive connection every kind of answer is followed by every other.
  let serial = 0;
  while (cases.length < TOTAL) {
    const roll = rng.next();
    if (roll < 0.2) {
      const w = rng.pick(WRITES);
      const type = rng.pick(bodyTypes);
      add({ label: "random bytes", method: w.method, path: w.path, headers: type ? ct(type) : {}, body: rng.bytes(rng.pick([0, 1, 16, 300, 4000])), chunked: rng.next() < 0.2 });
    } else if (roll < 0.5) {
      const w = rng.pick(WRITES);
      add({ label: "mutated json", method: w.method, path: w.path, headers: ct("application/json"), body: mutateJson(rng, w.tpl), chunked: rng.next() < 0.1 });
    } else if (roll < 0.6) {
      add({ label: "valid read", method: "GET", path: rng.pick([...LIST_PATHS, `${C}/configmaps/target`, `${A}/deployments/d1`, "/api/v1/nodes/n1", "/version", "/api", "/apis"]) });
    } else if (roll < 0.65) {
      add({ label: "valid create", method: "POST", path: `${C}/configmaps`, headers: ct("application/json"), body: JSON.stringify({ ...T.configmap, metadata: meta(`fz-r-${serial++}`) }) });
    } else if (roll < 0.72) {
      // 401 before the body is read: small bodies are drained, large ones close the connection.
      const w = rng.pick(WRITES);
      const size = rng.pick([0, 100, 200 * 1024, 300 * 1024]);
      const body = size === 0 ? JSON.stringify(w.tpl) : `{"pad":"${"z".repeat(size)}"}`;
      add({ label: "bad token", method: w.method, path: w.path, headers: ct("application/json"), body, token: rng.next() < 0.5 ? false : `not-a-token-${rng.int(1000)}`, chunked: rng.next() < 0.3 });
    } else if (roll < 0.8) {
      const list = rng.pick(LIST_PATHS);
      const q = rng.pick([
        `labelSelector=${encodeURIComponent(rng.pick(labelSelectors))}`,
        `fieldSelector=${encodeURIComponent(rng.pick(fieldSelectors))}`,
        `resourceVersion=${encodeURIComponent(rng.pick(badRv))}`,
        `limit=${encodeURIComponent(rng.pick(badLimit))}`,
        `continue=${encodeURIComponent(rng.pick(badContinue))}`,
      ]);
      add({ label: "bad query", method: "GET", path: withQuery(list, q) });
    } else if (roll < 0.87) {
      // Answered before any handler reads the body: unknown paths, read-only paths, bad URL escapes.
      const path = rng.pick([...unknownPaths.slice(0, 10), "/version", "/healthz", "/api/v1/namespaces/%zz/configmaps"]);
      add({ label: "early answer with a body", method: rng.pick(["POST", "PUT", "PATCH"]), path, headers: ct("application/json"), body: `{"pad":"${"q".repeat(rng.pick([10, 1000, 100 * 1024, 400 * 1024]))}"}`, chunked: rng.next() < 0.3 });
    } else if (roll < 0.88) {
      // Over the 3 MiB limit (rare: each is 3 MiB on the wire).
      add({ label: ">3MiB", method: "POST", path: `${C}/configmaps`, headers: ct("application/json"), body: big(3 * 1024 * 1024 + rng.int(1000)), chunked: rng.next() < 0.5 });
    } else if (roll < 0.94) {
      const type = rng.pick(PATCH_TYPES);
      const bodies = garbagePatches[type];
      add({ label: `garbage ${type}`, method: "PATCH", path: withQuery(rng.pick(PATCHES), "fieldManager=fuzz"), headers: ct(type), body: rng.pick(bodies) });
    } else {
      const type = rng.pick(wrongTypes);
      add({ label: `wrong content type`, method: rng.pick(["POST", "PUT"]), path: rng.next() < 0.5 ? `${C}/configmaps` : `${C}/configmaps/target`, headers: ct(type), body: other(T.configmap, { name: "target" }) });
    }
  }
  return [...cases.filter((c) => !c.late), ...cases.filter((c) => c.late)];
}

// ---------------------------------------------------------------------------------------------

interface Outcome {
  c: Case;
  pass: "keep-alive" | "fresh";
  res?: RawResponse;
  err?: string;
}

function describeCase(c: Case): string {
  const body = c.body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(c.body) ? c.body : Buffer.from(c.body);
  const preview = body.length > 600 ? `${JSON.stringify(body.subarray(0, 600).toString("latin1"))}… (${body.length} bytes)` : JSON.stringify(body.toString("latin1"));
  const path = c.path.length > 300 ? `${c.path.slice(0, 300)}… (${c.path.length} chars)` : c.path;
  return `[${c.label}] ${c.method} ${path} Content-Type: ${c.headers?.["Content-Type"] ?? "(none)"} body: ${preview}`;
}

/** The object a request is about: its path without the query and a trailing subresource. */
function objectKey(path: string): string {
  return path.split("?")[0].replace(/\/(status|scale|binding|eviction|log|finalize)$/, "");
}

async function runAll(cases: Case[], concurrency: number, agent: https.Agent, pass: Outcome["pass"]): Promise<Outcome[]> {
  const out: Outcome[] = new Array<Outcome>(cases.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < cases.length) {
      const i = next++;
      const c = cases[i];
      try {
        const res = await request(k, {
          method: c.method,
          path: c.path,
          ...(c.headers ? { headers: c.headers } : {}),
          ...(c.body !== undefined ? { body: c.body } : {}),
          ...(c.chunked ? { chunked: true } : {}),
          ...(c.token !== undefined ? { token: c.token } : {}),
          headersOnlyOn2xx: c.stream === true,
          timeoutMs: 20_000,
          agent,
        });
        out[i] = { c, pass, res };
      } catch (e) {
        out[i] = { c, pass, err: (e as Error).message };
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  return out;
}

async function create(path: string, body: Json): Promise<void> {
  const r = await request(k, { method: "POST", path, headers: ct("application/json"), body: JSON.stringify(body) });
  expect(r.status, `${path}: ${r.text}`).toBe(201);
}

interface ItemMeta {
  kind?: string;
  metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string; creationTimestamp?: string };
  data?: Record<string, unknown>;
  binaryData?: Record<string, unknown>;
}

let outcomes: Outcome[] = [];
const seeded = new Set<string>();
const createdByFuzz = new Set<string>();

beforeAll(async () => {
  k = await startKubelab();
  agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: k.caCert });
  freshAgent = new https.Agent({ keepAlive: false, ca: k.caCert });
  await create("/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
  await create("/api/v1/nodes", { ...T.node, metadata: { name: "n1" } });
  await create(`${C}/configmaps`, { ...T.configmap, metadata: meta("target") });
  for (const v of ["victim-pb", "victim-q", ...Array.from({ length: 11 }, (_, i) => `victim-${i}`)]) await create(`${C}/configmaps`, { ...T.configmap, metadata: meta(v) });
  await create(`${C}/pods`, { ...T.pod, metadata: meta("p1") });
  await create(`${A}/deployments`, { ...T.deployment, metadata: meta("d1") });
  await create(`${C}/services`, { ...T.service, metadata: meta("svc1") });
  await create(`${C}/secrets`, { ...T.secret, metadata: meta("s1") });
  for (const n of ["target", "victim-pb", "victim-q", ...Array.from({ length: 11 }, (_, i) => `victim-${i}`)]) seeded.add(`${NS}/${n}`);
}, 120_000);

afterAll(async () => {
  agent?.destroy();
  freshAgent?.destroy();
  await k?.stop({ clean: true });
});

describe("fuzz", () => {
  it("10,000 malformed requests, over one keep-alive connection and over fresh ones: no 5xx, every 4xx a Status, no hangs", async () => {
    const cases = generate();
    expect(cases.length).toBe(TOTAL);
    const t0 = Date.now();
    // One at a time: the cases mutate shared objects, so a fixed order makes every run identical.
    const kept = await runAll(cases, 1, agent, "keep-alive");
    const keptMs = Date.now() - t0;
    const fresh = await runAll(cases, 1, freshAgent, "fresh");
    const elapsed = Date.now() - t0;
    outcomes = [...kept, ...fresh];
    // The keep-alive pass did exercise reuse: most answers kept their connection for the next request.
    const reused = kept.filter((o) => o.res?.headers.connection === "keep-alive").length;
    console.log(`fuzz keep-alive pass: ${keptMs} ms, ${reused} of ${kept.length} answers kept the connection; fresh pass: ${elapsed - keptMs} ms`);
    expect(reused).toBeGreaterThan(kept.length / 2);

    // FUZZ_DUMP=file writes every request and its status (one line each) for a closer look.
    if (process.env.FUZZ_DUMP) writeFileSync(process.env.FUZZ_DUMP, outcomes.map((o) => `${o.res?.status ?? o.err} ${describeCase(o.c)} => ${o.res?.text.slice(0, 300) ?? ""}`).join("\n"));
    const fiveXX: string[] = [];
    const badStatus: string[] = [];
    const network: string[] = [];
    const byCode = new Map<number, number>();
    for (const o of outcomes) {
      if (o.err !== undefined) {
        network.push(`(${o.pass}) ${describeCase(o.c)}\n    -> ${o.err}`);
        continue;
      }
      const res = o.res!;
      byCode.set(res.status, (byCode.get(res.status) ?? 0) + 1);
      if (res.status >= 500) {
        // The state that led here: the latest successful writes to the same object.
        const key = objectKey(o.c.path);
        const before = outcomes
          .slice(0, outcomes.indexOf(o))
          .filter((p) => p.res && p.res.status < 300 && p.c.method !== "GET" && objectKey(p.c.path) === key)
          .slice(-3)
          .map((p) => `\n      after ${describeCase(p.c)} -> ${p.res!.status}`)
          .join("");
        fiveXX.push(`(${o.pass}) ${describeCase(o.c)}\n    -> ${res.status} ${res.text.slice(0, 400)}${before}`);
      } else if (res.status >= 400) {
        const s = jsonObject(res.text);
        if (!s || s.kind !== "Status" || typeof s.message !== "string" || s.message === "" || s.code !== res.status) {
          badStatus.push(`(${o.pass}) ${describeCase(o.c)}\n    -> ${res.status} ${String(res.headers["content-type"])} ${res.text.slice(0, 200)}`);
        }
      } else if (res.status >= 200 && res.status < 300 && ["POST", "PUT", "PATCH"].includes(o.c.method) && o.c.path.includes("/configmaps")) {
        const obj = jsonObject(res.text) as ItemMeta | undefined;
        if (obj?.kind === "ConfigMap" && obj.metadata?.name) createdByFuzz.add(`${obj.metadata.namespace ?? ""}/${obj.metadata.name}`);
      }
    }
    const summary = [...byCode.entries()].sort((a, b) => a[0] - b[0]).map(([c, n]) => `${c}: ${n}`).join(", ");
    console.log(`fuzz: ${outcomes.length} requests in ${elapsed} ms; status codes ${summary}; network errors ${network.length}`);
    if (fiveXX.length) console.error(`${fiveXX.length} 5xx responses:\n${fiveXX.join("\n")}`);
    if (badStatus.length) console.error(`${badStatus.length} 4xx responses without a proper Status body:\n${badStatus.join("\n")}`);
    if (network.length) console.error(`${network.length} requests without an HTTP answer:\n${network.join("\n")}`);
    expect(fiveXX, "5xx responses").toEqual([]);
    expect(badStatus, "4xx responses without a JSON Status body").toEqual([]);
    expect(network, "requests that hung or lost their connection").toEqual([]);
  }, 600_000);

  it("afterwards the server is alive, was never restarted, and a normal create works", async () => {
    expect((await request(k, { path: "/readyz" })).status).toBe(200);
    const state = JSON.parse(readFileSync(join(k.dataDir, "up.json"), "utf8")) as { components: { name: string; restarts: number }[] };
    expect(state.components.find((c) => c.name === "apiserver")?.restarts, "apiserver restarts during the fuzz").toBe(0);
    const r = await request(k, { method: "POST", path: `${C}/configmaps`, headers: ct("application/json"), body: JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "after-fuzz" }, data: { ok: "yes" } }) });
    expect(r.status, r.text).toBe(201);
    const got = await request(k, { path: `${C}/configmaps/after-fuzz` });
    expect(got.status).toBe(200);
    expect(jsonObject(got.text)).toMatchObject({ kind: "ConfigMap", data: { ok: "yes" } });
    // No prototype pollution leaked into fresh objects.
    expect(got.text).not.toContain("polluted");
    const kc = await k.kubectl(["get", "configmaps", "-n", NS, "-o", "name"]);
    expect(kc.code, kc.stderr).toBe(0);
    expect(kc.stdout).toContain("configmap/after-fuzz");
  });

  it("nothing half-written: every stored configmap was created by a request that succeeded, and reads back whole", async () => {
    const list = await request(k, { path: "/api/v1/configmaps" });
    expect(list.status).toBe(200);
    const items = ((jsonObject(list.text)?.items ?? []) as ItemMeta[]).filter((i) => i.metadata?.namespace !== "default" && i.metadata?.namespace !== "kube-system" && i.metadata?.namespace !== "kube-public");
    const unexpected: string[] = [];
    for (const item of items) {
      const key = `${item.metadata?.namespace ?? ""}/${item.metadata?.name ?? ""}`;
      if (key === `${NS}/after-fuzz`) continue;
      // The root-ca-cert-publisher's ConfigMap, in every namespace (checked for wholeness all the same).
      const published = item.metadata?.name === "kube-root-ca.crt";
      if (!published && !seeded.has(key) && !createdByFuzz.has(key)) unexpected.push(key);
      expect(item.metadata?.uid, key).toBeTruthy();
      expect(item.metadata?.resourceVersion, key).toMatch(/^\d+$/);
      expect(item.metadata?.creationTimestamp, key).toBeTruthy();
      for (const [dk, dv] of Object.entries(item.data ?? {})) expect(typeof dv, `${key} data.${dk}`).toBe("string");
      for (const [dk, dv] of Object.entries(item.binaryData ?? {})) expect(dv, `${key} binaryData.${dk}`).toMatch(/^[A-Za-z0-9+/]*={0,2}$/);
      const one = await request(k, { path: `/api/v1/namespaces/${item.metadata!.namespace!}/configmaps/${item.metadata!.name!}` });
      expect(one.status, key).toBe(200);
      expect((jsonObject(one.text) as ItemMeta).metadata?.resourceVersion, key).toBe(item.metadata?.resourceVersion);
    }
    expect(unexpected, "configmaps no successful request created").toEqual([]);
    // The seeded objects fuzzed with PUT/PATCH are still readable and well-formed.
    for (const p of [`${C}/configmaps/target`, `${A}/deployments/d1`, "/api/v1/nodes/n1", `${C}/services/svc1`, `${C}/secrets/s1`]) {
      const r = await request(k, { path: p });
      expect([200, 404], p).toContain(r.status);
      if (r.status === 200) expect((jsonObject(r.text) as ItemMeta).metadata?.name, p).toBe(p.split("/").pop());
    }
    // What kubectl users see: every fuzzed object still describes.
    const described = await k.kubectl(["describe", "configmaps,pods,deployments,services,secrets", "-n", NS]);
    if (described.code !== 0) {
      const writes = outcomes.filter((o) => o.res && o.res.status < 300 && ["POST", "PUT", "PATCH"].includes(o.c.method)).map((o) => `${describeCase(o.c)} -> ${o.res!.status}`);
      console.error(`kubectl describe failed (${described.stderr.trim()}); the fuzz writes that succeeded:\n${writes.join("\n")}`);
    }
    expect(described.code, `kubectl describe -n ${NS} failed:\n${described.stderr}`).toBe(0);
    const table = await k.kubectl(["get", "configmaps,pods,deployments,services,secrets,nodes", "-n", NS, "-o", "wide"]);
    expect(table.code, table.stderr).toBe(0);
    // Other kinds list cleanly too.
    for (const p of [`${C}/pods`, `${A}/deployments`, "/api/v1/nodes", "/api/v1/namespaces", `${C}/secrets`, `${C}/services`, `${C}/events`]) {
      const r = await request(k, { path: p });
      expect(r.status, `${p}: ${r.text.slice(0, 300)}`).toBe(200);
    }
  });

  // Bodies whose fields have the wrong JSON type: upstream's decoder rejects them with 400 BadRequest
  // ("json: cannot unmarshal ..."); they must never be stored.
  it("type-confused bodies are rejected, not stored", async () => {
    const cmBody = (name: string, extra: Record<string, Json>): string => JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: NS }, ...extra });
    const podBody = (name: string, spec: Record<string, Json>, extra: Record<string, Json> = {}): string =>
      JSON.stringify({ apiVersion: "v1", kind: "Pod", metadata: { name, namespace: NS }, spec: { containers: [{ name: "c", image: "busybox" }], ...spec }, ...extra });
    const depBody = (name: string, ctr: Record<string, Json>): string =>
      JSON.stringify({ ...T.deployment, metadata: meta(name), spec: { replicas: 1, selector: { matchLabels: { app: "fz" } }, template: { metadata: { labels: { app: "fz" } }, spec: { containers: [{ name: "c", image: "x", ...ctr }] } } } });
    const cases: { what: string; path: string; get: string; body: string; method?: string }[] = [
      { what: "configmap binaryData not base64", path: `${C}/configmaps`, get: `${C}/configmaps/tc-1`, body: cmBody("tc-1", { binaryData: { a: "!!!" } }) },
      { what: "configmap immutable as a string", path: `${C}/configmaps`, get: `${C}/configmaps/tc-2`, body: cmBody("tc-2", { immutable: "yes" }) },
      { what: "container ports as a string", path: `${A}/deployments`, get: `${A}/deployments/tc-3`, body: depBody("tc-3", { ports: "80" }) },
      { what: "container command as a string", path: `${A}/deployments`, get: `${A}/deployments/tc-4`, body: depBody("tc-4", { command: "sleep 1" }) },
      { what: "pod spec.containers as an object", path: `${C}/pods`, get: `${C}/pods/tc-5`, body: podBody("tc-5", { containers: { name: "c" } }) },
      { what: "pod terminationGracePeriodSeconds as a string", path: `${C}/pods`, get: `${C}/pods/tc-6`, body: podBody("tc-6", { terminationGracePeriodSeconds: "30" }) },
      { what: "secret data not base64", path: `${C}/secrets`, get: `${C}/secrets/tc-7`, body: JSON.stringify({ apiVersion: "v1", kind: "Secret", metadata: { name: "tc-7", namespace: NS }, data: { a: "not base64!" } }) },
    ];
    const accepted: string[] = [];
    for (const c of cases) {
      const r = await request(k, { method: c.method ?? "POST", path: c.path, headers: ct("application/json"), body: c.body });
      if (r.status < 400 || r.status >= 500) accepted.push(`${c.what}: POST ${c.path} ${c.body} -> ${r.status} ${r.text.slice(0, 200)}`);
      else expect(jsonObject(r.text)?.kind, c.what).toBe("Status");
      const g = await request(k, { path: c.get });
      if (g.status !== 404) accepted.push(`${c.what}: stored (GET ${c.get} -> ${g.status})`);
    }
    // A status update whose status is not an object.
    await create(`${C}/pods`, { ...T.pod, metadata: meta("tc-status") });
    const cur = jsonObject((await request(k, { path: `${C}/pods/tc-status` })).text)!;
    const put = await request(k, { method: "PUT", path: `${C}/pods/tc-status/status`, headers: ct("application/json"), body: JSON.stringify({ ...cur, status: -1 }) });
    if (put.status < 400) accepted.push(`pod status -1: PUT ${C}/pods/tc-status/status -> ${put.status}`);
    const bind = await request(k, { method: "POST", path: `${C}/pods/tc-status/binding`, headers: ct("application/json"), body: JSON.stringify({ ...T.binding, metadata: { name: "tc-status", namespace: NS } }) });
    if (bind.status >= 500) accepted.push(`binding after that status update -> ${bind.status} ${bind.text.slice(0, 200)}`);
    // A deployment status update with a non-integer replicas count breaks kubectl describe.
    await create(`${A}/deployments`, { ...T.deployment, metadata: meta("tc-dstatus") });
    const dep = jsonObject((await request(k, { path: `${A}/deployments/tc-dstatus` })).text)!;
    const dput = await request(k, { method: "PUT", path: `${A}/deployments/tc-dstatus/status`, headers: ct("application/json"), body: JSON.stringify({ ...dep, status: { replicas: {} } }) });
    if (dput.status < 400) {
      const d = await k.kubectl(["describe", "deployment", "tc-dstatus", "-n", NS]);
      accepted.push(`deployment status.replicas {}: PUT ${A}/deployments/tc-dstatus/status -> ${dput.status}; kubectl describe then: ${d.code === 0 ? "ok" : d.stderr.trim()}`);
    }
    if (accepted.length) console.error(`type-confused bodies accepted:\n${accepted.join("\n")}`);
    expect(accepted).toEqual([]);
  });
});
