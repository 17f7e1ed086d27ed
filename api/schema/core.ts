// Schemas of k8s.io/api/core/v1 types. Field names and Go types follow upstream (v1.34), including
// fields kubelab's own types leave out: a missing field here rejects a valid manifest under Strict.

import { arr, bool, bytes, fieldsOf, int32, int64, intOrString, map, microtime, obj, quantity, str, time } from "./schema.ts";
import { Condition, LabelSelector, ObjectMeta } from "./meta.ts";

const resourceList = map(quantity);

// ---------------------------------------------------------------------------------------------
// References

export const ObjectReference = obj("v1.ObjectReference", {
  kind: str,
  namespace: str,
  name: str,
  uid: str,
  apiVersion: str,
  resourceVersion: str,
  fieldPath: str,
});

export const LocalObjectReference = obj("v1.LocalObjectReference", { name: str });

export const SecretReference = obj("v1.SecretReference", { name: str, namespace: str });

export const TypedLocalObjectReference = obj("v1.TypedLocalObjectReference", { apiGroup: str, kind: str, name: str });

export const TypedObjectReference = obj("v1.TypedObjectReference", { apiGroup: str, kind: str, name: str, namespace: str });

// ---------------------------------------------------------------------------------------------
// Selectors shared by pods, PVs and storage classes

export const NodeSelectorRequirement = obj("v1.NodeSelectorRequirement", { key: str, operator: str, values: arr(str) });

export const NodeSelectorTerm = obj("v1.NodeSelectorTerm", {
  matchExpressions: arr(NodeSelectorRequirement),
  matchFields: arr(NodeSelectorRequirement),
});

export const NodeSelector = obj("v1.NodeSelector", { nodeSelectorTerms: arr(NodeSelectorTerm) });

export const TopologySelectorLabelRequirement = obj("v1.TopologySelectorLabelRequirement", { key: str, values: arr(str) });

export const TopologySelectorTerm = obj("v1.TopologySelectorTerm", {
  matchLabelExpressions: arr(TopologySelectorLabelRequirement),
});

// ---------------------------------------------------------------------------------------------
// Namespace

export const NamespaceCondition = obj("v1.NamespaceCondition", {
  type: str,
  status: str,
  lastTransitionTime: time,
  reason: str,
  message: str,
});

export const NamespaceSpec = obj("v1.NamespaceSpec", { finalizers: arr(str) });

export const NamespaceStatus = obj("v1.NamespaceStatus", { phase: str, conditions: arr(NamespaceCondition) });

// ---------------------------------------------------------------------------------------------
// Node

export const Taint = obj("v1.Taint", { key: str, value: str, effect: str, timeAdded: time });

export const ConfigMapNodeConfigSource = obj("v1.ConfigMapNodeConfigSource", {
  namespace: str,
  name: str,
  uid: str,
  resourceVersion: str,
  kubeletConfigKey: str,
});

export const NodeConfigSource = obj("v1.NodeConfigSource", { configMap: ConfigMapNodeConfigSource });

export const NodeSpec = obj("v1.NodeSpec", {
  podCIDR: str,
  podCIDRs: arr(str),
  providerID: str,
  unschedulable: bool,
  taints: arr(Taint),
  configSource: NodeConfigSource,
  externalID: str,
});

export const NodeCondition = obj("v1.NodeCondition", {
  type: str,
  status: str,
  lastHeartbeatTime: time,
  lastTransitionTime: time,
  reason: str,
  message: str,
});

export const NodeAddress = obj("v1.NodeAddress", { type: str, address: str });

export const DaemonEndpoint = obj("v1.DaemonEndpoint", { Port: int32 });

export const NodeDaemonEndpoints = obj("v1.NodeDaemonEndpoints", { kubeletEndpoint: DaemonEndpoint });

export const NodeSwapStatus = obj("v1.NodeSwapStatus", { capacity: int64 });

export const NodeSystemInfo = obj("v1.NodeSystemInfo", {
  machineID: str,
  systemUUID: str,
  bootID: str,
  kernelVersion: str,
  osImage: str,
  containerRuntimeVersion: str,
  kubeletVersion: str,
  kubeProxyVersion: str,
  operatingSystem: str,
  architecture: str,
  swap: NodeSwapStatus,
});

export const ContainerImage = obj("v1.ContainerImage", { names: arr(str), sizeBytes: int64 });

export const AttachedVolume = obj("v1.AttachedVolume", { name: str, devicePath: str });

export const NodeConfigStatus = obj("v1.NodeConfigStatus", {
  assigned: NodeConfigSource,
  active: NodeConfigSource,
  lastKnownGood: NodeConfigSource,
  error: str,
});

export const NodeRuntimeHandlerFeatures = obj("v1.NodeRuntimeHandlerFeatures", {
  recursiveReadOnlyMounts: bool,
  userNamespaces: bool,
});

export const NodeRuntimeHandler = obj("v1.NodeRuntimeHandler", { name: str, features: NodeRuntimeHandlerFeatures });

export const NodeFeatures = obj("v1.NodeFeatures", { supplementalGroupsPolicy: bool });

