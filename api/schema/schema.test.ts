import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { RESOURCES, groupVersion } from "../resources.ts";
import {
  base64ErrorOffset,
  checkObject,
  formatDecodeError,
  formatStrictError,
  hasSchema,
  isRFC3339,
  kindsWithoutSchema,
  unknownFieldWarnings,
} from "./index.ts";

type Obj = Record<string, unknown>;

const here = dirname(fileURLToPath(import.meta.url));
const testdata = join(here, "testdata");

function loadAll(file: string): Obj[] {
  return parseAllDocuments(readFileSync(join(testdata, file), "utf8")).map((d) => d.toJS() as Obj);
}

function check(o: Obj, strict = true): ReturnType<typeof checkObject> {
  return checkObject(o, o.apiVersion as string, o.kind as string, { strict });
}

/** Deep clone with a JSON round trip (inputs here are plain JSON). */
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

function deepFreeze<T>(v: T): T {
  if (typeof v === "object" && v !== null) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

function load(file: string): Obj {
  return loadAll(file)[0];
}

describe("realistic manifests decode cleanly", () => {
  const files = readdirSync(testdata).filter((f) => f.endsWith(".yaml"));
  it("has the expected testdata", () => {
    expect(files.length).toBeGreaterThanOrEqual(12);
  });
  for (const f of files) {
    it(f, () => {
      const docs = loadAll(f);
      expect(docs.length).toBeGreaterThan(0);
      for (const o of docs) {
        const r = check(o);
        expect({ kind: o.kind, errors: r.errors, unknown: r.unknownFields }).toEqual({ kind: o.kind, errors: [], unknown: [] });
        // Nothing pruned: the copy equals the input.
        expect(r.pruned).toEqual(o);
      }
    });
  }
});

describe("catalogue coverage", () => {
  it("every kind in RESOURCES has a schema, and its List", () => {
    expect(kindsWithoutSchema()).toEqual([]);
    for (const r of RESOURCES) expect(hasSchema(groupVersion(r), `${r.kind}List`), r.kind).toBe(true);
  });
  it("subresource kinds and DeleteOptions", () => {
    expect(hasSchema("autoscaling/v1", "Scale")).toBe(true);
    expect(hasSchema("policy/v1", "Eviction")).toBe(true);
    expect(hasSchema("v1", "Binding")).toBe(true);
    expect(hasSchema("v1", "DeleteOptions")).toBe(true);
    expect(hasSchema("apps/v1", "DeleteOptions")).toBe(true);
    expect(hasSchema("meta.k8s.io/v1", "DeleteOptions")).toBe(true);
  });
  it("unknown kinds and wrong versions have none", () => {
    expect(hasSchema("v1", "Deployment")).toBe(false);
    expect(hasSchema("apps/v1beta1", "Deployment")).toBe(false);
    expect(hasSchema("v1", "Bogus")).toBe(false);
    expect(() => checkObject({}, "v1", "Bogus", { strict: true })).toThrow(/no schema/);
  });
  it("a List of items", () => {
    const list = { apiVersion: "v1", kind: "PodList", metadata: { resourceVersion: "1", continue: "" }, items: [load("pod.yaml")] };
    expect(check(list).unknownFields).toEqual([]);
    const bad = clone(list) as Obj & { items: Obj[] };
    (bad.items[0].spec as Obj).nodeNmae = "x";
    expect(check(bad).unknownFields).toEqual(["items[0].spec.nodeNmae"]);
  });
});

describe("unknown fields", () => {
  it("finds a top-level spec typo with upstream's message", () => {
    const d = load("deployment.yaml");
    const spec = d.spec as Obj;
    spec.replcas = spec.replicas;
    delete spec.replicas;
    const r = check(d);
    expect(r.errors).toEqual([]);
    expect(r.unknownFields).toEqual(["spec.replcas"]);
    expect(formatStrictError(r.unknownFields)).toBe('strict decoding error: unknown field "spec.replcas"');
    expect(unknownFieldWarnings(r.unknownFields)).toEqual(['unknown field "spec.replcas"']);
  });

  it("finds typos nested in arrays, with indices", () => {
    const d = load("deployment.yaml") as Obj & { spec: { template: { spec: Obj & { containers: Obj[]; volumes: Obj[] } } } };
    const ps = d.spec.template.spec;
    ps.containers[0].imagePullPolcy = "Always";
    ((ps.containers[1].ports as Obj[])[0] as Obj).containerPrt = 1;
    ((ps.volumes[0].configMap as Obj).items as Obj[])[0].pth = "x";
    ((ps.containers[0].env as Obj[])[1].valueFrom as Obj).resourceFieldRef = { resource: "limits.cpu", divsor: "1m" };
    const r = check(d);
    expect(r.errors).toEqual([]);
    expect(r.unknownFields).toEqual([
      "spec.template.spec.containers[0].env[1].valueFrom.resourceFieldRef.divsor",
      "spec.template.spec.containers[0].imagePullPolcy",
      "spec.template.spec.containers[1].ports[0].containerPrt",
      "spec.template.spec.volumes[0].configMap.items[0].pth",
    ]);
    expect(formatStrictError(r.unknownFields.slice(1, 3))).toBe(
      'strict decoding error: unknown field "spec.template.spec.containers[0].imagePullPolcy", unknown field "spec.template.spec.containers[1].ports[0].containerPrt"',
    );
  });

  it("finds typos in affinity terms, tolerations, status and metadata", () => {
    const p = load("pod.yaml") as Obj & { spec: Obj & { affinity: Obj; tolerations: Obj[] }; status: Obj & { containerStatuses: Obj[] }; metadata: Obj };
    const req = (p.spec.affinity.nodeAffinity as Obj).requiredDuringSchedulingIgnoredDuringExecution as { nodeSelectorTerms: Obj[] };
    (req.nodeSelectorTerms[0].matchExpressions as Obj[])[0].operater = "In";
    const anti = (p.spec.affinity.podAntiAffinity as Obj).preferredDuringSchedulingIgnoredDuringExecution as Obj[];
    (anti[0].podAffinityTerm as Obj).topologyKeys = "x";
    p.spec.tolerations[1].effects = "NoSchedule";
    ((p.status.containerStatuses[0].lastState as Obj).terminated as Obj).exitcode = 1;
    (p.metadata.ownerReferences as Obj[])[0].controler = true;
    p.metadata.clusterName = "c1";
    p.specs = {};
    const r = check(p);
    expect(r.errors).toEqual([]);
    expect(r.unknownFields).toEqual([
      "metadata.ownerReferences[0].controler",
      "metadata.clusterName",
      "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operater",
      "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKeys",
      "spec.tolerations[1].effects",
      "status.containerStatuses[0].lastState.terminated.exitcode",
      "specs",
    ]);
  });

  it("is case-sensitive, like sigs.k8s.io/json", () => {
    const cm = { apiVersion: "v1", kind: "ConfigMap", metadata: { Name: "x" }, Data: { a: "b" } };
    expect(check(cm).unknownFields).toEqual(["metadata.Name", "Data"]);
  });

  it("the kubectl test's typo'd Deployment", () => {
    const typo = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "typo" },
      spec: { replcas: 3, selector: { matchLabels: { a: "b" } }, template: { metadata: { labels: { a: "b" } }, spec: { containers: [{ name: "c", image: "x" }] } } },
    };
    const r = check(typo);
    expect(formatStrictError(r.unknownFields)).toBe('strict decoding error: unknown field "spec.replcas"');
    expect((r.pruned as { spec: Obj }).spec.replcas).toBeUndefined();
  });
});

