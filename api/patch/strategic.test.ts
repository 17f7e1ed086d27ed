import { describe, expect, it } from "vitest";
import { applyStrategicMergePatch, PatchError } from "./index.ts";
import type { StructSchema } from "./schema.ts";
import { applyStrategicMergePatchWithSchema } from "./strategic.ts";

const DEPLOY = { apiVersion: "apps/v1", kind: "Deployment" };
const NODE = { apiVersion: "v1", kind: "Node" };
const POD = { apiVersion: "v1", kind: "Pod" };
const SVC = { apiVersion: "v1", kind: "Service" };

function deployment(containers: unknown[], extraSpec: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: "default", annotations: { "deployment.kubernetes.io/revision": "1" } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: "web" } },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: "25%", maxUnavailable: "25%" } },
      template: { metadata: { labels: { app: "web" } }, spec: { containers, restartPolicy: "Always" } },
      ...extraSpec,
    },
  };
}

const nginx = {
  name: "nginx",
  image: "nginx:1.25",
  ports: [{ containerPort: 80, protocol: "TCP" }],
  env: [
    { name: "A", value: "1" },
    { name: "B", value: "2" },
  ],
  imagePullPolicy: "IfNotPresent",
};
const sidecar = { name: "sidecar", image: "busybox", args: ["sleep", "3600"] };

type Obj = Record<string, unknown>;
const spec = (o: unknown): Obj => (o as { spec: Obj }).spec;
const podSpec = (o: unknown): Obj => (spec(o)["template"] as { spec: Obj }).spec;
const containers = (o: unknown): Obj[] => podSpec(o)["containers"] as Obj[];

interface Case {
  name: string;
  type: { apiVersion: string; kind: string };
  target: unknown;
  patch: unknown;
  check: (out: unknown) => void;
}

