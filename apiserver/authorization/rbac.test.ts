// The RBAC authorizer over fixed objects: rule matching as upstream's evaluation helpers, subjects,
// reasons, the per-user rule cache and its invalidation, the union, and escalation messages.

import { describe, expect, it } from "vitest";
import type { UserInfo } from "../auth.ts";
import { RBACAuthorizer, staticRBACSource } from "./rbac.ts";
import type { ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding } from "./rbactypes.ts";
import { compactString, escalationMessage, ruleAllows } from "./rules.ts";
import type { Attributes } from "./types.ts";
import { ALWAYS_DENY, privilegedGroups, unionAuthorizer } from "./union.ts";

const jane: UserInfo = { name: "jane", uid: "1", groups: ["system:authenticated"] };

function res(verb: string, resource: string, opts: Partial<Attributes> = {}): Attributes {
  return { user: jane, verb, isResourceRequest: true, path: "", apiGroup: "", apiVersion: "v1", resource, subresource: "", namespace: "default", name: "", ...opts };
}
function path(verb: string, p: string): Attributes {
  return { user: jane, verb, isResourceRequest: false, path: p, apiGroup: "", apiVersion: "", resource: "", subresource: "", namespace: "", name: "" };
}

const clusterRole = (name: string, rules: PolicyRule[]): ClusterRole => ({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name }, rules });
const crb = (name: string, role: string, subjects: RoleBinding["subjects"]): ClusterRoleBinding => ({
  apiVersion: "rbac.authorization.k8s.io/v1",
  kind: "ClusterRoleBinding",
  metadata: { name },
  roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role },
  subjects,
});
const rb = (ns: string, name: string, kind: "Role" | "ClusterRole", role: string, subjects: RoleBinding["subjects"]): RoleBinding => ({
  apiVersion: "rbac.authorization.k8s.io/v1",
  kind: "RoleBinding",
  metadata: { name, namespace: ns },
  roleRef: { apiGroup: "rbac.authorization.k8s.io", kind, name: role },
  subjects,
});

describe("rule matching", () => {
  it("matches verbs, groups and resources with * and exact values", () => {
    const r: PolicyRule = { verbs: ["get", "list"], apiGroups: ["apps"], resources: ["deployments"] };
    expect(ruleAllows(res("get", "deployments", { apiGroup: "apps" }), r)).toBe(true);
    expect(ruleAllows(res("delete", "deployments", { apiGroup: "apps" }), r)).toBe(false);
    expect(ruleAllows(res("get", "deployments", { apiGroup: "" }), r)).toBe(false);
    expect(ruleAllows(res("get", "pods", { apiGroup: "apps" }), r)).toBe(false);
    expect(ruleAllows(res("delete", "anything", { apiGroup: "x.io" }), { verbs: ["*"], apiGroups: ["*"], resources: ["*"] })).toBe(true);
  });

  it("needs resource/subresource or */subresource for a subresource, and a bare resource does not cover it", () => {
    expect(ruleAllows(res("update", "pods", { subresource: "status" }), { verbs: ["update"], apiGroups: [""], resources: ["pods"] })).toBe(false);
    expect(ruleAllows(res("update", "pods", { subresource: "status" }), { verbs: ["update"], apiGroups: [""], resources: ["pods/status"] })).toBe(true);
    expect(ruleAllows(res("update", "pods", { subresource: "status" }), { verbs: ["update"], apiGroups: [""], resources: ["*/status"] })).toBe(true);
    expect(ruleAllows(res("get", "deployments", { apiGroup: "apps", subresource: "scale" }), { verbs: ["get"], apiGroups: ["*"], resources: ["*/status"] })).toBe(false);
  });

  it("applies resourceNames only to requests for one named object (a fieldSelector list arrives named)", () => {
    const r: PolicyRule = { verbs: ["get", "list", "watch"], apiGroups: [""], resources: ["configmaps"], resourceNames: ["cfg"] };
    expect(ruleAllows(res("get", "configmaps", { name: "cfg" }), r)).toBe(true);
    expect(ruleAllows(res("get", "configmaps", { name: "other" }), r)).toBe(false);
    expect(ruleAllows(res("list", "configmaps"), r)).toBe(false);
    expect(ruleAllows(res("watch", "configmaps", { name: "cfg" }), r)).toBe(true);
  });

  it("matches non-resource URLs exactly or by a trailing * prefix", () => {
    const r: PolicyRule = { verbs: ["get"], nonResourceURLs: ["/healthz", "/apis/*"] };
    expect(ruleAllows(path("get", "/healthz"), r)).toBe(true);
    expect(ruleAllows(path("get", "/healthz/etcd"), r)).toBe(false);
    expect(ruleAllows(path("get", "/apis/apps/v1"), r)).toBe(true);
    expect(ruleAllows(path("post", "/healthz"), r)).toBe(false);
    // A resource rule never allows a path.
    expect(ruleAllows(path("get", "/healthz"), { verbs: ["*"], apiGroups: ["*"], resources: ["*"] })).toBe(false);
  });
});

