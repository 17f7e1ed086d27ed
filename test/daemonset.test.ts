// DaemonSets end to end on `kubelab up` (3 zones × 2 simulated nodes) with the real kubectl: one
// Running pod per node in every zone; a drained (cordoned) node keeps its pod; a node added by a
// new kubelet pool gets one; a rolling update completes under `kubectl rollout status`, shows in
// `rollout history` and is undone by `rollout undo`, a maxSurge `rollout restart` completes; a
// deleted node loses its pod; deleting the DaemonSet cascades to its pods and ControllerRevisions.

import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, startKubelab, testClusterCIDR, type Kubelab } from "./harness/kubelab.ts";
import { poll as pollEvery } from "./harness/poll.ts";

const poll = <T,>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 120_000): Promise<T> => pollEvery(what, fn, timeoutMs, 500);

let k: Kubelab;
let extraPool: ChildProcess | undefined;

interface Obj {
  metadata: { name: string; uid?: string; labels?: Record<string, string>; deletionTimestamp?: string; ownerReferences?: { kind: string; name: string; controller?: boolean }[] };
  spec?: { nodeName?: string; containers?: { image: string }[]; unschedulable?: boolean };
  status?: { phase?: string; conditions?: { type: string; status: string }[]; desiredNumberScheduled?: number; numberReady?: number; numberAvailable?: number; updatedNumberScheduled?: number };
  revision?: number;
}

async function getJSON(args: string[]): Promise<Obj[]> {
  const r = await k.kubectl([...args, "-o", "json"]);
  if (r.code !== 0) throw new Error(r.stderr);
  const v = JSON.parse(r.stdout) as { items?: Obj[] } & Obj;
  return v.items ?? [v];
}

const ready = (o: Obj): boolean => o.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
const livePods = async (): Promise<Obj[]> => (await getJSON(["get", "pods", "-l", "app=agent"])).filter((p) => !p.metadata.deletionTimestamp);

/** One Running, Ready pod on each of `nodes` and on no other node: the pods, or undefined while not yet so. */
async function onePodPerNode(nodes: readonly string[], image?: string): Promise<Obj[] | undefined> {
  const pods = await livePods();
  const byNode = new Map<string, number>();
  for (const p of pods) byNode.set(p.spec?.nodeName ?? "", (byNode.get(p.spec?.nodeName ?? "") ?? 0) + 1);
  const ok =
    pods.length === nodes.length &&
    nodes.every((n) => byNode.get(n) === 1) &&
    pods.every((p) => p.status?.phase === "Running" && ready(p) && (image === undefined || p.spec?.containers?.[0]?.image === image));
  return ok ? pods : undefined;
}

const MANIFEST = JSON.stringify({
  apiVersion: "apps/v1",
  kind: "DaemonSet",
  metadata: { name: "agent", annotations: { "kubernetes.io/change-cause": "first" } },
  spec: {
    selector: { matchLabels: { app: "agent" } },
    template: {
      metadata: { labels: { app: "agent" } },
      spec: { containers: [{ name: "agent", image: "busybox:1.36", command: ["httpd", "-f", "-p", "9100"] }] },
    },
  },
});

/** The unused fourth quarter of this worker's cluster CIDR (up splits it in four for three zones): a /24 for the extra pool. */
function extraPoolCIDR(): string {
  const [a, b] = testClusterCIDR().split(".").map(Number);
  return `${a}.${b! + 6}.0.0/24`;
}

beforeAll(async () => {
  k = await startKubelab({ nodes: true });
});

afterAll(async () => {
  if (extraPool && extraPool.exitCode === null) {
    extraPool.kill("SIGTERM");
    await new Promise((r) => extraPool!.once("exit", r));
  }
  await k?.stop({ clean: true });
});

