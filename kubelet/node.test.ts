import { afterEach, describe, expect, it, vi } from "vitest";
import type { Lease, Node, Pod } from "../api/index.ts";
import { FakeClient, FakeClock, FakeRecorder, Store, fakeErrors, newLogger, type Context, type Informer } from "../client/index.ts";
import { LEASE_RENEW_JITTER, NODE_STATUS_REPORT_FREQUENCY_MS, leaseSleepMs, registerNode, runNodeLease, runNodeStatus } from "./node.ts";
import type { Runtime } from "./runtime/types.ts";
import type { KubeletOptions } from "./types.ts";

const log = newLogger("node-test");
log.level = "silent";

function setup(objects: (Node | Lease)[] = []) {
  const clock = new FakeClock();
  const client = new FakeClient(objects, { clock });
  const recorder = new FakeRecorder();
  const opts: KubeletOptions = {
    nodeName: "n1",
    zone: "z-a",
    region: "r-1",
    client,
    pods: {} as Informer<Pod>,
    runtime: {} as Runtime,
    rootDir: "/nonexistent",
    nodeIP: "127.64.0.1",
    port: 10250,
    podCIDR: "127.64.0.0/24",
    capacity: { cpu: "4" },
    labels: { team: "blue" },
    runtimeVersion: "sim://0.1.0",
    recorder,
    clock,
    log,
    leaseRenewIntervalMs: 10_000,
    nodeStatusUpdateFrequencyMs: 10_000,
  };
  const abort = new AbortController();
  const ctx: Context = { signal: abort.signal, log };
  return { clock, client, recorder, opts, abort, ctx };
}

afterEach(() => {
  vi.restoreAllMocks();
});

/** A started node informer whose cache the test fills (as its watch would). */
function fakeNodeInformer(): { informer: Informer<Node>; cache: Store<Node> } {
  const cache = new Store<Node>();
  const informer: Informer<Node> = {
    lister: cache,
    addEventHandler: () => undefined,
    addIndexer: () => undefined,
    hasSynced: () => true,
    waitForSync: async () => undefined,
    run: async () => undefined,
  };
  return { informer, cache };
}

const nodeOf = (client: FakeClient): Node => client.tracker("", "nodes", "", "n1") as Node;
const leaseOf = (client: FakeClient): Lease => client.tracker("coordination.k8s.io", "leases", "kube-node-lease", "n1") as Lease;
const cond = (n: Node, type: string) => n.status?.conditions?.find((c) => c.type === type);

