// The host side of the containerd runtime: a private containerd (+ runc, CNI bridge) under one data
// directory, started by `kubelab up --runtime containerd` and by the CRI integration tests, and torn
// down without leaving anything behind on the machine (processes, mounts, links, routes, iptables,
// cgroups, sysctls). Facts this follows: ../shared/CRI.md.
//
// Layout under <dataDir>:
//   containerd/config.toml, containerd/containerd.sock, containerd/{root,state,runc}/, containerd/host.json
//   cni/conf/10-kubelab.conflist, cni/ipam/         the pod network (bridge + host-local + portmap + loopback)
//   images/{pause,busybox}.tar                      OCI layout tarballs built by deploy/images/build.sh
//   logs/containerd.log
//
// Network safety (no packet may leave the machine):
//  * the bridge is created by us before containerd starts, with the gateway address, so the pod
//    subnet is routed locally (to an empty bridge) before any pod exists;
//  * the service range is blackholed (`ip route add unreachable`) unless something routes it already;
//  * filter chain KUBELAB-FORWARD (jumped to first from FORWARD) drops every packet that enters from
//    the bridge and is destined neither to the pod subnet, nor to an explicitly allowed CIDR, nor to a
//    local address — CNI's bridge plugin turns ip_forward on, and without this rule a pod could reach
//    the outside world through the host's default route.
//  * CNI `ipMasq` is false: masquerading only matters for forwarded traffic that leaves the host, which
//    the rule above drops anyway (pod→host traffic is delivered locally, never NATed). Without it the
//    bridge plugin creates no per-pod nat chains and pods keep their own source IP on pod-to-pod paths,
//    as Kubernetes' network model requires (no NAT between pods).
//  * Several hosts may share one network namespace (different bridges and subnets): each owns the
//    KUBELAB-FORWARD rules on its bridge; the first records ip_forward and adds the blackhole route,
//    the last restores and removes them with the chain and the CNI chains (see joinNetwork).

import { spawn, execFile } from "node:child_process";
import { openSync, closeSync, existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { mkdir, readFile, rm, writeFile, realpath, stat } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { dirname, join, resolve } from "node:path";
import { formatIPv4, parseCIDR, parseIPv4 } from "../../api/index.ts";
import { removeEmptyKubepodsCgroups, removePodCgroups } from "../cgroups.ts";
export { cgroupParentFor, cgroupRoots, removePodCgroups } from "../cgroups.ts";
import type { Logger } from "../../client/index.ts";
import { CriRuntime } from "./cri.ts";

export interface ContainerdHostOptions {
  /** Everything the host writes lives under here (created if missing). */
  dataDir: string;
  log: Logger;
  /** The pod subnet of this node (default 10.88.0.0/16); must be an IPv4 CIDR with prefix ≤ 30. */
  podSubnet?: string;
  /** The Linux bridge the pods attach to (default kubelab0; at most 15 characters). */
  bridge?: string;
  /** The Service ClusterIP range, blackholed unless already routed (default 10.96.0.0/16). */
  serviceCIDR?: string;
  /**
   * Extra destinations pods may reach through the host's forwarding path, e.g. other nodes' pod
   * subnets routed to local network namespaces. Everything else leaving the bridge is dropped.
   */
  allowedForwardCIDRs?: string[];
  /** How long to wait for containerd's socket (default 30 s). */
  startTimeoutMs?: number;
  /**
   * When the bridge already exists (another host in this network namespace is using it), wait up to
   * this long for it to go away before failing (default 0: fail at once). Creating the link is the
   * lock, so concurrent test suites sharing the default bridge take turns.
   */
  waitForBridgeMs?: number;
}

export interface ContainerdHost {
  /** Absolute path of containerd's gRPC socket. */
  socket: string;
  /** `unix://<socket>`, for CriRuntime.connect. */
  endpoint: string;
  pid: number;
  podSubnet: string;
  /** The bridge's address: the pods' default gateway, and the host as pods see it. */
  gatewayIP: string;
  bridge: string;
  /** Stops and removes every sandbox, stops containerd, undoes every host change. Idempotent. */
  stop(): Promise<void>;
}

/** The images every containerd host has (built by deploy/images/build.sh, imported into k8s.io). */
export const PAUSE_IMAGE = "localhost/pause:latest";
export const BUSYBOX_IMAGE = "localhost/busybox:latest";
const IMAGES: { ref: string; file: string }[] = [
  { ref: PAUSE_IMAGE, file: "pause.tar" },
  { ref: BUSYBOX_IMAGE, file: "busybox.tar" },
];

export const FORWARD_CHAIN = "KUBELAB-FORWARD";
const DEFAULT_POD_SUBNET = "10.88.0.0/16";
const DEFAULT_BRIDGE = "kubelab0";
const DEFAULT_SERVICE_CIDR = "10.96.0.0/16";
const K8S_NAMESPACE = "k8s.io";
const BIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The package root: two levels up from this file in the sources, three from the compiled dist/. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5 && !existsSync(join(dir, "deploy", "images", "build.sh")); i++) dir = dirname(dir);
  return dir;
}
const buildScript = join(packageRoot(), "deploy", "images", "build.sh");
const buildInputs = [buildScript, join(packageRoot(), "deploy", "images", "pause.c")];

