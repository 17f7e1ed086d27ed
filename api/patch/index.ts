// Public surface of the patch package: JSON patch, JSON merge patch, strategic merge patch,
// server-side apply, and decoding of PATCH bodies.

import { applyServerSideApply } from "./apply.ts";
import type { PatchType } from "./body.ts";
import { applyJsonPatch } from "./jsonpatch.ts";
import { applyMergePatch } from "./merge.ts";
import type { TypeRef } from "./schema.ts";
import { applyStrategicMergePatch } from "./strategic.ts";

export { PatchError, type JsonValue, type PatchErrorReason } from "./util.ts";
export { applyMergePatch } from "./merge.ts";
export { applyJsonPatch } from "./jsonpatch.ts";
export { applyStrategicMergePatch } from "./strategic.ts";
export { applyServerSideApply, type ApplyOptions } from "./apply.ts";
export { parsePatchBody, ACCEPTED_PATCH_TYPES, type PatchType, type ParsedPatch } from "./body.ts";
export { schemaFor, type TypeRef } from "./schema.ts";

export interface ApplyPatchOptions {
  /** Required for patchType "apply" (the ?fieldManager= query parameter). */
  fieldManager?: string;
  /** Clock for managedFields timestamps (tests). */
  now?: Date;
}

/**
 * Applies a decoded patch (from parsePatchBody) to `target`. For "apply", `target` is the live object
 * or undefined when it does not exist yet. Pure.
 */
export function applyPatch(
  target: unknown,
  p: { patchType: PatchType; patch: unknown },
  type: TypeRef,
  opts: ApplyPatchOptions = {},
): unknown {
  switch (p.patchType) {
    case "json":
      return applyJsonPatch(target, p.patch);
    case "merge":
      return applyMergePatch(target, p.patch);
    case "strategic":
      return applyStrategicMergePatch(target, p.patch, type);
    case "apply":
      return applyServerSideApply(target, p.patch, type, opts.fieldManager ?? "", { now: opts.now });
  }
}
