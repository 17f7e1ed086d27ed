// The ingress controller's request path, shaped like Go's httputil.ReverseProxy and ingress-nginx's
// proxy location: match a route in the current table, pick a backend round-robin, forward with the
// X-Forwarded-* headers, stream both bodies, retry elsewhere (up to 3 tries) on a refused connection. It reads
// only the in-memory table: no API call, no file I/O per request.

import { randomBytes } from "node:crypto";
import http from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "../../client/index.ts";
import type { Backend } from "../endpoints.ts";
import { hostOnly, matchRoute, type Route, type RoutingTable } from "./routing.ts";

/** Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1, Go's hopHeaders). */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"]);

/** Methods safe to send twice when a reused keep-alive connection was reset before any response. */
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);

/** What the proxy reports per request (metrics; see metrics.ts). */
export interface RequestObserver {
  observe(r: { route?: Route; host: string; method: string; status: number; durationS: number; upstreamLatencyS?: number }): void;
}

export interface ReverseProxyOptions {
  /** The current routing table (swapped in whole by the controller). */
  table: () => RoutingTable;
  scheme: "http" | "https";
  /** The port clients connected to, for X-Forwarded-Port. */
  port: number;
  /** Keep-alive connections to the upstreams. */
  agent: http.Agent;
  /** One JSON line per request; omit for none. */
  accessLog?: Logger;
  observer?: RequestObserver;
  /** Idle timeout of an upstream request (ingress-nginx's proxy-read-timeout, 60 s). */
  upstreamTimeoutMs?: number;
  /** Connecting to an upstream may take this long before the next one is tried (proxy-connect-timeout; default 5 s). */
  connectTimeoutMs?: number;
  /**
   * A bodyless idempotent request with no response headers after this long is retried on the next
   * upstream (Envoy's per-try timeout; nginx's proxy_next_upstream timeout with a short read
   * timeout). 0: none, as ingress-nginx's default.
   */
  tryTimeoutMs?: number;
  /**
   * Passive health checking (nginx's max_fails=1 fail_timeout): an upstream that refused, timed
   * out or reset is skipped for this long, unless every one is. 0: never, as ingress-nginx's default
   * (max-fails 0).
   */
  failTimeoutMs?: number;
}

/** Tries per request, the first included (ingress-nginx's proxy-next-upstream-tries: 3). */
const MAX_TRIES = 3;

/**
 * A keep-alive agent for upstream connections (ingress-nginx's upstream keepalive). Idle sockets are
 * dropped after 4 s, before Node's (and so the simulated pods') 5 s server keep-alive timeout closes
 * them under us: a request sent on a socket the server is closing would fail if it had a body.
 */
export function newUpstreamAgent(): http.Agent {
  return new http.Agent({ keepAlive: true, keepAliveMsecs: 30_000, maxFreeSockets: 320, scheduling: "lifo", timeout: 4000 });
}

function requestID(incoming: string | string[] | undefined): string {
  if (typeof incoming === "string" && incoming.length > 0 && incoming.length <= 200) return incoming;
  return randomBytes(16).toString("hex");
}

function clientIP(req: http.IncomingMessage): string {
  const a = req.socket.remoteAddress ?? "";
  return a.startsWith("::ffff:") ? a.slice(7) : a;
}

/** The request's headers for the upstream: hop-by-hop ones dropped, the forwarding ones set. */
export function upstreamHeaders(req: http.IncomingMessage, scheme: string, port: number, reqID: string): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  const connection = req.headers.connection;
  const listed = connection ? new Set(connection.toLowerCase().split(",").map((s) => s.trim())) : undefined;
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || listed?.has(k)) continue;
    out[k] = v;
  }
  const ip = clientIP(req);
  const prior = req.headers["x-forwarded-for"];
  out["x-forwarded-for"] = prior ? `${Array.isArray(prior) ? prior.join(", ") : prior}, ${ip}` : ip;
  out["x-real-ip"] = ip;
  out["x-forwarded-proto"] = scheme;
  out["x-forwarded-scheme"] = scheme;
  out["x-forwarded-host"] = req.headers.host ?? "";
  out["x-forwarded-port"] = String(port);
  out["x-request-id"] = reqID;
  return out;
}

function responseHeaders(up: http.IncomingMessage): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  const connection = up.headers.connection;
  const listed = connection ? new Set(connection.toLowerCase().split(",").map((s) => s.trim())) : undefined;
  for (const [k, v] of Object.entries(up.headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || listed?.has(k)) continue;
    out[k] = v;
  }
  return out;
}