/** What startContainerd changed on the host, persisted so a later run can undo a crashed one. */
interface HostState {
  pid: number;
  socket: string;
  configPath: string;
  bridge: string;
  /** Whether we created the bridge (we only delete what we created). */
  bridgeCreated: boolean;
  podSubnet: string;
  /** Whether we joined the network namespace's shared setup (see joinNetwork). */
  forwardChain: boolean;
}

/**
 * Host changes shared by every kubelab containerd host in one network namespace (tests may run two
 * side by side with different bridges), kept in /run/kubelab/net-<netns inode>.json by the first host
 * to join and undone by the last to leave. Membership is the set of bridges with rules in
 * KUBELAB-FORWARD, so a crashed host counts until its data directory is cleaned up.
 */
interface SharedNetState {
  /** net.ipv4.ip_forward before the first host joined ("0" or "1"); CNI turns it on. */
  ipForwardBefore: string;
  /** The unreachable route the first host added for the service range, if any. */
  routeAdded?: string;
}

function paths(dataDir: string) {
  const cd = join(dataDir, "containerd");
  return {
    containerdDir: cd,
    config: join(cd, "config.toml"),
    socket: join(cd, "containerd.sock"),
    stateFile: join(cd, "host.json"),
    root: join(cd, "root"),
    state: join(cd, "state"),
    runcRoot: join(cd, "runc"),
    cniConf: join(dataDir, "cni", "conf"),
    cniIpam: join(dataDir, "cni", "ipam"),
    images: join(dataDir, "images"),
    logs: join(dataDir, "logs"),
    log: join(dataDir, "logs", "containerd.log"),
  };
}

// ---------------------------------------------------------------------------------------------------
// start

/**
 * Starts a private containerd for one node: undoes a crashed previous run under the same dataDir,
 * prepares the network (bridge, blackhole route, forward guard), writes configs, starts containerd
 * detached, waits for CRI, imports the local images and removes sandboxes left by a previous run.
 * On failure everything done so far is undone before the error is rethrown.
 */
