// The DNS wire side: UDP and TCP listeners on one address and port, packets decoded and encoded by
// dns-packet, answers from the Resolver. It behaves as CoreDNS's server does: a query it cannot parse
// gets FORMERR (when at least the header is there to answer), a response packet or a runt is dropped,
// an opcode other than QUERY gets NOTIMP, EDNS(0) is echoed and its buffer size honoured, a UDP answer
// that does not fit is truncated with TC set (the client retries over TCP), and TCP carries several
// length-prefixed queries per connection. Nothing a client sends can crash it.

import dgram from "node:dgram";
import net from "node:net";
import dnsPacket, { type Answer, type DecodedPacket, type OptAnswer, type Packet } from "dns-packet";
import { Counter, Histogram, type Registry } from "prom-client";
import type { Logger } from "../../client/index.ts";
import type { Rcode, Resolution, Resolver } from "./resolver.ts";

const RCODE_NUM: Record<Rcode | "BADVERS", number> = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16 };
const FLAG_QR = 1 << 15;
const FLAG_AA = 1 << 10;
const FLAG_TC = 1 << 9;
const FLAG_RD = 1 << 8;
const FLAG_RA = 1 << 7;
const FLAG_CD = 1 << 4;
/** Without EDNS a UDP answer is at most 512 bytes (RFC 1035 4.2.1). */
const UDP_MIN = 512;
/** What we advertise and the most we send over UDP, whatever a client offers. */
const UDP_MAX = 4096;
const TCP_MAX = 65535;
/** A TCP connection with no complete query for this long is closed (miekg/dns's idle timeout is 8 s). */
const TCP_IDLE_MS = 10_000;
/** Query types CoreDNS gives their own metrics label; the rest count as "other". */
const MONITORED_TYPES = new Set(["A", "AAAA", "NS", "PTR", "SOA", "CNAME", "MX", "TXT", "SRV", "NAPTR", "DS", "DNSKEY", "RRSIG", "NSEC", "NSEC3", "HINFO", "IXFR", "AXFR", "ANY"]);

export interface DnsMetrics {
  requests: Counter<"server" | "zone" | "proto" | "family" | "type">;
  responses: Counter<"server" | "zone" | "rcode">;
  duration: Histogram<"server" | "zone" | "type">;
  requestSize: Histogram<"server" | "zone" | "proto">;
  responseSize: Histogram<"server" | "zone" | "proto">;
}

/** CoreDNS's size buckets (plugin/metrics/vars: plugin.SizeBuckets). */
const SIZE_BUCKETS = [0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16e3, 32e3, 48e3, 64e3];

/** CoreDNS's metric names and labels (plugin/metrics/vars), registered on `registry`. */
export function dnsMetrics(registry: Registry): DnsMetrics {
  return {
    requests: new Counter({
      name: "coredns_dns_requests_total",
      help: "Counter of DNS requests made per zone, protocol and family.",
      labelNames: ["server", "zone", "proto", "family", "type"],
      registers: [registry],
    }),
    responses: new Counter({
      name: "coredns_dns_responses_total",
      help: "Counter of response status codes.",
      labelNames: ["server", "zone", "rcode"],
      registers: [registry],
    }),
    duration: new Histogram({
      name: "coredns_dns_request_duration_seconds",
      help: "Histogram of the time (in seconds) each request took per zone.",
      labelNames: ["server", "zone", "type"],
      // prometheus.ExponentialBuckets(0.00025, 2, 16), as CoreDNS.
      buckets: Array.from({ length: 16 }, (_, i) => 0.00025 * 2 ** i),
      registers: [registry],
    }),
    requestSize: new Histogram({
      name: "coredns_dns_request_size_bytes",
      help: "Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol.",
      labelNames: ["server", "zone", "proto"],
      buckets: SIZE_BUCKETS,
      registers: [registry],
    }),
    responseSize: new Histogram({
      name: "coredns_dns_response_size_bytes",
      help: "Size of the returned response in bytes.",
      labelNames: ["server", "zone", "proto"],
      buckets: SIZE_BUCKETS,
      registers: [registry],
    }),
  };
}

export interface DnsServerOptions {
  resolver: Resolver;
  log: Logger;
  metrics?: DnsMetrics;
}

type Proto = "udp" | "tcp";

/** The first 12 bytes, read by hand only to decide whether and how to answer a packet dns-packet refuses. */
function rawHeader(buf: Buffer): { id: number; flags: number } | undefined {
  if (buf.length < 12) return undefined;
  return { id: buf.readUInt16BE(0), flags: buf.readUInt16BE(2) };
}

/** A name we can echo and look up: printable ASCII labels of 1–63 bytes, at most 253 in all. */
function acceptableName(name: string): boolean {
  if (name === ".") return true;
  if (name.length > 253 || !/^[\x21-\x7e]+$/.test(name)) return false;
  return name.split(".").every((l) => l.length >= 1 && l.length <= 63);
}

