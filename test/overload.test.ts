// Overload and slow clients: max-in-flight (429 + Retry-After, retried by our client), the request
// timeout (504), bounded header waits, and watchers that stop reading.

import { readFileSync } from "node:fs";
import * as http from "node:http";
import { connect as netConnect, type Socket } from "node:net";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConfigMap } from "../api/index.ts";
import { ApiServer, openBackend } from "../apiserver/index.ts";
import { RestClient, loadKubeconfig } from "../client/rest.ts";
import { defaultNamespaceEditorToken, jsonObject, request } from "./harness/http.ts";
import { startKubelab, type Kubelab } from "./harness/kubelab.ts";

const CMS = "/api/v1/namespaces/default/configmaps";
const cmBody = (name: string, data: Record<string, string> = {}): string => JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data });

/** Sends a request's headers and the first bytes of its body, then nothing: it holds its slot. */
function partialPost(port: number, path: string, body: string): { req: http.ClientRequest; answer: Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> } {
  const req = http.request({ host: "127.0.0.1", port, method: "POST", path, agent: false, headers: { "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(body)) } });
  const answer = new Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }>((resolve, reject) => {
    req.on("response", (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on("error", reject);
  });
  req.write(body.slice(0, 10));
  return { req, answer };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

describe("an in-process apiserver", () => {
  let server: ApiServer;
  let port: number;
  let client: RestClient;

  beforeAll(async () => {
    server = new ApiServer({ backend: await openBackend("memory://"), limits: { maxMutatingRequestsInflight: 1, requestTimeoutMs: 1500, headersTimeoutMs: 1000 } });
    port = await server.start(0);
    client = new RestClient({ server: `http://127.0.0.1:${port}` });
  });

  afterAll(async () => {
    client?.close();
    await server?.stop();
  });

  it("answers 429 with Retry-After past --max-mutating-requests-inflight, and our client retries to completion", async () => {
    const holder = partialPost(port, CMS, cmBody("holder"));
    // Admitted once the server counts it in flight (it then waits for the rest of its body).
    for (let i = 0; ; i++) {
      const m = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      if (/apiserver_current_inflight_requests\{request_kind="mutating"\} 1/.test(m)) break;
      if (i > 200) throw new Error("the holder was never admitted");
      await sleep(50);
    }
    const direct = await new Promise<{ status: number; retryAfter?: string; text: string }>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port, method: "POST", path: CMS, headers: { "Content-Type": "application/json" } }, (res) => {
        let text = "";
        res.on("data", (d: Buffer) => (text += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers["retry-after"] as string | undefined, text }));
      });
      req.on("error", reject);
      req.end(cmBody("refused"));
    });
    expect(direct.status).toBe(429);
    expect(direct.retryAfter).toBe("1");
    expect(jsonObject(direct.text)).toMatchObject({ kind: "Status", status: "Failure", reason: "TooManyRequests", code: 429, message: "Too many requests, please try again later." });
    // Reads have their own limit: they are served meanwhile.
    expect((await client.resource<ConfigMap>("", "configmaps").list("default")).items).toEqual([]);
    // Our client's create is refused while the slot is held, waits Retry-After, and gets through.
    const created = client.resource<ConfigMap>("", "configmaps").create("default", { metadata: { name: "patient" } });
    await sleep(300);
    holder.req.end(cmBody("holder").slice(10));
    expect((await holder.answer).status).toBe(201);
    expect((await created).metadata.name).toBe("patient");
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/apiserver_dropped_requests_total\{request_kind="mutating"\} [1-9]/);
  });

  it("answers 504 Timeout to a request that does not complete within --request-timeout; watches are exempt", async () => {
    // A watch outlives the request timeout and goes on delivering events.
    const ac = new AbortController();
    const events: string[] = [];
    const watching = (async () => {
      for await (const ev of client.resource<ConfigMap>("", "configmaps").watch("default", { timeoutSeconds: 4 }, ac.signal)) {
        events.push(`${ev.type} ${ev.object.metadata.name}`);
        if (ev.object.metadata.name === "late") ac.abort();
      }
    })();
    // A create whose body never finishes arriving.
    const stuck = partialPost(port, CMS, cmBody("stuck"));
    const t = await stuck.answer;
    expect(t.status).toBe(504);
    expect(jsonObject(t.text)).toMatchObject({ kind: "Status", reason: "Timeout", code: 504, message: "Timeout: request did not complete within the allotted timeout" });
    // Its body never arrived whole: the connection is not reused.
    expect(t.headers.connection).toBe("close");
    stuck.req.destroy();
    await client.resource<ConfigMap>("", "configmaps").create("default", { metadata: { name: "late" } });
    await watching;
    expect(events).toContain("ADDED late");
    await expect(client.resource<ConfigMap>("", "configmaps").get("default", "stuck")).rejects.toMatchObject({ code: 404 });
  });

  it("closes a connection whose headers do not arrive in time, and serves others meanwhile", async () => {
    const socks: Socket[] = [];
    const outcomes = Array.from({ length: 20 }, () => {
      const s = netConnect(port, "127.0.0.1");
      socks.push(s);
      let got = "";
      s.on("data", (d: Buffer) => (got += d.toString()));
      const text = "GET /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\n";
      let i = 0;
      const timer = setInterval(() => {
        if (i < text.length && !s.destroyed) s.write(text[i++]);
      }, 200);
      return new Promise<string>((resolve) =>
        s.on("close", () => {
          clearInterval(timer);
          resolve(got);
        }),
      );
    });
    for (let i = 0; i < 5; i++) expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    const answers = await Promise.race([Promise.all(outcomes), sleep(20_000).then(() => undefined)]);
    for (const s of socks) s.destroy();
    expect(answers, "slow clients still connected after 20 s").toBeDefined();
    for (const a of answers!) expect(a).toMatch(/^HTTP\/1\.1 408 /);
  });
});

