// REST handlers for resource requests: verbs and subresources, mapped onto the registry stores.

import type { IncomingMessage, ServerResponse } from "node:http";
import { stringify as toYaml } from "yaml";
import type { DeleteOptions, KubeObject, ResourceInfo } from "../api/index.ts";
import { checkObject, findResource, isVirtualResource, formatDecodeError, formatStrictError, groupVersion, hasSchema, unknownFieldWarnings } from "../api/index.ts";
import { ApiError, errors, successStatus } from "./errors.ts";
import { decodeObjectBody, parseJson, readBody } from "./body.ts";
import { decodeProtobufObject, isProtobufContentType } from "./protobuf/index.ts";
import { negotiate, type Negotiated } from "./negotiation.ts";
import { applyPatch, parsePatchBody, PatchError } from "../api/patch/index.ts";
import type { RequestInfo } from "./requestinfo.ts";
import type { Registry } from "./registry/registry.ts";
import { parseResourceVersion, storageToApiError, type ListOptions, type Store } from "./registry/store.ts";
import { WatchSink, type TableRenderer } from "./watchsink.ts";
import { toTable } from "./tables.ts";
import type { ApiserverMetrics } from "./metrics.ts";
import { proxyPodLog } from "./podlog.ts";
import { serveExec } from "./exec.ts";
import { EvictionREST } from "./registry/policy/eviction.ts";
import { certificateSigningRequestApprovalStrategy } from "./registry/certificates/certificatesigningrequests/strategy.ts";
import type { Logger } from "../client/index.ts";
import type { UserInfo } from "./auth.ts";

export interface Response {
  code: number;
  body: unknown;
}

export interface HandlerContext {
  req: IncomingMessage;
  res: ServerResponse;
  info: RequestInfo;
  query: URLSearchParams;
  registry: Registry;
  metrics: ApiserverMetrics;
  log: Logger;
  /** Aborted when the client goes away or the server stops. */
  signal: AbortSignal;
  /** Who asks (after authentication and impersonation). */
  user: UserInfo;
}

/** Handles one resource request. Returns a response to write, or undefined when it streamed its own. */
export async function handleResource(h: HandlerContext): Promise<Response | undefined> {
  const { info } = h;
  const res = findResource(info.group, info.version, info.resource);
  if (!res) {
    throw errors.pathNotFound();
  }
  if (!res.namespaced && info.namespace) throw errors.pathNotFound();
  if (isVirtualResource(res)) return handleVirtual(h, res);
  const store = h.registry.store(res.group, res.resource);
  if (info.subresource) return handleSubresource(h, res, store);
  const neg = negotiate(h.req.headers.accept);

  switch (info.verb) {
    case "get": {
      parseResourceVersion(h.query.get("resourceVersion") ?? undefined);
      const obj = await store.get(info.namespace, info.name);
      return { code: 200, body: render(neg, res, [obj], h.query, obj) };
    }
    case "list": {
      nonNegativeInt(h.query, "timeoutSeconds");
      const list = await store.list(info.namespace, listOptions(h.query));
      if (neg.table) {
        return {
          code: 200,
          body: toTable(res, list.items, {
            includeObject: includeObject(h.query),
            listMeta: { resourceVersion: list.metadata.resourceVersion, continue: list.metadata.continue, remainingItemCount: list.metadata.remainingItemCount },
          }),
        };
      }
      if (neg.partialMetadata) {
        return {
          code: 200,
          body: {
            kind: "PartialObjectMetadataList",
            apiVersion: "meta.k8s.io/v1",
            metadata: list.metadata,
            items: list.items.map((o) => ({ kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata })),
          },
        };
      }
      return { code: 200, body: list };
    }
    case "watch":
      await serveWatch(h, res, store, neg);
      return undefined;
    case "create": {
      if (info.name) throw errors.methodNotAllowed(`the server does not allow this method on the requested resource`);
      const body = await readBody(h.req);
      const obj = typedObject(h, decodeObjectBody(h.req.headers["content-type"], body), groupVersion(res), res.kind);
      checkTypeMeta(obj, res);
      checkNamespace(obj, res, info.namespace);
      const created = await store.create(info.namespace, obj, writeOptions(h));
      return { code: 201, body: render(neg, res, [created], h.query, created) };
    }
    case "update": {
      const body = await readBody(h.req);
      const obj = typedObject(h, decodeObjectBody(h.req.headers["content-type"], body), groupVersion(res), res.kind);
      checkTypeMeta(obj, res);
      checkNamespace(obj, res, info.namespace);
      checkName(obj, info.name);
      const r = await store.update(info.namespace, info.name, () => obj, writeOptions(h));
      return { code: r.created ? 201 : 200, body: render(neg, res, [r.obj], h.query, r.obj) };
    }
    case "patch": {
      const r = await patchResource(h, res, store, "");
      return { code: r.created ? 201 : 200, body: render(neg, res, [r.obj], h.query, r.obj) };
    }
    case "delete": {
      const options = await deleteOptions(h);
      const r = await store.delete(info.namespace, info.name, options, writeOptions(h));
      if (!r.deleted || store.strategy.returnDeletedObject) return { code: 200, body: r.obj };
      return {
        code: 200,
        body: successStatus({ name: info.name, group: res.group || undefined, kind: res.resource, uid: r.obj.metadata.uid }),
      };
    }
    case "deletecollection": {
      const options = await deleteOptions(h);
      const list = await store.deleteCollection(info.namespace, listOptions(h.query), options, writeOptions(h));
      return { code: 200, body: list };
    }
    default:
      throw errors.methodNotAllowed(`the server does not allow this method on the requested resource`);
  }
}