export const NodeStatus = obj("v1.NodeStatus", {
  capacity: resourceList,
  allocatable: resourceList,
  phase: str,
  conditions: arr(NodeCondition),
  addresses: arr(NodeAddress),
  daemonEndpoints: NodeDaemonEndpoints,
  nodeInfo: NodeSystemInfo,
  images: arr(ContainerImage),
  volumesInUse: arr(str),
  volumesAttached: arr(AttachedVolume),
  config: NodeConfigStatus,
  runtimeHandlers: arr(NodeRuntimeHandler),
  features: NodeFeatures,
  declaredFeatures: arr(str),
});

// ---------------------------------------------------------------------------------------------
// Containers

export const ContainerPort = obj("v1.ContainerPort", {
  name: str,
  hostPort: int32,
  containerPort: int32,
  protocol: str,
  hostIP: str,
});

export const ObjectFieldSelector = obj("v1.ObjectFieldSelector", { apiVersion: str, fieldPath: str });

export const ResourceFieldSelector = obj("v1.ResourceFieldSelector", { containerName: str, resource: str, divisor: quantity });

export const ConfigMapKeySelector = obj("v1.ConfigMapKeySelector", { name: str, key: str, optional: bool });

export const SecretKeySelector = obj("v1.SecretKeySelector", { name: str, key: str, optional: bool });

export const FileKeySelector = obj("v1.FileKeySelector", { volumeName: str, path: str, key: str, optional: bool });

export const EnvVarSource = obj("v1.EnvVarSource", {
  fieldRef: ObjectFieldSelector,
  resourceFieldRef: ResourceFieldSelector,
  configMapKeyRef: ConfigMapKeySelector,
  secretKeyRef: SecretKeySelector,
  fileKeyRef: FileKeySelector,
});

export const EnvVar = obj("v1.EnvVar", { name: str, value: str, valueFrom: EnvVarSource });

export const ConfigMapEnvSource = obj("v1.ConfigMapEnvSource", { name: str, optional: bool });

export const SecretEnvSource = obj("v1.SecretEnvSource", { name: str, optional: bool });

export const EnvFromSource = obj("v1.EnvFromSource", { prefix: str, configMapRef: ConfigMapEnvSource, secretRef: SecretEnvSource });

export const ResourceClaim = obj("v1.ResourceClaim", { name: str, request: str });

export const ResourceRequirements = obj("v1.ResourceRequirements", {
  limits: resourceList,
  requests: resourceList,
  claims: arr(ResourceClaim),
});

export const ContainerResizePolicy = obj("v1.ContainerResizePolicy", { resourceName: str, restartPolicy: str });

export const ContainerRestartRuleOnExitCodes = obj("v1.ContainerRestartRuleOnExitCodes", { operator: str, values: arr(int32) });

export const ContainerRestartRule = obj("v1.ContainerRestartRule", { action: str, exitCodes: ContainerRestartRuleOnExitCodes });

export const VolumeMount = obj("v1.VolumeMount", {
  name: str,
  readOnly: bool,
  recursiveReadOnly: str,
  mountPath: str,
  subPath: str,
  mountPropagation: str,
  subPathExpr: str,
});

export const VolumeDevice = obj("v1.VolumeDevice", { name: str, devicePath: str });

export const ExecAction = obj("v1.ExecAction", { command: arr(str) });

export const HTTPHeader = obj("v1.HTTPHeader", { name: str, value: str });

export const HTTPGetAction = obj("v1.HTTPGetAction", {
  path: str,
  port: intOrString,
  host: str,
  scheme: str,
  httpHeaders: arr(HTTPHeader),
});

export const TCPSocketAction = obj("v1.TCPSocketAction", { port: intOrString, host: str });

export const GRPCAction = obj("v1.GRPCAction", { port: int32, service: str });

export const SleepAction = obj("v1.SleepAction", { seconds: int64 });

export const Probe = obj("v1.Probe", {
  exec: ExecAction,
  httpGet: HTTPGetAction,
  tcpSocket: TCPSocketAction,
  grpc: GRPCAction,
  initialDelaySeconds: int32,
  timeoutSeconds: int32,
  periodSeconds: int32,
  successThreshold: int32,
  failureThreshold: int32,
  terminationGracePeriodSeconds: int64,
});

export const LifecycleHandler = obj("v1.LifecycleHandler", {
  exec: ExecAction,
  httpGet: HTTPGetAction,
  tcpSocket: TCPSocketAction,
  sleep: SleepAction,
});

export const Lifecycle = obj("v1.Lifecycle", { postStart: LifecycleHandler, preStop: LifecycleHandler, stopSignal: str });

export const Capabilities = obj("v1.Capabilities", { add: arr(str), drop: arr(str) });

export const SELinuxOptions = obj("v1.SELinuxOptions", { user: str, role: str, type: str, level: str });

export const WindowsSecurityContextOptions = obj("v1.WindowsSecurityContextOptions", {
  gmsaCredentialSpecName: str,
  gmsaCredentialSpec: str,
  runAsUserName: str,
  hostProcess: bool,
});

