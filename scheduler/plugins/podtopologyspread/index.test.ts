import { describe, expect, it } from "vitest";
import type { Node, Pod, TopologySpreadConstraint } from "../../../api/index.ts";
import { FakeClient, FakeRecorder } from "../../../client/testing.ts";
import { addPod, newNodeInfo } from "../../framework/nodeinfo.ts";
import { Code, CycleState, type Handle, type NodeInfo, type NodeScore } from "../../framework/types.ts";
import { ErrReasonConstraintsNotMatch, ErrReasonNodeLabelNotMatch, newPodTopologySpread, PodTopologySpread } from "./index.ts";

// ---- builders --------------------------------------------------------------------------------------

const ZONE = "topology.kubernetes.io/zone";
const HOST = "kubernetes.io/hostname";

function node(name: string, zone?: string, extra: Record<string, string> = {}): Node {
  return { apiVersion: "v1", kind: "Node", metadata: { name, labels: { [HOST]: name, ...(zone ? { [ZONE]: zone } : {}), ...extra } } };
}

function pod(name: string, labels: Record<string, string> = { app: "web" }, constraints?: TopologySpreadConstraint[], nodeName?: string): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default", uid: `uid-${name}`, labels },
    spec: { containers: [{ name: "c", image: "pause" }], ...(constraints ? { topologySpreadConstraints: constraints } : {}), ...(nodeName ? { nodeName } : {}) },
  };
}

function zoneSpread(maxSkew: number, extra: Partial<TopologySpreadConstraint> = {}): TopologySpreadConstraint {
  return { maxSkew, topologyKey: ZONE, whenUnsatisfiable: "DoNotSchedule", labelSelector: { matchLabels: { app: "web" } }, ...extra };
}

/** Nodes with the given pods on them: `placed` maps node name → how many app=web pods it runs. */
function cluster(nodes: Node[], placed: Record<string, number> = {}): NodeInfo[] {
  return nodes.map((n) => {
    const name = n.metadata.name!;
    const pods = Array.from({ length: placed[name] ?? 0 }, (_, i) => pod(`${name}-p${i}`, { app: "web" }, undefined, name));
    return newNodeInfo(n, pods);
  });
}

function handleFor(infos: () => NodeInfo[]): Handle {
  return {
    snapshot: () => ({
      list: () => infos(),
      get: (n) => infos().find((i) => i.node.metadata.name === n),
      havePodsWithAffinityList: () => infos().filter((i) => i.podsWithAffinity.length > 0),
      havePodsWithRequiredAntiAffinityList: () => infos().filter((i) => i.podsWithRequiredAntiAffinity.length > 0),
    }),
    client: new FakeClient(),
    recorder: new FakeRecorder(),
  };
}

function plugin(infos: () => NodeInfo[]): PodTopologySpread {
  return newPodTopologySpread(undefined, handleFor(infos)) as PodTopologySpread;
}

/** PreFilter then Filter on every node: node name → the code and reasons. */
function filterAll(p: Pod, infos: NodeInfo[]): Record<string, { code: number; reasons: readonly string[] }> {
  const pl = plugin(() => infos);
  const state = new CycleState();
  const pre = pl.preFilter(state, p, infos);
  const out: Record<string, { code: number; reasons: readonly string[] }> = {};
  for (const ni of infos) {
    const st = pre.status.isSkip() ? pre.status : pl.filter(state, p, ni);
    out[ni.node.metadata.name!] = { code: st.code, reasons: st.reasons };
  }
  return out;
}

const ok = { code: Code.Success, reasons: [] };
const skewed = { code: Code.Unschedulable, reasons: [ErrReasonConstraintsNotMatch] };
const noLabel = { code: Code.UnschedulableAndUnresolvable, reasons: [ErrReasonNodeLabelNotMatch] };

// ---- Filter ----------------------------------------------------------------------------------------

