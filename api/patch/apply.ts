// A merge-like server-side apply: the applied configuration is merged into the live object using the
// list-map keys of our schema table, and the field manager's Apply entry in metadata.managedFields is
// rewritten with the FieldsV1 set of the applied configuration. No ownership tracking / conflicts yet.

import { fieldOf, objectMeta, schemaFor, type FieldSchema, type StructSchema, type TypeRef } from "./schema.ts";
import { assertDepth, deepClone, describe, hasOwn, isObject, setKey, typeName, PatchError, type JsonObject } from "./util.ts";

/** Schema for kinds we do not know: only the embedded ObjectMeta is understood. */
const genericSchema: StructSchema = { fields: { metadata: { type: objectMeta } } };

/** Fields never tracked in managedFields (upstream's strip set). */
const STRIPPED_TOP = ["apiVersion", "kind"];
const STRIPPED_META = [
  "name",
  "namespace",
  "uid",
  "resourceVersion",
  "generation",
  "creationTimestamp",
  "deletionTimestamp",
  "deletionGracePeriodSeconds",
  "selfLink",
  "managedFields",
];

export interface ApplyOptions {
  /** Clock for managedFields[].time (tests). */
  now?: Date;
}

/**
 * Server-side apply of `applied` onto `live` (undefined when the object does not exist yet) for
 * `fieldManager`. Fields absent from `applied` are kept. Pure.
 */
export function applyServerSideApply(
  live: unknown | undefined,
  applied: unknown,
  type: TypeRef,
  fieldManager: string,
  options: ApplyOptions = {},
): unknown {
  if (!isObject(applied)) {
    throw new PatchError("BadRequest", `apply configuration must be an object, got ${typeName(applied)}`);
  }
  if (fieldManager === "") {
    throw new PatchError("BadRequest", "fieldManager is required for apply requests");
  }
  if (fieldManager.length > 128) {
    throw new PatchError("BadRequest", `fieldManager must be at most 128 characters, got ${fieldManager.length}`);
  }
  for (const [field, want] of [
    ["apiVersion", type.apiVersion],
    ["kind", type.kind],
  ] as const) {
    const got = applied[field];
    if (got !== undefined && got !== want) {
      throw new PatchError("BadRequest", `apply configuration has ${field} ${describe(got)} but the request is for ${describe(want)}`);
    }
  }
  assertDepth(applied, "the apply configuration");
  assertDepth(live, "the live object");

  const schema = schemaFor(type) ?? genericSchema;
  const cfg = deepClone(applied);
  const cfgMeta = cfg["metadata"];
  if (isObject(cfgMeta)) delete cfgMeta["managedFields"];

  const base: JsonObject = isObject(live) ? deepClone(live) : {};
  const liveManaged = isObject(base["metadata"]) ? base["metadata"]["managedFields"] : undefined;
  const result = mergeMap(base, cfg, schema);

  const entry = {
    manager: fieldManager,
    operation: "Apply",
    apiVersion: type.apiVersion,
    time: formatTime(options.now ?? new Date()),
    fieldsType: "FieldsV1",
    fieldsV1: fieldsV1(cfg, schema),
  };
  const managed = Array.isArray(liveManaged) ? [...liveManaged] : [];
  const i = managed.findIndex((m) => isObject(m) && m["manager"] === fieldManager && m["operation"] === "Apply");
  if (i >= 0) managed[i] = entry;
  else managed.push(entry);

  const meta: JsonObject = isObject(result["metadata"]) ? result["metadata"] : {};
  meta["managedFields"] = managed;
  result["metadata"] = meta;
  if (result["apiVersion"] === undefined) result["apiVersion"] = type.apiVersion;
  if (result["kind"] === undefined) result["kind"] = type.kind;
  return result;
}

/** RFC 3339 with second precision, as metav1.Time serialises. */
function formatTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

// --- merge -------------------------------------------------------------------------------------------

function mergeMap(live: JsonObject, cfg: JsonObject, schema: StructSchema | undefined): JsonObject {
  for (const k of Object.keys(cfg)) {
    const v = cfg[k];
    if (v === null) {
      delete live[k];
      continue;
    }
    const field = fieldOf(schema, k);
    setKey(live, k, hasOwn(live, k) ? mergeValue(live[k], v, field) : stripNulls(v));
  }
  return live;
}

