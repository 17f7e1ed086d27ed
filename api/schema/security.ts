// Schemas of the security groups: rbac.authorization.k8s.io, certificates.k8s.io, authentication.k8s.io and
// authorization.k8s.io (v1), field for field as k8s.io/api's types.go.

import { arr, bool, bytes, int32, int64, map, obj, str, time } from "./schema.ts";
import { LabelSelector, LabelSelectorRequirement } from "./meta.ts";

// ---------------------------------------------------------------------------------------------
// rbac.authorization.k8s.io/v1

export const PolicyRule = obj("v1.PolicyRule", { verbs: arr(str), apiGroups: arr(str), resources: arr(str), resourceNames: arr(str), nonResourceURLs: arr(str) });
export const Subject = obj("v1.Subject", { kind: str, apiGroup: str, name: str, namespace: str });
export const RoleRef = obj("v1.RoleRef", { apiGroup: str, kind: str, name: str });
export const AggregationRule = obj("v1.AggregationRule", { clusterRoleSelectors: arr(LabelSelector) });

export const rbacKinds = {
  Role: { rules: arr(PolicyRule) },
  ClusterRole: { rules: arr(PolicyRule), aggregationRule: AggregationRule },
  RoleBinding: { subjects: arr(Subject), roleRef: RoleRef },
  ClusterRoleBinding: { subjects: arr(Subject), roleRef: RoleRef },
};

// ---------------------------------------------------------------------------------------------
// certificates.k8s.io/v1

export const CertificateSigningRequestSpec = obj("v1.CertificateSigningRequestSpec", {
  request: bytes,
  signerName: str,
  expirationSeconds: int32,
  usages: arr(str),
  username: str,
  uid: str,
  groups: arr(str),
  extra: map(arr(str)),
});
export const CertificateSigningRequestCondition = obj("v1.CertificateSigningRequestCondition", {
  type: str,
  status: str,
  reason: str,
  message: str,
  lastUpdateTime: time,
  lastTransitionTime: time,
});
export const CertificateSigningRequestStatus = obj("v1.CertificateSigningRequestStatus", {
  conditions: arr(CertificateSigningRequestCondition),
  certificate: bytes,
});

export const certificatesKinds = {
  CertificateSigningRequest: { spec: CertificateSigningRequestSpec, status: CertificateSigningRequestStatus },
};

// ---------------------------------------------------------------------------------------------
// authentication.k8s.io/v1

export const UserInfo = obj("v1.UserInfo", { username: str, uid: str, groups: arr(str), extra: map(arr(str)) });
export const BoundObjectReference = obj("v1.BoundObjectReference", { kind: str, apiVersion: str, name: str, uid: str });

export const authenticationKinds = {
  TokenRequest: {
    spec: obj("v1.TokenRequestSpec", { audiences: arr(str), expirationSeconds: int64, boundObjectRef: BoundObjectReference }),
    status: obj("v1.TokenRequestStatus", { token: str, expirationTimestamp: time }),
  },
  TokenReview: {
    spec: obj("v1.TokenReviewSpec", { token: str, audiences: arr(str) }),
    status: obj("v1.TokenReviewStatus", { authenticated: bool, user: UserInfo, audiences: arr(str), error: str }),
  },
  SelfSubjectReview: { status: obj("v1.SelfSubjectReviewStatus", { userInfo: UserInfo }) },
};

// ---------------------------------------------------------------------------------------------
// authorization.k8s.io/v1

const FieldSelectorRequirement = obj("v1.FieldSelectorRequirement", { key: str, operator: str, values: arr(str) });
export const ResourceAttributes = obj("v1.ResourceAttributes", {
  namespace: str,
  verb: str,
  group: str,
  version: str,
  resource: str,
  subresource: str,
  name: str,
  fieldSelector: obj("v1.FieldSelectorAttributes", { rawSelector: str, requirements: arr(FieldSelectorRequirement) }),
  labelSelector: obj("v1.LabelSelectorAttributes", { rawSelector: str, requirements: arr(LabelSelectorRequirement) }),
});
export const NonResourceAttributes = obj("v1.NonResourceAttributes", { path: str, verb: str });
export const SubjectAccessReviewSpec = obj("v1.SubjectAccessReviewSpec", {
  resourceAttributes: ResourceAttributes,
  nonResourceAttributes: NonResourceAttributes,
  user: str,
  groups: arr(str),
  extra: map(arr(str)),
  uid: str,
});
export const SubjectAccessReviewStatus = obj("v1.SubjectAccessReviewStatus", { allowed: bool, denied: bool, reason: str, evaluationError: str });

export const authorizationKinds = {
  SubjectAccessReview: { spec: SubjectAccessReviewSpec, status: SubjectAccessReviewStatus },
  LocalSubjectAccessReview: { spec: SubjectAccessReviewSpec, status: SubjectAccessReviewStatus },
  SelfSubjectAccessReview: {
    spec: obj("v1.SelfSubjectAccessReviewSpec", { resourceAttributes: ResourceAttributes, nonResourceAttributes: NonResourceAttributes }),
    status: SubjectAccessReviewStatus,
  },
  SelfSubjectRulesReview: {
    spec: obj("v1.SelfSubjectRulesReviewSpec", { namespace: str }),
    status: obj("v1.SubjectRulesReviewStatus", {
      resourceRules: arr(obj("v1.ResourceRule", { verbs: arr(str), apiGroups: arr(str), resources: arr(str), resourceNames: arr(str) })),
      nonResourceRules: arr(obj("v1.NonResourceRule", { verbs: arr(str), nonResourceURLs: arr(str) })),
      incomplete: bool,
      evaluationError: str,
    }),
  },
};
