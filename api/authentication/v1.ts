// authentication.k8s.io/v1 types (k8s.io/api/authentication/v1), as their JSON is: TokenRequest (the
// serviceaccounts/token body), TokenReview (is this bearer token valid, and whose is it) and SelfSubjectReview
// (who am I). The reviews are create-only: the response carries the answer in status, nothing is stored.

import type { KubeObject } from "../meta.ts";

/** Extra attributes of a user (scopes, the credential id...): key -> values. */
export type ExtraValue = string[];

/** The user a credential authenticated as. */
export interface UserInfo {
  username?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, ExtraValue>;
}

/** The object a token is bound to: it is only valid while that object (with that uid) exists. */
export interface BoundObjectReference {
  kind?: "Pod" | "Secret" | "Node" | string;
  apiVersion?: string;
  name?: string;
  uid?: string;
}

export interface TokenRequestSpec {
  /** Who the token is for (its aud claim); empty means the apiserver's own audiences. */
  audiences: string[];
  /** Requested lifetime; the apiserver may shorten it (defaults to 3600, at least 600). */
  expirationSeconds?: number;
  boundObjectRef?: BoundObjectReference;
}

export interface TokenRequestStatus {
  token: string;
  /** RFC3339 */
  expirationTimestamp: string;
}

/** POSTed to serviceaccounts/NAME/token; the response's status holds a signed ServiceAccount token. */
export interface TokenRequest extends KubeObject {
  spec: TokenRequestSpec;
  status?: TokenRequestStatus;
}

export interface TokenReviewSpec {
  token?: string;
  audiences?: string[];
}

export interface TokenReviewStatus {
  authenticated?: boolean;
  user?: UserInfo;
  /** The audiences of spec.audiences the token is valid for. */
  audiences?: string[];
  error?: string;
}

export interface TokenReview extends KubeObject {
  spec: TokenReviewSpec;
  status?: TokenReviewStatus;
}

export interface SelfSubjectReviewStatus {
  userInfo?: UserInfo;
}

/** `kubectl auth whoami`: the status carries the requesting user. */
export interface SelfSubjectReview extends KubeObject {
  status?: SelfSubjectReviewStatus;
}