export const SeccompProfile = obj("v1.SeccompProfile", { type: str, localhostProfile: str });

export const AppArmorProfile = obj("v1.AppArmorProfile", { type: str, localhostProfile: str });

export const SecurityContext = obj("v1.SecurityContext", {
  capabilities: Capabilities,
  privileged: bool,
  seLinuxOptions: SELinuxOptions,
  windowsOptions: WindowsSecurityContextOptions,
  runAsUser: int64,
  runAsGroup: int64,
  runAsNonRoot: bool,
  readOnlyRootFilesystem: bool,
  allowPrivilegeEscalation: bool,
  procMount: str,
  seccompProfile: SeccompProfile,
  appArmorProfile: AppArmorProfile,
});

const containerFields = {
  name: str,
  image: str,
  command: arr(str),
  args: arr(str),
  workingDir: str,
  ports: arr(ContainerPort),
  envFrom: arr(EnvFromSource),
  env: arr(EnvVar),
  resources: ResourceRequirements,
  resizePolicy: arr(ContainerResizePolicy),
  restartPolicy: str,
  restartPolicyRules: arr(ContainerRestartRule),
  volumeMounts: arr(VolumeMount),
  volumeDevices: arr(VolumeDevice),
  livenessProbe: Probe,
  readinessProbe: Probe,
  startupProbe: Probe,
  lifecycle: Lifecycle,
  terminationMessagePath: str,
  terminationMessagePolicy: str,
  imagePullPolicy: str,
  securityContext: SecurityContext,
  stdin: bool,
  stdinOnce: bool,
  tty: bool,
};

export const Container = obj("v1.Container", containerFields);

export const EphemeralContainer = obj("v1.EphemeralContainer", { ...containerFields, targetContainerName: str });

// ---------------------------------------------------------------------------------------------
// Volumes

export const KeyToPath = obj("v1.KeyToPath", { key: str, path: str, mode: int32 });

export const DownwardAPIVolumeFile = obj("v1.DownwardAPIVolumeFile", {
  path: str,
  fieldRef: ObjectFieldSelector,
  resourceFieldRef: ResourceFieldSelector,
  mode: int32,
});

export const HostPathVolumeSource = obj("v1.HostPathVolumeSource", { path: str, type: str });

export const EmptyDirVolumeSource = obj("v1.EmptyDirVolumeSource", { medium: str, sizeLimit: quantity });

export const SecretVolumeSource = obj("v1.SecretVolumeSource", {
  secretName: str,
  items: arr(KeyToPath),
  defaultMode: int32,
  optional: bool,
});

export const ConfigMapVolumeSource = obj("v1.ConfigMapVolumeSource", {
  name: str,
  items: arr(KeyToPath),
  defaultMode: int32,
  optional: bool,
});

export const PersistentVolumeClaimVolumeSource = obj("v1.PersistentVolumeClaimVolumeSource", { claimName: str, readOnly: bool });

export const DownwardAPIVolumeSource = obj("v1.DownwardAPIVolumeSource", { items: arr(DownwardAPIVolumeFile), defaultMode: int32 });

export const SecretProjection = obj("v1.SecretProjection", { name: str, items: arr(KeyToPath), optional: bool });

export const ConfigMapProjection = obj("v1.ConfigMapProjection", { name: str, items: arr(KeyToPath), optional: bool });

export const DownwardAPIProjection = obj("v1.DownwardAPIProjection", { items: arr(DownwardAPIVolumeFile) });

export const ServiceAccountTokenProjection = obj("v1.ServiceAccountTokenProjection", {
  audience: str,
  expirationSeconds: int64,
  path: str,
});

export const ClusterTrustBundleProjection = obj("v1.ClusterTrustBundleProjection", {
  name: str,
  signerName: str,
  labelSelector: LabelSelector,
  optional: bool,
  path: str,
});

export const PodCertificateProjection = obj("v1.PodCertificateProjection", {
  signerName: str,
  keyType: str,
  maxExpirationSeconds: int32,
  credentialBundlePath: str,
  keyPath: str,
  certificateChainPath: str,
  userAnnotations: map(str),
});

export const VolumeProjection = obj("v1.VolumeProjection", {
  secret: SecretProjection,
  downwardAPI: DownwardAPIProjection,
  configMap: ConfigMapProjection,
  serviceAccountToken: ServiceAccountTokenProjection,
  clusterTrustBundle: ClusterTrustBundleProjection,
  podCertificate: PodCertificateProjection,
});

export const ProjectedVolumeSource = obj("v1.ProjectedVolumeSource", { sources: arr(VolumeProjection), defaultMode: int32 });

export const NFSVolumeSource = obj("v1.NFSVolumeSource", { server: str, path: str, readOnly: bool });

export const CSIVolumeSource = obj("v1.CSIVolumeSource", {
  driver: str,
  readOnly: bool,
  fsType: str,
  volumeAttributes: map(str),
  nodePublishSecretRef: LocalObjectReference,
});

