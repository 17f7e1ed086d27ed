// `kubelab down`: stops the cluster that `kubelab up` runs from a data dir; for a cluster that died
// without its cleanup (SIGKILL, a crash), undoes what it left on the host from the journal in its
// data dir; with --all-stale, does that for every dead cluster recorded on this host.

import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { newLogger } from "../client/index.ts";
import { CliError } from "./errors.ts";
import { cleanDeadCluster, staleHosts } from "./hoststate.ts";
import { isAlive, readUpState } from "./up.ts";

const HELP = `usage: kubelab down [--data-dir DIR] [--timeout SECONDS]
       kubelab down --all-stale

  --data-dir DIR   the cluster 'kubelab up' runs from DIR (default .kubelab): stops it; if it died
                   without cleaning up, removes what it left (containerd, shims, sandboxes, mounts,
                   cgroups, the bridge, iptables chains, the blackhole route), one line per item
  --timeout S      how long to wait for a running cluster to stop before killing it (default 30)
  --all-stale      clean up every cluster on this host whose 'up' is dead (found in /run/kubelab/hosts
                   and in the owners recorded on kubelab bridges)`;

export async function runDown(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      "data-dir": { type: "string" },
      timeout: { type: "string", default: "30" },
      "all-stale": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(HELP + "\n");
    return;
  }
  const timeoutS = Number(values.timeout);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new CliError(`--timeout must be a positive number of seconds, got "${values.timeout}"`, 2);
  // Cleanup logs only problems; what was removed is printed as lines.
  const log = newLogger("down", { level: process.env.KUBELAB_LOG_LEVEL ?? "warn" });
  if (values["all-stale"]) {
    if (values["data-dir"] !== undefined) throw new CliError("--all-stale and --data-dir are exclusive", 2);
    await downAllStale(log);
    return;
  }

  const dataDir = resolve(values["data-dir"] ?? ".kubelab");
  const state = readUpState(dataDir);
  if (state && isAlive(state.pid)) {
    process.kill(state.pid, "SIGTERM");
    const deadline = Date.now() + timeoutS * 1000;
    while (Date.now() < deadline) {
      if (!isAlive(state.pid)) {
        process.stdout.write(`kubelab stopped (pid ${state.pid}).\n`);
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    // The supervisor did not finish: kill it, then clean up after it as after any dead cluster.
    process.kill(state.pid, "SIGKILL");
    await new Promise((r) => setTimeout(r, 200));
    const removed = [`killed kubelab up (pid ${state.pid})`, ...(await cleanDeadCluster(dataDir, readUpState(dataDir) ?? state, log))];
    for (const line of removed) process.stdout.write(`  ${line}\n`);
    throw new CliError(`kubelab (pid ${state.pid}) did not stop within ${values.timeout}s; killed it and cleaned up what it left (above)`);
  }

  let removed: string[];
  try {
    removed = await cleanDeadCluster(dataDir, state, log);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  if (removed.length === 0) {
    process.stdout.write(`kubelab is not running from ${dataDir}\n`);
    return;
  }
  process.stdout.write(`kubelab is not running from ${dataDir}${state ? ` (pid ${state.pid} died)` : ""}; removed what it left:\n`);
  for (const line of removed) process.stdout.write(`  ${line}\n`);
}

async function downAllStale(log: ReturnType<typeof newLogger>): Promise<void> {
  const stale = await staleHosts();
  if (stale.length === 0) {
    process.stdout.write("no stale kubelab clusters on this host\n");
    return;
  }
  let failed = 0;
  for (const s of stale) {
    if (s.skip) {
      process.stdout.write(`${s.dataDir} (pid ${s.pid}, dead): skipped, ${s.skip}\n`);
      failed++;
      continue;
    }
    const state = readUpState(s.dataDir);
    if (state && state.pid !== s.pid && isAlive(state.pid)) {
      // a new `up` runs there now; its own containerd host will reclaim the old state
      process.stdout.write(`${s.dataDir}: kubelab runs there again (pid ${state.pid}); left alone\n`);
      continue;
    }
    try {
      const removed = await cleanDeadCluster(s.dataDir, state, log, { knownStale: true });
      process.stdout.write(`${s.dataDir} (pid ${s.pid}, dead): ${removed.length === 0 ? "nothing left" : "removed"}\n`);
      for (const line of removed) process.stdout.write(`  ${line}\n`);
    } catch (e) {
      process.stdout.write(`${s.dataDir}: ${(e as Error).message}\n`);
      failed++;
    }
  }
  if (failed > 0) throw new CliError(`${failed} stale cluster(s) could not be cleaned up from here`);
}
