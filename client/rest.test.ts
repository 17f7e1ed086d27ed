import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import type { TLSSocket } from "node:tls";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import type { ConfigMap, Lease, Pod } from "../api/index.ts";
import { ApiServer, openBackend } from "../apiserver/index.ts";
import { ensurePki, issueClientCert } from "../cli/pki.ts";
import { isAlreadyExists, isConflict, isGone, isNotFound } from "./errors.ts";
import { loadKubeconfig, resourcePath, RestClient, retryAfterMs } from "./rest.ts";
import type { WatchEvent } from "./types.ts";

let server: ApiServer;
let client: RestClient;

beforeAll(async () => {
  server = new ApiServer({ backend: await openBackend("memory://") });
  const port = await server.start(0);
  client = new RestClient({ server: `http://127.0.0.1:${port}` });
});

afterAll(async () => {
  client?.close();
  await server?.stop();
});

const cm = (name: string, data: Record<string, string> = {}): ConfigMap => ({ metadata: { name }, data });

describe("resourcePath", () => {
  it("puts the core group under /api/v1 and named groups under /apis", () => {
    const find = (g: string, r: string) => client.resource(g, r).info;
    expect(resourcePath(find("", "pods"), "ns", "p", "status")).toBe("/api/v1/namespaces/ns/pods/p/status");
    expect(resourcePath(find("apps", "deployments"), "", undefined)).toBe("/apis/apps/v1/deployments");
    expect(resourcePath(find("", "nodes"), "ignored", "n1")).toBe("/api/v1/nodes/n1");
  });
});

