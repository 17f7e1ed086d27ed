// Buffered CRI log files for simulated containers. Lines are appended in memory and written by one
// flush per runtime every FLUSH_MS (real time: this is I/O batching, not simulated time, so it does
// not follow the injected clock), so a busy echo server costs one append per file per flush rather
// than a write per request, and 30,000 containers keep no open file descriptors.

import { appendFile, mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import type { Logger } from "../../../client/index.ts";

const FLUSH_MS = 50;
/**
 * Appends in flight across the whole process: a pool of simulated nodes shares one descriptor
 * budget, and 30,000 concurrent appends would exhaust it (EMFILE).
 */
const MAX_CONCURRENT_WRITES = 32;
let activeWrites = 0;
const waiting: (() => void)[] = [];
let waitingHead = 0;

async function withWriteSlot(fn: () => Promise<void>): Promise<void> {
  if (activeWrites < MAX_CONCURRENT_WRITES) activeWrites++;
  else await new Promise<void>((resolve) => waiting.push(resolve)); // the releaser hands its slot over
  try {
    await fn();
  } finally {
    if (waitingHead < waiting.length) {
      const next = waiting[waitingHead];
      waiting[waitingHead++] = noop;
      if (waitingHead > 1024 && waitingHead * 2 > waiting.length) {
        waiting.splice(0, waitingHead);
        waitingHead = 0;
      }
      next();
    } else {
      activeWrites--;
    }
  }
}

function noop(): void {}

/** One container's log file. */
export class LogFile {
  private buf: string[] = [];
  private dirReady = false;
  /** The last write in flight; writes to one file are chained so lines stay in order. */
  private tail: Promise<void> = Promise.resolve();

  constructor(
    readonly path: string,
    private readonly sink: LogSink,
  ) {}

  /** Buffers preformatted lines (each ending in "\n"). */
  append(lines: string): void {
    this.buf.push(lines);
    this.sink.markDirty(this);
  }

  /** Resolves once every line appended so far is on disk (errors are logged, not thrown). */
  flush(): Promise<void> {
    if (this.buf.length === 0) return this.tail;
    const data = this.buf.join("");
    this.buf = [];
    const tail = this.tail.then(() =>
      withWriteSlot(async () => {
        try {
          if (!this.dirReady) {
            await mkdir(dirname(this.path), { recursive: true });
            this.dirReady = true;
          }
          await appendFile(this.path, data);
        } catch (err) {
          this.sink.log.warn({ err, path: this.path }, "cannot write container log");
        }
      }),
    );
    this.tail = tail;
    this.sink.inflight.add(this);
    void tail.then(() => {
      if (this.tail === tail) this.sink.inflight.delete(this);
    });
    return tail;
  }
}

/** The set of files with unwritten lines, flushed together. */
export class LogSink {
  private readonly dirty = new Set<LogFile>();
  /** Files with a write queued or in progress (a flush must wait for those too). */
  readonly inflight = new Set<LogFile>();
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly log: Logger) {}

  open(path: string): LogFile {
    return new LogFile(path, this);
  }

  markDirty(f: LogFile): void {
    this.dirty.add(f);
    if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  }

  /** Writes every buffered line; resolves when they are on disk. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const files = new Set([...this.dirty, ...this.inflight]);
    this.dirty.clear();
    await Promise.all([...files].map((f) => f.flush()));
  }
}
