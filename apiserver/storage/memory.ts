// The embedded MVCC store behind `memory://` and `file://DIR`: the current keys (sorted index +
// map), a contiguous history of recent events (one per revision) for lists at older revisions and
// watches from older revisions, in-process watch fan-out, and optional append-only-log persistence
// with group commit (filelog.ts: the record format and the torn-tail rule; lockfile.ts: one opener
// per directory).

import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { newLogger, type Logger } from "../../client/log.ts";
import { LOG_FILE, encodeRecord, scanLog, syncDir, type LogRecord } from "./filelog.ts";
import { DirLock } from "./lockfile.ts";
import {
  StorageError,
  type KeyValue,
  type ListOptions,
  type ListResult,
  type ProgressBackend,
  type ProgressWatch,
  type WatchEvent,
  type WatchProgress,
  type WriteResult,
} from "./interface.ts";
import { AsyncQueue, SortedKeys, expired } from "./util.ts";

export { LOG_FILE } from "./filelog.ts";
export { LOCK_FILE } from "./lockfile.ts";

export interface MemoryBackendOptions {
  /** Historical events kept for old-revision lists and watches; older ones are compacted. Default 10_000. */
  maxHistory?: number;
  /** Persist to an append-only log in this directory (created if missing). Needs `MemoryBackend.open`. */
  dir?: string;
  /**
   * Rewrite the log as a snapshot when it has more records than this plus twice the live data
   * (keys + history). Default 10_000.
   */
  snapshotSlack?: number;
  /** Where the store logs (a torn tail dropped, a stale lock taken over). Default: a "storage" logger. */
  log?: Logger;
  /**
   * For `npm run bench -- api --storage file` only, to measure what durability costs: the store as
   * it was before group commit — writes acknowledged (and visible) at once and fsynced in 10 ms
   * batches, so a crash loses acknowledged writes. Not reachable from the CLI.
   */
  unsafeAcknowledgeBeforeSync?: boolean;
}

/** Batch interval of the unsafe (bench-only) mode, as the store had before group commit. */
const UNSAFE_FLUSH_MS = 10;

interface MemWatcher {
  prefix: string;
  queue: AsyncQueue<WatchEvent | WatchProgress>;
  /** Highest revision pushed (event or progress). */
  last: number;
  after: number;
}

/** Records appended with one write and one fdatasync; its writers are answered when that completes. */
interface Batch {
  text: string[];
  records: number;
  lastRev: number;
  done: Promise<void>;
  resolve(): void;
  reject(e: unknown): void;
}

function newBatch(): Batch {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  done.catch(() => undefined); // a writer awaits it; this only keeps an unawaited rejection quiet
  return { text: [], records: 0, lastRev: 0, done, resolve, reject };
}

let opening = false;

/**
 * MemoryBackend: see the file comment. KeyValue objects handed out are frozen and shared.
 *
 * Without `dir` every operation completes synchronously inside the returned promise: a write is
 * visible to every reader and already queued to every watcher when its promise resolves.
 *
 * With `dir`, writes are durable before they are acknowledged or seen (etcd's rule: a write is
 * visible once committed). A write is decided and applied in memory at once, in order — so
 * compare-and-swaps see every earlier write — and its record joins the open batch; its promise
 * resolves after that batch is written and fdatasynced. Until then readers and watchers do not see
 * it: reads answer at the durable revision (`visibleRev`; keys written since are read through
 * `shadow`, their value at that revision), and watch events are fanned out when their batch is
 * durable, just before its writers are answered. A failed compare-and-swap, whose answer reveals
 * the current value, waits until that value is durable too.
 *
 * Group commit: a batch is written as soon as the previous fdatasync completes (or, when the log is
 * idle, at the end of the current event-loop turn, so the writes of one turn share one fsync). No
 * timer: under load every batch holds whatever arrived during the previous fsync — batches grow
 * with the load, so throughput is bounded by the fsync rate times the concurrency, not by a timer
 * period — and an idle store answers a lone write after one fsync instead of after a timer tick.
 * A write waits for at most the fsync in flight plus its own. Measured on the 2-core development
 * machine (raw creates of 300-byte values, 1 / 8 / 64 writers): on completion 4,100 / 23,000 /
 * 86,000 writes/s; a 1 ms batch timer 720 / 5,800 / 40,000; a 10 ms timer 93 / 760 / 5,900.
 *
 * On open the directory is locked (lockfile.ts), the log is replayed (filelog.ts: a torn tail is
 * dropped with a log line, corruption before the tail is an error) and, when large, rewritten as a
 * snapshot of the state at the compacted revision followed by the retained history (temp file +
 * rename), so revisions and recent history survive restarts.
 */