function mergeValue(live: unknown, cfg: unknown, field: FieldSchema | undefined): unknown {
  if (isObject(live) && isObject(cfg) && !field?.atomic) return mergeMap(live, cfg, field?.type);
  if (Array.isArray(live) && Array.isArray(cfg)) {
    const keys = listKeys(field);
    if (keys && !field?.applyAtomic && cfg.every(isObject) && live.every(isObject)) {
      return mergeListMap(live, cfg, keys, field);
    }
    if (field?.merge && !field.mergeKey && !field.applyAtomic) {
      const out = [...live];
      for (const x of cfg) if (!out.some((y) => y === x)) out.push(x);
      return out;
    }
  }
  return stripNulls(cfg);
}

function listKeys(field: FieldSchema | undefined): readonly string[] | undefined {
  if (!field) return undefined;
  if (field.listMapKeys) return field.listMapKeys;
  return field.mergeKey ? [field.mergeKey] : undefined;
}

function itemKey(item: JsonObject, keys: readonly string[], field: FieldSchema | undefined): JsonObject {
  const out: JsonObject = {};
  for (const k of [...keys].sort()) {
    const v = hasOwn(item, k) ? item[k] : field?.keyDefaults?.[k];
    if (v !== undefined && v !== null) out[k] = v;
  }
  return out;
}

const keyString = (k: JsonObject): string => JSON.stringify(k);

function mergeListMap(live: JsonObject[], cfg: JsonObject[], keys: readonly string[], field: FieldSchema | undefined): JsonObject[] {
  const out = [...live];
  const index = new Map<string, number>();
  out.forEach((item, i) => index.set(keyString(itemKey(item, keys, field)), i));
  for (const item of cfg) {
    const k = keyString(itemKey(item, keys, field));
    const i = index.get(k);
    if (i === undefined) {
      index.set(k, out.length);
      out.push(stripNulls(item) as JsonObject);
    } else {
      out[i] = mergeMap(out[i], item, field?.type);
    }
  }
  return out;
}

function stripNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripNulls);
  if (isObject(v)) {
    const out: JsonObject = {};
    for (const k of Object.keys(v)) if (v[k] !== null) setKey(out, k, stripNulls(v[k]));
    return out;
  }
  return v;
}

// --- FieldsV1 ----------------------------------------------------------------------------------------

/** The FieldsV1 set of an applied configuration (apiVersion, kind and identity metadata excluded). */
export function fieldsV1(cfg: JsonObject, schema: StructSchema | undefined): JsonObject {
  const top: JsonObject = {};
  for (const k of Object.keys(cfg)) if (!STRIPPED_TOP.includes(k)) top[k] = cfg[k];
  const meta = top["metadata"];
  if (isObject(meta)) {
    const m: JsonObject = {};
    for (const k of Object.keys(meta)) if (!STRIPPED_META.includes(k)) m[k] = meta[k];
    if (Object.keys(m).length === 0) delete top["metadata"];
    else top["metadata"] = m;
  }
  return mapFields(top, schema, false);
}

function mapFields(obj: JsonObject, schema: StructSchema | undefined, freeForm: boolean): JsonObject {
  const out: JsonObject = {};
  for (const k of Object.keys(obj)) {
    const v = obj[k];
    const field = freeForm ? undefined : fieldOf(schema, k);
    const set = valueFields(v, field);
    // Map entries (not struct fields) are members themselves: "." marks them when they have children.
    if (freeForm && Object.keys(set).length > 0) set["."] = {};
    setKey(out, `f:${k}`, set);
  }
  return out;
}

function valueFields(v: unknown, field: FieldSchema | undefined): JsonObject {
  if (isObject(v)) {
    if (field?.atomic || Object.keys(v).length === 0) return {};
    return mapFields(v, field?.type, field?.freeForm ?? false);
  }
  if (Array.isArray(v)) {
    const keys = listKeys(field);
    if (keys && !field?.applyAtomic && v.every(isObject)) {
      const out: JsonObject = {};
      for (const item of v) {
        const k = `k:${keyString(itemKey(item, keys, field))}`;
        setKey(out, k, { ".": {}, ...mapFields(item, field?.type, false) });
      }
      return out;
    }
    if (field?.merge && !field.mergeKey && !field.applyAtomic) {
      const out: JsonObject = {};
      for (const item of v) setKey(out, `v:${JSON.stringify(item)}`, {});
      return out;
    }
  }
  return {};
}
