// Kubernetes strategic merge patch (server side), following the semantics of
// k8s.io/apimachinery/pkg/util/strategicpatch (mergeMap / mergeSlice with MergeParallelList and
// IgnoreUnmatchedNulls), driven by our own schema table.

import { fieldOf, schemaFor, type FieldSchema, type StructSchema, type TypeRef } from "./schema.ts";
import { assertDepth, deepClone, describe, hasOwn, isObject, setKey, typeName, PatchError, type JsonObject } from "./util.ts";

const DIRECTIVE = "$patch";
const RETAIN_KEYS = "$retainKeys";
const SET_ORDER = "$setElementOrder";
const DELETE_PRIMITIVE = "$deleteFromPrimitiveList";

/**
 * Applies a strategic merge patch to `target` for a kind. Built-in kinds use the merge keys of our
 * schema table; unknown kinds/fields merge maps and replace lists. Pure.
 */
export function applyStrategicMergePatch(target: unknown, patch: unknown, type: TypeRef): unknown {
  return applyStrategicMergePatchWithSchema(target, patch, schemaFor(type));
}

/** Same as applyStrategicMergePatch with an explicit schema (undefined = no metadata). */
export function applyStrategicMergePatchWithSchema(target: unknown, patch: unknown, schema: StructSchema | undefined): unknown {
  if (!isObject(patch)) {
    throw new PatchError("BadRequest", `strategic merge patch must be a JSON object, got ${typeName(patch)}`);
  }
  assertDepth(target, "the target object");
  assertDepth(patch, "the strategic merge patch");
  const original = isObject(target) ? deepClone(target) : {};
  return mergeMap(original, deepClone(patch), schema, "");
}

function bad(path: string, msg: string): PatchError {
  return new PatchError("BadRequest", `invalid strategic merge patch at ${path === "" ? "the top level" : `"${path}"`}: ${msg}`);
}

const join = (path: string, key: string): string => (path === "" ? key : `${path}.${key}`);

/** Merges `patch` into `original` (both owned by us: may be mutated). */
function mergeMap(original: JsonObject | undefined, patch: JsonObject, schema: StructSchema | undefined, path: string): JsonObject {
  if (hasOwn(patch, DIRECTIVE)) {
    const directive = patch[DIRECTIVE];
    delete patch[DIRECTIVE];
    if (directive === "replace") return cleanMap(patch, schema, path);
    if (directive === "delete") return {};
    if (directive !== "merge") {
      throw bad(path, `unknown ${DIRECTIVE} directive ${describe(directive)} (expected replace, merge or delete)`);
    }
  }
  const out: JsonObject = original ?? {};

  applyRetainKeys(out, patch, path);
  applySetElementOrder(out, patch, schema, path);

  for (const rawKey of Object.keys(patch)) {
    const patchV = patch[rawKey];
    let key = rawKey;
    let isDeleteList = false;
    if (rawKey.startsWith(DELETE_PRIMITIVE)) {
      key = extractKey(rawKey, DELETE_PRIMITIVE, path);
      isDeleteList = true;
    }
    const field = fieldOf(schema, key);
    const here = join(path, key);

    if (patchV === null) {
      delete out[key];
      continue;
    }
    if (!hasOwn(out, key)) {
      if (isDeleteList) continue;
      if (isObject(patchV) && patchV[DIRECTIVE] === "delete") continue;
      setKey(out, key, clean(patchV, field, here));
      continue;
    }
    const origV = out[key];
    if (kindOf(origV) !== kindOf(patchV)) {
      if (!isDeleteList) setKey(out, key, clean(patchV, field, here));
      continue;
    }
    if (isObject(origV) && isObject(patchV)) {
      setKey(out, key, mergeMap(origV, patchV, field?.type, here));
    } else if (Array.isArray(origV) && Array.isArray(patchV)) {
      if (field?.merge || isDeleteList) {
        setKey(out, key, mergeSlice(origV, patchV, field, isDeleteList, here));
      } else {
        setKey(out, key, clean(patchV, field, here));
      }
    } else if (!isDeleteList) {
      setKey(out, key, patchV);
    }
  }
  return out;
}

function kindOf(v: unknown): "map" | "list" | "scalar" {
  return Array.isArray(v) ? "list" : isObject(v) ? "map" : "scalar";
}

function extractKey(rawKey: string, prefix: string, path: string): string {
  const i = rawKey.indexOf("/");
  if (i < 0 || rawKey.slice(0, i) !== prefix || i === rawKey.length - 1) {
    throw bad(path, `malformed directive key ${describe(rawKey)} (expected "${prefix}/<field>")`);
  }
  return rawKey.slice(i + 1);
}

/** A value being added where nothing was: drop nulls, process directives, never keep `$` keys. */
function clean(v: unknown, field: FieldSchema | undefined, path: string): unknown {
  if (Array.isArray(v)) {
    const out: unknown[] = [];
    for (const item of v) {
      if (isObject(item) && hasOwn(item, DIRECTIVE)) continue;
      out.push(isObject(item) ? mergeMap(undefined, item, field?.type, path) : item);
    }
    return out;
  }
  if (isObject(v)) return mergeMap(undefined, v, field?.type, path);
  return v;
}

