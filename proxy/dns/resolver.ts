// The cluster DNS resolver: one question in, the records CoreDNS's kubernetes plugin would answer
// out, following the Kubernetes DNS-Based Service Discovery specification (schema 1.1.0):
//
//   <svc>.<ns>.svc.<zone>             A: the ClusterIP; headless: every ready endpoint's address
//   <ep>.<svc>.<ns>.svc.<zone>        A: the endpoint whose hostname (or dashed IP) is <ep>
//   _<port>._<proto>.<svc>.<ns>.svc.<zone>   SRV, with the targets' A records as additionals
//   <svc>.<ns>.svc.<zone> (ExternalName)      CNAME spec.externalName, never resolved off-cluster
//   <a-b-c-d>.<ns>.pod.<zone>         A a.b.c.d ("pods insecure")
//   <d.c.b.a>.in-addr.arpa            PTR of a ClusterIP or an endpoint address
//   dns-version.<zone>                TXT "1.1.0";  <zone> SOA/NS;  ns.dns.<zone> A
//
// A name in a zone we serve that does not exist is NXDOMAIN, an existing name without records of the
// asked type is NOERROR/NODATA, both with the zone's SOA in AUTHORITY; a name outside our zones is
// REFUSED: this server never forwards (nothing may leave this machine).

import type { Answer, SoaAnswer } from "dns-packet";
import { parseIPv4 } from "../../api/index.ts";
import type { ClusterCache } from "./cache.ts";
import { serviceClusterIPs } from "./cache.ts";

export type Rcode = "NOERROR" | "FORMERR" | "SERVFAIL" | "NXDOMAIN" | "NOTIMP" | "REFUSED";

export interface Question {
  /** As received (answers echo its case); with or without the trailing dot. */
  name: string;
  /** dns-packet's type name: "A", "SRV", "UNKNOWN_65", ... */
  type: string;
}

export interface Resolution {
  rcode: Rcode;
  /** Set for names in a zone we serve. */
  authoritative: boolean;
  /** The zone that answered ("cluster.local."), or "." for a name outside every zone (metrics label). */
  zone: string;
  answers: Answer[];
  authorities: Answer[];
  additionals: Answer[];
}

export interface ResolverOptions {
  /** The cluster domain, e.g. "cluster.local". */
  domain: string;
  /** TTL of every record (CoreDNS's default 5, range 0–3600). */
  ttl: number;
  /** Addresses of ns.dns.<zone> (the kube-dns ClusterIP, else the address the server binds). */
  nameserverIPs?: string[];
  /**
   * False until the caches have synced: names in our zones get SERVFAIL then, not an NXDOMAIN a
   * client would cache for a Service that exists. Default: always ready.
   */
  ready?: () => boolean;
}

/** The DNS schema version this server implements (the spec's dns-version record). */
export const DNS_SCHEMA_VERSION = "1.1.0";

const REVERSE_ZONES = ["in-addr.arpa", "ip6.arpa"];
/** CoreDNS gives up following in-zone CNAMEs after this many. */
const MAX_CNAME_CHAIN = 8;

/** One thing a name stands for (CoreDNS's msg.Service): an address or a name, with a port. */
interface Entry {
  /** An IPv4 address, or a domain name (ExternalName) when `isName`. */
  host: string;
  isName: boolean;
  /** -1 when the endpoints declare no port (no SRV record then). */
  port: number;
  /** The name an SRV record points to and the A record in ADDITIONAL is for. */
  target: string;
}

/** The pieces of a name below the zone: [[_port._proto.]|[endpoint.]]service.namespace.(svc|pod). */
interface RecordRequest {
  kind: "svc" | "pod";
  namespace?: string;
  service?: string;
  endpoint?: string;
  port?: string;
  protocol?: string;
}

class NameError extends Error {}

function fqdn(n: string): string {
  return n.endsWith(".") ? n : n + ".";
}

/** Lower case, no trailing dot ("" for the root). */
export function canonicalName(n: string): string {
  const t = n.endsWith(".") ? n.slice(0, -1) : n;
  return t.toLowerCase();
}

function inZone(name: string, zone: string): boolean {
  return name === zone || name.endsWith("." + zone);
}

function dashed(ip: string): string {
  return ip.replace(/\./g, "-");
}

function stripUnderscore(s: string): string {
  return s.startsWith("_") ? s.slice(1) : s;
}

