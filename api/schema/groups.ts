// Schemas of the named groups: apps, batch, networking.k8s.io, coordination.k8s.io,
// discovery.k8s.io, storage.k8s.io, policy, autoscaling.

import { arr, bool, free, int32, int64, intOrString, map, microtime, obj, str, time } from "./schema.ts";
import { Condition, DeleteOptions, LabelSelector, ObjectMeta } from "./meta.ts";
import { ObjectReference, PersistentVolumeClaimSpec, PersistentVolumeClaimStatus, PersistentVolumeSpec, PodTemplateSpec, TopologySelectorTerm, TypedLocalObjectReference } from "./core.ts";

// ---------------------------------------------------------------------------------------------
// apps/v1

export const RollingUpdateDeployment = obj("v1.RollingUpdateDeployment", { maxUnavailable: intOrString, maxSurge: intOrString });

export const DeploymentStrategy = obj("v1.DeploymentStrategy", { type: str, rollingUpdate: RollingUpdateDeployment });

export const DeploymentSpec = obj("v1.DeploymentSpec", {
  replicas: int32,
  selector: LabelSelector,
  template: PodTemplateSpec,
  strategy: DeploymentStrategy,
  minReadySeconds: int32,
  revisionHistoryLimit: int32,
  paused: bool,
  progressDeadlineSeconds: int32,
});

export const DeploymentCondition = obj("v1.DeploymentCondition", {
  type: str,
  status: str,
  lastUpdateTime: time,
  lastTransitionTime: time,
  reason: str,
  message: str,
});

export const DeploymentStatus = obj("v1.DeploymentStatus", {
  observedGeneration: int64,
  replicas: int32,
  updatedReplicas: int32,
  readyReplicas: int32,
  availableReplicas: int32,
  unavailableReplicas: int32,
  terminatingReplicas: int32,
  conditions: arr(DeploymentCondition),
  collisionCount: int32,
});

export const ReplicaSetSpec = obj("v1.ReplicaSetSpec", {
  replicas: int32,
  minReadySeconds: int32,
  selector: LabelSelector,
  template: PodTemplateSpec,
});

export const ReplicaSetCondition = obj("v1.ReplicaSetCondition", {
  type: str,
  status: str,
  lastTransitionTime: time,
  reason: str,
  message: str,
});

export const ReplicaSetStatus = obj("v1.ReplicaSetStatus", {
  replicas: int32,
  fullyLabeledReplicas: int32,
  readyReplicas: int32,
  availableReplicas: int32,
  terminatingReplicas: int32,
  observedGeneration: int64,
  conditions: arr(ReplicaSetCondition),
});

export const RollingUpdateDaemonSet = obj("v1.RollingUpdateDaemonSet", { maxUnavailable: intOrString, maxSurge: intOrString });

export const DaemonSetUpdateStrategy = obj("v1.DaemonSetUpdateStrategy", { type: str, rollingUpdate: RollingUpdateDaemonSet });

export const DaemonSetSpec = obj("v1.DaemonSetSpec", {
  selector: LabelSelector,
  template: PodTemplateSpec,
  updateStrategy: DaemonSetUpdateStrategy,
  minReadySeconds: int32,
  revisionHistoryLimit: int32,
});

export const DaemonSetCondition = obj("v1.DaemonSetCondition", {
  type: str,
  status: str,
  lastTransitionTime: time,
  reason: str,
  message: str,
});

export const DaemonSetStatus = obj("v1.DaemonSetStatus", {
  currentNumberScheduled: int32,
  numberMisscheduled: int32,
  desiredNumberScheduled: int32,
  numberReady: int32,
  observedGeneration: int64,
  updatedNumberScheduled: int32,
  numberAvailable: int32,
  numberUnavailable: int32,
  collisionCount: int32,
  conditions: arr(DaemonSetCondition),
});

export const RollingUpdateStatefulSetStrategy = obj("v1.RollingUpdateStatefulSetStrategy", { partition: int32, maxUnavailable: intOrString });

