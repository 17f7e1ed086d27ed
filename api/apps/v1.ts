// apps/v1 types: Deployment, ReplicaSet, DaemonSet, StatefulSet and ControllerRevision.

import type { KubeObject, LabelSelector } from "../meta.ts";
import type { IntOrString } from "../intstr.ts";
import type { PersistentVolumeClaim, PodTemplateSpec } from "../core/v1.ts";

export interface RollingUpdateDeployment {
  /** Default "25%"; rounded down when a percentage. */
  maxUnavailable?: IntOrString;
  /** Default "25%"; rounded up when a percentage. */
  maxSurge?: IntOrString;
}

export type DeploymentStrategyType = "Recreate" | "RollingUpdate";

export interface DeploymentStrategy {
  /** Default "RollingUpdate". */
  type?: DeploymentStrategyType;
  /** Only with type RollingUpdate. */
  rollingUpdate?: RollingUpdateDeployment;
}

export interface DeploymentSpec {
  /** Default 1. */
  replicas?: number;
  /** Required, immutable, must match the template's labels. */
  selector: LabelSelector;
  template: PodTemplateSpec;
  strategy?: DeploymentStrategy;
  minReadySeconds?: number;
  /** Default 10. */
  revisionHistoryLimit?: number;
  paused?: boolean;
  /** Default 600. */
  progressDeadlineSeconds?: number;
}

export type DeploymentConditionType = "Available" | "Progressing" | "ReplicaFailure";