export async function startContainerd(opts: ContainerdHostOptions): Promise<ContainerdHost> {
  const log = opts.log;
  const dataDir = resolve(opts.dataDir);
  await mkdir(dataDir, { recursive: true });
  const p = paths(dataDir);
  const podSubnet = opts.podSubnet ?? DEFAULT_POD_SUBNET;
  const bridge = opts.bridge ?? DEFAULT_BRIDGE;
  const serviceCIDR = opts.serviceCIDR ?? DEFAULT_SERVICE_CIDR;
  const { gateway, prefix } = gatewayOf(podSubnet);
  if (bridge.length > 15 || !/^[A-Za-z0-9_.-]+$/.test(bridge)) throw new Error(`invalid bridge name ${JSON.stringify(bridge)}`);

  await cleanupContainerdHost(dataDir, log);
  for (const d of [p.containerdDir, p.root, p.state, p.runcRoot, p.cniConf, p.cniIpam, p.images, p.logs]) await mkdir(d, { recursive: true });

  const state: HostState = {
    pid: 0,
    socket: p.socket,
    configPath: p.config,
    bridge,
    bridgeCreated: false,
    podSubnet,
    forwardChain: false,
  };
  const save = () => writeFile(p.stateFile, JSON.stringify(state, null, 2) + "\n");
  await save();

  let stopping: Promise<void> | undefined;
  const host: ContainerdHost = {
    socket: p.socket,
    endpoint: `unix://${p.socket}`,
    pid: 0,
    podSubnet,
    gatewayIP: gateway,
    bridge,
    stop: () => (stopping ??= stopHost(dataDir, log)),
  };

  try {
    // Network first, so the pod subnet is routed locally before anything can send to it.
    const bridgeDeadline = Date.now() + (opts.waitForBridgeMs ?? 0);
    for (let waited = false; ; waited = true) {
      const r = await run("ip", ["link", "add", "name", bridge, "type", "bridge"], { allowFail: true });
      if (r.code === 0) break;
      if (!/exists/i.test(r.stderr)) throw new Error(`ip link add name ${bridge} type bridge failed: ${r.stderr.trim()}`);
      if (Date.now() >= bridgeDeadline) {
        throw new Error(`network link ${bridge} already exists and was not created by this data directory (another kubelab host?); pick another bridge name`);
      }
      if (!waited) log.info({ bridge }, "bridge in use by another host; waiting for it");
      await sleep(250);
    }
    state.bridgeCreated = true;
    await save();
    await run("ip", ["addr", "add", `${gateway}/${prefix}`, "dev", bridge]);
    await run("ip", ["link", "set", "dev", bridge, "up"]);

    state.forwardChain = true;
    await save();
    await joinNetwork({ bridge, allowed: [podSubnet, ...(opts.allowedForwardCIDRs ?? [])], serviceCIDR, log });

    await writeFile(p.config, containerdConfig(p));
    await writeFile(join(p.cniConf, "10-kubelab.conflist"), cniConflist({ bridge, podSubnet, gateway, ipamDir: p.cniIpam }));

    const logFd = openSync(p.log, "a");
    const child = spawn("containerd", ["--config", p.config], {
      detached: true,
      stdio: ["ignore", logFd, logFd],
      env: { ...process.env, PATH: `${BIN_PATH}:${process.env.PATH ?? ""}` },
    });
    closeSync(logFd);
    let exited: string | undefined;
    child.on("exit", (code, signal) => (exited = `containerd exited (code ${code}, signal ${signal})`));
    const pid = await new Promise<number>((res, rej) => {
      child.once("spawn", () => res(child.pid ?? 0));
      child.once("error", rej);
    });
    child.unref();
    state.pid = pid;
    host.pid = pid;
    await save();
    log.info({ pid, socket: p.socket, log: p.log }, "containerd started");

    const cri = await waitForCri(p.socket, opts.startTimeoutMs ?? 30_000, () => exited, p.log);
    try {
      await ensureImages(cri, dataDir, p.socket, log);
      await removeAllSandboxes(cri, log); // left over from a crashed run (containerd recovers them)
    } finally {
      await cri.close();
    }
    return host;
  } catch (e) {
    log.error({ err: e }, "starting containerd failed; tearing down");
    await host.stop().catch((e2: unknown) => log.error({ err: e2 }, "teardown after failed start"));
    throw e;
  }
}

async function waitForCri(socket: string, timeoutMs: number, exited: () => string | undefined, logPath: string): Promise<CriRuntime> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const why = exited();
    if (why) throw new Error(`${why}; see ${logPath}:\n${tail(logPath, 20)}`);
    if (existsSync(socket)) {
      try {
        return await CriRuntime.connect(socket, { timeoutMs: 2_000 });
      } catch (e) {
        last = e;
      }
    }
    await sleep(100);
  }
  throw new Error(`containerd did not serve CRI on ${socket} within ${timeoutMs} ms (${(last as Error | undefined)?.message ?? "no socket"}); see ${logPath}:\n${tail(logPath, 20)}`);
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/** Builds the image tarballs if missing or older than their sources, and imports those the runtime lacks. */
async function ensureImages(cri: CriRuntime, dataDir: string, socket: string, log: Logger): Promise<void> {
  const dir = paths(dataDir).images;
  const newestInput = Math.max(...buildInputs.map((f) => statSync(f).mtimeMs));
  const stale = IMAGES.some(({ file }) => {
    const f = join(dir, file);
    return !existsSync(f) || statSync(f).mtimeMs < newestInput;
  });
  if (stale) {
    const t0 = Date.now();
    const r = await run("bash", [buildScript, dir], { allowFail: true });
    if (r.code !== 0) throw new Error(`building images failed (${buildScript} ${dir}):\n${r.stderr}${r.stdout}`);
    log.info({ dir, ms: Date.now() - t0 }, "built local images");
  }
  for (const { ref, file } of IMAGES) {
    if (await cri.imageStatus(ref)) continue;
    const t0 = Date.now();
    await run("ctr", ["-a", socket, "-n", K8S_NAMESPACE, "images", "import", join(dir, file)]);
    if (!(await cri.imageStatus(ref))) throw new Error(`imported ${join(dir, file)} but the runtime does not see ${ref}`);
    log.info({ image: ref, ms: Date.now() - t0 }, "imported image");
  }
}

