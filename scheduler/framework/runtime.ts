// The framework runtime (upstream's framework/runtime plus schedulePod from schedule_one.go): builds
// a profile's plugins from a registry and runs the extension points in order for one pod.

import { Histogram, type Registry as MetricsRegistry } from "prom-client";
import type { Pod } from "../../api/index.ts";
import type { Client, EventRecorder } from "../../client/index.ts";
import {
  Code,
  CycleState,
  Status,
  hasEnqueueExtensions,
  isBindPlugin,
  isFilterPlugin,
  isPermitPlugin,
  isPostBindPlugin,
  isPostFilterPlugin,
  isPreBindPlugin,
  isPreFilterPlugin,
  isPreScorePlugin,
  isReservePlugin,
  isScorePlugin,
  type BindPlugin,
  type ClusterEvent,
  type FilterPlugin,
  type Handle,
  type NodeInfo,
  type NodeInfoLister,
  type NodeScore,
  type NodeToStatusMap,
  type PermitPlugin,
  type Plugin,
  type PluginFactory,
  type PostBindPlugin,
  type PostFilterPlugin,
  type PreBindPlugin,
  type PreFilterPlugin,
  type PreFilterResult,
  type PreScorePlugin,
  type ReservePlugin,
  type ScorePlugin,
} from "./types.ts";

export const DEFAULT_SCHEDULER_NAME = "default-scheduler";
/** Upstream's minFeasibleNodesToFind and minFeasibleNodesPercentageToFind. */
export const MIN_FEASIBLE_NODES_TO_FIND = 100;
export const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5;
/** Share of scheduling cycles whose plugin durations are recorded (upstream: 10%). */
export const PLUGIN_METRICS_SAMPLE_PERCENT = 10;

export interface PluginConfig {
  name: string;
  /** Score weight; default 1. */
  weight?: number;
  args?: Record<string, unknown>;
}

/** A scheduling profile (KubeSchedulerProfile): its name pods select by spec.schedulerName, and its plugins in order. */
export interface Profile {
  schedulerName: string;
  plugins: PluginConfig[];
  /** 0 or absent: adaptive, as kube-scheduler. */
  percentageOfNodesToScore?: number;
}

/** Plugin name → factory; the plugins' registry.ts provides the in-tree one. */
export type PluginRegistry = Record<string, PluginFactory>;

/** What the framework learned about why a pod fits nowhere (framework.Diagnosis). */
export interface Diagnosis {
  nodeToStatus: Map<string, Status>;
  unschedulablePlugins: Set<string>;
  preFilterMsg: string;
  postFilterMsg: string;
}

/** "0/%d nodes are available" (upstream's NoNodeAvailableMsg). */
export const NO_NODE_AVAILABLE_MSG = "0/%d nodes are available";

/**
 * No node fits the pod (upstream's FitError). Its message is kube-scheduler's: the count of each
 * filter reason over the nodes, sorted, then PostFilter's (preemption's) message.
 */
export class FitError extends Error {
  override readonly name = "FitError";
  readonly code = "Unschedulable";
  constructor(
    readonly pod: Readonly<Pod>,
    readonly numAllNodes: number,
    readonly diagnosis: Diagnosis,
  ) {
    super("");
    this.message = fitErrorMessage(numAllNodes, diagnosis);
  }
  /** Records PostFilter's message and refreshes the error message. */
  setPostFilterMsg(msg: string): void {
    this.diagnosis.postFilterMsg = msg;
    this.message = fitErrorMessage(this.numAllNodes, this.diagnosis);
  }
}

/** A plugin returned Error (a bug or an API failure, not a rejection); the pod is retried with backoff. */
export class FrameworkError extends Error {
  override readonly name = "FrameworkError";
  readonly code = "PluginError";
  constructor(
    readonly status: Status,
    readonly extensionPoint: string,
  ) {
    super(`running ${extensionPoint} plugin "${status.plugin}": ${status.message()}`);
  }
}

