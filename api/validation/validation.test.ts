import { describe, expect, it } from "vitest";
import { findKind, type ResourceInfo } from "../resources.ts";
import type { KubeObject } from "../meta.ts";
import { applyDefaults, defaultJobSelector } from "../defaults.ts";
import { formatFieldError, type FieldError } from "./field.ts";
import { validateObject, validateObjectUpdate } from "./index.ts";
import { isDNS1035Label, isDNS1123Label, isDNS1123Subdomain, isQualifiedName, isValidLabelValue } from "./names.ts";

const kinds = {
  pod: findKind("v1", "Pod")!,
  service: findKind("v1", "Service")!,
  namespace: findKind("v1", "Namespace")!,
  configmap: findKind("v1", "ConfigMap")!,
  secret: findKind("v1", "Secret")!,
  node: findKind("v1", "Node")!,
  event: findKind("v1", "Event")!,
  pvc: findKind("v1", "PersistentVolumeClaim")!,
  deployment: findKind("apps/v1", "Deployment")!,
  replicaset: findKind("apps/v1", "ReplicaSet")!,
  job: findKind("batch/v1", "Job")!,
  ingress: findKind("networking.k8s.io/v1", "Ingress")!,
  lease: findKind("coordination.k8s.io/v1", "Lease")!,
  slice: findKind("discovery.k8s.io/v1", "EndpointSlice")!,
  storageclass: findKind("storage.k8s.io/v1", "StorageClass")!,
};

function messages(errs: FieldError[]): string[] {
  return errs.map(formatFieldError);
}

function pod(mutate: (p: KubeObject & { spec: Record<string, unknown> }) => void = () => {}): KubeObject {
  const p = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "web", namespace: "default" },
    spec: { containers: [{ name: "app", image: "nginx:1.25" }] } as Record<string, unknown>,
  };
  mutate(p);
  applyDefaults(p);
  return p;
}

function deployment(mutate: (d: { metadata: Record<string, unknown>; spec: Record<string, unknown> }) => void = () => {}): KubeObject {
  const d = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: "default" } as Record<string, unknown>,
    spec: {
      selector: { matchLabels: { app: "web" } },
      template: { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "app", image: "nginx" }] } },
    } as Record<string, unknown>,
  };
  mutate(d);
  applyDefaults(d);
  return d;
}

function expectValid(obj: KubeObject, info: ResourceInfo): void {
  expect(messages(validateObject(obj, info))).toEqual([]);
}