const cases: Case[] = [
  {
    name: "client-side apply with $setElementOrder listing only nginx updates nginx and keeps the live-only sidecar after it",
    type: DEPLOY,
    target: deployment([nginx, sidecar]),
    patch: {
      metadata: { annotations: { "kubectl.kubernetes.io/last-applied-configuration": '{"kind":"Deployment"}\n' } },
      spec: {
        replicas: 3,
        template: { spec: { "$setElementOrder/containers": [{ name: "nginx" }], containers: [{ image: "nginx:1.26", name: "nginx" }] } },
      },
    },
    check: (out) => {
      expect(spec(out)["replicas"]).toBe(3);
      expect(containers(out)).toEqual([{ ...nginx, image: "nginx:1.26" }, sidecar]);
      expect((out as { metadata: { annotations: Obj } }).metadata.annotations).toEqual({
        "deployment.kubernetes.io/revision": "1",
        "kubectl.kubernetes.io/last-applied-configuration": '{"kind":"Deployment"}\n',
      });
      expect(JSON.stringify(out)).not.toContain("$setElementOrder");
    },
  },
  {
    name: "client-side apply that removed sidecar from the manifest sends $patch delete and the sidecar goes away",
    type: DEPLOY,
    target: deployment([nginx, sidecar]),
    patch: {
      spec: {
        template: {
          spec: {
            "$setElementOrder/containers": [{ name: "nginx" }],
            containers: [{ $patch: "delete", name: "sidecar" }],
          },
        },
      },
    },
    check: (out) => expect(containers(out)).toEqual([nginx]),
  },
  {
    name: "$setElementOrder reorders the containers the manifest lists",
    type: DEPLOY,
    target: deployment([nginx, sidecar]),
    patch: { spec: { template: { spec: { "$setElementOrder/containers": [{ name: "sidecar" }, { name: "nginx" }] } } } },
    check: (out) => expect(containers(out).map((c) => c["name"])).toEqual(["sidecar", "nginx"]),
  },
  {
    name: "kubectl set image changes only the image and keeps the container's other fields and the other container",
    type: DEPLOY,
    target: deployment([nginx, sidecar]),
    patch: { spec: { template: { spec: { containers: [{ image: "nginx:2", name: "nginx" }] } } } },
    check: (out) => expect(containers(out)).toEqual([{ ...nginx, image: "nginx:2" }, sidecar]),
  },
  {
    name: "a new container in the patch is added and placed before server-only containers as upstream does",
    type: DEPLOY,
    target: deployment([nginx]),
    patch: { spec: { template: { spec: { containers: [{ name: "logger", image: "fluentd", ignored: null }] } } } },
    check: (out) => expect(containers(out)).toEqual([{ name: "logger", image: "fluentd" }, nginx]),
  },
  {
    name: "$patch delete of a container removes it by merge key",
    type: DEPLOY,
    target: deployment([nginx, sidecar]),
    patch: { spec: { template: { spec: { containers: [{ name: "nginx", $patch: "delete" }] } } } },
    check: (out) => expect(containers(out)).toEqual([sidecar]),
  },
  {
    name: "$patch replace as a list element replaces the whole container list",
    type: DEPLOY,
    target: deployment([nginx, sidecar]),
    patch: { spec: { template: { spec: { containers: [{ $patch: "replace" }, { name: "only", image: "x" }] } } } },
    check: (out) => expect(containers(out)).toEqual([{ name: "only", image: "x" }]),
  },
  {
    name: "$patch replace in a map replaces the map instead of merging it",
    type: DEPLOY,
    target: deployment([nginx]),
    patch: { spec: { selector: { $patch: "replace", matchLabels: { app: "v2" } } } },
    check: (out) => expect(spec(out)["selector"]).toEqual({ matchLabels: { app: "v2" } }),
  },
  {
    name: "$patch delete in a map empties it",
    type: DEPLOY,
    target: deployment([nginx]),
    patch: { spec: { template: { metadata: { labels: { $patch: "delete" } } } } },
    check: (out) => expect((spec(out)["template"] as { metadata: Obj }).metadata).toEqual({ labels: {} }),
  },
  {
    name: "$retainKeys on strategy switching from RollingUpdate to Recreate drops rollingUpdate",
    type: DEPLOY,
    target: deployment([nginx]),
    patch: { spec: { strategy: { $retainKeys: ["type"], type: "Recreate", rollingUpdate: null } } },
    check: (out) => expect(spec(out)["strategy"]).toEqual({ type: "Recreate" }),
  },
  {
    name: "$retainKeys clears live keys that are not listed even when the patch does not null them",
    type: DEPLOY,
    target: deployment([nginx]),
    patch: { spec: { strategy: { $retainKeys: ["type"], type: "Recreate" } } },
    check: (out) => expect(spec(out)["strategy"]).toEqual({ type: "Recreate" }),
  },
  {
    name: "kubectl rollout restart adds the restartedAt annotation to the pod template",
    type: DEPLOY,
    target: deployment([nginx]),
    patch: { spec: { template: { metadata: { annotations: { "kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z" } } } } },
    check: (out) =>
      expect((spec(out)["template"] as { metadata: Obj }).metadata).toEqual({
        labels: { app: "web" },
        annotations: { "kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z" },
      }),
  },
  {
    name: "env merges by name: a changed value, a new variable and a deleted one",
    type: DEPLOY,
    target: deployment([nginx]),
    patch: {
      spec: {
        template: {
          spec: {
            containers: [
              {
                name: "nginx",
                env: [
                  { name: "B", value: "22" },
                  { name: "C", value: "3" },
                  { name: "A", $patch: "delete" },
                ],
              },
            ],
          },
        },
      },
    },
    check: (out) =>
      expect(containers(out)[0]?.["env"]).toEqual([
        { name: "B", value: "22" },
        { name: "C", value: "3" },
      ]),
  },
  {
    name: "container ports merge by containerPort",
    type: DEPLOY,
    target: deployment([nginx]),
    patch: { spec: { template: { spec: { containers: [{ name: "nginx", ports: [{ containerPort: 80, name: "http" }, { containerPort: 443 }] }] } } } },
    check: (out) =>
      expect(containers(out)[0]?.["ports"]).toEqual([{ containerPort: 80, protocol: "TCP", name: "http" }, { containerPort: 443 }]),
  },
  {
    name: "container args are atomic and replaced as a whole",
    type: DEPLOY,
    target: deployment([sidecar]),
    patch: { spec: { template: { spec: { containers: [{ name: "sidecar", args: ["sleep", "10"] }] } } } },
    check: (out) => expect(containers(out)[0]?.["args"]).toEqual(["sleep", "10"]),
  },
  {
    name: "kubectl cordon sets spec.unschedulable on a node",
    type: NODE,
    target: { metadata: { name: "n1" }, spec: { podCIDR: "10.0.0.0/24", taints: [{ key: "a", effect: "NoSchedule" }] } },
    patch: { spec: { unschedulable: true } },
    check: (out) => expect(spec(out)).toEqual({ podCIDR: "10.0.0.0/24", taints: [{ key: "a", effect: "NoSchedule" }], unschedulable: true }),
  },
  {
    name: "kubectl uncordon sends null and the field is removed",
    type: NODE,
    target: { metadata: { name: "n1" }, spec: { unschedulable: true } },
    patch: { spec: { unschedulable: null } },
    check: (out) => expect(spec(out)).toEqual({}),
  },
  {
    name: "node taints are atomic so kubectl taint's patch replaces the list",
    type: NODE,
    target: { metadata: { name: "n1" }, spec: { taints: [{ key: "a", effect: "NoSchedule" }] } },
    patch: { spec: { taints: [{ key: "b", effect: "NoExecute" }] } },
    check: (out) => expect(spec(out)["taints"]).toEqual([{ key: "b", effect: "NoExecute" }]),
  },
  {
    name: "node status conditions merge by type",
    type: NODE,
    target: { status: { conditions: [{ type: "Ready", status: "True" }, { type: "MemoryPressure", status: "False" }] } },
    patch: { status: { conditions: [{ type: "Ready", status: "False", reason: "KubeletDown" }] } },
    check: (out) =>
      expect((out as { status: Obj }).status["conditions"]).toEqual([
        { type: "Ready", status: "False", reason: "KubeletDown" },
        { type: "MemoryPressure", status: "False" },
      ]),
  },
  {
    name: "finalizers merge as a set keeping live items ahead of later patch items",
    type: POD,
    target: { metadata: { name: "p", finalizers: ["a", "b"] } },
    patch: { metadata: { finalizers: ["b", "c"] } },
    check: (out) => expect((out as { metadata: Obj }).metadata["finalizers"]).toEqual(["a", "b", "c"]),
  },
  {
    name: "a finalizer unknown to the live list is placed first, as upstream's mergeSortedSlice does",
    type: POD,
    target: { metadata: { name: "p", finalizers: ["a", "b"] } },
    patch: { metadata: { finalizers: ["c"] } },
    check: (out) => expect((out as { metadata: Obj }).metadata["finalizers"]).toEqual(["c", "a", "b"]),
  },
  {
    name: "$deleteFromPrimitiveList/finalizers removes a finalizer and keeps the rest",
    type: POD,
    target: { metadata: { name: "p", finalizers: ["a", "b", "c"] } },
    patch: { metadata: { "$deleteFromPrimitiveList/finalizers": ["b"] } },
    check: (out) => expect((out as { metadata: Obj }).metadata["finalizers"]).toEqual(["a", "c"]),
  },
  {
    name: "client-side apply of finalizers with delete list, order list and additions gives the manifest's list",
    type: POD,
    target: { metadata: { name: "p", finalizers: ["a", "b"] } },
    patch: { metadata: { "$deleteFromPrimitiveList/finalizers": ["b"], "$setElementOrder/finalizers": ["a", "c"], finalizers: ["c"] } },
    check: (out) => expect((out as { metadata: Obj }).metadata["finalizers"]).toEqual(["a", "c"]),
  },
  {
    name: "$deleteFromPrimitiveList on a missing list does not create it",
    type: POD,
    target: { metadata: { name: "p" } },
    patch: { metadata: { "$deleteFromPrimitiveList/finalizers": ["b"] } },
    check: (out) => expect((out as { metadata: Obj }).metadata).toEqual({ name: "p" }),
  },
  {
    name: "ownerReferences merge by uid",
    type: POD,
    target: { metadata: { ownerReferences: [{ uid: "1", kind: "ReplicaSet", name: "a" }] } },
    patch: { metadata: { ownerReferences: [{ uid: "2", kind: "ReplicaSet", name: "b" }] } },
    check: (out) => expect(((out as { metadata: Obj }).metadata["ownerReferences"] as Obj[]).map((o) => o["uid"])).toEqual(["2", "1"]),
  },
  {
    name: "pod tolerations are atomic and replaced",
    type: POD,
    target: { spec: { tolerations: [{ key: "a", operator: "Exists" }], containers: [nginx] } },
    patch: { spec: { tolerations: [{ key: "b", operator: "Exists" }] } },
    check: (out) => expect(spec(out)["tolerations"]).toEqual([{ key: "b", operator: "Exists" }]),
  },
  {
    name: "pod status conditions merge by type and containerStatuses are replaced",
    type: POD,
    target: { status: { conditions: [{ type: "Ready", status: "False" }], containerStatuses: [{ name: "a" }, { name: "b" }] } },
    patch: { status: { conditions: [{ type: "PodScheduled", status: "True" }], containerStatuses: [{ name: "b", ready: true }] } },
    check: (out) =>
      expect((out as { status: Obj }).status).toEqual({
        conditions: [{ type: "PodScheduled", status: "True" }, { type: "Ready", status: "False" }],
        containerStatuses: [{ name: "b", ready: true }],
      }),
  },
  {
    name: "volumes merge by name and honour $retainKeys to switch the volume source",
    type: POD,
    target: { spec: { volumes: [{ name: "data", emptyDir: {} }, { name: "cfg", configMap: { name: "c" } }] } },
    patch: { spec: { volumes: [{ $retainKeys: ["name", "secret"], name: "data", secret: { secretName: "s" } }] } },
    check: (out) =>
      expect(spec(out)["volumes"]).toEqual([
        { name: "data", secret: { secretName: "s" } },
        { name: "cfg", configMap: { name: "c" } },
      ]),
  },
  {
    name: "service ports merge by port",
    type: SVC,
    target: { spec: { ports: [{ port: 80, targetPort: 8080, protocol: "TCP" }, { port: 443, targetPort: 8443 }], selector: { app: "web" } } },
    patch: { spec: { ports: [{ port: 80, targetPort: 9090 }] } },
    check: (out) =>
      expect(spec(out)["ports"]).toEqual([
        { port: 80, targetPort: 9090, protocol: "TCP" },
        { port: 443, targetPort: 8443 },
      ]),
  },
  {
    name: "an unknown kind falls back to merge-patch semantics: maps merge and lists are replaced",
    type: { apiVersion: "example.com/v1", kind: "Widget" },
    target: { spec: { items: [{ name: "a" }, { name: "b" }], size: 1, keep: true } },
    patch: { spec: { items: [{ name: "c" }], size: 2 } },
    check: (out) => expect(spec(out)).toEqual({ items: [{ name: "c" }], size: 2, keep: true }),
  },
  {
    name: "a field missing from the live object is added with nested nulls and directives removed",
    type: DEPLOY,
    target: { metadata: { name: "web" } },
    patch: { spec: { template: { spec: { "$setElementOrder/containers": [{ name: "a" }], containers: [{ name: "a", image: "x", tty: null }] } } } },
    check: (out) => expect(spec(out)).toEqual({ template: { spec: { containers: [{ name: "a", image: "x" }] } } }),
  },
  {
    name: "replacing a scalar with a map takes the patch value",
    type: DEPLOY,
    target: { spec: { paused: "yes" } },
    patch: { spec: { paused: { weird: true } } },
    check: (out) => expect(spec(out)).toEqual({ paused: { weird: true } }),
  },
];

