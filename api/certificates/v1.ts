// certificates.k8s.io/v1 types (k8s.io/api/certificates/v1), as their JSON is: a CertificateSigningRequest
// asks a signer (spec.signerName) for a certificate for a PKCS#10 request; it is approved or denied through
// the approval subresource and the signer writes status.certificate through the status subresource.

import type { KubeObject } from "../meta.ts";
import type { ExtraValue } from "../authentication/v1.ts";

/** The signers Kubernetes defines (certificates/v1 constants). */
export const KubeAPIServerClientSignerName = "kubernetes.io/kube-apiserver-client";
export const KubeAPIServerClientKubeletSignerName = "kubernetes.io/kube-apiserver-client-kubelet";
export const KubeletServingSignerName = "kubernetes.io/kubelet-serving";
export const LegacyUnknownSignerName = "kubernetes.io/legacy-unknown";

/** certificates/v1 KeyUsage: the x509 key usages and extended key usages a request may ask for. */
export type KeyUsage =
  | "signing" | "digital signature" | "content commitment" | "key encipherment" | "key agreement"
  | "data encipherment" | "cert sign" | "crl sign" | "encipher only" | "decipher only" | "any"
  | "server auth" | "client auth" | "code signing" | "email protection" | "s/mime" | "ipsec end system"
  | "ipsec tunnel" | "ipsec user" | "timestamping" | "ocsp signing" | "microsoft sgc" | "netscape sgc";

/** Every KeyUsage, in upstream's order (validation's "supported values"). */
export const KEY_USAGES: readonly KeyUsage[] = [
  "signing", "digital signature", "content commitment", "key encipherment", "key agreement",
  "data encipherment", "cert sign", "crl sign", "encipher only", "decipher only", "any",
  "server auth", "client auth", "code signing", "email protection", "s/mime", "ipsec end system",
  "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing", "microsoft sgc", "netscape sgc",
];

export interface CertificateSigningRequestSpec {
  /** base64 of a PEM "CERTIFICATE REQUEST" block (PKCS#10). */
  request: string;
  /** A qualified name: "kubernetes.io/kube-apiserver-client", "example.com/my-signer". */
  signerName: string;
  /** Requested validity (at least 600); the signer may ignore it. */
  expirationSeconds?: number;
  usages?: KeyUsage[];
  /** Who created the request: set by the apiserver from the requesting user, never by the client. */
  username?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, ExtraValue>;
}

/** Approved and Denied are set through the approval subresource (mutually exclusive); Failed by the signer. */
export type RequestConditionType = "Approved" | "Denied" | "Failed" | string;

export interface CertificateSigningRequestCondition {
  type: RequestConditionType;
  /** "True" | "False" | "Unknown"; defaulted to "True". */
  status: string;
  reason?: string;
  message?: string;
  /** RFC3339 */
  lastUpdateTime?: string;
  lastTransitionTime?: string;
}

export interface CertificateSigningRequestStatus {
  conditions?: CertificateSigningRequestCondition[];
  /** base64 of the issued PEM certificate chain; once set it never changes. */
  certificate?: string;
}

export interface CertificateSigningRequest extends KubeObject {
  spec: CertificateSigningRequestSpec;
  status?: CertificateSigningRequestStatus;
}
