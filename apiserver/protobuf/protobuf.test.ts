import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { describe, expect, it } from "vitest";

import { RESOURCES, groupVersion } from "../../api/resources.ts";
import { ControllerRevision, Deployment } from "../../proto/gen/k8s/api/apps/v1/generated.ts";
import { ConfigMap, Namespace, Secret } from "../../proto/gen/k8s/api/core/v1/generated.ts";
import { Lease } from "../../proto/gen/k8s/api/coordination/v1/generated.ts";
import { IngressClass } from "../../proto/gen/k8s/api/networking/v1/generated.ts";
import { messageTypeRegistry } from "../../proto/gen/k8s/all.ts";
import { SelfSubjectAccessReview, SubjectAccessReview } from "../../proto/gen/k8s/api/authorization/v1/generated.ts";
import { CertificateSigningRequest } from "../../proto/gen/k8s/api/certificates/v1/generated.ts";
import { ClusterRole, RoleBinding } from "../../proto/gen/k8s/api/rbac/v1/generated.ts";
import { GO_FIELDS, GO_JSON_MARSHALERS, GO_NAMED_SLICES } from "../../proto/k8s/gofields.ts";
import {
  CUSTOM_JSON_MESSAGES,
  MISSING_PROTOBUF_DECODERS,
  ProtobufDecodeError,
  SUPPORTED_PROTOBUF_KINDS,
  decodeProtobufObject,
  isProtobufContentType,
  jsonField,
  missingProtobufDecoders,
} from "./index.ts";
import { SUBRESOURCE_BODIES, protoMessageName, protoRoots, protobufKinds } from "./kinds.ts";

const here = dirname(fileURLToPath(import.meta.url));
const testdata = join(here, "testdata");
const protoDir = join(here, "..", "..", "proto", "k8s");
const MAGIC = Buffer.from("k8s\0", "latin1");

function fixture(name: string): Buffer {
  return readFileSync(join(testdata, name));
}

/** Wraps an object's protobuf bytes in the Kubernetes envelope, as client-go does (all four fields written). */
function envelope(apiVersion: string, kind: string, raw: Uint8Array, contentEncoding = ""): Buffer {
  const w = new BinaryWriter();
  w.uint32((1 << 3) | 2).fork().uint32((1 << 3) | 2).string(apiVersion).uint32((2 << 3) | 2).string(kind).join();
  w.uint32((2 << 3) | 2).bytes(raw);
  w.uint32((3 << 3) | 2).string(contentEncoding);
  w.uint32((4 << 3) | 2).string("");
  return Buffer.concat([MAGIC, w.finish()]);
}

/** Field helpers for hand-encoding what Go writes but ts-proto's encoder drops (zero-valued proto2 optionals). */
const varintField = (field: number, value: number): Uint8Array => new BinaryWriter().uint32(field << 3).int64(value).finish();
const bytesField = (field: number, ...parts: Uint8Array[]): Uint8Array =>
  new BinaryWriter().uint32((field << 3) | 2).bytes(Buffer.concat(parts)).finish();
const stringField = (field: number, value: string): Uint8Array => new BinaryWriter().uint32((field << 3) | 2).string(value).finish();

function expectDecodeError(body: Buffer, message?: RegExp): ProtobufDecodeError {
  let caught: unknown;
  try {
    decodeProtobufObject(body);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ProtobufDecodeError);
  const err = caught as ProtobufDecodeError;
  expect(err.name).toBe("ProtobufDecodeError");
  if (message) expect(err.message).toMatch(message);
  return err;
}

describe("isProtobufContentType", () => {
  it("matches the Kubernetes protobuf media type, ignoring parameters and case", () => {
    expect(isProtobufContentType("application/vnd.kubernetes.protobuf")).toBe(true);
    expect(isProtobufContentType("Application/VND.Kubernetes.Protobuf; charset=binary")).toBe(true);
    expect(isProtobufContentType("application/json")).toBe(false);
    expect(isProtobufContentType("application/vnd.kubernetes.protobuf+json")).toBe(false);
    expect(isProtobufContentType("")).toBe(false);
  });
});