export const StatefulSetUpdateStrategy = obj("v1.StatefulSetUpdateStrategy", { type: str, rollingUpdate: RollingUpdateStatefulSetStrategy });

export const StatefulSetPersistentVolumeClaimRetentionPolicy = obj("v1.StatefulSetPersistentVolumeClaimRetentionPolicy", { whenDeleted: str, whenScaled: str });

export const StatefulSetOrdinals = obj("v1.StatefulSetOrdinals", { start: int32 });

/** A volumeClaimTemplates item: a whole PersistentVolumeClaim object. */
export const PersistentVolumeClaimObject = obj("v1.PersistentVolumeClaim", {
  apiVersion: str,
  kind: str,
  metadata: ObjectMeta,
  spec: PersistentVolumeClaimSpec,
  status: PersistentVolumeClaimStatus,
});

export const StatefulSetSpec = obj("v1.StatefulSetSpec", {
  replicas: int32,
  selector: LabelSelector,
  template: PodTemplateSpec,
  volumeClaimTemplates: arr(PersistentVolumeClaimObject),
  serviceName: str,
  podManagementPolicy: str,
  updateStrategy: StatefulSetUpdateStrategy,
  revisionHistoryLimit: int32,
  minReadySeconds: int32,
  persistentVolumeClaimRetentionPolicy: StatefulSetPersistentVolumeClaimRetentionPolicy,
  ordinals: StatefulSetOrdinals,
});

export const StatefulSetCondition = obj("v1.StatefulSetCondition", { type: str, status: str, lastTransitionTime: time, reason: str, message: str });

export const StatefulSetStatus = obj("v1.StatefulSetStatus", {
  observedGeneration: int64,
  replicas: int32,
  readyReplicas: int32,
  currentReplicas: int32,
  updatedReplicas: int32,
  currentRevision: str,
  updateRevision: str,
  collisionCount: int32,
  conditions: arr(StatefulSetCondition),
  availableReplicas: int32,
});

// ---------------------------------------------------------------------------------------------
// batch/v1

export const PodFailurePolicyOnExitCodesRequirement = obj("v1.PodFailurePolicyOnExitCodesRequirement", {
  containerName: str,
  operator: str,
  values: arr(int32),
});

export const PodFailurePolicyOnPodConditionsPattern = obj("v1.PodFailurePolicyOnPodConditionsPattern", { type: str, status: str });

export const PodFailurePolicyRule = obj("v1.PodFailurePolicyRule", {
  action: str,
  onExitCodes: PodFailurePolicyOnExitCodesRequirement,
  onPodConditions: arr(PodFailurePolicyOnPodConditionsPattern),
});

export const PodFailurePolicy = obj("v1.PodFailurePolicy", { rules: arr(PodFailurePolicyRule) });

export const SuccessPolicyRule = obj("v1.SuccessPolicyRule", { succeededIndexes: str, succeededCount: int32 });

export const SuccessPolicy = obj("v1.SuccessPolicy", { rules: arr(SuccessPolicyRule) });

export const JobSpec = obj("v1.JobSpec", {
  parallelism: int32,
  completions: int32,
  activeDeadlineSeconds: int64,
  podFailurePolicy: PodFailurePolicy,
  successPolicy: SuccessPolicy,
  backoffLimit: int32,
  backoffLimitPerIndex: int32,
  maxFailedIndexes: int32,
  selector: LabelSelector,
  manualSelector: bool,
  template: PodTemplateSpec,
  ttlSecondsAfterFinished: int32,
  completionMode: str,
  suspend: bool,
  podReplacementPolicy: str,
  managedBy: str,
});

export const JobCondition = obj("v1.JobCondition", {
  type: str,
  status: str,
  lastProbeTime: time,
  lastTransitionTime: time,
  reason: str,
  message: str,
});

export const UncountedTerminatedPods = obj("v1.UncountedTerminatedPods", { succeeded: arr(str), failed: arr(str) });