async function removeAllSandboxes(cri: CriRuntime, log: Logger): Promise<void> {
  const sandboxes = await cri.listPodSandbox();
  await Promise.all(
    sandboxes.map(async (s) => {
      try {
        await cri.stopPodSandbox(s.id);
        await cri.removePodSandbox(s.id);
      } catch (e) {
        log.warn({ err: e, sandbox: s.id }, "removing sandbox failed");
      }
      if (s.metadata.uid) await removePodCgroups(s.metadata.uid);
    }),
  );
  if (sandboxes.length > 0) log.info({ count: sandboxes.length }, "removed sandboxes");
}

function containerdConfig(p: ReturnType<typeof paths>): string {
  const q = (s: string) => JSON.stringify(s);
  return `# Written by kubelab (kubelet/runtime/containerd.ts); regenerated on every start.
version = 2
root = ${q(p.root)}
state = ${q(p.state)}
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = ${q(p.socket)}

[ttrpc]
  address = ${q(p.socket + ".ttrpc")}

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(join(p.containerdDir, "opt"))}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${q(PAUSE_IMAGE)}
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  enable_unprivileged_ports = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = ${q(p.runcRoot)}
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = ${q(p.cniConf)}
    max_conf_num = 1
`;
}

function cniConflist(o: { bridge: string; podSubnet: string; gateway: string; ipamDir: string }): string {
  return (
    JSON.stringify(
      {
        cniVersion: "1.0.0",
        name: "kubelab",
        plugins: [
          {
            type: "bridge",
            bridge: o.bridge,
            isGateway: true,
            // See the header: forwarded traffic that would need NAT is dropped by KUBELAB-FORWARD.
            ipMasq: false,
            hairpinMode: true,
            ipam: {
              type: "host-local",
              dataDir: o.ipamDir,
              ranges: [[{ subnet: o.podSubnet, gateway: o.gateway }]],
              routes: [{ dst: "0.0.0.0/0" }],
            },
          },
          { type: "portmap", capabilities: { portMappings: true } },
          { type: "loopback" },
        ],
      },
      null,
      2,
    ) + "\n"
  );
}

function sharedNetFile(): string {
  let id = "default";
  try {
    id = statSync("/proc/self/ns/net").ino.toString();
  } catch {
    // no /proc/self/ns: one namespace
  }
  return `/run/kubelab/net-${id}.json`;
}

/**
 * Installs this bridge's forward guard (RETURN for allowed destinations and local addresses, then
 * DROP, all matched on `-i bridge`) in the shared KUBELAB-FORWARD chain. The host that creates the
 * chain (iptables -N is the lock) records ip_forward and blackholes the service range if unrouted.
 */
async function joinNetwork(o: { bridge: string; allowed: string[]; serviceCIDR: string; log: Logger }): Promise<void> {
  await withNetLock(() => joinNetworkLocked(o));
}

