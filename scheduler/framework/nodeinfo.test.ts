import { describe, expect, it } from "vitest";
import type { Container, Node, Pod, ResourceList } from "../../api/index.ts";
import { addPod, emptyResource, newNodeInfo, nonZeroRequests, podRequests, removePod } from "./nodeinfo.ts";
import type { Resource } from "./types.ts";

function container(name: string, requests?: ResourceList, extra: Partial<Container> = {}): Container {
  return { name, ...(requests ? { resources: { requests } } : {}), ...extra };
}

function podWith(name: string, containers: Container[], initContainers: Container[] = [], extra: Partial<NonNullable<Pod["spec"]>> = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default", uid: `uid-${name}` },
    spec: { containers, ...(initContainers.length ? { initContainers } : {}), ...extra },
  };
}

function nodeWithAllocatable(name: string, allocatable: ResourceList): Node {
  return { apiVersion: "v1", kind: "Node", metadata: { name }, status: { allocatable } };
}

function res(milliCPU: number, memory: number, extra: Partial<Resource> = {}): Resource {
  return { ...emptyResource(), milliCPU, memory, allowedPodNumber: 1, ...extra };
}

const Mi = 1024 * 1024;

describe("podRequests", () => {
  const cases: { name: string; pod: Pod; want: Resource }[] = [
    {
      name: "a pod with no requests requests nothing but still counts as one pod",
      pod: podWith("empty", [container("a")]),
      want: res(0, 0),
    },
    {
      name: "requests of app containers are summed",
      pod: podWith("sum", [container("a", { cpu: "100m", memory: "64Mi" }), container("b", { cpu: "1", memory: "1Gi" })]),
      want: res(1100, 64 * Mi + 1024 * Mi),
    },
    {
      name: "an init container larger than the app containers sets the effective request",
      pod: podWith("init", [container("a", { cpu: "200m", memory: "100Mi" })], [container("i", { cpu: "2", memory: "50Mi" })]),
      want: res(2000, 100 * Mi),
    },
    {
      name: "a sidecar init container adds to the app containers and to later init containers",
      pod: podWith(
        "sidecar",
        [container("a", { cpu: "200m" })],
        [container("s", { cpu: "100m" }, { restartPolicy: "Always" }), container("i", { cpu: "1" })],
      ),
      want: res(1100, 0),
    },
    {
      name: "pod overhead is added on top of the effective request",
      pod: podWith("overhead", [container("a", { cpu: "250m", memory: "1Mi" })], [], { overhead: { cpu: "50m", memory: "1Mi" } }),
      want: res(300, 2 * Mi),
    },
    {
      name: "ephemeral storage and extended resources are carried in bytes and by name",
      pod: podWith("ext", [container("a", { "ephemeral-storage": "1Gi", "example.com/gpu": "2" })]),
      want: res(0, 0, { ephemeralStorage: 1024 * Mi, scalar: { "example.com/gpu": 2 } }),
    },
  ];
  it.each(cases)("$name", ({ pod, want }) => {
    expect(podRequests(pod)).toEqual(want);
  });
});

describe("nonZeroRequests", () => {
  it("counts a container without requests as 100m cpu and 200Mi memory", () => {
    const pod = podWith("nz", [container("a"), container("b", { cpu: "1" })]);
    expect(nonZeroRequests(pod)).toEqual(res(1100, 400 * Mi));
  });
});

describe("NodeInfo", () => {
  const node = nodeWithAllocatable("n1", { cpu: "4", memory: "8Gi", pods: "110", "ephemeral-storage": "10Gi" });
  const web = podWith("web", [
    container("a", { cpu: "500m", memory: "128Mi" }, { ports: [{ containerPort: 80, hostPort: 8080 }, { containerPort: 53, hostPort: 53, protocol: "UDP", hostIP: "10.0.0.1" }] }),
  ]);
  const anti = podWith("anti", [container("a")], [], {
    affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: { app: "x" } } }] } },
  });
  const soft = podWith("soft", [container("a", { cpu: "100m" })], [], {
    affinity: { podAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1, podAffinityTerm: { topologyKey: "zone" } }] } },
  });

  it("computes allocatable from the node including the pod count", () => {
    const info = newNodeInfo(node, []);
    expect(info.allocatable).toEqual({ milliCPU: 4000, memory: 8192 * Mi, ephemeralStorage: 10240 * Mi, allowedPodNumber: 110, scalar: {} });
    expect(info.pods).toHaveLength(0);
  });

  it("aggregates requests, ports and affinity pods of the pods on the node", () => {
    const info = newNodeInfo(node, [web, anti, soft]);
    expect(info.requested).toEqual({ ...emptyResource(), milliCPU: 600, memory: 128 * Mi, allowedPodNumber: 3 });
    expect(info.nonZeroRequested).toEqual({ ...emptyResource(), milliCPU: 700, memory: 528 * Mi, allowedPodNumber: 3 });
    expect([...info.usedPorts].sort()).toEqual(["TCP/0.0.0.0/8080", "UDP/10.0.0.1/53"]);
    expect(info.podsWithAffinity.map((p) => p.pod.metadata.name)).toEqual(["anti", "soft"]);
    expect(info.podsWithRequiredAntiAffinity.map((p) => p.pod.metadata.name)).toEqual(["anti"]);
  });

  it("adding a pod returns a new NodeInfo with a higher generation and leaves the old one untouched", () => {
    const before = newNodeInfo(node, [anti]);
    const after = addPod(before, web);
    expect(after.generation).toBeGreaterThan(before.generation);
    expect(after.pods).toHaveLength(2);
    expect(after.requested.milliCPU).toBe(500);
    expect(after.usedPorts.has("TCP/0.0.0.0/8080")).toBe(true);
    expect(before.pods).toHaveLength(1);
    expect(before.requested.milliCPU).toBe(0);
    expect(before.usedPorts.size).toBe(0);
  });

  it("removing a pod subtracts its requests, frees its ports and drops it from the affinity lists", () => {
    const full = newNodeInfo(node, [web, anti, soft]);
    const after = removePod(removePod(full, web), anti);
    expect(after.pods.map((p) => p.pod.metadata.name)).toEqual(["soft"]);
    expect(after.requested).toEqual({ ...emptyResource(), milliCPU: 100, allowedPodNumber: 1 });
    expect(after.nonZeroRequested).toEqual({ ...emptyResource(), milliCPU: 100, memory: 200 * Mi, allowedPodNumber: 1 });
    expect(after.usedPorts.size).toBe(0);
    expect(after.podsWithAffinity.map((p) => p.pod.metadata.name)).toEqual(["soft"]);
    expect(after.podsWithRequiredAntiAffinity).toHaveLength(0);
    expect(after.generation).toBeGreaterThan(full.generation);
    expect(full.pods).toHaveLength(3);
  });

  it("removing a pod that is not on the node returns the same NodeInfo", () => {
    const info = newNodeInfo(node, [web]);
    expect(removePod(info, anti)).toBe(info);
  });
});
