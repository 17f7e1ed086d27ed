// The kubelet's HTTP server (pkg/kubelet/server): /healthz, and /containerLogs/{ns}/{pod}/{container}
// which the apiserver proxies `pods/log` to. Logs are read from the CRI log files the runtime writes
// (`<logsRoot>/<ns>_<pod>_<uid>/<container>/<attempt>.log`, lines `<RFC3339Nano> <stream> <P|F> <text>`),
// as upstream's kuberuntime/logs does: the newest attempt is the current container, the one before
// it the previous; partial (P) lines are joined; follow polls the file and ends when the container
// is replaced by a newer attempt, stops running, or the client goes away.
// `POST /exec/{ns}/{pod}/{container}?command=a&command=b[&timeoutSeconds=N]` runs a non-interactive
// command in the pod's running container (the runtime's ExecSync) and answers JSON
// `{stdout, stderr (base64), exitCode}`; the apiserver turns that into `pods/exec` stream frames.

import { open, readdir, readFile, type FileHandle } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { realClock, type Clock, type Logger } from "../client/index.ts";
import { podLogDirectory } from "./runtime/types.ts";

export interface KubeletServerOptions {
  /** Address to listen on (the node IP). */
  host: string;
  /** 0 picks a free port; the bound one is returned. */
  port: number;
  /** Root of the pod log directories (`<rootDir>/logs`). */
  logsRoot: string;
  /** The UID of the pod this kubelet runs under that name, or undefined when it runs none. */
  podUID(namespace: string, name: string): string | undefined;
  log: Logger;
  /**
   * Whether the container is still running (undefined: unknown). When given, a follow ends once the
   * container has stopped and its log has been read to the end, as upstream's follow does.
   */
  containerRunning?(namespace: string, name: string, container: string): boolean | undefined;
  /** How often a follow looks for new lines (default 250 ms). */
  followPollMs?: number;
  clock?: Clock;
  /**
   * Runs `cmd` in the pod's current running container and waits for it (non-interactive exec);
   * undefined when no such container is running. Without it, /exec answers 404.
   */
  exec?(namespace: string, pod: string, container: string, cmd: string[], timeoutSeconds: number): Promise<ExecResult | undefined>;
}

export interface ExecResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
}

/** The /exec answer's body. */
export interface ExecResponseBody {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** How long an exec may run when the request does not say (seconds). */
export const DEFAULT_EXEC_TIMEOUT_SECONDS = 60;

/** A user-facing failure: the status code and the text the apiserver passes on. */
class LogError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface LogOptions {
  follow: boolean;
  previous: boolean;
  timestamps: boolean;
  tailLines?: number;
  /** Only lines at or after this time (ms since the epoch). */
  sinceMs?: number;
  limitBytes?: number;
}

/** Go's strconv.ParseBool, which the kubelet's query decoding uses. */
function parseBool(name: string, v: string | null): boolean {
  if (v === null || v === "") return false;
  if (["1", "t", "T", "true", "TRUE", "True"].includes(v)) return true;
  if (["0", "f", "F", "false", "FALSE", "False"].includes(v)) return false;
  throw new LogError(400, `invalid value for ${name}: ${JSON.stringify(v)}`);
}

function parseInt64(name: string, v: string | null, min: number): number | undefined {
  if (v === null || v === "") return undefined;
  if (!/^-?\d+$/.test(v)) throw new LogError(400, `invalid value for ${name}: ${JSON.stringify(v)}`);
  const n = Number(v);
  if (n < min) throw new LogError(400, `${name}: Invalid value: ${n}: must be greater than or equal to ${min}`);
  return n;
}

export function parseLogOptions(q: URLSearchParams, nowMs: number): LogOptions {
  const opts: LogOptions = {
    follow: parseBool("follow", q.get("follow")),
    previous: parseBool("previous", q.get("previous")),
    timestamps: parseBool("timestamps", q.get("timestamps")),
    tailLines: parseInt64("tailLines", q.get("tailLines"), 0),
    limitBytes: parseInt64("limitBytes", q.get("limitBytes"), 1),
  };
  const sinceSeconds = parseInt64("sinceSeconds", q.get("sinceSeconds"), 1);
  const sinceTime = q.get("sinceTime");
  if (sinceSeconds !== undefined && sinceTime) throw new LogError(400, "at most one of sinceTime or sinceSeconds may be specified");
  if (sinceSeconds !== undefined) opts.sinceMs = nowMs - sinceSeconds * 1000;
  if (sinceTime) {
    const t = parseTimestamp(sinceTime);
    if (!t) throw new LogError(400, `invalid value for sinceTime: ${JSON.stringify(sinceTime)}`);
    opts.sinceMs = t.ms;
  }
  return opts;
}

// ---- CRI log format ----------------------------------------------------------------------------

/** An RFC 3339 time with any number of fractional digits: ms since the epoch (fractional), and the fixed 9-digit form kubectl shows. */
function parseTimestamp(s: string): { ms: number; fixed: string } | undefined {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(s);
  if (!m) return undefined;
  const base = Date.parse(m[1] + m[3]);
  if (Number.isNaN(base)) return undefined;
  const frac = (m[2] ?? "").padEnd(9, "0");
  return { ms: base + Number(frac) / 1e6, fixed: `${m[1]}.${frac}${m[3]}` };
}

/** One logical log line: a full (F) line, with any partial (P) lines before it joined in. */
export interface LogLine {
  /** RFC3339Nano with 9 digits, the time of the line's first part. */
  time: string;
  ms: number;
  stream: string;
  text: Buffer;
}

/**
 * Decodes CRI log bytes as they arrive: whole physical lines are parsed, a trailing incomplete one
 * waits for more bytes; P lines are held per stream until their F line. Unparseable lines are
 * skipped (upstream logs and skips them too).
 */
export class CriLogDecoder {
  private rest: Buffer = Buffer.alloc(0);
  private readonly partial = new Map<string, { time: string; ms: number; parts: Buffer[] }>();

