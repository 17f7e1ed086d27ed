// Authorization's public surface: the chain --authorization-mode builds (newAuthorizer) and what the
// apiserver installs around it (installAuthorization): the review APIs, NodeRestriction and RBAC
// escalation admission, and the bootstrap policy reconciled at start.

import type { KubeObject } from "../../api/index.ts";
import { NodeRestriction } from "../admission/noderestriction.ts";
import type { Registry } from "../registry/registry.ts";
import { clusterRoles, nodeRules, reconcileBootstrapPolicy } from "./bootstrappolicy.ts";
import { RBACEscalationAdmission } from "./escalation.ts";
import { NodeAuthorizer, NodeGraph, populateNodeGraph } from "./node.ts";
import { RBACAuthorizer, registryRBACSource } from "./rbac.ts";
import { installReviews } from "./reviews.ts";
import { ALWAYS_ALLOW, type Authorizer, type RuleResolver } from "./types.ts";
import { ALWAYS_DENY, SYSTEM_PRIVILEGED_GROUP, privilegedGroups, unionAuthorizer, unionRuleResolver } from "./union.ts";

export { ALWAYS_ALLOW, forbiddenMessage, type Attributes, type Authorizer, type AuthorizerResult, type RuleResolver } from "./types.ts";
export { ALWAYS_DENY, SYSTEM_PRIVILEGED_GROUP, privilegedGroups, unionAuthorizer, unionRuleResolver } from "./union.ts";
export { RBACAuthorizer, registryRBACSource, staticRBACSource, type RBACSource } from "./rbac.ts";
export { NodeAuthorizer, NodeGraph, nodeIdentity, populateNodeGraph } from "./node.ts";
export { clusterRoles, clusterRoleBindings, namespaceRoles, namespaceRoleBindings, nodeRules, reconcileBootstrapPolicy, type ReconcileReport } from "./bootstrappolicy.ts";
export { RBACEscalationAdmission } from "./escalation.ts";
export { ruleAllows, rulesAllow, covers, escalationMessage } from "./rules.ts";
export * from "./rbactypes.ts";

export const AUTHORIZATION_MODES = ["AlwaysAllow", "AlwaysDeny", "Node", "RBAC"] as const;

/** The chain of --authorization-mode, with the RBAC authorizer (when a mode) for the escalation checks. */
export interface ChainAuthorizer extends Authorizer, RuleResolver {
  readonly modes: readonly string[];
  readonly rbac?: RBACAuthorizer;
}

/**
 * `--authorization-mode Node,RBAC`: system:masters first (always allowed, as upstream), then each
 * mode in order. Throws for an unknown or repeated mode, as kube-apiserver refuses to start.
 */
export function newAuthorizer(modes: readonly string[], registry: Registry): ChainAuthorizer {
  if (modes.length === 0) throw new Error("at least one authorization-mode must be passed");
  const seen = new Set<string>();
  const authorizers: Authorizer[] = [privilegedGroups(SYSTEM_PRIVILEGED_GROUP)];
  const resolvers: RuleResolver[] = [];
  let rbac: RBACAuthorizer | undefined;
  for (const m of modes) {
    if (seen.has(m)) throw new Error(`authorization-mode ${JSON.stringify(m)} has mode specified more than once`);
    seen.add(m);
    switch (m) {
      case "AlwaysAllow":
        authorizers.push(ALWAYS_ALLOW);
        resolvers.push(ALWAYS_ALLOW);
        break;
      case "AlwaysDeny":
        authorizers.push(ALWAYS_DENY);
        resolvers.push(ALWAYS_DENY);
        break;
      case "Node": {
        const graph = new NodeGraph();
        populateNodeGraph(registry, graph);
        const node = new NodeAuthorizer(graph, nodeRules());
        authorizers.push(node);
        resolvers.push(node);
        break;
      }
      case "RBAC":
        rbac = new RBACAuthorizer(registryRBACSource(registry));
        authorizers.push(rbac);
        resolvers.push(rbac);
        break;
      default:
        throw new Error(`unknown authorization mode ${JSON.stringify(m)} specified (known: ${AUTHORIZATION_MODES.join(", ")})`);
    }
  }
  const union = unionAuthorizer(authorizers);
  const rules = unionRuleResolver(resolvers);
  return { modes: [...modes], rbac, authorize: (a) => union.authorize(a), rulesFor: (u, ns) => rules.rulesFor(u, ns) };
}

export interface InstallAuthorizationOptions {
  /** The rule resolver for escalation checks; by default the chain's RBAC authorizer. */
  rbac?: RBACAuthorizer;
  /** Reconcile the bootstrap policy at start (default: when RBAC is a mode). */
  bootstrapPolicy?: boolean;
  /** NodeRestriction admission (default true). */
  nodeRestriction?: boolean;
  /** Called with what the bootstrap reconcile did (for the log). */
  onBootstrap?: (report: Awaited<ReturnType<typeof reconcileBootstrapPolicy>>) => void;
}

async function getOrUndefined(registry: Registry, resource: string, namespace: string, name: string): Promise<KubeObject | undefined> {
  try {
    return await registry.store("", resource).get(namespace, name);
  } catch (e) {
    if ((e as { code?: number }).code === 404) return undefined;
    throw e;
  }
}

/**
 * Registers the review APIs, the NodeRestriction and RBAC escalation admission plugins, and the
 * bootstrap policy post-start hook. Call once, with the authorizer the server uses.
 */
export function installAuthorization(registry: Registry, authorizer: Authorizer & RuleResolver, opts: InstallAuthorizationOptions = {}): void {
  installReviews(registry, authorizer);
  if (opts.nodeRestriction ?? true) {
    const plugin = new NodeRestriction(
      (ns, name) => getOrUndefined(registry, "pods", ns, name),
      (name) => getOrUndefined(registry, "nodes", "", name),
    );
    // Upstream's order: NamespaceLifecycle, LimitRanger, ServiceAccount, NodeRestriction, ...
    registry.admission.add({ validating: plugin }, "LimitRanger");
  }
  const rbac = opts.rbac ?? (authorizer as Partial<ChainAuthorizer>).rbac;
  if (rbac) registry.admission.add({ validating: new RBACEscalationAdmission(authorizer, rbac) }, "NodeRestriction");
  if (opts.bootstrapPolicy ?? rbac !== undefined) {
    registry.onStart(async () => {
      const report = await reconcileBootstrapPolicy(registry);
      opts.onBootstrap?.(report);
    });
  }
}

/** The names of the default ClusterRoles (for tests and `kubelab status`). */
export function bootstrapClusterRoleNames(): string[] {
  return clusterRoles().map((r) => r.metadata.name!);
}