export function fitErrorMessage(numAllNodes: number, d: Diagnosis): string {
  let msg = `${NO_NODE_AVAILABLE_MSG.replace("%d", String(numAllNodes))}:`;
  if (d.preFilterMsg) {
    msg += ` ${d.preFilterMsg}.`;
  } else {
    const reasons = new Map<string, number>();
    for (const status of d.nodeToStatus.values()) {
      for (const r of status.reasons) reasons.set(r, (reasons.get(r) ?? 0) + 1);
    }
    // Go's sort.Strings: byte order of "<count> <reason>", which JS's default sort matches for ASCII.
    const sorted = [...reasons].map(([r, n]) => `${n} ${r}`).sort();
    if (sorted.length > 0) msg += ` ${sorted.join(", ")}.`;
  }
  if (d.postFilterMsg) msg += ` ${d.postFilterMsg}.`;
  return msg;
}

/**
 * How many feasible nodes to look for before scoring (upstream's numFeasibleNodesToFind): all of
 * them below 100 nodes; otherwise `percentage` (adaptive when 0: 50% − nodes/125, at least 5%), and
 * never fewer than 100.
 */
export function numFeasibleNodesToFind(percentageOfNodesToScore: number | undefined, numAllNodes: number): number {
  if (numAllNodes < MIN_FEASIBLE_NODES_TO_FIND) return numAllNodes;
  let pct = percentageOfNodesToScore ?? 0;
  if (pct >= 100) return numAllNodes;
  if (pct <= 0) {
    pct = 50 - Math.trunc(numAllNodes / 125);
    if (pct < MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND) pct = MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND;
  }
  const n = Math.trunc((numAllNodes * pct) / 100);
  return n < MIN_FEASIBLE_NODES_TO_FIND ? MIN_FEASIBLE_NODES_TO_FIND : n;
}

export interface ScheduleResult {
  suggestedHost: string;
  /** Nodes Filter ran on (feasible + rejected). */
  evaluatedNodes: number;
  feasibleNodes: number;
}

export interface FrameworkOptions {
  client: Client;
  recorder: EventRecorder;
  volumes?: Handle["volumes"];
  /** Where `scheduler_plugin_execution_duration_seconds` registers; none when absent. */
  metricsRegistry?: MetricsRegistry;
  /** Uniform [0, 1); injectable for deterministic tie-breaking and metric sampling. */
  random?: () => number;
}

interface ScoreEntry {
  plugin: ScorePlugin;
  weight: number;
}

const RECORD_METRICS_KEY = "framework/recordPluginMetrics";
const SKIP_FILTER_KEY = "framework/skipFilterPlugins";
const SKIP_SCORE_KEY = "framework/skipScorePlugins";

/**
 * One profile's plugins and the code that runs them. `setSnapshot` before each cycle: plugins read
 * it through `handle.snapshot()`. Everything runs on the event loop; no two cycles overlap, but
 * binding (PreBind/Bind/PostBind) of one pod may overlap the next pod's scheduling cycle.
 */
export class Framework {
  readonly profileName: string;
  readonly handle: Handle;
  readonly plugins: readonly Plugin[];
  private readonly preFilter: PreFilterPlugin[];
  private readonly filter: FilterPlugin[];
  private readonly postFilter: PostFilterPlugin[];
  private readonly preScore: PreScorePlugin[];
  private readonly score: ScoreEntry[];
  private readonly reserve: ReservePlugin[];
  private readonly permit: PermitPlugin[];
  private readonly preBind: PreBindPlugin[];
  private readonly bind: BindPlugin[];
  private readonly postBind: PostBindPlugin[];
  private readonly percentageOfNodesToScore: number | undefined;
  private readonly random: () => number;
  private readonly durations: Histogram<"plugin" | "extension_point" | "status"> | undefined;
  private current: NodeInfoLister | undefined;
  /** Where the next Filter pass starts, so consecutive pods spread over all nodes (upstream's nextStartNodeIndex). */
  private nextStartNodeIndex = 0;

