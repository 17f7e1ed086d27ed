// The apiserver: a koa app over HTTPS with authentication, discovery, OpenAPI, metrics and the resource handlers.

import http from "node:http";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import Koa from "koa";
import { ANONYMOUS, AuthenticationError, PUBLIC_PATHS, type Authenticator, type UserInfo } from "./auth.ts";
import { ApiError, errors, isApiError } from "./errors.ts";
import { handleResource, serialize } from "./handlers.ts";
import { newApiserverMetrics, type ApiserverMetrics } from "./metrics.ts";
import { negotiate } from "./negotiation.ts";
import { parseRequestInfo, type RequestInfo } from "./requestinfo.ts";
import { Registry } from "./registry/registry.ts";
import type { AdmissionOptions } from "./registry/strategy.ts";
import type { Backend } from "./storage/index.ts";
import {
  aggregatedDiscovery,
  aggregatedDiscoveryContentType,
  legacyApiGroup,
  legacyApiGroupList,
  legacyApiVersions,
  legacyResourceList,
  negotiateAggregatedDiscovery,
} from "./discovery.ts";
import { openapiV3DocJson, openapiV3Index } from "./openapi.ts";
import { newLogger, type Logger } from "../client/index.ts";

export const SERVER_VERSION = {
  major: "1",
  minor: "32",
  gitVersion: "v1.32.4-kubelab",
  gitCommit: "kubelab",
  gitTreeState: "clean",
  buildDate: "2026-11-01T00:00:00Z",
  goVersion: "node" + process.versions.node,
  compiler: "tsx",
  platform: `${process.platform}/${process.arch}`,
};

/** protobuf string field: tag, length, bytes. */
function pbString(field: number, value: string): Buffer {
  const b = Buffer.from(value);
  return Buffer.concat([Buffer.from([(field << 3) | 2, b.length]), b]);
}
/** gnostic openapi_v2 Document { swagger = 1; info = 2 (Info { title = 1; version = 2 }) }. */
const OPENAPI_V2_PROTOBUF = (() => {
  const info = Buffer.concat([pbString(1, "Kubernetes"), pbString(2, SERVER_VERSION.gitVersion)]);
  return Buffer.concat([pbString(1, "2.0"), Buffer.from([(2 << 3) | 2, info.length]), info]);
})();

export interface ApiServerOptions {
  backend: Backend;
  /** Authenticators tried in order. With none, every request is anonymous and allowed (tests only). */
  authenticators?: Authenticator[];
  /** Serve HTTPS with this certificate and key (PEM). Without it, plain HTTP (tests only). */
  tls?: { cert: string; key: string };
  log?: Logger;
  metrics?: ApiserverMetrics;
  /** Admission plugin settings; DEFAULT_ADMISSION_OPTIONS when absent. */
  admission?: AdmissionOptions;
}

interface State {
  info?: RequestInfo;
  user?: UserInfo;
}

const RESOURCE_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]);

export class ApiServer {
  readonly app: Koa<State>;
  readonly registry: Registry;
  readonly metrics: ApiserverMetrics;
  readonly log: Logger;
  private server?: http.Server | https.Server;
  /** Connections that asked for an upgrade (pods/exec): the server no longer tracks them itself. */
  private readonly upgraded = new Set<Duplex>();
  private readonly stopping = new AbortController();
  private ready = false;

  constructor(private readonly opts: ApiServerOptions) {
    this.metrics = opts.metrics ?? newApiserverMetrics();
    this.log = opts.log ?? newLogger("apiserver");
    this.registry = new Registry(opts.backend, this.metrics, undefined, opts.admission);
    this.app = new Koa<State>();
    this.app.proxy = false;
    this.app.silent = true;
    this.app.use((ctx, next) => this.instrument(ctx, next));
    this.app.use((ctx, next) => this.authenticate(ctx, next));
    this.app.use((ctx) => this.route(ctx));
  }

