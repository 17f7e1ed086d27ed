// LimitRanger and ResourceQuota admission through the registry's stores on an in-memory backend:
// defaults and Forbidden messages as upstream, quota charged atomically (even across two
// apiservers sharing one store), "status unknown" before the controller's first sync.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { KubeObject, ResourceQuota } from "../../api/index.ts";
import { openBackend, type Backend } from "../storage/index.ts";
import { Registry } from "../registry/registry.ts";
import { ApiError } from "../errors.ts";

const NS = "team";
let backend: Backend;
let registry: Registry;
const extra: Registry[] = [];

beforeEach(async () => {
  backend = await openBackend("memory://");
  registry = new Registry(backend);
  await registry.start();
  await registry.store("", "namespaces").create("", { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
});

afterEach(async () => {
  for (const r of extra.splice(0)) r.stop();
  registry.stop();
  await backend.close?.();
});

function pod(name: string, resources?: Record<string, unknown>, extraSpec: Record<string, unknown> = {}): KubeObject {
  return { apiVersion: "v1", kind: "Pod", metadata: { name }, spec: { containers: [{ name: "app", image: "busybox", ...(resources ? { resources } : {}) }], ...extraSpec } };
}

async function createPod(r: Registry, p: KubeObject, opts: { dryRun?: boolean } = {}): Promise<KubeObject> {
  return r.store("", "pods").create(NS, p, opts);
}

async function rejection(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error("expected the request to be refused");
}

/** Waits until the registry's watch cache has seen every write so far (admission reads the cache). */
async function settle(r: Registry = registry): Promise<void> {
  const rev = await backend.currentRevision();
  await r.cache.waitUntilFresh(rev);
}

async function limitRange(limits: unknown[]): Promise<KubeObject> {
  const lr = await registry.store("", "limitranges").create(NS, { apiVersion: "v1", kind: "LimitRange", metadata: { name: "limits" }, spec: { limits } });
  await settle();
  return lr;
}

/** A quota as the controller leaves it: status.hard = spec.hard, status.used counted. */
async function quota(name: string, hard: Record<string, string>, used: Record<string, string> | undefined, spec: Record<string, unknown> = {}): Promise<ResourceQuota> {
  const store = registry.store("", "resourcequotas");
  let q = (await store.create(NS, { apiVersion: "v1", kind: "ResourceQuota", metadata: { name }, spec: { hard, ...spec } })) as ResourceQuota;
  if (used) {
    q = (await store.update(NS, name, (cur) => ({ ...cur!, status: { hard, used } }), { subresource: "status" })).obj as ResourceQuota;
  }
  await settle();
  return q;
}

async function usedOf(name: string): Promise<Record<string, unknown> | undefined> {
  const q = (await registry.store("", "resourcequotas").get(NS, name)) as ResourceQuota;
  return q.status?.used;
}

describe("LimitRanger", () => {
  it("gives containers without resources the default limits and default requests, and says so in an annotation", async () => {
    await limitRange([{ type: "Container", default: { cpu: "500m", memory: "256Mi" }, defaultRequest: { cpu: "100m" } }]);
    const p = await createPod(registry, pod("web"));
    const c = (p.spec as { containers: { resources: unknown }[] }).containers[0];
    expect(c.resources).toEqual({ limits: { cpu: "500m", memory: "256Mi" }, requests: { cpu: "100m", memory: "256Mi" } });
    expect(p.metadata.annotations?.["kubernetes.io/limit-ranger"]).toBe("LimitRanger plugin set: cpu, memory request for container app; cpu, memory limit for container app");
    // The QoS class is computed from the defaulted resources.
    expect((p.status as { qosClass?: string }).qosClass).toBe("Burstable");
  });

  it("keeps what a container declares and only fills what it lacks", async () => {
    await limitRange([{ type: "Container", default: { cpu: "1" }, defaultRequest: { cpu: "200m" } }]);
    const p = await createPod(registry, pod("own", { requests: { cpu: "300m" } }));
    expect((p.spec as { containers: { resources: unknown }[] }).containers[0].resources).toEqual({ requests: { cpu: "300m" }, limits: { cpu: "1" } });
  });

  it("refuses a request below min with upstream's message", async () => {
    await limitRange([{ type: "Container", min: { cpu: "100m" }, max: { cpu: "1" } }]);
    const e = await rejection(createPod(registry, pod("x", { requests: { cpu: "50m" }, limits: { cpu: "500m" } })));
    expect(e.code).toBe(403);
    expect(e.message).toBe('pods "x" is forbidden: minimum cpu usage per Container is 100m, but request is 50m');
  });

  it("refuses a limit above max and lists several violations in brackets", async () => {
    await limitRange([{ type: "Container", max: { cpu: "1", memory: "1Gi" } }]);
    const e = await rejection(createPod(registry, pod("big", { limits: { cpu: "2", memory: "2Gi" } })));
    expect(e.message).toBe('pods "big" is forbidden: [maximum cpu usage per Container is 1, but limit is 2, maximum memory usage per Container is 1Gi, but limit is 2Gi]');
  });

  it("defaults the limit to max, so a pod without resources fits a max-only range", async () => {
    const lr = await limitRange([{ type: "Container", max: { cpu: "800m" } }]);
    expect((lr.spec as { limits: unknown[] }).limits[0]).toEqual({ type: "Container", max: { cpu: "800m" }, default: { cpu: "800m" }, defaultRequest: { cpu: "800m" } });
    const p = await createPod(registry, pod("fits"));
    expect((p.spec as { containers: { resources: unknown }[] }).containers[0].resources).toEqual({ limits: { cpu: "800m" }, requests: { cpu: "800m" } });
  });

  it("enforces maxLimitRequestRatio", async () => {
    await limitRange([{ type: "Container", maxLimitRequestRatio: { cpu: "2" } }]);
    const e = await rejection(createPod(registry, pod("r", { requests: { cpu: "100m" }, limits: { cpu: "500m" } })));
    expect(e.message).toBe('pods "r" is forbidden: cpu max limit to request ratio per Container is 2, but provided ratio is 5.000000');
  });

  it("holds a claim's storage request to the PersistentVolumeClaim item", async () => {
    await limitRange([{ type: "PersistentVolumeClaim", min: { storage: "1Gi" }, max: { storage: "10Gi" } }]);
    const claim = (storage: string): KubeObject => ({
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { name: `c-${storage.toLowerCase()}` },
      spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage } } },
    });
    const e = await rejection(registry.store("", "persistentvolumeclaims").create(NS, claim("20Gi")));
    expect(e.message).toBe('persistentvolumeclaims "c-20gi" is forbidden: maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi');
    await registry.store("", "persistentvolumeclaims").create(NS, claim("5Gi"));
  });

  it("validates the LimitRange itself: min above max is a 422 with upstream's text", async () => {
    const e = await rejection(
      registry.store("", "limitranges").create(NS, { apiVersion: "v1", kind: "LimitRange", metadata: { name: "bad" }, spec: { limits: [{ type: "Container", min: { cpu: "2" }, max: { cpu: "1" } }] } }),
    );
    expect(e.code).toBe(422);
    expect(e.message).toContain('spec.limits[0].min[cpu]: Invalid value: "2": min value 2 is greater than max value 1');
  });
});

