// authorization.k8s.io/v1 types (k8s.io/api/authorization/v1), as their JSON is: the access reviews (may
// this user do this?) and SelfSubjectRulesReview (what may I do in this namespace?). All are create-only.

import type { KubeObject, LabelSelectorRequirement } from "../meta.ts";
import type { ExtraValue } from "../authentication/v1.ts";

/** metav1.FieldSelectorRequirement: as a label selector requirement, on fields (In, NotIn, Exists, DoesNotExist). */
export interface FieldSelectorRequirement {
  key: string;
  operator: string;
  values?: string[];
}

/** A field selector of the request being checked (1.31+), raw or parsed. */
export interface FieldSelectorAttributes {
  rawSelector?: string;
  requirements?: FieldSelectorRequirement[];
}

export interface LabelSelectorAttributes {
  rawSelector?: string;
  requirements?: LabelSelectorRequirement[];
}

/** A request on a resource, as the authorizer's Attributes: "" / "*" are "all" where upstream says so. */
export interface ResourceAttributes {
  namespace?: string;
  verb?: string;
  group?: string;
  version?: string;
  resource?: string;
  subresource?: string;
  name?: string;
  fieldSelector?: FieldSelectorAttributes;
  labelSelector?: LabelSelectorAttributes;
}

/** A request on a non-resource URL ("/healthz", "/api"). */
export interface NonResourceAttributes {
  path?: string;
  verb?: string;
}

/** Exactly one of resourceAttributes and nonResourceAttributes. */
export interface SubjectAccessReviewSpec {
  resourceAttributes?: ResourceAttributes;
  nonResourceAttributes?: NonResourceAttributes;
  /** The user to check; user or groups is required. */
  user?: string;
  groups?: string[];
  extra?: Record<string, ExtraValue>;
  uid?: string;
}

export interface SubjectAccessReviewStatus {
  allowed: boolean;
  /** Explicitly denied (an authorizer said Deny): set only with allowed false. */
  denied?: boolean;
  reason?: string;
  evaluationError?: string;
}

/** May spec.user (with spec.groups) do this? Asked by webhooks and proxies; needs create on subjectaccessreviews. */
export interface SubjectAccessReview extends KubeObject {
  spec: SubjectAccessReviewSpec;
  status?: SubjectAccessReviewStatus;
}

/** As SubjectAccessReview, restricted to the namespace it is created in (spec.resourceAttributes.namespace must match). */
export interface LocalSubjectAccessReview extends KubeObject {
  spec: SubjectAccessReviewSpec;
  status?: SubjectAccessReviewStatus;
}

export interface SelfSubjectAccessReviewSpec {
  resourceAttributes?: ResourceAttributes;
  nonResourceAttributes?: NonResourceAttributes;
}

/** `kubectl auth can-i`: may the requesting user do this? */
export interface SelfSubjectAccessReview extends KubeObject {
  spec: SelfSubjectAccessReviewSpec;
  status?: SubjectAccessReviewStatus;
}

export interface SelfSubjectRulesReviewSpec {
  namespace?: string;
}

/** A resource rule as PolicyRule without nonResourceURLs. */
export interface ResourceRule {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
}

export interface NonResourceRule {
  verbs: string[];
  nonResourceURLs?: string[];
}

export interface SubjectRulesReviewStatus {
  resourceRules: ResourceRule[];
  nonResourceRules: NonResourceRule[];
  /** True when an authorizer cannot list its rules (the Node authorizer, a webhook): the lists are a lower bound. */
  incomplete: boolean;
  evaluationError?: string;
}

/** `kubectl auth can-i --list`: the rules the requesting user has in spec.namespace. */
export interface SelfSubjectRulesReview extends KubeObject {
  spec: SelfSubjectRulesReviewSpec;
  status?: SubjectRulesReviewStatus;
}
