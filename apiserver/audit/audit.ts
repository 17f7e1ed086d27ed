// Audit events (audit.k8s.io/v1 Event), as k8s.io/apiserver/pkg/audit (context.go, request.go) and
// pkg/endpoints/filters (audit.go, authn_audit.go, audit_init.go) build them: one event per stage of
// a request, handed to a sink (the log backend, log.ts) that writes them off the request path.

import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { isIP } from "node:net";
import type { TLSSocket } from "node:tls";
import { parse as parseYaml } from "yaml";
import type { UserInfo } from "../auth.ts";
import type { Attributes, Decision } from "../authorization/types.ts";
import { MAX_BODY_BYTES } from "../body.ts";
import { decodeProtobufObject, isProtobufContentType } from "../protobuf/index.ts";
import { levelLess, PolicyRuleEvaluator, type Level, type PolicyAttributes, type RequestAuditConfig, type Stage } from "./policy.ts";

/** The header that carries a request's audit ID, read from the client when it sends one and always answered. */
export const HEADER_AUDIT_ID = "Audit-ID";
export const DECISION_ANNOTATION = "authorization.k8s.io/decision";
export const REASON_ANNOTATION = "authorization.k8s.io/reason";
const MAX_USER_AGENT_LENGTH = 1024;
const USER_AGENT_TRUNCATE_SUFFIX = "...TRUNCATED";