describe("PodTopologySpread Filter", () => {
  const threeZones = [node("a1", "a"), node("b1", "b"), node("c1", "c")];
  const cases: { name: string; pod: Pod; infos: NodeInfo[]; want: Record<string, object> }[] = [
    {
      name: "a pod without DoNotSchedule constraints is not filtered (PreFilter skips)",
      pod: pod("p", { app: "web" }, [zoneSpread(1, { whenUnsatisfiable: "ScheduleAnyway" })]),
      infos: cluster(threeZones, { a1: 3 }),
      want: { a1: { code: Code.Skip, reasons: [] }, b1: { code: Code.Skip, reasons: [] }, c1: { code: Code.Skip, reasons: [] } },
    },
    {
      name: "with one pod in zone a and none in b and c, maxSkew 1 rejects zone a and admits b and c",
      pod: pod("p", { app: "web" }, [zoneSpread(1)]),
      infos: cluster(threeZones, { a1: 1 }),
      want: { a1: skewed, b1: ok, c1: ok },
    },
    {
      name: "maxSkew 2 admits a second pod in the fuller zone",
      pod: pod("p", { app: "web" }, [zoneSpread(2)]),
      infos: cluster(threeZones, { a1: 1 }),
      want: { a1: ok, b1: ok, c1: ok },
    },
    {
      name: "a node without the zone label is unresolvable, not merely unschedulable",
      pod: pod("p", { app: "web" }, [zoneSpread(1)]),
      infos: cluster([node("a1", "a"), node("bare")]),
      want: { a1: ok, bare: noLabel },
    },
    {
      name: "pods not matching the selector do not count toward the skew",
      pod: pod("p", { app: "web" }, [zoneSpread(1)]),
      infos: [newNodeInfo(threeZones[0]!, [pod("db", { app: "db" }, undefined, "a1")]), ...cluster(threeZones.slice(1))],
      want: { a1: ok, b1: ok, c1: ok },
    },
    {
      name: "an incoming pod that does not match its own selector adds nothing to the domain it lands in",
      pod: pod("p", { app: "other" }, [zoneSpread(1)]),
      infos: cluster(threeZones, { a1: 1 }),
      want: { a1: ok, b1: ok, c1: ok },
    },
    {
      name: "minDomains above the number of domains treats the global minimum as 0",
      pod: pod("p", { app: "web" }, [zoneSpread(1, { minDomains: 3 })]),
      infos: cluster([node("a1", "a"), node("b1", "b")], { a1: 1, b1: 1 }),
      want: { a1: skewed, b1: skewed },
    },
    {
      name: "without minDomains the same two equally-filled zones both admit the pod",
      pod: pod("p", { app: "web" }, [zoneSpread(1)]),
      infos: cluster([node("a1", "a"), node("b1", "b")], { a1: 1, b1: 1 }),
      want: { a1: ok, b1: ok },
    },
    {
      name: "zones the pod's nodeSelector excludes do not hold the global minimum down (nodeAffinityPolicy Honor)",
      pod: { ...pod("p", { app: "web" }, [zoneSpread(1)]), spec: { containers: [], topologySpreadConstraints: [zoneSpread(1)], nodeSelector: { disk: "ssd" } } },
      infos: cluster([node("a1", "a", { disk: "ssd" }), node("b1", "b", { disk: "ssd" }), node("c1", "c")], { a1: 1, b1: 1 }),
      want: { a1: ok, b1: ok, c1: ok },
    },
    {
      name: "with nodeAffinityPolicy Ignore the excluded empty zone holds the global minimum at 0",
      pod: {
        ...pod("p"),
        spec: { containers: [], topologySpreadConstraints: [zoneSpread(1, { nodeAffinityPolicy: "Ignore" })], nodeSelector: { disk: "ssd" } },
      },
      infos: cluster([node("a1", "a", { disk: "ssd" }), node("b1", "b", { disk: "ssd" }), node("c1", "c")], { a1: 1, b1: 1 }),
      want: { a1: skewed, b1: skewed, c1: ok },
    },
    {
      name: "with nodeTaintsPolicy Honor an untolerated tainted empty zone does not hold the global minimum at 0",
      pod: pod("p", { app: "web" }, [zoneSpread(1, { nodeTaintsPolicy: "Honor" })]),
      infos: [
        ...cluster([node("a1", "a")], { a1: 1 }),
        newNodeInfo({ ...node("b1", "b"), spec: { taints: [{ key: "dedicated", effect: "NoSchedule" }] } }),
      ],
      want: { a1: ok, b1: ok },
    },
    {
      name: "by default (nodeTaintsPolicy Ignore) an untolerated tainted empty zone still holds the global minimum at 0",
      pod: pod("p", { app: "web" }, [zoneSpread(1)]),
      infos: [
        ...cluster([node("a1", "a")], { a1: 1 }),
        newNodeInfo({ ...node("b1", "b"), spec: { taints: [{ key: "dedicated", effect: "NoSchedule" }] } }),
      ],
      want: { a1: skewed, b1: ok },
    },
    {
      name: "terminating pods do not count",
      pod: pod("p", { app: "web" }, [zoneSpread(1)]),
      infos: [
        newNodeInfo(node("a1", "a"), [{ ...pod("old", { app: "web" }, undefined, "a1"), metadata: { name: "old", namespace: "default", labels: { app: "web" }, deletionTimestamp: "2024-01-01T00:00:00Z" } }]),
        newNodeInfo(node("b1", "b")),
      ],
      want: { a1: ok, b1: ok },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(filterAll(c.pod, c.infos)).toEqual(c.want);
    });
  }

  it("places 6 replicas over 3 zones with maxSkew 1 as 2/2/2 when scheduled one by one", () => {
    // Two nodes per zone; zone a listed first so a naive first-fit would pile into it.
    let infos = cluster([node("a1", "a"), node("a2", "a"), node("b1", "b"), node("b2", "b"), node("c1", "c"), node("c2", "c")]);
    const pl = plugin(() => infos);
    for (let i = 0; i < 6; i++) {
      const p = pod(`web-${i}`, { app: "web" }, [zoneSpread(1)]);
      const state = new CycleState();
      expect(pl.preFilter(state, p, infos).status.isSuccess()).toBe(true);
      const idx = infos.findIndex((ni) => pl.filter(state, p, ni).isSuccess());
      expect(idx).toBeGreaterThanOrEqual(0);
      infos = infos.map((ni, j) => (j === idx ? addPod(ni, { ...p, spec: { ...p.spec!, nodeName: ni.node.metadata.name } }) : ni));
    }
    const perZone: Record<string, number> = {};
    for (const ni of infos) perZone[ni.node.metadata.labels![ZONE]!] = (perZone[ni.node.metadata.labels![ZONE]!] ?? 0) + ni.pods.length;
    expect(perZone).toEqual({ a: 2, b: 2, c: 2 });
  });
});