  constructor(profile: Profile, registry: PluginRegistry, opts: FrameworkOptions) {
    this.profileName = profile.schedulerName;
    this.percentageOfNodesToScore = profile.percentageOfNodesToScore;
    this.random = opts.random ?? Math.random;
    this.handle = {
      snapshot: () => {
        if (!this.current) throw new Error("framework: no snapshot set for this cycle");
        return this.current;
      },
      client: opts.client,
      recorder: opts.recorder,
      ...(opts.volumes ? { volumes: opts.volumes } : {}),
    };
    // Preemption's what-if runs need this profile's filters (DefaultPreemption's PreemptionHandle).
    Object.assign(this.handle, { runFilterPlugins: (state: CycleState, pod: Readonly<Pod>, nodeInfo: NodeInfo) => this.runFilterPlugins(state, pod, nodeInfo) });
    const plugins: Plugin[] = [];
    const weights = new Map<string, number>();
    for (const cfg of profile.plugins) {
      const factory = registry[cfg.name];
      if (!factory) throw new Error(`framework: plugin "${cfg.name}" is not in the registry`);
      if (weights.has(cfg.name)) throw new Error(`framework: plugin "${cfg.name}" is configured twice`);
      plugins.push(factory(cfg.args, this.handle));
      weights.set(cfg.name, cfg.weight && cfg.weight > 0 ? cfg.weight : 1);
    }
    this.plugins = plugins;
    this.preFilter = plugins.filter(isPreFilterPlugin);
    this.filter = plugins.filter(isFilterPlugin);
    this.postFilter = plugins.filter(isPostFilterPlugin);
    this.preScore = plugins.filter(isPreScorePlugin);
    this.score = plugins.filter(isScorePlugin).map((plugin) => ({ plugin, weight: weights.get(plugin.name) ?? 1 }));
    this.reserve = plugins.filter(isReservePlugin);
    this.permit = plugins.filter(isPermitPlugin);
    this.preBind = plugins.filter(isPreBindPlugin);
    this.bind = plugins.filter(isBindPlugin);
    this.postBind = plugins.filter(isPostBindPlugin);
    if (opts.metricsRegistry) {
      const existing = opts.metricsRegistry.getSingleMetric("scheduler_plugin_execution_duration_seconds");
      this.durations =
        (existing as Histogram<"plugin" | "extension_point" | "status"> | undefined) ??
        new Histogram({
          name: "scheduler_plugin_execution_duration_seconds",
          help: "Duration for running a plugin at a specific extension point.",
          labelNames: ["plugin", "extension_point", "status"] as const,
          buckets: [0.00001, 0.0000165, 0.0000272, 0.0000449, 0.0000741, 0.000122, 0.000201, 0.000332, 0.000548, 0.000904, 0.00149, 0.00246, 0.00406, 0.0067, 0.011, 0.0182, 0.03, 0.0495, 0.0817, 0.135],
          registers: [opts.metricsRegistry],
        });
    }
  }

  /** Plugin name → the events that may make a pod it rejected schedulable, for the queue. */
  clusterEventMap(): Map<string, ClusterEvent[]> {
    const m = new Map<string, ClusterEvent[]>();
    for (const p of this.plugins) if (hasEnqueueExtensions(p)) m.set(p.name, p.eventsToRegister());
    return m;
  }

  /** The snapshot plugins see through `handle.snapshot()` during the next cycle. */
  setSnapshot(snapshot: NodeInfoLister): void {
    this.current = snapshot;
  }

  /** A CycleState for one pod's attempt; decides whether this cycle's plugin durations are sampled. */
  newCycleState(): CycleState {
    const state = new CycleState();
    if (this.durations && this.random() * 100 < PLUGIN_METRICS_SAMPLE_PERCENT) state.write(RECORD_METRICS_KEY, true);
    return state;
  }

  // ---- the scheduling algorithm ----

  /**
   * Upstream's schedulePod: PreFilter, Filter (stopping after enough feasible nodes), PreScore,
   * Score, selectHost. Throws FitError when no node fits, FrameworkError when a plugin errs.
   */
  async schedulePod(state: CycleState, pod: Readonly<Pod>): Promise<ScheduleResult> {
    const snapshot = this.handle.snapshot();
    const allNodes = snapshot.list();
    if (allNodes.length === 0) {
      throw new FitError(pod, 0, { nodeToStatus: new Map(), unschedulablePlugins: new Set(), preFilterMsg: "", postFilterMsg: "" });
    }
    const { feasible, diagnosis } = this.findNodesThatFitPod(state, pod, allNodes, snapshot);
    if (feasible.length === 0) throw new FitError(pod, allNodes.length, diagnosis);
    const evaluatedNodes = feasible.length + diagnosis.nodeToStatus.size;
    if (feasible.length === 1) return { suggestedHost: feasible[0]!.node.metadata.name ?? "", evaluatedNodes, feasibleNodes: 1 };
    const scores = this.prioritizeNodes(state, pod, feasible);
    return { suggestedHost: this.selectHost(scores), evaluatedNodes, feasibleNodes: feasible.length };
  }