/** authentication.k8s.io/v1 UserInfo as JSON (every field omitempty). */
export interface EventUser {
  username?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

export interface ObjectReference {
  resource?: string;
  namespace?: string;
  name?: string;
  uid?: string;
  apiGroup?: string;
  apiVersion?: string;
  resourceVersion?: string;
  subresource?: string;
}

/** metav1.Status as the event keeps it: the bounded fields only (no kind/apiVersion). */
export interface ResponseStatus {
  metadata: Record<string, never>;
  status?: string;
  message?: string;
  reason?: string;
  details?: unknown;
  code?: number;
}

/** audit.k8s.io/v1 Event, fields in upstream's order (the JSON line keeps it). */
export interface Event {
  kind: "Event";
  apiVersion: "audit.k8s.io/v1";
  level: Level;
  auditID: string;
  stage: Stage;
  requestURI: string;
  verb: string;
  user: EventUser;
  impersonatedUser?: EventUser;
  sourceIPs?: string[];
  userAgent?: string;
  objectRef?: ObjectReference;
  responseStatus?: ResponseStatus;
  requestObject?: unknown;
  responseObject?: unknown;
  requestReceivedTimestamp: string;
  stageTimestamp: string;
  annotations?: Record<string, string>;
}

/** Where events go. processEvents must not block: it queues and returns (false when the event was dropped). */
export interface Sink {
  processEvents(...events: Event[]): boolean;
}

/** Milliseconds since the epoch with microsecond resolution. */
export type Clock = () => number;

/**
 * A wall clock with microseconds (metav1.MicroTime): performance.now() anchored to Date.now(),
 * re-anchored every second so that it follows the wall clock when it is stepped.
 */
export function microClock(): Clock {
  let anchoredAt = -Infinity;
  let offset = 0;
  return () => {
    const p = performance.now();
    if (p - anchoredAt > 1000) {
      anchoredAt = p;
      offset = Date.now() - p;
    }
    return offset + p;
  };
}

/** MicroTime's RFC 3339 form, in UTC: 2006-01-02T15:04:05.000000Z. */
export function formatMicroTime(ms: number): string {
  const micros = Math.floor(ms * 1000);
  const whole = Math.floor(micros / 1000);
  return new Date(whole).toISOString().slice(0, -1) + String(micros - whole * 1000).padStart(3, "0") + "Z";
}

/** The audit ID of a request: the client's Audit-ID header when it sent one (kept as is, as upstream), else a new UUID. */
export function auditIDFor(req: IncomingMessage): string {
  const h = req.headers["audit-id"];
  const v = Array.isArray(h) ? h[0] : h;
  return v ? v : randomUUID();
}

/**
 * utilnet.SourceIPs: the X-Forwarded-For chain, then X-Real-Ip, then the peer, without repeating
 * the peer when the chain already ends with it.
 */
export function sourceIPs(req: IncomingMessage): string[] {
  const ips: string[] = [];
  const xff = req.headers["x-forwarded-for"];
  if (typeof xff === "string") for (const p of xff.split(",")) {
    const ip = p.trim();
    if (isIP(ip)) ips.push(ip);
  }
  const real = req.headers["x-real-ip"];
  if (typeof real === "string" && isIP(real.trim()) && !ips.includes(real.trim())) ips.push(real.trim());
  let peer = req.socket?.remoteAddress;
  if (peer?.startsWith("::ffff:") && isIP(peer.slice(7)) === 4) peer = peer.slice(7); // Go prints an IPv4-mapped peer as IPv4
  if (peer && ips[ips.length - 1] !== peer) ips.push(peer);
  return ips;
}

/** WithFailedAuthenticationAudit's message: which credentials the request tried. */
export function authMethodsMessage(req: IncomingMessage, query?: URLSearchParams): string {
  const methods: string[] = [];
  const auth = (req.headers.authorization ?? "").trim();
  if (/^basic\s+\S/i.test(auth)) methods.push("basic");
  const parts = auth.split(" ");
  if (parts.length > 1 && parts[0]!.toLowerCase() === "bearer") methods.push("bearer");
  const q = query ?? new URL(req.url ?? "/", "http://x").searchParams;
  if ((q.get("access_token") ?? "").trim()) methods.push("access_token");
  const sock = req.socket as TLSSocket;
  if (typeof sock.getPeerCertificate === "function") {
    const cert = sock.getPeerCertificate();
    if (cert && Object.keys(cert).length > 0) methods.push("x509");
  }
  return methods.length ? `Authentication failed, attempted: ${methods.join(", ")}` : "Authentication failed, no credentials provided";
}

function eventUser(u: UserInfo): EventUser {
  const out: EventUser = {};
  if (u.name) out.username = u.name;
  if (u.uid) out.uid = u.uid;
  if (u.groups.length) out.groups = [...u.groups];
  if (u.extra && Object.keys(u.extra).length) out.extra = u.extra;
  return out;
}

function userAgent(req: IncomingMessage): string | undefined {
  const ua = req.headers["user-agent"];
  if (!ua) return undefined;
  return ua.length > MAX_USER_AGENT_LENGTH ? ua.slice(0, MAX_USER_AGENT_LENGTH) + USER_AGENT_TRUNCATE_SUFFIX : ua;
}

const BODY_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export interface BeginOptions {
  /** The request's audit ID (auditIDFor), also sent as the Audit-ID response header. */
  auditID?: string;
  /** Watches, logs, exec...: these get a ResponseStarted event when their response begins. */
  longRunning?: boolean;
  /** When the request arrived (ms since the epoch); now when absent. */
  received?: number;
}

/**
 * The auditing of one apiserver: its policy and sink. begin() is called once per authenticated
 * request; failedAuthentication() for a request that is answered 401.
 */
export class Auditor {
  readonly clock: Clock;

  constructor(
    readonly policy: PolicyRuleEvaluator,
    readonly sink: Sink,
    opts: { clock?: Clock } = {},
  ) {
    this.clock = opts.clock ?? microClock();
  }

  /**
   * After authentication, before impersonation (as WithAudit sits in upstream's chain): evaluates
   * the policy for the authenticated user, writes RequestReceived and returns the request's event,
   * or null at level None. With a level of Metadata or more the request body is recorded as the
   * handler reads it (see AuditEvent.tapRequestBody), so that handlers need not change.
   */
  begin(req: IncomingMessage, res: ServerResponse, attrs: PolicyAttributes, opts: BeginOptions = {}): AuditEvent | null {
    const config = this.policy.evaluate(attrs);
    if (config.level === "None") return null;
    const ev = new AuditEvent(this, config, req, attrs, opts);
    if (opts.longRunning) ev.onResponseStart(res);
    if (BODY_METHODS.has(req.method ?? "")) ev.tapRequestBody(req);
    ev.emit("RequestReceived");
    return ev;
  }

