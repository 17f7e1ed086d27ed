// The forwarding path against real loopback servers: round-robin, skipping a refusing backend,
// ClientIP affinity, half-close, UDP flows; and the Proxier's listener lifecycle.

import dgram from "node:dgram";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Registry } from "prom-client";
import type { EndpointSlice, Service } from "../../api/index.ts";
import { FakeRecorder, fakeLister, newLogger } from "../../client/index.ts";
import { INDEX_BY_SERVICE, indexSliceByService, type Backend } from "../endpoints.ts";
import { Balancer, UDPRelay, forwardTCP, noopObserver } from "./forward.ts";
import { holderOf, isProxyCommandLine } from "./holder.ts";
import { BoundedFrequencyRunner, Proxier, ProxyMetrics } from "./proxier.ts";
import type { Route } from "./rules.ts";

const cleanup: (() => void)[] = [];
afterEach(() => {
  while (cleanup.length) cleanup.pop()!();
});

/** A TCP server answering each connection with its name and then echoing. */
async function namedServer(name: string, ip = "127.0.0.1"): Promise<Backend> {
  const s = net.createServer({ allowHalfOpen: true }, (c) => {
    c.write(`${name}\n`);
    c.pipe(c);
  });
  await new Promise<void>((r) => s.listen(0, ip, r));
  cleanup.push(() => s.close());
  return { ip, port: (s.address() as net.AddressInfo).port, ready: true, serving: true, terminating: false };
}

/** A port nothing listens on (bound, then closed). */
async function refusingPort(): Promise<Backend> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return { ip: "127.0.0.1", port, ready: true, serving: true, terminating: false };
}

function route(affinityTimeoutMs = 0): Route {
  return { id: "default/web:http/TCP", namespace: "default", service: "web", portName: "http", protocol: "TCP", affinityTimeoutMs, backends: [] };
}

/** A front listener forwarding with `forwardTCP` to `backends`. */
async function front(backends: Backend[], r: Route, balancer = new Balancer()): Promise<number> {
  const s = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (c) => void forwardTCP(c, { route: r, backends, balancer, observer: noopObserver }));
  await new Promise<void>((res) => s.listen(0, "127.0.0.1", res));
  cleanup.push(() => s.close());
  return (s.address() as net.AddressInfo).port;
}

/** Connects, reads the first line (the backend's name); "" when closed without one. */
function firstLine(port: number, localAddress?: string): Promise<string> {
  return new Promise((resolve) => {
    const c = net.connect({ host: "127.0.0.1", port, localAddress });
    let buf = "";
    c.on("data", (d) => {
      buf += d.toString();
      if (buf.includes("\n")) {
        c.destroy();
        resolve(buf.split("\n")[0]);
      }
    });
    c.on("error", () => resolve(""));
    c.on("close", () => resolve(buf.split("\n")[0]));
  });
}

describe("forwardTCP", () => {
  it("spreads connections round-robin over the backends", async () => {
    const backends = [await namedServer("a"), await namedServer("b"), await namedServer("c")];
    const port = await front(backends, route());
    const seen = [];
    for (let i = 0; i < 6; i++) seen.push(await firstLine(port));
    expect(seen).toEqual(["a", "b", "c", "a", "b", "c"]);
  });

  it("skips a backend that refuses and tries the next, each at most once", async () => {
    const backends = [await refusingPort(), await namedServer("b"), await refusingPort()];
    const port = await front(backends, route());
    const seen = [];
    for (let i = 0; i < 3; i++) seen.push(await firstLine(port));
    expect(seen).toEqual(["b", "b", "b"]);
    const dead = await front([await refusingPort(), await refusingPort()], route());
    expect(await firstLine(dead)).toBe("");
  });

  it("keeps a client on its backend with ClientIP affinity", async () => {
    const backends = [await namedServer("a"), await namedServer("b"), await namedServer("c")];
    const port = await front(backends, route(60_000));
    const first = await firstLine(port, "127.0.0.1");
    for (let i = 0; i < 4; i++) expect(await firstLine(port, "127.0.0.1")).toBe(first);
    // Another client address is balanced on its own.
    const other = new Set<string>();
    for (let i = 0; i < 3; i++) other.add(await firstLine(port, "127.0.0.2"));
    expect(other.size).toBe(1);
  });

  it("passes a half-close across: the client's FIN reaches the backend, whose answer still comes back", async () => {
    const backend = net.createServer({ allowHalfOpen: true }, (c) => {
      let got = "";
      c.on("data", (d) => (got += d.toString()));
      c.on("end", () => c.end(`got ${got}`));
    });
    await new Promise<void>((r) => backend.listen(0, "127.0.0.1", r));
    cleanup.push(() => backend.close());
    const port = await front([{ ip: "127.0.0.1", port: (backend.address() as net.AddressInfo).port, ready: true, serving: true, terminating: false }], route());
    const answer = await new Promise<string>((resolve) => {
      const c = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true });
      let buf = "";
      c.on("data", (d) => (buf += d.toString()));
      c.on("end", () => resolve(buf));
      c.end("hello");
    });
    expect(answer).toBe("got hello");
  });
});