export const GCEPersistentDiskVolumeSource = obj("v1.GCEPersistentDiskVolumeSource", {
  pdName: str,
  fsType: str,
  partition: int32,
  readOnly: bool,
});

export const AWSElasticBlockStoreVolumeSource = obj("v1.AWSElasticBlockStoreVolumeSource", {
  volumeID: str,
  fsType: str,
  partition: int32,
  readOnly: bool,
});

export const GitRepoVolumeSource = obj("v1.GitRepoVolumeSource", { repository: str, revision: str, directory: str });

const iscsiFields = {
  targetPortal: str,
  iqn: str,
  lun: int32,
  iscsiInterface: str,
  fsType: str,
  readOnly: bool,
  portals: arr(str),
  chapAuthDiscovery: bool,
  chapAuthSession: bool,
  initiatorName: str,
};

export const ISCSIVolumeSource = obj("v1.ISCSIVolumeSource", { ...iscsiFields, secretRef: LocalObjectReference });

export const GlusterfsVolumeSource = obj("v1.GlusterfsVolumeSource", { endpoints: str, path: str, readOnly: bool });

const rbdFields = { monitors: arr(str), image: str, fsType: str, pool: str, user: str, keyring: str, readOnly: bool };

export const RBDVolumeSource = obj("v1.RBDVolumeSource", { ...rbdFields, secretRef: LocalObjectReference });

export const FlexVolumeSource = obj("v1.FlexVolumeSource", {
  driver: str,
  fsType: str,
  secretRef: LocalObjectReference,
  readOnly: bool,
  options: map(str),
});

export const CinderVolumeSource = obj("v1.CinderVolumeSource", { volumeID: str, fsType: str, readOnly: bool, secretRef: LocalObjectReference });

const cephFields = { monitors: arr(str), path: str, user: str, secretFile: str, readOnly: bool };

export const CephFSVolumeSource = obj("v1.CephFSVolumeSource", { ...cephFields, secretRef: LocalObjectReference });

export const FlockerVolumeSource = obj("v1.FlockerVolumeSource", { datasetName: str, datasetUUID: str });

export const FCVolumeSource = obj("v1.FCVolumeSource", {
  targetWWNs: arr(str),
  lun: int32,
  fsType: str,
  readOnly: bool,
  wwids: arr(str),
});

export const AzureFileVolumeSource = obj("v1.AzureFileVolumeSource", { secretName: str, shareName: str, readOnly: bool });

export const VsphereVirtualDiskVolumeSource = obj("v1.VsphereVirtualDiskVolumeSource", {
  volumePath: str,
  fsType: str,
  storagePolicyName: str,
  storagePolicyID: str,
});

export const QuobyteVolumeSource = obj("v1.QuobyteVolumeSource", {
  registry: str,
  volume: str,
  readOnly: bool,
  user: str,
  group: str,
  tenant: str,
});

export const AzureDiskVolumeSource = obj("v1.AzureDiskVolumeSource", {
  diskName: str,
  diskURI: str,
  cachingMode: str,
  fsType: str,
  readOnly: bool,
  kind: str,
});

export const PhotonPersistentDiskVolumeSource = obj("v1.PhotonPersistentDiskVolumeSource", { pdID: str, fsType: str });

export const PortworxVolumeSource = obj("v1.PortworxVolumeSource", { volumeID: str, fsType: str, readOnly: bool });

const scaleIOFields = {
  gateway: str,
  system: str,
  sslEnabled: bool,
  protectionDomain: str,
  storagePool: str,
  storageMode: str,
  volumeName: str,
  fsType: str,
  readOnly: bool,
};

export const ScaleIOVolumeSource = obj("v1.ScaleIOVolumeSource", { ...scaleIOFields, secretRef: LocalObjectReference });

const storageOSFields = { volumeName: str, volumeNamespace: str, fsType: str, readOnly: bool };

export const StorageOSVolumeSource = obj("v1.StorageOSVolumeSource", { ...storageOSFields, secretRef: LocalObjectReference });

export const ImageVolumeSource = obj("v1.ImageVolumeSource", { reference: str, pullPolicy: str });

export const VolumeResourceRequirements = obj("v1.VolumeResourceRequirements", { limits: resourceList, requests: resourceList });

export const PersistentVolumeClaimSpec = obj("v1.PersistentVolumeClaimSpec", {
  accessModes: arr(str),
  selector: LabelSelector,
  resources: VolumeResourceRequirements,
  volumeName: str,
  storageClassName: str,
  volumeMode: str,
  dataSource: TypedLocalObjectReference,
  dataSourceRef: TypedObjectReference,
  volumeAttributesClassName: str,
});

export const PersistentVolumeClaimTemplate = obj("v1.PersistentVolumeClaimTemplate", {
  metadata: ObjectMeta,
  spec: PersistentVolumeClaimSpec,
});

export const EphemeralVolumeSource = obj("v1.EphemeralVolumeSource", { volumeClaimTemplate: PersistentVolumeClaimTemplate });

