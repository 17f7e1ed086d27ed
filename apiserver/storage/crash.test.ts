// The file:// store under crashes: no acknowledged write is lost when the writer (the backend in a
// child process, or a real apiserver answering HTTP clients) is SIGKILLed at a
// random point; a second opener is refused with the holder's pid; a dead holder's lock is taken
// over; a torn last record is dropped and logged; corruption before the tail is an error.

import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs/promises";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { Writable } from "node:stream";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { newLogger } from "../../client/log.ts";
import { findFreePort } from "../../test/harness/etcd.ts";
import { LOCK_FILE, LOG_FILE, MemoryBackend, isStorageError, openBackend, type Backend } from "./index.ts";

const WRITER = fileURLToPath(new URL("./testdata/crash-writer.ts", import.meta.url));
const MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));

const tmpDirs: string[] = [];
async function tmpDir(): Promise<string> {
  const d = await fs.mkdtemp(path.join(os.tmpdir(), "kubelab-crash-"));
  tmpDirs.push(d);
  return d;
}
const children = new Set<ChildProcess>();
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await Promise.all(tmpDirs.map((d) => fs.rm(d, { recursive: true, force: true })));
});

/** A logger whose lines (JSON) are kept in `lines`. */
function capturingLog(): { log: ReturnType<typeof newLogger>; lines: string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...String(chunk).split("\n").filter((l) => l !== ""));
      cb();
    },
  });
  return { log: newLogger("storage", { level: "info", destination }), lines };
}
const messages = (lines: string[]) => lines.map((l) => (JSON.parse(l) as { msg: string }).msg);

/** mulberry32: a small seeded PRNG, so a failing run can be repeated with its printed seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Starts the writer child on `dir`; resolves once its store is open. */
async function startWriter(dir: string, acks: string, run: string, concurrency: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", WRITER, dir, acks, run, String(concurrency)], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, KUBELAB_LOG_LEVEL: "warn" },
  });
  children.add(child);
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += String(d)));
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.value !== "ready") throw new Error(`writer did not start (exit ${child.exitCode}):\n${stderr}`);
  child.once("exit", () => children.delete(child));
  return child;
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) throw new Error(`writer exited early (${child.exitCode})`);
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;
}

/** The acknowledged writes in an acks file: created numbers and updated numbers. */
async function readAcks(file: string): Promise<{ created: number[]; updated: Set<number> }> {
  const text = await fs.readFile(file, "utf8");
  const created: number[] = [];
  const updated = new Set<number>();
  for (const line of text.split("\n")) {
    const m = /^([cu]) (\d+)$/.exec(line);
    if (!m) continue; // a line cut by the kill was written after the ack, never mind
    if (m[1] === "c") created.push(Number(m[2]));
    else updated.add(Number(m[2]));
  }
  return { created, updated };
}

describe("file:// store crash safety", () => {
  it("loses no acknowledged write when the writer is SIGKILLed at random points", async () => {
    const seed = Number(process.env.CRASH_SEED ?? Date.now() % 1_000_000);
    console.log(`crash test seed ${seed} (repeat with CRASH_SEED=${seed})`);
    const rand = prng(seed);
    const dir = await tmpDir();
    const runs = 6;
    const acked: { run: string; acks: string }[] = [];
    for (let r = 0; r < runs; r++) {
      const run = `r${r}`;
      const acks = path.join(dir, `acks-${run}`);
      const concurrency = 1 + Math.floor(rand() * 64);
      const child = await startWriter(path.join(dir, "store"), acks, run, concurrency);
      const delay = 100 + Math.floor(rand() * 900);
      await new Promise((res) => setTimeout(res, delay));
      await kill(child);
      acked.push({ run, acks });

      // Restart: the store opens (taking over the dead writer's lock) and every acknowledged write of every run is there.
      const { log, lines } = capturingLog();
      const b = await openBackend(`file://${path.join(dir, "store")}`, { log });
      try {
        expect(messages(lines).some((m) => m.includes("taking over a stale lock") && m.includes(`process ${child.pid} is gone`))).toBe(true);
        for (const l of lines) expect(JSON.parse(l).msg).not.toMatch(/corrupt/);
        let total = 0;
        for (const a of acked) {
          const { created, updated } = await readAcks(a.acks);
          if (a.run === run) {
            expect(created.length, `run ${run} (concurrency ${concurrency}, killed after ${delay} ms) acknowledged nothing`).toBeGreaterThan(0);
          }
          const missing: string[] = [];
          for (const n of created) {
            const got = await b.get(`/registry/configmaps/crash/${a.run}-${n}`);
            if (!got.kv) {
              missing.push(`${a.run}-${n}`);
              continue;
            }
            const v = JSON.parse(got.kv.value) as { n: number; v: number };
            expect(v.n).toBe(n);
            if (updated.has(n)) expect(v.v, `update of ${a.run}-${n} was acknowledged`).toBe(2);
          }
          expect(missing, `seed ${seed}: acknowledged but lost after the crash`).toEqual([]);
          total += created.length;
        }
        const count = (await b.count("/registry/configmaps/crash/")).count;
        expect(count).toBeGreaterThanOrEqual(total);
        console.log(`run ${run}: concurrency ${concurrency}, killed after ${delay} ms, ${total} acknowledged creates so far, ${count} stored, revision ${await b.currentRevision()}`);
      } finally {
        await b.close();
      }
    }
  }, 120_000);
});

