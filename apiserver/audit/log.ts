// The log backend (--audit-log-path), as plugin/pkg/audit/log writes through lumberjack: one JSON
// Event per line, the file rotated by size into <name>-<UTC time>.<ext> backups, the oldest beyond
// --audit-log-maxbackup and --audit-log-maxage removed. Unlike upstream's default "blocking" mode,
// events are queued and written in batches off the request path (upstream's "batch" mode): a
// request pays for a push onto an array; serializing and writing happen on a later turn of the loop.

import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, renameSync, unlinkSync, write, existsSync } from "node:fs";
import { basename, dirname, extname, join } from "node:path";
import type { Event, Sink } from "./audit.ts";

const MEGABYTE = 1024 * 1024;
/** lumberjack's MaxSize when 0 is given. */
const DEFAULT_MAX_SIZE_MB = 100;
/** Events waiting to be serialized beyond this are dropped (upstream's --audit-log-batch-buffer-size is 10000; ours is drained every loop turn, so this only bounds a stuck writer). */
const DEFAULT_MAX_BUFFERED_BYTES = 64 * MEGABYTE;
/** At most this much is handed to one write(2). */
const MAX_WRITE_BYTES = 1 * MEGABYTE;

export interface LogBackendOptions {
  /** --audit-log-path: a file, or "-" for stdout. */
  path: string;
  /** --audit-log-maxsize: megabytes before the file is rotated (0: lumberjack's 100; fractions allowed, for tests). */
  maxSizeMB?: number;
  /** --audit-log-maxbackup: rotated files kept (0: all). */
  maxBackups?: number;
  /** --audit-log-maxage: days a rotated file is kept, by the time in its name (0: no limit). */
  maxAgeDays?: number;
  /** Serialized lines waiting for the disk beyond this are dropped and counted. */
  maxBufferedBytes?: number;
  /** Told once per trouble (a failed write, the first dropped event). */
  onError?: (err: Error) => void;
  /** For tests: the time backups are named by. */
  now?: () => Date;
}

export class LogBackend implements Sink {
  /** Events handed to the sink and written, and dropped (buffer full, or after close). */
  readonly stats = { written: 0, dropped: 0 };
  private readonly stdout: boolean;
  private readonly maxSize: number;
  private readonly maxBufferedBytes: number;
  private fd = -1;
  private size = 0;
  /** Events not yet serialized (this turn of the loop). */
  private events: Event[] = [];
  /** Serialized lines waiting for the disk, and their size. */
  private lines: string[] = [];
  private lineBytes = 0;
  /** The size of the write in flight: it still waits for the disk too. */
  private inflightBytes = 0;
  private scheduled = false;
  private writing = false;
  private closed = false;
  private warnedDrop = false;
  private idle: (() => void)[] = [];

  constructor(private readonly opts: LogBackendOptions) {
    this.stdout = opts.path === "-";
    this.maxSize = (opts.maxSizeMB && opts.maxSizeMB > 0 ? opts.maxSizeMB : DEFAULT_MAX_SIZE_MB) * MEGABYTE;
    this.maxBufferedBytes = opts.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    if (!this.stdout) this.open();
  }

  /** Queues the events; never blocks. False when they were dropped. */
  processEvents(...events: Event[]): boolean {
    if (this.closed || this.lineBytes + this.inflightBytes > this.maxBufferedBytes) {
      this.stats.dropped += events.length;
      if (!this.warnedDrop) {
        this.warnedDrop = true;
        this.opts.onError?.(new Error(this.closed ? "audit log closed: events dropped" : `audit log buffer full (${this.maxBufferedBytes} bytes waiting): events dropped`));
      }
      return false;
    }
    for (const e of events) this.events.push(e);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
    return true;
  }

  /** Writes what is queued and closes the file. Events after this are dropped. */
  async close(): Promise<void> {
    if (this.closed && this.fd < 0) return;
    this.closed = true;
    await this.flush();
    if (this.fd >= 0) {
      closeSync(this.fd);
      this.fd = -1;
    }
  }

  /** Resolves when everything queued so far is written. */
  flush(): Promise<void> {
    this.serialize();
    if (!this.writing && this.lines.length === 0) return Promise.resolve();
    const p = new Promise<void>((resolve) => this.idle.push(resolve));
    this.pump();
    return p;
  }

  private drain(): void {
    this.scheduled = false;
    this.serialize();
    this.pump();
  }