export const VolumeSource = obj("v1.VolumeSource", {
  hostPath: HostPathVolumeSource,
  emptyDir: EmptyDirVolumeSource,
  gcePersistentDisk: GCEPersistentDiskVolumeSource,
  awsElasticBlockStore: AWSElasticBlockStoreVolumeSource,
  gitRepo: GitRepoVolumeSource,
  secret: SecretVolumeSource,
  nfs: NFSVolumeSource,
  iscsi: ISCSIVolumeSource,
  glusterfs: GlusterfsVolumeSource,
  persistentVolumeClaim: PersistentVolumeClaimVolumeSource,
  rbd: RBDVolumeSource,
  flexVolume: FlexVolumeSource,
  cinder: CinderVolumeSource,
  cephfs: CephFSVolumeSource,
  flocker: FlockerVolumeSource,
  downwardAPI: DownwardAPIVolumeSource,
  fc: FCVolumeSource,
  azureFile: AzureFileVolumeSource,
  configMap: ConfigMapVolumeSource,
  vsphereVolume: VsphereVirtualDiskVolumeSource,
  quobyte: QuobyteVolumeSource,
  azureDisk: AzureDiskVolumeSource,
  photonPersistentDisk: PhotonPersistentDiskVolumeSource,
  projected: ProjectedVolumeSource,
  portworxVolume: PortworxVolumeSource,
  scaleIO: ScaleIOVolumeSource,
  storageos: StorageOSVolumeSource,
  csi: CSIVolumeSource,
  ephemeral: EphemeralVolumeSource,
  image: ImageVolumeSource,
});

/** Volume embeds VolumeSource inline. */
export const Volume = obj("v1.Volume", { name: str, ...fieldsOf(VolumeSource) });

// ---------------------------------------------------------------------------------------------
// Scheduling

export const Toleration = obj("v1.Toleration", {
  key: str,
  operator: str,
  value: str,
  effect: str,
  tolerationSeconds: int64,
});

export const PreferredSchedulingTerm = obj("v1.PreferredSchedulingTerm", { weight: int32, preference: NodeSelectorTerm });

export const NodeAffinity = obj("v1.NodeAffinity", {
  requiredDuringSchedulingIgnoredDuringExecution: NodeSelector,
  preferredDuringSchedulingIgnoredDuringExecution: arr(PreferredSchedulingTerm),
});

export const PodAffinityTerm = obj("v1.PodAffinityTerm", {
  labelSelector: LabelSelector,
  namespaces: arr(str),
  topologyKey: str,
  namespaceSelector: LabelSelector,
  matchLabelKeys: arr(str),
  mismatchLabelKeys: arr(str),
});

export const WeightedPodAffinityTerm = obj("v1.WeightedPodAffinityTerm", { weight: int32, podAffinityTerm: PodAffinityTerm });

const podAffinityFields = {
  requiredDuringSchedulingIgnoredDuringExecution: arr(PodAffinityTerm),
  preferredDuringSchedulingIgnoredDuringExecution: arr(WeightedPodAffinityTerm),
};

export const PodAffinity = obj("v1.PodAffinity", podAffinityFields);

export const PodAntiAffinity = obj("v1.PodAntiAffinity", podAffinityFields);

export const Affinity = obj("v1.Affinity", { nodeAffinity: NodeAffinity, podAffinity: PodAffinity, podAntiAffinity: PodAntiAffinity });

export const TopologySpreadConstraint = obj("v1.TopologySpreadConstraint", {
  maxSkew: int32,
  topologyKey: str,
  whenUnsatisfiable: str,
  labelSelector: LabelSelector,
  minDomains: int32,
  nodeAffinityPolicy: str,
  nodeTaintsPolicy: str,
  matchLabelKeys: arr(str),
});

export const Sysctl = obj("v1.Sysctl", { name: str, value: str });

export const PodSecurityContext = obj("v1.PodSecurityContext", {
  seLinuxOptions: SELinuxOptions,
  windowsOptions: WindowsSecurityContextOptions,
  runAsUser: int64,
  runAsGroup: int64,
  runAsNonRoot: bool,
  supplementalGroups: arr(int64),
  supplementalGroupsPolicy: str,
  fsGroup: int64,
  sysctls: arr(Sysctl),
  fsGroupChangePolicy: str,
  seccompProfile: SeccompProfile,
  appArmorProfile: AppArmorProfile,
  seLinuxChangePolicy: str,
});

export const HostAlias = obj("v1.HostAlias", { ip: str, hostnames: arr(str) });

export const PodDNSConfigOption = obj("v1.PodDNSConfigOption", { name: str, value: str });

export const PodDNSConfig = obj("v1.PodDNSConfig", { nameservers: arr(str), searches: arr(str), options: arr(PodDNSConfigOption) });

export const PodReadinessGate = obj("v1.PodReadinessGate", { conditionType: str });

export const PodOS = obj("v1.PodOS", { name: str });

export const PodSchedulingGate = obj("v1.PodSchedulingGate", { name: str });

export const PodResourceClaim = obj("v1.PodResourceClaim", { name: str, resourceClaimName: str, resourceClaimTemplateName: str });

