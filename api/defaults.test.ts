import { describe, expect, it } from "vitest";
import { applyDefaults, defaultImagePullPolicy, defaultJobSelector } from "./defaults.ts";
import type { KubeObject } from "./meta.ts";
import type { Pod } from "./core/v1.ts";
import type { Deployment } from "./apps/v1.ts";
import type { Job } from "./batch/v1.ts";
import type { Service } from "./core/v1.ts";

describe("defaultImagePullPolicy", () => {
  const cases = [
    { name: "an untagged image is always pulled", image: "nginx", want: "Always" },
    { name: "a latest tag is always pulled", image: "nginx:latest", want: "Always" },
    { name: "a pinned tag is pulled if not present", image: "nginx:1.25", want: "IfNotPresent" },
    { name: "a registry port is not mistaken for a tag", image: "localhost:5000/busybox", want: "Always" },
    { name: "a digest counts as pinned", image: "busybox@sha256:abc", want: "IfNotPresent" },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(defaultImagePullPolicy(c.image)).toBe(c.want);
    });
  }
});

describe("applyDefaults", () => {
  it("fills a pod's spec and container defaults as Kubernetes does", () => {
    const p: Pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p" },
      spec: {
        containers: [
          {
            name: "a",
            image: "nginx",
            ports: [{ containerPort: 80 }],
            readinessProbe: { httpGet: { port: 80 } },
            resources: { limits: { cpu: 1 } },
          },
        ],
        tolerations: [{ key: "k", operator: "Exists" }],
      },
    };
    applyDefaults(p);
    expect(p.spec).toMatchObject({
      restartPolicy: "Always",
      terminationGracePeriodSeconds: 30,
      dnsPolicy: "ClusterFirst",
      schedulerName: "default-scheduler",
      securityContext: {},
      enableServiceLinks: true,
      tolerations: [{ key: "k", operator: "Exists" }],
    });
    expect(p.spec!.serviceAccountName).toBeUndefined();
    expect(p.spec!.containers[0]).toMatchObject({
      terminationMessagePath: "/dev/termination-log",
      terminationMessagePolicy: "File",
      imagePullPolicy: "Always",
      ports: [{ containerPort: 80, protocol: "TCP" }],
      readinessProbe: { timeoutSeconds: 1, periodSeconds: 10, successThreshold: 1, failureThreshold: 3, httpGet: { path: "/", scheme: "HTTP" } },
      resources: { limits: { cpu: "1" }, requests: { cpu: "1" } },
    });
  });

  it("leaves values the user set alone and is idempotent", () => {
    const p: Pod = { apiVersion: "v1", kind: "Pod", metadata: { name: "p" }, spec: { restartPolicy: "Never", containers: [{ name: "a", image: "x:1", imagePullPolicy: "Never" }] } };
    applyDefaults(p);
    const once = structuredClone(p);
    applyDefaults(p);
    expect(p).toEqual(once);
    expect(p.spec!.restartPolicy).toBe("Never");
    expect(p.spec!.containers[0].imagePullPolicy).toBe("Never");
  });

  it("defaults a deployment's replicas, strategy, history and template", () => {
    const d: Deployment = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "d" },
      spec: { selector: { matchLabels: { a: "b" } }, template: { metadata: { labels: { a: "b" } }, spec: { containers: [{ name: "c", image: "x" }] } } },
    };
    applyDefaults(d);
    expect(d.spec).toMatchObject({
      replicas: 1,
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: "25%", maxUnavailable: "25%" } },
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: 600,
      template: { spec: { restartPolicy: "Always", dnsPolicy: "ClusterFirst" } },
    });
  });

  it("does not add rolling update parameters to a Recreate deployment", () => {
    const d: Deployment = { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "d" }, spec: { selector: {}, template: {}, strategy: { type: "Recreate" } } };
    applyDefaults(d);
    expect(d.spec!.strategy).toEqual({ type: "Recreate" });
  });

  it("defaults a job's counts, mode and suspension but not its completions when parallelism is set", () => {
    const j: Job = { apiVersion: "batch/v1", kind: "Job", metadata: { name: "j" }, spec: { parallelism: 3, template: { metadata: { labels: { app: "x" } }, spec: { containers: [] } } } };
    applyDefaults(j);
    expect(j.spec).toMatchObject({ parallelism: 3, backoffLimit: 6, completionMode: "NonIndexed", suspend: false });
    expect(j.spec!.completions).toBeUndefined();
    expect(j.spec!.manualSelector).toBeUndefined();
    expect(j.metadata.labels).toEqual({ app: "x" });
  });

  it("gives a job with neither count one completion and one worker", () => {
    const j: Job = { apiVersion: "batch/v1", kind: "Job", metadata: { name: "j" }, spec: { template: {} } };
    applyDefaults(j);
    expect(j.spec).toMatchObject({ completions: 1, parallelism: 1 });
  });

  it("defaults a service's type, affinity, ports and traffic policies", () => {
    const s: Service = { apiVersion: "v1", kind: "Service", metadata: { name: "s" }, spec: { ports: [{ port: 80 }, { port: 443, targetPort: "https" }] } };
    applyDefaults(s);
    expect(s.spec).toMatchObject({
      type: "ClusterIP",
      sessionAffinity: "None",
      ipFamilyPolicy: "SingleStack",
      internalTrafficPolicy: "Cluster",
      ports: [
        { port: 80, protocol: "TCP", targetPort: 80 },
        { port: 443, protocol: "TCP", targetPort: "https" },
      ],
    });
  });

  const simple: { name: string; obj: KubeObject; check: (o: KubeObject) => void }[] = [
    {
      name: "a namespace starts Active with the kubernetes finalizer",
      obj: { apiVersion: "v1", kind: "Namespace", metadata: { name: "n" } },
      check: (o) => expect(o).toMatchObject({ status: { phase: "Active" }, spec: { finalizers: ["kubernetes"] } }),
    },
    { name: "a secret is Opaque by default", obj: { apiVersion: "v1", kind: "Secret", metadata: { name: "s" } }, check: (o) => expect(o.type).toBe("Opaque") },
    {
      name: "a secret's stringData goes into data (overwriting) and is dropped, as upstream's conversion",
      obj: { apiVersion: "v1", kind: "Secret", metadata: { name: "s" }, data: { a: "eA==", keep: "eQ==" }, stringData: { a: "b", c: "hello world" } },
      check: (o) => {
        expect(o.data).toStrictEqual({ a: "Yg==", keep: "eQ==", c: "aGVsbG8gd29ybGQ=" });
        expect(o).not.toHaveProperty("stringData");
      },
    },
    {
      name: "a claim uses a filesystem volume by default",
      obj: { apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name: "c" }, spec: {} },
      check: (o) => expect(o.spec).toMatchObject({ volumeMode: "Filesystem" }),
    },
    {
      name: "endpoint slice ports default to TCP",
      obj: { apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice", metadata: { name: "e" }, addressType: "IPv4", endpoints: [], ports: [{ port: 80 }] },
      check: (o) => expect(o.ports).toEqual([{ port: 80, protocol: "TCP", name: "" }]),
    },
    {
      name: "an ingress path type is not defaulted",
      obj: { apiVersion: "networking.k8s.io/v1", kind: "Ingress", metadata: { name: "i" }, spec: { rules: [{ http: { paths: [{ path: "/" }] } }] } },
      check: (o) => expect(o.spec).toEqual({ rules: [{ http: { paths: [{ path: "/" }] } }] }),
    },
    {
      name: "a replicaset gets one replica",
      obj: { apiVersion: "apps/v1", kind: "ReplicaSet", metadata: { name: "r" }, spec: { selector: {} } },
      check: (o) => expect(o.spec).toMatchObject({ replicas: 1 }),
    },
    {
      name: "an unknown kind is left untouched",
      obj: { apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" }, spec: {} },
      check: (o) => expect(o).toEqual({ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" }, spec: {} }),
    },
  ];
  for (const c of simple) {
    it(c.name, () => {
      applyDefaults(c.obj);
      c.check(c.obj);
    });
  }
});

describe("defaultJobSelector", () => {
  it("labels the template with the uid and name and selects on the uid", () => {
    const j: Job = { apiVersion: "batch/v1", kind: "Job", metadata: { name: "pi", uid: "u1" }, spec: { template: { metadata: { labels: { app: "pi" } } } } };
    defaultJobSelector(j, "u1");
    expect(j.spec!.template.metadata!.labels).toEqual({
      app: "pi",
      "batch.kubernetes.io/controller-uid": "u1",
      "controller-uid": "u1",
      "batch.kubernetes.io/job-name": "pi",
      "job-name": "pi",
    });
    expect(j.spec!.selector).toEqual({ matchLabels: { "batch.kubernetes.io/controller-uid": "u1" } });
  });
  it("leaves a manual selector alone", () => {
    const j: Job = { apiVersion: "batch/v1", kind: "Job", metadata: { name: "pi" }, spec: { manualSelector: true, selector: { matchLabels: { a: "b" } }, template: {} } };
    defaultJobSelector(j, "u1");
    expect(j.spec!.selector).toEqual({ matchLabels: { a: "b" } });
    expect(j.spec!.template.metadata).toBeUndefined();
  });
});
