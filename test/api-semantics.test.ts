// API semantics a controller author relies on, pinned over plain HTTP against an in-process
// apiserver on the memory backend. Every expectation is what the real kube-apiserver does; where
// kubelab deliberately differs the test says so.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiServer, openBackend, type Backend } from "../apiserver/index.ts";

// ---- wire helpers ------------------------------------------------------------------------------

interface Meta {
  name?: string;
  namespace?: string;
  generateName?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  continue?: string;
}

interface KObj {
  apiVersion?: string;
  kind?: string;
  metadata: Meta;
  spec?: Record<string, unknown>;
  status?: Record<string, unknown> | string;
  data?: Record<string, string>;
  items?: KObj[];
  code?: number;
  reason?: string;
  message?: string;
  [k: string]: unknown;
}

interface Resp {
  status: number;
  headers: Headers;
  text: string;
  body: KObj;
}

interface WatchEvent {
  type: string;
  object: KObj;
}

let base = "";

const MERGE = "application/merge-patch+json";
const JSONPATCH = "application/json-patch+json";
const SMP = "application/strategic-merge-patch+json";
const APPLY = "application/apply-patch+yaml";

async function call(
  method: string,
  path: string,
  body?: unknown,
  opts: { contentType?: string; accept?: string; base?: string } = {},
): Promise<Resp> {
  const headers: Record<string, string> = { Accept: opts.accept ?? "application/json" };
  let payload: string | undefined;
  if (body !== undefined) {
    payload = typeof body === "string" ? body : JSON.stringify(body);
    headers["Content-Type"] = opts.contentType ?? "application/json";
  }
  const r = await fetch(`${opts.base ?? base}${path}`, { method, headers, body: payload });
  const text = await r.text();
  let parsed: KObj = { metadata: {} };
  try {
    const v: unknown = JSON.parse(text);
    if (v !== null && typeof v === "object" && !Array.isArray(v)) parsed = v as KObj;
  } catch {
    // not JSON: leave the empty object
  }
  if (!parsed.metadata) parsed.metadata = {};
  return { status: r.status, headers: r.headers, text, body: parsed };
}

const get = (p: string) => call("GET", p);
const post = (p: string, b: unknown) => call("POST", p, b);
const put = (p: string, b: unknown) => call("PUT", p, b);
const patch = (p: string, b: unknown, type = MERGE) => call("PATCH", p, b, { contentType: type });
const del = (p: string, b?: unknown) => call("DELETE", p, b);

/** Walks a dotted path ("spec.template.spec.containers.0.image") through plain JSON. */
function at(o: unknown, path: string): unknown {
  let cur: unknown = o;
  for (const seg of path.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = Array.isArray(cur) ? (cur as unknown[])[Number(seg)] : (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

function rvNum(o: KObj): number {
  const rv = o.metadata.resourceVersion;
  expect(rv, "resourceVersion").toMatch(/^\d+$/);
  return Number(rv);
}

function expectStatus(r: Resp, code: number, reason?: string): void {
  expect(r.status, r.text).toBe(code);
  expect(r.body.kind, r.text).toBe("Status");
  expect(r.body.code).toBe(code);
  if (reason !== undefined) expect(r.body.reason, r.text).toBe(reason);
}

let nsCounter = 0;
/** A fresh namespace per scenario so lists and watches see only their own objects. */
async function newNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${++nsCounter}`;
  const r = await post("/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name } });
  expect(r.status, r.text).toBe(201);
  return name;
}

const cmPath = (ns: string, name = "") => `/api/v1/namespaces/${ns}/configmaps${name ? `/${name}` : ""}`;
const podPath = (ns: string, name = "") => `/api/v1/namespaces/${ns}/pods${name ? `/${name}` : ""}`;
const deployPath = (ns: string, name = "") => `/apis/apps/v1/namespaces/${ns}/deployments${name ? `/${name}` : ""}`;

function configMap(name: string, data: Record<string, string> = { a: "1" }, labels?: Record<string, string>): KObj {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name, ...(labels ? { labels } : {}) }, data };
}

function deployment(name: string, replicas = 2, containers: { name: string; image: string }[] = [{ name: "app", image: "nginx:1" }]): KObj {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, labels: { app: name } },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers } },
    },
  };
}

function pod(name: string, extra: { nodeName?: string; terminationGracePeriodSeconds?: number; labels?: Record<string, string> } = {}): KObj {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, ...(extra.labels ? { labels: extra.labels } : {}) },
    spec: {
      containers: [{ name: "c", image: "busybox" }],
      ...(extra.nodeName ? { nodeName: extra.nodeName } : {}),
      ...(extra.terminationGracePeriodSeconds !== undefined ? { terminationGracePeriodSeconds: extra.terminationGracePeriodSeconds } : {}),
    },
  };
}

async function mustCreate(path: string, obj: KObj): Promise<KObj> {
  const r = await post(path, obj);
  expect(r.status, r.text).toBe(201);
  return r.body;
}

const binding = (name: string, node: string) => ({
  apiVersion: "v1",
  kind: "Binding",
  metadata: { name },
  target: { apiVersion: "v1", kind: "Node", name: node },
});

/** A streaming watch: events are parsed as they arrive; `until` waits for a condition. */
class Watch {
  readonly events: WatchEvent[] = [];
  status = 0;
  done = false;
  private readonly abort = new AbortController();
  private wake: (() => void) | undefined;
  readonly ready: Promise<void>;
  readonly finished: Promise<void>;

  constructor(path: string) {
    let readyResolve!: () => void;
    this.ready = new Promise<void>((r) => (readyResolve = r));
    this.finished = (async () => {
      try {
        const r = await fetch(`${base}${path}`, { signal: this.abort.signal, headers: { Accept: "application/json" } });
        this.status = r.status;
        readyResolve();
        if (!r.body) return;
        const reader = r.body.getReader();
        const dec = new TextDecoder();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let i: number;
          while ((i = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, i).trim();
            buf = buf.slice(i + 1);
            if (line) this.events.push(JSON.parse(line) as WatchEvent);
            this.wake?.();
          }
        }
        if (buf.trim()) this.events.push(JSON.parse(buf) as WatchEvent);
      } catch (e) {
        if (!this.abort.signal.aborted) throw e;
      } finally {
        this.done = true;
        readyResolve();
        this.wake?.();
      }
    })();
    this.finished.catch(() => {});
  }

  /** Resolves once `pred(events)` holds; rejects after `timeoutMs` with what was seen. */
  async until(pred: (evs: WatchEvent[]) => boolean, timeoutMs = 5000): Promise<WatchEvent[]> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.events)) {
      if (this.done) throw new Error(`watch ended before condition; saw ${JSON.stringify(this.summary())}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`watch condition not met in ${timeoutMs} ms; saw ${JSON.stringify(this.summary())}`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, Math.min(left, 100));
        this.wake = () => {
          clearTimeout(t);
          res();
        };
      });
    }
    return this.events;
  }

  summary(): string[] {
    return this.events.map((e) => `${e.type} ${e.object.metadata?.name ?? ""}@${e.object.metadata?.resourceVersion ?? ""}`);
  }

  close(): Promise<void> {
    this.abort.abort();
    return this.finished.catch(() => {});
  }
}