/** A create-only resource with no storage (a review): the registered handler answers from the request. */
async function handleVirtual(h: HandlerContext, res: ResourceInfo): Promise<Response> {
  const { info } = h;
  if (info.verb !== "create" || info.name || info.subresource) throw errors.methodNotAllowed(`the server does not allow this method on the requested resource`);
  const fn = h.registry.virtual(res.group, res.resource);
  if (!fn) throw errors.pathNotFound();
  const obj = typedObject(h, decodeObjectBody(h.req.headers["content-type"], await readBody(h.req)), groupVersion(res), res.kind);
  checkTypeMeta(obj, res);
  checkNamespace(obj, res, info.namespace);
  const opts = writeOptions(h);
  const out = await fn(obj, { user: h.user, namespace: info.namespace, dryRun: opts.dryRun });
  return { code: 201, body: { apiVersion: groupVersion(res), kind: res.kind, ...out } };
}

// ---- subresources -----------------------------------------------------------------------------

/**
 * A CSR's approval subresource: the same store and storage, with upstream's csrApprovalStrategy
 * (only Approved/Denied conditions change) as the prepareForUpdate/validateUpdate of the write.
 */
function withApprovalStrategy(h: HandlerContext, store: Store): Store {
  const strategy = certificateSigningRequestApprovalStrategy(store.strategy, () => h.registry.ctx.now());
  return Object.create(store, { strategy: { value: strategy } }) as Store;
}

