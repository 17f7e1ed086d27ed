// `kubelab status`: each process `kubelab up` runs from a data dir — its zone, pid, whether it is
// alive, its /healthz and /readyz (for leader-elected components, ready means "the leader").

import http from "node:http";
import https from "node:https";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { ComponentState } from "./supervisor.ts";
import { isAlive, readUpState } from "./up.ts";
import { hasHostState } from "./hoststate.ts";

const HELP = `usage: kubelab status [--data-dir .kubelab] [-o json]

Shows every process of the cluster that 'kubelab up' runs from the data dir: zone, pid, restarts,
/healthz and /readyz (ready = serving; for leader-elected components, ready = holding the lease).`;

interface Row {
  name: string;
  zone: string;
  pid: number | null;
  alive: boolean;
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
        restarts: c.restarts,
        healthz: alive ? await probe(c, "/healthz", ca) : "-",
        readyz: alive ? await probe(c, "/readyz", ca) : "-",
      };
    }),
  );
  if (state.containerd) {
    const alive = isAlive(state.containerd.pid);
    rows.push({ name: "containerd", zone: "", pid: state.containerd.pid, alive, restarts: 0, healthz: alive ? "-" : "-", readyz: "-" });
  }
  if (values.output === "json") {
    process.stdout.write(JSON.stringify({ supervisor: state.pid, apiserver: `https://127.0.0.1:${state.port}`, storage: state.storage, dataPlane: state.dataPlane, components: rows }, null, 2) + "\n");
    return;
  }
  if (values.output !== undefined) throw new Error(`-o must be json, got "${values.output}"`);
  const head = ["NAME", "ZONE", "PID", "STATE", "RESTARTS", "HEALTHZ", "READYZ"];
  const table = [head, ...rows.map((r) => [r.name, r.zone || "-", String(r.pid ?? "-"), r.alive ? "running" : "down", String(r.restarts), r.healthz, r.readyz])];
  const widths = head.map((_, i) => Math.max(...table.map((row) => row[i].length)));
  process.stdout.write(`kubelab up (pid ${state.pid}) from ${dataDir}: apiserver https://127.0.0.1:${state.port} on ${state.storage}\n`);
  for (const row of table) process.stdout.write(row.map((v, i) => v.padEnd(widths[i])).join("   ").trimEnd() + "\n");
  const dp = state.dataPlane;
  if (dp) process.stdout.write(`ingress ${dp.ingressHTTP} and ${dp.ingressHTTPS}; DNS ${dp.dnsServiceIP}:53 (kube-dns, served at ${dp.dnsEndpoint}, domain ${dp.clusterDomain})\n`);
  if (rows.some((r) => !r.alive)) process.exitCode = 1;
}
