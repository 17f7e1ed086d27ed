// Integration acceptance for the controller-manager (issue 3): `kubelab up` (apiserver + two
// leader-elected controller-managers), the real kubectl, and fakenodes standing in for the
// scheduler and the kubelets.

import { readFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Deployment, ReplicaSet } from "../api/apps/v1.ts";
import type { Job } from "../api/batch/v1.ts";
import type { Endpoints, Event, Namespace, Pod, Service } from "../api/core/v1.ts";
import type { Lease } from "../api/coordination/v1.ts";
import type { EndpointSlice } from "../api/discovery/v1.ts";
import { isNotFound, RestClient, type WatchEvent } from "../client/index.ts";
import { CONTROLLERS } from "../controllers/registry.ts";
import { startFakeNodes, type FakeNodes } from "./harness/fakenodes.ts";
import { startKubelab, type Kubelab } from "./harness/kubelab.ts";
import { poll } from "./harness/poll.ts";

let k: Kubelab;
let client: RestClient;
let nodes: FakeNodes;

const UNREADY = "kubelab.test/unready";
const REGISTERED = Object.keys(CONTROLLERS);
/** Appended to timeouts so that a failure caused by an unregistered controller says so. */
function needs(...controllers: string[]): string {
  const missing = controllers.filter((c) => !REGISTERED.some((r) => r.replace(/[-_]/g, "") === c.replace(/[-_]/g, "")));
  return missing.length ? ` [controller missing: ${missing.join(", ")} not in controllers/registry.ts (${REGISTERED.join(",")})]` : "";
}

beforeAll(async () => {
  k = await startKubelab();
  client = RestClient.fromKubeconfig(k.kubeconfig);
  nodes = await startFakeNodes(client, { nodes: 3, readyDelayMs: 100, jobCompleteDelayMs: 300, unready: (p) => p.metadata.labels?.[UNREADY] === "true" });
});

afterAll(async () => {
  await nodes?.stop();
  client?.close();
  await k?.stop({ clean: true });
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));


async function ok(args: string[], opts: { input?: string; timeoutMs?: number; note?: string } = {}): Promise<string> {
  const r = await k.kubectl(args, { input: opts.input, timeoutMs: opts.timeoutMs ?? 90_000 });
  expect(r.code, `kubectl ${args.join(" ")} failed (${r.code}):\n${r.stderr}${r.stdout}${opts.note ?? ""}`).toBe(0);
  return r.stdout;
}

async function apply(obj: object, ns: string): Promise<void> {
  await ok(["apply", "-n", ns, "-f", "-"], { input: JSON.stringify(obj) });
}

async function newNamespace(name: string): Promise<string> {
  await client.resource<Namespace>("", "namespaces").create("", { metadata: { name } });
  return name;
}

const pods = () => client.resource<Pod>("", "pods");
const rsets = () => client.resource<ReplicaSet>("apps", "replicasets");
const deploys = () => client.resource<Deployment>("apps", "deployments");

function deployment(name: string, opts: { replicas: number; image?: string; labels?: Record<string, string>; maxSurge?: number; maxUnavailable?: number }): Deployment {
  const labels = opts.labels ?? { app: name };
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name },
    spec: {
      replicas: opts.replicas,
      selector: { matchLabels: labels },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: opts.maxSurge ?? 1, maxUnavailable: opts.maxUnavailable ?? 0 } },
      template: {
        metadata: { labels },
        spec: { containers: [{ name: name, image: opts.image ?? "nginx:1.25", ports: [{ containerPort: 80, name: "http" }] }] },
      },
    },
  };
}

const isReady = (p: Readonly<Pod>): boolean => p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
const isActive = (p: Readonly<Pod>): boolean => !p.metadata.deletionTimestamp && p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed";
const ownedBy = (o: { metadata: { ownerReferences?: { uid: string }[] } }, uid: string | undefined): boolean =>
  !!uid && (o.metadata.ownerReferences ?? []).some((r) => r.uid === uid);

