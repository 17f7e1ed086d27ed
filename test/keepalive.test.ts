// Early answers must not poison a keep-alive connection. When the apiserver answers before it has
// read a request's body (413, 401, 429, 400, 404, 405...), the rest of that body is still on the
// connection; the next request a keep-alive client sends on it must still be answered. One agent,
// one connection at a time, every early-rejection case interleaved with valid requests.

import https from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultNamespaceEditorToken, jsonObject, request, type RawRequest, type RawResponse } from "./harness/http.ts";
import { startKubelab, type Kubelab } from "./harness/kubelab.ts";

let k: Kubelab;
let agent: https.Agent;
/** The cluster as a ServiceAccount that may edit the default namespace: system:masters (the admin) is exempt from max-in-flight. */
let as: Pick<Kubelab, "port" | "token" | "caCert">;

const CMS = "/api/v1/namespaces/default/configmaps";
const MiB = 1024 * 1024;
const cm = (name: string, data: Record<string, string> = {}): string => JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data });
const json = { "Content-Type": "application/json" };

beforeAll(async () => {
  // One mutating request at a time, so that a test can hold the only slot and see 429s.
  k = await startKubelab({ extraArgs: ["--max-mutating-requests-inflight", "1"] });
  agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: k.caCert });
  as = { port: k.port, caCert: k.caCert, token: await defaultNamespaceEditorToken(k, "writer") };
}, 120_000);

afterAll(async () => {
  agent?.destroy();
  await k?.stop({ clean: true });
});

/** On the shared agent; a request that gets no answer in 10 s fails the test. */
function onAgent(r: RawRequest): Promise<RawResponse> {
  return request(as, { ...r, agent, timeoutMs: 10_000 });
}

let n = 0;
/** A valid read and a valid write on the same agent: both must be answered, right. */
async function validRequests(after: string): Promise<void> {
  const list = await onAgent({ path: CMS });
  expect(list.status, `GET after ${after}: ${list.text.slice(0, 200)}`).toBe(200);
  const name = `ok-${++n}`;
  // The cluster serves one write at a time (see beforeAll): a controller's write may have the slot;
  // then the answer is a 429 — on this same connection — and the write is sent again, as clients do.
  let created = await onAgent({ method: "POST", path: CMS, headers: json, body: cm(name, { after }) });
  for (let i = 0; i < 10 && created.status === 429; i++) {
    await new Promise((r) => setTimeout(r, 200));
    created = await onAgent({ method: "POST", path: CMS, headers: json, body: cm(name, { after }) });
  }
  expect(created.status, `POST after ${after}: ${created.text.slice(0, 200)}`).toBe(201);
  expect(jsonObject(created.text)).toMatchObject({ kind: "ConfigMap", metadata: { name } });
}

/**
 * Holds the only mutating slot: a create whose body is half sent. Resolves once it is admitted
 * (a holder that arrived while a controller's write had the slot is answered 429: try again).
 */
async function holdMutatingSlot(): Promise<{ release(): Promise<number> }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const body = Buffer.from(cm(`holder-${attempt}`));
    let answered: number | undefined;
    let holder: ReturnType<typeof https.request> | undefined;
    const done = new Promise<number>((resolve, reject) => {
      const req = https.request(
        { host: "127.0.0.1", port: k.port, method: "POST", path: CMS, ca: k.caCert, agent: false, headers: { ...json, Authorization: `Bearer ${as.token}`, "Content-Length": String(body.length) } },
        (res) => {
          answered = res.statusCode;
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        },
      );
      req.on("error", reject);
      req.write(body.subarray(0, 10));
      holder = req;
    });
    // Admitted: not answered, and counted in flight (it waits for the rest of its body).
    for (let poll = 0; poll < 100 && answered === undefined; poll++) {
      await new Promise((r) => setTimeout(r, 100));
      const m = await request(k, { path: "/metrics", timeoutMs: 10_000 });
      if (answered === undefined && /apiserver_current_inflight_requests\{request_kind="mutating"\} 1/.test(m.text)) {
        return {
          release: async () => {
            holder!.end(body.subarray(10));
            return done;
          },
        };
      }
    }
    if (answered === undefined) holder!.destroy();
    await done.catch(() => 0);
  }
  throw new Error("could not take the mutating slot");
}