describe("ResourceQuota admission", () => {
  it("refuses the pod that would exceed the quota with upstream's message, after charging the ones that fit", async () => {
    await quota("q", { pods: "3" }, { pods: "0" });
    for (const n of ["p1", "p2", "p3"]) await createPod(registry, pod(n));
    expect(await usedOf("q")).toEqual({ pods: "3" });
    const e = await rejection(createPod(registry, pod("p4")));
    expect(e.code).toBe(403);
    expect(e.message).toBe('pods "p4" is forbidden: exceeded quota: q, requested: pods=1, used: pods=3, limited: pods=3');
  });

  it("reports only the exceeded resources, sorted, with canonical quantities", async () => {
    await quota("compute", { pods: "10", "requests.cpu": "1", "requests.memory": "1Gi" }, { pods: "1", "requests.cpu": "800m", "requests.memory": "512Mi" });
    const e = await rejection(createPod(registry, pod("hungry", { requests: { cpu: "300m", memory: "128Mi" } })));
    expect(e.message).toBe('pods "hungry" is forbidden: exceeded quota: compute, requested: requests.cpu=300m, used: requests.cpu=800m, limited: requests.cpu=1');
  });

  it("refuses pods that do not declare a resource the quota limits", async () => {
    await quota("cpu", { "requests.cpu": "2" }, { "requests.cpu": "0" });
    const e = await rejection(createPod(registry, pod("bare")));
    expect(e.message).toBe('pods "bare" is forbidden: failed quota: cpu: must specify requests.cpu for: app');
  });

  it("refuses while the quota's usage has not been computed yet", async () => {
    await quota("q", { pods: "3" }, undefined);
    const e = await rejection(createPod(registry, pod("early")));
    expect(e.message).toBe('pods "early" is forbidden: status unknown for quota: q, resources: pods');
  });

  it("gives the charge back when the create then fails because the name is taken", async () => {
    await quota("q", { pods: "2" }, { pods: "0" });
    await createPod(registry, pod("same"));
    await settle();
    const e = await rejection(createPod(registry, pod("same")));
    expect(e.code).toBe(409);
    expect(await usedOf("q")).toEqual({ pods: "1" });
    await createPod(registry, pod("other"));
    expect(await usedOf("q")).toEqual({ pods: "2" });
  });

  it("dry-run creates are checked but not charged", async () => {
    await quota("q", { pods: "1" }, { pods: "0" });
    await createPod(registry, pod("dry"), { dryRun: true });
    expect(await usedOf("q")).toEqual({ pods: "0" });
  });

  it("lets exactly one of many concurrent creates take the last slot", async () => {
    await quota("q", { pods: "3" }, { pods: "2" });
    const results = await Promise.allSettled(["a", "b", "c", "d", "e"].map((n) => createPod(registry, pod(n))));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect((r.reason as Error).message).toMatch(/exceeded quota: q, requested: pods=1, used: pods=3, limited: pods=3$/);
    expect(await usedOf("q")).toEqual({ pods: "3" });
  });

  it("two apiservers on one store cannot both pass a quota of one remaining (the resourceVersion check fences them)", async () => {
    const other = new Registry(backend);
    extra.push(other);
    await other.start();
    await quota("q", { pods: "2" }, { pods: "1" });
    await settle(other);
    const results = await Promise.allSettled([createPod(registry, pod("x1")), createPod(other, pod("x2")), createPod(registry, pod("x3")), createPod(other, pod("x4"))]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(await usedOf("q")).toEqual({ pods: "2" });
  });

  it("counts objects of any resource under count/<resource>.<group>", async () => {
    await quota("objs", { "count/deployments.apps": "1", configmaps: "5" }, { "count/deployments.apps": "1", configmaps: "0" });
    const dep = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "d" },
      spec: { selector: { matchLabels: { a: "b" } }, template: { metadata: { labels: { a: "b" } }, spec: { containers: [{ name: "c", image: "busybox" }] } } },
    };
    const e = await rejection(registry.store("apps", "deployments").create(NS, dep));
    expect(e.message).toBe('deployments.apps "d" is forbidden: exceeded quota: objs, requested: count/deployments.apps=1, used: count/deployments.apps=1, limited: count/deployments.apps=1');
    await registry.store("", "configmaps").create(NS, { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cm" } });
    expect(await usedOf("objs")).toEqual({ configmaps: "1", "count/deployments.apps": "1" });
  });

  it("charges a service's change of type on update", async () => {
    await quota("lb", { "services.loadbalancers": "0", services: "5" }, { "services.loadbalancers": "0", services: "0" });
    const svcs = registry.store("", "services");
    await svcs.create(NS, { apiVersion: "v1", kind: "Service", metadata: { name: "s" }, spec: { ports: [{ port: 80 }] } });
    await settle();
    const e = await rejection(svcs.update(NS, "s", (cur) => ({ ...cur!, spec: { ...(cur!.spec as object), type: "LoadBalancer" } })));
    expect(e.message).toBe('services "s" is forbidden: exceeded quota: lb, requested: services.loadbalancers=1, used: services.loadbalancers=0, limited: services.loadbalancers=0');
  });

  it("validates quotas: unknown resource names, negative quantities, conflicting scopes", async () => {
    const e = await rejection(
      registry.store("", "resourcequotas").create(NS, {
        apiVersion: "v1",
        kind: "ResourceQuota",
        metadata: { name: "bad" },
        spec: { hard: { widgets: "1", pods: "-1" }, scopes: ["BestEffort", "NotBestEffort"] },
      }),
    );
    expect(e.code).toBe(422);
    expect(e.message).toContain('spec.hard[widgets]: Invalid value: "widgets": must be a standard resource type or fully qualified');
    expect(e.message).toContain('spec.hard[pods]: Invalid value: "-1": must be greater than or equal to 0');
    expect(e.message).toContain("conflicting scopes");
  });
});
