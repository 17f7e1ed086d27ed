import { describe, expect, it } from "vitest";
import type { Affinity, Node, Pod, PodAffinityTerm } from "../../../api/index.ts";
import { FakeClient, FakeRecorder } from "../../../client/testing.ts";
import { newNodeInfo } from "../../framework/nodeinfo.ts";
import { Code, CycleState, type Handle, type NodeInfo, type NodeScore } from "../../framework/types.ts";
import {
  ErrReasonAffinityRulesNotMatch,
  ErrReasonAntiAffinityRulesNotMatch,
  ErrReasonExistingAntiAffinityRulesNotMatch,
  InterPodAffinity,
  newInterPodAffinity,
} from "./index.ts";

// ---- builders --------------------------------------------------------------------------------------

const ZONE = "topology.kubernetes.io/zone";
const HOST = "kubernetes.io/hostname";

function node(name: string, zone?: string): Node {
  return { apiVersion: "v1", kind: "Node", metadata: { name, labels: { [HOST]: name, ...(zone ? { [ZONE]: zone } : {}) } } };
}

function pod(name: string, labels: Record<string, string>, opts: { affinity?: Affinity; namespace?: string; on?: string } = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: opts.namespace ?? "default", uid: `uid-${name}`, labels },
    spec: { containers: [{ name: "c", image: "pause" }], ...(opts.affinity ? { affinity: opts.affinity } : {}), ...(opts.on ? { nodeName: opts.on } : {}) },
  };
}

function term(app: string, topologyKey: string, extra: Partial<PodAffinityTerm> = {}): PodAffinityTerm {
  return { labelSelector: { matchLabels: { app } }, topologyKey, ...extra };
}

const requireAffinity = (...terms: PodAffinityTerm[]): Affinity => ({ podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: terms } });
const requireAntiAffinity = (...terms: PodAffinityTerm[]): Affinity => ({ podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: terms } });
const preferAffinity = (weight: number, t: PodAffinityTerm): Affinity => ({
  podAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight, podAffinityTerm: t }] },
});
const preferAntiAffinity = (weight: number, t: PodAffinityTerm): Affinity => ({
  podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight, podAffinityTerm: t }] },
});

/** Zone a: a1, a2; zone b: b1. `pods` are placed by their spec.nodeName. */
function cluster(pods: Pod[] = [], nodes: Node[] = [node("a1", "a"), node("a2", "a"), node("b1", "b")]): NodeInfo[] {
  return nodes.map((n) => newNodeInfo(n, pods.filter((p) => p.spec?.nodeName === n.metadata.name)));
}

function handleFor(infos: NodeInfo[]): Handle {
  return {
    snapshot: () => ({
      list: () => infos,
      get: (n) => infos.find((i) => i.node.metadata.name === n),
      havePodsWithAffinityList: () => infos.filter((i) => i.podsWithAffinity.length > 0),
      havePodsWithRequiredAntiAffinityList: () => infos.filter((i) => i.podsWithRequiredAntiAffinity.length > 0),
    }),
    client: new FakeClient(),
    recorder: new FakeRecorder(),
  };
}

function filterAll(p: Pod, infos: NodeInfo[]): Record<string, { code: number; reasons: readonly string[] }> {
  const pl = newInterPodAffinity(undefined, handleFor(infos)) as InterPodAffinity;
  const state = new CycleState();
  const pre = pl.preFilter(state, p, infos);
  const out: Record<string, { code: number; reasons: readonly string[] }> = {};
  for (const ni of infos) {
    const st = pre.status.isSkip() ? pre.status : pl.filter(state, p, ni);
    out[ni.node.metadata.name!] = { code: st.code, reasons: st.reasons };
  }
  return out;
}

