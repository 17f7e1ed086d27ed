// The what-if machinery: template nodes built from a group's ConfigMap, the scheduler's Filter
// plugins run against them (in kube-scheduler's words), snapshots that copy cheaply, and the
// node counts of a group (ready, not started, unregistered, not launched).

import { describe, expect, it } from "vitest";
import { FakeClient } from "../../../client/index.ts";
import { parseCloudConfigMap } from "../cloudapi.ts";
import { nodeGroups } from "./clusterstate.ts";
import { ClusterSnapshot, PredicateChecker, templateNode, templateNodeName } from "./simulator.ts";
import { groupConfigMap, makeNode, makePod, T0 } from "./testing.ts";

const state = (spec: Parameters<typeof groupConfigMap>[0]) => {
  const s = parseCloudConfigMap(groupConfigMap(spec));
  if (s instanceof Error) throw s;
  return s;
};

describe("templateNode", () => {
  it("is the node the group launches: template labels, hostname, zone, capacity as allocatable, taints, Ready", () => {
    const s = state({ group: "gpu", zone: "local-1b", cpu: "8", memory: "32Gi", labels: { accelerator: "t4" }, taints: [{ key: "nvidia.com/gpu", effect: "NoSchedule" }] });
    const name = templateNodeName(s, 0);
    expect(name).toBe("template-node-for-gpu-local-1b-0");
    const n = templateNode(s, name, "local")!;
    expect(n.metadata.labels).toMatchObject({
      "kubernetes.io/hostname": name,
      "topology.kubernetes.io/zone": "local-1b",
      "topology.kubernetes.io/region": "local",
      "kubelab.io/nodegroup": "gpu",
      "kubernetes.io/os": "linux",
      accelerator: "t4",
    });
    expect(n.status?.allocatable).toEqual({ cpu: "8", memory: "32Gi", pods: "58", "ephemeral-storage": "100Gi" });
    expect(n.spec?.taints).toEqual([{ key: "nvidia.com/gpu", effect: "NoSchedule" }]);
    expect(n.status?.conditions).toEqual([{ type: "Ready", status: "True" }]);
  });

  it("is undefined without a template", () => {
    expect(templateNode({ group: "g", zone: "z" }, "x")).toBeUndefined();
  });
});

describe("PredicateChecker", () => {
  const checker = new PredicateChecker({ client: new FakeClient() });
  const snap = () => new ClusterSnapshot([{ node: makeNode("n1", { zone: "local-1a", taints: [{ key: "dedicated", value: "batch", effect: "NoSchedule" }] }), pods: [] }, { node: makeNode("n2", { zone: "local-1a" }), pods: [makePod("p", { nodeName: "n2", cpu: "3" })] }]);

  it("gives kube-scheduler's reasons", () => {
    const s = snap();
    expect(checker.check(s, makePod("a", { cpu: "1" }), "n1").reasons).toEqual(["node(s) had untolerated taint {dedicated: batch}"]);
    expect(checker.check(s, makePod("a", { cpu: "2" }), "n2").reasons).toEqual(["Insufficient cpu"]);
    expect(checker.check(s, makePod("a", { cpu: "1", nodeSelector: { "topology.kubernetes.io/zone": "local-1b" } }), "n2").reasons).toEqual(["node(s) didn't match Pod's node affinity/selector"]);
    expect(checker.check(s, makePod("a", { cpu: "1" }), "n2").isSuccess()).toBe(true);
  });

  it("finds the first node a pod fits, counting pods already placed in the snapshot", () => {
    const s = snap();
    expect(checker.fitsAny(s, makePod("a", { cpu: "1" }))).toBe("n2");
    s.addPod("n2", makePod("b", { cpu: "1" }));
    expect(checker.fitsAny(s, makePod("a", { cpu: "1" }))).toBeUndefined();
  });

  it("leaves the original snapshot alone when a clone changes", () => {
    const s = snap();
    const c = s.clone();
    c.addPod("n2", makePod("b", { cpu: "1" }));
    c.removeNode("n1");
    expect(s.get("n2")?.pods).toHaveLength(1);
    expect(s.has("n1")).toBe(true);
    expect(c.get("n2")?.pods).toHaveLength(2);
  });
});

describe("nodeGroups", () => {
  it("counts ready, not started, unregistered, long unregistered and not yet launched nodes", () => {
    const recent = T0 - 60_000;
    const cms = [
      groupConfigMap({ group: "general", zone: "local-1a", desired: 6, instances: ["ready", "booting", "launching"], launchedAt: recent }),
      groupConfigMap({ group: "general", zone: "local-1b", desired: 1, instances: ["lost"], launchedAt: T0 - 3_600_000 }),
    ];
    const nodes = new Map([
      ["ready", makeNode("ready", { group: "general", zone: "local-1a" })],
      ["booting", makeNode("booting", { group: "general", zone: "local-1a", ready: false })],
    ]);
    const [a, b] = nodeGroups(cms, nodes, T0, 15 * 60_000);
    expect(a!.name).toBe("kubelab-nodegroup-general-local-1a");
    expect(a!.counts).toEqual({ registered: 2, ready: 1, notStarted: 1, unready: 0, unregistered: 1, longUnregistered: 0, beingDeleted: 0 });
    // 1 not started + 1 unregistered + 3 not launched (desired 6, 3 listed).
    expect(a!.upcoming).toBe(5);
    expect(b!.counts.longUnregistered).toBe(1);
    expect(b!.upcoming).toBe(0);
  });
});
