// The simulated cloud's LoadBalancer (what a cloud provider's service controller and its NLB do):
// for each Service of type LoadBalancer of our class, a TCP listener on <bind>:<port>, forwarding
// like an NLB in instance mode to the Service's NodePort on Ready nodes (only nodes whose
// healthCheckNodePort answers 200 with externalTrafficPolicy Local), or, when
// allocateLoadBalancerNodePorts is false, straight to the endpoints (IP mode). The address is
// written to status.loadBalancer; listeners are released when the Service goes or changes type.

import http from "node:http";
import net from "node:net";
import type { EndpointSlice, Node, Service, ServicePort } from "../../api/index.ts";
import type { Client, Context, EventRecorder, Informer, Logger, SharedInformerFactory } from "../../client/index.ts";
import { isNotFound } from "../../client/index.ts";
import { INDEX_BY_SERVICE, indexSliceByService, usableBackends } from "../endpoints.ts";

/** spec.loadBalancerClass this implementation answers to (unset also counts, as the default cloud's). */
export const LOAD_BALANCER_CLASS = "kubelab.io/loadbalancer";

export interface Target {
  ip: string;
  port: number;
}

export interface LoadBalancerOptions {
  client: Client;
  factory: SharedInformerFactory;
  recorder: EventRecorder;
  log: Logger;
  /** Where listeners bind; also status.loadBalancer.ingress[].ip. */
  bind: string;
  /** How often externalTrafficPolicy Local health checks are polled (default 3 s). */
  healthCheckPeriodMs?: number;
  minSyncPeriodMs?: number;
}

interface Listener {
  server: net.Server;
  /** The Service port (the one asked for). */
  port: number;
  /** The port actually listened on (another one when `port` was taken). */
  actual: number;
  nodePort?: number;
  name?: string;
}

interface Balancer {
  key: string;
  uid: string;
  listeners: Map<number, Listener>;
  /** Current targets by Service port, swapped whole by sync. */
  targets: Map<number, Target[]>;
  cursor: number;
}

/** Whether the LoadBalancer implementation serves this Service. */
export function isOurLoadBalancer(svc: Readonly<Service>): boolean {
  if (svc.spec?.type !== "LoadBalancer" || svc.metadata.deletionTimestamp) return false;
  const cls = svc.spec.loadBalancerClass;
  return cls === undefined || cls === "" || cls === LOAD_BALANCER_CLASS;
}

