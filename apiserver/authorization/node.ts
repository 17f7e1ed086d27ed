// The Node authorizer (plugin/pkg/auth/authorizer/node): a kubelet, `system:node:<name>` in group
// `system:nodes`, reads only the secrets, configmaps, claims, volumes and attachments of the pods
// bound to it, and asks tokens only for their service accounts. Everything else a node may do is
// the static NodeRules() (bootstrappolicy); NodeRestriction admission narrows the writes further.
//
// The graph is upstream's reduced to what a path query needs: per object, the nodes that reach it
// (a count per node, since several pods on one node can reference one secret), kept current from
// the registry's watch cache (pods, persistentvolumes, volumeattachments).

import type { KubeObject } from "../../api/index.ts";
import type { UserInfo } from "../auth.ts";
import type { Registry } from "../registry/registry.ts";
import { nodeRules as defaultNodeRules } from "./bootstrappolicy.ts";
import { observe, type ObservedEvent } from "./observe.ts";
import type { PolicyRule } from "./rbactypes.ts";
import { rulesAllow } from "./rules.ts";
import type { Attributes, Authorizer, AuthorizerResult, NonResourceRuleInfo, ResourceRuleInfo, RuleResolver } from "./types.ts";

export const NODES_GROUP = "system:nodes";
const NODE_USER_PREFIX = "system:node:";
const NODE_LEASE_NAMESPACE = "kube-node-lease";