describe("RestClient against an in-process apiserver", () => {
  it("creates, gets, lists, updates and deletes, mapping Status errors to ClientErrors", async () => {
    const cms = client.resource<ConfigMap>("", "configmaps");
    const created = await cms.create("default", cm("a", { k: "1" }));
    expect(created.metadata.uid).toBeTruthy();
    await expect(cms.create("default", cm("a"))).rejects.toSatisfy(isAlreadyExists);
    const got = await cms.get("default", "a");
    expect(got.data).toEqual({ k: "1" });
    const list = await cms.list("default", { labelSelector: "" });
    expect(list.items.map((i) => i.metadata.name)).toContain("a");
    expect(list.metadata.resourceVersion).toMatch(/^\d+$/);
    const updated = await cms.update({ ...got, data: { k: "2" } });
    expect(updated.data).toEqual({ k: "2" });
    const stale = cms.update({ ...got, data: { k: "3" } });
    await expect(stale).rejects.toSatisfy(isConflict);
    await cms.delete("default", "a");
    const err = await cms.get("default", "a").catch((e: unknown) => e);
    expect(isNotFound(err)).toBe(true);
    expect(err).toMatchObject({ code: 404, reason: "NotFound", message: 'configmaps "a" not found' });
  });

  it("sends each patch type with its content type", async () => {
    const cms = client.resource<ConfigMap>("", "configmaps");
    await cms.create("default", cm("p", { a: "1" }));
    expect((await cms.patch("default", "p", "merge", { data: { b: "2" } })).data).toEqual({ a: "1", b: "2" });
    expect((await cms.patch("default", "p", "json", [{ op: "remove", path: "/data/a" }])).data).toEqual({ b: "2" });
    expect((await cms.patch("default", "p", "strategic", { metadata: { labels: { x: "y" } } })).metadata.labels).toEqual({ x: "y" });
    const applied = await cms.patch("default", "q", "apply", { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "q" }, data: { z: "1" } }, { fieldManager: "test", force: true });
    expect(applied.data).toEqual({ z: "1" });
    expect(applied.metadata.managedFields?.[0]?.manager).toBe("test");
  });

  it("patches the status subresource and binds and evicts pods", async () => {
    const pods = client.resource<Pod>("", "pods");
    await pods.create("default", { metadata: { name: "web" }, spec: { containers: [{ name: "c", image: "nginx" }] } } as Pod);
    await client.bind("default", "web", "node-1");
    expect((await pods.get("default", "web")).spec?.nodeName).toBe("node-1");
    const st = await pods.patch("default", "web", "merge", { status: { phase: "Running" } }, { subresource: "status" });
    expect(st.status?.phase).toBe("Running");
    await client.evict("default", "web");
    const after = await pods.get("default", "web").catch((e: unknown) => e);
    // Eviction deletes the pod (gracefully: it may still be terminating).
    if (!isNotFound(after)) expect((after as Pod).metadata.deletionTimestamp).toBeTruthy();
  });

  it("watches from a resourceVersion until the signal aborts", async () => {
    const leases = client.resource<Lease>("coordination.k8s.io", "leases");
    const list = await leases.list("default");
    const ac = new AbortController();
    const seen: WatchEvent<Lease>[] = [];
    const done = (async () => {
      for await (const ev of leases.watch("default", { resourceVersion: list.metadata.resourceVersion, allowWatchBookmarks: true }, ac.signal)) {
        if (ev.type === "BOOKMARK") continue;
        seen.push(ev);
        if (seen.length === 3) ac.abort();
      }
    })();
    const l = await leases.create("default", { metadata: { name: "l1" }, spec: { holderIdentity: "a" } });
    await leases.update({ ...l, spec: { holderIdentity: "b" } });
    await leases.delete("default", "l1");
    await done;
    expect(seen.map((e) => `${e.type} ${e.object.spec?.holderIdentity}`)).toEqual(["ADDED a", "MODIFIED b", "DELETED b"]);
  });

  it("ends a watch when the server ends it (timeoutSeconds)", async () => {
    const events: string[] = [];
    for await (const ev of client.resource("", "configmaps").watch("default", { timeoutSeconds: 1, resourceVersion: "0" }, new AbortController().signal)) {
      events.push(ev.type);
    }
    expect(events.every((t) => t === "ADDED" || t === "BOOKMARK")).toBe(true);
  });

  it("reports a too-old resourceVersion as Gone: thrown at watch start, or yielded as an ERROR event", async () => {
    // A stand-in server, because the memory backend keeps all history: first a 410 response, then a
    // 200 stream carrying an ERROR event (as the apiserver does when the window closes mid-watch).
    let calls = 0;
    const fake = http.createServer((req, res) => {
      calls++;
      expect(req.headers.authorization).toBe("Bearer t0k");
      const status = { kind: "Status", apiVersion: "v1", status: "Failure", reason: "Expired", code: 410, message: "too old resource version: 1 (5)" };
      if (calls === 1) {
        res.writeHead(410, { "Content-Type": "application/json" }).end(JSON.stringify(status));
        return;
      }
      res.writeHead(200, { "Content-Type": "application/json" });
      // The ERROR line is split across two chunks: the client must reassemble lines.
      res.write(JSON.stringify({ type: "ADDED", object: cm("x") }) + '\n{"type": "ERR');
      res.end('OR", "object": ' + JSON.stringify(status) + "}\n");
    });
    await new Promise<void>((r) => fake.listen(0, "127.0.0.1", r));
    const rc = new RestClient({ server: `http://127.0.0.1:${(fake.address() as AddressInfo).port}`, token: "t0k" });
    try {
      const cms = rc.resource<ConfigMap>("", "configmaps");
      const thrown = await (async () => {
        for await (const _ of cms.watch("default", { resourceVersion: "1" }, new AbortController().signal)) void _;
      })().catch((e: unknown) => e);
      expect(isGone(thrown)).toBe(true);
      const types: string[] = [];
      for await (const ev of cms.watch("default", { resourceVersion: "1" }, new AbortController().signal)) {
        types.push(ev.type === "ERROR" ? `ERROR ${(ev.object as { code?: number }).code}` : ev.type);
      }
      expect(types).toEqual(["ADDED", "ERROR 410"]);
    } finally {
      rc.close();
      fake.close();
    }
  });
});