/** Watches the pods of a namespace from now on, calling `check` with the full current set after every event. */
async function watchPods(ns: string, check: (all: Map<string, Pod>, ev: WatchEvent<Pod>) => void): Promise<{ stop(): Promise<void>; events: () => number }> {
  const list = await pods().list(ns);
  const all = new Map<string, Pod>(list.items.map((p) => [p.metadata.name!, p]));
  const ac = new AbortController();
  let count = 0;
  const loop = (async () => {
    let rv = list.metadata.resourceVersion ?? "";
    while (!ac.signal.aborted) {
      try {
        for await (const ev of pods().watch(ns, { resourceVersion: rv, allowWatchBookmarks: true }, ac.signal)) {
          if (ev.type === "BOOKMARK") {
            rv = ev.object.metadata.resourceVersion ?? rv;
            continue;
          }
          if (ev.type === "ERROR") throw new Error(`watch error: ${JSON.stringify(ev.object)}`);
          rv = ev.object.metadata.resourceVersion ?? rv;
          if (ev.type === "DELETED") all.delete(ev.object.metadata.name!);
          else all.set(ev.object.metadata.name!, ev.object);
          count++;
          check(all, ev);
        }
      } catch (e) {
        if (ac.signal.aborted) break;
        throw e;
      }
    }
  })();
  return {
    events: () => count,
    async stop() {
      ac.abort();
      await loop;
    },
  };
}

async function listPods(ns: string, selector?: string): Promise<Pod[]> {
  return (await pods().list(ns, selector ? { labelSelector: selector } : {})).items;
}

async function waitDeploymentReady(ns: string, name: string, replicas: number): Promise<void> {
  await poll(`deployment ${ns}/${name} to have ${replicas} available replicas`, async () => {
    const d = await deploys().get(ns, name);
    const s = d.status ?? {};
    const readyPods = (await listPods(ns, `app=${d.spec?.selector.matchLabels?.app ?? name}`)).filter((p) => isActive(p) && isReady(p)).length;
    const good =
      (s.observedGeneration ?? 0) >= (d.metadata.generation ?? 1) &&
      s.replicas === replicas &&
      s.updatedReplicas === replicas &&
      s.availableReplicas === replicas &&
      readyPods === replicas;
    if (!good) throw new Error(`generation ${d.metadata.generation}, status ${JSON.stringify({ ...s, conditions: undefined })}, ready pods ${readyPods}`);
    return true;
  }, 90_000);
}

function revisionsOf(history: string): number[] {
  return history
    .split("\n")
    .map((l) => /^\s*(\d+)\s/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]));
}

