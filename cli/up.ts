// `kubelab up`: the local supervisor — PKI, store, apiserver, kubeconfig; foreground until SIGINT/SIGTERM.

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { formatIPv4, parseCIDR, subnets } from "../api/index.ts";
import { newLogger } from "../client/index.ts";
import { CliError } from "./errors.ts";
import { writeKubeconfig } from "./kubeconfig.ts";
import { ensurePki } from "./pki.ts";
import { Supervisor, type ComponentState } from "./supervisor.ts";
import { cleanDeadCluster, hasHostState } from "./hoststate.ts";
import { isAlive as isLive } from "../kubelet/runtime/hoststate.ts";
import { parseDuration } from "./component.ts";
import { parseServiceRanges } from "./apiserver.ts";
import type { ContainerdHost } from "../kubelet/index.ts";
import { CONTAINERD_SERVICE_CIDR, SIM_SERVICE_CIDR, dnsServiceIP, startDataPlane, waitDataPlaneReady, type DataPlaneState } from "./dataplane.ts";

const HELP = `usage: kubelab up [flags]

  --data-dir DIR     where the cluster keeps its store, certificates, logs and kubeconfig (default .kubelab)
  --port P           apiserver port on 127.0.0.1 (default 6443)
  --etcd URLS        use this etcd (comma-separated client URLs) instead of the embedded store
  --tls-san NAME     extra name or IP for the serving certificate (repeatable)
  --zones LIST       availability zones, comma-separated (default local-1a,local-1b,local-1c)
  --region R         the zones' region (default local-1)
  --nodes-per-zone N nodes in each zone (default 2 simulated, 1 on containerd; 0: no kubelets)
  --runtime R        sim (a simulated kubelet pool per zone, default) or containerd (real containers;
                     needs root, containerd, runc, the CNI plugins and busybox-static)
  --cluster-cidr C   simulated pod addresses, split between the zones' pools (default 127.64.0.0/10)
  --node-monitor-grace-period D               node lifecycle controller (default 50s)
  --default-not-ready-toleration-seconds N    added to every pod by admission (default 300)
  --default-unreachable-toleration-seconds N  added to every pod by admission (default 300)
  --max-requests-inflight N, --max-mutating-requests-inflight N, --request-timeout D
                     the apiserver's overload protection (defaults 400, 200, 1m0s)
  --service-cluster-ip-range C  Service ClusterIPs (default 127.10.0.0/16 with simulated nodes, on loopback
                     so the host reaches them; 10.96.0.0/16 with containerd); kube-dns gets its 10th address
  --service-node-port-range R   Service NodePorts (default 30000-32767)
  --ingress-http-port P, --ingress-https-port P
                     the ingress controller on 127.0.0.1 (defaults 8080, 8443)
  --cluster-domain D the cluster's DNS domain (default cluster.local)

With nodes, up also runs a service proxy per zone, cluster DNS (behind the kube-dns Service) and
the ingress controller (also the LoadBalancer for Services of type LoadBalancer).`;

/** What `up` records about itself so that `down` and `status` can find it. */
export interface UpState {
  pid: number;
  port: number;
  storage: string;
  kubeconfig: string;
  components: ComponentState[];
  /** With --runtime containerd: the containerd `up` started (not supervised: it outlives kubelet restarts). */
  containerd?: { pid: number; socket: string };
  /** With nodes: where the ingress controller and cluster DNS answer. */
  dataPlane?: DataPlaneState;
}

export function upStatePath(dataDir: string): string {
  return join(dataDir, "up.json");
}

/** Alive and not a zombie (a SIGKILLed `up` may wait a while for its reaper). */
export const isAlive = isLive;

export function readUpState(dataDir: string): UpState | undefined {
  try {
    return JSON.parse(readFileSync(upStatePath(dataDir), "utf8")) as UpState;
  } catch {
    return undefined;
  }
}