describe("registerNode", () => {
  it("creates the Node with labels, podCIDR, capacity, addresses, the kubelet port and nodeInfo", async () => {
    const { client, recorder, opts, ctx } = setup();
    await registerNode(ctx, opts);
    const n = nodeOf(client);
    expect(n.metadata.labels).toMatchObject({
      "kubernetes.io/hostname": "n1",
      "topology.kubernetes.io/zone": "z-a",
      "topology.kubernetes.io/region": "r-1",
      "kubernetes.io/os": "linux",
      "kubernetes.io/arch": "amd64",
      "beta.kubernetes.io/os": "linux",
      "beta.kubernetes.io/arch": "amd64",
      "node.kubernetes.io/instance-type": "kubelab",
      team: "blue",
    });
    expect(n.spec).toEqual({ podCIDR: "127.64.0.0/24", podCIDRs: ["127.64.0.0/24"] });
    expect(n.status?.capacity).toEqual({ cpu: "4", memory: "32Gi", pods: "110", "ephemeral-storage": "100Gi" });
    expect(n.status?.allocatable).toEqual(n.status?.capacity);
    expect(n.status?.addresses).toEqual([
      { type: "InternalIP", address: "127.64.0.1" },
      { type: "Hostname", address: "n1" },
    ]);
    expect(n.status?.daemonEndpoints).toEqual({ kubeletEndpoint: { Port: 10250 } });
    expect(n.status?.nodeInfo).toMatchObject({ kubeletVersion: "v1.32.0-kubelab", containerRuntimeVersion: "sim://0.1.0", operatingSystem: "linux", architecture: "amd64" });
    expect(n.status?.nodeInfo?.systemUUID).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(n.status?.conditions?.map((c) => `${c.type}=${c.status}/${c.reason}`)).toEqual([
      "MemoryPressure=False/KubeletHasSufficientMemory",
      "DiskPressure=False/KubeletHasNoDiskPressure",
      "PIDPressure=False/KubeletHasSufficientPID",
      "Ready=False/KubeletNotReady",
    ]);
    expect(recorder.events).toEqual([
      "Normal Starting Starting kubelet.",
      "Normal NodeHasSufficientMemory Node n1 status is now: NodeHasSufficientMemory",
      "Normal NodeHasNoDiskPressure Node n1 status is now: NodeHasNoDiskPressure",
      "Normal NodeHasSufficientPID Node n1 status is now: NodeHasSufficientPID",
    ]);
    expect(recorder.objects[0]).toMatchObject({ kind: "Node", metadata: { name: "n1", uid: "n1" } });
  });

  it("gives two nodes different machine ids, and one node the same ids every time", async () => {
    const a = setup();
    await registerNode(a.ctx, a.opts);
    const b = setup();
    await registerNode(b.ctx, { ...b.opts, nodeName: "n2" });
    await registerNode(a.ctx, { ...a.opts, nodeName: "n2" });
    const n1 = nodeOf(a.client).status!.nodeInfo!;
    const n2 = b.client.tracker("", "nodes", "", "n2") as Node;
    const n2again = a.client.tracker("", "nodes", "", "n2") as Node;
    expect(n1.machineID).not.toBe(n2.status!.nodeInfo!.machineID);
    expect(n2.status!.nodeInfo).toEqual(n2again.status!.nodeInfo);
  });

  it("on AlreadyExists updates our labels and the static status, keeping other labels and the conditions", async () => {
    const existing: Node = {
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: "n1", labels: { "topology.kubernetes.io/zone": "old-zone", "kubernetes.io/hostname": "n1", "user/label": "keep" } },
      spec: {},
      status: {
        addresses: [{ type: "InternalIP", address: "127.99.0.1" }],
        daemonEndpoints: { kubeletEndpoint: { Port: 1 } },
        conditions: [{ type: "Ready", status: "True", reason: "KubeletReady", lastTransitionTime: "2023-01-01T00:00:00Z" }],
      },
    };
    const { client, opts, ctx } = setup([existing]);
    await registerNode(ctx, opts);
    expect(client.writeActions().map((a) => `${a.verb}${a.subresource ? "/" + a.subresource : ""}`)).toEqual(["create", "patch", "patch/status"]);
    const n = nodeOf(client);
    expect(n.metadata.labels).toMatchObject({ "topology.kubernetes.io/zone": "z-a", "topology.kubernetes.io/region": "r-1", "user/label": "keep", team: "blue" });
    expect(n.spec?.podCIDR).toBe("127.64.0.0/24");
    expect(n.status?.addresses).toEqual([
      { type: "InternalIP", address: "127.64.0.1" },
      { type: "Hostname", address: "n1" },
    ]);
    expect(n.status?.daemonEndpoints?.kubeletEndpoint?.Port).toBe(10250);
    expect(n.status?.conditions).toEqual(existing.status!.conditions);
  });

  it("an up-to-date existing Node is not written again", async () => {
    const { client, opts, ctx } = setup();
    await registerNode(ctx, opts);
    client.clearActions();
    await registerNode(ctx, opts);
    expect(client.writeActions().map((a) => a.verb)).toEqual(["create"]); // the AlreadyExists attempt only
  });

  it("retries with backoff until the apiserver accepts the Node", async () => {
    const { client, clock, opts, ctx } = setup();
    let failures = 2;
    client.prependReactor("create", "nodes", () => (failures-- > 0 ? { error: fakeErrors.internal("etcd is down") } : undefined));
    const done = registerNode(ctx, opts);
    await clock.advance(100);
    expect(nodeOf(client)).toBeUndefined();
    await clock.advance(200);
    await done;
    expect(nodeOf(client)).toBeDefined();
    expect(client.actions.filter((a) => a.verb === "create").length).toBe(3);
  });
});

