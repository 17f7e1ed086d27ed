// The authorizer chain as kube-apiserver builds it from --authorization-mode
// (k8s.io/apiserver/pkg/authorization/union and pkg/kubeapiserver/authorizer): the privileged group
// system:masters first, then each mode in order. The first Allow or Deny decides; otherwise the
// request is NoOpinion with the modes' reasons joined by newlines.

import type { UserInfo } from "../auth.ts";
import type { Attributes, Authorizer, AuthorizerResult, NonResourceRuleInfo, ResourceRuleInfo, RuleResolver } from "./types.ts";

export const SYSTEM_PRIVILEGED_GROUP = "system:masters";

type Rules = ReturnType<RuleResolver["rulesFor"]>;

/** authorizerfactory.NewPrivilegedGroups: members of these groups may do anything. */
export function privilegedGroups(...groups: string[]): Authorizer {
  return {
    authorize: (a) => (a.user.groups.some((g) => groups.includes(g)) ? { decision: "Allow", reason: "" } : { decision: "NoOpinion", reason: "" }),
  };
}

/** --authorization-mode AlwaysDeny */
export const ALWAYS_DENY: Authorizer & RuleResolver = {
  authorize: () => ({ decision: "Deny", reason: "Everything is forbidden." }),
  rulesFor: () => ({ resourceRules: [], nonResourceRules: [], incomplete: false }),
};

export function unionAuthorizer(authorizers: readonly Authorizer[]): Authorizer {
  return {
    async authorize(a: Attributes): Promise<AuthorizerResult> {
      const reasons: string[] = [];
      for (const z of authorizers) {
        const r = await z.authorize(a);
        if (r.decision === "Allow" || r.decision === "Deny") return r;
        if (r.reason) reasons.push(r.reason);
      }
      return { decision: "NoOpinion", reason: reasons.join("\n") };
    },
  };
}

/** union.NewRuleResolvers: every resolver's rules together; incomplete if any is; errors aggregated. */
export function unionRuleResolver(resolvers: readonly RuleResolver[]): RuleResolver {
  return {
    rulesFor(user: UserInfo, namespace: string): Rules {
      const resourceRules: ResourceRuleInfo[] = [];
      const nonResourceRules: NonResourceRuleInfo[] = [];
      let incomplete = false;
      const errs: string[] = [];
      for (const r of resolvers) {
        const got = r.rulesFor(user, namespace);
        resourceRules.push(...got.resourceRules);
        nonResourceRules.push(...got.nonResourceRules);
        incomplete ||= got.incomplete;
        if (got.evaluationError) errs.push(got.evaluationError);
      }
      const unique = [...new Set(errs)];
      const evaluationError = unique.length === 0 ? undefined : unique.length === 1 ? unique[0] : `[${unique.join(", ")}]`;
      return { resourceRules, nonResourceRules, incomplete, ...(evaluationError ? { evaluationError } : {}) };
    },
  };
}
