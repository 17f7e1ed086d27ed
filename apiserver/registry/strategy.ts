// The per-resource behaviour the generic store calls: what create and update may change, validation, deletion.

import type { DeleteOptions, FieldError, KubeObject, ResourceInfo } from "../../api/index.ts";
import { applyDefaults, validateObject, validateObjectUpdate } from "../../api/index.ts";
import type { Registry } from "./registry.ts";

/** What a strategy may need from the rest of the apiserver (other resources, the clock). */
export interface StrategyContext {
  registry: Registry;
  now(): Date;
  /** Settings of the admission plugins that strategies run (--default-*-toleration-seconds). */
  admission: AdmissionOptions;
}

/** The apiserver's admission plugin settings. */
export interface AdmissionOptions {
  /** DefaultTolerationSeconds: tolerationSeconds of the default not-ready:NoExecute toleration (300). */
  defaultNotReadyTolerationSeconds: number;
  /** DefaultTolerationSeconds: tolerationSeconds of the default unreachable:NoExecute toleration (300). */
  defaultUnreachableTolerationSeconds: number;
}

export const DEFAULT_ADMISSION_OPTIONS: Readonly<AdmissionOptions> = Object.freeze({
  defaultNotReadyTolerationSeconds: 300,
  defaultUnreachableTolerationSeconds: 300,
});

export interface GracefulDeletion {
  /** True: set deletionTimestamp and keep the object until its owner (the kubelet) finishes. */
  graceful: boolean;
  gracePeriodSeconds: number;
}

/**
 * RESTCreateStrategy + RESTUpdateStrategy + RESTDeleteStrategy in one, as the apiserver's
 * registry/<group>/<resource>/strategy.go files are. Objects passed in are the caller's own copies:
 * strategies mutate them in place.
 */
export interface Strategy {
  info: ResourceInfo;
  /** metadata.generation starts at 1 and is bumped on every spec change. */
  tracksGeneration: boolean;
  /** PUT of a missing object creates it. */
  allowCreateOnUpdate: boolean;
  /** Successful deletes answer with the deleted object (pods) rather than a Success Status. */
  returnDeletedObject: boolean;
  /** Default garbage-collection policy when a DELETE names none. */
  defaultPropagationPolicy: "Background" | "Orphan" | "Foreground";
  /** Applies API defaults (the scheme's defaulters). */
  defaults(obj: KubeObject): void;
  /** Clears what a create may not set (usually status) and fills what the server owns. */
  prepareForCreate(obj: KubeObject, ctx: StrategyContext): Promise<void> | void;
  /** Keeps what a main-resource update may not change (usually status). */
  prepareForUpdate(obj: KubeObject, old: KubeObject, ctx: StrategyContext): void;
  validate(obj: KubeObject): FieldError[];
  validateUpdate(obj: KubeObject, old: KubeObject): FieldError[];
  /** The status subresource's update rules: keep the old spec (and metadata), take the new status. */
  prepareForStatusUpdate(obj: KubeObject, old: KubeObject): void;
  /** Decides whether a DELETE only marks the object for deletion (pods on a node) or removes it. */
  gracefulDeletion(obj: KubeObject, options: DeleteOptions): GracefulDeletion;
  /**
   * Resources finalized by something other than metadata.finalizers (a namespace's spec.finalizers)
   * mark `obj` (a copy) for deletion and return true: the object stays until finalized.
   */
  markForDeletion?(obj: KubeObject, now: Date): boolean;
  /** An update that leaves the object in a state where it should now be removed (finalizers gone). */
  shouldDeleteDuringUpdate(obj: KubeObject, old: KubeObject): boolean;
}

function hasStatus(info: ResourceInfo): boolean {
  return info.subresources.includes("status");
}

/** The default behaviour of a resource; per-resource strategies override parts of it. */
export function genericStrategy(info: ResourceInfo, overrides: Partial<Strategy> = {}): Strategy {
  const base: Strategy = {
    info,
    tracksGeneration: false,
    allowCreateOnUpdate: false,
    returnDeletedObject: false,
    defaultPropagationPolicy: "Background",
    defaults: applyDefaults,
    prepareForCreate(obj) {
      if (hasStatus(info)) delete obj.status;
      if (this.tracksGeneration) obj.metadata.generation = 1;
    },
    prepareForUpdate(obj, old) {
      if (hasStatus(info)) {
        if (old.status === undefined) delete obj.status;
        else obj.status = old.status;
      }
      if (this.tracksGeneration) {
        const gen = old.metadata.generation ?? 1;
        obj.metadata.generation = deepEqual(obj.spec, old.spec) ? gen : gen + 1;
      }
    },
    validate(obj) {
      return validateObject(obj, info);
    },
    validateUpdate(obj, old) {
      return validateObjectUpdate(obj, old, info);
    },
    prepareForStatusUpdate(obj, old) {
      obj.spec = old.spec;
      if (old.spec === undefined) delete obj.spec;
      // Status writers may not change labels, annotations, owners or finalizers.
      obj.metadata = { ...old.metadata, resourceVersion: obj.metadata.resourceVersion };
    },
    gracefulDeletion() {
      return { graceful: false, gracePeriodSeconds: 0 };
    },
    shouldDeleteDuringUpdate(obj, old) {
      return (
        old.metadata.deletionTimestamp !== undefined &&
        (obj.metadata.finalizers?.length ?? 0) === 0 &&
        (old.metadata.deletionGracePeriodSeconds ?? 0) === 0
      );
    },
  };
  return Object.assign(base, overrides);
}

/** Structural equality of JSON values (key order does not matter). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  if (ak.length !== bk.length) return false;
  for (const k of ak) if (!deepEqual(ao[k], bo[k])) return false;
  return true;
}
