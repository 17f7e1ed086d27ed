import dgram from "node:dgram";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import dnsPacket, { type Packet } from "dns-packet";
import { Registry } from "prom-client";
import { newLogger } from "../../client/index.ts";
import { sampleResolver, slice, svc } from "./fixtures.ts";
import { DnsHandler, DnsServer, dnsMetrics } from "./server.ts";

const log = newLogger("dns-test", { level: "silent" });
// A headless Service with 60 ready endpoints: its A answer is ~1 KB, over 512 bytes.
const bigEps = Array.from({ length: 60 }, (_, i) => ({ ip: `10.9.${Math.floor(i / 250)}.${(i % 250) + 1}` }));
const resolver = sampleResolver({ services: [svc("big", { clusterIP: "None", ports: [{ name: "p", port: 1 }] })], slices: [slice("big", bigEps, [{ name: "p", protocol: "TCP", port: 1 }])] });

function query(name: string, type = "A", opts: { id?: number; edns?: number; ednsVersion?: number; flags?: number } = {}): Buffer {
  const p: Packet = {
    type: "query",
    id: opts.id ?? 4242,
    flags: opts.flags ?? dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: type as "A" }],
    additionals: opts.edns ? [{ name: ".", type: "OPT", udpPayloadSize: opts.edns, ednsVersion: opts.ednsVersion ?? 0, flags: 0, flag_do: false, extendedRcode: 0, options: [] }] : [],
  };
  return dnsPacket.encode(p);
}

/** dns-packet's decode; its typings leave out the rcode it sets. */
const decode = (b: Buffer) => dnsPacket.decode(b) as ReturnType<typeof dnsPacket.decode> & { rcode?: string };

function rcodeOf(b: Buffer): number {
  return b.readUInt16BE(2) & 0xf;
}

