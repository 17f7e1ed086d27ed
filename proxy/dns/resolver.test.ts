import { describe, expect, it } from "vitest";
import type { Answer } from "dns-packet";
import { sampleCluster, sampleResolver, svc } from "./fixtures.ts";
import { Resolver } from "./resolver.ts";

const r = sampleResolver();
const Z = "cluster.local";

function data(answers: Answer[], type?: string): unknown[] {
  return answers.filter((a) => !type || a.type === type).map((a) => (a as { data: unknown }).data);
}

describe("Resolver: Services", () => {
  it("answers a ClusterIP Service's A record with its ClusterIP, authoritative, TTL 5, owner name as asked", () => {
    const res = r.resolve({ name: `WEB.Default.svc.${Z}.`, type: "A" });
    expect(res.rcode).toBe("NOERROR");
    expect(res.authoritative).toBe(true);
    expect(res.zone).toBe("cluster.local.");
    expect(res.answers).toEqual([{ name: `WEB.Default.svc.${Z}`, type: "A", class: "IN", ttl: 5, data: "10.0.0.10" }]);
    expect(res.authorities).toEqual([]);
  });

  it("answers a headless Service with every ready endpoint address, never a not-ready one", () => {
    const res = r.resolve({ name: `db.default.svc.${Z}`, type: "A" });
    expect(res.rcode).toBe("NOERROR");
    expect(data(res.answers).sort()).toEqual(["10.1.0.1", "10.1.0.2", "10.1.0.4"]);
  });

  it("answers a headless Service's endpoint by hostname (StatefulSet pods) and by dashed IP", () => {
    expect(data(r.resolve({ name: `db-0.db.default.svc.${Z}`, type: "A" }).answers)).toEqual(["10.1.0.1"]);
    expect(data(r.resolve({ name: `10-1-0-4.db.default.svc.${Z}`, type: "A" }).answers)).toEqual(["10.1.0.4"]);
    expect(r.resolve({ name: `db-2.db.default.svc.${Z}`, type: "A" }).rcode).toBe("NXDOMAIN"); // not ready
    expect(r.resolve({ name: `db-9.db.default.svc.${Z}`, type: "A" }).rcode).toBe("NXDOMAIN");
  });

  it("answers endpoint names of a ClusterIP Service too, as CoreDNS does", () => {
    expect(data(r.resolve({ name: `10-1-1-1.web.default.svc.${Z}`, type: "A" }).answers)).toEqual(["10.1.1.1"]);
  });

  it("publishes the addresses of a headless Service whose slices declare no ports", () => {
    expect(data(r.resolve({ name: `bare.default.svc.${Z}`, type: "A" }).answers)).toEqual(["10.1.2.1"]);
    const srv = r.resolve({ name: `bare.default.svc.${Z}`, type: "SRV" });
    expect([srv.rcode, srv.answers.length]).toEqual(["NOERROR", 0]);
  });

  it("is NXDOMAIN for a headless Service without ready endpoints", () => {
    const res = r.resolve({ name: `empty.default.svc.${Z}`, type: "A" });
    expect(res.rcode).toBe("NXDOMAIN");
    expect(res.authorities[0]?.type).toBe("SOA");
  });
});

describe("Resolver: SRV", () => {
  it("points a named port of a ClusterIP Service at the Service name, with its A record in ADDITIONAL", () => {
    const res = r.resolve({ name: `_http._tcp.web.default.svc.${Z}`, type: "SRV" });
    expect(res.rcode).toBe("NOERROR");
    expect(res.answers).toEqual([
      { name: `_http._tcp.web.default.svc.${Z}`, type: "SRV", class: "IN", ttl: 5, data: { priority: 0, weight: 100, port: 80, target: `web.default.svc.${Z}` } },
    ]);
    expect(res.additionals).toEqual([{ name: `web.default.svc.${Z}`, type: "A", class: "IN", ttl: 5, data: "10.0.0.10" }]);
  });

  it("matches the protocol: _dns._udp exists, _dns._tcp and _http._udp do not", () => {
    expect(data(r.resolve({ name: `_dns._udp.web.default.svc.${Z}`, type: "SRV" }).answers)).toEqual([{ priority: 0, weight: 100, port: 53, target: `web.default.svc.${Z}` }]);
    expect(r.resolve({ name: `_dns._tcp.web.default.svc.${Z}`, type: "SRV" }).rcode).toBe("NXDOMAIN");
    expect(r.resolve({ name: `_http._udp.web.default.svc.${Z}`, type: "SRV" }).rcode).toBe("NXDOMAIN");
  });

  it("lists every port of the Service for an SRV query on its plain name", () => {
    const ports = data(r.resolve({ name: `web.default.svc.${Z}`, type: "SRV" }).answers).map((d) => (d as { port: number }).port);
    expect(ports.sort()).toEqual([53, 80]);
  });

  it("points a headless Service's port at each endpoint's hostname or dashed-IP name, with the endpoint port", () => {
    const res = r.resolve({ name: `_pg._tcp.db.default.svc.${Z}`, type: "SRV" });
    expect(res.rcode).toBe("NOERROR");
    const srv = data(res.answers) as { priority: number; weight: number; port: number; target: string }[];
    expect(srv.map((s) => s.target).sort()).toEqual([`10-1-0-4.db.default.svc.${Z}`, `db-0.db.default.svc.${Z}`, `db-1.db.default.svc.${Z}`]);
    expect(new Set(srv.map((s) => `${s.priority}/${s.weight}/${s.port}`))).toEqual(new Set(["0/33/5432"]));
    expect(res.additionals.map((a) => `${a.name} ${(a as { data: string }).data}`).sort()).toEqual([
      `10-1-0-4.db.default.svc.${Z} 10.1.0.4`,
      `db-0.db.default.svc.${Z} 10.1.0.1`,
      `db-1.db.default.svc.${Z} 10.1.0.2`,
    ]);
  });
});