// ---- Score -----------------------------------------------------------------------------------------

/** PreScore, Score and NormalizeScore over all nodes: node name → final score. */
function scoreAll(p: Pod, infos: NodeInfo[], feasible = infos): Record<string, number> | "skip" {
  const pl = plugin(() => infos);
  const state = new CycleState();
  if (pl.preScore(state, p, feasible).isSkip()) return "skip";
  const scores: NodeScore[] = feasible.map((ni) => ({ name: ni.node.metadata.name!, score: pl.score(state, p, ni).score }));
  pl.normalizeScore(state, p, scores);
  return Object.fromEntries(scores.map((s) => [s.name, s.score]));
}

describe("PodTopologySpread Score", () => {
  const anyway = (key: string, maxSkew = 1): TopologySpreadConstraint => ({
    maxSkew,
    topologyKey: key,
    whenUnsatisfiable: "ScheduleAnyway",
    labelSelector: { matchLabels: { app: "web" } },
  });
  const cases: { name: string; pod: Pod; infos: NodeInfo[]; infeasible?: string[]; want: Record<string, number> | "skip" }[] = [
    {
      name: "a pod without labels or constraints gets no default constraints and is skipped",
      pod: pod("p", {}),
      infos: cluster([node("a1", "a")]),
      want: "skip",
    },
    {
      name: "the emptier zone scores highest for a ScheduleAnyway zone constraint",
      pod: pod("p", { app: "web" }, [anyway(ZONE)]),
      infos: cluster([node("a1", "a"), node("b1", "b"), node("c1", "c")], { a1: 2, b1: 1 }),
      // raw = count*ln(3+2): a=3.22→3, b=1.61→2, c=0 → 100*(3+0-s)/3
      want: { a1: 0, b1: 33, c1: 100 },
    },
    {
      name: "all-empty domains score the maximum everywhere",
      pod: pod("p", { app: "web" }, [anyway(ZONE)]),
      infos: cluster([node("a1", "a"), node("b1", "b")]),
      want: { a1: 100, b1: 100 },
    },
    {
      name: "a feasible node missing the topology key is ignored and scores 0",
      pod: pod("p", { app: "web" }, [anyway(ZONE)]),
      infos: cluster([node("a1", "a"), node("bare")], { a1: 1 }),
      want: { a1: 100, bare: 0 },
    },
    {
      name: "the default system constraints spread a controller-owned pod's siblings over hosts and zones",
      pod: owned(pod("p", { app: "web" })),
      infos: cluster([node("a1", "a"), node("a2", "a"), node("b1", "b")], { a1: 2 }),
      // hostname: weight ln(5); zone: weight ln(4). a1 = 2*1.609+2 + 2*1.386+4 = 11.99→12;
      // a2 = 0+2 + 2.77+4 = 8.77→9; b1 = 0+2 + 0+4 = 6 → 100*(12+6-s)/12
      want: { a1: 50, a2: 75, b1: 100 },
    },
    {
      name: "a pod no controller owns gets no default constraints (upstream: an empty default selector)",
      pod: pod("p", { app: "web" }),
      infos: cluster([node("a1", "a"), node("a2", "a"), node("b1", "b")], { a1: 2 }),
      want: "skip",
    },
    {
      name: "pods on infeasible nodes still count toward their zone",
      pod: pod("p", { app: "web" }, [anyway(ZONE)]),
      infos: cluster([node("a1", "a"), node("a2", "a"), node("b1", "b")], { a2: 3 }),
      infeasible: ["a2"],
      want: { a1: 0, b1: 100 },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const feasible = c.infos.filter((i) => !c.infeasible?.includes(i.node.metadata.name!));
      expect(scoreAll(c.pod, c.infos, feasible)).toEqual(c.want);
    });
  }

  it("registers for pod and node label changes", () => {
    const events = plugin(() => []).eventsToRegister();
    expect(events.map((e) => e.resource)).toEqual(["Pod", "Node"]);
  });
});

/** The pod as a ReplicaSet's: a controller ownerReference, which is what selects the default constraints. */
function owned<T extends { metadata: { ownerReferences?: unknown[] } }>(p: T): T {
  p.metadata.ownerReferences = [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "web-1", uid: "rs-uid", controller: true }];
  return p;
}
