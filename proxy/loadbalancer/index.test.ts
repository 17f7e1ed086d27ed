// The simulated cloud's LoadBalancer over an in-process apiserver: IP mode straight to the endpoints,
// instance mode to NodePorts on Ready nodes (fake NodePort listeners on node addresses), a taken port
// replaced by an ephemeral one with a Warning Event, status.loadBalancer, release on type change.

import http from "node:http";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EndpointSlice, Event, Node, Service } from "../../api/index.ts";
import { ApiServer, openBackend } from "../../apiserver/index.ts";
import { RestClient, newEventRecorder, newLogger, newSharedInformerFactory, type Context } from "../../client/index.ts";
import { poll } from "../../test/harness/poll.ts";
import { LoadBalancerController } from "./index.ts";

let server: ApiServer;
let client: RestClient;
let lb: LoadBalancerController;
const stop = new AbortController();
let running: Promise<void>;
const servers: net.Server[] = [];
// Loopback addresses of this suite's own, so parallel suites never share them.
const BIND = "127.77.0.1";

/** A TCP server answering each connection with `name` and closing. */
async function tcpServer(host: string, port: number, name: string): Promise<number> {
  const s = net.createServer((c) => c.end(name));
  servers.push(s);
  await new Promise<void>((r) => s.listen(port, host, () => r()));
  return (s.address() as net.AddressInfo).port;
}

function readFrom(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    const c = net.connect({ host, port }, () => c.end());
    c.on("data", (d: Buffer) => (out += d.toString()));
    c.on("close", () => resolve(out));
    c.on("error", reject);
  });
}

async function node(name: string, ip: string, ready: boolean): Promise<void> {
  const nodes = client.resource<Node>("", "nodes");
  await nodes.create("", { apiVersion: "v1", kind: "Node", metadata: { name } });
  await nodes.patch("", name, "merge", { status: { addresses: [{ type: "InternalIP", address: ip }], conditions: [{ type: "Ready", status: ready ? "True" : "False" }] } }, { subresource: "status" });
}

async function status(name: string): Promise<string> {
  const s = await client.resource<Service>("", "services").get("default", name);
  return JSON.stringify(s.status?.loadBalancer?.ingress ?? []);
}

async function warnings(name: string): Promise<string[]> {
  const evs = await client.resource<Event>("", "events").list("default");
  return evs.items.filter((e) => e.involvedObject?.name === name && e.type === "Warning").map((e) => `${e.reason} ${e.message}`);
}

beforeAll(async () => {
  server = new ApiServer({ backend: await openBackend("memory://") });
  client = new RestClient({ server: `http://127.0.0.1:${await server.start(0)}` });
  const log = newLogger("lb-test");
  const ctx: Context = { signal: stop.signal, log };
  const factory = newSharedInformerFactory(client);
  lb = new LoadBalancerController({ client, factory, recorder: newEventRecorder(client, { component: "kubelab-lb", log }), log, bind: BIND });
  factory.start(ctx);
  running = lb.run(ctx);
}, 60_000);

afterAll(async () => {
  stop.abort();
  await running;
  for (const s of servers) s.close();
  client?.close();
  await server?.stop();
});

