// The forwarding path: choosing a backend for a connection (round-robin per Service port, sticky per
// client IP with sessionAffinity ClientIP, as the userspace proxier's LoadBalancerRR did), dialling it
// with a short timeout and trying the next on refusal, then piping both ways; and UDP relaying with
// per-client flows. It reads only the current Route value, never the API.

import dgram from "node:dgram";
import net from "node:net";
import type { Backend } from "../endpoints.ts";
import type { Route } from "./rules.ts";

export type ErrorReason = "no_endpoints" | "refused" | "timeout" | "reset";

/** What the forwarders report (the metrics); every method is optional-free so fakes stay honest. */
export interface ForwardObserver {
  connection(route: Route): void;
  bytes(route: Route, direction: "in" | "out", n: number): void;
  error(route: Route, reason: ErrorReason): void;
  active(route: Route, delta: number): void;
}

export const noopObserver: ForwardObserver = { connection() {}, bytes() {}, error() {}, active() {} };

function backendKey(b: Backend): string {
  return `${b.ip}:${b.port}`;
}

/**
 * Round-robin and affinity state per Route id; it outlives syncs (a new backend list keeps the cursor
 * and the stickiness of clients whose backend is still there).
 */
export class Balancer {
  private readonly cursors = new Map<string, number>();
  private readonly affinity = new Map<string, Map<string, { backend: string; lastUsed: number }>>();

  constructor(private readonly now: () => number = Date.now) {}

  /** The order to try backends in for one connection: the sticky one first, then round-robin from the cursor. */
  candidates(route: Route, clientIP: string, backends: readonly Backend[]): Backend[] {
    if (backends.length === 0) return [];
    const start = (this.cursors.get(route.id) ?? 0) % backends.length;
    this.cursors.set(route.id, start + 1);
    const order = [...backends.slice(start), ...backends.slice(0, start)];
    if (route.affinityTimeoutMs > 0) {
      const s = this.affinity.get(route.id)?.get(clientIP);
      if (s && this.now() - s.lastUsed <= route.affinityTimeoutMs) {
        const i = order.findIndex((b) => backendKey(b) === s.backend);
        if (i > 0) order.unshift(...order.splice(i, 1));
      }
    }
    return order;
  }

  /** A connection of `clientIP` reached `backend`: stick to it (with affinity). */
  connected(route: Route, clientIP: string, backend: Backend): void {
    if (route.affinityTimeoutMs <= 0) return;
    let m = this.affinity.get(route.id);
    if (!m) this.affinity.set(route.id, (m = new Map()));
    m.set(clientIP, { backend: backendKey(backend), lastUsed: this.now() });
  }

  /** Drops state of routes no longer served and expired affinities (called on each sync). */
  prune(live: ReadonlySet<string>): void {
    for (const id of this.cursors.keys()) if (!live.has(id)) this.cursors.delete(id);
    const now = this.now();
    for (const [id, m] of this.affinity) {
      if (!live.has(id)) {
        this.affinity.delete(id);
        continue;
      }
      for (const [ip, s] of m) if (now - s.lastUsed > 10800_000 * 2) m.delete(ip);
    }
  }
}

export interface TCPForwardOptions {
  route: Route;
  backends: readonly Backend[];
  balancer: Balancer;
  observer: ForwardObserver;
  /** How long a backend may take to accept (default 1 s), then the next one is tried. */
  connectTimeoutMs?: number;
}

function reasonOf(e: NodeJS.ErrnoException | undefined): ErrorReason {
  if (!e) return "timeout";
  if (e.code === "ECONNREFUSED") return "refused";
  if (e.code === "ETIMEDOUT" || e.code === "EHOSTUNREACH" || e.code === "ENETUNREACH") return "timeout";
  return "reset";
}

/** Dials one backend: resolves with the socket, or with the failure reason. Never rejects. */
function dial(b: Backend, timeoutMs: number): Promise<net.Socket | ErrorReason> {
  return new Promise((resolve) => {
    const s = net.connect({ host: b.ip, port: b.port, allowHalfOpen: true });
    const t = setTimeout(() => {
      s.destroy();
      resolve("timeout");
    }, timeoutMs);
    s.once("connect", () => {
      clearTimeout(t);
      s.removeAllListeners("error");
      resolve(s);
    });
    s.once("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(t);
      s.destroy();
      resolve(reasonOf(e));
    });
  });
}

/**
 * Forwards one accepted client connection: tries each candidate backend at most once, then pipes
 * both ways (backpressure by pipe; a half-close travels across). With no backend left the client is
 * closed. Never throws; socket errors end both sides.
 */
