// API bench: raw etcd3 puts/s vs creates/s through the apiserver on the same etcd, create latency,
// and watch delivery latency with 1,000 watchers at 500 writes/s. With `--apiservers N` (N > 1), the
// same creates again through N apiserver processes on the same etcd (each its own watch cache, the
// requests spread round-robin) and the watch phase on those N, so both ratios print in one run.
// Each phase also prints the CPU time the apiserver processes used (from /proc), per create and
// per thousand watch events delivered: a figure that moves less than rates on a shared machine. With `--storage file`, the same on
// the embedded file:// store: raw backend puts and apiserver creates on memory:// (the reference),
// on file:// as it was before group commit (acknowledged before fsync) and on file:// now.

import { spawn } from "node:child_process";
import { drive } from "./util.ts";
import https from "node:https";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Etcd3 } from "etcd3";
import { startEtcd, findFreePort } from "../test/harness/etcd.ts";
import { ensurePki } from "../cli/pki.ts";
import { MemoryBackend } from "../apiserver/storage/index.ts";

const MAIN = fileURLToPath(new URL("../cli/main.ts", import.meta.url));
const WATCHERS = fileURLToPath(new URL("./watchers.ts", import.meta.url));
const BENCH_APISERVER = fileURLToPath(new URL("./api-server.ts", import.meta.url));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}


/** CPU seconds (user + system) a process has used so far, from /proc (Linux); NaN elsewhere. */
function cpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return NaN;
  }
}
const cpuOf = (procs: ReturnType<typeof spawn>[]) => procs.reduce((t, p) => t + cpuSeconds(p.pid), 0);

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

/** Spawns an apiserver (`entry` with `args` plus port and PKI flags) and waits for /readyz. */
async function startApiserver(entry: string, args: string[], pki: ReturnType<typeof ensurePki>, concurrency: number): Promise<{ proc: ReturnType<typeof spawn>; api: Api }> {
  const port = await findFreePort();
  const proc = spawn(
    process.execPath,
    // BENCH_PROFILE_DIR=dir writes a CPU profile of the apiserver there (node --cpu-prof).
    [...(process.env.BENCH_PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : []), ...process.execArgv, entry, ...args, "--port", String(port),
      "--tls-cert-file", join(pki.dir, "apiserver.crt"), "--tls-private-key-file", join(pki.dir, "apiserver.key"), "--token-auth-file", pki.tokenFile],
    { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, KUBELAB_LOG_LEVEL: "warn" } },
  );
  const api: Api = { agent: new https.Agent({ keepAlive: true, maxSockets: concurrency }), port, token: pki.adminToken, ca: pki.caCert };
  for (let i = 0; ; i++) {
    const r = await request(api, "GET", "/readyz").catch(() => ({ status: 0, body: "" }));
    if (r.status === 200) break;
    if (proc.exitCode !== null || i > 300) throw new Error("apiserver did not become ready");
    await new Promise((r2) => setTimeout(r2, 100));
  }
  return { proc, api };
}

async function stopApiserver(proc: ReturnType<typeof spawn> | undefined): Promise<void> {
  if (proc && proc.exitCode === null && proc.signalCode === null) {
    proc.kill("SIGTERM");
    await new Promise((r) => proc.once("exit", r));
  }
}

/**
 * A warm-up round, then `writes` ConfigMap creates with `concurrency` in flight, spread round-robin
 * over `apis` (one or several apiservers on the same store). Names start with `prefix`.
 */
async function createPhase(api: Api | Api[], writes: number, concurrency: number, prefix = "cm"): Promise<{ rate: number; lat: number[] }> {
  const apis = Array.isArray(api) ? api : [api];
  await drive(200, concurrency, async (i) => {
    await request(apis[i % apis.length]!, "POST", "/api/v1/namespaces/default/configmaps", configMap(`warm-${prefix}-${i}`));
  });
  return drive(writes, concurrency, async (i) => {
    const r = await request(apis[i % apis.length]!, "POST", "/api/v1/namespaces/default/configmaps", configMap(`${prefix}-${i}`));
    if (r.status !== 201) throw new Error(`create answered ${r.status}: ${r.body}`);
  });
}

/**
 * Watch fan-out: `watchers` watchers on one namespace (spread round-robin over `apis`), writes at a
 * fixed rate (also spread; at most `inFlight` outstanding), delivery latency per event per watcher
 * from the moment its create was sent. With `cpuPerCreate` (CPU seconds per create, measured in a
 * create phase) the fan-out's own CPU is estimated: the phase's CPU less that of its creates. `procs` are the apiserver
 * processes, for their CPU time during the phase.
 */
