// Every process of the default `kubelab up` (simulated nodes in three zones) serves upstream metric
// names on /metrics: each process listed in DATA/up.json is scraped on its health port (the
// apiserver over https with the admin token, as `kubectl get --raw /metrics`), and its names are
// checked against a table of what that kind of process must export — the REST client's and leader
// election's (client-go's names), the kubelet's, the scheduler's, the work queues', kube-proxy's,
// CoreDNS's and ingress-nginx's. Leader election is checked across the candidates: exactly one
// scheduler and one controller-manager report leader_election_master_status 1.

import http from "node:http";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startKubelab, type Kubelab } from "./harness/kubelab.ts";
import { poll } from "./harness/poll.ts";

let k: Kubelab;

interface Component {
  name: string;
  pid?: number;
  healthPort?: number;
  healthScheme?: "http" | "https";
}

/** One scrape in the Prometheus text format: the families it declares and its samples. */
interface Scrape {
  families: Set<string>;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

function parseExposition(text: string): Scrape {
  const out: Scrape = { families: new Set(), samples: [] };
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) \S+/.exec(line);
    if (type) out.families.add(type[1]);
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    out.samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** Samples of `name` whose labels include `labels`. */
function series(s: Scrape, name: string, labels: Record<string, string> = {}): { labels: Record<string, string>; value: number }[] {
  return s.samples.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
}

const total = (s: Scrape, name: string, labels: Record<string, string> = {}): number => series(s, name, labels).reduce((n, x) => n + x.value, 0);

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path, agent: false, timeout: 10_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error(`GET 127.0.0.1:${port}${path} timed out`)));
    req.on("error", reject);
  });
}

