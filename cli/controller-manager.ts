// `kubelab controller-manager`: shared informers, the workload controllers, leader election on a Lease.

import { accessSync, constants } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { Registry, collectDefaultMetrics } from "prom-client";
import {
  newEventRecorder,
  newLogger,
  newSharedInformerFactory,
  type Client,
  type Context,
  type Logger,
} from "../client/index.ts";
import { CONTROLLERS, DEFAULT_CONTROLLER_MANAGER_CONFIG, type ControllerEnv, type ControllerManagerConfig } from "../controllers/index.ts";
import { CliError } from "./errors.ts";
import { LEADER_ELECT_OPTIONS, clientFromKubeconfig, leaderElectFlags, parseDuration, runLeaderElected, serveHealth } from "./component.ts";

const HELP = `usage: kubelab controller-manager --kubeconfig FILE [flags]

  --kubeconfig FILE        how to reach the apiserver
  --controllers LIST       comma-separated, or * for all (default *): ${Object.keys(CONTROLLERS).join(",")}
  --leader-elect           run only while holding the Lease kube-system/kube-controller-manager
  --port P                 /healthz, /readyz and /metrics on 127.0.0.1:P (default 10257; 0 picks one)
  --workers N              concurrent reconciles per controller (default 5)
  --leader-elect-lease-duration D   (default 15s)
  --leader-elect-renew-deadline D   (default 10s; less than the lease duration)
  --leader-elect-retry-period D     (default 2s)

node lifecycle:
  --node-monitor-period D           how often node health is checked (default 5s)
  --node-monitor-grace-period D     heartbeat silence before a node is Unknown (default 50s)
  --node-startup-grace-period D     the same for a node that never posted status (default 60s)
  --node-eviction-rate R            nodes per second tainted NoExecute in a healthy zone (default 0.1)
  --secondary-node-eviction-rate R  the same in a partially disrupted large zone (default 0.01)
  --large-cluster-size-threshold N  nodes above which a zone is large (default 50)
  --unhealthy-zone-threshold F      fraction of not-Ready nodes making a zone partially disrupted (default 0.55)

resource quota:
  --resource-quota-sync-period D    how often every quota's usage is recomputed in full (default 5m)

volumes:
  --volume-dir DIR                  the simulated cloud's disks (<DIR>/<volumeHandle>); a released Delete-policy
                                    volume's directory is removed there (default: only the PV object is deleted)

certificates and ServiceAccounts:
  --cluster-signing-cert-file FILE  the CA certificate (PEM) the CSR signer signs kubelets' certificates with
  --cluster-signing-key-file FILE   its private key; both or neither (without them the signer is idle)
  --cluster-signing-duration D      the longest validity of a signed certificate (default 8760h)
  --root-ca-file FILE               the CA published to every namespace as ConfigMap kube-root-ca.crt
  --service-account-private-key-file FILE  the key legacy ServiceAccount token Secrets are signed with`;

/** A non-negative number flag (rates, fractions). */
function parseNumber(flag: string, v: string, opts: { integer?: boolean; max?: number } = {}): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n < 0 || (opts.integer && !Number.isInteger(n)) || (opts.max !== undefined && n > opts.max)) {
    throw new CliError(`--${flag} must be a non-negative ${opts.integer ? "integer" : "number"}${opts.max !== undefined ? ` at most ${opts.max}` : ""}, got "${v}"`, 2);
  }
  return n;
}

