// A pod's DNS configuration, as upstream's kubelet forms it (pkg/kubelet/network/dns/dns.go): the
// dnsPolicy picks the base (ClusterFirst: the cluster DNS servers with the cluster search path and
// ndots:5; Default: the host's resolv.conf; None: empty), spec.dnsConfig is merged in, and the result
// is cut to the resolver's limits (3 nameservers, 32 search domains, 2048 characters) with a
// DNSConfigForming warning. The runtime (containerd) writes it as the pod's /etc/resolv.conf.
//
// kubelab's safety rule on top: no pod is given a nameserver that is not on this machine. A host
// nameserver (or one in spec.dnsConfig) that is neither a local address nor one of the cluster DNS
// servers is dropped with a DNSConfigForming warning. And a config that ends up empty is never
// passed as empty (containerd would copy the host's resolv.conf, unfiltered): it becomes upstream's
// "no DNS" form, nameserver 127.0.0.1 with search ".".

import { readFileSync } from "node:fs";
import type { Pod } from "../api/core/v1.ts";

/** What the kubelet knows about DNS (upstream's --cluster-dns, --cluster-domain, --resolv-conf). */
export interface KubeletDNSOptions {
  /** --cluster-dns: the cluster DNS servers (kube-dns's ClusterIP); empty: none configured. */
  clusterDNS: string[];
  /** --cluster-domain, e.g. cluster.local; empty: no cluster search path. */
  clusterDomain: string;
  /** --resolv-conf: the host's resolver file for dnsPolicy Default (default /etc/resolv.conf); "" for none. */
  resolvConf: string;
}

/** The CRI DNSConfig: resolv.conf's nameserver, search and options lines. */
export interface DNSConfig {
  servers: string[];
  searches: string[];
  options: string[];
}

export interface DNSEvent {
  type: "Warning";
  reason: "DNSConfigForming" | "MissingClusterDNS";
  message: string;
}

export interface FormDNSInput {
  clusterDNS: string[];
  clusterDomain: string;
  /** The host's resolver config (parsed), or undefined when --resolv-conf is "" or unreadable. */
  host?: DNSConfig;
  /** Whether a nameserver may be given to a pod (on this machine); the cluster DNS servers always may. */
  isLocal(ip: string): boolean;
}

/** Upstream's limits (pkg/apis/core/validation: MaxDNSNameservers, MaxDNSSearchPaths, MaxDNSSearchListChars). */
export const MAX_DNS_NAMESERVERS = 3;
export const MAX_DNS_SEARCH_PATHS = 32;
export const MAX_DNS_SEARCH_LIST_CHARS = 2048;
/** A search domain longer than a DNS-1123 subdomain (253) makes some resolvers abort: dropped. */
const MAX_SEARCH_DOMAIN_LENGTH = 253;
const DEFAULT_DNS_OPTIONS = ["ndots:5"];

/** Parses resolv.conf as upstream's parseResolvConf: nameserver lines, the last search line, options. */
export function parseResolvConf(text: string): DNSConfig {
  const servers: string[] = [];
  let searches: string[] = [];
  let options: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/[#;].*$/, "").trim();
    if (line === "") continue;
    const fields = line.split(/\s+/);
    if (fields[0] === "nameserver" && fields.length >= 2) servers.push(fields[1]);
    else if (fields[0] === "search") searches = fields.slice(1).filter((s) => s !== ".").map((s) => s.replace(/\.$/, ""));
    else if (fields[0] === "options") options = mergeOptionStrings(options, fields.slice(1));
  }
  return { servers, searches, options };
}

/** The host's resolver config from `path`; undefined when path is "" or the file cannot be read. */
export function readHostDNS(path: string): DNSConfig | undefined {
  if (path === "") return undefined;
  try {
    return parseResolvConf(readFileSync(path, "utf8"));
  } catch {
    return undefined;
  }
}

type DNSType = "cluster" | "host" | "none";

/** upstream's getPodDNSType: ClusterFirst on the host network falls back to Default. */
function podDNSType(pod: Readonly<Pod>): DNSType {
  switch (pod.spec?.dnsPolicy ?? "ClusterFirst") {
    case "None":
      return "none";
    case "ClusterFirstWithHostNet":
      return "cluster";
    case "ClusterFirst":
      return pod.spec?.hostNetwork ? "host" : "cluster";
    case "Default":
      return "host";
    default:
      return "cluster"; // validation rejects others; upstream errors and uses the cluster form
  }
}

/**
 * The DNS config for a pod's sandbox and the warning Events to record on the pod (upstream's
 * GetPodDNS + formDNSConfigFitsLimits, plus the local-nameserver filter). Pure.
 */