async function kc(args: string[]): Promise<string> {
  const r = await k.kubectl(args, { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** A process's /metrics: the apiserver's through kubectl (https, bearer token), the rest on their 127.0.0.1 health port. */
async function scrape(c: Component): Promise<Scrape> {
  if (c.healthScheme === "https") return parseExposition(await kc(["get", "--raw", "/metrics"]));
  const r = await get(c.healthPort!, "/metrics");
  if (r.status !== 200) throw new Error(`${c.name}: /metrics answered ${r.status}: ${r.body.slice(0, 200)}`);
  return parseExposition(r.body);
}

/** client-go's, in every process that talks to the apiserver through the REST client. */
const REST_CLIENT = ["rest_client_requests_total", "rest_client_request_duration_seconds"];

/**
 * Process kind (its up.json name without the zone or ordinal) → the metric families it must declare.
 * `leading` adds what a leader-elected process exports only while it leads (its controllers run then).
 */
const REQUIRED: Record<string, { always: string[]; leading?: string[] }> = {
  apiserver: {
    always: ["apiserver_request_total", "apiserver_request_duration_seconds", "apiserver_current_inflight_requests", "apiserver_watch_events_total", "etcd_request_duration_seconds"],
  },
  scheduler: {
    always: [...REST_CLIENT, "leader_election_master_status"],
    leading: ["scheduler_pending_pods", "scheduler_schedule_attempts_total", "scheduler_scheduling_attempt_duration_seconds", "scheduler_pod_scheduling_sli_duration_seconds"],
  },
  "controller-manager": {
    always: [...REST_CLIENT, "leader_election_master_status"],
    leading: ["workqueue_adds_total", "workqueue_depth", "workqueue_queue_duration_seconds", "workqueue_work_duration_seconds", "workqueue_retries_total"],
  },
  // Its node-group and serverless queues are given no registry: they report to the process-wide one.
  "cloud-controller": { always: [...REST_CLIENT, "leader_election_master_status"], leading: ["workqueue_adds_total", "workqueue_depth"] },
  kubelet: {
    always: [
      ...REST_CLIENT,
      "kubelet_node_name",
      "kubelet_running_pods",
      "kubelet_running_containers",
      "kubelet_pod_start_duration_seconds",
      "kubelet_pod_worker_duration_seconds",
      "kubelet_pleg_relist_duration_seconds",
    ],
  },
  proxy: { always: [...REST_CLIENT, "kubeproxy_sync_proxy_rules_duration_seconds", "kubeproxy_sync_proxy_rules_last_timestamp_seconds"] },
  dns: { always: [...REST_CLIENT, "coredns_dns_requests_total", "coredns_dns_responses_total", "coredns_dns_request_duration_seconds"] },
  ingress: { always: [...REST_CLIENT, "nginx_ingress_controller_requests", "nginx_ingress_controller_request_duration_seconds"] },
};

/** "scheduler-2" → scheduler, "kubelet-local-1a" → kubelet, "proxy-local-1b" → proxy. */
function kindOf(name: string): string {
  for (const kind of Object.keys(REQUIRED).sort((a, b) => b.length - a.length)) if (name === kind || name.startsWith(`${kind}-`)) return kind;
  return name;
}

/** The work queues of every controller of the controller-manager (controllers/<name>/setup.ts). */
const CONTROLLER_MANAGER_QUEUES = [
  "attachdetach", "cronjob", "csrapproving", "csrsigning", "daemonset", "deployment", "disruption", "endpoint", "endpoint_slice", "garbagecollector", "job", "namespace",
  "node_lifecycle_controller", "node_lifecycle_controller_pods", "persistentvolume", "pvcprotection", "pvprotection", "replicaset",
  "resourcequota", "statefulset", "taint_eviction_nodes", "taint_eviction_pods", "ttl-after-finished",
  "clusterrole-aggregation", "root_ca_cert_publisher", "serviceaccount", "serviceaccount_tokens_secret", "serviceaccount_tokens_service",
].sort();

/** The lease each leader-elected kind campaigns for (the name label of leader_election_master_status). */
const LEASES: Record<string, string> = { scheduler: "kube-scheduler", "controller-manager": "kube-controller-manager", "cloud-controller": "kubelab-cloud-controller" };

let components: Component[] = [];

beforeAll(async () => {
  k = await startKubelab({ nodes: true });
  const up = JSON.parse(readFileSync(join(k.dataDir, "up.json"), "utf8")) as { components: Component[] };
  components = up.components.filter((c) => c.healthPort);
  await poll("6 Ready nodes", async () => {
    const nodes = JSON.parse(await kc(["get", "nodes", "-o", "json"])) as { items: { metadata: { name: string }; status?: { conditions?: { type: string; status: string }[] } }[] };
    const ready = nodes.items.filter((n) => n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"));
    return ready.length === 6 && nodes.items.length === 6;
  }, 90_000);
  // Work for every kind: the scheduler binds, the controllers reconcile, the kubelets start pods.
  await kc(["create", "deployment", "metrics-web", "--image=busybox", "--replicas=3", "--", "httpd", "-f", "-p", "8080"]);
  await kc(["rollout", "status", "deployment/metrics-web", "--timeout=120s"]);
}, 240_000);

afterAll(async () => {
  await k?.stop({ clean: true });
}, 60_000);

describe("/metrics of every process of kubelab up", () => {
  it("lists every process with a health port, each of a kind in the table", () => {
    const kinds = new Set(components.map((c) => kindOf(c.name)));
    for (const c of components) expect(Object.keys(REQUIRED), `${c.name} is a known process kind`).toContain(kindOf(c.name));
    expect([...kinds].sort()).toEqual(["apiserver", "cloud-controller", "controller-manager", "dns", "ingress", "kubelet", "proxy", "scheduler"]);
  });

  it("exports the upstream names each kind of process must have, the leaders' controller metrics included", async () => {
    // A leader's controllers start a moment after it wins; poll until every process has all of its names.
    await poll("every process exporting its required metric names", async () => {
      const missing: string[] = [];
      for (const c of components) {
        const kind = kindOf(c.name);
        const s = await scrape(c);
        const want = [...REQUIRED[kind].always];
        const lease = LEASES[kind];
        if (REQUIRED[kind].leading && total(s, "leader_election_master_status", { name: lease }) === 1) want.push(...REQUIRED[kind].leading!);
        for (const name of want) if (!s.families.has(name)) missing.push(`${c.name}: ${name}`);
      }
      if (missing.length) throw new Error(`missing: ${missing.join(", ")}`);
      return true;
    }, 30_000, 1000);
  });

  it("has exactly one leader per lease: leader_election_master_status is 1 in one scheduler and one controller-manager, 0 in the other, absent elsewhere", async () => {
    await poll("one leader per lease", async () => {
      const status: Record<string, number[]> = {};
      for (const c of components) {
        const kind = kindOf(c.name);
        const s = await scrape(c);
        if (!LEASES[kind]) {
          if (s.families.has("leader_election_master_status")) throw new Error(`${c.name} is not leader-elected but declares leader_election_master_status`);
          continue;
        }
        const v = series(s, "leader_election_master_status", { name: LEASES[kind] });
        if (v.length !== 1) throw new Error(`${c.name}: ${v.length} leader_election_master_status{name="${LEASES[kind]}"} series`);
        (status[kind] ??= []).push(v[0].value);
      }
      const sorted = Object.fromEntries(Object.entries(status).map(([k, v]) => [k, [...v].sort()]));
      if (JSON.stringify(sorted) !== JSON.stringify({ scheduler: [0, 1], "controller-manager": [0, 1], "cloud-controller": [1] })) throw new Error(JSON.stringify(status));
      return true;
    }, 30_000, 1000);
  });

  it("counts the REST client's requests by code, method and host in every client process", async () => {
    const host = `127.0.0.1:${k.port}`;
    for (const c of components.filter((c) => kindOf(c.name) !== "apiserver")) {
      const s = await scrape(c);
      // Every process lists and watches (GET 200) through the cluster endpoint in its kubeconfig.
      expect(total(s, "rest_client_requests_total", { code: "200", method: "GET", host }), `${c.name}: GETs answered 200`).toBeGreaterThan(0);
      expect(total(s, "rest_client_request_duration_seconds_count", { verb: "GET", host }), `${c.name}: GETs timed`).toBeGreaterThan(0);
    }
  });

  it("reports the kubelets' nodes, pods and pod starts, summed over the pools", async () => {
    const kubelets = components.filter((c) => kindOf(c.name) === "kubelet");
    expect(kubelets).toHaveLength(3); // a pool per zone
    // One kubelet_node_name series (value 1) per Node, across the pools; the running gauges are as of
    // each node's last PLEG relist (every second), so they may trail the rollout by a relist.
    await poll("kubelet metrics naming every Node and counting the Deployment's pods", async () => {
      const nodes = (JSON.parse(await kc(["get", "nodes", "-o", "json"])) as { items: { metadata: { name: string } }[] }).items.map((n) => n.metadata.name).sort();
      const scrapes = await Promise.all(kubelets.map(scrape));
      const named = scrapes.flatMap((s) => series(s, "kubelet_node_name").map((x) => (x.value === 1 ? x.labels.node : `${x.labels.node}=${x.value}`))).sort();
      const sum = (name: string, labels: Record<string, string> = {}) => scrapes.reduce((n, s) => n + total(s, name, labels), 0);
      const seen = {
        named,
        runningPods: sum("kubelet_running_pods"),
        runningContainers: sum("kubelet_running_containers", { container_state: "running" }),
        podStarts: sum("kubelet_pod_start_duration_seconds_count"),
        createSyncs: sum("kubelet_pod_worker_duration_seconds_count", { operation_type: "create" }),
        relists: sum("kubelet_pleg_relist_duration_seconds_count"),
      };
      const ok =
        JSON.stringify(named) === JSON.stringify(nodes) &&
        seen.runningPods >= 3 &&
        seen.runningContainers >= 3 &&
        seen.podStarts >= 3 &&
        seen.createSyncs >= 3 &&
        seen.relists > 0;
      if (!ok) throw new Error(`nodes ${JSON.stringify(nodes)}, kubelets report ${JSON.stringify(seen)}`);
      return true;
    }, 30_000, 1000);
  });

  it("counts the leaders' work: scheduled pods and the controllers' queues", async () => {
    const leaderOf = async (kind: string): Promise<Scrape> => {
      for (const c of components.filter((c) => kindOf(c.name) === kind)) {
        const s = await scrape(c);
        if (total(s, "leader_election_master_status", { name: LEASES[kind] }) === 1) return s;
      }
      throw new Error(`no leading ${kind}`);
    };
    const sched = await leaderOf("scheduler");
    expect(total(sched, "scheduler_schedule_attempts_total", { result: "scheduled", profile: "default-scheduler" })).toBeGreaterThanOrEqual(3);
    expect(total(sched, "scheduler_scheduling_attempt_duration_seconds_count", { result: "scheduled", profile: "default-scheduler" })).toBeGreaterThanOrEqual(3);
    expect(series(sched, "scheduler_pending_pods").map((x) => x.labels.queue).sort()).toEqual(expect.arrayContaining(["active", "backoff", "unschedulable"]));
    const cm = await leaderOf("controller-manager");
    expect(total(sched, "scheduler_pod_scheduling_sli_duration_seconds_count", { attempts: "1" })).toBeGreaterThanOrEqual(3);
    const queues = new Set(series(cm, "workqueue_adds_total").filter((x) => x.value > 0).map((x) => x.labels.name));
    for (const q of ["deployment", "replicaset", "node_lifecycle_controller"]) expect([...queues], `workqueue ${q} used`).toContain(q);
    // Every queue of every controller registers when it is created, used or not (the controller-manager runs them all).
    const registered = series(cm, "workqueue_depth").map((x) => x.labels.name).sort();
    expect(registered).toEqual(CONTROLLER_MANAGER_QUEUES);
  });
});
