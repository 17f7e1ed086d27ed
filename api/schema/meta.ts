// Schemas of k8s.io/apimachinery/pkg/apis/meta/v1 types.

import { arr, bool, free, int32, int64, map, obj, str, time } from "./schema.ts";

export const OwnerReference = obj("v1.OwnerReference", {
  apiVersion: str,
  kind: str,
  name: str,
  uid: str,
  controller: bool,
  blockOwnerDeletion: bool,
});

export const ManagedFieldsEntry = obj("v1.ManagedFieldsEntry", {
  manager: str,
  operation: str,
  apiVersion: str,
  time: time,
  fieldsType: str,
  fieldsV1: free,
  subresource: str,
});

export const ObjectMeta = obj("v1.ObjectMeta", {
  name: str,
  generateName: str,
  namespace: str,
  selfLink: str,
  uid: str,
  resourceVersion: str,
  generation: int64,
  creationTimestamp: time,
  deletionTimestamp: time,
  deletionGracePeriodSeconds: int64,
  labels: map(str),
  annotations: map(str),
  ownerReferences: arr(OwnerReference),
  finalizers: arr(str),
  managedFields: arr(ManagedFieldsEntry),
});

export const ListMeta = obj("v1.ListMeta", {
  selfLink: str,
  resourceVersion: str,
  continue: str,
  remainingItemCount: int64,
});

export const LabelSelectorRequirement = obj("v1.LabelSelectorRequirement", {
  key: str,
  operator: str,
  values: arr(str),
});

export const LabelSelector = obj("v1.LabelSelector", {
  matchLabels: map(str),
  matchExpressions: arr(LabelSelectorRequirement),
});

/** metav1.Condition. */
export const Condition = obj("v1.Condition", {
  type: str,
  status: str,
  observedGeneration: int64,
  lastTransitionTime: time,
  reason: str,
  message: str,
});

export const Preconditions = obj("v1.Preconditions", { uid: str, resourceVersion: str });

export const DeleteOptions = obj("v1.DeleteOptions", {
  apiVersion: str,
  kind: str,
  gracePeriodSeconds: int64,
  preconditions: Preconditions,
  orphanDependents: bool,
  propagationPolicy: str,
  dryRun: arr(str),
  ignoreStoreReadErrorWithClusterBreakingPotential: bool,
});

export const StatusCause = obj("v1.StatusCause", { reason: str, message: str, field: str });

export const StatusDetails = obj("v1.StatusDetails", {
  name: str,
  group: str,
  kind: str,
  uid: str,
  causes: arr(StatusCause),
  retryAfterSeconds: int32,
});

export const Status = obj("v1.Status", {
  apiVersion: str,
  kind: str,
  metadata: ListMeta,
  status: str,
  message: str,
  reason: str,
  details: StatusDetails,
  code: int32,
});
