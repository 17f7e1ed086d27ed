// rbac.authorization.k8s.io validation, as upstream's pkg/apis/rbac/validation: rules need verbs and either
// resources (with apiGroups) or non-resource URLs (ClusterRoles only); bindings reference a role of this
// group whose roleRef never changes, and name subjects of a known kind.

import { RBAC_GROUP } from "../rbac/v1.ts";
import { child, index, invalid, notSupported, required, type FieldError } from "./field.ts";
import { validateLabelSelector } from "./meta.ts";
import { isDNS1123Subdomain } from "./names.ts";
import { arr, deepEqual, isRec, rec, str, type Rec } from "./util.ts";

/** path.ValidatePathSegmentName (upstream's ValidateRBACName): "system:discovery" is a fine role name. */
export function validateRBACName(name: string, prefix: boolean): string[] {
  const errs: string[] = [];
  if (!prefix && (name === "." || name === "..")) errs.push(`may not be '${name}'`);
  for (const c of ["/", "%"]) if (name.includes(c)) errs.push(`may not contain '${c}'`);
  return errs;
}

/** ValidatePolicyRule: `namespaced` rules (a Role's) cannot name non-resource URLs. */
export function validatePolicyRule(rule: unknown, namespaced: boolean, fldPath: string): FieldError[] {
  const errs: FieldError[] = [];
  const r = rec(rule);
  if (arr(r.verbs).length === 0) errs.push(required(child(fldPath, "verbs"), "verbs must contain at least one value"));
  const urls = arr(r.nonResourceURLs);
  if (urls.length > 0) {
    if (namespaced) errs.push(invalid(child(fldPath, "nonResourceURLs"), urls, "namespaced rules cannot apply to non-resource URLs"));
    if (arr(r.apiGroups).length > 0 || arr(r.resources).length > 0 || arr(r.resourceNames).length > 0) {
      errs.push(invalid(child(fldPath, "nonResourceURLs"), urls, "rules cannot apply to both regular resources and non-resource URLs"));
    }
    return errs;
  }
  if (arr(r.apiGroups).length === 0) errs.push(required(child(fldPath, "apiGroups"), "resource rules must supply at least one api group"));
  if (arr(r.resources).length === 0) errs.push(required(child(fldPath, "resources"), "resource rules must supply at least one resource"));
  return errs;
}

function validateRules(o: Rec, namespaced: boolean): FieldError[] {
  return arr(o.rules).flatMap((rule, i) => validatePolicyRule(rule, namespaced, index("rules", i)));
}

export function validateRole(o: Rec): FieldError[] {
  return validateRules(o, true);
}

/** ValidateClusterRole: cluster rules, and an aggregationRule with at least one valid selector. */
export function validateClusterRole(o: Rec): FieldError[] {
  const errs = validateRules(o, false);
  if (o.aggregationRule !== undefined && o.aggregationRule !== null) {
    const selectors = arr(rec(o.aggregationRule).clusterRoleSelectors);
    const path = "aggregationRule.clusterRoleSelectors";
    if (selectors.length === 0) errs.push(required(path, "at least one clusterRoleSelector required if aggregationRule is non-nil"));
    selectors.forEach((sel, i) => errs.push(...validateLabelSelector(sel, index(path, i))));
  }
  return errs;
}

/** ValidateRoleBindingSubject: in a ClusterRoleBinding (`namespaced` false) a ServiceAccount needs its namespace. */
export function validateRoleBindingSubject(subject: unknown, namespaced: boolean, fldPath: string): FieldError[] {
  const errs: FieldError[] = [];
  const s = rec(subject);
  const name = str(s.name);
  const apiGroup = str(s.apiGroup);
  if (name === "") errs.push(required(child(fldPath, "name"), ""));
  switch (s.kind) {
    case "ServiceAccount":
      if (name !== "") for (const msg of isDNS1123Subdomain(name)) errs.push(invalid(child(fldPath, "name"), name, msg));
      if (apiGroup !== "") errs.push(notSupported(child(fldPath, "apiGroup"), apiGroup, [""]));
      if (!namespaced && str(s.namespace) === "") errs.push(required(child(fldPath, "namespace"), ""));
      break;
    case "User":
    case "Group":
      if (apiGroup !== RBAC_GROUP) errs.push(notSupported(child(fldPath, "apiGroup"), apiGroup, [RBAC_GROUP]));
      break;
    default:
      errs.push(notSupported(child(fldPath, "kind"), s.kind ?? "", ["ServiceAccount", "User", "Group"]));
  }
  return errs;
}

/** ValidateRoleBinding / ValidateClusterRoleBinding: a roleRef to a role of this group, valid subjects. */
export function validateBinding(o: Rec, namespaced: boolean): FieldError[] {
  const errs: FieldError[] = [];
  const ref = rec(o.roleRef);
  const apiGroup = str(ref.apiGroup);
  const kind = str(ref.kind);
  const name = str(ref.name);
  if (apiGroup !== RBAC_GROUP) errs.push(notSupported("roleRef.apiGroup", apiGroup, [RBAC_GROUP]));
  const kinds = namespaced ? ["Role", "ClusterRole"] : ["ClusterRole"];
  if (!kinds.includes(kind)) errs.push(notSupported("roleRef.kind", kind, kinds));
  if (name === "") errs.push(required("roleRef.name", ""));
  else for (const msg of validateRBACName(name, false)) errs.push(invalid("roleRef.name", name, msg));
  arr(o.subjects).forEach((s, i) => errs.push(...validateRoleBindingSubject(s, namespaced, index("subjects", i))));
  return errs;
}

/** ValidateRoleBindingUpdate / ValidateClusterRoleBindingUpdate: the role a binding grants is fixed. */
export function validateBindingUpdate(o: Rec, old: Rec): FieldError[] {
  return deepEqual(refOf(o), refOf(old)) ? [] : [invalid("roleRef", refOf(o), "cannot change roleRef")];
}

function refOf(o: Rec): { apiGroup: string; kind: string; name: string } {
  const r = isRec(o.roleRef) ? o.roleRef : {};
  return { apiGroup: str(r.apiGroup), kind: str(r.kind), name: str(r.name) };
}
