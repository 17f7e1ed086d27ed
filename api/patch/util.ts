// Shared helpers for the patch package: the JSON value type, PatchError, and small pure utilities.

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export type JsonObject = { [key: string]: unknown };

export type PatchErrorReason = "BadRequest" | "Invalid" | "Conflict" | "UnsupportedMediaType";

/** A patch could not be decoded or applied. The apiserver maps `reason` to a Kubernetes Status. */
export class PatchError extends Error {
  readonly reason: PatchErrorReason;

  constructor(reason: PatchErrorReason, message: string) {
    super(message);
    this.name = "PatchError";
    this.reason = reason;
  }

  /** The HTTP status code kube-apiserver uses for this reason. */
  get code(): number {
    switch (this.reason) {
      case "BadRequest":
        return 400;
      case "Conflict":
        return 409;
      case "UnsupportedMediaType":
        return 415;
      case "Invalid":
        return 422;
    }
  }
}

/** Deepest nesting of objects/arrays accepted in a patch or object. */
export const MAX_DEPTH = 100;

export function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function hasOwn(o: JsonObject, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}

/** Sets a key safely ("__proto__" becomes an own property instead of changing the prototype). */
export function setKey(o: JsonObject, k: string, v: unknown): void {
  if (k === "__proto__") {
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  } else {
    o[k] = v;
  }
}

/** Deep copy of a JSON-like value (objects, arrays, primitives). Assumes depth was checked. */
export function deepClone<T>(v: T): T {
  if (Array.isArray(v)) {
    return v.map((x: unknown) => deepClone(x)) as T;
  }
  if (isObject(v)) {
    const out: JsonObject = {};
    for (const k of Object.keys(v)) setKey(out, k, deepClone(v[k]));
    return out as T;
  }
  return v;
}

/** Structural equality of JSON-like values. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
    return true;
  }
  if (isObject(a)) {
    if (!isObject(b)) return false;
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    if (ka.length !== kb.length) return false;
    for (const k of ka) if (!hasOwn(b, k) || !deepEqual(a[k], b[k])) return false;
    return true;
  }
  return false;
}

/**
 * Nesting depth of a value, computed iteratively (no recursion, so a nesting bomb cannot blow the stack).
 * Stops early once `limit` is exceeded and returns limit + 1.
 */
export function nestingDepth(value: unknown, limit: number = MAX_DEPTH): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const item = stack.pop();
    if (item === undefined) break;
    const [v, d] = item;
    if (Array.isArray(v)) {
      const depth = d + 1;
      if (depth > max) max = depth;
      if (max > limit) return limit + 1;
      for (const x of v) stack.push([x, depth]);
    } else if (isObject(v)) {
      const depth = d + 1;
      if (depth > max) max = depth;
      if (max > limit) return limit + 1;
      for (const k of Object.keys(v)) stack.push([v[k], depth]);
    }
  }
  return max;
}

/** Throws BadRequest when `value` nests deeper than MAX_DEPTH. `what` names it in the message. */
export function assertDepth(value: unknown, what: string): void {
  if (nestingDepth(value, MAX_DEPTH) > MAX_DEPTH) {
    throw new PatchError("BadRequest", `${what} is nested deeper than the maximum of ${MAX_DEPTH} levels`);
  }
}

/** Short, bounded rendering of a value for error messages. */
export function describe(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

export function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}
