// The ingress controller over an in-process apiserver: which Ingresses it serves (class, legacy
// annotation), Services and EndpointSlices to loopback upstreams, a missing Service (503 and a Warning
// Event, the others keep serving), status.loadBalancer, and TLS by SNI from spec.tls Secrets with the
// default certificate for unknown names and bad Secrets.

import http from "node:http";
import https from "node:https";
import type net from "node:net";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EndpointSlice, Event, Ingress, IngressClass, IngressTLS, Service } from "../../api/index.ts";
import { ApiServer, openBackend } from "../../apiserver/index.ts";
import { RestClient, newEventRecorder, newLogger, newSharedInformerFactory, type Context } from "../../client/index.ts";
import { poll } from "../../test/harness/poll.ts";
import { IngressController } from "./controller.ts";
import { createProxyHandler, newUpstreamAgent } from "./proxy.ts";
import { selectContext, selfSignedCertificate } from "./tls.ts";

let server: ApiServer;
let client: RestClient;
let controller: IngressController;
const stop = new AbortController();
let running: Promise<void>;
const servers: net.Server[] = [];
let httpPort = 0;
let httpsPort = 0;
const agent = newUpstreamAgent();

async function listen(s: net.Server): Promise<number> {
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  return (s.address() as net.AddressInfo).port;
}

async function upstream(name: string): Promise<number> {
  return listen(http.createServer((req, res) => res.writeHead(200, { "Content-Type": "text/plain" }).end(name)));
}

async function serviceWithEndpoints(name: string, port: number): Promise<void> {
  await client.resource<Service>("", "services").create("default", { apiVersion: "v1", kind: "Service", metadata: { name }, spec: { ports: [{ name: "http", port: 80, targetPort: port }], selector: { app: name } } });
  await client.resource<EndpointSlice>("discovery.k8s.io", "endpointslices").create("default", {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name: `${name}-abc`, labels: { "kubernetes.io/service-name": name } },
    addressType: "IPv4",
    ports: [{ name: "http", port, protocol: "TCP" }],
    endpoints: [{ addresses: ["127.0.0.1"], conditions: { ready: true } }],
  });
}

function ingress(name: string, host: string, service: string, extra: { className?: string; annotations?: Record<string, string>; tls?: IngressTLS[] } = {}): Ingress {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "Ingress",
    metadata: { name, annotations: extra.annotations },
    spec: {
      ingressClassName: extra.className,
      tls: extra.tls,
      rules: [{ host, http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: service, port: { name: "http" } } } }] } }],
    },
  };
}

function get(host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port: httpPort, path: "/", headers: { host }, agent: false }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

/** The CN of the certificate the HTTPS listener presents for `servername`. */
function servedCN(servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port: httpsPort, servername, rejectUnauthorized: false }, () => {
      const cn = s.getPeerCertificate().subject?.CN ?? "";
      s.end();
      resolve(Array.isArray(cn) ? cn.join(",") : cn);
    });
    s.on("error", reject);
  });
}

async function warnings(name: string): Promise<string[]> {
  const evs = await client.resource<Event>("", "events").list("default");
  return evs.items.filter((e) => e.involvedObject?.name === name && e.type === "Warning").map((e) => `${e.reason} ${e.message}`);
}

function tlsSecret(name: string, pair: { cert: string; key: string }) {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name },
    type: "kubernetes.io/tls",
    data: { "tls.crt": Buffer.from(pair.cert).toString("base64"), "tls.key": Buffer.from(pair.key).toString("base64") },
  };
}

beforeAll(async () => {
  server = new ApiServer({ backend: await openBackend("memory://") });
  client = new RestClient({ server: `http://127.0.0.1:${await server.start(0)}` });
  const log = newLogger("ingress-test");
  const ctx: Context = { signal: stop.signal, log };
  const factory = newSharedInformerFactory(client);
  controller = new IngressController({
    client,
    factory,
    recorder: newEventRecorder(client, { component: "kubelab-ingress-controller", log }),
    log,
    statusIP: "127.0.0.1",
    defaultCertificate: selfSignedCertificate("default-cert"),
  });
  httpPort = await listen(http.createServer(createProxyHandler({ table: () => controller.table, scheme: "http", port: 80, agent })));
  httpsPort = await listen(
    https.createServer(
      { ...selfSignedCertificate("default-cert"), SNICallback: (n, cb) => cb(null, selectContext(controller.certificates, n)) },
      createProxyHandler({ table: () => controller.table, scheme: "https", port: 443, agent }),
    ),
  );
  factory.start(ctx);
  await controller.ensureIngressClass(ctx);
  running = controller.run(ctx);
  await poll("the first sync", async () => controller.ready());
}, 60_000);

