// The pods' cgroups on this host (cgroupfs driver, as upstream's kubelet container manager): the
// parent a pod's sandbox gets, and their removal once the pod is gone (runc leaves the parent).
// Kept apart from runtime/containerd.ts so a simulated kubelet never loads grpc-js through it.

import { existsSync, readFileSync, readdirSync } from "node:fs";
import { readdir, rmdir, stat } from "node:fs/promises";
import { join } from "node:path";


/**
 * The cgroup parent the kubelet gives a pod's sandbox (cgroupfs driver, as upstream's kubelet):
 * Guaranteed → /kubepods/pod<uid>, Burstable → /kubepods/burstable/pod<uid>,
 * BestEffort → /kubepods/besteffort/pod<uid>.
 */
export function cgroupParentFor(qosClass: string, podUID: string): string {
  switch (qosClass.toLowerCase()) {
    case "guaranteed":
      return `/kubepods/pod${podUID}`;
    case "burstable":
      return `/kubepods/burstable/pod${podUID}`;
    default:
      return `/kubepods/besteffort/pod${podUID}`;
  }
}

/** Every mounted cgroup hierarchy (v1 controllers, named v1 hierarchies, and cgroup2, unified or hybrid). */
export function cgroupRoots(): string[] {
  const roots: string[] = [];
  for (const l of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const sep = l.indexOf(" - ");
    if (sep < 0) continue;
    const fstype = l.slice(sep + 3).split(" ")[0];
    if (fstype === "cgroup" || fstype === "cgroup2") roots.push(l.split(" ")[4]);
  }
  return [...new Set(roots)];
}

/**
 * Removes a pod's cgroup directories (runc removes the containers' but leaves the pod parent) in
 * every hierarchy, deepest first. A cgroup that still has processes cannot be removed: those are
 * returned (empty list = all gone).
 */
export async function removePodCgroups(podUID: string): Promise<string[]> {
  const busy: string[] = [];
  for (const root of cgroupRoots()) {
    for (const qos of ["", "burstable/", "besteffort/"]) {
      const dir = join(root, "kubepods", `${qos}pod${podUID}`);
      busy.push(...(await rmdirTree(dir)));
    }
  }
  return busy;
}

/** rmdir a cgroup directory and its sub-cgroups bottom-up; returns the ones still in use. */
async function rmdirTree(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const busy: string[] = [];
  for (const e of entries) if (e.isDirectory()) busy.push(...(await rmdirTree(join(dir, e.name))));
  try {
    await rmdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") busy.push(dir);
  }
  return busy;
}

/**
 * Removes empty cgroups below /kubepods in every hierarchy (bottom-up). Only empty ones can go: a
 * cgroup with processes (another node's pods) refuses rmdir, and runc recreates parents on demand.
 */
export async function removeEmptyKubepodsCgroups(): Promise<void> {
  for (const root of cgroupRoots()) {
    const dir = join(root, "kubepods");
    try {
      if (!(await stat(dir)).isDirectory()) continue;
    } catch {
      continue;
    }
    await rmdirTree(dir);
  }
}

/** A pod's cgroup directories that exist now, in every hierarchy (any QoS class). */
export function podCgroupDirs(podUID: string): string[] {
  const out: string[] = [];
  for (const root of cgroupRoots()) {
    for (const qos of ["", "burstable/", "besteffort/"]) {
      const dir = join(root, "kubepods", `${qos}pod${podUID}`);
      if (existsSync(dir)) out.push(dir);
    }
  }
  return out;
}

/** Every PID in a cgroup directory and its sub-cgroups (cgroup.procs), for killing what a dead runtime left. */
export function pidsInCgroupTree(dir: string): number[] {
  const out: number[] = [];
  const walk = (d: string): void => {
    try {
      for (const l of readFileSync(join(d, "cgroup.procs"), "utf8").split("\n")) if (/^\d+$/.test(l)) out.push(Number(l));
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
    } catch {
      // gone meanwhile
    }
  };
  walk(dir);
  return [...new Set(out)];
}
