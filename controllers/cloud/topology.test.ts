import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadTopology, loadTopologyFile, overrideTopology, topologyDocument } from "./topology.ts";
import { maxPods } from "./types.ts";
import { stringify } from "yaml";

const head = "apiVersion: kubelab.io/v1alpha1\nkind: Topology\nregion: r1\n";
const zones = "zones:\n  - name: a\n  - name: b\n";

describe("loadTopology", () => {
  it("loads the default topology: three zones sharing 127.64.0.0/10, the general group, the serverless profile", () => {
    const t = loadTopologyFile("deploy/topologies/default.yaml");
    expect(t.region).toBe("local-1");
    expect(t.zones).toEqual([
      { name: "local-1a", subnet: "127.64.0.0/12" },
      { name: "local-1b", subnet: "127.80.0.0/12" },
      { name: "local-1c", subnet: "127.96.0.0/12" },
    ]);
    expect(t.nodeGroups).toEqual([{ name: "general", instanceType: "m5.2xlarge", zones: ["local-1a", "local-1b", "local-1c"], minSize: 2, desiredSize: 2, maxSize: 10, labels: {}, taints: [] }]);
    expect(maxPods(t.instanceTypes["m5.2xlarge"])).toBe(58);
    expect(t.serverless).toEqual([{ name: "serverless", zones: ["local-1a", "local-1b", "local-1c"], selectors: [{ namespace: "serverless", labels: {} }] }]);
  });

  it("loads the example: explicit subnets, own instance type, taints", () => {
    const t = loadTopologyFile("deploy/topologies/example.yaml");
    expect(t.zones[0]).toEqual({ name: "local-1a", subnet: "127.64.0.0/28" });
    expect(t.instanceTypes["gpu.sim"]).toEqual({ name: "gpu.sim", cpu: 16, memory: "64Gi", enis: 4, ipsPerEni: 15 });
    expect(t.nodeGroups.map((g) => [g.name, g.zones, g.desiredSize])).toEqual([["tiny", ["local-1a"], 1], ["general", ["local-1b", "local-1c"], 1], ["gpu", ["local-1c"], 0]]);
    expect(t.nodeGroups[2].taints).toEqual([{ key: "accelerator", value: "sim", effect: "NoSchedule" }]);
  });

  it("round-trips through topologyDocument", () => {
    const t = loadTopologyFile("deploy/topologies/example.yaml");
    expect(loadTopology(stringify(topologyDocument(t)), "x")).toEqual(t);
  });

  it("gives the real EKS max pods for the built-in types", () => {
    const t = loadTopology(head + zones, "t");
    const pods = Object.fromEntries(Object.values(t.instanceTypes).map((it) => [it.name, maxPods(it)]));
    expect(pods).toMatchObject({ "t3.small": 11, "t3.medium": 17, "m5.large": 29, "m5.xlarge": 58, "m5.4xlarge": 234 });
  });

  it.each([
    ["not: [yaml", /^f\.yaml: line 1: /],
    ["kind: Topology\n", "f.yaml: apiVersion: must be kubelab.io/v1alpha1, got nothing"],
    [head + "zones: []\n", "f.yaml: zones: must list at least one zone"],
    [head + zones + "colour: blue\n", /^f\.yaml: colour: unknown field/],
    [head + "zones:\n  - name: a\n    subnet: 10.0.0.0/16\n", /^f\.yaml: zones\[0\]\.subnet: 10\.0\.0\.0\/16 is outside 127\.0\.0\.0\/8/],
    [head + "zones:\n  - name: a\n    subnet: 127.1.0.0/29\n", "f.yaml: zones[0].subnet: 127.1.0.0/29 is smaller than a /28, the smallest subnet a VPC allows"],
    [head + "zones:\n  - name: a\n    subnet: 127.1.0.0/16\n  - name: b\n    subnet: 127.1.2.0/24\n", "f.yaml: zones[1].subnet: 127.1.2.0/24 overlaps zones[0].subnet 127.1.0.0/16"],
    [head + "zones:\n  - name: a\n    subnet: 127.1.0.0/16\n  - name: b\n", /^f\.yaml: zones\[1\]\.subnet: required/],
    [head + "zones:\n  - name: a\n  - name: a\n", 'f.yaml: zones[1].name: duplicate zone "a"'],
    [head + zones + "nodeGroups:\n  - name: g\n    instanceType: m5.large\n    minSize: 2\n    maxSize: 1\n", "f.yaml: nodeGroups[0].maxSize: must be >= minSize (2), got 1"],
    [head + zones + "nodeGroups:\n  - name: g\n    instanceType: m9.huge\n    minSize: 1\n    maxSize: 1\n", /^f\.yaml: nodeGroups\[0\]\.instanceType: unknown instance type "m9\.huge"/],
    [head + zones + "nodeGroups:\n  - name: g\n    instanceType: m5.large\n    minSize: one\n    maxSize: 1\n", 'f.yaml: nodeGroups[0].minSize: must be an integer, got string "one"'],
    [head + zones + "nodeGroups:\n  - name: g\n    instanceType: m5.large\n    zones: [c]\n    minSize: 1\n    maxSize: 1\n", 'f.yaml: nodeGroups[0].zones[0]: unknown zone "c" (zones: a, b)'],
    [head + zones + "nodeGroups:\n  - name: G_1\n    instanceType: m5.large\n    minSize: 1\n    maxSize: 1\n", /^f\.yaml: nodeGroups\[0\]\.name: invalid node group name "G_1"/],
    [head + zones + "nodeGroups:\n  - name: g\n    instanceType: m5.large\n    minSize: 1\n    maxSize: 3\n    desiredSize: 4\n", "f.yaml: nodeGroups[0].desiredSize: must be between minSize (1) and maxSize (3), got 4"],
    [head + zones + "nodeGroups:\n  - name: g\n    instanceType: m5.large\n    minSize: 1\n    maxSize: 1\n    taints:\n      - key: k\n        effect: Sometimes\n", 'f.yaml: nodeGroups[0].taints[0].effect: must be NoSchedule, PreferNoSchedule or NoExecute, got "Sometimes"'],
    [head + zones + "nodeGroups:\n  - name: g\n    instanceType: m5.large\n    minSize: 1\n    maxSize: 1\n    labels:\n      'bad key!': x\n", /^f\.yaml: nodeGroups\[0\]\.labels\.bad key!: invalid label key/],
    [head + zones + "serverless:\n  - name: s\n    selectors: []\n", "f.yaml: serverless[0].selectors: must have at least one selector"],
    [head + zones + "nodeGroups:\n  - name: s\n    instanceType: m5.large\n    minSize: 0\n    maxSize: 1\nserverless:\n  - name: s\n    selectors:\n      - namespace: x\n", 'f.yaml: serverless[0].name: duplicate name "s"'],
    [head + zones + "instanceTypes:\n  - name: x\n    cpu: 2\n    memory: lots\n    enis: 1\n    ipsPerEni: 2\n", 'f.yaml: instanceTypes[0].memory: must be a quantity like 32Gi, got "lots"'],
  ])("refuses %j with one line naming the field", (text, want) => {
    let msg = "";
    try {
      loadTopology(text, "f.yaml");
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).not.toContain("\n");
    if (typeof want === "string") expect(msg).toBe(want);
    else expect(msg).toMatch(want);
  });

  it("names a missing file", () => {
    expect(() => loadTopologyFile("/nonexistent/t.yaml")).toThrow("cannot read the topology file /nonexistent/t.yaml: no such file");
  });

  it("applies --cluster-cidr to zones without subnets, refuses it where zones have their own", () => {
    const t = loadTopology(head + zones, "t", { clusterCIDR: "127.128.0.0/13" });
    expect(t.zones.map((z) => z.subnet)).toEqual(["127.128.0.0/14", "127.132.0.0/14"]);
    expect(() => loadTopology(readFileSync("deploy/topologies/example.yaml", "utf8"), "e.yaml", { clusterCIDR: "127.128.0.0/13" })).toThrow("e.yaml: zones: the zones set their own subnets, so --cluster-cidr cannot apply to them");
  });
});