describe("name validators", () => {
  it("a DNS-1123 subdomain rejects upper case and underscores with Kubernetes' exact message", () => {
    expect(isDNS1123Subdomain("Foo_bar")).toEqual([
      "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    ]);
  });
  it("a DNS-1123 label lists both examples as Kubernetes prints them", () => {
    expect(isDNS1123Label("a.b")).toEqual([
      "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
    ]);
  });
  it("a DNS-1123 label longer than 63 characters is too long", () => {
    expect(isDNS1123Label("a".repeat(64))).toEqual(["must be no more than 63 characters"]);
  });
  it("a DNS-1035 label must start with a letter", () => {
    expect(isDNS1035Label("1abc")[0]).toContain("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character");
    expect(isDNS1035Label("abc")).toEqual([]);
  });
  const qualified: { name: string; in: string; want: string[] }[] = [
    { name: "a plain qualified name is valid", in: "app", want: [] },
    { name: "a prefixed qualified name is valid", in: "app.kubernetes.io/name", want: [] },
    { name: "an empty prefix is reported", in: "/name", want: ["prefix part must be non-empty"] },
    { name: "an empty name part is reported", in: "example.com/", want: ["name part must be non-empty", "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"] },
  ];
  for (const c of qualified) {
    it(c.name, () => {
      expect(isQualifiedName(c.in)).toEqual(c.want);
    });
  }
  it("a name with two slashes is not a qualified name", () => {
    expect(isQualifiedName("a/b/c")[0]).toMatch(/^a qualified name must consist of .* with an optional DNS subdomain prefix and '\/' \(e\.g\. 'example\.com\/MyName'\)$/);
  });
  it("label values may be empty but not end in a dash", () => {
    expect(isValidLabelValue("")).toEqual([]);
    expect(isValidLabelValue("x-")).toHaveLength(1);
    expect(isValidLabelValue("a".repeat(64))).toContain("must be no more than 63 characters");
  });
});

describe("metadata validation", () => {
  const cases: { name: string; obj: KubeObject; info: ResourceInfo; want: string[] }[] = [
    {
      name: "a name that is not a subdomain is reported with the value and the regex",
      obj: pod((p) => (p.metadata.name = "Foo_bar")),
      info: kinds.pod,
      want: [
        `metadata.name: Invalid value: "Foo_bar": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
      ],
    },
    {
      name: "a missing name without generateName is required",
      obj: pod((p) => (p.metadata.name = undefined)),
      info: kinds.pod,
      want: ["metadata.name: Required value: name or generateName is required"],
    },
    {
      name: "generateName may end in a dash",
      obj: pod((p) => {
        p.metadata.name = undefined;
        p.metadata.generateName = "web-";
      }),
      info: kinds.pod,
      want: [],
    },
    {
      name: "a namespaced object needs a namespace",
      obj: pod((p) => (p.metadata.namespace = undefined)),
      info: kinds.pod,
      want: ["metadata.namespace: Required value"],
    },
    {
      name: "a cluster-scoped object may not have a namespace",
      obj: { apiVersion: "v1", kind: "Node", metadata: { name: "n1", namespace: "default" } },
      info: kinds.node,
      want: ["metadata.namespace: Forbidden: not allowed on this type"],
    },
    {
      name: "a namespace name must be a DNS label, so dots are rejected",
      obj: { apiVersion: "v1", kind: "Namespace", metadata: { name: "a.b" } },
      info: kinds.namespace,
      want: [
        `metadata.name: Invalid value: "a.b": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
      ],
    },
    {
      name: "a bad label value is reported against metadata.labels",
      obj: pod((p) => (p.metadata.labels = { app: "-x" })),
      info: kinds.pod,
      want: [
        `metadata.labels: Invalid value: "-x": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`,
      ],
    },
    {
      name: "annotations over 256 KiB in total are too long",
      obj: pod((p) => (p.metadata.annotations = { big: "x".repeat(256 * 1024) })),
      info: kinds.pod,
      want: ["metadata.annotations: Too long: may not be more than 262144 bytes"],
    },
    {
      name: "owner references need a uid and only one controller",
      obj: pod(
        (p) =>
          (p.metadata.ownerReferences = [
            { apiVersion: "apps/v1", kind: "ReplicaSet", name: "a", uid: "", controller: true },
            { apiVersion: "apps/v1", kind: "ReplicaSet", name: "b", uid: "u2", controller: true },
          ]),
      ),
      info: kinds.pod,
      want: [
        `metadata.ownerReferences[0].uid: Invalid value: "": uid must not be empty`,
        `metadata.ownerReferences: Invalid value: [{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"a","uid":"","controller":true},{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"b","uid":"u2","controller":true}]: Only one reference can have Controller set to true. Found "true" in references for ReplicaSet/a and ReplicaSet/b`,
      ],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(messages(validateObject(c.obj, c.info))).toEqual(c.want);
    });
  }
});

describe("pod validation", () => {
  it("a minimal defaulted pod is valid", () => {
    expectValid(pod(), kinds.pod);
  });
  const cases: { name: string; mutate: (p: KubeObject & { spec: Record<string, unknown> }) => void; want: string[] }[] = [
    { name: "a pod without containers is rejected", mutate: (p) => (p.spec.containers = []), want: ["spec.containers: Required value"] },
    {
      name: "container names must be unique across init containers and containers",
      mutate: (p) => {
        p.spec.initContainers = [{ name: "a", image: "busybox" }];
        p.spec.containers = [{ name: "b", image: "x" }, { name: "a", image: "x" }];
      },
      want: ['spec.containers[1].name: Duplicate value: "a"'],
    },
    {
      name: "a container needs an image",
      mutate: (p) => (p.spec.containers = [{ name: "a" }]),
      want: ["spec.containers[0].image: Required value"],
    },
    {
      name: "a container name must be a DNS label",
      mutate: (p) => (p.spec.containers = [{ name: "A", image: "x" }]),
      want: [
        `spec.containers[0].name: Invalid value: "A": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
      ],
    },
    {
      name: "container ports must be in range and use a known protocol",
      mutate: (p) => (p.spec.containers = [{ name: "a", image: "x", ports: [{ containerPort: 70000, protocol: "HTTP" }] }]),
      want: [
        "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        'spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
      ],
    },
    {
      name: "an unknown restart policy lists the supported ones",
      mutate: (p) => (p.spec.restartPolicy = "Sometimes"),
      want: ['spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'],
    },
    {
      name: "resource quantities must parse (requests default to limits, so both are reported)",
      mutate: (p) => (p.spec.containers = [{ name: "a", image: "x", resources: { limits: { cpu: "lots" } } }]),
      want: [
        `spec.containers[0].resources.limits[cpu]: Invalid value: "lots": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`,
        `spec.containers[0].resources.requests[cpu]: Invalid value: "lots": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`,
      ],
    },
    {
      name: "requests may not exceed limits",
      mutate: (p) => (p.spec.containers = [{ name: "a", image: "x", resources: { limits: { memory: "1Gi" }, requests: { memory: "2Gi" } } }]),
      want: [`spec.containers[0].resources.requests[memory]: Invalid value: "2Gi": must be less than or equal to memory limit of 1Gi`],
    },
    {
      name: "volume names must be unique",
      mutate: (p) => (p.spec.volumes = [{ name: "data", emptyDir: {} }, { name: "data", emptyDir: {} }]),
      want: ['spec.volumes[1].name: Duplicate value: "data"'],
    },
    {
      name: "a volume mount must name a declared volume",
      mutate: (p) => (p.spec.containers = [{ name: "a", image: "x", volumeMounts: [{ name: "cache", mountPath: "/cache" }] }]),
      want: ['spec.containers[0].volumeMounts[0].name: Not found: "cache"'],
    },
    {
      name: "environment variable names may not start with a digit",
      mutate: (p) => (p.spec.containers = [{ name: "a", image: "x", env: [{ name: "1X", value: "v" }] }]),
      want: [
        `spec.containers[0].env[0].name: Invalid value: "1X": a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')`,
      ],
    },
    {
      name: "a toleration with an unknown effect is rejected",
      mutate: (p) => (p.spec.tolerations = [{ key: "k", operator: "Exists", effect: "Sometimes" }]),
      want: ['spec.tolerations[0].effect: Unsupported value: "Sometimes": supported values: "NoExecute", "NoSchedule", "PreferNoSchedule"'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(messages(validateObject(pod(c.mutate), kinds.pod))).toEqual(c.want);
    });
  }
});

describe("pod update validation", () => {
  const cases: { name: string; mutate: (spec: Record<string, unknown>) => void; want: RegExp[] }[] = [
    { name: "changing a container image is allowed", mutate: (s) => ((s.containers as Record<string, unknown>[])[0].image = "nginx:1.26"), want: [] },
    { name: "setting activeDeadlineSeconds is allowed", mutate: (s) => (s.activeDeadlineSeconds = 30), want: [] },
    { name: "adding a toleration is allowed", mutate: (s) => (s.tolerations = [{ key: "k", operator: "Exists" }]), want: [] },
    {
      name: "changing the restart policy is forbidden with Kubernetes' message",
      mutate: (s) => (s.restartPolicy = "Never"),
      want: [/^spec: Forbidden: pod updates may not change fields other than `spec.containers\[\*\].image`,`spec.initContainers\[\*\].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` \(only additions to existing tolerations\),`spec.terminationGracePeriodSeconds` \(allow it to be set to 1 if it was previously negative\)\n.*spec.restartPolicy/s],
    },
    {
      name: "adding a container is forbidden",
      mutate: (s) => (s.containers as unknown[]).push({ name: "b", image: "x", terminationMessagePath: "/dev/termination-log", terminationMessagePolicy: "File", imagePullPolicy: "Always" }),
      want: [/^spec.containers: Forbidden: pod updates may not add or remove containers$/],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const old = pod();
      const next = structuredClone(old) as KubeObject & { spec: Record<string, unknown> };
      c.mutate(next.spec);
      const got = messages(validateObjectUpdate(next, old, kinds.pod));
      expect(got).toHaveLength(c.want.length);
      c.want.forEach((re, i) => expect(got[i]).toMatch(re));
    });
  }
  it("renaming a pod is rejected as immutable", () => {
    const old = pod();
    const next = structuredClone(old);
    next.metadata.name = "other";
    expect(messages(validateObjectUpdate(next, old, kinds.pod))).toEqual(['metadata.name: Invalid value: "other": field is immutable']);
  });
});