// ---- server ------------------------------------------------------------------------------------

let server: ApiServer;

beforeAll(async () => {
  server = new ApiServer({ backend: await openBackend("memory://") });
  const port = await server.start(0);
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await server.stop();
});

// ---- create ------------------------------------------------------------------------------------

describe("create", () => {
  let ns = "";
  beforeAll(async () => {
    ns = await newNamespace("create");
  });

  it("generateName produces <prefix><5 random chars>, distinct per request", async () => {
    const names = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const r = await post(cmPath(ns), { apiVersion: "v1", kind: "ConfigMap", metadata: { generateName: "cm-" }, data: {} });
      expect(r.status, r.text).toBe(201);
      expect(r.body.metadata.name).toMatch(/^cm-[a-z0-9]{5}$/);
      expect(r.body.metadata.generateName).toBe("cm-");
      names.add(r.body.metadata.name!);
      expect((await get(cmPath(ns, r.body.metadata.name))).status).toBe(200);
    }
    expect(names.size).toBe(3);
  });

  it("?dryRun=All returns the object with 201 but stores nothing", async () => {
    const r = await post(`${cmPath(ns)}?dryRun=All`, configMap("dry"));
    expect(r.status, r.text).toBe(201);
    expect(r.body.kind).toBe("ConfigMap");
    expect(r.body.metadata.name).toBe("dry");
    expect(r.body.metadata.uid).toBeTruthy();
    expect(r.body.data).toEqual({ a: "1" });
    expectStatus(await get(cmPath(ns, "dry")), 404, "NotFound");
    const list = await get(cmPath(ns));
    expect(list.body.items?.map((i) => i.metadata.name)).not.toContain("dry");
  });

  it("a resourceVersion in a create is rejected and nothing is stored", async () => {
    // Upstream rejects this with "resourceVersion should not be set on objects to be created" (as a
    // 500 from the storage layer); kubelab reports it as a 422 Invalid, never a 5xx.
    const r = await post(cmPath(ns), { ...configMap("withrv"), metadata: { name: "withrv", resourceVersion: "12" } });
    expectStatus(r, 422, "Invalid");
    expect(r.body.message).toContain("resourceVersion");
    expectStatus(await get(cmPath(ns, "withrv")), 404);
  });

  it("uid and creationTimestamp are set by the server, ignoring client values", async () => {
    const before = Date.now();
    const r = await post(cmPath(ns), {
      ...configMap("sys"),
      metadata: { name: "sys", uid: "client-uid", creationTimestamp: "2001-01-01T00:00:00Z" },
    });
    expect(r.status, r.text).toBe(201);
    expect(r.body.metadata.uid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(r.body.metadata.uid).not.toBe("client-uid");
    const ts = Date.parse(r.body.metadata.creationTimestamp!);
    expect(r.body.metadata.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(ts).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 - 1000);
    expect(ts).toBeLessThanOrEqual(Date.now() + 1000);
    rvNum(r.body);
    const g = await get(cmPath(ns, "sys"));
    expect(g.body.metadata.uid).toBe(r.body.metadata.uid);
  });

  it("deployment generation starts at 1 and is bumped only by spec changes", async () => {
    const created = await mustCreate(deployPath(ns), deployment("gen"));
    expect(created.metadata.generation).toBe(1);

    const labelled = await patch(deployPath(ns, "gen"), { metadata: { labels: { extra: "yes" } } });
    expect(labelled.status, labelled.text).toBe(200);
    expect(labelled.body.metadata.generation).toBe(1);

    const statused = await patch(`${deployPath(ns, "gen")}/status`, { status: { replicas: 2, observedGeneration: 1 } });
    expect(statused.status, statused.text).toBe(200);
    expect(statused.body.metadata.generation).toBe(1);

    const scaled = await patch(deployPath(ns, "gen"), { spec: { replicas: 5 } });
    expect(scaled.status, scaled.text).toBe(200);
    expect(scaled.body.metadata.generation).toBe(2);

    const image = await patch(deployPath(ns, "gen"), { spec: { template: { spec: { containers: [{ name: "app", image: "nginx:2" }] } } } }, SMP);
    expect(image.status, image.text).toBe(200);
    expect(image.body.metadata.generation).toBe(3);
  });

  it("creating in a missing namespace is 404 namespaces \"x\" not found", async () => {
    const r = await post(cmPath("no-such-ns"), configMap("c"));
    expectStatus(r, 404, "NotFound");
    expect(r.body.message).toBe('namespaces "no-such-ns" not found');
    expect(at(r.body, "details.kind")).toBe("namespaces");
    expect(at(r.body, "details.name")).toBe("no-such-ns");
  });
});

// ---- update ------------------------------------------------------------------------------------