describe("file:// store crash safety through the apiserver", () => {
  /** POSTs a ConfigMap; resolves with the HTTP status (0 when the connection fails). */
  function createConfigMap(agent: http.Agent, port: number, name: string): Promise<number> {
    return new Promise((resolve) => {
      const req = http.request(
        { host: "127.0.0.1", port, method: "POST", path: "/api/v1/namespaces/default/configmaps", agent, headers: { "Content-Type": "application/json" } },
        (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
          res.on("error", () => resolve(0));
        },
      );
      req.on("error", () => resolve(0));
      req.end(JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data: { n: name } }));
    });
  }

  it("every create answered 201 is there after the apiserver is SIGKILLed and the store reopened", async () => {
    const seed = Number(process.env.CRASH_SEED ?? Date.now() % 1_000_000);
    console.log(`apiserver crash test seed ${seed} (repeat with CRASH_SEED=${seed})`);
    const rand = prng(seed);
    const dir = path.join(await tmpDir(), "store");
    const acked = new Set<string>();
    for (let r = 0; r < 3; r++) {
      const ackedAtStart = acked.size;
      const port = await findFreePort();
      const apiserver = spawn(process.execPath, ["--import", "tsx", MAIN, "apiserver", "--storage", `file://${dir}`, "--insecure-serving", "--port", String(port)], {
        stdio: ["ignore", "ignore", "pipe"],
        env: { ...process.env, KUBELAB_LOG_LEVEL: "warn" },
      });
      children.add(apiserver);
      let stderr = "";
      apiserver.stderr!.on("data", (d: Buffer) => (stderr += String(d)));
      const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
      for (let i = 0; ; i++) {
        const ok = await new Promise<boolean>((res) => {
          http.get({ host: "127.0.0.1", port, path: "/readyz", agent }, (resp) => {
            resp.resume();
            res(resp.statusCode === 200);
          }).on("error", () => res(false));
        });
        if (ok) break;
        if (apiserver.exitCode !== null || i > 300) throw new Error(`apiserver did not become ready:\n${stderr}`);
        await new Promise((res) => setTimeout(res, 100));
      }
      // 32 clients create as fast as they can until the apiserver dies under them.
      let dead = false;
      let next = 0;
      const clients = Array.from({ length: 32 }, async () => {
        while (!dead) {
          const name = `r${r}-${next++}`;
          const status = await createConfigMap(agent, port, name);
          if (status === 201) acked.add(name);
          else if (status !== 0) throw new Error(`create ${name} answered ${status}`);
        }
      });
      const delay = 300 + Math.floor(rand() * 1500);
      await new Promise((res) => setTimeout(res, delay));
      await kill(apiserver);
      dead = true;
      await Promise.all(clients);
      agent.destroy();

      const b = await openBackend(`file://${dir}`, { log: capturingLog().log });
      try {
        const names = new Set(
          (await b.list("/registry/configmaps/")).kvs.map((kv) => (JSON.parse(kv.value) as { metadata: { name: string } }).metadata.name),
        );
        const lost = [...acked].filter((n) => !names.has(n));
        expect(lost, `seed ${seed}: answered 201 but lost after the crash`).toEqual([]);
        expect(acked.size - ackedAtStart, `run ${r} (killed after ${delay} ms) got no 201`).toBeGreaterThan(0);
        console.log(`apiserver run ${r}: killed after ${delay} ms, ${acked.size} creates answered 201 so far, ${names.size} stored`);
      } finally {
        await b.close();
      }
    }
  }, 120_000);
});