describe("type errors", () => {
  const cm = (extra: Obj): Obj => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" }, ...extra });
  const pod = (spec: Obj): Obj => ({ apiVersion: "v1", kind: "Pod", metadata: { name: "p" }, spec: { containers: [{ name: "c", image: "busybox" }], ...spec } });
  const dep = (ctr: Obj, spec: Obj = {}): Obj => ({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "d" },
    spec: { replicas: 1, selector: { matchLabels: { a: "b" } }, template: { metadata: { labels: { a: "b" } }, spec: { containers: [{ name: "c", image: "x", ...ctr }] } }, ...spec },
  });

  it("string for bool, with upstream's full message", () => {
    const r = check(cm({ immutable: "yes" }));
    expect(r.errors).toEqual(["json: cannot unmarshal string into Go struct field ConfigMap.immutable of type bool"]);
    expect(formatDecodeError("ConfigMap", "v1", r.errors)).toBe(
      'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal string into Go struct field ConfigMap.immutable of type bool',
    );
    expect(formatDecodeError("Deployment", "apps/v1", ["x"])).toBe('Deployment in version "v1" cannot be handled as a Deployment: x');
  });

  it("object for array", () => {
    expect(check(pod({ containers: { name: "c" } })).errors).toEqual([
      "json: cannot unmarshal object into Go struct field PodSpec.spec.containers of type []v1.Container",
    ]);
  });

  it("string for array, nested in a template", () => {
    expect(check(dep({ ports: "80", command: "sleep 1" })).errors).toEqual([
      "json: cannot unmarshal string into Go struct field Container.spec.template.spec.containers.ports of type []v1.ContainerPort",
      "json: cannot unmarshal string into Go struct field Container.spec.template.spec.containers.command of type []string",
    ]);
  });

  it("array for object", () => {
    const d = dep({});
    (d.spec as Obj).template = [];
    expect(check(d).errors).toEqual([
      "json: cannot unmarshal array into Go struct field DeploymentSpec.spec.template of type v1.PodTemplateSpec",
    ]);
    expect(check({ ...cm({}), metadata: [] }).errors).toEqual([
      "json: cannot unmarshal array into Go struct field ConfigMap.metadata of type v1.ObjectMeta",
    ]);
  });

  it("float and string for ints; out of range", () => {
    expect(check(dep({}, { replicas: 1.5 })).errors).toEqual([
      "json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32",
    ]);
    expect(check(pod({ terminationGracePeriodSeconds: "30" })).errors).toEqual([
      "json: cannot unmarshal string into Go struct field PodSpec.spec.terminationGracePeriodSeconds of type int64",
    ]);
    expect(check(dep({}, { replicas: 2 ** 31 })).errors).toEqual([
      "json: cannot unmarshal number 2147483648 into Go struct field DeploymentSpec.spec.replicas of type int32",
    ]);
    expect(check(pod({ terminationGracePeriodSeconds: 2 ** 40 })).errors).toEqual([]);
    expect(check(dep({ ports: [{ containerPort: 80.5 }] })).errors).toEqual([
      "json: cannot unmarshal number 80.5 into Go struct field ContainerPort.spec.template.spec.containers.ports.containerPort of type int32",
    ]);
  });

  it("wrong scalar types in maps and arrays", () => {
    expect(check(cm({ data: { k: 1 } })).errors).toEqual(["json: cannot unmarshal number into Go struct field ConfigMap.data of type string"]);
    expect(check(cm({ data: [1] })).errors).toEqual(["json: cannot unmarshal array into Go struct field ConfigMap.data of type map[string]string"]);
    expect(check(pod({ containers: ["c"] })).errors).toEqual([
      "json: cannot unmarshal string into Go struct field PodSpec.spec.containers of type v1.Container",
    ]);
    expect(check({ ...cm({}), metadata: { name: "c", labels: { a: true } } }).errors).toEqual([
      "json: cannot unmarshal bool into Go struct field ObjectMeta.metadata.labels of type string",
    ]);
  });

  it("a status that is not an object (status subresource bodies)", () => {
    expect(check({ ...pod({}), status: -1 }).errors).toEqual(["json: cannot unmarshal number into Go struct field Pod.status of type v1.PodStatus"]);
    const d = dep({});
    d.status = { replicas: {} };
    expect(check(d).errors).toEqual([
      "json: cannot unmarshal object into Go struct field DeploymentStatus.status.replicas of type int32",
    ]);
  });

  it("bad base64 in Secret.data and ConfigMap.binaryData", () => {
    const s = { apiVersion: "v1", kind: "Secret", metadata: { name: "s" }, data: { a: "not base64!" } };
    const r = check(s);
    expect(r.errors).toEqual(["illegal base64 data at input byte 3"]);
    expect(formatDecodeError("Secret", "v1", r.errors)).toBe('Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 3');
    expect(check(cm({ binaryData: { a: "!!!" } })).errors).toEqual(["illegal base64 data at input byte 0"]);
    expect(check({ ...s, data: { a: 42 } }).errors).toEqual(["json: cannot unmarshal number into Go struct field Secret.data of type []uint8"]);
    expect(check({ ...s, data: { a: "dg==", b: "", c: "YWJj" } }).errors).toEqual([]);
  });

  it("intOrString, quantity and time", () => {
    expect(check(dep({}, { strategy: { rollingUpdate: { maxSurge: true } } })).errors).toEqual([
      "json: cannot unmarshal bool into Go struct field RollingUpdateDeployment.spec.strategy.rollingUpdate.maxSurge of type intstr.IntOrString",
    ]);
    expect(check(dep({}, { strategy: { rollingUpdate: { maxSurge: 1.5, maxUnavailable: "25%" } } })).errors).toHaveLength(1);
    const q = check(dep({ resources: { limits: { cpu: "lots" }, requests: { memory: 64, cpu: "100m" } } })).errors;
    expect(q).toHaveLength(1);
    expect(q[0]).toMatch(/^quantities must match the regular expression .*spec\.template\.spec\.containers\[0\]\.resources\.limits\[cpu\]/);
    const t = check({ ...cm({}), metadata: { name: "c", creationTimestamp: "yesterday" } }).errors;
    expect(t).toHaveLength(1);
    expect(t[0]).toMatch(/^parsing time "yesterday"/);
    expect(check({ ...cm({}), metadata: { name: "c", creationTimestamp: 5 } }).errors[0]).toMatch(/cannot unmarshal number into Go value of type string/);
  });

  it("a body that is not an object", () => {
    expect(checkObject([], "v1", "ConfigMap", { strict: true }).errors).toEqual(["json: cannot unmarshal array into Go value of type v1.ConfigMap"]);
    expect(checkObject("x", "v1", "ConfigMap", { strict: true }).errors).toEqual(["json: cannot unmarshal string into Go value of type v1.ConfigMap"]);
  });

  it("apiVersion and kind must be strings", () => {
    expect(check({ ...cm({}), kind: "ConfigMap", apiVersion: "v1" }).errors).toEqual([]);
    expect(checkObject({ ...cm({}), kind: 42 }, "v1", "ConfigMap", { strict: true }).errors).toEqual([
      "json: cannot unmarshal number into Go struct field ConfigMap.kind of type string",
    ]);
  });

  it("every type-confused body of the fuzz suite is an error", () => {
    const bodies: Obj[] = [
      cm({ binaryData: { a: "!!!" } }),
      cm({ immutable: "yes" }),
      dep({ ports: "80" }),
      dep({ command: "sleep 1" }),
      pod({ containers: { name: "c" } }),
      pod({ terminationGracePeriodSeconds: "30" }),
      { apiVersion: "v1", kind: "Secret", metadata: { name: "tc-7" }, data: { a: "not base64!" } },
      { ...pod({}), status: -1 },
      { ...dep({}), status: { replicas: {} } },
      cm({ data: { k: 1 } }),
      cm({ data: [1] }),
      { ...cm({}), metadata: { name: "target", managedFields: 7 } },
      { ...cm({}), metadata: null, data: { a: [1, 2] } },
    ];
    for (const b of bodies) expect(check(b).errors.length, JSON.stringify(b)).toBeGreaterThan(0);
  });
});