  /** PreFilter, then Filter from the rotating start index until enough nodes pass. */
  findNodesThatFitPod(
    state: CycleState,
    pod: Readonly<Pod>,
    allNodes: readonly NodeInfo[],
    snapshot: NodeInfoLister,
  ): { feasible: NodeInfo[]; diagnosis: Diagnosis } {
    const diagnosis: Diagnosis = { nodeToStatus: new Map(), unschedulablePlugins: new Set(), preFilterMsg: "", postFilterMsg: "" };
    const pre = this.runPreFilterPlugins(state, pod, allNodes);
    if (!pre.status.isSuccess()) {
      if (!pre.status.isRejected()) throw new FrameworkError(pre.status, "PreFilter");
      diagnosis.preFilterMsg = pre.status.message();
      if (pre.status.plugin) diagnosis.unschedulablePlugins.add(pre.status.plugin);
      for (const n of allNodes) diagnosis.nodeToStatus.set(n.node.metadata.name ?? "", pre.status);
      return { feasible: [], diagnosis };
    }
    let nodes = allNodes;
    if (pre.result?.nodeNames) {
      nodes = [...pre.result.nodeNames].map((n) => snapshot.get(n)).filter((n): n is NodeInfo => n !== undefined);
    }
    const feasible = this.findNodesThatPassFilters(state, pod, diagnosis, nodes);
    return { feasible, diagnosis };
  }

  private findNodesThatPassFilters(state: CycleState, pod: Readonly<Pod>, diagnosis: Diagnosis, nodes: readonly NodeInfo[]): NodeInfo[] {
    const numAll = nodes.length;
    const toFind = numFeasibleNodesToFind(this.percentageOfNodesToScore, numAll);
    const feasible: NodeInfo[] = [];
    if (numAll === 0) return feasible;
    const start = this.nextStartNodeIndex % numAll;
    let processed = 0;
    for (let i = 0; i < numAll && feasible.length < toFind; i++) {
      const info = nodes[(start + i) % numAll]!;
      processed++;
      const status = this.runFilterPlugins(state, pod, info);
      if (status.isSuccess()) {
        feasible.push(info);
      } else if (status.isRejected()) {
        diagnosis.nodeToStatus.set(info.node.metadata.name ?? "", status);
        if (status.plugin) diagnosis.unschedulablePlugins.add(status.plugin);
      } else {
        throw new FrameworkError(status, "Filter");
      }
    }
    this.nextStartNodeIndex = (start + processed) % numAll;
    return feasible;
  }

  /** Runs PreScore and Score, normalizes and weights; every feasible node gets a total. */
  prioritizeNodes(state: CycleState, pod: Readonly<Pod>, nodes: readonly NodeInfo[]): NodeScore[] {
    const totals: NodeScore[] = nodes.map((n) => ({ name: n.node.metadata.name ?? "", score: 0 }));
    if (this.score.length === 0) {
      for (const t of totals) t.score = 1;
      return totals;
    }
    const pre = this.runPreScorePlugins(state, pod, nodes);
    if (!pre.isSuccess()) throw new FrameworkError(pre, "PreScore");
    const skip = state.read<Set<string>>(SKIP_SCORE_KEY);
    for (const { plugin, weight } of this.score) {
      if (skip?.has(plugin.name)) continue;
      const scores: NodeScore[] = [];
      const started = this.startTimer(state);
      for (const info of nodes) {
        const r = plugin.score(state, pod, info);
        if (!r.status.isSuccess()) throw new FrameworkError(copyWithPlugin(r.status, plugin.name), "Score");
        scores.push({ name: info.node.metadata.name ?? "", score: r.score });
      }
      this.observe(state, started, plugin.name, "Score", Status.success());
      if (plugin.normalizeScore) {
        const t = this.startTimer(state);
        const s = plugin.normalizeScore(state, pod, scores);
        this.observe(state, t, plugin.name, "NormalizeScore", s);
        if (!s.isSuccess()) throw new FrameworkError(copyWithPlugin(s, plugin.name), "NormalizeScore");
      }
      for (let i = 0; i < scores.length; i++) totals[i]!.score += scores[i]!.score * weight;
    }
    return totals;
  }