describe("file:// store lock", () => {
  it("a second opener in another process gets one line naming the holder's pid", async () => {
    const dir = await tmpDir();
    const holder = await startWriter(dir, path.join(dir, "acks"), "hold", 0);
    let err: unknown;
    try {
      await openBackend(`file://${dir}`);
    } catch (e) {
      err = e;
    }
    expect(isStorageError(err)).toBe(true);
    const msg = (err as Error).message;
    expect(msg).not.toContain("\n");
    expect(msg).toBe(
      `storage directory ${dir} is in use by process ${holder.pid} (lock file ${path.join(dir, LOCK_FILE)}); stop it first, or open another directory`,
    );
    await kill(holder);
    // Once the holder is dead its lock is stale and is taken over, with a log line.
    const { log, lines } = capturingLog();
    const b = await openBackend(`file://${dir}`, { log });
    expect(messages(lines)).toEqual([
      `storage directory ${dir}: taking over a stale lock (process ${holder.pid} is gone)`,
    ]);
    await b.create("/a", "1");
    await b.close();
    // A clean close removes the lock: the next open logs nothing.
    await expect(fs.access(path.join(dir, LOCK_FILE))).rejects.toThrow();
    const again = capturingLog();
    const b2 = await openBackend(`file://${dir}`, { log: again.log });
    expect(again.lines).toEqual([]);
    expect((await b2.get("/a")).kv?.value).toBe("1");
    await b2.close();
  }, 60_000);

  it("a second open in the same process is refused too, naming this process", async () => {
    const dir = await tmpDir();
    const b = await openBackend(`file://${dir}`);
    await expect(MemoryBackend.open({ dir })).rejects.toThrow(
      `storage directory ${dir} is in use by this process (pid ${process.pid}) (lock file ${path.join(dir, LOCK_FILE)}); stop it first, or open another directory`,
    );
    await b.close();
    const b2 = await openBackend(`file://${dir}`);
    await b2.close();
  });

  it("a lock left by an earlier process with this process's pid is stale", async () => {
    const dir = await tmpDir();
    await fs.writeFile(path.join(dir, LOCK_FILE), JSON.stringify({ pid: process.pid, host: os.hostname(), start: "1" }) + "\n");
    const { log, lines } = capturingLog();
    const b = await openBackend(`file://${dir}`, { log });
    expect(messages(lines)[0]).toMatch(/taking over a stale lock/);
    await b.close();
  });
});

