// Structural schemas for request bodies, and the walker that decodes JSON against them the way
// Kubernetes' decoder (sigs.k8s.io/json, a case-sensitive encoding/json) does: wrong JSON types are
// errors phrased like Go's UnmarshalTypeError, unknown fields are collected with their paths (for
// fieldValidation=Strict/Warn) and pruned, []byte fields must be base64, integers must fit.

import { isValidQuantity, QUANTITY_FORMAT_ERROR } from "../quantity.ts";

// ---------------------------------------------------------------------------------------------
// Schema nodes

export type ScalarKind = "str" | "bool" | "int32" | "int64" | "float" | "bytes" | "intOrString" | "quantity" | "time" | "microtime" | "free";

export interface ScalarSchema {
  readonly t: ScalarKind;
}

export interface ArraySchema {
  readonly t: "arr";
  readonly of: Schema;
}

export interface MapSchema {
  readonly t: "map";
  readonly of: Schema;
}

export interface ObjectSchema {
  readonly t: "obj";
  /** The Go type, e.g. "v1.PodSpec"; the part after the dot names the struct in error messages. */
  readonly goType: string;
  readonly fields: ReadonlyMap<string, Schema>;
}

export interface RefSchema {
  readonly t: "ref";
  /** Resolved lazily so that schemas may refer to ones declared later (or to themselves). */
  readonly get: () => Schema;
}

export type Schema = ScalarSchema | ArraySchema | MapSchema | ObjectSchema | RefSchema;

/** The field table of an object schema, as written in the schema modules. */
export type Fields = Record<string, Schema>;

// ---------------------------------------------------------------------------------------------
// Combinators

export const str: ScalarSchema = { t: "str" };
export const bool: ScalarSchema = { t: "bool" };
export const int32: ScalarSchema = { t: "int32" };
export const int64: ScalarSchema = { t: "int64" };
export const float: ScalarSchema = { t: "float" };
/** A Go []byte: a base64 string on the wire (StdEncoding, padded). */
export const bytes: ScalarSchema = { t: "bytes" };
/** intstr.IntOrString: a string or an int32. */
export const intOrString: ScalarSchema = { t: "intOrString" };
/** resource.Quantity: a string or a number in quantity syntax. */
export const quantity: ScalarSchema = { t: "quantity" };
/** metav1.Time: an RFC 3339 string. */
export const time: ScalarSchema = { t: "time" };
/** metav1.MicroTime: an RFC 3339 string (upstream wants microseconds; any fraction is accepted here). */
export const microtime: ScalarSchema = { t: "microtime" };
/** Any JSON value (runtime.RawExtension, FieldsV1, JSON blobs). */
export const free: ScalarSchema = { t: "free" };

export function arr(of: Schema): ArraySchema {
  return { t: "arr", of };
}

/** A Go map[string]T. */
export function map(of: Schema): MapSchema {
  return { t: "map", of };
}

/** A Go struct; goType is "pkg.Name", e.g. "v1.Container". */
export function obj(goType: string, fields: Fields): ObjectSchema {
  return { t: "obj", goType, fields: new Map(Object.entries(fields)) };
}

/** A reference to a schema, either directly or through a thunk (for forward and recursive references). */
export function ref(s: Schema | (() => Schema)): Schema {
  return typeof s === "function" ? { t: "ref", get: s } : s;
}

/** The fields of an object schema, for inlining (Go embedded structs such as VolumeSource in Volume). */
export function fieldsOf(s: ObjectSchema): Fields {
  return Object.fromEntries(s.fields);
}

function resolve(s: Schema): Exclude<Schema, RefSchema> {
  let cur = s;
  for (let i = 0; cur.t === "ref"; i++) {
    if (i > 100) throw new Error("schema: unresolvable reference cycle");
    cur = cur.get();
  }
  return cur;
}

/** The Go type string of a schema, as encoding/json prints it in UnmarshalTypeError. */
export function goTypeOf(s: Schema): string {
  const r = resolve(s);
  switch (r.t) {
    case "obj":
      return r.goType;
    case "arr":
      return `[]${goTypeOf(r.of)}`;
    case "map":
      return `map[string]${goTypeOf(r.of)}`;
    case "str":
      return "string";
    case "bool":
      return "bool";
    case "int32":
      return "int32";
    case "int64":
      return "int64";
    case "float":
      return "float64";
    case "bytes":
      return "[]uint8";
    case "intOrString":
      return "intstr.IntOrString";
    case "quantity":
      return "resource.Quantity";
    case "time":
      return "v1.Time";
    case "microtime":
      return "v1.MicroTime";
    case "free":
      return "interface {}";
  }
}

// ---------------------------------------------------------------------------------------------
// The walker

