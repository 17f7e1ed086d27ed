// Table responses for `kubectl get` (meta.k8s.io/v1 Table), shaped like the real apiserver's.
//
// Column definitions and cell values follow upstream's printers
// (k8s.io/kubernetes/pkg/printers/internalversion/printers.go, 1.32) as served by the apiserver's
// TableConvertor, which always generates the wide (priority 1) columns: kubectl hides those unless
// `-o wide`. Objects are handled as plain JSON (`Record<string, unknown>`), narrowed locally, so this
// module does not depend on the typed API objects.

import { groupVersion, type ResourceInfo } from "../api/resources.ts";

export type JsonObject = Record<string, unknown>;

/** One column of a Table (metav1.TableColumnDefinition). `priority: 1` columns are shown by `-o wide` only. */
export interface TableColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

/** A cell value: strings, integers and booleans, as upstream's printers produce them. */
export type TableCell = string | number | boolean;

export interface TableRowCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export type IncludeObject = "None" | "Metadata" | "Object";

export interface ToTableOptions {
  /** What `rows[].object` carries: PartialObjectMetadata (default), the full object, or nothing. */
  includeObject?: IncludeObject;
  /** The clock for AGE and similar columns; defaults to the current time. */
  now?: Date;
  /** List metadata copied into the Table's `metadata` (a list's resourceVersion/continue). */
  listMeta?: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  /**
   * Omit the column definitions (`columnDefinitions: null`), as the real apiserver does for every watch
   * event after the first one of a Table watch (TableOptions.noHeaders).
   */
  omitHeaders?: boolean;
}

// Column descriptions: the upstream SwaggerDoc strings (k8s.io/api v0.32) the printers reference.
const DOC = {
  "ConfigMap.data": "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.",
  "DaemonSetSpec.selector": "A label query over pods that are managed by the daemon set. Must match in order to be controlled. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
  "DaemonSetStatus.currentNumberScheduled": "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
  "DaemonSetStatus.desiredNumberScheduled": "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
  "DaemonSetStatus.numberAvailable": "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)",
  "DaemonSetStatus.numberReady": "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition.",
  "DaemonSetStatus.updatedNumberScheduled": "The total number of nodes that are running updated daemon pod",
  "DeploymentSpec.selector": "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
  "DeploymentStatus.availableReplicas": "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
  "DeploymentStatus.updatedReplicas": "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
  "EndpointSlice.addressType": "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name.",
  "EndpointSlice.endpoints": "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.",
  "EndpointSlice.ports": "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. When ports is empty, it indicates that there are no defined ports. When a port is defined with a nil port value, it indicates \"all ports\". Each slice may include a maximum of 100 ports.",
  "Endpoints.subsets": "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.",
  "Event.count": "The number of times this event has occurred.",
  "Event.firstTimestamp": "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
  "Event.involvedObject": "The object that this event is about.",
  "Event.lastTimestamp": "The time at which the most recent occurrence of this event was recorded.",
  "Event.message": "A human-readable description of the status of this operation.",
  "Event.reason": "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
  "Event.source": "The component reporting this event. Should be a short machine understandable string.",
  "Event.type": "Type of this event (Normal, Warning), new types could be added in the future",
  "JobSpec.selector": "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
  "JobStatus.succeeded": "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs.",
  "LeaseSpec.holderIdentity": "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.",
  "NodeStatus.addresses": "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).",
  "NodeSystemInfo.containerRuntimeVersion": "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
  "NodeSystemInfo.kernelVersion": "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
  "NodeSystemInfo.kubeletVersion": "Kubelet Version reported by the node.",
  "NodeSystemInfo.osImage": "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
  "ObjectMeta.creationTimestamp": "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
  "ObjectMeta.name": "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
  "ObjectReference.fieldPath": "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.",
  "PersistentVolumeClaimSpec.volumeMode": "volumeMode defines what type of volume is required by the claim. Value of Filesystem is implied when not included in claim spec.",
  "PersistentVolumeClaimSpec.volumeName": "volumeName is the binding reference to the PersistentVolume backing this claim.",
  "PersistentVolumeClaimStatus.accessModes": "accessModes contains the actual access modes the volume backing the PVC has. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1",
  "PersistentVolumeClaimStatus.capacity": "capacity represents the actual resources of the underlying volume.",
  "PersistentVolumeClaimStatus.phase": "phase represents the current phase of PersistentVolumeClaim.",
  "PersistentVolumeSpec.accessModes": "accessModes contains all ways the volume can be mounted. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes",
  "PersistentVolumeSpec.capacity": "capacity is the description of the persistent volume's resources and capacity. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity",
  "PersistentVolumeSpec.claimRef": "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the authoritative bind between PV and PVC. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding",
  "PersistentVolumeSpec.persistentVolumeReclaimPolicy": "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim. Valid options are Retain (default for manually created PersistentVolumes), Delete (default for dynamically provisioned PersistentVolumes), and Recycle (deprecated). Recycle must be supported by the volume plugin underlying this PersistentVolume. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming",
  "PersistentVolumeSpec.volumeMode": "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state. Value of Filesystem is implied when not included in spec.",
  "PersistentVolumeStatus.phase": "phase indicates if a volume is available, bound to a claim, or released by a claim. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase",
  "PersistentVolumeStatus.reason": "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.",
  "PodSpec.nodeName": "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename",
  "PodSpec.nodeSelector": "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/",
  "PodSpec.readinessGates": "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates",
  "PodStatus.nominatedNodeName": "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.",
  "PodStatus.podIP": "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
  "ReplicaSetSpec.replicas": "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller",
  "ReplicaSetSpec.selector": "Selector is a label query over pods that should match the replica count. If the selector is empty, it is defaulted to the labels present on the pod template. Label keys and values that must match in order to be controlled by this replica set. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
  "ReplicaSetStatus.readyReplicas": "The number of ready replicas for this replica set.",
  "ReplicaSetStatus.replicas": "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller",
  "Secret.data": "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4",
  "Secret.type": "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types",
  "ServiceAccount.secrets": "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret",
  "ServiceSpec.clusterIP": "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
  "ServiceSpec.externalIPs": "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.",
  "ServiceSpec.ports": "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
  "ServiceSpec.selector": "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/",
  "ServiceSpec.type": "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types",
  "StorageClass.allowVolumeExpansion": "allowVolumeExpansion shows whether the storage class allow volume expand.",
  "StorageClass.provisioner": "provisioner indicates the type of the provisioner.",
  "StorageClass.reclaimPolicy": "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class. Defaults to Delete.",
  "StorageClass.volumeBindingMode": "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.  When unset, VolumeBindingImmediate is used. This field is only honored by servers that enable the VolumeScheduling feature.",
} as const;

// ---------------------------------------------------------------------------------------------
// Narrowing helpers for untyped JSON.

