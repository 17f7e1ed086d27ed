// The default RBAC policy (plugin/pkg/auth/authorizer/rbac/bootstrappolicy: policy.go,
// controller_policy.go, namespace_policy.go) and kubelab's own component roles, plus the
// reconciliation kube-apiserver's "rbac/bootstrap-roles" post-start hook runs
// (pkg/registry/rbac/reconciliation): create what is missing; for objects still annotated
// autoupdate=true add missing rules, aggregation selectors and subjects; leave autoupdate=false alone.

import type { LabelSelector } from "../../api/index.ts";
import type { Registry } from "../registry/registry.ts";
import { AUTOUPDATE_ANNOTATION, RBAC_GROUP, type ClusterRole, type ClusterRoleBinding, type PolicyRule, type Role, type RoleBinding, type Subject } from "./rbactypes.ts";
import { covers } from "./rules.ts";

export const BOOTSTRAP_LABEL = { "kubernetes.io/bootstrapping": "rbac-defaults" } as const;
export const BOOTSTRAP_ANNOTATION = { [AUTOUPDATE_ANNOTATION]: "true" } as const;

const Write = ["create", "update", "patch", "delete", "deletecollection"];
const ReadWrite = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"];
const Read = ["get", "list", "watch"];
const ReadUpdate = ["get", "list", "watch", "update", "patch"];

const legacy = "";
const apps = "apps";
const authentication = "authentication.k8s.io";
const authorization = "authorization.k8s.io";
const autoscaling = "autoscaling";
const batch = "batch";
const certificates = "certificates.k8s.io";
const coordination = "coordination.k8s.io";
const discovery = "discovery.k8s.io";
const extensions = "extensions";
const policy = "policy";
const rbac = RBAC_GROUP;
const storage = "storage.k8s.io";
const networking = "networking.k8s.io";
const events = "events.k8s.io";
const resMetrics = "metrics.k8s.io";
const customMetrics = "custom.metrics.k8s.io";
const externalMetrics = "external.metrics.k8s.io";

/** rbacv1helpers.NewRule(verbs...).Groups(groups...).Resources(resources...)[.Names(names...)] */
function rule(verbs: string[], groups: string[], resources: string[], names?: string[]): PolicyRule {
  return { verbs: [...verbs], apiGroups: [...groups], resources: [...resources], ...(names ? { resourceNames: [...names] } : {}) };
}
/** rbacv1helpers.NewRule(verbs...).URLs(urls...) */
function urls(verbs: string[], list: string[]): PolicyRule {
  return { verbs: [...verbs], nonResourceURLs: [...list] };
}
/** eventsRule() */
const eventsRule = (): PolicyRule => rule(["create", "update", "patch"], [legacy, events], ["events"]);

const user = (name: string): Subject => ({ kind: "User", apiGroup: RBAC_GROUP, name });
const group = (name: string): Subject => ({ kind: "Group", apiGroup: RBAC_GROUP, name });
const sa = (namespace: string, name: string): Subject => ({ kind: "ServiceAccount", name, namespace });

function meta(name: string, extra: { labels?: Record<string, string>; namespace?: string } = {}) {
  return {
    name,
    ...(extra.namespace ? { namespace: extra.namespace } : {}),
    labels: { ...(extra.labels ?? {}), ...BOOTSTRAP_LABEL },
    annotations: { ...BOOTSTRAP_ANNOTATION },
  };
}

function clusterRole(name: string, rules: PolicyRule[], opts: { labels?: Record<string, string>; aggregate?: string[] } = {}): ClusterRole {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: meta(name, { labels: opts.labels }),
    ...(opts.aggregate ? { aggregationRule: { clusterRoleSelectors: opts.aggregate.map((l): LabelSelector => ({ matchLabels: { [l]: "true" } })) } } : {}),
    rules,
  };
}