describe("RBACAuthorizer", () => {
  const readPods = clusterRole("read-pods", [{ verbs: ["get", "list"], apiGroups: [""], resources: ["pods"] }]);
  const editRole: Role = { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name: "edit-cm", namespace: "team" }, rules: [{ verbs: ["update"], apiGroups: [""], resources: ["configmaps"] }] };

  it("binds users by name, groups by membership, service accounts by their username", () => {
    const src = staticRBACSource({
      clusterRoles: [readPods],
      roles: [editRole],
      clusterRoleBindings: [crb("by-group", "read-pods", [{ kind: "Group", apiGroup: "rbac.authorization.k8s.io", name: "readers" }])],
      roleBindings: [rb("team", "sa-edit", "Role", "edit-cm", [{ kind: "ServiceAccount", name: "bot" }])],
    });
    const a = new RBACAuthorizer(src);
    expect(a.authorize(res("get", "pods", { user: { ...jane, groups: ["readers"] } }))).toEqual({
      decision: "Allow",
      reason: 'RBAC: allowed by ClusterRoleBinding "by-group" of ClusterRole "read-pods" to Group "readers"',
    });
    expect(a.authorize(res("get", "pods")).decision).toBe("NoOpinion");
    const bot: UserInfo = { name: "system:serviceaccount:team:bot", uid: "", groups: ["system:serviceaccounts"] };
    // The RoleBinding's ServiceAccount without a namespace is its own namespace's.
    expect(a.authorize(res("update", "configmaps", { user: bot, namespace: "team" }))).toEqual({
      decision: "Allow",
      reason: 'RBAC: allowed by RoleBinding "sa-edit/team" of Role "edit-cm" to ServiceAccount "bot/team"',
    });
    expect(a.authorize(res("update", "configmaps", { user: bot, namespace: "other" })).decision).toBe("NoOpinion");
    expect(a.authorize(res("update", "configmaps", { user: { ...bot, name: "system:serviceaccount:other:bot" }, namespace: "team" })).decision).toBe("NoOpinion");
  });

  it("says nothing when no rule matches and names a binding's missing role", () => {
    const a = new RBACAuthorizer(staticRBACSource({ clusterRoleBindings: [crb("dangling", "gone", [{ kind: "User", name: "jane" }])] }));
    expect(a.authorize(res("get", "pods"))).toEqual({ decision: "NoOpinion", reason: 'RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found' });
    expect(new RBACAuthorizer(staticRBACSource({})).authorize(res("get", "pods"))).toEqual({ decision: "NoOpinion", reason: "" });
  });

  it("keeps resolved rules until an RBAC object changes", () => {
    const bindings: ClusterRoleBinding[] = [];
    const src = staticRBACSource({ clusterRoles: [readPods], clusterRoleBindings: bindings });
    const a = new RBACAuthorizer(src);
    expect(a.authorize(res("get", "pods")).decision).toBe("NoOpinion");
    bindings.push(crb("jane", "read-pods", [{ kind: "User", name: "jane" }]));
    // Still the cached answer: nothing told the authorizer.
    expect(a.authorize(res("get", "pods")).decision).toBe("NoOpinion");
    src.changed();
    expect(a.authorize(res("get", "pods")).decision).toBe("Allow");
  });

  it("lists rules for SelfSubjectRulesReview, resource and non-resource apart", () => {
    const src = staticRBACSource({
      clusterRoles: [clusterRole("mixed", [{ verbs: ["get"], apiGroups: [""], resources: ["pods"] }, { verbs: ["get"], nonResourceURLs: ["/healthz"] }])],
      clusterRoleBindings: [crb("m", "mixed", [{ kind: "User", name: "jane" }])],
    });
    expect(new RBACAuthorizer(src).rulesFor(jane, "default")).toEqual({
      resourceRules: [{ verbs: ["get"], apiGroups: [""], resources: ["pods"], resourceNames: [] }],
      nonResourceRules: [{ verbs: ["get"], nonResourceURLs: ["/healthz"] }],
      incomplete: false,
    });
  });
});

