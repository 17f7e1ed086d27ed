// The Node authorizer: a kubelet reaches only what the pods bound to it reference (secrets,
// configmaps, claims → volumes → their secrets, service account tokens, attachments), and the rest of
// NodeRules() everywhere. Graph cases feed a NodeGraph directly; one case follows a real registry.

import { afterEach, describe, expect, it } from "vitest";

import type { KubeObject } from "../../api/index.ts";
import type { UserInfo } from "../auth.ts";
import { Registry } from "../registry/registry.ts";
import { openBackend, type Backend } from "../storage/index.ts";
import { NodeAuthorizer, NodeGraph, nodeIdentity, podRefs } from "./node.ts";
import type { Attributes, AuthorizerResult } from "./types.ts";

const node = (n: string): UserInfo => ({ name: `system:node:${n}`, uid: "", groups: ["system:nodes", "system:authenticated"] });

function ask(user: UserInfo, verb: string, resource: string, namespace: string, name: string, more: Partial<Attributes> = {}): Attributes {
  return { user, verb, isResourceRequest: true, path: "", apiGroup: "", apiVersion: "v1", resource, subresource: "", namespace, name, ...more };
}

function pod(name: string, nodeName: string, spec: Record<string, unknown> = {}, namespace = "team"): KubeObject {
  return { apiVersion: "v1", kind: "Pod", metadata: { name, namespace, uid: `uid-${name}` }, spec: { nodeName, containers: [{ name: "c", image: "busybox" }], ...spec } } as KubeObject;
}

const allow: AuthorizerResult = { decision: "Allow", reason: "" };
const noRelation = (n: string): AuthorizerResult => ({ decision: "NoOpinion", reason: `no relationship found between node '${n}' and this object` });

function authorizer(): { graph: NodeGraph; authz: NodeAuthorizer } {
  const graph = new NodeGraph();
  return { graph, authz: new NodeAuthorizer(graph) };
}