async function watchPhase(apiOrApis: Api | Api[], watchers: number, rate: number, seconds: number, inFlight: number, procs: ReturnType<typeof spawn>[] = [], cpuPerCreate = NaN): Promise<string[]> {
  const apis = Array.isArray(apiOrApis) ? apiOrApis : [apiOrApis];
  const api = apis[0]!;
  await request(api, "POST", "/api/v1/namespaces", JSON.stringify({ metadata: { name: "watch-bench" } }));
  // The watchers live in their own process, as clients do.
  const watcherProc = spawn(process.execPath, [...process.execArgv, WATCHERS], { stdio: ["pipe", "pipe", "inherit"] });
  const out = createInterface({ input: watcherProc.stdout! })[Symbol.asyncIterator]();
  watcherProc.stdin!.write(
    JSON.stringify({
      ports: apis.map((a) => a.port), token: api.token, ca: api.ca, watchers,
      path: "/api/v1/namespaces/watch-bench/configmaps?watch=1&resourceVersion=0&allowWatchBookmarks=false",
    }) + "\n",
  );
  const readyLine = await out.next();
  if (readyLine.value !== "ready") throw new Error(`watchers did not start: ${String(readyLine.value)}`);
  const total = rate * seconds;
  const interval = 1000 / rate;
  const cpu0 = cpuOf(procs);
  const start = performance.now();
  const pending: Promise<unknown>[] = [];
  // At most `inFlight` creates outstanding (the agents' sockets): a create is built, and stamped
  // with its send time, only when it can go out, so that a server slower than `rate` shows as a
  // lower achieved rate rather than as client-side queueing inside the delivery latency.
  let outstanding = 0;
  const freed: (() => void)[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    while (outstanding >= inFlight) await new Promise<void>((r) => freed.push(r));
    outstanding++;
    const done = () => {
      outstanding--;
      freed.shift()?.();
    };
    pending.push(request(apis[i % apis.length]!, "POST", "/api/v1/namespaces/watch-bench/configmaps", smallConfigMap(`w-${i}`, String(Date.now()))).finally(done));
  }
  await Promise.all(pending);
  const achieved = total / ((performance.now() - start) / 1000);
  const expected = total * watchers;
  await new Promise((r) => setTimeout(r, 2000)); // let the last events arrive
  const cpu = cpuOf(procs) - cpu0;
  watcherProc.stdin!.write("stop\n");
  const watch = JSON.parse(String((await out.next()).value)) as { count: number; p50: number; p99: number; max: number; cpu: number };
  const per = (x: number) => (Number.isFinite(x) ? `${((1000 * x * 1000) / Math.max(1, watch.count)).toFixed(2)} ms` : "n/a");
  return [
    `  watch: ${watchers} watchers on ${apis.length} apiserver${apis.length > 1 ? "s" : ""}, ${achieved.toFixed(0)} writes/s for ${seconds}s`,
    `  watch events delivered           ${watch.count}/${expected}${watch.count === expected ? "" : `   (${expected - watch.count} lost)`}`,
    `  watch delivery p50/p99/max       ${watch.p50} / ${watch.p99} / ${watch.max} ms   (target p99 <= 50 ms) ${watch.p99 <= 50 && watch.count === expected ? "OK" : "MISSED"}`,
    `  CPU per 1000 events delivered    apiserver${apis.length > 1 ? "s" : ""} ${per(cpu)}, watcher client ${per(watch.cpu)}   (${cpu.toFixed(1)} s and ${watch.cpu.toFixed(1)} s in the phase)`,
    ...(Number.isFinite(cpuPerCreate) && Number.isFinite(cpu)
      ? [`    of which fan-out (estimate)    ${per(cpu - total * cpuPerCreate)}   (the phase's apiserver CPU less ${total} creates at ${(1000 * cpuPerCreate).toFixed(2)} ms)`]
      : []),
  ];
}

const lat = (l: number[]) => `${percentile(l, 50).toFixed(1)} / ${percentile(l, 99).toFixed(1)} ms`;

