// The highly available control plane (P7): `kubelab up --etcd spawn --apiservers 2`. SIGKILL each
// apiserver in turn: kubectl through the cluster endpoint goes on (one retry allowed), and a watch-gap
// checker — a client watching ConfigMaps while a writer writes numbered ones, re-watching from its
// last resourceVersion whenever its stream breaks — sees every object's ADDED exactly once across
// the switch. SIGKILL the leading scheduler and controller-manager during a rollout: the standbys
// take over within the lease duration and the rollout completes with no pod created twice.

import http from "node:http";
import https from "node:https";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConfigMap, KubeObject, Pod } from "../api/index.ts";
import { clientFromKubeconfig } from "../cli/component.ts";
import type { RestClient } from "../client/index.ts";
import { startKubelab, type Kubelab, type UpComponent } from "./harness/kubelab.ts";
import { poll } from "./harness/poll.ts";

let k: Kubelab;
let client: RestClient;


function readyz(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/readyz", timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", () => resolve(0));
    req.on("timeout", () => req.destroy());
  });
}

function apiserverReady(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.get({ host: "127.0.0.1", port, path: "/readyz", ca: k.caCert, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
  });
}

/** The process of a leader-elected pair that holds the lease now: its /readyz is 200. */
async function leaderOf(prefix: string): Promise<UpComponent> {
  return poll(`the leading ${prefix}`, async () => {
    for (const c of k.components().filter((x) => x.name.startsWith(prefix) && x.pid)) if ((await readyz(c.healthPort!)) === 200) return c;
    return undefined;
  });
}

async function kc(args: string[], input?: string): Promise<string> {
  // One retry: the request in flight on a killed apiserver's connection fails once.
  for (let attempt = 1; ; attempt++) {
    const r = await k.kubectl(args, { input, timeoutMs: 60_000 });
    if (r.code === 0) return r.stdout;
    if (attempt >= 2) throw new Error(`kubectl ${args.join(" ")} failed (${r.code}): ${r.stderr}${r.stdout}`);
  }
}

beforeAll(async () => {
  k = await startKubelab({ etcd: "spawn", nodes: true, extraArgs: ["--apiservers", "2"] });
  client = clientFromKubeconfig(k.kubeconfig);
  await poll("6 nodes Ready", async () => {
    const out = await kc(["get", "nodes", "--no-headers"]);
    return out.split("\n").filter((l) => / Ready /.test(l)).length === 6;
  }, 120_000);
}, 180_000);

afterAll(async () => {
  await k?.stop();
});

