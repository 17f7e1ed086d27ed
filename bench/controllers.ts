// Controllers bench: a 1,000-replica Deployment from create to 1,000 pods created (pods/s), beside
// the raw create rate (configmaps/s at concurrency 64) of the same apiserver in the same run.
// Real etcd, the apiserver as its own process over HTTPS with a token, and one controller-manager
// process running the replicaset and deployment controllers.

import type { ChildProcess } from "node:child_process";
import { drive, startComponent, stopProcess } from "./util.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Deployment } from "../api/apps/v1.ts";
import type { ConfigMap, Namespace, Pod } from "../api/core/v1.ts";
import { RestClient } from "../client/index.ts";
import { writeKubeconfig } from "../cli/kubeconfig.ts";
import { ensurePki } from "../cli/pki.ts";
import { findFreePort, startEtcd } from "../test/harness/etcd.ts";

export async function runControllersBench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      replicas: { type: "string", default: "1000" },
      writes: { type: "string", default: "2000" },
      concurrency: { type: "string", default: "64" },
      workers: { type: "string", default: "5" },
      timeout: { type: "string", default: "300" },
    },
  });
  const replicas = Number(values.replicas);
  const writes = Number(values.writes);
  const concurrency = Number(values.concurrency);
  const timeoutMs = Number(values.timeout) * 1000;

  const etcd = await startEtcd();
  if ("skip" in etcd) throw new Error(`no etcd: ${etcd.skip}`);
  const dir = mkdtempSync(join(tmpdir(), "kubelab-bench-controllers-"));
  let apiserver: ChildProcess | undefined;
  let cm: ChildProcess | undefined;
  let client: RestClient | undefined;
  try {
    const pki = ensurePki(join(dir, "pki"));
    const port = await findFreePort();
    apiserver = startComponent(["apiserver", "--storage", etcd.url, "--port", String(port),
      "--tls-cert-file", join(pki.dir, "apiserver.crt"), "--tls-private-key-file", join(pki.dir, "apiserver.key"), "--token-auth-file", pki.tokenFile]);
    const kubeconfig = join(dir, "kubeconfig");
    writeKubeconfig(kubeconfig, { server: `https://127.0.0.1:${port}`, caCert: pki.caCert, token: pki.adminToken });
    client = RestClient.fromKubeconfig(kubeconfig, { userAgent: "kubelab-bench" });
    for (let i = 0; ; i++) {
      const up = await client.send({ method: "GET", path: "/readyz" }).then((res) => {
        res.resume();
        return res.statusCode === 200;
      }, () => false);
      if (up) break;
      if (i > 300) throw new Error("apiserver did not become ready");
      await new Promise((r) => setTimeout(r, 100));
    }

    // 1. The raw create rate of this apiserver: configmaps at `concurrency`.
    const cms = client.resource<ConfigMap>("", "configmaps");
    await client.resource<Namespace>("", "namespaces").create("", { metadata: { name: "raw" } });
    const cmObj = (name: string): ConfigMap => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, labels: { bench: "controllers" } }, data: { key: "x".repeat(200) } });
    await drive(200, concurrency, async (i) => void (await cms.create("raw", cmObj(`warm-${i}`))));
    const rawRate = (await drive(writes, concurrency, async (i) => void (await cms.create("raw", cmObj(`cm-${i}`))))).rate;

    // 2. The controller-manager (not leader-elected: one process), caches synced before the clock starts.
    const cmPort = await findFreePort();
    cm = startComponent(["controller-manager", "--kubeconfig", kubeconfig, "--controllers", "replicaset,deployment", "--port", String(cmPort), "--workers", values.workers!]);
    for (let i = 0; ; i++) {
      const r = await fetch(`http://127.0.0.1:${cmPort}/readyz`).then((x) => x.status, () => 0);
      if (r === 200) break;
      if (cm.exitCode !== null) throw new Error(`controller-manager exited (${cm.exitCode})`);
      if (i > 300) throw new Error("controller-manager did not become ready");
      await new Promise((r2) => setTimeout(r2, 100));
    }
    await client.resource<Namespace>("", "namespaces").create("", { metadata: { name: "scale" } });
    await new Promise((r) => setTimeout(r, 1000)); // let the informers see the quiet state

    // 3. Watch pods in the namespace, then create the Deployment and time until `replicas` pods exist.
    const podRes = client.resource<Pod>("", "pods");
    const list = await podRes.list("scale");
    const ac = new AbortController();
    const seen = new Set<string>();
    let firstPodMs = 0;
    let t0 = 0;
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const watching = (async () => {
      let rv = list.metadata.resourceVersion ?? "";
      while (!ac.signal.aborted) {
        try {
          for await (const ev of podRes.watch("scale", { resourceVersion: rv, allowWatchBookmarks: true }, ac.signal)) {
            rv = ev.object.metadata.resourceVersion ?? rv;
            if (ev.type !== "ADDED") continue;
            if (seen.size === 0) firstPodMs = performance.now() - t0;
            seen.add(ev.object.metadata.uid ?? ev.object.metadata.name ?? "");
            if (seen.size >= replicas) resolveDone();
          }
        } catch (e) {
          if (!ac.signal.aborted) process.stderr.write(`pod watch failed, re-watching: ${(e as Error).message}\n`);
        }
      }
    })();
    const deploy: Deployment = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "big" },
      spec: {
        replicas,
        selector: { matchLabels: { app: "big" } },
        template: { metadata: { labels: { app: "big" } }, spec: { containers: [{ name: "c", image: "nginx:1.25" }] } },
      },
    };
    t0 = performance.now();
    await client.resource<Deployment>("apps", "deployments").create("scale", deploy);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      done.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs))),
    ]);
    clearTimeout(timer);
    const elapsedS = (performance.now() - t0) / 1000;
    ac.abort();
    await watching;
    const podRate = seen.size / elapsedS;
    const ratio = podRate / rawRate;
    const lines = [
      `kubelab controllers bench (etcd ${etcd.endpoints[0]}, replicaset+deployment controllers, ${values.workers} workers)`,
      `  raw apiserver creates/s          ${rawRate.toFixed(0)}   (configmaps, ${writes} at concurrency ${concurrency})`,
      `  deployment pods created          ${seen.size} of ${replicas}${timedOut ? `   TIMED OUT after ${values.timeout}s` : ""}`,
      `  first pod after                  ${firstPodMs.toFixed(0)} ms`,
      `  create -> ${replicas} pods             ${elapsedS.toFixed(2)} s`,
      `  pods/s                           ${podRate.toFixed(0)}`,
      `  ratio pods/s / raw creates/s     ${ratio.toFixed(2)}`,
    ];
    process.stdout.write(lines.join("\n") + "\n");
    if (timedOut) throw new Error(`only ${seen.size} of ${replicas} pods were created within ${values.timeout}s`);
  } finally {
    client?.close();
    await stopProcess(cm);
    await stopProcess(apiserver);
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
