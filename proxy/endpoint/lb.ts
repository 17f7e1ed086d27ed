// The cluster endpoint: a TCP load balancer in front of several apiservers, as the Network Load
// Balancer in front of EKS's control plane. It forwards whole TCP connections (TLS passes through:
// clients verify the apiservers' own certificate) to a healthy backend, round-robin, and health
// checks every backend on HTTPS /readyz like an NLB target group: a backend turns unhealthy after
// `unhealthyThreshold` failed checks and healthy again after `healthyThreshold` passed ones. With
// no healthy backend it fails open (every backend is tried), as an NLB does. A connection whose
// backend refuses is retried on the next backend before any byte is forwarded.

import * as https from "node:https";
import * as net from "node:net";
import { Counter, Gauge, type Registry } from "prom-client";
import { realClock, type Context, type Logger } from "../../client/index.ts";


export interface Backend {
  host: string;
  port: number;
}

export interface EndpointOptions {
  listenHost: string;
  listenPort: number;
  backends: Backend[];
  /** CA bundle (PEM) that signed the backends' serving certificates, for the health checks. */
  healthCA?: string;
  /** Health check path (default /readyz) and interval (default 1 s). */
  healthPath?: string;
  healthIntervalMs?: number;
  /** Checks in a row to change state (NLB defaults are 3 and 3; ours 2 and 2 at a 1 s interval). */
  healthyThreshold?: number;
  unhealthyThreshold?: number;
  log: Logger;
  registry?: Registry;
}

export function parseBackends(v: string): Backend[] {
  const out: Backend[] = [];
  for (const item of v.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(item);
    const port = m ? Number(m[2]) : NaN;
    if (!m || !(port > 0 && port < 65536)) throw new Error(`"${item}" is not host:port`);
    out.push({ host: m[1]!.replace(/^\[|\]$/g, ""), port });
  }
  if (out.length === 0) throw new Error("no backends");
  return out;
}

interface BackendState extends Backend {
  key: string;
  healthy: boolean;
  passes: number;
  fails: number;
  lastError: string;
  active: number;
}

export class ClusterEndpoint {
  private readonly backends: BackendState[];
  private next = 0;
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly metrics?: { connections: Counter<"backend">; active: Gauge<"backend">; healthy: Gauge<"backend">; failures: Counter<"backend"> };

  constructor(private readonly opts: EndpointOptions) {
    // A backend starts unhealthy until its first check passes (an NLB target's "initial" state).
    this.backends = opts.backends.map((b) => ({ ...b, key: `${b.host}:${b.port}`, healthy: false, passes: 0, fails: 0, lastError: "not checked yet", active: 0 }));
    const registers = opts.registry ? [opts.registry] : [];
    if (opts.registry) {
      const self = this;
      this.metrics = {
        connections: new Counter({ name: "kubelab_endpoint_connections_total", help: "Connections forwarded, by backend", labelNames: ["backend"], registers }),
        failures: new Counter({ name: "kubelab_endpoint_backend_connect_failures_total", help: "Connections a backend refused or dropped before it answered", labelNames: ["backend"], registers }),
        active: new Gauge({
          name: "kubelab_endpoint_active_connections",
          help: "Open forwarded connections, by backend",
          labelNames: ["backend"],
          registers,
          collect() {
            for (const b of self.backends) this.set({ backend: b.key }, b.active);
          },
        }),
        healthy: new Gauge({
          name: "kubelab_endpoint_backend_healthy",
          help: "1 when the backend passes its health checks",
          labelNames: ["backend"],
          registers,
          collect() {
            for (const b of self.backends) this.set({ backend: b.key }, b.healthy ? 1 : 0);
          },
        }),
      };
    }
  }

  /** Backends and their health, for /readyz and logs. */
  state(): { backend: string; healthy: boolean; lastError: string; active: number }[] {
    return this.backends.map((b) => ({ backend: b.key, healthy: b.healthy, lastError: b.lastError, active: b.active }));
  }