describe("runNodeLease", () => {
  it("creates the Lease owned by the Node, then renews renewTime with updates and no GETs", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    const { client, clock, opts, ctx, abort } = setup();
    await registerNode(ctx, opts);
    const uid = nodeOf(client).metadata.uid;
    client.clearActions();
    const run = runNodeLease(ctx, { ...opts, leaseDurationSeconds: 40 });
    await clock.advance(0);
    const created = leaseOf(client);
    expect(created.spec).toEqual({ holderIdentity: "n1", leaseDurationSeconds: 40, renewTime: "2024-01-01T00:00:00.000000Z" });
    expect(created.metadata.ownerReferences).toEqual([{ apiVersion: "v1", kind: "Node", name: "n1", uid }]);
    // Renew at a jittered point of the first interval, then every 10 s.
    await clock.advance(10_000);
    const first = leaseOf(client);
    expect(Date.parse(first.spec!.renewTime!)).toBeGreaterThan(Date.parse(created.spec!.renewTime!));
    client.clearActions();
    await clock.advance(30_000);
    const acts = client.actions.map((a) => `${a.verb} ${a.resource}`);
    expect(acts).toEqual(["update leases", "update leases", "update leases"]);
    expect(leaseOf(client).spec!.renewTime).not.toBe(first.spec!.renewTime);
    abort.abort();
    await run;
  });

  it("renews first at a random point of the interval, so nodes started together spread out; later every interval plus up to 4 %", async () => {
    const firstRenewals: number[] = [];
    for (const r of [0, 0.25, 0.5, 0.75, 0.999]) {
      vi.spyOn(Math, "random").mockReturnValue(r);
      const { client, clock, opts, ctx, abort } = setup();
      await registerNode(ctx, opts);
      const start = clock.now();
      client.clearActions();
      const updates: number[] = [];
      client.prependReactor("update", "leases", () => {
        updates.push(clock.now() - start);
        return undefined;
      });
      const run = runNodeLease(ctx, opts);
      await clock.advance(35_000);
      abort.abort();
      await run;
      expect(client.actions.filter((a) => a.verb === "create" && a.resource === "leases").length).toBe(1);
      // Then every 10 s plus the jitter (0.04 * r of the interval).
      const jittered = 10_000 + Math.floor(r * LEASE_RENEW_JITTER * 10_000);
      expect(updates.slice(1).map((t, i) => t - updates[i])).toEqual(Array.from({ length: updates.length - 1 }, () => jittered));
      firstRenewals.push(updates[0]);
      vi.restoreAllMocks();
    }
    expect(firstRenewals).toEqual([0, 2_500, 5_000, 7_500, 9_990]);
    // With the real generator: within the interval, and the later ones between 100 % and 104 % of it.
    for (let i = 0; i < 200; i++) {
      const first = leaseSleepMs(10_000, true);
      expect(first).toBeGreaterThanOrEqual(0);
      expect(first).toBeLessThan(10_000);
      const later = leaseSleepMs(10_000, false);
      expect(later).toBeGreaterThanOrEqual(10_000);
      expect(later).toBeLessThan(10_400);
    }
  });

  it("takes the Lease's owner from the node informer's cache without a GET", async () => {
    const { client, clock, opts, ctx, abort } = setup();
    await registerNode(ctx, opts);
    const { informer, cache } = fakeNodeInformer();
    cache.upsert(nodeOf(client));
    client.clearActions();
    const run = runNodeLease(ctx, { ...opts, nodes: informer });
    await clock.advance(20_000);
    expect(leaseOf(client).metadata.ownerReferences).toEqual([{ apiVersion: "v1", kind: "Node", name: "n1", uid: nodeOf(client).metadata.uid }]);
    expect(client.actions.filter((a) => a.verb === "get" && a.resource === "nodes")).toEqual([]);
    abort.abort();
    await run;
  });

  it("after a conflict refetches the Lease and renews it", async () => {
    const { client, clock, opts, ctx, abort } = setup();
    await registerNode(ctx, opts);
    const run = runNodeLease(ctx, opts);
    await clock.advance(10_000); // created and renewed once
    // Someone else writes the Lease: our copy is stale.
    const l = leaseOf(client);
    const before = Date.parse(l.spec!.renewTime!);
    await client.resource<Lease>("coordination.k8s.io", "leases").update({ ...l, metadata: { ...l.metadata, labels: { touched: "yes" } } });
    client.clearActions();
    await clock.advance(10_000);
    expect(client.actions.map((a) => `${a.verb} ${a.resource}`).slice(0, 3)).toEqual(["update leases", "get leases", "update leases"]);
    const after = leaseOf(client);
    expect(after.metadata.labels).toEqual({ touched: "yes" });
    expect(Date.parse(after.spec!.renewTime!)).toBeGreaterThan(before);
    abort.abort();
    await run;
  });

  it("recreates the Lease when it was deleted", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0.5); // renewals at 5 s, then every 10.2 s
    const { client, clock, opts, ctx, abort } = setup();
    await registerNode(ctx, opts);
    const run = runNodeLease(ctx, opts);
    await clock.advance(10_000);
    await client.resource("coordination.k8s.io", "leases").delete("kube-node-lease", "n1");
    // The next renewal comes within one interval plus its 4 % jitter.
    await clock.advance(10_500);
    expect(leaseOf(client)?.spec?.holderIdentity).toBe("n1");
    abort.abort();
    await run;
  });
});

