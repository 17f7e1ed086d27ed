// The default policy as kubelab's components will meet it: every request each component makes
// (read off its client calls, informers, leases and event recorders) is allowed for its identity,
// and the grants stop where they should. A missing rule here is a component failing in the suites.

import { describe, expect, it } from "vitest";
import type { UserInfo } from "../auth.ts";
import { clusterRoleBindings, clusterRoles, namespaceRoleBindings, namespaceRoles } from "./bootstrappolicy.ts";
import { RBACAuthorizer, staticRBACSource } from "./rbac.ts";
import type { Attributes } from "./types.ts";

const rbac = new RBACAuthorizer(staticRBACSource({ clusterRoles: clusterRoles(), clusterRoleBindings: clusterRoleBindings(), roles: namespaceRoles(), roleBindings: namespaceRoleBindings() }));

const who = (name: string, ...groups: string[]): UserInfo => ({ name, uid: "", groups: [...groups, "system:authenticated"] });
const scheduler = who("system:kube-scheduler");
const controllerManager = who("system:kube-controller-manager");
const cloud = who("system:cloud-controller-manager");
const proxy = who("system:kube-proxy");
const dns = who("system:kube-dns");
const ingress = who("kubelab:ingress-controller");
const pool = who("kubelab:kubelet-pool:z1", "kubelab:kubelet-pools", "system:bootstrappers");
const anonymous: UserInfo = { name: "system:anonymous", uid: "", groups: ["system:unauthenticated"] };

/** "verb group/resource[/sub] [ns/]name": a compact request, "" for the core group and cluster scope; "@name" is a cluster-scoped name that holds slashes (signers). */
function req(user: UserInfo, spec: string): Attributes {
  const [verb, gr, target = ""] = spec.split(" ");
  const [group, resource, subresource = ""] = gr!.split("/");
  const [namespace, name] = target.startsWith("@") ? ["", target.slice(1)] : target.includes("/") ? target.split("/") : ["", target];
  return { user, verb: verb!, isResourceRequest: true, path: "", apiGroup: group!, apiVersion: "v1", resource: resource!, subresource, namespace: namespace!, name: name! };
}
function url(user: UserInfo, verb: string, path: string): Attributes {
  return { user, verb, isResourceRequest: false, path, apiGroup: "", apiVersion: "", resource: "", subresource: "", namespace: "", name: "" };
}
const allowed = (a: Attributes) => rbac.authorize(a).decision === "Allow";