export interface CheckResult {
  /** Decode errors (wrong JSON types, bad base64, out-of-range integers), first one first. */
  errors: string[];
  /** Paths of unknown fields in upstream's strict-decoding format, e.g. "spec.template.spec.containers[0].imagePullPolcy". */
  unknownFields: string[];
  /** A deep copy of the input with the unknown fields removed (the input is never mutated). */
  pruned: unknown;
}

interface Ctx {
  errors: string[];
  unknown: string[];
}

/** Position for error messages: the display path (with indices) and Go's (innermost struct, dotted field path). */
interface Pos {
  /** Path as in strict-decoding errors: "spec.containers[0].name". */
  path: string;
  /** encoding/json's Field: dotted, without indices or map keys. */
  goField: string;
  /** encoding/json's Struct: the innermost struct type's name. */
  goStruct: string;
}

/** The JSON type name encoding/json uses in "cannot unmarshal X". */
function jsonTypeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  switch (typeof v) {
    case "boolean":
      return "bool";
    case "number":
      return "number";
    case "string":
      return "string";
    case "object":
      return "object";
    default:
      return typeof v;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function typeError(ctx: Ctx, pos: Pos, value: string, s: Schema): void {
  const into = pos.goField ? `Go struct field ${pos.goStruct}.${pos.goField}` : "Go value";
  ctx.errors.push(`json: cannot unmarshal ${value} into ${into} of type ${goTypeOf(s)}`);
}

/** Assigns without invoking setters: keys such as "__proto__" stay plain data. */
function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** Deep copy of arbitrary JSON, iterative so that deeply nested blobs cannot exhaust the stack. */
export function cloneJSON(v: unknown): unknown {
  if (typeof v !== "object" || v === null) return v;
  const seen = new Map<object, unknown>();
  const root: unknown = Array.isArray(v) ? [] : {};
  seen.set(v, root);
  const work: [object, unknown][] = [[v, root]];
  while (work.length) {
    const [src, dst] = work.pop()!;
    if (Array.isArray(src)) {
      const out = dst as unknown[];
      for (let i = 0; i < src.length; i++) out[i] = child(src[i] as unknown);
    } else {
      const out = dst as Record<string, unknown>;
      for (const [k, x] of Object.entries(src)) {
        if (x !== undefined) setOwn(out, k, child(x));
      }
    }
  }
  return root;

  function child(x: unknown): unknown {
    if (typeof x !== "object" || x === null) return x;
    const known = seen.get(x);
    if (known !== undefined) return known;
    const c: unknown = Array.isArray(x) ? [] : {};
    seen.set(x, c);
    work.push([x, c]);
    return c;
  }
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-](\d{2}):(\d{2}))$/;

/** Whether s parses as Go's time.RFC3339 layout (fractional seconds allowed, as time.Parse does). */
export function isRFC3339(s: string): boolean {
  const m = RFC3339.exec(s);
  if (!m) return false;
  const [, , mo, d, h, mi, sec, , , zh, zm] = m;
  const year = Number(m[1]);
  const month = Number(mo);
  const day = Number(d);
  if (month < 1 || month > 12 || day < 1) return false;
  const dim = [31, year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  if (day > dim) return false;
  if (Number(h) > 23 || Number(mi) > 59 || Number(sec) > 59) return false;
  if (zh !== undefined && (Number(zh) > 23 || Number(zm) > 59)) return false;
  return true;
}

/**
 * Validates base64 as Go's base64.StdEncoding.DecodeString (after encoding/json strips nothing but
 * \r and \n are ignored by the decoder); returns the byte offset of the first error, or -1.
 */
export function base64ErrorOffset(s: string): number {
  let quantum = 0; // characters read in the current 4-character quantum
  let quantumStart = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "\r" || c === "\n") continue;
    if (quantum === 0) quantumStart = i;
    if (c === "=") {
      // Padding: only in positions 3 or 4 of a quantum, and nothing but padding/newlines after it.
      if (quantum < 2) return i;
      let j = i + 1;
      while (j < s.length && (s[j] === "\r" || s[j] === "\n")) j++;
      if (quantum === 2) {
        if (j >= s.length || s[j] !== "=") return j >= s.length ? quantumStart : j;
        j++;
        while (j < s.length && (s[j] === "\r" || s[j] === "\n")) j++;
      }
      return j < s.length ? j : -1;
    }
    if (!/[A-Za-z0-9+/]/.test(c)) return i;
    quantum = (quantum + 1) % 4;
  }
  return quantum === 0 ? -1 : quantumStart;
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const INT64_LIMIT = 2 ** 63;

/** Go's zero value of a schema's type as JSON, or null where Go's is nil (maps, slices, free-form). */
function zeroValue(s: Schema): unknown {
  const r = resolve(s);
  switch (r.t) {
    case "obj":
      return {};
    case "str":
      return "";
    case "bool":
      return false;
    case "float":
    case "int32":
    case "int64":
      return 0;
    default:
      return null;
  }
}