function scoreAll(p: Pod, infos: NodeInfo[]): Record<string, number> | "skip" {
  const pl = newInterPodAffinity(undefined, handleFor(infos)) as InterPodAffinity;
  const state = new CycleState();
  if (pl.preScore(state, p, infos).isSkip()) return "skip";
  const scores: NodeScore[] = infos.map((ni) => ({ name: ni.node.metadata.name!, score: pl.score(state, p, ni).score }));
  pl.normalizeScore(state, p, scores);
  return Object.fromEntries(scores.map((s) => [s.name, s.score]));
}

const ok = { code: Code.Success, reasons: [] };
const skip = { code: Code.Skip, reasons: [] };
const noAffinity = { code: Code.UnschedulableAndUnresolvable, reasons: [ErrReasonAffinityRulesNotMatch] };
const antiAffinity = { code: Code.Unschedulable, reasons: [ErrReasonAntiAffinityRulesNotMatch] };
const existingAnti = { code: Code.Unschedulable, reasons: [ErrReasonExistingAntiAffinityRulesNotMatch] };

// ---- Filter ----------------------------------------------------------------------------------------

describe("InterPodAffinity Filter", () => {
  const db = pod("db", { app: "db" }, { on: "a2" });
  const cases: { name: string; pod: Pod; infos: NodeInfo[]; want: Record<string, object> }[] = [
    {
      name: "a pod without pod affinity in a cluster without anti-affinity is not filtered (PreFilter skips)",
      pod: pod("p", { app: "web" }),
      infos: cluster([db]),
      want: { a1: skip, a2: skip, b1: skip },
    },
    {
      name: "required zone affinity to the db admits every node in the db's zone and no other",
      pod: pod("p", { app: "web" }, { affinity: requireAffinity(term("db", ZONE)) }),
      infos: cluster([db]),
      want: { a1: ok, a2: ok, b1: noAffinity },
    },
    {
      name: "required affinity rejects a node that lacks the topology key",
      pod: pod("p", { app: "web" }, { affinity: requireAffinity(term("db", ZONE)) }),
      infos: cluster([db], [node("a1", "a"), node("a2", "a"), node("bare")]),
      want: { a1: ok, a2: ok, bare: noAffinity },
    },
    {
      name: "the first pod of a group whose affinity selects itself may go anywhere when no matching pod exists",
      pod: pod("p", { app: "web" }, { affinity: requireAffinity(term("web", ZONE)) }),
      infos: cluster([db]),
      want: { a1: ok, a2: ok, b1: ok },
    },
    {
      name: "once a member of the self-selecting group runs, the next must join its zone",
      pod: pod("p", { app: "web" }, { affinity: requireAffinity(term("web", ZONE)) }),
      infos: cluster([pod("web-0", { app: "web" }, { on: "b1" })]),
      want: { a1: noAffinity, a2: noAffinity, b1: ok },
    },
    {
      name: "affinity to a pod that selects nobody matching is not excused when the pod does not match itself",
      pod: pod("p", { app: "web" }, { affinity: requireAffinity(term("cache", ZONE)) }),
      infos: cluster([db]),
      want: { a1: noAffinity, a2: noAffinity, b1: noAffinity },
    },
    {
      name: "affinity terms look only in the pod's own namespace by default",
      pod: pod("p", { app: "web" }, { affinity: requireAffinity(term("db", ZONE)), namespace: "shop" }),
      infos: cluster([db]),
      want: { a1: noAffinity, a2: noAffinity, b1: noAffinity },
    },
    {
      name: "listing the namespace in the term finds the db there",
      pod: pod("p", { app: "web" }, { affinity: requireAffinity(term("db", ZONE, { namespaces: ["default"] })), namespace: "shop" }),
      infos: cluster([db]),
      want: { a1: ok, a2: ok, b1: noAffinity },
    },
    {
      name: "an empty namespaceSelector looks in every namespace",
      pod: pod("p", { app: "web" }, { affinity: requireAffinity(term("db", ZONE, { namespaceSelector: {} })), namespace: "shop" }),
      infos: cluster([db]),
      want: { a1: ok, a2: ok, b1: noAffinity },
    },
    {
      name: "required hostname anti-affinity keeps two web pods off the same node",
      pod: pod("p", { app: "web" }, { affinity: requireAntiAffinity(term("web", HOST)) }),
      infos: cluster([pod("web-0", { app: "web" }, { on: "a1" })]),
      want: { a1: antiAffinity, a2: ok, b1: ok },
    },
    {
      name: "required zone anti-affinity keeps the pod out of the whole zone",
      pod: pod("p", { app: "web" }, { affinity: requireAntiAffinity(term("web", ZONE)) }),
      infos: cluster([pod("web-0", { app: "web" }, { on: "a1" })]),
      want: { a1: antiAffinity, a2: antiAffinity, b1: ok },
    },
    {
      name: "an existing pod's required anti-affinity keeps a matching incoming pod out of its zone (symmetry)",
      pod: pod("p", { app: "web" }),
      infos: cluster([pod("loner", { app: "loner" }, { on: "a1", affinity: requireAntiAffinity(term("web", ZONE)) })]),
      want: { a1: existingAnti, a2: existingAnti, b1: ok },
    },
    {
      name: "an existing pod's anti-affinity does not reach pods of other namespaces, so there is nothing to check",
      pod: pod("p", { app: "web" }, { namespace: "shop" }),
      infos: cluster([pod("loner", { app: "loner" }, { on: "a1", affinity: requireAntiAffinity(term("web", ZONE)) })]),
      want: { a1: skip, a2: skip, b1: skip },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(filterAll(c.pod, c.infos)).toEqual(c.want);
    });
  }
});