describe("update", () => {
  let ns = "";
  beforeAll(async () => {
    ns = await newNamespace("update");
  });

  it("a merge patch carrying a stale resourceVersion is still 409 Conflict", async () => {
    const c = await mustCreate(cmPath(ns), configMap("pinned-patch"));
    expect((await patch(cmPath(ns, "pinned-patch"), { data: { a: "2" } })).status).toBe(200);
    const r = await patch(cmPath(ns, "pinned-patch"), { metadata: { resourceVersion: c.metadata.resourceVersion }, data: { a: "3" } });
    expectStatus(r, 409, "Conflict");
  });

  it("PUT with a stale resourceVersion is 409 Conflict with the upstream message", async () => {
    const c = await mustCreate(cmPath(ns), configMap("stale"));
    const first = await put(cmPath(ns, "stale"), { ...c, data: { a: "2" } });
    expect(first.status, first.text).toBe(200);
    const r = await put(cmPath(ns, "stale"), { ...c, data: { a: "3" } });
    expectStatus(r, 409, "Conflict");
    expect(r.body.message).toBe(
      'Operation cannot be fulfilled on configmaps "stale": the object has been modified; please apply your changes to the latest version and try again',
    );
    expect((await get(cmPath(ns, "stale"))).body.data).toEqual({ a: "2" });
  });

  it("PUT without a resourceVersion is an unconditional update", async () => {
    await mustCreate(cmPath(ns), configMap("uncond"));
    const r = await put(cmPath(ns, "uncond"), configMap("uncond", { a: "new" }));
    expect(r.status, r.text).toBe(200);
    expect(r.body.data).toEqual({ a: "new" });
  });

  it("a no-op update does not change resourceVersion", async () => {
    const c = await mustCreate(cmPath(ns), configMap("noop", { k: "v" }, { l: "x" }));
    const r = await put(cmPath(ns, "noop"), c);
    expect(r.status, r.text).toBe(200);
    expect(r.body.metadata.resourceVersion).toBe(c.metadata.resourceVersion);
    const p = await patch(cmPath(ns, "noop"), { data: { k: "v" } });
    expect(p.status, p.text).toBe(200);
    expect(p.body.metadata.resourceVersion).toBe(c.metadata.resourceVersion);
  });

  it.each([
    ["deployment spec.selector", "dep", (o: KObj): KObj => ({ ...o, spec: { ...o.spec, selector: { matchLabels: { app: "other" } }, template: { metadata: { labels: { app: "other" } }, spec: at(o, "spec.template.spec") } } }), "spec.selector"],
    ["pod container name", "pod", (o: KObj): KObj => ({ ...o, spec: { ...o.spec, containers: [{ name: "renamed", image: "busybox" }] } }), "spec"],
  ])("changing an immutable field (%s) is 422 Invalid", async (_label, kind, mutate, field) => {
    const path = kind === "dep" ? deployPath(ns) : podPath(ns);
    const name = `immut-${kind}`;
    const created = await mustCreate(path, kind === "dep" ? deployment(name) : pod(name));
    const r = await put(`${path}/${name}`, mutate(created));
    expectStatus(r, 422, "Invalid");
    expect(r.body.message).toContain(field);
    const causes = at(r.body, "details.causes") as { field?: string }[] | undefined;
    expect(causes?.some((c) => c.field?.startsWith(field))).toBe(true);
  });
});

// ---- status subresource ------------------------------------------------------------------------

describe("status subresource", () => {
  let ns = "";
  beforeAll(async () => {
    ns = await newNamespace("status");
  });

  it("PUT …/status changes status but not spec", async () => {
    const d = await mustCreate(deployPath(ns), deployment("st", 2));
    const r = await put(`${deployPath(ns, "st")}/status`, { ...d, spec: { ...d.spec, replicas: 9 }, status: { replicas: 7, readyReplicas: 3 } });
    expect(r.status, r.text).toBe(200);
    expect(at(r.body, "status.replicas")).toBe(7);
    expect(at(r.body, "spec.replicas")).toBe(2);
    const g = await get(deployPath(ns, "st"));
    expect(at(g.body, "status.readyReplicas")).toBe(3);
    expect(at(g.body, "spec.replicas")).toBe(2);
  });

  it("PATCH …/status changes status but not spec", async () => {
    await mustCreate(deployPath(ns), deployment("stp", 2));
    const r = await patch(`${deployPath(ns, "stp")}/status`, { spec: { replicas: 9 }, status: { availableReplicas: 1 } });
    expect(r.status, r.text).toBe(200);
    expect(at(r.body, "status.availableReplicas")).toBe(1);
    expect(at(r.body, "spec.replicas")).toBe(2);
  });

  it("PUT on the main resource does not change status", async () => {
    const d = await mustCreate(deployPath(ns), deployment("main", 2));
    const s = await patch(`${deployPath(ns, "main")}/status`, { status: { replicas: 2 } });
    expect(s.status, s.text).toBe(200);
    const r = await put(deployPath(ns, "main"), { ...s.body, spec: { ...d.spec, replicas: 3 }, status: { replicas: 99 } });
    expect(r.status, r.text).toBe(200);
    expect(at(r.body, "spec.replicas")).toBe(3);
    expect(at(r.body, "status.replicas")).toBe(2);
  });
});

// ---- scale subresource -------------------------------------------------------------------------

describe("scale subresource", () => {
  let ns = "";
  beforeAll(async () => {
    ns = await newNamespace("scale");
  });

  it("GET deployments/x/scale returns an autoscaling/v1 Scale", async () => {
    await mustCreate(deployPath(ns), deployment("web", 3));
    const r = await get(`${deployPath(ns, "web")}/scale`);
    expect(r.status, r.text).toBe(200);
    expect(r.body.apiVersion).toBe("autoscaling/v1");
    expect(r.body.kind).toBe("Scale");
    expect(r.body.metadata.name).toBe("web");
    expect(r.body.metadata.namespace).toBe(ns);
    expect(at(r.body, "spec.replicas")).toBe(3);
    expect(at(r.body, "status.selector")).toBe("app=web");
  });

  it("PATCH merge {spec:{replicas:4}} on scale changes the deployment", async () => {
    await mustCreate(deployPath(ns), deployment("web2", 1));
    const r = await patch(`${deployPath(ns, "web2")}/scale`, { spec: { replicas: 4 } });
    expect(r.status, r.text).toBe(200);
    expect(r.body.kind).toBe("Scale");
    expect(at(r.body, "spec.replicas")).toBe(4);
    const d = await get(deployPath(ns, "web2"));
    expect(at(d.body, "spec.replicas")).toBe(4);
    expect(d.body.metadata.generation).toBe(2);
  });

  it("PUT scale with a stale resourceVersion is 409", async () => {
    await mustCreate(deployPath(ns), deployment("web3", 1));
    const scale = (await get(`${deployPath(ns, "web3")}/scale`)).body;
    const ok = await put(`${deployPath(ns, "web3")}/scale`, { ...scale, spec: { replicas: 2 } });
    expect(ok.status, ok.text).toBe(200);
    const r = await put(`${deployPath(ns, "web3")}/scale`, { ...scale, spec: { replicas: 5 } });
    expectStatus(r, 409, "Conflict");
    expect(at((await get(deployPath(ns, "web3"))).body, "spec.replicas")).toBe(2);
  });
});

// ---- finalizers, propagationPolicy, preconditions -----------------------------------------------

