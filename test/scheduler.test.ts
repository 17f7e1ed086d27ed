// Integration acceptance for the scheduler (issue 4): `kubelab up` (apiserver, two leader-elected
// schedulers, two controller-managers), six Nodes in three zones created through the API, and
// fakenodes acting as the kubelets only (bind: false), so every binding here is the real scheduler's.

import { readFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Deployment } from "../api/apps/v1.ts";
import type { KubeObject } from "../api/meta.ts";
import type { Event, Namespace, Node, Pod, PodSpec, Taint } from "../api/core/v1.ts";
import type { Lease } from "../api/coordination/v1.ts";
import { isNotFound, RestClient } from "../client/index.ts";
import { startFakeNodes, type FakeNodes } from "./harness/fakenodes.ts";
import { startKubelab, type Kubelab } from "./harness/kubelab.ts";
import { poll } from "./harness/poll.ts";

const ZONE = "topology.kubernetes.io/zone";
const HOSTNAME = "kubernetes.io/hostname";
const ZONES = ["local-1a", "local-1b", "local-1c"];
/** Two nodes per zone: sched-1a-0, sched-1a-1, sched-1b-0, … */
const NODES = ZONES.flatMap((z) => [0, 1].map((i) => ({ name: `sched-${z.slice(-2)}-${i}`, zone: z })));
const ZONE_OF: Record<string, string> = Object.fromEntries(NODES.map((n) => [n.name, n.zone]));
const TAINT: Taint = { key: "kubelab.test/dedicated", value: "batch", effect: "NoSchedule" };

let k: Kubelab;
let client: RestClient;
let kubelets: FakeNodes;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const pods = () => client.resource<Pod>("", "pods");
const nodesApi = () => client.resource<Node>("", "nodes");
const events = () => client.resource<Event>("", "events");
const leases = () => client.resource<Lease>("coordination.k8s.io", "leases");

beforeAll(async () => {
  k = await startKubelab();
  client = RestClient.fromKubeconfig(k.kubeconfig);
  const ts = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  for (const [i, n] of NODES.entries()) {
    const created = await nodesApi().create("", {
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: n.name, labels: { [ZONE]: n.zone, [HOSTNAME]: n.name } },
      spec: {},
    });
    created.status = {
      capacity: { cpu: "2", memory: "4Gi", pods: "110" },
      allocatable: { cpu: "2", memory: "4Gi", pods: "110" },
      conditions: [{ type: "Ready", status: "True", reason: "KubeletReady", message: "fake kubelet is ready", lastHeartbeatTime: ts, lastTransitionTime: ts }],
      addresses: [{ type: "InternalIP", address: `127.0.${i + 1}.1` }, { type: "Hostname", address: n.name }],
    };
    await nodesApi().updateStatus(created);
  }
  // The kubelets only: the schedulers of `kubelab up` bind.
  kubelets = await startFakeNodes(client, { nodes: 0, bind: false });
}, 120_000);

afterAll(async () => {
  await kubelets?.stop();
  client?.close();
  await k?.stop({ clean: true });
});


function readLog(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

function schedulerLogs(lines = 15): string {
  if (!k) return "";
  return ["scheduler-1", "scheduler-2"].map((n) => `--- ${n}.log (tail)\n${readLog(join(k.dataDir, "logs", `${n}.log`)).split("\n").slice(-lines).join("\n")}`).join("\n");
}

async function newNamespace(name: string): Promise<string> {
  await client.resource<Namespace>("", "namespaces").create("", { metadata: { name } });
  return name;
}

function pod(name: string, opts: { cpu?: string; memory?: string; labels?: Record<string, string>; spec?: Partial<PodSpec> } = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels: opts.labels ?? { app: name } },
    spec: {
      containers: [{ name: "c", image: "nginx:1.25", resources: { requests: { cpu: opts.cpu ?? "10m", memory: opts.memory ?? "16Mi" } } }],
      ...opts.spec,
    },
  };
}

async function create(ns: string, p: Pod): Promise<Pod> {
  return pods().create(ns, p);
}