export class MemoryBackend implements ProgressBackend {
  private rev = 0;
  private compacted = 0;
  private readonly kvs = new Map<string, KeyValue>();
  private readonly index = new SortedKeys();
  /** Events for revisions (compacted, rev], in order: history[head + i].revision === compacted + 1 + i. */
  private history: WatchEvent[] = [];
  private head = 0;
  private readonly maxHistory: number;
  private readonly watchers = new Set<MemWatcher>();
  private closed = false;
  /** The revision readers and watchers see: every write up to it is durable (or there is no log). */
  private visibleRev = 0;
  /** For keys written after visibleRev: their value at visibleRev (null: absent). */
  private readonly shadow = new Map<string, KeyValue | null>();

  // persistence
  private dir: string | undefined;
  private readonly snapshotSlack: number;
  private readonly unsafeAck: boolean;
  private readonly log: Logger;
  private lock: DirLock | undefined;
  private fh: fsp.FileHandle | undefined;
  /** Highest revision written and fdatasynced. */
  private durableRev = 0;
  private logRecords = 0;
  /** The batch taking new records, and the one being written. */
  private batch: Batch | undefined;
  private inflight: Batch | undefined;
  private flushing = false;
  private kickScheduled = false;
  private unsafeTimer: NodeJS.Timeout | undefined;
  private flushError: unknown = undefined;
  private readonly stats = { batches: 0, records: 0 };

  constructor(opts: MemoryBackendOptions = {}) {
    if (opts.dir !== undefined && !opening) throw new Error("MemoryBackend: a persistent store (dir) is opened with MemoryBackend.open");
    this.maxHistory = Math.max(1, opts.maxHistory ?? 10_000);
    this.dir = opts.dir;
    this.snapshotSlack = opts.snapshotSlack ?? 10_000;
    this.unsafeAck = opts.unsafeAcknowledgeBeforeSync ?? false;
    this.log = opts.log ?? newLogger("storage");
  }

  /** Opens a backend; with `dir`, locks it and replays (and maybe compacts) the log there first. */
  static async open(opts: MemoryBackendOptions = {}): Promise<MemoryBackend> {
    opening = true;
    let b: MemoryBackend;
    try {
      b = new MemoryBackend(opts);
    } finally {
      opening = false;
    }
    if (b.dir !== undefined) await b.load(b.dir);
    return b;
  }

  // ---- reads (at visibleRev) ----

  async currentRevision(): Promise<number> {
    this.check();
    return this.visibleRev;
  }

  async compactedRevision(): Promise<number> {
    this.check();
    return this.compacted;
  }

  async get(key: string): Promise<{ revision: number; kv?: KeyValue }> {
    this.check();
    const kv = this.shadow.has(key) ? this.shadow.get(key) : this.kvs.get(key);
    return kv ? { revision: this.visibleRev, kv } : { revision: this.visibleRev };
  }

  async count(prefix: string): Promise<{ revision: number; count: number }> {
    this.check();
    const [s, e] = this.index.range(prefix);
    let count = e - s;
    for (const [k, v] of this.shadow) {
      if (k.startsWith(prefix)) count += (v ? 1 : 0) - (this.kvs.has(k) ? 1 : 0);
    }
    return { revision: this.visibleRev, count };
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    this.check();
    const at = opts.revision && opts.revision > 0 ? opts.revision : this.visibleRev;
    if (at < this.compacted) throw expired(at, this.compacted);
    if (at > this.visibleRev) {
      throw new StorageError("Invalid", `revision ${at} is a future revision (current ${this.visibleRev})`);
    }
    return at === this.rev ? this.listCurrent(prefix, opts) : this.listAt(prefix, at, opts);
  }

  private listCurrent(prefix: string, opts: ListOptions): ListResult {
    const [s, e] = this.index.range(prefix, opts.startKey);
    const limit = opts.limit && opts.limit > 0 ? opts.limit : Infinity;
    const n = Math.min(e - s, limit);
    const kvs = this.index.slice(s, s + n).map((k) => this.kvs.get(k)!);
    const remaining = e - s - n;
    return { revision: this.rev, kvs, more: remaining > 0, remaining };
  }

