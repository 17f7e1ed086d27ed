// `kubelab status`: each process `kubelab up` runs from a data dir — its zone, pid, whether it is
// alive, its /healthz and /readyz (for leader-elected components, ready means "the leader").

import http from "node:http";
import https from "node:https";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Lease } from "../api/index.ts";
import { clientFromKubeconfig } from "./component.ts";
import { etcdLeader, type EtcdClusterPlan } from "./etcdcluster.ts";
import type { ComponentState } from "./supervisor.ts";
import { isAlive, readUpState } from "./up.ts";
import { hasHostState } from "./hoststate.ts";

const HELP = `usage: kubelab status [--data-dir .kubelab] [-o json]

Shows every process of the cluster that 'kubelab up' runs from the data dir: zone, pid, restarts,
/healthz and /readyz (ready = serving; for leader-elected components, ready = holding the lease),
and the leader of each lease (scheduler, controller-manager, cloud controller) and of etcd.
STATE is running, paused or held (by 'kubelab ctl pause' / 'stop'), or down.`;

/** The leader-elected components: their Lease in kube-system and the name prefix of their processes. */
const LEASES = [
  { lease: "kube-scheduler", prefix: "scheduler-" },
  { lease: "kube-controller-manager", prefix: "controller-manager-" },
  { lease: "kubelab-cloud-controller", prefix: "cloud-controller" },
];

interface Leader {
  lease: string;
  holder: string;
  process: string;
  renewTime?: string;
}

/** Each lease's holder (from the API) and the process holding it (the one of its group whose /readyz is ok). */
async function leaders(kubeconfig: string, rows: readonly Row[], dataDir: string): Promise<Leader[]> {
  const out: Leader[] = [];
  let client: ReturnType<typeof clientFromKubeconfig> | undefined;
  try {
    client = clientFromKubeconfig(kubeconfig);
  } catch {
    client = undefined;
  }
  for (const l of LEASES) {
    const group = rows.filter((r) => r.name.startsWith(l.prefix));
    if (group.length === 0) continue;
    let holder = "-";
    let renewTime: string | undefined;
    try {
      const lease = await client!.resource<Lease>("coordination.k8s.io", "leases").get("kube-system", l.lease);
      holder = lease.spec?.holderIdentity || "-";
      renewTime = lease.spec?.renewTime;
    } catch {
      holder = "(lease unreadable)";
    }
    out.push({ lease: `kube-system/${l.lease}`, holder, process: group.find((r) => r.alive && r.readyz === "ok")?.name ?? "-", ...(renewTime ? { renewTime } : {}) });
  }
  try {
    const plan = JSON.parse(readFileSync(join(dataDir, "etcd", "members.json"), "utf8")) as EtcdClusterPlan;
    const m = await etcdLeader(plan);
    out.push({ lease: "etcd", holder: m ? `${m.name} (127.0.0.1:${m.clientPort})` : "-", process: m?.name ?? "-" });
  } catch {
    // not a spawned etcd cluster
  }
  return out;
}

interface Row {
  name: string;
  zone: string;
  pid: number | null;
  alive: boolean;
  state: "running" | "paused" | "held" | "down";
  restarts: number;
  healthz: string;
  readyz: string;
}

/** GET a health path; "ok", the HTTP status, or why it could not be asked. */
function probe(c: ComponentState, path: string, ca: string | undefined): Promise<string> {
  if (!c.healthPort) return Promise.resolve("-");
  return new Promise((done) => {
    // A component without /healthz and /readyz (etcd) answers both on its own health path.
    const opts = { host: "127.0.0.1", port: c.healthPort, path: c.healthPath ?? path, timeout: 2000 };
    const req = c.healthScheme === "https" ? https.get({ ...opts, ca }, onRes) : http.get(opts, onRes);
    function onRes(res: http.IncomingMessage): void {
      res.resume();
      done(res.statusCode === 200 ? "ok" : `HTTP ${res.statusCode}`);
    }
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (e) => done((e as NodeJS.ErrnoException).code ?? e.message));
  });
}

export async function runStatus(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { "data-dir": { type: "string", default: ".kubelab" }, output: { type: "string", short: "o" }, help: { type: "boolean", short: "h" } },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(HELP + "\n");
    return;
  }
  const dataDir = resolve(values["data-dir"]!);
  const state = readUpState(dataDir);
  if (!state || !isAlive(state.pid)) {
    const left = hasHostState(dataDir) ? `; it left host state behind (bridge, containerd, mounts…): run 'kubelab down --data-dir ${values["data-dir"]}' to remove it` : "";
    process.stdout.write(`kubelab is not running from ${dataDir}${left}\n`);
    process.exitCode = 1;
    return;
  }
  let ca: string | undefined;
  try {
    ca = readFileSync(join(dataDir, "pki", "ca.crt"), "utf8");
  } catch {
    ca = undefined;
  }
  const rows: Row[] = await Promise.all(
    state.components.map(async (c) => {
      const alive = c.pid !== undefined && isAlive(c.pid);
      return {
        name: c.name,
        zone: c.zone ?? "",
        pid: c.pid ?? null,
        alive,
        state: c.paused && alive ? ("paused" as const) : alive ? ("running" as const) : c.held ? ("held" as const) : ("down" as const),
        restarts: c.restarts,
        healthz: alive ? await probe(c, "/healthz", ca) : "-",
        readyz: alive ? await probe(c, "/readyz", ca) : "-",
      };
    }),
  );
  if (state.containerd) {
    const alive = isAlive(state.containerd.pid);
    rows.push({ name: "containerd", zone: "", pid: state.containerd.pid, alive, state: alive ? "running" : "down", restarts: 0, healthz: alive ? "-" : "-", readyz: "-" });
  }
  const leads = await leaders(state.kubeconfig, rows, dataDir);
  if (values.output === "json") {
    process.stdout.write(JSON.stringify({ supervisor: state.pid, apiserver: `https://127.0.0.1:${state.port}`, storage: state.storage, dataPlane: state.dataPlane, components: rows, leaders: leads }, null, 2) + "\n");
    return;
  }
  if (values.output !== undefined) throw new Error(`-o must be json, got "${values.output}"`);
  const head = ["NAME", "ZONE", "PID", "STATE", "RESTARTS", "HEALTHZ", "READYZ"];
  const table = [head, ...rows.map((r) => [r.name, r.zone || "-", String(r.pid ?? "-"), r.state, String(r.restarts), r.healthz, r.readyz])];
  const widths = head.map((_, i) => Math.max(...table.map((row) => row[i].length)));
  process.stdout.write(`kubelab up (pid ${state.pid}) from ${dataDir}: apiserver https://127.0.0.1:${state.port} on ${state.storage}\n`);
  for (const row of table) process.stdout.write(row.map((v, i) => v.padEnd(widths[i])).join("   ").trimEnd() + "\n");
  const dp = state.dataPlane;
  if (dp) process.stdout.write(`ingress ${dp.ingressHTTP} and ${dp.ingressHTTPS}; DNS ${dp.dnsServiceIP}:53 (kube-dns, served at ${dp.dnsEndpoint}, domain ${dp.clusterDomain})\n`);
  if (leads.length) {
    const w = Math.max(...leads.map((l) => l.lease.length));
    process.stdout.write("leaders:\n");
    for (const l of leads) process.stdout.write(`  ${l.lease.padEnd(w)}   ${l.process}${l.lease === "etcd" ? "" : `   (holder ${l.holder})`}\n`);
  }
  if (rows.some((r) => r.state === "down")) process.exitCode = 1;
}
