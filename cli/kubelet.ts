// `kubelab kubelet`: one kubelet on a CRI runtime (containerd), or with --simulate a pool of
// simulated nodes in one process. A pool's --kubeconfig is its bootstrap credential (upstream's
// --bootstrap-kubeconfig): in group system:bootstrappers, each node gets its own client certificate
// by CSR and talks to the apiserver as system:node:<name> (kubelet/certificate.ts).

import { X509Certificate } from "node:crypto";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Gauge, Registry, collectDefaultMetrics } from "prom-client";
import { escapeFieldValue, formatIPv4, parseIPv4, isValidLabelValue, isValidQuantity, parseCIDR, type Node, type Pod } from "../api/index.ts";
import { isLocalAddress, newEventRecorder, newInformer, newLogger, type Context, type Logger } from "../client/index.ts";
import { Kubelet, POOL_LABEL, registerKubeletMetrics, runCloudPool, runPool, splitNodeCIDRs, type CriRuntime, type KubeletDNSOptions, type KubeletOptions, type NodeAgent } from "../kubelet/index.ts";
import type { NodeControl } from "../kubelet/nodecontrol.ts";
import { NodeClientSource } from "../kubelet/certificate.ts";
import { loadKubeconfig, type RestConfig } from "../client/rest.ts";
import { SubnetIPAM } from "../kubelet/runtime/sim/vpc.ts";
import { CliError } from "./errors.ts";
import { clientFromKubeconfig, parseDuration, serveHealth } from "./component.ts";
import { serveNodeControl } from "./nodecontrol.ts";

const HELP = `usage: kubelab kubelet --kubeconfig FILE (--runtime-endpoint unix:///PATH | --simulate) [flags]

  --kubeconfig FILE          how to reach the apiserver
  --runtime-endpoint URL     the CRI socket of containerd, e.g. unix:///run/containerd/containerd.sock
                             (one kubelet; required without --simulate)
  --simulate                 run --nodes simulated nodes in this process instead
  --cloud                    with --simulate: run the zone's instances of the simulated cloud instead
                             of --nodes: one node per instance the cloud controller lists in the
                             zone's kube-system ConfigMaps (label kubelab.io/cloud), with the node
                             group's capacity, labels and taints; needs --subnet
  --subnet CIDR              with --cloud: the zone's VPC subnet inside 127.0.0.0/8; node and pod
                             addresses come from it (AWS keeps 5 of each subnet: a /28 holds 11)
  --nodes N                  simulated nodes (default 1)
  --name-prefix P            simulated node i is P-i (default node-<zone>); every node of the pool
                             carries the label kubelab.io/pool=P
  --pod-cidr CIDR            with --simulate: a range inside 127.0.0.0/8 split into one /24 per node,
                             node IP .1, pods from .2 (default 127.64.0.0/14); otherwise only
                             written to spec.podCIDR
  --node-name NAME           the Node's name (default the hostname; not with --simulate)
  --node-ip IP               the Node's InternalIP, where the kubelet server listens (default 127.0.0.1;
                             not with --simulate, where each node uses the .1 of its /24)
  --zone Z                   topology.kubernetes.io/zone (default local-1a)
  --region R                 topology.kubernetes.io/region (default local-1)
  --root-dir DIR             pod volumes and logs (default .kubelab/kubelet)
  --volume-dir DIR           the simulated cloud's disks, shared by every node: a PVC's volume is
                             DIR/<volumeHandle> (default ROOT-DIR/volumes; up passes DATA/volumes)
  --port P                   the kubelet server (container logs) port (default 10250)
  --healthz-port P           /healthz, /readyz and /metrics on 127.0.0.1:P (default 10248; 0 picks one)
  --capacity LIST            node capacity, e.g. cpu=8,memory=32Gi,pods=110 (these and
                             ephemeral-storage=100Gi are the defaults)
  --node-status-update-frequency D   how often the node status is computed (default 10s; sent
                                     when changed, or every 5m)
  --node-lease-duration-seconds N    the node Lease's duration (default 40), renewed every quarter of it as upstream
  --cluster-dns IP[,IP]      the cluster DNS servers (kube-dns's ClusterIP) for dnsPolicy ClusterFirst pods;
                             without it they fall back to Default, as upstream warns (MissingClusterDNS)
  --cluster-domain D         the cluster's DNS domain, e.g. cluster.local: pods search <ns>.svc.D svc.D D
  --resolv-conf FILE         the host resolver file for dnsPolicy Default (default /etc/resolv.conf; ""
                             for none); nameservers not on this machine are never given to a pod
                             (simulated pools accept these flags; their pods resolve nothing)
  --node-certificates MODE   with --simulate: "bootstrap": every node requests its own client
                             certificate (CN=system:node:<name>, O=system:nodes) with a CSR made with
                             the --kubeconfig credential, keeps it under ROOT-DIR/pki, renews it, and
                             sends everything it writes as that node; "shared": every node uses the
                             --kubeconfig credential; "auto" (default): bootstrap when the
                             --kubeconfig client certificate is in group system:bootstrappers`;

