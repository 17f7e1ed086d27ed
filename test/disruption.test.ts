// PodDisruptionBudgets end to end under `kubelab up` (simulated nodes): the disruption controller's
// status, validation messages, the eviction subresource's 429, and `kubectl drain` of two nodes
// holding pods of a minAvailable-2 budget waiting for the first pod's replacement to be Ready.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Pod, PodDisruptionBudget } from "../api/index.ts";
import { RestClient } from "../client/index.ts";
import { startKubelab, type Kubelab } from "./harness/kubelab.ts";
import { request } from "./harness/http.ts";
import { poll } from "./harness/poll.ts";

let k: Kubelab;
let client: RestClient;
const NS = "default";

async function kc(args: string[], input?: string): Promise<string> {
  const r = await k.kubectl(args, { input, timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

const isReady = (p: Readonly<Pod>): boolean => p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
const pods = () => client.resource<Pod>("", "pods");
const pdbs = () => client.resource<PodDisruptionBudget>("policy", "poddisruptionbudgets");

// Three replicas on three different nodes; a replacement becomes Ready only ~6 s after it starts,
// so the drain's second eviction must wait for it.
const deployment = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - topologyKey: kubernetes.io/hostname
            labelSelector: {matchLabels: {app: web}}
      containers:
      - name: web
        image: busybox
        command: [sleep, "3600"]
        readinessProbe:
          exec: {command: ["true"]}
          initialDelaySeconds: 6
          periodSeconds: 1
`;

const pdb = `
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  minAvailable: 2
  selector: {matchLabels: {app: web}}
`;

beforeAll(async () => {
  k = await startKubelab({ nodes: true });
  client = RestClient.fromKubeconfig(k.kubeconfig);
}, 120_000);

afterAll(async () => {
  await k?.stop({ clean: true });
});

describe("PodDisruptionBudget", () => {
  it("rejects invalid budgets with upstream's messages", async () => {
    const r = await k.kubectl(["apply", "-f", "-"], {
      input: `apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: bad}
spec:
  maxUnavailable: "150%"
  selector: {matchLabels: {app: x}}
`,
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('spec.maxUnavailable: Invalid value: "150%": must not be greater than 100%');
    const both = await k.kubectl(["apply", "-f", "-"], { input: `apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: bad}\nspec: {minAvailable: 1, maxUnavailable: 1}\n` });
    expect(both.stderr).toContain("minAvailable and maxUnavailable cannot be both set");
  });

  it("computes status from the pods' readiness, and a percentage against the Deployment's scale", async () => {
    await kc(["apply", "-f", "-"], deployment);
    await kc(["apply", "-f", "-"], pdb);
    const ready = await poll("3 ready web pods", async () => {
      const l = (await pods().list(NS, { labelSelector: "app=web" })).items.filter((p) => !p.metadata.deletionTimestamp);
      return l.length === 3 && l.every(isReady) ? l : undefined;
    }, 120_000);
    expect(new Set(ready.map((p) => p.spec?.nodeName)).size).toBe(3);
    const st = await poll("the budget allows one disruption", async () => {
      const s = (await pdbs().get(NS, "web")).status;
      return s?.disruptionsAllowed === 1 && s.currentHealthy === 3 ? s : undefined;
    });
    expect(st).toMatchObject({ currentHealthy: 3, desiredHealthy: 2, expectedPods: 3, disruptionsAllowed: 1, observedGeneration: 1 });
    expect(st.conditions?.find((c) => c.type === "DisruptionAllowed")).toMatchObject({ status: "True", reason: "SufficientPods" });
    const table = await kc(["get", "pdb", "web"]);
    expect(table.split("\n")[0]).toMatch(/^NAME\s+MIN AVAILABLE\s+MAX UNAVAILABLE\s+ALLOWED DISRUPTIONS\s+AGE$/);
    expect(table.split("\n")[1]).toMatch(/^web\s+2\s+N\/A\s+1\s+/);

    // maxUnavailable 34% of the Deployment's 3 replicas rounds up to 2: desiredHealthy 1.
    await kc(["create", "pdb", "pct", "--selector=app=web", "--max-unavailable=34%"]);
    const pct = await poll("the percentage budget's status", async () => (await pdbs().get(NS, "pct")).status?.expectedPods === 3 ? (await pdbs().get(NS, "pct")).status : undefined);
    expect(pct).toMatchObject({ expectedPods: 3, desiredHealthy: 1, currentHealthy: 3, disruptionsAllowed: 2 });

    // Two budgets over one pod: the eviction API refuses with upstream's 500.
    const victim = ready[0]!.metadata.name!;
    const res = await request(k, {
      method: "POST",
      path: `/api/v1/namespaces/${NS}/pods/${victim}/eviction`,
      body: JSON.stringify({ apiVersion: "policy/v1", kind: "Eviction", metadata: { name: victim, namespace: NS } }),
      headers: { "content-type": "application/json" },
    });
    expect(res.status).toBe(500);
    expect(JSON.parse(res.text).message).toBe("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.");
    await kc(["delete", "pdb", "pct"]);
  }, 180_000);

  it("an eviction that would violate the budget is a 429 with the DisruptionBudget cause (dry run takes nothing)", async () => {
    // A dry run takes no disruption from the budget, so it succeeds every time.
    const victim = (await pods().list(NS, { labelSelector: "app=web" })).items[0]!.metadata.name!;
    for (let i = 0; i < 2; i++) {
      const dry = await request(k, {
        method: "POST",
        path: `/api/v1/namespaces/${NS}/pods/${victim}/eviction?dryRun=All`,
        body: JSON.stringify({ apiVersion: "policy/v1", kind: "Eviction", metadata: { name: victim } }),
        headers: { "content-type": "application/json" },
      });
      expect(dry.status).toBe(201);
    }
    expect((await pdbs().get(NS, "web")).status?.disruptionsAllowed).toBe(1);
    // minAvailable 3 over 3 pods: nothing may go.
    await kc(["patch", "pdb", "web", "--type=merge", "-p", '{"spec":{"minAvailable":3}}']);
    await poll("the budget allows no disruption", async () => {
      const p = await pdbs().get(NS, "web");
      return p.status?.observedGeneration === 2 && p.status.disruptionsAllowed === 0 ? p : undefined;
    });
    const res = await request(k, {
      method: "POST",
      path: `/api/v1/namespaces/${NS}/pods/${victim}/eviction`,
      body: JSON.stringify({ apiVersion: "policy/v1", kind: "Eviction", metadata: { name: victim } }),
      headers: { "content-type": "application/json" },
    });
    expect(res.status).toBe(429);
    const status = JSON.parse(res.text) as { reason: string; message: string; details: { causes: { reason: string; message: string }[] } };
    expect(status.reason).toBe("TooManyRequests");
    expect(status.message).toBe("Cannot evict pod as it would violate the pod's disruption budget.");
    expect(status.details.causes).toEqual([{ reason: "DisruptionBudget", message: "The disruption budget web needs 3 healthy pods and has 3 currently" }]);
    expect((await pods().get(NS, victim)).metadata.deletionTimestamp).toBeUndefined();
    await kc(["patch", "pdb", "web", "--type=merge", "-p", '{"spec":{"minAvailable":2}}']);
    await poll("the budget allows one disruption again", async () => {
      const p = await pdbs().get(NS, "web");
      return p.status?.observedGeneration === 3 && p.status.disruptionsAllowed === 1 ? p : undefined;
    });
  }, 60_000);

  it("kubectl drain of two nodes evicts one pod, then waits for its replacement to be Ready before the second", async () => {
    const before = (await pods().list(NS, { labelSelector: "app=web" })).items;
    const [a, b] = before;
    const nodes = [a!.spec!.nodeName!, b!.spec!.nodeName!];
    const originals = new Set(before.map((p) => p.metadata.name!));

    // A timeline from a watch: when each original pod began terminating, when each new pod became Ready,
    // and the fewest Ready non-terminating pods seen at any point.
    const timeline: { at: number; what: "terminating" | "ready"; pod: string }[] = [];
    const state = new Map<string, Pod>(before.map((p) => [p.metadata.name!, p]));
    let minHealthy = Infinity;
    const ac = new AbortController();
    const list = await pods().list(NS, { labelSelector: "app=web" });
    const watching = (async () => {
      try {
        for await (const ev of pods().watch(NS, { labelSelector: "app=web", resourceVersion: list.metadata.resourceVersion }, ac.signal)) {
          if (ev.type !== "ADDED" && ev.type !== "MODIFIED" && ev.type !== "DELETED") continue;
          const p = ev.object;
          const name = p.metadata.name!;
          const prev = state.get(name);
          if (originals.has(name) && p.metadata.deletionTimestamp && !prev?.metadata.deletionTimestamp) timeline.push({ at: Date.now(), what: "terminating", pod: name });
          if (!originals.has(name) && isReady(p) && !(prev && isReady(prev))) timeline.push({ at: Date.now(), what: "ready", pod: name });
          if (ev.type === "DELETED") state.delete(name);
          else state.set(name, p);
          const healthy = [...state.values()].filter((x) => isReady(x) && !x.metadata.deletionTimestamp).length;
          minHealthy = Math.min(minHealthy, healthy);
        }
      } catch (e) {
        if (!ac.signal.aborted) throw e;
      }
    })();

    try {
      const r = await k.kubectl(["drain", ...nodes, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=120s"], { timeoutMs: 150_000 });
      expect(r.code, r.stderr + r.stdout).toBe(0);
      // kubectl retried the second eviction on the 429 (every 5 s, as upstream's drain does).
      expect(r.stderr + r.stdout).toContain(`(will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.`);
      await poll(
        "3 ready web pods off the drained nodes",
        async () => {
          const l = (await pods().list(NS, { labelSelector: "app=web" })).items.filter((p) => !p.metadata.deletionTimestamp);
          if (l.length === 3 && l.every(isReady) && l.every((p) => !nodes.includes(p.spec?.nodeName ?? ""))) return l;
          // Shown if the poll times out.
          throw new Error(l.map((p) => `${p.metadata.name} on ${p.spec?.nodeName ?? "-"} ${p.status?.phase ?? ""} ready=${isReady(p)}`).join("; "));
        },
        120_000,
      );
    } finally {
      ac.abort();
      await watching;
    }

    const terminating = timeline.filter((t) => t.what === "terminating");
    expect(terminating.map((t) => t.pod).sort()).toEqual([a!.metadata.name, b!.metadata.name].sort());
    const firstReplacementReady = timeline.findIndex((t) => t.what === "ready");
    const secondEviction = timeline.indexOf(terminating[1]!);
    expect(timeline.indexOf(terminating[0]!)).toBeLessThan(firstReplacementReady);
    expect(firstReplacementReady).toBeLessThan(secondEviction);
    // The budget held throughout: never fewer than minAvailable Ready pods that were not terminating.
    expect(minHealthy).toBeGreaterThanOrEqual(2);
  }, 300_000);
});
