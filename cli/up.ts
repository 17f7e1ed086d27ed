// `kubelab up`: the local supervisor — PKI, store, apiserver, kubeconfig; foreground until SIGINT/SIGTERM.

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { formatIPv4, parseCIDR } from "../api/index.ts";
import { newLogger } from "../client/index.ts";
import { CliError } from "./errors.ts";
import { writeKubeconfig } from "./kubeconfig.ts";
import { writeComponentKubeconfig } from "./certs.ts";
import { componentIdentity, ensurePki, kubeletPoolIdentity, nodeIdentity, type ClientIdentity } from "./pki.ts";
import { Supervisor, type ComponentState } from "./supervisor.ts";
import { cleanDeadCluster, hasHostState } from "./hoststate.ts";
import { isAlive as isLive } from "../kubelet/runtime/hoststate.ts";
import { parseDuration } from "./component.ts";
import { parseServiceRanges } from "./apiserver.ts";
import { loadEncryptionConfiguration } from "../apiserver/storage/encryption.ts";
import { loadPolicyFile } from "../apiserver/audit/index.ts";
import type { ContainerdHost } from "../kubelet/index.ts";
import { CONTAINERD_SERVICE_CIDR, SIM_SERVICE_CIDR, dnsServiceIP, startDataPlane, waitDataPlaneReady, type DataPlaneState } from "./dataplane.ts";
import { Links } from "../chaos/linkproxy.ts";
import { controlSocketPath, serveControl } from "./control.ts";
import { etcdBinary, etcdClusterStorageURL, etcdMemberSpecs, planEtcdCluster, waitEtcdQuorum } from "./etcdcluster.ts";
import { DEFAULT_CLUSTER_CIDR, loadTopologyFile, overrideTopology, topologyDocument } from "../controllers/cloud/topology.ts";
import type { Topology } from "../controllers/cloud/types.ts";
import { clientFromKubeconfig } from "./component.ts";
import type { Node } from "../api/index.ts";
import { fileURLToPath } from "node:url";
import { dirname } from "node:path";
import { stringify as toYAML } from "yaml";

const HELP = `usage: kubelab up [flags]

  --data-dir DIR     where the cluster keeps its store, certificates, logs and kubeconfig (default .kubelab)
  --port P           apiserver port on 127.0.0.1 (default 6443)
  --chaos            every component reaches the apiserver, and every apiserver etcd, through a
                     link of the fault proxy (in this process), which chaos experiments can cut,
                     delay, throttle or reset
  --fast             the chaos timing profile: node grace period 10s, NoExecute tolerations 5s,
                     leader leases 6s (renew 4s, retry 1s), ingress per-try timeout 1s and
                     passive health checks (a failed upstream skipped 10s); explicit flags win
  --apiservers N     N apiservers (with --etcd) behind the cluster endpoint on --port, a TCP load
                     balancer health-checking each one's /readyz (default 1: the apiserver itself
                     on --port)
  --etcd URLS        use this etcd (comma-separated client URLs) instead of the embedded store;
                     --etcd spawn runs a three-member etcd cluster (the etcd binary on PATH, one
                     member per zone, loopback ports, data under DIR/etcd)
  --tls-san NAME     extra name or IP for the serving certificate (repeatable)
  --topology FILE    the simulated cloud: region, zones and their subnets, node groups, serverless
                     profiles (default deploy/topologies/default.yaml: 3 zones, node group general of
                     2 m5.2xlarge nodes per zone, up to 10, serverless profile for namespace serverless)
  --zones LIST       with the default topology: its zones, comma-separated (default local-1a,local-1b,local-1c)
  --region R         with the default topology: the zones' region (default local-1)
  --nodes-per-zone N with the default topology: nodes in each zone (default 2 simulated, 1 on
                     containerd; 0: no kubelets, no cloud controller, no data plane)
  --runtime R        sim (simulated nodes, a kubelet pool per zone, default) or containerd (real
                     containers; needs root, containerd, runc, the CNI plugins and busybox-static)
  --cluster-cidr C   the zones' subnets when the topology does not set them, split equally (default
                     127.64.0.0/10); simulated node and pod addresses come from the zone's subnet
  --scale-down-unneeded-time D, --scale-down-delay-after-add D, --scan-interval D
                     the cluster autoscaler's timings (defaults 10m, 10m, 10s)
  --node-monitor-grace-period D               node lifecycle controller (default 50s)
  --default-not-ready-toleration-seconds N    added to every pod by admission (default 300)
  --default-unreachable-toleration-seconds N  added to every pod by admission (default 300)
  --max-requests-inflight N, --max-mutating-requests-inflight N, --request-timeout D
                     the apiserver's overload protection (defaults 400, 200, 1m0s)
  --service-cluster-ip-range C  Service ClusterIPs (default 127.10.0.0/16 with simulated nodes, on loopback
                     so the host reaches them; 10.96.0.0/16 with containerd); kube-dns gets its 10th address
  --service-node-port-range R   Service NodePorts (default 30000-32767)
  --encryption-provider-config FILE  every apiserver stores the resources this EncryptionConfiguration
                     names encrypted (aescbc, aesgcm; identity), as upstream's flag
  --audit-policy-file FILE  every apiserver writes audit events (audit.k8s.io/v1 Policy levels None,
                     Metadata, Request, RequestResponse) as JSON lines to DATA/logs/audit[-N].log;
                     --audit-log-maxsize MB, --audit-log-maxbackup N, --audit-log-maxage DAYS rotate it
  --ingress-http-port P, --ingress-https-port P
                     the ingress controller on 127.0.0.1 (defaults 8080, 8443)
  --cluster-domain D the cluster's DNS domain (default cluster.local)

With nodes, up also runs a service proxy per zone, cluster DNS (behind the kube-dns Service) and
the ingress controller (also the LoadBalancer for Services of type LoadBalancer).`;