describe("kubectl 1.32 fixtures (testdata/record.ts)", () => {
  // Each <name>.bin is the body `kubectl create ...` POSTed; <name>.json is what the same command prints with
  // `--dry-run=client -o json`, i.e. the Go object serialised as JSON (what kubectl 1.31 would have POSTed).
  // They are equal field for field: `creationTimestamp: null`, `status: {}`, `strategy: {}`, `resources: {}`
  // are not added locally by -o json, they are Go value structs that the protobuf body carries as well
  // (Go's protobuf encoder writes every non-pointer field), so the decoder reproduces them.
  const names = readdirSync(testdata)
    .filter((f) => f.endsWith(".json"))
    .map((f) => f.slice(0, -".json".length));

  it("has captures for every required kubectl create command", () => {
    const required = ["namespace", "configmap", "secret", "secret-docker-registry", "secret-tls", "deployment", "service",
      "service-nodeport", "service-loadbalancer", "service-externalname", "job", "cronjob", "serviceaccount", "ingress",
      "priorityclass", "poddisruptionbudget", "quota"];
    for (const name of required) {
      expect(names).toContain(name);
    }
  });

  for (const name of names) {
    it(`${name}.bin decodes to kubectl's client-side JSON`, () => {
      const body = fixture(`${name}.bin`);
      expect(isProtobufContentType("application/vnd.kubernetes.protobuf")).toBe(true);
      expect(body.subarray(0, 4)).toEqual(MAGIC);
      const want: unknown = JSON.parse(fixture(`${name}.json`).toString("utf8"));
      expect(decodeProtobufObject(body)).toStrictEqual(want);
    });
  }

  it("deployment: --image=nginx --port=80 --replicas=3", () => {
    const obj = decodeProtobufObject(fixture("deployment.bin"));
    expect(obj).toMatchObject({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "web", labels: { app: "web" } },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: "web" } },
        template: { spec: { containers: [{ name: "nginx", image: "nginx", ports: [{ containerPort: 80 }] }] } },
      },
    });
  });

  it("service: --tcp=80:8080 gives an integer targetPort, --tcp=80:http a string one", () => {
    expect(decodeProtobufObject(fixture("service.bin"))).toMatchObject({
      spec: { type: "ClusterIP", ports: [{ name: "80-8080", protocol: "TCP", port: 80, targetPort: 8080 }] },
    });
    expect(decodeProtobufObject(fixture("service-nodeport.bin"))).toMatchObject({
      spec: { type: "NodePort", ports: [{ port: 80, targetPort: "http", nodePort: 30080 }] },
    });
  });

  it("secret: data bytes become base64 strings", () => {
    const obj = decodeProtobufObject(fixture("secret.bin"));
    expect(obj.data).toStrictEqual({ a: Buffer.from("b").toString("base64"), password: Buffer.from("s3cr3t").toString("base64") });
  });

  it("job: command after -- and restartPolicy Never", () => {
    expect(decodeProtobufObject(fixture("job.bin"))).toMatchObject({
      apiVersion: "batch/v1",
      kind: "Job",
      spec: { template: { spec: { restartPolicy: "Never", containers: [{ name: "j1", image: "busybox", command: ["echo", "hi"] }] } } },
    });
  });

  it("priorityclass, pdb, quota, ingress: the fields kubectl set", () => {
    const pc = decodeProtobufObject(fixture("priorityclass.bin"));
    expect(pc).toMatchObject({ apiVersion: "scheduling.k8s.io/v1", kind: "PriorityClass", value: 1000, description: "high priority", preemptionPolicy: "Never" });
    expect(pc).not.toHaveProperty("globalDefault"); // bool,omitempty (Go wrote the false on the wire)
    expect(decodeProtobufObject(fixture("poddisruptionbudget.bin"))).toMatchObject({
      spec: { minAvailable: "50%", selector: { matchLabels: { app: "web" } } },
    });
    expect(decodeProtobufObject(fixture("poddisruptionbudget-max.bin"))).toMatchObject({ spec: { maxUnavailable: 0 } }); // *IntOrString
    expect(decodeProtobufObject(fixture("quota.bin"))).toMatchObject({
      spec: { hard: { pods: "3", "requests.cpu": "1", "limits.memory": "2Gi" }, scopes: ["NotTerminating"] },
    });
    expect(decodeProtobufObject(fixture("ingress.bin"))).toMatchObject({
      metadata: { annotations: { a: "b" } },
      spec: {
        ingressClassName: "nginx",
        defaultBackend: { service: { name: "defsvc", port: { name: "http" } } },
        rules: [{ host: "foo.com", http: { paths: [{ path: "/bar", pathType: "Prefix", backend: { service: { name: "svc1", port: { number: 8080 } } } }] } }],
        tls: [{ hosts: ["foo.com"], secretName: "my-cert" }],
      },
    });
  });

  it("drain's DELETE fallback body is a DeleteOptions (pointer field kept)", () => {
    // `kubectl drain n1 --force --grace-period=30` without pods/eviction in discovery.
    expect(decodeProtobufObject(fixture("deleteoptions.bin"))).toStrictEqual({
      apiVersion: "v1",
      kind: "DeleteOptions",
      gracePeriodSeconds: 30,
    });
  });
});