afterAll(async () => {
  stop.abort();
  await running;
  agent.destroy();
  for (const s of servers) s.close();
  client?.close();
  await server?.stop();
});

describe("ingress controller", () => {
  it("creates its IngressClass, marked default", async () => {
    const c = await client.resource<IngressClass>("networking.k8s.io", "ingressclasses").get("", "kubelab");
    expect(c.spec?.controller).toBe("kubelab.io/ingress-controller");
    expect(c.metadata.annotations?.["ingressclass.kubernetes.io/is-default-class"]).toBe("true");
  });

  it("serves Ingresses of its class and of the legacy annotation, and writes their status; not another class's", async () => {
    await serviceWithEndpoints("web", await upstream("web-pod"));
    await client.resource<IngressClass>("networking.k8s.io", "ingressclasses").create("", { apiVersion: "networking.k8s.io/v1", kind: "IngressClass", metadata: { name: "other" }, spec: { controller: "example.com/other" } });
    const ings = client.resource<Ingress>("networking.k8s.io", "ingresses");
    await ings.create("default", ingress("web", "web.test", "web", { className: "kubelab" }));
    await ings.create("default", ingress("legacy", "legacy.test", "web", { annotations: { "kubernetes.io/ingress.class": "kubelab" } }));
    await ings.create("default", ingress("theirs", "theirs.test", "web", { className: "other" }));
    await poll("web.test served", async () => (await get("web.test")).body === "web-pod");
    expect((await get("legacy.test")).body).toBe("web-pod");
    expect((await get("theirs.test")).status).toBe(404);
    await poll("status written", async () => JSON.stringify((await ings.get("default", "web")).status?.loadBalancer?.ingress) === '[{"ip":"127.0.0.1"}]');
    expect((await ings.get("default", "theirs")).status?.loadBalancer?.ingress ?? []).toEqual([]);
  });

  it("answers 503 for an Ingress whose Service is missing, with a Warning Event, while the others keep serving", async () => {
    await client.resource<Ingress>("networking.k8s.io", "ingresses").create("default", ingress("broken", "broken.test", "missing", { className: "kubelab" }));
    await poll("broken.test routed", async () => (await get("broken.test")).status === 503);
    await poll("the ServiceNotFound event", async () => (await warnings("broken")).some((w) => w === 'ServiceNotFound service "default/missing" not found'));
    expect((await get("web.test")).body).toBe("web-pod");
  });

  it("presents the Secret's certificate by SNI, the default one for other names and for a bad Secret", async () => {
    const secrets = client.resource("", "secrets");
    await secrets.create("default", tlsSecret("secure-tls", selfSignedCertificate("secure.test", ["secure.test"])));
    const mismatched = { cert: selfSignedCertificate("bad.test", ["bad.test"]).cert, key: selfSignedCertificate("x").key };
    await secrets.create("default", tlsSecret("bad-tls", mismatched));
    const ings = client.resource<Ingress>("networking.k8s.io", "ingresses");
    await ings.create("default", ingress("secure", "secure.test", "web", { className: "kubelab", tls: [{ hosts: ["secure.test"], secretName: "secure-tls" }] }));
    await ings.create("default", ingress("bad", "bad.test", "web", { className: "kubelab", tls: [{ hosts: ["bad.test"], secretName: "bad-tls" }] }));
    await poll("the secure.test certificate", async () => (await servedCN("secure.test")) === "secure.test");
    expect(await servedCN("unknown.test")).toBe("default-cert");
    expect(await servedCN("bad.test")).toBe("default-cert");
    await poll("the InvalidTLSSecret event", async () => (await warnings("bad")).some((w) => w.startsWith('InvalidTLSSecret secret "default/bad-tls"')));
    // Everything else keeps serving, over HTTPS too.
    const body = await new Promise<string>((resolve, reject) => {
      https
        .get({ host: "127.0.0.1", port: httpsPort, servername: "secure.test", headers: { host: "secure.test" }, rejectUnauthorized: false, agent: false }, (res) => {
          let b = "";
          res.on("data", (d: Buffer) => (b += d.toString()));
          res.on("end", () => resolve(b));
        })
        .on("error", reject);
    });
    expect(body).toBe("web-pod");
  });

  it("clears the status of an Ingress it stops serving", async () => {
    const ings = client.resource<Ingress>("networking.k8s.io", "ingresses");
    await poll("legacy status", async () => ((await ings.get("default", "legacy")).status?.loadBalancer?.ingress?.length ?? 0) === 1);
    await ings.patch("default", "legacy", "merge", { metadata: { annotations: { "kubernetes.io/ingress.class": "nginx" } } });
    await poll("legacy status cleared", async () => ((await ings.get("default", "legacy")).status?.loadBalancer?.ingress?.length ?? 0) === 0);
    expect((await get("legacy.test")).status).toBe(404);
  });
});