function cleanMap(m: JsonObject, schema: StructSchema | undefined, path: string): JsonObject {
  return mergeMap(undefined, m, schema, path);
}

// --- $retainKeys -------------------------------------------------------------------------------------

function applyRetainKeys(original: JsonObject, patch: JsonObject, path: string): void {
  if (!hasOwn(patch, RETAIN_KEYS)) return;
  const list = patch[RETAIN_KEYS];
  delete patch[RETAIN_KEYS];
  if (!Array.isArray(list) || !list.every((x): x is string => typeof x === "string")) {
    throw bad(path, `${RETAIN_KEYS} must be a list of field names, got ${describe(list)}`);
  }
  const keep = new Set(list);
  for (const k of Object.keys(patch)) {
    if (patch[k] === null || k.startsWith(DELETE_PRIMITIVE) || k.startsWith(SET_ORDER)) continue;
    if (!keep.has(k)) {
      throw bad(path, `the patch sets "${k}" but ${RETAIN_KEYS} ${describe(list)} does not list it`);
    }
  }
  for (const k of Object.keys(original)) if (!keep.has(k)) delete original[k];
}

// --- $setElementOrder ------------------------------------------------------------------------------

function applySetElementOrder(original: JsonObject, patch: JsonObject, schema: StructSchema | undefined, path: string): void {
  for (const rawKey of Object.keys(patch)) {
    if (!rawKey.startsWith(SET_ORDER)) continue;
    const order = patch[rawKey];
    delete patch[rawKey];
    const key = extractKey(rawKey, SET_ORDER, path);
    const here = join(path, key);
    if (!Array.isArray(order)) throw bad(path, `${rawKey} must be a list, got ${typeName(order)}`);
    const field = fieldOf(schema, key);
    const mergeKey = field?.mergeKey ?? "";

    const origV = hasOwn(original, key) ? original[key] : undefined;
    const patchV = hasOwn(patch, key) ? patch[key] : undefined;
    if (origV !== undefined && !Array.isArray(origV)) throw bad(here, `${rawKey} applies to a list but the object has ${typeName(origV)}`);
    if (patchV !== undefined && patchV !== null && !Array.isArray(patchV)) {
      throw bad(here, `${rawKey} applies to a list but the patch has ${typeName(patchV)}`);
    }
    if (Array.isArray(patchV)) validateOrder(patchV, order, mergeKey, here);

    let merged: unknown[];
    if (Array.isArray(origV) && Array.isArray(patchV)) {
      merged = field?.merge ? mergeSlice(origV, patchV, field, false, here) : (clean(patchV, field, here) as unknown[]);
    } else if (Array.isArray(patchV)) {
      merged = clean(patchV, field, here) as unknown[];
    } else if (Array.isArray(origV)) {
      merged = origV;
    } else {
      if (patchV === null) delete patch[key];
      continue;
    }
    delete patch[key];

    const objects = merged.some(isObject) || order.some(isObject);
    if (objects && mergeKey === "") {
      original[key] = merged; // no identity to order by
      continue;
    }
    const inOrder = (item: unknown): boolean => indexOf(order, item, mergeKey, here) >= 0;
    const patchItems = merged.filter(inOrder);
    const serverOnly = merged.filter((x) => !inOrder(x));
    original[key] = normalizeOrder(patchItems, serverOnly, order, Array.isArray(origV) ? origV : [], mergeKey, here);
  }
}

/** The patch list (minus deletions) must appear in the same relative order as in $setElementOrder. */
function validateOrder(patchList: unknown[], order: unknown[], mergeKey: string, path: string): void {
  if (order.length === 0 || patchList.length === 0) return;
  const items = patchList.filter((x) => !(isObject(x) && hasOwn(x, DIRECTIVE)));
  let p = 0;
  let o = 0;
  while (p < items.length && o < order.length) {
    if (sameKey(items[p], order[o], mergeKey, path)) p++;
    o++;
  }
  if (p < items.length) {
    throw bad(path, `the order of the patch list ${describe(patchList)} does not match ${SET_ORDER} list ${describe(order)}`);
  }
}

// --- lists -------------------------------------------------------------------------------------------

function keyOf(item: unknown, mergeKey: string, path: string): unknown {
  if (mergeKey === "") return item;
  if (!isObject(item)) throw bad(path, `list item ${describe(item)} is not an object but the list merges by "${mergeKey}"`);
  if (!hasOwn(item, mergeKey)) throw bad(path, `list item ${describe(item)} does not have the merge key "${mergeKey}"`);
  return item[mergeKey];
}

function sameKey(a: unknown, b: unknown, mergeKey: string, path: string): boolean {
  return keyOf(a, mergeKey, path) === keyOf(b, mergeKey, path);
}

