// RBAC escalation prevention (pkg/registry/rbac/{role,clusterrole,rolebinding,clusterrolebinding}/policybased):
// writing a Role or ClusterRole needs every rule it grants, or `escalate` on it; writing a binding
// needs the bound role's rules, or `bind` on it. Members of system:masters, and the apiserver's own
// writes (no user), are trusted. Upstream wraps the storage; here it is a validating admission
// plugin on create and update of the four kinds, which sees the same objects at the same moment.

import { errors } from "../errors.ts";
import type { AdmissionAttributes, ValidatingPlugin } from "../admission/index.ts";
import type { UserInfo } from "../auth.ts";
import type { RBACAuthorizer } from "./rbac.ts";
import { RBAC_GROUP, type ClusterRole, type PolicyRule, type RoleBinding, type RoleRef } from "./rbactypes.ts";
import { escalationMessage } from "./rules.ts";
import type { Authorizer } from "./types.ts";
import { SYSTEM_PRIVILEGED_GROUP } from "./union.ts";

/** `*` on `*.*` and every URL: what setting an aggregationRule needs (it can gather anything). */
const FULL_AUTHORITY: PolicyRule[] = [
  { verbs: ["*"], apiGroups: ["*"], resources: ["*"] },
  { verbs: ["*"], nonResourceURLs: ["*"] },
];

/** EscalationAllowed: no user (the apiserver itself) or a member of system:masters. */
function escalationAllowed(u: UserInfo | undefined): boolean {
  return !u || u.groups.includes(SYSTEM_PRIVILEGED_GROUP);
}

/** Creating or updating only what the garbage collector needs (finalizers, ownerReferences) is never an escalation. */
function onlyMutatingGCFields(a: AdmissionAttributes): boolean {
  if (a.operation !== "UPDATE" || !a.oldObject) return false;
  const strip = (o: unknown) => {
    const c = structuredClone(o) as { metadata?: Record<string, unknown> };
    if (c.metadata) {
      delete c.metadata.finalizers;
      delete c.metadata.ownerReferences;
      delete c.metadata.resourceVersion;
      delete c.metadata.managedFields;
    }
    return JSON.stringify(c);
  };
  return strip(a.object) === strip(a.oldObject);
}

export class RBACEscalationAdmission implements ValidatingPlugin {
  readonly name = "RBACEscalation";

  constructor(
    /** Asked for `escalate` and `bind` (the whole chain, as upstream's storage asks the apiserver's authorizer). */
    private readonly authorizer: Authorizer,
    private readonly resolver: RBACAuthorizer,
  ) {}

  handles(a: AdmissionAttributes): boolean {
    return a.info.group === RBAC_GROUP && (a.operation === "CREATE" || a.operation === "UPDATE") && !a.subresource;
  }

  async validate(a: AdmissionAttributes): Promise<void> {
    const u = a.userInfo;
    if (escalationAllowed(u) || onlyMutatingGCFields(a)) return;
    switch (a.info.resource) {
      case "roles":
      case "clusterroles":
        return this.checkRole(a, u!);
      case "rolebindings":
      case "clusterrolebindings":
        return this.checkBinding(a, u!);
    }
  }

  private async allowed(u: UserInfo, verb: string, resource: string, namespace: string, name: string): Promise<boolean> {
    const r = await this.authorizer.authorize({ user: u, verb, isResourceRequest: true, path: "", apiGroup: RBAC_GROUP, apiVersion: "*", resource, subresource: "", namespace, name });
    return r.decision === "Allow";
  }

  /** ConfirmNoEscalation in the request's namespace ("" for cluster-scoped: ClusterRoleBindings only). */
  private confirm(a: AdmissionAttributes, u: UserInfo, rules: readonly PolicyRule[]): string | undefined {
    const held = this.resolver.policyRulesFor(u, a.namespace);
    return escalationMessage(u, held.rules, rules, held.error);
  }

  private async checkRole(a: AdmissionAttributes, u: UserInfo): Promise<void> {
    // RoleEscalationAuthorized: `escalate` on this role (the request's name: empty on a create, as upstream).
    if (await this.allowed(u, "escalate", a.info.resource, a.namespace, a.operation === "CREATE" ? "" : a.name)) return;
    const role = a.object as ClusterRole;
    const why = this.confirm(a, u, role.rules ?? []);
    if (why) throw errors.forbidden({ group: RBAC_GROUP, resource: a.info.resource }, a.name, why);
    if (a.info.resource === "clusterroles") {
      const has = (r: ClusterRole | undefined) => (r?.aggregationRule?.clusterRoleSelectors?.length ?? 0) > 0;
      if (has(role) || has(a.oldObject as ClusterRole | undefined)) {
        if (this.confirm(a, u, FULL_AUTHORITY)) throw errors.forbidden({ group: RBAC_GROUP, resource: "clusterroles" }, a.name, "must have cluster-admin privileges to use the aggregationRule");
      }
    }
  }

  private async checkBinding(a: AdmissionAttributes, u: UserInfo): Promise<void> {
    const ref = (a.object as RoleBinding).roleRef as RoleRef | undefined;
    if (!ref) return; // validation rejects a binding without a roleRef
    // BindingAuthorized: `bind` on the role, in the binding's namespace.
    const resource = ref.kind === "ClusterRole" ? "clusterroles" : ref.kind === "Role" ? "roles" : "";
    if (resource && (await this.allowed(u, "bind", resource, a.namespace, ref.name))) return;
    const r = this.resolver.roleReferenceRules(ref, a.namespace);
    if ("error" in r) {
      // GetRoleReferenceRules' error: the role must exist to be bound by someone who cannot `bind` it.
      const kind = ref.kind === "Role" ? "roles" : "clusterroles";
      throw errors.notFound({ group: RBAC_GROUP, resource: kind.slice(0, -1) }, ref.name);
    }
    const why = this.confirm(a, u, r.rules);
    if (why) throw errors.forbidden({ group: RBAC_GROUP, resource: a.info.resource }, a.name, why);
  }
}