describe("loadKubeconfig", () => {
  it("reads server, CA data, token and insecure flag from the current context", () => {
    const dir = mkdtempSync(join(tmpdir(), "kubeconfig-"));
    try {
      writeFileSync(join(dir, "token"), "file-token\n");
      writeFileSync(join(dir, "ca.pem"), "CA FROM FILE");
      const path = join(dir, "config");
      writeFileSync(
        path,
        stringify({
          apiVersion: "v1",
          kind: "Config",
          clusters: [
            { name: "a", cluster: { server: "https://a:6443", "certificate-authority-data": Buffer.from("PEM A").toString("base64") } },
            { name: "b", cluster: { server: "https://b:6443", "certificate-authority": "ca.pem", "insecure-skip-tls-verify": true } },
          ],
          users: [
            { name: "ua", user: { token: "tok-a" } },
            { name: "ub", user: { tokenFile: "token" } },
          ],
          contexts: [
            { name: "ca", context: { cluster: "a", user: "ua" } },
            { name: "cb", context: { cluster: "b", user: "ub" } },
          ],
          "current-context": "cb",
        }),
      );
      expect(loadKubeconfig(path)).toEqual({ server: "https://b:6443", caCert: "CA FROM FILE", token: "file-token", insecure: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("retries as client-go: 429 or 5xx with Retry-After", () => {
  it("reads Retry-After only on 429 and 5xx, and only as whole seconds", () => {
    expect(retryAfterMs(429, "1")).toBe(1000);
    expect(retryAfterMs(503, "3")).toBe(3000);
    expect(retryAfterMs(429, ["2"])).toBe(2000);
    expect(retryAfterMs(429, undefined)).toBeUndefined();
    expect(retryAfterMs(500, "soon")).toBeUndefined();
    expect(retryAfterMs(404, "1")).toBeUndefined();
    expect(retryAfterMs(409, "1")).toBeUndefined();
  });

  /** A server that refuses the first `refusals` requests with `code` + Retry-After, then answers 200. */
  async function refusingServer(code: number, refusals: number, retryAfter: string | undefined): Promise<{ url: string; seen: () => string[]; close: () => Promise<void> }> {
    const seen: string[] = [];
    const srv = http.createServer((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        seen.push(`${req.method} ${body}`);
        if (seen.length <= refusals) {
          res.writeHead(code, { "Content-Type": "application/json", ...(retryAfter !== undefined ? { "Retry-After": retryAfter } : {}) });
          res.end(JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", reason: code === 429 ? "TooManyRequests" : "ServiceUnavailable", message: "Too many requests, please try again later.", code }));
          return;
        }
        res.writeHead(201, { "Content-Type": "application/json" });
        res.end(body);
      });
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
    return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, seen: () => seen, close: () => new Promise((r) => srv.close(() => r())) };
  }

  it("waits Retry-After between attempts and sends the same request again until it is accepted", async () => {
    const s = await refusingServer(429, 3, "2");
    const waits: number[] = [];
    const c = new RestClient({ server: s.url, sleep: async (ms) => void waits.push(ms) });
    try {
      const created = await c.resource<ConfigMap>("", "configmaps").create("default", cm("retried", { a: "1" }));
      expect(created.metadata.name).toBe("retried");
      expect(s.seen()).toHaveLength(4);
      expect(new Set(s.seen()).size, "every attempt sends the same body").toBe(1);
      expect(waits).toHaveLength(3);
      for (const w of waits) {
        expect(w).toBeGreaterThanOrEqual(2000);
        expect(w).toBeLessThanOrEqual(3000);
      }
    } finally {
      c.close();
      await s.close();
    }
  });

  it("gives up after maxRetries (10 by default) with the last answer's error", async () => {
    const s = await refusingServer(503, 100, "0");
    const c = new RestClient({ server: s.url, sleep: async () => {} });
    try {
      const err = await c.resource<ConfigMap>("", "configmaps").get("default", "x").catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 503, reason: "ServiceUnavailable" });
      expect(s.seen()).toHaveLength(11);
    } finally {
      c.close();
      await s.close();
    }
  });

  it("does not retry a 429 without Retry-After, nor other errors", async () => {
    for (const [code, ra] of [[429, undefined], [500, undefined], [409, "1"]] as const) {
      const s = await refusingServer(code, 100, ra);
      const c = new RestClient({ server: s.url, sleep: async () => {} });
      try {
        const err = await c.resource<ConfigMap>("", "configmaps").get("default", "x").catch((e: unknown) => e);
        expect(err).toMatchObject({ code });
        expect(s.seen(), `${code} Retry-After ${String(ra)}`).toHaveLength(1);
      } finally {
        c.close();
        await s.close();
      }
    }
  });
});

describe("client certificates", () => {
  it("reads client-certificate-data / client-key-data, and client-certificate / client-key relative to the kubeconfig", () => {
    const dir = mkdtempSync(join(tmpdir(), "kubeconfig-"));
    try {
      writeFileSync(join(dir, "u.crt"), "CERT FROM FILE");
      writeFileSync(join(dir, "u.key"), "KEY FROM FILE");
      const write = (user: Record<string, string>, name: string): string => {
        const path = join(dir, name);
        writeFileSync(
          path,
          stringify({
            clusters: [{ name: "c", cluster: { server: "https://c:6443" } }],
            users: [{ name: "u", user }],
            contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
            "current-context": "x",
          }),
        );
        return path;
      };
      const b64 = (s: string) => Buffer.from(s).toString("base64");
      expect(loadKubeconfig(write({ "client-certificate-data": b64("CERT"), "client-key-data": b64("KEY") }, "data"))).toEqual({ server: "https://c:6443", clientCert: "CERT", clientKey: "KEY" });
      expect(loadKubeconfig(write({ "client-certificate": "u.crt", "client-key": "u.key" }, "files"))).toEqual({ server: "https://c:6443", clientCert: "CERT FROM FILE", clientKey: "KEY FROM FILE" });
      expect(() => loadKubeconfig(write({ "client-certificate": "u.crt" }, "half"))).toThrow(/without its key/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("presents the client certificate to a server that asks for one, and the rotated one after setClientCertificate", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pki-"));
    const pki = ensurePki(dir);
    const ca = { cert: pki.caCert, key: pki.caKey };
    const alice = issueClientCert(ca, { user: "alice", groups: ["team-a"] });
    const bob = issueClientCert(ca, { user: "bob", groups: [] });
    const srv = https.createServer({ cert: pki.serverCert, key: pki.serverKey, ca: pki.caCert, requestCert: true, rejectUnauthorized: true }, (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      res.setHeader("Content-Type", "application/json");
      res.end(JSON.stringify({ kind: "ConfigMap", apiVersion: "v1", metadata: { name: "who" }, data: { cn: String(peer.subject?.CN ?? ""), o: String(peer.subject?.O ?? "") } }));
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const server = `https://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    const rc = new RestClient({ server, caCert: pki.caCert, clientCert: alice.cert, clientKey: alice.key });
    const anon = new RestClient({ server, caCert: pki.caCert });
    try {
      const got = await rc.resource<ConfigMap>("", "configmaps").get("default", "who");
      expect(got.data).toEqual({ cn: "alice", o: "team-a" });
      rc.setClientCertificate(bob.cert, bob.key);
      expect((await rc.resource<ConfigMap>("", "configmaps").get("default", "who")).data?.cn).toBe("bob");
      // Without a certificate the handshake is refused (rejectUnauthorized on the server).
      await expect(anon.resource<ConfigMap>("", "configmaps").get("default", "who")).rejects.toThrow();
    } finally {
      rc.close();
      anon.close();
      await new Promise<void>((r) => srv.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