describe("deployment and replicaset validation", () => {
  it("a defaulted deployment is valid", () => {
    expectValid(deployment(), kinds.deployment);
  });
  const cases: { name: string; mutate: (d: { metadata: Record<string, unknown>; spec: Record<string, unknown> }) => void; want: string[] }[] = [
    {
      name: "a selector that does not match the template labels is rejected",
      mutate: (d) => (d.spec.selector = { matchLabels: { app: "other" } }),
      want: ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`'],
    },
    { name: "a missing selector is required", mutate: (d) => (d.spec.selector = undefined), want: ["spec.selector: Required value"] },
    {
      name: "an empty selector is invalid for a deployment",
      mutate: (d) => (d.spec.selector = {}),
      want: ["spec.selector: Invalid value: {}: empty selector is invalid for deployment"],
    },
    { name: "negative replicas are rejected", mutate: (d) => (d.spec.replicas = -1), want: ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"] },
    {
      name: "a template restart policy other than Always is not supported",
      mutate: (d) => ((d.spec.template as { spec: Record<string, unknown> }).spec.restartPolicy = "Never"),
      want: ['spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"'],
    },
    {
      name: "an unknown strategy type is not supported",
      mutate: (d) => (d.spec.strategy = { type: "BlueGreen" }),
      want: ['spec.strategy.type: Unsupported value: "BlueGreen": supported values: "Recreate", "RollingUpdate"'],
    },
    {
      name: "maxSurge and maxUnavailable may not both be zero",
      mutate: (d) => (d.spec.strategy = { type: "RollingUpdate", rollingUpdate: { maxSurge: 0, maxUnavailable: "0%" } }),
      want: ['spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "0%": may not be 0 when `maxSurge` is 0'],
    },
    {
      name: "a malformed percentage is rejected",
      mutate: (d) => (d.spec.strategy = { type: "RollingUpdate", rollingUpdate: { maxSurge: "x", maxUnavailable: 1 } }),
      want: [`spec.strategy.rollingUpdate.maxSurge: Invalid value: "x": must be an integer or percentage (e.g '5%')`],
    },
    {
      name: "Recreate may not carry rolling update parameters",
      mutate: (d) => (d.spec.strategy = { type: "Recreate", rollingUpdate: { maxSurge: 1 } }),
      want: ["spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(messages(validateObject(deployment(c.mutate), kinds.deployment))).toEqual(c.want);
    });
  }
  it("changing a deployment's selector is rejected as immutable", () => {
    const old = deployment();
    const next = deployment((d) => {
      d.spec.selector = { matchLabels: { app: "web", v: "2" } };
      (d.spec.template as { metadata: { labels: Record<string, string> } }).metadata.labels.v = "2";
    });
    next.metadata.resourceVersion = old.metadata.resourceVersion;
    expect(messages(validateObjectUpdate(next, old, kinds.deployment))).toEqual([
      'spec.selector: Invalid value: {"matchLabels":{"app":"web","v":"2"}}: field is immutable',
    ]);
  });
  it("scaling a deployment is a valid update", () => {
    const old = deployment();
    const next = deployment((d) => (d.spec.replicas = 5));
    expect(validateObjectUpdate(next, old, kinds.deployment)).toEqual([]);
  });
  it("a replicaset with a matching selector is valid", () => {
    const rs = deployment();
    rs.kind = "ReplicaSet";
    delete (rs.spec as Record<string, unknown>).strategy;
    expectValid(rs, kinds.replicaset);
  });
});

describe("job validation", () => {
  function job(mutate: (j: { spec: Record<string, unknown> }) => void = () => {}): KubeObject {
    const j = {
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name: "pi", namespace: "default" } as KubeObject["metadata"],
      spec: { template: { spec: { restartPolicy: "Never", containers: [{ name: "pi", image: "perl" }] } } } as Record<string, unknown>,
    };
    mutate(j);
    applyDefaults(j);
    return j;
  }
  it("a job with a generated selector is valid", () => {
    const j = job();
    j.metadata.uid = "uid-1";
    defaultJobSelector(j, "uid-1");
    expectValid(j, kinds.job);
  });
  it("a template restart policy of Always is not supported for jobs", () => {
    const j = job((x) => ((x.spec.template as { spec: Record<string, unknown> }).spec.restartPolicy = "Always"));
    j.metadata.uid = "u";
    defaultJobSelector(j, "u");
    expect(messages(validateObject(j, kinds.job))).toEqual(['spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"']);
  });
  it("negative completions and backoffLimit are rejected", () => {
    const j = job((x) => {
      x.spec.completions = -1;
      x.spec.backoffLimit = -2;
    });
    j.metadata.uid = "u";
    defaultJobSelector(j, "u");
    expect(messages(validateObject(j, kinds.job))).toEqual([
      "spec.completions: Invalid value: -1: must be greater than or equal to 0",
      "spec.backoffLimit: Invalid value: -2: must be greater than or equal to 0",
    ]);
  });
  it("a user label conflicting with the generated job-name label is rejected", () => {
    const j = job((x) => ((x.spec.template as Record<string, unknown>).metadata = { labels: { "job-name": "other" } }));
    j.metadata.uid = "u";
    defaultJobSelector(j, "u");
    expect(messages(validateObject(j, kinds.job))).toEqual([
      `spec.template.metadata.labels[job-name]: Invalid value: map[string]string{"batch.kubernetes.io/controller-uid":"u", "batch.kubernetes.io/job-name":"pi", "controller-uid":"u", "job-name":"other"}: must be 'pi'`,
    ]);
  });
  it("the template of a job is immutable", () => {
    const old = job();
    old.metadata.uid = "u";
    defaultJobSelector(old, "u");
    const next = structuredClone(old) as KubeObject & { spec: { template: { spec: { containers: { image: string }[] } } } };
    next.spec.template.spec.containers[0].image = "perl:2";
    const got = messages(validateObjectUpdate(next, old, kinds.job));
    expect(got).toHaveLength(1);
    expect(got[0]).toMatch(/^spec.template: Invalid value: .*: field is immutable$/);
  });
});

describe("service validation", () => {
  function svc(spec: Record<string, unknown>, name = "web"): KubeObject {
    const s = { apiVersion: "v1", kind: "Service", metadata: { name, namespace: "default" }, spec };
    applyDefaults(s);
    return s;
  }
  const cases: { name: string; obj: KubeObject; want: string[] }[] = [
    { name: "a ClusterIP service with one port is valid", obj: svc({ selector: { app: "web" }, ports: [{ port: 80 }] }), want: [] },
    { name: "a service without ports is rejected", obj: svc({ selector: { app: "web" } }), want: ["spec.ports: Required value"] },
    { name: "a headless service may omit ports", obj: svc({ clusterIP: "None" }), want: [] },
    { name: "an ExternalName service needs no ports", obj: svc({ type: "ExternalName", externalName: "example.com" }), want: [] },
    {
      name: "several ports must each be named",
      obj: svc({ ports: [{ name: "http", port: 80 }, { port: 443 }] }),
      want: ["spec.ports[1].name: Required value"],
    },
    {
      name: "port names must be unique",
      obj: svc({ ports: [{ name: "http", port: 80 }, { name: "http", port: 81 }] }),
      want: ['spec.ports[1].name: Duplicate value: "http"'],
    },
    {
      name: "a port out of range is rejected",
      obj: svc({ ports: [{ port: 0, targetPort: 80 }] }),
      want: ["spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"],
    },
    {
      name: "an unknown type lists the supported types",
      obj: svc({ type: "Magic", ports: [{ port: 80 }] }),
      want: ['spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"'],
    },
    {
      name: "a nodePort is forbidden on a ClusterIP service",
      obj: svc({ ports: [{ port: 80, nodePort: 30080 }] }),
      want: ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"],
    },
    { name: "a nodePort is fine on a NodePort service", obj: svc({ type: "NodePort", ports: [{ port: 80, nodePort: 30080 }] }), want: [] },
    {
      name: "a service name must be a DNS-1035 label",
      obj: svc({ ports: [{ port: 80 }] }, "1web"),
      want: [
        `metadata.name: Invalid value: "1web": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')`,
      ],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(messages(validateObject(c.obj, kinds.service))).toEqual(c.want);
    });
  }
  it("an allocated clusterIP may not change", () => {
    const old = svc({ clusterIP: "10.96.0.10", ports: [{ port: 80 }] });
    const next = svc({ clusterIP: "10.96.0.11", ports: [{ port: 80 }] });
    expect(messages(validateObjectUpdate(next, old, kinds.service))).toEqual(['spec.clusterIPs[0]: Invalid value: "10.96.0.11": may not change once set']);
  });
});