describe("deletion with finalizers", () => {
  let ns = "";
  beforeAll(async () => {
    ns = await newNamespace("fin");
  });

  it("DELETE keeps a finalized object with deletionTimestamp; removing the finalizer removes it", async () => {
    await mustCreate(cmPath(ns), { ...configMap("f"), metadata: { name: "f", finalizers: ["example.com/hold"] } });
    const d = await del(cmPath(ns, "f"));
    expect(d.status, d.text).toBe(200);
    expect(d.body.kind).toBe("ConfigMap");
    expect(d.body.metadata.deletionTimestamp).toBeTruthy();
    expect(d.body.metadata.deletionGracePeriodSeconds).toBe(0);

    const g = await get(cmPath(ns, "f"));
    expect(g.status).toBe(200);
    expect(g.body.metadata.deletionTimestamp).toBe(d.body.metadata.deletionTimestamp);
    expect(g.body.metadata.finalizers).toEqual(["example.com/hold"]);

    const add = await patch(cmPath(ns, "f"), { metadata: { finalizers: ["example.com/hold", "example.com/new"] } });
    expectStatus(add, 422, "Invalid");
    expect(add.body.message).toContain("no new finalizers can be added if the object is being deleted");

    const rm = await patch(cmPath(ns, "f"), { metadata: { finalizers: null } });
    expect(rm.status, rm.text).toBe(200);
    expectStatus(await get(cmPath(ns, "f")), 404, "NotFound");
  });

  it.each([
    ["Foreground", "foregroundDeletion"],
    ["Orphan", "orphan"],
  ])("propagationPolicy %s adds the %s finalizer and keeps the object", async (policy, finalizer) => {
    const name = `pp-${policy.toLowerCase()}`;
    await mustCreate(deployPath(ns), deployment(name));
    const d = await del(deployPath(ns, name), { apiVersion: "v1", kind: "DeleteOptions", propagationPolicy: policy });
    expect(d.status, d.text).toBe(200);
    const g = await get(deployPath(ns, name));
    expect(g.status).toBe(200);
    expect(g.body.metadata.deletionTimestamp).toBeTruthy();
    expect(g.body.metadata.finalizers).toContain(finalizer);
  });

  it("propagationPolicy Background deletes at once", async () => {
    await mustCreate(deployPath(ns), deployment("pp-bg"));
    const d = await del(deployPath(ns, "pp-bg"), { propagationPolicy: "Background" });
    expect(d.status, d.text).toBe(200);
    expectStatus(await get(deployPath(ns, "pp-bg")), 404);
  });

  it("DELETE with a wrong uid precondition is 409 and the object stays", async () => {
    const c = await mustCreate(cmPath(ns), configMap("pre"));
    const d = await del(cmPath(ns, "pre"), { preconditions: { uid: "wrong" } });
    expectStatus(d, 409, "Conflict");
    expect(d.body.message).toContain("Precondition failed: UID in precondition: wrong");
    expect((await get(cmPath(ns, "pre"))).status).toBe(200);
    const ok = await del(cmPath(ns, "pre"), { preconditions: { uid: c.metadata.uid, resourceVersion: c.metadata.resourceVersion } });
    expect(ok.status, ok.text).toBe(200);
    expectStatus(await get(cmPath(ns, "pre")), 404);
  });

  it("DELETE with a stale resourceVersion precondition is 409", async () => {
    const c = await mustCreate(cmPath(ns), configMap("prerv"));
    await patch(cmPath(ns, "prerv"), { data: { a: "changed" } });
    const d = await del(cmPath(ns, "prerv"), { preconditions: { resourceVersion: c.metadata.resourceVersion } });
    expectStatus(d, 409, "Conflict");
    expect((await get(cmPath(ns, "prerv"))).status).toBe(200);
  });
});

// ---- pods --------------------------------------------------------------------------------------

describe("pods", () => {
  let ns = "";
  beforeAll(async () => {
    ns = await newNamespace("pods");
  });

  it("DELETE of an unscheduled pod removes it at once and returns the Pod", async () => {
    await mustCreate(podPath(ns), pod("unsched"));
    const d = await del(podPath(ns, "unsched"));
    expect(d.status, d.text).toBe(200);
    expect(d.body.kind).toBe("Pod");
    expect(d.body.metadata.name).toBe("unsched");
    expectStatus(await get(podPath(ns, "unsched")), 404);
  });

  it("binding sets spec.nodeName and PodScheduled=True; a second binding is 409", async () => {
    await mustCreate(podPath(ns), pod("b"));
    const r = await post(`${podPath(ns, "b")}/binding`, binding("b", "n1"));
    expect(r.status, r.text).toBe(201);
    const g = await get(podPath(ns, "b"));
    expect(at(g.body, "spec.nodeName")).toBe("n1");
    const conds = (at(g.body, "status.conditions") as { type: string; status: string }[] | undefined) ?? [];
    expect(conds.find((c) => c.type === "PodScheduled")?.status).toBe("True");

    const again = await post(`${podPath(ns, "b")}/binding`, binding("b", "n2"));
    expectStatus(again, 409, "Conflict");
    expect(at((await get(podPath(ns, "b"))).body, "spec.nodeName")).toBe("n1");
  });

  it("DELETE of a bound running pod is graceful; gracePeriodSeconds=0 removes it", async () => {
    await mustCreate(podPath(ns), pod("g", { terminationGracePeriodSeconds: 20 }));
    expect((await post(`${podPath(ns, "g")}/binding`, binding("g", "n1"))).status).toBe(201);
    const st = await patch(`${podPath(ns, "g")}/status`, { status: { phase: "Running" } });
    expect(st.status, st.text).toBe(200);

    const before = Date.now();
    const d = await del(podPath(ns, "g"));
    expect(d.status, d.text).toBe(200);
    expect(d.body.kind).toBe("Pod");
    expect(d.body.metadata.deletionGracePeriodSeconds).toBe(20);
    const dt = Date.parse(d.body.metadata.deletionTimestamp ?? "");
    expect(dt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 19_000);
    expect(dt).toBeLessThanOrEqual(Date.now() + 21_000);

    const g = await get(podPath(ns, "g"));
    expect(g.status).toBe(200);
    expect(g.body.metadata.deletionTimestamp).toBe(d.body.metadata.deletionTimestamp);

    const now = await call("DELETE", `${podPath(ns, "g")}?gracePeriodSeconds=0`);
    expect(now.status, now.text).toBe(200);
    expectStatus(await get(podPath(ns, "g")), 404);
  });

  it("eviction of an unscheduled pod is 201 and deletes it", async () => {
    await mustCreate(podPath(ns), pod("ev"));
    const r = await post(`${podPath(ns, "ev")}/eviction`, { apiVersion: "policy/v1", kind: "Eviction", metadata: { name: "ev", namespace: ns } });
    expect(r.status, r.text).toBe(201);
    expect(r.body.kind).toBe("Status");
    expect(r.body.status).toBe("Success");
    expectStatus(await get(podPath(ns, "ev")), 404);
  });

  it("eviction of a bound pod is 201 and marks it for graceful deletion", async () => {
    await mustCreate(podPath(ns), pod("evb", { terminationGracePeriodSeconds: 30 }));
    expect((await post(`${podPath(ns, "evb")}/binding`, binding("evb", "n1"))).status).toBe(201);
    const r = await post(`${podPath(ns, "evb")}/eviction`, { apiVersion: "policy/v1", kind: "Eviction", metadata: { name: "evb", namespace: ns } });
    expect(r.status, r.text).toBe(201);
    const g = await get(podPath(ns, "evb"));
    expect(g.status).toBe(200);
    expect(g.body.metadata.deletionTimestamp).toBeTruthy();
    expect(g.body.metadata.deletionGracePeriodSeconds).toBe(30);
  });

  it("eviction of a missing pod is 404", async () => {
    const r = await post(`${podPath(ns, "ghost")}/eviction`, { apiVersion: "policy/v1", kind: "Eviction", metadata: { name: "ghost", namespace: ns } });
    expectStatus(r, 404, "NotFound");
  });
});