export interface DeploymentCondition {
  type: DeploymentConditionType | string;
  status: "True" | "False" | "Unknown";
  lastUpdateTime?: string;
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

export interface DeploymentStatus {
  observedGeneration?: number;
  replicas?: number;
  updatedReplicas?: number;
  readyReplicas?: number;
  availableReplicas?: number;
  unavailableReplicas?: number;
  terminatingReplicas?: number;
  conditions?: DeploymentCondition[];
  /** Bumped by the controller to avoid pod-template-hash collisions. */
  collisionCount?: number;
}

export interface Deployment extends KubeObject {
  spec?: DeploymentSpec;
  status?: DeploymentStatus;
}

export interface ReplicaSetSpec {
  /** Default 1. */
  replicas?: number;
  minReadySeconds?: number;
  selector: LabelSelector;
  template?: PodTemplateSpec;
}

export type ReplicaSetConditionType = "ReplicaFailure";

export interface ReplicaSetCondition {
  type: ReplicaSetConditionType | string;
  status: "True" | "False" | "Unknown";
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

export interface ReplicaSetStatus {
  replicas: number;
  fullyLabeledReplicas?: number;
  readyReplicas?: number;
  availableReplicas?: number;
  terminatingReplicas?: number;
  observedGeneration?: number;
  conditions?: ReplicaSetCondition[];
}

export interface ReplicaSet extends KubeObject {
  spec?: ReplicaSetSpec;
  status?: ReplicaSetStatus;
}

/** Annotations the deployment controller writes on its ReplicaSets. */
export const DeploymentRevisionAnnotation = "deployment.kubernetes.io/revision";
export const DesiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas";
export const MaxReplicasAnnotation = "deployment.kubernetes.io/max-replicas";
/** The label the deployment controller adds to tell its ReplicaSets' pods apart. */
export const DefaultDeploymentUniqueLabelKey = "pod-template-hash";

// ---------------------------------------------------------------------------------------------
// DaemonSet

export interface RollingUpdateDaemonSet {
  /** Default 1; a percentage of desiredNumberScheduled, rounded up. May be 0 only when maxSurge is not. */
  maxUnavailable?: IntOrString;
  /** Default 0; a percentage of desiredNumberScheduled, rounded up. */
  maxSurge?: IntOrString;
}

export type DaemonSetUpdateStrategyType = "RollingUpdate" | "OnDelete";

export interface DaemonSetUpdateStrategy {
  /** Default "RollingUpdate". */
  type?: DaemonSetUpdateStrategyType;
  /** Only with type RollingUpdate. */
  rollingUpdate?: RollingUpdateDaemonSet;
}

export interface DaemonSetSpec {
  /** Required, immutable, must match the template's labels. */
  selector: LabelSelector;
  /** restartPolicy must be Always. */
  template: PodTemplateSpec;
  updateStrategy?: DaemonSetUpdateStrategy;
  minReadySeconds?: number;
  /** Default 10: old ControllerRevisions kept for rollback. */
  revisionHistoryLimit?: number;
}

export interface DaemonSetCondition {
  type: string;
  status: "True" | "False" | "Unknown";
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

export interface DaemonSetStatus {
  /** Nodes running at least one daemon pod that should run one. */
  currentNumberScheduled: number;
  /** Nodes running a daemon pod that should not run one. */
  numberMisscheduled: number;
  /** Nodes that should run the daemon pod (including those that do). */
  desiredNumberScheduled: number;
  /** Nodes whose (oldest) daemon pod is Ready. */
  numberReady: number;
  observedGeneration?: number;
  /** Nodes running an up-to-date daemon pod. */
  updatedNumberScheduled?: number;
  /** Nodes whose daemon pod is Ready for at least minReadySeconds. */
  numberAvailable?: number;
  /** desiredNumberScheduled - numberAvailable. */
  numberUnavailable?: number;
  /** Bumped by the controller when ControllerRevision names collide. */
  collisionCount?: number;
  conditions?: DaemonSetCondition[];
}

export interface DaemonSet extends KubeObject {
  spec?: DaemonSetSpec;
  status?: DaemonSetStatus;
}

/** The label the DaemonSet controller puts on its pods and revisions: the ControllerRevision's hash. */
export const DefaultDaemonSetUniqueLabelKey = "controller-revision-hash";
/** The label carrying the DaemonSet's template generation on its pods. */
export const DaemonSetTemplateGenerationKey = "pod-template-generation";
/** The apiserver's record of spec.template changes on a DaemonSet (v1's form of spec.templateGeneration). */
export const DaemonSetTemplateGenerationAnnotation = "deprecated.daemonset.template.generation";

// ---------------------------------------------------------------------------------------------
// StatefulSet

export type PodManagementPolicyType = "OrderedReady" | "Parallel";
export type StatefulSetUpdateStrategyType = "RollingUpdate" | "OnDelete";
export type PersistentVolumeClaimRetentionPolicyType = "Retain" | "Delete";

export interface RollingUpdateStatefulSetStrategy {
  /** Pods with an ordinal below the partition keep the current revision. Default 0. */
  partition?: number;
  /** At most this many pods (count or percentage of replicas, rounded up, at least 1) down during an update. Default 1. */
  maxUnavailable?: IntOrString;
}

export interface StatefulSetUpdateStrategy {
  /** Default "RollingUpdate". */
  type?: StatefulSetUpdateStrategyType;
  /** Only with type RollingUpdate. */
  rollingUpdate?: RollingUpdateStatefulSetStrategy;
}

export interface StatefulSetPersistentVolumeClaimRetentionPolicy {
  /** What happens to the PVCs when the StatefulSet is deleted. Default "Retain". */
  whenDeleted?: PersistentVolumeClaimRetentionPolicyType;
  /** What happens to the PVCs of the pods removed by a scale-down. Default "Retain". */
  whenScaled?: PersistentVolumeClaimRetentionPolicyType;
}

export interface StatefulSetOrdinals {
  /** The ordinal of the first replica. Default 0. */
  start?: number;
}

export interface StatefulSetSpec {
  /** Default 1. */
  replicas?: number;
  /** Required, immutable, must match the template's labels. */
  selector: LabelSelector;
  template: PodTemplateSpec;
  /** One PVC per template per ordinal, named `<template>-<set>-<ordinal>`, mounted as a volume named after the template. */
  volumeClaimTemplates?: PersistentVolumeClaim[];
  /** The governing (headless) service: the pods' spec.subdomain. */
  serviceName?: string;
  /** Default "OrderedReady". */
  podManagementPolicy?: PodManagementPolicyType;
  updateStrategy?: StatefulSetUpdateStrategy;
  /** Default 10. */
  revisionHistoryLimit?: number;
  minReadySeconds?: number;
  persistentVolumeClaimRetentionPolicy?: StatefulSetPersistentVolumeClaimRetentionPolicy;
  ordinals?: StatefulSetOrdinals;
}

export interface StatefulSetCondition {
  type: string;
  status: "True" | "False" | "Unknown";
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

export interface StatefulSetStatus {
  observedGeneration?: number;
  /** Pods created by the controller (any revision). */
  replicas: number;
  readyReplicas?: number;
  /** Pods at currentRevision. */
  currentReplicas?: number;
  /** Pods at updateRevision. */
  updatedReplicas?: number;
  /** Pods Ready for at least minReadySeconds. */
  availableReplicas?: number;
  /** The ControllerRevision the pods below the update are at. */
  currentRevision?: string;
  /** The ControllerRevision of the current spec.template. */
  updateRevision?: string;
  /** Bumped by the controller when ControllerRevision names collide. */
  collisionCount?: number;
  conditions?: StatefulSetCondition[];
}

export interface StatefulSet extends KubeObject {
  spec?: StatefulSetSpec;
  status?: StatefulSetStatus;
}

/** The label naming a StatefulSet pod (so a Service can select exactly one replica). */
export const StatefulSetPodNameLabel = "statefulset.kubernetes.io/pod-name";
/** The label carrying a StatefulSet pod's ordinal. */
export const PodIndexLabel = "apps.kubernetes.io/pod-index";
/** The label the StatefulSet and DaemonSet controllers put on pods: the name of the pod's ControllerRevision. */
export const ControllerRevisionHashLabelKey = "controller-revision-hash";

// ---------------------------------------------------------------------------------------------
// ControllerRevision

/**
 * An immutable snapshot of a controller's state (for StatefulSets and DaemonSets, a strategic merge
 * patch restoring the pod template). `data` never changes after creation; `revision` may be raised
 * by the owning controller when an old snapshot becomes current again (a rollback).
 */
export interface ControllerRevision extends KubeObject {
  /** The serialized state; any JSON value (a RawExtension). Required. */
  data?: unknown;
  /** Order of this revision among its owner's revisions; non-negative. */
  revision: number;
}