async function joinNetworkLocked(o: { bridge: string; allowed: string[]; serviceCIDR: string; log: Logger }): Promise<void> {
  const file = sharedNetFile();
  const first = (await run("iptables", ["-w", "-N", FORWARD_CHAIN], { allowFail: true })).code === 0;
  if (first || !existsSync(file)) {
    const shared: SharedNetState = { ipForwardBefore: (await readFile("/proc/sys/net/ipv4/ip_forward", "utf8")).trim() };
    const existing = (await run("ip", ["route", "show", "exact", o.serviceCIDR])).stdout.trim();
    if (existing === "") shared.routeAdded = o.serviceCIDR;
    else o.log.info({ serviceCIDR: o.serviceCIDR, route: existing }, "service range already routed, not blackholing it");
    await mkdir("/run/kubelab", { recursive: true });
    await writeFile(file, JSON.stringify(shared) + "\n");
    if (shared.routeAdded) await run("ip", ["route", "add", "unreachable", shared.routeAdded]);
  }
  for (const cidr of o.allowed) await run("iptables", ["-w", "-A", FORWARD_CHAIN, "-i", o.bridge, "-d", cidr, "-j", "RETURN"]);
  await run("iptables", ["-w", "-A", FORWARD_CHAIN, "-i", o.bridge, "-m", "addrtype", "--dst-type", "LOCAL", "-j", "RETURN"]);
  await run("iptables", ["-w", "-A", FORWARD_CHAIN, "-i", o.bridge, "-j", "DROP"]);
  if ((await run("iptables", ["-w", "-C", "FORWARD", "-j", FORWARD_CHAIN], { allowFail: true })).code !== 0) {
    await run("iptables", ["-w", "-I", "FORWARD", "1", "-j", FORWARD_CHAIN]);
  }
}

/**
 * Removes this bridge's rules from KUBELAB-FORWARD; the last host to leave also removes the chain,
 * the CNI chains (portmap's CNI-HOSTPORT-* are shared by every bridge), the blackhole route, and
 * restores ip_forward.
 */
async function leaveNetwork(bridge: string, log: Logger): Promise<void> {
  await withNetLock(() => leaveNetworkLocked(bridge, log));
}

/**
 * Serializes join/leave across processes (concurrent test suites): a lock directory next to the
 * shared state file holding the owner's PID; a lock whose owner is dead is broken.
 */
