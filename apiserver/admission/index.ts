// Admission plugins as the apiserver runs them (k8s.io/apiserver/pkg/admission): mutating plugins
// before the strategy prepares and validates an object, validating plugins after, right before the
// write. A plugin refuses a request by throwing an ApiError (usually a 403 Forbidden).

import type { KubeObject, ResourceInfo } from "../../api/index.ts";
import { errors, type ApiError } from "../errors.ts";

export type AdmissionOperation = "CREATE" | "UPDATE";

/** admission.Attributes: what is being written. `object` is the request's own copy (mutating plugins change it). */
export interface AdmissionAttributes {
  operation: AdmissionOperation;
  info: ResourceInfo;
  namespace: string;
  /** The object's name (or generateName when the name is not chosen yet). */
  name: string;
  object: KubeObject;
  /** The stored object, on UPDATE. */
  oldObject?: KubeObject;
  /** "status", "binding", … ; undefined for the main resource. */
  subresource?: string;
  dryRun: boolean;
}

/** admission.MutationInterface */
export interface MutatingPlugin {
  readonly name: string;
  admit(a: AdmissionAttributes): Promise<void> | void;
}

/** admission.ValidationInterface */
export interface ValidatingPlugin {
  readonly name: string;
  validate(a: AdmissionAttributes): Promise<void> | void;
  /** Called when the admitted write then failed for certain (the name was taken): undo side effects. */
  release?(a: AdmissionAttributes): Promise<void> | void;
}

/** The plugins in order (upstream's --enable-admission-plugins order: LimitRanger before ResourceQuota, quota last). */
export class AdmissionChain {
  constructor(
    private readonly mutating: readonly MutatingPlugin[],
    private readonly validating: readonly ValidatingPlugin[],
  ) {}

  async admit(a: AdmissionAttributes): Promise<void> {
    for (const p of this.mutating) await p.admit(a);
  }

  async validate(a: AdmissionAttributes): Promise<void> {
    for (const p of this.validating) await p.validate(a);
  }

  /** The write `a` admitted did not happen: plugins give back what they took (quota charges). */
  async release(a: AdmissionAttributes): Promise<void> {
    for (const p of this.validating) await p.release?.(a);
  }
}

/** admission.NewForbidden: `<resource> "<name>" is forbidden: <why>`. */
export function forbidden(a: AdmissionAttributes, why: string): ApiError {
  return errors.forbidden({ group: a.info.group, resource: a.info.resource }, a.name, why);
}

/** utilerrors.NewAggregate(...).Error(): one message alone, several de-duplicated in brackets. */
export function aggregate(messages: readonly string[]): string {
  const seen = [...new Set(messages)];
  return seen.length === 1 ? seen[0]! : `[${seen.join(", ")}]`;
}

export { LimitRanger } from "./limitranger.ts";
export { ResourceQuotaAdmission } from "./resourcequota.ts";
export { DefaultIngressClass, defaultIngressClass } from "./defaultingressclass.ts";
export { DefaultStorageClass, defaultStorageClass, isDefaultStorageClass } from "./defaultstorageclass.ts";
export { StorageObjectInUseProtection } from "./storageobjectinuseprotection.ts";
export { PersistentVolumeClaimResize } from "./persistentvolumeclaimresize.ts";
export { ServerlessProfileAdmission } from "./serverlessprofile.ts";
