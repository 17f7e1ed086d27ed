// The watch cache's cacher semantics, against the memory driver (plus a smoke run against etcd).

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { etcdAvailability, startEtcd, type EtcdHandle } from "../../test/harness/etcd.ts";
import {
  MemoryBackend,
  WatchCache,
  isStorageError,
  openBackend,
  type Backend,
  type CacheEvent,
  type KeyValue,
} from "./index.ts";

interface Pod {
  name: string;
  ns: string;
  phase: string;
  rv: number;
}

const PREFIX = "/registry/pods/";
const decode = (kv: KeyValue): Pod => ({ ...(JSON.parse(kv.value) as Omit<Pod, "rv">), rv: kv.modRevision });
const enc = (ns: string, name: string, phase: string) => JSON.stringify({ ns, name, phase });
const key = (ns: string, name: string) => `${PREFIX}${ns}/${name}`;

class Reader<T> {
  private readonly it: AsyncIterator<T>;
  /** A next() still outstanding from a take() that timed out; the next take() awaits it first. */
  private inflight: Promise<IteratorResult<T>> | undefined;
  constructor(src: AsyncIterable<T>) {
    this.it = src[Symbol.asyncIterator]();
  }
  async take(n: number, ms = 5000): Promise<T[]> {
    const out: T[] = [];
    const deadline = Date.now() + ms;
    while (out.length < n) {
      let timer: NodeJS.Timeout | undefined;
      const next = (this.inflight ??= this.it.next());
      const r = await Promise.race([
        next,
        new Promise<"timeout">((res) => {
          timer = setTimeout(() => res("timeout"), Math.max(0, deadline - Date.now()));
        }),
      ]);
      clearTimeout(timer);
      if (r !== "timeout") this.inflight = undefined;
      if (r === "timeout") throw new Error(`timed out: got ${out.length} of ${n}: ${JSON.stringify(out)}`);
      if (r.done) break;
      out.push(r.value);
    }
    return out;
  }
  async quiet(ms: number): Promise<T[]> {
    try {
      return await this.take(1, ms);
    } catch {
      return [];
    }
  }
}

const brief = (evs: CacheEvent<Pod>[]) => evs.map((e) => (e.type === "BOOKMARK" ? ["BOOKMARK", e.revision] : [e.type, e.obj.name, e.revision]));