export const PodSpec = obj("v1.PodSpec", {
  volumes: arr(Volume),
  initContainers: arr(Container),
  containers: arr(Container),
  ephemeralContainers: arr(EphemeralContainer),
  restartPolicy: str,
  terminationGracePeriodSeconds: int64,
  activeDeadlineSeconds: int64,
  dnsPolicy: str,
  nodeSelector: map(str),
  serviceAccountName: str,
  serviceAccount: str,
  automountServiceAccountToken: bool,
  nodeName: str,
  hostNetwork: bool,
  hostPID: bool,
  hostIPC: bool,
  shareProcessNamespace: bool,
  securityContext: PodSecurityContext,
  imagePullSecrets: arr(LocalObjectReference),
  hostname: str,
  subdomain: str,
  affinity: Affinity,
  schedulerName: str,
  tolerations: arr(Toleration),
  hostAliases: arr(HostAlias),
  priorityClassName: str,
  priority: int32,
  dnsConfig: PodDNSConfig,
  readinessGates: arr(PodReadinessGate),
  runtimeClassName: str,
  enableServiceLinks: bool,
  preemptionPolicy: str,
  overhead: resourceList,
  topologySpreadConstraints: arr(TopologySpreadConstraint),
  setHostnameAsFQDN: bool,
  os: PodOS,
  hostUsers: bool,
  schedulingGates: arr(PodSchedulingGate),
  resourceClaims: arr(PodResourceClaim),
  resources: ResourceRequirements,
  hostnameOverride: str,
});

// ---------------------------------------------------------------------------------------------
// Pod status

export const PodCondition = obj("v1.PodCondition", {
  type: str,
  observedGeneration: int64,
  status: str,
  lastProbeTime: time,
  lastTransitionTime: time,
  reason: str,
  message: str,
});

export const ContainerStateWaiting = obj("v1.ContainerStateWaiting", { reason: str, message: str });

export const ContainerStateRunning = obj("v1.ContainerStateRunning", { startedAt: time });

export const ContainerStateTerminated = obj("v1.ContainerStateTerminated", {
  exitCode: int32,
  signal: int32,
  reason: str,
  message: str,
  startedAt: time,
  finishedAt: time,
  containerID: str,
});

export const ContainerState = obj("v1.ContainerState", {
  waiting: ContainerStateWaiting,
  running: ContainerStateRunning,
  terminated: ContainerStateTerminated,
});

export const VolumeMountStatus = obj("v1.VolumeMountStatus", { name: str, mountPath: str, readOnly: bool, recursiveReadOnly: str });

export const LinuxContainerUser = obj("v1.LinuxContainerUser", { uid: int64, gid: int64, supplementalGroups: arr(int64) });

export const ContainerUser = obj("v1.ContainerUser", { linux: LinuxContainerUser });

export const ResourceHealth = obj("v1.ResourceHealth", { resourceID: str, health: str });

export const ResourceStatus = obj("v1.ResourceStatus", { name: str, resources: arr(ResourceHealth) });

export const ContainerStatus = obj("v1.ContainerStatus", {
  name: str,
  state: ContainerState,
  lastState: ContainerState,
  ready: bool,
  restartCount: int32,
  image: str,
  imageID: str,
  containerID: str,
  started: bool,
  allocatedResources: resourceList,
  resources: ResourceRequirements,
  volumeMounts: arr(VolumeMountStatus),
  user: ContainerUser,
  allocatedResourcesStatus: arr(ResourceStatus),
  stopSignal: str,
});

export const PodIP = obj("v1.PodIP", { ip: str });

export const HostIP = obj("v1.HostIP", { ip: str });

export const PodResourceClaimStatus = obj("v1.PodResourceClaimStatus", { name: str, resourceClaimName: str });

export const ContainerExtendedResourceRequest = obj("v1.ContainerExtendedResourceRequest", {
  containerName: str,
  resourceName: str,
  requestName: str,
});

export const PodExtendedResourceClaimStatus = obj("v1.PodExtendedResourceClaimStatus", {
  requestMappings: arr(ContainerExtendedResourceRequest),
  resourceClaimName: str,
});

export const PodStatus = obj("v1.PodStatus", {
  observedGeneration: int64,
  phase: str,
  conditions: arr(PodCondition),
  message: str,
  reason: str,
  nominatedNodeName: str,
  hostIP: str,
  hostIPs: arr(HostIP),
  podIP: str,
  podIPs: arr(PodIP),
  startTime: time,
  initContainerStatuses: arr(ContainerStatus),
  containerStatuses: arr(ContainerStatus),
  qosClass: str,
  ephemeralContainerStatuses: arr(ContainerStatus),
  resize: str,
  resourceClaimStatuses: arr(PodResourceClaimStatus),
  extendedResourceClaimStatus: PodExtendedResourceClaimStatus,
});

export const PodTemplateSpec = obj("v1.PodTemplateSpec", { metadata: ObjectMeta, spec: PodSpec });

// ---------------------------------------------------------------------------------------------
// Service