  /**
   * WithFailedAuthenticationAudit: a request answered 401 is audited with no user (rules naming
   * users or groups do not match it) and only one event, ResponseStarted, whose status says which
   * credentials were tried. Call before the 401 is written.
   */
  failedAuthentication(req: IncomingMessage, res: ServerResponse, attrs: PolicyAttributes, opts: Omit<BeginOptions, "longRunning"> = {}): void {
    const { user: _, ...anonymous } = attrs;
    const config = this.policy.evaluate(anonymous);
    if (config.level === "None") return;
    const ev = new AuditEvent(this, config, req, anonymous, opts);
    ev.status = { metadata: {}, message: authMethodsMessage(req) };
    ev.onResponseStart(res);
  }
}

/** One request's audit event; each stage writes a copy of it as it is then. */
export class AuditEvent {
  readonly auditID: string;
  readonly level: Level;
  private readonly requestURI: string;
  private readonly verb: string;
  private readonly user: EventUser;
  private impersonated?: EventUser;
  private readonly ips: string[];
  private readonly userAgent?: string;
  private readonly objectRef?: ObjectReference;
  /** @internal the response status so far (set by the code, then by a Status body). */
  status?: ResponseStatus;
  private requestObj?: unknown;
  private responseObj?: unknown;
  private readonly received: string;
  private annotations?: Record<string, string>;
  private bodyChunks?: Buffer[];
  private bodyType = "";
  private bodyDecoded = false;
  private started = false;
  private done = false;
  private readonly longRunning: boolean;

  constructor(
    private readonly auditor: Auditor,
    private readonly config: RequestAuditConfig,
    req: IncomingMessage,
    attrs: PolicyAttributes,
    opts: BeginOptions,
  ) {
    this.auditID = opts.auditID ?? auditIDFor(req);
    this.level = config.level;
    this.requestURI = req.url ?? "/";
    this.verb = attrs.verb;
    this.user = attrs.user ? eventUser(attrs.user) : {};
    this.ips = sourceIPs(req);
    this.userAgent = userAgent(req);
    if (attrs.isResourceRequest) {
      const ref: ObjectReference = {};
      if (attrs.resource) ref.resource = attrs.resource;
      if (attrs.namespace) ref.namespace = attrs.namespace;
      if (attrs.name) ref.name = attrs.name;
      if (attrs.apiGroup) ref.apiGroup = attrs.apiGroup;
      if (attrs.apiVersion) ref.apiVersion = attrs.apiVersion;
      if (attrs.subresource) ref.subresource = attrs.subresource;
      this.objectRef = ref;
    }
    this.received = formatMicroTime(opts.received ?? auditor.clock());
    this.longRunning = opts.longRunning ?? false;
  }

  /** LogImpersonatedUser: the user the request goes on as (kubectl --as). */
  impersonatedUser(u: UserInfo): void {
    this.impersonated = eventUser(u);
    // Upstream's Extra is always set (an empty map is omitted from the JSON).
  }

  /** The authorizer's answer, as WithAuthorization annotates it (the reason is always recorded, even empty). */
  authorized(decision: Decision, reason: string): void {
    this.annotate(DECISION_ANNOTATION, decision === "Allow" ? "allow" : "forbid");
    this.annotate(REASON_ANNOTATION, reason);
  }

  /** AddAuditAnnotation: the first value of a key stays. */
  annotate(key: string, value: string): void {
    this.annotations ??= {};
    if (!(key in this.annotations)) this.annotations[key] = value;
  }

  /**
   * The decoded request object (LogRequestObject), when the handler has it: replaces what the body
   * tap would decode. Fills the objectRef's empty name, namespace, uid and resourceVersion from the
   * object's metadata at every level, as upstream does; the object itself is kept from Request up.
   */
  requestObject(obj: unknown): void {
    this.bodyDecoded = true;
    this.bodyChunks = undefined;
    this.setRequestObject(obj, false);
  }

  /** LogRequestPatch: the patch as sent (it does not describe the object, so objectRef is left alone). */
  requestPatch(patch: unknown): void {
    this.bodyDecoded = true;
    this.bodyChunks = undefined;
    this.setRequestObject(patch, true);
  }

