// The rbac.authorization.k8s.io/v1 shapes the authorizers read, as their JSON is (k8s.io/api/rbac/v1).
// Declared here until api/rbac/v1.ts exists; plain data, nothing else.

import type { KubeObject, LabelSelector } from "../../api/index.ts";

export const RBAC_GROUP = "rbac.authorization.k8s.io";
/** rbacv1.AutoUpdateAnnotationKey: "false" keeps the bootstrap reconciler away from an object. */
export const AUTOUPDATE_ANNOTATION = "rbac.authorization.kubernetes.io/autoupdate";

/** rbacv1.PolicyRule. Absent lists are empty. */
export interface PolicyRule {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

export interface Subject {
  kind: "User" | "Group" | "ServiceAccount" | string;
  apiGroup?: string;
  name: string;
  namespace?: string;
}

export interface RoleRef {
  apiGroup: string;
  kind: "Role" | "ClusterRole" | string;
  name: string;
}

export interface AggregationRule {
  clusterRoleSelectors?: LabelSelector[];
}

export interface Role extends KubeObject {
  rules?: PolicyRule[];
}

export interface ClusterRole extends KubeObject {
  rules?: PolicyRule[];
  aggregationRule?: AggregationRule;
}

export interface RoleBinding extends KubeObject {
  subjects?: Subject[];
  roleRef: RoleRef;
}

export type ClusterRoleBinding = RoleBinding;
