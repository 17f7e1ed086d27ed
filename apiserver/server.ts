// The apiserver: a koa app over HTTPS with authentication, discovery, OpenAPI, metrics and the resource handlers.

import { KubernetesServiceController } from "./kubernetesservice.ts";
import http from "node:http";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import Koa from "koa";
import { ANONYMOUS, AUTHENTICATED_GROUP, AuthenticationError, PUBLIC_PATHS, type Authenticator, type UserInfo } from "./auth.ts";
import { ALWAYS_ALLOW, forbiddenMessage, type Attributes, type Authorizer, type RuleResolver } from "./authorization/types.ts";
import { SYSTEM_PRIVILEGED_GROUP } from "./authorization/union.ts";
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
import { withAudit, withAuditInit, type AuditState, type Auditor } from "./audit/index.ts";
import { DISCOVERY_CACHE_CONTROL, JWKS_CONTENT_TYPE, JWKS_PATH, OPENID_CONFIG_PATH, type OpenIDMetadata } from "./serviceaccount/openidmetadata.ts";

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
  /**
   * Serve HTTPS with this certificate and key (PEM). Without it, plain HTTP (tests only). With
   * clientCA (PEM bundle, --client-ca-file) the server asks for client certificates and verifies
   * them against it; an X509Authenticator in `authenticators` turns them into users.
   */
  tls?: { cert: string; key: string; clientCA?: string };
  /**
   * The authorizer (--authorization-mode), built over the registry it reads roles and pods from.
   * Absent: AlwaysAllow, and as upstream then anonymous requests are refused (401) outside the public
   * paths. Present: a request without credentials is system:anonymous and the authorizer decides.
   */
  authorizer?: (registry: Registry) => Authorizer & RuleResolver;
  /** --audit-policy-file / --audit-log-*: built by newAuditing; absent: no audit events. */
  auditor?: Auditor;
  log?: Logger;
  metrics?: ApiserverMetrics;
  /** Admission plugin settings; DEFAULT_ADMISSION_OPTIONS when absent. */
  admission?: AdmissionOptions;
  /** Overload protection and connection timeouts; DEFAULT_SERVING_LIMITS for what is absent. */
  limits?: Partial<ServingLimits>;
  /**
   * Keep the default/kubernetes Service and its endpoints naming this apiserver (kube-apiserver
   * always does; off by default here so in-process test servers keep an empty default namespace).
   * Its endpoints name advertiseAddress:advertisePort (default the bound port; behind the cluster
   * endpoint of several apiservers, the endpoint's, so that every apiserver writes the same).
   */
  kubernetesService?: { advertiseAddress?: string; advertisePort?: number };
  /** ServiceAccount issuer discovery (/.well-known/openid-configuration, /openid/v1/jwks); absent: 404. */
  serviceAccountIssuerDiscovery?: OpenIDMetadata;
}

/**
 * What keeps one apiserver process answering under load and against slow or stuck clients. The
 * first three are kube-apiserver's flags of the same names; the rest are its http.Server settings.
 */
export interface ServingLimits {
  /** --max-requests-inflight: non-mutating requests (get, list) served at once; 0 = no limit. */
  maxRequestsInflight: number;
  /** --max-mutating-requests-inflight: create, update, patch, delete served at once; 0 = no limit. */
  maxMutatingRequestsInflight: number;
  /** --request-timeout: a non-long-running request gets 504 Timeout after this; 0 = none. */
  requestTimeoutMs: number;
  /** A client must have sent its request headers within this (upstream's ReadHeaderTimeout, 32 s). */
  headersTimeoutMs: number;
  /** An idle keep-alive connection is closed after this (upstream's IdleTimeout, 90 s). */
  keepAliveTimeoutMs: number;
}

export const DEFAULT_SERVING_LIMITS: ServingLimits = {
  maxRequestsInflight: 400,
  maxMutatingRequestsInflight: 200,
  requestTimeoutMs: 60_000,
  headersTimeoutMs: 32_000,
  keepAliveTimeoutMs: 90_000,
};

