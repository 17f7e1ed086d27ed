// The reverse proxy against loopback upstreams: forwarding headers, round-robin, one retry on a
// refused connection, 503 without backends, 404 without a route, streamed request bodies.

import http from "node:http";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Backend } from "../endpoints.ts";
import { createProxyHandler, newUpstreamAgent } from "./proxy.ts";
import { EMPTY_TABLE, type RoutingTable, type Upstream } from "./routing.ts";

const upstreams: http.Server[] = [];
let proxy: http.Server;
let proxyPort = 0;
let table: RoutingTable = EMPTY_TABLE;
const agent = newUpstreamAgent();

/** An upstream answering JSON with its name, the request's headers, and the body it received. */
async function upstream(name: string): Promise<number> {
  const s = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (d: string) => (body += d));
    req.on("end", () => res.writeHead(200, { "Content-Type": "application/json", "X-Upstream": name }).end(JSON.stringify({ name, headers: req.headers, body, url: req.url })));
  });
  upstreams.push(s);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return (s.address() as net.AddressInfo).port;
}

/** A port on which nothing listens (bound, then closed). */
async function refusingPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function backend(port: number): Backend {
  return { ip: "127.0.0.1", port, ready: true, serving: true, terminating: false };
}

function tableWith(backends: Backend[], problem?: string): RoutingTable {
  const up: Upstream = { key: "default/web:80", namespace: "default", service: "web", port: "80", backends, problem, cursor: { next: 0 } };
  const route = { path: "/", pathType: "Prefix" as const, upstream: up, ingress: "default/web", namespace: "default", ingressName: "web", host: "web.test" };
  return { exact: new Map([["web.test", { routes: [route] }]]), wildcard: new Map(), any: { routes: [] } };
}

function request(opts: { host?: string; path?: string; method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port: proxyPort, path: opts.path ?? "/", method: opts.method ?? "GET", headers: { host: opts.host ?? "web.test", ...opts.headers }, agent: false },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on("error", reject);
    if (opts.body !== undefined) {
      // Streamed in two chunks (chunked encoding), so the body is piped, not buffered.
      req.write(opts.body.slice(0, 3));
      setTimeout(() => req.end(opts.body!.slice(3)), 20);
    } else req.end();
  });
}

beforeAll(async () => {
  proxy = http.createServer(createProxyHandler({ table: () => table, scheme: "http", port: 8080, agent }));
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  proxyPort = (proxy.address() as net.AddressInfo).port;
});

afterAll(async () => {
  agent.destroy();
  proxy.closeAllConnections();
  await new Promise((r) => proxy.close(r));
  for (const s of upstreams) {
    s.closeAllConnections();
    s.close();
  }
});

