// validateObject / validateObjectUpdate: metadata plus the per-kind rules, dispatched on the
// resource, as each registry strategy's Validate / ValidateUpdate does in the apiserver.

import type { KubeObject } from "../meta.ts";
import type { ResourceInfo } from "../resources.ts";
import { validateDaemonSetSpec, validateDeploymentSpec, validateJob, validateJobUpdate, validateReplicaSetSpec, validateSelectorUpdate } from "./apps.ts";
import { validateControllerRevision, validateControllerRevisionUpdate, validateStatefulSetSpec, validateStatefulSetStatus, validateStatefulSetUpdate } from "./apps.ts";
import {
  validateEndpointSlice,
  validateEndpointSliceUpdate,
  validateIngress,
  validateIngressClass,
  validateIngressClassUpdate,
  validateLease,
  validateStorageClass,
  validateStorageClassUpdate,
  validateCSIDriver,
  validateCSIDriverUpdate,
  validateVolumeAttachment,
  validateVolumeAttachmentUpdate,
} from "./cluster.ts";
import {
  validateConfigMap,
  validateEndpoints,
  validateEvent,
  validateImmutableData,
  validateNamespace,
  validateNode,
  validateNodeUpdate,
  validatePersistentVolume,
  validatePersistentVolumeClaim,
  validatePersistentVolumeClaimUpdate,
  validatePersistentVolumeUpdate,
  validateSecret,
  validateServiceSpec,
  validateServiceUpdate,
} from "./core.ts";
import type { FieldError } from "./field.ts";
import { invalid } from "./field.ts";
import { nameIsDNS1035Label, nameIsDNSLabel, nameIsDNSSubdomain, validateImmutableField, validateObjectMeta, validateObjectMetaUpdate, type NameValidator } from "./meta.ts";
import { validatePodSpec, validatePodSpecUpdate } from "./pod.ts";
import { validateCronJob } from "./batch.ts";
import { validatePodDisruptionBudget } from "./policy.ts";
import { validateBinding, validateBindingUpdate, validateClusterRole, validateRBACName, validateRole } from "./rbac.ts";
import { validateCertificateSigningRequest, validateCertificateSigningRequestTransition } from "./certificates.ts";
import { validateLimitRange, validateResourceQuota, validateResourceQuotaUpdate } from "./quota.ts";
import { deepEqual, type Rec } from "./util.ts";

function kindKey(info: Pick<ResourceInfo, "group" | "kind">): string {
  return `${info.group}/${info.kind}`;
}

/** The name format of each kind: namespaces are DNS labels, services DNS-1035 labels, the rest subdomains. */
export function nameValidatorFor(info: Pick<ResourceInfo, "group" | "kind">): NameValidator {
  switch (kindKey(info)) {
    case "/Namespace":
      return nameIsDNSLabel;
    case "/Service":
      return nameIsDNS1035Label;
    case "apps/StatefulSet":
      return nameIsDNSLabel;
    case "rbac.authorization.k8s.io/Role":
    case "rbac.authorization.k8s.io/ClusterRole":
    case "rbac.authorization.k8s.io/RoleBinding":
    case "rbac.authorization.k8s.io/ClusterRoleBinding":
      return validateRBACName;
    // upstream's ValidateCertificateRequestName accepts any name; it is a path segment of the URL and key
    case "certificates.k8s.io/CertificateSigningRequest":
      return validateRBACName;
    default:
      return nameIsDNSSubdomain;
  }
}

function validateKind(o: Rec, info: ResourceInfo): FieldError[] {
  switch (kindKey(info)) {
    case "/Pod":
      return validatePodSpec(o.spec, "spec");
    case "/Service":
      return validateServiceSpec(o.spec);
    case "/ConfigMap":
      return validateConfigMap(o);
    case "/Secret":
      return validateSecret(o);
    case "/Namespace":
      return validateNamespace(o);
    case "/Node":
      return validateNode(o);
    case "/Event":
      return validateEvent(o);
    case "/Endpoints":
      return validateEndpoints(o);
    case "/PersistentVolume":
      return validatePersistentVolume(o);
    case "/PersistentVolumeClaim":
      return validatePersistentVolumeClaim(o);
    case "/ResourceQuota":
      return validateResourceQuota(o);
    case "/LimitRange":
      return validateLimitRange(o);
    case "apps/Deployment":
      return validateDeploymentSpec(o.spec);
    case "apps/ReplicaSet":
      return validateReplicaSetSpec(o.spec);
    case "apps/DaemonSet":
      return validateDaemonSetSpec(o.spec);
    case "apps/StatefulSet":
      return validateStatefulSetSpec(o.spec);
    case "apps/ControllerRevision":
      return validateControllerRevision(o);
    case "batch/Job":
      return validateJob(o);
    case "batch/CronJob":
      return validateCronJob(o);
    case "policy/PodDisruptionBudget":
      return validatePodDisruptionBudget(o);
    case "networking.k8s.io/Ingress":
      return validateIngress(o);
    case "networking.k8s.io/IngressClass":
      return validateIngressClass(o);
    case "coordination.k8s.io/Lease":
      return validateLease(o);
    case "discovery.k8s.io/EndpointSlice":
      return validateEndpointSlice(o);
    case "storage.k8s.io/StorageClass":
      return validateStorageClass(o);
    case "storage.k8s.io/VolumeAttachment":
      return validateVolumeAttachment(o);
    case "storage.k8s.io/CSIDriver":
      return validateCSIDriver(o);
    case "scheduling.k8s.io/PriorityClass":
      return validatePriorityClass(o);
    case "rbac.authorization.k8s.io/Role":
      return validateRole(o);
    case "rbac.authorization.k8s.io/ClusterRole":
      return validateClusterRole(o);
    case "rbac.authorization.k8s.io/RoleBinding":
      return validateBinding(o, true);
    case "rbac.authorization.k8s.io/ClusterRoleBinding":
      return validateBinding(o, false);
    case "certificates.k8s.io/CertificateSigningRequest":
      return validateCertificateSigningRequest(o);
    default:
      return [];
  }
}

