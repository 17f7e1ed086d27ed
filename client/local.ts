// The project's safety rule in code: components connect only to addresses of this machine —
// loopback, the machine's own addresses, and (for pods) the subnets of local bridges.

import { existsSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { cidrContains, parseCIDR, parseIPv4 } from "../api/index.ts";

/** Loopback (127.0.0.0/8, ::1) or an address of one of this machine's interfaces. */
export function isLocalAddress(ip: string): boolean {
  if (/^127\./.test(ip) || ip === "::1" || ip === "localhost") return true;
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.address === ip) return true;
  return false;
}

/** A local address, or one inside the IPv4 subnet of a local bridge (a containerd pod on the CNI bridge). */
export function isLocallyReachable(ip: string): boolean {
  if (isLocalAddress(ip)) return true;
  const n = parseIPv4(ip);
  if (n === undefined) return false;
  for (const [name, list] of Object.entries(networkInterfaces())) {
    if (!existsSync(`/sys/class/net/${name}/bridge`)) continue;
    for (const a of list ?? []) {
      const subnet = a.family === "IPv4" && a.cidr ? parseCIDR(a.cidr) : undefined;
      if (subnet && cidrContains(subnet, n)) return true;
    }
  }
  return false;
}