export const JobStatus = obj("v1.JobStatus", {
  conditions: arr(JobCondition),
  startTime: time,
  completionTime: time,
  active: int32,
  succeeded: int32,
  failed: int32,
  terminating: int32,
  completedIndexes: str,
  failedIndexes: str,
  uncountedTerminatedPods: UncountedTerminatedPods,
  ready: int32,
});

export const JobTemplateSpec = obj("v1.JobTemplateSpec", { metadata: ObjectMeta, spec: JobSpec });

export const CronJobSpec = obj("v1.CronJobSpec", {
  schedule: str,
  timeZone: str,
  startingDeadlineSeconds: int64,
  concurrencyPolicy: str,
  suspend: bool,
  jobTemplate: JobTemplateSpec,
  successfulJobsHistoryLimit: int32,
  failedJobsHistoryLimit: int32,
});

export const CronJobStatus = obj("v1.CronJobStatus", { active: arr(ObjectReference), lastScheduleTime: time, lastSuccessfulTime: time });

// ---------------------------------------------------------------------------------------------
// policy/v1

export const PodDisruptionBudgetSpec = obj("v1.PodDisruptionBudgetSpec", {
  minAvailable: intOrString,
  selector: LabelSelector,
  maxUnavailable: intOrString,
  unhealthyPodEvictionPolicy: str,
});

export const PodDisruptionBudgetStatus = obj("v1.PodDisruptionBudgetStatus", {
  observedGeneration: int64,
  disruptedPods: map(time),
  disruptionsAllowed: int32,
  currentHealthy: int32,
  desiredHealthy: int32,
  expectedPods: int32,
  conditions: arr(Condition),
});

// ---------------------------------------------------------------------------------------------
// networking.k8s.io/v1

export const ServiceBackendPort = obj("v1.ServiceBackendPort", { name: str, number: int32 });

export const IngressServiceBackend = obj("v1.IngressServiceBackend", { name: str, port: ServiceBackendPort });

export const IngressBackend = obj("v1.IngressBackend", { service: IngressServiceBackend, resource: TypedLocalObjectReference });

export const HTTPIngressPath = obj("v1.HTTPIngressPath", { path: str, pathType: str, backend: IngressBackend });

export const HTTPIngressRuleValue = obj("v1.HTTPIngressRuleValue", { paths: arr(HTTPIngressPath) });

/** IngressRule embeds IngressRuleValue (whose only member is http) inline. */
export const IngressRule = obj("v1.IngressRule", { host: str, http: HTTPIngressRuleValue });

export const IngressTLS = obj("v1.IngressTLS", { hosts: arr(str), secretName: str });

export const IngressSpec = obj("v1.IngressSpec", {
  ingressClassName: str,
  defaultBackend: IngressBackend,
  tls: arr(IngressTLS),
  rules: arr(IngressRule),
});

export const IngressPortStatus = obj("v1.IngressPortStatus", { port: int32, protocol: str, error: str });

export const IngressLoadBalancerIngress = obj("v1.IngressLoadBalancerIngress", { ip: str, hostname: str, ports: arr(IngressPortStatus) });

export const IngressLoadBalancerStatus = obj("v1.IngressLoadBalancerStatus", { ingress: arr(IngressLoadBalancerIngress) });

export const IngressStatus = obj("v1.IngressStatus", { loadBalancer: IngressLoadBalancerStatus });

export const IngressClassParametersReference = obj("v1.IngressClassParametersReference", {
  apiGroup: str,
  kind: str,
  name: str,
  scope: str,
  namespace: str,
});

export const IngressClassSpec = obj("v1.IngressClassSpec", { controller: str, parameters: IngressClassParametersReference });

// ---------------------------------------------------------------------------------------------
// coordination.k8s.io/v1

export const LeaseSpec = obj("v1.LeaseSpec", {
  holderIdentity: str,
  leaseDurationSeconds: int32,
  acquireTime: microtime,
  renewTime: microtime,
  leaseTransitions: int32,
  strategy: str,
  preferredHolder: str,
});

// ---------------------------------------------------------------------------------------------
// discovery.k8s.io/v1

export const EndpointConditions = obj("v1.EndpointConditions", { ready: bool, serving: bool, terminating: bool });

