// NodeRestriction (plugin/pkg/admission/noderestriction): what the Node authorizer lets every node
// write, narrowed to the node itself — its own Node (labels only from the kubelet's set, no taint
// changes), status of and deletes of pods bound to it, mirror pods bound to it, tokens only for pods
// on it, its own Lease in kube-node-lease.

import type { KubeObject } from "../../api/index.ts";
import type { UserInfo } from "../auth.ts";
import { podRefs } from "../authorization/node.ts";
import { errors } from "../errors.ts";
import { forbidden, type AdmissionAttributes, type ValidatingPlugin } from "./index.ts";

const NODE_USER_PREFIX = "system:node:";
const NODES_GROUP = "system:nodes";
const NODE_LEASE_NAMESPACE = "kube-node-lease";
const MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror";

/** Labels a kubelet may set on its Node (kubeletapis.IsKubeletLabel). */
const KUBELET_LABELS = new Set([
  "kubernetes.io/hostname",
  "topology.kubernetes.io/zone",
  "topology.kubernetes.io/region",
  "failure-domain.beta.kubernetes.io/zone",
  "failure-domain.beta.kubernetes.io/region",
  "node.kubernetes.io/instance-type",
  "beta.kubernetes.io/instance-type",
  "kubernetes.io/os",
  "beta.kubernetes.io/os",
  "kubernetes.io/arch",
  "beta.kubernetes.io/arch",
]);
const KUBELET_LABEL_NAMESPACES = ["kubelet.kubernetes.io", "node.kubernetes.io"];

function labelNamespace(label: string): string {
  const i = label.indexOf("/");
  return i < 0 ? "" : label.slice(0, i);
}

function isKubeletLabel(label: string): boolean {
  if (KUBELET_LABELS.has(label)) return true;
  const ns = labelNamespace(label);
  return KUBELET_LABEL_NAMESPACES.some((n) => ns === n || ns.endsWith("." + n));
}

function isKubernetesLabel(label: string): boolean {
  const ns = labelNamespace(label);
  return ns === "kubernetes.io" || ns.endsWith(".kubernetes.io") || ns === "k8s.io" || ns.endsWith(".k8s.io");
}

/** getForbiddenLabels: node-restriction.kubernetes.io labels, and kubernetes.io / k8s.io labels outside the kubelet's set. */
export function forbiddenNodeLabels(modified: Iterable<string>): string[] {
  const out = new Set<string>();
  for (const label of modified) {
    const ns = labelNamespace(label);
    if (ns === "node-restriction.kubernetes.io" || ns.endsWith(".node-restriction.kubernetes.io")) out.add(label);
    if (isKubernetesLabel(label) && !isKubeletLabel(label)) out.add(label);
  }
  return [...out].sort();
}

/** getModifiedLabels: labels added, removed or changed. */
function modifiedLabels(a: Record<string, string> | undefined, b: Record<string, string> | undefined): Set<string> {
  const out = new Set<string>();
  for (const [k, v] of Object.entries(a ?? {})) if (b?.[k] !== v) out.add(k);
  for (const [k, v] of Object.entries(b ?? {})) if (a?.[k] !== v) out.add(k);
  return out;
}

function nodeName(u: UserInfo | undefined): { isNode: boolean; name: string } {
  if (!u || !u.name.startsWith(NODE_USER_PREFIX) || !u.groups.includes(NODES_GROUP)) return { isNode: false, name: "" };
  return { isNode: true, name: u.name.slice(NODE_USER_PREFIX.length) };
}

type Json = Record<string, unknown>;
const spec = (o: KubeObject | undefined): Json => ((o as Json | undefined)?.spec as Json | undefined) ?? {};
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** The pod store's current object, for an eviction or a TokenRequest bound to a pod. */
export type PodGetter = (namespace: string, name: string) => Promise<KubeObject | undefined>;
export type NodeGetter = (name: string) => Promise<KubeObject | undefined>;

export class NodeRestriction implements ValidatingPlugin {
  readonly name = "NodeRestriction";

  constructor(
    private readonly pods: PodGetter,
    private readonly nodes: NodeGetter,
  ) {}

  /** Every operation of a node, subresources and deletes included. */
  handles(a: AdmissionAttributes): boolean {
    return nodeName(a.userInfo).isNode;
  }

  async validate(a: AdmissionAttributes): Promise<void> {
    const { isNode, name: node } = nodeName(a.userInfo);
    if (!isNode) return;
    if (!node) throw forbidden(a, `could not determine node from user ${JSON.stringify(a.userInfo!.name)}`);
    const gr = `${a.info.group}/${a.info.resource}`;
    switch (gr) {
      case "/pods":
        switch (a.subresource ?? "") {
          case "":
            return this.admitPod(node, a);
          case "status":
            return this.admitPodStatus(node, a);
          case "eviction":
            return this.admitPodEviction(node, a);
          default:
            throw forbidden(a, `unexpected pod subresource ${JSON.stringify(a.subresource)}, only 'status' and 'eviction' are allowed`);
        }
      case "/nodes":
        return this.admitNode(node, a);
      case "/persistentvolumeclaims":
        // The Node authorizer already limits a node to get claims; only a status write is narrowed here.
        if (a.subresource === "status") return this.admitPVCStatus(node, a);
        return;
      case "/serviceaccounts":
        return this.admitServiceAccount(a);
      case "coordination.k8s.io/leases":
        return this.admitLease(node, a);
      case "storage.k8s.io/csinodes":
        return this.admitCSINode(node, a);
    }
  }

