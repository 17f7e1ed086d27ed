// Cluster DNS: the resolver (CoreDNS's kubernetes plugin over informer caches), its UDP/TCP server,
// and the keeper of the kube-dns Service and this server's EndpointSlice.

export { listerCache, dnsIndexers, serviceClusterIPs, INDEX_BY_CLUSTER_IP, INDEX_BY_ADDRESS, type ClusterCache, type CacheListers } from "./cache.ts";
export { Resolver, canonicalName, DNS_SCHEMA_VERSION, type Question, type Resolution, type ResolverOptions, type Rcode } from "./resolver.ts";
export { DnsServer, DnsHandler, dnsMetrics, type DnsMetrics, type DnsServerOptions } from "./server.ts";
export { KubeDNSKeeper, desiredService, desiredSlice, sliceName, KUBE_DNS_NAMESPACE, KUBE_DNS_SERVICE, DNS_SLICE_MANAGER, type KubeDNSOptions } from "./kubedns.ts";