async function withNetLock<T>(fn: () => Promise<T>): Promise<T> {
  const dir = `${sharedNetFile()}.lock`;
  await mkdir("/run/kubelab", { recursive: true });
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await mkdir(dir);
      await writeFile(join(dir, "pid"), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const owner = Number((await readFile(join(dir, "pid"), "utf8").catch(() => "")) || 0);
      const age = await stat(dir).then((st) => Date.now() - st.mtimeMs, () => 0);
      if ((owner > 0 && !isAlive(owner)) || (owner === 0 && age > 5_000)) {
        await rm(dir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${dir} (held by pid ${owner})`);
      await sleep(50);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function leaveNetworkLocked(bridge: string, log: Logger): Promise<void> {
  const listed = await run("iptables", ["-w", "-S", FORWARD_CHAIN], { allowFail: true });
  const rules = listed.code === 0 ? listed.stdout.split("\n").filter((l) => l.startsWith("-A ")) : [];
  for (let i = rules.length - 1; i >= 0; i--) {
    if (rules[i].includes(` -i ${bridge} `)) await run("iptables", ["-w", "-D", FORWARD_CHAIN, String(i + 1)], { allowFail: true });
  }
  const others = rules.filter((r) => !r.includes(` -i ${bridge} `));
  if (others.length > 0) {
    log.info({ rules: others.length }, "other kubelab hosts share this network namespace; leaving shared iptables, route and ip_forward to the last one");
    return;
  }
  while ((await run("iptables", ["-w", "-D", "FORWARD", "-j", FORWARD_CHAIN], { allowFail: true })).code === 0) {
    // a crashed run may have left more than one jump
  }
  await run("iptables", ["-w", "-F", FORWARD_CHAIN], { allowFail: true });
  await run("iptables", ["-w", "-X", FORWARD_CHAIN], { allowFail: true });
  await removeCniChains(log);
  const file = sharedNetFile();
  let shared: SharedNetState | undefined;
  try {
    shared = JSON.parse(await readFile(file, "utf8")) as SharedNetState;
  } catch {
    shared = undefined;
  }
  if (shared?.routeAdded) await run("ip", ["route", "del", "unreachable", shared.routeAdded], { allowFail: true });
  if (shared?.ipForwardBefore === "0" || shared?.ipForwardBefore === "1") {
    await writeFile("/proc/sys/net/ipv4/ip_forward", shared.ipForwardBefore).catch((e: unknown) => log.warn({ err: e }, "restoring ip_forward"));
  }
  await rm(file, { force: true });
}

/** 10.88.0.0/16 → gateway 10.88.0.1, prefix 16. */
function gatewayOf(cidr: string): { gateway: string; prefix: number } {
  const c = parseCIDR(cidr);
  if (!c || c.prefix < 8 || c.prefix > 30) throw new Error(`pod subnet ${JSON.stringify(cidr)} is not an IPv4 CIDR with a prefix of 8 to 30`);
  if (parseIPv4(cidr.split("/")[0]) !== c.network) throw new Error(`pod subnet ${cidr} has host bits set`);
  return { gateway: formatIPv4(c.network + 1), prefix: c.prefix };
}

// ---------------------------------------------------------------------------------------------------
// stop / cleanup

async function stopHost(dataDir: string, log: Logger): Promise<void> {
  const p = paths(dataDir);
  const state = await readState(p.stateFile);
  if (state && state.pid > 0 && isOurContainerd(state.pid, state.configPath)) {
    try {
      const cri = await CriRuntime.connect(p.socket, { timeoutMs: 10_000 });
      try {
        await removeAllSandboxes(cri, log);
      } finally {
        await cri.close();
      }
    } catch (e) {
      log.warn({ err: e }, "could not remove sandboxes through CRI; killing their processes instead");
    }
    await killAndWait(state.pid, 10_000, log);
  }
  await cleanupContainerdHost(dataDir, log);
}

/**
 * Undoes everything a previous startContainerd under `dataDir` did, for a run that crashed or was
 * stopped: kills its containerd (only if that PID still runs our config) and its shims and their
 * containers, unmounts what is left under dataDir, removes the CNI and KUBELAB-FORWARD iptables
 * chains, the bridge and the blackhole route we added, restores ip_forward, and removes empty
 * kubepods cgroups. Safe to call any number of times, and when nothing was ever started.
 */
export async function cleanupContainerdHost(dataDir: string, log: Logger): Promise<void> {
  dataDir = resolve(dataDir);
  const p = paths(dataDir);
  const state = await readState(p.stateFile);

  if (state && state.pid > 0 && isOurContainerd(state.pid, state.configPath)) {
    log.warn({ pid: state.pid }, "containerd from a previous run is still running; killing it");
    await killAndWait(state.pid, 10_000, log);
  }
  // Shims outlive containerd and keep the containers running: kill their children, then them.
  const shims = findProcesses((cmd) => cmd.some((a) => a.includes("containerd-shim")) && cmd.includes(p.socket));
  if (shims.length > 0) {
    const children = childrenOf(new Set(shims));
    log.warn({ shims, containers: children }, "killing leftover shims and their containers");
    for (const pid of children) signal(pid, "SIGKILL");
    for (const pid of shims) signal(pid, "SIGKILL");
    await Promise.all([...children, ...shims].map((pid) => waitGone(pid, 5_000)));
  }

  // /proc/self/mountinfo shows resolved paths (e.g. when TMPDIR is a symlink).
  const real = await realpath(dataDir).catch(() => dataDir);
  await unmountUnder(real, log);
  // State (shim sockets, netns files, rootfs mount points) is per boot: start from empty, but only
  // when nothing is mounted below it any more (never recurse into a mount).
  if (mountsUnder(real).length === 0) {
    await rm(p.state, { recursive: true, force: true });
    await rm(p.runcRoot, { recursive: true, force: true });
    await rm(p.cniIpam, { recursive: true, force: true });
    await rm(p.socket, { force: true });
    await rm(p.socket + ".ttrpc", { force: true });
  } else {
    log.error({ mounts: mountsUnder(real) }, "mounts remain under the data directory");
  }

  if (state) {
    if (state.bridgeCreated && (await run("ip", ["link", "show", "dev", state.bridge], { allowFail: true })).code === 0) {
      await run("ip", ["link", "del", "dev", state.bridge], { allowFail: true });
    }
    if (state.forwardChain) await leaveNetwork(state.bridge, log);
    await removeEmptyKubepodsCgroups();
    await rm(p.stateFile, { force: true });
    log.info({ dataDir }, "containerd host cleaned up");
  }
}

async function readState(file: string): Promise<HostState | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as HostState;
  } catch {
    return undefined;
  }
}

function cmdlineOf(pid: number): string[] | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    return raw.split("\0").filter((s) => s !== "");
  } catch {
    return undefined;
  }
}

/** Alive and not a zombie. */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

function isOurContainerd(pid: number, configPath: string): boolean {
  const cmd = cmdlineOf(pid);
  return !!cmd && isAlive(pid) && cmd.some((a) => a.endsWith("containerd")) && cmd.includes(configPath);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(50);
  }
  return !isAlive(pid);
}

async function killAndWait(pid: number, graceMs: number, log: Logger): Promise<void> {
  signal(pid, "SIGTERM");
  if (await waitGone(pid, graceMs)) return;
  log.warn({ pid }, "containerd did not exit after SIGTERM; sending SIGKILL");
  signal(pid, "SIGKILL");
  await waitGone(pid, 5_000);
}

function findProcesses(match: (cmdline: string[]) => boolean): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    if (pid === process.pid) continue;
    const cmd = cmdlineOf(pid);
    if (cmd && cmd.length > 0 && match(cmd)) out.push(pid);
  }
  return out;
}

function childrenOf(parents: Set<number>): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (parents.has(ppid)) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

/** Mount points at or below `dir` in this mount namespace, deepest first. */
export function mountsUnder(dir: string): string[] {
  const base = dir.endsWith("/") ? dir.slice(0, -1) : dir;
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const points = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => unescape(l.split(" ")[4] ?? ""))
    .filter((m) => m === base || m.startsWith(base + "/"));
  return [...new Set(points)].sort((a, b) => b.split("/").length - a.split("/").length || b.length - a.length);
}

async function unmountUnder(dir: string, log: Logger): Promise<void> {
  for (let round = 0; round < 5; round++) {
    const mounts = mountsUnder(dir);
    if (mounts.length === 0) return;
    if (round === 0) log.info({ count: mounts.length }, "unmounting leftovers under the data directory");
    for (const m of mounts) await run("umount", ["-l", m], { allowFail: true });
  }
}

/** Deletes every CNI-* chain (CNI-HOSTPORT-*, CNI-DN-*, per-pod CNI-<hash>) and the rules jumping to them. */
async function removeCniChains(log: Logger): Promise<void> {
  for (const table of ["nat", "filter", "mangle"]) {
    const r = await run("iptables", ["-w", "-t", table, "-S"], { allowFail: true });
    if (r.code !== 0) continue;
    const lines = r.stdout.split("\n");
    const chains = lines.filter((l) => l.startsWith("-N CNI-")).map((l) => l.slice(3).trim());
    if (chains.length === 0) continue;
    // Delete jumps from non-CNI chains, by position (rules carry quoted comments; positions are exact).
    const byChain = new Map<string, string[]>();
    for (const l of lines) {
      const m = /^-A (\S+) (.*)$/.exec(l);
      if (!m) continue;
      const list = byChain.get(m[1]) ?? [];
      list.push(m[2]);
      byChain.set(m[1], list);
    }
    for (const [chain, rules] of byChain) {
      if (chain.startsWith("CNI-")) continue;
      for (let i = rules.length - 1; i >= 0; i--) {
        if (/-[jg] CNI-/.test(rules[i])) await run("iptables", ["-w", "-t", table, "-D", chain, String(i + 1)], { allowFail: true });
      }
    }
    for (const c of chains) await run("iptables", ["-w", "-t", table, "-F", c], { allowFail: true });
    for (const c of chains) await run("iptables", ["-w", "-t", table, "-X", c], { allowFail: true });
    log.info({ table, chains: chains.length }, "removed CNI iptables chains");
  }
}


// ---------------------------------------------------------------------------------------------------
// helpers

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a host tool; rejects on a non-zero exit unless allowFail. */
function run(cmd: string, args: string[], opts: { allowFail?: boolean } = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    execFile(
      cmd,
      args,
      { env: { ...process.env, PATH: `${BIN_PATH}:${process.env.PATH ?? ""}` }, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : -1) : 0;
        const res = { code, stdout: String(stdout), stderr: String(stderr) };
        if (code !== 0 && !opts.allowFail) reject(new Error(`${cmd} ${args.join(" ")} failed (${code}): ${res.stderr.trim() || err?.message}`));
        else resolvePromise(res);
      },
    );
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