  feed(chunk: Buffer): LogLine[] {
    const buf = this.rest.length ? Buffer.concat([this.rest, chunk]) : chunk;
    const out: LogLine[] = [];
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(0x0a, start);
      if (nl < 0) break;
      const line = this.parse(buf.subarray(start, nl));
      if (line) out.push(line);
      start = nl + 1;
    }
    this.rest = Buffer.from(buf.subarray(start));
    return out;
  }

  private parse(raw: Buffer): LogLine | undefined {
    // "<time> <stream> <tag> <content>"; the content may be empty ("... F " or even "... F").
    const s1 = raw.indexOf(0x20);
    const s2 = s1 < 0 ? -1 : raw.indexOf(0x20, s1 + 1);
    if (s2 < 0) return undefined;
    let s3 = raw.indexOf(0x20, s2 + 1);
    if (s3 < 0) s3 = raw.length;
    const ts = parseTimestamp(raw.subarray(0, s1).toString("latin1"));
    const stream = raw.subarray(s1 + 1, s2).toString("latin1");
    const tags = raw.subarray(s2 + 1, s3).toString("latin1").split(":");
    if (!ts || (stream !== "stdout" && stream !== "stderr")) return undefined;
    const content = raw.subarray(Math.min(s3 + 1, raw.length));
    const held = this.partial.get(stream);
    if (tags[0] === "P") {
      if (held) held.parts.push(Buffer.from(content));
      else this.partial.set(stream, { time: ts.fixed, ms: ts.ms, parts: [Buffer.from(content)] });
      return undefined;
    }
    if (tags[0] !== "F") return undefined;
    if (held) {
      this.partial.delete(stream);
      return { time: held.time, ms: held.ms, stream, text: Buffer.concat([...held.parts, content]) };
    }
    return { time: ts.fixed, ms: ts.ms, stream, text: Buffer.from(content) };
  }
}

function formatLine(l: LogLine, timestamps: boolean): Buffer {
  return timestamps ? Buffer.concat([Buffer.from(l.time + " "), l.text, Buffer.from("\n")]) : Buffer.concat([l.text, Buffer.from("\n")]);
}

// ---- the endpoint --------------------------------------------------------------------------------

