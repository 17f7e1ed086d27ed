// Endpoints controller: one synchronous reconcile against a FakeClient, assertions on its actions
// and on the Endpoints the tracker ends up holding.

import { describe, expect, it } from "vitest";
import type { Endpoints, Pod, Service, ServicePort } from "../../api/index.ts";
import { newLogger } from "../../client/log.ts";
import { fakeLister, FakeClient } from "../../client/testing.ts";
import type { ReconcileContext } from "../../client/types.ts";
import { EndpointsController, PodServiceHandlers } from "./index.ts";

const NS = "default";

function ctx(): ReconcileContext {
  return { signal: new AbortController().signal, log: newLogger("test"), reconcileID: "test" };
}

function service(name: string, opts: { selector?: Record<string, string> | null; ports?: ServicePort[]; publishNotReadyAddresses?: boolean } = {}): Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: NS, uid: `uid-${name}`, labels: { team: "a" } },
    spec: {
      ...(opts.selector === null ? {} : { selector: opts.selector ?? { app: "web" } }),
      ports: opts.ports ?? [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }],
      ...(opts.publishNotReadyAddresses ? { publishNotReadyAddresses: true } : {}),
    },
  };
}

function pod(name: string, o: { ip?: string; ready?: boolean; node?: string; labels?: Record<string, string>; terminating?: boolean; namedPort?: number } = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: NS,
      uid: `uid-${name}`,
      labels: o.labels ?? { app: "web" },
      ...(o.terminating ? { deletionTimestamp: "2024-01-01T00:00:00Z", deletionGracePeriodSeconds: 30 } : {}),
    },
    spec: {
      containers: [{ name: "c", image: "nginx", ports: o.namedPort ? [{ name: "web", containerPort: o.namedPort, protocol: "TCP" }] : [] }],
      ...(o.node ? { nodeName: o.node } : {}),
    },
    status: {
      phase: "Running",
      ...(o.ip ? { podIP: o.ip, podIPs: [{ ip: o.ip }] } : {}),
      conditions: [{ type: "Ready", status: o.ready ? "True" : "False" }],
    },
  };
}

const ref = (name: string) => ({ kind: "Pod", namespace: NS, name, uid: `uid-${name}` });

function fixture(services: Service[], pods: Pod[], endpoints: Endpoints[] = []) {
  const client = new FakeClient([...services, ...pods, ...endpoints]);
  const controller = new EndpointsController({
    client,
    services: fakeLister(client.trackerList("", "services") as Service[]),
    pods: fakeLister(client.trackerList("", "pods") as Pod[]),
    endpoints: fakeLister(client.trackerList("", "endpoints") as Endpoints[]),
  });
  return { client, controller, endpoints: (name = "web") => client.tracker("", "endpoints", NS, name) as Endpoints | undefined };
}