/** Every message of the .proto files under proto/k8s/: full name -> field names (upstream generated.proto is flat). */
function protoMessages(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".proto")) {
        const text = readFileSync(p, "utf8").replace(/\/\/.*$/gm, "");
        const pkg = /package ([\w.]+);/.exec(text)?.[1] ?? "";
        for (const m of text.matchAll(/message (\w+) \{([^}]*)\}/g)) {
          const fields = [...(m[2] ?? "").matchAll(/(\w+) = \d+;/g)].map((f) => f[1] ?? "");
          out.set(`${pkg}.${m[1]}`, fields);
        }
      }
    }
  };
  walk(protoDir);
  return out;
}

describe("every served kind has a protobuf decoder (derived from api/resources.ts)", () => {
  it("no kind of the catalogue, and no subresource body, lacks a decoder", () => {
    expect(MISSING_PROTOBUF_DECODERS).toStrictEqual([]);
    for (const res of RESOURCES) expect(SUPPORTED_PROTOBUF_KINDS).toContain(`${groupVersion(res)}/${res.kind}`);
    for (const body of ["autoscaling/v1/Scale", "v1/Binding", "policy/v1/Eviction", "*/DeleteOptions"]) {
      expect(SUPPORTED_PROTOBUF_KINDS).toContain(body);
    }
  });

  it("a kind added to the catalogue without regenerating proto/ is reported missing", () => {
    const widget = { ...RESOURCES[0]!, group: "example.com", kind: "Widget", resource: "widgets", subresources: ["status"] };
    expect(missingProtobufDecoders([...RESOURCES, widget])).toStrictEqual(["example.com/v1/Widget"]);
    const sub = { ...RESOURCES[0]!, subresources: ["frobnicate"] };
    expect(() => protobufKinds([sub])).toThrow(/namespaces\/frobnicate has no entry in SUBRESOURCE_BODIES/);
  });

  it("every subresource of the catalogue has a declared body", () => {
    for (const res of RESOURCES) for (const sub of res.subresources) expect(Object.keys(SUBRESOURCE_BODIES)).toContain(sub);
  });

  for (const { apiVersion, kind } of protobufKinds()) {
    it(`${apiVersion} ${kind}: a named object decodes through the envelope`, () => {
      const codec = messageTypeRegistry.get(protoMessageName(apiVersion, kind));
      expect(codec).toBeDefined();
      const meta = new BinaryWriter().uint32((1 << 3) | 2).fork().uint32((1 << 3) | 2).string("x1").join().finish();
      expect(decodeProtobufObject(envelope(apiVersion, kind, meta))).toStrictEqual({ apiVersion, kind, metadata: { name: "x1" } });
    });
  }

  it("proto/k8s/ holds exactly the messages reachable from the roots, each registered", () => {
    const messages = protoMessages();
    for (const root of protoRoots()) expect(messages.has(root), root).toBe(true);
    for (const name of messages.keys()) expect(messageTypeRegistry.has(name), name).toBe(true);
  });

  it("the Go JSON facts cover every field of every message (proto/k8s/gofields.ts)", () => {
    const messages = protoMessages();
    const custom = new Set(GO_JSON_MARSHALERS);
    for (const [name, fields] of messages) {
      if (custom.has(name)) continue;
      // named slices (ExtraValue) have no struct: their JSON is the items list
      if (GO_NAMED_SLICES.includes(name)) {
        expect([...fields], name).toStrictEqual(["items"]);
        continue;
      }
      const facts = GO_FIELDS[name];
      expect(facts, `${name} has no entry in GO_FIELDS`).toBeDefined();
      expect(Object.keys(facts ?? {}).sort(), name).toStrictEqual([...fields].sort());
    }
    expect(Object.keys(GO_FIELDS).filter((n) => !messages.has(n))).toStrictEqual([]);
    // every Go type with its own MarshalJSON is converted by hand (runtime.Unknown is the envelope itself)
    expect([...custom].filter((n) => n !== "k8s.io.apimachinery.pkg.runtime.Unknown").sort()).toStrictEqual([...CUSTOM_JSON_MESSAGES].sort());
  });

  it("derives pointer / omitempty / inline / json name from the Go field", () => {
    expect(jsonField("*int32", "replicas,omitempty")).toMatchObject({ name: "replicas", emitZero: true, inline: false });
    expect(jsonField("int32", "replicas")).toMatchObject({ name: "replicas", emitZero: true });
    expect(jsonField("int32", "readyReplicas,omitempty")).toMatchObject({ name: "readyReplicas", emitZero: false });
    expect(jsonField("VolumeSource", ",inline")).toMatchObject({ name: "", inline: true });
    expect(jsonField("[]byte", "-")).toMatchObject({ skip: true });
    expect(GO_FIELDS["k8s.io.api.apps.v1.StatefulSetSpec"]?.replicas).toStrictEqual(["*int32", "replicas,omitempty"]);
    expect(GO_FIELDS["k8s.io.api.policy.v1.PodDisruptionBudgetStatus"]?.disruptionsAllowed).toStrictEqual(["int32", "disruptionsAllowed"]);
    expect(GO_FIELDS["k8s.io.api.scheduling.v1.PriorityClass"]?.value).toStrictEqual(["int32", "value"]);
  });
});

