// Persistent volumes and a zone outage (P6 acceptance): a one-replica Deployment on a kubelab-zonal
// claim and one on a kubelab-regional claim each write a file; the kubelet pools of their zones stop
// (SIGSTOP, so `kubelab up` does not restart them); after --node-monitor-grace-period and the pods'
// tolerationSeconds the pods are evicted. The zonal replacement cannot leave its volume's zone and
// stays Pending with upstream's "volume node affinity conflict"; the regional one runs in a live zone
// and reads what the first pod wrote.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startKubelab, type Kubelab } from "./harness/kubelab.ts";
import { poll as pollEvery } from "./harness/poll.ts";

const poll = <T,>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 120_000): Promise<T> => pollEvery(what, fn, timeoutMs, 500);

let k: Kubelab;
const paused: number[] = [];

interface Obj {
  metadata: { name: string; labels?: Record<string, string>; deletionTimestamp?: string };
  spec?: { nodeName?: string; volumeName?: string };
  status?: { phase?: string; conditions?: { type: string; status: string }[] };
  reason?: string;
  message?: string;
}

const ZONE = "topology.kubernetes.io/zone";

async function kc(args: string[], input?: string): Promise<string> {
  const r = await k.kubectl(args, { input, timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}
async function get(args: string[]): Promise<Obj> {
  return JSON.parse(await kc([...args, "-o", "json"])) as Obj;
}
async function list(args: string[]): Promise<Obj[]> {
  return (JSON.parse(await kc([...args, "-o", "json"])) as { items: Obj[] }).items;
}

const app = (name: string, storageClass: string): string => `
apiVersion: v1
kind: PersistentVolumeClaim
metadata: { name: ${name} }
spec:
  storageClassName: ${storageClass}
  accessModes: [ReadWriteOnce]
  resources: { requests: { storage: 1Gi } }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name} }
spec:
  replicas: 1
  selector: { matchLabels: { app: ${name} } }
  template:
    metadata: { labels: { app: ${name} } }
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: main
          image: busybox
          command: ["sh", "-c", "cat /data/f; echo hello from ${name} > /data/f; sleep 3600"]
          volumeMounts: [{ name: data, mountPath: /data }]
      volumes:
        - name: data
          persistentVolumeClaim: { claimName: ${name} }
`;

async function livePods(app: string): Promise<Obj[]> {
  return (await list(["get", "pods", "-l", `app=${app}`])).filter((p) => !p.metadata.deletionTimestamp);
}

async function logsOf(pod: string, want: string): Promise<string> {
  return poll(`logs of ${pod} with "${want}"`, async () => {
    const r = await k.kubectl(["logs", pod]);
    return r.code === 0 && r.stdout.includes(want) ? r.stdout : undefined;
  }, 60_000);
}

beforeAll(async () => {
  k = await startKubelab({
    nodes: true,
    extraArgs: ["--node-monitor-grace-period", "10s", "--default-not-ready-toleration-seconds", "5", "--default-unreachable-toleration-seconds", "5"],
  });
}, 180_000);

afterAll(async () => {
  for (const pid of paused.splice(0)) {
    try {
      process.kill(pid, "SIGCONT");
    } catch {
      // already gone
    }
  }
  await k?.stop({ clean: true });
});

describe("persistent volumes when a zone goes down", () => {
  it("the zonal claim's replacement pod stays Pending (volume node affinity conflict); the regional one runs in another zone and reads the file", async () => {
    const nodes = await poll("6 Ready nodes", async () => {
      const n = await list(["get", "nodes"]);
      return n.length === 6 && n.every((x) => x.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")) ? n : undefined;
    });
    const zoneOf = Object.fromEntries(nodes.map((n) => [n.metadata.name, n.metadata.labels?.[ZONE] ?? ""]));

    await kc(["apply", "-f", "-"], app("zonal", "kubelab-zonal") + "---" + app("regional", "kubelab-regional"));
    const first: Record<string, Obj> = {};
    const firstZone: Record<string, string> = {};
    for (const name of ["zonal", "regional"]) {
      first[name] = await poll(`the ${name} pod Running`, async () => (await livePods(name)).find((p) => p.status?.phase === "Running"));
      firstZone[name] = zoneOf[first[name].spec!.nodeName!]!;
      await logsOf(first[name].metadata.name, "can't open '/data/f'");
    }
    const zonalPV = await get(["get", "pv", (await get(["get", "pvc", "zonal"])).spec!.volumeName!]);
    expect(zonalPV.metadata.labels?.[ZONE]).toBe(firstZone.zonal);
    const regionalPV = await get(["get", "pv", (await get(["get", "pvc", "regional"])).spec!.volumeName!]);
    expect(regionalPV.metadata.labels?.[ZONE]).toBeUndefined();

    // Take down the zone of each first pod (one zone or two; at least one zone stays up).
    const downZones = [...new Set(Object.values(firstZone))];
    const up = JSON.parse(readFileSync(join(k.dataDir, "up.json"), "utf8")) as { components: { name: string; pid?: number }[] };
    for (const z of downZones) {
      const pool = up.components.find((c) => c.name === `kubelet-${z}`);
      expect(pool?.pid, `the kubelet-${z} pool in up.json`).toBeGreaterThan(0);
      process.kill(pool!.pid!, "SIGSTOP");
      paused.push(pool!.pid!);
    }
    const downNodes = nodes.filter((n) => downZones.includes(zoneOf[n.metadata.name]!)).map((n) => n.metadata.name);
    await poll(`the nodes of ${downZones.join(", ")} not Ready`, async () => {
      const n = (await list(["get", "nodes"])).filter((x) => downNodes.includes(x.metadata.name));
      return n.every((x) => x.status?.conditions?.find((c) => c.type === "Ready")?.status !== "True") ? n : undefined;
    });

    // Regional: the replacement runs outside the stopped zones and reads the first pod's file.
    const regional = await poll("a regional replacement Running in a live zone", async () =>
      (await livePods("regional")).find((p) => p.metadata.name !== first.regional.metadata.name && p.status?.phase === "Running"),
    );
    expect(downZones).not.toContain(zoneOf[regional.spec!.nodeName!]);
    const out = await logsOf(regional.metadata.name, "hello from regional");
    expect(out).not.toContain("can't open");

    // Zonal: the replacement is created but cannot be placed: the volume's zone has no usable node.
    const zonal = await poll("a zonal replacement pod", async () => (await livePods("zonal")).find((p) => p.metadata.name !== first.zonal.metadata.name));
    const event = await poll("FailedScheduling for the zonal replacement", async () => {
      const events = await list(["get", "events", "--field-selector", `involvedObject.name=${zonal.metadata.name}`]);
      return events.find((e) => e.reason === "FailedScheduling");
    });
    expect(event.message).toMatch(/^0\/6 nodes are available: /);
    expect(event.message).toMatch(/\d+ node\(s\) had volume node affinity conflict/);
    const again = await get(["get", "pod", zonal.metadata.name]);
    expect(again.status?.phase).toBe("Pending");
    expect(again.spec?.nodeName).toBeUndefined();

    // The zones come back: the zonal replacement runs in its volume's zone and reads the file.
    for (const pid of paused.splice(0)) process.kill(pid, "SIGCONT");
    // (A replacement bound while its node still carries the NoExecute unreachable taint may be
    // evicted once more after its 5 s toleration: whichever zonal pod ends up Running counts.)
    const back = await poll("a zonal replacement Running", async () =>
      (await livePods("zonal")).find((p) => p.metadata.name !== first.zonal.metadata.name && p.status?.phase === "Running"),
    ).catch(async (e: unknown) => {
      // What stood in the way, for whoever reads a failed run.
      for (const args of [
        ["get", "pods", "-l", "app=zonal", "-o", "wide"],
        ["get", "events", "--sort-by", ".lastTimestamp"],
        ["get", "volumeattachments"],
        ["get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name} {.spec.taints} {.status.conditions[?(@.type==\"Ready\")].status} {.status.volumesAttached}{\"\\n\"}{end}"],
      ]) {
        const r = await k.kubectl(args);
        console.log(`$ kubectl ${args.join(" ")}\n${r.stdout.split("\n").slice(-40).join("\n")}${r.stderr}`);
      }
      throw e;
    });
    expect(zoneOf[back.spec!.nodeName!]).toBe(firstZone.zonal);
    await logsOf(back.metadata.name, "hello from zonal");
  }, 600_000);
});
