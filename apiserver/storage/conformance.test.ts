// One conformance suite for every storage driver: memory://, file:// (temp dir) and a real etcd.

import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { etcdAvailability, startEtcd, type EtcdHandle } from "../../test/harness/etcd.ts";
import {
  MemoryBackend,
  LOG_FILE,
  StorageError,
  guaranteedUpdate,
  isResourceExpired,
  isStorageError,
  openBackend,
  type Backend,
  type WatchEvent,
} from "./index.ts";

interface Driver {
  name: string;
  setup(): Promise<Backend>;
  teardown(): Promise<void>;
}

const tmpDirs: string[] = [];
async function tmpDir(): Promise<string> {
  const d = await fs.mkdtemp(path.join(os.tmpdir(), "kubelab-storage-"));
  tmpDirs.push(d);
  return d;
}
afterAll(async () => {
  await Promise.all(tmpDirs.map((d) => fs.rm(d, { recursive: true, force: true })));
});

function memoryDriver(): Driver {
  let b: Backend | undefined;
  return {
    name: "memory://",
    setup: async () => (b = await openBackend("memory://")),
    teardown: async () => b?.close(),
  };
}

function fileDriver(): Driver {
  let b: Backend | undefined;
  return {
    name: "file://",
    setup: async () => (b = await openBackend(`file://${await tmpDir()}`)),
    teardown: async () => b?.close(),
  };
}

function etcdDriver(): Driver {
  let etcd: EtcdHandle | undefined;
  let b: Backend | undefined;
  return {
    name: "etcd://",
    setup: async () => {
      etcd = await startEtcd();
      return (b = await openBackend(etcd.url));
    },
    teardown: async () => {
      await b?.close();
      await etcd?.stop();
    },
  };
}

const etcd = await etcdAvailability();
const drivers: Driver[] = [memoryDriver(), fileDriver()];
if (etcd.available) drivers.push(etcdDriver());
else {
  console.warn(`[storage conformance] skipping etcd: ${etcd.reason}`);
  describe.skip(`etcd:// (${etcd.reason})`, () => {
    it("skipped", () => {});
  });
}

let seq = 0;
const uniq = (name: string) => `/registry/${name}-${Date.now().toString(36)}-${seq++}/`;

