import { describe, expect, it } from "vitest";
import { apiGroups, groupVersion, RESOURCES } from "../api/resources.ts";
import {
  AGGREGATED_DISCOVERY_CONTENT_TYPE,
  aggregatedDiscovery,
  aggregatedDiscoveryContentType,
  legacyApiGroup,
  legacyApiGroupList,
  legacyApiVersions,
  legacyResourceList,
  negotiateAggregatedDiscovery,
  storageVersionHash,
  wantsAggregatedDiscovery,
} from "./discovery.ts";

type Obj = Record<string, unknown>;
const items = (x: Obj) => x.items as Obj[];
const versions = (x: Obj) => x.versions as Obj[];
const resources = (x: Obj) => x.resources as Obj[];

/** Every aggregated resource entry of both documents, keyed "group/version/resource". */
function aggregatedEntries(): Map<string, Obj> {
  const out = new Map<string, Obj>();
  for (const which of ["core", "apis"] as const) {
    for (const g of items(aggregatedDiscovery(which))) {
      const name = String((g.metadata as Obj).name ?? "");
      for (const v of versions(g)) for (const r of resources(v)) out.set(`${name}/${String(v.version)}/${String(r.resource)}`, r);
    }
  }
  return out;
}

describe("aggregated discovery", () => {
  it("is an apidiscovery.k8s.io/v2 APIGroupDiscoveryList; /api holds only the unnamed core group", () => {
    const core = aggregatedDiscovery("core");
    expect(core).toMatchObject({ kind: "APIGroupDiscoveryList", apiVersion: "apidiscovery.k8s.io/v2", metadata: {} });
    expect(items(core)).toHaveLength(1);
    expect(items(core)[0]?.metadata).toEqual({});
    expect(versions(items(core)[0] ?? {}).map((v) => [v.version, v.freshness])).toEqual([["v1", "Current"]]);

    const apis = aggregatedDiscovery("apis");
    expect(items(apis).map((g) => (g.metadata as Obj).name)).toEqual(apiGroups().filter((g) => g.group !== "").map((g) => g.group));
  });

  it("lists every catalogued resource with kind, scope, singular, verbs, short names and categories", () => {
    const entries = aggregatedEntries();
    expect(entries.size).toBe(RESOURCES.length);
    for (const info of RESOURCES) {
      const r = entries.get(`${info.group}/${info.version}/${info.resource}`);
      expect(r, info.resource).toBeDefined();
      expect(r?.responseKind).toEqual({ group: info.group, version: info.version, kind: info.kind });
      expect(r?.scope).toBe(info.namespaced ? "Namespaced" : "Cluster");
      expect(r?.singularResource).toBe(info.singular);
      expect(r?.verbs).toEqual(info.verbs);
      expect(r?.shortNames ?? []).toEqual(info.shortNames);
      expect(r?.categories ?? []).toEqual(info.categories);
    }
    expect(entries.get("/v1/pods")?.shortNames).toEqual(["po"]);
    expect(entries.get("apps/v1/deployments")?.shortNames).toEqual(["deploy"]);
    expect(entries.get("apps/v1/deployments")?.categories).toEqual(["all"]);
  });

  it("describes subresources with their response kinds and verbs", () => {
    const entries = aggregatedEntries();
    expect(entries.get("/v1/pods")?.subresources).toEqual([
      { subresource: "binding", responseKind: { group: "", version: "v1", kind: "Binding" }, verbs: ["create"] },
      { subresource: "eviction", responseKind: { group: "policy", version: "v1", kind: "Eviction" }, verbs: ["create"] },
      { subresource: "exec", responseKind: { group: "", version: "v1", kind: "PodExecOptions" }, verbs: ["create", "get"] },
      { subresource: "log", responseKind: { group: "", version: "v1", kind: "Pod" }, verbs: ["get"] },
      { subresource: "status", responseKind: { group: "", version: "v1", kind: "Pod" }, verbs: ["get", "patch", "update"] },
    ]);
    expect(entries.get("apps/v1/deployments")?.subresources).toContainEqual({
      subresource: "scale",
      responseKind: { group: "autoscaling", version: "v1", kind: "Scale" },
      verbs: ["get", "patch", "update"],
    });
    expect(entries.get("/v1/namespaces")?.subresources).toContainEqual({
      subresource: "finalize",
      responseKind: { group: "", version: "v1", kind: "Namespace" },
      verbs: ["update"],
    });
  });

  it("v2beta1 has the same shape under its own apiVersion and content type", () => {
    const beta = aggregatedDiscovery("apis", "v2beta1");
    expect(beta.apiVersion).toBe("apidiscovery.k8s.io/v2beta1");
    expect(beta.items).toEqual(aggregatedDiscovery("apis").items);
    expect(aggregatedDiscoveryContentType("v2")).toBe(AGGREGATED_DISCOVERY_CONTENT_TYPE);
    expect(aggregatedDiscoveryContentType("v2beta1")).toBe("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList");
  });
});

