// API discovery documents, built from the resource catalogue (api/resources.ts).
//
// Two forms, as the real apiserver serves them:
// - aggregated discovery (`apidiscovery.k8s.io/v2` APIGroupDiscoveryList) on `GET /api` and `GET /apis`
//   when the Accept header asks for it. kubectl >= 1.30 asks for it and uses it only if the response's
//   Content-Type is exactly AGGREGATED_DISCOVERY_CONTENT_TYPE (otherwise it parses the body as legacy).
// - legacy discovery: APIVersions (`/api`), APIGroupList (`/apis`), APIGroup (`/apis/<g>`) and
//   APIResourceList (`/api/v1`, `/apis/<g>/<v>`). `kubectl drain` always reads `/api/v1` to look for
//   `pods/eviction`, so the legacy lists carry subresource entries too.

import { createHash } from "node:crypto";
import { apiGroups, groupVersion, RESOURCES, type ResourceInfo } from "../api/resources.ts";

export type JsonObject = Record<string, unknown>;

/** The Content-Type of an aggregated discovery (v2) response; kubectl checks it exactly. */
export const AGGREGATED_DISCOVERY_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
/** The Content-Type of the older v2beta1 aggregated discovery (clients 1.26 to 1.29 ask only for it). */
export const AGGREGATED_DISCOVERY_V2BETA1_CONTENT_TYPE =
  "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

export type AggregatedDiscoveryVersion = "v2" | "v2beta1";

interface GVK {
  group: string;
  version: string;
  kind: string;
}

/** What a subresource answers with and which verbs it accepts (as the real apiserver advertises them). */
function subresourceInfo(info: ResourceInfo, sub: string): { kind: GVK; verbs: string[] } {
  const self = { group: info.group, version: info.version, kind: info.kind };
  switch (sub) {
    case "status":
      return { kind: self, verbs: ["get", "patch", "update"] };
    case "scale":
      return { kind: { group: "autoscaling", version: "v1", kind: "Scale" }, verbs: ["get", "patch", "update"] };
    case "binding":
      return { kind: { group: "", version: "v1", kind: "Binding" }, verbs: ["create"] };
    case "eviction":
      return { kind: { group: "policy", version: "v1", kind: "Eviction" }, verbs: ["create"] };
    case "log":
      return { kind: { group: "", version: "v1", kind: "Pod" }, verbs: ["get"] };
    case "finalize":
      return { kind: { group: "", version: "v1", kind: "Namespace" }, verbs: ["update"] };
    case "exec":
    case "attach":
      return { kind: { group: "", version: "v1", kind: sub === "exec" ? "PodExecOptions" : "PodAttachOptions" }, verbs: ["create", "get"] };
    case "portforward":
      return { kind: { group: "", version: "v1", kind: "PodPortForwardOptions" }, verbs: ["create", "get"] };
    default:
      return { kind: self, verbs: ["get"] };
  }
}

