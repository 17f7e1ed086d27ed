// A minimal OpenAPI v3 description of the API, enough for kubectl's write paths.
//
// `kubectl create -f` / `apply` validate by default. kubectl 1.32 first reads `GET /openapi/v3` (the index)
// and then the group-version document named there; if the PATCH operation of the object's GVK (found by its
// `x-kubernetes-group-version-kind` extension) has a `fieldValidation` query parameter, kubectl trusts
// server-side validation and sends `fieldValidation=Strict` instead of validating against schemas itself
// (which would need the protobuf /openapi/v2). See KUBECTL.md §4.
//
// Deliberately absent: PATCH request bodies. If a PATCH operation lists `application/strategic-merge-patch+json`,
// client-side apply computes its patch from the v3 schemas, and these schemas are permissive placeholders
// (type object, unknown fields preserved), so it would lose merge keys. Without a request body kubectl
// falls back to its compiled-in types for built-in kinds.

import { createHash } from "node:crypto";
import { apiGroups, RESOURCES, type ResourceInfo } from "../api/resources.ts";

export type JsonObject = Record<string, unknown>;

/** The server version reported in `info.version`. */
const SERVER_VERSION = "v1.32.4";

/** "api/v1" for the core group, "apis/apps/v1" for a named one. */
export function openapiGroupVersionPath(info: Pick<ResourceInfo, "group" | "version">): string {
  return info.group === "" ? `api/${info.version}` : `apis/${info.group}/${info.version}`;
}

/** Upstream's definition name for a kind: io.k8s.api.core.v1.Pod, io.k8s.api.networking.v1.Ingress. */
export function schemaName(info: Pick<ResourceInfo, "group" | "version" | "kind">): string {
  const pkg = info.group === "" ? "core" : (info.group.split(".")[0] ?? info.group);
  return `io.k8s.api.${pkg}.${info.version}.${info.kind}`;
}

/** The operationId fragment upstream uses: CoreV1, AppsV1, NetworkingV1, CoordinationV1. */
function opGroup(info: Pick<ResourceInfo, "group" | "version">): string {
  const g = info.group === "" ? "core" : (info.group.split(".")[0] ?? info.group);
  const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
  return cap(g) + cap(info.version);
}

function gvk(info: ResourceInfo): JsonObject {
  return { group: info.group, version: info.version, kind: info.kind };
}

function queryParam(name: string, description: string, type: "string" | "boolean" | "integer" = "string"): JsonObject {
  return { name, in: "query", description, schema: { type, uniqueItems: true } };
}

function pathParam(name: string, description: string): JsonObject {
  return { name, in: "path", description, required: true, schema: { type: "string", uniqueItems: true } };
}