describe("a keep-alive connection after early answers", () => {
  it("answers every valid request interleaved with every early rejection", async () => {
    await validRequests("start");
    const big = cm("big", { x: "a".repeat(4 * MiB) });
    const cases: { what: string; req: RawRequest; status: number; keepAlive?: boolean }[] = [
      { what: "413, Content-Length over the limit", req: { method: "POST", path: CMS, headers: json, body: big }, status: 413, keepAlive: false },
      { what: "413, chunked body over the limit", req: { method: "POST", path: CMS, headers: json, body: big, chunked: true }, status: 413, keepAlive: false },
      { what: "413 on a patch", req: { method: "PATCH", path: `${CMS}/ok-1`, headers: { "Content-Type": "application/merge-patch+json" }, body: `{"data":{"a":"${"y".repeat(4 * MiB)}"}}` }, status: 413 },
      { what: "401 before the body is read (large body)", req: { method: "POST", path: CMS, headers: json, body: big, token: "wrong" }, status: 401, keepAlive: false },
      { what: "401 before the body is read (chunked)", req: { method: "POST", path: CMS, headers: json, body: cm("x"), token: "wrong", chunked: true }, status: 401 },
      { what: "401 before the body is read (small body)", req: { method: "POST", path: CMS, headers: json, body: cm("x"), token: "wrong" }, status: 401, keepAlive: true },
      { what: "403 without a token (anonymous, refused by RBAC)", req: { method: "PUT", path: `${CMS}/ok-1`, headers: json, body: cm("ok-1", { x: "z".repeat(MiB) }), token: false }, status: 403, keepAlive: false },
      { what: "415 unknown content type", req: { method: "POST", path: CMS, headers: { "Content-Type": "text/plain" }, body: cm("x") }, status: 415 },
      { what: "415 unknown charset", req: { method: "POST", path: CMS, headers: { "Content-Type": "application/json; charset=latin1" }, body: cm("x", { a: "b".repeat(MiB) }) }, status: 415 },
      { what: "400 bad URL escape (body unread)", req: { method: "POST", path: "/api/v1/namespaces/%zz/configmaps", headers: json, body: cm("x", { a: "b".repeat(2 * MiB) }) }, status: 400, keepAlive: false },
      { what: "400 bad URL escape, small body", req: { method: "POST", path: "/api/v1/namespaces/%zz/configmaps", headers: json, body: cm("x") }, status: 400, keepAlive: true },
      { what: "400 bad JSON", req: { method: "POST", path: CMS, headers: json, body: "{" + "x".repeat(MiB) }, status: 400 },
      { what: "405 on a read-only path with a body", req: { method: "POST", path: "/version", headers: json, body: big }, status: 405, keepAlive: false },
      { what: "404 on an unknown resource with a body", req: { method: "POST", path: "/api/v1/namespaces/default/nothings", headers: json, body: cm("x", { a: "b".repeat(MiB) }) }, status: 404, keepAlive: false },
      { what: "404 with a chunked body", req: { method: "POST", path: "/api/v1/namespaces/default/nothings", headers: json, body: cm("x"), chunked: true }, status: 404 },
    ];
    for (const c of cases) {
      // The rejections as the admin (the ServiceAccount would be refused 403 first on /version and
      // unknown resources, as upstream authorizes before routing); the valid requests between them
      // as the ServiceAccount.
      c.req = { token: k.token, ...c.req };
      let r = await onAgent(c.req);
      // A write that found the one mutating slot taken is answered 429 first (also an early answer).
      for (let i = 0; i < 10 && r.status === 429; i++) {
        await new Promise((res) => setTimeout(res, 200));
        r = await onAgent(c.req);
      }
      expect(r.status, `${c.what}: ${r.text.slice(0, 200)}`).toBe(c.status);
      const s = jsonObject(r.text);
      expect(s?.kind, c.what).toBe("Status");
      expect(s?.code, c.what).toBe(c.status);
      // A small unread body is drained and the connection kept; a large or unknown one closes it.
      if (c.keepAlive !== undefined) expect(r.headers.connection, c.what).toBe(c.keepAlive ? "keep-alive" : "close");
      await validRequests(c.what);
    }
  }, 120_000);

  it("answers valid requests after 429s given before the body was read", async () => {
    const hold = await holdMutatingSlot();
    try {
      for (const [what, body] of [
        ["429, large body", cm("refused", { x: "a".repeat(2 * MiB) })],
        ["429, small body", cm("refused")],
      ] as const) {
        const r = await onAgent({ method: "POST", path: CMS, headers: json, body });
        expect(r.status, `${what}: ${r.text.slice(0, 200)}`).toBe(429);
        expect(r.headers["retry-after"], what).toBe("1");
        expect(jsonObject(r.text)).toMatchObject({ kind: "Status", reason: "TooManyRequests", code: 429, message: "Too many requests, please try again later.", details: { retryAfterSeconds: 1 } });
        // Reads are not limited by the mutating slot: they go on being answered on this connection.
        const list = await onAgent({ path: CMS });
        expect(list.status, `GET after ${what}`).toBe(200);
      }
    } finally {
      expect(await hold.release()).toBe(201);
    }
    await validRequests("the 429s");
  }, 60_000);
});
