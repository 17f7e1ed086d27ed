// The byte side of a watch response: what the apiserver's cacher + watch server do between an event
// in the watch cache and the bytes on a client's connection (upstream: cacheWatcher and the
// encoder cache of staging/src/k8s.io/apiserver/pkg/endpoints/handlers/watch.go, whose
// `CachingObject` serializes an object once per encoding and shares the bytes across watchers).
//
// The watch cache pushes events into a WatchSink synchronously; each sink collects its event lines
// (strings shared per event: `eventLine`) and one shared timer flushes every pending sink every
// WATCH_FLUSH_MS. At a flush, sinks whose pending lines are the same (every watcher of a resource
// without selectors, the usual case) share one encoded chunk: the lines are joined and UTF-8
// encoded once, with their HTTP/1.1 chunk framing, and that one Buffer is written to each socket.
// A burst of events is one write (one chunk, one TLS record) per watcher and per flush, and no
// promise, string or buffer is created per event per watcher.

import type { ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { KubeObject } from "../api/index.ts";
import type { CacheEvent, EventSink } from "./storage/index.ts";

/** How long events wait to be written together; well under a 50 ms delivery budget. */
export const WATCH_FLUSH_MS = 20;
/** A watcher whose unsent output exceeds this is ended as too slow (the cache sees a huge backlog). */
export const WATCH_MAX_BACKLOG_BYTES = 64 * 1024 * 1024;

/** What a sink needs of its store: the object a BOOKMARK carries (only the resourceVersion). */
export interface BookmarkSource {
  bookmarkObject(revision: number): KubeObject;
}

/** Renders a Table watch event (kubectl get -w): per watcher, since headers go only in the first. */
export type TableRenderer = (obj: KubeObject, omitHeaders: boolean) => unknown;

/** One encoded chunk: `framed` is "<hex length>\r\n<body>\r\n", the body starting at `bodyStart`. */
export interface EncodedChunk {
  readonly lines: readonly string[];
  readonly framed: Buffer;
  readonly bodyStart: number;
}

/** The metric a sink counts its events on. */
export interface EventCounter {
  inc(n?: number): void;
}

/** Encodes a list of lines as an HTTP/1.1 chunk (size line, body, CRLF) in one Buffer. */
export function encodeChunk(lines: readonly string[]): EncodedChunk {
  const body = lines.length === 1 ? lines[0]! : lines.join("");
  const len = Buffer.byteLength(body, "utf8");
  const head = `${len.toString(16)}\r\n`;
  const framed = Buffer.allocUnsafe(head.length + len + 2);
  framed.write(head, 0, "latin1");
  framed.write(body, head.length, "utf8");
  framed[framed.length - 2] = 0x0d;
  framed[framed.length - 1] = 0x0a;
  return { lines, framed, bodyStart: head.length };
}

/**
 * The chunks encoded during one flush, found again by content: a sink whose pending lines equal
 * (element by element; shared strings compare by reference first) those of an earlier sink in the
 * same flush reuses its Buffer.
 */
export class FlushRound {
  private readonly byFirstLine = new Map<string, EncodedChunk[]>();
  /** Events per counter (apiserver_watch_events_total's child for a kind), added once per round. */
  private readonly counts = new Map<EventCounter, number>();
  /** Chunks encoded, and writes that reused one (for tests and the bench). */
  encoded = 0;
  reused = 0;

  count(counter: EventCounter, events: number): void {
    this.counts.set(counter, (this.counts.get(counter) ?? 0) + events);
  }

  /** Adds the round's events to their counters. */
  commit(): void {
    for (const [c, n] of this.counts) c.inc(n);
    this.counts.clear();
  }

  chunk(lines: readonly string[]): EncodedChunk {
    const first = lines[0]!;
    const candidates = this.byFirstLine.get(first);
    if (candidates) {
      for (const c of candidates) {
        if (sameLines(c.lines, lines)) {
          this.reused++;
          return c;
        }
      }
    }
    const c = encodeChunk(lines);
    this.encoded++;
    if (candidates) candidates.push(c);
    else this.byFirstLine.set(first, [c]);
    return c;
  }
}

function sameLines(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = a.length - 1; i >= 0; i--) if (a[i] !== b[i]) return false;
  return true;
}

const pendingSinks = new Set<WatchSink>();
let flushTimer: NodeJS.Timeout | undefined;
/** Totals over every flush of this process (read by tests and the bench). */
export const flushStats = { flushes: 0, writes: 0, encoded: 0 };

/** Writes every pending sink now, sharing encoded chunks across sinks with the same lines. */
export function flushAll(): void {
  if (flushTimer) clearTimeout(flushTimer);
  flushTimer = undefined;
  if (pendingSinks.size === 0) return;
  const sinks = [...pendingSinks];
  pendingSinks.clear();
  const round = new FlushRound();
  for (const s of sinks) s.flush(round);
  round.commit();
  flushStats.flushes++;
  flushStats.encoded += round.encoded;
  flushStats.writes += round.encoded + round.reused;
}

/**
 * One watch response (an HTTP/1.1 chunked response whose headers are sent). See the file comment.
 * When the response owns its socket with chunked encoding, a flush writes the framed chunk to the
 * socket directly (the same bytes ServerResponse.write would produce, without its per-write
 * framing work); otherwise through ServerResponse.write. `end()` of the response still goes
 * through ServerResponse, which writes the last chunk after everything written here.
 */
