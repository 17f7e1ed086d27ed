// The serverless scheduler against a FakeClient: sizes rounded up to Fargate's combinations, one
// instance per pod in the right profile-zone ConfigMap (never two, even from a stale cache), the
// bind once the Node is Ready, cleanup when the pod is deleted, finished or replaced, the resync's
// garbage collection, the profiles ConfigMap, and runServerless wired end to end over informers.

import { describe, expect, it, vi } from "vitest";
import type { ConfigMap, Node, Pod } from "../../api/index.ts";
import { newLogger } from "../../client/log.ts";
import { FakeClient, FakeClock, FakeRecorder, fakeErrors, fakeLister } from "../../client/testing.ts";
import type { ReconcileContext } from "../../client/types.ts";
import { findResource, type ResourceInfo } from "../../api/index.ts";
import { cloudConfigMap, parseCloudConfigMap, type CloudGroupState } from "./cloudapi.ts";
import {
  podServerlessRequest,
  roundToServerlessSize,
  runServerless,
  serverlessInstanceName,
  ServerlessController,
  writeServerlessProfiles,
} from "./serverless.ts";
import type { CloudInstance, Topology } from "./types.ts";

const Mi = 1024 ** 2;
const Gi = 1024 ** 3;
const NS = "serverless";
const UID = "0123abcd-45ef-6789-abcd-ef0123456789";
const ctx = (): ReconcileContext => ({ signal: new AbortController().signal, log: newLogger("test"), reconcileID: "test" });

const topology: Topology = {
  region: "local-1",
  zones: [
    { name: "local-1a", subnet: "127.64.0.0/16" },
    { name: "local-1b", subnet: "127.65.0.0/16" },
    { name: "local-1c", subnet: "127.66.0.0/16" },
  ],
  instanceTypes: {},
  nodeGroups: [],
  serverless: [{ name: "serverless", zones: ["local-1b", "local-1c"], selectors: [{ namespace: NS, labels: {} }] }],
};

interface PodOpts {
  name?: string;
  uid?: string;
  requests?: Record<string, string>[];
  initRequests?: Record<string, string>[];
  nodeName?: string;
  phase?: "Pending" | "Running" | "Succeeded" | "Failed";
  nodeSelector?: Record<string, string>;
  annotation?: string | null;
}

function pod(o: PodOpts = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: o.name ?? "lambda",
      namespace: NS,
      uid: o.uid ?? UID,
      ...(o.annotation === null ? {} : { annotations: { "kubelab.io/serverless-profile": o.annotation ?? "serverless" } }),
    },
    spec: {
      schedulerName: "kubelab-serverless-scheduler",
      containers: (o.requests ?? [{}]).map((r, i) => ({ name: `c${i}`, image: "busybox", resources: { requests: r } })),
      ...(o.initRequests ? { initContainers: o.initRequests.map((r, i) => ({ name: `i${i}`, image: "busybox", resources: { requests: r } })) } : {}),
      ...(o.nodeName ? { nodeName: o.nodeName } : {}),
      ...(o.nodeSelector ? { nodeSelector: o.nodeSelector } : {}),
    },
    status: { phase: o.phase ?? "Pending" },
  };
}

function instance(name: string, podKey: string | undefined): CloudInstance {
  return { name, id: "i-0123456789abcdef0", launchTime: "2024-01-01T00:00:00Z", ...(podKey ? { pod: podKey } : {}) };
}

function serverlessCM(zone: string, instances: CloudInstance[], profile = "serverless"): ConfigMap {
  const s: CloudGroupState = { kind: "serverless", group: profile, zone, minSize: 0, maxSize: Number.MAX_SAFE_INTEGER, desiredCapacity: instances.length, instances };
  return cloudConfigMap(`kubelab-serverless-${profile}-${zone}`, s);
}

function node(name: string, ready: boolean): Node {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name, labels: { "kubelab.io/compute-type": "serverless" } },
    status: { conditions: [{ type: "Ready", status: ready ? "True" : "False" }] },
  };
}