describe("reverse proxy", () => {
  it("adds X-Forwarded-*, X-Real-IP and X-Request-ID, keeps Host, drops hop-by-hop headers", async () => {
    table = tableWith([backend(await upstream("a"))]);
    const r = await request({ path: "/x?y=1", headers: { "x-forwarded-for": "10.1.2.3", connection: "keep-alive, x-secret", "x-secret": "1", "keep-alive": "timeout=5" } });
    expect(r.status).toBe(200);
    const got = JSON.parse(r.body) as { headers: Record<string, string>; url: string };
    expect(got.url).toBe("/x?y=1");
    expect(got.headers.host).toBe("web.test");
    expect(got.headers["x-forwarded-for"]).toBe("10.1.2.3, 127.0.0.1");
    expect(got.headers["x-real-ip"]).toBe("127.0.0.1");
    expect(got.headers["x-forwarded-proto"]).toBe("http");
    expect(got.headers["x-forwarded-host"]).toBe("web.test");
    expect(got.headers["x-forwarded-port"]).toBe("8080");
    expect(got.headers["x-request-id"]).toMatch(/^[0-9a-f]{32}$/);
    expect(got.headers["x-secret"]).toBeUndefined();
    expect(got.headers["keep-alive"]).toBeUndefined();
    expect(r.headers["x-upstream"]).toBe("a");
  });

  it("keeps an incoming X-Request-ID and streams a request body through", async () => {
    table = tableWith([backend(await upstream("a"))]);
    const r = await request({ method: "POST", body: "hello world", headers: { "x-request-id": "abc123" } });
    const got = JSON.parse(r.body) as { headers: Record<string, string>; body: string };
    expect(got.body).toBe("hello world");
    expect(got.headers["x-request-id"]).toBe("abc123");
  });

  it("spreads requests round-robin over the backends", async () => {
    table = tableWith([backend(await upstream("a")), backend(await upstream("b")), backend(await upstream("c"))]);
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) seen.push((await request()).headers["x-upstream"] as string);
    expect(seen.sort()).toEqual(["a", "a", "b", "b", "c", "c"]);
  });

  it("retries once on another backend when one refuses the connection, request body intact", async () => {
    const dead = await refusingPort();
    table = tableWith([backend(dead), backend(await upstream("alive"))]);
    for (let i = 0; i < 4; i++) {
      const r = await request({ method: "POST", body: `n=${i}` });
      expect(r.status).toBe(200);
      expect((JSON.parse(r.body) as { body: string }).body).toBe(`n=${i}`);
    }
  });

  it("answers 502 when every backend refuses", async () => {
    table = tableWith([backend(await refusingPort()), backend(await refusingPort())]);
    expect((await request()).status).toBe(502);
  });

  it("answers 503 when the Service has no usable endpoints (or does not exist), 404 when no rule matches", async () => {
    table = tableWith([]);
    expect((await request()).status).toBe(503);
    table = tableWith([], 'service "default/web" not found');
    expect((await request()).status).toBe(503);
    expect((await request({ host: "other.test" })).status).toBe(404);
  });

  it("with a per-try timeout, retries a GET a hung upstream never answers, and skips that upstream afterwards", async () => {
    // Accepts connections (the kernel does, as for a SIGSTOPped pod) and never answers.
    const hung = net.createServer(() => {});
    await new Promise<void>((r) => hung.listen(0, "127.0.0.1", r));
    const hungPort = (hung.address() as net.AddressInfo).port;
    const healthyPort = await upstream("healthy");
    const p2 = http.createServer(createProxyHandler({ table: () => t2, scheme: "http", port: 8080, agent: newUpstreamAgent(), tryTimeoutMs: 200, failTimeoutMs: 5000 }));
    await new Promise<void>((r) => p2.listen(0, "127.0.0.1", r));
    const t2 = tableWith([backend(hungPort), backend(healthyPort)]);
    const get = (method = "GET", body?: string) =>
      new Promise<{ status: number; body: string; ms: number }>((resolve, reject) => {
        const t0 = Date.now();
        const req = http.request({ host: "127.0.0.1", port: (p2.address() as net.AddressInfo).port, path: "/", method, headers: { host: "web.test" }, agent: false }, (res) => {
          let b = "";
          res.on("data", (d: Buffer) => (b += d.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: b, ms: Date.now() - t0 }));
        });
        req.on("error", reject);
        req.end(body);
      });
    try {
      // Round-robin starts on the hung one: the first GET waits its 200 ms try, then goes on.
      const first = await get();
      expect(first.status).toBe(200);
      expect(JSON.parse(first.body).name).toBe("healthy");
      expect(first.ms).toBeGreaterThanOrEqual(190);
      // The hung upstream is now skipped: the next GETs go straight to the healthy one.
      for (let i = 0; i < 4; i++) {
        const r = await get();
        expect(r.status).toBe(200);
        expect(r.ms).toBeLessThan(150);
      }
    } finally {
      p2.closeAllConnections();
      p2.close();
      hung.close();
    }
  });

  it("does not repeat a request with a body on a per-try timeout", async () => {
    const hung = net.createServer((c) => c.on("data", () => {}));
    await new Promise<void>((r) => hung.listen(0, "127.0.0.1", r));
    const hungPort = (hung.address() as net.AddressInfo).port;
    const p3 = http.createServer(createProxyHandler({ table: () => tableWith([backend(hungPort), backend(hungPort)]), scheme: "http", port: 8080, agent: newUpstreamAgent(), tryTimeoutMs: 100, upstreamTimeoutMs: 400 }));
    await new Promise<void>((r) => p3.listen(0, "127.0.0.1", r));
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request({ host: "127.0.0.1", port: (p3.address() as net.AddressInfo).port, path: "/", method: "POST", headers: { host: "web.test", "content-length": "2" }, agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on("error", reject);
        req.end("hi");
      });
      // Not retried after 100 ms: it waits for the upstream timeout and gets 504.
      expect(status).toBe(504);
    } finally {
      p3.closeAllConnections();
      p3.close();
      hung.close();
    }
  });
});