export class WatchSink implements EventSink<KubeObject> {
  private lines: string[] = [];
  private queued = false;
  /** Events since the last flush, added to apiserver_watch_events_total at flush (cheaper than per event). */
  private events = 0;
  /** Recomputed at each flush: reading writableLength per event is measurably costly. */
  private backlogged = false;
  private finished = false;
  private resolveDone!: (err: unknown) => void;
  /** Resolves when the watch ends: undefined when ended normally, else the error to report. */
  readonly done = new Promise<unknown>((r) => (this.resolveDone = r));
  private tableHeadersSent = false;
  /** Whether chunks may go straight to the socket (decided once the headers are out). */
  private readonly direct: boolean;

  constructor(
    private readonly out: ServerResponse,
    private readonly store: BookmarkSource,
    private readonly counter: EventCounter,
    private readonly table?: TableRenderer,
  ) {
    this.direct = out.headersSent && out.chunkedEncoding && out.req?.method !== "HEAD";
  }

  get length(): number {
    return this.backlogged ? Number.MAX_SAFE_INTEGER : 0;
  }

  /** The client is not reading: more than WATCH_MAX_BACKLOG_BYTES of output unsent. */
  get stalled(): boolean {
    return this.backlogged;
  }

  push(ev: CacheEvent<KubeObject>): void {
    if (this.finished) return;
    let line: string;
    if (ev.type === "BOOKMARK") {
      line = bookmarkLine(this.store, ev.revision);
    } else if (this.table) {
      const t = this.table(ev.obj, this.tableHeadersSent);
      this.tableHeadersSent = true;
      line = `{"type":"${ev.type}","object":${JSON.stringify(t)}}\n`;
    } else {
      line = eventLine(ev.type, ev.obj);
    }
    this.events++;
    this.writeLine(line);
  }

  writeLine(line: string): void {
    this.lines.push(line);
    if (this.queued) return;
    this.queued = true;
    pendingSinks.add(this);
    flushTimer ??= setTimeout(flushAll, WATCH_FLUSH_MS);
  }

  fail(err: unknown): void {
    if (this.finished) return;
    this.finished = true;
    this.resolveDone(err);
  }

  end(): void {
    if (this.finished) return;
    this.finished = true;
    this.resolveDone(undefined);
  }

  /**
   * Writes the pending lines, as a chunk shared through `round` with other sinks of the same
   * flush; the events are counted through the round (committed by the caller, or here when alone).
   */
  flush(round?: FlushRound): void {
    this.queued = false;
    const r = round ?? new FlushRound();
    if (this.events > 0) {
      r.count(this.counter, this.events);
      this.events = 0;
    }
    if (!round) r.commit();
    const lines = this.lines;
    if (lines.length === 0) return;
    this.lines = [];
    if (this.out.writableEnded || this.out.destroyed) return;
    const chunk = r.chunk(lines);
    const socket: Socket | null = this.direct ? this.out.socket : null;
    const target = socket && !socket.destroyed ? socket : this.out;
    if (target === socket) socket.write(chunk.framed);
    else this.out.write(chunk.framed.subarray(chunk.bodyStart, chunk.framed.length - 2));
    if (!this.backlogged && this.out.writableLength > WATCH_MAX_BACKLOG_BYTES) {
      this.backlogged = true;
      // A client that catches up is not a slow one any more.
      target.once("drain", () => (this.backlogged = false));
    }
  }

  /** Writes what is pending now (before the response ends). */
  close(): void {
    pendingSinks.delete(this);
    this.flush();
  }
}

/**
 * The event line for an object, built once per (type, object): cached objects are shared and
 * read-only, so every watcher of an event reuses the first serialization. The last line is kept
 * in front of the map: a thousand watchers of one event ask for it one after another.
 */
const lineCache = new WeakMap<object, Partial<Record<string, string>>>();
let lastObj: object | undefined;
let lastType = "";
let lastLine = "";
export function eventLine(type: string, obj: KubeObject): string {
  if (obj === lastObj && type === lastType) return lastLine;
  let lines = lineCache.get(obj);
  if (!lines) lineCache.set(obj, (lines = {}));
  const line = (lines[type] ??= `{"type":"${type}","object":${objectJson(obj)}}\n`);
  lastObj = obj;
  lastType = type;
  lastLine = line;
  return line;
}

/**
 * JSON of an object, computed once per object: objects from the watch cache are shared and
 * read-only, so every watcher of an event reuses the first serialization.
 */
const jsonCache = new WeakMap<object, string>();
export function objectJson(obj: unknown): string {
  if (typeof obj !== "object" || obj === null) return JSON.stringify(obj);
  let s = jsonCache.get(obj);
  if (s === undefined) {
    s = JSON.stringify(obj);
    jsonCache.set(obj, s);
  }
  return s;
}

/** The BOOKMARK line of a store at a revision, built once per (store, revision). */
const bookmarkCache = new WeakMap<BookmarkSource, { revision: number; line: string }>();
function bookmarkLine(store: BookmarkSource, revision: number): string {
  const c = bookmarkCache.get(store);
  if (c && c.revision === revision) return c.line;
  const line = `{"type":"BOOKMARK","object":${JSON.stringify(store.bookmarkObject(revision))}}\n`;
  bookmarkCache.set(store, { revision, line });
  return line;
}
