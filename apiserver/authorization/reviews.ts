// The access review APIs (pkg/registry/authorization/* and authentication's selfsubjectreview):
// create-only resources answered by asking the authorizer, never stored.
//   SelfSubjectAccessReview (kubectl auth can-i), SubjectAccessReview, LocalSubjectAccessReview,
//   SelfSubjectRulesReview (kubectl auth can-i --list), SelfSubjectReview (kubectl auth whoami).

import type { KubeObject, SubjectAccessReviewSpec } from "../../api/index.ts";
import type { UserInfo } from "../auth.ts";
import { errors } from "../errors.ts";
import type { Registry, RequestContext } from "../registry/registry.ts";
import type { Attributes, Authorizer, RuleResolver } from "./types.ts";

const AUTHZ = "authorization.k8s.io";
const AUTHN = "authentication.k8s.io";

type AccessReviewSpec = SubjectAccessReviewSpec;

type Cause = { field: string; message: string; type: string; cause?: string };

/** ValidateSubjectAccessReviewSpec's "exactly one of" check. */
function attributeErrors(spec: AccessReviewSpec): Cause[] {
  if (spec.resourceAttributes && spec.nonResourceAttributes) {
    return [{ field: "spec.nonResourceAttributes", type: "FieldValueInvalid", message: "spec.nonResourceAttributes: Invalid value: \"\": cannot be specified in combination with resourceAttributes", cause: "cannot be specified in combination with resourceAttributes" }];
  }
  if (!spec.resourceAttributes && !spec.nonResourceAttributes) {
    return [
      {
        field: "spec.resourceAttributes",
        type: "FieldValueRequired",
        message: "spec.resourceAttributes: Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
        cause: "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
      },
    ];
  }
  return [];
}

/** authorizationutil.AuthorizationAttributesFrom */
function attributesFrom(user: UserInfo, spec: AccessReviewSpec): Attributes {
  if (spec.resourceAttributes) {
    const r = spec.resourceAttributes;
    return {
      user,
      verb: r.verb ?? "",
      isResourceRequest: true,
      path: "",
      apiGroup: r.group ?? "",
      apiVersion: r.version ?? "",
      resource: r.resource ?? "",
      subresource: r.subresource ?? "",
      namespace: r.namespace ?? "",
      name: r.name ?? "",
    };
  }
  const n = spec.nonResourceAttributes ?? {};
  return { user, verb: n.verb ?? "", isResourceRequest: false, path: n.path ?? "", apiGroup: "", apiVersion: "", resource: "", subresource: "", namespace: "", name: "" };
}

async function review(authorizer: Authorizer, obj: KubeObject, attrs: Attributes): Promise<KubeObject> {
  const r = await authorizer.authorize(attrs);
  const status: Record<string, unknown> = { allowed: r.decision === "Allow" };
  if (r.decision === "Deny") status.denied = true;
  if (r.reason) status.reason = r.reason;
  return { ...obj, status };
}

function specOf(obj: KubeObject): AccessReviewSpec {
  return ((obj as { spec?: AccessReviewSpec }).spec ?? {}) as AccessReviewSpec;
}

function userFromSpec(spec: AccessReviewSpec): UserInfo {
  return { name: spec.user ?? "", uid: spec.uid ?? "", groups: spec.groups ?? [], ...(spec.extra ? { extra: spec.extra } : {}) };
}