// ---- Score -----------------------------------------------------------------------------------------

describe("InterPodAffinity Score", () => {
  const db = pod("db", { app: "db" }, { on: "a2" });
  const cases: { name: string; pod: Pod; infos: NodeInfo[]; want: Record<string, number> | "skip" }[] = [
    {
      name: "no preferred terms and no pods with affinity anywhere: nothing to score",
      pod: pod("p", { app: "web" }),
      infos: cluster([db]),
      want: "skip",
    },
    {
      name: "preferred zone affinity to the db favours the db's zone",
      pod: pod("p", { app: "web" }, { affinity: preferAffinity(10, term("db", ZONE)) }),
      infos: cluster([db]),
      want: { a1: 100, a2: 100, b1: 0 },
    },
    {
      name: "preferred hostname anti-affinity disfavours only the db's node",
      pod: pod("p", { app: "web" }, { affinity: preferAntiAffinity(10, term("db", HOST)) }),
      infos: cluster([db]),
      want: { a1: 100, a2: 0, b1: 100 },
    },
    {
      name: "weights add up per matching pod: two db pods in zone b score twice one in zone a, an empty zone c scores 0",
      pod: pod("p", { app: "web" }, { affinity: preferAffinity(5, term("db", ZONE)) }),
      infos: cluster(
        [db, pod("db-1", { app: "db" }, { on: "b1" }), pod("db-2", { app: "db" }, { on: "b1" })],
        [node("a1", "a"), node("a2", "a"), node("b1", "b"), node("c1", "c")],
      ),
      want: { a1: 50, a2: 50, b1: 100, c1: 0 },
    },
    {
      name: "an existing pod's preferred anti-affinity against the incoming pod pushes it away (symmetry)",
      pod: pod("p", { app: "web" }),
      infos: cluster([pod("loner", { app: "loner" }, { on: "b1", affinity: preferAntiAffinity(20, term("web", ZONE)) })]),
      want: { a1: 100, a2: 100, b1: 0 },
    },
    {
      name: "an existing pod's required affinity to the incoming pod attracts it with the hard weight",
      pod: pod("p", { app: "web" }),
      infos: cluster([pod("follower", { app: "follower" }, { on: "b1", affinity: requireAffinity(term("web", ZONE)) })]),
      want: { a1: 0, a2: 0, b1: 100 },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(scoreAll(c.pod, c.infos)).toEqual(c.want);
    });
  }
});