  /** A list at an older revision: the current keys with the changes after `at` undone. */
  private listAt(prefix: string, at: number, opts: ListOptions): ListResult {
    const from = opts.startKey !== undefined && opts.startKey > prefix ? opts.startKey : prefix;
    // key -> value at `at` (null: absent) for keys in range changed after `at`. Walking backwards,
    // the last write wins, i.e. the earliest event after `at` decides (its prevKv is the old value).
    const overrides = new Map<string, KeyValue | null>();
    for (let r = this.rev; r > at; r--) {
      const ev = this.event(r);
      const k = ev.kv.key;
      if (k.startsWith(prefix) && k >= from) overrides.set(k, ev.prevKv ?? null);
    }
    const changed = [...overrides.keys()].sort();
    const [s, e] = this.index.range(prefix, opts.startKey);
    const limit = opts.limit && opts.limit > 0 ? opts.limit : Infinity;
    // At most limit + changed.length current keys can be consumed by the merge.
    const current = this.index.slice(s, Math.min(e, s + limit + changed.length));
    const kvs: KeyValue[] = [];
    let i = 0;
    let j = 0;
    let lastKey: string | undefined;
    while (kvs.length < limit && (i < current.length || j < changed.length)) {
      const ci = i < current.length ? current[i]! : undefined;
      const cj = j < changed.length ? changed[j]! : undefined;
      let k: string;
      if (cj === undefined || (ci !== undefined && ci < cj)) {
        k = ci!;
        i++;
      } else {
        k = cj;
        j++;
        if (ci === cj) i++;
      }
      const v = overrides.has(k) ? overrides.get(k)! : this.kvs.get(k)!;
      if (v !== null) {
        kvs.push(v);
        lastKey = k;
      }
    }
    let remaining = 0;
    if (kvs.length >= limit && lastKey !== undefined) {
      // Keys after lastKey now, adjusted by the keys whose presence differs at `at`.
      const after = this.index.lowerBound(lastKey + "\0");
      remaining = Math.max(0, e - after);
      for (const k of changed) {
        if (k <= lastKey) continue;
        remaining += (overrides.get(k) ? 1 : 0) - (this.kvs.has(k) ? 1 : 0);
      }
    }
    return { revision: at, kvs, more: remaining > 0, remaining };
  }

  private event(rev: number): WatchEvent {
    return this.history[this.head + (rev - this.compacted - 1)]!;
  }

  // ---- writes ----

  async create(key: string, value: string): Promise<WriteResult> {
    this.check();
    const cur = this.kvs.get(key);
    if (cur) return this.settled({ revision: this.rev, succeeded: false, kv: cur });
    const ev = this.applyPut(key, value);
    await this.logWrite({ type: "put", rev: ev.revision, key, value });
    return { revision: ev.revision, succeeded: true, kv: ev.kv };
  }

  async update(key: string, value: string, expectedRevision: number): Promise<WriteResult> {
    this.check();
    const cur = this.kvs.get(key);
    if (!cur) return this.settled({ revision: this.rev, succeeded: false });
    if (cur.modRevision !== expectedRevision) return this.settled({ revision: this.rev, succeeded: false, kv: cur });
    const ev = this.applyPut(key, value);
    await this.logWrite({ type: "put", rev: ev.revision, key, value });
    return { revision: ev.revision, succeeded: true, kv: ev.kv };
  }

  async delete(key: string, expectedRevision?: number): Promise<WriteResult> {
    this.check();
    const cur = this.kvs.get(key);
    if (!cur) return this.settled({ revision: this.rev, succeeded: false });
    if (expectedRevision !== undefined && expectedRevision > 0 && cur.modRevision !== expectedRevision) {
      return this.settled({ revision: this.rev, succeeded: false, kv: cur });
    }
    const ev = this.applyDelete(key);
    await this.logWrite({ type: "delete", rev: ev.revision, key });
    return { revision: ev.revision, succeeded: true, kv: ev.kv };
  }

  /** A failed compare-and-swap's answer, once the state it was decided on (up to `rev`) is durable. */
  private async settled(result: WriteResult): Promise<WriteResult> {
    const rev = this.rev;
    if (rev > this.visibleRev) {
      const b = this.inflight && rev <= this.inflight.lastRev ? this.inflight : this.batch;
      if (b) await b.done;
    }
    return result;
  }

  async compact(revision: number): Promise<void> {
    this.check();
    if (revision > this.visibleRev) {
      throw new StorageError("Invalid", `cannot compact to future revision ${revision} (current ${this.visibleRev})`);
    }
    this.compactTo(Math.min(revision, this.compactionLimit()));
  }