/** Upstream's max-in-flight answer (its Retry-After is a constant 1 s). */
const TOO_MANY_REQUESTS_MESSAGE = "Too many requests, please try again later.";
const TOO_MANY_REQUESTS_RETRY_AFTER_SECONDS = 1;

/**
 * After answering a request whose body was not read, Go's server reads up to 256 KiB of it to keep
 * the connection (maxPostHandlerReadBytes); a longer or unknown remainder closes the connection.
 */
export const MAX_POST_HANDLER_READ_BYTES = 256 * 1024;
/** How long a closing connection goes on reading (and dropping) what the client still sends, so its last response is not lost to a reset (Go's rstAvoidanceDelay is 500 ms). */
const LINGER_MS = 1000;

/** Verbs and subresources of long-running requests, exempt from max-in-flight and the request timeout (upstream's BasicLongRunningRequestCheck). */
const LONG_RUNNING_VERBS = new Set(["watch", "proxy"]);
const LONG_RUNNING_SUBRESOURCES = new Set(["attach", "exec", "proxy", "log", "portforward"]);
const NON_MUTATING_VERBS = new Set(["get", "list", "watch"]);
/** Health probes: never turned away for load (a supervisor would take a 429 for a failed probe). */
const PROBE_PATHS = new Set(["/healthz", "/livez", "/readyz"]);

interface State extends AuditState {
  info?: RequestInfo;
  user?: UserInfo;
  /** Long-running and mutating, as max-in-flight and the request timeout see the request. */
  cls?: { longRunning: boolean; mutating: boolean };
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
  private kubernetesService?: KubernetesServiceController;
  readonly limits: ServingLimits;
  /** Requests being served now, by kind (max-in-flight). */
  private inflight = { readOnly: 0, mutating: 0 };
  /** What decides whether an authenticated request may go on (AlwaysAllow without --authorization-mode). */
  readonly authorizer: Authorizer & RuleResolver;

  constructor(private readonly opts: ApiServerOptions) {
    this.metrics = opts.metrics ?? newApiserverMetrics();
    this.log = opts.log ?? newLogger("apiserver");
    this.limits = { ...DEFAULT_SERVING_LIMITS, ...opts.limits };
    this.registry = new Registry(opts.backend, this.metrics, undefined, opts.admission);
    this.authorizer = opts.authorizer ? opts.authorizer(this.registry) : ALWAYS_ALLOW;
    this.app = new Koa<State>();
    this.app.proxy = false;
    this.app.silent = true;
    this.app.use((ctx, next) => this.instrument(ctx, next));
    this.app.use(withAuditInit<State>()); // Audit-ID header and the received time, on every request
    this.app.use((ctx, next) => this.timeout(ctx, next));
    this.app.use((ctx, next) => this.authenticate(ctx, next));
    // Upstream's WithAudit: after authentication, before impersonation.
    if (opts.auditor) {
      this.app.use(withAudit<State>(opts.auditor, { attributes: (ctx) => requestAttributes(ctx, ctx.state.user!), longRunning: (ctx) => requestClass(ctx).longRunning }));
    }
    this.app.use((ctx, next) => this.impersonate(ctx, next));
    this.app.use((ctx, next) => this.maxInflight(ctx, next));
    this.app.use((ctx, next) => this.authorize(ctx, next));
    this.app.use((ctx) => this.route(ctx));
  }

