// The requester of a CertificateSigningRequest, as upstream's csrStrategy.PrepareForCreate records it: whatever
// the client put in spec.username/uid/groups/extra is replaced by the user the request authenticated as, so an
// approver (and the signer's policy) can trust who asked. Upstream does it in the strategy, which reads the user
// from the request context; kubelab's strategies get no user, so this mutating plugin does it with a.userInfo.

import type { CertificateSigningRequestSpec } from "../../api/index.ts";
import type { AdmissionAttributes, MutatingPlugin } from "./index.ts";

export const CSR_REQUESTER_PLUGIN = "CertificateSigningRequestRequester";

export class CertificateSigningRequestRequester implements MutatingPlugin {
  readonly name = CSR_REQUESTER_PLUGIN;

  admit(a: AdmissionAttributes): void {
    if (a.operation !== "CREATE" || a.info.group !== "certificates.k8s.io" || a.info.resource !== "certificatesigningrequests") return;
    const obj = a.object as { spec?: Partial<CertificateSigningRequestSpec> };
    if (!obj.spec || typeof obj.spec !== "object") obj.spec = {};
    const spec = obj.spec;
    delete spec.username;
    delete spec.uid;
    delete spec.groups;
    delete spec.extra;
    const user = a.userInfo;
    if (!user) return; // the apiserver's own writes carry no user (none create CSRs)
    if (user.name) spec.username = user.name;
    if (user.uid) spec.uid = user.uid;
    if (user.groups.length > 0) spec.groups = [...user.groups];
    if (user.extra && Object.keys(user.extra).length > 0) spec.extra = structuredClone(user.extra);
  }
}