/** nodeidentifier.NodeIdentity: the node's name and whether the user is a node at all. */
export function nodeIdentity(u: UserInfo): { isNode: boolean; nodeName: string } {
  if (!u.name.startsWith(NODE_USER_PREFIX)) return { isNode: false, nodeName: "" };
  if (!u.groups.includes(NODES_GROUP)) return { isNode: false, nodeName: "" };
  return { isNode: true, nodeName: u.name.slice(NODE_USER_PREFIX.length) };
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (v && typeof v === "object" && !Array.isArray(v) ? (v as Json) : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string => (typeof v === "string" ? v : "");

/** What a pod bound to a node makes reachable from it (podutil.VisitPodSecretNames / ConfigmapNames). */
export interface PodRefs {
  secrets: Set<string>;
  configMaps: Set<string>;
  claims: Set<string>;
  serviceAccount: string;
}

/** Volume plugins that name a secret of the pod's namespace (upstream's list; secretRef.name or secretName). */
const VOLUME_SECRET_REFS: Record<string, string[]> = {
  azureFile: ["secretName"],
  cephfs: ["secretRef"],
  cinder: ["secretRef"],
  flexVolume: ["secretRef"],
  iscsi: ["secretRef"],
  rbd: ["secretRef"],
  scaleIO: ["secretRef"],
  storageos: ["secretRef"],
  csi: ["nodePublishSecretRef"],
};

export function podRefs(pod: KubeObject): PodRefs {
  const spec = obj((pod as Json).spec) ?? {};
  const refs: PodRefs = { secrets: new Set(), configMaps: new Set(), claims: new Set(), serviceAccount: str(spec.serviceAccountName) };
  for (const s of arr(spec.imagePullSecrets)) if (str(obj(s)?.name)) refs.secrets.add(str(obj(s)?.name));
  for (const list of [spec.initContainers, spec.containers, spec.ephemeralContainers]) {
    for (const c of arr(list)) {
      const container = obj(c) ?? {};
      for (const e of arr(container.envFrom)) {
        const ef = obj(e) ?? {};
        if (str(obj(ef.secretRef)?.name)) refs.secrets.add(str(obj(ef.secretRef)?.name));
        if (str(obj(ef.configMapRef)?.name)) refs.configMaps.add(str(obj(ef.configMapRef)?.name));
      }
      for (const e of arr(container.env)) {
        const from = obj(obj(e)?.valueFrom) ?? {};
        if (str(obj(from.secretKeyRef)?.name)) refs.secrets.add(str(obj(from.secretKeyRef)?.name));
        if (str(obj(from.configMapKeyRef)?.name)) refs.configMaps.add(str(obj(from.configMapKeyRef)?.name));
      }
    }
  }
  for (const v of arr(spec.volumes)) {
    const vol = obj(v) ?? {};
    if (str(obj(vol.secret)?.secretName)) refs.secrets.add(str(obj(vol.secret)?.secretName));
    if (str(obj(vol.configMap)?.name)) refs.configMaps.add(str(obj(vol.configMap)?.name));
    for (const src of arr(obj(vol.projected)?.sources)) {
      const p = obj(src) ?? {};
      if (str(obj(p.secret)?.name)) refs.secrets.add(str(obj(p.secret)?.name));
      if (str(obj(p.configMap)?.name)) refs.configMaps.add(str(obj(p.configMap)?.name));
    }
    for (const [plugin, fields] of Object.entries(VOLUME_SECRET_REFS)) {
      const source = obj(vol[plugin]);
      if (!source) continue;
      for (const f of fields) {
        const ref = source[f];
        const name = typeof ref === "string" ? ref : str(obj(ref)?.name);
        if (name) refs.secrets.add(name);
      }
    }
    if (str(obj(vol.persistentVolumeClaim)?.claimName)) refs.claims.add(str(obj(vol.persistentVolumeClaim)?.claimName));
    // A generic ephemeral volume's claim is named <pod>-<volume>.
    if (obj(vol.ephemeral)) refs.claims.add(`${pod.metadata.name}-${str(vol.name)}`);
  }
  return refs;
}

/** Secrets of a PersistentVolume the kubelet reads (pvutil.VisitPVSecretNames, kubeletVisible): "namespace/name". */
export function pvSecretRefs(pv: KubeObject): string[] {
  const spec = obj((pv as Json).spec) ?? {};
  const claimNs = str(obj(spec.claimRef)?.namespace);
  const out: string[] = [];
  const add = (ns: string, name: string): void => {
    if (ns && name) out.push(`${ns}/${name}`);
  };
  const azure = obj(spec.azureFile);
  if (azure) add(str(azure.secretNamespace) || claimNs, str(azure.secretName));
  for (const plugin of ["cephfs", "cinder", "flexVolume", "iscsi", "rbd", "scaleIO", "storageos"]) {
    const ref = obj(obj(spec[plugin])?.secretRef);
    if (ref) add(str(ref.namespace) || claimNs, str(ref.name));
  }
  const csi = obj(spec.csi);
  if (csi) {
    // Only the kubelet-visible ones: controllerPublish/controllerExpand secrets are the attacher's and the resizer's.
    for (const f of ["nodePublishSecretRef", "nodeStageSecretRef", "nodeExpandSecretRef"]) {
      const ref = obj(csi[f]);
      if (ref) add(str(ref.namespace), str(ref.name));
    }
  }
  return out;
}

/** For each object key, the nodes reaching it, counted (one per referencing pod). */
class Reach {
  private readonly m = new Map<string, Map<string, number>>();
  add(key: string, node: string): void {
    let nodes = this.m.get(key);
    if (!nodes) this.m.set(key, (nodes = new Map()));
    nodes.set(node, (nodes.get(node) ?? 0) + 1);
  }
  remove(key: string, node: string): void {
    const nodes = this.m.get(key);
    const n = nodes?.get(node);
    if (!nodes || n === undefined) return;
    if (n <= 1) nodes.delete(node);
    else nodes.set(node, n - 1);
    if (nodes.size === 0) this.m.delete(key);
  }
  has(key: string, node: string): boolean {
    return this.m.get(key)?.has(node) ?? false;
  }
  clear(): void {
    this.m.clear();
  }
}

type VertexType = "pod" | "secret" | "configmap" | "persistentvolumeclaim" | "persistentvolume" | "serviceaccount" | "volumeattachment";

/**
 * The node authorizer graph: which node reaches which object. Fed with whole objects
 * (setPod/deletePod...), as upstream's graph_populator is by its informers.
 */
export class NodeGraph {
  private readonly pods = new Map<string, { node: string; refs: PodRefs }>();
  private readonly nodes = new Map<string, number>();
  private readonly secrets = new Reach();
  private readonly configMaps = new Reach();
  private readonly claims = new Reach();
  private readonly serviceAccounts = new Reach();
  /** PV name → its claimRef "ns/name" (the pv → pvc edge). */
  private readonly pvClaim = new Map<string, string>();
  /** secret "ns/name" → the PVs naming it. */
  private readonly secretPVs = new Map<string, Set<string>>();
  private readonly pvSecrets = new Map<string, string[]>();
  /** VolumeAttachment name → spec.nodeName. */
  private readonly attachments = new Map<string, string>();

  setPod(pod: KubeObject): void {
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
    this.deletePod(pod);
    const node = str(obj((pod as Json).spec)?.nodeName);
    // An unscheduled pod gives no node anything (graph_populator's updatePod).
    if (!node) return;
    const refs = podRefs(pod);
    const ns = pod.metadata.namespace ?? "";
    this.pods.set(key, { node, refs });
    this.nodes.set(node, (this.nodes.get(node) ?? 0) + 1);
    for (const s of refs.secrets) this.secrets.add(`${ns}/${s}`, node);
    for (const c of refs.configMaps) this.configMaps.add(`${ns}/${c}`, node);
    for (const c of refs.claims) this.claims.add(`${ns}/${c}`, node);
    if (refs.serviceAccount) this.serviceAccounts.add(`${ns}/${refs.serviceAccount}`, node);
  }

  deletePod(pod: KubeObject): void {
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
    const cur = this.pods.get(key);
    if (!cur) return;
    const ns = pod.metadata.namespace ?? "";
    this.pods.delete(key);
    const n = (this.nodes.get(cur.node) ?? 1) - 1;
    if (n <= 0) this.nodes.delete(cur.node);
    else this.nodes.set(cur.node, n);
    for (const s of cur.refs.secrets) this.secrets.remove(`${ns}/${s}`, cur.node);
    for (const c of cur.refs.configMaps) this.configMaps.remove(`${ns}/${c}`, cur.node);
    for (const c of cur.refs.claims) this.claims.remove(`${ns}/${c}`, cur.node);
    if (cur.refs.serviceAccount) this.serviceAccounts.remove(`${ns}/${cur.refs.serviceAccount}`, cur.node);
  }

  setPV(pv: KubeObject): void {
    this.deletePV(pv);
    const name = pv.metadata.name ?? "";
    const claim = obj(obj((pv as Json).spec)?.claimRef);
    if (claim && str(claim.name)) this.pvClaim.set(name, `${str(claim.namespace)}/${str(claim.name)}`);
    const secrets = pvSecretRefs(pv);
    this.pvSecrets.set(name, secrets);
    for (const s of secrets) {
      let pvs = this.secretPVs.get(s);
      if (!pvs) this.secretPVs.set(s, (pvs = new Set()));
      pvs.add(name);
    }
  }

  deletePV(pv: KubeObject): void {
    const name = pv.metadata.name ?? "";
    this.pvClaim.delete(name);
    for (const s of this.pvSecrets.get(name) ?? []) {
      const pvs = this.secretPVs.get(s);
      pvs?.delete(name);
      if (pvs?.size === 0) this.secretPVs.delete(s);
    }
    this.pvSecrets.delete(name);
  }

  setVolumeAttachment(va: KubeObject): void {
    const node = str(obj((va as Json).spec)?.nodeName);
    if (node) this.attachments.set(va.metadata.name ?? "", node);
    else this.attachments.delete(va.metadata.name ?? "");
  }

  deleteVolumeAttachment(va: KubeObject): void {
    this.attachments.delete(va.metadata.name ?? "");
  }

  reset(kind: "pods" | "persistentvolumes" | "volumeattachments"): void {
    if (kind === "pods") {
      this.pods.clear();
      this.nodes.clear();
      this.secrets.clear();
      this.configMaps.clear();
      this.claims.clear();
      this.serviceAccounts.clear();
    } else if (kind === "persistentvolumes") {
      this.pvClaim.clear();
      this.secretPVs.clear();
      this.pvSecrets.clear();
    } else this.attachments.clear();
  }

  private pvReachable(node: string, pv: string): boolean {
    const claim = this.pvClaim.get(pv);
    return claim !== undefined && this.claims.has(claim, node);
  }

  /** hasPathFrom: whether the object (namespace "" for cluster-scoped ones) leads to the node. */
  hasPath(node: string, type: VertexType, namespace: string, name: string): boolean {
    const key = `${namespace}/${name}`;
    switch (type) {
      case "pod":
        return this.pods.get(key)?.node === node;
      case "secret":
        if (this.secrets.has(key, node)) return true;
        for (const pv of this.secretPVs.get(key) ?? []) if (this.pvReachable(node, pv)) return true;
        return false;
      case "configmap":
        return this.configMaps.has(key, node);
      case "persistentvolumeclaim":
        return this.claims.has(key, node);
      case "persistentvolume":
        return this.pvReachable(node, name);
      case "serviceaccount":
        return this.serviceAccounts.has(key, node);
      case "volumeattachment":
        return this.attachments.get(name) === node;
    }
  }
}

/** Keeps `graph` current from the registry's watch cache. */
export function populateNodeGraph(registry: Registry, graph: NodeGraph): { stop(): void } {
  return observe(
    registry,
    ["pods", "persistentvolumes", "volumeattachments"],
    (resource: string, ev: ObservedEvent) => {
      const del = ev.type === "DELETED";
      if (resource === "pods") del ? graph.deletePod(ev.obj) : graph.setPod(ev.obj);
      else if (resource === "persistentvolumes") del ? graph.deletePV(ev.obj) : graph.setPV(ev.obj);
      else del ? graph.deleteVolumeAttachment(ev.obj) : graph.setVolumeAttachment(ev.obj);
    },
    (resource) => graph.reset(resource as "pods" | "persistentvolumes" | "volumeattachments"),
  );
}

const noOpinion = (reason = ""): AuthorizerResult => ({ decision: "NoOpinion", reason });
const allow: AuthorizerResult = { decision: "Allow", reason: "" };

/**
 * NodeAuthorizer: `new NodeAuthorizer(registry)` keeps its own graph current from the registry's
 * watch cache (from registry.onStart on), so a request costs a few map look-ups; tests and callers
 * that feed the graph themselves pass a NodeGraph. `nodeRules` defaults to bootstrappolicy's NodeRules().
 */
export class NodeAuthorizer implements Authorizer, RuleResolver {
  readonly graph: NodeGraph;
  private readonly nodeRules: readonly PolicyRule[];
  private readonly populator?: { stop(): void };

  constructor(source: Registry | NodeGraph, nodeRules: readonly PolicyRule[] = defaultNodeRules()) {
    if (source instanceof NodeGraph) this.graph = source;
    else {
      this.graph = new NodeGraph();
      this.populator = populateNodeGraph(source, this.graph);
    }
    this.nodeRules = nodeRules;
  }

  /** Stops following the registry (only when this authorizer subscribed itself). */
  stop(): void {
    this.populator?.stop();
  }

  /**
   * Upstream answers a node with no rules and incomplete (its permissions hang on the graph); we
   * list the static NodeRules() a node holds everywhere and still say incomplete, so a
   * SelfSubjectRulesReview shows what a kubelet can do without claiming that is all of it.
   */
  rulesFor(user: UserInfo, _namespace?: string): { resourceRules: ResourceRuleInfo[]; nonResourceRules: NonResourceRuleInfo[]; incomplete: boolean; evaluationError?: string } {
    if (!nodeIdentity(user).isNode) return { resourceRules: [], nonResourceRules: [], incomplete: false };
    const resourceRules: ResourceRuleInfo[] = [];
    const nonResourceRules: NonResourceRuleInfo[] = [];
    for (const r of this.nodeRules) {
      if (r.nonResourceURLs?.length) nonResourceRules.push({ verbs: [...r.verbs], nonResourceURLs: [...r.nonResourceURLs] });
      if (r.resources?.length) resourceRules.push({ verbs: [...r.verbs], apiGroups: [...(r.apiGroups ?? [])], resources: [...r.resources], resourceNames: [...(r.resourceNames ?? [])] });
    }
    return { resourceRules, nonResourceRules, incomplete: true, evaluationError: "node authorizer does not support user rule resolution" };
  }

  authorize(a: Attributes): AuthorizerResult {
    const { isNode, nodeName } = nodeIdentity(a.user);
    if (!isNode) return noOpinion();
    if (!nodeName) return noOpinion(`unknown node for user ${JSON.stringify(a.user.name)}`);
    if (a.isResourceRequest) {
      const gr = `${a.apiGroup}/${a.resource}`;
      switch (gr) {
        case "/secrets":
          return this.readNamespacedObject(nodeName, "secret", a);
        case "/configmaps":
          return this.readNamespacedObject(nodeName, "configmap", a);
        case "/persistentvolumeclaims":
          if (a.subresource === "status") return this.statusUpdate(nodeName, "persistentvolumeclaim", a);
          return this.get(nodeName, "persistentvolumeclaim", a);
        case "/persistentvolumes":
          return this.get(nodeName, "persistentvolume", a);
        case "storage.k8s.io/volumeattachments":
          return this.get(nodeName, "volumeattachment", a);
        case "/serviceaccounts":
          return this.createToken(nodeName, a);
        case "coordination.k8s.io/leases":
          return this.lease(nodeName, a);
        case "storage.k8s.io/csinodes":
          return this.csiNode(nodeName, a);
      }
    }
    // Access to other resources is not subdivided: the static node rules decide.
    return rulesAllow(a, this.nodeRules) ? allow : noOpinion();
  }

  private statusUpdate(node: string, type: VertexType, a: Attributes): AuthorizerResult {
    if (a.verb !== "update" && a.verb !== "patch") return noOpinion("can only get/update/patch this type");
    if (a.subresource !== "status") return noOpinion("can only update status subresource");
    return this.related(node, type, a);
  }

  private get(node: string, type: VertexType, a: Attributes): AuthorizerResult {
    if (a.verb !== "get") return noOpinion("can only get individual resources of this type");
    if (a.subresource) return noOpinion("cannot get subresource");
    return this.related(node, type, a);
  }

  /** Secrets and configmaps: get, and list/watch of one object (fieldSelector metadata.name). */
  private readNamespacedObject(node: string, type: VertexType, a: Attributes): AuthorizerResult {
    if (a.verb !== "get" && a.verb !== "list" && a.verb !== "watch") return noOpinion("can only read resources of this type");
    if (a.subresource) return noOpinion("cannot read subresource");
    if (!a.namespace) return noOpinion("can only read namespaced object of this type");
    return this.related(node, type, a);
  }

  private related(node: string, type: VertexType, a: Attributes): AuthorizerResult {
    if (!a.name) return noOpinion("No Object name found");
    if (!this.graph.hasPath(node, type, a.namespace, a.name)) return noOpinion(`no relationship found between node '${node}' and this object`);
    return allow;
  }

  private createToken(node: string, a: Attributes): AuthorizerResult {
    if (a.verb !== "create" || !a.name) return noOpinion("can only create tokens for individual service accounts");
    if (a.subresource !== "token") return noOpinion("can only create token subresource of serviceaccount");
    if (!this.graph.hasPath(node, "serviceaccount", a.namespace, a.name)) return noOpinion(`no relationship found between node '${node}' and this object`);
    return allow;
  }

  private lease(node: string, a: Attributes): AuthorizerResult {
    if (!["get", "create", "update", "patch", "delete"].includes(a.verb)) return noOpinion("can only get, create, update, patch, or delete a node lease");
    if (a.namespace !== NODE_LEASE_NAMESPACE) return noOpinion(`can only access leases in the ${JSON.stringify(NODE_LEASE_NAMESPACE)} system namespace`);
    // The name of a create is not known here: NodeRestriction checks it.
    if (a.verb !== "create" && a.name !== node) return noOpinion("can only access node lease with the same name as the requesting node");
    return allow;
  }

  private csiNode(node: string, a: Attributes): AuthorizerResult {
    if (!["get", "create", "update", "patch", "delete"].includes(a.verb)) return noOpinion("can only get, create, update, patch, or delete a CSINode");
    if (a.subresource) return noOpinion("cannot authorize CSINode subresources");
    if (a.verb !== "create" && a.name !== node) return noOpinion("can only access CSINode with the same name as the requesting node");
    return allow;
  }
}