describe("NodeAuthorizer graph", () => {
  it("lets a node get the secret of its own pod, not one of another node's pod nor an unreferenced one", () => {
    const { graph, authz } = authorizer();
    graph.setPod(pod("web", "n1", { volumes: [{ name: "s", secret: { secretName: "web-tls" } }] }));
    graph.setPod(pod("db", "n2", { containers: [{ name: "c", image: "pg", env: [{ name: "PW", valueFrom: { secretKeyRef: { name: "db-pw", key: "pw" } } }] }] }));

    expect(authz.authorize(ask(node("n1"), "get", "secrets", "team", "web-tls"))).toEqual(allow);
    expect(authz.authorize(ask(node("n2"), "get", "secrets", "team", "db-pw"))).toEqual(allow);
    expect(authz.authorize(ask(node("n1"), "get", "secrets", "team", "db-pw"))).toEqual(noRelation("n1"));
    expect(authz.authorize(ask(node("n1"), "get", "secrets", "team", "unreferenced"))).toEqual(noRelation("n1"));
    // The same name in another namespace is another object.
    expect(authz.authorize(ask(node("n1"), "get", "secrets", "other", "web-tls"))).toEqual(noRelation("n1"));
  });

  it("reaches secrets through envFrom and imagePullSecrets, and configmaps through projected volumes and env", () => {
    const { graph, authz } = authorizer();
    graph.setPod(
      pod("app", "n1", {
        imagePullSecrets: [{ name: "registry" }],
        initContainers: [{ name: "init", image: "x", envFrom: [{ secretRef: { name: "init-env" }, configMapRef: { name: "init-cm" } }] }],
        containers: [{ name: "c", image: "x", env: [{ name: "MODE", valueFrom: { configMapKeyRef: { name: "modes", key: "m" } } }] }],
        volumes: [{ name: "p", projected: { sources: [{ configMap: { name: "projected-cm" } }, { secret: { name: "projected-secret" } }, { serviceAccountToken: { path: "token" } }] } }],
      }),
    );
    for (const s of ["registry", "init-env", "projected-secret"]) expect(authz.authorize(ask(node("n1"), "get", "secrets", "team", s))).toEqual(allow);
    for (const c of ["init-cm", "modes", "projected-cm"]) expect(authz.authorize(ask(node("n1"), "get", "configmaps", "team", c))).toEqual(allow);
    expect(authz.authorize(ask(node("n2"), "get", "configmaps", "team", "projected-cm"))).toEqual(noRelation("n2"));
    expect(podRefs(pod("x", "n1")).secrets.size).toBe(0);
  });

  it("follows a pod's claim to its bound volume and the volume's secrets", () => {
    const { graph, authz } = authorizer();
    graph.setPod(pod("db", "n1", { volumes: [{ name: "data", persistentVolumeClaim: { claimName: "data" } }, { name: "scratch", ephemeral: { volumeClaimTemplate: { spec: {} } } }] }));
    graph.setPV({
      apiVersion: "v1",
      kind: "PersistentVolume",
      metadata: { name: "pv-1" },
      spec: { claimRef: { namespace: "team", name: "data" }, csi: { driver: "d", volumeHandle: "h", nodePublishSecretRef: { namespace: "storage", name: "csi-creds" }, controllerPublishSecretRef: { namespace: "storage", name: "attacher-creds" } } },
    } as KubeObject);
    graph.setPV({ apiVersion: "v1", kind: "PersistentVolume", metadata: { name: "pv-2" }, spec: { claimRef: { namespace: "team", name: "someone-else" } } } as KubeObject);

    expect(authz.authorize(ask(node("n1"), "get", "persistentvolumeclaims", "team", "data"))).toEqual(allow);
    expect(authz.authorize(ask(node("n1"), "get", "persistentvolumeclaims", "team", "db-scratch"))).toEqual(allow);
    expect(authz.authorize(ask(node("n1"), "get", "persistentvolumes", "", "pv-1"))).toEqual(allow);
    expect(authz.authorize(ask(node("n1"), "get", "secrets", "storage", "csi-creds"))).toEqual(allow);
    // The attacher's secret is not the kubelet's.
    expect(authz.authorize(ask(node("n1"), "get", "secrets", "storage", "attacher-creds"))).toEqual(noRelation("n1"));
    expect(authz.authorize(ask(node("n1"), "get", "persistentvolumes", "", "pv-2"))).toEqual(noRelation("n1"));
    expect(authz.authorize(ask(node("n2"), "get", "persistentvolumes", "", "pv-1"))).toEqual(noRelation("n2"));
    // A claim's status only, and nothing but get of the claim itself.
    expect(authz.authorize(ask(node("n1"), "update", "persistentvolumeclaims", "team", "data", { subresource: "status" }))).toEqual(allow);
    expect(authz.authorize(ask(node("n1"), "update", "persistentvolumeclaims", "team", "data"))).toEqual({ decision: "NoOpinion", reason: "can only get individual resources of this type" });
    expect(authz.authorize(ask(node("n1"), "list", "persistentvolumes", "", ""))).toEqual({ decision: "NoOpinion", reason: "can only get individual resources of this type" });

    // Unbinding the volume cuts the chain.
    graph.deletePV({ apiVersion: "v1", kind: "PersistentVolume", metadata: { name: "pv-1" } } as KubeObject);
    expect(authz.authorize(ask(node("n1"), "get", "persistentvolumes", "", "pv-1"))).toEqual(noRelation("n1"));
    expect(authz.authorize(ask(node("n1"), "get", "secrets", "storage", "csi-creds"))).toEqual(noRelation("n1"));
  });

  it("keeps a secret reachable while any pod on the node references it, and moves with a pod", () => {
    const { graph, authz } = authorizer();
    const spec = { volumes: [{ name: "s", secret: { secretName: "shared" } }] };
    graph.setPod(pod("a", "n1", spec));
    graph.setPod(pod("b", "n1", spec));
    graph.deletePod(pod("a", "n1"));
    expect(authz.authorize(ask(node("n1"), "get", "secrets", "team", "shared"))).toEqual(allow);
    graph.setPod(pod("b", "n2", spec));
    expect(authz.authorize(ask(node("n1"), "get", "secrets", "team", "shared"))).toEqual(noRelation("n1"));
    expect(authz.authorize(ask(node("n2"), "get", "secrets", "team", "shared"))).toEqual(allow);
    // An unscheduled pod gives no node anything.
    graph.setPod(pod("c", "", { volumes: [{ name: "s", secret: { secretName: "pending" } }] }));
    expect(authz.authorize(ask(node("n1"), "get", "secrets", "team", "pending"))).toEqual(noRelation("n1"));
  });

  it("lets a node ask tokens only for the service accounts of its pods, and get only its attachments", () => {
    const { graph, authz } = authorizer();
    graph.setPod(pod("web", "n1", { serviceAccountName: "web-sa" }));
    graph.setVolumeAttachment({ apiVersion: "storage.k8s.io/v1", kind: "VolumeAttachment", metadata: { name: "va-1" }, spec: { nodeName: "n1" } } as KubeObject);
    const token = (n: string, sa: string) => authz.authorize(ask(node(n), "create", "serviceaccounts", "team", sa, { subresource: "token" }));
    expect(token("n1", "web-sa")).toEqual(allow);
    expect(token("n2", "web-sa")).toEqual(noRelation("n2"));
    expect(token("n1", "default")).toEqual(noRelation("n1"));
    expect(authz.authorize(ask(node("n1"), "get", "serviceaccounts", "team", "web-sa"))).toEqual({ decision: "NoOpinion", reason: "can only create tokens for individual service accounts" });
    const va = (n: string) => authz.authorize(ask(node(n), "get", "volumeattachments", "", "va-1", { apiGroup: "storage.k8s.io" }));
    expect(va("n1")).toEqual(allow);
    expect(va("n2")).toEqual(noRelation("n2"));
  });

  it("has no opinion on listing or writing secrets and configmaps, with upstream's reasons", () => {
    const { graph, authz } = authorizer();
    graph.setPod(pod("web", "n1", { volumes: [{ name: "s", secret: { secretName: "web-tls" } }] }));
    expect(authz.authorize(ask(node("n1"), "list", "secrets", "team", ""))).toEqual({ decision: "NoOpinion", reason: "No Object name found" });
    expect(authz.authorize(ask(node("n1"), "watch", "configmaps", "team", ""))).toEqual({ decision: "NoOpinion", reason: "No Object name found" });
    // A list narrowed to one name (fieldSelector metadata.name) is a read of that object.
    expect(authz.authorize(ask(node("n1"), "watch", "secrets", "team", "web-tls"))).toEqual(allow);
    expect(authz.authorize(ask(node("n1"), "list", "secrets", "", ""))).toEqual({ decision: "NoOpinion", reason: "can only read namespaced object of this type" });
    expect(authz.authorize(ask(node("n1"), "delete", "secrets", "team", "web-tls"))).toEqual({ decision: "NoOpinion", reason: "can only read resources of this type" });
    expect(authz.authorize(ask(node("n1"), "update", "configmaps", "team", "x"))).toEqual({ decision: "NoOpinion", reason: "can only read resources of this type" });
  });
});