describe("config and secret validation", () => {
  it("a config key with a space is invalid", () => {
    const cm: KubeObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c", namespace: "d" }, data: { "a b": "x" } };
    expect(messages(validateObject(cm, kinds.configmap))).toEqual([
      `data[a b]: Invalid value: "a b": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')`,
    ]);
  });
  it("a configmap over 1 MiB is too long", () => {
    const cm: KubeObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c", namespace: "d" }, data: { a: "x".repeat(1024 * 1024 + 1) } };
    expect(messages(validateObject(cm, kinds.configmap))).toEqual([": Too long: may not be more than 1048576 bytes"]);
  });
  it("the data of an immutable configmap cannot change", () => {
    const old: KubeObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c", namespace: "d" }, immutable: true, data: { a: "1" } };
    const next = { ...old, data: { a: "2" } };
    expect(messages(validateObjectUpdate(next, old, kinds.configmap))).toEqual(["data: Forbidden: field is immutable when `immutable` is set"]);
  });
  it("a secret's type cannot change", () => {
    const old: KubeObject = { apiVersion: "v1", kind: "Secret", metadata: { name: "s", namespace: "d" }, type: "Opaque" };
    const next = { ...old, type: "kubernetes.io/tls", data: { "tls.crt": "", "tls.key": "" } };
    expect(messages(validateObjectUpdate(next, old, kinds.secret))).toEqual(['type: Invalid value: "kubernetes.io/tls": field is immutable']);
  });
  it("a TLS secret needs its certificate and key", () => {
    const s: KubeObject = { apiVersion: "v1", kind: "Secret", metadata: { name: "s", namespace: "d" }, type: "kubernetes.io/tls", data: {} };
    expect(messages(validateObject(s, kinds.secret))).toEqual(["data[tls.crt]: Required value", "data[tls.key]: Required value"]);
  });
});