  /** History after the last durable revision is kept: a snapshot is written at that revision. */
  private compactionLimit(): number {
    return this.dir === undefined ? this.rev : this.durableRev;
  }

  private compactTo(revision: number): void {
    if (revision <= this.compacted) return;
    this.head += revision - this.compacted;
    this.compacted = revision;
    if (this.head > 1024 && this.head * 2 > this.history.length) {
      this.history = this.history.slice(this.head);
      this.head = 0;
    }
  }

  private applyPut(key: string, value: string): WatchEvent {
    const prev = this.kvs.get(key);
    const rev = this.rev + 1;
    const kv: KeyValue = Object.freeze({
      key,
      value,
      createRevision: prev ? prev.createRevision : rev,
      modRevision: rev,
    });
    this.kvs.set(key, kv);
    if (!prev) this.index.insert(key);
    const ev: WatchEvent = prev
      ? { type: "put", created: false, kv, prevKv: prev, revision: rev }
      : { type: "put", created: true, kv, revision: rev };
    this.record(ev);
    return ev;
  }

  private applyDelete(key: string): WatchEvent {
    const prev = this.kvs.get(key)!;
    const rev = this.rev + 1;
    const kv: KeyValue = Object.freeze({ ...prev, modRevision: rev });
    this.kvs.delete(key);
    this.index.remove(key);
    const ev: WatchEvent = { type: "delete", created: false, kv, prevKv: prev, revision: rev };
    this.record(ev);
    return ev;
  }

  private record(ev: WatchEvent): void {
    this.rev = ev.revision;
    this.history.push(ev);
    if (this.dir === undefined || this.unsafeAck || this.fh === undefined) {
      // No log, the unsafe mode, or replaying the log at open: visible at once.
      if (this.dir === undefined || this.fh === undefined) this.durableRev = this.rev;
      this.publish(this.rev);
    } else if (!this.shadow.has(ev.kv.key)) {
      this.shadow.set(ev.kv.key, ev.prevKv ?? null);
    }
    this.autoCompact();
  }

  private autoCompact(): void {
    if (this.rev - this.compacted > this.maxHistory) this.compactTo(Math.min(this.rev - this.maxHistory, this.compactionLimit()));
  }

  /** Makes revisions up to `upTo` visible: reads answer there, watchers get their events. */
  private publish(upTo: number): void {
    const from = this.visibleRev;
    if (upTo <= from) return;
    this.visibleRev = upTo;
    if (this.watchers.size > 0) {
      for (let r = from + 1; r <= upTo; r++) {
        const ev = this.event(r);
        for (const w of this.watchers) {
          if (ev.revision > w.after && ev.kv.key.startsWith(w.prefix)) {
            w.queue.push(ev);
            w.last = ev.revision;
          }
        }
      }
    }
    if (this.shadow.size > 0) {
      this.shadow.clear();
      for (let r = upTo + 1; r <= this.rev; r++) {
        const ev = this.event(r);
        if (!this.shadow.has(ev.kv.key)) this.shadow.set(ev.kv.key, ev.prevKv ?? null);
      }
    }
  }

  // ---- watch ----

  watch(prefix: string, afterRevision: number, signal: AbortSignal): AsyncIterable<WatchEvent> {
    const w = this.watchWithProgress(prefix, afterRevision, signal, { progressIntervalMs: 0 });
    return onlyEvents(w);
  }

  /** See ProgressBackend. Registration (and the history replay) happens now, not at first `next()`. */
  watchWithProgress(
    prefix: string,
    afterRevision: number,
    signal: AbortSignal,
    opts: { progressIntervalMs?: number } = {},
  ): ProgressWatch {
    let timer: NodeJS.Timeout | undefined;
    const cleanup = () => {
      this.watchers.delete(w);
      if (timer) clearInterval(timer);
      signal.removeEventListener("abort", onAbort);
    };
    const onAbort = () => {
      cleanup();
      w.queue.end();
    };
    const w: MemWatcher = { prefix, queue: new AsyncQueue(cleanup), last: afterRevision, after: afterRevision };
    const progress = () => {
      if (w.queue.closed || this.visibleRev <= w.last) return;
      w.last = this.visibleRev;
      w.queue.push({ type: "progress", revision: this.visibleRev });
    };
    const result: ProgressWatch = {
      [Symbol.asyncIterator]: () => w.queue[Symbol.asyncIterator](),
      requestProgress: progress,
    };
    if (this.closed) {
      w.queue.fail(new StorageError("Unreachable", "storage backend is closed"));
      return result;
    }
    if (signal.aborted) {
      w.queue.end();
      return result;
    }
    if (afterRevision < this.compacted) {
      w.queue.fail(expired(afterRevision, this.compacted));
      return result;
    }
    for (let r = Math.max(afterRevision, this.compacted) + 1; r <= this.visibleRev; r++) {
      const ev = this.event(r);
      if (ev.kv.key.startsWith(prefix)) {
        w.queue.push(ev);
        w.last = r;
      }
    }
    this.watchers.add(w);
    signal.addEventListener("abort", onAbort, { once: true });
    const interval = opts.progressIntervalMs ?? 1000;
    if (interval > 0) {
      timer = setInterval(progress, interval);
      timer.unref();
    }
    return result;
  }

