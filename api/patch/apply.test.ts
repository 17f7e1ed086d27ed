import { describe, expect, it } from "vitest";
import { applyPatch, applyServerSideApply, PatchError } from "./index.ts";

const DEPLOY = { apiVersion: "apps/v1", kind: "Deployment" };
const now = new Date("2025-03-04T05:06:07.890Z");

const manifest = () => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "web", namespace: "default", labels: { app: "web" } },
  spec: {
    replicas: 2,
    selector: { matchLabels: { app: "web" } },
    template: {
      metadata: { labels: { app: "web" } },
      spec: { containers: [{ name: "nginx", image: "nginx:1.26", ports: [{ containerPort: 80 }] }] },
    },
  },
});

type Obj = Record<string, unknown>;
const meta = (o: unknown): Obj => (o as { metadata: Obj }).metadata;
const spec = (o: unknown): Obj => (o as { spec: Obj }).spec;

describe("applyServerSideApply", () => {
  it("creates the object from the applied configuration and records an Apply managedFields entry", () => {
    const out = applyServerSideApply(undefined, manifest(), DEPLOY, "kubectl", { now });
    const { managedFields, ...rest } = meta(out);
    expect(rest).toEqual(manifest().metadata);
    expect(spec(out)).toEqual(manifest().spec);
    expect(managedFields).toEqual([
      {
        manager: "kubectl",
        operation: "Apply",
        apiVersion: "apps/v1",
        time: "2025-03-04T05:06:07Z",
        fieldsType: "FieldsV1",
        fieldsV1: {
          "f:metadata": { "f:labels": { "f:app": {} } },
          "f:spec": {
            "f:replicas": {},
            "f:selector": {},
            "f:template": {
              "f:metadata": { "f:labels": { "f:app": {} } },
              "f:spec": {
                "f:containers": {
                  'k:{"name":"nginx"}': {
                    ".": {},
                    "f:name": {},
                    "f:image": {},
                    "f:ports": { 'k:{"containerPort":80,"protocol":"TCP"}': { ".": {}, "f:containerPort": {} } },
                  },
                },
              },
            },
          },
        },
      },
    ]);
  });

  it("updates the live object, keeping fields and list items the applied configuration does not mention", () => {
    const live = applyServerSideApply(undefined, manifest(), DEPLOY, "kubectl", { now }) as Obj;
    // Fields written by others: defaults, a status, another container, another manager's entry.
    const withOthers = structuredClone(live);
    spec(withOthers)["strategy"] = { type: "RollingUpdate" };
    (withOthers as Obj)["status"] = { replicas: 2 };
    const tmpl = spec(withOthers)["template"] as { spec: { containers: Obj[] } };
    tmpl.spec.containers[0] = { ...tmpl.spec.containers[0], imagePullPolicy: "IfNotPresent" };
    tmpl.spec.containers.push({ name: "sidecar", image: "busybox" });
    (meta(withOthers)["managedFields"] as Obj[]).push({ manager: "kube-controller-manager", operation: "Update" });

    const applied = manifest();
    applied.spec.replicas = 3;
    applied.spec.template.spec.containers[0]!.image = "nginx:1.27";
    const later = new Date("2025-03-04T06:00:00Z");
    const before = JSON.stringify(withOthers);
    const out = applyServerSideApply(withOthers, applied, DEPLOY, "kubectl", { now: later });
    expect(JSON.stringify(withOthers)).toBe(before);

    expect(spec(out)["replicas"]).toBe(3);
    expect(spec(out)["strategy"]).toEqual({ type: "RollingUpdate" });
    expect((out as Obj)["status"]).toEqual({ replicas: 2 });
    expect((spec(out)["template"] as { spec: { containers: Obj[] } }).spec.containers).toEqual([
      { name: "nginx", image: "nginx:1.27", ports: [{ containerPort: 80 }], imagePullPolicy: "IfNotPresent" },
      { name: "sidecar", image: "busybox" },
    ]);
    const managed = meta(out)["managedFields"] as Obj[];
    expect(managed.map((m) => [m["manager"], m["operation"]])).toEqual([
      ["kubectl", "Apply"],
      ["kube-controller-manager", "Update"],
    ]);
    expect(managed[0]?.["time"]).toBe("2025-03-04T06:00:00Z");
  });

  it("merges finalizers as a set and replaces atomic lists such as tolerations", () => {
    const type = { apiVersion: "v1", kind: "Pod" };
    const live = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p", finalizers: ["a"] },
      spec: { tolerations: [{ key: "x", operator: "Exists" }], containers: [{ name: "c", image: "i" }] },
    };
    const applied = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p", finalizers: ["b"] },
      spec: { tolerations: [{ key: "y", operator: "Exists" }], containers: [{ name: "c", image: "j" }] },
    };
    const out = applyServerSideApply(live, applied, type, "mgr", { now });
    expect(meta(out)["finalizers"]).toEqual(["a", "b"]);
    expect(spec(out)).toEqual({ tolerations: [{ key: "y", operator: "Exists" }], containers: [{ name: "c", image: "j" }] });
    const fields = (meta(out)["managedFields"] as Obj[])[0]?.["fieldsV1"] as Obj;
    expect(fields["f:metadata"]).toEqual({ "f:finalizers": { 'v:"b"': {} } });
  });

  it("is reached through applyPatch with the field manager from the options", () => {
    const out = applyPatch(undefined, { patchType: "apply", patch: manifest() }, DEPLOY, { fieldManager: "kubectl", now });
    expect((meta(out)["managedFields"] as Obj[])[0]?.["manager"]).toBe("kubectl");
  });

  it.each([
    ["an apply without a field manager is a bad request", manifest(), "", /fieldManager is required/],
    ["an apply whose kind differs from the request is a bad request", { ...manifest(), kind: "ReplicaSet" }, "kubectl", /kind "ReplicaSet" but the request is for "Deployment"/],
    ["an apply configuration that is not an object is a bad request", ["x"], "kubectl", /must be an object, got array/],
  ])("%s", (_name, applied, manager, message) => {
    let err: unknown;
    try {
      applyServerSideApply(undefined, applied, DEPLOY, manager);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PatchError);
    expect((err as PatchError).reason).toBe("BadRequest");
    expect((err as PatchError).message).toMatch(message);
  });
});