describe("LoadBalancer", () => {
  it("IP mode (allocateLoadBalancerNodePorts false): listens on the Service port and forwards to the endpoints", async () => {
    const podPort = await tcpServer("127.77.1.10", 0, "pod-a");
    const svcs = client.resource<Service>("", "services");
    await svcs.create("default", { apiVersion: "v1", kind: "Service", metadata: { name: "direct" }, spec: { type: "LoadBalancer", allocateLoadBalancerNodePorts: false, ports: [{ name: "tcp", port: 7001, targetPort: podPort }], selector: { app: "x" } } });
    await client.resource<EndpointSlice>("discovery.k8s.io", "endpointslices").create("default", {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: { name: "direct-1", labels: { "kubernetes.io/service-name": "direct" } },
      addressType: "IPv4",
      ports: [{ name: "tcp", port: podPort, protocol: "TCP" }],
      endpoints: [{ addresses: ["127.77.1.10"], conditions: { ready: true } }],
    });
    await poll("the LB status", async () => (await status("direct")) === JSON.stringify([{ ip: BIND, ports: [{ port: 7001, protocol: "TCP" }] }]));
    await poll("traffic through the LB", async () => (await readFrom(BIND, 7001)) === "pod-a");
  });

  it("instance mode: round-robin over the NodePorts of Ready nodes only, skipping one that refuses", async () => {
    const svcs = client.resource<Service>("", "services");
    const created = await svcs.create("default", { apiVersion: "v1", kind: "Service", metadata: { name: "web" }, spec: { type: "LoadBalancer", ports: [{ name: "http", port: 7002, targetPort: 8080 }], selector: { app: "web" } } });
    const nodePort = created.spec!.ports![0]!.nodePort!;
    expect(nodePort).toBeGreaterThan(0);
    await tcpServer("127.77.2.1", nodePort, "node-a");
    await tcpServer("127.77.3.1", nodePort, "node-b");
    await tcpServer("127.77.4.1", nodePort, "node-notready");
    await node("a", "127.77.2.1", true);
    await node("b", "127.77.3.1", true);
    await node("notready", "127.77.4.1", false);
    await node("refusing", "127.77.5.1", true); // Ready, but nothing listens on its NodePort
    await poll("the LB listening", async () => (await status("web")).includes('"port":7002'));
    await poll("both nodes reached", async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 8; i++) seen.add(await readFrom(BIND, 7002));
      return seen.size === 2 && seen.has("node-a") && seen.has("node-b") ? true : undefined;
    });
    for (let i = 0; i < 6; i++) expect(["node-a", "node-b"]).toContain(await readFrom(BIND, 7002));
  });

  it("externalTrafficPolicy Local: only nodes whose healthCheckNodePort answers 200 get connections", async () => {
    const svcs = client.resource<Service>("", "services");
    const created = await svcs.create("default", {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "local" },
      spec: { type: "LoadBalancer", externalTrafficPolicy: "Local", ports: [{ name: "http", port: 7003, targetPort: 8080 }], selector: { app: "web" } },
    });
    const nodePort = created.spec!.ports![0]!.nodePort!;
    const hc = created.spec!.healthCheckNodePort!;
    expect(hc).toBeGreaterThan(0);
    const health = (host: string, code: number) => {
      const s = http.createServer((_req, res) => res.writeHead(code).end());
      servers.push(s);
      return new Promise<void>((r) => s.listen(hc, host, () => r()));
    };
    await health("127.77.2.1", 200); // node a has a local endpoint
    await health("127.77.3.1", 503); // node b has none (kube-proxy answers 503)
    await tcpServer("127.77.2.1", nodePort, "node-a-local");
    await tcpServer("127.77.3.1", nodePort, "node-b-local");
    await poll("node a reached", async () => (await readFrom(BIND, 7003).catch(() => "")) === "node-a-local");
    for (let i = 0; i < 6; i++) expect(await readFrom(BIND, 7003)).toBe("node-a-local");
  });

  it("takes an ephemeral port when the Service port is taken, says so in an Event and in the status", async () => {
    const taken = await tcpServer(BIND, 0, "squatter");
    const svcs = client.resource<Service>("", "services");
    await svcs.create("default", { apiVersion: "v1", kind: "Service", metadata: { name: "clash" }, spec: { type: "LoadBalancer", allocateLoadBalancerNodePorts: false, ports: [{ port: taken, targetPort: 80 }], selector: { app: "y" } } });
    await poll("the LoadBalancerPortInUse event", async () => (await warnings("clash")).some((w) => w.startsWith(`LoadBalancerPortInUse port ${taken} on ${BIND} is in use; listening on ${BIND}:`)));
    const actual = lb.listeners("default/clash")[0]!.actual;
    expect(actual).not.toBe(taken);
    await poll("the status with the actual port", async () => (await status("clash")) === JSON.stringify([{ ip: BIND, ports: [{ port: actual, protocol: "TCP" }] }]));
  });

  it("releases the listener and the status when the Service stops being a LoadBalancer", async () => {
    const svcs = client.resource<Service>("", "services");
    await svcs.patch("default", "direct", "merge", { spec: { type: "ClusterIP", allocateLoadBalancerNodePorts: null } });
    await poll("status cleared", async () => (await status("direct")) === "[]");
    await poll("listener closed", async () => {
      try {
        await readFrom(BIND, 7001);
        return undefined;
      } catch (e) {
        return (e as NodeJS.ErrnoException).code === "ECONNREFUSED";
      }
    });
  });
});