async function handleSubresource(h: HandlerContext, res: ResourceInfo, store: Store): Promise<Response | undefined> {
  const { info } = h;
  const sub = info.subresource;
  // pods/exec is a connect subresource: no object of its own, a stream to the kubelet.
  const connect = sub === "exec" && res.resource === "pods";
  if (!res.subresources.includes(sub) || !info.name) throw errors.pathNotFound();
  const neg = negotiate(h.req.headers.accept);
  const notAllowed = () => errors.methodNotAllowed(`the server does not allow this method on the requested resource (${h.req.method} ${res.resource}/${sub})`);

  // approval (a CSR's) is written like status, with the rules of its own strategy (csrApprovalStrategy)
  if (sub === "status" || sub === "approval") {
    if (sub === "approval") store = withApprovalStrategy(h, store);
    switch (info.verb) {
      case "get": {
        const obj = await store.get(info.namespace, info.name);
        return { code: 200, body: obj };
      }
      case "update": {
        const obj = typedObject(h, decodeObjectBody(h.req.headers["content-type"], await readBody(h.req)), groupVersion(res), res.kind);
        checkTypeMeta(obj, res);
        checkNamespace(obj, res, info.namespace);
        checkName(obj, info.name);
        const r = await store.update(info.namespace, info.name, () => obj, { ...writeOptions(h), subresource: sub });
        return { code: 200, body: r.obj };
      }
      case "patch": {
        const r = await patchResource(h, res, store, sub);
        return { code: 200, body: r.obj };
      }
      default:
        throw notAllowed();
    }
  }

  if (sub === "scale") return handleScale(h, res, store, neg);

  const custom = h.registry.subresourceCreate(res.group, res.resource, sub);
  if (custom) {
    if (info.verb !== "create") throw notAllowed();
    const body = decodeObjectBody(h.req.headers["content-type"], await readBody(h.req));
    const opts = writeOptions(h);
    return { code: 201, body: await custom(info.name, body, { user: h.user, namespace: info.namespace, dryRun: opts.dryRun }) };
  }

  if (sub === "finalize" && res.resource === "namespaces") {
    if (info.verb !== "update") throw notAllowed();
    const obj = decodeObjectBody(h.req.headers["content-type"], await readBody(h.req));
    checkTypeMeta(obj, res);
    checkName(obj, info.name);
    const finalizers = (obj.spec as { finalizers?: string[] } | undefined)?.finalizers ?? [];
    const r = await store.update(
      "",
      info.name,
      (cur) => {
        if (!cur) throw errors.notFound(store.gr, info.name);
        const next = cur;
        next.spec = { ...((next.spec as object) ?? {}), finalizers };
        if (obj.metadata.resourceVersion) next.metadata.resourceVersion = obj.metadata.resourceVersion;
        return next;
      },
      { ...writeOptions(h), subresource: "finalize" },
    );
    return { code: 200, body: r.obj };
  }

  if (sub === "binding" && res.resource === "pods") {
    if (info.verb !== "create") throw notAllowed();
    const binding = typedObject(h, decodeObjectBody(h.req.headers["content-type"], await readBody(h.req)), "v1", "Binding");
    if (binding.kind !== undefined && binding.kind !== "Binding") throw errors.badRequest(`the body must be a Binding, not ${binding.kind}`);
    if (binding.metadata.name && binding.metadata.name !== info.name) {
      throw errors.badRequest(`the name of the object (${binding.metadata.name}) does not match the name on the URL (${info.name})`);
    }
    await bindPod(h, store, info.namespace, info.name, binding);
    return { code: 201, body: { ...successStatus(), code: 201 } };
  }

  if (sub === "eviction" && res.resource === "pods") {
    if (info.verb !== "create") throw notAllowed();
    const ev = typedObject(h, decodeObjectBody(h.req.headers["content-type"], await readBody(h.req)), "policy/v1", "Eviction");
    if (ev.kind !== undefined && ev.kind !== "Eviction") throw errors.badRequest(`the body must be an Eviction, not ${ev.kind}`);
    if (ev.metadata.name && ev.metadata.name !== info.name) {
      throw errors.badRequest(`name in URL does not match name in Eviction object`);
    }
    const options = (ev.deleteOptions ?? {}) as DeleteOptions;
    if (typeof options !== "object" || Array.isArray(options)) throw errors.badRequest("deleteOptions must be an object");
    const dryRun = writeOptions(h).dryRun || (Array.isArray(options.dryRun) && options.dryRun.length > 0);
    return new EvictionREST(h.registry).create(info.namespace, info.name, options, dryRun);
  }

  if (sub === "log" && res.resource === "pods") {
    if (info.verb !== "get") throw notAllowed();
    const pod = await store.get(info.namespace, info.name);
    const nodeName = (pod.spec as { nodeName?: string } | undefined)?.nodeName;
    const node = nodeName ? await h.registry.store("", "nodes").get("", nodeName).catch(() => undefined) : undefined;
    await proxyPodLog(h, pod, node);
    return undefined;
  }

  if (connect) {
    // GET (WebSocket) and POST (SPDY), as upstream's connect verbs.
    if (info.verb !== "get" && info.verb !== "create") throw notAllowed();
    const pod = await store.get(info.namespace, info.name);
    const nodeName = (pod.spec as { nodeName?: string } | undefined)?.nodeName;
    const node = nodeName ? await h.registry.store("", "nodes").get("", nodeName).catch(() => undefined) : undefined;
    await serveExec(h, pod, node);
    return undefined;
  }
  throw errors.pathNotFound();
}