export async function forwardTCP(client: net.Socket, o: TCPForwardOptions): Promise<void> {
  const clientIP = client.remoteAddress ?? "";
  client.on("error", () => client.destroy());
  client.pause();
  o.observer.connection(o.route);
  const order = o.balancer.candidates(o.route, clientIP, o.backends);
  if (order.length === 0) {
    o.observer.error(o.route, "no_endpoints");
    client.destroy();
    return;
  }
  let upstream: net.Socket | undefined;
  for (const b of order) {
    if (client.destroyed) return;
    const r = await dial(b, o.connectTimeoutMs ?? 1000);
    if (typeof r !== "string") {
      upstream = r;
      o.balancer.connected(o.route, clientIP, b);
      break;
    }
    o.observer.error(o.route, r);
  }
  if (!upstream) {
    client.destroy();
    return;
  }
  if (client.destroyed) {
    upstream.destroy();
    return;
  }
  const up = upstream;
  o.observer.active(o.route, 1);
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    o.observer.active(o.route, -1);
    o.observer.bytes(o.route, "in", client.bytesRead);
    o.observer.bytes(o.route, "out", client.bytesWritten);
  };
  const fail = (e?: Error) => {
    if (e) o.observer.error(o.route, "reset");
    client.destroy();
    up.destroy();
  };
  up.on("error", fail);
  client.removeAllListeners("error");
  client.on("error", fail);
  // Both sockets allow half-open: pipe ends the other side when one side ends, so a FIN travels
  // across and the other direction keeps flowing until it ends too.
  let closed = 0;
  const onClose = () => {
    if (++closed === 2) finish();
  };
  client.once("close", onClose);
  up.once("close", onClose);
  client.pipe(up);
  up.pipe(client);
  client.resume();
}

export interface UDPRelayOptions {
  /** The listening socket (bound to the service address): replies go out from it. */
  socket: dgram.Socket;
  /** The current route and backends for a client (read per new flow). */
  routeFor(clientIP: string): { route: Route; backends: readonly Backend[] } | undefined;
  balancer: Balancer;
  observer: ForwardObserver;
  /** Idle time after which a flow is forgotten (default 30 s, conntrack's UDP stream class is 120 s). */
  idleTimeoutMs?: number;
  /** At most this many flows; the least recently used goes first (default 4096). */
  maxFlows?: number;
}

interface Flow {
  socket: dgram.Socket;
  route: Route;
  /** "ip:port" of the backend the flow goes to. */
  backend: string;
  timer: NodeJS.Timeout;
}

/**
 * UDP forwarding: each client ip:port gets a flow (its own socket connected to one backend); the
 * backend's replies go back from the service address. Flows expire after idling.
 */
export class UDPRelay {
  private readonly flows = new Map<string, Flow>();

  constructor(private readonly o: UDPRelayOptions) {
    o.socket.on("message", (msg, rinfo) => this.onMessage(msg, rinfo));
  }

  get size(): number {
    return this.flows.size;
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const key = `${rinfo.address}:${rinfo.port}`;
    let flow = this.flows.get(key);
    if (flow) {
      this.flows.delete(key); // re-insert: the map's order is least recently used first
      this.flows.set(key, flow);
    } else {
      const r = this.o.routeFor(rinfo.address);
      if (!r) return;
      const [b] = this.o.balancer.candidates(r.route, rinfo.address, r.backends);
      this.o.observer.connection(r.route);
      if (!b) {
        this.o.observer.error(r.route, "no_endpoints");
        return;
      }
      this.o.balancer.connected(r.route, rinfo.address, b);
      const max = this.o.maxFlows ?? 4096;
      while (this.flows.size >= max) this.drop(this.flows.keys().next().value!);
      const s = dgram.createSocket("udp4");
      const route = r.route;
      flow = { socket: s, route, backend: backendKey(b), timer: setTimeout(() => this.drop(key), this.o.idleTimeoutMs ?? 30_000) };
      this.flows.set(key, flow);
      this.o.observer.active(route, 1);
      s.on("message", (reply) => {
        this.touch(key);
        this.o.observer.bytes(route, "out", reply.length);
        this.o.socket.send(reply, rinfo.port, rinfo.address, () => {});
      });
      s.on("error", (e: NodeJS.ErrnoException) => {
        this.o.observer.error(route, reasonOf(e));
        this.drop(key);
      });
      s.connect(b.port, b.ip);
    }
    const f = flow;
    this.touch(key);
    this.o.observer.bytes(f.route, "in", msg.length);
    const send = () => f.socket.send(msg, (e) => e && this.drop(key));
    // A new flow's socket connects asynchronously; send once it has.
    try {
      f.socket.remoteAddress();
      send();
    } catch {
      f.socket.once("connect", send);
    }
  }

  /**
   * Forgets flows to backends no longer in `live` (ip:port), so the next datagram picks a current
   * one — what kube-proxy's conntrack cleanup does for UDP when an endpoint goes.
   */
  retain(live: ReadonlySet<string>): void {
    for (const [k, f] of [...this.flows]) if (!live.has(f.backend)) this.drop(k);
  }

  private touch(key: string): void {
    const f = this.flows.get(key);
    if (!f) return;
    f.timer.refresh();
  }

  private drop(key: string): void {
    const f = this.flows.get(key);
    if (!f) return;
    this.flows.delete(key);
    clearTimeout(f.timer);
    this.o.observer.active(f.route, -1);
    try {
      f.socket.close();
    } catch {
      // already closed
    }
  }

  close(): void {
    for (const k of [...this.flows.keys()]) this.drop(k);
  }
}
