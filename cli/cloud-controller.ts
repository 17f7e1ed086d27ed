// `kubelab cloud-controller`: the simulated cloud's control side, leader-elected on
// kube-system/kubelab-cloud-controller — the node groups' Auto Scaling Groups and the cloud node
// lifecycle (controllers/cloud/nodegroups.ts), the cluster autoscaler (controllers/cloud/autoscaler/)
// and the serverless profiles' per-pod nodes (controllers/cloud/serverless.ts). The instances it
// lists are run by each zone's `kubelab kubelet --simulate --cloud`.

import { parseArgs } from "node:util";
import { Registry, collectDefaultMetrics } from "prom-client";
import { newLogger, type Context } from "../client/index.ts";
import { runAutoscaler } from "../controllers/cloud/autoscaler/index.ts";
import { runNodeGroups } from "../controllers/cloud/nodegroups.ts";
import { runServerless } from "../controllers/cloud/serverless.ts";
import { loadTopologyFile } from "../controllers/cloud/topology.ts";
import type { Topology } from "../controllers/cloud/types.ts";
import { LEADER_ELECT_OPTIONS, clientFromKubeconfig, leaderElectFlags, parseDuration, runLeaderElected, serveHealth } from "./component.ts";
import { CliError } from "./errors.ts";

const HELP = `usage: kubelab cloud-controller --kubeconfig FILE --topology FILE [flags]

  --kubeconfig FILE                  how to reach the apiserver
  --topology FILE                    the simulated cloud (region, zones, node groups, serverless
                                     profiles), as deploy/topologies/default.yaml
  --leader-elect                     run only while holding the Lease kube-system/kubelab-cloud-controller
  --port P                           /healthz, /readyz and /metrics on 127.0.0.1:P (default 10268; 0 picks one)
  --scan-interval D                  how often the cluster autoscaler looks at the cluster (default 10s)
  --scale-down-unneeded-time D       how long a node must be unneeded before it is removed (default 10m)
  --scale-down-delay-after-add D     no scale-down this long after a scale-up (default 10m)
  --leader-elect-lease-duration D    (default 15s)
  --leader-elect-renew-deadline D    (default 10s)
  --leader-elect-retry-period D      (default 2s)`;

export async function runCloudController(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: "string" },
      topology: { type: "string" },
      port: { type: "string", default: "10268" },
      "scan-interval": { type: "string", default: "10s" },
      "scale-down-unneeded-time": { type: "string", default: "10m" },
      "scale-down-delay-after-add": { type: "string", default: "10m" },
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
  if (!values.topology) throw new CliError("--topology is required", 2);
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port!) || port > 65535) throw new CliError(`--port must be a port number, got "${values.port}"`, 2);
  const scanIntervalMs = parseDuration("scan-interval", values["scan-interval"]!);
  const scaleDownUnneededTimeMs = parseDuration("scale-down-unneeded-time", values["scale-down-unneeded-time"]!);
  const scaleDownDelayAfterAddMs = parseDuration("scale-down-delay-after-add", values["scale-down-delay-after-add"]!);
  if (scanIntervalMs < 100) throw new CliError(`--scan-interval must be at least 100ms, got "${values["scan-interval"]}"`, 2);
  const leaderElect = leaderElectFlags(values);
  let topology: Topology;
  try {
    topology = loadTopologyFile(values.topology);
  } catch (e) {
    throw new CliError((e as Error).message, 2);
  }

  const log = newLogger("cloud-controller");
  const client = clientFromKubeconfig(values.kubeconfig);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let running = false;
  const server = await serveHealth(port, registry, () => running, log, "not leading");

  const stop = new AbortController();
  const ctx: Context = { signal: stop.signal, log };
  process.on("SIGTERM", () => stop.abort());
  process.on("SIGINT", () => stop.abort());
  const run = async (c: Context): Promise<void> => {
    running = true;
    log.info({ region: topology.region, zones: topology.zones.map((z) => z.name), nodeGroups: topology.nodeGroups.map((g) => g.name), serverless: topology.serverless.map((p) => p.name) }, "cloud controller running");
    // One failing loop stops the others: the process exits and the supervisor restarts it.
    const inner = new AbortController();
    const onAbort = (): void => inner.abort();
    c.signal.addEventListener("abort", onAbort, { once: true });
    const ic: Context = { signal: inner.signal, log: c.log };
    const guard = (name: string, p: Promise<void>): Promise<void> =>
      p.catch((e: unknown) => {
        log.error({ err: e, loop: name }, "cloud controller loop failed");
        inner.abort();
        throw e;
      });
    try {
      await Promise.all([
        guard("nodegroups", runNodeGroups(ic, { client, topology, log })),
        guard("autoscaler", runAutoscaler(ic, { client, topology, log: log.child({ controller: "cluster-autoscaler" }), scanIntervalMs, scaleDownUnneededTimeMs, scaleDownDelayAfterAddMs, metricsRegistry: registry })),
        guard("serverless", runServerless(ic, { client, topology, log: log.child({ controller: "serverless" }) })),
      ]);
    } finally {
      c.signal.removeEventListener("abort", onAbort);
    }
  };
  try {
    await runLeaderElected(ctx, { client, lease: "kubelab-cloud-controller", flags: leaderElect, log, run, onStopped: () => (running = false) });
  } finally {
    server.close();
  }
  process.exit(0);
}