async function bindPod(h: HandlerContext, store: Store, namespace: string, name: string, binding: KubeObject): Promise<void> {
  const target = binding.target as { kind?: string; name?: string } | undefined;
  if (!target?.name) {
    throw errors.invalid("", "Binding", name, [{ field: "target.name", type: "FieldValueRequired", message: "target.name: Required value" }]);
  }
  if (target.kind && target.kind !== "Node") {
    throw errors.invalid("", "Binding", name, [
      { field: "target.kind", type: "FieldValueNotSupported", message: `target.kind: Unsupported value: "${target.kind}": supported values: "Node"` },
    ]);
  }
  await store.update(
    namespace,
    name,
    (cur) => {
      if (!cur) throw errors.notFound(store.gr, name);
      const spec = (cur.spec ?? {}) as { nodeName?: string };
      if (cur.metadata.deletionTimestamp) throw errors.conflict(store.gr, name, `pod ${name} is being deleted, cannot be assigned to a host`);
      if (spec.nodeName) throw errors.conflict(store.gr, name, `pod ${name} is already assigned to node "${spec.nodeName}"`);
      if (binding.metadata.uid && binding.metadata.uid !== cur.metadata.uid) {
        throw errors.conflict(store.gr, name, `Precondition failed: UID in precondition: ${binding.metadata.uid}, UID in object meta: ${cur.metadata.uid}`);
      }
      spec.nodeName = target.name;
      cur.spec = spec;
      if (binding.metadata.annotations) cur.metadata.annotations = { ...cur.metadata.annotations, ...binding.metadata.annotations };
      type Condition = { type: string; status: string; lastTransitionTime?: string | null; lastProbeTime?: string | null };
      const status = (isObject(cur.status) ? cur.status : {}) as { conditions?: Condition[] };
      const conditions = (Array.isArray(status.conditions) ? status.conditions : []).filter((c) => !isObject(c) || c.type !== "PodScheduled");
      conditions.push({ type: "PodScheduled", status: "True", lastProbeTime: null, lastTransitionTime: h.registry.now() });
      status.conditions = conditions;
      cur.status = status;
      return cur;
    },
    { ...writeOptions(h), subresource: "binding" },
  );
}

/** autoscaling/v1 Scale for a deployment or replicaset. */
function toScale(obj: KubeObject): KubeObject {
  const spec = (obj.spec ?? {}) as { replicas?: number; selector?: { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] } };
  const status = (obj.status ?? {}) as { replicas?: number };
  return {
    kind: "Scale",
    apiVersion: "autoscaling/v1",
    metadata: {
      name: obj.metadata.name,
      namespace: obj.metadata.namespace,
      uid: obj.metadata.uid,
      resourceVersion: obj.metadata.resourceVersion,
      creationTimestamp: obj.metadata.creationTimestamp,
    },
    spec: { replicas: spec.replicas ?? 0 },
    status: { replicas: status.replicas ?? 0, selector: selectorString(spec.selector) },
  };
}

function selectorString(sel: { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] } | undefined): string {
  if (!sel) return "";
  const parts: string[] = [];
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) parts.push(`${k}=${v}`);
  for (const e of sel.matchExpressions ?? []) {
    const vals = [...(e.values ?? [])].sort().join(",");
    if (e.operator === "In") parts.push(`${e.key} in (${vals})`);
    else if (e.operator === "NotIn") parts.push(`${e.key} notin (${vals})`);
    else if (e.operator === "Exists") parts.push(e.key);
    else if (e.operator === "DoesNotExist") parts.push(`!${e.key}`);
  }
  return parts.sort().join(",");
}

