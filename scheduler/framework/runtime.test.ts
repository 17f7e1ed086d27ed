import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import type { Node, Pod } from "../../api/index.ts";
import { FakeClient, FakeRecorder } from "../../client/index.ts";
import { newSnapshot } from "../cache.ts";
import { newNodeInfo } from "./nodeinfo.ts";
import { FitError, Framework, fitErrorMessage, numFeasibleNodesToFind, type PluginRegistry, type Profile } from "./runtime.ts";
import {
  ActionType,
  Status,
  type BindPlugin,
  type ClusterEvent,
  type CycleState,
  type EnqueueExtensions,
  type FilterPlugin,
  type NodeInfo,
  type PreFilterPlugin,
  type PreFilterResult,
  type ScorePlugin,
} from "./types.ts";

function node(name: string, labels: Record<string, string> = {}): Node {
  return { apiVersion: "v1", kind: "Node", metadata: { name, labels }, status: { allocatable: { cpu: "4", memory: "8Gi", pods: "110" } } };
}
const pod: Pod = { apiVersion: "v1", kind: "Pod", metadata: { name: "p", namespace: "default", uid: "uid-p" }, spec: { containers: [{ name: "c" }] } };

/** Rejects nodes whose label `reject` is set, with that label's value as the reason; counts calls. */
class LabelFilter implements FilterPlugin, EnqueueExtensions {
  readonly name = "LabelFilter";
  calls: string[] = [];
  filter(_s: CycleState, _p: Readonly<Pod>, info: NodeInfo): Status {
    this.calls.push(info.node.metadata.name!);
    const r = info.node.metadata.labels?.["reject"];
    return r ? Status.unschedulable(r) : Status.success();
  }
  eventsToRegister(): ClusterEvent[] {
    return [{ resource: "Node", actionType: ActionType.Add }];
  }
}

/** Scores a node by its `score` label. */
class LabelScore implements ScorePlugin {
  readonly name = "LabelScore";
  score(_s: CycleState, _p: Readonly<Pod>, info: NodeInfo): { score: number; status: Status } {
    return { score: Number(info.node.metadata.labels?.["score"] ?? 0), status: Status.success() };
  }
}

class OnlyNodes implements PreFilterPlugin {
  constructor(
    readonly name: string,
    private readonly names: string[] | "skip",
  ) {}
  preFilter(): { result?: PreFilterResult; status: Status } {
    if (this.names === "skip") return { status: Status.skip() };
    return { result: { nodeNames: new Set(this.names) }, status: Status.success() };
  }
}

class RecordingBinder implements BindPlugin {
  bound: string[] = [];
  constructor(
    readonly name: string,
    private readonly skip: boolean,
  ) {}
  async bind(_s: CycleState, p: Readonly<Pod>, nodeName: string): Promise<Status> {
    if (this.skip) return Status.skip();
    this.bound.push(`${p.metadata.name}->${nodeName}`);
    return Status.success();
  }
}

function frameworkWith(plugins: Record<string, () => import("./types.ts").Plugin>, profile: Partial<Profile> = {}, random = () => 0): Framework {
  const registry: PluginRegistry = {};
  for (const [name, make] of Object.entries(plugins)) registry[name] = () => make();
  return new Framework(
    { schedulerName: "default-scheduler", plugins: Object.keys(plugins).map((name) => ({ name })), ...profile },
    registry,
    { client: new FakeClient(), recorder: new FakeRecorder(), random },
  );
}

function withNodes(fw: Framework, nodes: Node[]): void {
  fw.setSnapshot(newSnapshot(nodes.map((n) => newNodeInfo(n, []))));
}

describe("numFeasibleNodesToFind", () => {
  const cases: { name: string; pct?: number; nodes: number; want: number }[] = [
    { name: "fewer than 100 nodes are all searched", nodes: 99, want: 99 },
    { name: "100 nodes use the adaptive 50 percent but never fewer than 100", nodes: 100, want: 100 },
    { name: "1000 nodes use 42 percent", nodes: 1000, want: 420 },
    { name: "5000 nodes use 10 percent", nodes: 5000, want: 500 },
    { name: "very large clusters bottom out at 5 percent", nodes: 10000, want: 500 },
    { name: "an explicit percentage overrides the adaptive one", pct: 20, nodes: 5000, want: 1000 },
    { name: "an explicit percentage still searches at least 100 nodes", pct: 1, nodes: 5000, want: 100 },
    { name: "100 percent searches every node", pct: 100, nodes: 5000, want: 5000 },
  ];
  it.each(cases)("$name", ({ pct, nodes, want }) => {
    expect(numFeasibleNodesToFind(pct, nodes)).toBe(want);
  });
});