/** A file flag: resolved, and readable now (a one-line usage error otherwise). */
function readableFile(flag: string, v: string): string {
  const p = resolve(v);
  try {
    accessSync(p, constants.R_OK);
  } catch (e) {
    throw new CliError(`--${flag}: cannot read ${p}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 2);
  }
  return p;
}

/** Runs the chosen controllers until ctx aborts: start informers, wait for sync, run workers. */
async function runControllers(ctx: Context, client: Client, names: string[], registry: Registry, workers: number, config: ControllerManagerConfig): Promise<void> {
  const informers = newSharedInformerFactory(client);
  const env: ControllerEnv = { client, informers, registry, workers, recorder: (component) => newEventRecorder(client, { component }), config };
  const started = names.map((n) => CONTROLLERS[n](env));
  informers.start(ctx);
  await Promise.all(started.map((s) => s.run({ ...ctx, log: ctx.log.child({ controller: s.name }) })));
}

export async function runControllerManager(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: "string" },
      controllers: { type: "string", default: "*" },
      port: { type: "string", default: "10257" },
      workers: { type: "string", default: "5" },
      ...LEADER_ELECT_OPTIONS,
      "node-monitor-period": { type: "string", default: "5s" },
      "node-monitor-grace-period": { type: "string", default: "50s" },
      "node-startup-grace-period": { type: "string", default: "60s" },
      "node-eviction-rate": { type: "string", default: String(DEFAULT_CONTROLLER_MANAGER_CONFIG.nodeEvictionRate) },
      "secondary-node-eviction-rate": { type: "string", default: String(DEFAULT_CONTROLLER_MANAGER_CONFIG.secondaryNodeEvictionRate) },
      "large-cluster-size-threshold": { type: "string", default: String(DEFAULT_CONTROLLER_MANAGER_CONFIG.largeClusterSizeThreshold) },
      "unhealthy-zone-threshold": { type: "string", default: String(DEFAULT_CONTROLLER_MANAGER_CONFIG.unhealthyZoneThreshold) },
      "resource-quota-sync-period": { type: "string", default: "5m" },
      "volume-dir": { type: "string" },
      "cluster-signing-cert-file": { type: "string" },
      "cluster-signing-key-file": { type: "string" },
      "cluster-signing-duration": { type: "string", default: "8760h" },
      "root-ca-file": { type: "string" },
      "service-account-private-key-file": { type: "string" },
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
  const known = Object.keys(CONTROLLERS);
  const names = values.controllers === "*" ? known : values.controllers!.split(",").map((s) => s.trim()).filter(Boolean);
  for (const n of names) {
    if (!known.includes(n)) throw new CliError(`unknown controller "${n}"; known: ${known.join(", ")}`, 2);
  }
  const port = Number(values.port);
  const workers = Number(values.workers);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`--port must be a port number, got "${values.port}"`, 2);
  if (!Number.isInteger(workers) || workers < 1) throw new CliError(`--workers must be a positive integer, got "${values.workers}"`, 2);

  const leaderElect = leaderElectFlags(values);
  const cmConfig: ControllerManagerConfig = {
    nodeMonitorPeriodMs: parseDuration("node-monitor-period", values["node-monitor-period"]!),
    nodeMonitorGracePeriodMs: parseDuration("node-monitor-grace-period", values["node-monitor-grace-period"]!),
    nodeStartupGracePeriodMs: parseDuration("node-startup-grace-period", values["node-startup-grace-period"]!),
    nodeEvictionRate: parseNumber("node-eviction-rate", values["node-eviction-rate"]!),
    secondaryNodeEvictionRate: parseNumber("secondary-node-eviction-rate", values["secondary-node-eviction-rate"]!),
    largeClusterSizeThreshold: parseNumber("large-cluster-size-threshold", values["large-cluster-size-threshold"]!, { integer: true }),
    unhealthyZoneThreshold: parseNumber("unhealthy-zone-threshold", values["unhealthy-zone-threshold"]!, { max: 1 }),
    resourceQuotaSyncPeriodMs: parseDuration("resource-quota-sync-period", values["resource-quota-sync-period"]!),
    ...(values["volume-dir"] ? { volumeDir: resolve(values["volume-dir"]) } : {}),
    ...(values["cluster-signing-cert-file"] ? { clusterSigningCertFile: readableFile("cluster-signing-cert-file", values["cluster-signing-cert-file"]) } : {}),
    ...(values["cluster-signing-key-file"] ? { clusterSigningKeyFile: readableFile("cluster-signing-key-file", values["cluster-signing-key-file"]) } : {}),
    clusterSigningDurationMs: parseDuration("cluster-signing-duration", values["cluster-signing-duration"]!),
    ...(values["root-ca-file"] ? { rootCAFile: readableFile("root-ca-file", values["root-ca-file"]) } : {}),
    ...(values["service-account-private-key-file"] ? { serviceAccountPrivateKeyFile: readableFile("service-account-private-key-file", values["service-account-private-key-file"]) } : {}),
  };
  if (!cmConfig.clusterSigningCertFile !== !cmConfig.clusterSigningKeyFile) throw new CliError("--cluster-signing-cert-file and --cluster-signing-key-file must be given together", 2);
  if ((cmConfig.clusterSigningDurationMs ?? 0) <= 0) throw new CliError("--cluster-signing-duration must be positive", 2);
  if (cmConfig.nodeMonitorPeriodMs <= 0) throw new CliError("--node-monitor-period must be positive", 2);
  if ((cmConfig.resourceQuotaSyncPeriodMs ?? 0) <= 0) throw new CliError("--resource-quota-sync-period must be positive", 2);
  const log = newLogger("controller-manager");
  const client = clientFromKubeconfig(values.kubeconfig);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let running = false;
  const server = await serveHealth(port, registry, () => running, log, "not leading or caches not synced");

  const stop = new AbortController();
  const ctx: Context = { signal: stop.signal, log };
  const shutdown = (signal: string) => {
    log.info({ signal }, "controller-manager stopping");
    stop.abort();
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));

  const run = async (c: Context): Promise<void> => {
    running = true;
    await runControllers(c, client, names, registry, workers, cmConfig);
  };
  try {
    await runLeaderElected(ctx, { client, lease: "kube-controller-manager", flags: leaderElect, log, run, onStopped: () => (running = false) });
  } finally {
    server.close();
  }
  process.exit(0);
}