/**
 * Everything wrong with an object about to be created (or the new state of an update): metadata
 * (name or generateName in the kind's format, namespace iff namespaced, labels, annotations,
 * owner references, finalizers) and the kind's own rules. Empty means valid. Pure; never throws:
 * a value of an unexpected JSON type is reported as a field error.
 */
export function validateObject(obj: KubeObject, info: ResourceInfo): FieldError[] {
  try {
    const errs = validateObjectMeta(obj.metadata, info.namespaced, nameValidatorFor(info));
    errs.push(...validateKind(obj as Rec, info));
    return errs;
  } catch (e) {
    return [invalid("", null, `object could not be validated: ${(e as Error).message}`)];
  }
}

function validateKindUpdate(o: Rec, old: Rec, info: ResourceInfo): FieldError[] {
  switch (kindKey(info)) {
    case "/Pod":
      return validatePodSpecUpdate(o.spec, old.spec);
    case "/Service":
      return validateServiceUpdate(o.spec, old.spec);
    case "/ConfigMap":
      return validateImmutableData(o, old, ["data", "binaryData"]);
    case "/Secret":
      return [
        ...validateImmutableField(o.type ?? "Opaque", old.type ?? "Opaque", "type", deepEqual),
        ...validateImmutableData(o, old, ["data"]),
      ];
    case "/Node":
      return validateNodeUpdate(o, old);
    case "/PersistentVolume":
      return validatePersistentVolumeUpdate(o, old);
    case "/PersistentVolumeClaim":
      return validatePersistentVolumeClaimUpdate(o, old);
    case "/ResourceQuota":
      return validateResourceQuotaUpdate(o, old);
    case "apps/StatefulSet":
      return [...validateStatefulSetUpdate(o.spec, old.spec), ...validateStatefulSetStatus(o.status)];
    case "apps/ControllerRevision":
      return validateControllerRevisionUpdate(o, old);
    case "apps/Deployment":
    case "apps/ReplicaSet":
    case "apps/DaemonSet":
      return validateSelectorUpdate(o.spec, old.spec);
    case "batch/Job":
      return validateJobUpdate(o, old);
    case "networking.k8s.io/IngressClass":
      return validateIngressClassUpdate(o, old);
    case "discovery.k8s.io/EndpointSlice":
      return validateEndpointSliceUpdate(o, old);
    case "storage.k8s.io/StorageClass":
      return validateStorageClassUpdate(o, old);
    case "storage.k8s.io/VolumeAttachment":
      return validateVolumeAttachmentUpdate(o, old);
    case "storage.k8s.io/CSIDriver":
      return validateCSIDriverUpdate(o, old);
    case "rbac.authorization.k8s.io/RoleBinding":
    case "rbac.authorization.k8s.io/ClusterRoleBinding":
      return validateBindingUpdate(o, old);
    case "certificates.k8s.io/CertificateSigningRequest":
      return validateCertificateSigningRequestTransition(o, old);
    case "scheduling.k8s.io/PriorityClass":
      return o.value === old.value ? [] : [{ type: "FieldValueForbidden", field: "value", badValue: o.value, detail: "may not be changed in an update." }];
    default:
      return [];
  }
}

/**
 * validateObject(obj) plus the update rules: metadata.name/namespace/uid/creationTimestamp
 * unchanged, and per kind what may not change (pod spec except images, activeDeadlineSeconds,
 * toleration additions; workload selectors; job templates; a service's clusterIP; data of
 * immutable ConfigMaps/Secrets; a Secret's type; …). `old` is the stored object.
 */
export function validateObjectUpdate(obj: KubeObject, old: KubeObject, info: ResourceInfo): FieldError[] {
  const errs = validateObject(obj, info);
  try {
    errs.push(...validateObjectMetaUpdate(obj.metadata, old.metadata));
    errs.push(...validateKindUpdate(obj as Rec, old as Rec, info));
  } catch (e) {
    errs.push(invalid("", null, `object could not be validated: ${(e as Error).message}`));
  }
  return errs;
}

/** PriorityClass: an integer value, user classes at most 1,000,000,000, a known preemptionPolicy. */
function validatePriorityClass(o: Record<string, unknown>): FieldError[] {
  const errs: FieldError[] = [];
  const name = String((o.metadata as { name?: unknown } | undefined)?.name ?? "");
  if (typeof o.value !== "number" || !Number.isInteger(o.value)) {
    errs.push({ type: "FieldValueRequired", field: "value", detail: "" });
  } else if (o.value > 1000000000 && !name.startsWith("system-")) {
    errs.push({ type: "FieldValueForbidden", field: "value", badValue: o.value, detail: "maximum allowed value of a user defined priority is 1000000000" });
  }
  if (o.preemptionPolicy !== undefined && o.preemptionPolicy !== "PreemptLowerPriority" && o.preemptionPolicy !== "Never") {
    errs.push({ type: "FieldValueNotSupported", field: "preemptionPolicy", badValue: o.preemptionPolicy, detail: 'supported values: "Never", "PreemptLowerPriority"' });
  }
  return errs;
}