export function formPodDNS(pod: Readonly<Pod>, input: FormDNSInput): { config: DNSConfig; events: DNSEvent[] } {
  const events: DNSEvent[] = [];
  const host: DNSConfig = input.host ? { servers: [...input.host.servers], searches: [...input.host.searches], options: [...input.host.options] } : { servers: [], searches: [], options: [] };
  let config: DNSConfig = host;
  let type = podDNSType(pod);
  if (type === "none") config = { servers: [], searches: [], options: [] };
  if (type === "cluster") {
    if (input.clusterDNS.length > 0) {
      config = { servers: [...input.clusterDNS], searches: clusterSearches(host.searches, pod.metadata.namespace ?? "", input.clusterDomain), options: [...DEFAULT_DNS_OPTIONS] };
    } else {
      events.push({
        type: "Warning",
        reason: "MissingClusterDNS",
        message: `pod: "${pod.metadata.name}_${pod.metadata.namespace}(${pod.metadata.uid})". kubelet does not have ClusterDNS IP configured and cannot create Pod using "ClusterFirst" policy. Falling back to "Default" policy.`,
      });
      type = "host";
    }
  }
  if (type === "host" && !input.host) config = { servers: ["127.0.0.1"], searches: ["."], options: [] }; // upstream: --resolv-conf ""
  const dns = pod.spec?.dnsConfig;
  if (dns) {
    config = {
      servers: omitDuplicates([...config.servers, ...(dns.nameservers ?? [])]),
      searches: omitDuplicates([...config.searches, ...(dns.searches ?? [])]),
      options: mergeOptionStrings(config.options, (dns.options ?? []).filter((o) => o.name).map((o) => (o.value !== undefined && o.value !== null ? `${o.name}:${o.value}` : (o.name as string)))),
    };
  }
  // Safety: only nameservers on this machine (or the cluster DNS servers, served on it).
  const dropped = config.servers.filter((s) => !input.clusterDNS.includes(s) && !input.isLocal(s));
  if (dropped.length > 0) {
    config.servers = config.servers.filter((s) => !dropped.includes(s));
    events.push({
      type: "Warning",
      reason: "DNSConfigForming",
      message: `Nameserver ${dropped.join(", ")} omitted: not an address of this machine (kubelab gives pods only local nameservers), the applied nameserver line is: ${config.servers.join(" ")}`,
    });
  }
  if (config.servers.length > MAX_DNS_NAMESERVERS) {
    config.servers = config.servers.slice(0, MAX_DNS_NAMESERVERS);
    events.push({ type: "Warning", reason: "DNSConfigForming", message: `Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: ${config.servers.join(" ")}` });
  }
  const search = searchFitsLimits(config.searches);
  config.searches = search.searches;
  if (search.exceeded) {
    events.push({ type: "Warning", reason: "DNSConfigForming", message: `Search Line limits were exceeded, some search paths have been omitted, the applied search line is: ${config.searches.join(" ")}` });
  }
  // An all-empty config makes containerd copy the host's file as it is: never pass one.
  if (config.servers.length === 0 && config.searches.length === 0 && config.options.length === 0) config = { servers: ["127.0.0.1"], searches: ["."], options: [] };
  return { config, events };
}

/** `<ns>.svc.<domain> svc.<domain> <domain>`, then the host's search domains (upstream's generateSearchesForDNSClusterFirst). */
function clusterSearches(hostSearches: string[], namespace: string, domain: string): string[] {
  if (domain === "") return [...hostSearches];
  return omitDuplicates([`${namespace}.svc.${domain}`, `svc.${domain}`, domain, ...hostSearches]);
}

function searchFitsLimits(composed: string[]): { searches: string[]; exceeded: boolean } {
  let exceeded = false;
  let searches = composed;
  if (searches.length > MAX_DNS_SEARCH_PATHS) {
    searches = searches.slice(0, MAX_DNS_SEARCH_PATHS);
    exceeded = true;
  }
  const kept = searches.filter((s) => s.length <= MAX_SEARCH_DOMAIN_LENGTH);
  if (kept.length !== searches.length) exceeded = true;
  searches = kept;
  let len = searches.join(" ").length;
  while (len > MAX_DNS_SEARCH_LIST_CHARS && searches.length > 0) {
    searches = searches.slice(0, -1);
    len = searches.join(" ").length;
    exceeded = true;
  }
  return { searches, exceeded };
}

function omitDuplicates(list: string[]): string[] {
  return [...new Set(list)];
}

/** upstream's mergeDNSOptions: by option name, later values win (kept in first-seen order). */
function mergeOptionStrings(existing: string[], added: string[]): string[] {
  const m = new Map<string, string>();
  for (const op of [...existing, ...added]) {
    const i = op.indexOf(":");
    if (i >= 0) m.set(op.slice(0, i), op.slice(i + 1));
    else m.set(op, "");
  }
  return [...m].map(([k, v]) => (v !== "" ? `${k}:${v}` : k));
}