describe("overrideTopology", () => {
  const t = loadTopologyFile("deploy/topologies/default.yaml");
  it("--zones re-splits the range and narrows groups that spanned every zone", () => {
    const o = overrideTopology(t, { zones: ["x", "y"], clusterCIDR: "127.128.0.0/13", region: "r9" });
    expect(o.region).toBe("r9");
    expect(o.zones).toEqual([{ name: "x", subnet: "127.128.0.0/14" }, { name: "y", subnet: "127.132.0.0/14" }]);
    expect(o.nodeGroups[0].zones).toEqual(["x", "y"]);
    expect(o.serverless[0].zones).toEqual(["x", "y"]);
  });
  it("--nodes-per-zone sets desired and widens min/max to it", () => {
    expect(overrideTopology(t, { nodesPerZone: 12 }).nodeGroups[0]).toMatchObject({ minSize: 2, desiredSize: 12, maxSize: 12 });
    expect(overrideTopology(t, { nodesPerZone: 1 }).nodeGroups[0]).toMatchObject({ minSize: 1, desiredSize: 1, maxSize: 10 });
  });
  it("refuses bad zone names", () => {
    expect(() => overrideTopology(t, { zones: ["Bad_Zone"] })).toThrow(/^--zones: invalid zone name "Bad_Zone"/);
  });
});