describe("up --etcd spawn --apiservers 2", () => {
  it("serves through the endpoint while one apiserver is SIGKILLed, and a watcher sees every event exactly once", async () => {
    await kc(["create", "namespace", "gap"]);
    const cms = client.resource<ConfigMap>("", "configmaps");
    const start = await cms.list("gap");
    let rv = start.metadata.resourceVersion!;
    const seen = new Map<string, number>();
    let rewatches = 0;
    const stop = new AbortController();
    // The watch-gap checker: a raw watch, resumed from the last resourceVersion it saw.
    const watcher = (async () => {
      while (!stop.signal.aborted) {
        try {
          for await (const ev of cms.watch("gap", { resourceVersion: rv, allowWatchBookmarks: true }, stop.signal)) {
            if (ev.type === "ERROR") throw new Error(`watch error: ${JSON.stringify(ev.object)}`);
            rv = (ev.object as KubeObject).metadata.resourceVersion ?? rv;
            // (kube-root-ca.crt, the root-ca-cert-publisher's, is not the writer's)
            if (ev.type === "ADDED" && ev.object.metadata.name!.startsWith("cm-")) seen.set(ev.object.metadata.name!, (seen.get(ev.object.metadata.name!) ?? 0) + 1);
          }
        } catch (e) {
          if (stop.signal.aborted) break;
          if (/watch error/.test((e as Error).message)) throw e;
        }
        if (!stop.signal.aborted) {
          rewatches++;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    })();
    const total = 240;
    let failures = 0;
    const writer = (async () => {
      for (let i = 0; i < total; i++) {
        const name = `cm-${String(i).padStart(4, "0")}`;
        for (let attempt = 1; ; attempt++) {
          try {
            await cms.create("gap", { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: "gap" }, data: { n: String(i) } });
            break;
          } catch (e) {
            // A create whose answer was lost with its apiserver may have happened: then it exists.
            if ((e as { code?: number }).code === 409) break;
            failures++;
            if (attempt > 20) throw e;
            await new Promise((r) => setTimeout(r, 250));
          }
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    // Kill one apiserver a third of the way in, the other at two thirds (after the first is back):
    // whichever one the watch was on, it has to move at least once.
    const kill = async (name: string, at: number) => {
      await poll(`${at} objects seen`, async () => seen.size >= at, 60_000, 50);
      const victim = k.components().find((c) => c.name === name)!;
      process.kill(victim.pid!, "SIGKILL");
      // kubectl keeps working through the endpoint while it is down (one retry allowed).
      expect(await kc(["get", "namespace", "gap", "-o", "name"])).toContain("namespace/gap");
      await poll(`${name} restarted and ready`, async () => {
        const c = k.components().find((x) => x.name === name)!;
        return c.pid !== victim.pid && c.restarts >= 1 && (await apiserverReady(c.healthPort!));
      }, 60_000);
    };
    await kill("apiserver-1", total / 3);
    // Two health-check passes and the endpoint routes to it again.
    await new Promise((r) => setTimeout(r, 2500));
    await kill("apiserver-2", (2 * total) / 3);
    await writer;
    await poll(`all ${total} ADDED events`, async () => seen.size === total, 60_000, 100);
    stop.abort();
    await watcher;
    const dup = [...seen].filter(([, n]) => n !== 1);
    console.log(`watch-gap checker: ${seen.size}/${total} objects seen once, ${dup.length} repeated, ${rewatches} re-watch(es), ${failures} create retries`);
    expect(dup).toEqual([]);
    expect(rewatches).toBeGreaterThanOrEqual(1);
  }, 180_000);

  it("the standby scheduler and controller-manager take over a rollout in progress; no pod is created twice", async () => {
    await kc(["create", "namespace", "roll"]);
    await kc(["apply", "-f", "-"], `apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: roll }
spec:
  replicas: 6
  strategy: { rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } }
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      terminationGracePeriodSeconds: 0
      containers: [{ name: c, image: busybox, command: [httpd, -f, -p, "8080"] }]
`);
    await kc(["rollout", "status", "deployment/web", "-n", "roll", "--timeout=120s"]);
    // Count every pod ever created from here on, by the ReplicaSet that owns it.
    const created = new Map<string, Set<string>>();
    const stop = new AbortController();
    const pods = client.resource<Pod>("", "pods");
    const list = await pods.list("roll");
    const watch = (async () => {
      try {
        for await (const ev of pods.watch("roll", { resourceVersion: list.metadata.resourceVersion }, stop.signal)) {
          if (ev.type !== "ADDED") continue;
          const owner = ev.object.metadata.ownerReferences?.[0]?.name ?? "";
          if (!created.has(owner)) created.set(owner, new Set());
          created.get(owner)!.add(ev.object.metadata.name!);
        }
      } catch {
        // ends with the abort
      }
    })();
    // Slow pods (2 s to start) keep the rollout in progress while the leaders die.
    await kc(["patch", "deployment", "web", "-n", "roll", "--type", "merge", "-p", `{"spec":{"template":{"metadata":{"annotations":{"sim.kubelab.io/start-delay":"2s"}}}}}`]);
    const sched = await leaderOf("scheduler-");
    const cm = await leaderOf("controller-manager-");
    process.kill(sched.pid!, "SIGKILL");
    process.kill(cm.pid!, "SIGKILL");
    const t0 = Date.now();
    const newSched = await poll("a standby scheduler leading", async () => {
      const l = await leaderOf("scheduler-");
      return l.name !== sched.name || l.pid !== sched.pid ? l : undefined;
    }, 60_000);
    const newCM = await poll("a standby controller-manager leading", async () => {
      const l = await leaderOf("controller-manager-");
      return l.name !== cm.name || l.pid !== cm.pid ? l : undefined;
    }, 60_000);
    console.log(`takeover: scheduler ${sched.name} -> ${newSched.name}, controller-manager ${cm.name} -> ${newCM.name}, ${Date.now() - t0} ms (lease 15 s)`);
    await kc(["rollout", "status", "deployment/web", "-n", "roll", "--timeout=120s"]);
    stop.abort();
    await watch;
    const rs = JSON.parse(await kc(["get", "rs", "-n", "roll", "-o", "json"])) as { items: { metadata: { name: string; annotations?: Record<string, string> }; spec: { replicas: number } }[] };
    const newest = rs.items.find((r) => r.spec.replicas === 6)!;
    // The new ReplicaSet created exactly its 6 pods: none twice, none extra (deleted again as surplus).
    expect(created.get(newest.metadata.name)?.size).toBe(6);
    const running = (await pods.list("roll")).items.filter((p) => !p.metadata.deletionTimestamp);
    expect(running).toHaveLength(6);
  }, 240_000);
});
