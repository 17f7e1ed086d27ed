// API bench: raw etcd3 puts/s vs creates/s through the apiserver on the same etcd, create latency,
// and watch delivery latency with 1,000 watchers at 500 writes/s.

import { spawn } from "node:child_process";
import { drive } from "./util.ts";
import https from "node:https";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Etcd3 } from "etcd3";
import { startEtcd, findFreePort } from "../test/harness/etcd.ts";
import { ensurePki } from "../cli/pki.ts";

const MAIN = fileURLToPath(new URL("../cli/main.ts", import.meta.url));
const WATCHERS = fileURLToPath(new URL("./watchers.ts", import.meta.url));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}


function configMap(name: string, extra: Record<string, string> = {}): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name, labels: { bench: "api" } },
    data: { key: "x".repeat(200), ...extra },
  });
}

/** The watch phase writes small objects (~250 bytes of JSON), so the figure is about fan-out, not bandwidth. */
function smallConfigMap(name: string, sent: string): string {
  return JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data: { sent } });
}

interface Api {
  agent: https.Agent;
  port: number;
  token: string;
  ca: string;
}

function request(api: Api, method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: "127.0.0.1",
        port: api.port,
        method,
        path,
        agent: api.agent,
        ca: api.ca,
        headers: { Authorization: `Bearer ${api.token}`, "Content-Type": "application/json", Accept: "application/json" },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

export async function runApiBench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      writes: { type: "string", default: "4000" },
      concurrency: { type: "string", default: "64" },
      watchers: { type: "string", default: "1000" },
      rate: { type: "string", default: "500" },
      seconds: { type: "string", default: "10" },
    },
  });
  const writes = Number(values.writes);
  const concurrency = Number(values.concurrency);
  const watchers = Number(values.watchers);
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);

  const etcd = await startEtcd();
  if ("skip" in etcd) throw new Error(`no etcd: ${etcd.skip}`);
  const dir = mkdtempSync(join(tmpdir(), "kubelab-bench-"));
  let apiserver: ReturnType<typeof spawn> | undefined;
  try {
    // 1. Raw etcd puts/s from this process with the etcd3 client.
    const client = new Etcd3({ hosts: etcd.endpoints });
    const raw = await drive(writes, concurrency, async (i) => {
      await client.put(`/bench/raw/${i}`).value(configMap(`raw-${i}`));
    });
    client.close();

    // 2. The apiserver as its own process on the same etcd, over HTTPS with a token.
    const pki = ensurePki(join(dir, "pki"));
    const port = await findFreePort();
    apiserver = spawn(
      process.execPath,
      // BENCH_PROFILE_DIR=dir writes a CPU profile of the apiserver there (node --cpu-prof).
      [...(process.env.BENCH_PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : []), ...process.execArgv, MAIN, "apiserver", "--storage", etcd.url, "--port", String(port),
        "--tls-cert-file", join(pki.dir, "apiserver.crt"), "--tls-private-key-file", join(pki.dir, "apiserver.key"), "--token-auth-file", pki.tokenFile],
      { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, KUBELAB_LOG_LEVEL: "warn" } },
    );
    const api: Api = { agent: new https.Agent({ keepAlive: true, maxSockets: concurrency }), port, token: pki.adminToken, ca: pki.caCert };
    for (let i = 0; ; i++) {
      const r = await request(api, "GET", "/readyz").catch(() => ({ status: 0, body: "" }));
      if (r.status === 200) break;
      if (i > 300) throw new Error("apiserver did not become ready");
      await new Promise((r2) => setTimeout(r2, 100));
    }
    // Warm up connections and code paths.
    await drive(200, concurrency, async (i) => {
      await request(api, "POST", "/api/v1/namespaces/default/configmaps", configMap(`warm-${i}`));
    });
    const created = await drive(writes, concurrency, async (i) => {
      const r = await request(api, "POST", "/api/v1/namespaces/default/configmaps", configMap(`cm-${i}`));
      if (r.status !== 201) throw new Error(`create answered ${r.status}: ${r.body}`);
    });

    // 3. Watch fan-out: N watchers on one namespace, writes at a fixed rate, delivery latency per event per watcher.
    await request(api, "POST", "/api/v1/namespaces", JSON.stringify({ metadata: { name: "watch-bench" } }));
    // The watchers live in their own process, as clients do.
    const watcherProc = spawn(process.execPath, [...process.execArgv, WATCHERS], { stdio: ["pipe", "pipe", "inherit"] });
    const out = createInterface({ input: watcherProc.stdout! })[Symbol.asyncIterator]();
    watcherProc.stdin!.write(
      JSON.stringify({
        port, token: api.token, ca: api.ca, watchers,
        path: "/api/v1/namespaces/watch-bench/configmaps?watch=1&resourceVersion=0&allowWatchBookmarks=false",
      }) + "\n",
    );
    const readyLine = await out.next();
    if (readyLine.value !== "ready") throw new Error(`watchers did not start: ${String(readyLine.value)}`);
    const total = rate * seconds;
    const interval = 1000 / rate;
    const start = performance.now();
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < total; i++) {
      const due = start + i * interval;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      pending.push(request(api, "POST", "/api/v1/namespaces/watch-bench/configmaps", smallConfigMap(`w-${i}`, String(Date.now()))));
    }
    await Promise.all(pending);
    const achieved = total / ((performance.now() - start) / 1000);
    const expected = total * watchers;
    await new Promise((r) => setTimeout(r, 2000)); // let the last events arrive
    watcherProc.stdin!.write("stop\n");
    const watch = JSON.parse(String((await out.next()).value)) as { count: number; p50: number; p99: number; max: number };

    const ratio = created.rate / raw.rate;
    const watchP99 = watch.p99;
    const lines = [
      `kubelab api bench (etcd ${etcd.endpoints[0]}, ${writes} writes, concurrency ${concurrency})`,
      `  raw etcd3 puts/s                 ${raw.rate.toFixed(0)}`,
      `  apiserver creates/s              ${created.rate.toFixed(0)}`,
      `  ratio creates/puts               ${ratio.toFixed(2)}   (target >= 0.70) ${ratio >= 0.7 ? "OK" : "MISSED"}`,
      `  raw put latency p50/p99          ${percentile(raw.lat, 50).toFixed(1)} / ${percentile(raw.lat, 99).toFixed(1)} ms`,
      `  create latency p50/p99           ${percentile(created.lat, 50).toFixed(1)} / ${percentile(created.lat, 99).toFixed(1)} ms`,
      `  watch: ${watchers} watchers, ${achieved.toFixed(0)} writes/s for ${seconds}s`,
      `  watch events delivered           ${watch.count} of ${expected}`,
      `  watch delivery p50/p99/max       ${watch.p50} / ${watchP99} / ${watch.max} ms   (target p99 <= 50 ms) ${watchP99 <= 50 && watch.count === expected ? "OK" : "MISSED"}`,
    ];
    process.stdout.write(lines.join("\n") + "\n");
    api.agent.destroy();
  } finally {
    if (apiserver && apiserver.exitCode === null) {
      apiserver.kill("SIGTERM");
      await new Promise((r) => apiserver!.once("exit", r));
    }
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