function walk(s: Schema, v: unknown, pos: Pos, ctx: Ctx): unknown {
  const r = resolve(s);
  // encoding/json: null is accepted for every Go type and leaves the zero value.
  if (v === null) return null;
  switch (r.t) {
    case "free":
      return cloneJSON(v);
    case "str":
      if (typeof v !== "string") typeError(ctx, pos, jsonTypeName(v), r);
      return v;
    case "bool":
      if (typeof v !== "boolean") typeError(ctx, pos, jsonTypeName(v), r);
      return v;
    case "float":
      if (typeof v !== "number") typeError(ctx, pos, jsonTypeName(v), r);
      else if (!Number.isFinite(v)) typeError(ctx, pos, `number ${String(v)}`, r);
      return v;
    case "int32":
    case "int64":
      if (typeof v !== "number") typeError(ctx, pos, jsonTypeName(v), r);
      else if (!isInt(v, r.t)) typeError(ctx, pos, `number ${String(v)}`, r);
      return v;
    case "bytes":
      if (typeof v !== "string") typeError(ctx, pos, jsonTypeName(v), r);
      else {
        const at = base64ErrorOffset(v);
        if (at >= 0) ctx.errors.push(`illegal base64 data at input byte ${at}`);
      }
      return v;
    case "intOrString":
      if (typeof v === "number") {
        if (!isInt(v, "int32")) ctx.errors.push(intstrError(pos, `number ${String(v)}`));
      } else if (typeof v !== "string") ctx.errors.push(intstrError(pos, jsonTypeName(v)));
      return v;
    case "quantity":
      if ((typeof v !== "string" && typeof v !== "number") || !isValidQuantity(v)) {
        ctx.errors.push(`${QUANTITY_FORMAT_ERROR}${where(pos)}`);
      }
      return v;
    case "time":
    case "microtime":
      if (typeof v !== "string") {
        ctx.errors.push(`json: cannot unmarshal ${jsonTypeName(v)} into Go value of type string${where(pos)}`);
      } else if (!isRFC3339(v)) {
        const layout = r.t === "time" ? "2006-01-02T15:04:05Z07:00" : "2006-01-02T15:04:05.000000Z07:00";
        ctx.errors.push(`parsing time ${JSON.stringify(v)} as ${JSON.stringify(layout)}: cannot parse ${JSON.stringify(v)} as RFC 3339${where(pos)}`);
      }
      return v;
    case "arr": {
      if (!Array.isArray(v)) {
        typeError(ctx, pos, jsonTypeName(v), r);
        return cloneJSON(v);
      }
      const out: unknown[] = [];
      for (let i = 0; i < v.length; i++) {
        // encoding/json: a null element of a slice of values is that element type's zero value ([null]
        // into []Container is one empty Container, which validation then names).
        const x = v[i] === null ? zeroValue(r.of) : v[i];
        out.push(walk(r.of, x, { ...pos, path: `${pos.path}[${i}]` }, ctx));
      }
      return out;
    }
    case "map": {
      if (!isPlainObject(v)) {
        typeError(ctx, pos, jsonTypeName(v), r);
        return cloneJSON(v);
      }
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        if (x === undefined) continue;
        setOwn(out, k, walk(r.of, x, { ...pos, path: `${pos.path}[${k}]` }, ctx));
      }
      return out;
    }
    case "obj": {
      if (!isPlainObject(v)) {
        typeError(ctx, pos, jsonTypeName(v), r);
        return cloneJSON(v);
      }
      const struct = r.goType.slice(r.goType.lastIndexOf(".") + 1);
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        if (x === undefined) continue;
        const path = pos.path ? `${pos.path}.${k}` : k;
        const fs = r.fields.get(k);
        if (fs === undefined) {
          ctx.unknown.push(path);
          continue;
        }
        setOwn(out, k, walk(fs, x, { path, goField: pos.goField ? `${pos.goField}.${k}` : k, goStruct: struct }, ctx));
      }
      return out;
    }
  }
}

function isInt(v: number, t: "int32" | "int64"): boolean {
  if (!Number.isInteger(v)) return false;
  return t === "int32" ? v >= INT32_MIN && v <= INT32_MAX : v >= -INT64_LIMIT && v < INT64_LIMIT;
}

/** Custom unmarshalers (IntOrString, Quantity, Time) report without a field; name it anyway. */
function where(pos: Pos): string {
  return pos.path ? ` (field ${pos.path})` : "";
}

function intstrError(pos: Pos, value: string): string {
  return `json: cannot unmarshal ${value} into Go struct field ${pos.goStruct}.${pos.goField} of type intstr.IntOrString`;
}

/** Walks a decoded JSON value against a schema; see CheckResult. */
export function checkAgainst(s: Schema, value: unknown): CheckResult {
  const ctx: Ctx = { errors: [], unknown: [] };
  const pruned = walk(s, value, { path: "", goField: "", goStruct: "" }, ctx);
  return { errors: ctx.errors, unknownFields: ctx.unknown, pruned };
}
