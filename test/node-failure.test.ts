// Node failure: one zone's kubelet pool stops (SIGSTOP, so `kubelab up` does not restart it); its
// nodes go NotReady after --node-monitor-grace-period, get the unreachable taints, and after the
// pods' tolerationSeconds (set by --default-unreachable-toleration-seconds) their pods are evicted
// and replaced in the other zones. Then the pool resumes and the nodes recover.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startKubelab, type Kubelab } from "./harness/kubelab.ts";
import { poll as pollEvery } from "./harness/poll.ts";

/** Failures and recoveries here take tens of seconds: a longer default than the harness's. */
const poll = <T,>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 90_000): Promise<T> => pollEvery(what, fn, timeoutMs, 500);

let k: Kubelab;
let paused: number | undefined;

interface Obj {
  metadata: { name: string; labels?: Record<string, string>; deletionTimestamp?: string };
  spec?: { nodeName?: string; taints?: { key: string; effect: string; timeAdded?: string }[]; tolerations?: { key?: string; tolerationSeconds?: number }[] };
  status?: { conditions?: { type: string; status: string; reason?: string }[] };
}

async function getJSON(args: string[]): Promise<Obj[]> {
  const r = await k.kubectl([...args, "-o", "json"]);
  if (r.code !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout) as { items: Obj[] }).items;
}


const ready = (o: Obj): string | undefined => o.status?.conditions?.find((c) => c.type === "Ready")?.status;

beforeAll(async () => {
  k = await startKubelab({
    nodes: true,
    extraArgs: ["--node-monitor-grace-period", "10s", "--default-not-ready-toleration-seconds", "5", "--default-unreachable-toleration-seconds", "5"],
  });
});

afterAll(async () => {
  if (paused) process.kill(paused, "SIGCONT");
  await k?.stop({ clean: true });
});

describe("a zone's kubelets stop", () => {
  it("marks the nodes NotReady, taints them, evicts their pods and replaces them in the other zones", async () => {
    const nodes = await poll("6 Ready nodes", async () => {
      const n = await getJSON(["get", "nodes"]);
      return n.length === 6 && n.every((x) => ready(x) === "True") ? n : undefined;
    });
    const zoneOf = Object.fromEntries(nodes.map((n) => [n.metadata.name, n.metadata.labels?.["topology.kubernetes.io/zone"]]));
    const create = await k.kubectl(["create", "deployment", "app", "--image=busybox", "--replicas=6", "--", "httpd", "-f", "-p", "8080"]);
    expect(create.code, create.stderr).toBe(0);
    const rollout = await k.kubectl(["rollout", "status", "deployment/app", "--timeout=90s"], { timeoutMs: 100_000 });
    expect(rollout.code, rollout.stderr).toBe(0);
    const pods = await getJSON(["get", "pods", "-l", "app=app"]);
    // DefaultTolerationSeconds admission, with the seconds from the apiserver flags.
    expect(pods[0].spec?.tolerations).toEqual(
      expect.arrayContaining([expect.objectContaining({ key: "node.kubernetes.io/unreachable", tolerationSeconds: 5 }), expect.objectContaining({ key: "node.kubernetes.io/not-ready", tolerationSeconds: 5 })]),
    );
    const inA = pods.filter((p) => zoneOf[p.spec!.nodeName!] === "local-1a").map((p) => p.metadata.name);
    expect(inA.length).toBeGreaterThan(0);

    const up = JSON.parse(readFileSync(join(k.dataDir, "up.json"), "utf8")) as { components: { name: string; pid?: number }[] };
    const pool = up.components.find((c) => c.name === "kubelet-local-1a");
    expect(pool?.pid).toBeGreaterThan(0);
    paused = pool!.pid!;
    process.kill(paused, "SIGSTOP");
    const stoppedAt = Date.now();

    const down = await poll("local-1a nodes Unknown and tainted unreachable", async () => {
      const n = (await getJSON(["get", "nodes"])).filter((x) => zoneOf[x.metadata.name] === "local-1a");
      return n.every((x) => ready(x) === "Unknown" && x.spec?.taints?.some((t) => t.key === "node.kubernetes.io/unreachable" && t.effect === "NoExecute")) ? n : undefined;
    });
    const detectedS = (Date.now() - stoppedAt) / 1000;
    // Not before the 10 s grace period counted from the last renewal (Leases renew every 2.5 s here).
    expect(detectedS).toBeGreaterThanOrEqual(7);
    for (const n of down) {
      expect(n.spec?.taints?.map((t) => `${t.key}:${t.effect}`)).toEqual(expect.arrayContaining(["node.kubernetes.io/unreachable:NoExecute", "node.kubernetes.io/unreachable:NoSchedule"]));
      expect(n.status?.conditions?.find((c) => c.type === "Ready")?.reason).toBe("NodeStatusUnknown");
    }
    const table = await k.kubectl(["get", "nodes"]);
    expect(table.stdout).toMatch(/general-local-1a-\d\s+NotReady/);

    // After tolerationSeconds the taint manager deletes the pods; the ReplicaSet replaces them elsewhere.
    const replaced = await poll("6 ready pods outside local-1a, the old ones terminating", async () => {
      const all = await getJSON(["get", "pods", "-l", "app=app"]);
      const live = all.filter((p) => !p.metadata.deletionTimestamp);
      const oldGoing = inA.every((name) => all.find((p) => p.metadata.name === name)?.metadata.deletionTimestamp !== undefined || !all.some((p) => p.metadata.name === name));
      return oldGoing && live.length === 6 && live.every((p) => zoneOf[p.spec?.nodeName ?? ""] !== "local-1a" && ready(p) === "True") ? live : undefined;
    });
    expect(replaced.map((p) => p.metadata.name)).not.toEqual(expect.arrayContaining(inA));
    const events = await k.kubectl(["get", "events", "--field-selector", "reason=TaintManagerEviction"]);
    expect(events.stdout).toContain("TaintManagerEviction");

    // The pool comes back: nodes Ready again, taints gone, the terminating pods finished.
    process.kill(paused, "SIGCONT");
    paused = undefined;
    await poll("local-1a nodes Ready without taints", async () => {
      const n = (await getJSON(["get", "nodes"])).filter((x) => zoneOf[x.metadata.name] === "local-1a");
      return n.every((x) => ready(x) === "True" && !(x.spec?.taints ?? []).some((t) => t.key.startsWith("node.kubernetes.io/"))) ? true : undefined;
    });
    await poll("the evicted pods gone", async () => {
      const all = await getJSON(["get", "pods", "-l", "app=app"]);
      return inA.every((name) => !all.some((p) => p.metadata.name === name)) ? true : undefined;
    });
  });
});