function matchPortAndProtocol(wantPort: string | undefined, port: string, wantProto: string | undefined, proto: string): boolean {
  return (!wantPort || wantPort === port.toLowerCase()) && (!wantProto || wantProto === proto.toLowerCase());
}

export class Resolver {
  private readonly domain: string;

  constructor(
    private readonly cache: ClusterCache,
    private readonly opts: ResolverOptions,
  ) {
    this.domain = canonicalName(opts.domain);
  }

  resolve(q: Question): Resolution {
    const name = canonicalName(q.name);
    const zone = this.zoneOf(name);
    if (zone === undefined) return { rcode: "REFUSED", authoritative: false, zone: ".", answers: [], authorities: [], additionals: [] };
    if (this.opts.ready && !this.opts.ready()) return { rcode: "SERVFAIL", authoritative: false, zone: fqdn(zone), answers: [], authorities: [], additionals: [] };
    try {
      const { answers, additionals } = zone === this.domain ? this.clusterZone(q, name) : this.reverseZone(q, name, zone);
      if (answers.length === 0) return this.negative("NOERROR", zone);
      return { rcode: "NOERROR", authoritative: true, zone: fqdn(zone), answers, authorities: [], additionals };
    } catch (e) {
      if (e instanceof NameError) return this.negative("NXDOMAIN", zone);
      throw e;
    }
  }

  /** The zone's SOA as CoreDNS builds it: ns.dns.<zone>, hostmaster.<zone>, serial = last change. */
  soa(zone: string): SoaAnswer {
    const z = canonicalName(zone);
    return {
      name: fqdn(z),
      type: "SOA",
      class: "IN",
      ttl: Math.min(this.opts.ttl, 300),
      data: {
        mname: `ns.dns.${z}`,
        rname: `hostmaster.${z}`,
        serial: this.cache.serial() >>> 0,
        refresh: 7200,
        retry: 1800,
        expire: 86400,
        minimum: this.opts.ttl,
      },
    };
  }

  private zoneOf(name: string): string | undefined {
    for (const z of [this.domain, ...REVERSE_ZONES]) if (inZone(name, z)) return z;
    return undefined;
  }

  private negative(rcode: Rcode, zone: string): Resolution {
    return { rcode, authoritative: true, zone: fqdn(zone), answers: [], authorities: [this.soa(zone)], additionals: [] };
  }

  private a(name: string, ip: string): Answer {
    return { name, type: "A", class: "IN", ttl: this.opts.ttl, data: ip };
  }

  // ---- the cluster domain ----------------------------------------------------------------------

  private clusterZone(q: Question, name: string): { answers: Answer[]; additionals: Answer[] } {
    const owner = q.name.endsWith(".") ? q.name.slice(0, -1) : q.name;
    const none = { answers: [], additionals: [] };
    const base = name === this.domain ? "" : name.slice(0, -(this.domain.length + 1));
    if (base === "") {
      if (q.type === "SOA") return { answers: [this.soa(this.domain)], additionals: [] };
      if (q.type === "NS") {
        const ns = `ns.dns.${this.domain}`;
        return {
          answers: [{ name: owner, type: "NS", class: "IN", ttl: this.opts.ttl, data: ns }],
          additionals: (this.opts.nameserverIPs ?? []).map((ip) => this.a(ns, ip)),
        };
      }
      return none;
    }
    if (base === "dns-version" && q.type === "TXT") {
      return { answers: [{ name: owner, type: "TXT", class: "IN", ttl: this.opts.ttl, data: [DNS_SCHEMA_VERSION] }], additionals: [] };
    }
    if (base === "ns.dns") {
      return { answers: q.type === "A" ? (this.opts.nameserverIPs ?? []).map((ip) => this.a(owner, ip)) : [], additionals: [] };
    }
    const entries = this.records(parseRequest(base));
    switch (q.type) {
      case "A":
        return { answers: this.addressRecords(owner, entries, 0), additionals: [] };
      case "SRV":
        return this.srvRecords(owner, entries);
      case "CNAME": {
        const first = entries[0];
        return { answers: first?.isName ? [{ name: owner, type: "CNAME", class: "IN", ttl: this.opts.ttl, data: first.host }] : [], additionals: [] };
      }
      case "AAAA":
      case "TXT":
        // An IPv4-only cluster: no data, but an ExternalName still answers with its CNAME.
        return { answers: entries.filter((e) => e.isName).slice(0, 1).map((e) => ({ name: owner, type: "CNAME", class: "IN", ttl: this.opts.ttl, data: e.host }) satisfies Answer), additionals: [] };
      default:
        // The name exists (records() did not throw): NODATA for every other type.
        return none;
    }
  }

