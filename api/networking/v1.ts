// networking.k8s.io/v1 types: Ingress and IngressClass.

import type { KubeObject } from "../meta.ts";
import type { TypedLocalObjectReference, LoadBalancerIngress } from "../core/v1.ts";

export interface ServiceBackendPort {
  /** Exactly one of name and number. */
  name?: string;
  number?: number;
}

export interface IngressServiceBackend {
  name: string;
  port?: ServiceBackendPort;
}

export interface IngressBackend {
  service?: IngressServiceBackend;
  resource?: TypedLocalObjectReference;
}

export type PathType = "Exact" | "Prefix" | "ImplementationSpecific";

export interface HTTPIngressPath {
  path?: string;
  /** Required (not defaulted in networking/v1). */
  pathType: PathType;
  backend: IngressBackend;
}

export interface HTTPIngressRuleValue {
  paths: HTTPIngressPath[];
}

export interface IngressRule {
  /** A DNS name, optionally with a leading "*." wildcard; empty matches every host. */
  host?: string;
  http?: HTTPIngressRuleValue;
}

export interface IngressTLS {
  hosts?: string[];
  secretName?: string;
}

export interface IngressSpec {
  ingressClassName?: string;
  defaultBackend?: IngressBackend;
  tls?: IngressTLS[];
  rules?: IngressRule[];
}

export interface IngressLoadBalancerStatus {
  ingress?: LoadBalancerIngress[];
}

export interface IngressStatus {
  loadBalancer?: IngressLoadBalancerStatus;
}

export interface Ingress extends KubeObject {
  spec?: IngressSpec;
  status?: IngressStatus;
}

export interface IngressClassParametersReference {
  apiGroup?: string;
  kind: string;
  name: string;
  scope?: "Cluster" | "Namespace";
  namespace?: string;
}

export interface IngressClassSpec {
  /** Domain-prefixed path naming the controller, e.g. "kubelab.io/ingress-controller". */
  controller?: string;
  parameters?: IngressClassParametersReference;
}

export interface IngressClass extends KubeObject {
  spec?: IngressClassSpec;
}

/** Annotation marking the cluster's default IngressClass. */
export const IngressClassDefaultAnnotation = "ingressclass.kubernetes.io/is-default-class";