/** A controller over listers preloaded with `cached` (default: what the client holds) and a client seeded with `objects`. */
function fixture(objects: (Pod | Node | ConfigMap)[], cached?: (Pod | Node | ConfigMap)[]) {
  const client = new FakeClient(objects);
  const recorder = new FakeRecorder();
  const seen = cached ?? objects;
  const ctrl = new ServerlessController({
    client,
    topology,
    pods: fakeLister(seen.filter((o): o is Pod => o.kind === "Pod")),
    nodes: fakeLister(seen.filter((o): o is Node => o.kind === "Node")),
    configMaps: fakeLister(seen.filter((o): o is ConfigMap => o.kind === "ConfigMap")),
    recorder,
    clock: new FakeClock(Date.UTC(2024, 0, 1)),
  });
  const instancesIn = (zone: string): CloudInstance[] => {
    const cm = client.tracker("", "configmaps", "kube-system", `kubelab-serverless-serverless-${zone}`) as ConfigMap | undefined;
    if (!cm) return [];
    const s = parseCloudConfigMap(cm);
    if (s instanceof Error) throw s;
    return s.instances;
  };
  return { client, recorder, ctrl, instancesIn };
}

describe("serverless sizes", () => {
  it.each([
    ["no requests: the smallest size, 0.25 vCPU / 0.5 GB", 0, 256 * Mi, "250m", "512Mi"],
    ["memory just over a step rounds up to the next GB", 250, 1 * Gi + 256 * Mi, "250m", "2Gi"],
    ["memory over what 0.25 vCPU offers moves to 0.5 vCPU", 250, 2 * Gi + 256 * Mi, "500m", "3Gi"],
    ["cpu rounds up to a whole vCPU with its smallest memory", 600, 256 * Mi, "1", "2Gi"],
    ["3 vCPU takes the 4 vCPU row, whose memory starts at 8 GB", 3000, 1 * Gi, "4", "8Gi"],
    ["2 vCPU over 16 GB moves to 4 vCPU in 1 GB steps", 2000, 16 * Gi + 1, "4", "17Gi"],
    ["8 vCPU goes in 4 GB steps", 8000, 21 * Gi, "8", "24Gi"],
    ["over 60 GB needs 16 vCPU, in 8 GB steps", 8000, 61 * Gi, "16", "64Gi"],
  ])("%s", (_name, milliCPU, memory, cpu, mem) => {
    expect(roundToServerlessSize(milliCPU, memory)).toMatchObject({ cpu, memory: mem });
  });

  it("has no size above 16 vCPU or 120 GB", () => {
    expect(roundToServerlessSize(16001, Gi)).toBeUndefined();
    expect(roundToServerlessSize(1000, 120 * Gi + 1)).toBeUndefined();
    expect(roundToServerlessSize(16000, 120 * Gi)).toMatchObject({ cpu: "16", memory: "120Gi" });
  });

  it("counts the max of the containers' sum and each init container, plus 256Mi", () => {
    const p = pod({ requests: [{ cpu: "100m", memory: "256Mi" }, { cpu: "200m", memory: "256Mi" }], initRequests: [{ cpu: "1", memory: "100Mi" }] });
    expect(podServerlessRequest(p)).toEqual({ milliCPU: 1000, memoryBytes: 768 * Mi });
  });

  it("names the node <profile>-<zone>-<10 hex digits of the uid>, a DNS label even for long names", () => {
    expect(serverlessInstanceName("serverless", "local-1b", pod())).toBe("serverless-local-1b-0123abcd45");
    const long = serverlessInstanceName("a".repeat(50), "local-1b", pod());
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(long.endsWith("-0123abcd45")).toBe(true);
  });
});

