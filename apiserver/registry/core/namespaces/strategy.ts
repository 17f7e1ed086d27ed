// Namespaces: Active on create with the "kubernetes" finalizer; delete makes them Terminating until finalized.

import type { ResourceInfo } from "../../../../api/index.ts";
import { genericStrategy, type Strategy } from "../../strategy.ts";

interface NamespaceSpec {
  finalizers?: string[];
}

/** Every namespace carries its own name as a label, so selectors can pick namespaces by name. */
const NAME_LABEL = "kubernetes.io/metadata.name";

export function namespaceStrategy(info: ResourceInfo): Strategy {
  const base = genericStrategy(info);
  return genericStrategy(info, {
    defaults(obj) {
      base.defaults(obj);
      if (obj.metadata.name) obj.metadata.labels = { ...obj.metadata.labels, [NAME_LABEL]: obj.metadata.name };
    },
    prepareForCreate(obj) {
      obj.status = { phase: "Active" };
      const spec = (obj.spec ?? {}) as NamespaceSpec;
      if (!spec.finalizers || spec.finalizers.length === 0) spec.finalizers = ["kubernetes"];
      obj.spec = spec;
    },
    prepareForUpdate(obj, old) {
      // spec.finalizers changes only through the finalize subresource.
      obj.spec = old.spec;
      obj.status = old.status;
    },
    markForDeletion(obj) {
      const spec = (obj.spec ?? {}) as NamespaceSpec;
      if (!spec.finalizers?.length && !obj.metadata.finalizers?.length) return false;
      obj.status = { ...((obj.status as object) ?? {}), phase: "Terminating" };
      return true;
    },
    shouldDeleteDuringUpdate(obj, old) {
      return (
        old.metadata.deletionTimestamp !== undefined &&
        ((obj.spec as NamespaceSpec | undefined)?.finalizers?.length ?? 0) === 0 &&
        (obj.metadata.finalizers?.length ?? 0) === 0
      );
    },
  });
}