  private serialize(): void {
    if (this.events.length === 0) return;
    const events = this.events;
    this.events = [];
    for (const e of events) {
      let line: string;
      try {
        line = JSON.stringify(e) + "\n";
      } catch (err) {
        this.stats.dropped++;
        this.opts.onError?.(new Error(`audit event ${e.auditID} could not be encoded: ${(err as Error).message}`));
        continue;
      }
      this.lines.push(line);
      this.lineBytes += line.length;
    }
  }

  /** One write at a time; each takes what fits before the next rotation. */
  private pump(): void {
    if (this.writing) return;
    if (this.lines.length === 0) {
      const waiting = this.idle;
      this.idle = [];
      for (const f of waiting) f();
      return;
    }
    let chunk = "";
    let bytes = 0;
    let n = 0;
    while (n < this.lines.length) {
      const line = this.lines[n]!;
      const len = Buffer.byteLength(line);
      if (!this.stdout && this.size + bytes + len > this.maxSize) {
        if (bytes > 0) break; // write what fits; the next write rotates
        // A line alone bigger than the limit goes into a fresh file (lumberjack refuses it; an audit line is better kept).
        if (this.size > 0) this.rotate();
      }
      chunk += line;
      bytes += len;
      n++;
      if (bytes >= MAX_WRITE_BYTES) break;
    }
    this.lines.splice(0, n);
    this.lineBytes -= chunk.length;
    this.writing = true;
    this.inflightBytes = chunk.length;
    const done = (err?: Error | null): void => {
      this.writing = false;
      this.inflightBytes = 0;
      if (err) this.opts.onError?.(new Error(`audit log write failed: ${err.message}`));
      else this.stats.written += n;
      this.pump();
    };
    if (this.stdout) {
      if (process.stdout.write(chunk)) setImmediate(done);
      else process.stdout.once("drain", () => done());
      return;
    }
    this.size += bytes;
    writeAll(this.fd, Buffer.from(chunk), done);
  }

  private open(): void {
    mkdirSync(dirname(this.opts.path), { recursive: true });
    this.fd = openSync(this.opts.path, "a", 0o600);
    this.size = fstatSync(this.fd).size;
  }

  /** lumberjack's rotate: the file becomes <name>-<2006-01-02T15-04-05.000>.<ext>; a new one is opened; old backups go. */
  private rotate(): void {
    closeSync(this.fd);
    const path = this.opts.path;
    const ext = extname(path);
    const prefix = basename(path, ext) + "-";
    let t = (this.opts.now?.() ?? new Date()).getTime();
    let backup: string;
    // Two rotations in one millisecond would overwrite each other's backup: take the next free one.
    while (existsSync((backup = join(dirname(path), prefix + backupTime(new Date(t)) + ext)))) t++;
    renameSync(path, backup);
    this.open();
    this.prune(prefix, ext);
  }

  private prune(prefix: string, ext: string): void {
    const dir = dirname(this.opts.path);
    const { maxBackups = 0, maxAgeDays = 0 } = this.opts;
    if (maxBackups <= 0 && maxAgeDays <= 0) return;
    const backups: { name: string; t: number }[] = [];
    for (const name of readdirSync(dir)) {
      if (!name.startsWith(prefix) || !name.endsWith(ext)) continue;
      const t = parseBackupTime(name.slice(prefix.length, name.length - ext.length));
      if (t !== undefined) backups.push({ name, t });
    }
    backups.sort((a, b) => b.t - a.t); // newest first
    const cutoff = maxAgeDays > 0 ? (this.opts.now?.() ?? new Date()).getTime() - maxAgeDays * 86_400_000 : -Infinity;
    backups.forEach((b, i) => {
      if ((maxBackups > 0 && i >= maxBackups) || b.t < cutoff) {
        try {
          unlinkSync(join(dir, b.name));
        } catch (e) {
          this.opts.onError?.(new Error(`audit log: removing old backup ${b.name}: ${(e as Error).message}`));
        }
      }
    });
  }
}

function writeAll(fd: number, buf: Buffer, done: (err?: Error | null) => void): void {
  write(fd, buf, 0, buf.length, null, (err, n) => {
    if (err) return done(err);
    if (n < buf.length) return writeAll(fd, buf.subarray(n), done);
    done();
  });
}

/** lumberjack's backupTimeFormat, 2006-01-02T15-04-05.000, in UTC. */
function backupTime(d: Date): string {
  return d.toISOString().slice(0, 23).replace(/:/g, "-");
}

function parseBackupTime(s: string): number | undefined {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})\.(\d{3})$/.exec(s);
  if (!m) return undefined;
  const t = Date.parse(`${m[1]}T${m[2]}:${m[3]}:${m[4]}.${m[5]}Z`);
  return Number.isNaN(t) ? undefined : t;
}