/** What `up` records about itself so that `down` and `status` can find it. */
/** The ServiceAccount token issuer (kubeadm's default; EKS's is the cluster's OIDC provider URL). */
export const SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local";

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

/** Ports this process has handed out: a component binds its port only once it runs, so the kernel may offer the same one again meanwhile. */
const handedOut = new Set<number>();

/** A free TCP port on 127.0.0.1 for a component's /healthz and /metrics, never one already handed to another component. */
async function freePort(): Promise<number> {
  for (;;) {
    const p = await new Promise<number>((resolvePort, reject) => {
      const s = createServer();
      s.on("error", reject);
      s.listen(0, "127.0.0.1", () => {
        const port = (s.address() as { port: number }).port;
        s.close(() => resolvePort(port));
      });
    });
    if (handedOut.has(p)) continue;
    handedOut.add(p);
    return p;
  }
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
      apiservers: { type: "string", default: "1" },
      fast: { type: "boolean", default: false },
      chaos: { type: "boolean", default: false },
      "tls-san": { type: "string", multiple: true, default: [] },
      topology: { type: "string" },
      zones: { type: "string" },
      region: { type: "string" },
      "scale-down-unneeded-time": { type: "string" },
      "scale-down-delay-after-add": { type: "string" },
      "scan-interval": { type: "string" },
      "nodes-per-zone": { type: "string" },
      runtime: { type: "string", default: "sim" },
      "cluster-cidr": { type: "string" },
      "node-monitor-grace-period": { type: "string" },
      "default-not-ready-toleration-seconds": { type: "string" },
      "default-unreachable-toleration-seconds": { type: "string" },
      "max-requests-inflight": { type: "string" },
      "max-mutating-requests-inflight": { type: "string" },
      "request-timeout": { type: "string" },
      "service-cluster-ip-range": { type: "string" },
      "service-node-port-range": { type: "string" },
      "encryption-provider-config": { type: "string" },
      "audit-policy-file": { type: "string" },
      "audit-log-maxsize": { type: "string" },
      "audit-log-maxbackup": { type: "string" },
      "audit-log-maxage": { type: "string" },
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
  const spawnEtcd = values.etcd === "spawn";
  const apiservers = intFlag("apiservers", values.apiservers!, 1);
  if (apiservers > 1 && !values.etcd) throw new CliError(`--apiservers ${apiservers} needs --etcd (spawn or URLs): the embedded store belongs to one apiserver`, 2);
  const etcdBin = spawnEtcd ? etcdBinary() : undefined;
  let storage = values.etcd && !spawnEtcd ? etcdStorageURL(values.etcd) : `file://${join(dataDir, "store")}`;
  const runtime = values.runtime!;
  if (runtime !== "sim" && runtime !== "containerd") throw new CliError(`--runtime must be sim or containerd, got "${runtime}"`, 2);
  const nodesPerZoneFlag = values["nodes-per-zone"] !== undefined ? intFlag("nodes-per-zone", values["nodes-per-zone"], 0) : undefined;
  const topology = resolveTopology(values.topology, {
    zones: values.zones,
    region: values.region,
    nodesPerZone: nodesPerZoneFlag,
    clusterCIDR: values["cluster-cidr"],
    runtime,
  });
  const zones = topology.zones.map((z) => z.name);
  const region = topology.region;
  const nodesPerZone = nodesPerZoneFlag ?? (runtime === "sim" ? 2 : 1);
  // Simulated nodes come from the topology's node groups and serverless profiles; --nodes-per-zone 0 runs none.
  const cloud = runtime === "sim" && nodesPerZoneFlag !== 0 && (topology.nodeGroups.length > 0 || topology.serverless.length > 0);
  const hasNodes = runtime === "sim" ? cloud : nodesPerZone > 0;
  for (const f of ["scale-down-unneeded-time", "scale-down-delay-after-add", "scan-interval"] as const) {
    if (values[f] !== undefined) parseDuration(f, values[f]);
  }
  // --fast: the timing profile of the chaos experiments — failures are noticed and acted on in
  // seconds (node grace 10s, NoExecute tolerations 5s, leader leases 6s), not minutes.
  if (values.fast) {
    values["node-monitor-grace-period"] ??= "10s";
    values["default-not-ready-toleration-seconds"] ??= "5";
    values["default-unreachable-toleration-seconds"] ??= "5";
  }
  const leaderFlags = values.fast ? ["--leader-elect-lease-duration", "6s", "--leader-elect-renew-deadline", "4s", "--leader-elect-retry-period", "1s"] : [];
  if (values["node-monitor-grace-period"] !== undefined) parseDuration("node-monitor-grace-period", values["node-monitor-grace-period"]);
  for (const f of ["default-not-ready-toleration-seconds", "default-unreachable-toleration-seconds", "max-requests-inflight", "max-mutating-requests-inflight"] as const) {
    if (values[f] !== undefined) intFlag(f, values[f], 0);
  }
  if (values["request-timeout"] !== undefined && !/^(0|(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+)$/.test(values["request-timeout"].trim())) {
    throw new CliError(`--request-timeout must be a duration like 1m0s, 30s or 500ms, got "${values["request-timeout"]}"`, 2);
  }
  const serviceCIDR = values["service-cluster-ip-range"] ?? (runtime === "sim" ? SIM_SERVICE_CIDR : CONTAINERD_SERVICE_CIDR);
  parseServiceRanges(serviceCIDR, values["service-node-port-range"]);
  const encryptionConfig = values["encryption-provider-config"] !== undefined ? resolve(values["encryption-provider-config"]) : undefined;
  if (encryptionConfig) {
    try {
      loadEncryptionConfiguration(encryptionConfig);
    } catch (e) {
      throw new CliError(`--encryption-provider-config: ${(e as Error).message}`, 2);
    }
  }
  const auditPolicy = values["audit-policy-file"] !== undefined ? resolve(values["audit-policy-file"]) : undefined;
  if (auditPolicy) {
    try {
      loadPolicyFile(auditPolicy);
    } catch (e) {
      throw new CliError((e as Error).message, 2);
    }
  }
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
  // --etcd spawn: the members' ports are fixed at the first start (their data remembers the peer URLs).
  const etcdPlan = spawnEtcd ? await planEtcdCluster(dataDir, zones, freePort) : undefined;
  if (etcdPlan) storage = etcdClusterStorageURL(etcdPlan);
  const state: UpState = { pid: process.pid, port, storage, kubeconfig, components: [] };
  const save = () => writeFileSync(upStatePath(dataDir), JSON.stringify({ ...state, components: sup.processes() }, null, 2));
  const sup = new Supervisor(log, () => save(), pki.caCert);
  save();
  sup.startLiveness();
  // --chaos: the fault proxy; each component's link to the apiserver (and each apiserver's to etcd).
  const links = values.chaos ? new Links(log) : undefined;
  // Other commands (kubelab ctl, status, chaos) act on the processes through DATA/control.sock.
  let control: Awaited<ReturnType<typeof serveControl>> | undefined;
  try {
    control = await serveControl(dataDir, sup, log, links);
  } catch (e) {
    log.warn({ err: (e as Error).message }, "no control socket: kubelab ctl will not reach this cluster");
  }

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
    control?.close();
    links?.close();
    rmSync(controlSocketPath(dataDir), { force: true });
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
  if (encryptionConfig) admission.push("--encryption-provider-config", encryptionConfig);
  if (auditPolicy) {
    admission.push("--audit-policy-file", auditPolicy);
    for (const f of ["audit-log-maxsize", "audit-log-maxbackup", "audit-log-maxage"] as const) if (values[f] !== undefined) admission.push(`--${f}`, values[f]);
  }
  // Each apiserver its own audit file: two processes must not rotate one.
  const auditFlags = (name: string): string[] => (auditPolicy ? ["--audit-log-path", join(dataDir, "logs", name === "apiserver" ? "audit.log" : `audit-${name}.log`)] : []);
  if (etcdPlan) {
    for (const spec of etcdMemberSpecs(etcdPlan, dataDir, etcdBin!)) sup.start(spec);
    try {
      await waitEtcdQuorum(etcdPlan, 60_000, () => stopping);
    } catch (e) {
      await stop(`startup failed: ${(e as Error).message}`, 1);
      return;
    }
  }
  // With --chaos an apiserver on etcd reaches each member through a link of its own.
  const storageFor = async (apiserver: string): Promise<string> => {
    if (!links || !storage.startsWith("etcd://")) return storage;
    const hosts: string[] = [];
    for (const [j, hp] of storage.slice("etcd://".length).split(",").entries()) {
      const [h, p] = [hp.slice(0, hp.lastIndexOf(":")), Number(hp.slice(hp.lastIndexOf(":") + 1))];
      const member = etcdPlan?.members.find((m) => m.clientPort === p)?.name ?? `etcd-${j}`;
      hosts.push(`127.0.0.1:${await links.add(`${apiserver}/${member}`, apiserver, h, p)}`);
    }
    return `etcd://${hosts.join(",")}`;
  };
  const apiserverArgs = (p: number, extra: string[], storage: string) => [
    "apiserver",
    "--storage", storage,
    "--port", String(p),
    "--bind", "127.0.0.1",
    "--tls-cert-file", join(pki.dir, "apiserver.crt"),
    "--tls-private-key-file", join(pki.dir, "apiserver.key"),
    "--token-auth-file", pki.tokenFile,
    // Identities and what they may do: client certificates from the cluster CA, ServiceAccount
    // tokens signed with sa.key, the Node authorizer and RBAC (kubeadm's kube-apiserver flags).
    "--client-ca-file", join(pki.dir, "ca.crt"),
    "--authorization-mode", "Node,RBAC",
    "--service-account-issuer", SERVICE_ACCOUNT_ISSUER,
    "--service-account-key-file", pki.saPubFile,
    "--service-account-signing-key-file", pki.saKeyFile,
    ...admission,
    ...extra,
  ];
  if (apiservers === 1) {
    sup.start({ name: "apiserver", healthPort: port, healthScheme: "https", logFile: join(dataDir, "logs", "apiserver.log"), args: apiserverArgs(port, auditFlags("apiserver"), await storageFor("apiserver")) });
  } else {
    // Several apiservers on one etcd, spread over the zones, behind the cluster endpoint on --port
    // (EKS's NLB); they advertise the endpoint, so each writes the same default/kubernetes endpoints.
    const backends: string[] = [];
    for (let i = 1; i <= apiservers; i++) {
      const p = await freePort();
      backends.push(`127.0.0.1:${p}`);
      sup.start({ name: `apiserver-${i}`, zone: zones[(i - 1) % zones.length], healthPort: p, healthScheme: "https", logFile: join(dataDir, "logs", `apiserver-${i}.log`), args: apiserverArgs(p, ["--advertise-port", String(port), ...auditFlags(`apiserver-${i}`)], await storageFor(`apiserver-${i}`)) });
    }
    const endpointHealth = await freePort();
    sup.start({
      name: "endpoint",
      healthPort: endpointHealth,
      logFile: join(dataDir, "logs", "endpoint.log"),
      args: ["endpoint", "--listen", `127.0.0.1:${port}`, "--backends", backends.join(","), "--health-ca", join(pki.dir, "ca.crt"), "--port", String(endpointHealth)],
    });
  }
  try {
    await waitReady(port, pki.caCert, 60_000, () => stopping);
  } catch (e) {
    await stop(`startup failed: ${(e as Error).message}`, 1);
    return;
  }
  writeKubeconfig(kubeconfig, { server: `https://127.0.0.1:${port}`, caCert: pki.caCert, token: pki.adminToken });
  // Each component has its own identity (a client certificate from the cluster CA, as kubeadm
  // writes scheduler.conf, controller-manager.conf and kubelet.conf) and its own kubeconfig; with
  // --chaos that kubeconfig goes through the component's fault-proxy link.
  const kubeconfigFor = async (component: string, id: ClientIdentity = componentIdentity(component)): Promise<string> => {
    const server = links ? `https://127.0.0.1:${await links.add(component, component, "127.0.0.1", port)}` : `https://127.0.0.1:${port}`;
    return writeComponentKubeconfig(pki, dataDir, component, id, server);
  };
  // Two schedulers, leader-elected on the Lease kube-system/kube-scheduler.
  for (const n of [1, 2]) {
    const healthPort = await freePort();
    sup.start({
      name: `scheduler-${n}`,
      // Spread over the zones, as EKS runs its control plane in several Availability Zones.
      zone: zones[(n - 1) % zones.length],
      healthPort,
      logFile: join(dataDir, "logs", `scheduler-${n}.log`),
      args: ["scheduler", "--kubeconfig", await kubeconfigFor(`scheduler-${n}`), "--leader-elect", "--port", String(healthPort), ...leaderFlags],
    });
  }
  // Two controller-managers, leader-elected on the Lease kube-system/kube-controller-manager.
  const cmFlags = values["node-monitor-grace-period"] !== undefined ? ["--node-monitor-grace-period", values["node-monitor-grace-period"]] : [];
  // The simulated cloud's disks: one host directory per volume, shared by every node.
  const volumeDir = join(dataDir, "volumes");
  cmFlags.push("--volume-dir", volumeDir);
  // The CSR signer issues kubelets' client certificates with the cluster CA; the ServiceAccount
  // controllers publish the CA and sign legacy token Secrets (kubeadm's controller-manager flags).
  cmFlags.push(
    "--cluster-signing-cert-file", join(pki.dir, "ca.crt"),
    "--cluster-signing-key-file", join(pki.dir, "ca.key"),
    "--root-ca-file", join(pki.dir, "ca.crt"),
    "--service-account-private-key-file", pki.saKeyFile,
  );
  // Kubelets renew their Lease every quarter of its duration (upstream's fraction). With a grace
  // period shorter than the default 40 s Lease, shorten the Lease to it, so a healthy node renews
  // four times per grace period instead of flapping to Unknown.
  const graceS = values["node-monitor-grace-period"] !== undefined ? Math.ceil(parseDuration("node-monitor-grace-period", values["node-monitor-grace-period"]) / 1000) : 40;
  const leaseFlags = graceS < 40 ? ["--node-lease-duration-seconds", String(Math.max(1, graceS))] : [];
  for (const n of [1, 2]) {
    const healthPort = await freePort();
    sup.start({
      name: `controller-manager-${n}`,
      zone: zones[n % zones.length],
      healthPort,
      logFile: join(dataDir, "logs", `controller-manager-${n}.log`),
      args: ["controller-manager", "--kubeconfig", await kubeconfigFor(`controller-manager-${n}`), "--leader-elect", "--port", String(healthPort), ...leaderFlags, ...cmFlags],
    });
  }

  // Nodes: the simulated cloud (a cloud controller launching instances of the topology's node groups,
  // a kubelet pool per zone running them), or real kubelets on one containerd.
  let nodesLine = "no nodes (--nodes-per-zone 0)";
  let expectedNodes = 0;
  if (cloud) {
    const topologyFile = join(dataDir, "topology.yaml");
    writeFileSync(topologyFile, "# The topology this cluster runs (written by kubelab up; read by the cloud controller).\n" + toYAML(topologyDocument(topology)));
    const healthPort = await freePort();
    const caFlags: string[] = [];
    for (const f of ["scale-down-unneeded-time", "scale-down-delay-after-add", "scan-interval"] as const) {
      if (values[f] !== undefined) caFlags.push(`--${f}`, values[f]);
    }
    sup.start({
      name: "cloud-controller",
      zone: zones[2 % zones.length],
      healthPort,
      logFile: join(dataDir, "logs", "cloud-controller.log"),
      args: ["cloud-controller", "--kubeconfig", await kubeconfigFor("cloud-controller"), "--topology", topologyFile, "--leader-elect", "--port", String(healthPort), ...leaderFlags, ...caFlags],
    });
    for (const z of topology.zones) {
      const poolHealthPort = await freePort();
      sup.start({
        name: `kubelet-${z.name}`,
        zone: z.name,
        healthPort: poolHealthPort,
        logFile: join(dataDir, "logs", `kubelet-${z.name}.log`),
        args: [
          "kubelet", "--kubeconfig", await kubeconfigFor(`kubelet-${z.name}`, kubeletPoolIdentity(z.name)), "--simulate", "--cloud",
          "--zone", z.name, "--region", region, "--subnet", z.subnet,
          "--root-dir", join(dataDir, "kubelet", z.name), "--healthz-port", String(poolHealthPort),
          "--volume-dir", volumeDir,
          ...leaseFlags,
        ],
      });
    }
    expectedNodes = topology.nodeGroups.reduce((n, g) => n + g.desiredSize * g.zones.length, 0);
    const groups = topology.nodeGroups.map((g) => `${g.name} (${g.instanceType}, ${g.minSize === g.maxSize ? g.minSize : `${g.minSize}-${g.maxSize}`} per zone)`);
    const profiles = topology.serverless.map((p) => p.name);
    nodesLine =
      `${expectedNodes} simulated nodes in ${zones.join(", ")} (region ${region})` +
      (groups.length ? `; node group${groups.length > 1 ? "s" : ""} ${groups.join(", ")}` : "") +
      (profiles.length ? `; serverless profile${profiles.length > 1 ? "s" : ""} ${profiles.join(", ")}` : "") +
      `; a cloud controller with the cluster autoscaler`;
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
            "kubelet", "--kubeconfig", await kubeconfigFor(`kubelet-${name}`, nodeIdentity(name)), "--runtime-endpoint", containerd.endpoint,
            "--node-name", name, "--zone", zone, "--region", region,
            "--node-ip", "127.0.0.1", "--port", String(kubeletPort),
            "--cluster-dns", clusterDNS, "--cluster-domain", clusterDomain,
            "--root-dir", join(dataDir, "kubelet", name), "--healthz-port", String(healthPort),
            "--volume-dir", volumeDir,
            ...leaseFlags,
          ],
        });
      }
    }
    expectedNodes = zones.length * nodesPerZone;
    nodesLine = `${expectedNodes} containerd nodes in ${zones.join(", ")} (pods on ${containerd.podSubnet})`;
  }

  // The data plane: a proxy per zone, cluster DNS and the ingress controller (only with nodes).
  if (hasNodes) {
    state.dataPlane = await startDataPlane(sup, {
      dataDir, kubeconfig, kubeconfigFor, zones, runtime, serviceCIDR, ingressHTTPPort, ingressHTTPSPort, clusterDomain,
      ingressFlags: values.fast ? ["--proxy-try-timeout", "1s", "--proxy-fail-timeout", "10s"] : [],
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
  // "kubelab is up" means the nodes are there: whoever creates a Deployment next gets every zone.
  if (expectedNodes > 0) {
    const ready = await waitNodesReady(kubeconfig, expectedNodes, 90_000, () => stopping);
    if (stopping) return;
    if (ready < expectedNodes) log.warn({ ready, expected: expectedNodes }, "not every node is Ready yet; see the kubelet and cloud-controller logs");
  }
  // ... and that the controllers run: a pod is admitted only once its namespace's ServiceAccount
  // exists, which the leading controller-manager creates (upstream's e2e framework waits for the same).
  if (!(await waitDefaultServiceAccount(kubeconfig, 60_000, () => stopping))) {
    if (stopping) return;
    log.warn("the ServiceAccount default/default does not exist yet: pods are refused until the controller-manager creates it; see its logs");
  }
  save(); // before "kubelab is up": whoever reads that line may read up.json next
  const shown = values["data-dir"]!;
  process.stdout.write(
    [
      `kubelab is up: ${apiservers > 1 ? `${apiservers} apiservers behind the cluster endpoint` : "apiserver"} https://127.0.0.1:${port} on ${etcdPlan ? `a ${etcdPlan.members.length}-member etcd cluster (${etcdPlan.members.map((m) => `${m.name} 127.0.0.1:${m.clientPort}`).join(", ")})` : values.etcd ? "etcd " + values.etcd : "the embedded store (" + join(shown, "store") + ")"}, 2 schedulers and 2 controller-managers (leader-elected), ${nodesLine}`,
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

/** The package root (holds deploy/): two levels up from this file in the sources, three from dist/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5 && !existsSync(join(dir, "deploy", "topologies", "default.yaml")); i++) dir = dirname(dir);
  return dir;
}

export const DEFAULT_TOPOLOGY = () => join(packageRoot(), "deploy", "topologies", "default.yaml");

/**
 * --topology FILE, or the default topology edited by the shorthand flags (--zones, --region,
 * --nodes-per-zone, --cluster-cidr). A file sets its zones and region itself: those flags are refused with it.
 */
export function resolveTopology(
  file: string | undefined,
  o: { zones?: string; region?: string; nodesPerZone?: number; clusterCIDR?: string; runtime: string },
): Topology {
  if (file !== undefined) {
    for (const [flag, v] of [["zones", o.zones], ["region", o.region], ["nodes-per-zone", o.nodesPerZone]] as const) {
      if (v !== undefined && !(flag === "nodes-per-zone" && v === 0)) throw new CliError(`--${flag} cannot be combined with --topology: the topology file sets the ${flag === "nodes-per-zone" ? "node groups' sizes" : flag}`, 2);
    }
    if (o.runtime !== "sim") throw new CliError("--topology needs --runtime sim: containerd nodes are not launched by the simulated cloud", 2);
  }
  let t: Topology;
  try {
    t = loadTopologyFile(file ?? DEFAULT_TOPOLOGY(), { clusterCIDR: o.clusterCIDR });
  } catch (e) {
    throw new CliError((e as Error).message, 2);
  }
  if (file !== undefined) return t;
  const zones = o.zones?.split(",").map((z) => z.trim()).filter(Boolean);
  if (zones !== undefined && zones.length === 0) throw new CliError("--zones needs at least one zone", 2);
  try {
    return overrideTopology(t, { zones, region: o.region, nodesPerZone: o.nodesPerZone === 0 ? undefined : o.nodesPerZone, clusterCIDR: o.clusterCIDR ?? DEFAULT_CLUSTER_CIDR });
  } catch (e) {
    throw new CliError((e as Error).message, 2);
  }
}

/**
 * Calls `attempt` every `intervalMs` until it returns true, the deadline passes or up is stopping;
 * a failed attempt (the apiserver restarting, the object not there yet) is retried. Whether it succeeded.
 */
async function pollUntil(timeoutMs: number, intervalMs: number, isStopping: () => boolean, attempt: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !isStopping()) {
    if (await attempt().catch(() => false)) return true;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return false;
}

/** Waits for the ServiceAccount default/default; false when it did not appear within timeoutMs. */
function waitDefaultServiceAccount(kubeconfig: string, timeoutMs: number, isStopping: () => boolean): Promise<boolean> {
  const client = clientFromKubeconfig(kubeconfig);
  return pollUntil(timeoutMs, 200, isStopping, async () => !!(await client.resource("", "serviceaccounts").get("default", "default")));
}

/** Polls the Node list until `want` nodes are Ready (or the deadline); returns how many were. */
async function waitNodesReady(kubeconfig: string, want: number, timeoutMs: number, isStopping: () => boolean): Promise<number> {
  const client = clientFromKubeconfig(kubeconfig);
  let ready = 0;
  await pollUntil(timeoutMs, 250, isStopping, async () => {
    const list = await client.resource<Node>("", "nodes").list("");
    ready = list.items.filter((n) => n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")).length;
    return ready >= want;
  });
  return ready;
}
