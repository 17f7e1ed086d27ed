// The embedded MVCC store behind `memory://` and `file://DIR`: the current keys (sorted index +
// map), a contiguous history of recent events (one per revision) for lists at older revisions and
// watches from older revisions, in-process watch fan-out, and optional append-only-log persistence.

import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
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

export interface MemoryBackendOptions {
  /** Historical events kept for old-revision lists and watches; older ones are compacted. Default 10_000. */
  maxHistory?: number;
  /** Persist to an append-only log in this directory (created if missing). */
  dir?: string;
  /** How often buffered log lines are written and fsynced. Default 10 ms. */
  flushIntervalMs?: number;
  /**
   * Rewrite the log as a snapshot when it has more lines than this plus twice the live data
   * (keys + history). Default 10_000.
   */
  snapshotSlack?: number;
}

/** The log file inside the persistence directory. */
export const LOG_FILE = "kubelab-store.jsonl";

type LogLine =
  | { type: "snapshot"; rev: number }
  | { type: "kv"; key: string; value: string; create: number; mod: number }
  | { type: "put"; rev: number; key: string; value: string }
  | { type: "delete"; rev: number; key: string };

interface MemWatcher {
  prefix: string;
  queue: AsyncQueue<WatchEvent | WatchProgress>;
  /** Highest revision pushed (event or progress). */
  last: number;
  after: number;
}

