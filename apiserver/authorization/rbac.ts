// The RBAC authorizer (plugin/pkg/auth/authorizer/rbac) and its rule resolver
// (pkg/registry/rbac/validation.DefaultRuleResolver) over the registry's watch cache of Roles,
// ClusterRoles, RoleBindings and ClusterRoleBindings.
//
// A request arrives every millisecond or so, and resolving a user's rules walks every
// ClusterRoleBinding. So the resolved rules of each (user name, groups, namespace) are kept until any
// RBAC object changes: the cache subscription clears them all in the tick the change lands.

import type { UserInfo } from "../auth.ts";
import type { Registry } from "../registry/registry.ts";
import { observe } from "./observe.ts";
import type { ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject } from "./rbactypes.ts";
import { ruleAllows } from "./rules.ts";
import type { Attributes, Authorizer, AuthorizerResult, NonResourceRuleInfo, ResourceRuleInfo, RuleResolver } from "./types.ts";

/** Where the resolver reads RBAC objects from (listers, upstream). Objects are shared: read-only. */
export interface RBACSource {
  getRole(namespace: string, name: string): Role | undefined;
  getClusterRole(name: string): ClusterRole | undefined;
  listRoleBindings(namespace: string): readonly RoleBinding[];
  listClusterRoleBindings(): readonly ClusterRoleBinding[];
  /** Registers `fn`, called after any of the four kinds changes. */
  onChange(fn: () => void): void;
}

/** The four RBAC kinds from the registry's watch cache. */
export function registryRBACSource(registry: Registry): RBACSource {
  const listeners: (() => void)[] = [];
  const changed = (): void => {
    for (const fn of listeners) fn();
  };
  observe(registry, ["roles", "clusterroles", "rolebindings", "clusterrolebindings"], changed, changed);
  const cache = registry.cache;
  return {
    getRole: (ns, name) => cache.get(`/registry/roles/${ns}/${name}`)?.obj as Role | undefined,
    getClusterRole: (name) => cache.get(`/registry/clusterroles/${name}`)?.obj as ClusterRole | undefined,
    listRoleBindings: (ns) => cache.list(`/registry/rolebindings/${ns}/`).items.map((i) => i.obj as RoleBinding),
    listClusterRoleBindings: () => cache.list("/registry/clusterrolebindings/").items.map((i) => i.obj as ClusterRoleBinding),
    onChange: (fn) => listeners.push(fn),
  };
}

/** Fixed objects (tests, and checks against a proposed set): upstream's StaticRoles. */
export function staticRBACSource(objs: { roles?: Role[]; clusterRoles?: ClusterRole[]; roleBindings?: RoleBinding[]; clusterRoleBindings?: ClusterRoleBinding[] }): RBACSource & { changed(): void } {
  const listeners: (() => void)[] = [];
  return {
    getRole: (ns, name) => objs.roles?.find((r) => r.metadata.namespace === ns && r.metadata.name === name),
    getClusterRole: (name) => objs.clusterRoles?.find((r) => r.metadata.name === name),
    listRoleBindings: (ns) => (objs.roleBindings ?? []).filter((b) => b.metadata.namespace === ns),
    listClusterRoleBindings: () => objs.clusterRoleBindings ?? [],
    onChange: (fn) => listeners.push(fn),
    changed: () => listeners.forEach((fn) => fn()),
  };
}

/** A rule and the binding that grants it (the describer upstream prints in "allowed by"). */
interface SourcedRule {
  rule: PolicyRule;
  source: () => string;
}

interface Resolved {
  rules: SourcedRule[];
  /** Errors resolving role references (a binding to a role that does not exist). */
  errors: string[];
}

/** Resolved rule sets kept at most (a flood of distinct users must not grow memory without bound). */
const MAX_CACHED = 10_000;

/** serviceaccount.MatchesUsername */
function matchesServiceAccount(namespace: string, name: string, username: string): boolean {
  return username === `system:serviceaccount:${namespace}:${name}`;
}

/** appliesToUser */
export function subjectApplies(user: UserInfo, s: Subject, namespace: string): boolean {
  switch (s.kind) {
    case "User":
      return user.name === s.name;
    case "Group":
      return user.groups.includes(s.name);
    case "ServiceAccount": {
      // A RoleBinding may name a ServiceAccount of its own namespace without saying so.
      const ns = s.namespace || namespace;
      return ns !== "" && matchesServiceAccount(ns, s.name, user.name);
    }
    default:
      return false;
  }
}

function describeSubject(s: Subject, bindingNamespace: string): string {
  if (s.kind === "ServiceAccount") return `${s.kind} ${JSON.stringify(`${s.name}/${s.namespace || bindingNamespace}`)}`;
  return `${s.kind} ${JSON.stringify(s.name)}`;
}

/** The lister's NotFound: note the singular resource, as client-go's generated listers say it. */
function roleNotFound(kind: "role" | "clusterrole", name: string): string {
  return `${kind}.rbac.authorization.k8s.io ${JSON.stringify(name)} not found`;
}