export const ForZone = obj("v1.ForZone", { name: str });

export const ForNode = obj("v1.ForNode", { name: str });

export const EndpointHints = obj("v1.EndpointHints", { forZones: arr(ForZone), forNodes: arr(ForNode) });

export const Endpoint = obj("v1.Endpoint", {
  addresses: arr(str),
  conditions: EndpointConditions,
  hostname: str,
  targetRef: ObjectReference,
  deprecatedTopology: map(str),
  nodeName: str,
  zone: str,
  hints: EndpointHints,
});

export const EndpointSlicePort = obj("v1.EndpointPort", { name: str, protocol: str, port: int32, appProtocol: str });

// ---------------------------------------------------------------------------------------------
// autoscaling/v1

export const ScaleSpec = obj("v1.ScaleSpec", { replicas: int32 });

export const ScaleStatus = obj("v1.ScaleStatus", { replicas: int32, selector: str });

// ---------------------------------------------------------------------------------------------
// Top-level kinds per group version (apiVersion, kind and metadata are added by the registry)

export const appsKinds = {
  Deployment: { spec: DeploymentSpec, status: DeploymentStatus },
  ReplicaSet: { spec: ReplicaSetSpec, status: ReplicaSetStatus },
  DaemonSet: { spec: DaemonSetSpec, status: DaemonSetStatus },
  StatefulSet: { spec: StatefulSetSpec, status: StatefulSetStatus },
  ControllerRevision: { data: free, revision: int64 },
};

export const batchKinds = {
  Job: { spec: JobSpec, status: JobStatus },
  CronJob: { spec: CronJobSpec, status: CronJobStatus },
};

export const networkingKinds = {
  Ingress: { spec: IngressSpec, status: IngressStatus },
  IngressClass: { spec: IngressClassSpec },
};

export const coordinationKinds = {
  Lease: { spec: LeaseSpec },
};

export const discoveryKinds = {
  EndpointSlice: { addressType: str, endpoints: arr(Endpoint), ports: arr(EndpointSlicePort) },
};

export const storageKinds = {
  StorageClass: {
    provisioner: str,
    parameters: map(str),
    reclaimPolicy: str,
    mountOptions: arr(str),
    allowVolumeExpansion: bool,
    volumeBindingMode: str,
    allowedTopologies: arr(TopologySelectorTerm),
  },
  VolumeAttachment: {
    spec: obj("v1.VolumeAttachmentSpec", {
      attacher: str,
      source: obj("v1.VolumeAttachmentSource", { persistentVolumeName: str, inlineVolumeSpec: PersistentVolumeSpec }),
      nodeName: str,
    }),
    status: obj("v1.VolumeAttachmentStatus", {
      attached: bool,
      attachmentMetadata: map(str),
      attachError: obj("v1.VolumeError", { time, message: str, errorCode: int32 }),
      detachError: obj("v1.VolumeError", { time, message: str, errorCode: int32 }),
    }),
  },
  CSIDriver: {
    spec: obj("v1.CSIDriverSpec", {
      attachRequired: bool,
      podInfoOnMount: bool,
      volumeLifecycleModes: arr(str),
      storageCapacity: bool,
      fsGroupPolicy: str,
      tokenRequests: arr(obj("v1.TokenRequest", { audience: str, expirationSeconds: int64 })),
      requiresRepublish: bool,
      seLinuxMount: bool,
      nodeAllocatableUpdatePeriodSeconds: int64,
      serviceAccountTokenInSecrets: bool,
      preventPodSchedulingIfMissing: bool,
    }),
  },
};

export const schedulingKinds = {
  PriorityClass: { value: int32, globalDefault: bool, description: str, preemptionPolicy: str },
};

export const policyKinds = {
  Eviction: { deleteOptions: DeleteOptions },
  PodDisruptionBudget: { spec: PodDisruptionBudgetSpec, status: PodDisruptionBudgetStatus },
};

export const autoscalingKinds = {
  Scale: { spec: ScaleSpec, status: ScaleStatus },
};