/** Waits until the pod is bound and returns its node. */
async function boundNode(ns: string, name: string, timeoutMs = 60_000): Promise<string> {
  return poll(`pod ${ns}/${name} to be bound`, async () => {
    const p = await pods().get(ns, name);
    if (p.spec?.nodeName) return p.spec.nodeName;
    throw new Error(`unbound; conditions ${JSON.stringify(p.status?.conditions ?? [])}`);
  }, timeoutMs);
}

async function podEvents(ns: string, name: string): Promise<Event[]> {
  return (await events().list(ns)).items.filter((e) => e.involvedObject.kind === "Pod" && e.involvedObject.name === name);
}

/** Deletes every pod of the namespace at once (grace 0) and waits until they are gone, freeing the nodes for the next test. */
async function cleanup(ns: string): Promise<void> {
  for (const d of (await client.resource<Deployment>("apps", "deployments").list(ns)).items) {
    await client.resource<Deployment>("apps", "deployments").delete(ns, d.metadata.name!).catch((e: unknown) => {
      if (!isNotFound(e)) throw e;
    });
  }
  await poll(`the pods of ${ns} to be gone`, async () => {
    const left = (await pods().list(ns)).items;
    for (const p of left) {
      await pods().delete(ns, p.metadata.name!, { gracePeriodSeconds: 0 }).catch((e: unknown) => {
        if (!isNotFound(e)) throw e;
      });
    }
    return left.length === 0;
  }, 60_000, 500);
}

async function setTaints(node: string, taints: Taint[]): Promise<void> {
  await nodesApi().patch("", node, "merge", { spec: { taints } });
}

