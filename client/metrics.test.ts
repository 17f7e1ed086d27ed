import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConfigMap } from "../api/index.ts";
import { runLeaderElection } from "./leaderelection.ts";
import { newLogger } from "./log.ts";
import { ClientMetrics, defaultClientMetrics } from "./metrics.ts";
import { RestClient } from "./rest.ts";
import { FakeClient, FakeClock } from "./testing.ts";

const log = newLogger("metrics-test");
log.level = "silent";

/** A loopback port nothing listens on (bound, then closed). */
async function freePortClosed(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const p = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

/** The value of one series of a metric (labels matched exactly on the given keys). */
async function value(m: ClientMetrics, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const metric = m.registry.getSingleMetric(name);
  if (!metric) return undefined;
  const { values } = await metric.get();
  return values.find((v) => Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want))?.value;
}

// A server answering by path: /ok 200, /missing 404, /busy 429 with Retry-After once then 200.
let server: http.Server;
let port = 0;
let busyAnswered = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (path.endsWith("/configmaps/ok")) {
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ metadata: { name: "ok" } }));
    } else if (path.endsWith("/configmaps/busy") && busyAnswered++ === 0) {
      res.writeHead(429, { "Retry-After": "1", "Content-Type": "application/json" }).end(JSON.stringify({ kind: "Status", code: 429, reason: "TooManyRequests" }));
    } else if (path.endsWith("/configmaps/busy")) {
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ metadata: { name: "busy" } }));
    } else {
      res.writeHead(404, { "Content-Type": "application/json" }).end(JSON.stringify({ kind: "Status", code: 404, reason: "NotFound", message: "not found" }));
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as AddressInfo).port;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe("rest_client metrics", () => {
  it("counts every attempt by code, method and host, and times each request once with its retries", async () => {
    const m = new ClientMetrics();
    const slept: number[] = [];
    const client = new RestClient({ server: `http://127.0.0.1:${port}`, metrics: m, sleep: async (ms) => void slept.push(ms) });
    const cms = client.resource<ConfigMap>("", "configmaps");
    const host = `127.0.0.1:${port}`;
    await cms.get("default", "ok");
    await cms.get("default", "ok");
    await expect(cms.get("default", "gone")).rejects.toMatchObject({ code: 404 });
    await cms.get("default", "busy"); // 429 + Retry-After, then 200: two attempts, one request
    await expect(cms.delete("default", "gone")).rejects.toMatchObject({ code: 404 });
    client.close();

    expect(slept).toHaveLength(1);
    expect(await value(m, "rest_client_requests_total", { code: "200", method: "GET", host })).toBe(3);
    expect(await value(m, "rest_client_requests_total", { code: "404", method: "GET", host })).toBe(1);
    expect(await value(m, "rest_client_requests_total", { code: "429", method: "GET", host })).toBe(1);
    expect(await value(m, "rest_client_requests_total", { code: "404", method: "DELETE", host })).toBe(1);
    // Five requests were timed: four GETs (the retried one once) and a DELETE.
    expect(await value(m, "rest_client_request_duration_seconds", { verb: "GET", host, le: "+Inf" })).toBe(4);
    expect(await value(m, "rest_client_request_duration_seconds", { verb: "DELETE", host, le: "+Inf" })).toBe(1);
    // Only a process that campaigns declares the leader gauge.
    expect(await m.registry.metrics()).not.toContain("leader_election_master_status");
  });

  it("counts a request that got no answer as code <error>", async () => {
    const m = new ClientMetrics();
    const closed = await freePortClosed();
    const client = new RestClient({ server: `http://127.0.0.1:${closed}`, metrics: m });
    await expect(client.resource("", "configmaps").get("default", "x")).rejects.toThrow();
    client.close();
    expect(await value(m, "rest_client_requests_total", { code: "<error>", method: "GET", host: `127.0.0.1:${closed}` })).toBe(1);
    expect(await value(m, "rest_client_request_duration_seconds", { verb: "GET", le: "+Inf" })).toBe(1);
  });

  it("reports to the process-wide registry when given no metrics", async () => {
    const client = new RestClient({ server: `http://127.0.0.1:${port}` });
    const host = `127.0.0.1:${port}`;
    const before = (await value(defaultClientMetrics(), "rest_client_requests_total", { code: "200", method: "GET", host })) ?? 0;
    await client.resource("", "configmaps").get("default", "ok");
    client.close();
    expect(await value(defaultClientMetrics(), "rest_client_requests_total", { code: "200", method: "GET", host })).toBe(before + 1);
  });
});

describe("leader_election_master_status", () => {
  it("is 0 for a candidate waiting, 1 while leading, and 0 again once it stops leading", async () => {
    const clock = new FakeClock();
    const fake = new FakeClient([], { clock });
    const status = async (m: ClientMetrics) => value(m, "leader_election_master_status", { name: "kube-scheduler" });
    const run = (identity: string, m: ClientMetrics) => {
      const ac = new AbortController();
      const done = runLeaderElection(
        { signal: ac.signal, log },
        { client: fake, namespace: "kube-system", name: "kube-scheduler", identity, clock, metrics: m, onStartedLeading: () => undefined, onStoppedLeading: () => undefined },
      );
      return { ac, done };
    };
    const [ma, mb] = [new ClientMetrics(), new ClientMetrics()];
    const a = run("a", ma);
    await clock.advance(0);
    const b = run("b", mb);
    await clock.advance(0);
    expect(await status(ma)).toBe(1);
    expect(await status(mb)).toBe(0);
    a.ac.abort(); // releases the lease: b takes over on its next retry
    await a.done;
    expect(await status(ma)).toBe(0);
    await clock.advance(2_000);
    expect(await status(mb)).toBe(1);
    b.ac.abort();
    await b.done;
    expect(await status(mb)).toBe(0);
  });
});