  /** Starts the watch caches and listens. Resolves with the bound port. */
  async start(port: number, host = "127.0.0.1"): Promise<number> {
    await this.registry.start();
    this.ready = true;
    const koa = this.app.callback();
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      guardUnreadBody(req, res);
      void koa(req, res);
    };
    const { headersTimeoutMs, keepAliveTimeoutMs, requestTimeoutMs } = this.limits;
    // Node checks header and request deadlines every connectionsCheckingInterval (30 s by default).
    const serverOpts: http.ServerOptions = { connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(headersTimeoutMs / 4))) };
    const tls = this.opts.tls;
    // A client certificate is asked for, never required: token clients present none.
    const clientCerts: https.ServerOptions = tls?.clientCA ? { requestCert: true, rejectUnauthorized: false, ca: tls.clientCA } : {};
    this.server = tls ? https.createServer({ ...serverOpts, cert: tls.cert, key: tls.key, ...clientCerts }, handler) : http.createServer(serverOpts, handler);
    this.server.keepAliveTimeout = keepAliveTimeoutMs;
    this.server.headersTimeout = headersTimeoutMs;
    // Node's deadline to receive a whole request (headers and body) backs up --request-timeout for
    // a body that never finishes; later than it, so that the client gets the 504 Status first.
    // Watches and log follows are long-lived responses, not requests: this does not limit them.
    this.server.requestTimeout = requestTimeoutMs > 0 ? requestTimeoutMs + 5000 : 0;
    this.server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(handler, req, socket, head));
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      // A deep accept backlog: a thousand watchers reconnecting at once must not be reset.
      this.server!.listen(port, host, 4096, () => resolve());
    });
    const bound = (this.server.address() as AddressInfo).port;
    this.log.info({ port: bound, host, tls: !!this.opts.tls }, "apiserver listening");
    if (this.opts.kubernetesService) {
      const advertiseAddress = this.opts.kubernetesService.advertiseAddress ?? (host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host);
      this.kubernetesService = new KubernetesServiceController(this.registry, { advertiseAddress, port: this.opts.kubernetesService.advertisePort ?? bound }, this.log);
      this.kubernetesService.start();
    }
    return bound;
  }

  async stop(): Promise<void> {
    this.ready = false;
    this.kubernetesService?.stop();
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
    // As upstream's response writers: a Status with retryAfterSeconds also says so in the header.
    if (err.details?.retryAfterSeconds) ctx.set("Retry-After", String(err.details.retryAfterSeconds));
  }

  /**
   * --request-timeout, as upstream's WithTimeoutForNonLongRunningRequests: a request that has not
   * answered in time gets 504 Timeout; what its handler does afterwards is dropped (a write it
   * started may still complete, as upstream).
   */
  private async timeout(ctx: Koa.ParameterizedContext<State>, next: Koa.Next): Promise<void> {
    const ms = this.limits.requestTimeoutMs;
    if (ms <= 0 || requestClass(ctx).longRunning) return next();
    let timer: NodeJS.Timeout | undefined;
    const work = next();
    const expired = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), ms)));
    try {
      const r = await Promise.race([work.then(() => "done" as const), expired]);
      if (r === "done") return;
    } finally {
      clearTimeout(timer);
    }
    work.catch((e: unknown) => this.log.warn({ err: e instanceof Error ? e.message : String(e), path: ctx.path, method: ctx.method }, "post-timeout activity failed"));
    this.log.warn({ path: ctx.path, method: ctx.method, timeoutMs: ms }, "request timed out");
    const res = ctx.res;
    ctx.respond = false;
    if (res.headersSent) {
      // Part of the answer is out: the connection is the only way left to say it failed.
      res.destroy();
      return;
    }
    const status = new ApiError(504, "Timeout", "Timeout: request did not complete within the allotted timeout", {}).toStatus();
    res.statusCode = 504;
    res.setHeader("Content-Type", "application/json");
    res.end(JSON.stringify(status));
  }

  /**
   * --max-requests-inflight / --max-mutating-requests-inflight, as upstream's WithMaxInFlightLimit:
   * past the limit a request is answered 429 with Retry-After at once. Long-running requests
   * (watches, logs, exec) are not counted, nor health probes (upstream's "probes" flow schema is
   * exempt from flow control), nor requests of system:masters (upstream's exemption: the cluster
   * admin can always get in to fix an overload; kubelab's components have identities of their own).
   */
  private async maxInflight(ctx: Koa.ParameterizedContext<State>, next: Koa.Next): Promise<void> {
    const cls = requestClass(ctx);
    if (cls.longRunning || PROBE_PATHS.has(ctx.path)) return next();
    if (ctx.state.user?.groups?.includes(SYSTEM_PRIVILEGED_GROUP)) return next();
    const kind = cls.mutating ? "mutating" : "readOnly";
    const limit = cls.mutating ? this.limits.maxMutatingRequestsInflight : this.limits.maxRequestsInflight;
    if (limit <= 0) return next();
    if (this.inflight[kind] >= limit) {
      this.metrics.droppedRequests.inc({ request_kind: kind });
      throw new ApiError(429, "TooManyRequests", TOO_MANY_REQUESTS_MESSAGE, { retryAfterSeconds: TOO_MANY_REQUESTS_RETRY_AFTER_SECONDS });
    }
    this.inflight[kind]++;
    this.metrics.currentInflight.set({ request_kind: kind }, this.inflight[kind]);
    try {
      await next();
    } finally {
      this.inflight[kind]--;
      this.metrics.currentInflight.set({ request_kind: kind }, this.inflight[kind]);
    }
  }

  private async authenticate(ctx: Koa.ParameterizedContext<State>, next: Koa.Next): Promise<void> {
    // A path that is not valid URL syntax is refused before anything looks at the request, as Go's
    // net/http answers 400 before kube-apiserver's handlers run (so the same for every user).
    if (/%(?![0-9a-fA-F]{2})/.test(ctx.originalUrl.split("?")[0])) throw errors.badRequest(`invalid URL escape in path ${JSON.stringify(ctx.path)}`);
    const authenticators = this.opts.authenticators ?? [];
    if (authenticators.length === 0) {
      ctx.state.user = ANONYMOUS;
      return next();
    }
    // As upstream's union authenticator: the first that knows the user wins; a credential that one
    // of them rejected makes the request 401 only when no other accepted it.
    let user: UserInfo | null = null;
    let rejected: Error | undefined;
    for (const a of authenticators) {
      try {
        user = await a.authenticate(ctx.req);
      } catch (e) {
        if (!(e instanceof AuthenticationError || (e as { name?: string }).name === "AuthenticationError")) throw e;
        rejected ??= e as Error;
        continue;
      }
      if (user) break;
    }
    if (!user && rejected) {
      this.metrics.authenticationAttempts.inc({ result: "error" });
      this.opts.auditor?.failedAuthentication(ctx.req, ctx.res, requestAttributes(ctx, ANONYMOUS), { auditID: ctx.state.auditID, received: ctx.state.received });
      throw errors.unauthorized();
    }
    if (user) this.metrics.authenticationAttempts.inc({ result: "success" });
    else {
      // With AlwaysAllow anonymous requests are off, as upstream turns them off: only the public paths.
      if (!this.opts.authorizer && !PUBLIC_PATHS.has(ctx.path)) {
        this.opts.auditor?.failedAuthentication(ctx.req, ctx.res, requestAttributes(ctx, ANONYMOUS), { auditID: ctx.state.auditID, received: ctx.state.received });
        throw errors.unauthorized();
      }
      user = ANONYMOUS;
    }
    if (user !== ANONYMOUS && !user.groups.includes(AUTHENTICATED_GROUP)) {
      user = { ...user, groups: [...user.groups, AUTHENTICATED_GROUP] };
    }
    ctx.state.user = user;
    return next();
  }

  /**
   * Impersonate-User / -Group / -Uid / -Extra-* (kubectl --as, --as-group), as upstream's
   * WithImpersonation: the requester must be allowed to `impersonate` each (users, groups,
   * serviceaccounts, uids, userextras); the request then goes on as that user.
   */
  private async impersonate(ctx: Koa.ParameterizedContext<State>, next: Koa.Next): Promise<void> {
    const headers = ctx.req.headers;
    const asUser = headers["impersonate-user"];
    const groups = headerValues(headers["impersonate-group"]);
    const uid = headers["impersonate-uid"];
    const extraKeys = Object.keys(headers).filter((k) => k.startsWith("impersonate-extra-"));
    if (asUser === undefined && groups.length === 0 && uid === undefined && extraKeys.length === 0) return next();
    if (typeof asUser !== "string" || asUser === "") throw errors.internal("requested impersonation of groups, uid or extras without impersonating a user");
    const requester = ctx.state.user!;
    const check = async (a: Omit<Attributes, "user" | "isResourceRequest" | "path" | "apiVersion" | "subresource" | "verb">): Promise<void> => {
      const attrs: Attributes = { ...a, user: requester, verb: "impersonate", isResourceRequest: true, path: ctx.path, apiVersion: "", subresource: "" };
      const r = await this.authorizer.authorize(attrs);
      if (r.decision !== "Allow") throw errors.forbidden({ group: a.apiGroup, resource: a.resource }, a.name, forbiddenMessage(attrs) + (r.reason ? `: ${r.reason}` : ""));
    };
    const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(asUser);
    if (sa) await check({ apiGroup: "", resource: "serviceaccounts", namespace: sa[1]!, name: sa[2]! });
    else await check({ apiGroup: "", resource: "users", namespace: "", name: asUser });
    for (const g of groups) await check({ apiGroup: "", resource: "groups", namespace: "", name: g });
    if (typeof uid === "string") await check({ apiGroup: "authentication.k8s.io", resource: "uids", namespace: "", name: uid });
    const extra: Record<string, string[]> = {};
    for (const k of extraKeys) {
      const key = decodeURIComponent(k.slice("impersonate-extra-".length));
      for (const v of headerValues(headers[k])) await check({ apiGroup: "authentication.k8s.io", resource: `userextras/${key}`, namespace: "", name: v });
      extra[key] = headerValues(headers[k]);
    }
    const impGroups = [...groups];
    if (sa) impGroups.push("system:serviceaccounts", `system:serviceaccounts:${sa[1]}`);
    if (asUser !== ANONYMOUS.name && !impGroups.includes(AUTHENTICATED_GROUP)) impGroups.push(AUTHENTICATED_GROUP);
    ctx.state.user = { name: asUser, uid: typeof uid === "string" ? uid : "", groups: impGroups, ...(extraKeys.length ? { extra } : {}) };
    ctx.state.audit?.impersonatedUser(ctx.state.user);
    return next();
  }

  /** WithAuthorization: asks the authorizer; anything but Allow is 403 with upstream's message. */
  private async authorize(ctx: Koa.ParameterizedContext<State>, next: Koa.Next): Promise<void> {
    if (this.authorizer === ALWAYS_ALLOW) {
      ctx.state.audit?.authorized("Allow", "");
      return next();
    }
    const attrs = requestAttributes(ctx, ctx.state.user!);
    const r = await this.authorizer.authorize(attrs);
    ctx.state.audit?.authorized(r.decision, r.reason);
    if (r.decision === "Allow") return next();
    const msg = forbiddenMessage(attrs) + (r.reason ? `: ${r.reason}` : "");
    if (ctx.state.user!.name.startsWith("system:")) this.log.warn({ user: ctx.state.user!.name, verb: attrs.verb, resource: attrs.resource, subresource: attrs.subresource, namespace: attrs.namespace, name: attrs.name, path: attrs.isResourceRequest ? undefined : attrs.path }, "forbidden");
    throw errors.forbidden(attrs.isResourceRequest ? { group: attrs.apiGroup, resource: attrs.resource } : { group: "", resource: "" }, attrs.name, msg);
  }

  private async route(ctx: Koa.ParameterizedContext<State>): Promise<void> {
    const path = ctx.path;
    const query = new URLSearchParams(ctx.querystring);
    if (!RESOURCE_METHODS.has(ctx.method)) throw errors.methodNotAllowed(`the server does not allow this method on the requested resource (${ctx.method} ${path})`);

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
      case OPENID_CONFIG_PATH:
      case JWKS_PATH: {
        const d = this.opts.serviceAccountIssuerDiscovery;
        if (!d) throw errors.pathNotFound();
        ctx.status = 200;
        ctx.type = path === JWKS_PATH ? JWKS_CONTENT_TYPE : "application/json";
        ctx.set("Cache-Control", DISCOVERY_CACHE_CONTROL);
        ctx.body = path === JWKS_PATH ? d.publicKeysetJSON : d.configJSON;
        return;
      }
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
      user: ctx.state.user ?? ANONYMOUS,
    });
    if (!resp) {
      ctx.respond = false; // streamed (watch, logs)
      return;
    }
    ctx.state.auditResponse = resp.body;
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

