// rbac.authorization.k8s.io/v1 types (k8s.io/api/rbac/v1), as their JSON is: Role and ClusterRole hold
// PolicyRules; RoleBinding and ClusterRoleBinding grant one role (roleRef, immutable) to subjects.

import type { KubeObject, LabelSelector } from "../meta.ts";

export const RBAC_GROUP = "rbac.authorization.k8s.io";

/** rbacv1.AutoUpdateAnnotationKey: "false" keeps the bootstrap policy reconciler away from an object. */
export const AUTOUPDATE_ANNOTATION = "rbac.authorization.kubernetes.io/autoupdate";

/** rbacv1.VerbAll / APIGroupAll / ResourceAll / NonResourceAll: "*" matches every value. */
export const VerbAll = "*";
export const APIGroupAll = "*";
export const ResourceAll = "*";
export const NonResourceAll = "*";

/**
 * What a rule allows: verbs on resources (apiGroups × resources, optionally only resourceNames) or on
 * non-resource URLs (only meaningful in a ClusterRole). Absent lists are empty.
 */
export interface PolicyRule {
  verbs: string[];
  apiGroups?: string[];
  /** "pods", "pods/log", "*", "*\/scale" */
  resources?: string[];
  resourceNames?: string[];
  /** "/healthz", "/api/*" (a trailing * is a prefix match) */
  nonResourceURLs?: string[];
}

/** rbacv1.UserKind / GroupKind / ServiceAccountKind */
export type SubjectKind = "User" | "Group" | "ServiceAccount";

/** Who a binding grants to. apiGroup is "" for ServiceAccount, rbac.authorization.k8s.io for User and Group. */
export interface Subject {
  kind: SubjectKind | string;
  apiGroup?: string;
  name: string;
  /** ServiceAccount only; in a RoleBinding an empty namespace means the binding's own. */
  namespace?: string;
}

/** The role a binding grants; cannot change once the binding exists. */
export interface RoleRef {
  apiGroup: string;
  kind: "Role" | "ClusterRole" | string;
  name: string;
}

/** A ClusterRole whose rules the aggregation controller computes from the ClusterRoles these select. */
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

export interface ClusterRoleBinding extends KubeObject {
  subjects?: Subject[];
  roleRef: RoleRef;
}