/** Reads events from one iterator across phases of a test. */
class Reader<T> {
  private readonly it: AsyncIterator<T>;
  /** A next() still outstanding from a take() that timed out; the next take() awaits it first. */
  private inflight: Promise<IteratorResult<T>> | undefined;
  constructor(src: AsyncIterable<T>) {
    this.it = src[Symbol.asyncIterator]();
  }
  async take(n: number, ms = 10_000): Promise<T[]> {
    const out: T[] = [];
    const deadline = Date.now() + ms;
    while (out.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out: got ${out.length} of ${n} events`);
      let timer: NodeJS.Timeout | undefined;
      const next = (this.inflight ??= this.it.next());
      const r = await Promise.race([
        next,
        new Promise<"timeout">((res) => {
          timer = setTimeout(() => res("timeout"), left);
        }),
      ]);
      clearTimeout(timer);
      if (r !== "timeout") this.inflight = undefined;
      if (r === "timeout") throw new Error(`timed out: got ${out.length} of ${n} events`);
      if (r.done) break;
      out.push(r.value);
    }
    return out;
  }
  /** Resolves with whatever arrives within `ms` (expecting nothing, typically). */
  async quiet(ms: number): Promise<T[]> {
    try {
      return await this.take(1, ms);
    } catch {
      return [];
    }
  }
}

async function expectExpired(p: Promise<unknown>): Promise<void> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(isStorageError(err), `expected a StorageError, got ${String(err)}`).toBe(true);
  expect((err as StorageError).code).toBe("ResourceExpired");
}

describe.each(drivers)("storage conformance: $name", (driver) => {
  let b: Backend;
  beforeAll(async () => {
    b = await driver.setup();
  });
  afterAll(async () => {
    await driver.teardown();
  });

  it("create and get", async () => {
    const p = uniq("pods");
    const res = await b.create(p + "a", '{"n":1}');
    expect(res.succeeded).toBe(true);
    expect(res.kv).toEqual({ key: p + "a", value: '{"n":1}', createRevision: res.revision, modRevision: res.revision });
    const got = await b.get(p + "a");
    expect(got.kv).toEqual(res.kv);
    expect(got.revision).toBeGreaterThanOrEqual(res.revision);
    const missing = await b.get(p + "missing");
    expect(missing.kv).toBeUndefined();
    expect(missing.revision).toBeGreaterThanOrEqual(res.revision);
  });

  it("create of an existing key fails with the current value", async () => {
    const p = uniq("pods");
    const first = await b.create(p + "a", "v1");
    const second = await b.create(p + "a", "v2");
    expect(second.succeeded).toBe(false);
    expect(second.kv).toEqual(first.kv);
    expect(second.revision).toBe(first.revision);
    expect((await b.get(p + "a")).kv?.value).toBe("v1");
  });

  it("update is a compare-and-swap on modRevision", async () => {
    const p = uniq("pods");
    const c = await b.create(p + "a", "v1");
    const u = await b.update(p + "a", "v2", c.revision);
    expect(u.succeeded).toBe(true);
    expect(u.revision).toBe(c.revision + 1);
    expect(u.kv).toEqual({ key: p + "a", value: "v2", createRevision: c.revision, modRevision: u.revision });
    const stale = await b.update(p + "a", "v3", c.revision);
    expect(stale.succeeded).toBe(false);
    expect(stale.kv).toEqual(u.kv);
    expect(stale.revision).toBe(u.revision);
    const absent = await b.update(p + "nope", "v", 1);
    expect(absent.succeeded).toBe(false);
    expect(absent.kv).toBeUndefined();
    expect((await b.get(p + "a")).kv?.value).toBe("v2");
  });

  it("delete with and without preconditions", async () => {
    const p = uniq("pods");
    const a = await b.create(p + "a", "va");
    const d = await b.delete(p + "a");
    expect(d.succeeded).toBe(true);
    expect(d.revision).toBe(a.revision + 1);
    expect(d.kv?.value).toBe("va");
    expect(d.kv?.createRevision).toBe(a.revision);
    expect((await b.get(p + "a")).kv).toBeUndefined();
    const again = await b.delete(p + "a");
    expect(again.succeeded).toBe(false);
    expect(again.kv).toBeUndefined();

    const x = await b.create(p + "b", "vb");
    const stale = await b.delete(p + "b", x.revision - 1);
    expect(stale.succeeded).toBe(false);
    expect(stale.kv).toEqual(x.kv);
    const ok = await b.delete(p + "b", x.revision);
    expect(ok.succeeded).toBe(true);
    expect(ok.kv?.value).toBe("vb");
    const absent = await b.delete(p + "b", x.revision);
    expect(absent.succeeded).toBe(false);
    expect(absent.kv).toBeUndefined();
  });

  it("revisions increase by one per successful write and equal modRevision", async () => {
    const p = uniq("pods");
    let last = await b.currentRevision();
    const writes = [
      () => b.create(p + "a", "1"),
      () => b.create(p + "b", "1"),
      async () => b.update(p + "a", "2", (await b.get(p + "a")).kv!.modRevision),
      () => b.delete(p + "b"),
      () => b.create(p + "b", "again"),
    ];
    for (const w of writes) {
      const r = await w();
      expect(r.succeeded).toBe(true);
      expect(r.revision).toBe(last + 1);
      expect(r.kv?.modRevision).toBe(r.revision);
      last = r.revision;
    }
    // failed writes do not bump the revision
    const failed = await b.create(p + "a", "x");
    expect(failed.succeeded).toBe(false);
    expect(await b.currentRevision()).toBe(last);
    const recreated = await b.get(p + "b");
    expect(recreated.kv?.createRevision).toBe(last);
  });

  it("list by prefix does not match siblings; count", async () => {
    const root = uniq("r");
    await b.create(`${root}pods/ns1/a`, "a");
    await b.create(`${root}pods/ns2/b`, "b");
    await b.create(`${root}podsx/ns1/c`, "c");
    await b.create(`${root}pod`, "d");
    const l = await b.list(`${root}pods/`);
    expect(l.kvs.map((k) => k.key)).toEqual([`${root}pods/ns1/a`, `${root}pods/ns2/b`]);
    expect(l.more).toBe(false);
    expect(l.revision).toBe(await b.currentRevision());
    expect((await b.list(`${root}pods/ns1/`)).kvs.map((k) => k.value)).toEqual(["a"]);
    expect((await b.count(`${root}pods/`)).count).toBe(2);
    expect((await b.count(`${root}`)).count).toBe(4);
    expect((await b.count(`${root}nothing/`)).count).toBe(0);
  });

  it("list at an older revision sees the old state", async () => {
    const p = uniq("pods");
    await b.create(p + "a", "a1");
    await b.create(p + "b", "b1");
    const r = await b.currentRevision();
    await b.update(p + "a", "a2", (await b.get(p + "a")).kv!.modRevision);
    await b.delete(p + "b");
    await b.create(p + "c", "c1");
    const old = await b.list(p, { revision: r });
    expect(old.revision).toBe(r);
    expect(old.kvs.map((k) => [k.key, k.value])).toEqual([
      [p + "a", "a1"],
      [p + "b", "b1"],
    ]);
    const oldPage = await b.list(p, { revision: r, limit: 1 });
    expect(oldPage.kvs.map((k) => k.value)).toEqual(["a1"]);
    expect(oldPage.more).toBe(true);
    expect(oldPage.remaining).toBe(1);
    const now = await b.list(p);
    expect(now.kvs.map((k) => [k.key, k.value])).toEqual([
      [p + "a", "a2"],
      [p + "c", "c1"],
    ]);
  });

  it("paging with limit+startKey at a fixed revision returns every key once despite concurrent writes", async () => {
    const p = uniq("pods");
    const n = 150;
    const keys = Array.from({ length: n }, (_, i) => `${p}k${String(i).padStart(4, "0")}`);
    for (const k of keys) await b.create(k, "orig");
    let stop = false;
    // The writer starts once the first page (which fixes the revision) is read: before that, its
    // delete-then-create would make the first page's remaining count race with it.
    let firstPageRead!: () => void;
    const started = new Promise<void>((r) => (firstPageRead = r));
    const writer = (async () => {
      await started;
      let i = 0;
      while (!stop) {
        const k = keys[(i * 7) % n]!;
        const cur = (await b.get(k)).kv;
        if (cur) {
          if (i % 3 === 0) await b.delete(k, cur.modRevision);
          else await b.update(k, `changed-${i}`, cur.modRevision);
        }
        await b.create(`${p}k${String(n + i).padStart(4, "0")}`, "new");
        i++;
        await new Promise((r) => setImmediate(r)); // the memory driver never yields by itself
      }
      if (i === 0) throw new Error("writer never ran");
    })();
    const seen: string[] = [];
    let revision: number | undefined;
    let startKey: string | undefined;
    let first = true;
    try {
      for (;;) {
        const page = await b.list(p, { limit: 13, ...(revision ? { revision } : {}), ...(startKey ? { startKey } : {}) });
        if (first) {
          expect(page.remaining).toBe(n - 13);
          first = false;
          firstPageRead();
        }
        revision = page.revision;
        for (const kv of page.kvs) {
          expect(kv.value).toBe("orig");
          seen.push(kv.key);
        }
        if (!page.more) break;
        startKey = page.kvs[page.kvs.length - 1]!.key + "\0";
        await new Promise((r) => setTimeout(r, 1));
      }
    } finally {
      // Never leave the writer running into the next test (it would move every revision there).
      stop = true;
      firstPageRead();
      await writer;
    }
    expect(seen).toEqual(keys);
  });

  it("watch replays history after a revision, then continues live, in order and exactly once", async () => {
    const p = uniq("pods");
    await b.create(p + "before", "x");
    const r0 = await b.currentRevision();
    const c = await b.create(p + "a", "a1");
    await b.create(uniq("other") + "z", "not watched");
    const u = await b.update(p + "a", "a2", c.revision);
    const d = await b.delete(p + "before");
    const ac = new AbortController();
    const reader = new Reader<WatchEvent>(b.watch(p, r0, ac.signal));
    const replay = await reader.take(3);
    expect(replay.map((e) => [e.type, e.kv.key, e.revision])).toEqual([
      ["put", p + "a", c.revision],
      ["put", p + "a", u.revision],
      ["delete", p + "before", d.revision],
    ]);
    expect(replay[0]!.created).toBe(true);
    expect(replay[0]!.prevKv).toBeUndefined();
    expect(replay[1]!.created).toBe(false);
    expect(replay[1]!.prevKv?.value).toBe("a1");
    expect(replay[1]!.kv.value).toBe("a2");
    expect(replay[2]!.prevKv?.value).toBe("x");
    expect(replay[2]!.kv.modRevision).toBe(d.revision);
    // live
    const live: number[] = [];
    for (let i = 0; i < 20; i++) live.push((await b.create(`${p}live${i}`, String(i))).revision);
    const got = await reader.take(20);
    expect(got.map((e) => e.revision)).toEqual(live);
    expect(got.every((e) => e.type === "put" && e.created)).toBe(true);
    expect(await reader.quiet(200)).toEqual([]);
    ac.abort();
    expect(await reader.take(1, 5000)).toEqual([]);
  });

  it("watch from the current revision sees only new changes", async () => {
    const p = uniq("pods");
    await b.create(p + "old", "x");
    const now = await b.currentRevision();
    const ac = new AbortController();
    const reader = new Reader<WatchEvent>(b.watch(p, now, ac.signal));
    const n = await b.create(p + "new", "y");
    const got = await reader.take(1);
    expect(got.map((e) => [e.kv.key, e.revision])).toEqual([[p + "new", n.revision]]);
    ac.abort();
  });

  it("compaction: watch and list from before the compacted revision fail with ResourceExpired", async () => {
    const p = uniq("pods");
    const c = await b.create(p + "a", "1");
    await b.update(p + "a", "2", c.revision);
    const u2 = await b.update(p + "a", "3", c.revision + 1);
    await b.compact(u2.revision);
    expect(await b.compactedRevision()).toBe(u2.revision);
    await expectExpired(b.list(p, { revision: c.revision }));
    const ac = new AbortController();
    await expectExpired(new Reader(b.watch(p, c.revision - 1, ac.signal)).take(1));
    ac.abort();
    // From the compacted revision on, everything still works.
    const ac2 = new AbortController();
    const reader = new Reader<WatchEvent>(b.watch(p, u2.revision, ac2.signal));
    const n = await b.update(p + "a", "4", u2.revision);
    expect((await reader.take(1))[0]!.revision).toBe(n.revision);
    ac2.abort();
    expect((await b.list(p, { revision: u2.revision })).kvs[0]!.value).toBe("3");
    // compacting again at or below is harmless
    await b.compact(u2.revision);
  });

  it("guaranteedUpdate: 50 concurrent writers x 20 increments lose no update", async () => {
    const key = uniq("counters") + "c";
    await b.create(key, JSON.stringify({ n: 0 }));
    const decode = (kv: { value: string }) => JSON.parse(kv.value) as { n: number };
    const encode = (o: { n: number }) => JSON.stringify(o);
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        for (let i = 0; i < 20; i++) {
          await guaranteedUpdate(b, key, decode, (cur) => ({ n: cur.n + 1 }), encode, { maxRetries: 10_000 });
        }
      }),
    );
    expect(decode((await b.get(key)).kv!).n).toBe(1000);
  }, 120_000);

  it("guaranteedUpdate: NotFound when absent, no write when unchanged", async () => {
    const key = uniq("pods") + "x";
    let err: unknown;
    try {
      await guaranteedUpdate(b, key, (kv) => kv.value, (v) => v, (v) => v);
    } catch (e) {
      err = e;
    }
    expect(isStorageError(err, "NotFound")).toBe(true);
    const c = await b.create(key, "same");
    const r = await guaranteedUpdate(b, key, (kv) => kv.value, (v) => v, (v) => v);
    expect(r.kv.modRevision).toBe(c.revision);
  });
});

describe("file:// persistence", () => {
  it("data and revision survive a reopen; a torn last line is dropped", async () => {
    const dir = await tmpDir();
    const b1 = await openBackend(`file://${dir}`);
    await b1.create("/registry/pods/ns/a", "a1");
    await b1.create("/registry/pods/ns/b", "b1");
    const u = await b1.update("/registry/pods/ns/a", "a2", 1);
    await b1.delete("/registry/pods/ns/b");
    const rev = await b1.currentRevision();
    expect(rev).toBe(u.revision + 1);
    await b1.close();
    // simulate a crash in the middle of appending a line
    await fs.appendFile(path.join(dir, LOG_FILE), '{"type":"put","rev":99,"key":"/x","va');
    const b2 = await openBackend(`file://${dir}`);
    expect(await b2.currentRevision()).toBe(rev);
    expect((await b2.list("/registry/pods/")).kvs).toEqual([
      { key: "/registry/pods/ns/a", value: "a2", createRevision: 1, modRevision: u.revision },
    ]);
    // history survives too: a watch from revision 0 replays everything
    const ac = new AbortController();
    const replay = await new Reader<WatchEvent>(b2.watch("/registry/", 0, ac.signal)).take(4);
    expect(replay.map((e) => e.revision)).toEqual([1, 2, 3, 4]);
    ac.abort();
    const next = await b2.create("/registry/pods/ns/c", "c1");
    expect(next.revision).toBe(rev + 1);
    await b2.close();
    const b3 = await openBackend(`file://${dir}`);
    expect(await b3.currentRevision()).toBe(rev + 1);
    expect((await b3.count("/registry/pods/")).count).toBe(2);
    await b3.close();
  });