describe("null", () => {
  it("is accepted for every field and kept; an element of a list of objects becomes an empty object, as Go's zero value", () => {
    const p = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p", labels: null, annotations: { a: null }, creationTimestamp: null, ownerReferences: [null] },
      spec: {
        containers: [{ name: "c", image: null, ports: null, resources: { limits: null, requests: { cpu: null } }, livenessProbe: { httpGet: { port: null } } }, null],
        terminationGracePeriodSeconds: null,
        nodeSelector: null,
        affinity: null,
        tolerations: [null],
      },
      status: null,
    };
    const r = check(p);
    expect(r.errors).toEqual([]);
    expect(r.unknownFields).toEqual([]);
    const zeroed = structuredClone(p);
    zeroed.metadata.ownerReferences = [{}] as never;
    zeroed.spec.containers[1] = {} as never;
    zeroed.spec.tolerations = [{}] as never;
    expect(r.pruned).toEqual(zeroed);
    expect(check({ apiVersion: "v1", kind: "Secret", metadata: { name: "s" }, data: { a: null }, immutable: null }).errors).toEqual([]);
    expect(checkObject(null, "v1", "ConfigMap", { strict: true }).errors).toEqual([]);
  });
});

describe("pruning", () => {
  it("removes exactly the unknown fields and never mutates the input", () => {
    const d = load("deployment.yaml") as Obj & { spec: Obj & { template: { spec: Obj & { containers: Obj[] } } } };
    const expected = clone(d);
    d.bogus = { deep: [1, 2, 3] };
    d.spec.replcas = 9;
    d.spec.template.spec.containers[0].imagePullPolcy = "Never";
    d.spec.template.spec.containers[1].extra = null;
    (d.metadata as Obj).extra = "x";
    const input = deepFreeze(clone(d));
    const r = checkObject(input, "apps/v1", "Deployment", { strict: false });
    // In document order, as upstream reports them.
    expect(r.unknownFields).toEqual([
      "metadata.extra",
      "spec.template.spec.containers[0].imagePullPolcy",
      "spec.template.spec.containers[1].extra",
      "spec.replcas",
      "bogus",
    ]);
    expect(r.pruned).toEqual(expected);
    expect(input).toEqual(d);
    // A real copy, sharing nothing with the input (free-form managedFields included).
    const pr = r.pruned as typeof d;
    expect(pr.spec).not.toBe(input.spec);
    const mf = (pr.metadata as { managedFields: Obj[] }).managedFields[0];
    expect(mf.fieldsV1).toEqual(((input.metadata as { managedFields: Obj[] }).managedFields[0]).fieldsV1);
    expect(mf.fieldsV1).not.toBe(((input.metadata as { managedFields: Obj[] }).managedFields[0]).fieldsV1);
    expect(Object.isFrozen(pr.spec)).toBe(false);
  });

  it("keeps values with type errors (the caller rejects the body anyway)", () => {
    const r = check({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" }, immutable: "yes", x: 1 });
    expect(r.pruned).toEqual({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" }, immutable: "yes" });
  });

  it("treats __proto__ as an ordinary unknown key", () => {
    const o = JSON.parse('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"__proto__":{"polluted":1},"data":{"__proto__":"v"}}') as Obj;
    const r = check(o);
    expect(r.unknownFields).toEqual(["__proto__"]);
    const pruned = r.pruned as Obj & { data: Obj };
    expect(Object.getPrototypeOf(pruned)).toBe(Object.prototype);
    expect(Object.getPrototypeOf(pruned.data)).toBe(Object.prototype);
    expect(Object.hasOwn(pruned.data, "__proto__")).toBe(true);
    expect(({} as Obj).polluted).toBeUndefined();
    // Inherited names are not fields.
    expect(check({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" }, constructor: 1, toString: 2 }).unknownFields).toEqual(["constructor", "toString"]);
  });

  it("copies deeply nested free-form values without exhausting the stack", () => {
    let deep: unknown = {};
    for (let i = 0; i < 100_000; i++) deep = { [`f:${i}`]: deep };
    const o = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c", managedFields: [{ manager: "m", fieldsType: "FieldsV1", fieldsV1: deep }] } };
    const r = check(o);
    expect(r.errors).toEqual([]);
    const copied = (r.pruned as { metadata: { managedFields: { fieldsV1: unknown }[] } }).metadata.managedFields[0].fieldsV1;
    // (plain comparisons: vitest's matchers would walk the 100k-deep value recursively)
    expect(copied === deep).toBe(false);
    expect(Object.keys(copied as Obj)).toEqual(["f:99999"]);
  });
});

describe("fixtures from the integration suites", () => {
  // Copied from test/fuzz.test.ts (its valid templates) and test/kubectl.test.ts.
  const container = {
    name: "c",
    image: "busybox",
    command: ["sleep", "3600"],
    ports: [{ containerPort: 80, protocol: "TCP" }],
    env: [{ name: "A", value: "1" }],
    resources: { limits: { cpu: "100m", memory: "64Mi" } },
  };
  const podSpec = { containers: [container] };
  const NS = "fuzz";
  const meta = (name: string): Obj => ({ name, namespace: NS, labels: { app: "fz" } });
  const T: Obj[] = [
    { apiVersion: "v1", kind: "ConfigMap", metadata: meta("fz-cm"), data: { k: "v", other: "x" } },
    { apiVersion: "v1", kind: "Secret", metadata: meta("fz-secret"), type: "Opaque", data: { k: "dg==" } },
    { apiVersion: "v1", kind: "Pod", metadata: meta("fz-pod"), spec: podSpec },
    { apiVersion: "v1", kind: "Pod", metadata: meta("p1"), spec: { ...podSpec, nodeName: "n1" } },
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: meta("fz-deploy"),
      spec: { replicas: 1, selector: { matchLabels: { app: "fz" } }, template: { metadata: { labels: { app: "fz" } }, spec: podSpec } },
    },
    {
      apiVersion: "apps/v1",
      kind: "ReplicaSet",
      metadata: meta("fz-rs"),
      spec: { replicas: 1, selector: { matchLabels: { app: "fz" } }, template: { metadata: { labels: { app: "fz" } }, spec: podSpec } },
    },
    { apiVersion: "batch/v1", kind: "Job", metadata: meta("fz-job"), spec: { template: { spec: { ...podSpec, restartPolicy: "Never" } } } },
    { apiVersion: "v1", kind: "Service", metadata: meta("fz-svc"), spec: { selector: { app: "fz" }, ports: [{ port: 80, targetPort: 8080 }] } },
    { apiVersion: "v1", kind: "Node", metadata: { name: "fz-node", labels: { zone: "a" } }, spec: { unschedulable: false } },
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "fz-ns" } },
    { apiVersion: "autoscaling/v1", kind: "Scale", metadata: { name: "d1", namespace: NS }, spec: { replicas: 2 } },
    { apiVersion: "v1", kind: "Binding", metadata: { name: "p1", namespace: NS }, target: { apiVersion: "v1", kind: "Node", name: "n1" } },
    { apiVersion: "policy/v1", kind: "Eviction", metadata: { name: "p1", namespace: NS }, deleteOptions: { gracePeriodSeconds: 0 } },
    {
      apiVersion: "networking.k8s.io/v1",
      kind: "Ingress",
      metadata: meta("fz-ing"),
      spec: { rules: [{ host: "a.example", http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "svc1", port: { number: 80 } } } }] } }] },
    },
    { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: meta("fz-lease"), spec: { holderIdentity: "me", leaseDurationSeconds: 15 } },
    { apiVersion: "v1", kind: "Event", metadata: meta("fz-ev"), involvedObject: { kind: "Pod", name: "p1", namespace: NS }, reason: "R", message: "m", type: "Normal" },
    { apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: meta("fz-pvc"), spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } } },
    { apiVersion: "v1", kind: "DeleteOptions", propagationPolicy: "Background", gracePeriodSeconds: 0 },
    { apiVersion: "v1", kind: "Namespace", metadata: { name: NS }, spec: { finalizers: ["kubernetes"] } },
    { apiVersion: "v1", kind: "Node", metadata: { name: "worker-1", labels: { "kubernetes.io/hostname": "worker-1" } }, spec: {} },
    { apiVersion: "v1", kind: "Pod", metadata: { name: "bound", namespace: "default" }, spec: { nodeName: "worker-1", containers: [{ name: "c", image: "busybox" }] } },
    { apiVersion: "v1", kind: "List", items: [] },
  ];
  it("all decode cleanly", () => {
    for (const o of T) {
      if (o.kind === "List") continue; // kubectl splits kind: List client side
      const r = check(o);
      expect({ kind: o.kind, errors: r.errors, unknown: r.unknownFields }).toEqual({ kind: o.kind, errors: [], unknown: [] });
      expect(r.pruned).toEqual(o);
    }
  });
  it("a server-generated timestamp (second precision) is a valid MicroTime too", () => {
    const lease = { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name: "l" }, spec: { renewTime: "2024-01-02T03:04:05Z" } };
    expect(check(lease).errors).toEqual([]);
  });
});

