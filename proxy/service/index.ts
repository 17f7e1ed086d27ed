// The service proxy (`kubelab proxy`): ClusterIP and NodePort forwarding as kube-proxy does it.

export { computeProxyState, backendsFor, serviceClusterIP, nodeInternalIP, ClientNodeResolver, AnnotationTopologyMode, AnnotationTopologyAwareHints, DEFAULT_AFFINITY_TIMEOUT_SECONDS } from "./rules.ts";
export type { ProxyState, ListenerSpec, ListenerKind, Route as ServicePortRoute, RulesInput, Protocol as ProxyProtocol } from "./rules.ts";
export { Balancer, forwardTCP, UDPRelay, noopObserver, type ForwardObserver, type ErrorReason } from "./forward.ts";
export { Proxier, ProxyMetrics, ChangeTracker, BoundedFrequencyRunner, type ProxierOptions } from "./proxier.ts";
export { holderOf, isProxyCommandLine, type Holder } from "./holder.ts";