describe("Resolver: ExternalName", () => {
  it("answers a CNAME to spec.externalName and does not resolve a name outside the cluster", () => {
    const res = r.resolve({ name: `ext.default.svc.${Z}`, type: "A" });
    expect(res.rcode).toBe("NOERROR");
    expect(res.answers).toEqual([{ name: `ext.default.svc.${Z}`, type: "CNAME", class: "IN", ttl: 5, data: "example.com" }]);
    expect(r.resolve({ name: `ext.default.svc.${Z}`, type: "CNAME" }).answers.map((a) => a.type)).toEqual(["CNAME"]);
    expect(r.resolve({ name: `ext.default.svc.${Z}`, type: "AAAA" }).answers.map((a) => a.type)).toEqual(["CNAME"]);
  });

  it("follows a CNAME that stays inside the cluster domain", () => {
    const res = r.resolve({ name: `alias.default.svc.${Z}`, type: "A" });
    expect(res.answers.map((a) => `${a.type} ${(a as { data: string }).data}`)).toEqual([`CNAME web.default.svc.${Z}`, "A 10.0.0.10"]);
  });

  it("stops at a CNAME loop", () => {
    const loop = sampleResolver({ services: [svc("a", { type: "ExternalName", externalName: `b.default.svc.${Z}` }), svc("b", { type: "ExternalName", externalName: `a.default.svc.${Z}` })] });
    const res = loop.resolve({ name: `a.default.svc.${Z}`, type: "A" });
    expect(res.rcode).toBe("NOERROR");
    expect(res.answers.length).toBeLessThanOrEqual(10);
  });
});

describe("Resolver: negative answers", () => {
  it("answers NODATA (NOERROR, no answers, the SOA in AUTHORITY) for AAAA of an existing name, in CoreDNS's SOA shape", () => {
    const res = r.resolve({ name: `web.default.svc.${Z}`, type: "AAAA" });
    expect(res.rcode).toBe("NOERROR");
    expect(res.answers).toEqual([]);
    expect(res.authorities).toEqual([
      {
        name: "cluster.local.",
        type: "SOA",
        class: "IN",
        ttl: 5,
        data: { mname: "ns.dns.cluster.local", rname: "hostmaster.cluster.local", serial: 1700000000, refresh: 7200, retry: 1800, expire: 86400, minimum: 5 },
      },
    ]);
    expect(r.resolve({ name: `web.default.svc.${Z}`, type: "MX" }).rcode).toBe("NOERROR");
    expect(r.resolve({ name: `web.default.svc.${Z}`, type: "UNKNOWN_65" }).rcode).toBe("NOERROR");
  });

  it("is NXDOMAIN with the SOA for a missing Service, a missing namespace, and a name that is not svc/pod", () => {
    for (const name of [`nope.default.svc.${Z}`, `web.nope.svc.${Z}`, `nope.svc.${Z}`, `web.default.xyz.${Z}`, `foo.${Z}`]) {
      const res = r.resolve({ name, type: "A" });
      expect([name, res.rcode, res.authorities.map((a) => a.type)]).toEqual([name, "NXDOMAIN", ["SOA"]]);
    }
  });

  it("is NODATA for the zone apex, svc.<zone> and an existing namespace", () => {
    for (const name of [Z, `svc.${Z}`, `pod.${Z}`, `default.svc.${Z}`, `default.pod.${Z}`]) {
      const res = r.resolve({ name, type: "A" });
      expect([name, res.rcode, res.answers.length, res.authorities.length]).toEqual([name, "NOERROR", 0, 1]);
    }
  });

  it("is NXDOMAIN for search-path expansions of names (ndots:5)", () => {
    for (const name of [
      `web.default.svc.${Z}.default.svc.${Z}`,
      `web.default.svc.${Z}.svc.${Z}`,
      `web.default.svc.${Z}.${Z}`,
      `example.com.default.svc.${Z}`,
      `www.example.com.default.svc.${Z}`,
    ]) {
      expect([name, r.resolve({ name, type: "A" }).rcode]).toEqual([name, "NXDOMAIN"]);
    }
  });

  it("REFUSES names outside its zones, with no SOA (it never forwards)", () => {
    for (const name of ["example.com", "example.com.", ".", "", "local", "cluster.local.example.com", "xcluster.local"]) {
      const res = r.resolve({ name, type: "A" });
      expect([name, res.rcode, res.authoritative, res.answers.length, res.authorities.length]).toEqual([name, "REFUSED", false, 0, 0]);
    }
  });
});

