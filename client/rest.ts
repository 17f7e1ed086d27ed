// The REST client: Client over HTTP(S) with keep-alive, a bearer token and a cluster CA; watches
// as async iterables of newline-delimited JSON events; kubeconfig loading.

import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import { createSecureContext } from "node:tls";
import { dirname, resolve as resolvePath } from "node:path";
import { parse as parseYaml } from "yaml";
import { RESOURCES, type DeleteOptions, type KubeObject, type ResourceInfo } from "../api/index.ts";
import { ClientError, type StatusBody } from "./errors.ts";
import { defaultClientMetrics, type RestClientMetrics } from "./metrics.ts";
import type { Client, ListOptions, ObjectList, PatchType, ResourceClient, WatchEvent, WriteOptions } from "./types.ts";

/** Where and how to reach the apiserver. */
export interface RestConfig {
  /** "https://127.0.0.1:6443" or "http://…" (tests). */
  server: string;
  /** PEM of the CA that signed the serving certificate. */
  caCert?: string;
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Skip verification of the serving certificate (insecure-skip-tls-verify). */
  insecure?: boolean;
  /** PEM of the client certificate presented in the TLS handshake (the x509 authenticator's user: CN, groups: O). */
  clientCert?: string;
  /** PEM of the client certificate's private key. */
  clientKey?: string;
}

export interface RestClientOptions extends RestConfig {
  userAgent?: string;
  /** Per-request timeout for non-watch requests; default 60 s. */
  requestTimeoutMs?: number;
  /**
   * Connections for non-watch requests at most (default 32); more requests wait for a free one.
   * client-go multiplexes everything over one HTTP/2 connection; over HTTP/1.1 a small pool keeps
   * bursts (e.g. a kubelet's events for many pods at once) from paying a TLS handshake each.
   */
  maxConnections?: number;
  /**
   * Retries of a request answered 429, or 5xx with a Retry-After header (the apiserver shedding
   * load), each after the Retry-After seconds; default 10, as client-go. 0: no retries.
   */
  maxRetries?: number;
  /** Waits; injectable for tests. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Where rest_client_requests_total and rest_client_request_duration_seconds go; default the process-wide registry (client/metrics.ts). */
  metrics?: RestClientMetrics;
}

/** client-go's rule (checkWait): 429, or any 5xx, with an integer Retry-After header in seconds. */
export function retryAfterMs(code: number, header: string | string[] | undefined): number | undefined {
  if (code !== 429 && (code < 500 || code > 599)) return undefined;
  const v = Array.isArray(header) ? header[0] : header;
  if (v === undefined || !/^\s*\d+\s*$/.test(v)) return undefined;
  return Number(v) * 1000;
}

function sleepFor(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** The Content-Type each patch type is sent with. */
export const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  json: "application/json-patch+json",
  merge: "application/merge-patch+json",
  strategic: "application/strategic-merge-patch+json",
  apply: "application/apply-patch+yaml",
};

interface KubeconfigNamed<T> {
  name?: string;
  [key: string]: unknown;
  cluster?: T;
  user?: T;
  context?: T;
}

/**
 * Reads a kubeconfig's current context: server, CA (certificate-authority-data or a file relative
 * to the kubeconfig), bearer token (token or tokenFile), client certificate and key
 * (client-certificate-data / client-key-data, or files relative to the kubeconfig) and
 * insecure-skip-tls-verify. The *-data fields win over the file fields, as in client-go.
 */