/** The next backend round-robin, skipping `avoid` when there is another. */
export function pickBackend(backends: readonly Backend[], cursor: { next: number }, avoid?: Backend | ReadonlySet<Backend>, isDown?: (b: Backend) => boolean): Backend | undefined {
  const n = backends.length;
  if (n === 0) return undefined;
  const avoided = (b: Backend) => (avoid instanceof Set ? avoid.has(b) : b === avoid);
  // Healthy ones first; if every one is marked down, any one not yet tried (fail open).
  for (const skipDown of isDown ? [true, false] : [false]) {
    for (let i = 0; i < n; i++) {
      const b = backends[cursor.next++ % n]!;
      if (cursor.next > 1e9) cursor.next = 0;
      if (!avoided(b) && !(skipDown && isDown!(b))) return b;
    }
  }
  return undefined;
}

const TEXT: Record<number, string> = {
  404: "404 page not found\n",
  502: "502 Bad Gateway\n",
  503: "503 Service Temporarily Unavailable\n",
  504: "504 Gateway Timeout\n",
};

/** The request handler of one listener (http or https). */
export function createProxyHandler(o: ReverseProxyOptions): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  const timeout = o.upstreamTimeoutMs ?? 60_000;
  const connectTimeout = o.connectTimeoutMs ?? 5000;
  const tryTimeout = o.tryTimeoutMs ?? 0;
  const failTimeout = o.failTimeoutMs ?? 0;
  // Passive health: upstream "ip:port" → until when it is skipped.
  const down = new Map<string, number>();
  const isDown = failTimeout > 0 ? (b: Backend) => (down.get(`${b.ip}:${b.port}`) ?? 0) > Date.now() : undefined;
  const markFailed = (b: Backend) => {
    if (failTimeout > 0) down.set(`${b.ip}:${b.port}`, Date.now() + failTimeout);
    if (down.size > 10_000) for (const [k, until] of down) if (until <= Date.now()) down.delete(k);
  };
  return (req, res) => {
    const start = process.hrtime.bigint();
    // A client gone mid-body is an error on req and res; the upstream request is torn down by "close".
    req.on("error", ignore);
    res.on("error", ignore);
    const method = req.method ?? "GET";
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);
    const host = hostOnly(req.headers.host);
    const route = matchRoute(o.table(), host, path);
    const reqID = requestID(req.headers["x-request-id"]);
    let upstreamAddr = "";
    let upstreamStart = 0n;
    let upstreamLatencyS: number | undefined;
    let bytes = 0;

    const finish = (status: number) => {
      const durationS = Number(process.hrtime.bigint() - start) / 1e9;
      o.observer?.observe({ route, host, method, status, durationS, upstreamLatencyS });
      o.accessLog?.info(
        {
          method,
          host: req.headers.host ?? "",
          path: url,
          status,
          remote: clientIP(req),
          ingress: route?.ingress,
          service: route?.upstream.key,
          upstream: upstreamAddr || undefined,
          upstream_latency: upstreamLatencyS,
          duration: durationS,
          bytes,
          request_id: reqID,
        },
        "request",
      );
    };
    const fail = (status: number) => {
      if (res.headersSent) {
        res.destroy();
        finish(status);
        return;
      }
      const body = TEXT[status] ?? `${status}\n`;
      bytes = Buffer.byteLength(body);
      req.resume();
      res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8", "Content-Length": bytes }).end(body);
      finish(status);
    };

    if (!route) return fail(404);
    const up = route.upstream;
    const first = pickBackend(up.backends, up.cursor, undefined, isDown);
    if (!first) return fail(503);
    const headers = upstreamHeaders(req, o.scheme, o.port, reqID);
    const bodyless = noBody(req);
    if (bodyless) req.resume();
    let clientGone = false;
    res.once("close", () => {
      if (!res.writableFinished) clientGone = true;
    });

    const tried = new Set<Backend>();
    const attempt = (b: Backend, retried: boolean) => {
      tried.add(b);
      upstreamAddr = retried ? `${upstreamAddr}, ${b.ip}:${b.port}` : `${b.ip}:${b.port}`;
      upstreamStart = process.hrtime.bigint();
      const upReq = http.request({ host: b.ip, port: b.port, method, path: url, headers, agent: o.agent, setHost: false });
      upReq.setTimeout(timeout, () => upReq.destroy(Object.assign(new Error("upstream timed out"), { code: "ETIMEDOUT" })));
      // No connection within the connect timeout: nothing was sent, the next upstream may take it.
      const connectTimer = setTimeout(() => upReq.destroy(Object.assign(new Error("upstream connect timed out"), { code: "ECONNTIMEOUT" })), connectTimeout);
      // No response headers within the per-try timeout: a bodyless idempotent request is safe to repeat.
      const retriable = IDEMPOTENT.has(method) && bodyless;
      const tryTimer = tryTimeout > 0 && retriable ? setTimeout(() => upReq.destroy(Object.assign(new Error("upstream try timed out"), { code: "ETRYTIMEOUT" })), tryTimeout) : undefined;
      const clearTimers = () => {
        clearTimeout(connectTimer);
        if (tryTimer) clearTimeout(tryTimer);
      };
      // The body goes upstream only once connected, so a refused connection consumed none of it.
      const sendBody = () => {
        if (bodyless) upReq.end();
        else req.pipe(upReq);
      };
      upReq.once("socket", (s) => {
        const connected = () => {
          clearTimeout(connectTimer);
          sendBody();
        };
        if (s.connecting) s.once("connect", connected);
        else connected();
      });
      const onClientClose = () => {
        if (clientGone) upReq.destroy();
      };
      res.once("close", onClientClose);
      upReq.once("response", (upRes) => {
        clearTimers();
        upstreamLatencyS = Number(process.hrtime.bigint() - upstreamStart) / 1e9;
        const status = upRes.statusCode ?? 502;
        res.writeHead(status, upRes.statusMessage, responseHeaders(upRes));
        upRes.on("data", (chunk: Buffer) => {
          bytes += chunk.length;
        });
        upRes.pipe(res);
        upRes.once("end", () => finish(status));
        upRes.once("error", () => res.destroy());
      });
      upReq.once("error", (err: NodeJS.ErrnoException) => {
        clearTimers();
        res.off("close", onClientClose);
        if (clientGone) return;
        // Nothing reached the upstream (refused, no connection in time): any request may go elsewhere.
        const unsent = err.code === "ECONNREFUSED" || err.code === "ECONNTIMEOUT";
        // A reset before the response (a keep-alive socket the upstream closed, or a pod going away
        // mid-handshake) is retried only without a body: a streamed one is gone (nginx's
        // proxy_next_upstream error, for idempotent requests).
        const resetReused = err.code === "ECONNRESET" && retriable;
        const tryTimedOut = err.code === "ETRYTIMEOUT";
        if (unsent || tryTimedOut || (err.code === "ECONNRESET" && !upReq.reusedSocket)) markFailed(b);
        if (tried.size < MAX_TRIES && !res.headersSent && (unsent || resetReused || tryTimedOut)) {
          // A reset keep-alive socket: the same backend on a fresh connection is as good as another.
          const next = resetReused && upReq.reusedSocket ? (pickBackend(up.backends, up.cursor, tried, isDown) ?? b) : pickBackend(up.backends, up.cursor, tried, isDown);
          if (next) return attempt(next, true);
        }
        upstreamLatencyS = Number(process.hrtime.bigint() - upstreamStart) / 1e9;
        fail(err.code === "ETIMEDOUT" || tryTimedOut || err.code === "ECONNTIMEOUT" ? 504 : 502);
      });
    };
    attempt(first, false);
  };
}

