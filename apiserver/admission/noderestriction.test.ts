// NodeRestriction: a node writes only its own Node, the pods bound to it, its Lease, and tokens for its pods.

import { describe, expect, it } from "vitest";
import { RESOURCES, type KubeObject } from "../../api/index.ts";
import type { UserInfo } from "../auth.ts";
import type { ApiError } from "../errors.ts";
import type { AdmissionAttributes } from "./index.ts";
import { NodeRestriction, checkNodeTokenRequest, forbiddenNodeLabels } from "./noderestriction.ts";

const nodeA: UserInfo = { name: "system:node:a", uid: "", groups: ["system:nodes", "system:authenticated"] };
const info = (group: string, resource: string) => RESOURCES.find((r) => r.group === group && r.resource === resource)!;

const podOn = (name: string, nodeName: string, uid = "pod-uid"): KubeObject => ({ apiVersion: "v1", kind: "Pod", metadata: { name, namespace: "ns", uid, labels: { app: "x" } }, spec: { nodeName, containers: [] } } as KubeObject);
const pods = new Map<string, KubeObject>([["ns/mine", podOn("mine", "a")], ["ns/theirs", podOn("theirs", "b")]]);
const plugin = new NodeRestriction(
  async (ns, name) => pods.get(`${ns}/${name}`),
  async (name) => ({ apiVersion: "v1", kind: "Node", metadata: { name, uid: "node-uid" } }) as KubeObject,
);

function attrs(a: Partial<AdmissionAttributes> & Pick<AdmissionAttributes, "operation" | "info" | "name" | "object">): AdmissionAttributes {
  return { namespace: "", dryRun: false, userInfo: nodeA, ...a };
}

async function message(a: AdmissionAttributes): Promise<string | undefined> {
  try {
    await plugin.validate(a);
    return undefined;
  } catch (e) {
    return (e as ApiError).message;
  }
}

const node = (name: string, labels: Record<string, string> = {}, taints: unknown[] = []): KubeObject => ({ apiVersion: "v1", kind: "Node", metadata: { name, labels }, spec: { taints } } as KubeObject);