describe("union", () => {
  it("lets system:masters do anything, the first Allow or Deny decide, and joins NoOpinion reasons", async () => {
    const says = (reason: string) => ({ authorize: () => ({ decision: "NoOpinion" as const, reason }) });
    const u = unionAuthorizer([privilegedGroups("system:masters"), says("first"), says(""), says("second")]);
    expect(await u.authorize(res("get", "pods", { user: { ...jane, groups: ["system:masters"] } }))).toEqual({ decision: "Allow", reason: "" });
    expect(await u.authorize(res("get", "pods"))).toEqual({ decision: "NoOpinion", reason: "first\nsecond" });
    expect(await unionAuthorizer([says("x"), ALWAYS_DENY]).authorize(res("get", "pods"))).toEqual({ decision: "Deny", reason: "Everything is forbidden." });
  });
});

describe("escalation messages", () => {
  it("lists the rules not held, compacted and sorted, as upstream words it", () => {
    const held: PolicyRule[] = [{ verbs: ["get"], apiGroups: [""], resources: ["configmaps"] }];
    expect(escalationMessage(jane, held, [{ verbs: ["get"], apiGroups: [""], resources: ["pods"] }])).toBe(
      'user "jane" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[""], Resources:["pods"], Verbs:["get"]}',
    );
    const msg = escalationMessage({ name: "jane", groups: ["a", "b"] }, held, [{ verbs: ["get", "list"], apiGroups: [""], resources: ["secrets", "configmaps"] }, { verbs: ["get"], nonResourceURLs: ["/metrics"] }]);
    expect(msg).toBe(
      'user "jane" (groups=["a" "b"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[""], Resources:["configmaps"], Verbs:["list"]}\n{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}\n{NonResourceURLs:["/metrics"], Verbs:["get"]}',
    );
    expect(escalationMessage(jane, [{ verbs: ["*"], apiGroups: ["*"], resources: ["*"] }], [{ verbs: ["get"], apiGroups: ["apps"], resources: ["deployments/scale"], resourceNames: ["x"] }])).toBeUndefined();
    // */status covers a subresource of any resource, a bare resource does not.
    expect(escalationMessage(jane, [{ verbs: ["update"], apiGroups: [""], resources: ["*/status"] }], [{ verbs: ["update"], apiGroups: [""], resources: ["pods/status"] }])).toBeUndefined();
    expect(escalationMessage(jane, [{ verbs: ["update"], apiGroups: [""], resources: ["pods"] }], [{ verbs: ["update"], apiGroups: [""], resources: ["pods/status"] }])).toBeDefined();
  });

  it("prints rules as CompactString does", () => {
    expect(compactString({ verbs: ["get"], apiGroups: [""], resources: ["configmaps"], resourceNames: ["a", "b"] })).toBe('{APIGroups:[""], Resources:["configmaps"], ResourceNames:["a" "b"], Verbs:["get"]}');
  });
});