  /** The highest total; ties broken uniformly at random by reservoir sampling, as upstream. */
  selectHost(scores: readonly NodeScore[]): string {
    if (scores.length === 0) throw new Error("framework: selectHost with an empty score list");
    let max = scores[0]!.score;
    let selected = scores[0]!.name;
    let count = 1;
    for (let i = 1; i < scores.length; i++) {
      const s = scores[i]!;
      if (s.score > max) {
        max = s.score;
        selected = s.name;
        count = 1;
      } else if (s.score === max) {
        count++;
        if (Math.floor(this.random() * count) === 0) selected = s.name;
      }
    }
    return selected;
  }

  // ---- extension points ----

  /** Runs every PreFilter plugin; intersects their node sets; Skip marks that plugin's Filter to be skipped. */
  runPreFilterPlugins(state: CycleState, pod: Readonly<Pod>, nodes: readonly NodeInfo[]): { result?: PreFilterResult; status: Status } {
    let result: PreFilterResult | undefined;
    const skip = new Set<string>();
    const narrowing: string[] = [];
    for (const p of this.preFilter) {
      const t = this.startTimer(state);
      const r = p.preFilter(state, pod, nodes);
      this.observe(state, t, p.name, "PreFilter", r.status);
      if (r.status.isSkip()) {
        skip.add(p.name);
        continue;
      }
      if (!r.status.isSuccess()) return { status: copyWithPlugin(r.status, p.name) };
      if (r.result?.nodeNames) {
        narrowing.push(p.name);
        const prev: ReadonlySet<string> | undefined = result?.nodeNames;
        const next: ReadonlySet<string> = prev ? new Set([...prev].filter((n) => r.result!.nodeNames!.has(n))) : r.result.nodeNames;
        result = { nodeNames: next };
        if (next.size === 0) {
          const msg =
            narrowing.length > 1
              ? `node(s) didn't satisfy plugin(s) [${narrowing.join(" ")}] simultaneously`
              : `node(s) didn't satisfy plugin ${p.name}`;
          return { result, status: Status.unresolvable(msg).withPlugin(p.name) };
        }
      }
    }
    state.write(SKIP_FILTER_KEY, skip);
    return { ...(result ? { result } : {}), status: Status.success() };
  }

  /** The Filter plugins for one node, stopping at the first that does not pass. */
  runFilterPlugins(state: CycleState, pod: Readonly<Pod>, nodeInfo: NodeInfo): Status {
    const skip = state.read<Set<string>>(SKIP_FILTER_KEY);
    for (const p of this.filter) {
      if (skip?.has(p.name)) continue;
      const t = this.startTimer(state);
      const s = p.filter(state, pod, nodeInfo);
      this.observe(state, t, p.name, "Filter", s);
      if (!s.isSuccess()) return s.code === Code.Skip ? s : copyWithPlugin(s, p.name);
    }
    return Status.success();
  }

  /** PostFilter (preemption) after no node fit: the first plugin that succeeds wins; rejections' reasons are joined. */
  async runPostFilterPlugins(state: CycleState, pod: Readonly<Pod>, filtered: NodeToStatusMap): Promise<{ nominatedNodeName?: string; status: Status }> {
    const reasons: string[] = [];
    let rejector = "";
    for (const p of this.postFilter) {
      const t = this.startTimer(state);
      const r = await p.postFilter(state, pod, filtered);
      this.observe(state, t, p.name, "PostFilter", r.status);
      if (r.status.isSuccess()) return r;
      if (!r.status.isRejected()) return { status: copyWithPlugin(r.status, p.name) };
      reasons.push(...r.status.reasons);
      rejector ||= p.name;
    }
    return { status: new Status(Code.Unschedulable, reasons, rejector) };
  }

  /** PreScore; Skip marks that plugin's Score to be skipped. */
  runPreScorePlugins(state: CycleState, pod: Readonly<Pod>, nodes: readonly NodeInfo[]): Status {
    const skip = new Set<string>();
    for (const p of this.preScore) {
      const t = this.startTimer(state);
      const s = p.preScore(state, pod, nodes);
      this.observe(state, t, p.name, "PreScore", s);
      if (s.isSkip()) skip.add(p.name);
      else if (!s.isSuccess()) return copyWithPlugin(s, p.name);
    }
    state.write(SKIP_SCORE_KEY, skip);
    return Status.success();
  }