export function installReviews(registry: Registry, authorizer: Authorizer & RuleResolver): void {
  registry.registerVirtual(AUTHZ, "selfsubjectaccessreviews", (obj: KubeObject, req: RequestContext) => {
    const spec = specOf(obj);
    const errs = attributeErrors(spec);
    if (errs.length) throw errors.invalid(AUTHZ, "SelfSubjectAccessReview", "", errs);
    return review(authorizer, obj, attributesFrom(req.user, spec));
  });

  registry.registerVirtual(AUTHZ, "subjectaccessreviews", (obj: KubeObject) => {
    const spec = specOf(obj);
    const errs = attributeErrors(spec);
    if (!spec.user && !(spec.groups ?? []).length) {
      errs.push({ field: "spec.user", type: "FieldValueInvalid", message: 'spec.user: Invalid value: "": at least one of user or group must be specified', cause: "at least one of user or group must be specified" });
    }
    if (errs.length) throw errors.invalid(AUTHZ, "SubjectAccessReview", "", errs);
    return review(authorizer, obj, attributesFrom(userFromSpec(spec), spec));
  });

  registry.registerVirtual(AUTHZ, "localsubjectaccessreviews", (obj: KubeObject, req: RequestContext) => {
    const spec = specOf(obj);
    const errs = attributeErrors(spec);
    if (!spec.user && !(spec.groups ?? []).length) {
      errs.push({ field: "spec.user", type: "FieldValueInvalid", message: 'spec.user: Invalid value: "": at least one of user or group must be specified', cause: "at least one of user or group must be specified" });
    }
    const objNamespace = obj.metadata?.namespace ?? "";
    if (spec.resourceAttributes && (spec.resourceAttributes.namespace ?? "") !== objNamespace) {
      errs.push({
        field: "spec.resourceAttributes.namespace",
        type: "FieldValueInvalid",
        message: `spec.resourceAttributes.namespace: Invalid value: ${JSON.stringify(spec.resourceAttributes.namespace ?? "")}: must match metadata.namespace`,
        cause: "must match metadata.namespace",
      });
    }
    if (spec.nonResourceAttributes) {
      errs.push({ field: "spec.nonResourceAttributes", type: "FieldValueInvalid", message: 'spec.nonResourceAttributes: Invalid value: "": disallowed on this kind of request', cause: "disallowed on this kind of request" });
    }
    if (errs.length) throw errors.invalid(AUTHZ, "LocalSubjectAccessReview", "", errs);
    if (!req.namespace) throw errors.badRequest(`namespace is required on this type: ${req.namespace}`);
    if (req.namespace !== objNamespace) throw errors.badRequest(`spec.resourceAttributes.namespace must match namespace: ${req.namespace}`);
    return review(authorizer, obj, attributesFrom(userFromSpec(spec), spec));
  });

  registry.registerVirtual(AUTHZ, "selfsubjectrulesreviews", (obj: KubeObject, req: RequestContext) => {
    const namespace = ((obj as { spec?: { namespace?: string } }).spec?.namespace ?? "") as string;
    if (!namespace) throw errors.badRequest("no namespace on request");
    const rules = authorizer.rulesFor(req.user, namespace);
    // JSON as upstream's: empty lists are omitted (omitempty), verbs always present.
    const status: Record<string, unknown> = {
      resourceRules: rules.resourceRules.map((r) => ({
        verbs: r.verbs,
        ...(r.apiGroups.length ? { apiGroups: r.apiGroups } : {}),
        ...(r.resources.length ? { resources: r.resources } : {}),
        ...(r.resourceNames.length ? { resourceNames: r.resourceNames } : {}),
      })),
      nonResourceRules: rules.nonResourceRules.map((r) => ({ verbs: r.verbs, ...(r.nonResourceURLs.length ? { nonResourceURLs: r.nonResourceURLs } : {}) })),
      incomplete: rules.incomplete,
    };
    if (rules.evaluationError) status.evaluationError = rules.evaluationError;
    return { ...obj, status };
  });

  registry.registerVirtual(AUTHN, "selfsubjectreviews", (obj: KubeObject, req: RequestContext) => {
    const u = req.user;
    const userInfo: Record<string, unknown> = { username: u.name };
    if (u.uid) userInfo.uid = u.uid;
    if (u.groups.length) userInfo.groups = u.groups;
    if (u.extra && Object.keys(u.extra).length) userInfo.extra = u.extra;
    return { ...obj, status: { userInfo } };
  });
}
