// apps/v1 types: Deployment and ReplicaSet.

import type { KubeObject, LabelSelector } from "../meta.ts";
import type { IntOrString } from "../intstr.ts";
import type { PodTemplateSpec } from "../core/v1.ts";

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