const needs: [string, UserInfo, string[]][] = [
  [
    "the scheduler",
    scheduler,
    [
      "list /pods",
      "watch /nodes",
      "list /persistentvolumeclaims",
      "watch /persistentvolumes",
      "list storage.k8s.io/storageclasses",
      "create /pods/binding default/web-0",
      "patch /pods/status default/web-0",
      "delete /pods default/victim",
      "patch /persistentvolumes pv-1",
      "patch /persistentvolumeclaims default/data",
      "create /events default/",
      "patch /events default/web-0.1",
      "create coordination.k8s.io/leases kube-system/",
      "get coordination.k8s.io/leases kube-system/kube-scheduler",
      "update coordination.k8s.io/leases kube-system/kube-scheduler",
    ],
  ],
  [
    "the controller-manager (every controller under one identity)",
    controllerManager,
    [
      "get coordination.k8s.io/leases kube-system/kube-controller-manager",
      "update coordination.k8s.io/leases kube-system/kube-controller-manager",
      "create coordination.k8s.io/leases kube-system/",
      "list apps/deployments",
      "watch rbac.authorization.k8s.io/clusterroles",
      "create /pods default/",
      "create apps/replicasets default/",
      "update apps/deployments/status default/web",
      "create apps/controllerrevisions default/",
      "create batch/jobs default/",
      "update batch/cronjobs/status default/nightly",
      "create /endpoints default/",
      "create discovery.k8s.io/endpointslices default/",
      "delete /pods default/web-0",
      "update /nodes/status n1",
      "patch /nodes n1",
      "delete /nodes n1",
      "create /persistentvolumes",
      "update /persistentvolumeclaims/status default/data",
      "create /persistentvolumeclaims default/",
      "create storage.k8s.io/volumeattachments",
      "delete storage.k8s.io/volumeattachments va-1",
      "update /resourcequotas/status default/q",
      "update policy/poddisruptionbudgets/status default/pdb",
      "get apps/deployments/scale default/web",
      "deletecollection apps/deployments doomed/",
      "update /namespaces/finalize doomed",
      "patch apps/replicasets default/web-1",
      "create /events default/",
      "create /serviceaccounts default/",
      "create /secrets default/",
      "create /configmaps default/",
      "update /configmaps default/kube-root-ca.crt",
      "update certificates.k8s.io/certificatesigningrequests/approval csr-1",
      "update certificates.k8s.io/certificatesigningrequests/status csr-1",
      "approve certificates.k8s.io/signers @kubernetes.io/kube-apiserver-client-kubelet",
      "sign certificates.k8s.io/signers @kubernetes.io/kube-apiserver-client",
      "escalate rbac.authorization.k8s.io/clusterroles admin",
      "update rbac.authorization.k8s.io/clusterroles admin",
    ],
  ],
  [
    "the cloud controller",
    cloud,
    [
      "get coordination.k8s.io/leases kube-system/kubelab-cloud-controller",
      "update coordination.k8s.io/leases kube-system/kubelab-cloud-controller",
      "list /configmaps kube-system/",
      "create /configmaps kube-system/",
      "update /configmaps kube-system/kubelab-cloud-ng-a",
      "delete /configmaps kube-system/kubelab-cloud-ng-a",
      "watch /nodes",
      "update /nodes n1",
      "delete /nodes n1",
      "watch /pods",
      "create /pods/eviction default/web-0",
      "create /pods/binding default/fn-0",
      "list policy/poddisruptionbudgets",
      "list /persistentvolumes",
      "list storage.k8s.io/storageclasses",
      "create /events default/",
    ],
  ],
  ["kube-proxy", proxy, ["list /services", "watch discovery.k8s.io/endpointslices", "watch /nodes", "create /events default/"]],
  [
    "the cluster DNS",
    dns,
    [
      "watch /services",
      "list discovery.k8s.io/endpointslices",
      "watch /namespaces",
      "create /services kube-system/",
      "update /services kube-system/kube-dns",
      "create discovery.k8s.io/endpointslices kube-system/",
      "update discovery.k8s.io/endpointslices kube-system/kube-dns-a",
      "delete discovery.k8s.io/endpointslices kube-system/kube-dns-a",
    ],
  ],
  [
    "the ingress controller",
    ingress,
    [
      "watch networking.k8s.io/ingresses",
      "list networking.k8s.io/ingressclasses",
      "get networking.k8s.io/ingressclasses kubelab",
      "create networking.k8s.io/ingressclasses",
      "patch networking.k8s.io/ingresses/status default/web",
      "watch /services",
      "patch /services/status default/lb",
      "list discovery.k8s.io/endpointslices",
      "watch /secrets",
      "watch /nodes",
      "create /events default/",
    ],
  ],
  [
    "a kubelet pool's shared informers",
    pool,
    ["list /pods", "watch /pods", "list /nodes", "watch /nodes", "list /configmaps kube-system/", "watch /configmaps kube-system/", "create certificates.k8s.io/certificatesigningrequests", "create certificates.k8s.io/certificatesigningrequests/nodeclient"],
  ],
];

describe("the default policy grants each component what its code does", () => {
  for (const [component, user, requests] of needs) {
    it(`${component}`, () => {
      const refused = requests.filter((r) => !allowed(req(user, r)));
      expect(refused).toEqual([]);
    });
  }

  it("everyone may discover the API and ask about themselves; the anonymous only the public info", () => {
    const jane = who("jane");
    expect(allowed(url(jane, "get", "/apis/apps/v1"))).toBe(true);
    expect(allowed(req(jane, "create authorization.k8s.io/selfsubjectaccessreviews"))).toBe(true);
    expect(allowed(req(jane, "create authentication.k8s.io/selfsubjectreviews"))).toBe(true);
    expect(allowed(url(anonymous, "get", "/version"))).toBe(true);
    expect(allowed(url(anonymous, "get", "/apis"))).toBe(false);
    expect(allowed(req(jane, "list /pods default/"))).toBe(false);
  });

  it("stops at what a component does not do", () => {
    expect(allowed(req(scheduler, "get /secrets default/s"))).toBe(false);
    expect(allowed(req(scheduler, "update coordination.k8s.io/leases kube-system/kube-controller-manager"))).toBe(false);
    expect(allowed(req(proxy, "update /services default/web"))).toBe(false);
    expect(allowed(req(dns, "update /services default/web"))).toBe(false);
    expect(allowed(req(pool, "update /nodes n1"))).toBe(false);
    expect(allowed(req(pool, "list /configmaps default/"))).toBe(false);
    expect(allowed(req(ingress, "delete /services default/web"))).toBe(false);
    expect(allowed(req(cloud, "list /configmaps default/"))).toBe(false);
    expect(allowed(req(controllerManager, "sign certificates.k8s.io/signers @example.com/custom"))).toBe(false);
    expect(allowed(req(controllerManager, "approve certificates.k8s.io/signers @kubernetes.io/kube-apiserver-client"))).toBe(false);
  });

  it("gives system:masters everything through cluster-admin", () => {
    const admin = who("kubelab-admin", "system:masters");
    expect(allowed(req(admin, "delete /secrets default/s"))).toBe(true);
    expect(allowed(url(admin, "get", "/metrics"))).toBe(true);
  });
});