// ---- list --------------------------------------------------------------------------------------

describe("list", () => {
  let ns = "";
  beforeAll(async () => {
    ns = await newNamespace("list");
    for (let i = 0; i < 25; i++) {
      await mustCreate(cmPath(ns), configMap(`cm-${String(i).padStart(2, "0")}`, { i: String(i) }, { env: ["a", "b", "c"][i % 3]!, ...(i % 5 === 0 ? { special: "y" } : {}) }));
    }
  });

  it("limit/continue pages through 25 objects once each at one resourceVersion", async () => {
    const first = await get(`${cmPath(ns)}?limit=10`);
    expect(first.status, first.text).toBe(200);
    expect(first.body.kind).toBe("ConfigMapList");
    const listRV = first.body.metadata.resourceVersion;
    expect(listRV).toMatch(/^\d+$/);
    const seen: string[] = first.body.items!.map((i) => i.metadata.name!);
    expect(seen).toHaveLength(10);
    let token = first.body.metadata.continue;
    expect(token).toBeTruthy();
    expect(at(first.body, "metadata.remainingItemCount")).toBe(15);

    // A write between pages must not show up: continuation is a snapshot at the first page's RV.
    await mustCreate(cmPath(ns), configMap("cm-99-late"));
    let pages = 1;
    while (token) {
      const r = await get(`${cmPath(ns)}?limit=10&continue=${encodeURIComponent(token)}`);
      expect(r.status, r.text).toBe(200);
      expect(r.body.metadata.resourceVersion).toBe(listRV);
      seen.push(...r.body.items!.map((i) => i.metadata.name!));
      token = r.body.metadata.continue;
      pages++;
      expect(pages).toBeLessThanOrEqual(3);
    }
    expect(pages).toBe(3);
    expect(seen).toHaveLength(25);
    expect(new Set(seen).size).toBe(25);
    expect(seen).not.toContain("cm-99-late");
    expect(seen).toEqual([...seen].sort());
    expect((await del(cmPath(ns, "cm-99-late"))).status).toBe(200);
  });

  it.each([
    ["env=a", 9],
    ["env==a", 9],
    ["env!=a", 16],
    ["env in (a,b)", 17],
    ["env notin (a,b)", 8],
    ["special", 5],
    ["!special", 20],
    ["env=a,special", 2],
    ["env in (c),!special", 6],
  ])("labelSelector %s matches %d", async (sel, n) => {
    const r = await get(`${cmPath(ns)}?labelSelector=${encodeURIComponent(sel)}`);
    expect(r.status, r.text).toBe(200);
    expect(r.body.items).toHaveLength(n);
  });

  it("fieldSelector metadata.name", async () => {
    const r = await get(`${cmPath(ns)}?fieldSelector=${encodeURIComponent("metadata.name=cm-07")}`);
    expect(r.status, r.text).toBe(200);
    expect(r.body.items?.map((i) => i.metadata.name)).toEqual(["cm-07"]);
    const not = await get(`${cmPath(ns)}?fieldSelector=${encodeURIComponent("metadata.name!=cm-07")}`);
    expect(not.body.items).toHaveLength(24);
  });

  it("fieldSelector spec.nodeName on pods (including the empty value for unscheduled)", async () => {
    await mustCreate(podPath(ns), pod("on-n1", { nodeName: "n1" }));
    await mustCreate(podPath(ns), pod("on-n2", { nodeName: "n2" }));
    await mustCreate(podPath(ns), pod("nowhere"));
    const names = async (sel: string) =>
      ((await get(`${podPath(ns)}?fieldSelector=${encodeURIComponent(sel)}`)).body.items ?? []).map((i) => i.metadata.name).sort();
    expect(await names("spec.nodeName=n1")).toEqual(["on-n1"]);
    expect(await names("spec.nodeName!=n1")).toEqual(["nowhere", "on-n2"]);
    expect(await names("spec.nodeName=")).toEqual(["nowhere"]);
    expect(await names("spec.nodeName=n2,metadata.name=on-n2")).toEqual(["on-n2"]);
    const all = await get(`/api/v1/pods?fieldSelector=${encodeURIComponent("spec.nodeName=n1")}`);
    expect(all.status, all.text).toBe(200);
    expect(all.body.items?.map((i) => `${i.metadata.namespace}/${i.metadata.name}`)).toContain(`${ns}/on-n1`);
  });

  it.each([
    ["labelSelector", "env in (a"],
    ["labelSelector", "env in a"],
    ["labelSelector", "env=a=b"],
    ["labelSelector", "!="],
    ["fieldSelector", "metadata.name"],
  ])("an invalid selector (%s=%s) is 400 BadRequest", async (param, sel) => {
    const r = await get(`${cmPath(ns)}?${param}=${encodeURIComponent(sel)}`);
    expectStatus(r, 400, "BadRequest");
  });

  it("an unsupported field selector is 400 naming the field", async () => {
    const r = await get(`${cmPath(ns)}?fieldSelector=${encodeURIComponent("spec.foo=bar")}`);
    expectStatus(r, 400, "BadRequest");
    expect(r.body.message).toContain('field label not supported: spec.foo');
  });

  it("resourceVersion=0 lists from the cache", async () => {
    const r = await get(`${cmPath(ns)}?resourceVersion=0`);
    expect(r.status, r.text).toBe(200);
    expect(r.body.items).toHaveLength(25);
    expect(r.body.metadata.resourceVersion).toMatch(/^\d+$/);
  });
});

// ---- watch -------------------------------------------------------------------------------------