function byName<T>(key: (x: T) => string): (a: T, b: T) => number {
  return (a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
}

function resourcesOf(group: string, version: string): ResourceInfo[] {
  return RESOURCES.filter((r) => r.group === group && r.version === version).sort(byName((r) => r.resource));
}

/**
 * The storage version hash upstream advertises (base64 of the first 8 bytes of sha256("group/version/kind")),
 * used by storage-version migrators to notice a change of storage version.
 */
export function storageVersionHash(info: Pick<ResourceInfo, "group" | "version" | "kind">): string {
  return createHash("sha256").update(`${info.group}/${info.version}/${info.kind}`).digest().subarray(0, 8).toString("base64");
}

// ---------------------------------------------------------------------------------------------
// Aggregated discovery.

function aggregatedResource(info: ResourceInfo): JsonObject {
  const out: JsonObject = {
    resource: info.resource,
    responseKind: { group: info.group, version: info.version, kind: info.kind },
    scope: info.namespaced ? "Namespaced" : "Cluster",
    singularResource: info.singular,
    verbs: [...info.verbs],
  };
  if (info.shortNames.length > 0) out.shortNames = [...info.shortNames];
  if (info.categories.length > 0) out.categories = [...info.categories];
  if (info.subresources.length > 0) {
    out.subresources = [...info.subresources].sort().map((sub) => {
      const s = subresourceInfo(info, sub);
      return { subresource: sub, responseKind: { ...s.kind }, verbs: [...s.verbs] };
    });
  }
  return out;
}

function aggregatedGroup(group: string, versions: string[]): JsonObject {
  return {
    metadata: group === "" ? {} : { name: group },
    versions: versions.map((version) => ({
      version,
      resources: resourcesOf(group, version).map(aggregatedResource),
      freshness: "Current",
    })),
  };
}

/**
 * The aggregated discovery document: `"core"` for `GET /api` (one item, the legacy group, no name),
 * `"apis"` for `GET /apis` (one item per named group). Serve it with AGGREGATED_DISCOVERY_CONTENT_TYPE
 * (or the v2beta1 type when `version` is "v2beta1"; the shape is the same).
 */
export function aggregatedDiscovery(which: "core" | "apis", version: AggregatedDiscoveryVersion = "v2"): JsonObject {
  const groups = apiGroups().filter((g) => (which === "core" ? g.group === "" : g.group !== ""));
  return {
    kind: "APIGroupDiscoveryList",
    apiVersion: `apidiscovery.k8s.io/${version}`,
    metadata: {},
    items: groups.map((g) => aggregatedGroup(g.group, g.versions)),
  };
}

/** The Content-Type to answer an aggregated discovery document of this version with. */
export function aggregatedDiscoveryContentType(version: AggregatedDiscoveryVersion): string {
  return version === "v2" ? AGGREGATED_DISCOVERY_CONTENT_TYPE : AGGREGATED_DISCOVERY_V2BETA1_CONTENT_TYPE;
}

/**
 * The aggregated discovery version an Accept header asks for, preferring v2, or undefined when the
 * client only accepts legacy discovery (plain `application/json`, `*\/*`, or nothing). A media range
 * with `q=0` is refused.
 */
export function negotiateAggregatedDiscovery(accept: string | undefined): AggregatedDiscoveryVersion | undefined {
  if (!accept) return undefined;
  const offered = new Set<string>();
  for (const range of accept.split(",")) {
    const [type, ...paramParts] = range.split(";").map((s) => s.trim());
    if (type?.toLowerCase() !== "application/json") continue;
    const params = new Map<string, string>();
    for (const p of paramParts) {
      const eq = p.indexOf("=");
      if (eq > 0) params.set(p.slice(0, eq).trim().toLowerCase(), p.slice(eq + 1).trim().replace(/^"|"$/g, ""));
    }
    const q = params.get("q");
    if (q !== undefined && Number(q) === 0) continue;
    if (params.get("g") !== "apidiscovery.k8s.io" || params.get("as") !== "APIGroupDiscoveryList") continue;
    const v = params.get("v");
    if (v === "v2" || v === "v2beta1") offered.add(v);
  }
  if (offered.has("v2")) return "v2";
  if (offered.has("v2beta1")) return "v2beta1";
  return undefined;
}

/** True when the Accept header asks for aggregated discovery (v2, or v2beta1; see negotiateAggregatedDiscovery). */
export function wantsAggregatedDiscovery(accept: string | undefined): boolean {
  return negotiateAggregatedDiscovery(accept) !== undefined;
}

// ---------------------------------------------------------------------------------------------
// Legacy discovery.

/** `GET /api` (legacy): APIVersions. */
export function legacyApiVersions(serverAddress: string): JsonObject {
  return {
    kind: "APIVersions",
    versions: apiGroups()
      .filter((g) => g.group === "")
      .flatMap((g) => g.versions),
    serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress }],
  };
}

function groupEntry(group: string, versions: string[]): JsonObject {
  const gvs = versions.map((version) => ({ groupVersion: `${group}/${version}`, version }));
  return { name: group, versions: gvs, preferredVersion: { ...gvs[0] } };
}

/** `GET /apis` (legacy): APIGroupList of the named groups, each with its preferred (first) version. */
export function legacyApiGroupList(): JsonObject {
  return {
    kind: "APIGroupList",
    apiVersion: "v1",
    groups: apiGroups()
      .filter((g) => g.group !== "")
      .map((g) => groupEntry(g.group, g.versions)),
  };
}

/** `GET /apis/<group>`: APIGroup, or undefined for an unknown (or the core) group. */
export function legacyApiGroup(group: string): JsonObject | undefined {
  const g = apiGroups().find((x) => x.group === group && x.group !== "");
  if (!g) return undefined;
  return { kind: "APIGroup", apiVersion: "v1", ...groupEntry(g.group, g.versions) };
}

function legacyResource(info: ResourceInfo): JsonObject {
  const out: JsonObject = {
    name: info.resource,
    singularName: info.singular,
    namespaced: info.namespaced,
    kind: info.kind,
    verbs: [...info.verbs],
  };
  if (info.shortNames.length > 0) out.shortNames = [...info.shortNames];
  if (info.categories.length > 0) out.categories = [...info.categories];
  out.storageVersionHash = storageVersionHash(info);
  return out;
}

function legacySubresource(info: ResourceInfo, sub: string): JsonObject {
  const s = subresourceInfo(info, sub);
  const out: JsonObject = { name: `${info.resource}/${sub}`, singularName: "", namespaced: info.namespaced };
  // group/version appear only when they differ from the list's group version (e.g. pods/eviction -> policy/v1).
  if (s.kind.group !== info.group || s.kind.version !== info.version) {
    out.group = s.kind.group;
    out.version = s.kind.version;
  }
  out.kind = s.kind.kind;
  out.verbs = [...s.verbs];
  return out;
}

/**
 * `GET /api/v1` (group "") or `GET /apis/<group>/<version>`: APIResourceList with every resource and its
 * subresources (`pods/status`, `pods/eviction`, ...), sorted by name as upstream does; undefined when the
 * group version is not served.
 */
export function legacyResourceList(group: string, version: string): JsonObject | undefined {
  const infos = resourcesOf(group, version);
  if (infos.length === 0) return undefined;
  const entries: JsonObject[] = [];
  for (const info of infos) {
    entries.push(legacyResource(info));
    for (const sub of [...info.subresources].sort()) entries.push(legacySubresource(info, sub));
  }
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: groupVersion({ group, version }),
    resources: entries,
  };
}
