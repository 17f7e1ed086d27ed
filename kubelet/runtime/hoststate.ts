// The record of what a containerd host changed on this machine, kept so that cleanup needs no live
// process: a journal in the data directory (each piece of host state is appended BEFORE it is
// created), a host-wide registry of data directories under /run/kubelab/hosts (so `kubelab down
// --all-stale` can find clusters whose owner died), and the owner written on the bridge itself (its
// link alias), so whoever finds the bridge in its way learns whose it is without any other file.
// /run is a tmpfs: the registry lives exactly as long as the host state it points to (a reboot
// clears both). Also the /proc helpers the cleanup uses to find and kill processes.

import { appendFileSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, renameSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";

/**
 * The dummy interface `kubelab up --runtime containerd` creates next to the kubelab0 bridge: the
 * proxy (`--service-interface`) adds each ClusterIP to it as a /32, as kube-proxy's IPVS mode does on
 * kube-ipvs0. Those local-table routes win over the service range's unreachable route, so a pod
 * reaches a ClusterIP through its gateway and every other address of the range stays unreachable.
 */
export const SERVICE_INTERFACE = "kubelab-svc0";

/** A process that owns host state: its PID and start time (so a recycled PID is not mistaken for it). */
export interface Owner {
  pid: number;
  /** Field 22 of /proc/<pid>/stat (clock ticks since boot). */
  start: string;
}

/**
 * One journal line. Entries are intents: each is appended (and fsynced) before the change it names is
 * made, and cleanup undoes each one idempotently ("remove if present and ours"), so a process killed
 * between the two leaves nothing the cleanup cannot find.
 */
export type JournalEntry =
  | { kind: "owner"; pid: number; start: string; dataDir: string; netns: string; at: string }
  /** A Linux bridge; ours while its alias names this data dir (see bridgeAlias), or has none yet. */
  | { kind: "bridge"; name: string; subnet: string; gateway: string }
  /** The bridge already existed (another owner's): never ours to delete. */
  | { kind: "bridge-held"; name: string }
  /** This bridge's rules in the shared KUBELAB-FORWARD chain (and the chain, if last to leave). */
  | { kind: "forward-guard"; bridge: string }
  /** The unreachable route for the service range (added by the first host of the network namespace). */
  | { kind: "route"; cidr: string }
  /** containerd, found by its config path on the command line; pid once known. */
  | { kind: "containerd"; config: string; socket: string; pid?: number }
  /** containerd's shims: processes whose command line names the socket; their children are the containers. */
  | { kind: "shims"; socket: string }
  /** Sandboxes' network namespaces (bind mounts of nsfs) that containerd creates in this directory. */
  | { kind: "netns"; dir: string }
  /** Everything mounted below this directory (rootfs overlays, shm, netns). */
  | { kind: "mounts"; under: string }
  /** The pods' cgroups, below `parent` in every hierarchy; runc's state under runcRoot names each one. */
  | { kind: "cgroups"; parent: string; runcRoot: string }
  /**
   * The dummy interface that holds the Service ClusterIPs as /32s (the proxy adds them, as kube-proxy's
   * IPVS mode does on kube-ipvs0); ours while its alias names this data dir, or has none yet.
   */
  | { kind: "service-interface"; name: string };

export function journalPath(dataDir: string): string {
  return join(dataDir, "host-journal.jsonl");
}

/** Appends one entry and fsyncs it, before the caller makes the change. */
export function record(dataDir: string, entry: JournalEntry): void {
  const file = journalPath(dataDir);
  appendFileSync(file, JSON.stringify(entry) + "\n");
  const fd = openSync(file, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The journal's entries (a torn last line from a crash mid-write is skipped). */
export function readJournal(dataDir: string): JournalEntry[] {
  let text: string;
  try {
    text = readFileSync(journalPath(dataDir), "utf8");
  } catch {
    return [];
  }
  const out: JournalEntry[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      out.push(JSON.parse(line) as JournalEntry);
    } catch {
      // torn write
    }
  }
  return out;
}

export function clearJournal(dataDir: string): void {
  rmSync(journalPath(dataDir), { force: true });
}

/** The journal's owner entry, if any. */
export function journalOwner(entries: JournalEntry[]): (Owner & { dataDir: string }) | undefined {
  const o = entries.find((e): e is Extract<JournalEntry, { kind: "owner" }> => e.kind === "owner");
  return o ? { pid: o.pid, start: o.start, dataDir: o.dataDir } : undefined;
}

// ---------------------------------------------------------------------------------------------------
// the host-wide registry

const REGISTRY_DIR = "/run/kubelab/hosts";

export interface Registration extends Owner {
  dataDir: string;
  /** Inode of the owner's network namespace: its bridge and iptables live there. */
  netns: string;
  bridge: string;
}

function registrationFile(dataDir: string): string {
  return join(REGISTRY_DIR, createHash("sha256").update(dataDir).digest("hex").slice(0, 16) + ".json");
}

export function register(r: Registration): void {
  mkdirSync(REGISTRY_DIR, { recursive: true });
  const file = registrationFile(r.dataDir);
  writeFileSync(file + ".tmp", JSON.stringify(r) + "\n");
  renameSync(file + ".tmp", file);
}

export function unregister(dataDir: string): void {
  rmSync(registrationFile(dataDir), { force: true });
}

export function registrations(): Registration[] {
  let names: string[];
  try {
    names = readdirSync(REGISTRY_DIR).filter((n) => n.endsWith(".json"));
  } catch {
    return [];
  }
  const out: Registration[] = [];
  for (const n of names) {
    try {
      out.push(JSON.parse(readFileSync(join(REGISTRY_DIR, n), "utf8")) as Registration);
    } catch {
      // being written
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// the bridge's owner, in its link alias

const ALIAS_PREFIX = "kubelab ";

/** `kubelab pid=123 start=456 dir=/abs/data/dir` (an alias holds up to 255 bytes). */
export function bridgeAlias(owner: Owner, dataDir: string): string {
  if (/["\n\\]/.test(dataDir)) throw new Error(`data directory path ${JSON.stringify(dataDir)} cannot be recorded on the bridge (quotes, backslashes or newlines)`);
  const alias = `${ALIAS_PREFIX}pid=${owner.pid} start=${owner.start} dir=${dataDir}`;
  if (Buffer.byteLength(alias) > 255) throw new Error(`data directory path ${dataDir} is too long to record on the bridge (at most ~200 bytes)`);
  return alias;
}

export function parseBridgeAlias(alias: string | undefined): (Owner & { dataDir: string }) | undefined {
  const m = alias ? /^kubelab pid=(\d+) start=(\d+) dir=(\/.*)$/.exec(alias) : null;
  return m ? { pid: Number(m[1]), start: m[2], dataDir: m[3] } : undefined;
}

// ---------------------------------------------------------------------------------------------------
// processes

export function netnsId(): string {
  try {
    return statSync("/proc/self/ns/net").ino.toString();
  } catch {
    return "default";
  }
}

function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // fields after "pid (comm) ": [0] = state (field 3), [1] = ppid, ..., [19] = starttime (field 22)
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

export function processStart(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

export function currentOwner(): Owner {
  return { pid: process.pid, start: processStart(process.pid) ?? "0" };
}

const HAS_PROC = existsSync("/proc/self/stat");

/** Alive and not a zombie (a killed process whose parent has not reaped it yet is dead to us). */
export function isAlive(pid: number): boolean {
  if (!HAS_PROC) {
    try {
      process.kill(pid, 0);
      return true;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === "EPERM";
    }
  }
  const f = statFields(pid);
  return !!f && f[0] !== "Z" && f[0] !== "X";
}

/** The owner still runs: same PID, same start time. */
export function ownerAlive(o: Owner): boolean {
  return o.pid > 0 && isAlive(o.pid) && processStart(o.pid) === o.start;
}

export function cmdlineOf(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((s) => s !== "");
  } catch {
    return undefined;
  }
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

export async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(50);
  }
  return !isAlive(pid);
}

/** PIDs (not this process) whose command line satisfies `match`. */
export function findProcesses(match: (cmdline: string[]) => boolean): number[] {
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

/** A process's environment (`/proc/<pid>/environ`; readable by root), or undefined when it is gone. */
export function environOf(pid: number): Map<string, string> | undefined {
  let raw: string;
  try {
    raw = readFileSync(`/proc/${pid}/environ`, "utf8");
  } catch {
    return undefined;
  }
  const env = new Map<string, string>();
  for (const kv of raw.split("\0")) {
    const eq = kv.indexOf("=");
    if (eq > 0) env.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  return env;
}

/**
 * CNI plugin processes (bridge, host-local, portmap, loopback; a plugin's delegate inherits its
 * environment) working on a network namespace below one of `netnsDirs`: containerd runs them as its
 * children, and they outlive a killed containerd. A late ADD recreates the bridge (without our alias),
 * its address, veths and ip_forward=1 after cleanup removed them, so cleanup kills these first.
 */
export function findCniPlugins(netnsDirs: Iterable<string>): number[] {
  const dirs = [...netnsDirs].map((d) => (d.endsWith("/") ? d : d + "/"));
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    const env = environOf(Number(d));
    const netns = env?.get("CNI_NETNS");
    if (env?.has("CNI_COMMAND") && netns && dirs.some((dir) => netns.startsWith(dir))) out.push(Number(d));
  }
  return out;
}

export function childrenOf(parents: Set<number>): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const f = statFields(Number(d));
    if (f && parents.has(Number(f[1]))) out.push(Number(d));
  }
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