const P = {
  pretty: queryParam(
    "pretty",
    "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).",
  ),
  dryRun: queryParam(
    "dryRun",
    "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
  ),
  fieldManager: queryParam(
    "fieldManager",
    "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
  ),
  fieldValidation: queryParam(
    "fieldValidation",
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.",
  ),
  force: queryParam(
    "force",
    "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
    "boolean",
  ),
  gracePeriodSeconds: queryParam(
    "gracePeriodSeconds",
    "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately.",
    "integer",
  ),
  propagationPolicy: queryParam(
    "propagationPolicy",
    "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. The default policy is decided by the existing finalizer set in the metadata.finalizers and the resource-specific default policy. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground.",
  ),
  labelSelector: queryParam("labelSelector", "A selector to restrict the list of returned objects by their labels. Defaults to everything."),
  fieldSelector: queryParam("fieldSelector", "A selector to restrict the list of returned objects by their fields. Defaults to everything."),
  limit: queryParam("limit", "limit is a maximum number of responses to return for a list call.", "integer"),
  continue: queryParam("continue", "The continue option should be set when retrieving more results from the server."),
  resourceVersion: queryParam("resourceVersion", "resourceVersion sets a constraint on what resource versions a request may be served from."),
  timeoutSeconds: queryParam("timeoutSeconds", "Timeout for the list/watch call.", "integer"),
  watch: queryParam("watch", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.", "boolean"),
  allowWatchBookmarks: queryParam("allowWatchBookmarks", "allowWatchBookmarks requests watch events with type \"BOOKMARK\".", "boolean"),
  name: (info: ResourceInfo) => pathParam("name", `name of the ${info.kind}`),
  namespace: pathParam("namespace", "object name and auth scope, such as for teams and projects"),
};

const JSON_MEDIA = ["application/json", "application/yaml"];

function responses(ref: string, codes: string[]): JsonObject {
  const descriptions: Record<string, string> = { "200": "OK", "201": "Created", "202": "Accepted" };
  const out: JsonObject = {};
  for (const code of codes) {
    const content: JsonObject = {};
    for (const media of JSON_MEDIA) content[media] = { schema: { $ref: ref } };
    out[code] = { description: descriptions[code] ?? code, content };
  }
  out["401"] = { description: "Unauthorized" };
  return out;
}

function operation(
  info: ResourceInfo,
  verb: string,
  action: string,
  parameters: JsonObject[],
  responseRef: string,
  codes: string[],
  requestBodyRef?: string,
): JsonObject {
  const pkg = info.group === "" ? "core" : (info.group.split(".")[0] ?? info.group);
  const op: JsonObject = {
    tags: [`${pkg}_${info.version}`],
    description: `${verb} the specified ${info.kind}`,
    operationId: `${verb}${opGroup(info)}${info.namespaced ? "Namespaced" : ""}${info.kind}`,
    parameters,
  };
  if (requestBodyRef) {
    op.requestBody = { content: { "*/*": { schema: { $ref: requestBodyRef } } }, required: true };
  }
  op.responses = responses(responseRef, codes);
  op["x-kubernetes-action"] = action;
  op["x-kubernetes-group-version-kind"] = gvk(info);
  return op;
}

function pathsFor(info: ResourceInfo): Record<string, JsonObject> {
  const prefix = info.group === "" ? `/api/${info.version}` : `/apis/${info.group}/${info.version}`;
  const collection = info.namespaced ? `${prefix}/namespaces/{namespace}/${info.resource}` : `${prefix}/${info.resource}`;
  const itemRef = `#/components/schemas/${schemaName(info)}`;
  const listRef = `#/components/schemas/${schemaName(info)}List`;
  const statusRef = "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Status";
  const scopeParams = info.namespaced ? [P.namespace] : [];
  const verbs = new Set(info.verbs);

  const collectionOps: JsonObject = {};
  if (verbs.has("list")) {
    collectionOps.get = operation(
      info,
      "list",
      "list",
      [P.allowWatchBookmarks, P.continue, P.fieldSelector, P.labelSelector, P.limit, P.resourceVersion, P.timeoutSeconds, P.watch],
      listRef,
      ["200"],
    );
  }
  if (verbs.has("create")) {
    collectionOps.post = operation(info, "create", "post", [P.dryRun, P.fieldManager, P.fieldValidation], itemRef, ["200", "201", "202"], itemRef);
  }
  collectionOps.parameters = [...scopeParams, P.pretty];

  const itemOps: JsonObject = {};
  if (verbs.has("get")) itemOps.get = operation(info, "read", "get", [], itemRef, ["200"]);
  if (verbs.has("update")) {
    itemOps.put = operation(info, "replace", "put", [P.dryRun, P.fieldManager, P.fieldValidation], itemRef, ["200", "201"], itemRef);
  }
  if (verbs.has("delete")) {
    itemOps.delete = operation(info, "delete", "delete", [P.dryRun, P.gracePeriodSeconds, P.propagationPolicy], statusRef, ["200", "202"]);
  }
  if (verbs.has("patch")) {
    // No requestBody on purpose: see the header comment.
    itemOps.patch = operation(info, "patch", "patch", [P.dryRun, P.fieldManager, P.fieldValidation, P.force], itemRef, ["200", "201"]);
  }
  itemOps.parameters = [P.name(info), ...scopeParams, P.pretty];

  // create-only kinds (TokenReview, SubjectAccessReview, ...) have no item path, as upstream
  if (Object.keys(itemOps).length === 1) return { [collection]: collectionOps };
  return { [collection]: collectionOps, [`${collection}/{name}`]: itemOps };
}

function schemasFor(infos: ResourceInfo[]): Record<string, JsonObject> {
  const schemas: Record<string, JsonObject> = {};
  const preserve = { type: "object", "x-kubernetes-preserve-unknown-fields": true };
  for (const info of infos) {
    const name = schemaName(info);
    schemas[name] = {
      description: `${info.kind} (kubelab: permissive schema; the server validates the object).`,
      type: "object",
      properties: {
        apiVersion: { type: "string", description: "APIVersion defines the versioned schema of this representation of an object." },
        kind: { type: "string", description: "Kind is a string value representing the REST resource this object represents." },
        metadata: { ...preserve, description: "Standard object's metadata." },
      },
      "x-kubernetes-preserve-unknown-fields": true,
      "x-kubernetes-group-version-kind": [gvk(info)],
    };
    schemas[`${name}List`] = {
      description: `${info.listKind} is a list of ${info.kind}.`,
      type: "object",
      required: ["items"],
      properties: {
        apiVersion: { type: "string" },
        kind: { type: "string" },
        metadata: { ...preserve },
        items: { type: "array", items: { $ref: `#/components/schemas/${name}` } },
      },
      "x-kubernetes-group-version-kind": [{ group: info.group, version: info.version, kind: info.listKind }],
    };
  }
  schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Status"] = {
    description: "Status is a return value for calls that don't return other objects.",
    type: "object",
    "x-kubernetes-preserve-unknown-fields": true,
    "x-kubernetes-group-version-kind": [{ group: "", version: "v1", kind: "Status" }],
  };
  return schemas;
}