describe("EndpointsController", () => {
  it("puts ready pods in addresses and not-ready ones in notReadyAddresses, with nodeName and a Pod targetRef", async () => {
    const f = fixture([service("web")], [pod("a", { ip: "10.0.0.1", ready: true, node: "n1" }), pod("b", { ip: "10.0.0.2", node: "n2" })]);
    await f.controller.reconcile(ctx(), "default/web");
    expect(f.endpoints()?.subsets).toEqual([
      {
        ports: [{ name: "http", port: 8080, protocol: "TCP" }],
        addresses: [{ ip: "10.0.0.1", nodeName: "n1", targetRef: ref("a") }],
        notReadyAddresses: [{ ip: "10.0.0.2", nodeName: "n2", targetRef: ref("b") }],
      },
    ]);
    expect(f.endpoints()?.metadata.labels).toEqual({ team: "a" });
  });

  it("leaves out pods without an IP, terminating pods, and pods the selector does not match", async () => {
    const f = fixture(
      [service("web")],
      [pod("a", { ip: "10.0.0.1", ready: true }), pod("no-ip", { ready: true }), pod("going", { ip: "10.0.0.3", ready: true, terminating: true }), pod("other", { ip: "10.0.0.4", ready: true, labels: { app: "db" } })],
    );
    await f.controller.reconcile(ctx(), "default/web");
    expect(f.endpoints()?.subsets).toEqual([{ ports: [{ name: "http", port: 8080, protocol: "TCP" }], addresses: [{ ip: "10.0.0.1", targetRef: ref("a") }] }]);
  });

  it("lists not-ready pods as ready when the service publishes not-ready addresses", async () => {
    const f = fixture([service("web", { publishNotReadyAddresses: true })], [pod("a", { ip: "10.0.0.1" })]);
    await f.controller.reconcile(ctx(), "default/web");
    expect(f.endpoints()?.subsets?.[0]?.addresses).toEqual([{ ip: "10.0.0.1", targetRef: ref("a") }]);
  });

  it("resolves a named targetPort per pod, and groups pods by the port they serve; a pod without the name is left out", async () => {
    const svc = service("web", { ports: [{ name: "http", port: 80, targetPort: "web", protocol: "TCP" }] });
    const f = fixture([svc], [pod("a", { ip: "10.0.0.1", ready: true, namedPort: 8080 }), pod("b", { ip: "10.0.0.2", ready: true, namedPort: 9090 }), pod("c", { ip: "10.0.0.3", ready: true })]);
    await f.controller.reconcile(ctx(), "default/web");
    expect(f.endpoints()?.subsets).toEqual([
      { ports: [{ name: "http", port: 8080, protocol: "TCP" }], addresses: [{ ip: "10.0.0.1", targetRef: ref("a") }] },
      { ports: [{ name: "http", port: 9090, protocol: "TCP" }], addresses: [{ ip: "10.0.0.2", targetRef: ref("b") }] },
    ]);
  });

  it("moves a pod that lost readiness to notReadyAddresses, and drops one that lost its IP, with one update", async () => {
    const before = fixture([service("web")], [pod("a", { ip: "10.0.0.1", ready: true }), pod("b", { ip: "10.0.0.2", ready: true })]);
    await before.controller.reconcile(ctx(), "default/web");
    const existing = before.endpoints()!;
    const f = fixture([service("web")], [pod("a", { ip: "10.0.0.1" }), pod("b", { ready: true })], [existing]);
    await f.controller.reconcile(ctx(), "default/web");
    expect(f.client.writeActions().map((a) => `${a.verb} ${a.resource}`)).toEqual(["update endpoints"]);
    expect(f.endpoints()?.subsets).toEqual([{ ports: [{ name: "http", port: 8080, protocol: "TCP" }], notReadyAddresses: [{ ip: "10.0.0.1", targetRef: ref("a") }] }]);
  });

  it("writes nothing when the Endpoints already say what they should", async () => {
    const pods = [pod("a", { ip: "10.0.0.1", ready: true }), pod("b", { ip: "10.0.0.2" })];
    const first = fixture([service("web")], pods);
    await first.controller.reconcile(ctx(), "default/web");
    const f = fixture([service("web")], pods, [first.endpoints()!]);
    await f.controller.reconcile(ctx(), "default/web");
    expect(f.client.writeActions()).toEqual([]);
  });

  it("deletes the Endpoints when the service is gone", async () => {
    const f = fixture([], [], [{ apiVersion: "v1", kind: "Endpoints", metadata: { name: "web", namespace: NS }, subsets: [] }]);
    await f.controller.reconcile(ctx(), "default/web");
    expect(f.endpoints()).toBeUndefined();
    // Already gone: still fine.
    await expect(f.controller.reconcile(ctx(), "default/web")).resolves.toEqual({});
  });

  it("leaves the Endpoints of a service without a selector alone", async () => {
    const manual: Endpoints = { apiVersion: "v1", kind: "Endpoints", metadata: { name: "web", namespace: NS }, subsets: [{ addresses: [{ ip: "192.168.1.1" }], ports: [{ port: 5432 }] }] };
    const f = fixture([service("web", { selector: null })], [pod("a", { ip: "10.0.0.1", ready: true })], [manual]);
    await f.controller.reconcile(ctx(), "default/web");
    expect(f.client.writeActions()).toEqual([]);
  });
});

describe("PodServiceHandlers", () => {
  it("maps a pod to the services selecting it, before and after a label change, and ignores irrelevant updates", () => {
    const services = fakeLister([service("web"), service("db", { selector: { app: "db" } }), service("manual", { selector: null })]);
    const h = new PodServiceHandlers(services);
    const a = { ...pod("a", { ip: "10.0.0.1" }), metadata: { ...pod("a").metadata, resourceVersion: "1" } };
    expect(h.onAdd(a)).toEqual(["default/web"]);
    const relabeled = { ...a, metadata: { ...a.metadata, resourceVersion: "2", labels: { app: "db" } } };
    expect(h.onUpdate(a, relabeled).sort()).toEqual(["default/db", "default/web"]);
    const annotated = { ...a, metadata: { ...a.metadata, resourceVersion: "3", annotations: { x: "y" } } };
    expect(h.onUpdate(a, annotated)).toEqual([]);
  });
});