function clusterBinding(name: string, subjects: Subject[], roleName = name): ClusterRoleBinding {
  return { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding", metadata: meta(name), roleRef: { apiGroup: RBAC_GROUP, kind: "ClusterRole", name: roleName }, subjects };
}

function role(namespace: string, name: string, rules: PolicyRule[]): Role {
  return { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: meta(name, { namespace }), rules };
}

function roleBinding(namespace: string, name: string, subjects: Subject[], roleName = name): RoleBinding {
  return { apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", metadata: meta(name, { namespace }), roleRef: { apiGroup: RBAC_GROUP, kind: "Role", name: roleName }, subjects };
}

/** NodeRules(): what every node may do; the Node authorizer narrows secrets, configmaps, claims, volumes, tokens to its pods. */
export function nodeRules(): PolicyRule[] {
  return [
    // Needed to check API access. These creates are non-mutating.
    rule(["create"], [authentication], ["tokenreviews"]),
    rule(["create"], [authorization], ["subjectaccessreviews", "localsubjectaccessreviews"]),
    // Needed to build serviceLister, to populate env vars for services.
    rule(Read, [legacy], ["services"]),
    // Nodes can register Node API objects and report status; NodeRestriction limits a node to its own.
    rule(["create", "get", "list", "watch"], [legacy], ["nodes"]),
    rule(["update", "patch"], [legacy], ["nodes/status"]),
    rule(["update", "patch"], [legacy], ["nodes"]),
    rule(["create", "update", "patch"], [legacy], ["events"]),
    rule(Read, [legacy], ["pods"]),
    // Mirror pods; NodeRestriction limits them to pods bound to the node itself.
    rule(["create", "delete"], [legacy], ["pods"]),
    rule(["update", "patch"], [legacy], ["pods/status"]),
    rule(["create"], [legacy], ["pods/eviction"]),
    // The Node authorizer limits these to what pods bound to the node reference.
    rule(["get", "list", "watch"], [legacy], ["secrets", "configmaps"]),
    rule(["get"], [legacy], ["persistentvolumeclaims", "persistentvolumes"]),
    rule(["get"], [legacy], ["endpoints"]),
    rule(["create", "get", "list", "watch"], [certificates], ["certificatesigningrequests"]),
    rule(["get", "create", "update", "patch", "delete"], [coordination], ["leases"]),
    rule(["get"], [storage], ["volumeattachments"]),
    rule(["create"], [legacy], ["serviceaccounts/token"]),
    rule(["get", "update", "patch"], [legacy], ["persistentvolumeclaims/status"]),
    rule(["get", "watch", "list"], [storage], ["csidrivers"]),
    rule(["get", "create", "update", "patch", "delete"], [storage], ["csinodes"]),
    rule(["get", "list", "watch"], ["node.k8s.io"], ["runtimeclasses"]),
  ];
}

/** The upstream controller roles (system:controller:*) of the controllers kubelab's controller-manager runs. */
export function controllerRoles(): ClusterRole[] {
  const c = (name: string, rules: PolicyRule[]) => clusterRole(`system:controller:${name}`, rules);
  return [
    c("attachdetach-controller", [
      rule(["list", "watch"], [legacy], ["persistentvolumes", "persistentvolumeclaims"]),
      rule(["get", "list", "watch"], [legacy], ["nodes"]),
      rule(["patch", "update"], [legacy], ["nodes/status"]),
      rule(["list", "watch"], [legacy], ["pods"]),
      eventsRule(),
      rule(["get", "create", "delete", "list", "watch"], [storage], ["volumeattachments"]),
      rule(["get", "watch", "list"], [storage], ["csidrivers"]),
      rule(["get", "watch", "list"], [storage], ["csinodes"]),
    ]),
    // This controller must have full permissions on clusterroles to allow it to mutate them in any way.
    c("clusterrole-aggregation-controller", [rule(["escalate", "get", "list", "watch", "update", "patch"], [rbac], ["clusterroles"])]),
    // CSR approval (kubelet client certificates), signing and cleanup, one controller as upstream names it.
    c("certificate-controller", [
      rule(["get", "list", "watch", "delete"], [certificates], ["certificatesigningrequests"]),
      rule(["update"], [certificates], ["certificatesigningrequests/status", "certificatesigningrequests/approval"]),
      rule(["approve"], [certificates], ["signers"], ["kubernetes.io/kube-apiserver-client-kubelet"]),
      rule(["sign"], [certificates], ["signers"], ["kubernetes.io/legacy-unknown", "kubernetes.io/kube-apiserver-client", "kubernetes.io/kube-apiserver-client-kubelet", "kubernetes.io/kubelet-serving"]),
      rule(["create"], [authorization], ["subjectaccessreviews"]),
      eventsRule(),
    ]),
    c("cronjob-controller", [
      rule(["get", "list", "watch", "update"], [batch], ["cronjobs"]),
      rule(["get", "list", "watch", "create", "update", "delete", "patch"], [batch], ["jobs"]),
      rule(["update"], [batch], ["cronjobs/status"]),
      rule(["update"], [batch], ["cronjobs/finalizers"]),
      rule(["list", "delete"], [legacy], ["pods"]),
      eventsRule(),
    ]),
    c("daemon-set-controller", [
      rule(["get", "list", "watch"], [extensions, apps], ["daemonsets"]),
      rule(["update"], [extensions, apps], ["daemonsets/status"]),
      rule(["update"], [extensions, apps], ["daemonsets/finalizers"]),
      rule(["list", "watch"], [legacy], ["nodes"]),
      rule(["list", "watch", "create", "delete", "patch"], [legacy], ["pods"]),
      rule(["create"], [legacy], ["pods/binding"]),
      rule(["get", "list", "watch", "create", "delete", "update", "patch"], [apps], ["controllerrevisions"]),
      eventsRule(),
    ]),
    c("deployment-controller", [
      rule(["get", "list", "watch", "update"], [extensions, apps], ["deployments"]),
      rule(["update"], [extensions, apps], ["deployments/status"]),
      rule(["update"], [extensions, apps], ["deployments/finalizers"]),
      rule(["get", "list", "watch", "create", "update", "patch", "delete"], [apps, extensions], ["replicasets"]),
      rule(["get", "list", "watch", "update"], [legacy], ["pods"]),
      eventsRule(),
    ]),
    c("disruption-controller", [
      rule(["get", "list", "watch"], [extensions, apps], ["deployments"]),
      rule(["get", "list", "watch"], [apps, extensions], ["replicasets"]),
      rule(["get", "list", "watch"], [legacy], ["replicationcontrollers"]),
      rule(["get", "list", "watch"], [policy], ["poddisruptionbudgets"]),
      rule(["get", "list", "watch"], [apps], ["statefulsets"]),
      rule(["update"], [policy], ["poddisruptionbudgets/status"]),
      rule(["get"], ["*"], ["*/scale"]),
      eventsRule(),
    ]),
    c("endpoint-controller", [
      rule(["get", "list", "watch"], [legacy], ["services", "pods"]),
      rule(["get", "list", "create", "update", "delete"], [legacy], ["endpoints"]),
      rule(["create"], [legacy], ["endpoints/restricted"]),
      eventsRule(),
    ]),
    c("endpointslice-controller", [
      rule(["get", "list", "watch"], [legacy], ["services", "pods", "nodes"]),
      rule(["update"], [legacy], ["services/finalizers"]),
      rule(["get", "list", "create", "update", "delete"], [discovery], ["endpointslices"]),
      eventsRule(),
    ]),
    // The GC controller needs to run list/watches, selective gets, and updates against any resource.
    c("generic-garbage-collector", [rule(["get", "list", "watch", "patch", "update", "delete"], ["*"], ["*"]), eventsRule()]),
    c("job-controller", [
      rule(["get", "list", "watch", "update", "patch"], [batch], ["jobs"]),
      rule(["update"], [batch], ["jobs/status"]),
      rule(["update"], [batch], ["jobs/finalizers"]),
      rule(["list", "watch", "create", "delete", "patch"], [legacy], ["pods"]),
      eventsRule(),
    ]),
    c("namespace-controller", [
      rule(["get", "list", "watch", "delete"], [legacy], ["namespaces"]),
      rule(["update"], [legacy], ["namespaces/finalize", "namespaces/status"]),
      rule(["get", "list", "delete", "deletecollection"], ["*"], ["*"]),
    ]),
    c("node-controller", [
      rule(["get", "list", "update", "delete", "patch"], [legacy], ["nodes"]),
      rule(["patch", "update"], [legacy], ["nodes/status"]),
      // used for pod deletion
      rule(["update"], [legacy], ["pods/status"]),
      rule(["list", "delete"], [legacy], ["pods"]),
      eventsRule(),
      rule(["get"], [legacy], ["pods"]),
      rule(["patch"], [legacy], ["pods/status"]),
    ]),
    c("persistent-volume-binder", [
      rule(["get", "list", "watch", "update", "create", "delete"], [legacy], ["persistentvolumes"]),
      rule(["update"], [legacy], ["persistentvolumes/status"]),
      rule(["get", "list", "watch", "update"], [legacy], ["persistentvolumeclaims"]),
      rule(["update"], [legacy], ["persistentvolumeclaims/status"]),
      rule(["list", "watch", "get", "create", "delete"], [legacy], ["pods"]),
      rule(["get", "list", "watch"], [storage], ["storageclasses"]),
      rule(["get", "create", "update", "delete"], [legacy], ["endpoints"]),
      rule(["get", "create", "delete"], [legacy], ["services"]),
      rule(["get"], [legacy], ["secrets"]),
      rule(["get", "list"], [legacy], ["nodes"]),
      rule(["watch"], [legacy], ["events"]),
      eventsRule(),
    ]),
    c("pod-garbage-collector", [rule(["list", "watch", "delete"], [legacy], ["pods"]), rule(["get", "list"], [legacy], ["nodes"]), rule(["patch"], [legacy], ["pods/status"])]),
    c("replicaset-controller", [
      rule(["get", "list", "watch", "update"], [apps, extensions], ["replicasets"]),
      rule(["update"], [apps, extensions], ["replicasets/status"]),
      rule(["update"], [apps, extensions], ["replicasets/finalizers"]),
      rule(["list", "watch", "patch", "create", "delete"], [legacy], ["pods"]),
      eventsRule(),
    ]),
    // Quota can count quota on anything for reconciliation, so it needs full viewing powers.
    c("resourcequota-controller", [rule(["list", "watch"], ["*"], ["*"]), rule(["update"], [legacy], ["resourcequotas/status"]), eventsRule()]),
    // Publishes kube-root-ca.crt into every namespace.
    c("root-ca-cert-publisher", [rule(["create", "update"], [legacy], ["configmaps"]), eventsRule()]),
    // Creates each namespace's "default" ServiceAccount.
    c("service-account-controller", [rule(["create"], [legacy], ["serviceaccounts"]), eventsRule()]),
    c("statefulset-controller", [
      rule(["list", "watch"], [legacy], ["pods"]),
      rule(["get", "list", "watch"], [apps], ["statefulsets"]),
      rule(["update"], [apps], ["statefulsets/status"]),
      rule(["update"], [apps], ["statefulsets/finalizers"]),
      rule(["get", "create", "delete", "update", "patch"], [legacy], ["pods"]),
      rule(["get", "create", "delete", "update", "patch", "list", "watch"], [apps], ["controllerrevisions"]),
      rule(["get", "create"], [legacy], ["persistentvolumeclaims"]),
      eventsRule(),
      rule(["update", "delete"], [legacy], ["persistentvolumeclaims"]),
    ]),
    c("taint-eviction-controller", [rule(["patch"], [legacy], ["pods/status"]), rule(["list", "watch", "delete"], [legacy], ["pods"]), rule(["list", "watch"], [legacy], ["nodes"]), eventsRule()]),
    c("ttl-after-finished-controller", [rule(["get", "list", "watch", "delete"], [batch], ["jobs"]), eventsRule()]),
    c("pvc-protection-controller", [rule(["get", "list", "watch", "update"], [legacy], ["persistentvolumeclaims"]), rule(["list", "watch", "get"], [legacy], ["pods"]), eventsRule()]),
    c("pv-protection-controller", [rule(["get", "list", "watch", "update"], [legacy], ["persistentvolumes"]), eventsRule()]),
  ];
}

/** Roles of upstream's policy.go (only the ones a kubelab cluster has use for) and kubelab's components. */
export function clusterRoles(): ClusterRole[] {
  return [
    // A "root" role which can do absolutely anything.
    clusterRole("cluster-admin", [rule(["*"], ["*"], ["*"]), urls(["*"], ["*"])]),
    // Just enough to determine if the server is ready and discover API versions for negotiation.
    clusterRole("system:discovery", [urls(["get"], ["/livez", "/readyz", "/healthz", "/version", "/version/", "/openapi", "/openapi/*", "/api", "/api/*", "/apis", "/apis/*"])]),
    // Read access to the monitoring endpoints.
    clusterRole("system:monitoring", [urls(["get"], ["/metrics", "/metrics/slis", "/livez", "/readyz", "/healthz", "/livez/*", "/readyz/*", "/healthz/*"])]),
    // Minimal resource access to allow a "normal" user to learn information about themselves.
    clusterRole("system:basic-user", [rule(["create"], [authorization], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]), rule(["create"], [authentication], ["selfsubjectreviews"])]),
    // Just enough power to read insensitive cluster information.
    clusterRole("system:public-info-viewer", [urls(["get"], ["/livez", "/readyz", "/healthz", "/version", "/version/"])]),
    // admin, edit and view are filled by the clusterrole-aggregation controller.
    clusterRole("admin", [], { aggregate: ["rbac.authorization.k8s.io/aggregate-to-admin"] }),
    clusterRole("edit", [], { labels: { "rbac.authorization.k8s.io/aggregate-to-admin": "true" }, aggregate: ["rbac.authorization.k8s.io/aggregate-to-edit"] }),
    clusterRole("view", [], { labels: { "rbac.authorization.k8s.io/aggregate-to-edit": "true" }, aggregate: ["rbac.authorization.k8s.io/aggregate-to-view"] }),
    clusterRole("system:aggregate-to-admin", [rule(["create"], [authorization], ["localsubjectaccessreviews"]), rule(ReadWrite, [rbac], ["roles", "rolebindings"])], {
      labels: { "rbac.authorization.k8s.io/aggregate-to-admin": "true" },
    }),
    clusterRole(
      "system:aggregate-to-edit",
      [
        // Read on escalating resources.
        rule(Read, [legacy], ["pods/attach", "pods/proxy", "pods/exec", "pods/portforward", "secrets", "services/proxy"]),
        rule(["impersonate"], [legacy], ["serviceaccounts"]),
        rule(Write, [legacy], ["pods", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward"]),
        rule(["create"], [legacy], ["pods/eviction"]),
        rule(Write, [legacy], ["replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services", "services/proxy", "persistentvolumeclaims", "configmaps", "secrets", "events"]),
        rule(["create"], [legacy], ["serviceaccounts/token"]),
        rule(Write, [apps], ["statefulsets", "statefulsets/scale", "daemonsets", "deployments", "deployments/scale", "deployments/rollback", "replicasets", "replicasets/scale"]),
        rule(Write, [autoscaling], ["horizontalpodautoscalers"]),
        rule(Write, [batch], ["jobs", "cronjobs"]),
        rule(Write, [extensions], ["daemonsets", "deployments", "deployments/scale", "deployments/rollback", "ingresses", "replicasets", "replicasets/scale", "replicationcontrollers/scale", "networkpolicies"]),
        rule(Write, [policy], ["poddisruptionbudgets"]),
        rule(Write, [networking], ["networkpolicies", "ingresses"]),
      ],
      { labels: { "rbac.authorization.k8s.io/aggregate-to-edit": "true" } },
    ),
    clusterRole(
      "system:aggregate-to-view",
      [
        rule(Read, [legacy], ["pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services", "services/status", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "configmaps"]),
        rule(Read, [legacy], ["limitranges", "resourcequotas", "bindings", "events", "pods/status", "resourcequotas/status", "namespaces/status", "replicationcontrollers/status", "pods/log"]),
        // Read access to namespaces at the namespace scope means you can read *this* namespace.
        rule(Read, [legacy], ["namespaces"]),
        rule(Read, [discovery], ["endpointslices"]),
        rule(Read, [apps], ["controllerrevisions", "statefulsets", "statefulsets/status", "statefulsets/scale", "daemonsets", "daemonsets/status", "deployments", "deployments/status", "deployments/scale", "replicasets", "replicasets/status", "replicasets/scale"]),
        rule(Read, [autoscaling], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
        rule(Read, [batch], ["jobs", "cronjobs", "cronjobs/status", "jobs/status"]),
        rule(Read, [extensions], ["daemonsets", "daemonsets/status", "deployments", "deployments/scale", "deployments/status", "ingresses", "ingresses/status", "replicasets", "replicasets/scale", "replicasets/status", "replicationcontrollers/scale", "networkpolicies"]),
        rule(Read, [policy], ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
        rule(Read, [networking], ["networkpolicies", "ingresses", "ingresses/status"]),
      ],
      { labels: { "rbac.authorization.k8s.io/aggregate-to-view": "true" } },
    ),
    // Defined as upstream; the Node authorizer, not a binding, is what serves nodes.
    clusterRole("system:node", nodeRules()),
    clusterRole("system:node-bootstrapper", [rule(["create", "get", "list", "watch"], [certificates], ["certificatesigningrequests"])]),
    clusterRole("system:auth-delegator", [rule(["create"], [authentication], ["tokenreviews"]), rule(["create"], [authorization], ["subjectaccessreviews"])]),
    clusterRole("system:kube-controller-manager", [
      eventsRule(),
      // Needed for leader election.
      rule(["create"], [coordination], ["leases"]),
      rule(["get", "update"], [coordination], ["leases"], ["kube-controller-manager"]),
      // Fundamental resources.
      rule(["create"], [legacy], ["secrets", "serviceaccounts"]),
      rule(["delete"], [legacy], ["secrets"]),
      rule(["get"], [legacy], ["namespaces", "secrets", "serviceaccounts", "configmaps"]),
      rule(["update"], [legacy], ["secrets", "serviceaccounts"]),
      // Needed to check API access. These creates are non-mutating.
      rule(["create"], [authentication], ["tokenreviews"]),
      rule(["create"], [authorization], ["subjectaccessreviews"]),
      // Needed for all shared informers.
      rule(["list", "watch"], ["*"], ["*"]),
      rule(["create"], [legacy], ["serviceaccounts/token"]),
    ]),
    clusterRole("system:kube-dns", [rule(["list", "watch"], [legacy], ["endpoints", "services"])]),
    clusterRole("system:certificates.k8s.io:certificatesigningrequests:nodeclient", [rule(["create"], [certificates], ["certificatesigningrequests/nodeclient"])]),
    clusterRole("system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", [rule(["create"], [certificates], ["certificatesigningrequests/selfnodeclient"])]),
    clusterRole("system:volume-scheduler", [rule(ReadUpdate, [legacy], ["persistentvolumes"]), rule(Read, [storage], ["storageclasses"]), rule(ReadUpdate, [legacy], ["persistentvolumeclaims"])]),
    clusterRole("system:certificates.k8s.io:kube-apiserver-client-kubelet-approver", [rule(["approve"], [certificates], ["signers"], ["kubernetes.io/kube-apiserver-client-kubelet"])]),
    clusterRole("system:service-account-issuer-discovery", [urls(["get"], ["/.well-known/openid-configuration", "/.well-known/openid-configuration/", "/openid/v1/jwks", "/openid/v1/jwks/"])]),
    // kube-proxy.
    clusterRole("system:node-proxier", [
      rule(["list", "watch"], [legacy], ["services", "endpoints"]),
      rule(["get", "list", "watch"], [legacy], ["nodes"]),
      eventsRule(),
      rule(["list", "watch"], [discovery], ["endpointslices"]),
    ]),
    clusterRole("system:kube-scheduler", [
      eventsRule(),
      // Leader election: the Lease kube-system/kube-scheduler.
      rule(["create"], [coordination], ["leases"]),
      rule(["get", "update"], [coordination], ["leases"], ["kube-scheduler"]),
      // Fundamental resources.
      rule(Read, [legacy], ["nodes"]),
      rule(["get", "list", "watch", "delete"], [legacy], ["pods"]),
      rule(["create"], [legacy], ["pods/binding", "bindings"]),
      rule(["patch", "update"], [legacy], ["pods/status"]),
      // Things that select pods.
      rule(Read, [legacy], ["services", "replicationcontrollers"]),
      rule(Read, [apps, extensions], ["replicasets"]),
      rule(Read, [apps], ["statefulsets"]),
      // Things that pods use or applies to them.
      rule(Read, [policy], ["poddisruptionbudgets"]),
      rule(Read, [legacy], ["persistentvolumeclaims", "persistentvolumes"]),
      // Needed to check API access. These creates are non-mutating.
      rule(["create"], [authentication], ["tokenreviews"]),
      rule(["create"], [authorization], ["subjectaccessreviews"]),
      // Needed for volume limits.
      rule(Read, [storage], ["csinodes"]),
      // Needed for namespaceSelector feature in pod affinity.
      rule(Read, [legacy], ["namespaces"]),
      rule(Read, [storage], ["csidrivers"]),
      rule(Read, [storage], ["csistoragecapacities"]),
    ]),
    ...controllerRoles(),
    ...kubelabClusterRoles(),
  ];
}

/**
 * kubelab's components, each from reading its code (every client call, informer, lease and event
 * recorder). The controller-manager runs without --use-service-account-credentials: its own identity
 * does every controller's work, so it holds the union of the controller roles besides its own.
 */
export function kubelabClusterRoles(): ClusterRole[] {
  return [
    clusterRole("kubelab:controller-manager", [
      ...controllerRoles().flatMap((r) => r.rules ?? []),
      // controllers/volume/classes.ts: the simulated cloud's built-in StorageClasses and CSIDrivers
      // (on EKS the EBS/EFS CSI add-ons install theirs), created when missing.
      rule(["get", "create"], [storage], ["storageclasses", "csidrivers"]),
    ]),
    // controllers/cloud (node groups, cluster autoscaler, serverless scheduler), cli/cloud-controller.ts.
    clusterRole("system:cloud-controller-manager", [
      eventsRule(),
      rule(["create"], [coordination], ["leases"]),
      rule(["get", "update"], [coordination], ["leases"], ["kubelab-cloud-controller"]),
      // Node groups delete their instances' Nodes; the autoscaler taints (ToBeDeleted) and deletes them.
      rule(["get", "list", "watch", "update", "patch", "delete"], [legacy], ["nodes"]),
      rule(["update", "patch"], [legacy], ["nodes/status"]),
      // Scale-down drains (evictions); the serverless scheduler binds its pods.
      rule(["get", "list", "watch"], [legacy], ["pods"]),
      rule(["create"], [legacy], ["pods/eviction", "pods/binding", "bindings"]),
      rule(["update", "patch"], [legacy], ["pods/status"]),
      // The autoscaler's simulation: what a pod needs and what may not be disrupted.
      rule(Read, [policy], ["poddisruptionbudgets"]),
      rule(Read, [legacy], ["persistentvolumeclaims", "persistentvolumes"]),
      rule(Read, [storage], ["storageclasses"]),
      rule(Read, [apps], ["replicasets", "statefulsets", "daemonsets"]),
      rule(Read, [batch], ["jobs"]),
    ]),
    // proxy/dns: the cluster DNS reads Services, their EndpointSlices and Namespaces (the Role below lets it keep kube-dns's own).
    clusterRole("kubelab:kube-dns", [rule(["list", "watch"], [legacy], ["endpoints", "services", "namespaces"]), rule(["list", "watch"], [discovery], ["endpointslices"])]),
    // proxy/ingress and proxy/loadbalancer.
    clusterRole("kubelab:ingress-controller", [
      eventsRule(),
      rule(Read, [networking], ["ingresses"]),
      rule(["update", "patch"], [networking], ["ingresses/status"]),
      rule(["get", "list", "watch", "create"], [networking], ["ingressclasses"]),
      rule(Read, [legacy], ["services"]),
      rule(["update", "patch"], [legacy], ["services/status"]),
      rule(["list", "watch"], [discovery], ["endpointslices"]),
      // TLS certificates of the Ingresses' spec.tls.
      rule(Read, [legacy], ["secrets"]),
      // LoadBalancer addresses are the nodes'.
      rule(Read, [legacy], ["nodes"]),
    ]),
    // kubelet/pool.ts, kubelet/cloudpool.ts: the pool's shared informers (each node writes as itself).
    clusterRole("kubelab:kubelet-pool", [rule(Read, [legacy], ["pods", "nodes"]), eventsRule()]),
  ];
}

export function clusterRoleBindings(): ClusterRoleBinding[] {
  return [
    clusterBinding("cluster-admin", [group("system:masters")]),
    clusterBinding("system:monitoring", [group("system:monitoring")]),
    clusterBinding("system:discovery", [group("system:authenticated")]),
    clusterBinding("system:basic-user", [group("system:authenticated")]),
    clusterBinding("system:public-info-viewer", [group("system:authenticated"), group("system:unauthenticated")]),
    clusterBinding("system:node-proxier", [user("system:kube-proxy")]),
    clusterBinding("system:kube-controller-manager", [user("system:kube-controller-manager")]),
    clusterBinding("system:kube-dns", [sa("kube-system", "kube-dns")]),
    clusterBinding("system:kube-scheduler", [user("system:kube-scheduler")]),
    clusterBinding("system:volume-scheduler", [user("system:kube-scheduler")]),
    // Left without subjects since the Node authorizer serves nodes (upstream keeps it for tightening).
    clusterBinding("system:node", []),
    clusterBinding("system:service-account-issuer-discovery", [group("system:serviceaccounts")]),
    // kubeadm's bootstrap bindings: nodes (and the pools, which also create CSRs) get client certificates.
    clusterBinding("kubeadm:kubelet-bootstrap", [group("system:bootstrappers")], "system:node-bootstrapper"),
    clusterBinding("kubeadm:node-autoapprove-bootstrap", [group("system:bootstrappers")], "system:certificates.k8s.io:certificatesigningrequests:nodeclient"),
    clusterBinding("kubeadm:node-autoapprove-certificate-rotation", [group("system:nodes")], "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"),
    // kubelab's components.
    clusterBinding("kubelab:controller-manager", [user("system:kube-controller-manager")]),
    clusterBinding("system:cloud-controller-manager", [user("system:cloud-controller-manager")]),
    clusterBinding("kubelab:kube-dns", [user("system:kube-dns")]),
    clusterBinding("kubelab:ingress-controller", [user("kubelab:ingress-controller")]),
    clusterBinding("kubelab:kubelet-pool", [group("kubelab:kubelet-pools")]),
  ];
}

/** namespace_policy.go's kube-system roles, and kubelab's namespaced needs. */
export function namespaceRoles(): Role[] {
  return [
    role("kube-system", "extension-apiserver-authentication-reader", [rule(["get", "list", "watch"], [legacy], ["configmaps"], ["extension-apiserver-authentication"])]),
    role("kube-system", "system::leader-locking-kube-controller-manager", [rule(["watch"], [legacy], ["configmaps"]), rule(["get", "update"], [legacy], ["configmaps"], ["kube-controller-manager"])]),
    role("kube-system", "system::leader-locking-kube-scheduler", [rule(["watch"], [legacy], ["configmaps"]), rule(["get", "update"], [legacy], ["configmaps"], ["kube-scheduler"])]),
    // The cloud controller keeps its simulated cloud's state in kube-system ConfigMaps.
    role("kube-system", "kubelab:cloud-controller-manager", [rule(ReadWrite, [legacy], ["configmaps"])]),
    // The DNS server keeps kube-system/kube-dns and its EndpointSlice.
    role("kube-system", "kubelab:kube-dns", [rule(["get", "create", "update", "patch"], [legacy], ["services"]), rule(["get", "create", "update", "patch", "delete"], [discovery], ["endpointslices"])]),
    // The cloud pools watch their zone's instances (ConfigMaps of the simulated cloud).
    role("kube-system", "kubelab:kubelet-pool", [rule(Read, [legacy], ["configmaps"])]),
  ];
}

export function namespaceRoleBindings(): RoleBinding[] {
  return [
    roleBinding("kube-system", "system::extension-apiserver-authentication-reader", [user("system:kube-controller-manager"), user("system:kube-scheduler")], "extension-apiserver-authentication-reader"),
    roleBinding("kube-system", "system::leader-locking-kube-controller-manager", [user("system:kube-controller-manager"), sa("kube-system", "kube-controller-manager")]),
    roleBinding("kube-system", "system::leader-locking-kube-scheduler", [user("system:kube-scheduler"), sa("kube-system", "kube-scheduler")]),
    roleBinding("kube-system", "kubelab:cloud-controller-manager", [user("system:cloud-controller-manager")]),
    roleBinding("kube-system", "kubelab:kube-dns", [user("system:kube-dns")]),
    roleBinding("kube-system", "kubelab:kubelet-pool", [group("kubelab:kubelet-pools")]),
  ];
}

// ---- reconciliation ---------------------------------------------------------------------------

type Rbac = ClusterRole | Role | RoleBinding;

function protectedFromUpdate(o: Rbac): boolean {
  return o.metadata.annotations?.[AUTOUPDATE_ANNOTATION] === "false";
}

/** merge(expected, existing): existing keys win. */
function mergeMaps(expected: Record<string, string> | undefined, existing: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!expected && !existing) return undefined;
  return { ...(expected ?? {}), ...(existing ?? {}) };
}

function sameJSON(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** computeReconciledRole (union mode): the existing role plus expected labels, annotations, missing rules and selectors. */
export function reconcileRole<T extends ClusterRole | Role>(existing: T, expected: T): T | undefined {
  const next = structuredClone(existing) as T;
  next.metadata.labels = mergeMaps(expected.metadata.labels, existing.metadata.labels);
  next.metadata.annotations = mergeMaps(expected.metadata.annotations, existing.metadata.annotations);
  const { missing } = covers(existing.rules ?? [], expected.rules ?? []);
  if (missing.length) next.rules = [...(existing.rules ?? []), ...missing];
  const want = (expected as ClusterRole).aggregationRule?.clusterRoleSelectors;
  if (want) {
    const have = (existing as ClusterRole).aggregationRule?.clusterRoleSelectors ?? [];
    const add = want.filter((w) => !have.some((h) => sameJSON(h, w)));
    if (add.length) (next as ClusterRole).aggregationRule = { clusterRoleSelectors: [...have, ...add] };
  }
  return sameJSON(next, existing) ? undefined : next;
}

function subjectKey(s: Subject): string {
  return `${s.kind}\u0000${s.apiGroup ?? ""}\u0000${s.namespace ?? ""}\u0000${s.name}`;
}

/** computeReconciledRoleBinding (union mode): the existing binding plus missing subjects; undefined when nothing changes. */
export function reconcileBinding(existing: RoleBinding, expected: RoleBinding): { next?: RoleBinding; recreate: boolean } {
  // A roleRef cannot change: a binding pointing elsewhere is deleted and created again.
  if (!sameJSON(existing.roleRef, expected.roleRef)) {
    const next = structuredClone(expected);
    next.subjects = [...(existing.subjects ?? [])];
    for (const s of expected.subjects ?? []) if (!next.subjects.some((x) => subjectKey(x) === subjectKey(s))) next.subjects.push(s);
    return { next, recreate: true };
  }
  const next = structuredClone(existing);
  next.metadata.labels = mergeMaps(expected.metadata.labels, existing.metadata.labels);
  next.metadata.annotations = mergeMaps(expected.metadata.annotations, existing.metadata.annotations);
  const subjects = [...(existing.subjects ?? [])];
  for (const s of expected.subjects ?? []) if (!subjects.some((x) => subjectKey(x) === subjectKey(s))) subjects.push(s);
  if (subjects.length) next.subjects = subjects;
  return sameJSON(next, existing) ? { recreate: false } : { next, recreate: false };
}

export interface ReconcileReport {
  created: string[];
  updated: string[];
  skipped: string[];
}

const isCode = (e: unknown, code: number): boolean => typeof e === "object" && e !== null && (e as { code?: number }).code === code;

async function reconcileObject(registry: Registry, resource: "clusterroles" | "roles" | "clusterrolebindings" | "rolebindings", expected: Rbac, report: ReconcileReport): Promise<void> {
  const store = registry.store(RBAC_GROUP, resource);
  const ns = expected.metadata.namespace ?? "";
  const name = expected.metadata.name!;
  const label = `${resource}/${ns ? ns + "/" : ""}${name}`;
  for (let attempt = 0; attempt < 5; attempt++) {
    let existing: Rbac | undefined;
    try {
      existing = (await store.get(ns, name)) as Rbac;
    } catch (e) {
      if (!isCode(e, 404)) throw e;
    }
    if (!existing) {
      try {
        await store.create(ns, structuredClone(expected));
        report.created.push(label);
        return;
      } catch (e) {
        if (isCode(e, 409)) continue; // created meanwhile (another apiserver): reconcile it
        throw e;
      }
    }
    if (protectedFromUpdate(existing)) {
      report.skipped.push(label);
      return;
    }
    const isBinding = resource.endsWith("bindings");
    if (isBinding) {
      const { next, recreate } = reconcileBinding(existing as RoleBinding, expected as RoleBinding);
      if (!next) return;
      if (recreate) {
        try {
          await store.delete(ns, name, {});
        } catch (e) {
          if (!isCode(e, 404)) throw e;
        }
        const { resourceVersion: _rv, uid: _uid, creationTimestamp: _ct, ...m } = next.metadata;
        next.metadata = m;
        try {
          await store.create(ns, next);
        } catch (e) {
          if (isCode(e, 409)) continue;
          throw e;
        }
        report.updated.push(label);
        return;
      }
      try {
        await store.update(ns, name, () => next);
        report.updated.push(label);
        return;
      } catch (e) {
        if (isCode(e, 409)) continue;
        throw e;
      }
    }
    const next = reconcileRole(existing as ClusterRole, expected as ClusterRole);
    if (!next) return;
    try {
      await store.update(ns, name, () => next);
      report.updated.push(label);
      return;
    } catch (e) {
      if (isCode(e, 409)) continue;
      throw e;
    }
  }
  throw new Error(`rbac bootstrap: ${label} kept changing while being reconciled`);
}

/** The "rbac/bootstrap-roles" post-start hook: every default role and binding, reconciled. */
export async function reconcileBootstrapPolicy(registry: Registry): Promise<ReconcileReport> {
  const report: ReconcileReport = { created: [], updated: [], skipped: [] };
  for (const r of clusterRoles()) await reconcileObject(registry, "clusterroles", r, report);
  for (const b of clusterRoleBindings()) await reconcileObject(registry, "clusterrolebindings", b, report);
  for (const r of namespaceRoles()) await reconcileObject(registry, "roles", r, report);
  for (const b of namespaceRoleBindings()) await reconcileObject(registry, "rolebindings", b, report);
  return report;
}