describe("runNodeStatus", () => {
  it("patches the status when it changes, records NodeReady/NodeNotReady, and re-sends an unchanged status every 5 minutes", async () => {
    const { client, clock, recorder, opts, ctx, abort } = setup();
    await registerNode(ctx, opts);
    recorder.events.length = 0;
    client.clearActions();
    let readiness = { ready: true, message: "" };
    const run = runNodeStatus(ctx, opts, () => readiness);
    await clock.advance(0);
    const patches = () => client.writeActions().filter((a) => a.verb === "patch" && a.subresource === "status");
    expect(patches().length).toBe(1);
    let n = nodeOf(client);
    expect(cond(n, "Ready")).toMatchObject({ status: "True", reason: "KubeletReady", message: "kubelet is posting ready status", lastTransitionTime: "2024-01-01T00:00:00Z" });
    expect(recorder.events).toEqual(["Normal NodeReady Node n1 status is now: NodeReady"]);

    // Nothing changed but heartbeat times: no patch.
    await clock.advance(30_000);
    expect(patches().length).toBe(1);

    readiness = { ready: false, message: "PLEG is not healthy: pleg has yet to be successful" };
    await clock.advance(10_000);
    expect(patches().length).toBe(2);
    n = nodeOf(client);
    expect(cond(n, "Ready")).toMatchObject({ status: "False", reason: "KubeletNotReady", message: "PLEG is not healthy: pleg has yet to be successful", lastTransitionTime: "2024-01-01T00:00:40Z" });
    expect(cond(n, "MemoryPressure")?.lastHeartbeatTime).toBe("2024-01-01T00:00:40Z");
    expect(recorder.events.at(-1)).toBe("Normal NodeNotReady Node n1 status is now: NodeNotReady");

    // Unchanged for 5 minutes: re-sent once.
    await clock.advance(NODE_STATUS_REPORT_FREQUENCY_MS - 10_000);
    expect(patches().length).toBe(2);
    await clock.advance(10_000);
    expect(patches().length).toBe(3);
    expect(cond(nodeOf(client), "Ready")?.lastTransitionTime).toBe("2024-01-01T00:00:40Z");
    expect(recorder.events.filter((e) => e.includes("NodeNotReady")).length).toBe(1);
    abort.abort();
    await run;
  });

  it("re-reports Ready when another component marked the node Unknown, keeping conditions it does not own", async () => {
    const { client, clock, opts, ctx, abort } = setup();
    await registerNode(ctx, opts);
    const run = runNodeStatus(ctx, opts, () => ({ ready: true, message: "" }));
    await clock.advance(0);
    client.clearActions();
    // The node lifecycle controller: Ready Unknown (lease lapsed) and a condition of its own.
    const n = nodeOf(client);
    n.status!.conditions = [
      ...n.status!.conditions!.filter((c) => c.type !== "Ready"),
      { type: "Ready", status: "Unknown", reason: "NodeStatusUnknown", message: "Kubelet stopped posting node status." },
      { type: "NetworkUnavailable", status: "False", reason: "RouteCreated" },
    ];
    await client.resource<Node>("", "nodes").updateStatus(n);
    await clock.advance(10_000);
    const after = nodeOf(client);
    expect(cond(after, "Ready")).toMatchObject({ status: "True", reason: "KubeletReady", lastTransitionTime: "2024-01-01T00:00:10Z" });
    expect(cond(after, "NetworkUnavailable")?.reason).toBe("RouteCreated");
    abort.abort();
    await run;
  });

  describe("with a node informer", () => {
    const gets = (client: FakeClient) => client.actions.filter((a) => a.verb === "get" && a.resource === "nodes").length;
    const patches = (client: FakeClient) => client.writeActions().filter((a) => a.verb === "patch" && a.subresource === "status").length;

    it("reads the Node from the cache: no GET when the cache has it, patches only on change", async () => {
      const { client, clock, recorder, opts, ctx, abort } = setup();
      await registerNode(ctx, opts);
      const { informer, cache } = fakeNodeInformer();
      cache.upsert(nodeOf(client));
      recorder.events.length = 0;
      client.clearActions();
      const run = runNodeStatus(ctx, { ...opts, nodes: informer }, () => ({ ready: true, message: "" }));
      await clock.advance(0);
      expect(gets(client)).toBe(0);
      expect(patches(client)).toBe(1);
      expect(cond(nodeOf(client), "Ready")?.status).toBe("True");
      cache.upsert(nodeOf(client)); // the watch delivers our patch
      await clock.advance(60_000);
      expect(gets(client)).toBe(0);
      expect(patches(client)).toBe(1);
      expect(recorder.events).toEqual(["Normal NodeReady Node n1 status is now: NodeReady"]);
      abort.abort();
      await run;
    });

    it("GETs the Node while the cache has no copy yet (just registered), then uses the cache", async () => {
      const { client, clock, opts, ctx, abort } = setup();
      await registerNode(ctx, opts);
      const { informer, cache } = fakeNodeInformer();
      client.clearActions();
      const run = runNodeStatus(ctx, { ...opts, nodes: informer }, () => ({ ready: true, message: "" }));
      await clock.advance(0);
      expect(gets(client)).toBe(1);
      expect(patches(client)).toBe(1);
      await clock.advance(10_000);
      expect(gets(client)).toBe(2); // still no copy
      cache.upsert(nodeOf(client));
      await clock.advance(30_000);
      expect(gets(client)).toBe(2);
      expect(patches(client)).toBe(1);
      abort.abort();
      await run;
    });

    it("notices Ready=Unknown written by someone else in the cache and re-reports Ready, keeping their conditions", async () => {
      const { client, clock, recorder, opts, ctx, abort } = setup();
      await registerNode(ctx, opts);
      const { informer, cache } = fakeNodeInformer();
      cache.upsert(nodeOf(client));
      const run = runNodeStatus(ctx, { ...opts, nodes: informer }, () => ({ ready: true, message: "" }));
      await clock.advance(0);
      cache.upsert(nodeOf(client));
      recorder.events.length = 0;
      client.clearActions();
      // The node lifecycle controller: Ready Unknown (lease lapsed) and a condition of its own.
      const n = structuredClone(nodeOf(client));
      n.status!.conditions = [
        ...n.status!.conditions!.filter((c) => c.type !== "Ready"),
        { type: "Ready", status: "Unknown", reason: "NodeStatusUnknown", message: "Kubelet stopped posting node status.", lastTransitionTime: "2024-01-01T00:00:05Z" },
        { type: "NetworkUnavailable", status: "False", reason: "RouteCreated" },
      ];
      cache.upsert(await client.resource<Node>("", "nodes").updateStatus(n));
      client.clearActions();
      await clock.advance(10_000);
      expect(gets(client)).toBe(0);
      expect(patches(client)).toBe(1);
      const after = nodeOf(client);
      expect(cond(after, "Ready")).toMatchObject({ status: "True", reason: "KubeletReady", lastTransitionTime: "2024-01-01T00:00:10Z" });
      expect(cond(after, "NetworkUnavailable")?.reason).toBe("RouteCreated");
      expect(recorder.events).toEqual(["Normal NodeReady Node n1 status is now: NodeReady"]);
      abort.abort();
      await run;
    });

    it("while the cache has not yet seen our last patch, judges against the patch's answer (no second patch or event)", async () => {
      const { client, clock, recorder, opts, ctx, abort } = setup();
      await registerNode(ctx, opts);
      const { informer, cache } = fakeNodeInformer();
      cache.upsert(nodeOf(client)); // Ready=False as registered; the watch then lags
      recorder.events.length = 0;
      client.clearActions();
      const run = runNodeStatus(ctx, { ...opts, nodes: informer }, () => ({ ready: true, message: "" }));
      await clock.advance(30_000);
      expect(patches(client)).toBe(1);
      expect(gets(client)).toBe(0);
      expect(recorder.events).toEqual(["Normal NodeReady Node n1 status is now: NodeReady"]);
      abort.abort();
      await run;
    });

    it("a round far behind schedule (the process was stopped) reads the Node from the server, not the cache", async () => {
      const { client, clock, recorder, opts, ctx, abort } = setup();
      await registerNode(ctx, opts);
      const { informer, cache } = fakeNodeInformer();
      // The wall clock as a stopped process sees it: time passes but no timer fires.
      let stoppedFor = 0;
      const wall = { now: () => clock.now() + stoppedFor, setTimeout: clock.setTimeout.bind(clock), sleep: clock.sleep.bind(clock) };
      const run = runNodeStatus(ctx, { ...opts, clock: wall, nodes: informer }, () => ({ ready: true, message: "" }));
      await clock.advance(0);
      cache.upsert(nodeOf(client));
      // Stopped 30 s: the node lifecycle controller set Ready Unknown; the watch has not delivered it.
      const n = structuredClone(nodeOf(client));
      n.status!.conditions = [...n.status!.conditions!.filter((c) => c.type !== "Ready"), { type: "Ready", status: "Unknown", reason: "NodeStatusUnknown", message: "Kubelet stopped posting node status." }];
      await client.resource<Node>("", "nodes").updateStatus(n);
      stoppedFor = 30_000;
      recorder.events.length = 0;
      client.clearActions();
      await clock.advance(10_000);
      expect(gets(client)).toBe(1);
      expect(patches(client)).toBe(1);
      expect(cond(nodeOf(client), "Ready")?.status).toBe("True");
      expect(recorder.events).toEqual(["Normal NodeReady Node n1 status is now: NodeReady"]);
      // Back on schedule: the cache again.
      cache.upsert(nodeOf(client));
      client.clearActions();
      await clock.advance(10_000);
      expect(gets(client)).toBe(0);
      abort.abort();
      await run;
    });

    it("a failed patch is retried from a fresh GET", async () => {
      const { client, clock, opts, ctx, abort } = setup();
      await registerNode(ctx, opts);
      const { informer, cache } = fakeNodeInformer();
      cache.upsert(nodeOf(client));
      client.clearActions();
      let failures = 1;
      client.prependReactor("patch", "nodes", () => (failures-- > 0 ? { error: fakeErrors.internal("etcd is down") } : undefined));
      const run = runNodeStatus(ctx, { ...opts, nodes: informer }, () => ({ ready: true, message: "" }));
      await clock.advance(0);
      expect(client.actions.map((a) => `${a.verb} ${a.resource}${a.subresource ? "/" + a.subresource : ""}`)).toEqual(["patch nodes/status", "get nodes", "patch nodes/status"]);
      expect(cond(nodeOf(client), "Ready")?.status).toBe("True");
      abort.abort();
      await run;
    });
  });
});