export class DnsHandler {
  readonly server: string;

  constructor(
    private readonly opts: DnsServerOptions,
    server = "dns://:53",
  ) {
    this.server = server;
  }

  /**
   * One query in, the response out (undefined: send nothing). Never throws: a resolver failure is
   * SERVFAIL, a packet that does not decode FORMERR.
   */
  handle(msg: Buffer, proto: Proto, family: 4 | 6 = 4): Buffer | undefined {
    try {
      return this.answer(msg, proto, family);
    } catch (e) {
      // A bug, not a client's fault: log it and answer SERVFAIL rather than stop serving.
      this.opts.log.error({ err: e }, "dns handler failed");
      const h = rawHeader(msg);
      return h && !(h.flags & FLAG_QR) ? this.errorReply(h.id, h.flags, RCODE_NUM.SERVFAIL) : undefined;
    }
  }

  private answer(msg: Buffer, proto: Proto, family: 4 | 6): Buffer | undefined {
    const started = process.hrtime.bigint();
    const h = rawHeader(msg);
    if (!h || h.flags & FLAG_QR) return undefined; // a runt, or a response: never answer those
    const opcode = (h.flags >> 11) & 0xf;
    let req: DecodedPacket | undefined;
    try {
      req = dnsPacket.decode(msg);
    } catch {
      req = undefined;
    }
    const q = req?.questions?.[0];
    // dns-packet names a class it does not know "UNKNOWN_<n>" (outside its RecordClass type).
    const qclass = String(q?.class ?? "IN");
    const qtype = q ? (MONITORED_TYPES.has(q.type) ? q.type : "other") : "other";
    let res: Buffer;
    let zone = ".";
    let rcode: Rcode | "BADVERS";
    if (!req || req.questions?.length !== 1 || !q || !acceptableName(q.name) || qclass.startsWith("UNKNOWN_")) {
      rcode = opcode === 0 || !req ? "FORMERR" : "NOTIMP";
      res = this.errorReply(h.id, h.flags, RCODE_NUM[rcode]);
    } else if (opcode !== 0) {
      rcode = "NOTIMP";
      res = this.encode(req, { rcode, authoritative: false, zone, answers: [], authorities: [], additionals: [] }, proto);
    } else {
      const opts = (req.additionals ?? []).filter((a): a is OptAnswer => a.type === "OPT");
      const opt = opts[0];
      if (opts.length > 1) {
        rcode = "FORMERR";
        res = this.errorReply(h.id, h.flags, RCODE_NUM.FORMERR);
      } else if (opt && (opt.ednsVersion ?? 0) !== 0) {
        rcode = "BADVERS";
        res = this.encode(req, { rcode: "NOERROR", authoritative: false, zone, answers: [], authorities: [], additionals: [] }, proto, 1);
      } else {
        let r: Resolution;
        try {
          r = qclass === "IN" || qclass === "ANY" ? this.opts.resolver.resolve({ name: q.name, type: q.type }) : refused();
        } catch (e) {
          this.opts.log.error({ err: e, name: q.name, type: q.type }, "resolver failed");
          r = { rcode: "SERVFAIL", authoritative: false, zone: ".", answers: [], authorities: [], additionals: [] };
        }
        zone = r.zone;
        rcode = r.rcode;
        res = this.encode(req, r, proto);
      }
    }
    const m = this.opts.metrics;
    if (m) {
      m.requests.inc({ server: this.server, zone, proto, family: String(family === 6 ? 2 : 1), type: qtype });
      m.responses.inc({ server: this.server, zone, rcode });
      m.duration.observe({ server: this.server, zone, type: qtype }, Number(process.hrtime.bigint() - started) / 1e9);
      m.requestSize.observe({ server: this.server, zone, proto }, msg.length);
      m.responseSize.observe({ server: this.server, zone, proto }, res.length);
    }
    return res;
  }

  /** A header-only answer (no question echoed) for a query we could not read. */
  private errorReply(id: number, flags: number, rcode: number): Buffer {
    const b = Buffer.alloc(12);
    b.writeUInt16BE(id, 0);
    // QR, the request's opcode and RD, the rcode.
    b.writeUInt16BE(FLAG_QR | (flags & (0xf << 11)) | (flags & FLAG_RD) | (rcode & 0xf), 2);
    return b;
  }

