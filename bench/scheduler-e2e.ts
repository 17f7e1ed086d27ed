// Scheduler bench, end to end: pods bound per second through the apiserver on a real etcd, by a
// `kubelab scheduler` process, beside the raw etcd3 write rate measured in the same run.

import type { ChildProcess } from "node:child_process";
import { drive, startComponent, stopProcess } from "./util.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Etcd3 } from "etcd3";
import type { Namespace, Node, Pod } from "../api/core/v1.ts";
import { RestClient } from "../client/index.ts";
import { writeKubeconfig } from "../cli/kubeconfig.ts";
import { ensurePki } from "../cli/pki.ts";
import { findFreePort, startEtcd } from "../test/harness/etcd.ts";

const ZONES = ["local-1a", "local-1b", "local-1c"];

async function waitHttp(url: string, ok: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await ok().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not become ready (${url})`);
}

export async function runSchedulerE2E(opts: { nodes: number; pods: number; concurrency: number; out: (s: string) => void }): Promise<void> {
  const { out } = opts;
  const etcd = await startEtcd();
  if ("skip" in etcd) throw new Error(`no etcd: ${etcd.skip}`);
  const dir = mkdtempSync(join(tmpdir(), "kubelab-bench-sched-"));
  let apiserver: ChildProcess | undefined;
  let scheduler: ChildProcess | undefined;
  const ac = new AbortController();
  try {
    // 1. Raw etcd3 puts/s from this process (pod-sized values), the reference.
    const raw = new Etcd3({ hosts: etcd.endpoints });
    const value = "x".repeat(1200);
    await drive(500, opts.concurrency, async (i) => void (await raw.put(`/bench/warm/${i}`).value(value)));
    const rawRate = (await drive(opts.pods, opts.concurrency, async (i) => void (await raw.put(`/bench/raw/${i}`).value(value)))).rate;
    raw.close();

    // 2. The apiserver (HTTPS, token) and one scheduler process (no leader election).
    const pki = ensurePki(join(dir, "pki"));
    const port = await findFreePort();
    apiserver = startComponent(["apiserver", "--storage", etcd.url, "--port", String(port),
      "--tls-cert-file", join(pki.dir, "apiserver.crt"), "--tls-private-key-file", join(pki.dir, "apiserver.key"), "--token-auth-file", pki.tokenFile]);
    const kubeconfig = join(dir, "kubeconfig");
    writeKubeconfig(kubeconfig, { server: `https://127.0.0.1:${port}`, caCert: pki.caCert, token: pki.adminToken });
    const client = RestClient.fromKubeconfig(kubeconfig, { userAgent: "kubelab-bench" });
    await waitHttp("/readyz", () => client.send({ method: "GET", path: "/readyz" }).then((r) => (r.resume(), r.statusCode === 200)), "apiserver");

    const nodes = client.resource<Node>("", "nodes");
    await drive(opts.nodes, 32, async (i) => {
      const name = `node-${i}`;
      await nodes.create("", {
        apiVersion: "v1",
        kind: "Node",
        metadata: { name, labels: { "kubernetes.io/hostname": name, "topology.kubernetes.io/zone": ZONES[i % ZONES.length] } },
        status: {
          capacity: { cpu: "4", memory: "16Gi", pods: "110" },
          allocatable: { cpu: "4", memory: "16Gi", pods: "110" },
          conditions: [{ type: "Ready", status: "True" }],
        },
      } as Node);
    });
    const schedPort = await findFreePort();
    scheduler = startComponent(["scheduler", "--kubeconfig", kubeconfig, "--port", String(schedPort)]);
    await waitHttp("/readyz", () => fetch(`http://127.0.0.1:${schedPort}/readyz`).then((r) => r.status === 200), "scheduler");
    await client.resource<Namespace>("", "namespaces").create("", { metadata: { name: "bench" } });
    await new Promise((r) => setTimeout(r, 2000)); // the scheduler's informers see every node

    // 3. Watch pods; create them at `concurrency`; time until every one is bound.
    const pods = client.resource<Pod>("", "pods");
    const list = await pods.list("bench");
    const bound = new Set<string>();
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    void (async () => {
      let rv = list.metadata.resourceVersion ?? "";
      while (!ac.signal.aborted) {
        try {
          for await (const ev of pods.watch("bench", { resourceVersion: rv }, ac.signal)) {
            rv = ev.object.metadata.resourceVersion ?? rv;
            if (ev.object.spec?.nodeName) bound.add(ev.object.metadata.name ?? "");
            if (bound.size >= opts.pods) resolveDone();
          }
        } catch {
          // re-watch
        }
      }
    })();
    const t0 = performance.now();
    const createRate = (await drive(opts.pods, opts.concurrency, async (i) => {
      await pods.create("bench", {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: `p-${i}` },
        spec: { containers: [{ name: "c", image: "busybox", resources: { requests: { cpu: "100m", memory: "500Mi" } } }] },
      } as Pod);
    })).rate;
    const deadline = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 300_000).unref());
    const res = await Promise.race([done.then(() => "ok" as const), deadline]);
    const secs = (performance.now() - t0) / 1000;
    const boundRate = bound.size / secs;
    out("");
    out(`end to end through the apiserver on etcd: ${opts.nodes} nodes, ${opts.pods} pods created at concurrency ${opts.concurrency}`);
    out(`  raw etcd3 puts/s                 ${rawRate.toFixed(0)}`);
    out(`  pod creates/s (apiserver)        ${createRate.toFixed(0)}`);
    out(`  pods bound                       ${bound.size} of ${opts.pods}${res === "timeout" ? " (timed out)" : ""} in ${secs.toFixed(2)} s`);
    out(`  pods bound/s                     ${boundRate.toFixed(0)}   (ratio to raw etcd puts/s ${(boundRate / rawRate).toFixed(2)})`);
  } finally {
    ac.abort();
    await stopProcess(scheduler);
    await stopProcess(apiserver);
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