async function handleScale(h: HandlerContext, res: ResourceInfo, store: Store, _neg: Negotiated): Promise<Response> {
  const { info } = h;
  const scaleType = { apiVersion: "autoscaling/v1", kind: "Scale" };
  if (info.verb === "get") return { code: 200, body: toScale(await store.get(info.namespace, info.name)) };
  if (info.verb !== "update" && info.verb !== "patch") {
    throw errors.methodNotAllowed(`the server does not allow this method on the requested resource (${h.req.method} ${res.resource}/scale)`);
  }
  let desired: (cur: KubeObject) => KubeObject;
  if (info.verb === "update") {
    const scale = typedObject(h, decodeObjectBody(h.req.headers["content-type"], await readBody(h.req)), "autoscaling/v1", "Scale");
    if (scale.kind !== undefined && scale.kind !== "Scale") throw errors.badRequest(`the body must be a Scale, not ${scale.kind}`);
    checkName(scale, info.name);
    desired = () => scale;
  } else {
    const patch = readPatch(h.req.headers["content-type"], await readBody(h.req));
    desired = (cur) => {
      const patched = patchValue(toScale(cur), patch, scaleType, h.query);
      if (!isObject(patched)) throw errors.badRequest("the patched object is not a JSON object");
      return typedObject(h, patched as KubeObject, "autoscaling/v1", "Scale");
    };
  }
  const r = await store.update(
    info.namespace,
    info.name,
    (cur) => {
      if (!cur) throw errors.notFound(store.gr, info.name);
      const scale = desired(cur);
      const replicas = (scale.spec as { replicas?: unknown } | undefined)?.replicas;
      if (typeof replicas !== "number" || !Number.isInteger(replicas) || replicas < 0) {
        throw errors.invalid("autoscaling", "Scale", info.name, [
          { field: "spec.replicas", type: "FieldValueInvalid", message: `spec.replicas: Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0` },
        ]);
      }
      if (scale.metadata?.resourceVersion && scale.metadata.resourceVersion !== cur.metadata.resourceVersion) throw errors.conflict(store.gr, info.name);
      cur.spec = { ...((cur.spec as object) ?? {}), replicas };
      if (scale.metadata?.resourceVersion) cur.metadata.resourceVersion = scale.metadata.resourceVersion;
      return cur;
    },
    writeOptions(h),
  );
  return { code: 200, body: toScale(r.obj) };
}

// ---- patch ------------------------------------------------------------------------------------

function readPatch(contentType: string | undefined, body: Buffer) {
  try {
    return parsePatchBody(contentType ?? "", body);
  } catch (e) {
    throw patchToApiError(e);
  }
}

function patchToApiError(e: unknown): unknown {
  if (e instanceof PatchError || (typeof e === "object" && e !== null && (e as { name?: string }).name === "PatchError")) {
    const pe = e as PatchError;
    switch (pe.reason) {
      case "UnsupportedMediaType":
        return errors.unsupportedMediaType(pe.message);
      case "Conflict":
        return new ApiError(409, "Conflict", pe.message);
      case "Invalid":
        return new ApiError(422, "Invalid", pe.message);
      default:
        return errors.badRequest(pe.message);
    }
  }
  return e;
}

function patchValue(target: unknown, patch: ReturnType<typeof parsePatchBody>, type: { apiVersion: string; kind: string }, query: URLSearchParams): unknown {
  try {
    return applyPatch(target, patch, type, { fieldManager: query.get("fieldManager") ?? undefined });
  } catch (e) {
    throw patchToApiError(e);
  }
}

async function patchResource(h: HandlerContext, res: ResourceInfo, store: Store, subresource: string): Promise<{ obj: KubeObject; created: boolean }> {
  const { info } = h;
  const patch = readPatch(h.req.headers["content-type"], await readBody(h.req));
  const type = { apiVersion: groupVersion(res), kind: res.kind };
  if (patch.patchType === "apply") {
    if (!h.query.get("fieldManager")) throw errors.badRequest("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch");
    const applied = patch.patch as KubeObject;
    if (typeof applied !== "object" || applied === null || Array.isArray(applied)) throw errors.badRequest("the apply configuration must be an object");
    checkTypeMeta(applied, res, true);
    if (applied.metadata && typeof applied.metadata === "object") {
      checkNamespace(applied, res, info.namespace);
      checkName(applied, info.name);
    }
  }
  return store.update(
    info.namespace,
    info.name,
    (cur) => {
      if (!cur) {
        if (patch.patchType !== "apply") throw errors.notFound(store.gr, info.name);
        const created = typedObject(h, patchValue(undefined, patch, type, h.query) as KubeObject, type.apiVersion, type.kind);
        created.metadata ??= {};
        created.metadata.name = info.name;
        return created;
      }
      const next = patchValue(cur, patch, type, h.query);
      if (typeof next !== "object" || next === null || Array.isArray(next)) throw errors.badRequest("the patched object is not a JSON object");
      const obj = typedObject(h, next as KubeObject, type.apiVersion, type.kind);
      if (typeof obj.metadata !== "object" || obj.metadata === null) throw errors.badRequest("metadata must be an object after the patch");
      if (obj.apiVersion !== type.apiVersion || obj.kind !== type.kind) {
        throw errors.badRequest(`the patch changed apiVersion or kind: ${String(obj.apiVersion)}/${String(obj.kind)}`);
      }
      // A resourceVersion in the patch is a precondition; otherwise the patch applies to whatever is current.
      return obj;
    },
    { ...writeOptions(h), subresource: subresource || undefined, forceAllowCreate: patch.patchType === "apply" },
  );
}