describe("FitError message", () => {
  it("counts each reason over nodes and sorts them as kube-scheduler does", () => {
    const nodeToStatus = new Map<string, Status>();
    for (const n of ["a", "b", "c"]) nodeToStatus.set(n, Status.unschedulable("Insufficient cpu"));
    for (const n of ["d", "e", "f"]) nodeToStatus.set(n, Status.unschedulable("node(s) had untolerated taint {key: value}"));
    const d = { nodeToStatus, unschedulablePlugins: new Set<string>(), preFilterMsg: "", postFilterMsg: "" };
    expect(fitErrorMessage(6, d)).toBe("0/6 nodes are available: 3 Insufficient cpu, 3 node(s) had untolerated taint {key: value}.");
    d.postFilterMsg = "preemption: 0/6 nodes are available: 6 No preemption victims found for incoming pod";
    expect(fitErrorMessage(6, d)).toBe(
      "0/6 nodes are available: 3 Insufficient cpu, 3 node(s) had untolerated taint {key: value}. preemption: 0/6 nodes are available: 6 No preemption victims found for incoming pod.",
    );
  });

  it("a node with two reasons counts in both, and a PreFilter message replaces the per-node reasons", () => {
    const nodeToStatus = new Map([["a", Status.unschedulable("Insufficient cpu", "Insufficient memory")], ["b", Status.unschedulable("Insufficient memory")]]);
    expect(fitErrorMessage(2, { nodeToStatus, unschedulablePlugins: new Set(), preFilterMsg: "", postFilterMsg: "" })).toBe(
      "0/2 nodes are available: 1 Insufficient cpu, 2 Insufficient memory.",
    );
    expect(fitErrorMessage(2, { nodeToStatus, unschedulablePlugins: new Set(), preFilterMsg: "pod has unbound PVCs", postFilterMsg: "" })).toBe(
      "0/2 nodes are available: pod has unbound PVCs.",
    );
  });
});

