// What the CSR approver and signer share (pkg/apis/certificates helpers and pkg/controller/certificates):
// the condition helpers, and the shape rules a kubelet client or serving request must follow.

import type { CertificateSigningRequest, CertificateSigningRequestCondition } from "../../api/certificates/v1.ts";
import type { CertificateRequest } from "./x509.ts";

export const CSR_GROUP = "certificates.k8s.io";
export const CSR_RESOURCE = "certificatesigningrequests";

function hasTrue(csr: Readonly<CertificateSigningRequest>, type: string): boolean {
  return (csr.status?.conditions ?? []).some((c: CertificateSigningRequestCondition) => c.type === type && (c.status ?? "True") === "True");
}

/** certificates.GetCertApprovalCondition. */
export function approvalState(csr: Readonly<CertificateSigningRequest>): { approved: boolean; denied: boolean } {
  return { approved: hasTrue(csr, "Approved"), denied: hasTrue(csr, "Denied") };
}

/** certificates.IsCertificateRequestApproved: Approved and not Denied. */
export function isApproved(csr: Readonly<CertificateSigningRequest>): boolean {
  const s = approvalState(csr);
  return s.approved && !s.denied;
}

export function isFailed(csr: Readonly<CertificateSigningRequest>): boolean {
  return hasTrue(csr, "Failed");
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean => {
  const sa = new Set(a);
  const sb = new Set(b);
  return sa.size === sb.size && [...sa].every((x) => sb.has(x));
};

export const kubeletClientRequiredUsages = ["digital signature", "key encipherment", "client auth"];
export const kubeletClientRequiredUsagesNoRSA = ["digital signature", "client auth"];
export const kubeletServingRequiredUsages = ["digital signature", "key encipherment", "server auth"];
export const kubeletServingRequiredUsagesNoRSA = ["digital signature", "server auth"];

const sortedList = (l: readonly string[]): string => `[${[...l].sort().join(" ")}]`;
const onlyNodes = (req: CertificateRequest): boolean => req.organizations.length === 1 && req.organizations[0] === "system:nodes";

/** capihelper.ValidateKubeletClientCSR: an error message, or undefined when the request is a kubelet client certificate's. */
export function validateKubeletClientCSR(req: CertificateRequest, usages: readonly string[]): string | undefined {
  if (!onlyNodes(req)) return "subject organization is not system:nodes";
  if (req.dnsNames.length) return "DNS subjectAltNames are not allowed";
  if (req.emailAddresses.length) return "Email subjectAltNames are not allowed";
  if (req.ipAddresses.length) return "IP subjectAltNames are not allowed";
  if (req.uris.length) return "URI subjectAltNames are not allowed";
  if (!req.commonName.startsWith("system:node:")) return "subject common name does not begin with system:node:";
  if (!sameSet(kubeletClientRequiredUsages, usages) && !sameSet(kubeletClientRequiredUsagesNoRSA, usages)) return `usages did not match ${sortedList(kubeletClientRequiredUsages)}`;
  return undefined;
}

/** capihelper.ValidateKubeletServingCSR. */
export function validateKubeletServingCSR(req: CertificateRequest, usages: readonly string[]): string | undefined {
  if (!onlyNodes(req)) return "subject organization is not system:nodes";
  if (!req.dnsNames.length && !req.ipAddresses.length) return "DNS or IP subjectAltName is required";
  if (req.emailAddresses.length) return "Email subjectAltNames are not allowed";
  if (req.uris.length) return "URI subjectAltNames are not allowed";
  if (!sameSet(kubeletServingRequiredUsages, usages) && !sameSet(kubeletServingRequiredUsagesNoRSA, usages)) return `usages did not match ${sortedList(kubeletServingRequiredUsages)}`;
  if (!req.commonName.startsWith("system:node:")) return "subject common name does not begin with system:node:";
  return undefined;
}

/** The signer's validAPIServerClientUsages: client auth required, digital signature and key encipherment allowed. */
export function validateAPIServerClientUsages(usages: readonly string[]): string | undefined {
  let hasClientAuth = false;
  for (const u of usages) {
    if (u === "digital signature" || u === "key encipherment") continue;
    if (u === "client auth") hasClientAuth = true;
    else return `invalid usage for client certificate: ${u}`;
  }
  return hasClientAuth ? undefined : "missing required usage for client certificate: client auth";
}