function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
function obj(v: unknown): JsonObject {
  return isObject(v) ? v : {};
}
function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
function objs(v: unknown): JsonObject[] {
  return arr(v).filter(isObject);
}
function str(v: unknown, fallback = ""): string {
  return typeof v === "string" ? v : fallback;
}
function optStr(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}
function num(v: unknown, fallback = 0): number {
  return typeof v === "number" && Number.isFinite(v) ? v : fallback;
}
function strMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(obj(v))) if (typeof x === "string") out[k] = x;
  return out;
}
function countKeys(v: unknown): number {
  return Object.keys(obj(v)).length;
}
function meta(o: JsonObject): JsonObject {
  return obj(o.metadata);
}
function nameOf(o: JsonObject): string {
  return str(meta(o).name);
}
/** Milliseconds since the epoch for an RFC 3339 timestamp, or undefined when absent or unparsable. */
function timeOf(v: unknown): number | undefined {
  if (typeof v !== "string" || v === "") return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
}

// ---------------------------------------------------------------------------------------------
// Durations.

/**
 * Go's `duration.HumanDuration` (k8s.io/apimachinery/pkg/util/duration): a succinct duration with
 * ~2-3 significant figures, e.g. `45s`, `119s`, `2m3s`, `15m`, `3h4m`, `20h`, `3d4h`, `45d`, `2y10d`.
 * Up to one second in the future counts as `0s`; further in the future is `<invalid>`.
 */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 60 * 2) return `${seconds}s`;
  const minutes = Math.trunc(ms / 60_000);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 60 * 3) return `${minutes}m`;
  const hours = Math.trunc(ms / 3_600_000);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    const d = Math.trunc(hours / 24);
    return h === 0 ? `${d}d` : `${d}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24)}d`;
  const years = Math.trunc(hours / 24 / 365);
  if (hours < 24 * 365 * 8) {
    const dy = Math.trunc(hours / 24) % 365;
    return dy === 0 ? `${years}y` : `${years}y${dy}d`;
  }
  return `${years}y`;
}

/** upstream translateTimestampSince: `<unknown>` for a missing timestamp. */
function since(ts: unknown, now: number): string {
  const t = timeOf(ts);
  return t === undefined ? "<unknown>" : humanDuration(now - t);
}

// ---------------------------------------------------------------------------------------------
// Formatting helpers shared by several printers.

/** labels.FormatLabels: `k=v,k2=v2` sorted by key, `<none>` when empty. */
function formatLabels(m: Record<string, string>): string {
  const keys = Object.keys(m).sort();
  return keys.length === 0 ? "<none>" : keys.map((k) => `${k}=${m[k]}`).join(",");
}

/**
 * metav1.LabelSelectorAsSelector(sel).String(): "" for a missing or empty selector, otherwise the
 * requirements sorted by key (`app=web,tier in (a,b),!canary`). Undefined for an invalid operator.
 */
function labelSelectorString(sel: unknown): string | undefined {
  if (!isObject(sel)) return "";
  const reqs: { key: string; text: string }[] = [];
  for (const [k, v] of Object.entries(strMap(sel.matchLabels))) reqs.push({ key: k, text: `${k}=${v}` });
  for (const e of objs(sel.matchExpressions)) {
    const key = str(e.key);
    const values = arr(e.values).filter((x): x is string => typeof x === "string").sort();
    switch (e.operator) {
      case "In":
        reqs.push({ key, text: `${key} in (${values.join(",")})` });
        break;
      case "NotIn":
        reqs.push({ key, text: `${key} notin (${values.join(",")})` });
        break;
      case "Exists":
        reqs.push({ key, text: key });
        break;
      case "DoesNotExist":
        reqs.push({ key, text: `!${key}` });
        break;
      default:
        return undefined;
    }
  }
  return reqs
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map((r) => r.text)
    .join(",");
}

/** metav1.FormatLabelSelector: like labelSelectorString but `<none>` when empty, `<error>` when invalid. */
function formatLabelSelector(sel: unknown): string {
  const s = labelSelectorString(sel);
  if (s === undefined) return "<error>";
  return s === "" ? "<none>" : s;
}

/** layoutContainerCells: comma-joined container names and images. */
function containerCells(podTemplate: unknown): [string, string] {
  const containers = objs(obj(obj(podTemplate).spec).containers);
  return [containers.map((c) => str(c.name)).join(","), containers.map((c) => str(c.image)).join(",")];
}

function listWithMore(list: string[], more: boolean, count: number, max: number): string {
  const ret = list.join(",");
  if (more) return `${ret} + ${count - max} more...`;
  return ret === "" ? "<unset>" : ret;
}

/** helper.GetAccessModesAsString: RWO,ROX,RWX,RWOP in that order. */
function accessModes(v: unknown): string {
  const modes = new Set(arr(v));
  const out: string[] = [];
  if (modes.has("ReadWriteOnce")) out.push("RWO");
  if (modes.has("ReadOnlyMany")) out.push("ROX");
  if (modes.has("ReadWriteMany")) out.push("RWX");
  if (modes.has("ReadWriteOncePod")) out.push("RWOP");
  return out.join(",");
}

/** A resource.Quantity cell: the serialized quantity, "0" when absent. */
function quantity(v: unknown): string {
  if (typeof v === "string" && v !== "") return v;
  if (typeof v === "number") return String(v);
  return "0";
}

/** Load-balancer ingress points (IP, else hostname), de-duplicated and sorted; wide output is never clipped. */
function loadBalancerIngress(status: unknown): string {
  const set = new Set<string>();
  for (const i of objs(obj(status).ingress)) {
    const ip = str(i.ip);
    const host = str(i.hostname);
    if (ip) set.add(ip);
    else if (host) set.add(host);
  }
  return [...set].sort().join(",");
}

// ---------------------------------------------------------------------------------------------
// Column definitions.

function col(name: string, type: string, description: string, extra: { format?: string; priority?: number } = {}): TableColumnDefinition {
  return { name, type, format: extra.format ?? "", description, priority: extra.priority ?? 0 };
}
const NAME = col("Name", "string", DOC["ObjectMeta.name"], { format: "name" });
const AGE = col("Age", "string", DOC["ObjectMeta.creationTimestamp"]);
const wide = { priority: 1 };
const CONTAINERS = col("Containers", "string", "Names of each container in the template.", wide);
const IMAGES = col("Images", "string", "Images referenced by each container in the template.", wide);

/** The cells of one row, in column order, and upstream's row conditions (pods that completed). */
export interface TableRowCells {
  cells: TableCell[];
  conditions?: TableRowCondition[];
}
type Row = TableRowCells;
type Printer = (o: JsonObject, now: number) => Row;

interface TableHandler {
  columns: TableColumnDefinition[];
  print: Printer;
}

