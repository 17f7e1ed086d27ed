// meta/v1 types shared by every object: TypeMeta, ObjectMeta, lists, selectors, conditions, Status.
// JSON shapes follow k8s.io/apimachinery/pkg/apis/meta/v1 field for field.

/** apiVersion and kind; optional on the wire, the apiserver fills them on output. */
export interface TypeMeta {
  apiVersion?: string;
  kind?: string;
}

/** Points from a dependent to its owner; the garbage collector follows these. */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  /** At most one owner reference per object may be the managing controller. */
  controller?: boolean;
  /** With foreground deletion, the owner is not deleted until this dependent is gone. */
  blockOwnerDeletion?: boolean;
}

/** One entry of server-side-apply bookkeeping; kept opaque here. */
export interface ManagedFieldsEntry {
  manager?: string;
  operation?: "Apply" | "Update" | string;
  apiVersion?: string;
  time?: string;
  fieldsType?: string;
  fieldsV1?: Record<string, unknown>;
  subresource?: string;
}

/**
 * Metadata every persisted object carries. Timestamps are RFC 3339 strings with second precision
 * ("2024-01-02T03:04:05Z"); resourceVersion is opaque to clients (here: the store revision).
 */
export interface ObjectMeta {
  name?: string;
  /** Prefix for a server-generated name, used when name is empty on create. */
  generateName?: string;
  namespace?: string;
  selfLink?: string;
  uid?: string;
  resourceVersion?: string;
  /** Bumped by the apiserver on every change to the desired state (spec). */
  generation?: number;
  creationTimestamp?: string;
  /** Set when graceful deletion was requested; the object stays while finalizers remain. */
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  managedFields?: ManagedFieldsEntry[];
}

/** Metadata of a list response. `continue` is the opaque token for the next page. */
export interface ListMeta {
  selfLink?: string;
  resourceVersion?: string;
  continue?: string;
  /** Approximate number of items left after this page, when the server knows it. */
  remainingItemCount?: number;
}

export type LabelSelectorOperator = "In" | "NotIn" | "Exists" | "DoesNotExist";

export interface LabelSelectorRequirement {
  key: string;
  operator: LabelSelectorOperator;
  /** Required (non-empty) for In/NotIn; must be empty for Exists/DoesNotExist. */
  values?: string[];
}

/**
 * A structured label query. All of matchLabels and matchExpressions must hold (AND).
 * `{}` selects everything; an absent (null) selector selects nothing.
 */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export type ConditionStatus = "True" | "False" | "Unknown";

/** metav1.Condition, the standard condition shape of newer APIs. */
export interface Condition {
  type: string;
  status: ConditionStatus;
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

/** One cause of a failure, e.g. one field error of an Invalid response. */
export interface StatusCause {
  /** For field errors: "FieldValueRequired", "FieldValueInvalid", … */
  reason?: string;
  message?: string;
  /** The field path, e.g. "spec.containers[0].name". */
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

/** metav1.Status: the body of every error response, and of some successful deletes. */
export interface Status extends TypeMeta {
  metadata?: ListMeta;
  status?: "Success" | "Failure";
  message?: string;
  /** Machine-readable reason: NotFound, AlreadyExists, Conflict, Invalid, BadRequest, … */
  reason?: string;
  details?: StatusDetails;
  code?: number;
}

export interface Preconditions {
  uid?: string;
  resourceVersion?: string;
}

export type DeletionPropagation = "Orphan" | "Background" | "Foreground";

export interface DeleteOptions extends TypeMeta {
  gracePeriodSeconds?: number;
  preconditions?: Preconditions;
  /** Deprecated in favour of propagationPolicy; true means Orphan. */
  orphanDependents?: boolean;
  propagationPolicy?: DeletionPropagation;
  dryRun?: string[];
}

/** Any API object as stored and served: typed header plus kind-specific fields. */
export type KubeObject = TypeMeta & { metadata: ObjectMeta; [key: string]: unknown };

/** A list response: `kind` is the resource's listKind, e.g. "PodList". */
export interface KubeList<T> extends TypeMeta {
  metadata: ListMeta;
  items: T[];
}

/** Well-known label and annotation keys used across the control plane. */
export const LabelTopologyZone = "topology.kubernetes.io/zone";
export const LabelTopologyRegion = "topology.kubernetes.io/region";
export const LabelHostname = "kubernetes.io/hostname";
export const LabelOS = "kubernetes.io/os";
export const LabelArch = "kubernetes.io/arch";
export const LabelInstanceType = "node.kubernetes.io/instance-type";
