// ClusterRole aggregation: one reconcile against a FakeClient and a preloaded lister.

import { describe, expect, it } from "vitest";
import { newLogger } from "../../client/log.ts";
import { fakeLister, FakeClient } from "../../client/testing.ts";
import type { ReconcileContext } from "../../client/types.ts";
import { ClusterRoleAggregationController, aggregatedRules, type ClusterRole, type PolicyRule } from "./index.ts";

const ctx = (): ReconcileContext => ({ signal: new AbortController().signal, log: newLogger("test"), reconcileID: "test" });

function role(name: string, rules: PolicyRule[], labels: Record<string, string> = {}, aggregate?: string): ClusterRole {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name, labels, resourceVersion: "1" },
    ...(aggregate ? { aggregationRule: { clusterRoleSelectors: [{ matchLabels: { [aggregate]: "true" } }] } } : {}),
    rules,
  };
}

const podsRead: PolicyRule = { verbs: ["get"], apiGroups: [""], resources: ["pods"] };
const cmWrite: PolicyRule = { verbs: ["update"], apiGroups: [""], resources: ["configmaps"] };

describe("ClusterRoleAggregationController", () => {
  it("fills an aggregated role with its matches' rules, by name, without duplicates or itself", () => {
    const view = role("view", [], { agg: "true" }, "agg");
    const all = [view, role("b-extra", [cmWrite, podsRead], { agg: "true" }), role("a-base", [podsRead], { agg: "true" }), role("other", [{ verbs: ["*"], apiGroups: ["*"], resources: ["*"] }])];
    expect(aggregatedRules(view, all)).toEqual([podsRead, cmWrite]);
  });

  it("updates the role only when its rules differ", async () => {
    const view = role("view", [], {}, "agg");
    const all = [view, role("a", [podsRead], { agg: "true" })];
    const client = new FakeClient(all);
    await new ClusterRoleAggregationController({ client, clusterRoles: fakeLister(all) }).reconcile(ctx(), "view");
    const writes = client.writeActions();
    expect(writes.map((w) => [w.verb, w.resource, w.name])).toEqual([["update", "clusterroles", "view"]]);
    expect((writes[0]!.object as ClusterRole).rules).toEqual([podsRead]);

    const done = [role("view", [podsRead], {}, "agg"), all[1]!];
    const again = new FakeClient(done);
    await new ClusterRoleAggregationController({ client: again, clusterRoles: fakeLister(done) }).reconcile(ctx(), "view");
    expect(again.writeActions()).toEqual([]);
  });

  it("leaves a role without an aggregationRule alone", async () => {
    const plain = [role("plain", [podsRead], { agg: "true" })];
    const client = new FakeClient(plain);
    await new ClusterRoleAggregationController({ client, clusterRoles: fakeLister(plain) }).reconcile(ctx(), "plain");
    expect(client.writeActions()).toEqual([]);
  });
});