describe("objects recorded from real clients (apiserver/protobuf/testdata)", () => {
  const dir = join(here, "..", "..", "apiserver", "protobuf", "testdata");
  const files = readdirSync(dir).filter((f) => f.endsWith(".json"));
  it("decode cleanly when kubelab serves their kind", () => {
    let checked = 0;
    for (const f of files) {
      const o = JSON.parse(readFileSync(join(dir, f), "utf8")) as Obj;
      if (!hasSchema(o.apiVersion as string, o.kind as string)) continue; // e.g. batch/v1 CronJob
      const r = check(o);
      expect({ f, errors: r.errors, unknown: r.unknownFields }).toEqual({ f, errors: [], unknown: [] });
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(10);
  });
});

describe("helpers", () => {
  it("base64 offsets as Go's StdEncoding reports them", () => {
    expect(base64ErrorOffset("")).toBe(-1);
    expect(base64ErrorOffset("dg==")).toBe(-1);
    expect(base64ErrorOffset("YWJj")).toBe(-1);
    expect(base64ErrorOffset("YWJj\nZGVm")).toBe(-1);
    expect(base64ErrorOffset("not base64!")).toBe(3);
    expect(base64ErrorOffset("YQ")).toBe(0);
    expect(base64ErrorOffset("YWJjZA")).toBe(4);
    expect(base64ErrorOffset("dg==dg==")).toBe(4);
    expect(base64ErrorOffset("d===")).toBe(1);
    expect(base64ErrorOffset("YWJ=")).toBe(-1);
    expect(base64ErrorOffset("YW=j")).toBe(3);
    expect(base64ErrorOffset("dGVzdA-_")).toBe(6);
  });
  it("RFC 3339", () => {
    expect(isRFC3339("2024-05-01T10:00:00Z")).toBe(true);
    expect(isRFC3339("2024-05-01T10:00:00.123456+02:00")).toBe(true);
    expect(isRFC3339("2024-02-30T10:00:00Z")).toBe(false);
    expect(isRFC3339("2024-05-01 10:00:00Z")).toBe(false);
    expect(isRFC3339("2024-05-01T10:00:00")).toBe(false);
    expect(isRFC3339("")).toBe(false);
  });
  it("formatStrictError quotes like Go's %q", () => {
    expect(formatStrictError(["spec.a", "spec.b"])).toBe('strict decoding error: unknown field "spec.a", unknown field "spec.b"');
    expect(formatStrictError(['metadata.labels"x'])).toBe('strict decoding error: unknown field "metadata.labels\\"x"');
  });
});