// ---- watch ------------------------------------------------------------------------------------

async function serveWatch(h: HandlerContext, res: ResourceInfo, store: Store, neg: Negotiated): Promise<void> {
  const q = h.query;
  const timeoutSeconds = q.get("timeoutSeconds");
  let timeoutMs = 30 * 60 * 1000 + Math.floor(Math.random() * 30 * 60 * 1000); // 30–60 min, as upstream
  if (timeoutSeconds !== null) {
    if (!/^\d{1,9}$/.test(timeoutSeconds)) throw errors.badRequest(`timeoutSeconds: Invalid value: "${timeoutSeconds}": must be a non-negative integer`);
    timeoutMs = Number(timeoutSeconds) * 1000;
  }
  if (h.info.name) {
    // GET .../pods/x?watch=1: a watch on one object.
    const fs = q.get("fieldSelector");
    q.set("fieldSelector", fs ? `${fs},metadata.name=${h.info.name}` : `metadata.name=${h.info.name}`);
  }
  const ac = new AbortController();
  const watch = store.prepareWatch(
    h.info.namespace,
    {
      labelSelector: q.get("labelSelector") ?? undefined,
      fieldSelector: q.get("fieldSelector") ?? undefined,
      resourceVersion: q.get("resourceVersion") ?? undefined,
      allowWatchBookmarks: q.get("allowWatchBookmarks") === "true" || q.get("allowWatchBookmarks") === "1",
    },
    ac.signal,
  ); // bad selectors and resourceVersions throw here, before the response starts
  const table = neg.table ? tableRenderer(res, includeObject(q)) : undefined;

  const out = h.res;
  out.writeHead(200, { "Content-Type": "application/json", "Cache-Control": "no-cache, private", "Transfer-Encoding": "chunked" });
  out.flushHeaders();
  h.metrics.registeredWatchers.inc({ group: res.group, version: res.version, kind: res.kind });
  const counter = h.metrics.watchEvents.labels({ group: res.group, version: res.version, kind: res.kind });
  const sink = new WatchSink(out, store, counter, table);

  const onAbort = () => ac.abort();
  h.signal.addEventListener("abort", onAbort);
  const timer = setTimeout(onAbort, timeoutMs);
  ac.signal.addEventListener("abort", () => sink.end());
  try {
    await watch.start(sink);
    const err = await sink.done;
    if (err !== undefined && sink.stalled) {
      // A client that stopped reading: an ERROR event would only queue behind what it does not
      // read, and the connection would hold that backlog for as long as the client likes.
      h.log.warn({ resource: res.resource, unsentBytes: out.writableLength }, "watcher too slow: closing its connection");
      out.destroy();
    } else if (err !== undefined && !ac.signal.aborted) {
      const e = storageToApiError(err, store.gr);
      if (!(e instanceof ApiError)) h.log.error({ err: e }, "watch failed");
      const status = e instanceof ApiError ? e.toStatus() : errors.internal((e as Error).message).toStatus();
      sink.writeLine(`{"type":"ERROR","object":${JSON.stringify(status)}}\n`);
    }
  } finally {
    clearTimeout(timer);
    h.signal.removeEventListener("abort", onAbort);
    ac.abort();
    sink.close();
    out.end();
  }
}

/** A Table watch (kubectl get -w): each event's object as a one-row Table, headers in the first only. */
function tableRenderer(info: ResourceInfo, include: "None" | "Metadata" | "Object"): TableRenderer {
  return (obj, omitHeaders) => toTable(info, [obj], { includeObject: include, omitHeaders });
}

// ---- helpers ----------------------------------------------------------------------------------

