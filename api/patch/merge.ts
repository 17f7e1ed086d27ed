// RFC 7386 JSON merge patch.

import { assertDepth, deepClone, hasOwn, isObject, setKey, type JsonObject } from "./util.ts";

/**
 * Applies an RFC 7386 merge patch: objects merge recursively, `null` deletes a key, anything else
 * (arrays, scalars, a non-object patch) replaces. Pure: neither input is modified and the result
 * shares no structure with them.
 */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  assertDepth(target, "the target object");
  assertDepth(patch, "the merge patch");
  return mergeValue(target, patch);
}

function mergeValue(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return deepClone(patch);
  const out: JsonObject = isObject(target) ? deepClone(target) : {};
  for (const k of Object.keys(patch)) {
    const pv = patch[k];
    if (pv === null) {
      delete out[k];
    } else {
      setKey(out, k, mergeValue(hasOwn(out, k) ? out[k] : undefined, pv));
    }
  }
  return out;
}
