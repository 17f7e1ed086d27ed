// Scheduler bench (scheduler_perf's shape): the scheduling cycle in process, no apiserver. A Framework
// with kube-scheduler's default profile over the in-tree plugins, a Cache of 5,000 nodes in three
// zones, and pods scheduled one by one exactly as Scheduler.scheduleOne does it — update the snapshot,
// schedulePod, assume the pod on the chosen node, Reserve, Permit — minus the bind (no apiserver).
// Printed beside kube-scheduler's own CI thresholds for the same shapes.

import { parseArgs } from "node:util";
import type { Node, Pod } from "../api/core/v1.ts";
import { FakeClient, FakeRecorder, realClock } from "../client/index.ts";
import { defaultProfile } from "../cli/scheduler.ts";
import { Cache, Snapshot } from "../scheduler/cache.ts";
import { FitError, Framework } from "../scheduler/framework/runtime.ts";
import { inTreeRegistry } from "../scheduler/plugins/registry.ts";
import { runSchedulerE2E } from "./scheduler-e2e.ts";

const ZONE = "topology.kubernetes.io/zone";
const HOSTNAME = "kubernetes.io/hostname";
const ZONES = ["local-1a", "local-1b", "local-1c"];

interface Shape {
  name: string;
  /** kube-scheduler's scheduler_perf CI threshold for this shape, pods/s. */
  upstream: string;
  pods: number;
  pod(i: number): Pod;
  /** A one-line check that the placements are what the plugins promise. */
  verify(placed: Map<string, string>, zoneOf: Map<string, string>): string;
}

interface Result {
  shape: Shape;
  scheduled: number;
  failed: number;
  seconds: number;
  p50ms: number;
  p99ms: number;
  check: string;
  truncated: boolean;
}

function makeNode(i: number): Node {
  const name = `node-${i}`;
  const allocatable = { cpu: "4", memory: "16Gi", pods: "110" };
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name, uid: `uid-${name}`, labels: { [HOSTNAME]: name, [ZONE]: ZONES[i % ZONES.length]!, "kubernetes.io/os": "linux" } },
    spec: {},
    status: {
      allocatable,
      capacity: allocatable,
      conditions: [{ type: "Ready", status: "True" }],
    },
  };
}

function basePod(prefix: string, i: number, labels: Record<string, string>): Pod {
  const name = `${prefix}-${i}`;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "bench", uid: `uid-${name}`, labels },
    spec: {
      schedulerName: "default-scheduler",
      priority: 0,
      // scheduler_perf's pod-default.yaml: 100m cpu, 500Mi memory.
      containers: [{ name: "pause", image: "registry.k8s.io/pause:3.10", resources: { requests: { cpu: "100m", memory: "500Mi" } } }],
    },
  };
}

function perZone(placed: Map<string, string>, zoneOf: Map<string, string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const node of placed.values()) {
    const z = zoneOf.get(node) ?? "?";
    out[z] = (out[z] ?? 0) + 1;
  }
  return out;
}