describe("ServerlessController", () => {
  it("launches one instance for a pending pod, sized and labelled for it, in the profile's first zone", async () => {
    const p = pod({ requests: [{ cpu: "500m", memory: "1Gi" }] });
    const f = fixture([p]);
    await f.ctrl.reconcile(ctx(), `${NS}/lambda`);
    const writes = f.client.writeActions();
    expect(writes.map((a) => `${a.verb} ${a.resource} ${a.name}`)).toEqual(["create configmaps kubelab-serverless-serverless-local-1b"]);
    const cm = writes[0]!.object as ConfigMap;
    expect(cm.metadata.labels).toEqual({ "kubelab.io/cloud": "serverless", "kubelab.io/nodegroup": "serverless", "topology.kubernetes.io/zone": "local-1b" });
    const [inst, ...rest] = f.instancesIn("local-1b");
    expect(rest).toEqual([]);
    expect(inst).toMatchObject({ name: "serverless-local-1b-0123abcd45", pod: `${NS}/lambda`, launchTime: "2024-01-01T00:00:00Z" });
    expect(inst!.id).toMatch(/^i-[0-9a-f]{17}$/);
    expect(inst!.template).toEqual({
      // 0.5 vCPU, 1Gi + 256Mi → 2 GB.
      capacity: { cpu: "500m", memory: "2Gi", pods: "1", "ephemeral-storage": "20Gi" },
      labels: {
        "node.kubernetes.io/instance-type": "serverless",
        "kubelab.io/compute-type": "serverless",
        "kubelab.io/nodegroup": "serverless",
        "topology.kubernetes.io/zone": "local-1b",
        "topology.kubernetes.io/region": "local-1",
      },
      taints: [{ key: "kubelab.io/compute-type", value: "serverless", effect: "NoSchedule" }],
    });
    expect(f.recorder.events).toEqual([`Normal LaunchingServerlessNode Launching serverless node serverless-local-1b-0123abcd45 (0.5 vCPU, 2 GB) in local-1b for pod ${NS}/lambda`]);
  });

  it("spreads to the zone with the fewest instances, unless the pod's node selector names a zone", async () => {
    const busy = serverlessCM("local-1b", [instance("serverless-local-1b-ffffffffff", `${NS}/other`)]);
    const f = fixture([pod(), busy]);
    await f.ctrl.reconcile(ctx(), `${NS}/lambda`);
    expect(f.instancesIn("local-1c").map((i) => i.name)).toEqual(["serverless-local-1c-0123abcd45"]);

    const g = fixture([pod({ nodeSelector: { "topology.kubernetes.io/zone": "local-1b" } }), busy]);
    await g.ctrl.reconcile(ctx(), `${NS}/lambda`);
    expect(g.instancesIn("local-1b").map((i) => i.name)).toEqual(["serverless-local-1b-ffffffffff", "serverless-local-1b-0123abcd45"]);
    expect(g.instancesIn("local-1c")).toEqual([]);
  });

  it("leaves a pod no profile zone can take Pending with a FailedScheduling warning", async () => {
    const cases: [Pod, RegExp][] = [
      [pod({ nodeSelector: { "topology.kubernetes.io/zone": "local-1a" } }), /0\/2 zones of serverless profile "serverless" \(local-1b, local-1c\) match the pod's node selector/],
      [pod({ requests: [{ cpu: "17" }] }), /more than the largest serverless size \(16 vCPU, 120Gi\)/],
      [pod({ annotation: "nope" }), /serverless profile "nope" .* does not exist/],
    ];
    for (const [p, message] of cases) {
      const f = fixture([p]);
      await f.ctrl.reconcile(ctx(), `${NS}/lambda`);
      expect(f.client.writeActions()).toEqual([]);
      expect(f.recorder.events).toHaveLength(1);
      expect(f.recorder.events[0]).toMatch(/^Warning FailedScheduling /);
      expect(f.recorder.events[0]).toMatch(message);
    }
  });

  it("picks the profile by selector when the pod has no annotation", async () => {
    const f = fixture([pod({ annotation: null })]);
    await f.ctrl.reconcile(ctx(), `${NS}/lambda`);
    expect(f.instancesIn("local-1b")).toHaveLength(1);
  });

  it("never launches a second instance for a pod, even when the cache has not seen the first", async () => {
    const f = fixture([pod()]);
    await f.ctrl.reconcile(ctx(), `${NS}/lambda`);
    // Another pod fills local-1b meanwhile, so a fresh zone choice would now pick local-1c.
    const cm = f.client.tracker("", "configmaps", "kube-system", "kubelab-serverless-serverless-local-1b") as ConfigMap;
    const s = parseCloudConfigMap(cm) as CloudGroupState;
    s.instances.push(instance("serverless-local-1b-eeeeeeeeee", `${NS}/x`), instance("serverless-local-1b-dddddddddd", `${NS}/y`));
    await f.client.resource<ConfigMap>("", "configmaps").update(cloudConfigMap(cm.metadata.name!, s, cm));
    f.client.clearActions();
    // The listers still show no ConfigMap at all.
    await f.ctrl.reconcile(ctx(), `${NS}/lambda`);
    await f.ctrl.reconcile(ctx(), `${NS}/lambda`);
    expect(f.client.writeActions()).toEqual([]);
    expect(f.instancesIn("local-1c")).toEqual([]);
    expect(f.instancesIn("local-1b").filter((i) => i.pod === `${NS}/lambda`)).toHaveLength(1);
    expect(f.recorder.events.filter((e) => e.includes("LaunchingServerlessNode"))).toHaveLength(1);
  });

  it("waits for the Node to be Ready, then binds the pod to it with a Scheduled event", async () => {
    const name = "serverless-local-1b-0123abcd45";
    const cm = serverlessCM("local-1b", [instance(name, `${NS}/lambda`)]);
    const notReady = fixture([pod(), cm, node(name, false)]);
    await notReady.ctrl.reconcile(ctx(), `${NS}/lambda`);
    expect(notReady.client.writeActions()).toEqual([]);

    const f = fixture([pod(), cm, node(name, true)]);
    await f.ctrl.reconcile(ctx(), `${NS}/lambda`);
    const writes = f.client.writeActions();
    expect(writes.map((a) => `${a.verb} ${a.namespace}/${a.name}`)).toEqual([`bind ${NS}/lambda`]);
    expect(writes[0]!.object).toMatchObject({ metadata: { uid: UID }, target: { kind: "Node", name } });
    expect((f.client.tracker("", "pods", NS, "lambda") as Pod).spec?.nodeName).toBe(name);
    expect(f.recorder.events).toEqual([`Normal Scheduled Successfully assigned ${NS}/lambda to ${name}`]);
  });

  it("treats a bind that lost a race (already bound, or pod gone) as done, without a Scheduled event", async () => {
    const name = "serverless-local-1b-0123abcd45";
    const cm = serverlessCM("local-1b", [instance(name, `${NS}/lambda`)]);
    const bound = fixture([pod({ nodeName: name }), cm, node(name, true)], [pod(), cm, node(name, true)]);
    await bound.ctrl.reconcile(ctx(), `${NS}/lambda`);
    const gone = fixture([cm, node(name, true)], [pod(), cm, node(name, true)]);
    gone.client.prependReactor("bind", "pods", () => ({ error: fakeErrors.notFound(findResource("", "v1", "pods") as ResourceInfo, "lambda") }));
    await gone.ctrl.reconcile(ctx(), `${NS}/lambda`);
    expect(bound.recorder.events).toEqual([]);
    expect(gone.recorder.events).toEqual([]);
  });

  it("terminates the instance and deletes the Node when the pod is deleted", async () => {
    const name = "serverless-local-1b-0123abcd45";
    const keep = instance("serverless-local-1b-ffffffffff", `${NS}/other`);
    const f = fixture([serverlessCM("local-1b", [instance(name, `${NS}/lambda`), keep]), node(name, true), pod({ name: "other", uid: "ffffffff-ffff" })]);
    await f.ctrl.reconcile(ctx(), `${NS}/lambda`);
    expect(f.client.writeActions().map((a) => `${a.verb} ${a.resource} ${a.name}`)).toEqual(["update configmaps kubelab-serverless-serverless-local-1b", `delete nodes ${name}`]);
    expect(f.instancesIn("local-1b")).toEqual([keep]);
    expect(f.client.tracker("", "nodes", "", name)).toBeUndefined();
    // Again (the Node already gone): nothing more to do, and no error.
    await f.ctrl.reconcile(ctx(), `${NS}/lambda`);
  });

  it("terminates the node of a pod that finished", async () => {
    const name = "serverless-local-1b-0123abcd45";
    for (const phase of ["Succeeded", "Failed"] as const) {
      const f = fixture([serverlessCM("local-1b", [instance(name, `${NS}/lambda`)]), node(name, true), pod({ nodeName: name, phase })]);
      await f.ctrl.reconcile(ctx(), `${NS}/lambda`);
      expect(f.instancesIn("local-1b")).toEqual([]);
      expect(f.client.tracker("", "nodes", "", name)).toBeUndefined();
    }
  });

  it("replaces the instance of a pod recreated under the same name (another uid)", async () => {
    const old = "serverless-local-1b-9999999999";
    const f = fixture([serverlessCM("local-1b", [instance(old, `${NS}/lambda`)]), node(old, true), pod()]);
    await f.ctrl.reconcile(ctx(), `${NS}/lambda`);
    expect(f.client.tracker("", "nodes", "", old)).toBeUndefined();
    expect(f.instancesIn("local-1b").map((i) => i.name)).toEqual(["serverless-local-1b-0123abcd45"]);
  });

  it("terminates the node launched for a pod that was bound elsewhere, and launches nothing for it", async () => {
    const name = "serverless-local-1b-0123abcd45";
    const f = fixture([serverlessCM("local-1b", [instance(name, `${NS}/lambda`)]), node(name, true), pod({ nodeName: "somewhere-else" })]);
    await f.ctrl.reconcile(ctx(), `${NS}/lambda`);
    expect(f.instancesIn("local-1b")).toEqual([]);
    expect(f.instancesIn("local-1c")).toEqual([]);
    expect(f.client.tracker("", "nodes", "", name)).toBeUndefined();
  });

  it("leaves the instance of a running pod bound to it alone", async () => {
    const name = "serverless-local-1b-0123abcd45";
    const f = fixture([serverlessCM("local-1b", [instance(name, `${NS}/lambda`)]), node(name, true), pod({ nodeName: name, phase: "Running" })]);
    await f.ctrl.reconcile(ctx(), `${NS}/lambda`);
    expect(f.client.writeActions()).toEqual([]);
    expect(f.recorder.events).toEqual([]);
  });

  it("resync: requeues every instance's pod, terminates instances naming no pod, deletes serverless Nodes without an instance", async () => {
    const a = "serverless-local-1b-0123abcd45";
    const orphan = "serverless-local-1c-7777777777";
    const stray = "serverless-local-1c-8888888888";
    const objects = [serverlessCM("local-1b", [instance(a, `${NS}/lambda`)]), serverlessCM("local-1c", [instance(orphan, undefined)]), node(a, true), node(orphan, true), node(stray, true), pod()];
    const f = fixture(objects);
    const added: string[] = [];
    await f.ctrl.resync(ctx(), { add: (k) => added.push(k) });
    expect(added).toEqual([`${NS}/lambda`]);
    expect(f.instancesIn("local-1c")).toEqual([]);
    expect(f.instancesIn("local-1b").map((i) => i.name)).toEqual([a]);
    expect(f.client.trackerList("", "nodes").map((n) => n.metadata.name)).toEqual([a]);
  });
});

describe("writeServerlessProfiles", () => {
  it("creates the profiles ConfigMap (also for no profiles), updates it when the profiles change, and leaves it when they do not", async () => {
    const client = new FakeClient();
    const read = (): string | undefined => (client.tracker("", "configmaps", "kube-system", "kubelab-serverless-profiles") as ConfigMap | undefined)?.data?.profiles;
    await writeServerlessProfiles(client, []);
    expect(read()).toBe("[]");
    await writeServerlessProfiles(client, topology.serverless);
    expect(JSON.parse(read()!)).toEqual(topology.serverless);
    client.clearActions();
    await writeServerlessProfiles(client, topology.serverless);
    expect(client.writeActions()).toEqual([]);
  });
});

describe("runServerless", () => {
  /** In-memory watches deliver at once; the margin is for a loaded machine. */
  const WAIT = { timeout: 5000, interval: 10 };

  it("publishes the profiles, launches a node for a pod, binds the pod once the Node is Ready, and cleans up after its deletion", async () => {
    const client = new FakeClient([pod()]);
    const ac = new AbortController();
    const log = newLogger("test");
    const done = runServerless({ signal: ac.signal, log }, { client, topology, log });
    const name = "serverless-local-1b-0123abcd45";
    const instances = (): CloudInstance[] => {
      const cm = client.tracker("", "configmaps", "kube-system", "kubelab-serverless-serverless-local-1b") as ConfigMap | undefined;
      return cm ? (parseCloudConfigMap(cm) as CloudGroupState).instances : [];
    };
    try {
      await vi.waitFor(() => expect(instances().map((i) => i.name)).toEqual([name]), WAIT);
      expect(client.tracker("", "configmaps", "kube-system", "kubelab-serverless-profiles")?.metadata.name).toBe("kubelab-serverless-profiles");
      // The zone's pool registers the Node; the kubelet reports Ready.
      await client.resource<Node>("", "nodes").create("", node(name, true));
      await vi.waitFor(() => expect((client.tracker("", "pods", NS, "lambda") as Pod).spec?.nodeName).toBe(name), WAIT);
      await client.resource<Pod>("", "pods").delete(NS, "lambda");
      await vi.waitFor(() => {
        expect(instances()).toEqual([]);
        expect(client.tracker("", "nodes", "", name)).toBeUndefined();
      }, WAIT);
      const events = client.trackerList("", "events").map((e) => (e as { reason?: string }).reason);
      expect(events).toEqual(expect.arrayContaining(["LaunchingServerlessNode", "Scheduled"]));
    } finally {
      ac.abort();
      await done;
    }
  });
});
