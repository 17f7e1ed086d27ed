// The client library's metrics under client-go's names (k8s.io/client-go/tools/metrics as
// component-base's restclient and leaderelection adapters register them): rest_client_requests_total
// {code,method,host}, rest_client_request_duration_seconds{verb,host} and
// leader_election_master_status{name}. Process-wide by default, as upstream's legacy registry: every
// RestClient and leader elector of a process reports to one registry, which cli/component.ts's
// serveHealth serves next to the component's own.

import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** What the REST client reports (client-go's RequestResult and RequestLatency hooks). */
export interface RestClientMetrics {
  /** One attempt's answer: its status code, or "<error>" when no response came (refused, reset, timed out, aborted). */
  requestResult(code: string, method: string, host: string): void;
  /** One request from its first attempt until its body is read, retries included; verb is the HTTP method. Watches are counted, not timed, as in client-go. */
  requestLatency(verb: string, host: string, seconds: number): void;
}

/** What a leader elector reports (client-go's SwitchMetric). */
export interface LeaderElectionMetrics {
  /** Now leading the lease `name`. */
  leaderOn(name: string): void;
  /** Not (or no longer) leading it. */
  leaderOff(name: string): void;
}

/** client-go's requestLatency buckets (component-base/metrics/prometheus/restclient). */
export const REST_CLIENT_LATENCY_BUCKETS = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60];

/** The client metrics on one registry. */
export class ClientMetrics implements RestClientMetrics, LeaderElectionMetrics {
  private readonly results: Counter<"code" | "method" | "host">;
  private readonly latency: Histogram<"verb" | "host">;
  private readonly leader: Gauge<"name">;

  constructor(readonly registry: Registry = new Registry()) {
    const registers = [registry];
    this.results = new Counter({
      name: "rest_client_requests_total",
      help: "Number of HTTP requests, partitioned by status code, method, and host.",
      labelNames: ["code", "method", "host"] as const,
      registers,
    });
    this.latency = new Histogram({
      name: "rest_client_request_duration_seconds",
      help: "Request latency in seconds. Broken down by verb, and host.",
      labelNames: ["verb", "host"] as const,
      buckets: REST_CLIENT_LATENCY_BUCKETS,
      registers,
    });
    this.leader = new Gauge({
      name: "leader_election_master_status",
      help: "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease. Please make sure to group by name.",
      labelNames: ["name"] as const,
      registers: [], // registered on first use: only leader-elected processes declare it
    });
  }

  requestResult(code: string, method: string, host: string): void {
    this.results.inc({ code, method, host });
  }

  requestLatency(verb: string, host: string, seconds: number): void {
    this.latency.observe({ verb, host }, seconds);
  }

  leaderOn(name: string): void {
    this.registry.registerMetric(this.leader); // again is a no-op
    this.leader.set({ name }, 1);
  }

  leaderOff(name: string): void {
    this.registry.registerMetric(this.leader);
    this.leader.set({ name }, 0);
  }
}

let processMetrics: ClientMetrics | undefined;

/** The process-wide client metrics: what RestClient and runLeaderElection report to unless given others. */
export function defaultClientMetrics(): ClientMetrics {
  processMetrics ??= new ClientMetrics();
  return processMetrics;
}