/** The container's log attempts, oldest first. */
async function attempts(dir: string): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  return names
    .map((n) => /^(\d+)\.log$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/** Writes with backpressure and the limitBytes cap; false once the response cannot take more. */
class LimitedWriter {
  private remaining: number;
  constructor(
    private readonly res: http.ServerResponse,
    limit: number | undefined,
  ) {
    this.remaining = limit ?? Infinity;
  }
  get full(): boolean {
    return this.remaining <= 0;
  }
  async write(b: Buffer): Promise<boolean> {
    if (this.full || this.res.destroyed) return false;
    const chunk = b.length > this.remaining ? b.subarray(0, this.remaining) : b;
    this.remaining -= chunk.length;
    if (!this.res.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.res.off("drain", done);
          this.res.off("close", done);
          resolve();
        };
        this.res.on("drain", done);
        this.res.on("close", done);
      });
    }
    return !this.full && !this.res.destroyed;
  }
}

async function serveContainerLogs(
  opts: KubeletServerOptions,
  clock: Clock,
  res: http.ServerResponse,
  signal: AbortSignal,
  namespace: string,
  pod: string,
  container: string,
  query: URLSearchParams,
): Promise<void> {
  const lo = parseLogOptions(query, clock.now());
  const uid = opts.podUID(namespace, pod);
  if (!uid) throw new LogError(404, `pod "${pod}" does not exist`);
  const dir = `${podLogDirectory(opts.logsRoot, namespace, pod, uid)}/${container}`;
  const all = await attempts(dir);
  let attempt: number;
  if (lo.previous) {
    if (all.length < 2) throw new LogError(404, `previous terminated container "${container}" in pod "${pod}" not found`);
    attempt = all[all.length - 2];
  } else {
    if (!all.length) throw new LogError(404, `container "${container}" in pod "${pod}" is not available`);
    attempt = all[all.length - 1];
  }
  const file = `${dir}/${attempt}.log`;
  let fh: FileHandle;
  try {
    fh = await open(file, "r");
  } catch {
    throw new LogError(404, `container "${container}" in pod "${pod}" is not available`);
  }
  try {
    res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8" });
    if (lo.follow) res.flushHeaders();
    const out = new LimitedWriter(res, lo.limitBytes);
    const decoder = new CriLogDecoder();
    const keep = (l: LogLine): boolean => lo.sinceMs === undefined || l.ms >= lo.sinceMs;

    // What is there now: tail first, then the since filter (upstream's order).
    const initial = await readFile(fh);
    let offset = initial.length;
    let lines = decoder.feed(initial);
    if (lo.tailLines !== undefined) lines = lo.tailLines === 0 ? [] : lines.slice(-lo.tailLines);
    for (const l of lines) if (keep(l) && !(await out.write(formatLine(l, lo.timestamps)))) return;
    if (!lo.follow || lo.previous) return;

    const pollMs = opts.followPollMs ?? 250;
    const readMore = async (): Promise<boolean> => {
      const { size } = await fh.stat();
      if (size < offset) offset = 0; // truncated (rotation by copytruncate): start over
      while (offset < size) {
        const buf = Buffer.alloc(Math.min(size - offset, 1 << 20));
        const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
        if (bytesRead === 0) break;
        offset += bytesRead;
        for (const l of decoder.feed(buf.subarray(0, bytesRead))) if (keep(l) && !(await out.write(formatLine(l, lo.timestamps)))) return false;
      }
      return true;
    };
    while (!signal.aborted && !res.destroyed) {
      await clock.sleep(pollMs, signal);
      if (signal.aborted || res.destroyed) return;
      if (!(await readMore())) return;
      // The container is over when a newer attempt replaced it, it stopped, or the pod went away;
      // read once more so lines written just before the end are not lost.
      const replaced = (await attempts(dir)).some((a) => a > attempt);
      const stopped = opts.containerRunning?.(namespace, pod, container) === false;
      const gone = opts.podUID(namespace, pod) !== uid;
      if (replaced || stopped || gone) {
        await readMore();
        return;
      }
    }
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** POST /exec/{ns}/{pod}/{container}?command=..: one command run to completion. */
async function serveExec(opts: KubeletServerOptions, req: http.IncomingMessage, res: http.ServerResponse, segments: string[]): Promise<void> {
  const text = (status: number, message: string, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { "Content-Type": "text/plain", ...headers }).end(message);
  };
  if (req.method !== "POST") return text(405, "method not allowed", { Allow: "POST" });
  if (segments.length !== 4) return text(400, `expected /exec/{namespace}/{pod}/{container}, got /${segments.join("/")}`);
  let ns: string, pod: string, container: string;
  try {
    [ns, pod, container] = segments.slice(1).map((s) => decodeURIComponent(s));
  } catch {
    return text(400, "malformed path");
  }
  const query = new URL(req.url ?? "/", "http://kubelet").searchParams;
  const cmd = query.getAll("command");
  if (cmd.length === 0) return text(400, "you must specify at least one command for the container");
  let timeoutSeconds = DEFAULT_EXEC_TIMEOUT_SECONDS;
  const t = query.get("timeoutSeconds");
  if (t !== null && t !== "") {
    if (!/^\d+$/.test(t) || Number(t) < 1) return text(400, `invalid value for timeoutSeconds: ${JSON.stringify(t)}`);
    timeoutSeconds = Number(t);
  }
  req.resume(); // the body (if any) is not used
  const notRunning = `container "${container}" in pod "${pod}" is not running`;
  if (!opts.exec || !opts.podUID(ns, pod)) return text(404, opts.podUID(ns, pod) ? notRunning : `pod "${pod}" does not exist`);
  const r = await opts.exec(ns, pod, container, cmd, timeoutSeconds);
  if (!r) return text(404, notRunning);
  const body: ExecResponseBody = { stdout: r.stdout.toString("base64"), stderr: r.stderr.toString("base64"), exitCode: r.exitCode };
  res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(body));
}