export function loadKubeconfig(path: string): RestConfig {
  const doc = parseYaml(readFileSync(path, "utf8")) as Record<string, unknown> | null;
  if (!doc || typeof doc !== "object") throw new Error(`${path}: not a kubeconfig`);
  const list = <T>(key: string): KubeconfigNamed<T>[] => (Array.isArray(doc[key]) ? (doc[key] as KubeconfigNamed<T>[]) : []);
  const currentName = typeof doc["current-context"] === "string" ? doc["current-context"] : undefined;
  const contexts = list<{ cluster?: string; user?: string }>("contexts");
  const ctx = (currentName ? contexts.find((c) => c.name === currentName) : contexts[0])?.context;
  if (!ctx) throw new Error(`${path}: no current context${currentName ? ` ${JSON.stringify(currentName)}` : ""}`);
  const cluster = list<Record<string, unknown>>("clusters").find((c) => c.name === ctx.cluster)?.cluster;
  if (!cluster || typeof cluster.server !== "string") throw new Error(`${path}: cluster ${JSON.stringify(ctx.cluster)} has no server`);
  const user = list<Record<string, unknown>>("users").find((u) => u.name === ctx.user)?.user ?? {};
  const rel = (p: string): string => resolvePath(dirname(path), p);
  const out: RestConfig = { server: cluster.server };
  if (typeof cluster["certificate-authority-data"] === "string") out.caCert = Buffer.from(cluster["certificate-authority-data"], "base64").toString("utf8");
  else if (typeof cluster["certificate-authority"] === "string") out.caCert = readFileSync(rel(cluster["certificate-authority"]), "utf8");
  if (cluster["insecure-skip-tls-verify"] === true) out.insecure = true;
  if (typeof user.token === "string") out.token = user.token;
  else if (typeof user.tokenFile === "string") out.token = readFileSync(rel(user.tokenFile), "utf8").trim();
  if (typeof user["client-certificate-data"] === "string") out.clientCert = Buffer.from(user["client-certificate-data"], "base64").toString("utf8");
  else if (typeof user["client-certificate"] === "string") out.clientCert = readFileSync(rel(user["client-certificate"]), "utf8");
  if (typeof user["client-key-data"] === "string") out.clientKey = Buffer.from(user["client-key-data"], "base64").toString("utf8");
  else if (typeof user["client-key"] === "string") out.clientKey = readFileSync(rel(user["client-key"]), "utf8");
  if (!out.clientCert !== !out.clientKey) throw new Error(`${path}: user ${JSON.stringify(ctx.user)} has a client certificate without its key, or a key without its certificate`);
  return out;
}