describe("UDPRelay", () => {
  it("relays datagrams per client flow to a backend and replies from the service address", async () => {
    const backend = dgram.createSocket("udp4");
    backend.on("message", (m, r) => backend.send(Buffer.from(`pong ${m}`), r.port, r.address));
    await new Promise<void>((r) => backend.bind(0, "127.0.0.1", r));
    const service = dgram.createSocket("udp4");
    await new Promise<void>((r) => service.bind(0, "127.0.0.1", r));
    const relay = new UDPRelay({
      socket: service,
      routeFor: () => ({ route: { ...route(), protocol: "UDP" }, backends: [{ ip: "127.0.0.1", port: backend.address().port, ready: true, serving: true, terminating: false }] }),
      balancer: new Balancer(),
      observer: noopObserver,
    });
    cleanup.push(() => (relay.close(), service.close(), backend.close()));
    const client = dgram.createSocket("udp4");
    cleanup.push(() => client.close());
    const got = new Promise<{ msg: string; from: number }>((resolve) => client.once("message", (m, r) => resolve({ msg: m.toString(), from: r.port })));
    client.send("ping", service.address().port, "127.0.0.1");
    expect(await got).toEqual({ msg: "pong ping", from: service.address().port });
    expect(relay.size).toBe(1);
    // The backend leaves the Service: its flows go (the next datagram would pick a live backend).
    relay.retain(new Set([`127.0.0.1:${backend.address().port}`]));
    expect(relay.size).toBe(1);
    relay.retain(new Set());
    expect(relay.size).toBe(0);
  });

  it("forgets an idle flow and keeps at most maxFlows", async () => {
    const backend = dgram.createSocket("udp4");
    await new Promise<void>((r) => backend.bind(0, "127.0.0.1", r));
    const service = dgram.createSocket("udp4");
    await new Promise<void>((r) => service.bind(0, "127.0.0.1", r));
    const seen: string[] = [];
    backend.on("message", (m) => seen.push(m.toString()));
    const relay = new UDPRelay({
      socket: service,
      routeFor: () => ({ route: { ...route(), protocol: "UDP" }, backends: [{ ip: "127.0.0.1", port: backend.address().port, ready: true, serving: true, terminating: false }] }),
      balancer: new Balancer(),
      observer: noopObserver,
      idleTimeoutMs: 100,
      maxFlows: 2,
    });
    const clients = [dgram.createSocket("udp4"), dgram.createSocket("udp4"), dgram.createSocket("udp4")];
    cleanup.push(() => (relay.close(), service.close(), backend.close(), clients.forEach((c) => c.close())));
    clients.forEach((c, i) => c.send(`m${i}`, service.address().port, "127.0.0.1"));
    for (let i = 0; i < 200 && seen.length < 3; i++) await new Promise((r) => setTimeout(r, 5));
    expect(seen.sort()).toEqual(["m0", "m1", "m2"]);
    expect(relay.size).toBe(2);
    for (let i = 0; i < 200 && relay.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(relay.size).toBe(0);
  });
});

describe("Proxier", () => {
  it("opens a listener for a Service with endpoints, re-routes on change, closes when endpoints go, and emits an Event for a taken port", async () => {
    const b1 = await namedServer("one");
    const b2 = await namedServer("two");
    const svc: Service = { apiVersion: "v1", kind: "Service", metadata: { name: "web", namespace: "default", uid: "u1" }, spec: { clusterIP: "127.0.0.1", ports: [{ name: "http", port: 0, protocol: "TCP" }] } };
    // Port 0 cannot be dialled back; pick a free port for the "ClusterIP".
    const free = (await refusingPort()).port;
    svc.spec!.ports![0].port = free;
    const sliceWith = (b: Backend): EndpointSlice => ({
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: { name: "web-1", namespace: "default", labels: { "kubernetes.io/service-name": "web" } },
      addressType: "IPv4",
      endpoints: [{ addresses: [b.ip], conditions: { ready: true } }],
      ports: [{ name: "http", port: b.port, protocol: "TCP" }],
    });
    let slices = [sliceWith(b1)];
    const services = fakeLister<Service>([svc]);
    const sliceLister = {
      get: () => undefined,
      list: () => slices,
      listNamespace: () => slices,
      byIndex: (idx: string, v: string) => (idx === INDEX_BY_SERVICE ? slices.filter((s) => indexSliceByService(s).includes(v)) : []),
    };
    const recorder = new FakeRecorder();
    const proxier = new Proxier({
      services,
      endpointSlices: sliceLister,
      nodes: fakeLister([]),
      recorder,
      log: newLogger("test"),
      metrics: new ProxyMetrics(new Registry()),
      standbyRetryMs: 50,
      holder: async () => "other",
    });
    cleanup.push(() => proxier.close());
    const waitListening = async (key: string) => {
      for (let i = 0; i < 100 && proxier.listenerStates().get(key) !== "listening"; i++) await new Promise((r) => setTimeout(r, 10));
    };
    const key = `TCP/127.0.0.1:${free}`;
    await proxier.syncProxyRules();
    await waitListening(key);
    expect(await firstLine(free)).toBe("one");
    // A connection open across the changes below keeps its backend.
    const open = net.connect({ host: "127.0.0.1", port: free });
    let openGot = "";
    await new Promise<void>((r) => open.on("data", (d) => ((openGot += d.toString()), r())));
    slices = [sliceWith(b2)];
    await proxier.syncProxyRules();
    expect(await firstLine(free)).toBe("two");
    slices = [];
    await proxier.syncProxyRules();
    expect(proxier.listenerStates().size).toBe(0);
    expect(await firstLine(free)).toBe(""); // refused
    const echoed = new Promise<string>((r) => open.on("data", () => openGot.includes("still") && r(openGot)));
    open.write("still here\n");
    expect(await echoed).toBe("one\nstill here\n");
    open.destroy();

    // Something else takes the port: the listener stands by and the Service gets a Warning.
    const squatter = net.createServer();
    await new Promise<void>((r) => squatter.listen(free, "127.0.0.1", r));
    slices = [sliceWith(b1)];
    await proxier.syncProxyRules();
    for (let i = 0; i < 100 && recorder.events.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(proxier.listenerStates().get(key)).toBe("standby");
    expect(recorder.events).toEqual([
      `Warning FailedToStartServiceListener cannot listen on 127.0.0.1:${free}/TCP: address already in use by another process`,
    ]);
    // Freed: taken over on the next retry.
    await new Promise<void>((r) => squatter.close(() => r()));
    await waitListening(key);
    expect(await firstLine(free)).toBe("one");
  });
});

describe("holderOf", () => {
  it("tells a port held by this (non-proxy) process from a free one", async () => {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, "127.0.0.3", r));
    cleanup.push(() => s.close());
    const port = (s.address() as net.AddressInfo).port;
    expect(await holderOf("127.0.0.3", port, "TCP")).toBe("other");
    expect(await holderOf("127.0.0.4", port, "TCP")).toBe("unknown");
  });

  it("recognises the proxy's command lines", () => {
    expect(isProxyCommandLine(["/usr/bin/node", "--import", "tsx", "/work/main/cli/main.ts", "proxy", "--zone", "a"])).toBe(true);
    expect(isProxyCommandLine(["/usr/bin/node", "/opt/kubelab/dist/cli/main.js", "proxy"])).toBe(true);
    expect(isProxyCommandLine(["/usr/bin/node", "/work/main/cli/main.ts", "dns", "--zone", "proxy"])).toBe(false);
    expect(isProxyCommandLine(["python3", "-m", "http.server"])).toBe(false);
  });
});

describe("BoundedFrequencyRunner", () => {
  it("runs at once, then coalesces a burst of requests into one run", async () => {
    let runs = 0;
    const runner = new BoundedFrequencyRunner(async () => void runs++, 30, 60_000, newLogger("test"));
    const stop = new AbortController();
    const loop = runner.loop(stop.signal);
    for (let i = 0; i < 100 && runs < 1; i++) await new Promise((r) => setTimeout(r, 5));
    expect(runs).toBe(1);
    for (let i = 0; i < 10; i++) runner.run();
    for (let i = 0; i < 100 && runs < 2; i++) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 100));
    expect(runs).toBe(2);
    stop.abort();
    await loop;
  });
});