export class RBACAuthorizer implements Authorizer, RuleResolver {
  private readonly cache = new Map<string, Resolved>();

  constructor(private readonly source: RBACSource) {
    source.onChange(() => this.cache.clear());
  }

  /** GetRoleReferenceRules: the rules a binding's roleRef points at (bindingNamespace "" for a ClusterRoleBinding). */
  roleReferenceRules(ref: RoleRef, bindingNamespace: string): { rules: PolicyRule[] } | { error: string } {
    switch (ref.kind) {
      case "Role": {
        const role = this.source.getRole(bindingNamespace, ref.name);
        return role ? { rules: role.rules ?? [] } : { error: roleNotFound("role", ref.name) };
      }
      case "ClusterRole": {
        const role = this.source.getClusterRole(ref.name);
        return role ? { rules: role.rules ?? [] } : { error: roleNotFound("clusterrole", ref.name) };
      }
      default:
        return { error: `unsupported role reference kind: ${JSON.stringify(ref.kind)}` };
    }
  }

  /** VisitRulesFor, memoized: ClusterRoleBindings first, then the namespace's RoleBindings. */
  private resolve(user: UserInfo, namespace: string): Resolved {
    const key = `${user.name}\u0000${user.groups.join("\u0001")}\u0000${namespace}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const out: Resolved = { rules: [], errors: [] };
    for (const b of this.source.listClusterRoleBindings()) {
      const s = (b.subjects ?? []).find((x) => subjectApplies(user, x, ""));
      if (!s) continue;
      const r = this.roleReferenceRules(b.roleRef, "");
      if ("error" in r) {
        out.errors.push(r.error);
        continue;
      }
      const source = () => `ClusterRoleBinding ${JSON.stringify(b.metadata.name)} of ${b.roleRef.kind} ${JSON.stringify(b.roleRef.name)} to ${describeSubject(s, "")}`;
      for (const rule of r.rules) out.rules.push({ rule, source });
    }
    if (namespace) {
      for (const b of this.source.listRoleBindings(namespace)) {
        const s = (b.subjects ?? []).find((x) => subjectApplies(user, x, namespace));
        if (!s) continue;
        const r = this.roleReferenceRules(b.roleRef, namespace);
        if ("error" in r) {
          out.errors.push(r.error);
          continue;
        }
        const source = () => `RoleBinding ${JSON.stringify(`${b.metadata.name}/${b.metadata.namespace}`)} of ${b.roleRef.kind} ${JSON.stringify(b.roleRef.name)} to ${describeSubject(s, namespace)}`;
        for (const rule of r.rules) out.rules.push({ rule, source });
      }
    }
    if (this.cache.size >= MAX_CACHED) this.cache.clear();
    this.cache.set(key, out);
    return out;
  }

  authorize(a: Attributes): AuthorizerResult {
    const resolved = this.resolve(a.user, a.namespace);
    for (const r of resolved.rules) {
      if (ruleAllows(a, r.rule)) return { decision: "Allow", reason: `RBAC: allowed by ${r.source()}` };
    }
    return { decision: "NoOpinion", reason: resolved.errors.length ? `RBAC: ${aggregateErrors(resolved.errors)}` : "" };
  }

  /** RulesFor as the escalation checks want it: the policy rules and the aggregated resolution error. */
  policyRulesFor(user: UserInfo, namespace: string): { rules: PolicyRule[]; error?: string } {
    const resolved = this.resolve(user, namespace);
    return { rules: resolved.rules.map((r) => r.rule), ...(resolved.errors.length ? { error: aggregateErrors(resolved.errors) } : {}) };
  }

  rulesFor(user: UserInfo, namespace: string): { resourceRules: ResourceRuleInfo[]; nonResourceRules: NonResourceRuleInfo[]; incomplete: boolean; evaluationError?: string } {
    const { rules, error } = this.policyRulesFor(user, namespace);
    const resourceRules: ResourceRuleInfo[] = [];
    const nonResourceRules: NonResourceRuleInfo[] = [];
    for (const r of rules) {
      if ((r.resources ?? []).length > 0) resourceRules.push({ verbs: r.verbs ?? [], apiGroups: r.apiGroups ?? [], resources: r.resources ?? [], resourceNames: r.resourceNames ?? [] });
      if ((r.nonResourceURLs ?? []).length > 0) nonResourceRules.push({ verbs: r.verbs ?? [], nonResourceURLs: r.nonResourceURLs ?? [] });
    }
    return { resourceRules, nonResourceRules, incomplete: false, ...(error ? { evaluationError: error } : {}) };
  }
}

/** utilerrors.NewAggregate(errs).Error(): one message alone, several in brackets. */
export function aggregateErrors(errs: readonly string[]): string {
  const seen = [...new Set(errs)];
  return seen.length === 1 ? seen[0]! : `[${seen.join(", ")}]`;
}