export async function runApiBench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      storage: { type: "string", default: "etcd" },
      writes: { type: "string", default: "4000" },
      concurrency: { type: "string", default: "64" },
      watchers: { type: "string", default: "1000" },
      rate: { type: "string", default: "500" },
      seconds: { type: "string", default: "10" },
      apiservers: { type: "string", default: "1" },
    },
  });
  const writes = Number(values.writes);
  const concurrency = Number(values.concurrency);
  const watchers = Number(values.watchers);
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  if (values.storage === "file") return runFileStoreBench(writes, concurrency, watchers, rate, seconds);
  if (values.storage !== "etcd") throw new Error(`--storage must be etcd or file, got "${values.storage}"`);

  const apiservers = Number(values.apiservers);
  if (!Number.isInteger(apiservers) || apiservers < 1) throw new Error(`--apiservers must be a positive integer, got "${values.apiservers}"`);

  const etcd = await startEtcd();
  if ("skip" in etcd) throw new Error(`no etcd: ${etcd.skip}`);
  const dir = mkdtempSync(join(tmpdir(), "kubelab-bench-"));
  const procs: ReturnType<typeof spawn>[] = [];
  const apis: Api[] = [];
  try {
    // Raw etcd puts/s from this process with the etcd3 client; measured right before each create
    // phase, which is compared with the puts measured next to it (the machine is shared).
    let rawRound = 0;
    const rawPuts = async () => {
      const client = new Etcd3({ hosts: etcd.endpoints });
      const round = rawRound++;
      const r = await drive(writes, concurrency, async (i) => {
        await client.put(`/bench/raw/${round}/${i}`).value(configMap(`raw-${i}`));
      });
      client.close();
      return r;
    };
    const pki = ensurePki(join(dir, "pki"));
    const startOne = async () => {
      const started = await startApiserver(MAIN, ["apiserver", "--storage", etcd.url], pki, concurrency);
      procs.push(started.proc);
      apis.push(started.api);
    };
    const lines = [`kubelab api bench (etcd ${etcd.endpoints[0]}, ${writes} writes, concurrency ${concurrency})`];
    const createLines = (label: string, raw: { rate: number; lat: number[] }, created: { rate: number; lat: number[] }, cpu: number) => {
      const ratio = created.rate / raw.rate;
      return [
        `  ${label}`,
        `    raw etcd3 puts/s               ${raw.rate.toFixed(0)}   (measured just before)`,
        `    apiserver creates/s            ${created.rate.toFixed(0)}`,
        `    ratio creates/puts             ${ratio.toFixed(2)}   (target >= 0.70) ${ratio >= 0.7 ? "OK" : "MISSED"}`,
        `    raw put latency p50/p99        ${lat(raw.lat)}`,
        `    create latency p50/p99         ${lat(created.lat)}`,
        `    apiserver CPU per create       ${Number.isFinite(cpu) ? `${((1000 * cpu) / (writes + 200)).toFixed(2)} ms` : "n/a"}`,
      ];
    };

    // 1. One apiserver as its own process on the etcd, over HTTPS with a token.
    const raw1 = await rawPuts();
    await startOne();
    let cpu0 = cpuOf(procs);
    const created1 = await createPhase(apis, writes, concurrency, "one");
    let createCpu = cpuOf(procs) - cpu0;
    lines.push(...createLines("1 apiserver", raw1, created1, createCpu));

    // 2. N apiservers on the same etcd, the creates spread over them.
    if (apiservers > 1) {
      while (apis.length < apiservers) await startOne();
      const rawN = await rawPuts();
      cpu0 = cpuOf(procs);
      const createdN = await createPhase(apis, writes, concurrency, "many");
      createCpu = cpuOf(procs) - cpu0;
      lines.push(...createLines(`${apiservers} apiservers`, rawN, createdN, createCpu));
    }

    // 3. Watch fan-out, on every apiserver started.
    lines.push(...(await watchPhase(apis, watchers, rate, seconds, concurrency, procs, createCpu / (writes + 200))));
    process.stdout.write(lines.join("\n") + "\n");
  } finally {
    for (const a of apis) a.agent.destroy();
    for (const p of procs) await stopApiserver(p);
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface StoreMode {
  label: string;
  url: (dir: string) => string;
  unsafe: boolean;
}

/**
 * `--storage file`: the embedded store in three modes, each on a fresh directory, measured in the
 * same run — memory:// (no log: the reference), file:// before group commit (acknowledged before
 * its fsync, 10 ms batches: what the store did until P4.1, reachable only from this bench) and
 * file:// with group commit (acknowledged after its batch's fdatasync). First raw backend puts in
 * this process, then creates through an apiserver process (bench/api-server.ts), each mode twice in
 * alternating order, best of the two (the machine is shared; the first process of a run is slower);
 * then watch delivery on file:// with group commit.
 */
async function runFileStoreBench(writes: number, concurrency: number, watchers: number, rate: number, seconds: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "kubelab-bench-"));
  const modes: StoreMode[] = [
    { label: "memory://", url: () => "memory://", unsafe: false },
    { label: "file:// before (ack before fsync)", url: (d) => `file://${d}`, unsafe: true },
    { label: "file:// group commit", url: (d) => `file://${d}`, unsafe: false },
  ];
  const ROUNDS = 2;
  const order = (round: number) => (round % 2 === 0 ? [0, 1, 2] : [2, 1, 0]);
  let apiserver: ReturnType<typeof spawn> | undefined;
  let seq = 0;
  const start = async (m: StoreMode) => {
    const started = await startApiserver(BENCH_APISERVER, ["--storage", m.url(join(dir, `api-${seq++}`)), ...(m.unsafe ? ["--unsafe-ack-before-sync"] : [])], pki, concurrency);
    apiserver = started.proc;
    return started.api;
  };
  const stop = async (api: Api) => {
    api.agent.destroy();
    await stopApiserver(apiserver);
    apiserver = undefined;
  };
  const pki = ensurePki(join(dir, "pki"));
  try {
    const rawWrites = writes * 10;
    const lines = [
      `kubelab api bench (embedded store under ${tmpdir()}, ${writes} creates through the apiserver and ${rawWrites} raw puts per mode, concurrency ${concurrency}, best of ${ROUNDS} rounds)`,
    ];

    // 1. Raw backend puts (creates of ~300-byte values) in this process.
    type Run = { rate: number; lat: number[]; note?: string };
    const best = (a: Run | undefined, b: Run) => (a && a.rate >= b.rate ? a : b);
    const raw: (Run | undefined)[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const i of order(round)) {
        const m = modes[i]!;
        const b = m.label === "memory://" ? await MemoryBackend.open() : await MemoryBackend.open({ dir: join(dir, `raw-${seq++}`), unsafeAcknowledgeBeforeSync: m.unsafe });
        const r = await drive(rawWrites, concurrency, async (n) => {
          const res = await b.create(`/registry/configmaps/default/raw-${n}`, configMap(`raw-${n}`));
          if (!res.succeeded) throw new Error("raw create failed");
        });
        const st = b.commitStats();
        await b.close();
        const note = m.label === "memory://" ? undefined : `${st.batches} fsyncs during the run, ${(st.records / Math.max(1, st.batches)).toFixed(1)} writes each`;
        raw[i] = best(raw[i], { ...r, ...(note ? { note } : {}) });
      }
    }
    lines.push(`  raw backend puts/s (in process)`);
    for (const [i, m] of modes.entries()) {
      const r = raw[i]!;
      lines.push(`    ${m.label.padEnd(34)} ${r.rate.toFixed(0).padStart(7)}   p50/p99 ${lat(r.lat)}${r.note ? `   (${r.note})` : ""}`);
    }

    // 2. Creates through the apiserver, a fresh process and directory per mode and round.
    const created: (Run | undefined)[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const i of order(round)) {
        const api = await start(modes[i]!);
        created[i] = best(created[i], await createPhase(api, writes, concurrency));
        await stop(api);
      }
    }
    lines.push(`  apiserver creates/s`);
    for (const [i, m] of modes.entries()) {
      const c = created[i]!;
      lines.push(`    ${m.label.padEnd(34)} ${c.rate.toFixed(0).padStart(7)}   p50/p99 ${lat(c.lat)}`);
    }
    const [mem, before, after] = [created[0]!, created[1]!, created[2]!];
    lines.push(`  creates/s group commit / memory://  ${(after.rate / mem.rate).toFixed(2)}`);
    lines.push(`  creates/s group commit / before     ${(after.rate / before.rate).toFixed(2)}`);

    // 3. Watch delivery on the durable store (events are sent once their batch is fsynced).
    if (watchers > 0) {
      const api = await start(modes[2]!);
      lines.push(`  on file:// group commit:`, ...(await watchPhase(api, watchers, rate, seconds, concurrency, apiserver ? [apiserver] : [])));
      await stop(api);
    }
    process.stdout.write(lines.join("\n") + "\n");
  } finally {
    await stopApiserver(apiserver);
    rmSync(dir, { recursive: true, force: true });
  }
}
