import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { KubeObject } from "../api/index.ts";
import { encodeChunk, eventLine, flushAll, flushStats, FlushRound, WatchSink, type BookmarkSource } from "./watchsink.ts";

const store: BookmarkSource = {
  bookmarkObject: (revision) => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { resourceVersion: String(revision) } }),
};
const noCount = { inc: () => undefined };
const cm = (name: string, rv: number, data: Record<string, string> = {}): KubeObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: "default", resourceVersion: String(rv) },
  data,
});

/** A server whose every GET is a watch response driven by the test through the sinks it collects. */
async function watchServer(counter: { inc(n?: number): void } = noCount): Promise<{ port: number; sinks: WatchSink[]; responses: http.ServerResponse[]; close: () => Promise<void> }> {
  const sinks: WatchSink[] = [];
  const responses: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    res.flushHeaders();
    responses.push(res);
    sinks.push(new WatchSink(res, store, counter));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    sinks,
    responses,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Opens a watch and collects its body until the response ends. */
function openWatch(port: number): Promise<{ body: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/watch" }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      resolve({ body: new Promise((r) => res.on("end", () => r(text))) });
    });
    req.on("error", reject);
  });
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
}

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

describe("encodeChunk", () => {
  it("frames the joined lines as one HTTP/1.1 chunk whose size counts UTF-8 bytes, not characters", () => {
    const c = encodeChunk(['{"a":"é"}\n', '{"b":"€"}\n']);
    const body = Buffer.from('{"a":"é"}\n{"b":"€"}\n', "utf8");
    expect(c.framed.toString("latin1", 0, c.bodyStart)).toBe(`${body.length.toString(16)}\r\n`);
    expect(c.framed.subarray(c.bodyStart, c.framed.length - 2).equals(body)).toBe(true);
    expect(c.framed.subarray(c.framed.length - 2).toString("latin1")).toBe("\r\n");
  });
});

describe("FlushRound", () => {
  it("encodes the same lines once per flush and reuses the buffer for every sink that has them", () => {
    const round = new FlushRound();
    const a = eventLine("ADDED", cm("a", 1));
    const b = eventLine("ADDED", cm("b", 2));
    const first = round.chunk([a, b]);
    expect(round.chunk([a, b])).toBe(first);
    // equal content built separately (e.g. two bookmark lines) is the same bytes: shared too
    expect(round.chunk([String(a), b.slice(0)])).toBe(first);
    expect(round.chunk([a])).not.toBe(first);
    expect(round.chunk([a, b, a])).not.toBe(first);
    expect(round.chunk([b, a])).not.toBe(first);
    expect({ encoded: round.encoded, reused: round.reused }).toEqual({ encoded: 4, reused: 2 });
  });
});

describe("eventLine", () => {
  it("serializes an object once per event type and gives every caller the same line", () => {
    const obj = cm("x", 5, { k: "v" });
    const added = eventLine("ADDED", obj);
    expect(JSON.parse(added)).toEqual({ type: "ADDED", object: obj });
    expect(eventLine("ADDED", obj)).toBe(added);
    const deleted = eventLine("DELETED", obj);
    expect(JSON.parse(deleted).type).toBe("DELETED");
    expect(eventLine("ADDED", obj)).toBe(added);
    // another object with equal content is its own line (the cache keys on identity, not content)
    const other = cm("y", 6);
    expect(JSON.parse(eventLine("ADDED", other)).object.metadata.name).toBe("y");
  });
});