describe("DnsHandler", () => {
  const h = new DnsHandler({ resolver, log });

  it("answers a query with the id, the question echoed, QR, AA, RA and RD set", () => {
    const res = decode(h.handle(query("web.default.svc.cluster.local"), "udp")!);
    expect(res.id).toBe(4242);
    expect(res.type).toBe("response");
    expect([res.flag_aa, res.flag_ra, res.flag_rd, res.flag_tc, res.rcode]).toEqual([true, true, true, false, "NOERROR"]);
    expect(res.questions).toEqual([{ name: "web.default.svc.cluster.local", type: "A", class: "IN" }]);
    expect(res.answers?.map((a) => (a as { data: string }).data)).toEqual(["10.0.0.10"]);
  });

  it("answers NXDOMAIN with the SOA in AUTHORITY, and REFUSED without AA for names outside the zone", () => {
    const nx = decode(h.handle(query("nope.default.svc.cluster.local"), "udp")!);
    expect([nx.rcode, nx.flag_aa, nx.authorities?.map((a) => a.type)]).toEqual(["NXDOMAIN", true, ["SOA"]]);
    const refused = decode(h.handle(query("example.com"), "udp")!);
    expect([refused.rcode, refused.flag_aa, refused.answers?.length, refused.authorities?.length]).toEqual(["REFUSED", false, 0, 0]);
    const chaos = decode(h.handle(dnsPacket.encode({ type: "query", id: 1, questions: [{ name: "version.bind", type: "TXT", class: "CH" }] }), "udp")!);
    expect(chaos.rcode).toBe("REFUSED");
  });

  it("truncates a UDP answer over 512 bytes without EDNS (TC set) and sends it whole over TCP or with a large EDNS buffer", () => {
    const udp = h.handle(query("big.default.svc.cluster.local"), "udp")!;
    expect(udp.length).toBeLessThanOrEqual(512);
    const u = decode(udp);
    expect([u.flag_tc, u.rcode]).toEqual([true, "NOERROR"]);
    expect(u.answers!.length).toBeLessThan(60);
    const tcp = decode(h.handle(query("big.default.svc.cluster.local"), "tcp")!);
    expect([tcp.flag_tc, tcp.answers!.length]).toEqual([false, 60]);
    const edns = h.handle(query("big.default.svc.cluster.local", "A", { edns: 4096 }), "udp")!;
    const e = decode(edns);
    expect([e.flag_tc, e.answers!.length]).toEqual([false, 60]);
    expect(e.additionals?.find((a) => a.type === "OPT")).toMatchObject({ type: "OPT", udpPayloadSize: 4096, ednsVersion: 0 });
    // A small EDNS buffer is honoured: 600 bytes.
    const small = h.handle(query("big.default.svc.cluster.local", "A", { edns: 600 }), "udp")!;
    expect(small.length).toBeLessThanOrEqual(600);
    expect(decode(small).flag_tc).toBe(true);
  });

  it("drops ADDITIONAL before truncating answers: a complete SRV answer without its A records has no TC", () => {
    const res = h.handle(query("_p._tcp.big.default.svc.cluster.local", "SRV"), "udp")!;
    const d = decode(res);
    expect(res.length).toBeLessThanOrEqual(512);
    // 60 SRV records do not fit either: truncated.
    expect(d.flag_tc).toBe(true);
    const srv = decode(h.handle(query("_pg._tcp.db.default.svc.cluster.local", "SRV"), "udp")!);
    expect([srv.flag_tc, srv.answers!.length, srv.additionals!.length]).toEqual([false, 3, 3]);
  });

  it("answers BADVERS to an EDNS version it does not speak", () => {
    const res = decode(h.handle(query("web.default.svc.cluster.local", "A", { edns: 1232, ednsVersion: 1 }), "udp")!);
    const opt = res.additionals?.find((a) => a.type === "OPT") as { extendedRcode: number } | undefined;
    expect(opt?.extendedRcode).toBe(1); // (1 << 4) | 0 = 16, BADVERS
    expect(res.answers).toEqual([]);
  });

  it("answers FORMERR to garbage with a header, NOTIMP to other opcodes, and drops runts and responses", () => {
    const garbage = Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, 0x61]);
    const fe = h.handle(garbage, "udp")!;
    expect([fe.readUInt16BE(0), rcodeOf(fe), fe.readUInt16BE(2) >> 15]).toEqual([0x1234, 1, 1]);
    const two = dnsPacket.encode({ type: "query", id: 7, questions: [{ name: "a.default.svc.cluster.local", type: "A" }, { name: "b.default.svc.cluster.local", type: "A" }] });
    expect(rcodeOf(h.handle(two, "udp")!)).toBe(1);
    const none = dnsPacket.encode({ type: "query", id: 8, questions: [] });
    expect(rcodeOf(h.handle(none, "udp")!)).toBe(1);
    const status = query("web.default.svc.cluster.local", "A", { flags: 2 << 11 });
    expect(rcodeOf(h.handle(status, "udp")!)).toBe(4);
    expect(h.handle(Buffer.from([1, 2, 3]), "udp")).toBeUndefined();
    const response = query("web.default.svc.cluster.local");
    response.writeUInt16BE(response.readUInt16BE(2) | 0x8000, 2);
    expect(h.handle(response, "udp")).toBeUndefined();
  });

  it("never throws and always answers with the query's id on thousands of random and mutated packets", () => {
    // A seeded generator, so a failure reproduces.
    let seed = 0x2545f491;
    const rand = () => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 0x100000000;
    };
    const seeds = [
      query("web.default.svc.cluster.local"),
      query("_pg._tcp.db.default.svc.cluster.local", "SRV", { edns: 1232 }),
      query("10.0.0.10.in-addr.arpa", "PTR"),
      query("example.com", "AAAA"),
    ];
    let answered = 0;
    for (let i = 0; i < 4000; i++) {
      let pkt: Buffer;
      if (i % 2 === 0) {
        pkt = Buffer.alloc(Math.floor(rand() * 80));
        for (let j = 0; j < pkt.length; j++) pkt[j] = Math.floor(rand() * 256);
      } else {
        pkt = Buffer.from(seeds[i % seeds.length]!);
        const flips = 1 + Math.floor(rand() * 6);
        for (let f = 0; f < flips; f++) pkt[Math.floor(rand() * pkt.length)] = Math.floor(rand() * 256);
        if (rand() < 0.2) pkt = pkt.subarray(0, Math.floor(rand() * pkt.length));
      }
      const proto = rand() < 0.5 ? "udp" : "tcp";
      const res = h.handle(pkt, proto);
      if (pkt.length < 12 || pkt.readUInt16BE(2) & 0x8000) {
        expect(res).toBeUndefined();
        continue;
      }
      expect(res, `packet ${pkt.toString("hex")}`).toBeDefined();
      expect(res!.readUInt16BE(0)).toBe(pkt.readUInt16BE(0));
      expect(res!.readUInt16BE(2) >> 15).toBe(1);
      if (proto === "udp") expect(res!.length).toBeLessThanOrEqual(4096);
      expect(() => decode(res!)).not.toThrow();
      // SERVFAIL would mean the handler or resolver threw: a bug, not the packet's fault.
      expect(rcodeOf(res!), `packet ${pkt.toString("hex")}`).not.toBe(2);
      answered++;
    }
    expect(answered).toBeGreaterThan(1000);
  });
});