describe("conversion rules", () => {
  it("maps Time, Quantity, IntOrString, inline structs, pointers and zero values like Go's JSON encoder", () => {
    const raw = Deployment.encode(Deployment.fromPartial({
      metadata: {
        name: "web",
        namespace: "",
        generation: 0,
        creationTimestamp: { seconds: 1700000000, nanos: 5 },
        labels: { app: "web" },
        annotations: { note: "" },
        ownerReferences: [
          {
            apiVersion: "v1",
            kind: "ConfigMap",
            name: "owner",
            uid: "u1",
            controller: true,
          },
        ],
        finalizers: [],
      },
      spec: {
        replicas: 2,
        revisionHistoryLimit: 5,
        strategy: {
          type: "RollingUpdate",
          rollingUpdate: {
            maxSurge: { type: 1, strVal: "25%" },
            maxUnavailable: { type: 0, intVal: 0 },
          },
        },
        template: {
          spec: {
            volumes: [
              {
                name: "cfg",
                volumeSource: {
                  configMap: {
                    localObjectReference: { name: "app-config" },
                    items: [],
                    defaultMode: 420,
                  },
                },
              },
              {
                name: "scratch",
                volumeSource: {
                  emptyDir: { medium: "" },
                },
              },
            ],
            initContainers: [],
            containers: [
              {
                name: "app",
                image: "nginx",
                command: [],
                args: ["-g", "daemon off;"],
                ports: [],
                envFrom: [],
                env: [
                  {
                    name: "PASSWORD",
                    value: "",
                    valueFrom: {
                      secretKeyRef: {
                        localObjectReference: { name: "db" },
                        key: "password",
                      },
                    },
                  },
                ],
                resources: {
                  limits: {
                    cpu: { string: "500m" },
                    memory: { string: "128Mi" },
                  },
                  requests: {},
                  claims: [],
                },
                volumeMounts: [],
                stdin: false,
              },
            ],
            nodeSelector: {},
            terminationGracePeriodSeconds: 30,
            imagePullSecrets: [],
            tolerations: [
              {
                key: "k",
                operator: "Exists",
                effect: "NoSchedule",
                tolerationSeconds: 60,
              },
            ],
          },
        },
      },
    })).finish();

    expect(decodeProtobufObject(envelope("apps/v1", "Deployment", raw))).toStrictEqual({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: {
        name: "web",
        creationTimestamp: "2023-11-14T22:13:20Z",
        labels: { app: "web" },
        annotations: { note: "" },
        ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: "u1", controller: true }],
      },
      spec: {
        replicas: 2,
        revisionHistoryLimit: 5,
        strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: "25%", maxUnavailable: 0 } },
        template: {
          spec: {
            volumes: [
              { name: "cfg", configMap: { name: "app-config", defaultMode: 420 } },
              { name: "scratch", emptyDir: {} },
            ],
            containers: [
              {
                name: "app",
                image: "nginx",
                args: ["-g", "daemon off;"],
                env: [{ name: "PASSWORD", valueFrom: { secretKeyRef: { name: "db", key: "password" } } }],
                resources: { limits: { cpu: "500m", memory: "128Mi" } },
              },
            ],
            terminationGracePeriodSeconds: 30,
            tolerations: [{ key: "k", operator: "Exists", effect: "NoSchedule", tolerationSeconds: 60 }],
          },
        },
      },
    });
  });

  it("base64-encodes binaryData", () => {
    const raw = ConfigMap.encode(ConfigMap.fromPartial({ metadata: { name: "bin" }, binaryData: { blob: Buffer.from([0, 1, 2, 255]) } })).finish();
    expect(decodeProtobufObject(envelope("v1", "ConfigMap", raw))).toStrictEqual({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "bin" },
      binaryData: { blob: "AAEC/w==" },
    });
  });

  it("keeps zero values of Go pointer / non-omitempty fields, drops zero omitempty ones", () => {
    const ownerRef = bytesField(13, stringField(5, "v1"), stringField(1, "ConfigMap"), stringField(3, "o"), stringField(4, "u"), varintField(6, 0));
    const toleration = bytesField(22, stringField(1, ""), stringField(2, "Exists"), varintField(5, 0));
    const container = bytesField(2, stringField(1, ""), stringField(2, "nginx"), bytesField(6, stringField(1, ""), varintField(2, 0), varintField(3, 0)));
    const podSpec = bytesField(2, container, toleration, varintField(4, 0), varintField(11, 0), stringField(3, ""));
    const template = bytesField(3, bytesField(1, bytesField(8)), podSpec);
    const spec = bytesField(2, varintField(1, 0), varintField(5, 0), varintField(7, 0), template, bytesField(4, stringField(1, "")));
    const raw = Buffer.concat([bytesField(1, stringField(1, "web"), stringField(3, ""), varintField(7, 0), bytesField(8), ownerRef), spec]);
    expect(decodeProtobufObject(envelope("apps/v1", "Deployment", raw))).toStrictEqual({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: {
        name: "web",
        creationTimestamp: null,
        ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "o", uid: "u", controller: false }],
      },
      spec: {
        replicas: 0, // *int32
        template: {
          metadata: { creationTimestamp: null },
          spec: {
            containers: [{ name: "", image: "nginx", ports: [{ containerPort: 0 }] }], // name/containerPort: no omitempty
            tolerations: [{ operator: "Exists", tolerationSeconds: 0 }], // *int64
            terminationGracePeriodSeconds: 0, // *int64
          },
        },
        strategy: {},
      },
    });
    const cm = Buffer.concat([bytesField(1, stringField(1, "c")), varintField(4, 0)]);
    expect(decodeProtobufObject(envelope("v1", "ConfigMap", cm))).toStrictEqual({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "c" },
      immutable: false, // *bool
    });
  });

  it("accepts DeleteOptions under any group version", () => {
    const raw = new BinaryWriter().uint32((4 << 3) | 2).string("Foreground").finish();
    expect(decodeProtobufObject(envelope("apps/v1", "DeleteOptions", raw))).toStrictEqual({
      apiVersion: "apps/v1",
      kind: "DeleteOptions",
      propagationPolicy: "Foreground",
    });
  });

  it("drops fields it does not know, whatever they carry, like upstream's decoder", () => {
    const ns = Namespace.encode(Namespace.fromPartial({ metadata: { name: "ns" } })).finish();
    // fields 99/98 do not exist in v1.Namespace: skipped (upstream's generated Unmarshal skips them too,
    // and fieldValidation=Strict does not apply to protobuf), zero or not
    const unknown = new BinaryWriter().uint32((99 << 3) | 2).string("x").uint32((98 << 3) | 0).int32(7).finish();
    expect(decodeProtobufObject(envelope("v1", "Namespace", Buffer.concat([ns, unknown])))).toStrictEqual({
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: "ns" },
    });
    // nested: PodSpec field 999 inside a Deployment; the known sibling (nodeName, 10) is kept
    const podSpec = new BinaryWriter().uint32((2 << 3) | 2).fork()
      .uint32((999 << 3) | 2).fork().uint32((1 << 3) | 2).string("x").join()
      .uint32((10 << 3) | 2).string("n1")
      .join().finish(); // PodTemplateSpec.spec
    const deploySpec = new BinaryWriter().uint32((3 << 3) | 2).bytes(podSpec).finish(); // DeploymentSpec.template
    const deploy = new BinaryWriter().uint32((2 << 3) | 2).bytes(deploySpec).finish(); // Deployment.spec
    expect(decodeProtobufObject(envelope("apps/v1", "Deployment", deploy))).toStrictEqual({
      apiVersion: "apps/v1",
      kind: "Deployment",
      spec: { template: { spec: { nodeName: "n1" } } },
    });
  });

  it("emits a Secret without data as metadata only", () => {
    const raw = Secret.encode(Secret.fromPartial({ metadata: { name: "s" }, type: "Opaque" })).finish();
    expect(decodeProtobufObject(envelope("v1", "Secret", raw))).toStrictEqual({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "s" },
      type: "Opaque",
    });
  });

  it("decodes the security kinds kubectl sends: SelfSubjectAccessReview, RBAC objects, a CSR approval", () => {
    // kubectl auth can-i get pods -n ns
    const ssar = SelfSubjectAccessReview.encode(SelfSubjectAccessReview.fromPartial({
      metadata: {},
      spec: { resourceAttributes: { namespace: "ns", verb: "get", resource: "pods" } },
      status: {},
    })).finish();
    expect(decodeProtobufObject(envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview", ssar))).toStrictEqual({
      apiVersion: "authorization.k8s.io/v1",
      kind: "SelfSubjectAccessReview",
      metadata: {},
      spec: { resourceAttributes: { namespace: "ns", verb: "get", resource: "pods" } },
      // ts-proto's encoder drops allowed=false (Go's would write it); absent on the wire, absent here
      status: {},
    });
    const rb = RoleBinding.encode(RoleBinding.fromPartial({
      metadata: { name: "rb", namespace: "ns" },
      subjects: [{ kind: "User", apiGroup: "rbac.authorization.k8s.io", name: "jane" }],
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "pod-reader" },
    })).finish();
    expect(decodeProtobufObject(envelope("rbac.authorization.k8s.io/v1", "RoleBinding", rb))).toStrictEqual({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "rb", namespace: "ns" },
      subjects: [{ kind: "User", apiGroup: "rbac.authorization.k8s.io", name: "jane" }],
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "pod-reader" },
    });
    const cr = ClusterRole.encode(ClusterRole.fromPartial({
      metadata: { name: "agg" },
      aggregationRule: { clusterRoleSelectors: [{ matchLabels: { "rbac.example.com/aggregate-to-monitoring": "true" } }] },
    })).finish();
    expect(decodeProtobufObject(envelope("rbac.authorization.k8s.io/v1", "ClusterRole", cr))).toStrictEqual({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: "agg" },
      aggregationRule: { clusterRoleSelectors: [{ matchLabels: { "rbac.example.com/aggregate-to-monitoring": "true" } }] },
    });
    const csr = CertificateSigningRequest.encode(CertificateSigningRequest.fromPartial({
      metadata: { name: "c" },
      spec: { request: Buffer.from("PEM"), signerName: "kubernetes.io/kube-apiserver-client", usages: ["client auth"] },
      status: { conditions: [{ type: "Approved", status: "True", reason: "KubectlApprove", lastUpdateTime: { seconds: 1700000000, nanos: 0 } }] },
    })).finish();
    expect(decodeProtobufObject(envelope("certificates.k8s.io/v1", "CertificateSigningRequest", csr))).toStrictEqual({
      apiVersion: "certificates.k8s.io/v1",
      kind: "CertificateSigningRequest",
      metadata: { name: "c" },
      spec: { request: Buffer.from("PEM").toString("base64"), signerName: "kubernetes.io/kube-apiserver-client", usages: ["client auth"] },
      status: { conditions: [{ type: "Approved", status: "True", reason: "KubectlApprove", lastUpdateTime: "2023-11-14T22:13:20Z" }] },
    });
  });

  it("writes a Go named slice (user extra's ExtraValue) as the bare list", () => {
    const sar = SubjectAccessReview.encode(SubjectAccessReview.fromPartial({
      spec: { nonResourceAttributes: { path: "/healthz", verb: "get" }, user: "jane", extra: { scopes: { items: ["a", "b"] }, none: { items: [] } } },
    })).finish();
    expect(decodeProtobufObject(envelope("authorization.k8s.io/v1", "SubjectAccessReview", sar))).toStrictEqual({
      apiVersion: "authorization.k8s.io/v1",
      kind: "SubjectAccessReview",
      spec: { nonResourceAttributes: { path: "/healthz", verb: "get" }, user: "jane", extra: { scopes: ["a", "b"], none: [] } },
    });
  });

  it("renames fields whose json name differs (IngressClassParametersReference.aPIGroup -> apiGroup)", () => {
    const raw = IngressClass.encode(IngressClass.fromPartial({
      metadata: { name: "nginx" },
      spec: { controller: "k8s.io/ingress-nginx", parameters: { aPIGroup: "k8s.example.com", kind: "Params", name: "p", scope: "Cluster" } },
    })).finish();
    expect(decodeProtobufObject(envelope("networking.k8s.io/v1", "IngressClass", raw))).toStrictEqual({
      apiVersion: "networking.k8s.io/v1",
      kind: "IngressClass",
      metadata: { name: "nginx" },
      spec: { controller: "k8s.io/ingress-nginx", parameters: { apiGroup: "k8s.example.com", kind: "Params", name: "p", scope: "Cluster" } },
    });
  });

  it("writes MicroTime with microseconds and RawExtension as its JSON document", () => {
    const lease = Lease.encode(Lease.fromPartial({
      metadata: { name: "l" },
      spec: { holderIdentity: "me", leaseDurationSeconds: 0, renewTime: { seconds: 1700000000, nanos: 123456789 } },
    })).finish();
    expect(decodeProtobufObject(envelope("coordination.k8s.io/v1", "Lease", lease))).toStrictEqual({
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name: "l" },
      spec: { holderIdentity: "me", renewTime: "2023-11-14T22:13:20.123456Z" }, // leaseDurationSeconds: *int32 but encode() drops a zero
    });
    const doc = { spec: { template: { spec: { containers: [{ name: "c", image: "nginx" }] } } } };
    const rev = ControllerRevision.encode(ControllerRevision.fromPartial({
      metadata: { name: "web-1" },
      data: { raw: Buffer.from(JSON.stringify(doc)) },
      revision: 1,
    })).finish();
    expect(decodeProtobufObject(envelope("apps/v1", "ControllerRevision", rev))).toStrictEqual({
      apiVersion: "apps/v1",
      kind: "ControllerRevision",
      metadata: { name: "web-1" },
      data: doc,
      revision: 1,
    });
    const bad = ControllerRevision.encode(ControllerRevision.fromPartial({ metadata: { name: "r" }, data: { raw: Buffer.from([0x6b, 0x38, 0x73, 0]) } })).finish();
    expectDecodeError(envelope("apps/v1", "ControllerRevision", bad), /RawExtension at data does not hold a JSON document/);
  });
});

