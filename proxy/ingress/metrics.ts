// The ingress controller's request metrics under ingress-nginx's names, so its dashboards and alerts
// read ours. Label children are cached per (route, status, method): the hot path does one Map lookup.

import { Counter, Histogram, type Registry } from "prom-client";
import type { RequestObserver } from "./proxy.ts";
import type { Route } from "./routing.ts";

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface Children {
  requests: { inc(): void };
  duration: { observe(v: number): void };
  upstream: { observe(v: number): void };
}

export class IngressMetrics implements RequestObserver {
  private readonly requests: Counter<"ingress" | "namespace" | "service" | "status" | "host" | "method">;
  private readonly duration: Histogram<"ingress" | "namespace" | "service" | "status" | "host" | "method">;
  private readonly upstreamLatency: Histogram<"ingress" | "namespace" | "service">;
  private readonly cache = new Map<string, Children>();

  constructor(registry: Registry) {
    const labelNames = ["ingress", "namespace", "service", "status", "host", "method"] as const;
    this.requests = new Counter({ name: "nginx_ingress_controller_requests", help: "The total number of client requests", labelNames, registers: [registry] });
    this.duration = new Histogram({
      name: "nginx_ingress_controller_request_duration_seconds",
      help: "The request processing time in seconds (from the first byte read to the last byte sent)",
      labelNames,
      buckets: DURATION_BUCKETS,
      registers: [registry],
    });
    this.upstreamLatency = new Histogram({
      name: "nginx_ingress_controller_upstream_latency_seconds",
      help: "The time until the upstream's response headers, in seconds",
      labelNames: ["ingress", "namespace", "service"],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    });
  }

  observe(r: { route?: Route; host: string; method: string; status: number; durationS: number; upstreamLatencyS?: number }): void {
    const route = r.route;
    // Unrouted requests are counted under the default server "_" (the Host header is unbounded).
    const host = route ? route.host || "_" : "_";
    const key = `${route?.ingress ?? ""}\0${route?.upstream.key ?? ""}\0${host}\0${r.status}\0${r.method}`;
    let c = this.cache.get(key);
    if (!c) {
      if (this.cache.size > 10_000) this.cache.clear();
      const labels = {
        ingress: route?.ingressName ?? "",
        namespace: route?.namespace ?? "",
        service: route?.upstream.service ?? "",
        status: String(r.status),
        host,
        method: r.method,
      };
      c = {
        requests: this.requests.labels(labels),
        duration: this.duration.labels(labels),
        upstream: this.upstreamLatency.labels({ ingress: labels.ingress, namespace: labels.namespace, service: labels.service }),
      };
      this.cache.set(key, c);
    }
    c.requests.inc();
    c.duration.observe(r.durationS);
    if (r.upstreamLatencyS !== undefined) c.upstream.observe(r.upstreamLatencyS);
  }
}