function parsePort(flag: string, v: string, allowZero: boolean): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535 || (!allowZero && n === 0)) throw new CliError(`--${flag} must be a port number, got "${v}"`, 2);
  return n;
}

/** "cpu=8,memory=32Gi" → a ResourceList; a usage error names the bad entry. */
export function parseCapacity(v: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of v.split(",").map((s) => s.trim()).filter(Boolean)) {
    const eq = item.indexOf("=");
    const name = eq > 0 ? item.slice(0, eq).trim() : "";
    const value = eq > 0 ? item.slice(eq + 1).trim() : "";
    if (!name || !isValidQuantity(value)) throw new CliError(`--capacity: "${item}" is not name=quantity (e.g. cpu=8,memory=32Gi)`, 2);
    out[name] = value;
  }
  return out;
}

/** --cluster-dns (comma-separated IPv4 addresses), --cluster-domain and --resolv-conf, validated. */
export function parseDNSFlags(clusterDNS: string | undefined, clusterDomain: string | undefined, resolvConf: string | undefined): KubeletDNSOptions {
  const servers = (clusterDNS ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  for (const ip of servers) if (parseIPv4(ip) === undefined) throw new CliError(`--cluster-dns: "${ip}" is not an IPv4 address`, 2);
  const domain = (clusterDomain ?? "").replace(/\.$/, "").toLowerCase();
  if (domain !== "" && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(domain)) {
    throw new CliError(`--cluster-domain must be a DNS domain like cluster.local, got "${clusterDomain}"`, 2);
  }
  return { clusterDNS: servers, clusterDomain: domain, resolvConf: resolvConf ?? "/etc/resolv.conf" };
}

/** Simulated pod addresses must be loopback ones: 127.0.0.0/8 holds every address of the range. */
function isLoopbackCIDR(cidr: string): boolean {
  const c = parseCIDR(cidr);
  return !!c && c.prefix >= 8 && formatIPv4(c.network).startsWith("127.");
}

export async function runKubelet(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: "string" },
      simulate: { type: "boolean", default: false },
      cloud: { type: "boolean", default: false },
      subnet: { type: "string" },
      nodes: { type: "string" },
      zone: { type: "string", default: "local-1a" },
      region: { type: "string", default: "local-1" },
      "name-prefix": { type: "string" },
      "node-name": { type: "string" },
      "runtime-endpoint": { type: "string" },
      "root-dir": { type: "string", default: ".kubelab/kubelet" },
      "volume-dir": { type: "string" },
      "pod-cidr": { type: "string" },
      "node-ip": { type: "string" },
      port: { type: "string", default: "10250" },
      "healthz-port": { type: "string", default: "10248" },
      "node-status-update-frequency": { type: "string", default: "10s" },
      "node-lease-duration-seconds": { type: "string", default: "40" },
      capacity: { type: "string" },
      "cluster-dns": { type: "string" },
      "cluster-domain": { type: "string" },
      "resolv-conf": { type: "string" },
      "node-certificates": { type: "string", default: "auto" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(HELP + "\n");
    return;
  }
  if (!values.kubeconfig) throw new CliError("--kubeconfig is required", 2);
  const simulate = values.simulate!;
  const nodeCertificates = values["node-certificates"]!;
  if (!["auto", "bootstrap", "shared"].includes(nodeCertificates)) throw new CliError(`--node-certificates must be auto, bootstrap or shared, got "${nodeCertificates}"`, 2);
  if (simulate) {
    if (values["runtime-endpoint"]) throw new CliError("--runtime-endpoint and --simulate are exclusive", 2);
    if (values["node-name"]) throw new CliError("--node-name is for a single kubelet; simulated nodes are named by --name-prefix", 2);
    if (values["node-ip"]) throw new CliError("--node-ip is for a single kubelet; each simulated node uses the .1 of its /24 of --pod-cidr", 2);
  }
  const cloud = values.cloud!;
  if (cloud) {
    if (!simulate) throw new CliError("--cloud needs --simulate: the simulated cloud launches simulated nodes", 2);
    for (const f of ["nodes", "name-prefix", "pod-cidr", "capacity"] as const) {
      if (values[f] !== undefined) throw new CliError(`--${f} cannot be combined with --cloud: the cloud controller's instances and their node group set it`, 2);
    }
    if (!values.subnet) throw new CliError("--cloud needs --subnet (the zone's VPC subnet)", 2);
    try {
      new SubnetIPAM(values.zone!, values.subnet); // the same checks the pool makes: CIDR, loopback, room
    } catch (e) {
      throw new CliError(`--subnet: ${(e as Error).message}`, 2);
    }
  } else if (values.subnet !== undefined) {
    throw new CliError("--subnet needs --cloud", 2);
  }
  if (!simulate) {
    if (!values["runtime-endpoint"]) throw new CliError("--runtime-endpoint is required (or --simulate for simulated nodes)", 2);
    if (values.nodes !== undefined) throw new CliError("--nodes needs --simulate", 2);
    if (values["name-prefix"] !== undefined) throw new CliError("--name-prefix needs --simulate", 2);
  }
  const nodes = Number(values.nodes ?? "1");
  if (!/^\d+$/.test(values.nodes ?? "1") || nodes < 1) throw new CliError(`--nodes must be a positive integer, got "${values.nodes}"`, 2);
  const port = parsePort("port", values.port!, false);
  const healthzPort = parsePort("healthz-port", values["healthz-port"]!, true);
  const statusEveryMs = parseDuration("node-status-update-frequency", values["node-status-update-frequency"]!);
  const leaseSeconds = Number(values["node-lease-duration-seconds"]);
  if (!/^\d+$/.test(values["node-lease-duration-seconds"]!) || leaseSeconds < 1) {
    throw new CliError(`--node-lease-duration-seconds must be a positive integer, got "${values["node-lease-duration-seconds"]}"`, 2);
  }
  const capacity = values.capacity !== undefined ? parseCapacity(values.capacity) : undefined;
  const podCIDR = values["pod-cidr"] ?? (simulate ? "127.64.0.0/14" : undefined);
  // Simulated pods and node servers bind their addresses: only loopback keeps every packet on this machine.
  if (simulate && !isLoopbackCIDR(podCIDR!)) throw new CliError(`--pod-cidr ${podCIDR} must lie inside 127.0.0.0/8 with --simulate`, 2);
  const namePrefix = values["name-prefix"] ?? `node-${values.zone!}`;
  if (simulate && !cloud) {
    const prefixErrors = isValidLabelValue(namePrefix);
    if (prefixErrors.length) throw new CliError(`--name-prefix "${namePrefix}" must be a valid label value (the pool's nodes carry it as ${POOL_LABEL}): ${prefixErrors.join("; ")}`, 2);
    try {
      splitNodeCIDRs(podCIDR!, nodes);
    } catch (e) {
      throw new CliError(`--pod-cidr: ${(e as Error).message}`, 2);
    }
  }
  const nodeIP = values["node-ip"] ?? "127.0.0.1";
  if (!simulate && !isLocalAddress(nodeIP)) throw new CliError(`--node-ip ${nodeIP} is not an address of this machine`, 2);
  const rootDir = resolve(values["root-dir"]!);
  // One directory for the whole "cloud": every node (and the volume controller) must agree on it.
  const volumeDir = resolve(values["volume-dir"] ?? join(rootDir, "volumes"));
  const zone = values.zone!;
  const region = values.region!;

  const log = newLogger("kubelet");
  const client = clientFromKubeconfig(values.kubeconfig);
  let nodeClients: NodeClientSource | undefined;
  if (simulate) {
    const restConfig = loadKubeconfig(values.kubeconfig);
    const bootstrap = nodeCertificates === "bootstrap" || (nodeCertificates === "auto" && isBootstrapper(restConfig));
    if (bootstrap) {
      if (!restConfig.server.startsWith("https:")) throw new CliError("--node-certificates bootstrap needs an https apiserver in --kubeconfig: a node presents its certificate over TLS", 2);
      nodeClients = new NodeClientSource({
        bootstrapClient: client,
        dir: join(rootDir, "pki"),
        server: { server: restConfig.server, caCert: restConfig.caCert, insecure: restConfig.insecure },
        log,
      });
      log.info({ dir: join(rootDir, "pki") }, "every simulated node bootstraps its own client certificate");
    }
  }
  const dns = parseDNSFlags(values["cluster-dns"], values["cluster-domain"], values["resolv-conf"]);
  // A CRI kubelet always forms pod DNS (containerd would copy the host's file otherwise); a simulated
  // pool only passes it through when asked.
  const withDNS = !simulate || values["cluster-dns"] !== undefined || values["cluster-domain"] !== undefined;
  const kubeletOpts: Partial<KubeletOptions> = { nodeStatusUpdateFrequencyMs: statusEveryMs, leaseDurationSeconds: leaseSeconds, leaseRenewIntervalMs: leaseSeconds * 250, volumeDir, ...(capacity ? { capacity } : {}), ...(withDNS ? { dns } : {}) };

  let agents: readonly NodeAgent[] = [];
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Upstream's kubelet_* (kubelet/metrics.ts): histograms over every node of this process, gauges summed over them.
  registerKubeletMetrics(registry);
  new Gauge({
    name: "kubelab_kubelet_nodes",
    help: "Node agents run by this process",
    registers: [registry],
    collect() {
      this.set(agents.length);
    },
  });

  const stop = new AbortController();
  const ctx: Context = { signal: stop.signal, log };
  const shutdown = (signal: string): void => {
    log.info({ signal }, "kubelet stopping");
    stop.abort();
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));

  const health = await serveHealth(healthzPort, registry, () => agents.length > 0, log, "node agents not started");
  // Chaos on one node of a simulated pool (stop it, skew its clock): ROOT/nodes.sock.
  let control: NodeControl | undefined;
  const nodeControl = simulate ? await serveNodeControl(rootDir, () => control, log) : undefined;
  try {
    if (cloud) {
      await runCloudPool(ctx, { client, nodeClients, zone, region, subnet: values.subnet!, rootDir, port, log, kubelet: kubeletOpts, onAgents: (a) => (agents = a), onControl: (c) => (control = c) });
    } else if (simulate) {
      await runPool(ctx, {
        client,
        nodeClients,
        nodes,
        zone,
        region,
        namePrefix,
        rootDir,
        podCIDR: podCIDR!,
        port,
        log,
        kubelet: kubeletOpts,
        onAgents: (a) => (agents = a),
        onControl: (c) => (control = c),
      });
    } else {
      await runOneKubelet(ctx, log, values["runtime-endpoint"]!, {
        ...kubeletOpts,
        nodeName: values["node-name"] ?? hostname().toLowerCase(),
        zone,
        region,
        client,
        rootDir,
        nodeIP,
        port,
        podCIDR,
      }, (a) => (agents = a));
    }
  } finally {
    health.close();
    nodeControl?.close();
  }
  process.exit(0);
}

