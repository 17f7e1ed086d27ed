// core/v1 types (the legacy group served under /api/v1): pods, nodes, services, config, storage.
// JSON shapes follow k8s.io/api/core/v1; rarely used fields are left out.

import type { Condition, KubeObject, LabelSelector, ListMeta, ObjectMeta, TypeMeta } from "../meta.ts";
import type { IntOrString } from "../intstr.ts";
import type { Quantity, ResourceList } from "../quantity.ts";

// ---------------------------------------------------------------------------------------------
// References

/** A reference to any object, used by events, bindings and endpoints. */
export interface ObjectReference {
  kind?: string;
  namespace?: string;
  name?: string;
  uid?: string;
  apiVersion?: string;
  resourceVersion?: string;
  /** A path inside the object, e.g. "spec.containers{nginx}". */
  fieldPath?: string;
}

export interface LocalObjectReference {
  name?: string;
}

export interface TypedLocalObjectReference {
  apiGroup?: string;
  kind: string;
  name: string;
}

// ---------------------------------------------------------------------------------------------
// Namespace

export type NamespacePhase = "Active" | "Terminating";

export interface NamespaceCondition {
  type: string;
  status: string;
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

export interface NamespaceSpec {
  /** Opaque finalizers the namespace controller must clear before removal; default ["kubernetes"]. */
  finalizers?: string[];
}

export interface NamespaceStatus {
  phase?: NamespacePhase;
  conditions?: NamespaceCondition[];
}

export interface Namespace extends KubeObject {
  spec?: NamespaceSpec;
  status?: NamespaceStatus;
}

// ---------------------------------------------------------------------------------------------
// Node

export type TaintEffect = "NoSchedule" | "PreferNoSchedule" | "NoExecute";

export interface Taint {
  key: string;
  value?: string;
  effect: TaintEffect;
  /** Set by the node controller for NoExecute taints it adds. */
  timeAdded?: string;
}

export interface NodeSpec {
  podCIDR?: string;
  podCIDRs?: string[];
  providerID?: string;
  unschedulable?: boolean;
  taints?: Taint[];
}

export type NodeConditionType = "Ready" | "MemoryPressure" | "DiskPressure" | "PIDPressure" | "NetworkUnavailable";

export interface NodeCondition {
  type: NodeConditionType | string;
  status: "True" | "False" | "Unknown";
  lastHeartbeatTime?: string;
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

export type NodeAddressType = "Hostname" | "InternalIP" | "ExternalIP" | "InternalDNS" | "ExternalDNS";

export interface NodeAddress {
  type: NodeAddressType | string;
  address: string;
}

export interface DaemonEndpoint {
  Port: number;
}

export interface NodeDaemonEndpoints {
  kubeletEndpoint?: DaemonEndpoint;
}

export interface NodeSystemInfo {
  machineID: string;
  systemUUID: string;
  bootID: string;
  kernelVersion: string;
  osImage: string;
  containerRuntimeVersion: string;
  kubeletVersion: string;
  kubeProxyVersion?: string;
  operatingSystem: string;
  architecture: string;
}

export interface ContainerImage {
  names?: string[];
  sizeBytes?: number;
}

export interface AttachedVolume {
  name: string;
  devicePath: string;
}

export interface NodeStatus {
  capacity?: ResourceList;
  allocatable?: ResourceList;
  phase?: string;
  conditions?: NodeCondition[];
  addresses?: NodeAddress[];
  daemonEndpoints?: NodeDaemonEndpoints;
  nodeInfo?: NodeSystemInfo;
  images?: ContainerImage[];
  volumesInUse?: string[];
  volumesAttached?: AttachedVolume[];
}

export interface Node extends KubeObject {
  spec?: NodeSpec;
  status?: NodeStatus;
}

// ---------------------------------------------------------------------------------------------
// Pod: containers

export type Protocol = "TCP" | "UDP" | "SCTP";

export interface ContainerPort {
  /** IANA_SVC_NAME, unique within the pod; referenced by services' targetPort. */
  name?: string;
  hostPort?: number;
  containerPort: number;
  /** Default "TCP". */
  protocol?: Protocol;
  hostIP?: string;
}

export interface ObjectFieldSelector {
  /** Default "v1". */
  apiVersion?: string;
  fieldPath: string;
}

export interface ResourceFieldSelector {
  containerName?: string;
  resource: string;
  divisor?: Quantity;
}

export interface ConfigMapKeySelector {
  name?: string;
  key: string;
  optional?: boolean;
}

export interface SecretKeySelector {
  name?: string;
  key: string;
  optional?: boolean;
}

export interface EnvVarSource {
  fieldRef?: ObjectFieldSelector;
  resourceFieldRef?: ResourceFieldSelector;
  configMapKeyRef?: ConfigMapKeySelector;
  secretKeyRef?: SecretKeySelector;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: EnvVarSource;
}

export interface ConfigMapEnvSource {
  name?: string;
  optional?: boolean;
}

export interface SecretEnvSource {
  name?: string;
  optional?: boolean;
}

export interface EnvFromSource {
  prefix?: string;
  configMapRef?: ConfigMapEnvSource;
  secretRef?: SecretEnvSource;
}

export interface VolumeMount {
  /** Must name a volume of the pod. */
  name: string;
  readOnly?: boolean;
  mountPath: string;
  subPath?: string;
  mountPropagation?: "None" | "HostToContainer" | "Bidirectional";
  subPathExpr?: string;
}

export interface ExecAction {
  command?: string[];
}

export interface HTTPHeader {
  name: string;
  value: string;
}

export interface HTTPGetAction {
  /** Default "/". */
  path?: string;
  port: IntOrString;
  host?: string;
  /** Default "HTTP". */
  scheme?: "HTTP" | "HTTPS";
  httpHeaders?: HTTPHeader[];
}

export interface TCPSocketAction {
  port: IntOrString;
  host?: string;
}

export interface GRPCAction {
  port: number;
  service?: string;
}

export interface Probe {
  exec?: ExecAction;
  httpGet?: HTTPGetAction;
  tcpSocket?: TCPSocketAction;
  grpc?: GRPCAction;
  initialDelaySeconds?: number;
  /** Default 1. */
  timeoutSeconds?: number;
  /** Default 10. */
  periodSeconds?: number;
  /** Default 1 (must be 1 for liveness and startup probes). */
  successThreshold?: number;
  /** Default 3. */
  failureThreshold?: number;
  terminationGracePeriodSeconds?: number;
}

export interface LifecycleHandler {
  exec?: ExecAction;
  httpGet?: HTTPGetAction;
  tcpSocket?: TCPSocketAction;
  sleep?: { seconds: number };
}

export interface Lifecycle {
  postStart?: LifecycleHandler;
  preStop?: LifecycleHandler;
}

export interface ResourceRequirements {
  limits?: ResourceList;
  requests?: ResourceList;
}

export interface Capabilities {
  add?: string[];
  drop?: string[];
}

export interface SecurityContext {
  capabilities?: Capabilities;
  privileged?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
}

export type PullPolicy = "Always" | "Never" | "IfNotPresent";
export type TerminationMessagePolicy = "File" | "FallbackToLogsOnError";

export interface Container {
  /** DNS-1123 label, unique among the pod's containers and init containers. */
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  ports?: ContainerPort[];
  envFrom?: EnvFromSource[];
  env?: EnvVar[];
  resources?: ResourceRequirements;
  /** For init containers: "Always" makes it a sidecar. */
  restartPolicy?: "Always";
  volumeMounts?: VolumeMount[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: Lifecycle;
  /** Default "/dev/termination-log". */
  terminationMessagePath?: string;
  /** Default "File". */
  terminationMessagePolicy?: TerminationMessagePolicy;
  /** Default "Always" for ":latest" or untagged images, else "IfNotPresent". */
  imagePullPolicy?: PullPolicy;
  securityContext?: SecurityContext;
  stdin?: boolean;
  stdinOnce?: boolean;
  tty?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Pod: volumes

export interface KeyToPath {
  key: string;
  path: string;
  mode?: number;
}

export interface HostPathVolumeSource {
  path: string;
  type?: string;
}

export interface EmptyDirVolumeSource {
  medium?: "" | "Memory";
  sizeLimit?: Quantity;
}

export interface SecretVolumeSource {
  secretName?: string;
  items?: KeyToPath[];
  /** Default 0644 (420). */
  defaultMode?: number;
  optional?: boolean;
}

export interface ConfigMapVolumeSource {
  name?: string;
  items?: KeyToPath[];
  /** Default 0644 (420). */
  defaultMode?: number;
  optional?: boolean;
}

export interface PersistentVolumeClaimVolumeSource {
  claimName: string;
  readOnly?: boolean;
}

export interface DownwardAPIVolumeFile {
  path: string;
  fieldRef?: ObjectFieldSelector;
  resourceFieldRef?: ResourceFieldSelector;
  mode?: number;
}

export interface DownwardAPIVolumeSource {
  items?: DownwardAPIVolumeFile[];
  defaultMode?: number;
}

export interface ServiceAccountTokenProjection {
  audience?: string;
  expirationSeconds?: number;
  path: string;
}

export interface VolumeProjection {
  secret?: { name?: string; items?: KeyToPath[]; optional?: boolean };
  configMap?: { name?: string; items?: KeyToPath[]; optional?: boolean };
  downwardAPI?: { items?: DownwardAPIVolumeFile[] };
  serviceAccountToken?: ServiceAccountTokenProjection;
}

export interface ProjectedVolumeSource {
  sources?: VolumeProjection[];
  defaultMode?: number;
}

export interface NFSVolumeSource {
  server: string;
  path: string;
  readOnly?: boolean;
}

export interface CSIVolumeSource {
  driver: string;
  readOnly?: boolean;
  fsType?: string;
  volumeAttributes?: Record<string, string>;
}

/** The volume sources kubelab understands; exactly one must be set. */
export interface VolumeSource {
  hostPath?: HostPathVolumeSource;
  emptyDir?: EmptyDirVolumeSource;
  secret?: SecretVolumeSource;
  configMap?: ConfigMapVolumeSource;
  persistentVolumeClaim?: PersistentVolumeClaimVolumeSource;
  downwardAPI?: DownwardAPIVolumeSource;
  projected?: ProjectedVolumeSource;
  nfs?: NFSVolumeSource;
  csi?: CSIVolumeSource;
}

/** The keys of VolumeSource, used to check that exactly one is set. */
export const VOLUME_SOURCE_KEYS = [
  "hostPath",
  "emptyDir",
  "secret",
  "configMap",
  "persistentVolumeClaim",
  "downwardAPI",
  "projected",
  "nfs",
  "csi",
] as const satisfies readonly (keyof VolumeSource)[];

export interface Volume extends VolumeSource {
  /** DNS-1123 label, unique within the pod. */
  name: string;
}

// ---------------------------------------------------------------------------------------------
// Pod: scheduling

export type TolerationOperator = "Exists" | "Equal";

export interface Toleration {
  key?: string;
  /** Default "Equal". */
  operator?: TolerationOperator;
  value?: string;
  /** Empty matches all effects. */
  effect?: TaintEffect | "";
  /** For NoExecute: how long the pod stays bound after the taint appears. */
  tolerationSeconds?: number;
}

export type NodeSelectorOperator = "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt";

export interface NodeSelectorRequirement {
  key: string;
  operator: NodeSelectorOperator;
  values?: string[];
}

export interface NodeSelectorTerm {
  matchExpressions?: NodeSelectorRequirement[];
  matchFields?: NodeSelectorRequirement[];
}

export interface NodeSelector {
  /** ORed terms. */
  nodeSelectorTerms: NodeSelectorTerm[];
}

export interface PreferredSchedulingTerm {
  weight: number;
  preference: NodeSelectorTerm;
}

export interface NodeAffinity {
  requiredDuringSchedulingIgnoredDuringExecution?: NodeSelector;
  preferredDuringSchedulingIgnoredDuringExecution?: PreferredSchedulingTerm[];
}

export interface PodAffinityTerm {
  labelSelector?: LabelSelector;
  namespaces?: string[];
  topologyKey: string;
  namespaceSelector?: LabelSelector;
  matchLabelKeys?: string[];
  mismatchLabelKeys?: string[];
}

export interface WeightedPodAffinityTerm {
  weight: number;
  podAffinityTerm: PodAffinityTerm;
}

export interface PodAffinity {
  requiredDuringSchedulingIgnoredDuringExecution?: PodAffinityTerm[];
  preferredDuringSchedulingIgnoredDuringExecution?: WeightedPodAffinityTerm[];
}

export type PodAntiAffinity = PodAffinity;

export interface Affinity {
  nodeAffinity?: NodeAffinity;
  podAffinity?: PodAffinity;
  podAntiAffinity?: PodAntiAffinity;
}

export interface TopologySpreadConstraint {
  maxSkew: number;
  topologyKey: string;
  whenUnsatisfiable: "DoNotSchedule" | "ScheduleAnyway";
  labelSelector?: LabelSelector;
  minDomains?: number;
  nodeAffinityPolicy?: "Honor" | "Ignore";
  nodeTaintsPolicy?: "Honor" | "Ignore";
  matchLabelKeys?: string[];
}

export interface PodSecurityContext {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  fsGroup?: number;
  supplementalGroups?: number[];
}

export interface HostAlias {
  ip: string;
  hostnames?: string[];
}

export interface PodDNSConfig {
  nameservers?: string[];
  searches?: string[];
  options?: { name?: string; value?: string }[];
}

export interface PodReadinessGate {
  conditionType: string;
}

export interface PodSchedulingGate {
  name: string;
}

export type RestartPolicy = "Always" | "OnFailure" | "Never";
export type DNSPolicy = "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None";

export interface PodSpec {
  volumes?: Volume[];
  initContainers?: Container[];
  containers: Container[];
  /** Default "Always". */
  restartPolicy?: RestartPolicy;
  /** Default 30. */
  terminationGracePeriodSeconds?: number;
  activeDeadlineSeconds?: number;
  /** Default "ClusterFirst". */
  dnsPolicy?: DNSPolicy;
  nodeSelector?: Record<string, string>;
  serviceAccountName?: string;
  /** Deprecated alias of serviceAccountName. */
  serviceAccount?: string;
  automountServiceAccountToken?: boolean;
  /** Set by the scheduler's binding; immutable afterwards. */
  nodeName?: string;
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  shareProcessNamespace?: boolean;
  /** Default {}. */
  securityContext?: PodSecurityContext;
  imagePullSecrets?: LocalObjectReference[];
  hostname?: string;
  subdomain?: string;
  affinity?: Affinity;
  /** Default "default-scheduler". */
  schedulerName?: string;
  tolerations?: Toleration[];
  hostAliases?: HostAlias[];
  priorityClassName?: string;
  priority?: number;
  preemptionPolicy?: "PreemptLowerPriority" | "Never";
  dnsConfig?: PodDNSConfig;
  readinessGates?: PodReadinessGate[];
  runtimeClassName?: string;
  /** Default true. */
  enableServiceLinks?: boolean;
  overhead?: ResourceList;
  topologySpreadConstraints?: TopologySpreadConstraint[];
  schedulingGates?: PodSchedulingGate[];
}

// ---------------------------------------------------------------------------------------------
// Pod: status

export type PodPhase = "Pending" | "Running" | "Succeeded" | "Failed" | "Unknown";
export type PodConditionType =
  | "PodScheduled"
  | "PodReadyToStartContainers"
  | "Initialized"
  | "ContainersReady"
  | "Ready"
  | "DisruptionTarget";

export interface PodCondition {
  type: PodConditionType | string;
  status: "True" | "False" | "Unknown";
  lastProbeTime?: string | null;
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

export interface ContainerStateWaiting {
  reason?: string;
  message?: string;
}

export interface ContainerStateRunning {
  startedAt?: string;
}

export interface ContainerStateTerminated {
  exitCode: number;
  signal?: number;
  reason?: string;
  message?: string;
  startedAt?: string;
  finishedAt?: string;
  containerID?: string;
}

/** Exactly one member is set. */
export interface ContainerState {
  waiting?: ContainerStateWaiting;
  running?: ContainerStateRunning;
  terminated?: ContainerStateTerminated;
}

export interface ContainerStatus {
  name: string;
  state?: ContainerState;
  lastState?: ContainerState;
  ready: boolean;
  restartCount: number;
  image: string;
  imageID: string;
  containerID?: string;
  started?: boolean;
  resources?: ResourceRequirements;
}

export interface PodIP {
  ip: string;
}

export interface HostIP {
  ip: string;
}

export interface PodStatus {
  phase?: PodPhase;
  conditions?: PodCondition[];
  message?: string;
  /** E.g. "Evicted", "NodeLost". */
  reason?: string;
  nominatedNodeName?: string;
  hostIP?: string;
  hostIPs?: HostIP[];
  podIP?: string;
  podIPs?: PodIP[];
  startTime?: string;
  initContainerStatuses?: ContainerStatus[];
  containerStatuses?: ContainerStatus[];
  qosClass?: "Guaranteed" | "Burstable" | "BestEffort";
}

export interface Pod extends KubeObject {
  spec?: PodSpec;
  status?: PodStatus;
}

/** The pod template embedded in workload controllers. */
export interface PodTemplateSpec {
  metadata?: ObjectMeta;
  spec?: PodSpec;
}

export interface PodTemplate extends KubeObject {
  template?: PodTemplateSpec;
}

/** pods/binding: assigns a pod to a node (written by the scheduler). */
export interface Binding extends KubeObject {
  target: ObjectReference;
}

// ---------------------------------------------------------------------------------------------
// Service

export type ServiceType = "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName";
export type IPFamily = "IPv4" | "IPv6";
export type IPFamilyPolicy = "SingleStack" | "PreferDualStack" | "RequireDualStack";

export interface ServicePort {
  /** Required when the service has more than one port; DNS-1123 label. */
  name?: string;
  /** Default "TCP". */
  protocol?: Protocol;
  appProtocol?: string;
  port: number;
  /** A number or a named container port; default: the same as port. */
  targetPort?: IntOrString;
  /** Allocated from 30000–32767 for NodePort and LoadBalancer services. */
  nodePort?: number;
}

export interface SessionAffinityConfig {
  clientIP?: { timeoutSeconds?: number };
}

export interface ServiceSpec {
  ports?: ServicePort[];
  selector?: Record<string, string>;
  /** "None" makes a headless service; allocated when empty. Immutable once set. */
  clusterIP?: string;
  clusterIPs?: string[];
  /** Default "ClusterIP". */
  type?: ServiceType;
  externalIPs?: string[];
  /** Default "None". */
  sessionAffinity?: "None" | "ClientIP";
  loadBalancerIP?: string;
  loadBalancerSourceRanges?: string[];
  externalName?: string;
  externalTrafficPolicy?: "Cluster" | "Local";
  healthCheckNodePort?: number;
  publishNotReadyAddresses?: boolean;
  sessionAffinityConfig?: SessionAffinityConfig;
  ipFamilies?: IPFamily[];
  /** Default "SingleStack". */
  ipFamilyPolicy?: IPFamilyPolicy;
  allocateLoadBalancerNodePorts?: boolean;
  loadBalancerClass?: string;
  /** Default "Cluster". */
  internalTrafficPolicy?: "Cluster" | "Local";
}

export interface PortStatus {
  port: number;
  protocol: Protocol;
  error?: string;
}

export interface LoadBalancerIngress {
  ip?: string;
  hostname?: string;
  ipMode?: "VIP" | "Proxy";
  ports?: PortStatus[];
}

export interface LoadBalancerStatus {
  ingress?: LoadBalancerIngress[];
}

export interface ServiceStatus {
  loadBalancer?: LoadBalancerStatus;
  conditions?: Condition[];
}

export interface Service extends KubeObject {
  spec?: ServiceSpec;
  status?: ServiceStatus;
}

// ---------------------------------------------------------------------------------------------
// Endpoints

export interface EndpointAddress {
  ip: string;
  hostname?: string;
  nodeName?: string;
  targetRef?: ObjectReference;
}

export interface EndpointPort {
  name?: string;
  port: number;
  protocol?: Protocol;
  appProtocol?: string;
}

export interface EndpointSubset {
  addresses?: EndpointAddress[];
  notReadyAddresses?: EndpointAddress[];
  ports?: EndpointPort[];
}

export interface Endpoints extends KubeObject {
  subsets?: EndpointSubset[];
}

// ---------------------------------------------------------------------------------------------
// Event (core/v1)

export interface EventSource {
  component?: string;
  host?: string;
}

export interface EventSeries {
  count?: number;
  lastObservedTime?: string;
}

export interface Event extends KubeObject {
  involvedObject: ObjectReference;
  reason?: string;
  message?: string;
  source?: EventSource;
  firstTimestamp?: string | null;
  lastTimestamp?: string | null;
  count?: number;
  /** "Normal" or "Warning". */
  type?: string;
  eventTime?: string | null;
  series?: EventSeries;
  action?: string;
  related?: ObjectReference;
  reportingComponent?: string;
  reportingInstance?: string;
}

// ---------------------------------------------------------------------------------------------
// ConfigMap, Secret, ServiceAccount

export interface ConfigMap extends KubeObject {
  /** When true, data and binaryData can no longer change. */
  immutable?: boolean;
  data?: Record<string, string>;
  /** Values are base64. */
  binaryData?: Record<string, string>;
}

export type SecretType =
  | "Opaque"
  | "kubernetes.io/service-account-token"
  | "kubernetes.io/dockercfg"
  | "kubernetes.io/dockerconfigjson"
  | "kubernetes.io/basic-auth"
  | "kubernetes.io/ssh-auth"
  | "kubernetes.io/tls"
  | "bootstrap.kubernetes.io/token";

export interface Secret extends KubeObject {
  immutable?: boolean;
  /** Values are base64. */
  data?: Record<string, string>;
  /** Write-only convenience: merged into data (base64-encoded) on write. */
  stringData?: Record<string, string>;
  /** Default "Opaque"; immutable. */
  type?: SecretType | string;
}

export interface ServiceAccount extends KubeObject {
  secrets?: ObjectReference[];
  imagePullSecrets?: LocalObjectReference[];
  automountServiceAccountToken?: boolean;
}

// ---------------------------------------------------------------------------------------------
// PersistentVolume, PersistentVolumeClaim

export type PersistentVolumeAccessMode = "ReadWriteOnce" | "ReadOnlyMany" | "ReadWriteMany" | "ReadWriteOncePod";
export type PersistentVolumeReclaimPolicy = "Recycle" | "Delete" | "Retain";
export type PersistentVolumeMode = "Block" | "Filesystem";

export interface VolumeNodeAffinity {
  required?: NodeSelector;
}

export interface LocalVolumeSource {
  path: string;
  fsType?: string;
}

export interface PersistentVolumeSpec {
  capacity?: ResourceList;
  hostPath?: HostPathVolumeSource;
  local?: LocalVolumeSource;
  nfs?: NFSVolumeSource;
  csi?: CSIVolumeSource & { volumeHandle: string };
  accessModes?: PersistentVolumeAccessMode[];
  /** Set when bound; the claim it is bound to. */
  claimRef?: ObjectReference;
  /** Default "Retain" (dynamically provisioned volumes take their class's policy). */
  persistentVolumeReclaimPolicy?: PersistentVolumeReclaimPolicy;
  storageClassName?: string;
  mountOptions?: string[];
  /** Default "Filesystem". */
  volumeMode?: PersistentVolumeMode;
  nodeAffinity?: VolumeNodeAffinity;
}

/** The PersistentVolumeSpec keys that are volume sources; exactly one must be set. */
export const PERSISTENT_VOLUME_SOURCE_KEYS = ["hostPath", "local", "nfs", "csi"] as const satisfies readonly (keyof PersistentVolumeSpec)[];

export interface PersistentVolumeStatus {
  phase?: "Pending" | "Available" | "Bound" | "Released" | "Failed";
  message?: string;
  reason?: string;
  lastPhaseTransitionTime?: string;
}

export interface PersistentVolume extends KubeObject {
  spec?: PersistentVolumeSpec;
  status?: PersistentVolumeStatus;
}

export interface VolumeResourceRequirements {
  limits?: ResourceList;
  requests?: ResourceList;
}

export interface PersistentVolumeClaimSpec {
  accessModes?: PersistentVolumeAccessMode[];
  selector?: LabelSelector;
  resources?: VolumeResourceRequirements;
  /** Set when bound. */
  volumeName?: string;
  storageClassName?: string;
  /** Default "Filesystem". */
  volumeMode?: PersistentVolumeMode;
  dataSource?: TypedLocalObjectReference;
}

export interface PersistentVolumeClaimCondition {
  type: string;
  status: "True" | "False" | "Unknown";
  lastProbeTime?: string;
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

export interface PersistentVolumeClaimStatus {
  phase?: "Pending" | "Bound" | "Lost";
  accessModes?: PersistentVolumeAccessMode[];
  capacity?: ResourceList;
  conditions?: PersistentVolumeClaimCondition[];
}

export interface PersistentVolumeClaim extends KubeObject {
  spec?: PersistentVolumeClaimSpec;
  status?: PersistentVolumeClaimStatus;
}

// ---------------------------------------------------------------------------------------------
// Lists of the core kinds, for typed clients.

export interface PodList extends TypeMeta {
  metadata: ListMeta;
  items: Pod[];
}

export interface NodeList extends TypeMeta {
  metadata: ListMeta;
  items: Node[];
}

/** A label requirement on topology (used by StorageClass.allowedTopologies). */
export interface TopologySelectorLabelRequirement {
  key: string;
  values: string[];
}

export interface TopologySelectorTerm {
  matchLabelExpressions?: TopologySelectorLabelRequirement[];
}