function headerValues(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/**
 * The authorizer's view of a request (upstream's GetAuthorizerAttributes). A list or watch with
 * fieldSelector metadata.name=X is a request for the object X, as upstream's RequestInfoFactory makes it.
 */
export function requestAttributes(ctx: Koa.ParameterizedContext<State>, user: UserInfo): Attributes {
  const info = ctx.state.info ?? parseRequestInfo(ctx.method, ctx.path, new URLSearchParams(ctx.querystring));
  ctx.state.info = info;
  let name = info.name;
  if (info.isResourceRequest && !name && (info.verb === "list" || info.verb === "watch")) {
    const fs = new URLSearchParams(ctx.querystring).get("fieldSelector");
    const m = fs ? /^metadata\.name==?([^,]+)$/.exec(fs) : null;
    if (m) name = m[1]!;
  }
  return {
    user,
    verb: info.verb,
    isResourceRequest: info.isResourceRequest,
    path: ctx.path,
    apiGroup: info.group,
    apiVersion: info.version,
    resource: info.resource,
    subresource: info.subresource,
    namespace: info.namespace,
    name,
  };
}

/** Whether a request is long-running (watch, log, exec...) and whether it mutates; computed once per request. */
function requestClass(ctx: Koa.ParameterizedContext<State>): { longRunning: boolean; mutating: boolean } {
  if (ctx.state.cls) return ctx.state.cls;
  const info = parseRequestInfo(ctx.method, ctx.path, new URLSearchParams(ctx.querystring));
  const longRunning = info.isResourceRequest && (LONG_RUNNING_VERBS.has(info.verb) || LONG_RUNNING_SUBRESOURCES.has(info.subresource));
  return (ctx.state.cls = { longRunning, mutating: !NON_MUTATING_VERBS.has(info.verb) });
}

/**
 * Keeps an early answer from poisoning its keep-alive connection. When a response starts while the
 * request's body has not all arrived (a 413, a 401 or 429 before the body was read, a 415 or 400 on a
 * header...), the rest of the body is still on its way on the same connection. A remainder of at
 * most MAX_POST_HANDLER_READ_BYTES that nobody started reading is drained by Node after the
 * response and the connection is kept; any other is answered with `Connection: close`, and the
 * connection is closed after the response, as Go's server does after a MaxBytesReader error. The
 * close lingers: the server half-closes and goes on reading (and dropping) what the client still
 * sends for a moment, so that the client reads the answer instead of a connection reset.
 */
function guardUnreadBody(req: http.IncomingMessage, res: http.ServerResponse): void {
  const writeHead = res.writeHead;
  // writeHead is where every response's headers are fixed (koa's, and each handler's own).
  res.writeHead = function (this: http.ServerResponse, ...args: Parameters<http.ServerResponse["writeHead"]>) {
    res.writeHead = writeHead;
    if (bodyStillArriving(req) && !drainable(req)) closeAfterResponse(req, res);
    return writeHead.apply(this, args);
  } as http.ServerResponse["writeHead"];
}

function bodyStillArriving(req: http.IncomingMessage): boolean {
  if (req.complete) return false;
  const te = req.headers["transfer-encoding"];
  const cl = req.headers["content-length"];
  return te !== undefined || (cl !== undefined && cl !== "0");
}

/** A declared remainder small enough to read and drop, that no handler began to read. */
function drainable(req: http.IncomingMessage): boolean {
  const cl = req.headers["content-length"];
  if (cl === undefined || req.headers["transfer-encoding"] !== undefined) return false;
  const started = req.readableFlowing !== null || (req as { _consuming?: boolean })._consuming === true;
  return !started && Number(cl) <= MAX_POST_HANDLER_READ_BYTES;
}

function closeAfterResponse(req: http.IncomingMessage, res: http.ServerResponse): void {
  res.setHeader("Connection", "close");
  res.shouldKeepAlive = false;
  const socket = req.socket;
  // Node ends the connection after the response with socket.destroySoon(): end (FIN), then destroy
  // as soon as the writes are out. Destroying with the client's data still arriving sends a reset,
  // which can discard the answer before the client reads it; linger instead.
  socket.destroySoon = function lingeringClose(this: Socket) {
    req.resume(); // drop the rest of the body (a handler that stopped reading may have paused it)
    this.end();
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.once("close", () => clearTimeout(timer));
    this.once("end", () => this.destroy());
  };
}
