// The authorizer chain over a real registry (memory backend): the Node authorizer's graph, the
// bootstrap policy and its reconcile, escalation prevention, and the review APIs' answers.

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import type { KubeObject } from "../../api/index.ts";
import type { UserInfo } from "../auth.ts";
import { ApiError } from "../errors.ts";
import { Registry } from "../registry/registry.ts";
import { openBackend, type Backend } from "../storage/index.ts";
import { AUTOUPDATE_ANNOTATION, installAuthorization, newAuthorizer, type Attributes, type ChainAuthorizer, type ClusterRole, type ClusterRoleBinding } from "./index.ts";

let backend: Backend;
let registry: Registry;
let authz: ChainAuthorizer;

const node = (n: string): UserInfo => ({ name: `system:node:${n}`, uid: "", groups: ["system:nodes", "system:authenticated"] });
const jane: UserInfo = { name: "jane", uid: "u1", groups: ["system:authenticated"] };
const admin: UserInfo = { name: "kubelab-admin", uid: "", groups: ["system:masters", "system:authenticated"] };

function attrs(user: UserInfo, verb: string, resource: string, namespace: string, name: string, more: Partial<Attributes> = {}): Attributes {
  return { user, verb, isResourceRequest: true, path: "", apiGroup: "", apiVersion: "v1", resource, subresource: "", namespace, name, ...more };
}

async function fresh(obj: KubeObject): Promise<KubeObject> {
  await registry.cache.waitUntilFresh(Number(obj.metadata.resourceVersion));
  return obj;
}

async function create(group: string, resource: string, ns: string, obj: KubeObject, user?: UserInfo): Promise<KubeObject> {
  return fresh(await registry.store(group, resource).create(ns, obj, user ? { user } : {}));
}

async function rejection(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    return e as ApiError;
  }
  throw new Error("expected a rejection");
}

beforeEach(async () => {
  backend = await openBackend("memory://");
  registry = new Registry(backend);
  authz = newAuthorizer(["Node", "RBAC"], registry);
  installAuthorization(registry, authz);
  await registry.start();
  await create("", "namespaces", "", { apiVersion: "v1", kind: "Namespace", metadata: { name: "team" } });
});

afterEach(async () => {
  registry.stop();
  await backend.close?.();
});

function pod(name: string, nodeName: string, spec: Record<string, unknown> = {}): KubeObject {
  return { apiVersion: "v1", kind: "Pod", metadata: { name }, spec: { nodeName, containers: [{ name: "c", image: "busybox" }], ...spec } };
}