describe("Accept negotiation", () => {
  const kubectl132 =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
  it.each([
    [kubectl132, "v2"],
    ["application/json; as=APIGroupDiscoveryList; v=v2; g=apidiscovery.k8s.io", "v2"],
    ["application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json", "v2beta1"],
    ["application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=0,application/json", undefined],
    ["application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList", undefined],
    ["application/json, */*", undefined],
    ["application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", undefined],
    ["", undefined],
    [undefined, undefined],
  ])("%s -> %s", (accept, want) => {
    expect(negotiateAggregatedDiscovery(accept)).toBe(want);
    expect(wantsAggregatedDiscovery(accept)).toBe(want !== undefined);
  });
});

describe("legacy discovery", () => {
  it("APIVersions and APIGroupList", () => {
    expect(legacyApiVersions("10.0.0.1:6443")).toEqual({
      kind: "APIVersions",
      versions: ["v1"],
      serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: "10.0.0.1:6443" }],
    });
    const list = legacyApiGroupList();
    expect(list).toMatchObject({ kind: "APIGroupList", apiVersion: "v1" });
    const groups = list.groups as Obj[];
    expect(groups.map((g) => g.name)).not.toContain("");
    expect(groups.find((g) => g.name === "apps")).toEqual({
      name: "apps",
      versions: [{ groupVersion: "apps/v1", version: "v1" }],
      preferredVersion: { groupVersion: "apps/v1", version: "v1" },
    });
    expect(legacyApiGroup("networking.k8s.io")).toMatchObject({ kind: "APIGroup", apiVersion: "v1", name: "networking.k8s.io" });
    expect(legacyApiGroup("nope.example.com")).toBeUndefined();
    expect(legacyApiGroup("")).toBeUndefined();
  });

  it("APIResourceList of every group version holds its resources, sorted by name", () => {
    for (const g of apiGroups()) {
      for (const v of g.versions) {
        const list = legacyResourceList(g.group, v);
        expect(list).toMatchObject({ kind: "APIResourceList", apiVersion: "v1", groupVersion: groupVersion({ group: g.group, version: v }) });
        const names = resources(list ?? {}).map((r) => String(r.name));
        expect(names).toEqual([...names].sort());
        for (const info of RESOURCES.filter((r) => r.group === g.group && r.version === v)) {
          expect(names).toContain(info.resource);
          for (const sub of info.subresources) expect(names).toContain(`${info.resource}/${sub}`);
        }
      }
    }
    expect(legacyResourceList("apps", "v2")).toBeUndefined();
    expect(legacyResourceList("nope", "v1")).toBeUndefined();
  });

  it("carries the entries kubectl drain and scale look for", () => {
    const core = resources(legacyResourceList("", "v1") ?? {});
    const byName = (n: string) => core.find((r) => r.name === n);
    expect(byName("pods")).toEqual({
      name: "pods",
      singularName: "pod",
      namespaced: true,
      kind: "Pod",
      verbs: ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
      shortNames: ["po"],
      categories: ["all"],
      storageVersionHash: storageVersionHash({ group: "", version: "v1", kind: "Pod" }),
    });
    expect(byName("pods/eviction")).toEqual({ name: "pods/eviction", singularName: "", namespaced: true, group: "policy", version: "v1", kind: "Eviction", verbs: ["create"] });
    expect(byName("pods/log")).toEqual({ name: "pods/log", singularName: "", namespaced: true, kind: "Pod", verbs: ["get"] });
    expect(byName("pods/binding")).toEqual({ name: "pods/binding", singularName: "", namespaced: true, kind: "Binding", verbs: ["create"] });
    expect(byName("namespaces/finalize")).toEqual({ name: "namespaces/finalize", singularName: "", namespaced: false, kind: "Namespace", verbs: ["update"] });
    const apps = resources(legacyResourceList("apps", "v1") ?? {});
    expect(apps.find((r) => r.name === "deployments/scale")).toEqual({
      name: "deployments/scale",
      singularName: "",
      namespaced: true,
      group: "autoscaling",
      version: "v1",
      kind: "Scale",
      verbs: ["get", "patch", "update"],
    });
  });

  it("storageVersionHash matches upstream's digest", () => {
    // Values served by real clusters for these built-in kinds.
    expect(storageVersionHash({ group: "", version: "v1", kind: "ConfigMap" })).toBe("qFsyl6wFWjQ=");
    expect(storageVersionHash({ group: "", version: "v1", kind: "Pod" })).toBe("xPOwRZ+Yhw8=");
  });
});
