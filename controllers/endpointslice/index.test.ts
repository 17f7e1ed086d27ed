// EndpointSlice controller: synchronous reconciles against a FakeClient, listers rebuilt from the
// tracker when a test lets the informers catch up.

import { describe, expect, it } from "vitest";
import { findResource, type EndpointSlice, type Node, type Pod, type Service, type ServicePort } from "../../api/index.ts";
import { newLogger } from "../../client/log.ts";
import { fakeLister, FakeClient } from "../../client/testing.ts";
import type { ReconcileContext } from "../../client/types.ts";
import { GarbageCollector, gcKey, GCResources } from "../gc/index.ts";
import { ControllerName, EndpointSliceController, SliceExpectations } from "./index.ts";

const NS = "default";

function ctx(): ReconcileContext {
  return { signal: new AbortController().signal, log: newLogger("test"), reconcileID: "test" };
}

function service(name: string, ports: ServicePort[] = [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }]): Service {
  return { apiVersion: "v1", kind: "Service", metadata: { name, namespace: NS, uid: `uid-${name}` }, spec: { selector: { app: "web" }, ports } };
}

function node(name: string, zone: string): Node {
  return { apiVersion: "v1", kind: "Node", metadata: { name, uid: `uid-${name}`, labels: { "topology.kubernetes.io/zone": zone } } };
}

function pod(name: string, o: { ip?: string; ready?: boolean; node?: string; terminating?: boolean; namedPort?: number } = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: NS, uid: `uid-${name}`, labels: { app: "web" }, ...(o.terminating ? { deletionTimestamp: "2024-01-01T00:00:00Z" } : {}) },
    spec: { containers: [{ name: "c", image: "nginx", ports: o.namedPort ? [{ name: "web", containerPort: o.namedPort }] : [] }], ...(o.node ? { nodeName: o.node } : {}) },
    status: { phase: "Running", ...(o.ip ? { podIP: o.ip } : {}), conditions: [{ type: "Ready", status: o.ready ? "True" : "False" }] },
  };
}

const ref = (name: string) => ({ kind: "Pod", namespace: NS, name, uid: `uid-${name}` });

function fixture(objects: (Service | Pod | Node | EndpointSlice)[]) {
  const client = new FakeClient(objects);
  const expectations = new SliceExpectations();
  const build = () =>
    new EndpointSliceController({
      client,
      services: fakeLister(client.trackerList("", "services") as Service[]),
      pods: fakeLister(client.trackerList("", "pods") as Pod[]),
      nodes: fakeLister(client.trackerList("", "nodes") as Node[]),
      endpointSlices: fakeLister(client.trackerList("discovery.k8s.io", "endpointslices") as EndpointSlice[]),
      expectations,
    });
  const f = {
    client,
    expectations,
    controller: build(),
    slices: () => (client.trackerList("discovery.k8s.io", "endpointslices") as EndpointSlice[]).sort((a, b) => (a.metadata.name! < b.metadata.name! ? -1 : 1)),
    /** The informers catch up with the tracker: every creation and deletion of ours is observed. */
    sync() {
      expectations.delete("default/web");
      f.controller = build();
      client.clearActions();
    },
    /** Makes `pods` the only pods the service selects (others lose their labels), then syncs. */
    setPods(pods: Pod[]) {
      for (const p of client.trackerList("", "pods")) client.seed({ ...p, metadata: { ...p.metadata, labels: {} } });
      for (const p of pods) client.seed(p);
      f.sync();
    },
  };
  return f;
}

const writes = (f: ReturnType<typeof fixture>) => f.client.writeActions().map((a) => `${a.verb} ${a.resource}`);

