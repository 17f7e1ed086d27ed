// Volumes bench: on `kubelab up` (6 simulated nodes in 3 zones, 110 pods each), N pods each with its
// own WaitForFirstConsumer kubelab-zonal claim (provisioned in the zone the scheduler picked, attached,
// mounted), create -> all Running; then, in the same run, the same N pods without volumes as the
// reference. Prints both and their ratio.

import { parseArgs } from "node:util";
import type { Namespace, Node, PersistentVolumeClaim, Pod } from "../api/core/v1.ts";
import { RestClient } from "../client/index.ts";
import { startKubelab, type Kubelab } from "../test/harness/kubelab.ts";
import { drive, pct, sleep, watchRunning } from "./util.ts";


interface Round {
  running: number;
  totalS: number;
  latency: number[];
}

/** Creates `total` pods (and, with `volumes`, one kubelab-zonal claim each) in namespace `ns`, `concurrency`
 * creates in flight; returns how many reached Running, create-of-the-first -> last Running, and per-pod latencies. */
async function round(client: RestClient, ns: string, total: number, volumes: boolean, concurrency: number, timeoutMs: number): Promise<Round> {
  await client.resource<Namespace>("", "namespaces").create("", { metadata: { name: ns } });
  await sleep(1000);
  const pods = client.resource<Pod>("", "pods");
  const claims = client.resource<PersistentVolumeClaim>("", "persistentvolumeclaims");
  const { createdAt, latency, all, stop } = await watchRunning(pods, ns, total);
  const started = performance.now();
  await drive(total, concurrency, async (i) => {
    const name = `p-${i}`;
    createdAt.set(name, performance.now());
    if (volumes) {
      await claims.create(ns, {
        apiVersion: "v1",
        kind: "PersistentVolumeClaim",
        metadata: { name },
        spec: { storageClassName: "kubelab-zonal", accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
      });
    }
    await pods.create(ns, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name },
      spec: {
        terminationGracePeriodSeconds: 0,
        containers: [{ name: "c", image: "busybox", command: ["sleep", "3600"], ...(volumes ? { volumeMounts: [{ name: "data", mountPath: "/data" }] } : {}) }],
        ...(volumes ? { volumes: [{ name: "data", persistentVolumeClaim: { claimName: name } }] } : {}),
      },
    });
  });
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([all, new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
  clearTimeout(timer);
  const totalS = (performance.now() - started) / 1000;
  await stop();
  latency.sort((a, b) => a - b);
  return { running: latency.length, totalS, latency };
}

/** Deletes the namespace's pods (grace 0) and waits until none is left, freeing the nodes' pod slots. */
async function drain(client: RestClient, ns: string): Promise<void> {
  const pods = client.resource<Pod>("", "pods");
  const names = (await pods.list(ns)).items.map((p) => p.metadata.name ?? "");
  await drive(names.length, 20, async (i) => {
    await pods.delete(ns, names[i]!, { gracePeriodSeconds: 0 }).catch(() => undefined);
  });
  for (let i = 0; ; i++) {
    const left = (await pods.list(ns)).items.length;
    if (left === 0) return;
    if (i > 1200) throw new Error(`${left} pods of ${ns} still there after 120 s`);
    await sleep(100);
  }
}

export async function runVolumesBench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      pods: { type: "string", default: "500" },
      concurrency: { type: "string", default: "20" },
      "timeout-seconds": { type: "string", default: "600" },
    },
  });
  const total = Number(values.pods);
  const concurrency = Number(values.concurrency);
  const timeoutMs = Number(values["timeout-seconds"]) * 1000;
  let k: Kubelab | undefined;
  let client: RestClient | undefined;
  try {
    // m5.2xlarge nodes hold 58 pods (their ENI limit): 500 pods need 9 of them.
    k = await startKubelab({ nodes: true, extraArgs: ["--nodes-per-zone", "3"] });
    client = RestClient.fromKubeconfig(k.kubeconfig, { userAgent: "kubelab-bench" });
    let nodes: Node[] = [];
    for (let i = 0; ; i++) {
      nodes = (await client.resource<Node>("", "nodes").list("")).items.filter((n) => n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"));
      if (nodes.length >= 9) break;
      if (i > 600) throw new Error(`only ${nodes.length} of 9 nodes became Ready`);
      await sleep(100);
    }
    const capacity = nodes.reduce((s, n) => s + Number(n.status?.allocatable?.pods ?? 110), 0);
    const existing = (await client.resource<Pod>("", "pods").list("")).items.length;
    if (total + existing > capacity) throw new Error(`--pods ${total} does not fit: the ${nodes.length} nodes hold ${capacity} pods and ${existing} are running`);

    // Warm-up (not measured): cold connections, JIT, the first provisioning.
    await round(client, "warmup", 30, true, concurrency, timeoutMs);
    await drain(client, "warmup");
    const vol = await round(client, "volumes", total, true, concurrency, timeoutMs);
    await drain(client, "volumes");
    const plain = await round(client, "plain", total, false, concurrency, timeoutMs);
    const line = (r: Round): string =>
      `${String(r.running).padStart(4)} of ${total} Running in ${r.totalS.toFixed(1)} s (${(r.running / r.totalS).toFixed(0)} pods/s); per pod p50 / p99 / max ${pct(r.latency, 50).toFixed(0)} / ${pct(r.latency, 99).toFixed(0)} / ${(r.latency.at(-1) ?? NaN).toFixed(0)} ms`;
    process.stdout.write(
      [
        `kubelab volumes bench (kubelab up, ${nodes.length} simulated nodes in 3 zones, ${capacity} pod slots; ${total} pods created ${concurrency} at a time)`,
        `  create -> all Running`,
        `    each with its own kubelab-zonal (WaitForFirstConsumer) claim   ${line(vol)}`,
        `    the same pods without volumes (reference)                   ${line(plain)}`,
        `    ratio with / without volumes: all Running ${(vol.totalS / plain.totalS).toFixed(2)}, p50 ${(pct(vol.latency, 50) / pct(plain.latency, 50)).toFixed(2)}, p99 ${(pct(vol.latency, 99) / pct(plain.latency, 99)).toFixed(2)}`,
      ].join("\n") + "\n",
    );
  } finally {
    client?.close();
    await k?.stop({ clean: true });
  }
}
