// PersistentVolumeClaims: a new claim starts Pending; its spec is immutable except, once the claim is
// Bound, a larger resources.requests.storage (expansion; PersistentVolumeClaimResize admission checks
// the class) — and volumeName set by the binder while the claim is unbound.

import type { FieldError, PersistentVolumeClaim, ResourceInfo } from "../../../../api/index.ts";
import { deepEqual, genericStrategy, type Strategy } from "../../strategy.ts";

export function persistentVolumeClaimStrategy(info: ResourceInfo): Strategy {
  const base = genericStrategy(info);
  return genericStrategy(info, {
    prepareForCreate(obj, ctx) {
      base.prepareForCreate(obj, ctx);
      (obj as PersistentVolumeClaim).status = { phase: "Pending" };
    },
    validateUpdate(obj, old): FieldError[] {
      const errs = base.validateUpdate(obj, old);
      const o = old as PersistentVolumeClaim;
      const n = obj as PersistentVolumeClaim;
      const bound = o.status?.phase === "Bound";
      if (!bound && !deepEqual(n.spec?.resources, o.spec?.resources) && errs.length === 0) {
        errs.push({
          type: "FieldValueForbidden",
          field: "spec",
          detail: "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
        } as FieldError);
      }
      return errs;
    },
  });
}