export const ServicePort = obj("v1.ServicePort", {
  name: str,
  protocol: str,
  appProtocol: str,
  port: int32,
  targetPort: intOrString,
  nodePort: int32,
});

export const ClientIPConfig = obj("v1.ClientIPConfig", { timeoutSeconds: int32 });

export const SessionAffinityConfig = obj("v1.SessionAffinityConfig", { clientIP: ClientIPConfig });

export const ServiceSpec = obj("v1.ServiceSpec", {
  ports: arr(ServicePort),
  selector: map(str),
  clusterIP: str,
  clusterIPs: arr(str),
  type: str,
  externalIPs: arr(str),
  sessionAffinity: str,
  loadBalancerIP: str,
  loadBalancerSourceRanges: arr(str),
  externalName: str,
  externalTrafficPolicy: str,
  healthCheckNodePort: int32,
  publishNotReadyAddresses: bool,
  sessionAffinityConfig: SessionAffinityConfig,
  ipFamilies: arr(str),
  ipFamilyPolicy: str,
  allocateLoadBalancerNodePorts: bool,
  loadBalancerClass: str,
  internalTrafficPolicy: str,
  trafficDistribution: str,
});

export const PortStatus = obj("v1.PortStatus", { port: int32, protocol: str, error: str });

export const LoadBalancerIngress = obj("v1.LoadBalancerIngress", { ip: str, hostname: str, ipMode: str, ports: arr(PortStatus) });

export const LoadBalancerStatus = obj("v1.LoadBalancerStatus", { ingress: arr(LoadBalancerIngress) });

export const ServiceStatus = obj("v1.ServiceStatus", { loadBalancer: LoadBalancerStatus, conditions: arr(Condition) });

// ---------------------------------------------------------------------------------------------
// Endpoints

export const EndpointAddress = obj("v1.EndpointAddress", { ip: str, hostname: str, nodeName: str, targetRef: ObjectReference });

export const EndpointPort = obj("v1.EndpointPort", { name: str, port: int32, protocol: str, appProtocol: str });

export const EndpointSubset = obj("v1.EndpointSubset", {
  addresses: arr(EndpointAddress),
  notReadyAddresses: arr(EndpointAddress),
  ports: arr(EndpointPort),
});

// ---------------------------------------------------------------------------------------------
// Event

export const EventSource = obj("v1.EventSource", { component: str, host: str });

export const EventSeries = obj("v1.EventSeries", { count: int32, lastObservedTime: microtime });

// ---------------------------------------------------------------------------------------------
// PersistentVolume, PersistentVolumeClaim

export const GlusterfsPersistentVolumeSource = obj("v1.GlusterfsPersistentVolumeSource", {
  endpoints: str,
  path: str,
  readOnly: bool,
  endpointsNamespace: str,
});

export const RBDPersistentVolumeSource = obj("v1.RBDPersistentVolumeSource", { ...rbdFields, secretRef: SecretReference });

export const ISCSIPersistentVolumeSource = obj("v1.ISCSIPersistentVolumeSource", { ...iscsiFields, secretRef: SecretReference });

export const CinderPersistentVolumeSource = obj("v1.CinderPersistentVolumeSource", {
  volumeID: str,
  fsType: str,
  readOnly: bool,
  secretRef: SecretReference,
});

export const CephFSPersistentVolumeSource = obj("v1.CephFSPersistentVolumeSource", { ...cephFields, secretRef: SecretReference });

export const FlexPersistentVolumeSource = obj("v1.FlexPersistentVolumeSource", {
  driver: str,
  fsType: str,
  secretRef: SecretReference,
  readOnly: bool,
  options: map(str),
});

export const AzureFilePersistentVolumeSource = obj("v1.AzureFilePersistentVolumeSource", {
  secretName: str,
  shareName: str,
  readOnly: bool,
  secretNamespace: str,
});

export const ScaleIOPersistentVolumeSource = obj("v1.ScaleIOPersistentVolumeSource", { ...scaleIOFields, secretRef: SecretReference });

export const StorageOSPersistentVolumeSource = obj("v1.StorageOSPersistentVolumeSource", { ...storageOSFields, secretRef: ObjectReference });

export const LocalVolumeSource = obj("v1.LocalVolumeSource", { path: str, fsType: str });

export const CSIPersistentVolumeSource = obj("v1.CSIPersistentVolumeSource", {
  driver: str,
  volumeHandle: str,
  readOnly: bool,
  fsType: str,
  volumeAttributes: map(str),
  controllerPublishSecretRef: SecretReference,
  nodeStageSecretRef: SecretReference,
  nodePublishSecretRef: SecretReference,
  controllerExpandSecretRef: SecretReference,
  nodeExpandSecretRef: SecretReference,
});

export const VolumeNodeAffinity = obj("v1.VolumeNodeAffinity", { required: NodeSelector });

