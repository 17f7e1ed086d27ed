// Authorization as k8s.io/apiserver/pkg/authorization/authorizer: what a request asks to do, and who
// decides. The apiserver asks its authorizer after authentication and before any handler; a request
// no authorizer allows is answered 403 with upstream's message (forbiddenMessage).

import type { UserInfo } from "../auth.ts";

/** authorizer.Attributes: the request as the authorizers see it. */
export interface Attributes {
  user: UserInfo;
  /** get, list, watch, create, update, patch, delete, deletecollection (resource requests), or the
   * lower-case HTTP method (non-resource requests); also special verbs (impersonate, bind, escalate, approve, sign, use). */
  verb: string;
  isResourceRequest: boolean;
  /** The request path (non-resource requests are authorized by it). */
  path: string;
  apiGroup: string;
  apiVersion: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
}

export type Decision = "Allow" | "Deny" | "NoOpinion";

export interface AuthorizerResult {
  decision: Decision;
  /** Why (appended to the 403 message after ": " when not empty, as upstream). */
  reason: string;
}

export interface Authorizer {
  authorize(a: Attributes): AuthorizerResult | Promise<AuthorizerResult>;
}

/** authorizer.ResourceRuleInfo / NonResourceRuleInfo: what SelfSubjectRulesReview lists. */
export interface ResourceRuleInfo {
  verbs: string[];
  apiGroups: string[];
  resources: string[];
  resourceNames: string[];
}
export interface NonResourceRuleInfo {
  verbs: string[];
  nonResourceURLs: string[];
}

/** authorizer.RuleResolver: the rules a user holds in a namespace (SelfSubjectRulesReview). */
export interface RuleResolver {
  rulesFor(user: UserInfo, namespace: string): { resourceRules: ResourceRuleInfo[]; nonResourceRules: NonResourceRuleInfo[]; incomplete: boolean; evaluationError?: string };
}

/** --authorization-mode AlwaysAllow (and in-process test servers). */
export const ALWAYS_ALLOW: Authorizer & RuleResolver = {
  authorize: () => ({ decision: "Allow", reason: "" }),
  rulesFor: () => ({ resourceRules: [{ verbs: ["*"], apiGroups: ["*"], resources: ["*"], resourceNames: [] }], nonResourceRules: [{ verbs: ["*"], nonResourceURLs: ["*"] }], incomplete: false }),
};

/** responsewriters.forbiddenMessage: the part of a 403's message that names who asked what. */
export function forbiddenMessage(a: Attributes): string {
  const user = a.user.name;
  if (!a.isResourceRequest) return `User ${JSON.stringify(user)} cannot ${a.verb} path ${JSON.stringify(a.path)}`;
  const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  if (a.namespace) return `User ${JSON.stringify(user)} cannot ${a.verb} resource ${JSON.stringify(resource)} in API group ${JSON.stringify(a.apiGroup)} in the namespace ${JSON.stringify(a.namespace)}`;
  return `User ${JSON.stringify(user)} cannot ${a.verb} resource ${JSON.stringify(resource)} in API group ${JSON.stringify(a.apiGroup)} at the cluster scope`;
}
