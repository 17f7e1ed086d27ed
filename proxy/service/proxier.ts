// The service proxy's control loop, shaped like kube-proxy's: informer handlers only feed the
// ServiceChangeTracker and EndpointsChangeTracker; a BoundedFrequencyRunner calls syncProxyRules at
// most every minSyncPeriod and at least every syncPeriod; syncProxyRules computes the whole desired
// state (rules.ts) and diffs it against the listeners it has, opening, re-routing and closing them.
// A listener whose address is taken stands by and retries every second (zone proxies on one host
// take over from each other that way); real conflicts and privileged ports become Events.

import { execFile } from "node:child_process";
import dgram from "node:dgram";
import http from "node:http";
import net from "node:net";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { EndpointSlice, IPv4CIDR, Node, Service } from "../../api/index.ts";
import type { EventRecorder, Lister, Logger } from "../../client/index.ts";
import { INDEX_BY_SERVICE } from "../endpoints.ts";
import { Balancer, UDPRelay, forwardTCP, type ErrorReason, type ForwardObserver } from "./forward.ts";
import { holderOf, type Holder } from "./holder.ts";
import { backendsFor, computeProxyState, type ListenerSpec, type ProxyState, type Route } from "./rules.ts";

/** Accumulates which objects changed since the last sync (upstream's change trackers, by name). */
export class ChangeTracker {
  private pending = new Set<string>();
  constructor(private readonly onChange: () => void) {}
  update(key: string): void {
    this.pending.add(key);
    this.onChange();
  }
  /** The keys changed since the previous drain. */
  drain(): Set<string> {
    const p = this.pending;
    this.pending = new Set();
    return p;
  }
}

/**
 * Runs `fn` when asked, but never more often than every `minIntervalMs`, and at least every
 * `maxIntervalMs` (k8s.io/utils/async.BoundedFrequencyRunner). One run at a time.
 */
export class BoundedFrequencyRunner {
  private requested = false;
  private wake?: () => void;
  private last = -Infinity;

  constructor(
    private readonly fn: () => Promise<void>,
    private readonly minIntervalMs: number,
    private readonly maxIntervalMs: number,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  run(): void {
    this.requested = true;
    this.wake?.();
  }

  async loop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const now = this.now();
      const due = this.requested ? this.last + this.minIntervalMs : this.last + this.maxIntervalMs;
      if (now < due) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(done, due - now);
          function done() {
            clearTimeout(t);
            signal.removeEventListener("abort", done);
            resolve();
          }
          this.wake = done;
          signal.addEventListener("abort", done, { once: true });
        });
        this.wake = undefined;
        continue;
      }
      this.requested = false;
      this.last = now;
      try {
        await this.fn();
      } catch (e) {
        this.log.error({ err: e }, "sync failed; retrying at the next period");
      }
    }
  }
}

/** The proxy's metrics: upstream's sync metrics and kubelab's per-Service forwarding counters. */
export class ProxyMetrics implements ForwardObserver {
  readonly syncDuration: Histogram;
  readonly lastSync: Gauge;
  readonly connections: Counter;
  readonly bytesTotal: Counter;
  readonly errors: Counter;
  readonly activeConnections: Gauge;

  constructor(registry: Registry) {
    this.syncDuration = new Histogram({
      name: "kubeproxy_sync_proxy_rules_duration_seconds",
      help: "SyncProxyRules latency in seconds",
      buckets: Array.from({ length: 15 }, (_, i) => 0.001 * 2 ** i),
      registers: [registry],
    });
    this.lastSync = new Gauge({ name: "kubeproxy_sync_proxy_rules_last_timestamp_seconds", help: "The last time proxy rules were successfully synced", registers: [registry] });
    this.connections = new Counter({ name: "kubelab_proxy_connections_total", help: "Connections (UDP: flows) accepted per Service port", labelNames: ["namespace", "service", "port"], registers: [registry] });
    this.bytesTotal = new Counter({ name: "kubelab_proxy_bytes_total", help: "Bytes forwarded per Service: in = client to backend, out = backend to client", labelNames: ["namespace", "service", "direction"], registers: [registry] });
    this.errors = new Counter({ name: "kubelab_proxy_errors_total", help: "Forwarding failures per Service by reason (no_endpoints, refused, timeout, reset)", labelNames: ["namespace", "service", "reason"], registers: [registry] });
    this.activeConnections = new Gauge({ name: "kubelab_proxy_active_connections", help: "Connections (UDP: flows) being forwarded now", labelNames: ["namespace", "service"], registers: [registry] });
  }