export const PersistentVolumeSpec = obj("v1.PersistentVolumeSpec", {
  capacity: resourceList,
  // PersistentVolumeSource, inline:
  gcePersistentDisk: GCEPersistentDiskVolumeSource,
  awsElasticBlockStore: AWSElasticBlockStoreVolumeSource,
  hostPath: HostPathVolumeSource,
  glusterfs: GlusterfsPersistentVolumeSource,
  nfs: NFSVolumeSource,
  rbd: RBDPersistentVolumeSource,
  iscsi: ISCSIPersistentVolumeSource,
  cinder: CinderPersistentVolumeSource,
  cephfs: CephFSPersistentVolumeSource,
  fc: FCVolumeSource,
  flocker: FlockerVolumeSource,
  flexVolume: FlexPersistentVolumeSource,
  azureFile: AzureFilePersistentVolumeSource,
  vsphereVolume: VsphereVirtualDiskVolumeSource,
  quobyte: QuobyteVolumeSource,
  azureDisk: AzureDiskVolumeSource,
  photonPersistentDisk: PhotonPersistentDiskVolumeSource,
  portworxVolume: PortworxVolumeSource,
  scaleIO: ScaleIOPersistentVolumeSource,
  local: LocalVolumeSource,
  storageos: StorageOSPersistentVolumeSource,
  csi: CSIPersistentVolumeSource,
  // The rest of the spec:
  accessModes: arr(str),
  claimRef: ObjectReference,
  persistentVolumeReclaimPolicy: str,
  storageClassName: str,
  mountOptions: arr(str),
  volumeMode: str,
  nodeAffinity: VolumeNodeAffinity,
  volumeAttributesClassName: str,
});

export const PersistentVolumeStatus = obj("v1.PersistentVolumeStatus", {
  phase: str,
  message: str,
  reason: str,
  lastPhaseTransitionTime: time,
});

export const PersistentVolumeClaimCondition = obj("v1.PersistentVolumeClaimCondition", {
  type: str,
  status: str,
  lastProbeTime: time,
  lastTransitionTime: time,
  reason: str,
  message: str,
});

export const ModifyVolumeStatus = obj("v1.ModifyVolumeStatus", { targetVolumeAttributesClassName: str, status: str });

export const PersistentVolumeClaimStatus = obj("v1.PersistentVolumeClaimStatus", {
  phase: str,
  accessModes: arr(str),
  capacity: resourceList,
  conditions: arr(PersistentVolumeClaimCondition),
  allocatedResources: resourceList,
  allocatedResourceStatuses: map(str),
  currentVolumeAttributesClassName: str,
  modifyVolumeStatus: ModifyVolumeStatus,
});

// ---------------------------------------------------------------------------------------------
// ResourceQuota and LimitRange

export const ScopedResourceSelectorRequirement = obj("v1.ScopedResourceSelectorRequirement", { scopeName: str, operator: str, values: arr(str) });

export const ScopeSelector = obj("v1.ScopeSelector", { matchExpressions: arr(ScopedResourceSelectorRequirement) });

export const ResourceQuotaSpec = obj("v1.ResourceQuotaSpec", { hard: resourceList, scopes: arr(str), scopeSelector: ScopeSelector });

export const ResourceQuotaStatus = obj("v1.ResourceQuotaStatus", { hard: resourceList, used: resourceList });

export const LimitRangeItem = obj("v1.LimitRangeItem", {
  type: str,
  max: resourceList,
  min: resourceList,
  default: resourceList,
  defaultRequest: resourceList,
  maxLimitRequestRatio: resourceList,
});

export const LimitRangeSpec = obj("v1.LimitRangeSpec", { limits: arr(LimitRangeItem) });

// ---------------------------------------------------------------------------------------------
// Top-level kinds (apiVersion, kind and metadata are added by the registry)

export const coreKinds = {
  Namespace: { spec: NamespaceSpec, status: NamespaceStatus },
  Node: { spec: NodeSpec, status: NodeStatus },
  Pod: { spec: PodSpec, status: PodStatus },
  Service: { spec: ServiceSpec, status: ServiceStatus },
  Endpoints: { subsets: arr(EndpointSubset) },
  Event: {
    involvedObject: ObjectReference,
    reason: str,
    message: str,
    source: EventSource,
    firstTimestamp: time,
    lastTimestamp: time,
    count: int32,
    type: str,
    eventTime: microtime,
    series: EventSeries,
    action: str,
    related: ObjectReference,
    reportingComponent: str,
    reportingInstance: str,
  },
  ConfigMap: { immutable: bool, data: map(str), binaryData: map(bytes) },
  Secret: { immutable: bool, data: map(bytes), stringData: map(str), type: str },
  PersistentVolume: { spec: PersistentVolumeSpec, status: PersistentVolumeStatus },
  PersistentVolumeClaim: { spec: PersistentVolumeClaimSpec, status: PersistentVolumeClaimStatus },
  ServiceAccount: { secrets: arr(ObjectReference), imagePullSecrets: arr(LocalObjectReference), automountServiceAccountToken: bool },
  Binding: { target: ObjectReference },
  PodTemplate: { template: PodTemplateSpec },
  ResourceQuota: { spec: ResourceQuotaSpec, status: ResourceQuotaStatus },
  LimitRange: { spec: LimitRangeSpec },
};