  /** LogResponseObject: the object the response carries (kept at RequestResponse; a Status becomes responseStatus at any level). */
  responseObject(obj: unknown): void {
    this.absorbResponse(obj);
  }

  /**
   * Records the request body as the handler reads it: the 'data' events the handler listens to are
   * seen here too (the stream's flowing state is not touched), up to the apiserver's body limit.
   * It is decoded only when a stage after RequestReceived is written.
   */
  tapRequestBody(req: IncomingMessage): void {
    this.bodyChunks = [];
    this.bodyType = String(req.headers["content-type"] ?? "");
    let size = 0;
    const emit = req.emit;
    const self = this;
    req.emit = function (this: IncomingMessage, event: string | symbol, ...args: unknown[]): boolean {
      if (event === "data" && self.bodyChunks) {
        const chunk = args[0] as Buffer;
        size += chunk.length;
        if (size > MAX_BODY_BYTES) self.bodyChunks = undefined;
        else self.bodyChunks.push(chunk);
      }
      return emit.call(this, event, ...args);
    } as IncomingMessage["emit"];
  }

  /** Writes ResponseStarted when the response's headers go out (its code is the response's). */
  onResponseStart(res: ServerResponse): void {
    const writeHead = res.writeHead;
    const self = this;
    // writeHead is where every response's status is fixed (explicit or implicit: Node's _implicitHeader calls it).
    res.writeHead = function (this: ServerResponse, ...args: Parameters<ServerResponse["writeHead"]>) {
      res.writeHead = writeHead;
      self.responseStarted(typeof args[0] === "number" ? args[0] : res.statusCode);
      return writeHead.apply(this, args);
    } as ServerResponse["writeHead"];
  }

  /** ResponseStarted for a long-running request (watch, logs): once, with the response's code. */
  responseStarted(code: number): void {
    if (this.started || this.done) return;
    this.started = true;
    this.setCode(code);
    this.emit("ResponseStarted");
  }

  /**
   * ResponseComplete: the answer's code and, when known, its body (the object the handler
   * answered, a Status, or the serialized JSON text; protobuf bytes are not decoded). A long-running
   * request whose response never started (the client went first) gets its ResponseStarted here, as
   * upstream fakes it.
   */
  complete(code: number, body?: unknown): void {
    if (this.done) return;
    if (body !== undefined) this.absorbResponse(body);
    if (this.longRunning && !this.started) this.responseStarted(code);
    // A started response's code was fixed by its headers; otherwise the answer's code is the one.
    if (!this.started) this.setCode(code);
    this.done = true;
    this.emit("ResponseComplete");
  }

  /** Panic: the handler failed with a bug (not an API error); the event says 500 as upstream's recover does. */
  panic(err: unknown): void {
    if (this.done) return;
    this.done = true;
    this.status = { metadata: {}, status: "Failure", message: `APIServer panic'd: ${err instanceof Error ? err.message : String(err)}`, reason: "InternalError", code: 500 };
    this.emit("Panic");
  }

  private setCode(code: number): void {
    this.status ??= { metadata: {} };
    this.status.code = code;
  }

  private absorbResponse(body: unknown): void {
    let obj = body;
    const wanted = !levelLess(this.level, "RequestResponse");
    if (typeof body === "string" || Buffer.isBuffer(body)) {
      const text = typeof body === "string" ? body : isJsonText(body) ? body.toString("utf8") : undefined;
      // Below RequestResponse only a Status matters: parse only what may be one.
      if (text === undefined || (!wanted && !text.includes('"Status"'))) return;
      try {
        obj = JSON.parse(text);
      } catch {
        return;
      }
    }
    if (isRecord(obj) && obj.kind === "Status" && (obj.apiVersion === "v1" || obj.apiVersion === undefined)) {
      const s: ResponseStatus = { metadata: {} };
      if (obj.status) s.status = obj.status as string;
      if (obj.message) s.message = obj.message as string;
      if (obj.reason) s.reason = obj.reason as string;
      if (obj.details) s.details = obj.details;
      if (typeof obj.code === "number") s.code = obj.code;
      this.status = s;
    }
    if (wanted) this.responseObj = this.config.omitManagedFields ? withoutManagedFields(obj) : obj;
  }

