import { describe, expect, it } from "vitest";
import type { EndpointSlice } from "../api/index.ts";
import { allBackends, findServicePort, indexSliceByService, usableBackends } from "./endpoints.ts";

function slice(name: string, ports: EndpointSlice["ports"], endpoints: EndpointSlice["endpoints"], svc = "web"): EndpointSlice {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name, namespace: "default", labels: { "kubernetes.io/service-name": svc } },
    addressType: "IPv4",
    ports,
    endpoints,
  };
}

describe("service backends from EndpointSlices", () => {
  const http = { name: "http", port: 80, protocol: "TCP" as const };
  it("matches the slice port by name and protocol and uses ready endpoints (absent condition = ready)", () => {
    const s = slice("web-a", [{ name: "http", port: 8080, protocol: "TCP" }, { name: "dns", port: 53, protocol: "UDP" }], [
      { addresses: ["127.64.0.3"], conditions: { ready: true }, nodeName: "n1", zone: "a", targetRef: { kind: "Pod", name: "p1", namespace: "default" } },
      { addresses: ["127.64.0.2"], nodeName: "n2" },
      { addresses: ["127.64.0.4"], conditions: { ready: false, serving: false } },
    ]);
    const b = usableBackends([s], http);
    expect(b.map((x) => `${x.ip}:${x.port}`)).toEqual(["127.64.0.2:8080", "127.64.0.3:8080"]);
    expect(b[1]).toMatchObject({ nodeName: "n1", zone: "a", pod: "default/p1" });
    expect(usableBackends([s], { name: "http", port: 80, protocol: "UDP" })).toEqual([]);
    expect(usableBackends([s], { port: 80 })).toEqual([]); // unnamed service port matches only an unnamed slice port
  });
  it("falls back to serving terminating endpoints only when none is ready", () => {
    const s = slice("web-a", [{ port: 8080 }], [
      { addresses: ["127.64.0.5"], conditions: { ready: false, serving: true, terminating: true } },
      { addresses: ["127.64.0.6"], conditions: { ready: false, serving: false, terminating: true } },
    ]);
    expect(usableBackends([s], { port: 80 }).map((b) => b.ip)).toEqual(["127.64.0.5"]);
    const withReady = slice("web-b", [{ port: 8080 }], [{ addresses: ["127.64.0.7"], conditions: { ready: true } }]);
    expect(usableBackends([s, withReady], { port: 80 }).map((b) => b.ip)).toEqual(["127.64.0.7"]);
  });
  it("de-duplicates an endpoint listed in two slices, preferring its ready copy, and applies a filter before the fallback", () => {
    const a = slice("web-a", [{ port: 8080 }], [{ addresses: ["127.64.0.8"], conditions: { ready: false } }]);
    const b = slice("web-b", [{ port: 8080 }], [{ addresses: ["127.64.0.8"], conditions: { ready: true }, nodeName: "n1" }, { addresses: ["127.64.0.9"], nodeName: "n2" }]);
    expect(allBackends([a, b], { port: 80 })).toHaveLength(2);
    expect(usableBackends([a, b], { port: 80 }, (x) => x.nodeName === "n1").map((x) => x.ip)).toEqual(["127.64.0.8"]);
    expect(usableBackends([a, b], { port: 80 }, (x) => x.nodeName === "n3")).toEqual([]);
  });
  it("finds service ports by name or number and indexes slices by service", () => {
    const svc = { apiVersion: "v1", kind: "Service", metadata: { name: "web", namespace: "default" }, spec: { ports: [{ name: "http", port: 80 }, { name: "https", port: 443 }] } };
    expect(findServicePort(svc, { name: "https" })?.port).toBe(443);
    expect(findServicePort(svc, { number: 80 })?.name).toBe("http");
    expect(findServicePort(svc, {})).toBeUndefined();
    expect(indexSliceByService(slice("x", [], [], "api"))).toEqual(["default/api"]);
  });
});