describe("Framework.schedulePod", () => {
  it("throws a FitError naming the rejecting plugin when every node is filtered out", async () => {
    const fw = frameworkWith({ LabelFilter: () => new LabelFilter() });
    withNodes(fw, [node("a", { reject: "Insufficient cpu" }), node("b", { reject: "node(s) were unschedulable" }), node("c", { reject: "Insufficient cpu" })]);
    const err = await fw.schedulePod(fw.newCycleState(), pod).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FitError);
    const fit = err as FitError;
    expect(fit.message).toBe("0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu.");
    expect([...fit.diagnosis.unschedulablePlugins]).toEqual(["LabelFilter"]);
    expect(fit.diagnosis.nodeToStatus.get("b")!.plugin).toBe("LabelFilter");
  });

  it("picks the node with the highest weighted score", async () => {
    const fw = frameworkWith({ LabelFilter: () => new LabelFilter(), LabelScore: () => new LabelScore() });
    withNodes(fw, [node("a", { score: "10" }), node("b", { score: "90", reject: "no" }), node("c", { score: "50" }), node("d", { score: "20" })]);
    const r = await fw.schedulePod(fw.newCycleState(), pod);
    expect(r).toEqual({ suggestedHost: "c", evaluatedNodes: 4, feasibleNodes: 3 });
  });

  it("breaks score ties by reservoir sampling with the injected random source", async () => {
    const nodes = [node("a"), node("b"), node("c")];
    const first = frameworkWith({ LabelScore: () => new LabelScore() }, {}, () => 0.99);
    withNodes(first, nodes);
    expect(first.selectHost([{ name: "a", score: 5 }, { name: "b", score: 5 }, { name: "c", score: 5 }])).toBe("a");
    const last = frameworkWith({ LabelScore: () => new LabelScore() }, {}, () => 0);
    expect(last.selectHost([{ name: "a", score: 5 }, { name: "b", score: 5 }, { name: "c", score: 1 }])).toBe("b");
  });

  it("PreFilter node sets are intersected and Filter runs only on those nodes", async () => {
    const filter = new LabelFilter();
    const fw = frameworkWith({ A: () => new OnlyNodes("A", ["a", "b", "c"]), B: () => new OnlyNodes("B", ["b", "c", "d"]), LabelFilter: () => filter });
    withNodes(fw, [node("a"), node("b"), node("c"), node("d")]);
    const r = await fw.schedulePod(fw.newCycleState(), pod);
    expect(["b", "c"]).toContain(r.suggestedHost);
    expect(filter.calls.sort()).toEqual(["b", "c"]);
  });

  it("disjoint PreFilter node sets make the pod unresolvable with upstream's message", async () => {
    const fw = frameworkWith({ A: () => new OnlyNodes("A", ["a"]), B: () => new OnlyNodes("B", ["b"]) });
    withNodes(fw, [node("a"), node("b")]);
    const err = (await fw.schedulePod(fw.newCycleState(), pod).catch((e: unknown) => e)) as FitError;
    expect(err.message).toBe("0/2 nodes are available: node(s) didn't satisfy plugin(s) [A B] simultaneously.");
  });

  it("stops filtering once enough feasible nodes are found and starts the next pod where it stopped", async () => {
    const filter = new LabelFilter();
    const fw = frameworkWith({ LabelFilter: () => filter }, { percentageOfNodesToScore: 1 });
    const nodes = Array.from({ length: 250 }, (_, i) => node(`n${i}`));
    withNodes(fw, nodes);
    const first = await fw.schedulePod(fw.newCycleState(), pod);
    expect(first.evaluatedNodes).toBe(100);
    expect(filter.calls[0]).toBe("n0");
    filter.calls = [];
    await fw.schedulePod(fw.newCycleState(), pod);
    expect(filter.calls[0]).toBe("n100");
    expect(filter.calls).toHaveLength(100);
  });

  it("a PreFilter Skip skips that plugin's Filter", async () => {
    class SkippingFilter extends OnlyNodes implements FilterPlugin {
      filter(): Status {
        return Status.unschedulable("should not run");
      }
    }
    const fw = frameworkWith({ S: () => new SkippingFilter("S", "skip") });
    withNodes(fw, [node("a")]);
    expect((await fw.schedulePod(fw.newCycleState(), pod)).suggestedHost).toBe("a");
  });
});

describe("Framework binding and events", () => {
  it("the first Bind plugin that does not skip binds the pod", async () => {
    const skipping = new RecordingBinder("Skipper", true);
    const binder = new RecordingBinder("Binder", false);
    const fw = frameworkWith({ Skipper: () => skipping, Binder: () => binder });
    const s = await fw.runBindPlugins(fw.newCycleState(), pod, "a");
    expect(s.isSuccess()).toBe(true);
    expect(binder.bound).toEqual(["p->a"]);
  });

  it("exposes the events each plugin registered for the queue", () => {
    const fw = frameworkWith({ LabelFilter: () => new LabelFilter(), LabelScore: () => new LabelScore() });
    expect([...fw.clusterEventMap()]).toEqual([["LabelFilter", [{ resource: "Node", actionType: ActionType.Add }]]]);
  });

  it("a plugin missing from the registry is a configuration error", () => {
    expect(() => new Framework({ schedulerName: "x", plugins: [{ name: "Nope" }] }, {}, { client: new FakeClient(), recorder: new FakeRecorder() })).toThrow(
      /"Nope" is not in the registry/,
    );
  });

  it("records plugin durations for sampled cycles", async () => {
    const metricsRegistry = new Registry();
    const fw = new Framework(
      { schedulerName: "default-scheduler", plugins: [{ name: "LabelFilter" }] },
      { LabelFilter: () => new LabelFilter() },
      { client: new FakeClient(), recorder: new FakeRecorder(), metricsRegistry, random: () => 0 },
    );
    withNodes(fw, [node("a")]);
    await fw.schedulePod(fw.newCycleState(), pod);
    expect(await metricsRegistry.metrics()).toContain('scheduler_plugin_execution_duration_seconds_count{plugin="LabelFilter",extension_point="Filter",status="Success"} 1');
  });
});