describe("WatchCache (memory)", () => {
  let b: MemoryBackend;
  let cache: WatchCache<Pod>;
  const controllers: AbortController[] = [];
  const signal = () => {
    const ac = new AbortController();
    controllers.push(ac);
    return ac.signal;
  };
  const all = () => true;

  async function setup(opts: ConstructorParameters<typeof WatchCache<Pod>>[3] = {}) {
    b = new MemoryBackend();
    cache = new WatchCache<Pod>(b, PREFIX, decode, { bookmarkIntervalMs: 100, progressIntervalMs: 50, ...opts });
  }
  afterEach(async () => {
    for (const ac of controllers.splice(0)) ac.abort();
    cache?.stop();
    await b?.close();
  });

  it("start lists the prefix; list narrows by key prefix in key order", async () => {
    await setup();
    await b.create(key("ns2", "b"), enc("ns2", "b", "Running"));
    await b.create(key("ns1", "a"), enc("ns1", "a", "Pending"));
    await b.create("/registry/podsx/ns1/z", enc("ns1", "z", "x"));
    await cache.start();
    expect(cache.revision()).toBe(3);
    expect(cache.list(PREFIX).items.map((i) => i.obj.name)).toEqual(["a", "b"]);
    expect(cache.list(`${PREFIX}ns1/`).items.map((i) => [i.key, i.modRevision])).toEqual([[key("ns1", "a"), 2]]);
    const c = await b.create(key("ns1", "c"), enc("ns1", "c", "Pending"));
    await cache.waitUntilFresh(c.revision);
    expect(cache.list(`${PREFIX}ns1/`).items.map((i) => i.obj.name)).toEqual(["a", "c"]);
    // objects are decoded once and shared
    expect(cache.list().items[0]!.obj).toBe(cache.list(`${PREFIX}ns1/`).items[0]!.obj);
  });

  it("replays the window after afterRevision, then live events", async () => {
    await setup();
    await cache.start();
    const c1 = await b.create(key("ns1", "a"), enc("ns1", "a", "Pending"));
    const u1 = await b.update(key("ns1", "a"), enc("ns1", "a", "Running"), c1.revision);
    const d1 = await b.delete(key("ns1", "a"));
    await cache.waitUntilFresh(d1.revision);
    const r = new Reader(cache.watch(PREFIX, c1.revision, all, signal()));
    expect(brief(await r.take(2))).toEqual([
      ["MODIFIED", "a", u1.revision],
      ["DELETED", "a", d1.revision],
    ]);
    const c2 = await b.create(key("ns1", "b"), enc("ns1", "b", "Pending"));
    expect(brief(await r.take(1))).toEqual([["ADDED", "b", c2.revision]]);
    expect(await r.quiet(100)).toEqual([]);
  });

  it("a deleted object is delivered with its last state", async () => {
    await setup();
    await cache.start();
    const c = await b.create(key("ns1", "a"), enc("ns1", "a", "Pending"));
    const u = await b.update(key("ns1", "a"), enc("ns1", "a", "Succeeded"), c.revision);
    await cache.waitUntilFresh(u.revision);
    const r = new Reader(cache.watch(PREFIX, cache.revision(), all, signal()));
    await b.delete(key("ns1", "a"));
    const [ev] = await r.take(1);
    expect(ev!.type).toBe("DELETED");
    expect(ev!.type !== "BOOKMARK" && ev!.obj.phase).toBe("Succeeded");
  });

  it("too old resource version → ResourceExpired", async () => {
    await setup({ capacity: 5 });
    await cache.start();
    for (let i = 0; i < 10; i++) await b.create(key("ns1", `p${i}`), enc("ns1", `p${i}`, "Pending"));
    await cache.waitUntilFresh(10);
    expect(cache.oldestRevision()).toBe(5);
    let err: unknown;
    try {
      await new Reader(cache.watch(PREFIX, 3, all, signal())).take(1);
    } catch (e) {
      err = e;
    }
    expect(isStorageError(err, "ResourceExpired")).toBe(true);
    expect((err as Error).message).toBe("too old resource version: 3 (5)");
    const r = new Reader(cache.watch(PREFIX, 5, all, signal()));
    expect((await r.take(5)).map((e) => e.revision)).toEqual([6, 7, 8, 9, 10]);
  });

  it("a watch started before the cache list is too old; a future revision waits for the cache", async () => {
    await setup({ futureRevisionWaitMs: 300 });
    await b.create(key("ns1", "a"), enc("ns1", "a", "Pending"));
    await b.create(key("ns1", "b"), enc("ns1", "b", "Pending"));
    await cache.start();
    let err: unknown;
    try {
      await new Reader(cache.watch(PREFIX, 1, all, signal())).take(1);
    } catch (e) {
      err = e;
    }
    expect(isStorageError(err, "ResourceExpired")).toBe(true);
    // a revision not yet reached: times out as "Too large resource version"
    err = undefined;
    try {
      await new Reader(cache.watch(PREFIX, 50, all, signal())).take(1);
    } catch (e) {
      err = e;
    }
    expect(isStorageError(err, "Timeout")).toBe(true);
    expect((err as Error).message).toMatch(/Too large resource version: 50/);
  });

  it("selector transitions: ADDED / MODIFIED / DELETED / skipped", async () => {
    await setup();
    await cache.start();
    const running = (p: Pod) => p.phase === "Running";
    const r = new Reader(cache.watch(PREFIX, cache.revision(), running, signal()));
    const k = key("ns1", "a");
    const c = await b.create(k, enc("ns1", "a", "Pending")); // neither → skipped
    const u1 = await b.update(k, enc("ns1", "a", "Running"), c.revision); // not → match: ADDED
    const u2 = await b.update(k, enc("ns1", "a", "Running"), u1.revision); // both: MODIFIED
    const u3 = await b.update(k, enc("ns1", "a", "Failed"), u2.revision); // match → not: DELETED (new obj)
    const d = await b.delete(k); // was not matching: skipped
    const k2 = key("ns1", "b");
    const c2 = await b.create(k2, enc("ns1", "b", "Running")); // ADDED
    const d2 = await b.delete(k2); // DELETED
    const evs = await r.take(5);
    expect(brief(evs)).toEqual([
      ["ADDED", "a", u1.revision],
      ["MODIFIED", "a", u2.revision],
      ["DELETED", "a", u3.revision],
      ["ADDED", "b", c2.revision],
      ["DELETED", "b", d2.revision],
    ]);
    const del = evs[2]!;
    expect(del.type !== "BOOKMARK" && del.obj.phase).toBe("Failed");
    expect(d.succeeded).toBe(true);
    expect(await r.quiet(100)).toEqual([]);
  });

  it("keyPrefix narrows a watch to one namespace", async () => {
    await setup();
    await cache.start();
    const r = new Reader(cache.watch(`${PREFIX}ns1/`, cache.revision(), all, signal()));
    await b.create(key("ns2", "x"), enc("ns2", "x", "Pending"));
    const c = await b.create(key("ns1", "y"), enc("ns1", "y", "Pending"));
    expect(brief(await r.take(1))).toEqual([["ADDED", "y", c.revision]]);
  });

  it("resourceVersion 0: ADDED for every current matching object, then live", async () => {
    await setup();
    const a = await b.create(key("ns1", "a"), enc("ns1", "a", "Running"));
    await b.create(key("ns1", "b"), enc("ns1", "b", "Pending"));
    const c = await b.create(key("ns2", "c"), enc("ns2", "c", "Running"));
    await cache.start();
    const r = new Reader(cache.watch(PREFIX, 0, (p) => p.phase === "Running", signal()));
    expect(brief(await r.take(2))).toEqual([
      ["ADDED", "a", a.revision],
      ["ADDED", "c", c.revision],
    ]);
    const d = await b.create(key("ns3", "d"), enc("ns3", "d", "Running"));
    expect(brief(await r.take(1))).toEqual([["ADDED", "d", d.revision]]);
  });

  it("bookmarks carry the latest revision even when the watched prefix is quiet", async () => {
    await setup();
    await b.create(key("ns1", "a"), enc("ns1", "a", "Running"));
    await cache.start();
    const start = cache.revision();
    const r = new Reader(cache.watch(PREFIX, start, all, signal(), { bookmarks: true }));
    const plain = new Reader(cache.watch(PREFIX, start, all, signal()));
    // writes elsewhere in the store advance the revision without events for this prefix
    let last = 0;
    for (let i = 0; i < 3; i++) last = (await b.create(`/registry/configmaps/ns1/c${i}`, "{}")).revision;
    const evs = await r.take(1, 3000);
    expect(evs[0]!.type).toBe("BOOKMARK");
    expect(evs[0]!.revision).toBe(last);
    expect(cache.revision()).toBe(last);
    // no repeated bookmark while nothing changes
    expect(await r.quiet(300)).toEqual([]);
    const c = await b.create(key("ns1", "b"), enc("ns1", "b", "Running"));
    expect(brief(await r.take(1))).toEqual([["ADDED", "b", c.revision]]);
    // watchers that did not ask get no bookmarks
    expect(brief(await plain.take(1))).toEqual([["ADDED", "b", c.revision]]);
    expect(await plain.quiet(300)).toEqual([]);
  });

  it("waitUntilFresh resolves once the cache has seen a revision, also from other prefixes", async () => {
    await setup({ progressIntervalMs: 60_000 }); // rely on requested progress, not the timer
    await cache.start();
    const other = await b.create("/registry/services/ns1/s", "{}");
    const t0 = Date.now();
    await cache.waitUntilFresh(other.revision);
    expect(Date.now() - t0).toBeLessThan(500);
    expect(cache.revision()).toBeGreaterThanOrEqual(other.revision);
    const c = await b.create(key("ns1", "a"), enc("ns1", "a", "Pending"));
    await cache.waitUntilFresh(c.revision);
    expect(cache.get(key("ns1", "a"))?.modRevision).toBe(c.revision);
    const ac = new AbortController();
    const p = cache.waitUntilFresh(c.revision + 100, ac.signal);
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: "Timeout" });
  });

  it("after a backend compaction past the cache, it relists; broken watchers get ResourceExpired", async () => {
    b = new MemoryBackend({ maxHistory: 10 });
    // A backend whose watch we can break, to force a resume from a compacted revision.
    let breakWatch: (() => void) | undefined;
    const flaky: Backend = {
      currentRevision: () => b.currentRevision(),
      get: (k) => b.get(k),
      create: (k, v) => b.create(k, v),
      update: (k, v, r) => b.update(k, v, r),
      delete: (k, r) => b.delete(k, r),
      list: (p, o) => b.list(p, o),
      count: (p) => b.count(p),
      compact: (r) => b.compact(r),
      compactedRevision: () => b.compactedRevision(),
      close: () => b.close(),
      watch: (p, after, sig) => {
        const ac = new AbortController();
        sig.addEventListener("abort", () => ac.abort());
        const inner = b.watch(p, after, ac.signal);
        return (async function* () {
          const broken = new Promise<"broken">((res) => (breakWatch = () => res("broken")));
          const it = inner[Symbol.asyncIterator]();
          for (;;) {
            const r = await Promise.race([it.next(), broken]);
            if (r === "broken") {
              ac.abort();
              throw new Error("connection reset");
            }
            if (r.done) return;
            yield r.value;
          }
        })();
      },
    };
    cache = new WatchCache<Pod>(flaky, PREFIX, decode, { bookmarkIntervalMs: 100 });
    await b.create(key("ns1", "a"), enc("ns1", "a", "Pending"));
    await cache.start();
    const r = new Reader(cache.watch(PREFIX, cache.revision(), all, signal()));
    // a plain watch failure is resumed without loss or duplicates
    breakWatch!();
    const c = await b.create(key("ns1", "b"), enc("ns1", "b", "Pending"));
    expect(brief(await r.take(1))).toEqual([["ADDED", "b", c.revision]]);
    // now break it and let the store move past its history before the cache resumes
    breakWatch!();
    for (let i = 0; i < 30; i++) await b.create(`/registry/other/${i}`, "{}");
    await b.create(key("ns1", "z"), enc("ns1", "z", "Pending"));
    let err: unknown;
    try {
      await r.take(1, 5000);
    } catch (e) {
      err = e;
    }
    expect(isStorageError(err, "ResourceExpired")).toBe(true);
    await cache.waitUntilFresh(await b.currentRevision());
    expect(cache.list().items.map((i) => i.obj.name)).toEqual(["a", "b", "z"]);
    const r2 = new Reader(cache.watch(PREFIX, cache.revision(), all, signal()));
    const y = await b.create(key("ns1", "y"), enc("ns1", "y", "Pending"));
    expect(brief(await r2.take(1))).toEqual([["ADDED", "y", y.revision]]);
  });

  it("a watcher whose queue exceeds the bound is terminated; others keep going", async () => {
    await setup({ maxWatcherQueue: 50 });
    await cache.start();
    const slow = cache.watch(PREFIX, cache.revision(), all, signal())[Symbol.asyncIterator]();
    const fast = new Reader(cache.watch(PREFIX, cache.revision(), all, signal()));
    const fastGot = fast.take(100);
    for (let i = 0; i < 100; i++) {
      await b.create(key("ns1", `p${i}`), enc("ns1", `p${i}`, "Pending"));
      await new Promise((r) => setImmediate(r));
    }
    expect((await fastGot).length).toBe(100);
    await expect(slow.next()).rejects.toMatchObject({ code: "Timeout" });
  });

  it("fans out to 1000 watchers at 500 writes/s with low latency", async () => {
    await setup();
    await cache.start();
    const latencies: number[] = [];
    const writeTimes = new Map<number, number>();
    const N = 1000;
    const writes = 500; // one second at 500/s
    let done = 0;
    const finished = new Promise<void>((resolve) => {
      for (let w = 0; w < N; w++) {
        const filter = w % 2 === 0 ? () => true : (p: Pod) => p.ns === "ns1";
        const want = w % 2 === 0 ? writes : writes / 2;
        void (async () => {
          let n = 0;
          for await (const ev of cache.watch(PREFIX, cache.revision(), filter, signal())) {
            const t = writeTimes.get(ev.revision);
            if (t !== undefined) latencies.push(performance.now() - t);
            if (++n === want) break;
          }
          if (++done === N) resolve();
        })();
      }
    });
    const t0 = performance.now();
    for (let i = 0; i < writes; i++) {
      const due = t0 + i * 2;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const ns = i % 2 === 0 ? "ns1" : "ns2";
      const rev = (await b.currentRevision()) + 1;
      writeTimes.set(rev, performance.now());
      await b.create(key(ns, `p${i}`), enc(ns, `p${i}`, "Pending"));
    }
    await finished;
    latencies.sort((a, b) => a - b);
    const p99 = latencies[Math.floor(latencies.length * 0.99)]!;
    console.log(`fan-out: ${latencies.length} deliveries, p50 ${latencies[latencies.length >> 1]!.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`);
    expect(latencies.length).toBe((N / 2) * writes + (N / 2) * (writes / 2));
    expect(p99).toBeLessThan(50);
  }, 60_000);
});