describe("WatchSink", () => {
  it("writes one shared chunk per flush to every watcher with the same events, and each client reads them in order", async () => {
    const srv = await watchServer();
    cleanup = srv.close;
    const clients = await Promise.all(Array.from({ length: 20 }, () => openWatch(srv.port)));
    await until(() => srv.sinks.length === 20);
    const before = { ...flushStats };
    const objs = Array.from({ length: 5 }, (_, i) => cm(`o-${i}`, 10 + i, { v: "ü".repeat(i) }));
    for (const o of objs) for (const s of srv.sinks) s.push({ type: "ADDED", obj: o, revision: Number(o.metadata.resourceVersion) });
    for (const s of srv.sinks) s.push({ type: "BOOKMARK", revision: 14 });
    flushAll();
    expect(flushStats.encoded - before.encoded).toBe(1);
    expect(flushStats.writes - before.writes).toBe(20);
    // a second flush with one watcher apart: two encodings
    srv.sinks[0]!.push({ type: "MODIFIED", obj: objs[0]!, revision: 20 });
    for (const s of srv.sinks.slice(1)) s.push({ type: "DELETED", obj: objs[1]!, revision: 21 });
    flushAll();
    expect(flushStats.encoded - before.encoded).toBe(3);
    for (const s of srv.sinks) s.close();
    for (const r of srv.responses) r.end();
    const bodies = await Promise.all(clients.map((c) => c.body));
    const expected = (last: string) => [
      ...objs.map((o) => ({ type: "ADDED", object: o })),
      { type: "BOOKMARK", object: store.bookmarkObject(14) },
      last === "MODIFIED" ? { type: "MODIFIED", object: objs[0] } : { type: "DELETED", object: objs[1] },
    ];
    const events = (body: string) => body.trimEnd().split("\n").map((l) => JSON.parse(l) as unknown);
    expect(events(bodies[0]!)).toEqual(expected("MODIFIED"));
    for (const b of bodies.slice(1)) expect(events(b)).toEqual(expected("DELETED"));
  });

  it("counts the events of every sink of a kind on its counter once per flush", async () => {
    const incs: number[] = [];
    const srv = await watchServer({ inc: (n = 1) => void incs.push(n) });
    cleanup = srv.close;
    await Promise.all(Array.from({ length: 10 }, () => openWatch(srv.port)));
    await until(() => srv.sinks.length === 10);
    for (let i = 0; i < 3; i++) for (const s of srv.sinks) s.push({ type: "ADDED", obj: cm(`n-${i}`, i + 1), revision: i + 1 });
    flushAll();
    expect(incs).toEqual([30]);
    srv.sinks[0]!.push({ type: "MODIFIED", obj: cm("n-0", 9), revision: 9 });
    srv.sinks[0]!.close(); // a sink written alone counts its own
    expect(incs).toEqual([30, 1]);
  });

  it("flushes by itself within the flush interval, and a line written before the end (an ERROR) precedes the last chunk", async () => {
    const srv = await watchServer();
    cleanup = srv.close;
    const c = await openWatch(srv.port);
    await until(() => srv.sinks.length === 1);
    const sink = srv.sinks[0]!;
    sink.push({ type: "ADDED", obj: cm("a", 1), revision: 1 });
    await new Promise((r) => setTimeout(r, 100));
    expect(flushStats.flushes).toBeGreaterThan(0);
    sink.writeLine('{"type":"ERROR","object":{"kind":"Status","code":410}}\n');
    sink.close();
    srv.responses[0]!.end();
    const lines = (await c.body).trimEnd().split("\n").map((l) => JSON.parse(l) as { type: string });
    expect(lines.map((l) => l.type)).toEqual(["ADDED", "ERROR"]);
  });

  /** Sends `request` on a raw socket, pushes one event, ends the response; returns the raw bytes answered. */
  async function rawExchange(request: string): Promise<string> {
    const srv = await watchServer();
    cleanup = srv.close;
    const { connect } = await import("node:net");
    const sock = connect(srv.port, "127.0.0.1");
    let raw = "";
    sock.setEncoding("latin1");
    sock.on("data", (d: string) => (raw += d));
    sock.write(request);
    await until(() => srv.sinks.length === 1);
    srv.sinks[0]!.push({ type: "ADDED", obj: cm("a", 1), revision: 1 });
    srv.sinks[0]!.close();
    srv.responses[0]!.end();
    sock.end();
    await new Promise((r) => sock.on("close", r));
    return raw.slice(raw.indexOf("\r\n\r\n") + 4);
  }

  it("writes on the socket exactly the chunks ServerResponse would, then its last chunk", async () => {
    const line = Buffer.from(eventLine("ADDED", cm("a", 1)), "utf8").toString("latin1");
    const body = await rawExchange("GET /watch HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect(body).toBe(`${Buffer.byteLength(line, "latin1").toString(16)}\r\n${line}\r\n0\r\n\r\n`);
  });

  it("writes no body to a HEAD request (the response has none)", async () => {
    const body = await rawExchange("HEAD /watch HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect(body).toBe("");
  });
});
