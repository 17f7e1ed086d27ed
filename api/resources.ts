// The catalogue of resources kubelab serves: group, version, kind, plural, scope, short names.

export interface ResourceInfo {
  /** API group; "" is the core (legacy) group served under /api/v1. */
  group: string;
  version: string;
  kind: string;
  listKind: string;
  /** Plural, lower-case resource name used in paths and in storage keys. */
  resource: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  /** Subresources served for this resource (e.g. "status", "scale", "binding", "eviction", "log"). */
  subresources: string[];
  verbs: string[];
}

const ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

function r(
  group: string,
  version: string,
  kind: string,
  resource: string,
  namespaced: boolean,
  extra: Partial<Pick<ResourceInfo, "shortNames" | "categories" | "subresources" | "verbs">> = {},
): ResourceInfo {
  return {
    group,
    version,
    kind,
    listKind: `${kind}List`,
    resource,
    singular: kind.toLowerCase(),
    namespaced,
    shortNames: extra.shortNames ?? [],
    categories: extra.categories ?? [],
    subresources: extra.subresources ?? [],
    verbs: extra.verbs ?? ALL_VERBS,
  };
}

/** Every resource the apiserver serves, in discovery order. */
export const RESOURCES: readonly ResourceInfo[] = [
  r("", "v1", "Namespace", "namespaces", false, { shortNames: ["ns"], subresources: ["status", "finalize"] }),
  r("", "v1", "Node", "nodes", false, { shortNames: ["no"], subresources: ["status"] }),
  r("", "v1", "Pod", "pods", true, {
    shortNames: ["po"],
    categories: ["all"],
    subresources: ["status", "binding", "eviction", "log", "exec"],
  }),
  r("", "v1", "Service", "services", true, { shortNames: ["svc"], categories: ["all"], subresources: ["status"] }),
  r("", "v1", "Endpoints", "endpoints", true, { shortNames: ["ep"] }),
  r("", "v1", "Event", "events", true, { shortNames: ["ev"] }),
  r("", "v1", "ConfigMap", "configmaps", true, { shortNames: ["cm"] }),
  r("", "v1", "Secret", "secrets", true),
  r("", "v1", "PersistentVolume", "persistentvolumes", false, { shortNames: ["pv"], subresources: ["status"] }),
  r("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, { shortNames: ["pvc"], subresources: ["status"] }),
  r("", "v1", "ServiceAccount", "serviceaccounts", true, { shortNames: ["sa"], subresources: ["token"] }),
  r("", "v1", "ResourceQuota", "resourcequotas", true, { shortNames: ["quota"], subresources: ["status"] }),
  r("", "v1", "LimitRange", "limitranges", true, { shortNames: ["limits"] }),
  r("apps", "v1", "Deployment", "deployments", true, {
    shortNames: ["deploy"],
    categories: ["all"],
    subresources: ["status", "scale"],
  }),
  r("apps", "v1", "ReplicaSet", "replicasets", true, {
    shortNames: ["rs"],
    categories: ["all"],
    subresources: ["status", "scale"],
  }),
  r("apps", "v1", "StatefulSet", "statefulsets", true, {
    shortNames: ["sts"],
    categories: ["all"],
    subresources: ["status", "scale"],
  }),
  r("apps", "v1", "DaemonSet", "daemonsets", true, { shortNames: ["ds"], categories: ["all"], subresources: ["status"] }),
  r("apps", "v1", "ControllerRevision", "controllerrevisions", true),
  r("batch", "v1", "Job", "jobs", true, { categories: ["all"], subresources: ["status"] }),
  r("batch", "v1", "CronJob", "cronjobs", true, { shortNames: ["cj"], categories: ["all"], subresources: ["status"] }),
  r("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, { shortNames: ["pdb"], subresources: ["status"] }),
  r("networking.k8s.io", "v1", "Ingress", "ingresses", true, { shortNames: ["ing"], subresources: ["status"] }),
  r("networking.k8s.io", "v1", "IngressClass", "ingressclasses", false),
  r("coordination.k8s.io", "v1", "Lease", "leases", true),
  r("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true),
  r("storage.k8s.io", "v1", "StorageClass", "storageclasses", false, { shortNames: ["sc"] }),
  r("storage.k8s.io", "v1", "VolumeAttachment", "volumeattachments", false, { subresources: ["status"] }),
  r("storage.k8s.io", "v1", "CSIDriver", "csidrivers", false),
  r("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", false, { shortNames: ["pc"] }),
  r("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false),
  r("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false),
  r("rbac.authorization.k8s.io", "v1", "Role", "roles", true),
  r("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true),
  r("certificates.k8s.io", "v1", "CertificateSigningRequest", "certificatesigningrequests", false, { shortNames: ["csr"], subresources: ["status", "approval"] }),
  // Create-only resources with no storage: the request is answered from what it asks (registry.virtual).
  r("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", false, { verbs: ["create"] }),
  r("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", false, { verbs: ["create"] }),
  r("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews", true, { verbs: ["create"] }),
  r("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", false, { verbs: ["create"] }),
  r("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", false, { verbs: ["create"] }),
  r("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", false, { verbs: ["create"] }),
];

/** A resource served without storage: only `create`, answered from the request (reviews). */
export function isVirtualResource(info: Pick<ResourceInfo, "verbs">): boolean {
  return info.verbs.length === 1 && info.verbs[0] === "create";
}

/** "apps/v1" for a named group, "v1" for the core group. */
export function groupVersion(info: Pick<ResourceInfo, "group" | "version">): string {
  return info.group ? `${info.group}/${info.version}` : info.version;
}

/** The resource for a group/version and plural name, or undefined. */
export function findResource(group: string, version: string, resource: string): ResourceInfo | undefined {
  return RESOURCES.find((x) => x.group === group && x.version === version && x.resource === resource);
}

/** The resource for an apiVersion ("apps/v1", "v1") and kind, or undefined. */
export function findKind(apiVersion: string, kind: string): ResourceInfo | undefined {
  return RESOURCES.find((x) => groupVersion(x) === apiVersion && x.kind === kind);
}

/** The groups with their versions, core group first, in discovery order. */
export function apiGroups(): { group: string; versions: string[] }[] {
  const out: { group: string; versions: string[] }[] = [];
  for (const x of RESOURCES) {
    const g = out.find((o) => o.group === x.group);
    if (!g) out.push({ group: x.group, versions: [x.version] });
    else if (!g.versions.includes(x.version)) g.versions.push(x.version);
  }
  return out;
}
