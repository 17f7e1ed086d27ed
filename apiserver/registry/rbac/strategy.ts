// Roles, ClusterRoles, RoleBindings and ClusterRoleBindings: plain objects without status (upstream's
// registry/rbac/*/strategy.go are the generic ones); the rbac/v1 defaults fill a binding's API groups.
// roleRef immutability is validation (api/validation/rbac.ts); escalation checks are admission's.

import type { KubeObject, ResourceInfo } from "../../../api/index.ts";
import { RBAC_GROUP, type RoleBinding, type Subject } from "../../../api/index.ts";
import { genericStrategy, type Strategy } from "../strategy.ts";

/** SetDefaults_Subject: a User or Group without apiGroup is rbac.authorization.k8s.io; a ServiceAccount's stays "". */
export function defaultSubject(s: Subject): void {
  if (s.apiGroup) return;
  if (s.kind === "User" || s.kind === "Group") s.apiGroup = RBAC_GROUP;
  // "" is Go's omitempty zero: upstream's JSON has no apiGroup at all
  else delete s.apiGroup;
}

/** SetDefaults_RoleBinding / SetDefaults_ClusterRoleBinding: roleRef.apiGroup defaults to rbac.authorization.k8s.io. */
export function defaultBinding(obj: KubeObject): void {
  const b = obj as RoleBinding;
  if (b.roleRef && typeof b.roleRef === "object" && !b.roleRef.apiGroup) b.roleRef.apiGroup = RBAC_GROUP;
  if (Array.isArray(b.subjects)) for (const s of b.subjects) if (s && typeof s === "object") defaultSubject(s);
}

export function roleStrategy(info: ResourceInfo): Strategy {
  return genericStrategy(info);
}

export function bindingStrategy(info: ResourceInfo): Strategy {
  const base = genericStrategy(info);
  return genericStrategy(info, {
    defaults(obj) {
      base.defaults(obj);
      defaultBinding(obj);
    },
  });
}
