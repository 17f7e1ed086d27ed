// The ingress controller: routing table, TLS certificates, the reverse proxy and its control loop.

export * from "./routing.ts";
export * from "./tls.ts";
export * from "./proxy.ts";
export * from "./metrics.ts";
export * from "./controller.ts";
