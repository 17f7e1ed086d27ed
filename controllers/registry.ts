// The controllers a controller-manager can run, by name (`--controllers`). Adding one is one line.

import type { ControllerSetup } from "./env.ts";
import { setupDeploymentController } from "./deployment/setup.ts";
import { setupReplicaSetController } from "./replicaset/setup.ts";
import { setupStatefulSetController } from "./statefulset/setup.ts";
import { setupDaemonSetController } from "./daemonset/setup.ts";
import { setupJobController, setupTTLAfterFinishedController } from "./job/setup.ts";
import { setupCronJobController } from "./cronjob/setup.ts";
import { setupDisruptionController } from "./disruption/setup.ts";
import { setupNamespaceController } from "./namespace/setup.ts";
import { setupGarbageCollector } from "./gc/setup.ts";
import { setupEndpointsController } from "./endpoints/setup.ts";
import { setupEndpointSliceController } from "./endpointslice/setup.ts";
import { setupNodeLifecycleController, setupPodGCController, setupTaintEvictionController } from "./node/setup.ts";
import { setupResourceQuotaController } from "./resourcequota/setup.ts";
import { setupPersistentVolumeController } from "./volume/setup.ts";
import { setupPVCProtectionController } from "./pvcprotection/setup.ts";
import { setupPVProtectionController } from "./pvprotection/setup.ts";
import { setupAttachDetachController } from "./attachdetach/setup.ts";
import { setupClusterRoleAggregationController } from "./clusterroleaggregation/index.ts";
import { setupRootCACertPublisher, setupServiceAccountsController, setupTokensController } from "./serviceaccount/index.ts";
import { setupCSRApprovingController } from "./certificates/approver.ts";
import { setupCSRSigningController } from "./certificates/signer.ts";
import { setupCSRCleanerController } from "./certificates/cleaner.ts";

export const CONTROLLERS: Record<string, ControllerSetup> = {
  replicaset: setupReplicaSetController,
  deployment: setupDeploymentController,
  statefulset: setupStatefulSetController,
  daemonset: setupDaemonSetController,
  job: setupJobController,
  "ttl-after-finished": setupTTLAfterFinishedController,
  cronjob: setupCronJobController,
  disruption: setupDisruptionController,
  namespace: setupNamespaceController,
  garbagecollector: setupGarbageCollector,
  endpoints: setupEndpointsController,
  endpointslice: setupEndpointSliceController,
  nodelifecycle: setupNodeLifecycleController,
  "taint-eviction-controller": setupTaintEvictionController,
  podgc: setupPodGCController,
  resourcequota: setupResourceQuotaController,
  "persistentvolume-binder": setupPersistentVolumeController,
  "pvc-protection": setupPVCProtectionController,
  "pv-protection": setupPVProtectionController,
  attachdetach: setupAttachDetachController,
  "clusterrole-aggregation": setupClusterRoleAggregationController,
  serviceaccount: setupServiceAccountsController,
  "serviceaccount-token": setupTokensController,
  "root-ca-cert-publisher": setupRootCACertPublisher,
  csrapproving: setupCSRApprovingController,
  csrsigning: setupCSRSigningController,
  csrcleaner: setupCSRCleanerController,
};
