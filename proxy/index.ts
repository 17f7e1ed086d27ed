// The data plane's public surface: the service proxy, cluster DNS and the ingress controller.

export * from "./endpoints.ts";
export * from "./dns/index.ts";
export * from "./ingress/index.ts";
export * from "./loadbalancer/index.ts";
export * from "./service/index.ts";
