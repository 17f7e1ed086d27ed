// `kubelab scheduler`: the default profile over the in-tree plugins, leader-elected on kube-system/kube-scheduler.

import { parseArgs } from "node:util";
import { Registry, collectDefaultMetrics } from "prom-client";
import { newLogger, type Context } from "../client/index.ts";
import { Scheduler, type Profile } from "../scheduler/index.ts";
import { inTreeRegistry } from "../scheduler/plugins/registry.ts";
import { LEADER_ELECT_OPTIONS, clientFromKubeconfig, leaderElectFlags, runLeaderElected, serveHealth } from "./component.ts";
import { CliError } from "./errors.ts";

const HELP = `usage: kubelab scheduler --kubeconfig FILE [flags]

  --kubeconfig FILE        how to reach the apiserver
  --leader-elect           schedule only while holding the Lease kube-system/kube-scheduler
  --port P                 /healthz, /readyz and /metrics on 127.0.0.1:P (default 10259; 0 picks one)
  --percentage-of-nodes-to-score N   0 (default) is adaptive, as kube-scheduler
  --leader-elect-lease-duration D   (default 15s)
  --leader-elect-renew-deadline D   (default 10s)
  --leader-elect-retry-period D     (default 2s)`;

/** kube-scheduler's default profile: the in-tree plugins with their default score weights. */
export function defaultProfile(percentageOfNodesToScore = 0): Profile {
  return {
    schedulerName: "default-scheduler",
    percentageOfNodesToScore,
    plugins: [
      { name: "NodeUnschedulable" },
      { name: "NodeName" },
      { name: "TaintToleration", weight: 3 },
      { name: "NodeAffinity", weight: 2 },
      { name: "NodePorts" },
      { name: "NodeResourcesFit", weight: 1 },
      { name: "VolumeBinding" },
      { name: "VolumeZone" },
      { name: "PodTopologySpread", weight: 2 },
      { name: "InterPodAffinity", weight: 2 },
      { name: "DefaultPreemption" },
      { name: "NodeResourcesBalancedAllocation", weight: 1 },
      { name: "DefaultBinder" },
    ],
  };
}

export async function runScheduler(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: "string" },
      port: { type: "string", default: "10259" },
      "percentage-of-nodes-to-score": { type: "string", default: "0" },
      ...LEADER_ELECT_OPTIONS,
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
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`--port must be a port number, got "${values.port}"`, 2);
  const pct = Number(values["percentage-of-nodes-to-score"]);
  if (!Number.isFinite(pct) || pct < 0 || pct > 100) throw new CliError("--percentage-of-nodes-to-score must be between 0 and 100", 2);
  const leaderElect = leaderElectFlags(values);

  const log = newLogger("scheduler");
  const client = clientFromKubeconfig(values.kubeconfig);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let running = false;
  const server = await serveHealth(port, registry, () => running, log, "not leading");

  const stop = new AbortController();
  const ctx: Context = { signal: stop.signal, log };
  process.on("SIGTERM", () => stop.abort());
  process.on("SIGINT", () => stop.abort());
  const schedule = async (c: Context) => {
    running = true;
    const scheduler = new Scheduler({ client, profiles: [defaultProfile(pct)], registry: inTreeRegistry, metricsRegistry: registry });
    await scheduler.run(c);
  };
  try {
    await runLeaderElected(ctx, { client, lease: "kube-scheduler", flags: leaderElect, log, run: schedule, onStopped: () => (running = false) });
  } finally {
    server.close();
  }
  process.exit(0);
}