/**
 * Starts the kubelet's server on host:port. close() stops listening, ends every follow in
 * progress and resolves once the server has closed.
 */
export async function startKubeletServer(opts: KubeletServerOptions): Promise<{ port: number; close(): Promise<void> }> {
  const clock = opts.clock ?? realClock;
  const closing = new AbortController();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://kubelet");
    const segments = url.pathname.split("/").filter(Boolean);
    if (url.pathname === "/healthz") {
      res.writeHead(200, { "Content-Type": "text/plain" }).end("ok");
      return;
    }
    if (segments[0] === "exec") {
      serveExec(opts, req, res, segments).catch((e: unknown) => {
        opts.log.warn({ err: e, path: url.pathname }, "exec failed");
        if (!res.headersSent) res.writeHead(500, { "Content-Type": "text/plain" });
        if (!res.writableEnded) res.end(`exec failed: ${(e as Error).message}`);
      });
      return;
    }
    if (segments[0] !== "containerLogs") {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("404 page not found\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { "Content-Type": "text/plain", Allow: "GET" }).end("method not allowed");
      return;
    }
    if (segments.length !== 4) {
      res.writeHead(400, { "Content-Type": "text/plain" }).end(`expected /containerLogs/{namespace}/{pod}/{container}, got ${url.pathname}`);
      return;
    }
    let parts: string[];
    try {
      parts = segments.slice(1).map((s) => decodeURIComponent(s));
    } catch {
      res.writeHead(400, { "Content-Type": "text/plain" }).end("malformed path");
      return;
    }
    // One signal per request: the client going away or the server closing ends it.
    const ac = new AbortController();
    const abort = (): void => ac.abort();
    res.on("close", abort);
    closing.signal.addEventListener("abort", abort, { once: true });
    serveContainerLogs(opts, clock, res, ac.signal, parts[0], parts[1], parts[2], url.searchParams)
      .catch((e: unknown) => {
        if (e instanceof LogError) {
          if (!res.headersSent) res.writeHead(e.status, { "Content-Type": "text/plain" });
          res.end(e.message);
          return;
        }
        opts.log.warn({ err: e, pod: `${parts[0]}/${parts[1]}`, container: parts[2] }, "failed to serve container logs");
        if (!res.headersSent) res.writeHead(500, { "Content-Type": "text/plain" }).end(`failed to read the log: ${(e as Error).message}`);
      })
      .finally(() => {
        closing.signal.removeEventListener("abort", abort);
        if (!res.writableEnded) res.end();
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  opts.log.info({ address: opts.host, port }, "kubelet server listening");
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        closing.abort();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