function normalizeGvPath(gvPath: string): string {
  return gvPath.replace(/^\/+/, "").replace(/^openapi\/v3\//, "").replace(/\?.*$/, "").replace(/\/+$/, "");
}

function buildDoc(gvPath: string): JsonObject | undefined {
  const infos = RESOURCES.filter((r) => openapiGroupVersionPath(r) === gvPath);
  if (infos.length === 0) return undefined;
  const paths: Record<string, JsonObject> = {};
  for (const info of infos) Object.assign(paths, pathsFor(info));
  return {
    openapi: "3.0.0",
    info: { title: "Kubernetes", version: SERVER_VERSION },
    paths,
    components: { schemas: schemasFor(infos) },
  };
}

interface CachedDoc {
  doc: JsonObject;
  json: string;
  hash: string;
}
const cache = new Map<string, CachedDoc>();

function cached(gvPath: string): CachedDoc | undefined {
  const key = normalizeGvPath(gvPath);
  let c = cache.get(key);
  if (!c) {
    const doc = buildDoc(key);
    if (!doc) return undefined;
    const json = JSON.stringify(doc);
    // Upstream's hash is the upper-case hex SHA-512 of the document; any stable digest works for clients.
    c = { doc, json, hash: createHash("sha512").update(json).digest("hex").toUpperCase() };
    cache.set(key, c);
  }
  return c;
}

/** Every group-version path the documents exist for, core first ("api/v1", "apis/apps/v1", ...). */
export function openapiGroupVersionPaths(): string[] {
  return apiGroups().flatMap((g) => g.versions.map((version) => openapiGroupVersionPath({ group: g.group, version })));
}

/** `GET /openapi/v3`: the index, naming each group-version document with its content hash. */
export function openapiV3Index(): JsonObject {
  const paths: Record<string, JsonObject> = {};
  for (const gv of openapiGroupVersionPaths()) {
    const c = cached(gv);
    if (c) paths[gv] = { serverRelativeURL: `/openapi/v3/${gv}?hash=${c.hash}` };
  }
  return { paths };
}

/**
 * `GET /openapi/v3/<gvPath>` ("api/v1", "apis/apps/v1"; a leading "/" or "/openapi/v3/" and a "?hash=" are
 * tolerated): the document, or undefined for an unknown group version. The same object is returned on every
 * call: treat it as read-only (serialize it, don't mutate it).
 */
export function openapiV3Doc(gvPath: string): JsonObject | undefined {
  return cached(gvPath)?.doc;
}

/** The hash of a group-version document as named in the index (for ETag / immutable caching), or undefined. */
export function openapiV3DocHash(gvPath: string): string | undefined {
  return cached(gvPath)?.hash;
}

/** The serialized document (exactly the bytes the hash covers), or undefined. */
export function openapiV3DocJson(gvPath: string): string | undefined {
  return cached(gvPath)?.json;
}