describe("watch", () => {
  let ns = "";
  beforeAll(async () => {
    ns = await newNamespace("watch");
  });

  it("resourceVersion=<rv> replays later changes in order, then streams live; DELETED carries the deletion's RV", async () => {
    const c = await mustCreate(cmPath(ns), configMap("w1"));
    const m1 = await patch(cmPath(ns, "w1"), { data: { a: "2" } });
    const m2 = await patch(cmPath(ns, "w1"), { data: { a: "3" } });
    const d = await del(cmPath(ns, "w1"));
    expect(d.status, d.text).toBe(200);

    const w = new Watch(`${cmPath(ns)}?watch=1&resourceVersion=${c.metadata.resourceVersion}`);
    try {
      await w.ready;
      expect(w.status).toBe(200);
      const evs = await w.until((e) => e.length >= 3);
      expect(evs.slice(0, 3).map((e) => e.type)).toEqual(["MODIFIED", "MODIFIED", "DELETED"]);
      expect(evs[0]!.object.metadata.resourceVersion).toBe(m1.body.metadata.resourceVersion);
      expect(evs[1]!.object.metadata.resourceVersion).toBe(m2.body.metadata.resourceVersion);
      expect(evs[1]!.object.data).toEqual({ a: "3" });
      const delRV = rvNum(evs[2]!.object);
      expect(delRV).toBeGreaterThan(rvNum(evs[1]!.object));
      expect(evs[2]!.object.metadata.name).toBe("w1");

      const live = await mustCreate(cmPath(ns), configMap("w2"));
      const after = await w.until((e) => e.length >= 4);
      expect(after[3]!.type).toBe("ADDED");
      expect(after[3]!.object.metadata.name).toBe("w2");
      expect(after[3]!.object.metadata.resourceVersion).toBe(live.metadata.resourceVersion);
      expect(rvNum(after[3]!.object)).toBeGreaterThan(delRV);
    } finally {
      await w.close();
    }
  });

  it("the deletion's RV in the DELETED event is newer than anything a get returned", async () => {
    // A foreign write between the last update and the delete: the delete's RV must be its own revision.
    await mustCreate(cmPath(ns), configMap("w3"));
    const last = await patch(cmPath(ns, "w3"), { data: { a: "9" } });
    const w = new Watch(`${cmPath(ns)}?watch=1&resourceVersion=${last.body.metadata.resourceVersion}&fieldSelector=${encodeURIComponent("metadata.name=w3")}`);
    try {
      await w.ready;
      const other = await mustCreate(cmPath(ns), configMap("w3-other"));
      expect((await del(cmPath(ns, "w3"))).status).toBe(200);
      const evs = await w.until((e) => e.some((x) => x.type === "DELETED"));
      const dEv = evs.find((x) => x.type === "DELETED")!;
      expect(rvNum(dEv.object)).toBeGreaterThan(rvNum(other));
    } finally {
      await w.close();
    }
  });

  it("allowWatchBookmarks=true yields a BOOKMARK before timeoutSeconds ends the stream", async () => {
    const c = await mustCreate(cmPath(ns), configMap("bm"));
    const w = new Watch(`${cmPath(ns)}?watch=1&allowWatchBookmarks=true&timeoutSeconds=4&resourceVersion=${c.metadata.resourceVersion}`);
    try {
      await w.ready;
      expect(w.status).toBe(200);
      // Writes elsewhere advance the revision without producing events for this watcher.
      const other = await newNamespace("watch-other");
      await mustCreate(cmPath(other), configMap("elsewhere"));
      const evs = await w.until((e) => e.some((x) => x.type === "BOOKMARK"), 4500);
      const bm = evs.find((x) => x.type === "BOOKMARK")!;
      expect(bm.object.kind).toBe("ConfigMap");
      expect(rvNum(bm.object)).toBeGreaterThanOrEqual(rvNum(c));
      await w.finished;
      expect(w.done).toBe(true);
    } finally {
      await w.close();
    }
  });

  it("timeoutSeconds ends the stream", async () => {
    const start = Date.now();
    const r = await get(`${cmPath(ns)}?watch=1&timeoutSeconds=1`);
    expect(r.status, r.text).toBe(200);
    expect(Date.now() - start).toBeLessThan(5000);
  });

  it("a label-selector watch turns a label change that stops matching into DELETED", async () => {
    const c = await mustCreate(cmPath(ns), configMap("sel", { a: "1" }, { app: "x" }));
    const w = new Watch(`${cmPath(ns)}?watch=1&labelSelector=app%3Dx&resourceVersion=${c.metadata.resourceVersion}`);
    try {
      await w.ready;
      const m = await patch(cmPath(ns, "sel"), { metadata: { labels: { app: "y" } } });
      expect(m.status).toBe(200);
      const evs = await w.until((e) => e.length >= 1);
      expect(evs[0]!.type).toBe("DELETED");
      expect(evs[0]!.object.metadata.name).toBe("sel");
      expect(evs[0]!.object.metadata.resourceVersion).toBe(m.body.metadata.resourceVersion);
      // Upstream (cacheWatcher.convertToWatchEvent) sends the previous object content, with the new RV.
      expect(evs[0]!.object.metadata.labels).toEqual({ app: "x" });

      const back = await patch(cmPath(ns, "sel"), { metadata: { labels: { app: "x" } } });
      const evs2 = await w.until((e) => e.length >= 2);
      expect(evs2[1]!.type).toBe("ADDED");
      expect(evs2[1]!.object.metadata.resourceVersion).toBe(back.body.metadata.resourceVersion);
    } finally {
      await w.close();
    }
  });

  it("a resourceVersion older than the watch cache and compacted away is an ERROR event with 410 Expired", async () => {
    // Kubelab serves a watch from an rv older than its cache window out of the backend's history, so
    // 410 needs that history gone too. The memory backend keeps 10k revisions and a cache started on
    // an empty store holds everything since revision 0, so: build history, compact it (as the
    // apiserver's periodic etcd compaction does), and start a fresh apiserver over the same store (as
    // after a restart) whose cache window begins at the current revision.
    const backend: Backend = await openBackend("memory://");
    const first = new ApiServer({ backend });
    const p1 = await first.start(0);
    const b1 = `http://127.0.0.1:${p1}`;
    for (let i = 0; i < 5; i++) {
      const r = await call("POST", "/api/v1/namespaces/default/configmaps", configMap(`old-${i}`), { base: b1 });
      expect(r.status, r.text).toBe(201);
    }
    await first.stop();
    await backend.compact(await backend.currentRevision());
    const second = new ApiServer({ backend });
    const p2 = await second.start(0);
    try {
      const r = await call("GET", "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=1&timeoutSeconds=2", undefined, {
        base: `http://127.0.0.1:${p2}`,
      });
      expect(r.status, r.text).toBe(200);
      const lines = r.text.split("\n").filter((l) => l.trim());
      expect(lines, r.text).toHaveLength(1);
      const ev = JSON.parse(lines[0]!) as WatchEvent;
      expect(ev.type).toBe("ERROR");
      expect(ev.object.kind).toBe("Status");
      expect(ev.object.code).toBe(410);
      expect(ev.object.reason).toBe("Expired");
      expect(ev.object.message).toMatch(/^too old resource version: 1 \(\d+\)$/);
    } finally {
      await second.stop();
    }
  });
});

