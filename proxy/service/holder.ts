// Who holds a listening address on this host: another kubelab proxy (zone proxies share one host in
// simulated mode and take turns on ClusterIPs and 127.0.0.1 NodePorts — expected, no Event) or
// something else (a real conflict the Service's owner should hear about). Read from /proc as `ss -p`
// does; "unknown" where /proc cannot tell (not Linux, a process gone meanwhile).

import { readFile, readdir, readlink } from "node:fs/promises";
import type { Protocol } from "./rules.ts";

export type Holder = "peer" | "other" | "unknown";

function hexIPv4(hex: string): string {
  // /proc/net/{tcp,udp}: the address in host (little-endian) byte order.
  const n = parseInt(hex, 16);
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255].join(".");
}

function hexIPv6(hex: string): { any: boolean; v4?: string } {
  if (/^0+$/.test(hex)) return { any: true };
  // ::ffff:a.b.c.d is the words 0, 0, 0000FFFF (little-endian FFFF0000), then the IPv4 word.
  if (hex.slice(0, 16) === "0000000000000000" && hex.slice(16, 24).toUpperCase() === "FFFF0000") return { any: false, v4: hexIPv4(hex.slice(24)) };
  return { any: false };
}

/** Socket inodes listening on ip:port (or the wildcard) for the protocol. */
async function listeningInodes(ip: string, port: number, protocol: Protocol): Promise<Set<string>> {
  const base = protocol === "TCP" ? "tcp" : "udp";
  const out = new Set<string>();
  for (const file of [base, `${base}6`]) {
    let text: string;
    try {
      text = await readFile(`/proc/net/${file}`, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const [addr, portHex] = f[1].split(":");
      if (parseInt(portHex, 16) !== port) continue;
      if (protocol === "TCP" && f[3] !== "0A") continue; // LISTEN
      const v6 = file.endsWith("6");
      const match = v6 ? ((a) => a.any || a.v4 === ip)(hexIPv6(addr)) : ((a) => a === ip || a === "0.0.0.0")(hexIPv4(addr));
      if (match) out.add(f[9]);
    }
  }
  return out;
}

/** Whether a command line is `kubelab proxy ...` (the built CLI or `--import tsx cli/main.ts`). */
export function isProxyCommandLine(args: readonly string[]): boolean {
  const i = args.findIndex((a) => /(^|\/)(main\.[jt]s|kubelab)$/.test(a));
  return i >= 0 && args[i + 1] === "proxy";
}

/** socket inode → pid of every process, read at most once a second (standby listeners ask together). */
let owners: { at: number; map: Promise<Map<string, number>> } | undefined;

async function scanSocketOwners(): Promise<Map<string, number>> {
  const map = new Map<string, number>();
  let pids: string[];
  try {
    pids = (await readdir("/proc")).filter((p) => /^\d+$/.test(p));
  } catch {
    return map;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = await readdir(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const target = await readlink(`/proc/${pid}/fd/${fd}`);
        const m = /^socket:\[(\d+)\]$/.exec(target);
        if (m) map.set(m[1], Number(pid));
      } catch {
        // closed meanwhile
      }
    }
  }
  return map;
}

function socketOwners(fresh = false): Promise<Map<string, number>> {
  if (fresh || !owners || Date.now() - owners.at > 1000) owners = { at: Date.now(), map: scanSocketOwners() };
  return owners.map;
}

export async function holderOf(ip: string, port: number, protocol: Protocol): Promise<Holder> {
  const inodes = await listeningInodes(ip, port, protocol);
  if (inodes.size === 0) return "unknown";
  let map = await socketOwners();
  // A socket newer than the cached scan: look again.
  if (![...inodes].some((i) => map.has(i))) map = await socketOwners(true);
  for (const inode of inodes) {
    const pid = map.get(inode);
    if (pid === undefined) continue;
    if (pid === process.pid) return "other";
    try {
      const args = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0");
      return isProxyCommandLine(args) ? "peer" : "other";
    } catch {
      return "unknown";
    }
  }
  return "unknown";
}