describe("Resolver: pods, reverse, zone records", () => {
  it("answers pod A records a-b-c-d.<ns>.pod.<zone> (pods insecure) in existing namespaces", () => {
    expect(data(r.resolve({ name: `10-2-3-4.default.pod.${Z}`, type: "A" }).answers)).toEqual(["10.2.3.4"]);
    expect(r.resolve({ name: `10-2-3-4.nope.pod.${Z}`, type: "A" }).rcode).toBe("NXDOMAIN");
    expect(r.resolve({ name: `10-2-3-999.default.pod.${Z}`, type: "A" }).rcode).toBe("NXDOMAIN");
    expect(r.resolve({ name: `mypod.default.pod.${Z}`, type: "A" }).rcode).toBe("NXDOMAIN");
  });

  it("answers PTR for ClusterIPs and endpoint addresses, NXDOMAIN for others", () => {
    expect(data(r.resolve({ name: "10.0.0.10.in-addr.arpa", type: "PTR" }).answers)).toEqual([`web.default.svc.${Z}`]);
    expect(data(r.resolve({ name: "1.0.1.10.in-addr.arpa.", type: "PTR" }).answers)).toEqual([`db-0.db.default.svc.${Z}`]);
    expect(data(r.resolve({ name: "4.0.1.10.in-addr.arpa", type: "PTR" }).answers)).toEqual([`10-1-0-4.db.default.svc.${Z}`]);
    const miss = r.resolve({ name: "9.9.9.10.in-addr.arpa", type: "PTR" });
    expect([miss.rcode, miss.zone, miss.authorities[0]?.name]).toEqual(["NXDOMAIN", "in-addr.arpa.", "in-addr.arpa."]);
    expect(r.resolve({ name: "0.10.in-addr.arpa", type: "PTR" }).rcode).toBe("NXDOMAIN");
    expect(r.resolve({ name: "10.0.0.10.in-addr.arpa", type: "A" }).rcode).toBe("NOERROR");
    expect(r.resolve({ name: "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa", type: "PTR" }).rcode).toBe("NXDOMAIN");
  });

  it("answers the zone's SOA and NS at the apex, ns.dns.<zone>, and the dns-version TXT record", () => {
    const soa = r.resolve({ name: Z, type: "SOA" });
    expect(soa.answers.map((a) => a.type)).toEqual(["SOA"]);
    const nsr = r.resolve({ name: `${Z}.`, type: "NS" });
    expect(data(nsr.answers)).toEqual([`ns.dns.${Z}`]);
    expect(nsr.additionals).toEqual([{ name: `ns.dns.${Z}`, type: "A", class: "IN", ttl: 5, data: "10.0.0.53" }]);
    expect(data(r.resolve({ name: `ns.dns.${Z}`, type: "A" }).answers)).toEqual(["10.0.0.53"]);
    expect(data(r.resolve({ name: `dns-version.${Z}`, type: "TXT" }).answers)).toEqual([["1.1.0"]]);
    expect(r.resolve({ name: "in-addr.arpa", type: "SOA" }).answers.map((a) => a.name)).toEqual(["in-addr.arpa."]);
  });
});

describe("Resolver: before the caches sync", () => {
  it("answers SERVFAIL for names in its zones (never a cacheable NXDOMAIN) and still REFUSES the rest", () => {
    let synced = false;
    const early = new Resolver(sampleCluster(), { domain: Z, ttl: 5, ready: () => synced });
    expect(early.resolve({ name: `web.default.svc.${Z}`, type: "A" }).rcode).toBe("SERVFAIL");
    expect(early.resolve({ name: "1.0.1.10.in-addr.arpa", type: "PTR" }).rcode).toBe("SERVFAIL");
    expect(early.resolve({ name: "example.com", type: "A" }).rcode).toBe("REFUSED");
    synced = true;
    expect(early.resolve({ name: `web.default.svc.${Z}`, type: "A" }).rcode).toBe("NOERROR");
  });
});
