// The host side of the containerd runtime: a private containerd (+ runc, CNI bridge) under one data
// directory, started by `kubelab up --runtime containerd` and by the CRI integration tests, and torn
// down without leaving anything behind on the machine (processes, mounts, links, routes, iptables,
// cgroups, sysctls). Facts this follows: ../shared/CRI.md.
//
// Layout under <dataDir>:
//   host-journal.jsonl                               every host change, recorded before it is made (hoststate.ts)
//   containerd/config.toml, containerd/containerd.sock, containerd/{root,state,runc}/
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
//
// Recovery: the journal, the host-wide registry (/run/kubelab/hosts) and the owner written on the
// bridge (its alias: pid, start time, data dir) let cleanupContainerdHost undo a host whose process
// was SIGKILLed, and let the next start reclaim a bridge whose owner is dead (see createBridge).

import { spawn, execFile } from "node:child_process";
import { openSync, closeSync, existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { mkdir, readFile, rm, writeFile, realpath, stat } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { basename, dirname, join, resolve } from "node:path";
import { formatIPv4, parseCIDR, parseIPv4 } from "../../api/index.ts";
import { podCgroupDirs, pidsInCgroupTree, removeEmptyKubepodsCgroups, removePodCgroups } from "../cgroups.ts";
import {
  type JournalEntry,
  bridgeAlias,
  childrenOf,
  clearJournal,
  currentOwner,
  findCniPlugins,
  findProcesses,
  isAlive,
  journalOwner,
  netnsId,
  ownerAlive,
  parseBridgeAlias,
  readJournal,
  record,
  register,
  signal,
  unregister,
  waitGone,
  type Owner,
} from "./hoststate.ts";
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
   * When the bridge is held by another live host (its alias names the owner), wait up to this long
   * for it to go away before failing (default 0: fail at once, naming the owner's pid and data dir).
   * A bridge whose owner is dead is reclaimed at once, whatever this says.
   */
  waitForBridgeMs?: number;
  /**
   * The dummy interface that holds Service ClusterIPs as /32s, so pods reach them through their
   * gateway (default kubelab-svc0 for the kubelab0 bridge, kubelab-svcN for kubelabN; none for other
   * bridge names unless given).
   */
  serviceInterface?: string;
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
  /** The dummy interface for Service ClusterIPs (see SERVICE_INTERFACE), if this host has one. */
  serviceInterface?: string;
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
export { SERVICE_INTERFACE } from "./hoststate.ts";
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

/** What an older kubelab wrote in containerd/host.json (before the journal); still honoured by cleanup. */
interface LegacyHostState {
  bridge: string;
  bridgeCreated: boolean;
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
    legacyStateFile: join(cd, "host.json"),
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
 * Starts a private containerd for one node: undoes what a dead previous run under the same dataDir
 * left, prepares the network (bridge, blackhole route, forward guard), writes configs, starts
 * containerd detached, waits for CRI, imports the local images and removes sandboxes left by a
 * previous run. Each host change is journalled in the data dir before it is made (hoststate.ts).
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
  const owner = currentOwner();
  const alias = bridgeAlias(owner, dataDir);
  const numbered = /^kubelab(\d+)$/.exec(bridge);
  const serviceInterface = opts.serviceInterface ?? (numbered ? `kubelab-svc${numbered[1]}` : undefined);
  if (serviceInterface !== undefined && (serviceInterface.length > 15 || !/^[A-Za-z0-9_.-]+$/.test(serviceInterface))) {
    throw new Error(`invalid service interface name ${JSON.stringify(serviceInterface)}`);
  }

  await cleanupContainerdHost(dataDir, log); // refuses if a live process owns this data dir
  for (const d of [p.containerdDir, p.root, p.state, p.runcRoot, p.cniConf, p.cniIpam, p.images, p.logs]) await mkdir(d, { recursive: true });
  record(dataDir, { kind: "owner", pid: owner.pid, start: owner.start, dataDir, netns: netnsId(), at: new Date().toISOString() });
  register({ ...owner, dataDir, netns: netnsId(), bridge });

  let stopping: Promise<void> | undefined;
  const host: ContainerdHost = {
    socket: p.socket,
    endpoint: `unix://${p.socket}`,
    pid: 0,
    podSubnet,
    gatewayIP: gateway,
    bridge,
    serviceInterface,
    stop: () =>
      (stopping ??= cleanupContainerdHost(dataDir, log).then((removed) => {
        if (removed.length > 0) log.info({ dataDir, removed }, "containerd host cleaned up");
      })),
  };

  try {
    // Network first, so the pod subnet is routed locally before anything can send to it.
    record(dataDir, { kind: "bridge", name: bridge, subnet: podSubnet, gateway });
    await createBridge(bridge, alias, opts.waitForBridgeMs ?? 0, log, () => record(dataDir, { kind: "bridge-held", name: bridge }));
    await run("ip", ["addr", "add", `${gateway}/${prefix}`, "dev", bridge]);
    await run("ip", ["link", "set", "dev", bridge, "up"]);
    if (serviceInterface) {
      record(dataDir, { kind: "service-interface", name: serviceInterface });
      await createServiceInterface(serviceInterface, alias, dataDir, log);
    }

    record(dataDir, { kind: "forward-guard", bridge });
    await joinNetwork({ bridge, allowed: [podSubnet, ...(opts.allowedForwardCIDRs ?? [])], serviceCIDR, log, beforeRoute: (cidr) => record(dataDir, { kind: "route", cidr }) });

    await writeFile(p.config, containerdConfig(p));
    await writeFile(join(p.cniConf, "10-kubelab.conflist"), cniConflist({ bridge, podSubnet, gateway, ipamDir: p.cniIpam }));

    // What containerd will create on our behalf, recorded before it runs: its shims (and their
    // containers), the sandboxes' network namespaces, the mounts, the pods' cgroups.
    record(dataDir, { kind: "containerd", config: p.config, socket: p.socket });
    record(dataDir, { kind: "shims", socket: p.socket });
    record(dataDir, { kind: "netns", dir: join(p.state, "io.containerd.grpc.v1.cri", "netns") });
    record(dataDir, { kind: "mounts", under: await realpath(dataDir).catch(() => dataDir) });
    record(dataDir, { kind: "cgroups", parent: "/kubepods", runcRoot: p.runcRoot });
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
    host.pid = pid;
    record(dataDir, { kind: "containerd", config: p.config, socket: p.socket, pid });
    log.info({ pid, socket: p.socket, log: p.log }, "containerd started");

    const cri = await waitForCri(p.socket, opts.startTimeoutMs ?? 30_000, () => exited, p.log);
    try {
      await ensureImages(cri, dataDir, p.socket, log);
      // left over from a crashed run (containerd recovers them)
      for (const s of await removeAllSandboxes(cri, log)) if (s.uid) await removePodCgroups(s.uid);
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

/**
 * Creates the bridge and writes its owner in the link alias (the kernel ignores an alias on `link
 * add`, so one `ip -batch` sets it right after, stopping if the add fails). A bridge already there
 * names its owner: a dead one's host state is cleaned up from its journal at once and the bridge
 * reclaimed; a live one's is an error naming its pid and data dir (after waiting up to waitMs for it
 * to go); a bridge without a kubelab alias is not ours to touch. `held` journals that the bridge
 * exists and is not ours, so our cleanup never deletes it.
 */
async function createBridge(bridge: string, alias: string, waitMs: number, log: Logger, held: () => void): Promise<void> {
  const deadline = Date.now() + waitMs;
  let heldRecorded = false;
  for (let waiting = false, aliasless = 0; ; ) {
    const r = await run("ip", ["-batch", "-"], { allowFail: true, input: `link add name ${bridge} type bridge\nlink set dev ${bridge} alias "${alias}"\n` });
    if (r.code === 0) return;
    if (!/exists/i.test(r.stderr)) throw new Error(`ip link add name ${bridge} type bridge failed: ${r.stderr.trim()}`);
    if (!heldRecorded) held();
    heldRecorded = true;
    const link = await linkInfo(bridge);
    if (!link) continue; // removed meanwhile
    const holder = parseBridgeAlias(link.alias);
    if (!holder) {
      // Another kubelab between its add and its alias, for a moment; anything else is not kubelab's.
      if (++aliasless < 10) {
        await sleep(100);
        continue;
      }
      throw new Error(`network link ${bridge} already exists and was not created by kubelab; remove it ('ip link del ${bridge}') or use another bridge name`);
    }
    if (!ownerAlive(holder)) {
      log.warn({ bridge, pid: holder.pid, dataDir: holder.dataDir }, `reclaiming bridge ${bridge} from a dead kubelab (pid ${holder.pid}, data dir ${holder.dataDir})`);
      const removed = await cleanupContainerdHost(holder.dataDir, log).catch((e: unknown) => {
        log.warn({ err: e, dataDir: holder.dataDir }, "cleaning up the dead host failed; deleting its bridge");
        return [];
      });
      if (removed.length > 0) log.info({ dataDir: holder.dataDir, removed }, "cleaned up the dead host's state");
      // No journal left there (data dir deleted)? The alias alone proves whose bridge it is.
      const still = await linkInfo(bridge);
      if (still && still.alias === link.alias) await run("ip", ["link", "del", "dev", bridge], { allowFail: true });
      continue;
    }
    if (Date.now() >= deadline) {
      throw new Error(`network link ${bridge} is in use by kubelab pid ${holder.pid} (data dir ${holder.dataDir}); stop it first ('kubelab down --data-dir ${holder.dataDir}') or use another bridge name`);
    }
    if (!waiting) log.info({ bridge, pid: holder.pid, dataDir: holder.dataDir }, "bridge in use by another live kubelab host; waiting for it");
    waiting = true;
    await sleep(250);
  }
}

/** A link's index and alias (`ip -j link show`), or undefined when there is no such link. */
async function linkInfo(name: string): Promise<{ ifindex: number; alias?: string } | undefined> {
  const r = await run("ip", ["-j", "link", "show", "dev", name], { allowFail: true });
  if (r.code !== 0) return undefined;
  try {
    const l = (JSON.parse(r.stdout) as { ifindex: number; ifalias?: string }[])[0];
    return l ? { ifindex: l.ifindex, alias: l.ifalias } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Creates the Service dummy interface with our owner alias and sets it up. One already there is
 * replaced when its alias names this data dir or a dead kubelab; anything else is an error.
 */
async function createServiceInterface(name: string, alias: string, dataDir: string, log: Logger): Promise<void> {
  for (let attempt = 0, type = "dummy"; ; attempt++) {
    const r = await run("ip", ["-batch", "-"], { allowFail: true, input: `link add name ${name} type ${type}\nlink set dev ${name} alias "${alias}"\n` });
    if (r.code === 0) break;
    if (/unknown device type/i.test(r.stderr) && type === "dummy") {
      // A kernel without the dummy driver: a bridge without ports holds local addresses just the same.
      log.info({ link: name }, "the kernel has no dummy interfaces; the service interface is a bridge without ports");
      type = "bridge";
      attempt--;
      continue;
    }
    if (!/exists/i.test(r.stderr) || attempt > 0) throw new Error(`ip link add name ${name} type dummy failed: ${r.stderr.trim()}`);
    const link = await linkInfo(name);
    const holder = parseBridgeAlias(link?.alias);
    if (link && (!holder || (holder.dataDir !== dataDir && ownerAlive(holder)))) {
      throw new Error(`network link ${name} already exists and is not this kubelab's${holder ? ` (it is pid ${holder.pid}'s, data dir ${holder.dataDir})` : ""}; remove it ('ip link del ${name}') or stop its owner`);
    }
    if (link) {
      log.warn({ link: name, owner: holder }, `replacing the service interface ${name} a dead kubelab left`);
      await run("ip", ["link", "del", "dev", name], { allowFail: true });
    }
  }
  await run("ip", ["link", "set", "dev", name, "up"]);
}

/** Links on this host of `type` (bridge, dummy) that carry a kubelab owner alias. */
async function kubelabLinks(type: string): Promise<{ name: string; owner: Owner & { dataDir: string } }[]> {
  const r = await run("ip", ["-j", "link", "show", "type", type], { allowFail: true });
  if (r.code !== 0) return [];
  const out: { name: string; owner: Owner & { dataDir: string } }[] = [];
  for (const l of JSON.parse(r.stdout || "[]") as { ifname: string; ifalias?: string }[]) {
    const owner = parseBridgeAlias(l.ifalias);
    if (owner) out.push({ name: l.ifname, owner });
  }
  return out;
}

/** Names of the links enslaved to `master` (the host ends of pod veths on a bridge). */
async function linksWithMaster(master: string): Promise<string[]> {
  const r = await run("ip", ["-j", "link", "show", "master", master], { allowFail: true });
  if (r.code !== 0) return [];
  try {
    return (JSON.parse(r.stdout || "[]") as { ifname: string }[]).map((l) => l.ifname.split("@")[0]);
  } catch {
    return [];
  }
}

/** The IPv4 addresses (with prefix) on a link. */
async function addressesOf(name: string): Promise<string[]> {
  const r = await run("ip", ["-j", "-4", "addr", "show", "dev", name], { allowFail: true });
  if (r.code !== 0) return [];
  try {
    return (JSON.parse(r.stdout || "[]") as { addr_info?: { local: string; prefixlen: number }[] }[]).flatMap((l) => (l.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`));
  } catch {
    return [];
  }
}

/** Bridges on this host that carry a kubelab owner alias. */
export function kubelabBridges(): Promise<{ name: string; owner: Owner & { dataDir: string } }[]> {
  return kubelabLinks("bridge");
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

async function removeAllSandboxes(cri: CriRuntime, log: Logger): Promise<{ id: string; name: string; uid: string }[]> {
  const sandboxes = await cri.listPodSandbox();
  const removed: { id: string; name: string; uid: string }[] = [];
  await Promise.all(
    sandboxes.map(async (s) => {
      try {
        await cri.stopPodSandbox(s.id);
        await cri.removePodSandbox(s.id);
        removed.push({ id: s.id, name: `${s.metadata.namespace}/${s.metadata.name}`, uid: s.metadata.uid });
      } catch (e) {
        log.warn({ err: e, sandbox: s.id }, "removing sandbox failed");
      }
    }),
  );
  if (sandboxes.length > 0) log.info({ count: sandboxes.length }, "removed sandboxes");
  return removed;
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
interface JoinOptions {
  bridge: string;
  allowed: string[];
  serviceCIDR: string;
  log: Logger;
  /** Called (to journal it) before the blackhole route is added. */
  beforeRoute: (cidr: string) => void;
}

async function joinNetwork(o: JoinOptions): Promise<void> {
  await withNetLock(() => joinNetworkLocked(o));
}

async function joinNetworkLocked(o: JoinOptions): Promise<void> {
  const file = sharedNetFile();
  const first = (await run("iptables", ["-w", "-N", FORWARD_CHAIN], { allowFail: true })).code === 0;
  if (first || !existsSync(file)) {
    const shared: SharedNetState = { ipForwardBefore: (await readFile("/proc/sys/net/ipv4/ip_forward", "utf8")).trim() };
    const existing = (await run("ip", ["route", "show", "exact", o.serviceCIDR])).stdout.trim();
    if (existing === "") shared.routeAdded = o.serviceCIDR;
    else o.log.info({ serviceCIDR: o.serviceCIDR, route: existing }, "service range already routed, not blackholing it");
    await mkdir("/run/kubelab", { recursive: true });
    await writeFile(file, JSON.stringify(shared) + "\n");
    if (shared.routeAdded) {
      o.beforeRoute(shared.routeAdded);
      await run("ip", ["route", "add", "unreachable", shared.routeAdded]);
    }
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
async function leaveNetwork(bridge: string, log: Logger): Promise<string[]> {
  return withNetLock(() => leaveNetworkLocked(bridge, log));
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

async function leaveNetworkLocked(bridge: string, log: Logger): Promise<string[]> {
  const removed: string[] = [];
  const listed = await run("iptables", ["-w", "-S", FORWARD_CHAIN], { allowFail: true });
  const rules = listed.code === 0 ? listed.stdout.split("\n").filter((l) => l.startsWith("-A ")) : [];
  let ours = 0;
  for (let i = rules.length - 1; i >= 0; i--) {
    if (rules[i].includes(` -i ${bridge} `)) {
      await run("iptables", ["-w", "-D", FORWARD_CHAIN, String(i + 1)], { allowFail: true });
      ours++;
    }
  }
  if (ours > 0) removed.push(`removed ${ours} iptables rules for ${bridge} from ${FORWARD_CHAIN}`);
  const others = rules.filter((r) => !r.includes(` -i ${bridge} `));
  if (others.length > 0) {
    log.info({ rules: others.length }, "other kubelab hosts share this network namespace; leaving shared iptables, route and ip_forward to the last one");
    return removed;
  }
  let jumps = 0;
  while ((await run("iptables", ["-w", "-D", "FORWARD", "-j", FORWARD_CHAIN], { allowFail: true })).code === 0) jumps++; // a crashed run may have left more than one
  await run("iptables", ["-w", "-F", FORWARD_CHAIN], { allowFail: true });
  if ((await run("iptables", ["-w", "-X", FORWARD_CHAIN], { allowFail: true })).code === 0) {
    removed.push(`removed iptables chain ${FORWARD_CHAIN}${jumps > 0 ? " and its jump from FORWARD" : ""}`);
  }
  removed.push(...(await removeCniChains(log)));
  const file = sharedNetFile();
  let shared: SharedNetState | undefined;
  try {
    shared = JSON.parse(await readFile(file, "utf8")) as SharedNetState;
  } catch {
    shared = undefined;
  }
  if (shared?.routeAdded && (await run("ip", ["route", "del", "unreachable", shared.routeAdded], { allowFail: true })).code === 0) {
    removed.push(`removed route unreachable ${shared.routeAdded}`);
  }
  if (shared?.ipForwardBefore === "0" || shared?.ipForwardBefore === "1") {
    const now = (await readFile("/proc/sys/net/ipv4/ip_forward", "utf8").catch(() => "")).trim();
    if (now !== shared.ipForwardBefore) {
      await writeFile("/proc/sys/net/ipv4/ip_forward", shared.ipForwardBefore).then(
        () => removed.push(`restored net.ipv4.ip_forward=${shared.ipForwardBefore}`),
        (e: unknown) => log.warn({ err: e }, "restoring ip_forward"),
      );
    }
  }
  await rm(file, { force: true });
  return removed;
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

/**
 * Undoes everything startContainerd under `dataDir` did, from its journal, whether its owner is
 * stopping it or died long ago: no live process is needed. In order: a containerd still running
 * removes its sandboxes through CRI (CNI DEL releases addresses, veths, hostport rules) and is
 * stopped; shims left behind are killed with their containers (found by the socket on their command
 * line and in the pods' cgroups); everything mounted under the data dir (rootfs, shm, the sandboxes'
 * network namespaces) is unmounted; the pods' cgroups are removed; then the network: the bridge (only
 * while its alias names this data dir), this bridge's KUBELAB-FORWARD rules and, for the last host of
 * the network namespace, the chain, the CNI chains, the blackhole route and ip_forward. Each step is
 * bounded. Returns one line per thing removed (empty: there was nothing to clean). Idempotent.
 * Throws if the journal's owner is another process that is still running.
 */
export async function cleanupContainerdHost(dataDir: string, log: Logger): Promise<string[]> {
  dataDir = resolve(dataDir);
  const p = paths(dataDir);
  const entries = readJournal(dataDir);
  const owner = journalOwner(entries);
  if (owner && owner.pid !== process.pid && ownerAlive(owner)) {
    throw new Error(`the containerd host in ${dataDir} belongs to running pid ${owner.pid}; stop that process first`);
  }
  const legacy = await readLegacyState(p.legacyStateFile);
  const removed: string[] = [];
  // What to look for, from the journal (the paths startContainerd derives, for an older or lost one).
  const pick = <K extends JournalEntry["kind"]>(kind: K): Extract<JournalEntry, { kind: K }>[] => entries.filter((e): e is Extract<JournalEntry, { kind: K }> => e.kind === kind);
  const configs = new Set([p.config, ...pick("containerd").map((e) => e.config)]);
  const sockets = new Set([p.socket, ...pick("shims").map((e) => e.socket)]);
  const runcRoots = new Set([p.runcRoot, ...pick("cgroups").map((e) => e.runcRoot)]);
  const real = await realpath(dataDir).catch(() => dataDir);
  const mountRoots = new Set([real, ...pick("mounts").map((e) => e.under), ...pick("netns").map((e) => e.dir)]);
  const uids = new Set<string>([...runcRoots].flatMap(podUIDsFromRuncState)); // read before anything deletes runc's state

  // 1. A containerd still running: its sandboxes through CRI, then containerd itself.
  const containerds = findProcesses((cmd) => cmd.some((a) => a.endsWith("containerd")) && cmd.some((a) => configs.has(a)));
  if (containerds.length > 0) {
    try {
      const gone = await withTimeout(removeSandboxesThroughCri(p.socket, log), 8_000, "removing sandboxes through CRI");
      for (const s of gone) {
        removed.push(`removed sandbox ${s.name} (${s.id.slice(0, 12)}) through containerd's CRI`);
        if (s.uid) uids.add(s.uid);
      }
    } catch (e) {
      log.warn({ err: e }, "could not remove sandboxes through CRI; killing their processes instead");
    }
    for (const pid of containerds) {
      await killAndWait(pid, 3_000, log);
      removed.push(`stopped containerd (pid ${pid})`);
    }
  }

  // 2. Shims outlive containerd and keep the containers running: kill the containers, then them.
  const shims = findProcesses((cmd) => cmd.some((a) => a.includes("containerd-shim")) && cmd.some((a) => sockets.has(a)));
  const inPodCgroups = [...uids].flatMap((uid) => podCgroupDirs(uid).flatMap((d) => pidsInCgroupTree(d)));
  const containers = [...new Set([...childrenOf(new Set(shims)), ...inPodCgroups])].filter((pid) => pid !== process.pid && !shims.includes(pid));
  if (shims.length > 0 || containers.length > 0) {
    for (const pid of containers) signal(pid, "SIGKILL");
    for (const pid of shims) signal(pid, "SIGKILL");
    await Promise.all([...containers, ...shims].map((pid) => waitGone(pid, 5_000)));
    if (shims.length > 0) removed.push(`killed ${shims.length} containerd shims (pids ${shims.join(", ")})`);
    if (containers.length > 0) removed.push(`killed ${containers.length} container processes (pids ${containers.join(", ")})`);
  }

  // 2b. CNI plugins containerd started (an ADD or DEL in flight when it stopped) outlive it: a late
  // bridge ADD recreates the bridge (without our alias), its address, a veth and ip_forward=1 after
  // step 5 removed them. No new one can start now that containerd is gone; kill those still running.
  const cniRoots = new Set([dataDir, ...mountRoots]);
  for (let round = 0; round < 5; round++) {
    const plugins = findCniPlugins(cniRoots);
    if (plugins.length === 0) break;
    for (const pid of plugins) signal(pid, "SIGKILL");
    await Promise.all(plugins.map((pid) => waitGone(pid, 5_000)));
    if (round === 0) removed.push(`killed ${plugins.length} CNI plugin processes still running (pids ${plugins.join(", ")})`);
  }

  // 3. Mounts: rootfs overlays, shm, and the sandboxes' network namespaces (nsfs bind mounts).
  // /proc/self/mountinfo shows resolved paths (e.g. when TMPDIR is a symlink).
  const under = (): string[] => [...new Set([...mountRoots].flatMap((d) => mountsUnder(d)))];
  const before = under();
  for (const d of mountRoots) await unmountUnder(d, log);
  const left = under();
  for (const m of before.filter((x) => !left.includes(x)).reverse()) {
    removed.push(m.includes("/netns/") ? `removed network namespace ${basename(m)} (unmounted ${m})` : `unmounted ${m}`);
  }
  // State (shim sockets, netns files, rootfs mount points) is per boot: start from empty, but only
  // when nothing is mounted below it any more (never recurse into a mount).
  if (left.length === 0) {
    await rm(p.state, { recursive: true, force: true });
    await rm(p.runcRoot, { recursive: true, force: true });
    await rm(p.cniIpam, { recursive: true, force: true });
    await rm(p.socket, { force: true });
    await rm(p.socket + ".ttrpc", { force: true });
  } else {
    log.error({ mounts: left }, "mounts remain under the data directory");
  }

  // 4. The pods' cgroups (runc removes the containers' but leaves the pod's; a killed runtime leaves both).
  for (const uid of uids) {
    const dirs = podCgroupDirs(uid);
    if (dirs.length === 0) continue;
    let busy = await removePodCgroups(uid);
    for (let i = 0; busy.length > 0 && i < 20; i++) {
      await sleep(100); // the kernel frees a cgroup a moment after its last process is reaped
      busy = await removePodCgroups(uid);
    }
    if (busy.length > 0) log.warn({ busy }, "pod cgroups still in use");
    else removed.push(`removed cgroup ${cgroupParentOf(dirs[0])} (${dirs.length} hierarchies)`);
  }
  if (entries.some((e) => e.kind === "cgroups") || legacy) await removeEmptyKubepodsCgroups();

  // 5. The network: our bridge, then our forward guard (and the shared pieces if we are the last).
  // Journalled and not marked held by someone else; an alias-less one is ours if we died between
  // creating it and naming it.
  const bridges = new Map<string, boolean>();
  for (const e of entries) {
    if (e.kind === "bridge") bridges.set(e.name, true);
    if (e.kind === "bridge-held") bridges.set(e.name, false);
  }
  // The Service interface (a dummy, or a port-less bridge on kernels without dummies) is not a pod bridge.
  const dummies = new Map<string, boolean>();
  for (const e of entries) if (e.kind === "service-interface") dummies.set(e.name, true);
  const isServiceInterface = (name: string) => dummies.has(name) || /^kubelab-svc\d+$/.test(name);
  for (const d of [...(await kubelabLinks("dummy")), ...(await kubelabLinks("bridge")).filter((l) => isServiceInterface(l.name))]) {
    if (d.owner.dataDir === dataDir && !dummies.has(d.name)) dummies.set(d.name, false);
  }
  // A bridge naming this data dir is ours even when the journal is gone (data dir deleted, say).
  for (const b of await kubelabBridges()) if (b.owner.dataDir === dataDir && !bridges.has(b.name) && !isServiceInterface(b.name)) bridges.set(b.name, false);
  const deleted: string[] = [];
  const deleteBridges = async (again: boolean): Promise<void> => {
    for (const [b, created] of bridges) {
      const link = await linkInfo(b);
      const ours = link && (parseBridgeAlias(link.alias)?.dataDir === dataDir || (created && !link.alias));
      if (!ours) continue;
      // Host ends of pod veths still attached (their namespaces are gone, so normally none).
      const veths = await linksWithMaster(b);
      for (const v of veths) await run("ip", ["link", "del", "dev", v], { allowFail: true });
      if (veths.length > 0) removed.push(`deleted ${veths.length} veths on ${b} (${veths.join(", ")})`);
      if ((await run("ip", ["link", "del", "dev", b], { allowFail: true })).code === 0) {
        removed.push(again ? `deleted bridge ${b} (recreated during cleanup)` : `deleted bridge ${b}`);
        if (!deleted.includes(b)) deleted.push(b);
      }
    }
  };
  await deleteBridges(false);
  // The Service interface, with every ClusterIP the proxy put on it.
  for (const [d, created] of dummies) {
    const link = await linkInfo(d);
    const ours = link && (parseBridgeAlias(link.alias)?.dataDir === dataDir || (created && !link.alias));
    if (!ours) continue;
    const addrs = await addressesOf(d);
    if ((await run("ip", ["link", "del", "dev", d], { allowFail: true })).code === 0) {
      removed.push(`deleted service interface ${d}${addrs.length > 0 ? ` and its ${addrs.length} addresses (${addrs.join(", ")})` : ""}`);
    }
  }
  if (legacy?.bridgeCreated && !bridges.has(legacy.bridge) && (await linkInfo(legacy.bridge))) {
    if ((await run("ip", ["link", "del", "dev", legacy.bridge], { allowFail: true })).code === 0) removed.push(`deleted bridge ${legacy.bridge}`);
  }
  // Only bridges that were ours: a journalled bridge we failed to create belongs to someone else.
  const guards = new Set<string>(deleted);
  for (const e of entries) if (e.kind === "forward-guard") guards.add(e.bridge);
  if (legacy?.forwardChain) guards.add(legacy.bridge);
  for (const b of guards) removed.push(...(await leaveNetwork(b, log)));
  // Re-check: nothing may have brought a bridge back meanwhile (a CNI call we could not see).
  await deleteBridges(true);
  await rm(p.cniIpam, { recursive: true, force: true }).catch(() => undefined);

  // 6. The record itself, last: until here a crash leaves it for the next cleanup.
  await rm(p.legacyStateFile, { force: true });
  clearJournal(dataDir);
  unregister(dataDir);
  return removed;
}

/** Stops and removes every sandbox of a running containerd (bounded by the CRI deadlines). */
async function removeSandboxesThroughCri(socket: string, log: Logger): Promise<{ id: string; name: string; uid: string }[]> {
  const cri = await CriRuntime.connect(socket, { timeoutMs: 5_000 });
  try {
    return await removeAllSandboxes(cri, log);
  } finally {
    await cri.close();
  }
}

/** The pod UIDs named in runc's state of every container (`<runcRoot>/<namespace>/<id>/state.json`). */
function podUIDsFromRuncState(runcRoot: string): string[] {
  const uids = new Set<string>();
  let namespaces: string[];
  try {
    namespaces = readdirSync(runcRoot);
  } catch {
    return [];
  }
  for (const ns of namespaces) {
    let ids: string[];
    try {
      ids = readdirSync(join(runcRoot, ns));
    } catch {
      continue;
    }
    for (const id of ids) {
      try {
        const st = JSON.parse(readFileSync(join(runcRoot, ns, id, "state.json"), "utf8")) as { cgroup_paths?: Record<string, string>; config?: { cgroups?: { path?: string } } };
        for (const path of [st.config?.cgroups?.path, ...Object.values(st.cgroup_paths ?? {})]) {
          const m = path ? /\/kubepods\/(?:[a-z]+\/)?pod([0-9a-fA-F-]+)(?:\/|$)/.exec(path) : null;
          if (m) uids.add(m[1]);
        }
      } catch {
        // not a container directory
      }
    }
  }
  return [...uids];
}

/** /sys/fs/cgroup/cpu/kubepods/besteffort/pod<uid> → kubepods/besteffort/pod<uid>. */
function cgroupParentOf(dir: string): string {
  const i = dir.indexOf("/kubepods/");
  return i >= 0 ? dir.slice(i + 1) : dir;
}

async function readLegacyState(file: string): Promise<LegacyHostState | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as LegacyHostState;
  } catch {
    return undefined;
  }
}

async function killAndWait(pid: number, graceMs: number, log: Logger): Promise<void> {
  signal(pid, "SIGTERM");
  if (await waitGone(pid, graceMs)) return;
  log.warn({ pid }, "containerd did not exit after SIGTERM; sending SIGKILL");
  signal(pid, "SIGKILL");
  await waitGone(pid, 5_000);
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms))),
  ]);
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
async function removeCniChains(log: Logger): Promise<string[]> {
  const removed: string[] = [];
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
    removed.push(`removed ${chains.length} CNI iptables chains from the ${table} table (${chains.join(", ")})`);
  }
  return removed;
}


// ---------------------------------------------------------------------------------------------------
// helpers

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a host tool; rejects on a non-zero exit unless allowFail. */
function run(cmd: string, args: string[], opts: { allowFail?: boolean; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile(
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
    child.stdin?.on("error", () => {}); // a tool that exits without reading its stdin
    child.stdin?.end(opts.input);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