  private encode(req: DecodedPacket, r: Resolution, proto: Proto, extendedRcode = 0): Buffer {
    const reqOpt = (req.additionals ?? []).find((a): a is OptAnswer => a.type === "OPT");
    let flags = (req.flags ?? 0) & (FLAG_RD | FLAG_CD);
    flags |= RCODE_NUM[r.rcode] & 0xf;
    if (r.authoritative) flags |= FLAG_AA | FLAG_RA;
    const optRecord: OptAnswer | undefined = reqOpt
      ? { name: ".", type: "OPT", udpPayloadSize: UDP_MAX, extendedRcode, ednsVersion: 0, flags: 0, flag_do: false, options: [] }
      : undefined;
    const limit =
      proto === "tcp" ? TCP_MAX : reqOpt ? Math.min(UDP_MAX, Math.max(UDP_MIN, reqOpt.udpPayloadSize ?? UDP_MIN)) : UDP_MIN;
    const q = req.questions![0]!;
    const packet = (answers: Answer[], authorities: Answer[], additionals: Answer[], tc: boolean): Packet => ({
      id: req.id,
      type: "response",
      flags: flags | (tc ? FLAG_TC : 0),
      questions: [{ name: q.name, type: q.type, class: q.class }],
      answers,
      authorities,
      additionals: optRecord ? [...additionals, optRecord] : additionals,
    });
    let p = packet(r.answers, r.authorities, r.additionals, false);
    if (dnsPacket.encodingLength(p) <= limit) return dnsPacket.encode(p);
    // Too big: drop ADDITIONAL first (no TC: the answer is complete), then answers from the end (TC).
    p = packet(r.answers, r.authorities, [], false);
    if (dnsPacket.encodingLength(p) <= limit) return dnsPacket.encode(p);
    let answers = r.answers.slice();
    while (answers.length > 0) {
      answers = answers.slice(0, -1);
      p = packet(answers, [], [], true);
      if (dnsPacket.encodingLength(p) <= limit) break;
    }
    return dnsPacket.encode(p);
  }
}

function refused(): Resolution {
  return { rcode: "REFUSED", authoritative: false, zone: ".", answers: [], authorities: [], additionals: [] };
}

/** Listening UDP and TCP sockets on one address and port, answering through a DnsHandler. */
export class DnsServer {
  private udp?: dgram.Socket;
  private tcp?: net.Server;
  private readonly conns = new Set<net.Socket>();
  private handler?: DnsHandler;
  port = 0;

  constructor(private readonly opts: DnsServerOptions) {}

  /** Binds UDP and TCP on host:port (port 0: one free for both). Rejects on EADDRINUSE and the like. */
  async listen(host: string, port: number): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      const udp = dgram.createSocket({ type: "udp4" });
      const p = await new Promise<number>((resolve, reject) => {
        udp.once("error", reject);
        udp.bind(port, host, () => {
          udp.off("error", reject);
          resolve(udp.address().port);
        });
      });
      const tcp = net.createServer({ pauseOnConnect: false });
      try {
        await new Promise<void>((resolve, reject) => {
          tcp.once("error", reject);
          tcp.listen({ port: p, host, exclusive: true }, () => {
            tcp.off("error", reject);
            resolve();
          });
        });
      } catch (e) {
        udp.close();
        // Port 0 chose a UDP port whose TCP twin is taken: choose again.
        if (port === 0 && attempt < 20 && (e as NodeJS.ErrnoException).code === "EADDRINUSE") continue;
        throw e;
      }
      this.udp = udp;
      this.tcp = tcp;
      this.port = p;
      this.handler = new DnsHandler(this.opts, `dns://${host}:${p}`);
      this.serveUDP(udp);
      tcp.on("connection", (s) => this.serveTCP(s));
      tcp.on("error", (e) => this.opts.log.error({ err: e }, "dns tcp listener error"));
      return p;
    }
  }

  private serveUDP(udp: dgram.Socket): void {
    udp.on("error", (e) => this.opts.log.error({ err: e }, "dns udp socket error"));
    udp.on("message", (msg, rinfo) => {
      const res = this.handler!.handle(msg, "udp", rinfo.family === "IPv6" ? 6 : 4);
      if (res) udp.send(res, rinfo.port, rinfo.address, (err) => err && this.opts.log.debug({ err }, "dns udp send failed"));
    });
  }

  private serveTCP(s: net.Socket): void {
    this.conns.add(s);
    s.setNoDelay(true);
    s.setTimeout(TCP_IDLE_MS, () => s.destroy());
    s.on("error", () => s.destroy());
    s.on("close", () => this.conns.delete(s));
    let buf: Buffer = Buffer.alloc(0);
    s.on("data", (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (len === 0) {
          s.destroy();
          return;
        }
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        const res = this.handler!.handle(Buffer.from(msg), "tcp", s.remoteFamily === "IPv6" ? 6 : 4);
        if (res) {
          const framed = Buffer.alloc(2 + res.length);
          framed.writeUInt16BE(res.length, 0);
          res.copy(framed, 2);
          s.write(framed);
        }
      }
    });
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.destroy();
    await Promise.all([
      new Promise<void>((r) => (this.udp ? this.udp.close(() => r()) : r())),
      new Promise<void>((r) => (this.tcp ? this.tcp.close(() => r()) : r())),
    ]);
  }
}