describe("controllers against a real cluster", () => {
  it("a Deployment creates a ReplicaSet and pods; rollout status succeeds", async () => {
    const ns = await newNamespace("deploy-basic");
    await apply(deployment("web", { replicas: 3 }), ns);
    await ok(["rollout", "status", "deployment/web", "-n", ns, "--timeout=60s"], { note: needs("deployment", "replicaset") });
    const d = await deploys().get(ns, "web");
    const rs = (await rsets().list(ns)).items;
    expect(rs).toHaveLength(1);
    expect(ownedBy(rs[0], d.metadata.uid)).toBe(true);
    expect(rs[0].metadata.labels?.["pod-template-hash"]).toBeTruthy();
    expect(rs[0].metadata.annotations?.["deployment.kubernetes.io/revision"]).toBe("1");
    const ps = await listPods(ns);
    expect(ps).toHaveLength(3);
    for (const p of ps) {
      expect(ownedBy(p, rs[0].metadata.uid)).toBe(true);
      expect(p.spec?.nodeName).toMatch(/^fake-node-/);
      expect(isReady(p)).toBe(true);
    }
    expect(d.status?.readyReplicas).toBe(3);
    expect(d.status?.conditions?.find((c) => c.type === "Available")?.status).toBe("True");
  }, 120_000);

  it("a rolling update keeps within maxSurge/maxUnavailable on every watch event; history and undo work", async () => {
    const ns = await newNamespace("deploy-rolling");
    const replicas = 4;
    const maxSurge = 1;
    const maxUnavailable = 1;
    await apply(deployment("web", { replicas, maxSurge, maxUnavailable, image: "nginx:1.25" }), ns);
    await ok(["rollout", "status", "deployment/web", "-n", ns, "--timeout=60s"]);
    await waitDeploymentReady(ns, "web", replicas);

    const violations: string[] = [];
    let maxSeen = 0;
    let minReady = Number.POSITIVE_INFINITY;
    const w = await watchPods(ns, (all, ev) => {
      const active = [...all.values()].filter(isActive);
      const ready = active.filter(isReady).length;
      maxSeen = Math.max(maxSeen, active.length);
      minReady = Math.min(minReady, ready);
      if (active.length > replicas + maxSurge) violations.push(`${ev.type} ${ev.object.metadata.name}: ${active.length} pods > ${replicas + maxSurge}`);
      if (ready < replicas - maxUnavailable) violations.push(`${ev.type} ${ev.object.metadata.name}: ${ready} available < ${replicas - maxUnavailable}`);
    });
    try {
      await ok(["set", "image", "deployment/web", "web=nginx:1.26", "-n", ns]);
      await ok(["rollout", "status", "deployment/web", "-n", ns, "--timeout=60s"]);
      await waitDeploymentReady(ns, "web", replicas);
      const active = (await listPods(ns)).filter(isActive);
      expect(active.map((p) => p.spec?.containers[0].image)).toEqual(Array(replicas).fill("nginx:1.26"));

      const history = await ok(["rollout", "history", "deployment/web", "-n", ns]);
      expect(revisionsOf(history), history).toEqual([1, 2]);

      await ok(["rollout", "undo", "deployment/web", "-n", ns]);
      await ok(["rollout", "status", "deployment/web", "-n", ns, "--timeout=60s"]);
      await waitDeploymentReady(ns, "web", replicas);
      const d = await deploys().get(ns, "web");
      expect(d.spec?.template.spec?.containers[0].image).toBe("nginx:1.25");
      await poll("pods back on nginx:1.25", async () => {
        const imgs = (await listPods(ns)).filter(isActive).map((p) => p.spec?.containers[0].image);
        return imgs.length === replicas && imgs.every((i) => i === "nginx:1.25");
      });
      expect(revisionsOf(await ok(["rollout", "history", "deployment/web", "-n", ns]))).toEqual([2, 3]);
    } finally {
      await w.stop();
    }
    expect(w.events()).toBeGreaterThan(10);
    expect(violations, violations.slice(0, 20).join("\n")).toEqual([]);
    expect(maxSeen).toBeGreaterThan(replicas - 1);
    expect(minReady).toBeGreaterThanOrEqual(replicas - maxUnavailable);
  }, 240_000);

  it("kubectl scale scales up and down", async () => {
    const ns = await newNamespace("deploy-scale");
    await apply(deployment("web", { replicas: 2 }), ns);
    await waitDeploymentReady(ns, "web", 2);
    await ok(["scale", "deployment/web", "--replicas=6", "-n", ns]);
    await waitDeploymentReady(ns, "web", 6);
    expect((await rsets().list(ns)).items[0].spec?.replicas).toBe(6);
    await ok(["scale", "deployment/web", "--replicas=1", "-n", ns]);
    await waitDeploymentReady(ns, "web", 1);
    await poll("the scaled-down pods to be gone", async () => (await listPods(ns)).length === 1);
    await ok(["rollout", "status", "deployment/web", "-n", ns, "--timeout=60s"]);
  }, 180_000);

  it("a Job with completions 3 completes", async () => {
    const ns = await newNamespace("job");
    const job: Job = {
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name: "j" },
      spec: {
        completions: 3,
        parallelism: 2,
        backoffLimit: 2,
        template: { spec: { restartPolicy: "Never", containers: [{ name: "work", image: "busybox:1.36", command: ["true"] }] } },
      },
    };
    await apply(job, ns);
    await ok(["wait", "--for=condition=complete", "job/j", "-n", ns, "--timeout=60s"], { note: needs("job") });
    const j = await client.resource<Job>("batch", "jobs").get(ns, "j");
    expect(j.status?.succeeded).toBe(3);
    expect(j.status?.active ?? 0).toBe(0);
    expect(j.status?.conditions?.find((c) => c.type === "Complete")?.status).toBe("True");
    const jp = await listPods(ns, "batch.kubernetes.io/job-name=j");
    expect(jp.filter((p) => p.status?.phase === "Succeeded")).toHaveLength(3);
    expect(jp.every((p) => ownedBy(p, j.metadata.uid))).toBe(true);
  }, 120_000);

  describe("deleting a Deployment", () => {
    async function gone(ns: string, what: string): Promise<void> {
      await poll(`${what}: the ReplicaSets and pods of deployment/web to be gone${needs("garbagecollector")}`, async () => {
        const [rs, ps] = await Promise.all([rsets().list(ns), listPods(ns)]);
        return rs.items.length === 0 && ps.length === 0;
      }, 90_000);
      await expect(deploys().get(ns, "web")).rejects.toSatisfy(isNotFound);
    }

    it("background (the default) removes its ReplicaSets and pods", async () => {
      const ns = await newNamespace("delete-bg");
      await apply(deployment("web", { replicas: 3 }), ns);
      await waitDeploymentReady(ns, "web", 3);
      await ok(["delete", "deployment", "web", "-n", ns, "--timeout=60s"]);
      await gone(ns, "background");
    }, 180_000);

    it("--cascade=foreground removes its ReplicaSets and pods before the Deployment", async () => {
      const ns = await newNamespace("delete-fg");
      await apply(deployment("web", { replicas: 3 }), ns);
      await waitDeploymentReady(ns, "web", 3);
      await ok(["delete", "deployment", "web", "-n", ns, "--cascade=foreground", "--timeout=90s"], { timeoutMs: 120_000, note: needs("garbagecollector") });
      await gone(ns, "foreground");
    }, 180_000);

    it("--cascade=orphan leaves the ReplicaSet and pods, without the ownerReference", async () => {
      const ns = await newNamespace("delete-orphan");
      await apply(deployment("web", { replicas: 3 }), ns);
      await waitDeploymentReady(ns, "web", 3);
      const d = await deploys().get(ns, "web");
      const rsBefore = (await rsets().list(ns)).items;
      const podsBefore = (await listPods(ns)).map((p) => p.metadata.uid).sort();
      await ok(["delete", "deployment", "web", "-n", ns, "--cascade=orphan", "--timeout=60s"], { note: needs("garbagecollector") });
      await expect(deploys().get(ns, "web")).rejects.toSatisfy(isNotFound);
      const rs = await poll(`the ReplicaSet to lose its ownerReference${needs("garbagecollector")}`, async () => {
        const items = (await rsets().list(ns)).items;
        return items.length === 1 && !ownedBy(items[0], d.metadata.uid) ? items[0] : undefined;
      });
      expect(rs.metadata.uid).toBe(rsBefore[0].metadata.uid);
      expect(rs.metadata.ownerReferences ?? []).toEqual([]);
      await sleep(3000); // give a wrong cascade a chance to show
      const after = await listPods(ns);
      expect(after.map((p) => p.metadata.uid).sort()).toEqual(podsBefore);
      expect(after.every((p) => ownedBy(p, rs.metadata.uid))).toBe(true);
      expect((await rsets().list(ns)).items).toHaveLength(1);
    }, 180_000);
  });

  it("kubectl delete namespace removes everything in it, then the namespace", async () => {
    const ns = await newNamespace("doomed");
    await apply(deployment("web", { replicas: 2 }), ns);
    await apply({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cfg" }, data: { a: "1" } }, ns);
    await apply({ apiVersion: "v1", kind: "Secret", metadata: { name: "sec" }, stringData: { a: "1" } }, ns);
    await apply({ apiVersion: "v1", kind: "Service", metadata: { name: "web" }, spec: { selector: { app: "web" }, ports: [{ port: 80 }] } }, ns);
    await waitDeploymentReady(ns, "web", 2);
    await ok(["delete", "namespace", ns, "--timeout=90s"], { timeoutMs: 120_000, note: needs("namespace") });
    await poll(`namespace ${ns} to be gone${needs("namespace")}`, async () => {
      try {
        await client.resource<Namespace>("", "namespaces").get("", ns);
        return false;
      } catch (e) {
        return isNotFound(e);
      }
    }, 90_000);
    for (const [group, resource] of [["", "pods"], ["apps", "replicasets"], ["apps", "deployments"], ["", "configmaps"], ["", "secrets"], ["", "services"]] as const) {
      const items = (await client.resource(group, resource).list(ns)).items;
      expect(items.map((o) => `${resource}/${o.metadata.name}`)).toEqual([]);
    }
  }, 180_000);

  it("a Service with a selector gets Endpoints and an EndpointSlice with the ready pods' IPs", async () => {
    const ns = await newNamespace("svc");
    await apply(deployment("web", { replicas: 3, labels: { app: "web" } }), ns);
    await waitDeploymentReady(ns, "web", 3);
    const svc: Service = { apiVersion: "v1", kind: "Service", metadata: { name: "web" }, spec: { selector: { app: "web" }, ports: [{ name: "http", port: 80, targetPort: 80, protocol: "TCP" }] } };
    await apply(svc, ns);
    const ready = (await listPods(ns)).filter((p) => isActive(p) && isReady(p));
    const ips = ready.map((p) => p.status!.podIP!).sort();
    expect(ips).toHaveLength(3);

    const ep = await poll(`Endpoints ${ns}/web with 3 addresses${needs("endpoints")}`, async () => {
      const e = await client.resource<Endpoints>("", "endpoints").get(ns, "web");
      const n = (e.subsets ?? []).reduce((a, s) => a + (s.addresses?.length ?? 0), 0);
      return n === 3 ? e : undefined;
    });
    const addrs = (ep.subsets ?? []).flatMap((s) => s.addresses ?? []);
    expect(addrs.map((a) => a.ip).sort()).toEqual(ips);
    for (const a of addrs) {
      const p = ready.find((x) => x.status?.podIP === a.ip)!;
      expect(a.targetRef?.kind).toBe("Pod");
      expect(a.targetRef?.name).toBe(p.metadata.name);
      expect(a.nodeName).toBe(p.spec?.nodeName);
    }
    expect(ep.subsets?.[0].ports?.[0].port).toBe(80);

    const slice = await poll(`an EndpointSlice for ${ns}/web with 3 ready endpoints${needs("endpointslice")}`, async () => {
      const items = (await client.resource<EndpointSlice>("discovery.k8s.io", "endpointslices").list(ns, { labelSelector: "kubernetes.io/service-name=web" })).items;
      const ready = items.flatMap((s) => s.endpoints ?? []).filter((e) => e.conditions?.ready === true);
      return ready.length === 3 ? items : undefined;
    });
    const eps = slice.flatMap((s) => s.endpoints ?? []);
    expect(eps.flatMap((e) => e.addresses).sort()).toEqual(ips);
    for (const e of eps) {
      expect(e.targetRef?.kind).toBe("Pod");
      expect(e.nodeName).toMatch(/^fake-node-/);
      expect(e.zone).toBe(nodes.zones[e.nodeName!]);
    }
    expect(slice[0].addressType).toBe("IPv4");
    expect(slice[0].ports?.[0].port).toBe(80);

    // Scale down to 2: the endpoints follow.
    await ok(["scale", "deployment/web", "--replicas=2", "-n", ns]);
    await waitDeploymentReady(ns, "web", 2);
    await poll("Endpoints to follow the scale-down to 2", async () => {
      const want = (await listPods(ns)).filter((p) => isActive(p) && isReady(p)).map((p) => p.status!.podIP!).sort();
      const e = await client.resource<Endpoints>("", "endpoints").get(ns, "web");
      const got = (e.subsets ?? []).flatMap((s) => s.addresses ?? []).map((a) => a.ip).sort();
      return want.length === 2 && JSON.stringify(got) === JSON.stringify(want);
    });
  }, 180_000);

  it("a not-ready pod is listed as not ready in Endpoints and the EndpointSlice", async () => {
    const ns = await newNamespace("svc-unready");
    await client.resource<Service>("", "services").create(ns, { apiVersion: "v1", kind: "Service", metadata: { name: "web" }, spec: { selector: { app: "web" }, ports: [{ port: 80 }] } });
    const pod = (name: string, labels: Record<string, string>): Pod => ({ apiVersion: "v1", kind: "Pod", metadata: { name, labels }, spec: { containers: [{ name: "c", image: "nginx" }] } });
    await pods().create(ns, pod("ready", { app: "web" }));
    // fakenodes runs pods labelled kubelab.test/unready=true (with an IP) but never marks them Ready.
    await pods().create(ns, pod("unready", { app: "web", [UNREADY]: "true" }));
    const [r, u] = await poll("both pods to run", async () => {
      const [a, b] = await Promise.all([pods().get(ns, "ready"), pods().get(ns, "unready")]);
      return a.status?.phase === "Running" && b.status?.phase === "Running" ? [a, b] : undefined;
    });
    expect(isReady(r)).toBe(true);
    expect(isReady(u)).toBe(false);
    const readyIP = r.status!.podIP!;
    const unreadyIP = u.status!.podIP!;
    await poll(`Endpoints with 1 ready and 1 not-ready address${needs("endpoints")}`, async () => {
      const e = await client.resource<Endpoints>("", "endpoints").get(ns, "web");
      const a = (e.subsets ?? []).flatMap((s) => s.addresses ?? []).map((x) => x.ip);
      const n = (e.subsets ?? []).flatMap((s) => s.notReadyAddresses ?? []).map((x) => x.ip);
      return JSON.stringify(a) === JSON.stringify([readyIP]) && JSON.stringify(n) === JSON.stringify([unreadyIP]);
    });
    await poll(`an EndpointSlice with the not-ready endpoint${needs("endpointslice")}`, async () => {
      const items = (await client.resource<EndpointSlice>("discovery.k8s.io", "endpointslices").list(ns, { labelSelector: "kubernetes.io/service-name=web" })).items;
      const eps = items.flatMap((s) => s.endpoints ?? []);
      const ue = eps.find((e) => e.addresses.includes(unreadyIP));
      const re = eps.find((e) => e.addresses.includes(readyIP));
      return eps.length === 2 && ue?.conditions?.ready === false && re?.conditions?.ready === true && ue.zone === nodes.zones[u.spec!.nodeName!];
    });
  }, 120_000);

  it("leader failover: the other controller-manager takes the Lease and finishes pending work without duplicate pods", async () => {
    const ns = await newNamespace("failover");
    const leases = client.resource<Lease>("coordination.k8s.io", "leases");
    const lease = await poll("the controller-manager Lease to be held", async () => {
      const l = await leases.get("kube-system", "kube-controller-manager");
      return l.spec?.holderIdentity ? l : undefined;
    });
    const holder = lease.spec!.holderIdentity!;
    const durationS = lease.spec?.leaseDurationSeconds ?? 15;

    // A deployment settled under the first leader: the new leader must not create its pods again.
    await apply(deployment("before", { replicas: 3 }), ns);
    await waitDeploymentReady(ns, "before", 3);

    const leader = await findLeader(holder);
    const overLimit: string[] = [];
    const w = await watchPods(ns, (all, ev) => {
      for (const [app, limit] of [["before", 3], ["after", 5 + 1]] as const) {
        const n = [...all.values()].filter((p) => p.metadata.labels?.app === app && isActive(p)).length;
        if (n > limit) overLimit.push(`${ev.type} ${ev.object.metadata.name}: ${n} ${app} pods > ${limit}`);
      }
    });
    try {
      const killedAt = Date.now();
      process.kill(leader.pid, "SIGKILL");
      // Work that arrives while nobody leads.
      await apply(deployment("after", { replicas: 5 }), ns);

      const newLease = await poll("another controller-manager to take the Lease", async () => {
        const l = await leases.get("kube-system", "kube-controller-manager");
        return l.spec?.holderIdentity && l.spec.holderIdentity !== holder ? l : undefined;
      }, (durationS + 20) * 1000, 200);
      const tookMs = Date.now() - killedAt;
      expect(tookMs, `took the Lease after ${tookMs} ms`).toBeLessThan((durationS + 10) * 1000);
      expect(newLease.spec?.leaseTransitions ?? 0).toBeGreaterThan(lease.spec?.leaseTransitions ?? -1);

      try {
        await waitDeploymentReady(ns, "after", 5);
      } catch (e) {
        const logs = ["controller-manager-1", "controller-manager-2"].map((n) => `--- ${n}.log (tail)\n${readLog(join(k.dataDir, "logs", `${n}.log`)).split("\n").slice(-30).join("\n")}`);
        const l = await leases.get("kube-system", "kube-controller-manager");
        throw new Error(`${(e as Error).message}\nlease now ${JSON.stringify(l.spec)} (killed ${leader.name} pid ${leader.pid}, holder ${holder})\n${logs.join("\n")}`);
      }
      await ok(["rollout", "status", "deployment/after", "-n", ns, "--timeout=60s"]);
      await sleep(3000); // let any duplicate creation surface
    } finally {
      await w.stop();
    }
    expect(overLimit, overLimit.join("\n")).toEqual([]);
    const all = await listPods(ns);
    expect(all.filter((p) => p.metadata.labels?.app === "after")).toHaveLength(5);
    expect(all.filter((p) => p.metadata.labels?.app === "before")).toHaveLength(3);

    // SuccessfulCreate events per ReplicaSet: exactly one creation per replica.
    const rsList = (await rsets().list(ns)).items;
    const events = (await client.resource<Event>("", "events").list(ns)).items;
    for (const [app, replicas] of [["before", 3], ["after", 5]] as const) {
      const rs = rsList.filter((r) => r.metadata.labels?.app === app);
      expect(rs).toHaveLength(1);
      const creates = events
        .filter((e) => e.reason === "SuccessfulCreate" && e.involvedObject.kind === "ReplicaSet" && e.involvedObject.name === rs[0].metadata.name)
        .reduce((n, e) => n + (e.count ?? 1), 0);
      expect(creates, `SuccessfulCreate events for ${rs[0].metadata.name}`).toBe(replicas);
    }
  }, 180_000);
});

/** The pid of the controller-manager whose /readyz answers 200 (only the leader is ready), cross-checked with up.json. */
async function findLeader(holder: string): Promise<{ pid: number; name: string }> {
  const state = JSON.parse(readFileSync(join(k.dataDir, "up.json"), "utf8")) as { components: { name: string; pid?: number }[] };
  const cms = state.components.filter((c) => c.name.startsWith("controller-manager-") && c.pid);
  expect(cms).toHaveLength(2);
  const found: { pid: number; name: string }[] = [];
  for (const c of cms) {
    // "became leader" with the identity, when the log level lets it through.
    const log = readLog(join(k.dataDir, "logs", `${c.name}.log`));
    if (log.includes(holder) && /became leader/.test(log)) {
      found.push({ pid: c.pid!, name: c.name });
      continue;
    }
    const port = healthPort(c.pid!, log);
    if (port && (await readyz(port)) === 200) found.push({ pid: c.pid!, name: c.name });
  }
  expect(found, `exactly one leader among ${JSON.stringify(cms)} (holder ${holder})`).toHaveLength(1);
  return found[0];
}

function readLog(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** The /healthz port: from the "serving /healthz" log line, else from the process's `--port N` argument. */
function healthPort(pid: number, log: string): number | undefined {
  const m = /"port":(\d+)[^\n]*serving \/healthz/.exec(log);
  if (m) return Number(m[1]);
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    const i = argv.indexOf("--port");
    return i >= 0 ? Number(argv[i + 1]) : undefined;
  } catch {
    return undefined;
  }
}

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