  connection(r: Route): void {
    this.connections.inc({ namespace: r.namespace, service: r.service, port: r.portName });
  }
  bytes(r: Route, direction: "in" | "out", n: number): void {
    if (n > 0) this.bytesTotal.inc({ namespace: r.namespace, service: r.service, direction }, n);
  }
  error(r: Route, reason: ErrorReason): void {
    this.errors.inc({ namespace: r.namespace, service: r.service, reason });
  }
  active(r: Route, delta: number): void {
    this.activeConnections.inc({ namespace: r.namespace, service: r.service }, delta);
  }
}

export interface ProxierOptions {
  services: Lister<Service>;
  /** Indexed by INDEX_BY_SERVICE (indexSliceByService). */
  endpointSlices: Lister<EndpointSlice>;
  nodes: Lister<Node>;
  zone?: string;
  nodePortAddresses?: readonly IPv4CIDR[];
  /** Put each non-loopback ClusterIP on this interface as a /32 before listening on it. */
  serviceInterface?: string;
  recorder: EventRecorder;
  log: Logger;
  metrics: ProxyMetrics;
  minSyncPeriodMs?: number;
  syncPeriodMs?: number;
  /** How often a listener whose address is taken tries again (default 1 s). */
  standbyRetryMs?: number;
  /** Runs `ip` (tests replace it). */
  ip?: (args: string[]) => Promise<void>;
  /** Who holds a taken address (tests replace it). */
  holder?: (ip: string, port: number, protocol: "TCP" | "UDP") => Promise<Holder>;
}

function runIP(args: string[]): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile("ip", args, { timeout: 10_000 }, (e, _out, stderr) => (e ? reject(new Error(`ip ${args.join(" ")}: ${stderr.trim() || e.message}`)) : resolve())),
  );
}

function isLoopback(ip: string): boolean {
  return ip.startsWith("127.");
}

type ListenerState = "binding" | "listening" | "standby" | "closed";

/** One (ip, port, protocol) the proxy serves; its spec (and so its route) is swapped by each sync. */
class ManagedListener {
  state: ListenerState = "binding";
  private server?: net.Server | dgram.Socket;
  private relay?: UDPRelay;
  private timer?: NodeJS.Timeout;
  private reported = new Set<string>();
  private holderChecked = false;

  constructor(
    private current: ListenerSpec,
    private readonly proxier: Proxier,
  ) {}

  get spec(): ListenerSpec {
    return this.current;
  }

  /** A new sync's spec: new connections take the new route; UDP flows to vanished backends are dropped. */
  set spec(s: ListenerSpec) {
    this.current = s;
    const r = s.route;
    if (this.relay && r) {
      const live = new Set([...r.backends, ...[...(r.byClientNode?.values() ?? [])].flat()].map((b) => `${b.ip}:${b.port}`));
      this.relay.retain(live);
    }
  }

  start(): void {
    if (this.state === "closed") return;
    this.state = "binding";
    if (this.spec.protocol === "UDP") this.bindUDP();
    else this.listenTCP();
  }

