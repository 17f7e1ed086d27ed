// What every long-running component process shares: its API client from --kubeconfig, its
// /healthz, /readyz and /metrics server and the duration flags (upstream's names and formats).

import { randomUUID } from "node:crypto";
import http from "node:http";
import { hostname } from "node:os";
import { Registry, register as globalRegistry, type Metric } from "prom-client";
import { RestClient, defaultClientMetrics, loadKubeconfig, runLeaderElection, type Context, type Logger } from "../client/index.ts";
import { CliError } from "./errors.ts";

/**
 * What /metrics serves: the component's registry, then the process-wide ones — the client metrics
 * (rest_client_*, leader_election_master_status) and prom-client's global registry, where anything
 * created without a registry reports (work queues given none) — as upstream's components serve
 * their legacy registry. A name already taken by an earlier registry is left out of the later ones:
 * one exposition never declares a family twice.
 */
export async function scrape(registry: Registry): Promise<string> {
  const merged = new Registry();
  const seen = new Set<string>();
  for (const r of [registry, defaultClientMetrics().registry, globalRegistry]) {
    for (const m of r.getMetricsAsArray()) {
      if (seen.has(m.name)) continue;
      seen.add(m.name);
      merged.registerMetric(m as unknown as Metric);
    }
  }
  return merged.metrics();
}

/**
 * Serves /healthz and /livez (always ok), /readyz (`ready()`, else 503 with `notReady`) and /metrics
 * (`registry` and the process-wide registries: see scrape) on 127.0.0.1:port.
 */
export function serveHealth(port: number, registry: Registry, ready: () => boolean, log: Logger, notReady: string): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz" || path === "/livez") {
      res.writeHead(200, { "Content-Type": "text/plain" }).end("ok");
    } else if (path === "/readyz") {
      const ok = ready();
      res.writeHead(ok ? 200 : 503, { "Content-Type": "text/plain" }).end(ok ? "ok" : notReady);
    } else if (path === "/metrics") {
      scrape(registry).then(
        (m) => res.writeHead(200, { "Content-Type": registry.contentType }).end(m),
        (e: Error) => res.writeHead(500).end(e.message),
      );
    } else {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("not found");
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      log.info({ port: (server.address() as { port: number }).port }, "serving /healthz, /readyz and /metrics");
      resolve(server);
    });
  });
}

/** "15s", "500ms", "1m" → milliseconds; a bad value is a usage error naming the flag. */
export function parseDuration(flag: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v.trim());
  if (!m) throw new CliError(`--${flag}: "${v}" is not a duration like 15s or 500ms`, 2);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
  return Math.round(Number(m[1]) * unit);
}

/** The REST client of --kubeconfig FILE; an unreadable file is a one-line CLI error naming it. */
export function clientFromKubeconfig(path: string): RestClient {
  try {
    return new RestClient(loadKubeconfig(path));
  } catch (e) {
    throw new CliError(`cannot read kubeconfig ${path}: ${(e as Error).message}`);
  }
}

/** The leader-election flags of every leader-elected component (upstream's names and defaults). */
export const LEADER_ELECT_OPTIONS = {
  "leader-elect": { type: "boolean", default: false },
  "leader-elect-lease-duration": { type: "string", default: "15s" },
  "leader-elect-renew-deadline": { type: "string", default: "10s" },
  "leader-elect-retry-period": { type: "string", default: "2s" },
} as const;

export interface LeaderElectFlags {
  enabled: boolean;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

/** The parsed LEADER_ELECT_OPTIONS; a bad duration, or a renew deadline not under the lease duration, is a usage error. */
export function leaderElectFlags(values: { "leader-elect"?: boolean; "leader-elect-lease-duration"?: string; "leader-elect-renew-deadline"?: string; "leader-elect-retry-period"?: string }): LeaderElectFlags {
  const f: LeaderElectFlags = {
    enabled: values["leader-elect"] === true,
    leaseDurationMs: parseDuration("leader-elect-lease-duration", values["leader-elect-lease-duration"] ?? "15s"),
    renewDeadlineMs: parseDuration("leader-elect-renew-deadline", values["leader-elect-renew-deadline"] ?? "10s"),
    retryPeriodMs: parseDuration("leader-elect-retry-period", values["leader-elect-retry-period"] ?? "2s"),
  };
  if (f.renewDeadlineMs >= f.leaseDurationMs) throw new CliError("--leader-elect-renew-deadline must be less than --leader-elect-lease-duration", 2);
  return f;
}

/**
 * Runs `run` while holding kube-system/<lease> (or at once without --leader-elect). `onStopped` is
 * called when leadership ends. A lost lease (not a shutdown) throws "leader election lost", so the
 * process exits and the supervisor starts a fresh candidate, as upstream's components do.
 */
export async function runLeaderElected(
  ctx: Context,
  opts: { client: RestClient; lease: string; flags: LeaderElectFlags; log: Logger; run: (c: Context) => Promise<void>; onStopped?: () => void },
): Promise<void> {
  if (!opts.flags.enabled) return opts.run(ctx);
  const identity = `${hostname()}_${randomUUID()}`;
  const { log } = opts;
  await runLeaderElection(ctx, {
    client: opts.client,
    namespace: "kube-system",
    name: opts.lease,
    identity,
    leaseDurationMs: opts.flags.leaseDurationMs,
    renewDeadlineMs: opts.flags.renewDeadlineMs,
    retryPeriodMs: opts.flags.retryPeriodMs,
    onStartedLeading: async (leaderCtx) => {
      log.info({ identity }, "became leader");
      await opts.run(leaderCtx);
    },
    onStoppedLeading: () => {
      opts.onStopped?.();
      log.info({ identity }, "stopped leading");
    },
    onNewLeader: (id) => log.info({ leader: id }, "observed leader"),
  });
  if (!ctx.signal.aborted) throw new CliError("leader election lost");
}