describe("DnsServer on sockets", () => {
  const registry = new Registry();
  const server = new DnsServer({ resolver, log, metrics: dnsMetrics(registry) });
  let port = 0;
  beforeAll(async () => {
    port = await server.listen("127.0.0.1", 0);
  });
  afterAll(() => server.close());

  function udpAsk(msg: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const s = dgram.createSocket("udp4");
      const t = setTimeout(() => {
        s.close();
        reject(new Error("no UDP answer"));
      }, 5000);
      s.on("message", (m) => {
        clearTimeout(t);
        s.close();
        resolve(m);
      });
      s.send(msg, port, "127.0.0.1");
    });
  }

  it("answers over UDP", async () => {
    const res = decode(await udpAsk(query("db.default.svc.cluster.local")));
    expect(res.answers?.map((a) => (a as { data: string }).data).sort()).toEqual(["10.1.0.1", "10.1.0.2", "10.1.0.4"]);
  });

  it("answers several length-prefixed queries on one TCP connection, split across writes", async () => {
    const s = net.connect(port, "127.0.0.1");
    await new Promise<void>((r) => s.once("connect", () => r()));
    const frames = [query("web.default.svc.cluster.local", "A", { id: 1 }), query("nope.default.svc.cluster.local", "A", { id: 2 }), query("big.default.svc.cluster.local", "A", { id: 3 })].map((q) => {
      const f = Buffer.alloc(2 + q.length);
      f.writeUInt16BE(q.length, 0);
      q.copy(f, 2);
      return f;
    });
    const all = Buffer.concat(frames);
    const got: Buffer[] = [];
    let buf = Buffer.alloc(0);
    const done = new Promise<void>((resolve) => {
      s.on("data", (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          got.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
          buf = buf.subarray(2 + buf.readUInt16BE(0));
          if (got.length === 3) resolve();
        }
      });
    });
    // Split mid-frame: the server must reassemble.
    s.write(all.subarray(0, 5));
    await new Promise((r) => setTimeout(r, 20));
    s.write(all.subarray(5));
    await done;
    s.destroy();
    const decoded = got.map((g) => decode(g));
    expect(decoded.map((d) => [d.id, d.rcode, d.answers!.length, d.flag_tc])).toEqual([
      [1, "NOERROR", 1, false],
      [2, "NXDOMAIN", 0, false],
      [3, "NOERROR", 60, false],
    ]);
  });

  it("survives a TCP client that sends garbage and disconnects, and keeps answering", async () => {
    const s = net.connect(port, "127.0.0.1");
    await new Promise<void>((r) => s.once("connect", () => r()));
    s.write(Buffer.from([0x00, 0x05, 1, 2, 3]));
    s.destroy();
    const res = decode(await udpAsk(query("web.default.svc.cluster.local")));
    expect(res.rcode).toBe("NOERROR");
  });

  it("counts requests and responses under CoreDNS's metric names", async () => {
    await udpAsk(query("example.org"));
    const text = await registry.metrics();
    expect(text).toMatch(new RegExp(`coredns_dns_requests_total\\{server="dns://127.0.0.1:${port}",zone="cluster.local.",proto="udp",family="1",type="A"\\} \\d+`));
    expect(text).toMatch(/coredns_dns_requests_total\{[^}]*proto="tcp"[^}]*\} 3/);
    expect(text).toMatch(new RegExp(`coredns_dns_responses_total\\{server="dns://127.0.0.1:${port}",zone=".",rcode="REFUSED"\\} 1`));
    expect(text).toMatch(/coredns_dns_responses_total\{[^}]*rcode="NXDOMAIN"\} 1/);
    expect(text).toMatch(/coredns_dns_request_duration_seconds_bucket\{le="0.00025",server="[^"]+",zone="cluster.local.",type="A"\}/);
    expect(text).toMatch(/coredns_dns_response_size_bytes_bucket\{le="511",server="[^"]+",zone="cluster.local.",proto="tcp"\} 2/);
    expect(text).toMatch(/coredns_dns_response_size_bytes_bucket\{le="4095",server="[^"]+",zone="cluster.local.",proto="tcp"\} 3/);
  });
});