describe("a DaemonSet", () => {
  let nodes: string[] = [];

  it("runs exactly one Running pod on every node of every zone", async () => {
    const all = await poll("6 Ready nodes", async () => {
      const n = await getJSON(["get", "nodes"]);
      return n.length === 6 && n.every(ready) ? n : undefined;
    });
    nodes = all.map((n) => n.metadata.name).sort();
    const zones = new Map<string, number>();
    for (const n of all) zones.set(n.metadata.labels?.["topology.kubernetes.io/zone"] ?? "", (zones.get(n.metadata.labels?.["topology.kubernetes.io/zone"] ?? "") ?? 0) + 1);
    expect([...zones.values()]).toEqual([2, 2, 2]);

    const apply = await k.kubectl(["apply", "-f", "-"], { input: MANIFEST });
    expect(apply.code, apply.stderr).toBe(0);
    const pods = await poll("one Running pod per node", () => onePodPerNode(nodes));
    for (const p of pods) {
      expect(p.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: "DaemonSet", name: "agent", controller: true })]);
      expect(p.metadata.labels?.["pod-template-generation"]).toBe("1");
      expect(p.metadata.labels?.["controller-revision-hash"]).toMatch(/^[0-9a-z]+$/);
    }
    const status = await poll("status with 6 available", async () => {
      const [ds] = await getJSON(["get", "ds", "agent"]);
      return ds!.status?.numberAvailable === 6 ? ds : undefined;
    });
    expect(status.status).toMatchObject({ desiredNumberScheduled: 6, numberReady: 6, updatedNumberScheduled: 6 });

    const table = await k.kubectl(["get", "ds", "agent"]);
    expect(table.stdout.split("\n")[0]!.split(/\s{2,}/)).toEqual(["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"]);
    expect(table.stdout.split("\n")[1]!.split(/\s+/).slice(0, 7)).toEqual(["agent", "6", "6", "6", "6", "6", "<none>"]);
    const describe = await k.kubectl(["describe", "ds", "agent"]);
    expect(describe.code, describe.stderr).toBe(0);
    expect(describe.stdout).toContain("Desired Number of Nodes Scheduled: 6");
    expect(describe.stdout).toContain("Number of Nodes Scheduled with Available Pods: 6");
    expect(describe.stdout).toContain("Pods Status:  6 Running / 0 Waiting / 0 Succeeded / 0 Failed");
    expect(describe.stdout).toMatch(/Normal\s+SuccessfulCreate\s+\S+\s+daemonset-controller\s+Created pod: agent-/);
    const wide = await k.kubectl(["get", "ds", "agent", "-o", "wide"]);
    expect(wide.stdout.split("\n")[0]).toMatch(/CONTAINERS\s+IMAGES\s+SELECTOR$/);
    expect(wide.stdout.split("\n")[1]).toMatch(/agent\s+busybox:1\.36\s+app=agent$/);
  }, 300_000);

  it("keeps its pod on a node drained with --ignore-daemonsets (cordoned)", async () => {
    const node = nodes[0]!;
    const before = (await livePods()).find((p) => p.spec?.nodeName === node)!;
    const drain = await k.kubectl(["drain", node, "--ignore-daemonsets", "--timeout=60s"], { timeoutMs: 90_000 });
    expect(drain.code, drain.stderr).toBe(0);
    expect(drain.stderr).toContain(`Warning: ignoring DaemonSet-managed Pods: default/${before.metadata.name}`);
    const [n] = await getJSON(["get", "node", node]);
    expect(n!.spec?.unschedulable).toBe(true);
    // The cordon reaches the controller as a node update; a spec change of the DaemonSet forces a sync as well.
    const bump = await k.kubectl(["patch", "ds", "agent", "--type=merge", "-p", '{"spec":{"minReadySeconds":1}}']);
    expect(bump.code, bump.stderr).toBe(0);
    await poll("the DaemonSet observed its new generation", async () => {
      const [ds] = await getJSON(["get", "ds", "agent"]);
      const d = ds as unknown as { metadata: { generation: number }; status: { observedGeneration?: number } };
      return d.status.observedGeneration === d.metadata.generation;
    });
    const after = (await livePods()).filter((p) => p.spec?.nodeName === node);
    expect(after.map((p) => p.metadata.uid)).toEqual([before.metadata.uid]);
  }, 300_000);

  it("puts a pod on a node added by a new kubelet pool", async () => {
    extraPool = spawn(
      process.execPath,
      [
        "--import", "tsx", join(REPO, "cli/main.ts"), "kubelet", "--kubeconfig", k.kubeconfig, "--simulate", "--nodes", "1",
        "--zone", "local-1a", "--name-prefix", "extra", "--pod-cidr", extraPoolCIDR(),
        "--root-dir", join(k.dataDir, "kubelet", "extra"), "--healthz-port", "0",
      ],
      { cwd: REPO, stdio: "ignore", env: { ...process.env, KUBELAB_LOG_LEVEL: "warn" } },
    );
    const added = await poll("the extra node Ready", async () => {
      const n = (await getJSON(["get", "nodes"])).filter((x) => !nodes.includes(x.metadata.name));
      return n.length === 1 && ready(n[0]!) ? n[0]!.metadata.name : undefined;
    });
    expect(added).toMatch(/^extra/);
    nodes = [...nodes, added].sort();
    await poll("one Running pod per node, the new one included", () => onePodPerNode(nodes));
  }, 300_000);

  it("rolls out a new image with `kubectl set image` to every node (the cordoned one too); rollout status returns; history and undo work; a maxSurge restart completes", async () => {
    const set = await k.kubectl(["set", "image", "ds/agent", "agent=busybox:1.37"]);
    expect(set.code, set.stderr).toBe(0);
    const status = await k.kubectl(["rollout", "status", "ds/agent", "--timeout=180s"], { timeoutMs: 200_000 });
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain('daemon set "agent" successfully rolled out');
    const pods = await poll("updated pods on every node", () => onePodPerNode(nodes, "busybox:1.37"));
    expect(new Set(pods.map((p) => p.metadata.labels?.["pod-template-generation"]))).toEqual(new Set(["2"]));

    const revisions = await getJSON(["get", "controllerrevisions", "-l", "app=agent"]);
    expect(revisions.map((r) => r.revision).sort()).toEqual([1, 2]);
    const history = await k.kubectl(["rollout", "history", "ds/agent"]);
    expect(history.code, history.stderr).toBe(0);
    expect(history.stdout).toMatch(/REVISION\s+CHANGE-CAUSE\n1\s+first\n2\s+first/);
    const rev1 = await k.kubectl(["rollout", "history", "ds/agent", "--revision=1"]);
    expect(rev1.stdout).toContain("busybox:1.36");

    const undo = await k.kubectl(["rollout", "undo", "ds/agent"]);
    expect(undo.code, undo.stderr).toBe(0);
    expect(undo.stdout).toContain("daemonset.apps/agent rolled back");
    const back = await k.kubectl(["rollout", "status", "ds/agent", "--timeout=180s"], { timeoutMs: 200_000 });
    expect(back.code, back.stderr).toBe(0);
    await poll("the old image on every node", () => onePodPerNode(nodes, "busybox:1.36"));
    const after = await getJSON(["get", "controllerrevisions", "-l", "app=agent"]);
    // The undo made revision 1's template current again: renumbered 3, no new revision.
    expect(after.map((r) => r.revision).sort()).toEqual([2, 3]);

    // With maxSurge the new pod starts beside the old one, which goes once the new one is available.
    const surge = await k.kubectl(["patch", "ds", "agent", "--type=merge", "-p", '{"spec":{"updateStrategy":{"rollingUpdate":{"maxUnavailable":0,"maxSurge":1}}}}']);
    expect(surge.code, surge.stderr).toBe(0);
    const restart = await k.kubectl(["rollout", "restart", "ds/agent"]);
    expect(restart.code, restart.stderr).toBe(0);
    const surged = await k.kubectl(["rollout", "status", "ds/agent", "--timeout=180s"], { timeoutMs: 200_000 });
    expect(surged.code, surged.stderr).toBe(0);
    const restarted = await poll("restarted pods on every node", () => onePodPerNode(nodes, "busybox:1.36"));
    expect(new Set(restarted.map((p) => p.metadata.labels?.["pod-template-generation"]))).toEqual(new Set(["4"]));
  }, 300_000);

  it("loses the pod of a deleted node", async () => {
    const gone = nodes.find((n) => n.startsWith("extra"))!;
    const del = await k.kubectl(["delete", "node", gone]);
    expect(del.code, del.stderr).toBe(0);
    nodes = nodes.filter((n) => n !== gone);
    // The pod GC removes pods bound to a node that no longer exists (after its 40 s quarantine).
    await poll("no pod left on the deleted node", () => onePodPerNode(nodes), 150_000);
    await poll("desired back to 6", async () => (await getJSON(["get", "ds", "agent"]))[0]!.status?.desiredNumberScheduled === 6);
    extraPool!.kill("SIGTERM");
    await new Promise((r) => extraPool!.once("exit", r));
  }, 300_000);

  it("takes its pods and revisions with it when deleted", async () => {
    const del = await k.kubectl(["delete", "ds", "agent"]);
    expect(del.code, del.stderr).toBe(0);
    await poll("pods and revisions collected", async () => (await livePods()).length === 0 && (await getJSON(["get", "controllerrevisions", "-l", "app=agent"])).length === 0);
    const uncordon = await k.kubectl(["uncordon", nodes[0]!]);
    expect(uncordon.code, uncordon.stderr).toBe(0);
  }, 300_000);
});
