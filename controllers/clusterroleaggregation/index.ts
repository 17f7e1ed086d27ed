// The ClusterRole aggregation controller (pkg/controller/clusterroleaggregation): a ClusterRole with
// an aggregationRule gets, as its rules, the union of the rules of every ClusterRole its selectors
// match (sorted by name, duplicates dropped, itself excluded). That is how admin, edit and view
// grow when a role labelled rbac.authorization.k8s.io/aggregate-to-edit=true appears.

import { labelSelectorAsSelector, type ClusterRole, type PolicyRule } from "../../api/index.ts";
import { isConflict, isNotFound } from "../../client/errors.ts";
import { newRateLimitingQueue, runController } from "../../client/index.ts";
import type { Client, Lister, ObjectKey, ReconcileContext, Reconciler, Result, WorkQueue } from "../../client/types.ts";
import type { ControllerSetup } from "../env.ts";

export type { ClusterRole, PolicyRule } from "../../api/index.ts";

export interface ClusterRoleAggregationDeps {
  client: Client;
  clusterRoles: Lister<ClusterRole>;
}

/** Semantic equality of two rules (upstream's ruleExists uses DeepEqual; absent and empty lists are the same). */
function sameRule(a: PolicyRule, b: PolicyRule): boolean {
  const norm = (r: PolicyRule) => JSON.stringify([r.verbs ?? [], r.apiGroups ?? [], r.resources ?? [], r.resourceNames ?? [], r.nonResourceURLs ?? []]);
  return norm(a) === norm(b);
}

/** The rules an aggregated role should have, from the roles its selectors match now. */
export function aggregatedRules(role: Readonly<ClusterRole>, all: readonly Readonly<ClusterRole>[]): PolicyRule[] {
  const out: PolicyRule[] = [];
  for (const sel of role.aggregationRule?.clusterRoleSelectors ?? []) {
    const selector = labelSelectorAsSelector(sel);
    const matched = all.filter((r) => selector.matches(r.metadata.labels ?? {})).sort((a, b) => ((a.metadata.name ?? "") < (b.metadata.name ?? "") ? -1 : 1));
    for (const r of matched) {
      if (r.metadata.name === role.metadata.name) continue;
      for (const rule of r.rules ?? []) if (!out.some((x) => sameRule(x, rule))) out.push(structuredClone(rule) as PolicyRule);
    }
  }
  return out;
}

export class ClusterRoleAggregationController implements Reconciler {
  constructor(private readonly deps: ClusterRoleAggregationDeps) {}

  async reconcile(ctx: ReconcileContext, key: ObjectKey): Promise<Result | void> {
    const role = this.deps.clusterRoles.get(key);
    if (!role?.aggregationRule) return;
    const rules = aggregatedRules(role, this.deps.clusterRoles.list());
    const have = role.rules ?? [];
    if (have.length === rules.length && have.every((r, i) => sameRule(r, rules[i]!))) return;
    const next = structuredClone(role) as ClusterRole;
    next.rules = rules;
    try {
      await this.deps.client.resource<ClusterRole>("rbac.authorization.k8s.io", "clusterroles").update(next);
      ctx.log.info({ clusterRole: key, rules: rules.length }, "aggregated cluster role rules");
    } catch (e) {
      if (isNotFound(e)) return;
      if (isConflict(e)) return { requeue: true };
      throw e;
    }
  }
}

/** Any ClusterRole change may change what every aggregated role should hold: enqueue them all. */
export function enqueueAggregated(clusterRoles: Lister<ClusterRole>, queue: WorkQueue<ObjectKey>): void {
  for (const r of clusterRoles.list()) if (r.aggregationRule) queue.add(r.metadata.name ?? "");
}

/** `clusterrole-aggregation` in the controller-manager (needs `escalate` on clusterroles, as upstream's role grants). */
export const setupClusterRoleAggregationController: ControllerSetup = (env) => {
  const roles = env.informers.informer<ClusterRole>("rbac.authorization.k8s.io", "clusterroles");
  const queue = newRateLimitingQueue<ObjectKey>({ name: "clusterrole-aggregation", registry: env.registry });
  const all = (): void => enqueueAggregated(roles.lister, queue);
  roles.addEventHandler({ onAdd: all, onUpdate: all, onDelete: all });
  const reconciler = new ClusterRoleAggregationController({ client: env.client, clusterRoles: roles.lister });
  return {
    name: "clusterrole-aggregation",
    run: (ctx) => runController(ctx, { name: "clusterrole-aggregation", reconciler, queue, workers: env.workers, informers: [roles] }),
  };
};