  private async admitPod(node: string, a: AdmissionAttributes): Promise<void> {
    switch (a.operation) {
      case "CREATE":
        return this.admitPodCreate(node, a);
      case "DELETE": {
        // Only a pod bound to the node itself (the DELETE's object is the stored pod).
        if (spec(a.oldObject ?? a.object).nodeName !== node) throw forbidden(a, `node ${JSON.stringify(node)} can only delete pods with spec.nodeName set to itself`);
        return;
      }
      default:
        throw forbidden(a, `unexpected operation ${JSON.stringify(a.operation)}, node ${JSON.stringify(node)} can only create and delete mirror pods`);
    }
  }

  private async admitPodCreate(node: string, a: AdmissionAttributes): Promise<void> {
    const pod = a.object;
    const q = JSON.stringify(node);
    if (!(MIRROR_POD_ANNOTATION in (pod.metadata.annotations ?? {}))) {
      throw forbidden(a, `pod does not have ${JSON.stringify(MIRROR_POD_ANNOTATION)} annotation, node ${q} can only create mirror pods`);
    }
    if (spec(pod).nodeName !== node) throw forbidden(a, `node ${q} can only create pods with spec.nodeName set to itself`);
    const owners = pod.metadata.ownerReferences ?? [];
    if (owners.length > 1) throw forbidden(a, `node ${q} can only create pods with a single owner reference set to itself`);
    if (owners.length === 0) throw forbidden(a, `node ${q} can only create pods with an owner reference set to itself`);
    const owner = owners[0]!;
    if (owner.apiVersion !== "v1" || owner.kind !== "Node" || owner.name !== node) throw forbidden(a, `node ${q} can only create pods with an owner reference set to itself`);
    if (!owner.controller) throw forbidden(a, `node ${q} can only create pods with a controller owner reference set to itself`);
    if (owner.blockOwnerDeletion) throw forbidden(a, `node ${q} must not set blockOwnerDeletion on an owner reference`);
    const self = await this.nodes(node);
    if (!self) throw errors.notFound({ group: "", resource: "nodes" }, node);
    if (owner.uid !== self.metadata.uid) throw forbidden(a, `node ${node} UID mismatch: expected ${self.metadata.uid} got ${owner.uid}`);
    // A mirror pod may not reference any other API object.
    const s = spec(pod);
    if (s.serviceAccountName) throw forbidden(a, `node ${q} can not create pods that reference a service account`);
    const refs = podRefs(pod);
    if (refs.secrets.size) throw forbidden(a, `node ${q} can not create pods that reference secrets`);
    if (refs.configMaps.size) throw forbidden(a, `node ${q} can not create pods that reference configmaps`);
    for (const v of (s.volumes as Json[] | undefined) ?? []) {
      if (v.persistentVolumeClaim) throw forbidden(a, `node ${q} can not create pods that reference persistentvolumeclaims`);
    }
  }

  private admitPodStatus(node: string, a: AdmissionAttributes): void {
    if (a.operation !== "UPDATE") throw forbidden(a, `unexpected operation ${JSON.stringify(a.operation)}`);
    if (spec(a.oldObject).nodeName !== node) throw forbidden(a, `node ${JSON.stringify(node)} can only update pod status for pods with spec.nodeName set to itself`);
    if (!same(a.oldObject?.metadata.labels ?? {}, a.object.metadata.labels ?? {})) throw forbidden(a, `node ${JSON.stringify(node)} cannot update labels through pod status`);
  }

  private async admitPodEviction(node: string, a: AdmissionAttributes): Promise<void> {
    if (a.operation !== "CREATE") throw forbidden(a, `unexpected operation ${a.operation}`);
    // The pod's name from the request path, not the submitted Eviction, when the path has one.
    const podName = a.name || a.object.metadata.name || "";
    if (!podName) throw forbidden(a, "could not determine pod from request data");
    const pod = await this.pods(a.namespace, podName);
    if (!pod) throw errors.notFound({ group: "", resource: "pods" }, podName);
    if (spec(pod).nodeName !== node) throw forbidden(a, `node ${node} can only evict pods with spec.nodeName set to itself`);
  }

