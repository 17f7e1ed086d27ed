// Prometheus metrics of the apiserver, with upstream's metric names and labels.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface StorageMetrics {
  storageLatency: Histogram<"operation" | "type">;
}

export interface ApiserverMetrics extends StorageMetrics {
  registry: Registry;
  requests: Counter<"verb" | "group" | "version" | "resource" | "subresource" | "scope" | "component" | "code">;
  requestDuration: Histogram<"verb" | "group" | "version" | "resource" | "subresource" | "scope" | "component">;
  watchEvents: Counter<"group" | "version" | "kind">;
  registeredWatchers: Counter<"group" | "version" | "kind">;
  /** Requests answered 429 by max-in-flight, by request_kind (readOnly, mutating). */
  droppedRequests: Counter<"request_kind">;
  /** Requests being served now, by request_kind (readOnly, mutating). */
  currentInflight: Gauge<"request_kind">;
  /** Requests that carried credentials, by result (success, error), as upstream's authentication_attempts. */
  authenticationAttempts: Counter<"result">;
}

export function newApiserverMetrics(): ApiserverMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const labels = ["verb", "group", "version", "resource", "subresource", "scope", "component"] as const;
  return {
    registry,
    requests: new Counter({
      name: "apiserver_request_total",
      help: "Counter of apiserver requests broken out for each verb, group, version, resource, scope, component, and HTTP response code.",
      labelNames: [...labels, "code"],
      registers: [registry],
    }),
    requestDuration: new Histogram({
      name: "apiserver_request_duration_seconds",
      help: "Response latency distribution in seconds for each verb, group, version, resource, subresource, scope and component.",
      labelNames: [...labels],
      buckets: [0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60],
      registers: [registry],
    }),
    watchEvents: new Counter({
      name: "apiserver_watch_events_total",
      help: "Number of events sent in watch clients",
      labelNames: ["group", "version", "kind"],
      registers: [registry],
    }),
    registeredWatchers: new Counter({
      name: "apiserver_registered_watchers_total",
      help: "Number of watches started, by kind",
      labelNames: ["group", "version", "kind"],
      registers: [registry],
    }),
    droppedRequests: new Counter({
      name: "apiserver_dropped_requests_total",
      help: "Number of requests dropped with 'Try again later' response",
      labelNames: ["request_kind"],
      registers: [registry],
    }),
    currentInflight: new Gauge({
      name: "apiserver_current_inflight_requests",
      help: "Number of requests this apiserver is serving now, per request kind (upstream samples the maximum of the last second).",
      labelNames: ["request_kind"],
      registers: [registry],
    }),
    authenticationAttempts: new Counter({
      name: "authentication_attempts",
      help: "Counter of authenticated attempts.",
      labelNames: ["result"],
      registers: [registry],
    }),
    storageLatency: new Histogram({
      name: "etcd_request_duration_seconds",
      help: "Storage request latency in seconds for each operation and object type.",
      labelNames: ["operation", "type"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
  };
}