  runReservePluginsReserve(state: CycleState, pod: Readonly<Pod>, nodeName: string): Status {
    for (const p of this.reserve) {
      const t = this.startTimer(state);
      const s = p.reserve(state, pod, nodeName);
      this.observe(state, t, p.name, "Reserve", s);
      if (!s.isSuccess()) return copyWithPlugin(s, p.name);
    }
    return Status.success();
  }

  /** Every Reserve plugin's unreserve, in reverse order; must be idempotent. */
  runReservePluginsUnreserve(state: CycleState, pod: Readonly<Pod>, nodeName: string): void {
    for (let i = this.reserve.length - 1; i >= 0; i--) this.reserve[i]!.unreserve(state, pod, nodeName);
  }

  /** Permit: allow or deny. Wait is not supported here and counts as an error. */
  runPermitPlugins(state: CycleState, pod: Readonly<Pod>, nodeName: string): Status {
    for (const p of this.permit) {
      const t = this.startTimer(state);
      const r = p.permit(state, pod, nodeName);
      this.observe(state, t, p.name, "Permit", r.status);
      if (r.status.isSuccess() || r.status.isSkip()) continue;
      if (r.status.code === Code.Wait) return Status.error(`permit plugin ${p.name} asked to wait, which is not supported`).withPlugin(p.name);
      return copyWithPlugin(r.status, p.name);
    }
    return Status.success();
  }

  async runPreBindPlugins(state: CycleState, pod: Readonly<Pod>, nodeName: string): Promise<Status> {
    for (const p of this.preBind) {
      const t = this.startTimer(state);
      const s = await p.preBind(state, pod, nodeName);
      this.observe(state, t, p.name, "PreBind", s);
      // An error reads as upstream's: `running PreBind plugin "VolumeBinding": binding volumes: ...`.
      if (s.code === Code.Error) return new Status(Code.Error, [`running PreBind plugin "${p.name}": ${s.message()}`], p.name);
      if (!s.isSuccess() && !s.isSkip()) return copyWithPlugin(s, p.name);
    }
    return Status.success();
  }

  /** The first Bind plugin that does not Skip binds; Skip from all of them is returned as Skip. */
  async runBindPlugins(state: CycleState, pod: Readonly<Pod>, nodeName: string): Promise<Status> {
    for (const p of this.bind) {
      const t = this.startTimer(state);
      const s = await p.bind(state, pod, nodeName);
      this.observe(state, t, p.name, "Bind", s);
      if (s.isSkip()) continue;
      return s.isSuccess() ? s : copyWithPlugin(s, p.name);
    }
    return Status.skip();
  }

  runPostBindPlugins(state: CycleState, pod: Readonly<Pod>, nodeName: string): void {
    for (const p of this.postBind) p.postBind(state, pod, nodeName);
  }

  hasPostFilterPlugins(): boolean {
    return this.postFilter.length > 0;
  }

  // ---- metrics ----

  private startTimer(state: CycleState): number {
    return this.durations && state.read<boolean>(RECORD_METRICS_KEY) ? performance.now() : -1;
  }

  private observe(state: CycleState, started: number, plugin: string, extensionPoint: string, status: Status): void {
    if (started < 0 || !this.durations || !state.read<boolean>(RECORD_METRICS_KEY)) return;
    this.durations.observe({ plugin, extension_point: extensionPoint, status: statusLabel(status) }, (performance.now() - started) / 1000);
  }
}

function statusLabel(s: Status): string {
  switch (s.code) {
    case Code.Success:
      return "Success";
    case Code.Error:
      return "Error";
    case Code.Unschedulable:
      return "Unschedulable";
    case Code.UnschedulableAndUnresolvable:
      return "UnschedulableAndUnresolvable";
    case Code.Wait:
      return "Wait";
    default:
      return "Skip";
  }
}

/** Plugins may return shared Status instances; never stamp a plugin name onto one in place. */
function copyWithPlugin(s: Status, plugin: string): Status {
  return s.plugin === plugin ? s : new Status(s.code, s.reasons, plugin);
}