  private admitNode(node: string, a: AdmissionAttributes): void {
    const requested = a.operation === "CREATE" ? a.object.metadata.name ?? a.name : a.name;
    if (requested !== node) throw forbidden(a, `node ${JSON.stringify(node)} is not allowed to modify node ${JSON.stringify(requested)}`);
    const q = JSON.stringify(node);
    if (a.operation === "CREATE") {
      if (spec(a.object).configSource) throw forbidden(a, `node ${q} is not allowed to create pods with a non-nil configSource`);
      const bad = forbiddenNodeLabels(modifiedLabels(a.object.metadata.labels, undefined));
      if (bad.length) throw forbidden(a, `node ${q} is not allowed to set the following labels: ${bad.join(", ")}`);
    }
    if (a.operation === "UPDATE" && a.oldObject) {
      const cur = spec(a.object);
      const old = spec(a.oldObject);
      if (cur.configSource && !same(cur.configSource, old.configSource)) throw forbidden(a, `node ${q} is not allowed to update configSource to a new non-nil configSource`);
      // Removing or changing its taints would let a node steer disallowed workloads to itself.
      if (!same(cur.taints ?? [], old.taints ?? [])) throw forbidden(a, `node ${q} is not allowed to modify taints`);
      const bad = forbiddenNodeLabels(modifiedLabels(a.object.metadata.labels, a.oldObject.metadata.labels));
      if (bad.length) throw forbidden(a, `is not allowed to modify labels: ${bad.join(", ")}`);
    }
  }

  private admitPVCStatus(node: string, a: AdmissionAttributes): void {
    if (a.operation !== "UPDATE" || !a.oldObject) throw forbidden(a, `unexpected operation ${JSON.stringify(a.operation)}`);
    const strip = (o: KubeObject) => {
      const c = structuredClone(o) as Json & KubeObject;
      delete c.metadata.resourceVersion;
      delete c.metadata.managedFields;
      const st = (c.status as Json | undefined) ?? {};
      delete st.capacity;
      delete st.conditions;
      delete st.allocatedResourceStatuses;
      delete st.allocatedResources;
      return c;
    };
    if (!same(strip(a.oldObject), strip(a.object))) throw forbidden(a, `node ${JSON.stringify(node)} is not allowed to update fields other than status.capacity and status.conditions`);
  }

  /** TokenRequests from a node must be bound to a pod scheduled on that node. */
  private async admitServiceAccount(a: AdmissionAttributes): Promise<void> {
    if (a.operation !== "CREATE" || a.subresource !== "token") return;
    await checkNodeTokenRequest(a.userInfo, a.namespace, a.name, a.object, this.pods);
  }

  private admitLease(node: string, a: AdmissionAttributes): void {
    if (a.namespace !== NODE_LEASE_NAMESPACE) throw forbidden(a, `can only access leases in the ${JSON.stringify(NODE_LEASE_NAMESPACE)} system namespace`);
    const name = a.operation === "CREATE" ? a.object.metadata.name : a.name;
    if (name !== node) throw forbidden(a, "can only access node lease with the same name as the requesting node");
  }

  private admitCSINode(node: string, a: AdmissionAttributes): void {
    const name = a.operation === "CREATE" ? a.object.metadata.name : a.name;
    if (name !== node) throw forbidden(a, "can only access CSINode with the same name as the requesting node");
  }
}

/**
 * NodeRestriction's TokenRequest check (admitServiceAccount). POST serviceaccounts/<sa>/token is
 * served by a registerSubresourceCreate handler, not a store, so the admission chain never sees it:
 * the handler calls this with the requester before issuing a token. Does nothing for a user that
 * is not a node; for a node, resolves when the request is bound to a pod scheduled on that node
 * and otherwise throws upstream's error — 403 `serviceaccounts "<sa>" is forbidden: ...`, or the
 * pod's own 404 when the bound pod does not exist.
 */
export async function checkNodeTokenRequest(user: UserInfo | undefined, namespace: string, saName: string, tokenRequest: KubeObject, getPod: PodGetter): Promise<void> {
  const { isNode, name: node } = nodeName(user);
  if (!isNode) return;
  const deny = (why: string) => errors.forbidden({ group: "", resource: "serviceaccounts" }, saName, why);
  if (!node) throw deny(`could not determine node from user ${JSON.stringify(user!.name)}`);
  const ref = spec(tokenRequest).boundObjectRef as { apiVersion?: string; kind?: string; name?: string; uid?: string } | undefined;
  if (!ref || ref.apiVersion !== "v1" || ref.kind !== "Pod" || !ref.name) throw deny("node requested token not bound to a pod");
  if (!ref.uid) throw deny("node requested token with a pod binding without a uid");
  const pod = await getPod(namespace, ref.name);
  if (!pod) throw errors.notFound({ group: "", resource: "pods" }, ref.name);
  if (ref.uid !== pod.metadata.uid) throw deny(`the UID in the bound object reference (${ref.uid}) does not match the UID in record. The object might have been deleted and then recreated`);
  if (spec(pod).nodeName !== node) throw deny("node requested token bound to a pod scheduled on a different node");
}

/** The node a user is, when it is one (for callers outside admission, e.g. the TokenRequest handler). */
export function nodeOf(u: UserInfo | undefined): string | undefined {
  const n = nodeName(u);
  return n.isNode ? n.name : undefined;
}