  private setRequestObject(obj: unknown, patch: boolean): void {
    if (!patch && isRecord(obj) && isRecord(obj.metadata) && this.objectRef) {
      const m = obj.metadata;
      const ref = this.objectRef;
      if (!ref.namespace && typeof m.namespace === "string" && m.namespace) ref.namespace = m.namespace;
      if (!ref.name && typeof m.name === "string" && m.name) ref.name = m.name;
      if (!ref.uid && typeof m.uid === "string" && m.uid) ref.uid = m.uid;
      if (!ref.resourceVersion && typeof m.resourceVersion === "string" && m.resourceVersion) ref.resourceVersion = m.resourceVersion;
    }
    if (levelLess(this.level, "Request")) return;
    this.requestObj = !patch && this.config.omitManagedFields ? withoutManagedFields(obj) : obj;
  }

  /** Decodes the tapped body once, the first time a later stage is written. */
  private decodeBody(): void {
    if (this.bodyDecoded || !this.bodyChunks) return;
    this.bodyDecoded = true;
    const chunks = this.bodyChunks;
    this.bodyChunks = undefined;
    if (chunks.length === 0) return; // no body: nothing decoded upstream either (a DELETE without options)
    const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    const ct = this.bodyType.split(";")[0]!.trim().toLowerCase();
    let obj: unknown;
    try {
      if (isProtobufContentType(ct)) obj = decodeProtobufObject(buf);
      else if (ct.endsWith("yaml")) obj = parseYaml(buf.toString("utf8"));
      else obj = JSON.parse(buf.toString("utf8"));
    } catch {
      return; // the handler answered 400; upstream logs no request object for a body it could not decode
    }
    this.setRequestObject(obj, ct.includes("patch"));
  }

  /** ProcessEventStage: unless the policy omits the stage, a copy of the event as it is now goes to the sink. */
  emit(stage: Stage): boolean {
    if (this.config.omitStages.includes(stage)) return true;
    if (stage !== "RequestReceived") this.decodeBody();
    // Built in upstream's field order, which JSON.stringify keeps; the timestamps come last but one.
    const ev = {
      kind: "Event",
      apiVersion: "audit.k8s.io/v1",
      level: this.level,
      auditID: this.auditID,
      stage,
      requestURI: this.requestURI,
      verb: this.verb,
      user: this.user,
    } as Event;
    if (this.impersonated) ev.impersonatedUser = this.impersonated;
    if (this.ips.length) ev.sourceIPs = this.ips;
    if (this.userAgent) ev.userAgent = this.userAgent;
    if (this.objectRef) ev.objectRef = { ...this.objectRef };
    if (this.status) ev.responseStatus = { ...this.status };
    if (this.requestObj !== undefined) ev.requestObject = this.requestObj;
    if (this.responseObj !== undefined) ev.responseObject = this.responseObj;
    ev.requestReceivedTimestamp = this.received;
    ev.stageTimestamp = stage === "RequestReceived" ? this.received : formatMicroTime(this.auditor.clock());
    if (this.annotations) ev.annotations = { ...this.annotations };
    return this.auditor.sink.processEvents(ev);
  }
}

function isJsonText(b: Buffer): boolean {
  for (const c of b.subarray(0, 16)) {
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
    return c === 0x7b || c === 0x5b; // { or [
  }
  return false;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** copyWithoutManagedFields: the object (or each item of a list, or each row object of a Table) without metadata.managedFields; the original is not touched. */
export function withoutManagedFields(obj: unknown): unknown {
  if (!isRecord(obj)) return obj;
  let out = obj;
  if (isRecord(obj.metadata) && "managedFields" in obj.metadata) {
    const { managedFields: _, ...metadata } = obj.metadata;
    out = { ...out, metadata };
  }
  if (Array.isArray(obj.items)) out = { ...out, items: obj.items.map(withoutManagedFields) };
  if (obj.kind === "Table" && Array.isArray(obj.rows)) {
    out = { ...out, rows: obj.rows.map((r: unknown) => (isRecord(r) && r.object ? { ...r, object: withoutManagedFields(r.object) } : r)) };
  }
  return out;
}