/** `--etcd http://a:2379,http://b:2379` or `a:2379,...` → `etcd://a:2379,b:2379`. */
export function etcdStorageURL(urls: string): string {
  const hosts = urls
    .split(",")
    .map((u) => u.trim())
    .filter(Boolean)
    .map((u) => {
      const m = /^(?:(?:https?|etcd):\/\/)?([^/]+?)\/?$/.exec(u);
      if (!m) throw new CliError(`--etcd: "${u}" is not a client URL like http://127.0.0.1:2379`, 2);
      return m[1];
    });
  if (hosts.length === 0) throw new CliError("--etcd needs at least one client URL", 2);
  return `etcd://${hosts.join(",")}`;
}

/** A free TCP port on 127.0.0.1 for a component's /healthz and /metrics. */
function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolvePort(p));
    });
  });
}

async function waitReady(port: number, ca: string, timeoutMs: number, isDead: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    if (isDead()) throw new CliError(`the apiserver exited while starting; see its log`);
    const ok = await new Promise<boolean>((res) => {
      const req = https.get({ host: "127.0.0.1", port, path: "/readyz", ca, timeout: 2000 }, (r) => {
        r.resume();
        last = `HTTP ${r.statusCode}`;
        res(r.statusCode === 200);
      });
      req.on("error", (e) => {
        last = e.message;
        res(false);
      });
      req.on("timeout", () => req.destroy());
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new CliError(`the apiserver did not become ready within ${timeoutMs / 1000}s (${last})`);
}

/** Splits an IPv4 CIDR into `parts` equal consecutive blocks (parts rounded up to a power of two). */
export function splitCIDR(cidr: string, parts: number): string[] {
  const c = parseCIDR(cidr);
  if (!c) throw new CliError(`--cluster-cidr: "${cidr}" is not an IPv4 CIDR like 127.64.0.0/10`, 2);
  const prefix = c.prefix + Math.ceil(Math.log2(Math.max(1, parts)));
  if (prefix > 24) throw new CliError(`--cluster-cidr ${cidr} is too small for ${parts} zones (each needs at least a /24)`, 2);
  return subnets(c, prefix, parts);
}

function intFlag(flag: string, v: string, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new CliError(`--${flag} must be an integer >= ${min}, got "${v}"`, 2);
  return n;
}

export async function runUp(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      "data-dir": { type: "string", default: ".kubelab" },
      port: { type: "string", default: "6443" },
      etcd: { type: "string" },
      "tls-san": { type: "string", multiple: true, default: [] },
      zones: { type: "string", default: "local-1a,local-1b,local-1c" },
      region: { type: "string", default: "local-1" },
      "nodes-per-zone": { type: "string" },
      runtime: { type: "string", default: "sim" },
      "cluster-cidr": { type: "string", default: "127.64.0.0/10" },
      "node-monitor-grace-period": { type: "string" },
      "default-not-ready-toleration-seconds": { type: "string" },
      "default-unreachable-toleration-seconds": { type: "string" },
      "max-requests-inflight": { type: "string" },
      "max-mutating-requests-inflight": { type: "string" },
      "request-timeout": { type: "string" },
      "service-cluster-ip-range": { type: "string" },
      "service-node-port-range": { type: "string" },
      "ingress-http-port": { type: "string", default: "8080" },
      "ingress-https-port": { type: "string", default: "8443" },
      "cluster-domain": { type: "string", default: "cluster.local" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(HELP + "\n");
    return;
  }
  const dataDir = resolve(values["data-dir"]!);
  const port = Number(values.port);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new CliError(`--port must be a port number, got "${values.port}"`, 2);
  if (values.etcd === "spawn") throw new CliError("--etcd spawn is not available yet; pass client URLs (e.g. --etcd http://127.0.0.1:2379)", 2);
  const storage = values.etcd ? etcdStorageURL(values.etcd) : `file://${join(dataDir, "store")}`;
  const runtime = values.runtime!;
  if (runtime !== "sim" && runtime !== "containerd") throw new CliError(`--runtime must be sim or containerd, got "${runtime}"`, 2);
  const zones = values.zones!.split(",").map((z) => z.trim()).filter(Boolean);
  if (zones.length === 0) throw new CliError("--zones needs at least one zone", 2);
  const nodesPerZone = intFlag("nodes-per-zone", values["nodes-per-zone"] ?? (runtime === "sim" ? "2" : "1"), 0);
  const zoneCIDRs = splitCIDR(values["cluster-cidr"]!, zones.length);
  if (values["node-monitor-grace-period"] !== undefined) parseDuration("node-monitor-grace-period", values["node-monitor-grace-period"]);
  for (const f of ["default-not-ready-toleration-seconds", "default-unreachable-toleration-seconds", "max-requests-inflight", "max-mutating-requests-inflight"] as const) {
    if (values[f] !== undefined) intFlag(f, values[f], 0);
  }
  if (values["request-timeout"] !== undefined && !/^(0|(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+)$/.test(values["request-timeout"].trim())) {
    throw new CliError(`--request-timeout must be a duration like 1m0s, 30s or 500ms, got "${values["request-timeout"]}"`, 2);
  }
  const serviceCIDR = values["service-cluster-ip-range"] ?? (runtime === "sim" ? SIM_SERVICE_CIDR : CONTAINERD_SERVICE_CIDR);
  parseServiceRanges(serviceCIDR, values["service-node-port-range"]);
  const clusterDNS = dnsServiceIP(serviceCIDR);
  const ingressHTTPPort = intFlag("ingress-http-port", values["ingress-http-port"]!, 1);
  const ingressHTTPSPort = intFlag("ingress-https-port", values["ingress-https-port"]!, 1);
  for (const [f, p] of [["ingress-http-port", ingressHTTPPort], ["ingress-https-port", ingressHTTPSPort]] as const) {
    if (p > 65535) throw new CliError(`--${f} must be a port number, got "${p}"`, 2);
  }
  const clusterDomain = values["cluster-domain"]!;
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(clusterDomain)) throw new CliError(`--cluster-domain must be a DNS domain like cluster.local, got "${clusterDomain}"`, 2);

  mkdirSync(join(dataDir, "logs"), { recursive: true });
  const prev = readUpState(dataDir);
  if (prev && prev.pid !== process.pid && isAlive(prev.pid)) {
    throw new CliError(`kubelab is already running from ${dataDir} (pid ${prev.pid}); run 'kubelab down --data-dir ${values["data-dir"]}' first`);
  }

  const log = newLogger("up");
  if (prev || hasHostState(dataDir)) {
    // The previous `up` here died without its cleanup (SIGKILL, a crash): finish it first.
    const removed = await cleanDeadCluster(dataDir, prev, log);
    if (removed.length > 0) log.warn({ dataDir, removed }, "cleaned up what a dead kubelab left in this data dir");
  }
  // The `kubernetes` Service's ClusterIP (the range's first address) is a name of the apiserver too.
  const pki = ensurePki(join(dataDir, "pki"), [...(values["tls-san"] ?? []), formatIPv4(parseCIDR(serviceCIDR)!.network + 1)]);
  const kubeconfig = join(dataDir, "kubeconfig");
  const state: UpState = { pid: process.pid, port, storage, kubeconfig, components: [] };
  const save = () => writeFileSync(upStatePath(dataDir), JSON.stringify({ ...state, components: sup.processes() }, null, 2));
  const sup = new Supervisor(log, () => save());
  save();

  let containerd: ContainerdHost | undefined;
  let containerdStarting: Promise<ContainerdHost> | undefined;
  let stopping = false;
  // Ctrl-C signals the whole process group and harnesses SIGTERM all of it, so the components get
  // the signal too; a second one (tsx relays each, impatient users press twice) must not abandon the
  // cleanup. Ordered and bounded: components (SIGKILL after 5 s), then the sandboxes, containerd and
  // the host state (cleanupContainerdHost bounds each step and needs no live containerd).
  const stop = async (why: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    log.info({ why }, "stopping the cluster");
    await sup.stop(5_000);
    const host = containerd ?? (await containerdStarting?.catch(() => undefined));
    if (host) {
      try {
        await host.stop();
      } catch (e) {
        log.error({ err: (e as Error).message }, "containerd cleanup failed");
        code = code || 1;
      }
    }
    rmSync(upStatePath(dataDir), { force: true });
    process.stdout.write("kubelab stopped.\n");
    process.exit(code);
  };
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, () => void stop(sig));
  process.stdout.on("error", () => {}); // a closed terminal or pipe must not cut the cleanup short

  const admission: string[] = [];
  for (const f of ["default-not-ready-toleration-seconds", "default-unreachable-toleration-seconds", "max-requests-inflight", "max-mutating-requests-inflight", "request-timeout", "service-node-port-range"] as const) {
    if (values[f] !== undefined) admission.push(`--${f}`, values[f]);
  }
  admission.push("--service-cluster-ip-range", serviceCIDR);
  sup.start({
    name: "apiserver",
    healthPort: port,
    healthScheme: "https",
    logFile: join(dataDir, "logs", "apiserver.log"),
    args: [
      "apiserver",
      "--storage", storage,
      "--port", String(port),
      "--bind", "127.0.0.1",
      "--tls-cert-file", join(pki.dir, "apiserver.crt"),
      "--tls-private-key-file", join(pki.dir, "apiserver.key"),
      "--token-auth-file", pki.tokenFile,
      ...admission,
    ],
  });
  try {
    await waitReady(port, pki.caCert, 60_000, () => stopping);
  } catch (e) {
    await stop(`startup failed: ${(e as Error).message}`, 1);
    return;
  }
  writeKubeconfig(kubeconfig, { server: `https://127.0.0.1:${port}`, caCert: pki.caCert, token: pki.adminToken });
  // Two schedulers, leader-elected on the Lease kube-system/kube-scheduler.
  for (const n of [1, 2]) {
    const healthPort = await freePort();
    sup.start({
      name: `scheduler-${n}`,
      healthPort,
      logFile: join(dataDir, "logs", `scheduler-${n}.log`),
      args: ["scheduler", "--kubeconfig", kubeconfig, "--leader-elect", "--port", String(healthPort)],
    });
  }
  // Two controller-managers, leader-elected on the Lease kube-system/kube-controller-manager.
  const cmFlags = values["node-monitor-grace-period"] !== undefined ? ["--node-monitor-grace-period", values["node-monitor-grace-period"]] : [];
  // The simulated cloud's disks: one host directory per volume, shared by every node.
  const volumeDir = join(dataDir, "volumes");
  cmFlags.push("--volume-dir", volumeDir);
  // Kubelets renew their Lease every quarter of its duration (upstream's fraction). With a grace
  // period shorter than the default 40 s Lease, shorten the Lease to it, so a healthy node renews
  // four times per grace period instead of flapping to Unknown.
  const graceS = values["node-monitor-grace-period"] !== undefined ? Math.ceil(parseDuration("node-monitor-grace-period", values["node-monitor-grace-period"]) / 1000) : 40;
  const leaseFlags = graceS < 40 ? ["--node-lease-duration-seconds", String(Math.max(1, graceS))] : [];
  for (const n of [1, 2]) {
    const healthPort = await freePort();
    sup.start({
      name: `controller-manager-${n}`,
      healthPort,
      logFile: join(dataDir, "logs", `controller-manager-${n}.log`),
      args: ["controller-manager", "--kubeconfig", kubeconfig, "--leader-elect", "--port", String(healthPort), ...cmFlags],
    });
  }

  // Kubelets: a simulated pool per zone, or real ones on one containerd.
  let nodesLine = "no nodes (--nodes-per-zone 0)";
  if (nodesPerZone > 0 && runtime === "sim") {
    for (const [i, zone] of zones.entries()) {
      const healthPort = await freePort();
      sup.start({
        name: `kubelet-${zone}`,
        zone,
        healthPort,
        logFile: join(dataDir, "logs", `kubelet-${zone}.log`),
        args: [
          "kubelet", "--kubeconfig", kubeconfig, "--simulate",
          "--nodes", String(nodesPerZone), "--zone", zone, "--region", values.region!,
          "--name-prefix", `node-${zone}`, "--pod-cidr", zoneCIDRs[i],
          "--root-dir", join(dataDir, "kubelet", zone), "--healthz-port", String(healthPort),
          "--volume-dir", volumeDir,
          ...leaseFlags,
        ],
      });
    }
    nodesLine = `${zones.length * nodesPerZone} simulated nodes in ${zones.join(", ")} (region ${values.region})`;
  } else if (nodesPerZone > 0) {
    try {
      // A bridge held by a dead kubelab is reclaimed at once; one held by a live one is an error naming it.
      const { startContainerd } = await import("../kubelet/runtime/containerd.ts");
      if (stopping) return; // stop() is under way and will not look for a containerd started now
      containerdStarting = startContainerd({ dataDir, log });
      containerd = await containerdStarting;
      if (stopping) return; // a signal came while containerd started: stop() owns it now
      state.containerd = { pid: containerd.pid, socket: containerd.socket };
    } catch (e) {
      process.stderr.write(`kubelab: ${(e as Error).message}\n`);
      await stop(`containerd did not start: ${(e as Error).message}`, 1);
      return;
    }
    for (const zone of zones) {
      for (let n = 0; n < nodesPerZone; n++) {
        const name = `node-${zone}-${n}`;
        const [healthPort, kubeletPort] = [await freePort(), await freePort()];
        sup.start({
          name: `kubelet-${name}`,
          zone,
          healthPort,
          logFile: join(dataDir, "logs", `kubelet-${name}.log`),
          args: [
            "kubelet", "--kubeconfig", kubeconfig, "--runtime-endpoint", containerd.endpoint,
            "--node-name", name, "--zone", zone, "--region", values.region!,
            "--node-ip", "127.0.0.1", "--port", String(kubeletPort),
            "--cluster-dns", clusterDNS, "--cluster-domain", clusterDomain,
            "--root-dir", join(dataDir, "kubelet", name), "--healthz-port", String(healthPort),
            "--volume-dir", volumeDir,
            ...leaseFlags,
          ],
        });
      }
    }
    nodesLine = `${zones.length * nodesPerZone} containerd nodes in ${zones.join(", ")} (pods on ${containerd.podSubnet})`;
  }

  // The data plane: a proxy per zone, cluster DNS and the ingress controller (only with nodes).
  if (nodesPerZone > 0) {
    state.dataPlane = await startDataPlane(sup, {
      dataDir, kubeconfig, zones, runtime, serviceCIDR, ingressHTTPPort, ingressHTTPSPort, clusterDomain,
      serviceInterface: containerd?.serviceInterface,
      freePort,
    });
  }
  const dp = state.dataPlane;
  if (dp) {
    const late = await waitDataPlaneReady(dp, 60_000, () => stopping);
    if (stopping) return;
    if (late.length > 0) log.warn({ healthPorts: late }, "some data-plane components are not ready yet; see their logs");
  }
  save(); // before "kubelab is up": whoever reads that line may read up.json next
  const shown = values["data-dir"]!;
  process.stdout.write(
    [
      `kubelab is up: apiserver https://127.0.0.1:${port} on ${values.etcd ? "etcd " + values.etcd : "the embedded store (" + join(shown, "store") + ")"}, 2 schedulers and 2 controller-managers (leader-elected), ${nodesLine}`,
      ``,
      `  export KUBECONFIG=${existsSync(kubeconfig) ? kubeconfig : shown + "/kubeconfig"}`,
      `  kubectl get nodes -L topology.kubernetes.io/zone`,
      runtime === "containerd"
        ? `  kubectl create deployment web --image=localhost/busybox:latest --replicas=3 -- httpd -f -p 8080`
        : `  kubectl create deployment web --image=busybox --replicas=3 -- httpd -f -p 8080`,
      ``,
      ...(dp
        ? [
            `ingress: ${dp.ingressHTTP} and ${dp.ingressHTTPS} (IngressClass kubelab, the default); LoadBalancer Services get 127.0.0.1 addresses`,
            `DNS: ${dp.dnsServiceIP}:53 (Service kube-system/kube-dns, domain ${dp.clusterDomain}), e.g. dig @${dp.dnsServiceIP} kubernetes.default.svc.${dp.clusterDomain}`,
            `services: ClusterIPs from ${serviceCIDR}${runtime === "sim" ? " on loopback, reachable from this host" : ` on ${containerd?.serviceInterface ?? "the service interface"}, reachable from pods and this host`}; a proxy per zone`,
            ``,
          ]
        : []),
      `logs: ${join(shown, "logs")}/   stop: Ctrl-C or 'npm run kubelab -- down --data-dir ${shown}'`,
      ``,
    ].join("\n"),
  );
  save();
}
