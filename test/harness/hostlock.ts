// One containerd suite at a time on this host: they all use the kubelab0 bridge, 10.88.0.0/16, the
// KUBELAB-FORWARD chain and the service-range route, and `kubelab up` refuses (rightly) a bridge a live
// cluster holds. vitest runs files in parallel workers, so each containerd suite takes this lock in
// beforeAll and releases it in afterAll. A holder that died (its PID gone or recycled) loses it.

import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { currentOwner, ownerAlive, type Owner } from "../../kubelet/runtime/hoststate.ts";

const LOCK = "/run/kubelab/test-containerd.lock";

/** Waits for the host's containerd test lock; returns its release. */
export async function acquireContainerdLock(what: string, timeoutMs = 900_000): Promise<() => void> {
  mkdirSync("/run/kubelab", { recursive: true });
  const me = { ...currentOwner(), token: randomUUID(), what };
  const deadline = Date.now() + timeoutMs;
  let told = false;
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(join(LOCK, "owner.json"), JSON.stringify(me));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    let holder: (Owner & { token: string; what: string }) | undefined;
    try {
      holder = JSON.parse(readFileSync(join(LOCK, "owner.json"), "utf8")) as Owner & { token: string; what: string };
    } catch {
      holder = undefined; // being written, or left empty by a holder killed in between (broken after 10 s)
    }
    const age = (() => {
      try {
        return Date.now() - statSync(LOCK).mtimeMs;
      } catch {
        return 0;
      }
    })();
    if ((holder && !ownerAlive(holder)) || (!holder && age > 10_000)) {
      rmSync(LOCK, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`${what}: timed out waiting for ${LOCK} (held by ${holder ? `${holder.what}, pid ${holder.pid}` : "an unknown holder"})`);
    if (!told && holder) console.warn(`${what}: waiting for ${holder.what} (pid ${holder.pid}) to finish with containerd`);
    told = true;
    await new Promise((r) => setTimeout(r, 500));
  }
  return () => {
    try {
      const holder = JSON.parse(readFileSync(join(LOCK, "owner.json"), "utf8")) as { token: string };
      if (holder.token === me.token) rmSync(LOCK, { recursive: true, force: true });
    } catch {
      // already gone
    }
  };
}