describe("scheduler against a real cluster", () => {
  it("a pod with a nodeSelector for one hostname lands on that node", async () => {
    const ns = await newNamespace("sched-nodeselector");
    for (const target of ["sched-1b-1", "sched-1c-0"]) {
      await create(ns, pod(`pinned-${target}`, { spec: { nodeSelector: { [HOSTNAME]: target } } }));
      expect(await boundNode(ns, `pinned-${target}`)).toBe(target);
    }
    await cleanup(ns);
  }, 120_000);

  it("pods that tolerate nothing avoid a node tainted NoSchedule, while a tolerating pod may land on it", async () => {
    const ns = await newNamespace("sched-taints");
    const tainted = "sched-1a-0";
    await setTaints(tainted, [TAINT]);
    try {
      // Let the schedulers' node informers see the taint before any pod exists.
      await sleep(1500);
      for (let i = 0; i < 10; i++) await create(ns, pod(`plain-${i}`));
      for (let i = 0; i < 10; i++) expect(await boundNode(ns, `plain-${i}`), `plain-${i} must avoid the tainted node`).not.toBe(tainted);

      // Pinned to the tainted node without a toleration: stays Pending, and says why.
      await create(ns, pod("pinned-intolerant", { spec: { nodeSelector: { [HOSTNAME]: tainted } } }));
      const ev = await poll("a FailedScheduling event naming the untolerated taint", async () => {
        return (await podEvents(ns, "pinned-intolerant")).find((e) => e.reason === "FailedScheduling");
      });
      expect(ev.message).toMatch(/^0\/6 nodes are available:/);
      expect(ev.message).toContain("untolerated taint");
      expect((await pods().get(ns, "pinned-intolerant")).spec?.nodeName ?? "").toBe("");

      // The same pin with a toleration lands there.
      await create(ns, pod("pinned-tolerant", {
        spec: { nodeSelector: { [HOSTNAME]: tainted }, tolerations: [{ key: TAINT.key, operator: "Equal", value: TAINT.value, effect: "NoSchedule" }] },
      }));
      expect(await boundNode(ns, "pinned-tolerant")).toBe(tainted);
      // A tolerating pod without a pin is allowed anywhere, the tainted node included.
      await create(ns, pod("tolerant", { spec: { tolerations: [{ key: TAINT.key, operator: "Exists" }] } }));
      expect(NODES.map((n) => n.name)).toContain(await boundNode(ns, "tolerant"));
    } finally {
      await setTaints(tainted, []);
      await cleanup(ns);
    }
  }, 120_000);

  it("a pod with required node affinity In two zones lands in one of them", async () => {
    const ns = await newNamespace("sched-affinity");
    const allowed = ["local-1a", "local-1c"];
    for (let i = 0; i < 6; i++) {
      await create(ns, pod(`zonal-${i}`, {
        spec: {
          affinity: {
            nodeAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: ZONE, operator: "In", values: allowed }] }] },
            },
          },
        },
      }));
    }
    for (let i = 0; i < 6; i++) {
      const node = await boundNode(ns, `zonal-${i}`);
      expect(allowed, `zonal-${i} on ${node}`).toContain(ZONE_OF[node]);
    }
    await cleanup(ns);
  }, 120_000);

  it("a request only one node can fit lands on that node once the others are full", async () => {
    const ns = await newNamespace("sched-fit");
    const free = "sched-1b-0";
    const others = NODES.map((n) => n.name).filter((n) => n !== free);
    for (const n of others) await create(ns, pod(`filler-${n}`, { cpu: "1700m", spec: { nodeSelector: { [HOSTNAME]: n } } }));
    for (const n of others) expect(await boundNode(ns, `filler-${n}`)).toBe(n);
    await create(ns, pod("big", { cpu: "1", memory: "1Gi" }));
    expect(await boundNode(ns, "big")).toBe(free);
    await cleanup(ns);
  }, 120_000);

  it("6 replicas of a Deployment with a zone spread constraint (maxSkew 1, DoNotSchedule) land 2/2/2", async () => {
    const ns = await newNamespace("sched-spread");
    const labels = { app: "spread" };
    await client.resource<Deployment>("apps", "deployments").create(ns, {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "spread" },
      spec: {
        replicas: 6,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            containers: [{ name: "c", image: "nginx:1.25", resources: { requests: { cpu: "10m", memory: "16Mi" } } }],
            topologySpreadConstraints: [{ maxSkew: 1, topologyKey: ZONE, whenUnsatisfiable: "DoNotSchedule", labelSelector: { matchLabels: labels } }],
          },
        },
      },
    });
    const placed = await poll("6 spread pods to be bound", async () => {
      const ps = (await pods().list(ns, { labelSelector: "app=spread" })).items.filter((p) => !p.metadata.deletionTimestamp);
      const bound = ps.filter((p) => p.spec?.nodeName);
      if (ps.length !== 6 || bound.length !== 6) throw new Error(`${ps.length} pods, ${bound.length} bound`);
      return bound;
    }, 90_000);
    const perZone: Record<string, number> = {};
    for (const p of placed) perZone[ZONE_OF[p.spec!.nodeName!]] = (perZone[ZONE_OF[p.spec!.nodeName!]] ?? 0) + 1;
    expect(perZone).toEqual({ "local-1a": 2, "local-1b": 2, "local-1c": 2 });
    await cleanup(ns);
  }, 150_000);

  it("an unschedulable pod (cpu 64) gets a FailedScheduling event with kube-scheduler's message and PodScheduled=False Unschedulable", async () => {
    const ns = await newNamespace("sched-unschedulable");
    await create(ns, pod("huge", { cpu: "64" }));
    const ev = await poll("a FailedScheduling event for huge", async () => (await podEvents(ns, "huge")).find((e) => e.reason === "FailedScheduling"));
    expect(ev.type).toBe("Warning");
    expect(ev.message?.startsWith("0/6 nodes are available:"), ev.message).toBe(true);
    expect(ev.message).toContain("Insufficient cpu");
    expect(ev.message).toMatch(/^0\/6 nodes are available: 6 Insufficient cpu\./);
    const cond = await poll("PodScheduled=False on huge", async () => {
      const p = await pods().get(ns, "huge");
      return p.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False");
    });
    expect(cond.reason).toBe("Unschedulable");
    expect(cond.message).toContain("Insufficient cpu");
    expect((await pods().get(ns, "huge")).spec?.nodeName ?? "").toBe("");
    const describe = await k.kubectl(["describe", "pod", "huge", "-n", ns]);
    expect(describe.code, describe.stderr).toBe(0);
    expect(describe.stdout).toMatch(/FailedScheduling/);
    await cleanup(ns);
  }, 120_000);

  it("a scheduled pod has a Scheduled event 'Successfully assigned ns/pod to node', shown by kubectl describe", async () => {
    const ns = await newNamespace("sched-event");
    await create(ns, pod("hello"));
    const node = await boundNode(ns, "hello");
    const want = `Successfully assigned ${ns}/hello to ${node}`;
    const ev = await poll("the Scheduled event", async () => (await podEvents(ns, "hello")).find((e) => e.reason === "Scheduled"));
    expect(ev.type).toBe("Normal");
    expect(ev.message).toBe(want);
    const out = await poll("kubectl describe to show the Scheduled event", async () => {
      const r = await k.kubectl(["describe", "pod", "hello", "-n", ns]);
      if (r.code !== 0) throw new Error(r.stderr);
      if (!r.stdout.includes(want)) throw new Error(r.stdout);
      return r.stdout;
    }, 30_000, 1000);
    expect(out).toMatch(/Scheduled\s+.*default-scheduler\s+Successfully assigned/);
    await cleanup(ns);
  }, 120_000);

  it("preemption: a high-priority pod evicts the low-priority pod filling its node and is bound there", async () => {
    const ns = await newNamespace("sched-preemption");
    const node = "sched-1c-1";
    // Priorities come from PriorityClasses (the apiserver's Priority admission), as in a real cluster.
    await client.resource("scheduling.k8s.io", "priorityclasses").create("", {
      apiVersion: "scheduling.k8s.io/v1",
      kind: "PriorityClass",
      metadata: { name: "sched-test-high" },
      value: 1000,
    } as KubeObject);
    await create(ns, pod("low", { cpu: "1500m", spec: { nodeSelector: { [HOSTNAME]: node } } }));
    expect(await boundNode(ns, "low")).toBe(node);
    const low = await poll("low to be Running", async () => {
      const p = await pods().get(ns, "low");
      return p.status?.phase === "Running" ? p : undefined;
    });

    // Watch the high-priority pod: nominatedNodeName must show up on the way.
    const seen: { nominated?: string; nodeName?: string }[] = [];
    const ac = new AbortController();
    const list = await pods().list(ns);
    const watching = (async () => {
      try {
        for await (const ev of pods().watch(ns, { resourceVersion: list.metadata.resourceVersion ?? "" }, ac.signal)) {
          if (ev.type === "ADDED" || ev.type === "MODIFIED") {
            if (ev.object.metadata.name === "high") seen.push({ nominated: ev.object.status?.nominatedNodeName, nodeName: ev.object.spec?.nodeName });
          }
        }
      } catch (e) {
        if (!ac.signal.aborted) throw e;
      }
    })();
    try {
      await create(ns, pod("high", { cpu: "1", spec: { priorityClassName: "sched-test-high", nodeSelector: { [HOSTNAME]: node } } }));
      await poll("low to be evicted", async () => {
        try {
          const p = await pods().get(ns, "low");
          if (p.metadata.uid !== low.metadata.uid) return true;
          if (p.metadata.deletionTimestamp) return true;
          throw new Error(`low still running on ${p.spec?.nodeName}; high: ${JSON.stringify((await pods().get(ns, "high")).status)}; events: ${JSON.stringify((await podEvents(ns, "high")).map((e) => `${e.reason}: ${e.message}`))}`);
        } catch (e) {
          if (isNotFound(e)) return true;
          throw e;
        }
      }, 60_000);
      expect(await boundNode(ns, "high", 60_000)).toBe(node);
      await sleep(500);
    } finally {
      ac.abort();
      await watching;
    }
    expect(seen.some((s) => s.nominated === node), `nominatedNodeName=${node} on some watch event of high: ${JSON.stringify(seen)}`).toBe(true);
    const lowNow = await pods().get(ns, "low").catch((e: unknown) => (isNotFound(e) ? undefined : Promise.reject(e)));
    expect(lowNow === undefined || lowNow.metadata.uid !== low.metadata.uid || !!lowNow.metadata.deletionTimestamp).toBe(true);
    await cleanup(ns);
  }, 150_000);

  it("kill the leading scheduler: the other takes the Lease and binds pending pods, none bound twice", async () => {
    const ns = await newNamespace("sched-failover");
    const lease = await poll("the scheduler Lease to be held", async () => {
      const l = await leases().get("kube-system", "kube-scheduler");
      return l.spec?.holderIdentity ? l : undefined;
    });
    const holder = lease.spec!.holderIdentity!;
    const durationS = lease.spec?.leaseDurationSeconds ?? 15;
    const leader = await findLeader();

    // Every pod's nodeName across its watch events: once set it never changes.
    const history = new Map<string, string[]>();
    const ac = new AbortController();
    const list = await pods().list(ns);
    const watching = (async () => {
      try {
        for await (const ev of pods().watch(ns, { resourceVersion: list.metadata.resourceVersion ?? "" }, ac.signal)) {
          if (ev.type !== "ADDED" && ev.type !== "MODIFIED") continue;
          const name = ev.object.metadata.name!;
          const h = history.get(name) ?? [];
          const n = ev.object.spec?.nodeName ?? "";
          if (n && h[h.length - 1] !== n) h.push(n);
          history.set(name, h);
        }
      } catch (e) {
        if (!ac.signal.aborted) throw e;
      }
    })();
    const names = ["after-0", "after-1", "after-2"];
    let tookMs = 0;
    try {
      const killedAt = Date.now();
      process.kill(leader.pid, "SIGKILL");
      for (const n of names) await create(ns, pod(n));
      const newLease = await poll("another scheduler to take the Lease", async () => {
        const l = await leases().get("kube-system", "kube-scheduler");
        return l.spec?.holderIdentity && l.spec.holderIdentity !== holder ? l : undefined;
      }, (durationS + 20) * 1000, 200);
      tookMs = Date.now() - killedAt;
      expect(newLease.spec?.leaseTransitions ?? 0).toBeGreaterThan(lease.spec?.leaseTransitions ?? -1);
      for (const n of names) await boundNode(ns, n, 60_000);
      await sleep(3000); // let a second binding, if any, surface
    } finally {
      ac.abort();
      await watching;
    }
    expect(tookMs, `the Lease changed hands ${tookMs} ms after the kill`).toBeLessThan((durationS + 10) * 1000);
    for (const n of names) expect(history.get(n), `nodeName history of ${n}`).toHaveLength(1);
    for (const n of names) {
      const scheduled = (await podEvents(ns, n)).filter((e) => e.reason === "Scheduled");
      const count = scheduled.reduce((s, e) => s + (e.count ?? 1), 0);
      expect(count, `Scheduled events of ${n}: ${JSON.stringify(scheduled.map((e) => e.message))}`).toBe(1);
    }
    await cleanup(ns);
  }, 180_000);
});

/** The scheduler whose /readyz answers 200 (only the leader is ready), found from up.json and each process's `--port N`. */
async function findLeader(): Promise<{ pid: number; name: string }> {
  const state = JSON.parse(readFileSync(join(k.dataDir, "up.json"), "utf8")) as { components: { name: string; pid?: number }[] };
  const scheds = state.components.filter((c) => c.name.startsWith("scheduler-") && c.pid);
  expect(scheds).toHaveLength(2);
  return poll(`exactly one ready scheduler among ${JSON.stringify(scheds)}`, async () => {
    const found: { pid: number; name: string }[] = [];
    for (const c of scheds) {
      const port = cmdlinePort(c.pid!);
      if (port && (await readyz(port)) === 200) found.push({ pid: c.pid!, name: c.name });
    }
    return found.length === 1 ? found[0] : undefined;
  }, 30_000, 500);
}

function cmdlinePort(pid: number): number | undefined {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    const i = argv.indexOf("--port");
    return i >= 0 ? Number(argv[i + 1]) : undefined;
  } catch {
    return undefined;
  }
}

function readyz(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/readyz", timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", () => resolve(0));
    req.on("timeout", () => req.destroy());
  });
}
