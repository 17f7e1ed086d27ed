// Turns a request path and method into what is being asked for, as the apiserver's RequestInfoFactory does.

export interface RequestInfo {
  /** True for /api/v1/... and /apis/<group>/<version>/... paths that name a resource. */
  isResourceRequest: boolean;
  path: string;
  /** get, list, watch, create, update, patch, delete, deletecollection (resource requests); the lower-case method otherwise. */
  verb: string;
  apiPrefix: "api" | "apis" | "";
  group: string;
  version: string;
  namespace: string;
  resource: string;
  subresource: string;
  name: string;
  /** Path segments after /api or /apis, for discovery routing. */
  parts: string[];
}

const NAMESPACE_SUBRESOURCES = new Set(["status", "finalize"]);

const METHOD_VERBS: Record<string, string> = {
  POST: "create",
  GET: "get",
  HEAD: "get",
  PUT: "update",
  PATCH: "patch",
  DELETE: "delete",
};

/**
 * Parses e.g. /api/v1/namespaces/default/pods/web/status or /apis/apps/v1/deployments.
 * Namespaced paths: /<prefix>/<gv>/namespaces/<ns>/<resource>[/<name>[/<subresource>]].
 * "/namespaces/<name>" alone is the namespaces resource itself.
 */
export function parseRequestInfo(method: string, path: string, query: URLSearchParams): RequestInfo {
  const info: RequestInfo = {
    isResourceRequest: false,
    path,
    verb: method.toLowerCase(),
    apiPrefix: "",
    group: "",
    version: "",
    namespace: "",
    resource: "",
    subresource: "",
    name: "",
    parts: [],
  };
  const segs = path.split("/").filter((s) => s.length > 0).map(safeDecode);
  if (segs.length === 0 || (segs[0] !== "api" && segs[0] !== "apis")) return info;
  info.apiPrefix = segs[0] as "api" | "apis";
  let rest = segs.slice(1);
  info.parts = rest;
  if (info.apiPrefix === "apis") {
    if (rest.length < 2) return info; // /apis, /apis/<group>
    info.group = rest[0];
    rest = rest.slice(1);
  }
  if (rest.length < 1) return info;
  info.version = rest[0];
  rest = rest.slice(1);
  if (rest.length === 0) return info; // group-version discovery

  info.isResourceRequest = true;
  info.verb = METHOD_VERBS[method.toUpperCase()] ?? method.toLowerCase();

  if (rest[0] === "namespaces" && rest.length > 1) {
    // A step after the namespace name that is not a namespace subresource names a resource in it.
    if (rest.length > 2 && !NAMESPACE_SUBRESOURCES.has(rest[2])) {
      info.namespace = rest[1];
      rest = rest.slice(2);
    }
  }
  info.resource = rest[0];
  if (rest.length > 1) info.name = rest[1];
  if (rest.length > 2) info.subresource = rest.slice(2).join("/");

  if (info.verb === "get" && !info.name) {
    const watch = query.get("watch");
    info.verb = watch === "true" || watch === "1" ? "watch" : "list";
  }
  if (info.verb === "delete" && !info.name) info.verb = "deletecollection";
  return info;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