function ignore(): void {}

function noBody(req: http.IncomingMessage): boolean {
  const len = req.headers["content-length"];
  return !req.headers["transfer-encoding"] && (len === undefined || len === "0");
}

/** WebSocket and other upgrades: the request head goes to a backend, then bytes flow both ways. */
export function createUpgradeHandler(o: ReverseProxyOptions): (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const route = matchRoute(o.table(), hostOnly(req.headers.host), q < 0 ? url : url.slice(0, q));
    const refuse = (status: number) => {
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (!route) return refuse(404);
    const b = pickBackend(route.upstream.backends, route.upstream.cursor);
    if (!b) return refuse(503);
    const headers = upstreamHeaders(req, o.scheme, o.port, requestID(req.headers["x-request-id"]));
    headers.connection = "Upgrade";
    if (req.headers.upgrade) headers.upgrade = req.headers.upgrade;
    const upReq = http.request({ host: b.ip, port: b.port, method: req.method, path: url, headers, setHost: false });
    socket.on("error", () => upReq.destroy());
    upReq.once("upgrade", (upRes, upSocket, upHead) => {
      const lines = [`HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage}`];
      for (let i = 0; i < upRes.rawHeaders.length; i += 2) lines.push(`${upRes.rawHeaders[i]}: ${upRes.rawHeaders[i + 1]}`);
      socket.write(lines.join("\r\n") + "\r\n\r\n");
      if (upHead.length) socket.write(upHead);
      if (head.length) upSocket.write(head);
      upSocket.on("error", () => socket.destroy());
      socket.on("error", () => upSocket.destroy());
      upSocket.pipe(socket).pipe(upSocket);
    });
    upReq.once("response", (upRes) => {
      // The backend refused the upgrade: relay its answer and close.
      const lines = [`HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage}`];
      for (let i = 0; i < upRes.rawHeaders.length; i += 2) lines.push(`${upRes.rawHeaders[i]}: ${upRes.rawHeaders[i + 1]}`);
      socket.write(lines.join("\r\n") + "\r\n\r\n");
      upRes.pipe(socket);
    });
    upReq.once("error", () => refuse(502));
    upReq.end();
  };
}
