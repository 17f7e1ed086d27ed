// discovery.k8s.io/v1 types: EndpointSlice.

import type { KubeObject } from "../meta.ts";
import type { ObjectReference, Protocol } from "../core/v1.ts";

export type AddressType = "IPv4" | "IPv6" | "FQDN";

export interface EndpointConditions {
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
}

export interface ForZone {
  name: string;
}

export interface EndpointHints {
  forZones?: ForZone[];
}

export interface Endpoint {
  addresses: string[];
  conditions?: EndpointConditions;
  hostname?: string;
  targetRef?: ObjectReference;
  nodeName?: string;
  zone?: string;
  hints?: EndpointHints;
}

/** A port of an EndpointSlice (discovery/v1 EndpointPort; renamed to avoid clashing with core/v1). */
export interface EndpointSlicePort {
  name?: string;
  /** Default "TCP". */
  protocol?: Protocol;
  port?: number;
  appProtocol?: string;
}

export interface EndpointSlice extends KubeObject {
  /** Required and immutable. */
  addressType: AddressType;
  endpoints: Endpoint[];
  ports?: EndpointSlicePort[];
}

/** Label linking a slice to its Service, and the label naming the controller that manages it. */
export const LabelServiceName = "kubernetes.io/service-name";
export const LabelManagedBy = "endpointslice.kubernetes.io/managed-by";
