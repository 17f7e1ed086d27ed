// Cleaning up after a `kubelab up` that died without its own cleanup (SIGKILL, a crash): its
// components still running, and the host state its containerd host journalled in the data dir
// (kubelet/runtime/hoststate.ts). Used by `down` (one data dir, or every stale one on this host) and
// by `up` when it finds a dead predecessor in its data dir.

import { existsSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Logger } from "../client/index.ts";
import { cmdlineOf, isAlive, journalOwner, netnsId, ownerAlive, readJournal, registrations, signal, waitGone } from "../kubelet/runtime/hoststate.ts";
import type { UpState } from "./up.ts";

/** Whether `pid` is a kubelab process of this data dir (its arguments name files under it), not a recycled PID. */
export function isComponentOf(pid: number, dataDir: string): boolean {
  const cmd = cmdlineOf(pid);
  return !!cmd && isAlive(pid) && cmd.some((a) => a.startsWith(dataDir + "/"));
}

/**
 * Stops the components a dead `up` left running (it was killed alone, not its process group): SIGTERM
 * to all, SIGKILL to those still there after 5 s.
 */
export async function killLeftoverComponents(state: UpState | undefined, dataDir: string): Promise<string[]> {
  const left = (state?.components ?? []).filter((c): c is typeof c & { pid: number } => !!c.pid && c.pid !== process.pid && isComponentOf(c.pid, dataDir));
  for (const c of left) signal(c.pid, "SIGTERM");
  return Promise.all(
    left.map(async (c) => {
      if (await waitGone(c.pid, 5_000)) return `stopped ${c.name} (pid ${c.pid})`;
      signal(c.pid, "SIGKILL");
      await waitGone(c.pid, 5_000);
      return `killed ${c.name} (pid ${c.pid})`;
    }),
  );
}

/** Whether the data dir's journal records host state (a containerd host that was not cleaned up). */
export function hasHostState(dataDir: string): boolean {
  return readJournal(dataDir).length > 0;
}

/**
 * Cleans up a dead cluster from its data dir: leftover components, then the containerd host's state
 * from its journal (containerd, sandboxes, shims, mounts, cgroups, bridge, chains, route), then
 * DIR/up.json. Returns one line per thing removed. Throws if the host state belongs to a live process.
 */
export async function cleanDeadCluster(dataDir: string, state: UpState | undefined, log: Logger, opts: { knownStale?: boolean } = {}): Promise<string[]> {
  dataDir = resolve(dataDir);
  const removed = await killLeftoverComponents(state, dataDir);
  // Only for a cluster that ran containerd here (a simulated one changes nothing on the host), or
  // one found stale by its registration or bridge (its data dir, journal and all, may be gone).
  const ranContainerd = hasHostState(dataDir) || existsSync(join(dataDir, "containerd")) || registrations().some((r) => r.dataDir === dataDir);
  if (process.platform === "linux" && (ranContainerd || opts.knownStale)) {
    // Loaded on demand: it brings grpc-js (a running containerd removes its sandboxes through CRI).
    const { cleanupContainerdHost } = await import("../kubelet/runtime/containerd.ts");
    removed.push(...(await cleanupContainerdHost(dataDir, log)));
  }
  if (state) rmSync(resolve(dataDir, "up.json"), { force: true });
  return removed;
}

export interface StaleHost {
  dataDir: string;
  pid: number;
  /** Why it cannot be cleaned from here, if so. */
  skip?: string;
}

/**
 * Data dirs on this host whose containerd host state outlived its owner: from the registry under
 * /run/kubelab/hosts and from the owners written on kubelab bridges (so a lost registry entry is
 * still found).
 */
export async function staleHosts(): Promise<StaleHost[]> {
  const found = new Map<string, StaleHost>();
  const here = netnsId();
  for (const r of registrations()) {
    if (ownerAlive(r)) continue;
    found.set(r.dataDir, { dataDir: r.dataDir, pid: r.pid, ...(r.netns !== here ? { skip: `its network is in another network namespace (net:[${r.netns}]); run down there` } : {}) });
  }
  const { kubelabBridges } = await import("../kubelet/runtime/containerd.ts");
  for (const b of await kubelabBridges()) {
    if (ownerAlive(b.owner) || found.has(b.owner.dataDir)) continue;
    found.set(b.owner.dataDir, { dataDir: b.owner.dataDir, pid: b.owner.pid });
  }
  // A journal whose owner is alive again under the same data dir is not stale (a new run reclaimed it).
  return [...found.values()].filter((s) => {
    const o = journalOwner(readJournal(s.dataDir));
    return !o || !ownerAlive(o);
  });
}