describe("NodeAuthorizer identity and NodeRules", () => {
  const { authz } = authorizer();

  it("has no opinion for users that are not nodes", () => {
    expect(nodeIdentity({ name: "system:node:n1", uid: "", groups: ["system:authenticated"] }).isNode).toBe(false);
    expect(authz.authorize(ask({ name: "system:node:n1", uid: "", groups: [] }, "get", "nodes", "", "n1"))).toEqual({ decision: "NoOpinion", reason: "" });
    expect(authz.authorize(ask({ name: "jane", uid: "", groups: ["system:nodes"] }, "get", "nodes", "", "n1"))).toEqual({ decision: "NoOpinion", reason: "" });
    expect(authz.authorize(ask({ name: "system:node:", uid: "", groups: ["system:nodes"] }, "get", "nodes", "", "n1"))).toEqual({ decision: "NoOpinion", reason: 'unknown node for user "system:node:"' });
  });

  it("allows what NodeRules grant and nothing else", () => {
    const n = node("n1");
    expect(authz.authorize(ask(n, "update", "nodes", "", "n1", { subresource: "status" }))).toEqual(allow);
    expect(authz.authorize(ask(n, "patch", "nodes", "", "n1", { subresource: "status" }))).toEqual(allow);
    expect(authz.authorize(ask(n, "create", "nodes", "", ""))).toEqual(allow);
    expect(authz.authorize(ask(n, "list", "pods", "", ""))).toEqual(allow);
    expect(authz.authorize(ask(n, "update", "pods", "team", "p", { subresource: "status" }))).toEqual(allow);
    expect(authz.authorize(ask(n, "create", "pods", "team", "p", { subresource: "eviction" }))).toEqual(allow);
    expect(authz.authorize(ask(n, "watch", "services", "", ""))).toEqual(allow);
    expect(authz.authorize(ask(n, "create", "events", "team", ""))).toEqual(allow);
    expect(authz.authorize(ask(n, "create", "certificatesigningrequests", "", "", { apiGroup: "certificates.k8s.io" }))).toEqual(allow);
    expect(authz.authorize(ask(n, "create", "tokenreviews", "", "", { apiGroup: "authentication.k8s.io" }))).toEqual(allow);
    expect(authz.authorize(ask(n, "create", "subjectaccessreviews", "", "", { apiGroup: "authorization.k8s.io" }))).toEqual(allow);
    expect(authz.authorize(ask(n, "list", "runtimeclasses", "", "", { apiGroup: "node.k8s.io" }))).toEqual(allow);
    expect(authz.authorize(ask(n, "list", "csidrivers", "", "", { apiGroup: "storage.k8s.io" }))).toEqual(allow);
    expect(authz.authorize(ask(n, "update", "leases", "kube-node-lease", "n1", { apiGroup: "coordination.k8s.io" }))).toEqual(allow);
    expect(authz.authorize(ask(n, "update", "leases", "kube-node-lease", "n2", { apiGroup: "coordination.k8s.io" }))).toEqual({ decision: "NoOpinion", reason: "can only access node lease with the same name as the requesting node" });
    expect(authz.authorize(ask(n, "get", "leases", "kube-system", "n1", { apiGroup: "coordination.k8s.io" }))).toEqual({ decision: "NoOpinion", reason: 'can only access leases in the "kube-node-lease" system namespace' });
    expect(authz.authorize(ask(n, "update", "csinodes", "", "n2", { apiGroup: "storage.k8s.io" }))).toEqual({ decision: "NoOpinion", reason: "can only access CSINode with the same name as the requesting node" });

    expect(authz.authorize(ask(n, "create", "deployments", "team", "", { apiGroup: "apps" }))).toEqual({ decision: "NoOpinion", reason: "" });
    expect(authz.authorize(ask(n, "update", "pods", "team", "p"))).toEqual({ decision: "NoOpinion", reason: "" });
    expect(authz.authorize(ask(n, "delete", "namespaces", "", "team"))).toEqual({ decision: "NoOpinion", reason: "" });
    expect(authz.authorize({ ...ask(n, "get", "", "", ""), isResourceRequest: false, path: "/metrics" })).toEqual({ decision: "NoOpinion", reason: "" });
  });

  it("lists NodeRules for a node as incomplete, and nothing for others", () => {
    const r = authz.rulesFor(node("n1"), "team");
    expect(r.incomplete).toBe(true);
    expect(r.resourceRules).toContainEqual({ verbs: ["update", "patch"], apiGroups: [""], resources: ["nodes/status"], resourceNames: [] });
    expect(r.resourceRules).toContainEqual({ verbs: ["get", "create", "update", "patch", "delete"], apiGroups: ["coordination.k8s.io"], resources: ["leases"], resourceNames: [] });
    expect(authz.rulesFor({ name: "jane", uid: "", groups: [] }, "team")).toEqual({ resourceRules: [], nonResourceRules: [], incomplete: false });
  });
});