describe("NodeRestriction", () => {
  it("sees every operation of a node and nothing of others", () => {
    expect(plugin.handles(attrs({ operation: "DELETE", info: info("", "pods"), name: "p", object: podOn("p", "a") }))).toBe(true);
    expect(plugin.handles(attrs({ operation: "UPDATE", info: info("", "pods"), name: "p", object: podOn("p", "a"), userInfo: { name: "jane", uid: "", groups: [] } }))).toBe(false);
  });

  it("lets a node modify only its own Node, with the kubelet's labels and without touching taints", async () => {
    expect(await message(attrs({ operation: "UPDATE", info: info("", "nodes"), name: "b", object: node("b"), oldObject: node("b"), subresource: "status" }))).toBe('nodes "b" is forbidden: node "a" is not allowed to modify node "b"');
    expect(await message(attrs({ operation: "CREATE", info: info("", "nodes"), name: "a", object: node("a", { "topology.kubernetes.io/zone": "z", "kubelab.io/pool": "p" }) }))).toBeUndefined();
    expect(await message(attrs({ operation: "CREATE", info: info("", "nodes"), name: "a", object: node("a", { "node-role.kubernetes.io/master": "" }) }))).toBe(
      'nodes "a" is forbidden: node "a" is not allowed to set the following labels: node-role.kubernetes.io/master',
    );
    expect(await message(attrs({ operation: "UPDATE", info: info("", "nodes"), name: "a", object: node("a", {}, []), oldObject: node("a", {}, [{ key: "k", effect: "NoSchedule" }]) }))).toBe(
      'nodes "a" is forbidden: node "a" is not allowed to modify taints',
    );
    expect(forbiddenNodeLabels(["node-restriction.kubernetes.io/x", "kubernetes.io/hostname", "foo.k8s.io/y", "node.kubernetes.io/instance-type"])).toEqual(["foo.k8s.io/y", "node-restriction.kubernetes.io/x"]);
  });

  it("lets a node update status of and delete only the pods bound to it", async () => {
    const mine = pods.get("ns/mine")!;
    const theirs = pods.get("ns/theirs")!;
    expect(await message(attrs({ operation: "UPDATE", info: info("", "pods"), namespace: "ns", name: "mine", object: mine, oldObject: mine, subresource: "status" }))).toBeUndefined();
    expect(await message(attrs({ operation: "UPDATE", info: info("", "pods"), namespace: "ns", name: "theirs", object: theirs, oldObject: theirs, subresource: "status" }))).toBe(
      'pods "theirs" is forbidden: node "a" can only update pod status for pods with spec.nodeName set to itself',
    );
    expect(await message(attrs({ operation: "DELETE", info: info("", "pods"), namespace: "ns", name: "theirs", object: theirs, oldObject: theirs }))).toBe('pods "theirs" is forbidden: node "a" can only delete pods with spec.nodeName set to itself');
    expect(await message(attrs({ operation: "DELETE", info: info("", "pods"), namespace: "ns", name: "mine", object: mine, oldObject: mine }))).toBeUndefined();
    expect(await message(attrs({ operation: "UPDATE", info: info("", "pods"), namespace: "ns", name: "mine", object: mine, oldObject: mine }))).toBe('pods "mine" is forbidden: unexpected operation "UPDATE", node "a" can only create and delete mirror pods');
  });

  it("lets a node create only mirror pods bound to and owned by itself", async () => {
    const mirror = (nodeName: string, extra: Record<string, unknown> = {}): KubeObject =>
      ({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "static", namespace: "ns", annotations: { "kubernetes.io/config.mirror": "hash" }, ownerReferences: [{ apiVersion: "v1", kind: "Node", name: "a", uid: "node-uid", controller: true }] },
        spec: { nodeName, containers: [], ...extra },
      }) as KubeObject;
    expect(await message(attrs({ operation: "CREATE", info: info("", "pods"), namespace: "ns", name: "static", object: mirror("a") }))).toBeUndefined();
    expect(await message(attrs({ operation: "CREATE", info: info("", "pods"), namespace: "ns", name: "p", object: podOn("p", "a") }))).toBe('pods "p" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node "a" can only create mirror pods');
    expect(await message(attrs({ operation: "CREATE", info: info("", "pods"), namespace: "ns", name: "static", object: mirror("b") }))).toBe('pods "static" is forbidden: node "a" can only create pods with spec.nodeName set to itself');
    expect(await message(attrs({ operation: "CREATE", info: info("", "pods"), namespace: "ns", name: "static", object: mirror("a", { volumes: [{ name: "s", secret: { secretName: "x" } }] }) }))).toBe(
      'pods "static" is forbidden: node "a" can not create pods that reference secrets',
    );
  });

  it("lets a node take its own Lease and ask tokens only for its pods", async () => {
    const lease = (name: string): KubeObject => ({ apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name } }) as KubeObject;
    expect(await message(attrs({ operation: "CREATE", info: info("coordination.k8s.io", "leases"), namespace: "kube-node-lease", name: "a", object: lease("a") }))).toBeUndefined();
    expect(await message(attrs({ operation: "UPDATE", info: info("coordination.k8s.io", "leases"), namespace: "kube-node-lease", name: "b", object: lease("b"), oldObject: lease("b") }))).toBe(
      'leases.coordination.k8s.io "b" is forbidden: can only access node lease with the same name as the requesting node',
    );
    const tr = (name: string, uid: string): KubeObject => ({ apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", metadata: {}, spec: { boundObjectRef: { apiVersion: "v1", kind: "Pod", name, uid } } }) as KubeObject;
    const token = (o: KubeObject) => attrs({ operation: "CREATE", info: info("", "serviceaccounts"), namespace: "ns", name: "default", subresource: "token", object: o });
    expect(await message(token(tr("mine", "pod-uid")))).toBeUndefined();
    expect(await message(token(tr("theirs", "pod-uid")))).toBe('serviceaccounts "default" is forbidden: node requested token bound to a pod scheduled on a different node');
    expect(await message(token({ apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", metadata: {}, spec: {} } as KubeObject))).toBe('serviceaccounts "default" is forbidden: node requested token not bound to a pod');
  });

  it("refuses label changes outside the kubelet's set and another node's deletion, with upstream's messages", async () => {
    expect(await message(attrs({ operation: "UPDATE", info: info("", "nodes"), name: "a", object: node("a", { "kubernetes.io/hostname": "a", "node-role.kubernetes.io/worker": "" }), oldObject: node("a", { "kubernetes.io/hostname": "a" }) }))).toBe(
      'nodes "a" is forbidden: is not allowed to modify labels: node-role.kubernetes.io/worker',
    );
    expect(await message(attrs({ operation: "UPDATE", info: info("", "nodes"), name: "a", object: node("a", { "kubernetes.io/hostname": "a", "kubelab.io/free": "x" }), oldObject: node("a", { "kubernetes.io/hostname": "a" }) }))).toBeUndefined();
    expect(await message(attrs({ operation: "DELETE", info: info("", "nodes"), name: "b", object: node("b"), oldObject: node("b") }))).toBe('nodes "b" is forbidden: node "a" is not allowed to modify node "b"');
    // Taints the node did not change are fine, however the list is spelled.
    expect(await message(attrs({ operation: "UPDATE", info: info("", "nodes"), name: "a", object: { ...node("a"), spec: {} } as KubeObject, oldObject: node("a", {}, []) }))).toBeUndefined();
  });

  it("refuses pod status writes that change labels, and evictions of other nodes' pods", async () => {
    const mine = pods.get("ns/mine")!;
    const relabelled = { ...mine, metadata: { ...mine.metadata, labels: { app: "y" } } } as KubeObject;
    expect(await message(attrs({ operation: "UPDATE", info: info("", "pods"), namespace: "ns", name: "mine", object: relabelled, oldObject: mine, subresource: "status" }))).toBe('pods "mine" is forbidden: node "a" cannot update labels through pod status');
    const eviction = (name: string): KubeObject => ({ apiVersion: "policy/v1", kind: "Eviction", metadata: { name, namespace: "ns" } }) as KubeObject;
    const evict = (name: string) => attrs({ operation: "CREATE", info: info("", "pods"), namespace: "ns", name, object: eviction(name), subresource: "eviction" });
    expect(await message(evict("mine"))).toBeUndefined();
    expect(await message(evict("theirs"))).toBe('pods "theirs" is forbidden: node a can only evict pods with spec.nodeName set to itself');
    expect(await message(evict("gone"))).toBe('pods "gone" not found');
    expect(await message(attrs({ operation: "UPDATE", info: info("", "pods"), namespace: "ns", name: "mine", object: mine, oldObject: mine, subresource: "ephemeralcontainers" }))).toBe(
      `pods "mine" is forbidden: unexpected pod subresource "ephemeralcontainers", only 'status' and 'eviction' are allowed`,
    );
  });

  it("checks a mirror pod's owner against the node's uid", async () => {
    const mirror = { apiVersion: "v1", kind: "Pod", metadata: { name: "static", namespace: "ns", annotations: { "kubernetes.io/config.mirror": "h" }, ownerReferences: [{ apiVersion: "v1", kind: "Node", name: "a", uid: "stale", controller: true }] }, spec: { nodeName: "a", containers: [] } } as KubeObject;
    expect(await message(attrs({ operation: "CREATE", info: info("", "pods"), namespace: "ns", name: "static", object: mirror }))).toBe('pods "static" is forbidden: node a UID mismatch: expected node-uid got stale');
  });

  it("leaves claims alone except their status, whose spec a node may not change", async () => {
    const pvc = (size: string): KubeObject => ({ apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name: "data", namespace: "ns" }, spec: { resources: { requests: { storage: size } } }, status: { phase: "Bound" } }) as KubeObject;
    expect(await message(attrs({ operation: "UPDATE", info: info("", "persistentvolumeclaims"), namespace: "ns", name: "data", object: pvc("1Gi"), oldObject: pvc("1Gi") }))).toBeUndefined();
    const grown = { ...pvc("1Gi"), status: { phase: "Bound", capacity: { storage: "2Gi" } } } as KubeObject;
    expect(await message(attrs({ operation: "UPDATE", info: info("", "persistentvolumeclaims"), namespace: "ns", name: "data", object: grown, oldObject: pvc("1Gi"), subresource: "status" }))).toBeUndefined();
    expect(await message(attrs({ operation: "UPDATE", info: info("", "persistentvolumeclaims"), namespace: "ns", name: "data", object: pvc("5Gi"), oldObject: pvc("1Gi"), subresource: "status" }))).toBe(
      'persistentvolumeclaims "data" is forbidden: node "a" is not allowed to update fields other than status.capacity and status.conditions',
    );
  });
});

describe("checkNodeTokenRequest (the serviceaccounts/token handler's NodeRestriction)", () => {
  const getPod = async (ns: string, name: string) => pods.get(`${ns}/${name}`);
  const tr = (ref?: Record<string, string>): KubeObject => ({ apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", metadata: {}, spec: { audiences: [], ...(ref ? { boundObjectRef: ref } : {}) } }) as KubeObject;
  const check = async (user: UserInfo, req: KubeObject): Promise<{ code?: number; message?: string } | undefined> => {
    try {
      await checkNodeTokenRequest(user, "ns", "default", req, getPod);
      return undefined;
    } catch (e) {
      return { code: (e as ApiError).code, message: (e as ApiError).message };
    }
  };

  it("does nothing for users that are not nodes", async () => {
    expect(await check({ name: "jane", uid: "", groups: [] }, tr())).toBeUndefined();
  });

  it("allows a node a token bound to its own pod and nothing else", async () => {
    expect(await check(nodeA, tr({ apiVersion: "v1", kind: "Pod", name: "mine", uid: "pod-uid" }))).toBeUndefined();
    expect(await check(nodeA, tr())).toEqual({ code: 403, message: 'serviceaccounts "default" is forbidden: node requested token not bound to a pod' });
    expect(await check(nodeA, tr({ apiVersion: "v1", kind: "Secret", name: "mine", uid: "x" }))).toEqual({ code: 403, message: 'serviceaccounts "default" is forbidden: node requested token not bound to a pod' });
    expect(await check(nodeA, tr({ apiVersion: "v1", kind: "Pod", name: "mine" }))).toEqual({ code: 403, message: 'serviceaccounts "default" is forbidden: node requested token with a pod binding without a uid' });
    expect(await check(nodeA, tr({ apiVersion: "v1", kind: "Pod", name: "gone", uid: "u" }))).toEqual({ code: 404, message: 'pods "gone" not found' });
    expect(await check(nodeA, tr({ apiVersion: "v1", kind: "Pod", name: "mine", uid: "old" }))).toEqual({
      code: 403,
      message: 'serviceaccounts "default" is forbidden: the UID in the bound object reference (old) does not match the UID in record. The object might have been deleted and then recreated',
    });
    expect(await check(nodeA, tr({ apiVersion: "v1", kind: "Pod", name: "theirs", uid: "pod-uid" }))).toEqual({ code: 403, message: 'serviceaccounts "default" is forbidden: node requested token bound to a pod scheduled on a different node' });
  });
});