/**
 * Decodes an object as the apiserver's typed decoder would: a wrong JSON type is a 400; unknown
 * fields are rejected with fieldValidation=Strict, reported as Warning headers with Warn (the
 * default), and dropped in every case but Strict. Returns the object with unknown fields removed.
 */
function typedObject<T>(h: HandlerContext, obj: T, apiVersion: string, kind: string): T {
  if (!hasSchema(apiVersion, kind)) return obj;
  const r = checkObject(obj, apiVersion, kind, { strict: true });
  if (r.errors.length) throw errors.badRequest(formatDecodeError(kind, apiVersion, r.errors));
  if (r.unknownFields.length) {
    // protobuf: upstream cannot see unknown fields in a protobuf body and never fails or warns under any
    // fieldValidation ("strict decoding is unsupported for protobuf"); its fields are dropped as with Ignore
    const protobuf = isProtobufContentType(h.req.headers["content-type"] ?? "");
    const mode = protobuf ? "Ignore" : h.query.get("fieldValidation") || "Warn";
    if (mode === "Strict") throw errors.badRequest(formatStrictError(r.unknownFields));
    if (mode === "Warn" && !h.res.headersSent) {
      const prev = h.res.getHeader("Warning");
      const list = Array.isArray(prev) ? prev : prev ? [String(prev)] : [];
      // A field name may hold any character; a header carries bytes. As Go writes them: UTF-8 on the
      // wire (a header string in Node is sent as latin1, one byte per character).
      const warnings = unknownFieldWarnings(r.unknownFields).map((w) => Buffer.from(`299 - ${JSON.stringify(w)}`, "utf8").toString("latin1"));
      h.res.setHeader("Warning", [...list, ...warnings]);
    }
  }
  return r.pruned as T;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function includeObject(q: URLSearchParams): "None" | "Metadata" | "Object" {
  const v = q.get("includeObject");
  if (v === "None" || v === "Object" || v === "Metadata") return v;
  if (v !== null && v !== "") throw errors.badRequest(`includeObject: Unsupported value: "${v}": supported values: "None", "Metadata", "Object"`);
  return "Metadata";
}

function render(neg: Negotiated, res: ResourceInfo, objs: KubeObject[], q: URLSearchParams, single: KubeObject): unknown {
  if (neg.table) return toTable(res, objs, { includeObject: includeObject(q) });
  if (neg.partialMetadata) return { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: single.metadata };
  return single;
}

function nonNegativeInt(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  if (!/^\d{1,15}$/.test(v)) throw errors.badRequest(`${name}: Invalid value: "${v}": must be a non-negative integer`);
  return Number(v);
}

export function listOptions(q: URLSearchParams): ListOptions {
  const limit = nonNegativeInt(q, "limit");
  return {
    labelSelector: q.get("labelSelector") ?? undefined,
    fieldSelector: q.get("fieldSelector") ?? undefined,
    limit: limit || undefined,
    continue: q.get("continue") ?? undefined,
    resourceVersion: q.get("resourceVersion") ?? undefined,
    resourceVersionMatch: q.get("resourceVersionMatch") ?? undefined,
  };
}

function writeOptions(h: HandlerContext): { dryRun: boolean; fieldManager?: string; user: UserInfo } {
  return { ...queryWriteOptions(h.query), user: h.user };
}

function queryWriteOptions(q: URLSearchParams): { dryRun: boolean; fieldManager?: string } {
  const fm = q.get("fieldManager");
  if (fm !== null && (fm.length > 128 || /[^\x20-\x7e]/.test(fm))) {
    throw errors.badRequest(`fieldManager: Invalid value: "${fm.slice(0, 140)}": must be no more than 128 printable characters`);
  }
  const dry = q.getAll("dryRun");
  for (const d of dry) if (d !== "All") throw errors.badRequest(`dryRun: Unsupported value: "${d}": supported values: "All"`);
  const fv = q.get("fieldValidation");
  if (fv !== null && fv !== "" && fv !== "Ignore" && fv !== "Warn" && fv !== "Strict") {
    throw errors.badRequest(`fieldValidation: Unsupported value: "${fv}": supported values: "Ignore", "Warn", "Strict"`);
  }
  return { dryRun: dry.length > 0, fieldManager: q.get("fieldManager") ?? undefined };
}

async function deleteOptions(h: HandlerContext): Promise<DeleteOptions> {
  const body = await readBody(h.req);
  let opts: DeleteOptions = {};
  const ct = (h.req.headers["content-type"] ?? "").toLowerCase();
  if (body.length > 0 && isProtobufContentType(ct)) {
    // client-go's typed clients (kubectl drain's DELETE fallback) send DeleteOptions as protobuf
    let decoded: Record<string, unknown>;
    try {
      decoded = decodeProtobufObject(body);
    } catch (e) {
      throw errors.badRequest(`the request body is not a valid protobuf object: ${(e as Error).message}`);
    }
    const { apiVersion, kind, ...fields } = decoded;
    if (kind !== "DeleteOptions") throw errors.badRequest(`the request body is a ${String(apiVersion)} ${String(kind)}, not a DeleteOptions`);
    opts = typedObject(h, fields as DeleteOptions, "v1", "DeleteOptions");
  } else if (body.length > 0) {
    const v = parseJson(body.toString("utf8"));
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw errors.badRequest("DeleteOptions must be a JSON object");
    opts = typedObject(h, v as DeleteOptions, "v1", "DeleteOptions");
  }
  const q = h.query;
  const grace = q.get("gracePeriodSeconds");
  if (grace !== null) {
    if (!/^-?\d+$/.test(grace)) throw errors.badRequest(`gracePeriodSeconds: Invalid value: "${grace}": must be an integer`);
    opts.gracePeriodSeconds = Number(grace);
  }
  const pp = q.get("propagationPolicy");
  if (pp !== null) opts.propagationPolicy = pp as DeleteOptions["propagationPolicy"];
  const od = q.get("orphanDependents");
  if (od !== null) opts.orphanDependents = od === "true";
  if (opts.propagationPolicy !== undefined && !["Orphan", "Background", "Foreground"].includes(opts.propagationPolicy)) {
    throw errors.badRequest(`DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "${String(opts.propagationPolicy)}": supported values: "Foreground", "Background", "Orphan"`);
  }
  if (opts.gracePeriodSeconds !== undefined && (typeof opts.gracePeriodSeconds !== "number" || opts.gracePeriodSeconds < 0)) {
    if (typeof opts.gracePeriodSeconds !== "number") throw errors.badRequest("gracePeriodSeconds must be a number");
    opts.gracePeriodSeconds = 0;
  }
  if (opts.preconditions !== undefined && (typeof opts.preconditions !== "object" || opts.preconditions === null)) {
    throw errors.badRequest("preconditions must be an object");
  }
  return opts;
}

/** The body's apiVersion/kind must be the path's (or absent, then defaulted from the path). */
function checkTypeMeta(obj: KubeObject, res: ResourceInfo, required = false): void {
  const gv = groupVersion(res);
  if (required && (!obj.apiVersion || !obj.kind)) throw errors.badRequest("apiVersion and kind must be set in an apply configuration");
  if (obj.apiVersion !== undefined && obj.apiVersion !== "" && obj.apiVersion !== gv) {
    throw errors.badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${gv})`);
  }
  if (obj.kind !== undefined && obj.kind !== "" && obj.kind !== res.kind) {
    throw errors.badRequest(`the kind in the data (${obj.kind}) does not match the expected kind (${res.kind}) for ${res.resource}`);
  }
  obj.apiVersion = gv;
  obj.kind = res.kind;
}

function checkNamespace(obj: KubeObject, res: ResourceInfo, namespace: string): void {
  const ns = obj.metadata?.namespace;
  if (ns !== undefined && typeof ns !== "string") throw errors.badRequest("metadata.namespace must be a string");
  if (!res.namespaced) return;
  if (ns && ns !== namespace) {
    throw errors.badRequest("the namespace of the provided object does not match the namespace sent on the request");
  }
}

function checkName(obj: KubeObject, name: string): void {
  const n = obj.metadata?.name;
  if (n !== undefined && typeof n !== "string") throw errors.badRequest("metadata.name must be a string");
  if (n && n !== name) throw errors.badRequest(`the name of the object (${n}) does not match the name on the URL (${name})`);
}

/** Writes a response body in the negotiated media type. */
export function serialize(body: unknown, mediaType: string): string {
  return mediaType === "application/yaml" ? toYaml(body) : JSON.stringify(body);
}
