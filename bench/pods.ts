// Pods bench: (1) pod startup latency — create → Running as seen by a watch — p50/p99 at a steady
// 100 pods/s on `kubelab up`'s simulated kubelets (target: p99 ≤ 1 s); (2) one kubelet pool
// process with 1,000 simulated nodes: its RSS and CPU while it heartbeats (Leases every 10 s).

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { ChildProcess } from "node:child_process";
import type { Namespace, Node, Pod } from "../api/core/v1.ts";
import { RestClient } from "../client/index.ts";
import { freePort, startKubelab, type Kubelab } from "../test/harness/kubelab.ts";
import { pct, sleep, startComponent, stopProcess, watchRunning } from "./util.ts";


/** utime+stime in clock ticks (USER_HZ = 100 on Linux) and RSS in bytes, from /proc. */
function procStat(pid: number): { cpuTicks: number; rss: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const cpuTicks = Number(fields[11]) + Number(fields[12]);
  const rssPages = Number(readFileSync(`/proc/${pid}/statm`, "utf8").split(" ")[1]);
  return { cpuTicks, rss: rssPages * 4096 };
}

/** Creates `total` pods at `rate`/s in a new namespace; returns create → Running latencies (ms), sorted. */
export async function measureStartup(client: RestClient, ns: string, total: number, rate: number): Promise<{ latency: number[]; offeredRate: number }> {
  await client.resource<Namespace>("", "namespaces").create("", { metadata: { name: ns } });
  await sleep(1000);
  const pods = client.resource<Pod>("", "pods");
  const { createdAt, latency, all, stop } = await watchRunning(pods, ns, total);
  const started = performance.now();
  const creates: Promise<unknown>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const name = `p-${i}`;
    createdAt.set(name, performance.now());
    creates.push(
      pods.create(ns, { apiVersion: "v1", kind: "Pod", metadata: { name }, spec: { containers: [{ name: "c", image: "busybox", command: ["sleep", "3600"] }] } }),
    );
  }
  const offeredRate = total / ((performance.now() - started) / 1000);
  await Promise.all(creates);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([all, new Promise((r) => (timer = setTimeout(r, 120_000)))]);
  clearTimeout(timer);
  await stop();
  latency.sort((a, b) => a - b);
  return { latency, offeredRate };
}

export async function runPodsBench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      pods: { type: "string", default: "1000" },
      rate: { type: "string", default: "100" },
      // m5.2xlarge nodes hold 58 pods (their ENI limit): 1,000 pods need 18 of them.
      "nodes-per-zone": { type: "string", default: "6" },
      "pool-nodes": { type: "string", default: "1000" },
      "pool-seconds": { type: "string", default: "60" },
    },
  });
  const total = Number(values.pods);
  const rate = Number(values.rate);
  const poolNodes = Number(values["pool-nodes"]);
  let k: Kubelab | undefined;
  let client: RestClient | undefined;
  let pool: ChildProcess | undefined;
  const lines: string[] = [];
  try {
    k = await startKubelab({ nodes: true, extraArgs: ["--nodes-per-zone", values["nodes-per-zone"]!] });
    client = RestClient.fromKubeconfig(k.kubeconfig, { userAgent: "kubelab-bench" });
    const nodesWanted = 3 * Number(values["nodes-per-zone"]);
    for (let i = 0; ; i++) {
      const nodes = await client.resource<Node>("", "nodes").list("");
      const ready = nodes.items.filter((n) => n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")).length;
      if (ready >= nodesWanted) break;
      if (i > 600) throw new Error(`only ${ready} of ${nodesWanted} nodes became Ready`);
      await sleep(100);
    }
    // 1. Startup latency at a steady rate. A warm-up round (not measured): the first pods after start pay for cold connections and JIT.
    const warm = await measureStartup(client, "warmup", Math.min(300, total), rate);
    await client.resource<Namespace>("", "namespaces").delete("", "warmup");
    for (let i = 0; ; i++) {
      const gone = await client.resource<Namespace>("", "namespaces").get("", "warmup").then(() => false, () => true);
      if (gone) break;
      if (i > 600) throw new Error("the warm-up namespace was not deleted within 60 s");
      await sleep(100);
    }
    const { latency, offeredRate } = await measureStartup(client, "startup", total, rate);
    const p99 = pct(latency, 99);
    lines.push(
      `kubelab pods bench (kubelab up, embedded store, ${nodesWanted} simulated nodes in 3 pools)`,
      `  pod startup, create -> Running seen by a watch, ${total} pods offered at ${offeredRate.toFixed(0)}/s`,
      `    running                        ${latency.length} of ${total}`,
      `    p50 / p90 / p99 / max          ${pct(latency, 50).toFixed(0)} / ${pct(latency, 90).toFixed(0)} / ${p99.toFixed(0)} / ${(latency.at(-1) ?? NaN).toFixed(0)} ms`,
      `    ratio p99 / 1 s target         ${(p99 / 1000).toFixed(2)}   (<= 1.00 meets the target)`,
      `    warm-up round (first ${warm.latency.length} pods after start): p50 / p99 ${pct(warm.latency, 50).toFixed(0)} / ${pct(warm.latency, 99).toFixed(0)} ms`,
    );
    process.stdout.write(lines.join("\n") + "\n");
    lines.length = 0;

    // 2. One pool process with many simulated nodes.
    const [port, healthPort] = [await freePort(), await freePort()];
    pool = startComponent([
      "kubelet", "--kubeconfig", k.kubeconfig, "--simulate", "--nodes", String(poolNodes), "--zone", "bench-pool", "--name-prefix", "pool",
      "--pod-cidr", "127.32.0.0/13", "--port", String(port), "--healthz-port", String(healthPort), "--root-dir", `${k.dataDir}/kubelet/bench-pool`,
    ]);
    const poolStart = performance.now();
    let registered = 0;
    for (let i = 0; ; i++) {
      const nodes = await client.resource<Node>("", "nodes").list("", { labelSelector: "topology.kubernetes.io/zone=bench-pool" });
      registered = nodes.items.filter((n) => n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")).length;
      if (registered >= poolNodes) break;
      if (pool.exitCode !== null) throw new Error(`the pool exited (${pool.exitCode})`);
      if (i > 1200) throw new Error(`only ${registered} of ${poolNodes} pool nodes became Ready in 120 s`);
      await sleep(100);
    }
    const registerS = (performance.now() - poolStart) / 1000;
    await sleep(15_000); // past the registration burst, into steady heartbeats
    const seconds = Number(values["pool-seconds"]);
    const a = procStat(pool.pid!);
    const t0 = performance.now();
    let rssMax = a.rss;
    while (performance.now() - t0 < seconds * 1000) {
      await sleep(1000);
      rssMax = Math.max(rssMax, procStat(pool.pid!).rss);
    }
    const b = procStat(pool.pid!);
    const cpu = (b.cpuTicks - a.cpuTicks) / 100 / ((performance.now() - t0) / 1000);
    lines.push(
      `  one kubelet pool process, ${poolNodes} simulated nodes`,
      `    all Ready after                ${registerS.toFixed(1)} s`,
      `    RSS (end / max)                ${(b.rss / 2 ** 20).toFixed(0)} / ${(rssMax / 2 ** 20).toFixed(0)} MB`,
      `    CPU while heartbeating         ${(cpu * 100).toFixed(1)} % of one core over ${seconds} s (Lease renewals: ${(poolNodes / 10).toFixed(0)}/s)`,
    );
    process.stdout.write(lines.join("\n") + "\n");
  } finally {
    await stopProcess(pool);
    client?.close();
    await k?.stop({ clean: true });
  }
}