describe("kubelab up under load", () => {
  let k: Kubelab;
  let apiserverPid: number;

  beforeAll(async () => {
    k = await startKubelab({ extraArgs: ["--max-requests-inflight", "20", "--max-mutating-requests-inflight", "10"] });
    const state = JSON.parse(readFileSync(join(k.dataDir, "up.json"), "utf8")) as { components: { name: string; pid?: number }[] };
    apiserverPid = state.components.find((c) => c.name === "apiserver")!.pid!;
  }, 120_000);

  afterAll(async () => {
    await k?.stop({ clean: true });
  });

  function rssMiB(): number {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${apiserverPid}/status`, "utf8"));
    return Math.round(Number(m![1]) / 1024);
  }

  async function metric(name: string, labels: string): Promise<number> {
    const r = await request(k, { path: "/metrics" });
    const m = new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, "m").exec(r.text);
    return m ? Number(m[1]) : 0;
  }

  it("2,000 concurrent requests: no 5xx, no crash, the excess answered 429 and retried by our client to completion; system:masters is never refused", async () => {
    // The load comes from a ServiceAccount that may edit the default namespace: system:masters is
    // exempt from the limits (as upstream), so the admin gets in meanwhile without a single retry.
    const token = await defaultNamespaceEditorToken(k, "loader");
    const client = new RestClient({ ...loadKubeconfig(k.kubeconfig), token, maxConnections: 2000 });
    const admin = RestClient.fromKubeconfig(k.kubeconfig, { maxConnections: 50, maxRetries: 0 });
    const cms = client.resource<ConfigMap>("", "configmaps");
    const droppedBefore = (await metric("apiserver_dropped_requests_total", 'request_kind="mutating"')) + (await metric("apiserver_dropped_requests_total", 'request_kind="readOnly"'));
    try {
      const burst = Promise.allSettled(
        Array.from({ length: 2000 }, (_, i) => (i % 2 === 0 ? cms.create("default", { metadata: { name: `load-${i}` }, data: { i: String(i) } }) : cms.list("default", { limit: 5 }))),
      );
      const byAdmin = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => admin.resource<ConfigMap>("", "configmaps").create("default", { metadata: { name: `admin-${i}` } })));
      const results = await burst;
      const failed = results.flatMap((r, i) => (r.status === "rejected" ? [`#${i}: ${(r.reason as Error).message}`] : []));
      expect(failed.slice(0, 10), `${failed.length} of 2000 requests failed`).toEqual([]);
      expect(byAdmin.flatMap((r) => (r.status === "rejected" ? [(r.reason as Error).message] : [])), "the admin's creates (no retries)").toEqual([]);
    } finally {
      client.close();
      admin.close();
    }
    const dropped = (await metric("apiserver_dropped_requests_total", 'request_kind="mutating"')) + (await metric("apiserver_dropped_requests_total", 'request_kind="readOnly"'));
    console.log(`2000 concurrent requests: ${dropped - droppedBefore} answered 429 and retried`);
    expect(dropped - droppedBefore, "requests answered 429").toBeGreaterThan(0);
    const fiveXX = (await request(k, { path: "/metrics" })).text.split("\n").filter((l) => /^apiserver_request_total\{.*code="5\d\d"/.test(l));
    expect(fiveXX).toEqual([]);
    const list = await request(k, { path: `${CMS}?labelSelector=` });
    expect((jsonObject(list.text)?.items as unknown[]).length).toBeGreaterThanOrEqual(1000);
    expect((await request(k, { path: "/readyz" })).status).toBe(200);
    const state = JSON.parse(readFileSync(join(k.dataDir, "up.json"), "utf8")) as { components: { name: string; restarts: number }[] };
    expect(state.components.find((c) => c.name === "apiserver")?.restarts).toBe(0);
  }, 180_000);

  it("200 clients trickling their headers a byte a second do not keep others from being served", async () => {
    const slow: ReturnType<typeof tlsConnect>[] = [];
    const timers: NodeJS.Timeout[] = [];
    const text = `GET ${CMS} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${k.token}\r\n`;
    for (let i = 0; i < 200; i++) {
      const s = tlsConnect({ host: "127.0.0.1", port: k.port, ca: k.caCert, servername: "localhost" });
      s.on("error", () => {});
      slow.push(s);
      let pos = 0;
      timers.push(
        setInterval(() => {
          if (pos < text.length && !s.destroyed) s.write(text[pos++]);
        }, 1000),
      );
    }
    const client = RestClient.fromKubeconfig(k.kubeconfig);
    try {
      await sleep(2000); // every slow client connected and trickling
      const latencies: number[] = [];
      for (let i = 0; i < 100; i++) {
        const t0 = performance.now();
        await client.resource<ConfigMap>("", "configmaps").get("default", "load-0");
        latencies.push(performance.now() - t0);
      }
      latencies.sort((a, b) => a - b);
      const p99 = latencies[Math.ceil(latencies.length * 0.99) - 1];
      console.log(`GET while 200 clients trickle headers: p50 ${latencies[49].toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`);
      const stillOpen = slow.filter((s) => !s.destroyed).length;
      expect(stillOpen, "slow clients connected while the GETs ran").toBeGreaterThan(150);
      // The issue's acceptance: p99 of a normal GET stays under 1 s while they hang.
      expect(p99).toBeLessThan(1000);
    } finally {
      client.close();
      for (const t of timers) clearInterval(t);
      for (const s of slow) s.destroy();
    }
  }, 60_000);

  it("disconnects a watcher that stops reading once its backlog passes the bound, and frees what it held", async () => {
    const client = RestClient.fromKubeconfig(k.kubeconfig);
    const cms = client.resource<ConfigMap>("", "configmaps");
    const payload = "p".repeat(64 * 1024);
    let rev = 0;
    const churn = async (n: number): Promise<void> => {
      // Eight writers, each on its own object.
      await Promise.all(
        Array.from({ length: 8 }, async (_, w) => {
          for (let i = w; i < n; i += 8) await cms.patch("default", `churn-${w}`, "merge", { data: { p: payload, rev: String(++rev) } });
        }),
      );
    };
    try {
      for (let i = 0; i < 8; i++) await cms.create("default", { metadata: { name: `churn-${i}` }, data: {} });
      /** Three watchers that send their request and then never read, while ~100 MB of events go by each. */
      const stalledRound = async (): Promise<{ bytes: number; tail: string; ended: boolean }[]> => {
        const stalled = Array.from({ length: 3 }, () => {
          const s = tlsConnect({ host: "127.0.0.1", port: k.port, ca: k.caCert, servername: "localhost" });
          s.on("error", () => {});
          s.write(`GET ${CMS}?watch=1&resourceVersion=0 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${k.token}\r\n\r\n`);
          s.pause();
          return s;
        });
        await sleep(500);
        await churn(1500);
        await sleep(1000);
        // Now read what the kernel still holds: the stream ends without its last chunk (cut off), soon.
        return Promise.all(
          stalled.map(
            (s) =>
              new Promise<{ bytes: number; tail: string; ended: boolean }>((resolve) => {
                let bytes = 0;
                let tail = "";
                const t = setTimeout(() => {
                  s.destroy();
                  resolve({ bytes, tail, ended: false });
                }, 30_000);
                s.on("data", (d: Buffer) => {
                  bytes += d.length;
                  tail = (tail + d.toString("latin1")).slice(-16);
                });
                s.on("close", () => {
                  clearTimeout(t);
                  resolve({ bytes, tail, ended: true });
                });
                s.resume();
              }),
          ),
        );
      };
      const before = rssMiB();
      const results = await stalledRound();
      const after = rssMiB();
      // Printed, not asserted: the store keeps the history of every write (as etcd does until it
      // compacts), so RSS grows with the writes themselves whatever the watchers do.
      console.log(`apiserver RSS: ${before} MiB before 3 stalled watchers, ${after} MiB after ~100 MB of events each went by them; each could still read ${results.map((r) => `${(r.bytes / 1048576).toFixed(1)} MiB`).join(", ")} (what the kernel buffered) before its connection ended`);
      for (const r of results) {
        expect(r.ended, "the server closed the stalled watcher's connection").toBe(true);
        expect(r.tail.endsWith("\r\n0\r\n\r\n"), "the watch was cut off, not ended normally").toBe(false);
        // What the server buffered for it (up to the 64 MiB bound) went with the connection.
        expect(r.bytes, "bytes a stalled watcher could still read").toBeLessThan(64 * 1024 * 1024);
      }
      // The server is fine, and a new watch works.
      expect((await request(k, { path: "/readyz" })).status).toBe(200);
      const ac = new AbortController();
      for await (const ev of cms.watch("default", { fieldSelector: "metadata.name=churn-0" }, ac.signal)) {
        expect(ev.type).toBe("ADDED");
        ac.abort();
      }
    } finally {
      client.close();
    }
  }, 240_000);
});