function nodeReady(n: Readonly<Node>): boolean {
  if (n.metadata.labels?.["node.kubernetes.io/exclude-from-external-load-balancers"] !== undefined) return false;
  return (n.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
}

function internalIP(n: Readonly<Node>): string | undefined {
  return n.status?.addresses?.find((a) => a.type === "InternalIP")?.address;
}

export class LoadBalancerController {
  private readonly services: Informer<Service>;
  private readonly nodes: Informer<Node>;
  private readonly slices: Informer<EndpointSlice>;
  private readonly balancers = new Map<string, Balancer>();
  /** Node IP:healthCheckNodePort → the last probe answered 200. */
  private readonly health = new Map<string, boolean>();
  private timer: NodeJS.Timeout | undefined;
  private syncing = false;
  private again = false;
  private started = false;
  private stopped = false;

  constructor(private readonly o: LoadBalancerOptions) {
    this.services = o.factory.informer<Service>("", "services");
    this.nodes = o.factory.informer<Node>("", "nodes");
    this.slices = o.factory.informer<EndpointSlice>("discovery.k8s.io", "endpointslices");
    this.slices.addIndexer(INDEX_BY_SERVICE, indexSliceByService);
    const handler = { onAdd: () => this.requestSync(), onUpdate: () => this.requestSync(), onDelete: () => this.requestSync() };
    for (const inf of [this.services, this.nodes, this.slices] as Informer[]) inf.addEventHandler(handler);
  }

  async run(ctx: Context): Promise<void> {
    await Promise.all([this.services, this.nodes, this.slices].map((i) => (i as Informer).waitForSync(ctx.signal)));
    if (ctx.signal.aborted) return;
    this.started = true;
    await this.sync();
    const poll = setInterval(() => void this.pollHealth(), this.o.healthCheckPeriodMs ?? 3000);
    const resync = setInterval(() => this.requestSync(), 30_000);
    await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
    this.stopped = true;
    clearInterval(poll);
    clearInterval(resync);
    if (this.timer) clearTimeout(this.timer);
    for (const b of this.balancers.values()) for (const l of b.listeners.values()) l.server.close();
    this.balancers.clear();
  }

  /** The listeners of a Service, "namespace/name" → [{port, actual}] (tests and status). */
  listeners(key: string): { port: number; actual: number }[] {
    return [...(this.balancers.get(key)?.listeners.values() ?? [])].map((l) => ({ port: l.port, actual: l.actual }));
  }

  requestSync(): void {
    if (!this.started || this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.sync();
    }, this.o.minSyncPeriodMs ?? 20);
  }

  /** Whole-state reconcile: listeners opened, closed and retargeted; status written. Serialised. */
  async sync(): Promise<void> {
    if (this.syncing) {
      this.again = true;
      return;
    }
    this.syncing = true;
    try {
      do {
        this.again = false;
        await this.syncOnce();
      } while (this.again && !this.stopped);
    } catch (e) {
      this.o.log.error({ err: e }, "load balancer sync failed");
    } finally {
      this.syncing = false;
    }
  }

  private async syncOnce(): Promise<void> {
    const want = new Map<string, Readonly<Service>>();
    for (const s of this.services.lister.list()) if (isOurLoadBalancer(s)) want.set(`${s.metadata.namespace}/${s.metadata.name}`, s);
    // Released: deleted, no longer a LoadBalancer, or re-created under another uid.
    for (const [key, b] of this.balancers) {
      const s = want.get(key);
      if (s && s.metadata.uid === b.uid) continue;
      for (const l of b.listeners.values()) l.server.close();
      this.balancers.delete(key);
      this.o.log.info({ service: key }, "released load balancer");
      const cur = this.services.lister.get(key);
      if (cur && !s && cur.metadata.uid === b.uid) await this.writeStatus(cur, undefined);
    }
    for (const [key, svc] of want) {
      let b = this.balancers.get(key);
      if (!b) {
        b = { key, uid: svc.metadata.uid ?? "", listeners: new Map(), targets: new Map(), cursor: 0 };
        this.balancers.set(key, b);
        this.o.recorder.event(svc, "Normal", "EnsuringLoadBalancer", "Ensuring load balancer");
      }
      const ports = (svc.spec?.ports ?? []).filter((p) => (p.protocol ?? "TCP") === "TCP");
      const wanted = new Set(ports.map((p) => p.port));
      for (const [port, l] of b.listeners) {
        if (!wanted.has(port)) {
          l.server.close();
          b.listeners.delete(port);
        }
      }
      for (const sp of ports) {
        b.targets.set(sp.port, this.targetsFor(svc, sp));
        if (!b.listeners.has(sp.port)) {
          const l = await this.listen(svc, b, sp);
          if (l) b.listeners.set(sp.port, l);
        }
      }
      const status = [{ ip: this.o.bind, ports: [...b.listeners.values()].sort((x, y) => x.port - y.port).map((l) => ({ port: l.actual, protocol: "TCP" as const })) }];
      if (JSON.stringify(svc.status?.loadBalancer?.ingress ?? []) !== JSON.stringify(status)) {
        if (await this.writeStatus(svc, status)) this.o.recorder.event(svc, "Normal", "EnsuredLoadBalancer", "Ensured load balancer");
      }
    }
  }

  private async writeStatus(svc: Readonly<Service>, ingress: unknown[] | undefined): Promise<boolean> {
    try {
      await this.o.client.resource<Service>("", "services").patch(svc.metadata.namespace ?? "", svc.metadata.name ?? "", "merge", { status: { loadBalancer: ingress ? { ingress } : { ingress: null } } }, { subresource: "status" });
      return true;
    } catch (e) {
      if (!isNotFound(e)) this.o.log.warn({ err: e, service: `${svc.metadata.namespace}/${svc.metadata.name}` }, "cannot write the Service's load balancer status; retrying on the next sync");
      return false;
    }
  }

  /** Where a connection for `sp` may go: NodePorts of Ready (and, for Local, healthy) nodes, or the endpoints. */
  targetsFor(svc: Readonly<Service>, sp: ServicePort): Target[] {
    if (svc.spec?.allocateLoadBalancerNodePorts === false || !sp.nodePort) {
      const slices = this.slices.lister.byIndex(INDEX_BY_SERVICE, `${svc.metadata.namespace}/${svc.metadata.name}`);
      return usableBackends(slices, sp).map((b) => ({ ip: b.ip, port: b.port }));
    }
    const local = svc.spec?.externalTrafficPolicy === "Local" && svc.spec.healthCheckNodePort;
    const seen = new Set<string>();
    const out: Target[] = [];
    for (const n of this.nodes.lister.list()) {
      if (!nodeReady(n)) continue;
      const ip = internalIP(n);
      if (!ip || seen.has(ip)) continue;
      if (local && this.health.get(`${ip}:${svc.spec!.healthCheckNodePort}`) !== true) {
        if (!this.health.has(`${ip}:${svc.spec!.healthCheckNodePort}`)) void this.probe(ip, svc.spec!.healthCheckNodePort!);
        continue;
      }
      seen.add(ip);
      out.push({ ip, port: sp.nodePort });
    }
    return out.sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0));
  }

  private listen(svc: Readonly<Service>, b: Balancer, sp: ServicePort): Promise<Listener | undefined> {
    const server = net.createServer({ allowHalfOpen: true }, (conn) => this.forward(b, sp.port, conn));
    server.on("error", (err) => this.o.log.warn({ err, service: b.key }, "load balancer listener error"));
    const attempt = (port: number) =>
      new Promise<number | NodeJS.ErrnoException>((resolve) => {
        const onErr = (err: NodeJS.ErrnoException) => resolve(err);
        server.once("error", onErr);
        server.listen({ host: this.o.bind, port, exclusive: true }, () => {
          server.off("error", onErr);
          resolve((server.address() as net.AddressInfo).port);
        });
      });
    return (async () => {
      let got = await attempt(sp.port);
      if (typeof got !== "number" && (got.code === "EADDRINUSE" || got.code === "EACCES")) {
        const why = got.code === "EADDRINUSE" ? "is in use" : "cannot be bound";
        got = await attempt(0);
        if (typeof got === "number") {
          this.o.recorder.event(svc, "Warning", "LoadBalancerPortInUse", `port ${sp.port} on ${this.o.bind} ${why}; listening on ${this.o.bind}:${got} instead`);
        }
      }
      if (typeof got !== "number") {
        this.o.recorder.event(svc, "Warning", "SyncLoadBalancerFailed", `cannot listen on ${this.o.bind}:${sp.port}: ${got.code ?? got.message}`);
        return undefined;
      }
      this.o.log.info({ service: b.key, port: sp.port, listening: got }, "load balancer listening");
      return { server, port: sp.port, actual: got, nodePort: sp.nodePort, name: sp.name };
    })();
  }

  /** One client connection: round-robin over the targets, the next one when a target refuses. */
  private forward(b: Balancer, port: number, conn: net.Socket): void {
    conn.pause();
    conn.on("error", () => {});
    const targets = b.targets.get(port) ?? [];
    if (targets.length === 0) return void conn.destroy();
    const start = b.cursor++;
    let tries = 0;
    const next = (): void => {
      if (tries >= targets.length) return void conn.destroy();
      const t = targets[(start + tries++) % targets.length]!;
      const up = net.connect({ host: t.ip, port: t.port, allowHalfOpen: true });
      const onErr = (err: NodeJS.ErrnoException) => {
        up.destroy();
        if (err.code === "ECONNREFUSED" || err.code === "EHOSTUNREACH" || err.code === "ECONNRESET") next();
        else conn.destroy();
      };
      up.once("error", onErr);
      up.once("connect", () => {
        up.off("error", onErr);
        up.on("error", () => conn.destroy());
        conn.on("error", () => up.destroy());
        conn.on("close", () => up.destroy());
        up.on("close", () => conn.destroy());
        conn.pipe(up);
        up.pipe(conn);
        conn.resume();
      });
    };
    next();
  }

  private probe(ip: string, port: number): Promise<void> {
    const key = `${ip}:${port}`;
    return new Promise((resolve) => {
      const req = http.get({ host: ip, port, path: "/healthz", timeout: 2000, agent: false }, (res) => {
        res.resume();
        const ok = res.statusCode === 200;
        const changed = this.health.get(key) !== ok;
        this.health.set(key, ok);
        if (changed) this.requestSync();
        resolve();
      });
      const down = () => {
        const changed = this.health.get(key) !== false;
        this.health.set(key, false);
        if (changed) this.requestSync();
        resolve();
      };
      req.on("timeout", () => req.destroy());
      req.on("error", down);
    });
  }

  /** Probes every (node, healthCheckNodePort) of the Local LoadBalancers, as the cloud's health checker does. */
  private async pollHealth(): Promise<void> {
    const checks = new Set<string>();
    for (const s of this.services.lister.list()) {
      if (!isOurLoadBalancer(s) || s.spec?.externalTrafficPolicy !== "Local" || !s.spec.healthCheckNodePort) continue;
      for (const n of this.nodes.lister.list()) {
        const ip = internalIP(n);
        if (ip && nodeReady(n)) checks.add(`${ip}:${s.spec.healthCheckNodePort}`);
      }
    }
    for (const k of this.health.keys()) if (!checks.has(k)) this.health.delete(k);
    await Promise.all([...checks].map((k) => this.probe(k.slice(0, k.lastIndexOf(":")), Number(k.slice(k.lastIndexOf(":") + 1)))));
  }
}