// ---- patch -------------------------------------------------------------------------------------

describe("patch", () => {
  let ns = "";
  beforeAll(async () => {
    ns = await newNamespace("patch");
  });

  it("a failing json-patch test op is 422 and changes nothing", async () => {
    const c = await mustCreate(cmPath(ns), configMap("jp", { a: "1" }));
    const r = await patch(cmPath(ns, "jp"), [
      { op: "test", path: "/data/a", value: "nope" },
      { op: "replace", path: "/data/a", value: "2" },
    ], JSONPATCH);
    expect(r.status, r.text).toBe(422);
    expect(r.body.kind).toBe("Status");
    const g = await get(cmPath(ns, "jp"));
    expect(g.body.data).toEqual({ a: "1" });
    expect(g.body.metadata.resourceVersion).toBe(c.metadata.resourceVersion);
    const ok = await patch(cmPath(ns, "jp"), [
      { op: "test", path: "/data/a", value: "1" },
      { op: "replace", path: "/data/a", value: "2" },
    ], JSONPATCH);
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.data).toEqual({ a: "2" });
  });

  it("a merge patch on a missing object is 404", async () => {
    const r = await patch(cmPath(ns, "missing"), { data: { a: "1" } });
    expectStatus(r, 404, "NotFound");
    expect(r.body.message).toBe('configmaps "missing" not found');
  });

  it("strategic merge on a Deployment's containers merges by name; JSON merge replaces the list", async () => {
    await mustCreate(deployPath(ns), deployment("smp", 1, [{ name: "a", image: "a:1" }, { name: "b", image: "b:1" }]));
    const r = await patch(deployPath(ns, "smp"), { spec: { template: { spec: { containers: [{ name: "b", image: "b:2" }] } } } }, SMP);
    expect(r.status, r.text).toBe(200);
    expect(at(r.body, "spec.template.spec.containers")).toEqual([
      expect.objectContaining({ name: "a", image: "a:1" }),
      expect.objectContaining({ name: "b", image: "b:2" }),
    ]);

    const m = await patch(deployPath(ns, "smp"), { spec: { template: { spec: { containers: [{ name: "b", image: "b:3" }] } } } }, MERGE);
    expect(m.status, m.text).toBe(200);
    const cs = at(m.body, "spec.template.spec.containers") as { name: string; image: string }[];
    expect(cs.map((c) => `${c.name}=${c.image}`)).toEqual(["b=b:3"]);
  });

  it("strategic merge $patch: delete removes one container by name", async () => {
    await mustCreate(deployPath(ns), deployment("smpdel", 1, [{ name: "a", image: "a:1" }, { name: "b", image: "b:1" }]));
    const r = await patch(deployPath(ns, "smpdel"), { spec: { template: { spec: { containers: [{ name: "a", $patch: "delete" }] } } } }, SMP);
    expect(r.status, r.text).toBe(200);
    const cs = at(r.body, "spec.template.spec.containers") as { name: string }[];
    expect(cs.map((c) => c.name)).toEqual(["b"]);
  });

  it("apply-patch with a fieldManager creates, then updates", async () => {
    const yaml1 = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: "1"\n`;
    const r1 = await call("PATCH", `${cmPath(ns, "applied")}?fieldManager=t`, yaml1, { contentType: APPLY });
    expect(r1.status, r1.text).toBe(201);
    expect(r1.body.data).toEqual({ a: "1" });
    const yaml2 = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: "2"\n  b: "3"\n`;
    const r2 = await call("PATCH", `${cmPath(ns, "applied")}?fieldManager=t`, yaml2, { contentType: APPLY });
    expect(r2.status, r2.text).toBe(200);
    expect(r2.body.data).toEqual({ a: "2", b: "3" });
    expect(r2.body.metadata.uid).toBe(r1.body.metadata.uid);
    expect(rvNum(r2.body)).toBeGreaterThan(rvNum(r1.body));
  });

  it("apply-patch without a fieldManager is 400", async () => {
    const yaml = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: nomgr\n`;
    const r = await call("PATCH", cmPath(ns, "nomgr"), yaml, { contentType: APPLY });
    expectStatus(r, 400, "BadRequest");
  });

  it("unknown fields with fieldValidation=Strict are 400 strict decoding error", async () => {
    const bad = { ...deployment("strict"), spec: { ...deployment("strict").spec, x: 1 } };
    const r = await call("POST", `${deployPath(ns)}?fieldValidation=Strict`, bad);
    expectStatus(r, 400, "BadRequest");
    expect(r.body.message).toContain('strict decoding error: unknown field "spec.x"');
    expectStatus(await get(deployPath(ns, "strict")), 404);

    const p = await patch(`${deployPath(ns, "smp")}?fieldValidation=Strict`, { spec: { x: 1 } });
    expectStatus(p, 400, "BadRequest");
    expect(p.body.message).toContain('unknown field "spec.x"');
  });

  it("unknown fields without Strict are dropped from the stored object", async () => {
    const bad = { ...deployment("lax"), spec: { ...deployment("lax").spec, x: 1 } };
    const r = await post(deployPath(ns), bad);
    expect(r.status, r.text).toBe(201);
    expect(r.body.spec).not.toHaveProperty("x");
    const g = await get(deployPath(ns, "lax"));
    expect(g.body.spec).not.toHaveProperty("x");
  });

  it("unknown fields without a fieldValidation parameter produce a Warning header (server default Warn)", async () => {
    const bad = { ...deployment("warn"), spec: { ...deployment("warn").spec, x: 1 } };
    const r = await post(deployPath(ns), bad);
    expect(r.status, r.text).toBe(201);
    // RFC 7234 warn-text is a quoted string, so upstream sends: 299 - "unknown field \"spec.x\""
    expect(r.headers.get("warning")).toBe('299 - "unknown field \\"spec.x\\""');
  });
});

// ---- deletecollection --------------------------------------------------------------------------

describe("deletecollection", () => {
  it("DELETE on a collection with a labelSelector deletes only the matching objects", async () => {
    const ns = await newNamespace("dc");
    await mustCreate(cmPath(ns), configMap("m1", {}, { a: "b" }));
    await mustCreate(cmPath(ns), configMap("m2", {}, { a: "b" }));
    await mustCreate(cmPath(ns), configMap("o1", {}, { a: "c" }));
    await mustCreate(cmPath(ns), configMap("o2"));
    const r = await del(`${cmPath(ns)}?labelSelector=${encodeURIComponent("a=b")}`);
    expect(r.status, r.text).toBe(200);
    const left = (await get(cmPath(ns))).body.items?.map((i) => i.metadata.name).sort();
    expect(left).toEqual(["o1", "o2"]);
  });
});

// ---- tables ------------------------------------------------------------------------------------

describe("tables", () => {
  it("Accept as=Table returns a meta.k8s.io/v1 Table with the pod columns", async () => {
    const ns = await newNamespace("table");
    await mustCreate(podPath(ns), pod("t1", { nodeName: "n1" }));
    const r = await call("GET", podPath(ns), undefined, { accept: "application/json;as=Table;v=v1;g=meta.k8s.io" });
    expect(r.status, r.text).toBe(200);
    expect(r.body.kind).toBe("Table");
    expect(r.body.apiVersion).toBe("meta.k8s.io/v1");
    const cols = (r.body.columnDefinitions as { name: string }[]).map((c) => c.name);
    expect(cols.slice(0, 5)).toEqual(["Name", "Ready", "Status", "Restarts", "Age"]);
    expect(cols).toEqual(expect.arrayContaining(["IP", "Node", "Nominated Node", "Readiness Gates"]));
    const rows = r.body.rows as { cells: unknown[]; object?: KObj }[];
    expect(rows).toHaveLength(1);
    expect(rows[0]!.cells[0]).toBe("t1");
    expect(rows[0]!.cells[1]).toBe("0/1");
    expect(rows[0]!.cells[cols.indexOf("Node")]).toBe("n1");
    expect(rows[0]!.object?.metadata.name).toBe("t1");

    const one = await call("GET", podPath(ns, "t1"), undefined, { accept: "application/json;as=Table;v=v1;g=meta.k8s.io" });
    expect(one.status, one.text).toBe(200);
    expect(one.body.kind).toBe("Table");
    expect((one.body.rows as unknown[]).length).toBe(1);
  });
});

// ---- namespaces --------------------------------------------------------------------------------

describe("namespace lifecycle", () => {
  it("DELETE makes it Terminating, creates in it are 403, finalize with no finalizers removes it", async () => {
    const ns = await newNamespace("term");
    await mustCreate(cmPath(ns), configMap("inside"));
    const d = await del(`/api/v1/namespaces/${ns}`);
    expect(d.status, d.text).toBe(200);
    expect(d.body.kind).toBe("Namespace");
    expect(at(d.body, "status.phase")).toBe("Terminating");
    expect(d.body.metadata.deletionTimestamp).toBeTruthy();

    const g = await get(`/api/v1/namespaces/${ns}`);
    expect(g.status).toBe(200);
    expect(at(g.body, "status.phase")).toBe("Terminating");
    expect(at(g.body, "spec.finalizers")).toEqual(["kubernetes"]);

    const c = await post(cmPath(ns), configMap("late"));
    expectStatus(c, 403, "Forbidden");
    expect(c.body.message).toContain(`unable to create new content in namespace ${ns} because it is being terminated`);
    // Existing content is still readable and deletable while terminating.
    expect((await get(cmPath(ns, "inside"))).status).toBe(200);
    expect((await del(cmPath(ns, "inside"))).status).toBe(200);

    const fin = await put(`/api/v1/namespaces/${ns}/finalize`, { ...g.body, spec: { finalizers: [] } });
    expect(fin.status, fin.text).toBe(200);
    expectStatus(await get(`/api/v1/namespaces/${ns}`), 404);
    // A second finalize (another controller-manager, a retry) of the namespace now gone: NotFound.
    expectStatus(await put(`/api/v1/namespaces/${ns}/finalize`, { ...g.body, spec: { finalizers: [] } }), 404, "NotFound");
  });
});

describe("priority classes and Priority admission", () => {
  const pcPath = (name = "") => `/apis/scheduling.k8s.io/v1/priorityclasses${name ? `/${name}` : ""}`;
  const withSpec = (p: KObj, spec: Record<string, unknown>): KObj => ({ ...p, spec: { ...(p.spec as Record<string, unknown>), ...spec } });

  it("the system classes exist, and a pod naming one gets its priority and preemptionPolicy", async () => {
    const sys = await get(pcPath("system-node-critical"));
    expect(sys.status, sys.text).toBe(200);
    expect(sys.body.value).toBe(2000001000);
    const ns = await newNamespace("prio");
    const p = await mustCreate(podPath(ns), withSpec(pod("critical"), { priorityClassName: "system-cluster-critical" }));
    expect(at(p, "spec.priority")).toBe(2000000000);
    expect(at(p, "spec.preemptionPolicy")).toBe("PreemptLowerPriority");
  });

  it("a pod naming no class gets priority 0; one naming a missing class is Forbidden", async () => {
    const ns = await newNamespace("prio");
    const p = await mustCreate(podPath(ns), pod("plain"));
    expect(at(p, "spec.priority")).toBe(0);
    const missing = await post(podPath(ns), withSpec(pod("ghost"), { priorityClassName: "nope" }));
    expectStatus(missing, 403, "Forbidden");
    expect(missing.body.message).toContain("no PriorityClass with name nope was found");
  });

  it("a pod may not claim a priority its class does not give it", async () => {
    const ns = await newNamespace("prio");
    const r = await post(podPath(ns), withSpec(pod("greedy"), { priority: 1000 }));
    expectStatus(r, 403, "Forbidden");
    expect(r.body.message).toContain("the integer value of priority (1000) must not be provided in pod spec");
  });

  it("user classes are capped at 1,000,000,000, their value is immutable, and there is one global default", async () => {
    const big = await post(pcPath(), { apiVersion: "scheduling.k8s.io/v1", kind: "PriorityClass", metadata: { name: "too-high" }, value: 2000000000 });
    expectStatus(big, 422, "Invalid");
    const a = await mustCreate(pcPath(), { apiVersion: "scheduling.k8s.io/v1", kind: "PriorityClass", metadata: { name: "default-a" }, value: 10, globalDefault: true });
    expect(a.preemptionPolicy).toBe("PreemptLowerPriority");
    const b = await post(pcPath(), { apiVersion: "scheduling.k8s.io/v1", kind: "PriorityClass", metadata: { name: "default-b" }, value: 20, globalDefault: true });
    expectStatus(b, 422, "Invalid");
    const changed = await put(pcPath("default-a"), { ...a, value: 11 });
    expectStatus(changed, 422, "Invalid");
    const ns = await newNamespace("prio");
    const p = await mustCreate(podPath(ns), pod("defaulted"));
    expect(at(p, "spec.priority")).toBe(10);
    expect(at(p, "spec.priorityClassName")).toBe("default-a");
    expect((await del(pcPath("default-a"))).status).toBe(200);
  });
});
