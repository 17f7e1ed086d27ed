// The simulated cloud on `kubelab up --topology` (P6 acceptance): the cluster autoscaler adds nodes
// to the group and zone pending pods need and, after the (shortened) cool-down, drains them through
// evictions a PodDisruptionBudget holds back, down to the group's minimum; a serverless pod gets a
// node of its own that goes away with it; a /28 subnet runs out of addresses at its 11th pod; a bad
// topology file is one line naming the field.

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCIDR, formatIPv4, type KubeObject, type Node, type Pod } from "../api/index.ts";
import { clientFromKubeconfig } from "../cli/component.ts";
import type { RestClient } from "../client/index.ts";
import { REPO, startKubelab, testClusterCIDR, type Kubelab } from "./harness/kubelab.ts";
import { poll as pollEvery } from "./harness/poll.ts";

const poll = <T,>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 120_000): Promise<T> => pollEvery(what, fn, timeoutMs, 500);

let k: Kubelab;
let client: RestClient;
let slot: number; // the first octet pair of this worker's range, e.g. 127.136

interface Ev {
  reason?: string;
  message?: string;
  involvedObject?: { kind?: string; name?: string };
  source?: { component?: string };
}

async function kc(args: string[], input?: string): Promise<string> {
  const r = await k.kubectl(args, { input, timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

const nodes = () => client.resource<Node>("", "nodes").list("").then((l) => l.items);
const ready = (n: Node) => n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
const inGroup = (ns: Node[], group: string, zone: string) => ns.filter((n) => n.metadata?.labels?.["kubelab.io/nodegroup"] === group && n.metadata?.labels?.["topology.kubernetes.io/zone"] === zone);
const pods = (ns: string, selector?: string) => client.resource<Pod>("", "pods").list(ns, selector ? { labelSelector: selector } : {}).then((l) => l.items);
const events = (ns: string) => client.resource<KubeObject & Ev>("", "events").list(ns).then((l) => l.items);

beforeAll(async () => {
  // The worker's /13 (see testClusterCIDR): local-1a gets its first /28, the others a /16 each.
  const base = parseCIDR(testClusterCIDR())!.network;
  slot = base;
  const sub = (i: number, prefix: number) => `${formatIPv4(base + i * 65536)}/${prefix}`;
  const dir = mkdtempSync(join(tmpdir(), "kubelab-cloud-"));
  const topology = join(dir, "topology.yaml");
  writeFileSync(
    topology,
    `apiVersion: kubelab.io/v1alpha1
kind: Topology
region: local-1
zones:
  - { name: local-1a, subnet: ${sub(0, 28)} }
  - { name: local-1b, subnet: ${sub(1, 16)} }
  - { name: local-1c, subnet: ${sub(2, 16)} }
nodeGroups:
  - name: tiny
    instanceType: m5.2xlarge
    zones: [local-1a]
    minSize: 1
    maxSize: 1
  - name: general
    instanceType: m5.large
    zones: [local-1b, local-1c]
    minSize: 1
    maxSize: 5
  - name: tainted
    instanceType: m5.4xlarge
    zones: [local-1b]
    minSize: 0
    maxSize: 2
    taints: [{ key: dedicated, value: batch, effect: NoSchedule }]
serverless:
  - name: serverless
    zones: [local-1b, local-1c]
    selectors: [{ namespace: serverless }]
`,
  );
  k = await startKubelab({
    nodes: true,
    extraArgs: ["--topology", topology, "--scale-down-unneeded-time", "10s", "--scale-down-delay-after-add", "10s", "--scan-interval", "2s"],
  });
  client = clientFromKubeconfig(k.kubeconfig);
  await poll("the 3 minimum nodes Ready", async () => (await nodes()).filter(ready).length === 3);
}, 180_000);

afterAll(async () => {
  await k?.stop();
});

describe("the simulated cloud", () => {
  it("gives every node its group's instance type, zone subnet address, providerID and max pods", async () => {
    const ns = await nodes();
    const tiny = inGroup(ns, "tiny", "local-1a");
    expect(tiny).toHaveLength(1);
    expect(tiny[0].metadata?.labels?.["node.kubernetes.io/instance-type"]).toBe("m5.2xlarge");
    expect(tiny[0].status?.allocatable?.pods).toBe("58");
    expect(tiny[0].spec?.providerID).toMatch(/^kubelab:\/\/\/local-1a\/i-[0-9a-f]{17}$/);
    const ip = tiny[0].status?.addresses?.find((a) => a.type === "InternalIP")?.address ?? "";
    const net = parseCIDR(`${formatIPv4(slot)}/28`)!;
    // AWS reserves the first four addresses and the last: the node's is inside .4-.14.
    expect(parseIPv4Safe(ip) - net.network).toBeGreaterThanOrEqual(4);
    expect(parseIPv4Safe(ip) - net.network).toBeLessThan(15);
    const general = inGroup(ns, "general", "local-1b");
    expect(general).toHaveLength(1);
    expect(general[0].status?.allocatable).toMatchObject({ cpu: "2", memory: "8Gi", pods: "29" });
    expect(inGroup(ns, "tainted", "local-1b")).toHaveLength(0);
    const cm = JSON.parse(await kc(["get", "configmap", "-n", "kube-system", "kubelab-nodegroup-general-local-1b", "-o", "json"])) as { data: Record<string, string> };
    expect(cm.data).toMatchObject({ instanceType: "m5.large", minSize: "1", maxSize: "5", desiredCapacity: "1" });
  });

  it("an exhausted subnet leaves the 11th pod ContainerCreating with FailedCreatePodSandBox naming the subnet", async () => {
    await kc(["create", "namespace", "vpc"]);
    const doc = Array.from({ length: 11 }, (_, i) => `apiVersion: v1
kind: Pod
metadata: { name: p${i}, namespace: vpc }
spec:
  nodeSelector: { topology.kubernetes.io/zone: local-1a }
  terminationGracePeriodSeconds: 0
  containers: [{ name: c, image: busybox, command: [sleep, "3600"] }]
`).join("---\n");
    await kc(["apply", "-f", "-"], doc);
    const subnet = `${formatIPv4(slot)}/28`;
    const ev = await poll("a FailedCreatePodSandBox event naming the subnet", async () => (await events("vpc")).find((e) => e.reason === "FailedCreatePodSandBox" && e.message?.includes(subnet)));
    expect(ev.message).toContain(`no free addresses in subnet local-1a (${subnet})`);
    const running = await poll("10 pods Running", async () => {
      const ps = await pods("vpc");
      const r = ps.filter((p) => p.status?.phase === "Running");
      return r.length === 10 ? ps : undefined;
    });
    const starved = running.filter((p) => p.status?.phase !== "Running");
    expect(starved).toHaveLength(1);
    expect(starved[0].status?.containerStatuses?.[0]?.state?.waiting?.reason ?? "ContainerCreating").toBe("ContainerCreating");
    expect(new Set(running.map((p) => p.status?.podIP).filter(Boolean)).size).toBe(10);
    // One pod gone frees an address: the starved one gets it.
    await kc(["delete", "pod", "-n", "vpc", running.find((p) => p.status?.phase === "Running")!.metadata!.name!, "--wait=true"]);
    await poll("the 11th pod Running", async () => (await pods("vpc")).filter((p) => p.status?.phase === "Running").length === 10 && (await pods("vpc")).length === 10);
    await kc(["delete", "namespace", "vpc", "--wait=false"]);
  }, 180_000);

  it("a serverless pod runs alone on its own node, which disappears after the pod", async () => {
    await kc(["create", "namespace", "serverless"]);
    await kc(["run", "lambda", "-n", "serverless", "--image=busybox", "--restart=Never", "--", "sleep", "3600"]);
    const pod = await poll("the serverless pod Running", async () => {
      const p = (await pods("serverless"))[0];
      return p?.status?.phase === "Running" ? p : undefined;
    });
    expect(pod.spec?.schedulerName).toBe("kubelab-serverless-scheduler");
    const nodeName = pod.spec!.nodeName!;
    expect(nodeName).toMatch(/^serverless-local-1[bc]-/);
    const node = (await nodes()).find((n) => n.metadata?.name === nodeName)!;
    expect(node.metadata?.labels?.["kubelab.io/compute-type"]).toBe("serverless");
    const onIt = (await pods("")).filter((p) => p.spec?.nodeName === nodeName);
    expect(onIt.map((p) => p.metadata?.name)).toEqual(["lambda"]);
    await kc(["delete", "pod", "-n", "serverless", "lambda", "--wait=true"]);
    await poll("the serverless node gone", async () => !(await nodes()).some((n) => n.metadata?.name === nodeName), 60_000);
  }, 120_000);

  it("scales the right group and zone up for 20 pending pods, and back to its minimum through PDB-respecting evictions", async () => {
    await kc(["create", "namespace", "scale"]);
    // 400m each: five fit an m5.large (2 cpu); 20 need 4 nodes in local-1b, where 1 runs. The
    // tainted group is in that zone too, but the pods do not tolerate its taint.
    await kc(["apply", "-f", "-"], `apiVersion: apps/v1
kind: Deployment
metadata: { name: burst, namespace: scale }
spec:
  replicas: 20
  selector: { matchLabels: { app: burst } }
  template:
    metadata: { labels: { app: burst } }
    spec:
      terminationGracePeriodSeconds: 0
      nodeSelector: { topology.kubernetes.io/zone: local-1b }
      containers:
        - name: c
          image: busybox
          command: [sleep, "3600"]
          resources: { requests: { cpu: 400m, memory: 100Mi } }
`);
    await poll("20 pods Running", async () => (await pods("scale", "app=burst")).filter((p) => p.status?.phase === "Running").length === 20, 180_000);
    const ns = await nodes();
    expect(inGroup(ns, "general", "local-1b").length).toBeGreaterThanOrEqual(4);
    expect(inGroup(ns, "general", "local-1c")).toHaveLength(1);
    expect(inGroup(ns, "tainted", "local-1b")).toHaveLength(0);
    // The ReplicaSet creates its pods in slow-start batches (1, 2, 4, 8, 5), so the autoscaler may
    // see the pending ones in more than one loop: every scale-up names general in local-1b, the
    // first starts from its 1 node and the last reaches 4 or 5.
    const ups = (await events("scale"))
      .filter((e) => e.reason === "TriggeredScaleUp")
      .map((e) => /^pod triggered scale-up: \[\{kubelab-nodegroup-general-local-1b (\d+)->(\d+) \(max: 5\)\}\]$/.exec(e.message ?? "") ?? e.message);
    expect(ups.length).toBeGreaterThan(0);
    for (const u of ups) expect(Array.isArray(u), `scale-up event: ${String(u)}`).toBe(true);
    const steps = (ups as RegExpExecArray[]).map((m) => [Number(m[1]), Number(m[2])]);
    expect(Math.min(...steps.map(([from]) => from))).toBe(1);
    expect(Math.max(...steps.map(([, to]) => to))).toBeGreaterThanOrEqual(4);
    const status = JSON.parse(await kc(["get", "configmap", "-n", "kube-system", "cluster-autoscaler-status", "-o", "json"])) as { data: { status: string } };
    expect(status.data.status).toContain("autoscalerStatus: Running");

    // Down to 2 replicas under a PDB of minAvailable 1: the drain evicts one at a time, never both.
    await kc(["apply", "-f", "-"], `apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: { name: burst, namespace: scale }
spec:
  minAvailable: 1
  selector: { matchLabels: { app: burst } }
`);
    await kc(["scale", "deployment", "burst", "-n", "scale", "--replicas", "2"]);
    let minReady = Infinity;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const ps = (await pods("scale", "app=burst").catch(() => undefined)) ?? [];
        const r = ps.filter((p) => !p.metadata?.deletionTimestamp && p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")).length;
        if (ps.length > 0 && ps.length <= 2 + 1) minReady = Math.min(minReady, r);
        await new Promise((res) => setTimeout(res, 200));
      }
    })();
    try {
      await poll("local-1b's general group back at its minimum (1 node)", async () => inGroup(await nodes(), "general", "local-1b").length === 1, 240_000);
    } finally {
      watching = false;
      await watcher;
    }
    expect(minReady).toBeGreaterThanOrEqual(1);
    await poll("both replicas Running on the remaining node", async () => (await pods("scale", "app=burst")).filter((p) => p.status?.phase === "Running").length === 2);
    const cm = JSON.parse(await kc(["get", "configmap", "-n", "kube-system", "kubelab-nodegroup-general-local-1b", "-o", "json"])) as { data: Record<string, string> };
    expect(cm.data.desiredCapacity).toBe("1");
    const downEvents = (await events("")).filter((e) => e.reason === "ScaleDown");
    expect(downEvents.length).toBeGreaterThan(0);
  }, 420_000);
});

describe("a bad topology file", () => {
  it("is one line naming the field, and nothing starts", () => {
    const dir = mkdtempSync(join(tmpdir(), "kubelab-badtopo-"));
    const f = join(dir, "bad.yaml");
    writeFileSync(f, readFileSync(join(REPO, "deploy/topologies/default.yaml"), "utf8").replace("maxSize: 10", "maxSize: 1"));
    const r = spawnSync(process.execPath, ["--import", "tsx", join(REPO, "cli/main.ts"), "up", "--data-dir", join(dir, "data"), "--topology", f], { cwd: REPO, encoding: "utf8", timeout: 30_000 });
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe(`kubelab: ${f}: nodeGroups[0].maxSize: must be >= minSize (2), got 1`);
    expect(r.stdout).toBe("");
  });
});

function parseIPv4Safe(ip: string): number {
  const c = parseCIDR(`${ip}/32`);
  if (!c) throw new Error(`not an IPv4 address: ${ip}`);
  return c.network;
}
