// The node groups' ASGs: sizes clamped, lowest free names, newest terminated first, the
// topology's configuration written without touching desired or instances, and the Nodes of gone
// instances deleted — against a FakeClient.

import { describe, expect, it } from "vitest";
import type { ConfigMap, Node } from "../../api/index.ts";
import { newLogger } from "../../client/log.ts";
import { FakeClient, FakeRecorder, fakeLister } from "../../client/testing.ts";
import type { ReconcileContext } from "../../client/types.ts";
import { cloudConfigMap, parseCloudConfigMap, type CloudGroupState } from "./cloudapi.ts";
import { NodeGroupController, configuredGroups, nextInstanceName, scaleToDesired, withConfiguration } from "./nodegroups.ts";
import { loadTopology } from "./topology.ts";

const ctx = (): ReconcileContext => ({ signal: new AbortController().signal, log: newLogger("test"), reconcileID: "test" });

function group(over: Partial<CloudGroupState> = {}): CloudGroupState {
  return {
    kind: "nodegroup",
    group: "general",
    zone: "local-1a",
    instanceType: "m5.large",
    minSize: 1,
    maxSize: 5,
    desiredCapacity: 2,
    template: { capacity: { cpu: "2", memory: "8Gi", pods: "29" }, labels: {}, taints: [] },
    instances: [],
    ...over,
  };
}

const inst = (name: string, launchTime: string) => ({ name, id: `i-${name.length.toString(16).padStart(17, "0")}`, launchTime });

function node(name: string, grp = "general", zone = "local-1a"): Node {
  return { apiVersion: "v1", kind: "Node", metadata: { name, labels: { "kubelab.io/nodegroup": grp, "topology.kubernetes.io/zone": zone } } };
}

describe("scaleToDesired", () => {
  it("launches under the lowest free names, skipping names a Node still holds", () => {
    const next = scaleToDesired(group({ desiredCapacity: 3, instances: [inst("general-local-1a-1", "2026-01-01T00:00:00Z")] }), new Set(["general-local-1a-0"]), Date.parse("2026-01-02T00:00:00Z"))!;
    expect(next.instances.map((i) => i.name)).toEqual(["general-local-1a-1", "general-local-1a-2", "general-local-1a-3"]);
    for (const i of next.instances.slice(1)) {
      expect(i.id).toMatch(/^i-[0-9a-f]{17}$/);
      expect(i.launchTime).toBe("2026-01-02T00:00:00Z");
    }
  });

  it("terminates the newest first", () => {
    const s = group({ desiredCapacity: 1, instances: [inst("general-local-1a-0", "2026-01-01T00:00:00Z"), inst("general-local-1a-1", "2026-01-03T00:00:00Z"), inst("general-local-1a-2", "2026-01-02T00:00:00Z")] });
    expect(scaleToDesired(s, new Set(), 0)!.instances.map((i) => i.name)).toEqual(["general-local-1a-0"]);
  });

  it("clamps desiredCapacity to [minSize, maxSize] and changes nothing when at it", () => {
    expect(scaleToDesired(group({ desiredCapacity: 9 }), new Set(), 0)!.desiredCapacity).toBe(5);
    expect(scaleToDesired(group({ desiredCapacity: 0 }), new Set(), 0)!.instances).toHaveLength(1);
    const at = group({ desiredCapacity: 1, instances: [inst("general-local-1a-0", "2026-01-01T00:00:00Z")] });
    expect(scaleToDesired(at, new Set(), 0)).toBeUndefined();
  });

  it("names are <group>-<zone>-<n>", () => {
    expect(nextInstanceName("gpu", "local-1c", new Set(["gpu-local-1c-0"]))).toBe("gpu-local-1c-1");
  });
});