const HANDLERS: Record<string, TableHandler> = {
  "/pods": {
    columns: [
      NAME,
      col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
      col("Status", "string", "The aggregate status of the containers in this pod."),
      col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
      ),
      AGE,
      col("IP", "string", DOC["PodStatus.podIP"], wide),
      col("Node", "string", DOC["PodSpec.nodeName"], wide),
      col("Nominated Node", "string", DOC["PodStatus.nominatedNodeName"], wide),
      col("Readiness Gates", "string", DOC["PodSpec.readinessGates"], wide),
    ],
    print: printPod,
  },
  "apps/deployments": {
    columns: [
      NAME,
      col("Ready", "string", "Number of the pod with ready state"),
      col("Up-to-date", "string", DOC["DeploymentStatus.updatedReplicas"]),
      col("Available", "string", DOC["DeploymentStatus.availableReplicas"]),
      AGE,
      CONTAINERS,
      IMAGES,
      col("Selector", "string", DOC["DeploymentSpec.selector"], wide),
    ],
    print: (o, now) => {
      const spec = obj(o.spec);
      const status = obj(o.status);
      const [names, images] = containerCells(spec.template);
      const sel = labelSelectorString(spec.selector);
      return {
        cells: [
          nameOf(o),
          `${num(status.readyReplicas)}/${num(spec.replicas, 1)}`,
          num(status.updatedReplicas),
          num(status.availableReplicas),
          since(meta(o).creationTimestamp, now),
          names,
          images,
          sel === undefined ? "<invalid>" : sel,
        ],
      };
    },
  },
  "apps/replicasets": {
    columns: [
      NAME,
      col("Desired", "integer", DOC["ReplicaSetSpec.replicas"]),
      col("Current", "integer", DOC["ReplicaSetStatus.replicas"]),
      col("Ready", "integer", DOC["ReplicaSetStatus.readyReplicas"]),
      AGE,
      CONTAINERS,
      IMAGES,
      col("Selector", "string", DOC["ReplicaSetSpec.selector"], wide),
    ],
    print: (o, now) => {
      const spec = obj(o.spec);
      const status = obj(o.status);
      const [names, images] = containerCells(spec.template);
      return {
        cells: [
          nameOf(o),
          num(spec.replicas, 1),
          num(status.replicas),
          num(status.readyReplicas),
          since(meta(o).creationTimestamp, now),
          names,
          images,
          formatLabelSelector(spec.selector),
        ],
      };
    },
  },
  "apps/daemonsets": {
    columns: [
      NAME,
      col("Desired", "integer", DOC["DaemonSetStatus.desiredNumberScheduled"]),
      col("Current", "integer", DOC["DaemonSetStatus.currentNumberScheduled"]),
      col("Ready", "integer", DOC["DaemonSetStatus.numberReady"]),
      col("Up-to-date", "integer", DOC["DaemonSetStatus.updatedNumberScheduled"]),
      col("Available", "integer", DOC["DaemonSetStatus.numberAvailable"]),
      col("Node Selector", "string", DOC["PodSpec.nodeSelector"]),
      AGE,
      CONTAINERS,
      IMAGES,
      col("Selector", "string", DOC["DaemonSetSpec.selector"], wide),
    ],
    print: (o, now) => {
      const spec = obj(o.spec);
      const status = obj(o.status);
      const [names, images] = containerCells(spec.template);
      return {
        cells: [
          nameOf(o),
          num(status.desiredNumberScheduled),
          num(status.currentNumberScheduled),
          num(status.numberReady),
          num(status.updatedNumberScheduled),
          num(status.numberAvailable),
          formatLabels(strMap(obj(obj(spec.template).spec).nodeSelector)),
          since(meta(o).creationTimestamp, now),
          names,
          images,
          formatLabelSelector(spec.selector),
        ],
      };
    },
  },
  "apps/statefulsets": {
    columns: [NAME, col("Ready", "string", "Number of the pod with ready state"), AGE, CONTAINERS, IMAGES],
    print: (o, now) => {
      const spec = obj(o.spec);
      const [names, images] = containerCells(spec.template);
      return { cells: [nameOf(o), `${num(obj(o.status).readyReplicas)}/${num(spec.replicas, 1)}`, since(meta(o).creationTimestamp, now), names, images] };
    },
  },
  "apps/controllerrevisions": {
    columns: [
      NAME,
      col("Controller", "string", "Controller of the object"),
      col("Revision", "string", "Revision indicates the revision of the state represented by Data."),
      AGE,
    ],
    print: (o, now) => {
      // formatResourceName with kind: "statefulset.apps/web", as upstream's printControllerRevision.
      const refs = Array.isArray(meta(o).ownerReferences) ? (meta(o).ownerReferences as unknown[]) : [];
      const ref = refs.map(obj).find((r) => r.controller === true);
      let controller = "<none>";
      if (ref) {
        const apiVersion = typeof ref.apiVersion === "string" ? ref.apiVersion : "";
        const group = apiVersion.includes("/") ? apiVersion.slice(0, apiVersion.lastIndexOf("/")) : "";
        const kind = typeof ref.kind === "string" ? ref.kind : "";
        controller = kind ? `${(group ? `${kind}.${group}` : kind).toLowerCase()}/${String(ref.name ?? "")}` : String(ref.name ?? "");
      }
      return { cells: [nameOf(o), controller, num(o.revision), since(meta(o).creationTimestamp, now)] };
    },
  },
  "/nodes": {
    columns: [
      NAME,
      col("Status", "string", "The status of the node"),
      col("Roles", "string", "The roles of the node"),
      AGE,
      col("Version", "string", DOC["NodeSystemInfo.kubeletVersion"]),
      col("Internal-IP", "string", DOC["NodeStatus.addresses"], wide),
      col("External-IP", "string", DOC["NodeStatus.addresses"], wide),
      col("OS-Image", "string", DOC["NodeSystemInfo.osImage"], wide),
      col("Kernel-Version", "string", DOC["NodeSystemInfo.kernelVersion"], wide),
      col("Container-Runtime", "string", DOC["NodeSystemInfo.containerRuntimeVersion"], wide),
    ],
    print: printNode,
  },
  "/services": {
    columns: [
      NAME,
      col("Type", "string", DOC["ServiceSpec.type"]),
      col("Cluster-IP", "string", DOC["ServiceSpec.clusterIP"]),
      col("External-IP", "string", DOC["ServiceSpec.externalIPs"]),
      col("Port(s)", "string", DOC["ServiceSpec.ports"]),
      AGE,
      col("Selector", "string", DOC["ServiceSpec.selector"], wide),
    ],
    print: printService,
  },
  "batch/jobs": {
    columns: [
      NAME,
      col("Status", "string", "Status of the job."),
      col("Completions", "string", DOC["JobStatus.succeeded"]),
      col("Duration", "string", "Time required to complete the job."),
      AGE,
      CONTAINERS,
      IMAGES,
      col("Selector", "string", DOC["JobSpec.selector"], wide),
    ],
    print: printJob,
  },
  "batch/cronjobs": {
    columns: [
      NAME,
      col("Schedule", "string", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
      col(
        "Timezone",
        "string",
        "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process.",
      ),
      col("Suspend", "boolean", "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false."),
      col("Active", "integer", "A list of pointers to currently running jobs."),
      col("Last Schedule", "string", "Information when was the last time the job was successfully scheduled."),
      AGE,
      CONTAINERS,
      IMAGES,
      col("Selector", "string", DOC["JobSpec.selector"], wide),
    ],
    print: (o, now) => {
      const spec = obj(o.spec);
      const status = obj(o.status);
      const jobSpec = obj(obj(spec.jobTemplate).spec);
      const [names, images] = containerCells(jobSpec.template);
      const last = status.lastScheduleTime;
      return {
        cells: [
          nameOf(o),
          str(spec.schedule),
          optStr(spec.timeZone) ?? "<none>",
          typeof spec.suspend === "boolean" ? (spec.suspend ? "True" : "False") : "<unset>",
          arr(status.active).length,
          last ? since(last, now) : "<none>",
          since(meta(o).creationTimestamp, now),
          names,
          images,
          formatLabelSelector(jobSpec.selector),
        ],
      };
    },
  },
  "policy/poddisruptionbudgets": {
    columns: [
      NAME,
      col("Min Available", "string", "The minimum number of pods that must be available."),
      col("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
      col("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
      AGE,
    ],
    print: (o, now) => {
      const spec = obj(o.spec);
      const intOrString = (v: unknown): string => (typeof v === "number" || typeof v === "string" ? String(v) : "N/A");
      return {
        cells: [nameOf(o), intOrString(spec.minAvailable), intOrString(spec.maxUnavailable), num(obj(o.status).disruptionsAllowed), since(meta(o).creationTimestamp, now)],
      };
    },
  },
  "/events": {
    columns: [
      col("Last Seen", "string", DOC["Event.lastTimestamp"]),
      col("Type", "string", DOC["Event.type"]),
      col("Reason", "string", DOC["Event.reason"]),
      col("Object", "string", DOC["Event.involvedObject"]),
      col("Subobject", "string", DOC["ObjectReference.fieldPath"], wide),
      col("Source", "string", DOC["Event.source"], wide),
      col("Message", "string", DOC["Event.message"]),
      col("First Seen", "string", DOC["Event.firstTimestamp"], wide),
      col("Count", "string", DOC["Event.count"], wide),
      col("Name", "string", DOC["ObjectMeta.name"], { format: "name", priority: 1 }),
    ],
    print: printEvent,
  },
  "/namespaces": {
    columns: [NAME, col("Status", "string", "The status of the namespace"), AGE],
    print: (o, now) => {
      const phase = str(obj(o.status).phase);
      return { cells: [nameOf(o), phase, since(meta(o).creationTimestamp, now)] };
    },
  },
  "/configmaps": {
    columns: [NAME, col("Data", "string", DOC["ConfigMap.data"]), AGE],
    print: (o, now) => ({
      cells: [nameOf(o), countKeys(o.data) + countKeys(o.binaryData), since(meta(o).creationTimestamp, now)],
    }),
  },
  "/secrets": {
    columns: [NAME, col("Type", "string", DOC["Secret.type"]), col("Data", "string", DOC["Secret.data"]), AGE],
    print: (o, now) => ({
      cells: [nameOf(o), str(o.type), countKeys(o.data), since(meta(o).creationTimestamp, now)],
    }),
  },
  "/serviceaccounts": {
    columns: [NAME, col("Secrets", "string", DOC["ServiceAccount.secrets"]), AGE],
    print: (o, now) => ({ cells: [nameOf(o), arr(o.secrets).length, since(meta(o).creationTimestamp, now)] }),
  },
  "/endpoints": {
    columns: [NAME, col("Endpoints", "string", DOC["Endpoints.subsets"]), AGE],
    print: (o, now) => ({ cells: [nameOf(o), formatEndpoints(o), since(meta(o).creationTimestamp, now)] }),
  },
  "coordination.k8s.io/leases": {
    columns: [NAME, col("Holder", "string", DOC["LeaseSpec.holderIdentity"]), AGE],
    print: (o, now) => ({
      cells: [nameOf(o), str(obj(o.spec).holderIdentity), since(meta(o).creationTimestamp, now)],
    }),
  },
  "networking.k8s.io/ingresses": {
    columns: [
      NAME,
      col("Class", "string", "The name of the IngressClass resource that should be used for additional configuration"),
      col("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule"),
      col("Address", "string", "Address is a list containing ingress points for the load-balancer"),
      col("Ports", "string", "Ports of TLS configurations that open"),
      AGE,
    ],
    print: (o, now) => {
      const spec = obj(o.spec);
      return {
        cells: [
          nameOf(o),
          optStr(spec.ingressClassName) ?? "<none>",
          formatHosts(objs(spec.rules)),
          loadBalancerIngress(obj(o.status).loadBalancer),
          arr(spec.tls).length !== 0 ? "80, 443" : "80",
          since(meta(o).creationTimestamp, now),
        ],
      };
    },
  },
  "networking.k8s.io/ingressclasses": {
    columns: [
      NAME,
      col("Controller", "string", "Controller that is responsible for handling this class"),
      col("Parameters", "string", "A reference to a resource with additional parameters"),
      AGE,
    ],
    print: (o, now) => {
      const spec = obj(o.spec);
      let parameters = "<none>";
      if (isObject(spec.parameters)) {
        const p = spec.parameters;
        parameters = str(p.kind);
        if (typeof p.apiGroup === "string") parameters += `.${p.apiGroup}`;
        parameters += `/${str(p.name)}`;
      }
      return { cells: [nameOf(o), str(spec.controller), parameters, since(meta(o).creationTimestamp, now)] };
    },
  },
  "discovery.k8s.io/endpointslices": {
    columns: [
      NAME,
      col("AddressType", "string", DOC["EndpointSlice.addressType"]),
      col("Ports", "string", DOC["EndpointSlice.ports"]),
      col("Endpoints", "string", DOC["EndpointSlice.endpoints"]),
      AGE,
    ],
    print: (o, now) => {
      const max = 3;
      const ports: string[] = [];
      let portCount = 0;
      for (const p of objs(o.ports)) {
        if (ports.length < max) {
          ports.push(typeof p.port === "number" ? String(p.port) : typeof p.name === "string" ? p.name : "*");
        }
        portCount++;
      }
      const addrs: string[] = [];
      let addrCount = 0;
      for (const e of objs(o.endpoints)) {
        for (const a of arr(e.addresses)) {
          if (addrs.length < max) addrs.push(str(a));
          addrCount++;
        }
      }
      return {
        cells: [
          nameOf(o),
          str(o.addressType),
          listWithMore(ports, portCount > max, portCount, max),
          listWithMore(addrs, addrCount > max, addrCount, max),
          since(meta(o).creationTimestamp, now),
        ],
      };
    },
  },
  "scheduling.k8s.io/priorityclasses": {
    columns: [
      NAME,
      col("Value", "integer", "value represents the integer value of this priority class."),
      col("Global-Default", "boolean", "globalDefault specifies whether this PriorityClass should be considered as the default priority."),
      AGE,
      col("PreemptionPolicy", "string", "preemptionPolicy is the Policy for preempting pods with lower priority."),
    ],
    print: (o, now) => ({
      cells: [nameOf(o), typeof o.value === "number" ? o.value : 0, o.globalDefault === true, since(meta(o).creationTimestamp, now), str(o.preemptionPolicy)],
    }),
  },
  "storage.k8s.io/storageclasses": {
    columns: [
      NAME,
      col("Provisioner", "string", DOC["StorageClass.provisioner"]),
      col("ReclaimPolicy", "string", DOC["StorageClass.reclaimPolicy"]),
      col("VolumeBindingMode", "string", DOC["StorageClass.volumeBindingMode"]),
      col("AllowVolumeExpansion", "string", DOC["StorageClass.allowVolumeExpansion"]),
      AGE,
    ],
    print: (o, now) => {
      const annotations = strMap(meta(o).annotations);
      const isDefault =
        annotations["storageclass.kubernetes.io/is-default-class"] === "true" ||
        annotations["storageclass.beta.kubernetes.io/is-default-class"] === "true";
      return {
        cells: [
          isDefault ? `${nameOf(o)} (default)` : nameOf(o),
          str(o.provisioner),
          optStr(o.reclaimPolicy) ?? "Delete",
          optStr(o.volumeBindingMode) ?? "Immediate",
          o.allowVolumeExpansion === true,
          since(meta(o).creationTimestamp, now),
        ],
      };
    },
  },
  "storage.k8s.io/volumeattachments": {
    columns: [
      NAME,
      col("Attacher", "string", "Attacher represents the name of the volume driver that MUST handle this request."),
      col("PV", "string", "Name of the persistent volume to attach."),
      col("Node", "string", "The node that the volume should be attached to."),
      col("Attached", "boolean", "Indicates the volume is successfully attached."),
      AGE,
    ],
    print: (o, now) => {
      const spec = obj(o.spec);
      return {
        cells: [
          nameOf(o),
          str(spec.attacher),
          str(obj(spec.source).persistentVolumeName),
          str(spec.nodeName),
          obj(o.status).attached === true,
          since(meta(o).creationTimestamp, now),
        ],
      };
    },
  },
  "storage.k8s.io/csidrivers": {
    columns: [
      NAME,
      col("AttachRequired", "boolean", "Indicates this CSI volume driver requires an attach operation, and that Kubernetes should call attach and wait for any attach operation to complete before proceeding to mounting."),
      col("PodInfoOnMount", "boolean", "Indicates this CSI volume driver requires additional pod information (like podName, podUID, etc.) during mount operations."),
      col("StorageCapacity", "boolean", "Indicates this CSI volume driver wants pod scheduling to consider the storage capacity that the driver deployment will report by creating CSIStorageCapacity objects with capacity information."),
      col("TokenRequests", "string", "Indicates the CSI driver needs pods' service account tokens it is mounting volume for to do necessary authentication."),
      col("RequiresRepublish", "boolean", "RequiresRepublish indicates the CSI driver wants `NodePublishVolume` being periodically called to reflect any possible change in the mounted volume."),
      col("Modes", "string", "Defines the supported volume lifecycle modes for the CSI driver. Defaults to Persistent."),
      AGE,
    ],
    print: (o, now) => {
      const spec = obj(o.spec);
      const modes = arr(spec.volumeLifecycleModes).map((m) => str(m));
      const tokens = objs(spec.tokenRequests).map((t) => str(t.audience));
      return {
        cells: [
          nameOf(o),
          spec.attachRequired === true,
          spec.podInfoOnMount === true,
          spec.storageCapacity === true,
          tokens.length ? tokens.join(",") : "<unset>",
          spec.requiresRepublish === true,
          modes.length ? modes.join(",") : "<none>",
          since(meta(o).creationTimestamp, now),
        ],
      };
    },
  },
  "/persistentvolumes": {
    columns: [
      NAME,
      col("Capacity", "string", DOC["PersistentVolumeSpec.capacity"]),
      col("Access Modes", "string", DOC["PersistentVolumeSpec.accessModes"]),
      col("Reclaim Policy", "string", DOC["PersistentVolumeSpec.persistentVolumeReclaimPolicy"]),
      col("Status", "string", DOC["PersistentVolumeStatus.phase"]),
      col("Claim", "string", DOC["PersistentVolumeSpec.claimRef"]),
      col("StorageClass", "string", "StorageClass of the pv"),
      col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
      col("Reason", "string", DOC["PersistentVolumeStatus.reason"]),
      AGE,
      col("VolumeMode", "string", DOC["PersistentVolumeSpec.volumeMode"], wide),
    ],
    print: (o, now) => {
      const spec = obj(o.spec);
      const status = obj(o.status);
      const m = meta(o);
      const claim = isObject(spec.claimRef) ? `${str(spec.claimRef.namespace)}/${str(spec.claimRef.name)}` : "";
      const cls =
        optStr(strMap(m.annotations)["volume.beta.kubernetes.io/storage-class"]) ?? str(spec.storageClassName);
      return {
        cells: [
          nameOf(o),
          quantity(obj(spec.capacity).storage),
          accessModes(spec.accessModes),
          str(spec.persistentVolumeReclaimPolicy),
          m.deletionTimestamp ? "Terminating" : str(status.phase),
          claim,
          cls,
          optStr(spec.volumeAttributesClassName) ?? "<unset>",
          str(status.reason),
          since(m.creationTimestamp, now),
          optStr(spec.volumeMode) ?? "<unset>",
        ],
      };
    },
  },
  "/persistentvolumeclaims": {
    columns: [
      NAME,
      col("Status", "string", DOC["PersistentVolumeClaimStatus.phase"]),
      col("Volume", "string", DOC["PersistentVolumeClaimSpec.volumeName"]),
      col("Capacity", "string", DOC["PersistentVolumeClaimStatus.capacity"]),
      col("Access Modes", "string", DOC["PersistentVolumeClaimStatus.accessModes"]),
      col("StorageClass", "string", "StorageClass of the pvc"),
      col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
      AGE,
      col("VolumeMode", "string", DOC["PersistentVolumeClaimSpec.volumeMode"], wide),
    ],
    print: (o, now) => {
      const spec = obj(o.spec);
      const status = obj(o.status);
      const m = meta(o);
      const volumeName = str(spec.volumeName);
      const bound = volumeName !== "";
      const cls =
        optStr(strMap(m.annotations)["volume.beta.kubernetes.io/storage-class"]) ?? str(spec.storageClassName);
      return {
        cells: [
          nameOf(o),
          m.deletionTimestamp ? "Terminating" : str(status.phase),
          volumeName,
          bound ? quantity(obj(status.capacity).storage) : "",
          bound ? accessModes(status.accessModes) : "",
          cls,
          optStr(spec.volumeAttributesClassName) ?? "<unset>",
          since(m.creationTimestamp, now),
          optStr(spec.volumeMode) ?? "<unset>",
        ],
      };
    },
  },
  "/resourcequotas": {
    columns: [
      NAME,
      AGE,
      col("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume."),
      col("Limit", "string", "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."),
    ],
    print: printResourceQuota,
  },
  // printRole: upstream's role printer has the default convertor's columns (Name, Created At in RFC3339)
  "rbac.authorization.k8s.io/roles": {
    columns: [NAME, col("Created At", "date", DOC["ObjectMeta.creationTimestamp"])],
    print: printCreatedAt,
  },
  "rbac.authorization.k8s.io/clusterroles": {
    columns: [NAME, col("Created At", "date", DOC["ObjectMeta.creationTimestamp"])],
    print: printCreatedAt,
  },
  "rbac.authorization.k8s.io/rolebindings": {
    columns: bindingColumns("RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable.", "roleBinding"),
    print: printBinding,
  },
  "rbac.authorization.k8s.io/clusterrolebindings": {
    columns: bindingColumns("RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable.", "clusterRoleBinding"),
    print: printBinding,
  },
  "certificates.k8s.io/certificatesigningrequests": {
    columns: [
      NAME,
      AGE,
      col("SignerName", "string", "Requested signer for the request. It is a qualified name in the form: `scope-hostname.io/name`."),
      col("Requestor", "string", "Base64-encoded PKCS#10 CSR data"),
      col("RequestedDuration", "string", "expirationSeconds is the requested duration of validity of the issued certificate."),
      col("Condition", "string", "Conditions applied to the request, such as approval or denial."),
    ],
    print: (o, now) => {
      const spec = obj(o.spec);
      const seconds = typeof spec.expirationSeconds === "number" ? spec.expirationSeconds : undefined;
      return {
        cells: [
          nameOf(o),
          since(meta(o).creationTimestamp, now),
          optStr(spec.signerName) || "<none>",
          str(spec.username),
          seconds === undefined ? "<none>" : humanDuration(seconds * 1000),
          csrCondition(o),
        ],
      };
    },
  },
};

/** The default table convertor (k8s.io/apiserver registry/rest/table.go): Name and Created At. */
const DEFAULT_HANDLER: TableHandler = {
  columns: [NAME, col("Created At", "date", DOC["ObjectMeta.creationTimestamp"])],
  print: printCreatedAt,
};

/** Go's time.RFC3339 in UTC, second precision (`2024-05-01T10:00:00Z`); the zero time is 0001-01-01T00:00:00Z. */
function rfc3339(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}Z`;
}

function printCreatedAt(o: JsonObject): Row {
  const t = timeOf(meta(o).creationTimestamp);
  return { cells: [nameOf(o), rfc3339(t ?? Date.UTC(1, 0, 1))] };
}

/** roleBindingsColumnDefinitions / clusterRoleBindingsColumnDefinitions. */
function bindingColumns(roleRefDoc: string, what: string): TableColumnDefinition[] {
  return [
    NAME,
    col("Role", "string", roleRefDoc),
    AGE,
    col("Users", "string", `Users in the ${what}`, wide),
    col("Groups", "string", `Groups in the ${what}`, wide),
    col("ServiceAccounts", "string", `ServiceAccounts in the ${what}`, wide),
  ];
}

/** printRoleBinding: ROLE is Kind/name; the subjects by kind (rbac.SubjectsStrings: a ServiceAccount is ns/name). */
function printBinding(o: JsonObject, now: number): Row {
  const ref = obj(o.roleRef);
  const users: string[] = [];
  const groups: string[] = [];
  const sas: string[] = [];
  for (const s of objs(o.subjects)) {
    if (s.kind === "User") users.push(str(s.name));
    else if (s.kind === "Group") groups.push(str(s.name));
    else if (s.kind === "ServiceAccount") sas.push(`${str(s.namespace)}/${str(s.name)}`);
  }
  return {
    cells: [nameOf(o), `${str(ref.kind)}/${str(ref.name)}`, since(meta(o).creationTimestamp, now), users.join(", "), groups.join(", "), sas.join(", ")],
  };
}

/** extractCSRStatus: Denied over Approved over Pending, then ",Failed" and ",Issued". */
function csrCondition(o: JsonObject): string {
  const status = obj(o.status);
  const types = new Set(objs(status.conditions).map((c) => c.type));
  let out = types.has("Denied") ? "Denied" : types.has("Approved") ? "Approved" : "Pending";
  if (types.has("Failed")) out += ",Failed";
  if (str(status.certificate) !== "") out += ",Issued";
  return out;
}

function handlerFor(info: Pick<ResourceInfo, "group" | "resource">): TableHandler {
  return HANDLERS[`${info.group}/${info.resource}`] ?? DEFAULT_HANDLER;
}

// ---------------------------------------------------------------------------------------------
// Printers with more logic.

const POD_SUCCEEDED: TableRowCondition[] = [
  { type: "Completed", status: "True", reason: "Succeeded", message: "The pod has completed successfully." },
];
const POD_FAILED: TableRowCondition[] = [{ type: "Completed", status: "True", reason: "Failed", message: "The pod failed." }];

function hasCondition(conditions: unknown, type: string): boolean {
  return objs(conditions).some((c) => c.type === type && c.status === "True");
}

function printPod(pod: JsonObject, now: number): Row {
  const spec = obj(pod.spec);
  const status = obj(pod.status);
  const m = meta(pod);

  let restarts = 0;
  let restartableInitRestarts = 0;
  let totalContainers = arr(spec.containers).length;
  let readyContainers = 0;
  let lastRestart = 0;
  let lastRestartableInitRestart = 0;

  const phase = str(status.phase);
  let reason = str(status.reason) || phase;
  for (const c of objs(status.conditions)) {
    if (c.type === "PodScheduled" && c.reason === "SchedulingGated") reason = "SchedulingGated";
  }

  const row: Row = { cells: [] };
  if (phase === "Succeeded") row.conditions = POD_SUCCEEDED;
  else if (phase === "Failed") row.conditions = POD_FAILED;

  const initSpecs = objs(spec.initContainers);
  const restartable = new Set<string>();
  for (const c of initSpecs) {
    if (c.restartPolicy === "Always") {
      restartable.add(str(c.name));
      totalContainers++;
    }
  }

  let initializing = false;
  const initStatuses = objs(status.initContainerStatuses);
  for (let i = 0; i < initStatuses.length; i++) {
    const c = initStatuses[i];
    const state = obj(c.state);
    const isRestartable = restartable.has(str(c.name));
    restarts += num(c.restartCount);
    const lastTerm = lastTerminatedAt(c);
    if (lastTerm !== undefined && lastTerm > lastRestart) lastRestart = lastTerm;
    if (isRestartable) {
      restartableInitRestarts += num(c.restartCount);
      if (lastTerm !== undefined && lastTerm > lastRestartableInitRestart) lastRestartableInitRestart = lastTerm;
    }
    const terminated = isObject(state.terminated) ? state.terminated : undefined;
    const waiting = isObject(state.waiting) ? state.waiting : undefined;
    if (terminated && num(terminated.exitCode) === 0) continue;
    if (isRestartable && c.started === true) {
      if (c.ready === true) readyContainers++;
      continue;
    }
    if (terminated) {
      const r = str(terminated.reason);
      if (r === "") {
        reason = num(terminated.signal) !== 0 ? `Init:Signal:${num(terminated.signal)}` : `Init:ExitCode:${num(terminated.exitCode)}`;
      } else {
        reason = `Init:${r}`;
      }
    } else if (waiting && str(waiting.reason) !== "" && waiting.reason !== "PodInitializing") {
      reason = `Init:${str(waiting.reason)}`;
    } else {
      reason = `Init:${i}/${initSpecs.length}`;
    }
    initializing = true;
    break;
  }

  if (!initializing || hasCondition(status.conditions, "Initialized")) {
    restarts = restartableInitRestarts;
    lastRestart = lastRestartableInitRestart;
    let hasRunning = false;
    const statuses = objs(status.containerStatuses);
    for (let i = statuses.length - 1; i >= 0; i--) {
      const c = statuses[i];
      const state = obj(c.state);
      restarts += num(c.restartCount);
      const lastTerm = lastTerminatedAt(c);
      if (lastTerm !== undefined && lastTerm > lastRestart) lastRestart = lastTerm;
      const terminated = isObject(state.terminated) ? state.terminated : undefined;
      const waiting = isObject(state.waiting) ? state.waiting : undefined;
      if (waiting && str(waiting.reason) !== "") {
        reason = str(waiting.reason);
      } else if (terminated && str(terminated.reason) !== "") {
        reason = str(terminated.reason);
      } else if (terminated) {
        reason = num(terminated.signal) !== 0 ? `Signal:${num(terminated.signal)}` : `ExitCode:${num(terminated.exitCode)}`;
      } else if (c.ready === true && isObject(state.running)) {
        hasRunning = true;
        readyContainers++;
      }
    }
    // Back to "Running" if at least one container still reports running.
    if (reason === "Completed" && hasRunning) {
      reason = hasCondition(status.conditions, "Ready") ? "Running" : "NotReady";
    }
  }

  if (m.deletionTimestamp && status.reason === "NodeLost") {
    reason = "Unknown";
  } else if (m.deletionTimestamp && phase !== "Succeeded" && phase !== "Failed") {
    reason = "Terminating";
  }

  let restartsStr = String(restarts);
  if (restarts !== 0 && lastRestart !== 0) restartsStr = `${restarts} (${humanDuration(now - lastRestart)} ago)`;

  const podIPs = objs(status.podIPs);
  const podIP = (podIPs.length > 0 ? str(podIPs[0].ip) : str(status.podIP)) || "<none>";
  let readinessGates = "<none>";
  const gates = objs(spec.readinessGates);
  if (gates.length > 0) {
    let trueConditions = 0;
    for (const g of gates) {
      const c = objs(status.conditions).find((x) => x.type === g.conditionType);
      if (c && c.status === "True") trueConditions++;
    }
    readinessGates = `${trueConditions}/${gates.length}`;
  }

  row.cells = [
    nameOf(pod),
    `${readyContainers}/${totalContainers}`,
    reason,
    restartsStr,
    since(m.creationTimestamp, now),
    podIP,
    str(spec.nodeName) || "<none>",
    str(status.nominatedNodeName) || "<none>",
    readinessGates,
  ];
  return row;
}

function lastTerminatedAt(containerStatus: JsonObject): number | undefined {
  const t = obj(obj(containerStatus.lastState).terminated);
  return timeOf(t.finishedAt);
}

function printNode(node: JsonObject, now: number): Row {
  const spec = obj(node.spec);
  const status = obj(node.status);
  const info = obj(status.nodeInfo);
  const m = meta(node);

  const statuses: string[] = [];
  const ready = objs(status.conditions).filter((c) => c.type === "Ready").pop();
  if (ready) statuses.push(ready.status === "True" ? "Ready" : "NotReady");
  if (statuses.length === 0) statuses.push("Unknown");
  if (spec.unschedulable === true) statuses.push("SchedulingDisabled");

  const roles = new Set<string>();
  for (const [k, v] of Object.entries(strMap(m.labels))) {
    if (k.startsWith("node-role.kubernetes.io/")) {
      const role = k.slice("node-role.kubernetes.io/".length);
      if (role) roles.add(role);
    } else if (k === "kubernetes.io/role" && v !== "") {
      roles.add(v);
    }
  }
  const address = (type: string) => str(objs(status.addresses).find((a) => a.type === type)?.address) || "<none>";

  return {
    cells: [
      nameOf(node),
      statuses.join(","),
      [...roles].sort().join(",") || "<none>",
      since(m.creationTimestamp, now),
      str(info.kubeletVersion),
      address("InternalIP"),
      address("ExternalIP"),
      str(info.osImage) || "<unknown>",
      str(info.kernelVersion) || "<unknown>",
      str(info.containerRuntimeVersion) || "<unknown>",
    ],
  };
}

/** printResourceQuota: `name: used/hard` per status.hard resource, sorted; limits.* in the Limit column. */
function printResourceQuota(q: JsonObject, now: number): Row {
  const status = obj(q.status);
  const hard = obj(status.hard);
  const used = obj(status.used);
  const request: string[] = [];
  const limit: string[] = [];
  for (const r of Object.keys(hard).sort()) {
    const pieces = r.split(".");
    const cell = `${r}: ${quantity(used[r])}/${quantity(hard[r])}`;
    if (pieces.length > 1 && pieces[0] === "limits") limit.push(cell);
    else request.push(cell);
  }
  return { cells: [nameOf(q), since(meta(q).creationTimestamp, now), request.join(", "), limit.join(", ")] };
}

function printService(svc: JsonObject, now: number): Row {
  const spec = obj(svc.spec);
  const type = str(spec.type, "ClusterIP");
  const clusterIPs = arr(spec.clusterIPs).filter((x): x is string => typeof x === "string");
  const internalIP = clusterIPs[0] ?? (optStr(spec.clusterIP) || "<none>");
  const externalIPs = arr(spec.externalIPs).filter((x): x is string => typeof x === "string");

  let externalIP: string;
  switch (type) {
    case "ClusterIP":
    case "NodePort":
      externalIP = externalIPs.length > 0 ? externalIPs.join(",") : "<none>";
      break;
    case "LoadBalancer": {
      const lb = loadBalancerIngress(obj(svc.status).loadBalancer);
      if (externalIPs.length > 0) externalIP = [...(lb ? lb.split(",") : []), ...externalIPs].join(",");
      else externalIP = lb || "<pending>";
      break;
    }
    case "ExternalName":
      externalIP = str(spec.externalName);
      break;
    default:
      externalIP = "<unknown>";
  }

  const ports = objs(spec.ports)
    .map((p) => {
      const protocol = str(p.protocol, "TCP");
      const nodePort = num(p.nodePort);
      return nodePort > 0 ? `${num(p.port)}:${nodePort}/${protocol}` : `${num(p.port)}/${protocol}`;
    })
    .join(",");

  return {
    cells: [
      nameOf(svc),
      type,
      internalIP,
      externalIP,
      ports || "<none>",
      since(meta(svc).creationTimestamp, now),
      formatLabels(strMap(spec.selector)),
    ],
  };
}

function printJob(job: JsonObject, now: number): Row {
  const spec = obj(job.spec);
  const status = obj(job.status);
  const succeeded = num(status.succeeded);

  let completions: string;
  if (typeof spec.completions === "number") {
    completions = `${succeeded}/${spec.completions}`;
  } else {
    const parallelism = num(spec.parallelism);
    completions = parallelism > 1 ? `${succeeded}/1 of ${parallelism}` : `${succeeded}/1`;
  }

  const start = timeOf(status.startTime);
  const completion = timeOf(status.completionTime);
  let duration = "";
  if (start !== undefined) duration = humanDuration((completion ?? now) - start);

  const conditionTrue = (type: string) => {
    const c = objs(status.conditions).find((x) => x.type === type);
    return c !== undefined && c.status === "True";
  };
  let jobStatus: string;
  if (conditionTrue("Complete")) jobStatus = "Complete";
  else if (conditionTrue("Failed")) jobStatus = "Failed";
  else if (meta(job).deletionTimestamp) jobStatus = "Terminating";
  else if (conditionTrue("Suspended")) jobStatus = "Suspended";
  else if (conditionTrue("FailureTarget")) jobStatus = "FailureTarget";
  else jobStatus = "Running";

  const [names, images] = containerCells(spec.template);
  return {
    cells: [
      nameOf(job),
      jobStatus,
      completions,
      duration,
      since(meta(job).creationTimestamp, now),
      names,
      images,
      formatLabelSelector(spec.selector),
    ],
  };
}

function printEvent(ev: JsonObject, now: number): Row {
  const involved = obj(ev.involvedObject);
  const source = obj(ev.source);

  const firstTs = timeOf(ev.firstTimestamp);
  const first = firstTs !== undefined ? humanDuration(now - firstTs) : since(ev.eventTime, now);
  const lastTs = timeOf(ev.lastTimestamp);
  let last = lastTs !== undefined ? humanDuration(now - lastTs) : first;

  let count = num(ev.count);
  if (isObject(ev.series)) {
    last = since(ev.series.lastObservedTime, now);
    count = num(ev.series.count);
  } else if (count === 0) {
    count = 1; // singleton events don't have a count set in the new API
  }

  const kind = str(involved.kind).toLowerCase();
  const target = str(involved.name) ? `${kind}/${str(involved.name)}` : kind;
  const component = str(source.component) || str(ev.reportingController);
  const host = str(source.host) || str(ev.reportingInstance);

  return {
    cells: [
      last,
      str(ev.type),
      str(ev.reason),
      target,
      str(involved.fieldPath),
      host ? `${component}, ${host}` : component,
      str(ev.message).trim(),
      first,
      count,
      nameOf(ev),
    ],
  };
}

/** formatEndpoints: up to three `ip:port` (or bare ip for port-less subsets), then `+ N more...`. */
function formatEndpoints(ep: JsonObject): string {
  const subsets = objs(ep.subsets);
  if (subsets.length === 0) return "<none>";
  const max = 3;
  const list: string[] = [];
  let more = false;
  let count = 0;
  for (const ss of subsets) {
    const addresses = objs(ss.addresses);
    const ports = objs(ss.ports);
    if (ports.length === 0) {
      count += addresses.length;
      for (const a of addresses) {
        if (list.length === max) {
          more = true;
          break;
        }
        list.push(str(a.ip));
      }
      continue;
    }
    for (const p of ports) {
      count += addresses.length;
      for (const a of addresses) {
        if (list.length === max) {
          more = true;
          break;
        }
        list.push(joinHostPort(str(a.ip), num(p.port)));
      }
    }
  }
  const ret = list.join(",");
  return more ? `${ret} + ${count - max} more...` : ret;
}

function joinHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** formatHosts: up to three rule hosts, `*` when none. */
function formatHosts(rules: JsonObject[]): string {
  const max = 3;
  const list: string[] = [];
  let more = false;
  for (const rule of rules) {
    if (list.length === max) more = true;
    const host = str(rule.host);
    if (!more && host !== "") list.push(host);
  }
  if (list.length === 0) return "*";
  const ret = list.join(",");
  return more ? `${ret} + ${rules.length - max} more...` : ret;
}

// ---------------------------------------------------------------------------------------------
// Public API.

/**
 * The column definitions served for a resource, wide (priority 1) columns included, in cell order.
 * Resources without a dedicated printer get the default convertor's `Name`, `Created At`.
 */
export function tableColumns(info: Pick<ResourceInfo, "group" | "resource">): TableColumnDefinition[] {
  return handlerFor(info).columns.map((c) => ({ ...c }));
}

/** The cells (and row conditions) of one object, in the order of tableColumns(info). */
export function tableRow(info: Pick<ResourceInfo, "group" | "resource">, object: JsonObject, now: Date = new Date()): TableRowCells {
  return handlerFor(info).print(object, now.getTime());
}

/**
 * A meta.k8s.io/v1 Table for `objects` (a list, or a single object / watch event as a one-element
 * array), as the real apiserver answers `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
 */
export function toTable(info: ResourceInfo, objects: JsonObject[], opts: ToTableOptions = {}): JsonObject {
  const handler = handlerFor(info);
  const now = (opts.now ?? new Date()).getTime();
  const include = opts.includeObject ?? "Metadata";

  const rows = objects.map((o) => {
    const r = handler.print(o, now);
    const row: JsonObject = { cells: r.cells };
    if (r.conditions) row.conditions = r.conditions.map((c) => ({ ...c }));
    if (include === "Object") {
      row.object = { kind: info.kind, apiVersion: groupVersion(info), ...o };
    } else if (include === "Metadata") {
      row.object = { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: meta(o) };
    }
    return row;
  });

  const metadata: JsonObject = {};
  const lm = opts.listMeta;
  if (lm?.resourceVersion) metadata.resourceVersion = lm.resourceVersion;
  if (lm?.continue) metadata.continue = lm.continue;
  if (lm?.remainingItemCount !== undefined) metadata.remainingItemCount = lm.remainingItemCount;

  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata,
    columnDefinitions: opts.omitHeaders ? null : handler.columns.map((c) => ({ ...c })),
    rows,
  };
}