const errors: Array<[string, unknown, unknown, RegExp]> = [
  ["a patch that is not an object is a bad request", deployment([nginx]), ["x"], /must be a JSON object, got array/],
  [
    "a container without its merge key is a bad request naming the key and path",
    deployment([nginx]),
    { spec: { template: { spec: { containers: [{ image: "x" }] } } } },
    /"spec.template.spec.containers".*merge key "name"/,
  ],
  ["an unknown $patch directive is a bad request", deployment([nginx]), { spec: { $patch: "explode" } }, /unknown \$patch directive "explode"/],
  [
    "$retainKeys that does not list a field the patch sets is a bad request",
    deployment([nginx]),
    { spec: { strategy: { $retainKeys: ["type"], type: "RollingUpdate", rollingUpdate: { maxSurge: 1 } } } },
    /sets "rollingUpdate" but \$retainKeys/,
  ],
  [
    "a patch list out of order with $setElementOrder is a bad request",
    deployment([nginx, sidecar]),
    { spec: { template: { spec: { "$setElementOrder/containers": [{ name: "nginx" }, { name: "sidecar" }], containers: [{ name: "sidecar" }, { name: "nginx" }] } } } },
    /does not match \$setElementOrder/,
  ],
  ["a malformed $deleteFromPrimitiveList key is a bad request", deployment([nginx]), { metadata: { $deleteFromPrimitiveList: ["x"] } }, /malformed directive key/],
];

