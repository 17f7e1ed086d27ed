// Ingress bench: requests/s and p50/p99 latency to the same simulated pods three ways in one run —
// straight to the pod IPs (the reference), through the Service's ClusterIP (the service proxy) and
// through the ingress controller (Host rule → Service → pods). Printed as ratios to the direct
// figures. Goals (the issue's): ingress ≥ 0.5 of direct requests/s and an added p99 ≤ 2 ms.
//
// The three are measured in rounds (direct, ClusterIP, ingress, again …) so drift of this machine's
// speed during the run hits each alike; each figure is the median of its rounds.

import http from "node:http";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startKubelab, type Kubelab } from "../test/harness/kubelab.ts";
import { drive, pct, sleep } from "./util.ts";

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Target {
  name: string;
  /** host, port and Host header of request i */
  at(i: number): { host: string; port: number; hostHeader?: string };
}

function get(agent: http.Agent, t: { host: string; port: number; hostHeader?: string }): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: t.host, port: t.port, path: "/", agent, headers: t.hostHeader ? { host: t.hostHeader } : {} }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
  });
}

async function kubectlOK(k: Kubelab, args: string[], input?: string): Promise<string> {
  const r = await k.kubectl(args, { input });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

async function measure(t: Target, total: number, concurrency: number): Promise<{ rate: number; p50: number; p99: number; errors: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  let errors = 0;
  const r = await drive(total, concurrency, async (i) => {
    const status = await get(agent, t.at(i)).catch(() => 0);
    if (status !== 200) errors++;
  });
  agent.destroy();
  return { rate: r.rate, p50: pct(r.lat, 50), p99: pct(r.lat, 99), errors };
}

export async function runIngressBench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      requests: { type: "string", default: "20000" },
      concurrency: { type: "string", default: "32" },
      rounds: { type: "string", default: "3" },
      replicas: { type: "string", default: "3" },
    },
    strict: true,
  });
  const total = Number(values.requests);
  const concurrency = Number(values.concurrency);
  const rounds = Number(values.rounds);
  const k = await startKubelab({ nodes: true });
  try {
    await kubectlOK(k, ["create", "deployment", "web", "--image=busybox", `--replicas=${values.replicas}`, "--", "httpd", "-f", "-p", "8080"]);
    await kubectlOK(k, ["expose", "deployment", "web", "--port", "80", "--target-port", "8080"]);
    await kubectlOK(k, ["create", "ingress", "web", "--rule=web.bench/*=web:80"]);
    const up = JSON.parse(readFileSync(join(k.dataDir, "up.json"), "utf8")) as { dataPlane?: { ingressHTTP: string } };
    if (!up.dataPlane) throw new Error("kubelab up runs no ingress controller (up.json has no dataPlane)");
    const ingressPort = Number(new URL(up.dataPlane.ingressHTTP).port);
    // Ready: all pods Running and ready, the ClusterIP and the ingress answering 200.
    let podIPs: string[] = [];
    let clusterIP = "";
    const agent = new http.Agent({ keepAlive: false });
    const deadline = Date.now() + 120_000;
    for (;;) {
      const pods = JSON.parse(await kubectlOK(k, ["get", "pods", "-l", "app=web", "-o", "json"])) as { items: { status?: { podIP?: string; conditions?: { type: string; status: string }[] } }[] };
      podIPs = pods.items.filter((p) => p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")).map((p) => p.status!.podIP!);
      clusterIP = (await kubectlOK(k, ["get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"])).trim();
      const ok = podIPs.length === Number(values.replicas) &&
        (await get(agent, { host: clusterIP, port: 80 }).catch(() => 0)) === 200 &&
        (await get(agent, { host: "127.0.0.1", port: ingressPort, hostHeader: "web.bench" }).catch(() => 0)) === 200;
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`the web pods, ClusterIP ${clusterIP} and ingress :${ingressPort} did not all answer within 120 s`);
      await sleep(500);
    }
    const targets: Target[] = [
      { name: "direct to pod IPs", at: (i) => ({ host: podIPs[i % podIPs.length], port: 8080 }) },
      { name: "ClusterIP (service proxy)", at: () => ({ host: clusterIP, port: 80 }) },
      { name: "ingress (Host: web.bench)", at: () => ({ host: "127.0.0.1", port: ingressPort, hostHeader: "web.bench" }) },
    ];
    process.stdout.write(`ingress bench: ${total} GETs per run, ${concurrency} keep-alive connections, ${rounds} rounds, ${podIPs.length} simulated pods\n`);
    for (const t of targets) await measure(t, Math.min(2000, total), concurrency); // warm-up
    const results = new Map<string, { rate: number[]; p50: number[]; p99: number[]; errors: number }>();
    for (let r = 0; r < rounds; r++) {
      for (const t of targets) {
        const m = await measure(t, total, concurrency);
        const acc = results.get(t.name) ?? { rate: [], p50: [], p99: [], errors: 0 };
        acc.rate.push(m.rate);
        acc.p50.push(m.p50);
        acc.p99.push(m.p99);
        acc.errors += m.errors;
        results.set(t.name, acc);
      }
    }
    const ref = results.get(targets[0].name)!;
    const refRate = median(ref.rate);
    const refP99 = median(ref.p99);
    for (const t of targets) {
      const m = results.get(t.name)!;
      const rate = median(m.rate);
      const p99 = median(m.p99);
      const vs = t === targets[0] ? "(reference)" : `ratio ${(rate / refRate).toFixed(2)} of direct, p99 +${(p99 - refP99).toFixed(2)} ms`;
      process.stdout.write(
        `  ${t.name.padEnd(28)} ${rate.toFixed(0).padStart(7)} req/s   p50 ${median(m.p50).toFixed(2)} ms   p99 ${p99.toFixed(2)} ms   errors ${m.errors}   ${vs}\n`,
      );
    }
    const ing = results.get(targets[2].name)!;
    process.stdout.write(
      `goals: ingress ≥ 0.5 of direct req/s (${(median(ing.rate) / refRate).toFixed(2)}), added p99 ≤ 2 ms (${(median(ing.p99) - refP99).toFixed(2)} ms)\n`,
    );
  } finally {
    await k.stop({ clean: true });
  }
}