  private listenTCP(): void {
    const server =
      this.spec.kind === "HealthCheck"
        ? http.createServer((req, res) => this.answerHealth(res))
        : net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => this.accept(socket));
    this.server = server;
    server.on("error", (e: NodeJS.ErrnoException) => this.failed(e));
    server.listen({ host: this.spec.ip, port: this.spec.port, exclusive: true }, () => this.listening());
  }

  private bindUDP(): void {
    const socket = dgram.createSocket({ type: "udp4" });
    this.server = socket;
    socket.once("error", (e: NodeJS.ErrnoException) => this.failed(e));
    socket.bind({ address: this.spec.ip, port: this.spec.port, exclusive: true }, () => {
      socket.removeAllListeners("error");
      socket.on("error", (e) => this.proxier.log.warn({ err: e, listener: this.spec.key }, "UDP socket error"));
      this.relay = new UDPRelay({
        socket,
        routeFor: (clientIP) => {
          const route = this.spec.route;
          return route ? { route, backends: backendsFor(route, clientIP, this.proxier.state.clients) } : undefined;
        },
        balancer: this.proxier.balancer,
        observer: this.proxier.metrics,
      });
      this.listening();
    });
  }

  private listening(): void {
    if (this.state === "closed") {
      this.closeServer();
      return;
    }
    const was = this.state;
    this.state = "listening";
    this.reported.clear();
    this.holderChecked = false;
    this.proxier.log.info({ listener: this.spec.key, kind: this.spec.kind, service: this.spec.service, took: was === "standby" }, "listening");
  }

  private failed(e: NodeJS.ErrnoException): void {
    this.closeServer();
    if (this.state === "closed") return;
    this.state = "standby";
    const where = `${this.spec.ip}:${this.spec.port}`;
    let retryMs = this.proxier.standbyRetryMs;
    if (e.code === "EADDRINUSE") {
      // Expected while a peer proxy holds it; an Event only when something else does.
      if (!this.holderChecked) {
        this.holderChecked = true;
        void this.proxier.holder(this.spec.ip, this.spec.port, this.spec.protocol).then((h) => {
          if (h === "other" && this.state === "standby") this.report("EADDRINUSE", `cannot listen on ${where}/${this.spec.protocol}: address already in use by another process`);
        });
      }
    } else if (e.code === "EACCES") {
      this.report("EACCES", `cannot listen on ${where}: ports below 1024 need root or sysctl net.ipv4.ip_unprivileged_port_start`);
      retryMs = Math.max(retryMs, 5000);
    } else if (e.code === "EADDRNOTAVAIL") {
      // A ClusterIP outside loopback without --service-interface, or one being added: log once.
      if (!this.reported.has("EADDRNOTAVAIL")) {
        this.reported.add("EADDRNOTAVAIL");
        this.proxier.log.warn({ listener: this.spec.key, service: this.spec.service }, `${where} is not an address of this host (yet); retrying every second`);
      }
    } else {
      this.report(e.code ?? "error", `cannot listen on ${where}/${this.spec.protocol}: ${e.message}`);
      retryMs = Math.max(retryMs, 5000);
    }
    this.timer = setTimeout(() => this.start(), retryMs);
  }

  /** One Warning Event per distinct failure until the listener is up. */
  private report(code: string, message: string): void {
    if (this.reported.has(code)) return;
    this.reported.add(code);
    this.proxier.log.warn({ listener: this.spec.key, service: this.spec.service }, message);
    this.proxier.warn(this.spec.service, this.spec.kind === "HealthCheck" ? "FailedToStartServiceHealthcheck" : "FailedToStartServiceListener", message);
  }

  private accept(socket: net.Socket): void {
    const route = this.spec.route;
    if (!route) {
      socket.destroy();
      return;
    }
    const backends = backendsFor(route, socket.remoteAddress ?? "", this.proxier.state.clients);
    void forwardTCP(socket, { route, backends, balancer: this.proxier.balancer, observer: this.proxier.metrics }).catch((e: unknown) => {
      this.proxier.log.warn({ err: e, listener: this.spec.key }, "forwarding failed");
      socket.destroy();
    });
  }

  /** Upstream's service health check answer (pkg/proxy/healthcheck/service_health.go). */
  private answerHealth(res: http.ServerResponse): void {
    const h = this.spec.health ?? { namespace: "", name: "", localEndpoints: 0 };
    const body = JSON.stringify({ service: { namespace: h.namespace, name: h.name }, localEndpoints: h.localEndpoints, serviceProxyHealthy: true }, null, 2);
    res.writeHead(h.localEndpoints > 0 ? 200 : 503, {
      "Content-Type": "application/json",
      "X-Content-Type-Options": "nosniff",
      "X-Load-Balancing-Endpoint-Weight": String(h.localEndpoints),
    });
    res.end(body);
  }

  private closeServer(): void {
    this.relay?.close();
    this.relay = undefined;
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    try {
      if (s instanceof dgram.Socket) s.close();
      else s.close();
    } catch {
      // never bound
    }
  }

  /** Stops accepting (new connections are refused); connections in flight carry on. */
  close(): void {
    this.state = "closed";
    clearTimeout(this.timer);
    this.closeServer();
  }
}

export class Proxier {
  readonly serviceChanges: ChangeTracker;
  readonly endpointsChanges: ChangeTracker;
  readonly runner: BoundedFrequencyRunner;
  readonly balancer = new Balancer();
  readonly log: Logger;
  readonly metrics: ProxyMetrics;
  readonly standbyRetryMs: number;
  readonly holder: (ip: string, port: number, protocol: "TCP" | "UDP") => Promise<Holder>;
  state: ProxyState;
  private readonly listeners = new Map<string, ManagedListener>();
  /** Addresses this proxy put on --service-interface (removed when their Service goes). */
  private readonly addedAddresses = new Set<string>();
  private synced = false;
  private readonly ip: (args: string[]) => Promise<void>;