  it("a large log is rewritten as a snapshot on open, keeping state, revision and recent history", async () => {
    const dir = await tmpDir();
    // Written with a large slack, so the log is not rewritten while running.
    const b1 = await MemoryBackend.open({ dir, maxHistory: 50, snapshotSlack: 100_000 });
    await b1.create("/k", "0");
    for (let i = 1; i <= 500; i++) await b1.update("/k", String(i), i);
    await b1.create("/other", "o");
    await b1.close();
    const linesBefore = (await fs.readFile(path.join(dir, LOG_FILE), "utf8")).trim().split("\n").length;
    expect(linesBefore).toBe(502);
    const b2 = await MemoryBackend.open({ dir, maxHistory: 50, snapshotSlack: 10 });
    const linesAfter = (await fs.readFile(path.join(dir, LOG_FILE), "utf8")).trim().split("\n").length;
    expect(linesAfter).toBeLessThan(linesBefore);
    expect(linesAfter).toBeLessThan(120);
    expect(await b2.currentRevision()).toBe(502);
    expect(await b2.compactedRevision()).toBe(452);
    expect((await b2.get("/k")).kv).toEqual({ key: "/k", value: "500", createRevision: 1, modRevision: 501 });
    expect((await b2.list("/", { revision: 460 })).kvs.map((k) => k.value)).toEqual(["459"]);
    await expectExpired(b2.list("/", { revision: 400 }));
    const w = await b2.create("/new", "n");
    expect(w.revision).toBe(503);
    await b2.close();
    const b3 = await MemoryBackend.open({ dir });
    expect(await b3.currentRevision()).toBe(503);
    expect((await b3.list("/")).kvs.map((k) => k.key)).toEqual(["/k", "/new", "/other"]);
    await b3.close();
  });