describe("EndpointSliceController", () => {
  it("creates one IPv4 slice owned by the service, with ready, not-ready and terminating pods, their nodeName, zone and targetRef", async () => {
    const f = fixture([
      service("web"),
      node("n1", "zone-a"),
      pod("a", { ip: "10.0.0.1", ready: true, node: "n1" }),
      pod("b", { ip: "10.0.0.2", node: "n2" }),
      pod("c", { ip: "10.0.0.3", ready: true, node: "n1", terminating: true }),
      pod("no-ip", { ready: true }),
    ]);
    await f.controller.reconcile(ctx(), "default/web");
    expect(writes(f)).toEqual(["create endpointslices"]);
    const [slice] = f.slices();
    expect(slice?.metadata.generateName).toBe("web-");
    expect(slice?.metadata.labels).toEqual({ "kubernetes.io/service-name": "web", "endpointslice.kubernetes.io/managed-by": ControllerName });
    expect(slice?.metadata.ownerReferences).toEqual([{ apiVersion: "v1", kind: "Service", name: "web", uid: "uid-web", controller: true, blockOwnerDeletion: true }]);
    expect(slice?.addressType).toBe("IPv4");
    expect(slice?.ports).toEqual([{ name: "http", port: 8080, protocol: "TCP" }]);
    expect(slice?.endpoints).toEqual([
      { addresses: ["10.0.0.1"], conditions: { ready: true, serving: true, terminating: false }, nodeName: "n1", zone: "zone-a", targetRef: ref("a") },
      { addresses: ["10.0.0.2"], conditions: { ready: false, serving: false, terminating: false }, nodeName: "n2", targetRef: ref("b") },
      { addresses: ["10.0.0.3"], conditions: { ready: false, serving: true, terminating: true }, nodeName: "n1", zone: "zone-a", targetRef: ref("c") },
    ]);
  });

  it("resolves a named targetPort per pod, one slice per port set", async () => {
    const f = fixture([service("web", [{ name: "http", port: 80, targetPort: "web", protocol: "TCP" }]), pod("a", { ip: "10.0.0.1", ready: true, namedPort: 8080 }), pod("b", { ip: "10.0.0.2", ready: true, namedPort: 9090 })]);
    await f.controller.reconcile(ctx(), "default/web");
    expect(f.slices().map((s) => [s.ports, s.endpoints.map((e) => e.targetRef?.name)])).toEqual(
      expect.arrayContaining([
        [[{ name: "http", port: 8080, protocol: "TCP" }], ["a"]],
        [[{ name: "http", port: 9090, protocol: "TCP" }], ["b"]],
      ]),
    );
  });

  it("updates the slice in place when a pod loses readiness or its IP, and writes nothing when nothing changed", async () => {
    const f = fixture([service("web"), pod("a", { ip: "10.0.0.1", ready: true }), pod("b", { ip: "10.0.0.2", ready: true })]);
    await f.controller.reconcile(ctx(), "default/web");
    f.sync();
    await f.controller.reconcile(ctx(), "default/web");
    expect(writes(f)).toEqual([]);

    const name = f.slices()[0]?.metadata.name;
    f.setPods([pod("a", { ip: "10.0.0.1" }), pod("b", { ready: true })]);
    await f.controller.reconcile(ctx(), "default/web");
    expect(writes(f)).toEqual(["update endpointslices"]);
    expect(f.slices().map((s) => s.metadata.name)).toEqual([name]);
    expect(f.slices()[0]?.endpoints).toEqual([{ addresses: ["10.0.0.1"], conditions: { ready: false, serving: false, terminating: false }, targetRef: ref("a") }]);
  });

  it("splits 250 endpoints into slices of at most 100, and deletes the slices left empty when pods go", async () => {
    const pods = Array.from({ length: 250 }, (_, i) => pod(`p${String(i).padStart(3, "0")}`, { ip: `10.0.${Math.floor(i / 200)}.${i % 200}`, ready: true }));
    const f = fixture([service("web"), ...pods]);
    await f.controller.reconcile(ctx(), "default/web");
    expect(f.slices().map((s) => s.endpoints.length).sort()).toEqual([100, 100, 50]);
    f.sync();
    // Keep the 100 pods of one slice: the other slices are now empty and go; the kept one is untouched.
    const kept = f.slices().find((s) => s.endpoints.length === 100)!;
    const keptNames = new Set(kept.endpoints.map((e) => e.targetRef?.name));
    f.setPods(pods.filter((p) => keptNames.has(p.metadata.name)));
    await f.controller.reconcile(ctx(), "default/web");
    expect(writes(f)).toEqual(["delete endpointslices", "delete endpointslices"]);
    expect(f.slices().map((s) => s.metadata.name)).toEqual([kept.metadata.name]);
  });

  it("creates nothing more while its own creations are not yet in the cache", async () => {
    const f = fixture([service("web"), pod("a", { ip: "10.0.0.1", ready: true })]);
    await f.controller.reconcile(ctx(), "default/web");
    f.client.clearActions();
    await f.controller.reconcile(ctx(), "default/web");
    expect(writes(f)).toEqual([]);
  });

  it("keeps one empty slice for a service that selects no ready-or-not pod", async () => {
    const f = fixture([service("web")]);
    await f.controller.reconcile(ctx(), "default/web");
    expect(f.slices().map((s) => [s.endpoints, s.ports])).toEqual([[[], []]]);
  });

  it("leaves a deleted service's slices to the garbage collector, which deletes them through their ownerReference", async () => {
    const f = fixture([service("web"), pod("a", { ip: "10.0.0.1", ready: true })]);
    await f.controller.reconcile(ctx(), "default/web");
    await f.client.resource("", "services").delete(NS, "web");
    f.sync();
    await f.controller.reconcile(ctx(), "default/web");
    expect(writes(f)).toEqual([]);

    const slice = f.slices()[0]!;
    const gc = new GarbageCollector({
      client: f.client,
      resources: GCResources.map(({ group, resource }) => ({ info: findResource(group, "v1", resource)!, lister: fakeLister(f.client.trackerList(group, resource)) })),
    });
    await gc.reconcile(ctx(), gcKey({ info: findResource("discovery.k8s.io", "v1", "endpointslices")!, namespace: NS, name: slice.metadata.name!, uid: slice.metadata.uid! }));
    expect(f.slices()).toEqual([]);
  });
});