describe("Node authorizer", () => {
  it("lets a node get the secrets, configmaps and claims of its own pods only", async () => {
    await create("", "pods", "team", pod("p1", "n1", { volumes: [{ name: "s", secret: { secretName: "s1" } }, { name: "d", persistentVolumeClaim: { claimName: "data" } }], serviceAccountName: "app" }));
    await create("", "pods", "team", pod("p2", "n2", { containers: [{ name: "c", image: "busybox", envFrom: [{ configMapRef: { name: "cm2" } }] }] }));

    expect((await authz.authorize(attrs(node("n1"), "get", "secrets", "team", "s1"))).decision).toBe("Allow");
    expect(await authz.authorize(attrs(node("n2"), "get", "secrets", "team", "s1"))).toEqual({ decision: "NoOpinion", reason: "no relationship found between node 'n2' and this object" });
    expect((await authz.authorize(attrs(node("n2"), "get", "configmaps", "team", "cm2"))).decision).toBe("Allow");
    expect((await authz.authorize(attrs(node("n1"), "get", "configmaps", "team", "cm2"))).decision).toBe("NoOpinion");
    expect(await authz.authorize(attrs(node("n1"), "get", "secrets", "team", "unreferenced"))).toEqual({ decision: "NoOpinion", reason: "no relationship found between node 'n1' and this object" });
    expect((await authz.authorize(attrs(node("n1"), "get", "persistentvolumeclaims", "team", "data"))).decision).toBe("Allow");
    // A list of all secrets is never a node's; a list of one (fieldSelector metadata.name) of its own is.
    expect(await authz.authorize(attrs(node("n1"), "list", "secrets", "team", ""))).toEqual({ decision: "NoOpinion", reason: "No Object name found" });
    expect((await authz.authorize(attrs(node("n1"), "watch", "secrets", "team", "s1"))).decision).toBe("Allow");
    expect(await authz.authorize(attrs(node("n1"), "list", "persistentvolumeclaims", "team", ""))).toEqual({ decision: "NoOpinion", reason: "can only get individual resources of this type" });
    // Tokens only for the service accounts of its pods.
    expect((await authz.authorize(attrs(node("n1"), "create", "serviceaccounts", "team", "app", { subresource: "token" }))).decision).toBe("Allow");
    expect((await authz.authorize(attrs(node("n2"), "create", "serviceaccounts", "team", "app", { subresource: "token" }))).decision).toBe("NoOpinion");
    // A user that merely looks like a node is not one.
    expect((await authz.authorize(attrs({ name: "system:node:n1", uid: "", groups: [] }, "get", "secrets", "team", "s1"))).decision).toBe("NoOpinion");
  });

  it("follows pods as they move and go, and claims to their volumes", async () => {
    await create("", "persistentvolumes", "", { apiVersion: "v1", kind: "PersistentVolume", metadata: { name: "pv1" }, spec: { capacity: { storage: "1Gi" }, accessModes: ["ReadWriteOnce"], csi: { driver: "d", volumeHandle: "h" }, claimRef: { namespace: "team", name: "data" } } });
    const p = await create("", "pods", "team", pod("p1", "n1", { volumes: [{ name: "d", persistentVolumeClaim: { claimName: "data" } }] }));
    expect((await authz.authorize(attrs(node("n1"), "get", "persistentvolumes", "", "pv1"))).decision).toBe("Allow");
    expect((await authz.authorize(attrs(node("n2"), "get", "persistentvolumes", "", "pv1"))).decision).toBe("NoOpinion");
    const del = await registry.store("", "pods").delete("team", "p1", { gracePeriodSeconds: 0 });
    await registry.cache.waitUntilFresh(Number(del.obj.metadata.resourceVersion ?? p.metadata.resourceVersion));
    expect((await authz.authorize(attrs(node("n1"), "get", "persistentvolumes", "", "pv1"))).decision).toBe("NoOpinion");
  });

  it("allows what NodeRules allow, and node leases only by their own name", async () => {
    expect((await authz.authorize(attrs(node("n1"), "update", "pods", "team", "x", { subresource: "status" }))).decision).toBe("Allow");
    expect((await authz.authorize(attrs(node("n1"), "list", "services", "", ""))).decision).toBe("Allow");
    expect((await authz.authorize(attrs(node("n1"), "delete", "deployments", "team", "d", { apiGroup: "apps" }))).decision).toBe("NoOpinion");
    expect((await authz.authorize(attrs(node("n1"), "update", "leases", "kube-node-lease", "n1", { apiGroup: "coordination.k8s.io" }))).decision).toBe("Allow");
    expect(await authz.authorize(attrs(node("n1"), "update", "leases", "kube-node-lease", "n2", { apiGroup: "coordination.k8s.io" }))).toEqual({
      decision: "NoOpinion",
      reason: "can only access node lease with the same name as the requesting node",
    });
  });

  it("says a node's rules are incomplete in a rules review", async () => {
    const r = authz.rulesFor(node("n1"), "team");
    expect(r.incomplete).toBe(true);
    expect(r.evaluationError).toBe("node authorizer does not support user rule resolution");
  });
});