  it("a log that grows while running is rewritten as a snapshot between batches", async () => {
    const dir = await tmpDir();
    const b1 = await MemoryBackend.open({ dir, maxHistory: 50, snapshotSlack: 10 });
    await b1.create("/a", "0");
    await b1.create("/b", "0");
    // Two writers per round share a batch; snapshots happen while later batches are open.
    for (let i = 1; i <= 300; i++) {
      const [a, b] = [(await b1.get("/a")).kv!, (await b1.get("/b")).kv!];
      const res = await Promise.all([b1.update("/a", String(i), a.modRevision), b1.update("/b", String(i), b.modRevision)]);
      expect(res.every((r) => r.succeeded)).toBe(true);
    }
    expect(await b1.currentRevision()).toBe(602);
    await b1.close();
    const lines = (await fs.readFile(path.join(dir, LOG_FILE), "utf8")).trim().split("\n").length;
    expect(lines).toBeLessThan(200);
    const b2 = await MemoryBackend.open({ dir, maxHistory: 50, snapshotSlack: 10 });
    expect(await b2.currentRevision()).toBe(602);
    expect((await b2.list("/")).kvs.map((kv) => [kv.key, kv.value])).toEqual([["/a", "300"], ["/b", "300"]]);
    expect((await b2.list("/", { revision: 560 })).kvs.map((kv) => kv.value)).toEqual(["279", "279"]);
    await b2.close();
  });
});