  /** A records for `owner`, following CNAMEs that stay inside the cluster domain. */
  private addressRecords(owner: string, entries: Entry[], depth: number): Answer[] {
    const out: Answer[] = [];
    const seen = new Set<string>();
    for (const e of entries) {
      if (!e.isName) {
        if (!seen.has(e.host)) {
          seen.add(e.host);
          out.push(this.a(owner, e.host));
        }
        continue;
      }
      const target = canonicalName(e.host);
      if (target === canonicalName(owner) || seen.has(target)) continue;
      seen.add(target);
      const cname: Answer = { name: owner, type: "CNAME", class: "IN", ttl: this.opts.ttl, data: e.host };
      if (inZone(target, this.domain) && depth < MAX_CNAME_CHAIN) {
        let next: Answer[] = [];
        try {
          const base = target === this.domain ? "" : target.slice(0, -(this.domain.length + 1));
          if (base !== "") next = this.addressRecords(e.host.replace(/\.$/, ""), this.records(parseRequest(base)), depth + 1);
        } catch (err) {
          if (!(err instanceof NameError)) throw err;
        }
        if (next.length > 0) out.push(cname, ...next);
        continue;
      }
      // Outside the cluster: the client's resolver follows the CNAME itself; we never forward.
      out.push(cname);
    }
    return out;
  }

  private srvRecords(owner: string, entries: Entry[]): { answers: Answer[]; additionals: Answer[] } {
    const withPort = entries.filter((e) => e.port !== -1);
    // Every record has priority 0; weights share 100 between them (CoreDNS's arithmetic).
    const weight = Math.max(1, Math.floor(100 / Math.max(1, withPort.length)));
    const answers: Answer[] = [];
    const additionals: Answer[] = [];
    const seenSRV = new Set<string>();
    const seenA = new Set<string>();
    for (const e of withPort) {
      const target = e.isName ? e.host.replace(/\.$/, "") : e.target;
      const key = `${target}|${e.port}`;
      if (!seenSRV.has(key)) {
        seenSRV.add(key);
        answers.push({ name: owner, type: "SRV", class: "IN", ttl: this.opts.ttl, data: { priority: 0, weight, port: Math.max(0, e.port), target } });
      }
      if (!e.isName && !seenA.has(`${target}|${e.host}`)) {
        seenA.add(`${target}|${e.host}`);
        additionals.push(this.a(target, e.host));
      }
    }
    return { answers, additionals };
  }

  /** What a parsed name stands for; throws NameError when it names nothing (NXDOMAIN). */
  private records(r: RecordRequest): Entry[] {
    if (!r.namespace) return []; // "svc.<zone>", "pod.<zone>": NODATA
    if (!this.cache.namespaceExists(r.namespace)) throw new NameError();
    if (!r.service) return []; // "<ns>.svc.<zone>": NODATA
    return r.kind === "pod" ? this.podRecords(r) : this.serviceRecords(r);
  }

  private podRecords(r: RecordRequest): Entry[] {
    if (r.endpoint !== undefined || r.port !== undefined) throw new NameError();
    const label = r.service!;
    const ip = label.split("-").length === 4 && !label.includes("--") ? label.replace(/-/g, ".") : "";
    if (parseIPv4(ip) === undefined) throw new NameError();
    return [{ host: ip, isName: false, port: -1, target: `${label}.${r.namespace}.pod.${this.domain}` }];
  }