  constructor(private readonly o: ProxierOptions) {
    this.log = o.log;
    this.metrics = o.metrics;
    this.standbyRetryMs = o.standbyRetryMs ?? 1000;
    this.holder = o.holder ?? holderOf;
    this.ip = o.ip ?? runIP;
    this.runner = new BoundedFrequencyRunner(() => this.syncProxyRules(), o.minSyncPeriodMs ?? 250, o.syncPeriodMs ?? 30_000, o.log);
    this.serviceChanges = new ChangeTracker(() => this.runner.run());
    this.endpointsChanges = new ChangeTracker(() => this.runner.run());
    this.state = computeProxyState({ services: [], slicesFor: () => [], nodes: [] });
  }

  /** Informers synced and the first sync applied (upstream's healthz: rules programmed). */
  ready(): boolean {
    return this.synced;
  }

  /** One listener's view for tests and status: key → state. */
  listenerStates(): Map<string, ListenerState> {
    return new Map([...this.listeners].map(([k, l]) => [k, l.state]));
  }

  /** A Warning Event on the Service (upstream's reason for health checks: FailedToStartServiceHealthcheck). */
  warn(serviceKey: string, reason: string, message: string): void {
    const svc = this.o.services.get(serviceKey);
    if (!svc) return;
    this.o.recorder.event({ ...svc, apiVersion: "v1", kind: "Service" }, "Warning", reason, message);
  }

  /** Whole-state sync: desired listeners from the caches, diffed against the current ones. */
  async syncProxyRules(): Promise<void> {
    const start = performance.now();
    const svcChanged = this.serviceChanges.drain().size;
    const epChanged = this.endpointsChanges.drain().size;
    const state = computeProxyState({
      services: this.o.services.list(),
      slicesFor: (key) => this.o.endpointSlices.byIndex(INDEX_BY_SERVICE, key),
      nodes: this.o.nodes.list(),
      zone: this.o.zone,
      nodePortAddresses: this.o.nodePortAddresses,
    });
    // ClusterIPs onto the service interface before anything listens on them.
    const wanted = this.o.serviceInterface ? new Set([...state.clusterIPs].filter((ip) => !isLoopback(ip))) : new Set<string>();
    for (const ip of wanted) {
      if (this.addedAddresses.has(ip)) continue;
      try {
        await this.ip(["addr", "add", `${ip}/32`, "dev", this.o.serviceInterface!]);
        this.addedAddresses.add(ip);
      } catch (e) {
        if (/File exists|already assigned/.test((e as Error).message)) this.addedAddresses.add(ip);
        else this.log.warn({ err: e, ip }, "cannot add the ClusterIP to the service interface");
      }
    }
    this.state = state;
    for (const [key, l] of this.listeners) {
      if (!state.listeners.has(key)) {
        l.close();
        this.listeners.delete(key);
      }
    }
    for (const [key, spec] of state.listeners) {
      const l = this.listeners.get(key);
      if (l) l.spec = spec;
      else {
        const n = new ManagedListener(spec, this);
        this.listeners.set(key, n);
        n.start();
      }
    }
    for (const ip of [...this.addedAddresses]) {
      if (wanted.has(ip)) continue;
      try {
        await this.ip(["addr", "del", `${ip}/32`, "dev", this.o.serviceInterface!]);
      } catch (e) {
        if (!/Cannot assign|not found|No such/i.test((e as Error).message)) this.log.warn({ err: e, ip }, "cannot remove the ClusterIP from the service interface");
      }
      this.addedAddresses.delete(ip);
    }
    this.balancer.prune(new Set([...state.listeners.values()].flatMap((l) => (l.route ? [l.route.id] : []))));
    const took = (performance.now() - start) / 1000;
    this.metrics.syncDuration.observe(took);
    this.metrics.lastSync.set(Date.now() / 1000);
    if (!this.synced) this.log.info({ listeners: state.listeners.size }, "first sync done");
    this.log.debug({ listeners: state.listeners.size, servicesChanged: svcChanged, endpointsChanged: epChanged, seconds: took }, "synced proxy rules");
    this.synced = true;
  }

  /**
   * Closes every listener. The addresses stay on the service interface: a peer proxy on this host
   * may be serving them (`up` deletes the interface itself).
   */
  close(): void {
    for (const l of this.listeners.values()) l.close();
    this.listeners.clear();
  }
}
