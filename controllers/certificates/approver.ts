// The CSR approving controller (pkg/controller/certificates/approver/sarapprove.go): a kubelet client
// certificate request (signer kubernetes.io/kube-apiserver-client-kubelet, O=[system:nodes],
// CN=system:node:<x>, the kubelet client usages) is approved when a SubjectAccessReview says its
// requestor may create certificatesigningrequests/nodeclient — or /selfnodeclient when the
// requestor is that node renewing its own certificate. Every other request is left for a human
// (`kubectl certificate approve`) or another approver. RBAC decides who may bootstrap: upstream's
// bootstrap policy grants nodeclient to system:bootstrappers and selfnodeclient to system:nodes.

import type { KubeObject } from "../../api/index.ts";
import type { CertificateSigningRequest, CertificateSigningRequestCondition } from "../../api/certificates/v1.ts";
import { KubeAPIServerClientKubeletSignerName } from "../../api/certificates/v1.ts";
import { isNotFound } from "../../client/errors.ts";
import { enqueueOnChange, newRateLimitingQueue, runController } from "../../client/index.ts";
import type { Clock, Client, Lister, ObjectKey, ReconcileContext, Reconciler, Result } from "../../client/types.ts";
import type { ControllerSetup } from "../env.ts";
import { approvalState, CSR_GROUP, CSR_RESOURCE, validateKubeletClientCSR } from "./csr.ts";
import { parseCertificateRequest, type CertificateRequest } from "./x509.ts";

/** authorization.k8s.io/v1 SubjectAccessReview, the fields sent and read (as JSON). */
interface SubjectAccessReview extends KubeObject {
  spec: {
    user?: string;
    uid?: string;
    groups?: string[];
    extra?: Record<string, string[]>;
    resourceAttributes?: { group?: string; version?: string; resource?: string; subresource?: string; verb?: string; name?: string; namespace?: string };
  };
  status?: { allowed: boolean; denied?: boolean; reason?: string };
}

interface Recognizer {
  recognize(csr: Readonly<CertificateSigningRequest>, req: CertificateRequest): boolean;
  subresource: "selfnodeclient" | "nodeclient";
  successMessage: string;
}

const isNodeClientCert = (csr: Readonly<CertificateSigningRequest>, req: CertificateRequest): boolean =>
  csr.spec.signerName === KubeAPIServerClientKubeletSignerName && validateKubeletClientCSR(req, csr.spec.usages ?? []) === undefined;

/** Upstream's order: a node renewing its own certificate first, then any kubelet client request. */
export const RECOGNIZERS: readonly Recognizer[] = [
  {
    recognize: (csr, req) => csr.spec.username === req.commonName && isNodeClientCert(csr, req),
    subresource: "selfnodeclient",
    successMessage: "Auto approving self kubelet client certificate after SubjectAccessReview.",
  },
  { recognize: isNodeClientCert, subresource: "nodeclient", successMessage: "Auto approving kubelet client certificate after SubjectAccessReview." },
];

export interface CSRApprovingDeps {
  client: Client;
  csrs: Lister<CertificateSigningRequest>;
  clock: Pick<Clock, "now">;
}

export class CSRApprovingController implements Reconciler {
  constructor(private readonly deps: CSRApprovingDeps) {}

  async reconcile(ctx: ReconcileContext, key: ObjectKey): Promise<Result | void> {
    const csr = this.deps.csrs.get(key);
    if (!csr || csr.status?.certificate) return;
    const { approved, denied } = approvalState(csr);
    if (approved || denied) return;
    let req: CertificateRequest;
    try {
      req = parseCertificateRequest(csr.spec.request);
    } catch (e) {
      // Validation parses every request on create: this one cannot become parseable by retrying.
      ctx.log.warn({ csr: key, err: (e as Error).message }, "unable to parse csr");
      return;
    }
    const tried: string[] = [];
    for (const r of RECOGNIZERS) {
      if (!r.recognize(csr, req)) continue;
      tried.push(r.subresource);
      if (!(await this.authorize(csr, r.subresource))) continue;
      await this.approve(csr, r.successMessage).catch((e: unknown) => {
        if (!isNotFound(e)) throw e;
      });
      ctx.log.info({ csr: key, requestor: csr.spec.username, subject: req.commonName }, "approved kubelet client certificate request");
      return;
    }
    // Upstream's IgnorableError: recognised but not allowed (yet) — RBAC may change, so retry with backoff, quietly.
    if (tried.length) {
      ctx.log.debug({ csr: key, tried }, "recognized csr but subject access review was not approved");
      return { requeue: true };
    }
  }

  /** May the CSR's requestor create certificatesigningrequests/<subresource>? */
  private async authorize(csr: Readonly<CertificateSigningRequest>, subresource: string): Promise<boolean> {
    const sar: SubjectAccessReview = {
      apiVersion: "authorization.k8s.io/v1",
      kind: "SubjectAccessReview",
      metadata: {},
      spec: {
        user: csr.spec.username,
        uid: csr.spec.uid,
        groups: csr.spec.groups,
        extra: csr.spec.extra as Record<string, string[]> | undefined,
        resourceAttributes: { group: CSR_GROUP, resource: CSR_RESOURCE, subresource, verb: "create", version: "*" },
      },
    };
    const answer = await this.deps.client.resource<SubjectAccessReview>("authorization.k8s.io", "subjectaccessreviews").create("", sar);
    return answer.status?.allowed === true;
  }

  /**
   * Adds the Approved condition through the approval subresource. A merge patch carrying the
   * resourceVersion it was computed from is the same optimistic-concurrency write as upstream's
   * UpdateApproval (PUT .../approval), which our Client has no method for.
   */
  private async approve(csr: Readonly<CertificateSigningRequest>, message: string): Promise<void> {
    const now = new Date(this.deps.clock.now()).toISOString().replace(/\.\d+Z$/, "Z");
    const cond: CertificateSigningRequestCondition = { type: "Approved", status: "True", reason: "AutoApproved", message, lastUpdateTime: now };
    const patch = { metadata: { resourceVersion: csr.metadata.resourceVersion }, status: { conditions: [...(csr.status?.conditions ?? []), cond] } };
    await this.deps.client.resource<CertificateSigningRequest>(CSR_GROUP, CSR_RESOURCE).patch("", csr.metadata.name ?? "", "merge", patch, { subresource: "approval" });
  }
}

/**
 * `csrapproving` in the controller-manager. Its identity needs create on subjectaccessreviews and
 * update on certificatesigningrequests/approval plus approve on the kubelet signer (upstream's
 * system:controller:certificate-controller role).
 */
export const setupCSRApprovingController: ControllerSetup = (env) => {
  const csrs = env.informers.informer<CertificateSigningRequest>(CSR_GROUP, CSR_RESOURCE);
  const queue = newRateLimitingQueue<ObjectKey>({ name: "csrapproving", registry: env.registry });
  enqueueOnChange(csrs, queue);
  const reconciler = new CSRApprovingController({ client: env.client, csrs: csrs.lister, clock: { now: () => Date.now() } });
  return {
    name: "csrapproving",
    run: (ctx) => runController(ctx, { name: "csrapproving", reconciler, queue, workers: env.workers, informers: [csrs] }),
  };
};