describe("memory:// specifics", () => {
  it("auto-compacts to the last maxHistory events", async () => {
    const b = new MemoryBackend({ maxHistory: 10 });
    for (let i = 0; i < 30; i++) await b.create(`/k/${i}`, "v");
    expect(await b.compactedRevision()).toBe(20);
    const ac = new AbortController();
    await expectExpired(new Reader(b.watch("/k/", 5, ac.signal)).take(1));
    const replay = await new Reader<WatchEvent>(b.watch("/k/", 20, ac.signal)).take(10);
    expect(replay.map((e) => e.revision)).toEqual([21, 22, 23, 24, 25, 26, 27, 28, 29, 30]);
    ac.abort();
    await b.close();
  });

  it("lists 100k keys by prefix with limit/startKey quickly", async () => {
    const b = new MemoryBackend({ maxHistory: 1000 });
    const t0 = performance.now();
    for (let i = 0; i < 100_000; i++) await b.create(`/registry/pods/ns${i % 10}/p${i}`, "{}");
    const t1 = performance.now();
    const page = await b.list("/registry/pods/ns3/", { limit: 500 });
    expect(page.kvs).toHaveLength(500);
    expect(page.remaining).toBe(10_000 - 500);
    let pages = 0;
    let startKey: string | undefined;
    for (;;) {
      const pg = await b.list("/registry/pods/", { limit: 1000, ...(startKey ? { startKey } : {}) });
      pages++;
      if (!pg.more) break;
      startKey = pg.kvs[pg.kvs.length - 1]!.key + "\0";
    }
    const t2 = performance.now();
    expect(pages).toBe(100);
    expect(t1 - t0).toBeLessThan(10_000);
    expect(t2 - t1).toBeLessThan(2_000);
    await b.close();
  }, 60_000);

  it("a slow watcher buffers without losing events", async () => {
    const b = new MemoryBackend();
    const ac = new AbortController();
    const reader = new Reader<WatchEvent>(b.watch("/s/", 0, ac.signal));
    for (let i = 0; i < 5000; i++) await b.create(`/s/${i}`, "v");
    const got = await reader.take(5000);
    expect(got.map((e) => e.revision)).toEqual(Array.from({ length: 5000 }, (_, i) => i + 1));
    ac.abort();
    await b.close();
  });
});

describe("openBackend", () => {
  it("rejects unknown schemes with Invalid", async () => {
    let err: unknown;
    try {
      await openBackend("redis://localhost:6379");
    } catch (e) {
      err = e;
    }
    expect(isStorageError(err, "Invalid")).toBe(true);
    expect(String((err as Error).message)).toMatch(/unknown storage scheme "redis"/);
  });

  it("resolves relative file:// paths against the working directory", async () => {
    const dir = await tmpDir();
    const rel = path.relative(process.cwd(), dir);
    const b = await openBackend(`file://${rel}`);
    await b.create("/a", "1");
    await b.close();
    expect((await fs.readdir(dir)).includes(LOG_FILE)).toBe(true);
  });

  it("isResourceExpired recognises the error", () => {
    expect(isResourceExpired(new StorageError("ResourceExpired", "x"))).toBe(true);
  });
});