  /** Starts the watch caches and listens. Resolves with the bound port. */
  async start(port: number, host = "127.0.0.1"): Promise<number> {
    await this.registry.start();
    this.ready = true;
    const handler = this.app.callback();
    this.server = this.opts.tls ? https.createServer({ cert: this.opts.tls.cert, key: this.opts.tls.key }, handler) : http.createServer(handler);
    this.server.keepAliveTimeout = 65_000;
    this.server.headersTimeout = 70_000;
    this.server.requestTimeout = 0; // watches and log follows are long-lived
    this.server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(handler, req, socket, head));
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      // A deep accept backlog: a thousand watchers reconnecting at once must not be reset.
      this.server!.listen(port, host, 4096, () => resolve());
    });
    const bound = (this.server.address() as AddressInfo).port;
    this.log.info({ port: bound, host, tls: !!this.opts.tls }, "apiserver listening");
    return bound;
  }

  async stop(): Promise<void> {
    this.ready = false;
    this.stopping.abort();
    for (const s of this.upgraded) s.destroy();
    if (this.server) {
      const s = this.server;
      await new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections();
      });
    }
    this.registry.stop();
  }

  /**
   * A request asking to switch protocols (the WebSocket of pods/exec, or kubectl's SPDY fallback)
   * goes through the same middleware as any other: a response bound to its socket is made here and
   * the handler either answers it (errors, 401...; the connection then ends) or takes the socket over.
   */
  private upgrade(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void, req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    this.upgraded.add(socket);
    socket.once("close", () => this.upgraded.delete(socket));
    socket.on("error", () => socket.destroy());
    if (head.length) socket.unshift(head);
    const res = new http.ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as Socket);
    res.once("finish", () => socket.end());
    handler(req, res);
  }

  // ---- middleware -----------------------------------------------------------------------------

  private async instrument(ctx: Koa.ParameterizedContext<State>, next: Koa.Next): Promise<void> {
    const started = process.hrtime.bigint();
    try {
      await next();
    } catch (e) {
      this.writeError(ctx, e);
    }
    const info = ctx.state.info;
    const labels = {
      verb: (info?.isResourceRequest ? info.verb : ctx.method).toUpperCase(),
      group: info?.group ?? "",
      version: info?.version ?? "",
      resource: info?.resource ?? "",
      subresource: info?.subresource ?? "",
      scope: info?.isResourceRequest ? (info.name ? "resource" : info.namespace ? "namespace" : "cluster") : "",
      component: "apiserver",
    };
    const code = ctx.respond === false ? ctx.res.statusCode : ctx.status;
    this.metrics.requests.inc({ ...labels, code: String(code) });
    if (labels.verb !== "WATCH") this.metrics.requestDuration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
  }

  private writeError(ctx: Koa.ParameterizedContext<State>, e: unknown): void {
    let err: ApiError;
    if (isApiError(e)) err = e;
    else {
      this.log.error({ err: e, path: ctx.path, method: ctx.method }, "request failed");
      err = errors.internal(e instanceof Error ? e.message : String(e));
    }
    if (ctx.respond === false || ctx.res.headersSent) {
      ctx.res.end();
      return;
    }
    ctx.status = err.code;
    ctx.type = "application/json";
    ctx.body = JSON.stringify(err.toStatus());
    if (err.code === 401) ctx.set("WWW-Authenticate", 'Bearer realm="kubelab"');
  }

  private async authenticate(ctx: Koa.ParameterizedContext<State>, next: Koa.Next): Promise<void> {
    const authenticators = this.opts.authenticators ?? [];
    if (authenticators.length === 0) {
      ctx.state.user = ANONYMOUS;
      return next();
    }
    let user: UserInfo | null = null;
    try {
      for (const a of authenticators) {
        user = await a.authenticate(ctx.req);
        if (user) break;
      }
    } catch (e) {
      if (e instanceof AuthenticationError || (e as { name?: string }).name === "AuthenticationError") throw errors.unauthorized();
      throw e;
    }
    if (!user) {
      if (!PUBLIC_PATHS.has(ctx.path)) throw errors.unauthorized();
      user = ANONYMOUS;
    }
    ctx.state.user = user;
    return next();
  }

  private async route(ctx: Koa.ParameterizedContext<State>): Promise<void> {
    const path = ctx.path;
    const query = new URLSearchParams(ctx.querystring);
    if (!RESOURCE_METHODS.has(ctx.method)) throw errors.methodNotAllowed(`the server does not allow this method on the requested resource (${ctx.method} ${path})`);

    if (/%(?![0-9a-fA-F]{2})/.test(ctx.originalUrl.split("?")[0])) throw errors.badRequest(`invalid URL escape in path ${JSON.stringify(path)}`);
    // Non-resource endpoints are read-only.
    const nonResource = !path.startsWith("/api/") && !path.startsWith("/apis/") && path !== "/api" && path !== "/apis";
    if (nonResource && ctx.method !== "GET" && ctx.method !== "HEAD") {
      throw errors.methodNotAllowed(`the server does not allow this method on the requested resource (${ctx.method} ${path})`);
    }
    switch (path) {
      case "/version":
        return this.json(ctx, SERVER_VERSION);
      case "/healthz":
      case "/livez":
        ctx.type = "text/plain";
        ctx.body = "ok";
        return;
      case "/readyz":
        return this.readyz(ctx);
      case "/metrics":
        ctx.type = this.metrics.registry.contentType;
        ctx.body = await this.metrics.registry.metrics();
        return;
      case "/openapi/v3":
        return this.json(ctx, openapiV3Index());
      case "/openapi/v2":
        return this.openapiV2(ctx);
    }
    if (path.startsWith("/openapi/v3/")) {
      const doc = openapiV3DocJson(path.slice("/openapi/v3/".length));
      if (!doc) throw errors.pathNotFound();
      ctx.status = 200;
      ctx.type = "application/json";
      ctx.body = doc;
      return;
    }

    const info = parseRequestInfo(ctx.method, path, query);
    ctx.state.info = info;
    if (info.apiPrefix === "") throw errors.pathNotFound();
    if (!info.isResourceRequest) return this.discovery(ctx, info);

    // Only long-running requests (watch, logs) need to know when the client goes away: build it lazily.
    let signal: AbortSignal | undefined;
    const stopping = this.stopping.signal;
    const resp = await handleResource({
      req: ctx.req,
      res: ctx.res,
      info,
      query,
      registry: this.registry,
      metrics: this.metrics,
      log: this.log,
      get signal() {
        return (signal ??= AbortSignal.any([stopping, closeSignal(ctx)]));
      },
    });
    if (!resp) {
      ctx.respond = false; // streamed (watch, logs)
      return;
    }
    const neg = negotiate(ctx.get("Accept"));
    ctx.status = resp.code;
    ctx.type = neg.mediaType;
    ctx.body = serialize(resp.body, neg.mediaType);
  }

  /**
   * An OpenAPI v2 document without definitions. kubectl validates a `kind: List` on the client
   * against /openapi/v2 (protobuf); with no schema for a kind it leaves the checking to the server,
   * which does it (fieldValidation). Served as gnostic's protobuf Document when asked.
   */
  private openapiV2(ctx: Koa.ParameterizedContext<State>): void {
    const accept = ctx.get("Accept");
    if (accept.includes("application/com.github.proto-openapi.spec.v2")) {
      ctx.status = 200;
      ctx.set("Content-Type", "application/com.github.proto-openapi.spec.v2.v1.0+protobuf");
      ctx.body = OPENAPI_V2_PROTOBUF;
      return;
    }
    this.json(ctx, { swagger: "2.0", info: { title: "Kubernetes", version: SERVER_VERSION.gitVersion }, paths: {}, definitions: {} });
  }

  private async readyz(ctx: Koa.ParameterizedContext<State>): Promise<void> {
    ctx.type = "text/plain";
    if (!this.ready) {
      ctx.status = 503;
      ctx.body = "[-]informer-sync failed: not started\nreadyz check failed";
      return;
    }
    try {
      await Promise.race([
        this.opts.backend.currentRevision(),
        new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), 2000).unref()),
      ]);
      ctx.body = "ok";
    } catch (e) {
      ctx.status = 503;
      ctx.body = `[-]etcd failed: ${(e as Error).message}\nreadyz check failed`;
    }
  }

  private discovery(ctx: Koa.ParameterizedContext<State>, info: RequestInfo): void {
    if (ctx.method !== "GET" && ctx.method !== "HEAD") throw errors.methodNotAllowed(`the server does not allow this method on the requested resource (${ctx.method} ${ctx.path})`);
    const accept = ctx.get("Accept");
    const parts = info.parts;
    if (parts.length === 0) {
      const v = negotiateAggregatedDiscovery(accept);
      ctx.set("Vary", "Accept");
      if (v) {
        ctx.status = 200;
        ctx.body = JSON.stringify(aggregatedDiscovery(info.apiPrefix === "api" ? "core" : "apis", v));
        // Exactly this content type, or kubectl parses the body as legacy discovery.
        ctx.set("Content-Type", aggregatedDiscoveryContentType(v));
        return;
      }
      return this.json(ctx, info.apiPrefix === "api" ? legacyApiVersions(`${ctx.hostname}:${ctx.socket.localPort}`) : legacyApiGroupList());
    }
    if (info.apiPrefix === "api") {
      const list = parts.length === 1 ? legacyResourceList("", parts[0]) : undefined;
      if (!list) throw errors.pathNotFound();
      return this.json(ctx, list);
    }
    if (parts.length === 1) {
      const g = legacyApiGroup(parts[0]);
      if (!g) throw errors.pathNotFound();
      return this.json(ctx, g);
    }
    const list = parts.length === 2 ? legacyResourceList(parts[0], parts[1]) : undefined;
    if (!list) throw errors.pathNotFound();
    return this.json(ctx, list);
  }

  private json(ctx: Koa.ParameterizedContext<State>, body: unknown): void {
    ctx.status = 200;
    ctx.type = "application/json";
    ctx.body = JSON.stringify(body);
  }
}

/** Aborts when the client's connection closes before the response finished. */
function closeSignal(ctx: Koa.Context): AbortSignal {
  const ac = new AbortController();
  const onClose = () => {
    if (!ctx.res.writableFinished) ac.abort();
  };
  ctx.res.once("close", onClose);
  return ac.signal;
}
