import http from "node:http";
import type { AddressInfo } from "node:net";
import Koa from "koa";
import { afterEach, describe, expect, it } from "vitest";
import { readBody } from "../body.ts";
import { errors } from "../errors.ts";
import { parseRequestInfo } from "../requestinfo.ts";
import type { UserInfo } from "../auth.ts";
import { Auditor, formatMicroTime, type Event, type Sink } from "./audit.ts";
import { withAudit, withAuditInit, type AuditState } from "./middleware.ts";
import { parsePolicy, PolicyRuleEvaluator, type PolicyAttributes } from "./policy.ts";

class MemorySink implements Sink {
  events: Event[] = [];
  processEvents(...events: Event[]): boolean {
    // The line the log backend writes, read back: what a reader of the log sees.
    for (const e of events) this.events.push(JSON.parse(JSON.stringify(e)) as Event);
    return true;
  }
}

const ALICE: UserInfo = { name: "alice", uid: "u-1", groups: ["dev", "system:authenticated"], extra: { scopes: ["a"] } };

function policy(yaml: string): PolicyRuleEvaluator {
  return new PolicyRuleEvaluator(parsePolicy("apiVersion: audit.k8s.io/v1\nkind: Policy\n" + yaml).policy);
}

type Ctx = Koa.ParameterizedContext<AuditState>;

function attributes(ctx: Ctx): PolicyAttributes {
  const info = parseRequestInfo(ctx.method, ctx.path, new URLSearchParams(ctx.querystring));
  return {
    user: ctx.state.user,
    verb: info.verb,
    isResourceRequest: info.isResourceRequest,
    path: ctx.path,
    apiGroup: info.group,
    apiVersion: info.version,
    resource: info.resource,
    subresource: info.subresource,
    namespace: info.namespace,
    name: info.name,
  };
}

const servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

/** A small apiserver-shaped app: authentication (a bearer "good" is alice), audit, impersonation, authorization, and a few handlers. */
async function serve(auditor: Auditor): Promise<string> {
  const app = new Koa<AuditState>();
  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (e) {
      const err = (e as { toStatus?: () => unknown; code?: number }).toStatus ? (e as ReturnType<typeof errors.notFound>) : errors.internal(String(e));
      ctx.status = err.code;
      ctx.type = "application/json";
      ctx.body = JSON.stringify(err.toStatus());
    }
  });
  app.use(withAuditInit());
  app.use((ctx, next) => {
    const h = ctx.get("Authorization");
    if (h === "Bearer good") {
      ctx.state.user = ALICE;
      return next();
    }
    auditor.failedAuthentication(ctx.req, ctx.res, attributes(ctx), { auditID: ctx.state.auditID, received: ctx.state.received });
    throw errors.unauthorized();
  });
  app.use(withAudit(auditor, { attributes, longRunning: (ctx) => parseRequestInfo(ctx.method, ctx.path, new URLSearchParams(ctx.querystring)).verb === "watch" }));
  app.use((ctx, next) => {
    const as = ctx.get("Impersonate-User");
    if (as) {
      ctx.state.user = { name: as, uid: "", groups: ["system:authenticated"] };
      ctx.state.audit?.impersonatedUser(ctx.state.user);
    }
    return next();
  });
  app.use((ctx, next) => {
    if (ctx.path.includes("/secrets")) {
      ctx.state.audit?.authorized("Deny", "no rule");
      throw errors.forbidden({ group: "", resource: "secrets" }, "", 'User "alice" cannot list resource "secrets"');
    }
    ctx.state.audit?.authorized("Allow", 'RBAC: allowed by ClusterRoleBinding "dev"');
    return next();
  });
  app.use(async (ctx) => {
    if (ctx.method === "POST") {
      const obj = JSON.parse((await readBody(ctx.req)).toString()) as Record<string, unknown>;
      const created = { ...obj, metadata: { ...(obj.metadata as object), uid: "pod-uid", resourceVersion: "7" } };
      ctx.status = 201;
      ctx.type = "application/json";
      ctx.body = JSON.stringify(created);
      return;
    }
    if (ctx.query.watch) {
      ctx.respond = false;
      ctx.res.writeHead(200, { "Content-Type": "application/json" });
      ctx.res.write(JSON.stringify({ type: "ADDED", object: { kind: "Pod" } }) + "\n");
      await new Promise((r) => setTimeout(r, 30));
      ctx.res.end();
      return;
    }
    if (ctx.path.endsWith("/boom")) throw new Error("nil pointer");
    const pod = { kind: "Pod", apiVersion: "v1", metadata: { name: "p", namespace: "default", managedFields: [{ manager: "kubectl" }] } };
    ctx.state.auditResponse = pod;
    ctx.type = "application/json";
    ctx.body = JSON.stringify(pod);
  });
  const server = http.createServer(app.callback());
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const POD = { apiVersion: "v1", kind: "Pod", metadata: { name: "web", namespace: "default" }, spec: { containers: [{ name: "c", image: "nginx" }] } };