describe("the topology's configuration", () => {
  const topology = loadTopology(
    `apiVersion: kubelab.io/v1alpha1
kind: Topology
region: local-1
zones: [{ name: local-1a, subnet: 127.64.0.0/16 }, { name: local-1b, subnet: 127.65.0.0/16 }]
nodeGroups:
  - { name: general, instanceType: m5.large, minSize: 1, desiredSize: 2, maxSize: 4, labels: { team: a }, taints: [{ key: k, value: v, effect: NoSchedule }] }
`,
    "t.yaml",
  );

  it("is one ASG per group and zone with the instance type's template", () => {
    const groups = configuredGroups(topology);
    expect(groups.map((g) => g.name)).toEqual(["kubelab-nodegroup-general-local-1a", "kubelab-nodegroup-general-local-1b"]);
    expect(groups[1]!.state.template).toEqual({
      capacity: { cpu: "2", memory: "8Gi", pods: "29", "ephemeral-storage": "100Gi" },
      labels: { "node.kubernetes.io/instance-type": "m5.large", "topology.kubernetes.io/zone": "local-1b", "topology.kubernetes.io/region": "local-1", "kubelab.io/nodegroup": "general", team: "a" },
      taints: [{ key: "k", value: "v", effect: "NoSchedule" }],
    });
    expect(groups[0]!.state).toMatchObject({ minSize: 1, maxSize: 4, desiredCapacity: 2, instances: [] });
  });

  it("is rewritten on an existing group without touching desiredCapacity or instances", () => {
    const want = configuredGroups(topology)[0]!.state;
    const cur = group({ maxSize: 9, desiredCapacity: 3, instances: [inst("general-local-1a-0", "2026-01-01T00:00:00Z")] });
    const next = withConfiguration(cur, want)!;
    expect(next).toMatchObject({ maxSize: 4, desiredCapacity: 3, instances: cur.instances, template: want.template });
    expect(withConfiguration(next, want)).toBeUndefined();
  });

  it("round-trips through the ConfigMap", () => {
    const s = group({ instances: [inst("general-local-1a-0", "2026-01-01T00:00:00Z")] });
    const cm = cloudConfigMap("kubelab-nodegroup-general-local-1a", s);
    expect(cm.data).toMatchObject({ minSize: "1", maxSize: "5", desiredCapacity: "2", instanceType: "m5.large" });
    expect(parseCloudConfigMap(cm)).toEqual(s);
    expect(parseCloudConfigMap({ ...cm, data: { ...cm.data, desiredCapacity: "two" } })).toBeInstanceOf(Error);
  });
});

describe("NodeGroupController", () => {
  it("launches to desired, and deletes Nodes whose instance is gone", async () => {
    const cm = cloudConfigMap("kubelab-nodegroup-general-local-1a", group({ desiredCapacity: 2, instances: [inst("general-local-1a-0", "2026-01-01T00:00:00Z")] }));
    const client = new FakeClient([cm, node("general-local-1a-0"), node("general-local-1a-7"), node("other-local-1a-0", "other")]);
    const recorder = new FakeRecorder();
    const live = () => [client.tracker("", "configmaps", "kube-system", cm.metadata.name!) as ConfigMap];
    const c = new NodeGroupController({
      client,
      configMaps: { get: () => live()[0] },
      nodes: fakeLister([node("general-local-1a-0"), node("general-local-1a-7"), node("other-local-1a-0", "other")]),
      recorder,
    });
    await c.reconcile(ctx(), "kube-system/kubelab-nodegroup-general-local-1a");
    const after = parseCloudConfigMap(live()[0]!) as CloudGroupState;
    // -7 holds its name until its Node is gone; the new instance takes the lowest free one.
    expect(after.instances.map((i) => i.name)).toEqual(["general-local-1a-0", "general-local-1a-1"]);
    const deletes = client.writeActions().filter((a) => a.verb === "delete");
    expect(deletes.map((a) => a.name)).toEqual(["general-local-1a-7"]);
    expect(recorder.events).toEqual(["Normal DeletingNode Deleting node general-local-1a-7 because it does not exist in the cloud provider"]);
  });
});
