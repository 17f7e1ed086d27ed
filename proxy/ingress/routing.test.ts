// The routing table: hosts (exact, one-label wildcard, any), Exact and element-wise Prefix paths,
// longest match, conflicts between Ingresses (oldest wins) and the default backend.

import { describe, expect, it } from "vitest";
import type { HTTPIngressPath, Ingress, IngressBackend } from "../../api/index.ts";
import { buildRoutingTable, hostOnly, matchRoute, type Upstream } from "./routing.ts";

function be(service: string, port = 80): IngressBackend {
  return { service: { name: service, port: { number: port } } };
}

function path(p: string, service: string, pathType: HTTPIngressPath["pathType"] = "Prefix"): HTTPIngressPath {
  return { path: p, pathType, backend: be(service) };
}

function ingress(name: string, created: string, rules: { host?: string; paths: HTTPIngressPath[] }[], defaultBackend?: IngressBackend): Ingress {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "Ingress",
    metadata: { name, namespace: "default", creationTimestamp: created, uid: name },
    spec: { rules: rules.map((r) => ({ host: r.host, http: { paths: r.paths } })), defaultBackend },
  };
}

const resolve = (ns: string, b: IngressBackend): Upstream => ({
  key: `${ns}/${b.service?.name}:${b.service?.port?.number}`,
  namespace: ns,
  service: b.service?.name ?? "",
  port: String(b.service?.port?.number),
  backends: [],
  cursor: { next: 0 },
});

function serviceFor(ings: Ingress[], host: string, p: string): string | undefined {
  return matchRoute(buildRoutingTable(ings, resolve), host, p)?.upstream.service;
}

describe("routing table", () => {
  it("matches exact hosts, one-label wildcards and host-less rules, in that order", () => {
    const ings = [
      ingress("a", "2024-01-01T00:00:00Z", [
        { host: "foo.example.com", paths: [path("/", "exact")] },
        { host: "*.example.com", paths: [path("/", "wild")] },
        { paths: [path("/", "any")] },
      ]),
    ];
    expect(serviceFor(ings, "foo.example.com", "/")).toBe("exact");
    expect(serviceFor(ings, "bar.example.com", "/x")).toBe("wild");
    // The wildcard covers one label only, and not the bare domain.
    expect(serviceFor(ings, "a.bar.example.com", "/")).toBe("any");
    expect(serviceFor(ings, "example.com", "/")).toBe("any");
    expect(serviceFor(ings, "other.test", "/")).toBe("any");
  });

  it("matches Prefix element-wise and Exact exactly; ImplementationSpecific is a Prefix", () => {
    const ings = [
      ingress("a", "2024-01-01T00:00:00Z", [
        { host: "h", paths: [path("/foo", "prefix"), path("/bar", "exact", "Exact"), path("/impl/", "impl", "ImplementationSpecific")] },
      ]),
    ];
    expect(serviceFor(ings, "h", "/foo")).toBe("prefix");
    expect(serviceFor(ings, "h", "/foo/")).toBe("prefix");
    expect(serviceFor(ings, "h", "/foo/bar")).toBe("prefix");
    expect(serviceFor(ings, "h", "/foobar")).toBeUndefined();
    expect(serviceFor(ings, "h", "/bar")).toBe("exact");
    expect(serviceFor(ings, "h", "/bar/")).toBeUndefined();
    expect(serviceFor(ings, "h", "/bar/x")).toBeUndefined();
    expect(serviceFor(ings, "h", "/impl")).toBe("impl");
    expect(serviceFor(ings, "h", "/impl/x")).toBe("impl");
  });

  it("prefers the longest match, and Exact over a Prefix of the same path", () => {
    const ings = [
      ingress("a", "2024-01-01T00:00:00Z", [
        { host: "h", paths: [path("/", "root"), path("/api", "api"), path("/api/v2", "v2"), path("/api", "api-exact", "Exact")] },
      ]),
    ];
    expect(serviceFor(ings, "h", "/x")).toBe("root");
    expect(serviceFor(ings, "h", "/api")).toBe("api-exact");
    expect(serviceFor(ings, "h", "/api/v1")).toBe("api");
    expect(serviceFor(ings, "h", "/api/v2/users")).toBe("v2");
  });

  it("merges rules across Ingresses; on a conflict the oldest Ingress wins and the other is told", () => {
    const older = ingress("older", "2024-01-01T00:00:00Z", [{ host: "h", paths: [path("/", "old")] }]);
    const newer = ingress("newer", "2024-06-01T00:00:00Z", [{ host: "h", paths: [path("/", "new"), path("/extra", "extra")] }]);
    const conflicts: string[] = [];
    const table = buildRoutingTable([newer, older], resolve, (loser, host, p, winner) => conflicts.push(`${loser.metadata.name} ${host}${p} ${winner}`));
    expect(matchRoute(table, "h", "/")?.upstream.service).toBe("old");
    expect(matchRoute(table, "h", "/extra/1")?.upstream.service).toBe("extra");
    expect(conflicts).toEqual(["newer h/ default/older"]);
  });

  it("sends what no rule matches to the oldest Ingress's default backend, else nowhere (404)", () => {
    const ings = [
      ingress("b", "2024-02-01T00:00:00Z", [], be("fallback-b")),
      ingress("a", "2024-01-01T00:00:00Z", [{ host: "h", paths: [path("/app", "app")] }], be("fallback-a")),
    ];
    expect(serviceFor(ings, "h", "/app")).toBe("app");
    expect(serviceFor(ings, "h", "/other")).toBe("fallback-a");
    expect(serviceFor(ings, "nobody", "/")).toBe("fallback-a");
    expect(serviceFor([ingress("a", "2024-01-01T00:00:00Z", [{ host: "h", paths: [path("/app", "app")] }])], "h", "/other")).toBeUndefined();
  });

  it("takes the host from the Host header without its port, case-insensitively", () => {
    expect(hostOnly("Web.Example:8080")).toBe("web.example");
    expect(hostOnly("[::1]:80")).toBe("[::1]");
    expect(hostOnly(undefined)).toBe("");
  });
});