const SHAPES: Shape[] = [
  {
    name: "SchedulingBasic",
    upstream: "680–810",
    pods: 10_000,
    // As scheduler_perf's pod-default.yaml: no labels, so PodTopologySpread's system defaults stay out.
    pod: (i) => basePod("basic", i, {}),
    verify: (placed, zoneOf) => `per zone ${JSON.stringify(perZone(placed, zoneOf))}, ${new Set(placed.values()).size} distinct nodes`,
  },
  {
    // Not an upstream shape: the same pods labelled as a ReplicaSet's would be. kubelab applies the
    // system-default spread constraints (hostname maxSkew 3, zone maxSkew 5, ScheduleAnyway) with the
    // pod's own labels as the selector, so PreScore counts matching pods on every node each cycle.
    name: "SchedulingBasic, labelled pods (system-default spread)",
    upstream: "n/a",
    pods: 10_000,
    pod: (i) => basePod("labelled", i, { app: "basic" }),
    verify: (placed, zoneOf) => `per zone ${JSON.stringify(perZone(placed, zoneOf))}, ${new Set(placed.values()).size} distinct nodes`,
  },
  {
    name: "TopologySpreading (zone, maxSkew 1, DoNotSchedule)",
    upstream: "460",
    pods: 10_000,
    pod: (i) => {
      const p = basePod("spread", i, { app: "spread" });
      p.spec!.topologySpreadConstraints = [{ maxSkew: 1, topologyKey: ZONE, whenUnsatisfiable: "DoNotSchedule", labelSelector: { matchLabels: { app: "spread" } } }];
      return p;
    },
    verify: (placed, zoneOf) => {
      const z = Object.values(perZone(placed, zoneOf));
      return `per zone ${JSON.stringify(perZone(placed, zoneOf))}, skew ${Math.max(...z) - Math.min(...z)} (must be ≤ 1)`;
    },
  },
  {
    name: "SchedulingPodAntiAffinity (required, hostname)",
    upstream: "60",
    pods: 1_000,
    pod: (i) => {
      const p = basePod("anti", i, { color: "green" });
      p.spec!.affinity = {
        podAntiAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { color: "green" } }, topologyKey: HOSTNAME }],
        },
      };
      return p;
    },
    verify: (placed) => `${new Set(placed.values()).size} distinct nodes for ${placed.size} pods (must be equal)`,
  },
];

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function runShape(shape: Shape, nodeCount: number, podCount: number, maxSeconds: number): Promise<Result> {
  const fwk = new Framework(defaultProfile(), inTreeRegistry, { client: new FakeClient(), recorder: new FakeRecorder() });
  const cache = new Cache({ clock: realClock });
  const zoneOf = new Map<string, string>();
  for (let i = 0; i < nodeCount; i++) {
    const n = makeNode(i);
    cache.addNode(n);
    zoneOf.set(n.metadata.name!, n.metadata.labels![ZONE]!);
  }
  const snapshot = new Snapshot();
  const pods = Array.from({ length: podCount }, (_, i) => shape.pod(i));
  const placed = new Map<string, string>();
  const latencies: number[] = [];
  let failed = 0;
  let truncated = false;
  const started = performance.now();
  for (const pod of pods) {
    const t0 = performance.now();
    // Scheduler.scheduleOne, the scheduling cycle.
    const state = fwk.newCycleState();
    fwk.setSnapshot(cache.updateSnapshot(snapshot));
    let host: string;
    try {
      host = (await fwk.schedulePod(state, pod)).suggestedHost;
    } catch (e) {
      if (!(e instanceof FitError)) throw e;
      failed++;
      latencies.push(performance.now() - t0);
      continue;
    }
    const assumed: Pod = { ...pod, spec: { ...pod.spec!, nodeName: host } };
    cache.assumePod(assumed);
    const reserve = fwk.runReservePluginsReserve(state, assumed, host);
    const permit = reserve.isSuccess() ? fwk.runPermitPlugins(state, assumed, host) : reserve;
    if (!permit.isSuccess()) {
      fwk.runReservePluginsUnreserve(state, assumed, host);
      cache.forgetPod(assumed);
      failed++;
    } else {
      // The bind would go here; its success is what finishBinding records.
      cache.finishBinding(assumed);
      placed.set(pod.metadata.name!, host);
    }
    latencies.push(performance.now() - t0);
    if ((performance.now() - started) / 1000 > maxSeconds) {
      truncated = true;
      break;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    shape,
    scheduled: placed.size,
    failed,
    seconds,
    p50ms: percentile(latencies, 0.5),
    p99ms: percentile(latencies, 0.99),
    check: shape.verify(placed, zoneOf),
    truncated,
  };
}

export async function runSchedulerBench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      nodes: { type: "string", default: "5000" },
      pods: { type: "string", default: "" },
      "max-seconds": { type: "string", default: "300" },
      only: { type: "string", default: "" },
      "no-e2e": { type: "boolean", default: false },
      "e2e-nodes": { type: "string", default: "500" },
      "e2e-pods": { type: "string", default: "2000" },
    },
    strict: true,
  });
  const nodes = Number(values.nodes);
  const maxSeconds = Number(values["max-seconds"]);
  const out = (s: string): void => void process.stdout.write(s + "\n");
  out(`scheduler bench: the scheduling cycle in process (no apiserver), default profile, ${nodes} nodes in ${ZONES.length} zones (cpu 4, memory 16Gi, pods 110), pods 100m/500Mi`);
  out(`node ${process.version}; percentageOfNodesToScore adaptive (${Math.max(5, 50 - Math.trunc(nodes / 125))}% of ${nodes} nodes)`);
  out("");
  const results: Result[] = [];
  for (const shape of SHAPES) {
    if (values.only && !shape.name.toLowerCase().startsWith(values.only.toLowerCase())) continue;
    const podCount = values.pods ? Number(values.pods) : shape.pods;
    const r = await runShape(shape, nodes, podCount, maxSeconds);
    results.push(r);
    const rate = r.scheduled / r.seconds;
    out(
      `${shape.name.padEnd(56)} ${String(r.scheduled).padStart(6)} pods in ${r.seconds.toFixed(2).padStart(7)} s = ${rate.toFixed(0).padStart(6)} pods/s` +
        `   (kube-scheduler CI bar ${shape.upstream} pods/s)   cycle p50 ${r.p50ms.toFixed(2)} ms p99 ${r.p99ms.toFixed(2)} ms` +
        (r.failed ? `   ${r.failed} unschedulable` : "") +
        (r.truncated ? `   [stopped after ${maxSeconds}s of ${podCount} pods]` : ""),
    );
    out(`${"".padEnd(56)}   check: ${r.check}`);
  }
  const basic = results.find((r) => r.shape.name === "SchedulingBasic");
  if (basic) {
    const rate = basic.scheduled / basic.seconds;
    out("");
    out(`target: SchedulingBasic ≥ 1,000 pods/s — ${rate >= 1000 ? "MET" : "NOT MET"} (${rate.toFixed(0)} pods/s)`);
  }
  if (!values["no-e2e"]) {
    await runSchedulerE2E({ nodes: Number(values["e2e-nodes"]), pods: Number(values["e2e-pods"]), concurrency: 64, out });
  }
}