async function create(base: string): Promise<Response> {
  return fetch(`${base}/api/v1/namespaces/default/pods`, {
    method: "POST",
    headers: { Authorization: "Bearer good", "Content-Type": "application/json", "User-Agent": "kubectl/v1.32.0" },
    body: JSON.stringify(POD),
  });
}

/** Events are written on the request path, but a stage may land just after the client has its answer. */
async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 20));
}

describe("audit events", () => {
  it("records a create at level Request with its request object, and the Audit-ID it answered", async () => {
    const sink = new MemorySink();
    const base = await serve(new Auditor(policy("rules:\n- level: Request\n"), sink));
    const res = await create(base);
    expect(res.status).toBe(201);
    await settle();
    const [received, complete] = sink.events;
    expect(sink.events.map((e) => e.stage)).toEqual(["RequestReceived", "ResponseComplete"]);
    expect(res.headers.get("audit-id")).toBe(complete!.auditID);
    expect(received!.auditID).toBe(complete!.auditID);
    expect(complete!.auditID).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(Object.keys(complete!)).toEqual([
      "kind",
      "apiVersion",
      "level",
      "auditID",
      "stage",
      "requestURI",
      "verb",
      "user",
      "sourceIPs",
      "userAgent",
      "objectRef",
      "responseStatus",
      "requestObject",
      "requestReceivedTimestamp",
      "stageTimestamp",
      "annotations",
    ]);
    expect(complete).toMatchObject({
      kind: "Event",
      apiVersion: "audit.k8s.io/v1",
      level: "Request",
      requestURI: "/api/v1/namespaces/default/pods",
      verb: "create",
      user: { username: "alice", uid: "u-1", groups: ["dev", "system:authenticated"], extra: { scopes: ["a"] } },
      sourceIPs: ["127.0.0.1"],
      userAgent: "kubectl/v1.32.0",
      // The name comes from the object, as LogRequestObject fills it.
      objectRef: { resource: "pods", namespace: "default", name: "web", apiVersion: "v1" },
      responseStatus: { metadata: {}, code: 201 },
      requestObject: POD,
      annotations: { "authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": 'RBAC: allowed by ClusterRoleBinding "dev"' },
    });
    expect(complete!.responseObject).toBeUndefined();
    // RequestReceived is written before the body is read and before authorization.
    expect(received!.requestObject).toBeUndefined();
    expect(received!.annotations).toBeUndefined();
    expect(received!.responseStatus).toBeUndefined();
    expect(received!.stageTimestamp).toBe(received!.requestReceivedTimestamp);
    expect(complete!.requestReceivedTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(complete!.stageTimestamp >= complete!.requestReceivedTimestamp).toBe(true);
  });

  it("leaves the request object out at level Metadata", async () => {
    const sink = new MemorySink();
    const base = await serve(new Auditor(policy("rules:\n- level: Metadata\n"), sink));
    expect((await create(base)).status).toBe(201);
    await settle();
    const complete = sink.events.find((e) => e.stage === "ResponseComplete")!;
    expect(complete.level).toBe("Metadata");
    expect(complete.requestObject).toBeUndefined();
    expect(complete.responseObject).toBeUndefined();
    expect(complete.objectRef).toEqual({ resource: "pods", namespace: "default", name: "web", apiVersion: "v1" });
  });

  it("keeps the response object at RequestResponse, without managedFields when the policy says so", async () => {
    const sink = new MemorySink();
    const base = await serve(new Auditor(policy("omitManagedFields: true\nrules:\n- level: RequestResponse\n"), sink));
    const res = await fetch(`${base}/api/v1/namespaces/default/pods/p`, { headers: { Authorization: "Bearer good" } });
    expect(res.status).toBe(200);
    await settle();
    const complete = sink.events.find((e) => e.stage === "ResponseComplete")!;
    expect(complete.responseObject).toEqual({ kind: "Pod", apiVersion: "v1", metadata: { name: "p", namespace: "default" } });
    expect(complete.requestObject).toBeUndefined(); // a GET has no body
  });

  it("writes ResponseStarted and ResponseComplete for a watch", async () => {
    const sink = new MemorySink();
    const base = await serve(new Auditor(policy("rules:\n- level: Metadata\n"), sink));
    const res = await fetch(`${base}/api/v1/pods?watch=1`, { headers: { Authorization: "Bearer good" } });
    expect(res.status).toBe(200);
    await settle(); // the response has started, the watch is still going
    expect(sink.events.map((e) => e.stage)).toEqual(["RequestReceived", "ResponseStarted"]);
    await res.text();
    await settle();
    expect(sink.events.map((e) => e.stage)).toEqual(["RequestReceived", "ResponseStarted", "ResponseComplete"]);
    const [, started, complete] = sink.events;
    expect(started!.verb).toBe("watch");
    expect(started!.responseStatus).toEqual({ metadata: {}, code: 200 });
    expect(complete!.responseStatus).toEqual({ metadata: {}, code: 200 });
    expect(complete!.stageTimestamp >= started!.stageTimestamp).toBe(true);
  });

  it("omits the stages the policy omits", async () => {
    const sink = new MemorySink();
    const base = await serve(new Auditor(policy("omitStages: [RequestReceived]\nrules:\n- level: Metadata\n  verbs: [watch]\n  omitStages: [ResponseStarted]\n- level: Metadata\n"), sink));
    await (await fetch(`${base}/api/v1/pods?watch=1`, { headers: { Authorization: "Bearer good" } })).text();
    await (await create(base)).text();
    await settle();
    expect(sink.events.map((e) => `${e.verb} ${e.stage}`)).toEqual(["watch ResponseComplete", "create ResponseComplete"]);
  });

  it("records a refused request with upstream's Status fields and the forbid annotation", async () => {
    const sink = new MemorySink();
    const base = await serve(new Auditor(policy("rules:\n- level: Metadata\n"), sink));
    const res = await fetch(`${base}/api/v1/secrets`, { headers: { Authorization: "Bearer good" } });
    expect(res.status).toBe(403);
    const { kind, apiVersion, ...status } = (await res.json()) as Record<string, unknown>;
    expect([kind, apiVersion]).toEqual(["Status", "v1"]);
    await settle();
    const complete = sink.events.find((e) => e.stage === "ResponseComplete")!;
    // The Status the client got, without its type, in metav1.Status's field order.
    expect(complete.responseStatus).toEqual(status);
    expect(complete.responseStatus).toMatchObject({ status: "Failure", message: 'secrets is forbidden: User "alice" cannot list resource "secrets"', reason: "Forbidden", code: 403 });
    expect(Object.keys(complete.responseStatus!)).toEqual(["metadata", "status", "message", "reason", "details", "code"]);
    expect(complete.annotations).toEqual({ "authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": "no rule" });
  });

  it("records a failed authentication as one ResponseStarted event with user {}", async () => {
    const sink = new MemorySink();
    const base = await serve(new Auditor(policy("rules:\n- level: None\n  users: [alice]\n- level: Metadata\n"), sink));
    const res = await fetch(`${base}/api/v1/pods`, { headers: { Authorization: "Bearer wrong" } });
    expect(res.status).toBe(401);
    await settle();
    expect(sink.events).toHaveLength(1);
    const ev = sink.events[0]!;
    expect(ev.stage).toBe("ResponseStarted");
    expect(ev.user).toEqual({});
    expect(ev.responseStatus).toEqual({ metadata: {}, message: "Authentication failed, attempted: bearer", code: 401 });
    expect(res.headers.get("audit-id")).toBe(ev.auditID);
    await fetch(`${base}/api/v1/pods`);
    await settle();
    expect(sink.events[1]!.responseStatus!.message).toBe("Authentication failed, no credentials provided");
  });

  it("records the impersonated user beside the requester, and keeps a client's Audit-ID", async () => {
    const sink = new MemorySink();
    const base = await serve(new Auditor(policy("rules:\n- level: Metadata\n"), sink));
    const res = await fetch(`${base}/api/v1/namespaces/default/pods/p`, { headers: { Authorization: "Bearer good", "Impersonate-User": "bob", "Audit-ID": "my-id" } });
    expect(res.headers.get("audit-id")).toBe("my-id");
    await settle();
    const complete = sink.events.find((e) => e.stage === "ResponseComplete")!;
    expect(complete.auditID).toBe("my-id");
    expect(complete.user.username).toBe("alice");
    expect(complete.impersonatedUser).toEqual({ username: "bob", groups: ["system:authenticated"] });
    expect(Object.keys(complete).indexOf("impersonatedUser")).toBe(Object.keys(complete).indexOf("user") + 1);
  });

  it("writes the Panic stage for a handler's bug", async () => {
    const sink = new MemorySink();
    const base = await serve(new Auditor(policy("rules:\n- level: Metadata\n"), sink));
    expect((await fetch(`${base}/api/v1/namespaces/default/pods/boom`, { headers: { Authorization: "Bearer good" } })).status).toBe(500);
    await settle();
    expect(sink.events.map((e) => e.stage)).toEqual(["RequestReceived", "Panic"]);
    expect(sink.events[1]!.responseStatus).toEqual({ metadata: {}, status: "Failure", message: "APIServer panic'd: nil pointer", reason: "InternalError", code: 500 });
  });

  it("writes nothing at level None", async () => {
    const sink = new MemorySink();
    const base = await serve(new Auditor(policy("rules:\n- level: None\n  verbs: [create]\n- level: Metadata\n  verbs: [watch]\n"), sink));
    const res = await create(base);
    expect(res.headers.get("audit-id")).toBeTruthy(); // the header is answered for every request, as WithAuditInit
    await settle();
    expect(sink.events).toEqual([]);
  });
});

describe("MicroTime", () => {
  it("prints microseconds in UTC", () => {
    expect(formatMicroTime(Date.UTC(2025, 0, 2, 3, 4, 5, 678) + 0.9129)).toBe("2025-01-02T03:04:05.678912Z");
    expect(formatMicroTime(Date.UTC(2025, 0, 2, 3, 4, 5, 0))).toBe("2025-01-02T03:04:05.000000Z");
  });
});