  // ---- lifecycle ----

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.watchers) w.queue.fail(new StorageError("Unreachable", "storage backend closed"));
    this.watchers.clear();
    if (this.unsafeTimer) clearTimeout(this.unsafeTimer);
    this.unsafeTimer = undefined;
    try {
      await this.flush();
      await this.fh?.close();
      this.fh = undefined;
    } finally {
      await this.lock?.release();
      this.lock = undefined;
    }
    if (this.flushError !== undefined) throw this.flushError;
  }

  private check(): void {
    if (this.closed) throw new StorageError("Unreachable", "storage backend is closed");
    if (this.flushError !== undefined) throw this.writeFailed();
  }

  private writeFailed(): StorageError {
    return new StorageError("InternalError", `storage log write failed: ${String(this.flushError)}`, undefined, { cause: this.flushError });
  }

  // ---- persistence ----

  /** Adds a write's record to the open batch; resolves once it is durable (at once without a log or in the unsafe mode). */
  private logWrite(rec: LogRecord & { rev: number }): Promise<void> | undefined {
    if (this.dir === undefined) return undefined;
    const b = (this.batch ??= newBatch());
    b.text.push(encodeRecord(rec));
    b.records++;
    b.lastRev = rec.rev;
    if (this.unsafeAck) {
      this.unsafeTimer ??= setTimeout(() => {
        this.unsafeTimer = undefined;
        void this.flushLoop();
      }, UNSAFE_FLUSH_MS);
      return undefined;
    }
    // Group commit (see the class comment): a running flush loop takes this batch when its fsync
    // completes; an idle one starts after the writes of this event-loop turn have joined.
    if (!this.flushing && !this.kickScheduled) {
      this.kickScheduled = true;
      setImmediate(() => {
        this.kickScheduled = false;
        void this.flushLoop();
      });
    }
    return b.done;
  }

  /** Writes and fdatasyncs batches until none is open; maybe rewrites the log as a snapshot. */
  private async flushLoop(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.batch !== undefined && this.flushError === undefined && this.fh !== undefined) {
        const b = this.batch;
        this.batch = undefined;
        this.inflight = b;
        try {
          await this.fh.write(b.text.join(""));
          await this.fh.datasync();
        } catch (e) {
          this.fail(e);
          break;
        }
        this.inflight = undefined;
        this.durableRev = b.lastRev;
        this.logRecords += b.records;
        this.stats.batches++;
        this.stats.records += b.records;
        this.publish(b.lastRev);
        this.autoCompact();
        b.resolve();
        if (!this.closed && this.logRecords > this.snapshotThreshold()) {
          try {
            await this.rewriteSnapshot();
          } catch (e) {
            this.fail(e);
            break;
          }
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  /** The log cannot be written: fail the waiting writers and every later operation. */
  private fail(e: unknown): void {
    this.flushError ??= e;
    const err = this.writeFailed();
    this.inflight?.reject(err);
    this.batch?.reject(err);
    this.inflight = undefined;
    this.batch = undefined;
    this.log.error({ err: e }, "storage log write failed; the store refuses further operations");
  }

  /** Batches written (one fdatasync each) and the write records in them, since open. */
  commitStats(): { batches: number; records: number } {
    return { ...this.stats };
  }

  /** Resolves when every write made so far is durable (or the log has failed). */
  async flush(): Promise<void> {
    while (this.flushError === undefined && (this.batch !== undefined || this.inflight !== undefined)) {
      const b = this.batch ?? this.inflight!;
      if (!this.flushing) void this.flushLoop();
      await b.done.catch(() => undefined);
    }
  }

  private snapshotThreshold(): number {
    return this.snapshotSlack + 2 * (this.kvs.size + (this.rev - this.compacted));
  }

  /**
   * The log content equivalent to the durable state: the state at `compacted`, then the history up
   * to `durableRev` (later writes are in the open batch and are appended after the snapshot).
   */
  private snapshotRecords(): string[] {
    const out: string[] = [encodeRecord({ type: "snapshot", rev: this.compacted })];
    for (const kv of this.listAt("", this.compacted, {}).kvs) {
      out.push(encodeRecord({ type: "kv", key: kv.key, value: kv.value, create: kv.createRevision, mod: kv.modRevision }));
    }
    for (let r = this.compacted + 1; r <= this.durableRev; r++) {
      const ev = this.event(r);
      out.push(
        encodeRecord(ev.type === "put" ? { type: "put", rev: r, key: ev.kv.key, value: ev.kv.value } : { type: "delete", rev: r, key: ev.kv.key }),
      );
    }
    return out;
  }

  private async rewriteSnapshot(): Promise<void> {
    const dir = this.dir!;
    const records = this.snapshotRecords(); // synchronous: a consistent cut at durableRev
    const file = path.join(dir, LOG_FILE);
    const tmp = file + ".tmp";
    const h = await fsp.open(tmp, "w");
    try {
      await h.write(records.join(""));
      await h.sync();
    } finally {
      await h.close();
    }
    await this.fh?.close();
    await fsp.rename(tmp, file);
    await syncDir(dir);
    this.fh = await fsp.open(file, "a");
    this.logRecords = records.length;
  }

  private async load(dir: string): Promise<void> {
    await fsp.mkdir(dir, { recursive: true });
    this.lock = await DirLock.acquire(dir, this.log);
    try {
      await this.replayLog(dir);
    } catch (e) {
      await this.fh?.close();
      this.fh = undefined;
      await this.lock.release();
      this.lock = undefined;
      throw e;
    }
  }

  private async replayLog(dir: string): Promise<void> {
    const file = path.join(dir, LOG_FILE);
    await fsp.rm(file + ".tmp", { force: true }); // an interrupted snapshot rewrite; the log is intact
    let buf = Buffer.alloc(0);
    let exists = true;
    try {
      buf = await fsp.readFile(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      exists = false;
    }
    const scanned = scanLog(buf, file);
    for (const rec of scanned.records) this.replay(rec, file);
    this.logRecords = scanned.records.length;
    if (scanned.torn) {
      this.log.warn(
        { file, offset: scanned.torn.offset, bytes: scanned.torn.bytes, reason: scanned.torn.reason, revision: this.rev },
        `storage log ${file}: dropped a torn last record (${scanned.torn.bytes} bytes at byte ${scanned.torn.offset}, ${scanned.torn.reason}) left by a crash during a write that was never acknowledged; the store is at revision ${this.rev}`,
      );
      const h = await fsp.open(file, "r+");
      try {
        await h.truncate(scanned.validBytes);
        await h.sync();
      } finally {
        await h.close();
      }
    }
    if (scanned.legacy || this.logRecords > this.snapshotThreshold()) {
      await this.rewriteSnapshot(); // also converts an old unchecksummed log
    } else {
      this.fh = await fsp.open(file, "a");
      if (!exists) await syncDir(dir);
    }
  }

  private replay(line: LogRecord, file: string): void {
    switch (line.type) {
      case "snapshot":
        this.rev = line.rev;
        this.compacted = line.rev;
        this.visibleRev = line.rev;
        this.durableRev = line.rev;
        this.history = [];
        this.head = 0;
        this.kvs.clear();
        this.index.clear();
        break;
      case "kv":
        this.kvs.set(line.key, Object.freeze({ key: line.key, value: line.value, createRevision: line.create, modRevision: line.mod }));
        this.index.insert(line.key);
        break;
      case "put":
      case "delete":
        if (line.rev !== this.rev + 1) {
          throw new StorageError("InternalError", `storage log ${file}: revision ${line.rev} follows ${this.rev}`);
        }
        if (line.type === "put") this.applyPut(line.key, line.value);
        else if (this.kvs.has(line.key)) this.applyDelete(line.key);
        else throw new StorageError("InternalError", `storage log ${file}: delete of absent key ${line.key}`);
        break;
      default:
        throw new StorageError("InternalError", `storage log ${file}: unknown record type ${JSON.stringify((line as { type: unknown }).type)}`);
    }
  }
}

async function* onlyEvents(w: AsyncIterable<WatchEvent | WatchProgress>): AsyncGenerator<WatchEvent> {
  for await (const e of w) if (e.type !== "progress") yield e;
}