describe("file:// store log damage", () => {
  async function writeSome(dir: string, n: number): Promise<void> {
    const b = await openBackend(`file://${dir}`);
    for (let i = 1; i <= n; i++) await b.create(`/k/${String(i).padStart(3, "0")}`, `value ${i}`);
    await b.close();
  }

  it("a torn last record (log cut mid-record) is dropped with a log line; the store opens and goes on", async () => {
    const dir = await tmpDir();
    await writeSome(dir, 10);
    const file = path.join(dir, LOG_FILE);
    const size = (await fs.stat(file)).size;
    await fs.truncate(file, size - 7);
    const { log, lines } = capturingLog();
    const b = await openBackend(`file://${dir}`, { log });
    const msgs = messages(lines);
    expect(msgs).toHaveLength(1);
    expect(msgs[0]).toMatch(new RegExp(`^storage log ${file}: dropped a torn last record \\(\\d+ bytes at byte \\d+, unterminated record\\)`));
    expect(msgs[0]).toContain("the store is at revision 9");
    expect(await b.currentRevision()).toBe(9);
    expect((await b.get("/k/010")).kv).toBeUndefined();
    expect((await b.get("/k/009")).kv?.value).toBe("value 9");
    expect((await b.create("/k/010", "again")).revision).toBe(10);
    await b.close();
    const again = capturingLog();
    const b2 = await openBackend(`file://${dir}`, { log: again.log });
    expect(again.lines).toEqual([]);
    expect((await b2.get("/k/010")).kv?.value).toBe("again");
    await b2.close();
  });

  it("a last record with a bad checksum is a torn tail too", async () => {
    const dir = await tmpDir();
    await writeSome(dir, 5);
    const file = path.join(dir, LOG_FILE);
    const buf = await fs.readFile(file);
    buf[buf.length - 4] ^= 0x01; // inside the last record's JSON
    await fs.writeFile(file, buf);
    const { log, lines } = capturingLog();
    const b = await openBackend(`file://${dir}`, { log });
    expect(messages(lines)[0]).toContain("checksum mismatch");
    expect(await b.currentRevision()).toBe(4);
    await b.close();
  });

  it("a damaged record with intact records after it is an error, not silently dropped", async () => {
    const dir = await tmpDir();
    await writeSome(dir, 10);
    const file = path.join(dir, LOG_FILE);
    const text = await fs.readFile(file, "utf8");
    const at = text.indexOf("value 5");
    await fs.writeFile(file, text.slice(0, at) + "valuE 5" + text.slice(at + 7));
    const offset = text.lastIndexOf("\n", at) + 1;
    let err: unknown;
    try {
      await openBackend(`file://${dir}`);
    } catch (e) {
      err = e;
    }
    expect(isStorageError(err, "InternalError")).toBe(true);
    expect((err as Error).message).toBe(
      `storage log ${file} is corrupt at byte ${offset} (record 5: checksum mismatch) and intact records follow it, so it is not a write torn by a crash; restore the directory from a backup, or move the log aside to start empty`,
    );
    // The failed open released its lock and left the log alone.
    await expect(fs.access(path.join(dir, LOCK_FILE))).rejects.toThrow();
    expect(await fs.readFile(file, "utf8")).toContain("valuE 5");
  });

  it("a log in the old unchecksummed format is read and rewritten with checksums", async () => {
    const dir = await tmpDir();
    const file = path.join(dir, LOG_FILE);
    await fs.writeFile(
      file,
      ['{"type":"put","rev":1,"key":"/a","value":"1"}', '{"type":"put","rev":2,"key":"/b","value":"2"}', '{"type":"delete","rev":3,"key":"/a"}', '{"type":"put","rev":4,"ke'].join("\n"),
    );
    const b = await openBackend(`file://${dir}`);
    expect(await b.currentRevision()).toBe(3);
    expect((await b.list("/")).kvs.map((kv) => kv.key)).toEqual(["/b"]);
    await b.close();
    expect((await fs.readFile(file, "utf8")).split("\n")[0]).toMatch(/^[0-9a-f]{8} \{"type":"snapshot"/);
    const b2 = await openBackend(`file://${dir}`);
    expect(await b2.currentRevision()).toBe(3);
    await b2.close();
  });
});

describe("file:// store visibility", () => {
  it("a write is not seen by readers or watchers until it is durable, and is when acknowledged", async () => {
    const dir = await tmpDir();
    const b: Backend = await openBackend(`file://${dir}`);
    await b.create("/v/a", "1");
    const ac = new AbortController();
    const seen: number[] = [];
    const watching = (async () => {
      for await (const ev of b.watch("/v/", 1, ac.signal)) seen.push(ev.revision);
    })();
    const write = b.create("/v/b", "2"); // applied in memory now; its fsync is still to come
    expect((await b.get("/v/b")).kv).toBeUndefined();
    expect(await b.currentRevision()).toBe(1);
    expect((await b.list("/v/")).kvs.map((kv) => kv.key)).toEqual(["/v/a"]);
    expect((await b.count("/v/")).count).toBe(1);
    await expect(b.list("/v/", { revision: 2 })).rejects.toThrow(/future revision/);
    expect(seen).toEqual([]);
    // A conflicting write waits for the durable state it reports.
    const conflict = await b.create("/v/b", "other");
    expect(conflict).toMatchObject({ succeeded: false, kv: { value: "2", modRevision: 2 } });
    expect((await b.get("/v/b")).kv?.value).toBe("2");
    expect(await write).toMatchObject({ revision: 2, succeeded: true });
    for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(seen).toEqual([2]);
    expect((await b.get("/v/b")).kv?.value).toBe("2");
    expect(await b.currentRevision()).toBe(2);
    ac.abort();
    await watching;
    await b.close();
  });
});