describe("other kinds", () => {
  it("an event must name its involved object", () => {
    const ev: KubeObject = { apiVersion: "v1", kind: "Event", metadata: { name: "e", namespace: "d" } };
    expect(messages(validateObject(ev, kinds.event))).toEqual(["involvedObject: Required value"]);
  });
  it("an event in another namespace than its object is rejected", () => {
    const ev: KubeObject = { apiVersion: "v1", kind: "Event", metadata: { name: "e", namespace: "d" }, involvedObject: { kind: "Pod", name: "p", namespace: "x" } };
    expect(messages(validateObject(ev, kinds.event))).toEqual(['involvedObject.namespace: Invalid value: "x": does not match event.namespace']);
  });
  it("a lease duration must be positive", () => {
    const l: KubeObject = { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name: "n1", namespace: "kube-node-lease" }, spec: { leaseDurationSeconds: 0 } };
    expect(messages(validateObject(l, kinds.lease))).toEqual(["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]);
  });
  it("an ingress path must be absolute and the backend must name a port", () => {
    const ing: KubeObject = {
      apiVersion: "networking.k8s.io/v1",
      kind: "Ingress",
      metadata: { name: "i", namespace: "d" },
      spec: { rules: [{ host: "Web.example.com", http: { paths: [{ path: "api", pathType: "Prefix", backend: { service: { name: "web" } } }] } }] },
    };
    expect(messages(validateObject(ing, kinds.ingress))).toEqual([
      `spec.rules[0].host: Invalid value: "Web.example.com": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
      'spec.rules[0].http.paths[0].path: Invalid value: "api": must be an absolute path',
      "spec.rules[0].http.paths[0].backend: Required value: port name or number is required",
    ]);
  });
  it("an ingress path type must be one Kubernetes knows", () => {
    const ing: KubeObject = {
      apiVersion: "networking.k8s.io/v1",
      kind: "Ingress",
      metadata: { name: "i", namespace: "d" },
      spec: { rules: [{ http: { paths: [{ path: "/", pathType: "Regex", backend: { service: { name: "web", port: { number: 80 } } } }] } }] },
    };
    expect(messages(validateObject(ing, kinds.ingress))).toEqual([
      'spec.rules[0].http.paths[0].pathType: Unsupported value: "Regex": supported values: "Exact", "ImplementationSpecific", "Prefix"',
    ]);
  });
  it("an endpointslice needs a known address type", () => {
    const es: KubeObject = { apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice", metadata: { name: "s", namespace: "d" }, addressType: "IPv5", endpoints: [] };
    expect(messages(validateObject(es, kinds.slice))).toEqual(['addressType: Unsupported value: "IPv5": supported values: "FQDN", "IPv4", "IPv6"']);
  });
  it("a storage class needs a provisioner", () => {
    const sc: KubeObject = { apiVersion: "storage.k8s.io/v1", kind: "StorageClass", metadata: { name: "zonal" } };
    expect(messages(validateObject(sc, kinds.storageclass))).toEqual(["provisioner: Required value"]);
  });
  it("a claim needs an access mode and a storage request", () => {
    const pvc: KubeObject = { apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name: "c", namespace: "d" }, spec: {} };
    expect(messages(validateObject(pvc, kinds.pvc))).toEqual([
      "spec.accessModes: Required value: at least 1 access mode is required",
      "spec.resources[storage]: Required value",
    ]);
  });
  it("values of the wrong JSON type are reported, not thrown", () => {
    const bad = { apiVersion: "v1", kind: "Pod", metadata: { name: "p", namespace: "d", labels: "x" }, spec: { containers: "nope" } } as unknown as KubeObject;
    expect(messages(validateObject(bad, kinds.pod))).toEqual([
      'metadata.labels: Invalid value: "x": must be a map of string keys to string values',
      "spec.containers: Required value",
      "spec.restartPolicy: Required value",
    ]);
  });
});

describe("metadata update rules", () => {
  it("no finalizer may be added to an object that is being deleted", () => {
    const old = pod((p) => {
      p.metadata.deletionTimestamp = "2024-01-01T00:00:00Z";
      p.metadata.finalizers = ["example.com/a"];
    });
    const next = structuredClone(old);
    next.metadata.finalizers = ["example.com/a", "example.com/b"];
    expect(messages(validateObjectUpdate(next, old, kinds.pod))).toEqual([
      'metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{"example.com/b"}',
    ]);
  });
  it("removing finalizers from an object being deleted is allowed", () => {
    const old = pod((p) => {
      p.metadata.deletionTimestamp = "2024-01-01T00:00:00Z";
      p.metadata.finalizers = ["example.com/a"];
    });
    const next = structuredClone(old);
    next.metadata.finalizers = [];
    expect(validateObjectUpdate(next, old, kinds.pod)).toEqual([]);
  });
  it("a finalizer without a domain must be a standard one", () => {
    const p = pod((x) => (x.metadata.finalizers = ["mine"]));
    expect(messages(validateObject(p, kinds.pod))).toEqual([
      'metadata.finalizers[0]: Invalid value: "mine": name is neither a standard finalizer name nor is it fully qualified',
    ]);
  });
});

describe("formatFieldError", () => {
  const cases: { name: string; err: FieldError; want: string }[] = [
    { name: "required errors show no value", err: { type: "FieldValueRequired", field: "spec.containers", badValue: "", detail: "" }, want: "spec.containers: Required value" },
    { name: "strings are quoted as Go quotes them", err: { type: "FieldValueInvalid", field: "a", badValue: 'x"\n', detail: "bad" }, want: 'a: Invalid value: "x\\"\\n": bad' },
    { name: "numbers and booleans print plainly", err: { type: "FieldValueInvalid", field: "a", badValue: true, detail: "bad" }, want: "a: Invalid value: true: bad" },
    { name: "a missing value prints as null", err: { type: "FieldValueInvalid", field: "a", badValue: undefined, detail: "d" }, want: "a: Invalid value: null: d" },
    { name: "forbidden errors show only the detail", err: { type: "FieldValueForbidden", field: "spec", badValue: "x", detail: "no" }, want: "spec: Forbidden: no" },
    { name: "too-many errors show the count", err: { type: "FieldValueTooMany", field: "items", badValue: 5, detail: "must have at most 4 items" }, want: "items: Too many: 5: must have at most 4 items" },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(formatFieldError(c.err)).toBe(c.want);
    });
  }
});