function indexOf(list: unknown[], item: unknown, mergeKey: string, path: string): number {
  const k = keyOf(item, mergeKey, path);
  for (let i = 0; i < list.length; i++) if (keyOf(list[i], mergeKey, path) === k) return i;
  return -1;
}

function elementKind(lists: unknown[][], path: string): "map" | "scalar" | "none" {
  let kind: "map" | "scalar" | "none" = "none";
  for (const l of lists) {
    for (const v of l) {
      if (Array.isArray(v)) throw bad(path, "lists of lists cannot be merged");
      const k = isObject(v) ? "map" : "scalar";
      if (kind === "none") kind = k;
      else if (kind !== k) throw bad(path, "list items mix objects and scalars");
    }
  }
  return kind;
}

function mergeSlice(original: unknown[], patch: unknown[], field: FieldSchema | undefined, isDeleteList: boolean, path: string): unknown[] {
  if (original.length === 0 && patch.length === 0) return original;
  const kind = elementKind([original, patch], path);
  if (kind !== "map") {
    if (isDeleteList) return original.filter((x) => !patch.includes(x));
    const merged: unknown[] = [];
    for (const v of [...original, ...patch]) if (!merged.includes(v)) merged.push(v);
    const patchItems = merged.filter((x) => patch.includes(x));
    const serverOnly = merged.filter((x) => !patch.includes(x));
    return normalizeOrder(patchItems, serverOnly, patch, original, "", path);
  }
  const mergeKey = field?.mergeKey ?? "";
  if (mergeKey === "") throw bad(path, "cannot merge a list of objects without a merge key");

  // Special elements: {$patch: delete, <key>: v} removes; {$patch: replace} replaces the whole list.
  let base = original;
  const plain: JsonObject[] = [];
  let replace = false;
  for (const v of patch) {
    if (!isObject(v)) throw bad(path, `list item ${describe(v)} is not an object`);
    if (!hasOwn(v, DIRECTIVE)) {
      plain.push(v);
      continue;
    }
    const directive = v[DIRECTIVE];
    if (directive === "delete") {
      if (!hasOwn(v, mergeKey)) throw bad(path, `${DIRECTIVE}: delete item ${describe(v)} does not have the merge key "${mergeKey}"`);
      const k = v[mergeKey];
      base = base.filter((x) => !(isObject(x) && x[mergeKey] === k));
    } else if (directive === "replace") {
      replace = true;
    } else if (directive === "merge") {
      const rest = { ...v };
      delete rest[DIRECTIVE];
      if (Object.keys(rest).length > 0) plain.push(rest);
    } else {
      throw bad(path, `unknown ${DIRECTIVE} directive ${describe(directive)} in list item (expected replace, merge or delete)`);
    }
  }
  if (replace) return plain.map((v) => mergeMap(undefined, v, field?.type, path));

  const merged = [...base];
  for (const v of plain) {
    const k = keyOf(v, mergeKey, path);
    const i = merged.findIndex((x) => isObject(x) && hasOwn(x, mergeKey) && x[mergeKey] === k);
    if (i >= 0) {
      const cur = merged[i];
      merged[i] = mergeMap(isObject(cur) ? cur : undefined, v, field?.type, path);
    } else {
      merged.push(mergeMap(undefined, v, field?.type, path));
    }
  }
  const inPatch = (x: unknown): boolean => indexOf(plain, x, mergeKey, path) >= 0;
  return normalizeOrder(merged.filter(inPatch), merged.filter((x) => !inPatch(x)), plain, base, mergeKey, path);
}

/**
 * Orders patch items by `patchOrder`, server-only items by `serverOrder`, then interleaves them the
 * way upstream's mergeSortedSlice does (relative order of both lists kept; live order breaks ties).
 */
function normalizeOrder(
  patchItems: unknown[],
  serverOnly: unknown[],
  patchOrder: unknown[],
  serverOrder: unknown[],
  mergeKey: string,
  path: string,
): unknown[] {
  const sortBy = (items: unknown[], order: unknown[]): unknown[] => {
    const idx = new Map<unknown, number>();
    items.forEach((it) => idx.set(it, indexOf(order, it, mergeKey, path)));
    const rank = (it: unknown): number => {
      const i = idx.get(it) ?? -1;
      return i < 0 ? Number.MAX_SAFE_INTEGER : i;
    };
    return [...items].sort((a, b) => rank(a) - rank(b));
  };
  const right = sortBy(patchItems, patchOrder);
  const left = sortBy(serverOnly, serverOrder);
  const out: unknown[] = [];
  let i = 0;
  let j = 0;
  while (i < left.length || j < right.length) {
    if (i >= left.length) out.push(right[j++]);
    else if (j >= right.length) out.push(left[i++]);
    else {
      const li = indexOf(serverOrder, left[i], mergeKey, path);
      const ri = indexOf(serverOrder, right[j], mergeKey, path);
      if (li >= 0 && ri >= 0 && li < ri) out.push(left[i++]);
      else out.push(right[j++]);
    }
  }
  return out;
}