/** Whether the kubeconfig's client certificate is in group system:bootstrappers (an O of its subject). */
function isBootstrapper(cfg: RestConfig): boolean {
  if (!cfg.clientCert) return false;
  try {
    return new X509Certificate(cfg.clientCert).subject.split("\n").includes("O=system:bootstrappers");
  } catch {
    return false;
  }
}

/** Containerd mode: connect to the CRI socket, run one kubelet until ctx aborts, then close the connection. */
async function runOneKubelet(
  ctx: Context,
  log: Logger,
  endpoint: string,
  opts: Omit<KubeletOptions, "pods" | "runtime" | "recorder" | "log">,
  onAgent: (a: readonly NodeAgent[]) => void,
): Promise<void> {
  let runtime: CriRuntime;
  try {
    // grpc-js and the CRI codecs load only for a containerd kubelet, not for simulated pools.
    const { CriRuntime: Cri } = await import("../kubelet/runtime/cri.ts");
    runtime = await Cri.connect(endpoint);
  } catch (e) {
    throw new CliError(`cannot reach the container runtime at ${endpoint}: ${(e as Error).message}`);
  }
  try {
    const v = await runtime.version();
    const pods = newInformer<Pod>(opts.client, "", "pods", { fieldSelector: `spec.nodeName=${escapeFieldValue(opts.nodeName)}`, log });
    // Its own Node only, as upstream's kubelet watches it: the node status loop reads it from here.
    const nodes = newInformer<Node>(opts.client, "", "nodes", { fieldSelector: `metadata.name=${escapeFieldValue(opts.nodeName)}`, log });
    const informersDone = Promise.all([pods.run({ ...ctx, log: log.child({ informer: "pods" }) }), nodes.run({ ...ctx, log: log.child({ informer: "nodes" }) })]);
    await Promise.all([pods.waitForSync(ctx.signal), nodes.waitForSync(ctx.signal)]);
    if (!ctx.signal.aborted) {
      const kubelet = new Kubelet({
        ...opts,
        pods,
        nodes,
        runtime,
        runtimeVersion: `${v.runtimeName}://${v.runtimeVersion}`,
        recorder: newEventRecorder(opts.client, { component: "kubelet", host: opts.nodeName, log }),
        log: log.child({ node: opts.nodeName }),
      });
      onAgent([kubelet]);
      log.info({ node: opts.nodeName, runtime: `${v.runtimeName} ${v.runtimeVersion}`, nodeIP: opts.nodeIP, port: opts.port }, "kubelet starting");
      await kubelet.run(ctx); // the kubelet adds its node to the log context
    }
    await informersDone;
  } finally {
    await runtime.close().catch((e: unknown) => log.warn({ err: e }, "failed to close the runtime connection"));
  }
}
