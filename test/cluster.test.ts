// The whole cluster under the default `kubelab up` (simulated kubelet pools in three zones), driven by
// the real kubectl: nodes and leases, a zone-spread Deployment end to end, scaling, rolling update and
// undo, replacement, events, logs, a Job, CrashLoopBackOff, FailedScheduling, drain, and cleanup.

import { execFile } from "node:child_process";
import http from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, startKubelab, type Kubelab } from "./harness/kubelab.ts";
import { poll } from "./harness/poll.ts";

let k: Kubelab;

interface Obj {
  metadata: { name: string; namespace?: string; uid?: string; labels?: Record<string, string>; deletionTimestamp?: string; ownerReferences?: { kind: string; name: string }[] };
  spec?: Record<string, unknown> & { nodeName?: string; unschedulable?: boolean; taints?: { key: string; effect: string }[] };
  status?: Record<string, unknown> & {
    phase?: string;
    podIP?: string;
    conditions?: { type: string; status: string; reason?: string }[];
    containerStatuses?: { name: string; restartCount: number; ready: boolean; state?: { waiting?: { reason?: string }; running?: unknown; terminated?: { exitCode: number } } }[];
  };
}

async function kc(args: string[], input?: string): Promise<string> {
  const r = await k.kubectl(args, { input, timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

async function getJSON(args: string[]): Promise<{ items: Obj[] }> {
  return JSON.parse(await kc([...args, "-o", "json"])) as { items: Obj[] };
}


const isReady = (o: Obj): boolean => o.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;

async function nodeZones(): Promise<Record<string, string>> {
  const nodes = await getJSON(["get", "nodes"]);
  return Object.fromEntries(nodes.items.map((n) => [n.metadata.name, n.metadata.labels?.["topology.kubernetes.io/zone"] ?? ""]));
}

async function webPods(): Promise<Obj[]> {
  return (await getJSON(["get", "pods", "-l", "app=web"])).items.filter((p) => !p.metadata.deletionTimestamp);
}

function httpGet(host: string, port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: "/hello", timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timeout")));
  });
}

const deployment = (image: string, replicas: number): string => `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: ${replicas}
  selector:
    matchLabels: {app: web}
  strategy:
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 2
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: topology.kubernetes.io/zone
        whenUnsatisfiable: DoNotSchedule
        labelSelector:
          matchLabels: {app: web}
      containers:
      - name: web
        image: ${image}
        command: [httpd, -f, -p, "8080"]
        ports:
        - containerPort: 8080
        resources:
          requests: {cpu: 100m, memory: 64Mi}
        readinessProbe:
          httpGet: {path: /ready, port: 8080}
          periodSeconds: 1
`;

beforeAll(async () => {
  k = await startKubelab({ nodes: true });
});

afterAll(async () => {
  await k?.stop({ clean: true });
});

describe("kubelab up: the whole cluster, driven by kubectl", () => {
  it("has 6 Ready nodes in 3 zones, each with a Lease in kube-node-lease", async () => {
    const nodes = await poll("6 Ready nodes", async () => {
      const list = await getJSON(["get", "nodes"]);
      return list.items.length === 6 && list.items.every(isReady) ? list.items : undefined;
    });
    const perZone: Record<string, number> = {};
    for (const n of nodes) {
      const zone = n.metadata.labels?.["topology.kubernetes.io/zone"] ?? "";
      perZone[zone] = (perZone[zone] ?? 0) + 1;
      expect(n.metadata.labels?.["topology.kubernetes.io/region"]).toBe("local-1");
      expect(n.metadata.labels?.["kubernetes.io/hostname"]).toBe(n.metadata.name);
    }
    expect(perZone).toEqual({ "local-1a": 2, "local-1b": 2, "local-1c": 2 });
    const leases = await getJSON(["get", "leases", "-n", "kube-node-lease"]);
    expect(leases.items.map((l) => l.metadata.name).sort()).toEqual(nodes.map((n) => n.metadata.name).sort());
    for (const l of leases.items) expect((l.spec as { holderIdentity?: string }).holderIdentity).toBe(l.metadata.name);
    const wide = await kc(["get", "nodes", "-o", "wide"]);
    expect(wide).toMatch(/Ready/);
  });

  it("kubelab status shows every process with its zone, health and leadership", async () => {
    const run = (args: string[]) =>
      new Promise<{ code: number; out: string }>((res) => {
        execFile(process.execPath, ["--import", "tsx", join(REPO, "cli/main.ts"), "status", "--data-dir", k.dataDir, ...args], { cwd: REPO }, (err, stdout, stderr) =>
          res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
        );
      });
    const table = await run([]);
    expect(table.code, table.out).toBe(0);
    expect(table.out).toMatch(/apiserver\s+-\s+\d+\s+running\s+\d+\s+ok\s+ok/);
    for (const zone of ["local-1a", "local-1b", "local-1c"]) expect(table.out).toMatch(new RegExp(`kubelet-${zone}\\s+${zone}\\s+\\d+\\s+running`));
    const json = JSON.parse((await run(["-o", "json"])).out) as { components: { name: string; alive: boolean; healthz: string; readyz: string }[] };
    const schedulers = json.components.filter((c) => c.name.startsWith("scheduler-"));
    expect(schedulers.every((c) => c.alive && c.healthz === "ok")).toBe(true);
    // Leader election: exactly one scheduler is ready (the leader), once one holds the Lease.
    await poll("one scheduler leader", async () => {
      const now = JSON.parse((await run(["-o", "json"])).out) as typeof json;
      return now.components.filter((c) => c.name.startsWith("scheduler-") && c.readyz === "ok").length === 1 || undefined;
    }, 30_000);
  });

  it("starts a crash-looping pod and a pod failing its liveness probe early (checked at the end)", async () => {
    await kc(["apply", "-f", "-"], `
apiVersion: v1
kind: Pod
metadata:
  name: flaky
  annotations:
    sim.kubelab.io/probe-fail-after: 2s
spec:
  containers:
  - name: app
    image: busybox
    command: [httpd, -f, -p, "8080"]
    ports:
    - containerPort: 8080
    livenessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: 1
      failureThreshold: 2
`);
    await kc(["apply", "-f", "-"], `
apiVersion: v1
kind: Pod
metadata:
  name: crasher
  annotations:
    sim.kubelab.io/exit-after: 300ms
    sim.kubelab.io/exit-code: "3"
spec:
  containers:
  - name: app
    image: busybox
`);
  });

  it("rolls out a zone-spread Deployment whose pods have IPs, answer HTTP and spread over the zones", async () => {
    await kc(["apply", "-f", "-"], deployment("busybox:1.36", 6));
    const out = await kc(["rollout", "status", "deployment/web", "--timeout=120s"]);
    expect(out).toContain('deployment "web" successfully rolled out');
    const pods = await webPods();
    expect(pods).toHaveLength(6);
    const zones = await nodeZones();
    const perZone: Record<string, number> = {};
    for (const p of pods) {
      expect(p.status?.phase).toBe("Running");
      expect(p.status?.podIP).toMatch(/^127\./);
      const zone = zones[p.spec!.nodeName!];
      perZone[zone] = (perZone[zone] ?? 0) + 1;
    }
    expect(perZone).toEqual({ "local-1a": 2, "local-1b": 2, "local-1c": 2 });
    const answer = await httpGet(pods[0].status!.podIP!, 8080);
    expect(answer.status).toBe(200);
    expect(answer.body).toContain(pods[0].metadata.name);
    expect(answer.body).toContain(zones[pods[0].spec!.nodeName!]);
  });

  it("scales to 9 with 3 pods per zone", async () => {
    await kc(["scale", "deployment/web", "--replicas=9"]);
    await kc(["rollout", "status", "deployment/web", "--timeout=120s"]);
    const pods = await poll("9 ready web pods", async () => {
      const p = await webPods();
      return p.length === 9 && p.every(isReady) ? p : undefined;
    });
    const zones = await nodeZones();
    const perZone: Record<string, number> = {};
    for (const p of pods) perZone[zones[p.spec!.nodeName!]] = (perZone[zones[p.spec!.nodeName!]] ?? 0) + 1;
    expect(perZone).toEqual({ "local-1a": 3, "local-1b": 3, "local-1c": 3 });
  });

  it("does a rolling update and rollout undo", async () => {
    await kc(["set", "image", "deployment/web", "web=busybox:1.37"]);
    await kc(["rollout", "status", "deployment/web", "--timeout=180s"]);
    let pods = await webPods();
    expect(pods).toHaveLength(9);
    for (const p of pods) expect(JSON.stringify(p.spec)).toContain("busybox:1.37");
    const history = await kc(["rollout", "history", "deployment/web"]);
    expect(history).toMatch(/1\s/);
    expect(history).toMatch(/2\s/);
    await kc(["rollout", "undo", "deployment/web"]);
    await kc(["rollout", "status", "deployment/web", "--timeout=180s"]);
    pods = await poll("9 web pods back on busybox:1.36", async () => {
      const p = await webPods();
      return p.length === 9 && p.every((x) => JSON.stringify(x.spec).includes("busybox:1.36")) ? p : undefined;
    });
    expect(pods.every(isReady)).toBe(true);
  });

  it("replaces a deleted pod", async () => {
    const before = await webPods();
    const victim = before[0].metadata.name;
    await kc(["delete", "pod", victim, "--wait=true"]);
    const after = await poll("9 ready pods without the deleted one", async () => {
      const p = await webPods();
      return p.length === 9 && p.every(isReady) && !p.some((x) => x.metadata.name === victim) ? p : undefined;
    });
    expect(after.map((p) => p.metadata.name)).not.toContain(victim);
  });

  it("describe pod shows the scheduler's and the kubelet's events", async () => {
    const pods = await webPods();
    const name = pods[0].metadata.name;
    const text = await poll("Started event", async () => {
      const t = await kc(["describe", "pod", name]);
      return t.includes("Started") ? t : undefined;
    });
    expect(text).toMatch(/Successfully assigned default\/\S+ to general-local-1[abc]-\d/);
    expect(text).toMatch(/Created\s+.*[Cc]reated container/);
    expect(text).toMatch(/Started\s+.*Started container web/);
    expect(text).toMatch(/IP:\s+127\./);
  });

  it("serves container logs through kubectl logs (with --tail and --timestamps)", async () => {
    const pods = await webPods();
    const name = pods[0].metadata.name;
    const logs = await poll("probe lines in the log", async () => {
      const t = await kc(["logs", name]);
      return t.includes("/ready") ? t : undefined;
    });
    expect(logs).toContain(`started on node ${pods[0].spec!.nodeName}`);
    expect(logs).toContain(pods[0].status!.podIP);
    const tail = await kc(["logs", name, "--tail=1"]);
    expect(tail.trim().split("\n")).toHaveLength(1);
    const ts = await kc(["logs", name, "--tail=2", "--timestamps"]);
    for (const line of ts.trim().split("\n")) expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z /);
  });

  it("runs a Job to completion and shows what it printed", async () => {
    await kc(["create", "job", "hello", "--image=busybox", "--", "sh", "-c", "echo hello from the job; sleep 1; exit 0"]);
    await kc(["wait", "--for=condition=complete", "job/hello", "--timeout=90s"]);
    const jobs = await getJSON(["get", "jobs"]);
    const job = jobs.items.find((j) => j.metadata.name === "hello")!;
    expect((job.status as { succeeded?: number }).succeeded).toBe(1);
    const logs = await kc(["logs", "job/hello"]);
    expect(logs).toContain("hello from the job");
    // -f on a finished container returns what it printed and ends.
    const followed = await k.kubectl(["logs", "-f", "job/hello"], { timeoutMs: 20_000 });
    expect(followed.code, followed.stderr).toBe(0);
    expect(followed.stdout).toContain("hello from the job");
  });

  it("gives an over-sized pod a FailedScheduling event", async () => {
    await kc(["run", "huge", "--image=busybox", "--overrides", JSON.stringify({ spec: { containers: [{ name: "huge", image: "busybox", resources: { requests: { cpu: "100" } } }] } })]);
    const events = await poll("FailedScheduling", async () => {
      const t = await kc(["get", "events", "--field-selector", "involvedObject.name=huge"]);
      return t.includes("FailedScheduling") ? t : undefined;
    });
    expect(events).toMatch(/0\/6 nodes are available: 6 Insufficient cpu/);
    await kc(["delete", "pod", "huge", "--wait=false"]);
  });

  it("the crashing pod reaches CrashLoopBackOff with a growing restart count", async () => {
    const first = await poll("CrashLoopBackOff", async () => {
      const p = JSON.parse(await kc(["get", "pod", "crasher", "-o", "json"])) as Obj;
      const cs = p.status?.containerStatuses?.[0];
      return cs?.state?.waiting?.reason === "CrashLoopBackOff" && cs.restartCount >= 1 ? cs.restartCount : undefined;
    }, 90_000);
    const later = await poll("a higher restart count", async () => {
      const p = JSON.parse(await kc(["get", "pod", "crasher", "-o", "json"])) as Obj;
      const n = p.status?.containerStatuses?.[0]?.restartCount ?? 0;
      return n > first ? n : undefined;
    }, 90_000);
    expect(later).toBeGreaterThan(first);
    await poll("CrashLoopBackOff in kubectl get", async () => /CrashLoopBackOff/.test(await kc(["get", "pod", "crasher"])) || undefined, 60_000);
    const prev = await k.kubectl(["logs", "crasher", "--previous"]);
    expect(prev.code, prev.stderr).toBe(0);
    await kc(["delete", "pod", "crasher", "--wait=false"]);
  });

  it("restarts a container whose liveness probe fails, with Unhealthy and Killing events", async () => {
    const restarts = await poll("a liveness restart", async () => {
      const p = JSON.parse(await kc(["get", "pod", "flaky", "-o", "json"])) as Obj;
      const n = p.status?.containerStatuses?.[0]?.restartCount ?? 0;
      return n >= 1 ? n : undefined;
    }, 60_000);
    expect(restarts).toBeGreaterThanOrEqual(1);
    const events = await kc(["get", "events", "--field-selector", "involvedObject.name=flaky"]);
    expect(events).toMatch(/Unhealthy.*Liveness probe failed: HTTP probe failed with statuscode: 503/);
    expect(events).toMatch(/Killing.*failed liveness probe, will be restarted/);
    await kc(["delete", "pod", "flaky", "--wait=false"]);
  });

  it("drains a node: its pods are evicted and come back elsewhere", async () => {
    const pods = await webPods();
    const node = pods[0].spec!.nodeName!;
    const onNode = pods.filter((p) => p.spec!.nodeName === node).map((p) => p.metadata.name);
    const r = await k.kubectl(["drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout=120s"], { timeoutMs: 150_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toContain("evicting pod");
    const after = await poll("9 ready web pods, none on the drained node", async () => {
      const p = await webPods();
      return p.length === 9 && p.every(isReady) && p.every((x) => x.spec!.nodeName !== node) ? p : undefined;
    }, 120_000);
    for (const name of onNode) expect(after.map((p) => p.metadata.name)).not.toContain(name);
    const nodes = await getJSON(["get", "nodes"]);
    const drained = nodes.items.find((n) => n.metadata.name === node)!;
    expect(drained.spec?.unschedulable).toBe(true);
    await kc(["uncordon", node]);
  });

  it("deleting the Deployment removes its ReplicaSets and pods", async () => {
    await kc(["delete", "deployment", "web"]);
    await poll("no web pods or replicasets", async () => {
      const pods = await getJSON(["get", "pods", "-l", "app=web"]);
      const rs = await getJSON(["get", "replicasets", "-l", "app=web"]);
      return pods.items.length === 0 && rs.items.length === 0 ? true : undefined;
    }, 90_000);
  });
});