describe("bootstrap policy", () => {
  it("creates the defaults with their label and autoupdate annotation", async () => {
    const cr = (await registry.store("rbac.authorization.k8s.io", "clusterroles").get("", "cluster-admin")) as ClusterRole;
    expect(cr.metadata.labels).toEqual({ "kubernetes.io/bootstrapping": "rbac-defaults" });
    expect(cr.metadata.annotations).toEqual({ [AUTOUPDATE_ANNOTATION]: "true" });
    const b = (await registry.store("rbac.authorization.k8s.io", "clusterrolebindings").get("", "system:public-info-viewer")) as ClusterRoleBinding;
    expect(b.subjects?.map((s) => s.name)).toEqual(["system:authenticated", "system:unauthenticated"]);
    // The components can do their jobs.
    const scheduler: UserInfo = { name: "system:kube-scheduler", uid: "", groups: ["system:authenticated"] };
    expect((await authz.authorize(attrs(scheduler, "create", "pods", "team", "p", { subresource: "binding" }))).decision).toBe("Allow");
    expect((await authz.authorize(attrs(scheduler, "update", "leases", "kube-system", "kube-scheduler", { apiGroup: "coordination.k8s.io" }))).decision).toBe("Allow");
    const cm: UserInfo = { name: "system:kube-controller-manager", uid: "", groups: ["system:authenticated"] };
    expect((await authz.authorize(attrs(cm, "create", "pods", "team", ""))).decision).toBe("Allow");
    expect((await authz.authorize(attrs(cm, "escalate", "clusterroles", "", "admin", { apiGroup: "rbac.authorization.k8s.io" }))).decision).toBe("Allow");
    const anon: UserInfo = { name: "system:anonymous", uid: "", groups: ["system:unauthenticated"] };
    expect((await authz.authorize({ ...attrs(anon, "get", "", "", ""), isResourceRequest: false, path: "/healthz" })).decision).toBe("Allow");
    expect((await authz.authorize({ ...attrs(anon, "get", "", "", ""), isResourceRequest: false, path: "/api" })).decision).toBe("NoOpinion");
  });

  it("adds missing rules and subjects to autoupdate objects and leaves autoupdate=false alone", async () => {
    const roles = registry.store("rbac.authorization.k8s.io", "clusterroles");
    await roles.update("", "system:discovery", (cur) => ({ ...cur!, rules: [] }));
    await roles.update("", "system:monitoring", (cur) => ({ ...cur!, metadata: { ...cur!.metadata, annotations: { [AUTOUPDATE_ANNOTATION]: "false" } }, rules: [] }));
    const bindings = registry.store("rbac.authorization.k8s.io", "clusterrolebindings");
    await bindings.update("", "cluster-admin", (cur) => ({ ...cur!, subjects: [{ kind: "User", apiGroup: "rbac.authorization.k8s.io", name: "someone" }] }));
    const { reconcileBootstrapPolicy } = await import("./bootstrappolicy.ts");
    const report = await reconcileBootstrapPolicy(registry);
    expect(report.updated).toContain("clusterroles/system:discovery");
    expect(report.skipped).toContain("clusterroles/system:monitoring");
    expect(((await roles.get("", "system:discovery")) as ClusterRole).rules?.length).toBeGreaterThan(0);
    expect(((await roles.get("", "system:monitoring")) as ClusterRole).rules).toEqual([]);
    expect(((await bindings.get("", "cluster-admin")) as ClusterRoleBinding).subjects?.map((s) => s.name)).toEqual(["someone", "system:masters"]);
    // A second run changes nothing.
    const again = await reconcileBootstrapPolicy(registry);
    expect(again.created).toEqual([]);
    expect(again.updated).toEqual([]);
  });
});