const etcd = await etcdAvailability();
(etcd.available ? describe : describe.skip)(`WatchCache (etcd)${etcd.available ? "" : `: ${etcd.reason}`}`, () => {
  let h: EtcdHandle;
  let b: Backend;
  beforeAll(async () => {
    h = await startEtcd();
    b = await openBackend(h.url);
  });
  afterAll(async () => {
    await b?.close();
    await h?.stop();
  });

  it("serves watches and advances on quiet prefixes via etcd progress notifications", async () => {
    await b.create(key("ns1", "a"), enc("ns1", "a", "Running"));
    const cache = new WatchCache<Pod>(b, PREFIX, decode, { bookmarkIntervalMs: 100 });
    await cache.start();
    const ac = new AbortController();
    try {
      expect(cache.list().items.map((i) => i.obj.name)).toEqual(["a"]);
      const r = new Reader(cache.watch(PREFIX, cache.revision(), () => true, ac.signal, { bookmarks: true }));
      const c = await b.create(key("ns1", "b"), enc("ns1", "b", "Pending"));
      expect(brief(await r.take(1))).toEqual([["ADDED", "b", c.revision]]);
      const other = await b.create("/registry/services/ns1/s", "{}");
      await cache.waitUntilFresh(other.revision, AbortSignal.timeout(5000));
      const evs = await r.take(1, 3000);
      expect(evs[0]).toEqual({ type: "BOOKMARK", revision: other.revision });
    } finally {
      ac.abort();
      cache.stop();
    }
  });

  it("survives an etcd restart without losing or duplicating events", async () => {
    if (!h.restart) return; // container mode: no in-place restart
    const p = "/registry/restart/";
    const cache = new WatchCache<Pod>(b, p, decode, { bookmarkIntervalMs: 100 });
    await cache.start();
    const ac = new AbortController();
    try {
      const r = new Reader(cache.watch(p, cache.revision(), () => true, ac.signal));
      const c1 = await b.create(`${p}ns/a`, enc("ns", "a", "Pending"));
      expect(brief(await r.take(1))).toEqual([["ADDED", "a", c1.revision]]);
      await h.restart();
      let c2: Awaited<ReturnType<Backend["create"]>> | undefined;
      for (let i = 0; i < 50 && !c2; i++) {
        try {
          c2 = await b.create(`${p}ns/b`, enc("ns", "b", "Pending"));
        } catch {
          await new Promise((res) => setTimeout(res, 200));
        }
      }
      const c3 = await b.update(`${p}ns/b`, enc("ns", "b", "Running"), c2!.revision);
      expect(brief(await r.take(2, 20_000))).toEqual([
        ["ADDED", "b", c2!.revision],
        ["MODIFIED", "b", c3.revision],
      ]);
      expect(await r.quiet(500)).toEqual([]);
    } finally {
      ac.abort();
      cache.stop();
    }
  }, 60_000);
});
