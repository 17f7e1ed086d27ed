// The fault proxy of `kubelab up --chaos`: every component reaches the apiserver (and every
// apiserver each etcd member) through a link of its own, a TCP proxy on a loopback port that can be
// broken on purpose. The kernel here has no netem, so latency and bandwidth are done in user
// space, per chunk, in order:
//   cut       packets vanish: data in both directions is held (as TCP retransmits it), new
//             connections are accepted and hang; on heal the held data flows on, as after a
//             partition heals
//   reset     every connection is reset and new ones are refused until heal (RST, REJECT)
//   delay     each chunk is delivered `latencyMs` later, in order
//   throttle  at most `bytesPerSecond` each way
// `heal` returns the link to normal.

import * as net from "node:net";
import type { Logger } from "../client/index.ts";

export type LinkMode = { mode: "ok" } | { mode: "cut" } | { mode: "reset" } | { mode: "delay"; latencyMs: number } | { mode: "throttle"; bytesPerSecond: number };

export interface LinkState {
  name: string;
  /** The component whose link it is (its `kubelab status` name). */
  component: string;
  listen: number;
  target: string;
  mode: LinkMode;
  connections: number;
}

/** Held data of a cut link is bounded per direction; past it the connection is reset (as a peer whose buffers overflow). */
const MAX_HELD_BYTES = 16 * 1024 * 1024;

/** One direction of one connection: delivers chunks in order, after the link's current delay or bandwidth. */
class Pipe {
  private queue: Buffer[] = [];
  private held = 0;
  private busy = false;
  private nextFree = 0;

  constructor(
    private readonly link: Link,
    private readonly to: net.Socket,
  ) {}

  push(chunk: Buffer): void {
    this.queue.push(chunk);
    this.held += chunk.length;
    if (this.held > MAX_HELD_BYTES) this.to.destroy();
    this.pump();
  }

  pump(): void {
    if (this.busy || this.queue.length === 0 || this.to.destroyed) return;
    const m = this.link.mode;
    if (m.mode === "cut" || m.mode === "reset") return; // held until heal (reset destroys the socket anyway)
    const chunk = this.queue.shift()!;
    this.held -= chunk.length;
    const send = () => {
      this.busy = false;
      if (!this.to.destroyed) this.to.write(chunk);
      this.pump();
    };
    this.busy = true;
    if (m.mode === "delay") setTimeout(send, m.latencyMs);
    else if (m.mode === "throttle") {
      const now = Date.now();
      const start = Math.max(now, this.nextFree);
      // A chunk is through once its bytes have had their time on the wire.
      this.nextFree = start + (chunk.length * 1000) / m.bytesPerSecond;
      setTimeout(send, this.nextFree - now);
    } else send();
  }
}

export class Link {
  mode: LinkMode = { mode: "ok" };
  private server?: net.Server;
  private readonly conns = new Set<{ client: net.Socket; upstream: net.Socket; up: Pipe; down: Pipe }>();
  port = 0;

  constructor(
    readonly name: string,
    readonly component: string,
    private readonly targetHost: string,
    private readonly targetPort: number,
    private readonly log: Logger,
  ) {}

  async listen(): Promise<number> {
    const server = net.createServer((c) => this.accept(c));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    return this.port;
  }

  private accept(client: net.Socket): void {
    if (this.mode.mode === "reset") {
      client.resetAndDestroy();
      return;
    }
    client.on("error", () => {});
    const upstream = net.connect({ host: this.targetHost, port: this.targetPort });
    upstream.on("error", () => client.destroy());
    const conn = { client, upstream, up: new Pipe(this, upstream), down: new Pipe(this, client) };
    this.conns.add(conn);
    client.on("data", (d: Buffer) => conn.up.push(d));
    upstream.on("data", (d: Buffer) => conn.down.push(d));
    const close = () => {
      this.conns.delete(conn);
      client.destroy();
      upstream.destroy();
    };
    client.on("close", close);
    upstream.on("close", close);
  }

  set(mode: LinkMode): void {
    const before = this.mode.mode;
    this.mode = mode;
    if (mode.mode === "reset") {
      for (const c of this.conns) {
        c.client.resetAndDestroy();
        c.upstream.destroy();
      }
    }
    for (const c of this.conns) {
      c.up.pump();
      c.down.pump();
    }
    if (before !== mode.mode) this.log.info({ link: this.name, mode }, "link changed");
  }

  state(): LinkState {
    return { name: this.name, component: this.component, listen: this.port, target: `${this.targetHost}:${this.targetPort}`, mode: this.mode, connections: this.conns.size };
  }

  close(): void {
    this.server?.close();
    for (const c of this.conns) {
      c.client.destroy();
      c.upstream.destroy();
    }
  }
}

/** Every link of a cluster, by name; what the control socket's /v1/links acts on. */
export class Links {
  private readonly links = new Map<string, Link>();

  constructor(private readonly log: Logger) {}

  /** A new link `name` of `component` to host:port; resolves to its loopback port. */
  async add(name: string, component: string, targetHost: string, targetPort: number): Promise<number> {
    const l = new Link(name, component, targetHost, targetPort, this.log);
    this.links.set(name, l);
    return l.listen();
  }

  list(): LinkState[] {
    return [...this.links.values()].map((l) => l.state());
  }

  /** Sets the mode of every link of `component` (or the link named so); throws when there is none. */
  set(componentOrLink: string, mode: LinkMode): LinkState[] {
    const hit = [...this.links.values()].filter((l) => l.component === componentOrLink || l.name === componentOrLink);
    if (hit.length === 0) throw new Error(`no link of "${componentOrLink}" (links exist with up --chaos: ${[...new Set([...this.links.values()].map((l) => l.component))].join(", ") || "none"})`);
    for (const l of hit) l.set(mode);
    return hit.map((l) => l.state());
  }

  close(): void {
    for (const l of this.links.values()) l.close();
  }
}