describe("malformed input throws ProtobufDecodeError", () => {
  it("missing or wrong magic", () => {
    expectDecodeError(Buffer.alloc(0), /magic/);
    expectDecodeError(Buffer.from("k8s", "latin1"), /magic/);
    expectDecodeError(Buffer.from('{"kind":"Namespace","apiVersion":"v1"}'), /magic/);
    expectDecodeError(Buffer.concat([Buffer.from("k8s\x01", "latin1"), fixture("namespace.bin").subarray(4)]), /magic/);
  });

  it("unknown or empty apiVersion/kind", () => {
    const raw = fixture("namespace.bin");
    const ns = decodeProtobufObject(raw);
    expect(ns.kind).toBe("Namespace");
    const err = expectDecodeError(envelope("v1", "PodTemplate", new Uint8Array(0)), /apiVersion "v1", kind "PodTemplate"/);
    expect(err.unsupported).toBe(true);
    expectDecodeError(envelope("apps/v2", "Deployment", new Uint8Array(0)), /apiVersion "apps\/v2", kind "Deployment"/);
    expectDecodeError(envelope("", "", new Uint8Array(0)), /empty apiVersion\/kind/);
    expectDecodeError(MAGIC, /empty apiVersion\/kind|no object/);
  });

  it("envelope without raw, or with a content encoding", () => {
    const noRaw = new BinaryWriter()
      .uint32((1 << 3) | 2).fork().uint32((1 << 3) | 2).string("v1").uint32((2 << 3) | 2).string("Namespace").join()
      .finish();
    expectDecodeError(Buffer.concat([MAGIC, noRaw]), /raw is missing/);
    const err = expectDecodeError(envelope("v1", "Namespace", new Uint8Array(0), "gzip"), /contentEncoding "gzip"/);
    expect(err.unsupported).toBe(true);
  });

  it("every truncation of every fixture", () => {
    for (const name of readdirSync(testdata).filter((f) => f.endsWith(".bin"))) {
      const body = fixture(name);
      // the trailing 4 bytes are the empty contentEncoding/contentType fields: cutting them is still valid
      for (let len = 0; len < body.length - 4; len++) expectDecodeError(body.subarray(0, len));
    }
  });

  it("invalid wire data and trailing garbage", () => {
    const body = fixture("deployment.bin");
    expectDecodeError(Buffer.concat([body, Buffer.from([0xff])]), /malformed/);
    expectDecodeError(Buffer.concat([body, Buffer.from([0x00, 0x01])]), /malformed/);
    // wire type 7 inside the object
    expectDecodeError(envelope("v1", "Namespace", Buffer.from([0x0f, 0x00])), /malformed/);
    // a length prefix running past the end of the object
    expectDecodeError(envelope("v1", "Namespace", Buffer.from([0x0a, 0x7f, 0x0a])), /malformed/);
    // a varint that never ends
    expectDecodeError(envelope("v1", "Namespace", Buffer.from([0x38, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])), /malformed/);
  });

  it("random bytes after the magic never escape as another error type", () => {
    let seed = 12345;
    const next = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let i = 0; i < 500; i++) {
      const garbage = Buffer.from(Array.from({ length: 1 + (next() % 64) }, () => next() & 0xff));
      expectDecodeError(Buffer.concat([MAGIC, garbage]));
    }
    // random corruption of a real body: either decodes or throws ProtobufDecodeError
    const body = fixture("deployment.bin");
    for (let i = 0; i < 500; i++) {
      const copy = Buffer.from(body);
      copy[4 + (next() % (copy.length - 4))] = next() & 0xff;
      try {
        decodeProtobufObject(copy);
      } catch (err) {
        expect(err).toBeInstanceOf(ProtobufDecodeError);
      }
    }
  });
});