  private serviceRecords(r: RecordRequest): Entry[] {
    const ns = r.namespace!;
    const svc = this.cache.service(ns, r.service!);
    if (!svc) throw new NameError();
    const name = svc.metadata.name ?? r.service!;
    const svcName = `${name}.${ns}.svc.${this.domain}`;
    const spec = svc.spec ?? {};
    const out: Entry[] = [];

    if (spec.type === "ExternalName") {
      // An ExternalName has no endpoints; an IP in externalName is not a name to alias.
      const ext = spec.externalName ?? "";
      if (r.endpoint !== undefined || ext === "" || parseIPv4(ext) !== undefined) throw new NameError();
      return [{ host: ext, isName: true, port: 0, target: svcName }];
    }

    const headless = spec.clusterIP === "None";
    if (headless || r.endpoint !== undefined) {
      for (const slice of this.cache.slicesOf(ns, name)) {
        if (slice.addressType !== "IPv4") continue;
        // A slice without ports still publishes its addresses (CoreDNS's port -1 sentinel).
        const ports = slice.ports && slice.ports.length > 0 ? slice.ports : [{ name: "", protocol: "", port: -1 }];
        for (const ep of slice.endpoints ?? []) {
          if (ep.conditions?.ready === false) continue;
          for (const ip of ep.addresses ?? []) {
            if (parseIPv4(ip) === undefined) continue;
            const epName = ep.hostname || dashed(ip);
            if (r.endpoint !== undefined && r.endpoint !== epName.toLowerCase()) continue;
            for (const p of ports) {
              if (!matchPortAndProtocol(r.port, p.name ?? "", r.protocol, p.protocol ?? "TCP")) continue;
              out.push({ host: ip, isName: false, port: typeof p.port === "number" ? p.port : -1, target: `${epName}.${svcName}` });
            }
          }
        }
      }
    } else {
      for (const p of spec.ports ?? []) {
        if (!matchPortAndProtocol(r.port, p.name ?? "", r.protocol, p.protocol ?? "TCP")) continue;
        for (const ip of serviceClusterIPs(svc)) out.push({ host: ip, isName: false, port: p.port, target: svcName });
      }
    }
    if (out.length === 0) throw new NameError();
    return out;
  }

  // ---- reverse zones -----------------------------------------------------------------------------

  private reverseZone(q: Question, name: string, zone: string): { answers: Answer[]; additionals: Answer[] } {
    const none = { answers: [], additionals: [] };
    if (name === zone) return q.type === "SOA" ? { answers: [this.soa(zone)], additionals: [] } : none;
    if (zone !== "in-addr.arpa") throw new NameError(); // IPv4-only cluster
    const labels = name.slice(0, -(zone.length + 1)).split(".");
    const ip = labels.length === 4 && labels.every((l) => /^(0|[1-9][0-9]{0,2})$/.test(l)) ? [...labels].reverse().join(".") : "";
    if (parseIPv4(ip) === undefined) throw new NameError();
    const target = this.reverseName(ip);
    if (!target) throw new NameError();
    if (q.type !== "PTR") return none;
    const owner = q.name.endsWith(".") ? q.name.slice(0, -1) : q.name;
    return { answers: [{ name: owner, type: "PTR", class: "IN", ttl: this.opts.ttl, data: target }], additionals: [] };
  }

  /** The name an address belongs to: a Service's ClusterIP first, then an endpoint of any Service. */
  private reverseName(ip: string): string | undefined {
    const svc = this.cache.servicesByClusterIP(ip)[0];
    if (svc) return `${svc.metadata.name}.${svc.metadata.namespace}.svc.${this.domain}`;
    for (const slice of this.cache.slicesByAddress(ip)) {
      const svcName = slice.metadata.labels?.["kubernetes.io/service-name"];
      if (!svcName) continue;
      for (const ep of slice.endpoints ?? []) {
        if (!(ep.addresses ?? []).includes(ip)) continue;
        return `${ep.hostname || dashed(ip)}.${svcName}.${slice.metadata.namespace}.svc.${this.domain}`;
      }
    }
    return undefined;
  }
}

/** CoreDNS's parseRequest: the labels below the zone, read from the right. */
function parseRequest(base: string): RecordRequest {
  const segs = base.split(".");
  let last = segs.length - 1;
  const kind = segs[last];
  if (kind !== "svc" && kind !== "pod") throw new NameError();
  const r: RecordRequest = { kind };
  if (--last < 0) return r;
  r.namespace = segs[last];
  if (--last < 0) return r;
  r.service = segs[last];
  if (--last < 0) return r;
  if (last === 0) r.endpoint = segs[0];
  else if (last === 1) {
    r.port = stripUnderscore(segs[0]!);
    r.protocol = stripUnderscore(segs[1]!);
  } else throw new NameError(); // too long: a search-path expansion, say
  return r;
}
