// autoscaling/v1 types: Scale (the deployments/scale and replicasets/scale subresource body).

import type { KubeObject } from "../meta.ts";

export interface ScaleSpec {
  replicas?: number;
}

export interface ScaleStatus {
  replicas: number;
  /** The label selector in string form, e.g. "app=web". */
  selector?: string;
}

export interface Scale extends KubeObject {
  spec?: ScaleSpec;
  status?: ScaleStatus;
}