/** The URL path of a resource collection or object (core under /api/v1, groups under /apis/g/v). */
export function resourcePath(info: ResourceInfo, namespace: string, name?: string, subresource?: string): string {
  let p = info.group ? `/apis/${info.group}/${info.version}` : `/api/${info.version}`;
  if (info.namespaced && namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${info.resource}`;
  if (name) p += `/${encodeURIComponent(name)}`;
  if (subresource) p += `/${subresource}`;
  return p;
}

function reasonForCode(code: number): string {
  switch (code) {
    case 400:
      return "BadRequest";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 405:
      return "MethodNotAllowed";
    case 409:
      return "Conflict";
    case 410:
      return "Expired";
    case 415:
      return "UnsupportedMediaType";
    case 422:
      return "Invalid";
    case 429:
      return "TooManyRequests";
    case 504:
      return "Timeout";
    default:
      return code >= 500 ? "InternalError" : "Unknown";
  }
}

/** A ClientError from an error response: its Status when the body is one, else the status code. */
export function errorFromResponse(code: number, body: string): ClientError {
  try {
    const s = JSON.parse(body) as StatusBody;
    if (s && typeof s === "object" && s.kind === "Status") return new ClientError(s.code ?? code, s.reason || reasonForCode(code), s.message ?? `HTTP ${code}`, s);
  } catch {
    // not JSON: fall through
  }
  return new ClientError(code, reasonForCode(code), body.trim() || `HTTP ${code}`);
}

type Query = Record<string, string | number | boolean | undefined>;

function listQuery(opts: ListOptions): Query {
  return {
    labelSelector: opts.labelSelector || undefined,
    fieldSelector: opts.fieldSelector || undefined,
    limit: opts.limit,
    continue: opts.continue || undefined,
    resourceVersion: opts.resourceVersion,
    resourceVersionMatch: opts.resourceVersionMatch,
    timeoutSeconds: opts.timeoutSeconds,
    allowWatchBookmarks: opts.allowWatchBookmarks || undefined,
  };
}

function writeQuery(opts: WriteOptions & { force?: boolean }): Query {
  return { dryRun: opts.dryRun ? "All" : undefined, fieldManager: opts.fieldManager, force: opts.force || undefined };
}

function isDryRun(v: unknown): boolean {
  return Array.isArray(v) ? v.length > 0 : v === true;
}

interface RequestSpec {
  method: string;
  path: string;
  query?: Query;
  body?: string;
  contentType?: string;
  signal?: AbortSignal;
}

/** A Client over the apiserver's REST API. One keep-alive agent per client. */
export class RestClient implements Client {
  private readonly url: URL;
  private agent: http.Agent;
  /** Watches hold their connection for minutes: they get their own agent, so they never starve requests. */
  private watchAgent: http.Agent;
  private readonly mod: typeof http | typeof https;
  private readonly metrics: RestClientMetrics;
  /** client-go's host label: the base URL's host[:port]. */
  private readonly host: string;

  constructor(private readonly opts: RestClientOptions) {
    this.url = new URL(opts.server);
    this.metrics = opts.metrics ?? defaultClientMetrics();
    this.host = this.url.host;
    const tls = this.url.protocol === "https:";
    this.mod = tls ? https : http;
    [this.agent, this.watchAgent] = this.newAgents(opts.clientCert, opts.clientKey);
  }

  private newAgents(cert: string | undefined, key: string | undefined): [http.Agent, http.Agent] {
    const maxSockets = this.opts.maxConnections ?? 32;
    if (this.url.protocol !== "https:") return [new http.Agent({ keepAlive: true, maxSockets }), new http.Agent({ keepAlive: true })];
    // One SecureContext for every connection: passing `ca` (or cert/key) per connection parses them each time.
    const secureContext = createSecureContext({ ca: this.opts.caCert, ...(cert && key ? { cert, key } : {}) });
    const base = { keepAlive: true, secureContext, rejectUnauthorized: !this.opts.insecure };
    return [new https.Agent({ ...base, maxSockets }), new https.Agent(base)];
  }

  /**
   * Presents another client certificate from now on (a kubelet's rotated certificate). As client-go's
   * cert rotation (transport/cert_rotation.go) does, every open connection is closed — requests and
   * watches in flight fail and their callers retry — so that nothing keeps talking with the old
   * identity. Throws when the PEMs do not make a TLS context (the old certificate stays).
   */
  setClientCertificate(cert: string, key: string): void {
    const [agent, watchAgent] = this.newAgents(cert, key);
    const old = [this.agent, this.watchAgent];
    this.agent = agent;
    this.watchAgent = watchAgent;
    for (const a of old) a.destroy();
  }

  /** A client from a kubeconfig file's current context. */
  static fromKubeconfig(path: string, opts: Omit<RestClientOptions, keyof RestConfig> = {}): RestClient {
    return new RestClient({ ...loadKubeconfig(path), ...opts });
  }

  resource<T extends KubeObject = KubeObject>(group: string, resource: string): ResourceClient<T> {
    const info = RESOURCES.find((r) => r.group === group && r.resource === resource);
    if (!info) throw new Error(`unknown resource ${JSON.stringify(resource)} in group ${JSON.stringify(group)}`);
    return new RestResourceClient<T>(this, info);
  }

  async bind(namespace: string, pod: string, node: string, opts: { uid?: string } = {}): Promise<void> {
    const body = {
      apiVersion: "v1",
      kind: "Binding",
      metadata: { name: pod, namespace, ...(opts.uid ? { uid: opts.uid } : {}) },
      target: { apiVersion: "v1", kind: "Node", name: node },
    };
    await this.requestJSON({ method: "POST", path: resourcePath(podsInfo(), namespace, pod, "binding"), body: JSON.stringify(body) });
  }

  async evict(namespace: string, pod: string, opts: DeleteOptions = {}): Promise<void> {
    const body = { apiVersion: "policy/v1", kind: "Eviction", metadata: { name: pod, namespace }, deleteOptions: opts };
    await this.requestJSON({ method: "POST", path: resourcePath(podsInfo(), namespace, pod, "eviction"), body: JSON.stringify(body) });
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.agent.destroy();
    this.watchAgent.destroy();
  }

  /** Sends a request and parses the JSON response; error responses reject with a ClientError. */
  async requestJSON<R = unknown>(spec: RequestSpec): Promise<R> {
    // As client-go's Request.request: the latency covers every attempt and reading the answer, failed or not.
    const start = performance.now();
    let text: string;
    let code: number;
    try {
      const res = await this.sendWithRetry(spec);
      text = await readBody(res);
      code = res.statusCode ?? 0;
    } finally {
      this.metrics.requestLatency(spec.method, this.host, (performance.now() - start) / 1000);
    }
    if (code < 200 || code >= 300) throw errorFromResponse(code, text);
    return (text ? JSON.parse(text) : undefined) as R;
  }

  /**
   * send(), retried as client-go retries: when the answer is 429 (or 5xx) with Retry-After, wait
   * that long — with up to 50% jitter, so a crowd turned away together does not come back together —
   * and send again, up to maxRetries times. Then the last answer is returned, whatever it is.
   */
  async sendWithRetry(spec: RequestSpec): Promise<http.IncomingMessage> {
    const max = this.opts.maxRetries ?? 10;
    const sleep = this.opts.sleep ?? sleepFor;
    for (let attempt = 0; ; attempt++) {
      const res = await this.send(spec);
      const wait = retryAfterMs(res.statusCode ?? 0, res.headers["retry-after"]);
      if (wait === undefined || attempt >= max) return res;
      res.resume(); // the Status of the refusal is not needed
      await sleep(wait * (1 + Math.random() / 2), spec.signal);
    }
  }

  /** Starts a request and resolves with the response once its headers arrive; each call is one rest_client_requests_total. */
  send(spec: RequestSpec): Promise<http.IncomingMessage> {
    return this.sendOnce(spec).then(
      (res) => {
        this.metrics.requestResult(String(res.statusCode ?? 0), spec.method, this.host);
        return res;
      },
      (e: unknown) => {
        this.metrics.requestResult("<error>", spec.method, this.host);
        throw e;
      },
    );
  }

  private sendOnce(spec: RequestSpec): Promise<http.IncomingMessage> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(spec.query ?? {})) if (v !== undefined) qs.set(k, String(v));
    const search = qs.size ? `?${qs.toString()}` : "";
    const headers: http.OutgoingHttpHeaders = { Accept: "application/json", "User-Agent": this.opts.userAgent ?? "kubelab-client" };
    if (this.opts.token) headers.Authorization = `Bearer ${this.opts.token}`;
    if (spec.body !== undefined) {
      headers["Content-Type"] = spec.contentType ?? "application/json";
      headers["Content-Length"] = Buffer.byteLength(spec.body);
    }
    return new Promise((resolve, reject) => {
      const req = this.mod.request(
        {
          protocol: this.url.protocol,
          hostname: this.url.hostname,
          port: this.url.port,
          method: spec.method,
          path: `${this.url.pathname.replace(/\/$/, "")}${spec.path}${search}`,
          headers,
          agent: spec.query?.watch ? this.watchAgent : this.agent,
          signal: spec.signal,
          timeout: spec.signal ? undefined : (this.opts.requestTimeoutMs ?? 60_000),
        },
        resolve,
      );
      req.on("timeout", () => req.destroy(new Error(`${spec.method} ${spec.path}: request timed out`)));
      req.on("error", reject);
      req.end(spec.body);
    });
  }
}

function podsInfo(): ResourceInfo {
  return RESOURCES.find((r) => r.group === "" && r.resource === "pods")!;
}

async function readBody(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

class RestResourceClient<T extends KubeObject> implements ResourceClient<T> {
  constructor(
    private readonly rc: RestClient,
    readonly info: ResourceInfo,
  ) {}

  private path(namespace: string, name?: string, sub?: string): string {
    return resourcePath(this.info, namespace, name, sub);
  }

  get(namespace: string, name: string): Promise<T> {
    return this.rc.requestJSON<T>({ method: "GET", path: this.path(namespace, name) });
  }

  list(namespace: string, opts: ListOptions = {}): Promise<ObjectList<T>> {
    return this.rc.requestJSON<ObjectList<T>>({ method: "GET", path: this.path(namespace), query: listQuery(opts) });
  }

  watch(namespace: string, opts: ListOptions, signal: AbortSignal): AsyncIterable<WatchEvent<T>> {
    const rc = this.rc;
    const path = this.path(namespace);
    return {
      async *[Symbol.asyncIterator](): AsyncIterator<WatchEvent<T>> {
        if (signal.aborted) return;
        let res: http.IncomingMessage;
        try {
          res = await rc.sendWithRetry({ method: "GET", path, query: { ...listQuery(opts), watch: "true" }, signal });
        } catch (e) {
          if (signal.aborted) return;
          throw e;
        }
        const code = res.statusCode ?? 0;
        if (code !== 200) throw errorFromResponse(code, await readBody(res));
        let buf = "";
        try {
          for await (const chunk of res) {
            buf += (chunk as Buffer).toString("utf8");
            let nl: number;
            while ((nl = buf.indexOf("\n")) >= 0) {
              const line = buf.slice(0, nl).trim();
              buf = buf.slice(nl + 1);
              if (line) yield JSON.parse(line) as WatchEvent<T>;
            }
          }
          const rest = buf.trim();
          if (rest) yield JSON.parse(rest) as WatchEvent<T>;
        } catch (e) {
          if (signal.aborted) return;
          throw e;
        } finally {
          res.destroy();
        }
      },
    };
  }

  create(namespace: string, obj: T, opts: WriteOptions = {}): Promise<T> {
    const ns = namespace || obj.metadata.namespace || "";
    return this.rc.requestJSON<T>({ method: "POST", path: this.path(ns), query: writeQuery(opts), body: JSON.stringify(this.typed(obj)) });
  }

  update(obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.put(obj, undefined, opts);
  }

  updateStatus(obj: T, opts: WriteOptions = {}): Promise<T> {
    return this.put(obj, "status", opts);
  }

  private put(obj: T, sub: string | undefined, opts: WriteOptions): Promise<T> {
    const name = obj.metadata.name ?? "";
    return this.rc.requestJSON<T>({ method: "PUT", path: this.path(obj.metadata.namespace ?? "", name, sub), query: writeQuery(opts), body: JSON.stringify(this.typed(obj)) });
  }

  patch(namespace: string, name: string, type: PatchType, patch: unknown, opts: WriteOptions & { subresource?: string; force?: boolean } = {}): Promise<T> {
    const body = typeof patch === "string" ? patch : JSON.stringify(patch);
    return this.rc.requestJSON<T>({
      method: "PATCH",
      path: this.path(namespace, name, opts.subresource),
      query: writeQuery(opts),
      body,
      contentType: PATCH_CONTENT_TYPES[type],
    });
  }

  async delete(namespace: string, name: string, opts: DeleteOptions & { dryRun?: boolean } = {}): Promise<void> {
    const { dryRun, ...rest } = opts as Omit<DeleteOptions, "dryRun"> & { dryRun?: unknown };
    const body = { apiVersion: "v1", kind: "DeleteOptions", ...rest };
    await this.rc.requestJSON({ method: "DELETE", path: this.path(namespace, name), query: { dryRun: isDryRun(dryRun) ? "All" : undefined }, body: JSON.stringify(body) });
  }

  /** Fills apiVersion/kind, which the apiserver requires on bodies. */
  private typed(obj: T): T {
    return { ...obj, apiVersion: obj.apiVersion ?? (this.info.group ? `${this.info.group}/${this.info.version}` : this.info.version), kind: obj.kind ?? this.info.kind };
  }
}