describe("escalation prevention", () => {
  const role = (name: string, rules: unknown[]): KubeObject => ({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name }, rules } as KubeObject);

  it("refuses a role granting what the user does not hold, with upstream's message", async () => {
    const e = await rejection(create("rbac.authorization.k8s.io", "clusterroles", "", role("x", [{ verbs: ["get"], apiGroups: [""], resources: ["pods"] }]), jane));
    expect(e.code).toBe(403);
    expect(e.message).toBe(
      'clusterroles.rbac.authorization.k8s.io "x" is forbidden: user "jane" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[""], Resources:["pods"], Verbs:["get"]}',
    );
    // system:masters bypasses the check.
    await create("rbac.authorization.k8s.io", "clusterroles", "", role("x", [{ verbs: ["get"], apiGroups: [""], resources: ["pods"] }]), admin);
  });

  it("lets a user bind what they hold or may `bind`, and not more", async () => {
    await create("rbac.authorization.k8s.io", "clusterroles", "", role("pods-reader", [{ verbs: ["get"], apiGroups: [""], resources: ["pods"] }]));
    await create("rbac.authorization.k8s.io", "clusterroles", "", role("binder", [{ verbs: ["create"], apiGroups: ["rbac.authorization.k8s.io"], resources: ["rolebindings"] }]));
    await create("rbac.authorization.k8s.io", "clusterrolebindings", "", { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding", metadata: { name: "jane-binder" }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "binder" }, subjects: [{ kind: "User", name: "jane" }] } as KubeObject);
    const binding = (name: string): KubeObject => ({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", metadata: { name }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "pods-reader" }, subjects: [{ kind: "User", name: "bob" }] } as KubeObject);
    const e = await rejection(create("rbac.authorization.k8s.io", "rolebindings", "team", binding("b1"), jane));
    expect(e.message).toBe('rolebindings.rbac.authorization.k8s.io "b1" is forbidden: user "jane" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[""], Resources:["pods"], Verbs:["get"]}');
    await create("rbac.authorization.k8s.io", "clusterroles", "", role("bind-pods-reader", [{ verbs: ["bind"], apiGroups: ["rbac.authorization.k8s.io"], resources: ["clusterroles"], resourceNames: ["pods-reader"] }]));
    await create("rbac.authorization.k8s.io", "rolebindings", "team", { apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", metadata: { name: "jane-bind" }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "bind-pods-reader" }, subjects: [{ kind: "User", name: "jane" }] } as KubeObject);
    await create("rbac.authorization.k8s.io", "rolebindings", "team", binding("b2"), jane);
  });
});

describe("reviews", () => {
  const review = (resource: string, obj: KubeObject, user: UserInfo, namespace = "") => registry.virtual(resource.endsWith("selfsubjectreviews") ? "authentication.k8s.io" : "authorization.k8s.io", resource)!(obj, { user, namespace, dryRun: false });

  it("answers can-i for oneself and for others", async () => {
    const ssar = await review("selfsubjectaccessreviews", { apiVersion: "authorization.k8s.io/v1", kind: "SelfSubjectAccessReview", metadata: {}, spec: { resourceAttributes: { verb: "create", group: "authorization.k8s.io", resource: "selfsubjectaccessreviews" } } } as KubeObject, jane);
    expect((ssar as unknown as { status: { allowed: boolean } }).status.allowed).toBe(true);
    const sar = await review("subjectaccessreviews", { apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview", metadata: {}, spec: { user: "jane", groups: ["system:authenticated"], resourceAttributes: { verb: "delete", resource: "pods", namespace: "team" } } } as KubeObject, admin);
    expect((sar as unknown as { status: unknown }).status).toEqual({ allowed: false });
    const e = await rejection(Promise.resolve().then(() => review("subjectaccessreviews", { apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview", metadata: {}, spec: { resourceAttributes: { verb: "get", resource: "pods" } } } as KubeObject, admin)));
    expect(e.code).toBe(422);
  });

  it("checks a LocalSubjectAccessReview's namespace against the path", async () => {
    const lsar = { apiVersion: "authorization.k8s.io/v1", kind: "LocalSubjectAccessReview", metadata: { namespace: "team" }, spec: { user: "jane", resourceAttributes: { verb: "get", resource: "pods", namespace: "team" } } } as KubeObject;
    const e = await rejection(Promise.resolve().then(() => review("localsubjectaccessreviews", lsar, admin, "other")));
    expect(e.message).toBe("spec.resourceAttributes.namespace must match namespace: other");
    expect(((await review("localsubjectaccessreviews", lsar, admin, "team")) as unknown as { status: { allowed: boolean } }).status.allowed).toBe(false);
  });

  it("lists a user's rules and says who they are", async () => {
    const ssrr = (await review("selfsubjectrulesreviews", { apiVersion: "authorization.k8s.io/v1", kind: "SelfSubjectRulesReview", metadata: {}, spec: { namespace: "team" } } as KubeObject, jane)) as unknown as { status: { resourceRules: { verbs: string[]; resources?: string[] }[]; nonResourceRules: unknown[]; incomplete: boolean } };
    expect(ssrr.status.incomplete).toBe(false);
    expect(ssrr.status.resourceRules).toContainEqual({ verbs: ["create"], apiGroups: ["authorization.k8s.io"], resources: ["selfsubjectaccessreviews", "selfsubjectrulesreviews"] });
    expect(ssrr.status.nonResourceRules).toContainEqual({ verbs: ["get"], nonResourceURLs: ["/livez", "/readyz", "/healthz", "/version", "/version/"] });
    const who = await review("selfsubjectreviews", { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview", metadata: {} } as KubeObject, jane);
    expect((who as unknown as { status: unknown }).status).toEqual({ userInfo: { username: "jane", uid: "u1", groups: ["system:authenticated"] } });
  });
});

describe("newAuthorizer", () => {
  it("refuses unknown modes", () => {
    expect(() => newAuthorizer(["Webhook"], registry)).toThrow(/unknown authorization mode "Webhook"/);
  });
});
