// Persistent volumes end to end under `kubelab up` (simulated pools in three zones), driven by the
// real kubectl: a WaitForFirstConsumer kubelab-zonal claim is provisioned in the zone of the node its
// pod was placed on, the pod's file outlives the pod, and a ReadWriteOnce volume is attached to one
// node at a time (Multi-Attach until the first pod is gone).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startKubelab, type Kubelab } from "./harness/kubelab.ts";
import { poll } from "./harness/poll.ts";

let k: Kubelab;

interface Obj {
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; deletionTimestamp?: string };
  spec?: { nodeName?: string; volumeName?: string; nodeAffinity?: unknown; csi?: { driver: string; volumeHandle: string } };
  status?: { phase?: string };
  reason?: string;
  message?: string;
  involvedObject?: { name: string };
}

async function kc(args: string[], input?: string): Promise<string> {
  const r = await k.kubectl(args, { input, timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}
async function get(args: string[]): Promise<Obj> {
  return JSON.parse(await kc([...args, "-o", "json"])) as Obj;
}
async function list(args: string[]): Promise<Obj[]> {
  return (JSON.parse(await kc([...args, "-o", "json"])) as { items: Obj[] }).items;
}

const ZONE = "topology.kubernetes.io/zone";

beforeAll(async () => {
  k = await startKubelab({ nodes: true });
}, 120_000);

afterAll(async () => {
  await k?.stop({ clean: true });
});

const claimAndDeployment = `
apiVersion: v1
kind: PersistentVolumeClaim
metadata: { name: data }
spec:
  storageClassName: kubelab-zonal
  accessModes: [ReadWriteOnce]
  resources: { requests: { storage: 1500Mi } }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: writer }
spec:
  replicas: 1
  selector: { matchLabels: { app: writer } }
  template:
    metadata: { labels: { app: writer } }
    spec:
      containers:
        - name: main
          image: busybox
          command: ["sh", "-c", "cat /data/f; echo hello > /data/f; sleep 3600"]
          volumeMounts: [{ name: data, mountPath: /data }]
      volumes:
        - name: data
          persistentVolumeClaim: { claimName: data }
`;

async function runningPod(selector: string, not?: string): Promise<Obj> {
  return poll(`a Running pod ${selector}`, async () => {
    const pods = (await list(["get", "pods", "-l", selector])).filter((p) => !p.metadata.deletionTimestamp && p.metadata.name !== not);
    return pods.find((p) => p.status?.phase === "Running");
  }, 90_000);
}

async function logsOf(pod: string, want: string): Promise<string> {
  return poll(`logs of ${pod} with "${want}"`, async () => {
    const out = await kc(["logs", pod]);
    return out.includes(want) ? out : undefined;
  }, 60_000);
}

describe("persistent volumes under kubelab up", () => {
  let volumeZone = "";
  let pvName = "";

  it("a one-replica Deployment's kubelab-zonal claim gets a PV in its node's zone, and the replacement pod reads what the first wrote", async () => {
    await kc(["apply", "-f", "-"], claimAndDeployment);
    const first = await runningPod("app=writer");
    const nodeName = first.spec!.nodeName!;
    const node = await get(["get", "node", nodeName]);
    const claim = await poll("the claim Bound", async () => {
      const c = await get(["get", "pvc", "data"]);
      return c.status?.phase === "Bound" ? c : undefined;
    });
    expect(claim.metadata.annotations?.["volume.kubernetes.io/selected-node"]).toBe(nodeName);
    pvName = claim.spec!.volumeName!;
    const pv = await get(["get", "pv", pvName]);
    volumeZone = pv.metadata.labels?.[ZONE] ?? "";
    expect(volumeZone).toBe(node.metadata.labels?.[ZONE]);
    expect(pv.spec?.csi?.driver).toBe("zonal.csi.kubelab.io");
    const attachments = await list(["get", "volumeattachments"]);
    expect(attachments.map((a) => (a.spec as { nodeName?: string } | undefined)?.nodeName)).toEqual([nodeName]);
    await logsOf(first.metadata.name, "can't open '/data/f'");

    await kc(["delete", "pod", first.metadata.name, "--wait=false"]);
    const second = await runningPod("app=writer", first.metadata.name);
    const secondNode = await get(["get", "node", second.spec!.nodeName!]);
    expect(secondNode.metadata.labels?.[ZONE]).toBe(volumeZone);
    const out = await logsOf(second.metadata.name, "hello");
    expect(out).not.toContain("can't open");
  }, 240_000);

  it("two pods on different nodes with one ReadWriteOnce claim: the second waits with Multi-Attach and starts once the first is deleted", async () => {
    await kc(["scale", "deployment", "writer", "--replicas=0"]);
    await poll("the writer pods gone", async () => (await list(["get", "pods", "-l", "app=writer"])).length === 0, 90_000);
    const nodes = (await list(["get", "nodes", "-l", `${ZONE}=${volumeZone}`])).map((n) => n.metadata.name).sort();
    expect(nodes.length).toBeGreaterThanOrEqual(2);
    const pod = (name: string, node: string): string => `
apiVersion: v1
kind: Pod
metadata: { name: ${name}, labels: { app: rwo } }
spec:
  nodeSelector: { kubernetes.io/hostname: ${node} }
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: busybox
      command: ["sh", "-c", "cat /data/f; sleep 3600"]
      volumeMounts: [{ name: data, mountPath: /data }]
  volumes:
    - name: data
      persistentVolumeClaim: { claimName: data }
`;
    await kc(["apply", "-f", "-"], pod("holder", nodes[0]!));
    await poll("holder Running", async () => (await get(["get", "pod", "holder"])).status?.phase === "Running", 90_000);
    await kc(["apply", "-f", "-"], pod("waiter", nodes[1]!));
    const event = await poll("a Multi-Attach event on waiter", async () => {
      const events = await list(["get", "events", "--field-selector", "involvedObject.name=waiter"]);
      return events.find((e) => e.reason === "FailedAttachVolume");
    }, 60_000);
    expect(event.message).toBe(`Multi-Attach error for volume "${pvName}" Volume is already used by pod(s) holder`);
    expect((await get(["get", "pod", "waiter"])).status?.phase).toBe("Pending");
    const mountEvents = await poll("a FailedMount event on waiter", async () => {
      const events = await list(["get", "events", "--field-selector", "involvedObject.name=waiter"]);
      return events.find((e) => e.reason === "FailedMount");
    }, 60_000);
    expect(mountEvents.message).toBe("Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[data]: timed out waiting for the condition");

    await kc(["delete", "pod", "holder", "--wait=false"]);
    await poll("waiter Running", async () => (await get(["get", "pod", "waiter"])).status?.phase === "Running", 90_000);
    await logsOf("waiter", "hello");
  }, 300_000);

  it("with its zone's nodes cordoned, a pod of the zonal claim stays Pending with upstream's volume node affinity conflict", async () => {
    await kc(["delete", "pod", "waiter", "--wait=false"]);
    await poll("the rwo pods gone", async () => (await list(["get", "pods", "-l", "app=rwo"])).length === 0, 90_000);
    const zoneNodes = (await list(["get", "nodes", "-l", `${ZONE}=${volumeZone}`])).map((n) => n.metadata.name);
    const all = await list(["get", "nodes"]);
    for (const n of zoneNodes) await kc(["cordon", n]);
    await kc(["scale", "deployment", "writer", "--replicas=1"]);
    const pod = await poll("a writer pod", async () => (await list(["get", "pods", "-l", "app=writer"]))[0], 60_000);
    const event = await poll("FailedScheduling for the writer pod", async () => {
      const events = await list(["get", "events", "--field-selector", `involvedObject.name=${pod.metadata.name}`]);
      return events.find((e) => e.reason === "FailedScheduling");
    }, 60_000);
    const n = all.length;
    expect(event.message).toBe(
      `0/${n} nodes are available: ${zoneNodes.length} node(s) were unschedulable, ${n - zoneNodes.length} node(s) had volume node affinity conflict. ` +
        `preemption: 0/${n} nodes are available: ${n} Preemption is not helpful for scheduling.`,
    );
    expect((await get(["get", "pod", pod.metadata.name])).spec?.nodeName).toBeUndefined();
    for (const z of zoneNodes) await kc(["uncordon", z]);
    await poll("the writer pod Running again in its volume's zone", async () => (await get(["get", "pod", pod.metadata.name])).status?.phase === "Running", 90_000);
  }, 300_000);
});