  healthyCount(): number {
    return this.backends.filter((b) => b.healthy).length;
  }

  /** Listens, runs the health checks until ctx aborts, then closes the listener and every forwarded connection. */
  async run(ctx: Context): Promise<void> {
    const server = net.createServer({ pauseOnConnect: true }, (c) => this.accept(c));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.opts.listenPort, this.opts.listenHost, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.opts.log.info({ listen: `${this.opts.listenHost}:${this.address().port}`, backends: this.backends.map((b) => b.key) }, "cluster endpoint listening");
    const interval = this.opts.healthIntervalMs ?? 1000;
    await this.checkAll();
    while (!ctx.signal.aborted) {
      await realClock.sleep(interval, ctx.signal);
      if (!ctx.signal.aborted) await this.checkAll();
    }
    await new Promise<void>((r) => server.close(() => r()));
    for (const s of this.sockets) s.destroy();
  }

  address(): net.AddressInfo {
    return this.server!.address() as net.AddressInfo;
  }

  /** One round of health checks, all backends at once. */
  async checkAll(): Promise<void> {
    await Promise.all(this.backends.map((b) => this.check(b)));
  }

  private check(b: BackendState): Promise<void> {
    const path = this.opts.healthPath ?? "/readyz";
    return new Promise<void>((resolve) => {
      const done = (ok: boolean, why: string): void => {
        if (ok) {
          b.fails = 0;
          b.passes++;
          if (!b.healthy && b.passes >= (b.lastError === "not checked yet" ? 1 : (this.opts.healthyThreshold ?? 2))) {
            b.healthy = true;
            this.opts.log.info({ backend: b.key }, "backend healthy");
          }
          b.lastError = "";
        } else {
          b.passes = 0;
          b.fails++;
          b.lastError = why;
          if (b.healthy && b.fails >= (this.opts.unhealthyThreshold ?? 2)) {
            b.healthy = false;
            this.opts.log.warn({ backend: b.key, why }, "backend unhealthy");
          }
        }
        resolve();
      };
      const req = https.get({ host: b.host, port: b.port, path, ca: this.opts.healthCA, rejectUnauthorized: !!this.opts.healthCA, timeout: 2000, agent: false }, (res) => {
        res.resume();
        done(res.statusCode === 200, `HTTP ${res.statusCode}`);
      });
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", (e) => done(false, (e as NodeJS.ErrnoException).code ?? e.message));
    });
  }

  /** Healthy backends round-robin from the cursor; every backend when none is healthy (fail open). */
  private candidates(): BackendState[] {
    const healthy = this.backends.filter((b) => b.healthy);
    const pool = healthy.length > 0 ? healthy : this.backends;
    const start = this.next++ % pool.length;
    return [...pool.slice(start), ...pool.slice(0, start)];
  }

  private accept(client: net.Socket): void {
    this.sockets.add(client);
    client.on("close", () => this.sockets.delete(client));
    client.on("error", () => {});
    const tries = this.candidates();
    const attempt = (i: number): void => {
      const b = tries[i];
      if (!b || client.destroyed) {
        client.destroy();
        return;
      }
      const upstream = net.connect({ host: b.host, port: b.port });
      let connected = false;
      upstream.once("connect", () => {
        connected = true;
        b.active++;
        this.metrics?.connections.inc({ backend: b.key });
        this.sockets.add(upstream);
        upstream.setNoDelay(true);
        client.setNoDelay(true);
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
      upstream.on("error", (e) => {
        if (!connected) {
          this.metrics?.failures.inc({ backend: b.key });
          this.opts.log.debug({ backend: b.key, err: (e as Error).message }, "backend refused; trying the next");
          attempt(i + 1);
          return;
        }
        client.destroy();
      });
      upstream.on("close", () => {
        this.sockets.delete(upstream);
        if (connected) {
          b.active--;
          client.destroy();
        }
      });
      client.on("close", () => upstream.destroy());
    };
    attempt(0);
  }
}
