// The api package's public surface: object types, defaulting, validation, selectors, quantities.

export * from "./resources.ts";
export * from "./meta.ts";
export * from "./intstr.ts";
export * from "./quantity.ts";
export * from "./core/v1.ts";
export { podQOSClass, type QOSClass } from "./core/qos.ts";
export * from "./core/quota.ts";
export * from "./core/resourcelist.ts";
export * from "./apps/v1.ts";
export * from "./batch/v1.ts";
export { parseSchedule, isValidTimeZone, formatRFC3339In, ScheduleError, type Schedule } from "./batch/schedule.ts";
export * from "./networking/v1.ts";
export * from "./coordination/v1.ts";
export * from "./discovery/v1.ts";
export * from "./storage/v1.ts";
export * from "./scheduling/v1.ts";
export * from "./policy/v1.ts";
export * from "./autoscaling/v1.ts";
export * from "./rbac/v1.ts";
export * from "./certificates/v1.ts";
export * from "./authentication/v1.ts";
export * from "./authorization/v1.ts";
export * from "./labels.ts";
export * from "./taints.ts";
export * from "./nodeselector.ts";
export * from "./fields.ts";
export * from "./defaults.ts";
export { validateObject, validateObjectUpdate, nameValidatorFor } from "./validation/index.ts";
export {
  type FieldError,
  type FieldErrorType,
  formatFieldError,
  formatFieldErrors,
  goQuote,
} from "./validation/field.ts";
export {
  isDNS1123Label,
  isDNS1123Subdomain,
  isDNS1035Label,
  isQualifiedName,
  isValidLabelValue,
  isWildcardDNS1123Subdomain,
  isValidPortName,
  isValidPortNum,
  isConfigMapKey,
  isEnvVarName,
  isIP,
  isIPv4,
  isIPv6,
  isValidCIDR,
  DNS1123LabelMaxLength,
  DNS1123SubdomainMaxLength,
  DNS1035LabelMaxLength,
  LabelValueMaxLength,
  QualifiedNameMaxLength,
} from "./validation/names.ts";
export {
  validateLabels,
  validateAnnotations,
  validateLabelSelector,
  validateObjectMeta,
  validateObjectMetaUpdate,
  TotalAnnotationSizeLimitB,
  nameIsDNSSubdomain,
  nameIsDNSLabel,
  nameIsDNS1035Label,
  type NameValidator,
} from "./validation/meta.ts";
export { validatePodSpec, validatePodTemplateSpec } from "./validation/pod.ts";
export { MaxSecretSize } from "./validation/core.ts";
export * from "./schema/index.ts";
export { parseIPv4, formatIPv4, parseCIDR, formatCIDR, cidrContains, subnets, type IPv4CIDR } from "./net.ts";