describe("applyStrategicMergePatch", () => {
  it.each(cases)("$name", ({ type, target, patch, check }) => {
    const before = JSON.stringify([target, patch]);
    check(applyStrategicMergePatch(target, patch, type));
    expect(JSON.stringify([target, patch])).toBe(before);
  });

  it.each(errors)("%s", (_name, target, patch, message) => {
    let err: unknown;
    try {
      applyStrategicMergePatch(target, patch, DEPLOY);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PatchError);
    expect((err as PatchError).reason).toBe("BadRequest");
    expect((err as PatchError).message).toMatch(message);
  });
});

// Ported from k8s.io/apimachinery strategicpatch patch_test.go (three-way patch applied to Current).
const testSchema: StructSchema = {
  fields: {
    mergingList: { merge: true, mergeKey: "name" },
    mergingIntList: { merge: true },
  },
};

const upstream: Array<[string, unknown, unknown, unknown]> = [
  [
    "add an item in a list of primitives and preserve order",
    { mergingIntList: [1, 4, 2] },
    { "$setElementOrder/mergingIntList": [3, 1, 2], mergingIntList: [3] },
    { mergingIntList: [3, 1, 4, 2] },
  ],
  [
    "merge lists of scalars",
    { mergingIntList: [1, 2, 4] },
    { "$setElementOrder/mergingIntList": [1, 2, 3], mergingIntList: [3] },
    { mergingIntList: [1, 2, 3, 4] },
  ],
  [
    "set elements order in a list with server-only items",
    { mergingList: [{ name: 1, other: "a" }, { name: 3, value: 3 }, { name: 4, value: 4 }, { name: 2, value: 2 }, { name: 9 }] },
    { "$setElementOrder/mergingList": [{ name: 4 }, { name: 2 }, { name: 3 }, { name: 1 }] },
    { mergingList: [{ name: 4, value: 4 }, { name: 2, value: 2 }, { name: 3, value: 3 }, { name: 1, other: "a" }, { name: 9 }] },
  ],
  [
    "set elements order in a list with server-only items 2",
    { mergingList: [{ name: 1, other: "a" }, { name: 2, value: 2 }, { name: 9 }, { name: 3, value: 3 }, { name: 4, value: 4 }] },
    { "$setElementOrder/mergingList": [{ name: 2 }, { name: 1 }, { name: 4 }, { name: 3 }] },
    { mergingList: [{ name: 2, value: 2 }, { name: 1, other: "a" }, { name: 9 }, { name: 4, value: 4 }, { name: 3, value: 3 }] },
  ],
  [
    "set elements order in a list with server-only items 3",
    {
      mergingList: [
        { name: 1, other: "a" },
        { name: 2, value: 2 },
        { name: 7 },
        { name: 9 },
        { name: 8 },
        { name: 3, value: 3 },
        { name: 4, value: 4 },
      ],
    },
    { "$setElementOrder/mergingList": [{ name: 2 }, { name: 1 }, { name: 4 }, { name: 3 }] },
    {
      mergingList: [
        { name: 2, value: 2 },
        { name: 1, other: "a" },
        { name: 7 },
        { name: 9 },
        { name: 8 },
        { name: 4, value: 4 },
        { name: 3, value: 3 },
      ],
    },
  ],
];

describe("strategic merge patch ordering matches upstream test cases", () => {
  it.each(upstream)("%s", (_name, current, patch, want) => {
    expect(applyStrategicMergePatchWithSchema(current, patch, testSchema)).toEqual(want);
  });
});