describe("NodeAuthorizer over a registry", () => {
  let backend: Backend | undefined;
  let registry: Registry | undefined;
  let authz: NodeAuthorizer | undefined;

  afterEach(async () => {
    authz?.stop();
    registry?.stop();
    await backend?.close?.();
  });

  it("follows the watch cache: a pod's secret becomes reachable when it is bound and stops when it goes", async () => {
    backend = await openBackend("memory://");
    registry = new Registry(backend);
    authz = new NodeAuthorizer(registry);
    await registry.start();
    const reg = registry;
    const fresh = async (o: KubeObject) => {
      await reg.cache.waitUntilFresh(Number(o.metadata.resourceVersion));
      return o;
    };
    await fresh(await reg.store("", "namespaces").create("", { apiVersion: "v1", kind: "Namespace", metadata: { name: "team" } } as KubeObject));
    const secretGet = ask(node("n1"), "get", "secrets", "team", "web-tls");

    await fresh(await reg.store("", "pods").create("team", pod("web", "", { volumes: [{ name: "s", secret: { secretName: "web-tls" } }] })));
    expect(authz.authorize(secretGet)).toEqual(noRelation("n1"));

    // Bound as the scheduler binds it (pods/binding writes only spec.nodeName).
    const bound = await reg.store("", "pods").update("team", "web", (cur) => ({ ...cur!, spec: { ...(cur as unknown as { spec: object }).spec, nodeName: "n1" } }) as KubeObject, { subresource: "binding" });
    await fresh(bound.obj);
    expect(authz.authorize(secretGet)).toEqual(allow);

    const gone = await reg.store("", "pods").delete("team", "web", { gracePeriodSeconds: 0 });
    await fresh(gone.obj);
    expect(authz.authorize(secretGet)).toEqual(noRelation("n1"));
  });
});