/**
 * MemoryBackend: see the file comment. All operations complete synchronously inside the returned
 * promise, so a write is visible to every reader and already queued to every watcher when its
 * promise resolves. KeyValue objects handed out are frozen and shared.
 *
 * Persistence (`dir`): every write appends one JSON line; lines are buffered and written + fsynced
 * every `flushIntervalMs` and on close, so a crash (not a clean close) can lose the last few
 * milliseconds of acknowledged writes. On open the log is replayed (a torn last line is dropped)
 * and, when large, rewritten as a snapshot of the state at the compacted revision followed by the
 * retained history (temp file + rename), so revisions and recent history survive restarts.
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

  // persistence
  private readonly dir: string | undefined;
  private readonly flushIntervalMs: number;
  private readonly snapshotSlack: number;
  private pending: string[] = [];
  private fh: fsp.FileHandle | undefined;
  private logLines = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private flushChain: Promise<void> = Promise.resolve();
  private flushError: unknown = undefined;

  constructor(opts: MemoryBackendOptions = {}) {
    this.maxHistory = Math.max(1, opts.maxHistory ?? 10_000);
    this.dir = opts.dir;
    this.flushIntervalMs = opts.flushIntervalMs ?? 10;
    this.snapshotSlack = opts.snapshotSlack ?? 10_000;
  }

  /** Opens a backend; with `dir`, replays (and maybe compacts) the log there first. */
  static async open(opts: MemoryBackendOptions = {}): Promise<MemoryBackend> {
    const b = new MemoryBackend(opts);
    if (b.dir !== undefined) await b.load(b.dir);
    return b;
  }

  // ---- reads ----

  async currentRevision(): Promise<number> {
    this.check();
    return this.rev;
  }

  async compactedRevision(): Promise<number> {
    this.check();
    return this.compacted;
  }

  async get(key: string): Promise<{ revision: number; kv?: KeyValue }> {
    this.check();
    const kv = this.kvs.get(key);
    return kv ? { revision: this.rev, kv } : { revision: this.rev };
  }

  async count(prefix: string): Promise<{ revision: number; count: number }> {
    this.check();
    const [s, e] = this.index.range(prefix);
    return { revision: this.rev, count: e - s };
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    this.check();
    const at = opts.revision && opts.revision > 0 ? opts.revision : this.rev;
    if (at < this.compacted) throw expired(at, this.compacted);
    if (at > this.rev) {
      throw new StorageError("Invalid", `revision ${at} is a future revision (current ${this.rev})`);
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
    if (cur) return { revision: this.rev, succeeded: false, kv: cur };
    const ev = this.applyPut(key, value);
    this.logWrite({ type: "put", rev: ev.revision, key, value });
    return { revision: ev.revision, succeeded: true, kv: ev.kv };
  }

  async update(key: string, value: string, expectedRevision: number): Promise<WriteResult> {
    this.check();
    const cur = this.kvs.get(key);
    if (!cur) return { revision: this.rev, succeeded: false };
    if (cur.modRevision !== expectedRevision) return { revision: this.rev, succeeded: false, kv: cur };
    const ev = this.applyPut(key, value);
    this.logWrite({ type: "put", rev: ev.revision, key, value });
    return { revision: ev.revision, succeeded: true, kv: ev.kv };
  }

  async delete(key: string, expectedRevision?: number): Promise<WriteResult> {
    this.check();
    const cur = this.kvs.get(key);
    if (!cur) return { revision: this.rev, succeeded: false };
    if (expectedRevision !== undefined && expectedRevision > 0 && cur.modRevision !== expectedRevision) {
      return { revision: this.rev, succeeded: false, kv: cur };
    }
    const ev = this.applyDelete(key);
    this.logWrite({ type: "delete", rev: ev.revision, key });
    return { revision: ev.revision, succeeded: true, kv: ev.kv };
  }

  async compact(revision: number): Promise<void> {
    this.check();
    if (revision > this.rev) {
      throw new StorageError("Invalid", `cannot compact to future revision ${revision} (current ${this.rev})`);
    }
    this.compactTo(revision);
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
    if (this.rev - this.compacted > this.maxHistory) this.compactTo(this.rev - this.maxHistory);
    for (const w of this.watchers) {
      if (ev.revision > w.after && ev.kv.key.startsWith(w.prefix)) {
        w.queue.push(ev);
        w.last = ev.revision;
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
      if (w.queue.closed || this.rev <= w.last) return;
      w.last = this.rev;
      w.queue.push({ type: "progress", revision: this.rev });
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
    for (let r = Math.max(afterRevision, this.compacted) + 1; r <= this.rev; r++) {
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
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    await this.flush();
    await this.fh?.close();
    this.fh = undefined;
    if (this.flushError !== undefined) throw this.flushError;
  }

  private check(): void {
    if (this.closed) throw new StorageError("Unreachable", "storage backend is closed");
    if (this.flushError !== undefined) {
      throw new StorageError("InternalError", `storage log write failed: ${String(this.flushError)}`, undefined, {
        cause: this.flushError,
      });
    }
  }

  // ---- persistence ----

  private logWrite(line: LogLine): void {
    if (this.dir === undefined) return;
    this.pending.push(JSON.stringify(line));
    if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = undefined;
        void this.flush();
      }, this.flushIntervalMs);
    }
  }

  /** Appends and fsyncs the buffered lines (serialized); maybe rewrites the log as a snapshot. */
  flush(): Promise<void> {
    this.flushChain = this.flushChain.then(async () => {
      if (!this.fh || this.pending.length === 0) return;
      const lines = this.pending;
      this.pending = [];
      try {
        await this.fh.write(lines.join("\n") + "\n");
        await this.fh.datasync();
        this.logLines += lines.length;
        if (!this.closed && this.logLines > this.snapshotThreshold()) await this.rewriteSnapshot();
      } catch (e) {
        this.flushError ??= e;
      }
    });
    return this.flushChain;
  }

  private snapshotThreshold(): number {
    return this.snapshotSlack + 2 * (this.kvs.size + (this.rev - this.compacted));
  }

  /** The log content equivalent to the current state: state at `compacted`, then the history. */
  private snapshotLines(): string[] {
    const lines: string[] = [JSON.stringify({ type: "snapshot", rev: this.compacted } satisfies LogLine)];
    for (const kv of this.listAt("", this.compacted, {}).kvs) {
      lines.push(
        JSON.stringify({ type: "kv", key: kv.key, value: kv.value, create: kv.createRevision, mod: kv.modRevision } satisfies LogLine),
      );
    }
    for (let r = this.compacted + 1; r <= this.rev; r++) {
      const ev = this.event(r);
      lines.push(
        JSON.stringify(
          ev.type === "put"
            ? ({ type: "put", rev: r, key: ev.kv.key, value: ev.kv.value } satisfies LogLine)
            : ({ type: "delete", rev: r, key: ev.kv.key } satisfies LogLine),
        ),
      );
    }
    return lines;
  }

  private async rewriteSnapshot(): Promise<void> {
    const dir = this.dir!;
    const lines = this.snapshotLines(); // synchronous: a consistent cut at this.rev
    const file = path.join(dir, LOG_FILE);
    const tmp = file + ".tmp";
    const h = await fsp.open(tmp, "w");
    try {
      await h.write(lines.join("\n") + "\n");
      await h.sync();
    } finally {
      await h.close();
    }
    await this.fh?.close();
    await fsp.rename(tmp, file);
    await syncDir(dir);
    this.fh = await fsp.open(file, "a");
    this.logLines = lines.length;
  }

  private async load(dir: string): Promise<void> {
    await fsp.mkdir(dir, { recursive: true });
    const file = path.join(dir, LOG_FILE);
    await fsp.rm(file + ".tmp", { force: true });
    let text = "";
    try {
      text = await fsp.readFile(file, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    let lineCount = 0;
    let pos = 0;
    while (pos < text.length) {
      const nl = text.indexOf("\n", pos);
      const end = nl === -1 ? text.length : nl;
      const raw = text.slice(pos, end);
      let line: LogLine | undefined;
      try {
        line = raw.trim() === "" ? undefined : (JSON.parse(raw) as LogLine);
      } catch (e) {
        if (nl === -1 || text.slice(nl + 1).trim() === "") break; // torn tail from a crash
        throw new StorageError("InternalError", `corrupt storage log ${file} at byte ${pos}`, undefined, { cause: e });
      }
      if (nl === -1) break; // an unterminated last line is torn even if it parses
      if (line) {
        this.replay(line, file);
        lineCount++;
      }
      pos = nl + 1;
    }
    if (pos < text.length) await fsp.truncate(file, Buffer.byteLength(text.slice(0, pos), "utf8"));
    this.logLines = lineCount;
    if (this.logLines > this.snapshotThreshold()) {
      await this.rewriteSnapshot();
    } else {
      this.fh = await fsp.open(file, "a");
    }
  }

  private replay(line: LogLine, file: string): void {
    switch (line.type) {
      case "snapshot":
        this.rev = line.rev;
        this.compacted = line.rev;
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
    }
  }
}

async function syncDir(dir: string): Promise<void> {
  try {
    const h = await fsp.open(dir, fs.constants.O_RDONLY);
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  } catch {
    // some filesystems refuse fsync on directories
  }
}

async function* onlyEvents(w: AsyncIterable<WatchEvent | WatchProgress>): AsyncGenerator<WatchEvent> {
  for await (const e of w) if (e.type !== "progress") yield e;
}
