// Admission plugins as the apiserver runs them (k8s.io/apiserver/pkg/admission): mutating plugins
// before the strategy prepares and validates an object, validating plugins after, right before the
// write. A plugin refuses a request by throwing an ApiError (usually a 403 Forbidden).

import type { KubeObject, ResourceInfo } from "../../api/index.ts";
import type { UserInfo } from "../auth.ts";
import { errors, type ApiError } from "../errors.ts";

export type AdmissionOperation = "CREATE" | "UPDATE" | "DELETE";

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
  /** Who asks (NodeRestriction, the CSR strategy); undefined for the apiserver's own writes. */
  userInfo?: UserInfo;
}

/** admission.MutationInterface */
export interface MutatingPlugin {
  readonly name: string;
  admit(a: AdmissionAttributes): Promise<void> | void;
}

/** admission.ValidationInterface */
export interface ValidatingPlugin {
  readonly name: string;
  /**
   * Whether the plugin sees this request (upstream's Handles). By default a plugin sees creates and
   * updates of the main resource; one that also wants subresource updates or deletes says so.
   */
  handles?(a: AdmissionAttributes): boolean;
  validate(a: AdmissionAttributes): Promise<void> | void;
  /** Called when the admitted write then failed for certain (the name was taken): undo side effects. */
  release?(a: AdmissionAttributes): Promise<void> | void;
}

/** The plugins in order (upstream's --enable-admission-plugins order: LimitRanger before ResourceQuota, quota last). */
export class AdmissionChain {
  constructor(
    private readonly mutating: MutatingPlugin[],
    private readonly validating: ValidatingPlugin[],
  ) {}

  /** Adds a plugin after the one named `after` (at the end when absent): --enable-admission-plugins order. */
  add(plugin: { mutating?: MutatingPlugin; validating?: ValidatingPlugin }, after?: string): void {
    const put = <T extends { name: string }>(list: T[], p: T) => {
      const i = after === undefined ? -1 : list.findIndex((x) => x.name === after);
      list.splice(i < 0 ? list.length : i + 1, 0, p);
    };
    if (plugin.mutating) put(this.mutating, plugin.mutating);
    if (plugin.validating) put(this.validating, plugin.validating);
  }

  names(): { mutating: string[]; validating: string[] } {
    return { mutating: this.mutating.map((p) => p.name), validating: this.validating.map((p) => p.name) };
  }

  async admit(a: AdmissionAttributes): Promise<void> {
    for (const p of this.mutating) await p.admit(a);
  }

  async validate(a: AdmissionAttributes): Promise<void> {
    for (const p of this.validating) if (p.handles ? p.handles(a) : defaultHandles(a)) await p.validate(a);
  }

  /** The write `a` admitted did not happen: plugins give back what they took (quota charges). */
  async release(a: AdmissionAttributes): Promise<void> {
    for (const p of this.validating) if (p.handles ? p.handles(a) : defaultHandles(a)) await p.release?.(a);
  }
}

function defaultHandles(a: AdmissionAttributes): boolean {
  return a.operation !== "DELETE" && !(a.operation === "UPDATE" && a.subresource);
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
