// The CSR signing controller (pkg/controller/certificates/signer): signs Approved, not yet issued
// requests of the kubernetes.io signers with the cluster CA (--cluster-signing-cert-file /
// --cluster-signing-key-file) and writes status.certificate through the status subresource. Each
// signer is restricted as upstream's: kube-apiserver-client-kubelet only signs kubelet client
// requests (O=[system:nodes], CN=system:node:*), kubelet-serving only kubelet serving requests,
// kube-apiserver-client any subject with client usages, legacy-unknown anything (no restrictions, for
// backward compatibility, as upstream). A request a signer refuses gets the Failed condition (reason
// SignerValidationFailure) and is never looked at again.

import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { CertificateSigningRequest } from "../../api/certificates/v1.ts";
import { KubeAPIServerClientKubeletSignerName, KubeAPIServerClientSignerName, KubeletServingSignerName, LegacyUnknownSignerName } from "../../api/certificates/v1.ts";
import { isNotFound } from "../../client/errors.ts";
import { enqueueOnChange, newRateLimitingQueue, runController } from "../../client/index.ts";
import type { Clock, Client, Lister, ObjectKey, ReconcileContext, Reconciler, Result } from "../../client/types.ts";
import type { ControllerSetup } from "../env.ts";
import { CSR_GROUP, CSR_RESOURCE, isApproved, isFailed, validateAPIServerClientUsages, validateKubeletClientCSR, validateKubeletServingCSR } from "./csr.ts";
import { issueCertificate, parseCertificateRequest, type CertificateAuthority, type CertificateRequest } from "./x509.ts";

/** --cluster-signing-duration's default: a year. */
export const DEFAULT_CLUSTER_SIGNING_DURATION_MS = 8760 * 3600 * 1000;
/** authority.PermissiveSigningPolicy's Backdate and Short, and the signer's 10-minute floor on a requested duration. */
const BACKDATE_MS = 5 * 60 * 1000;
const SHORT_MS = 8 * 3600 * 1000;
const MIN_DURATION_MS = 10 * 60 * 1000;

/** upstream's isRequestForSignerFunc of each signer: why it refuses the request (undefined: it signs). */
type RequestForSigner = (req: CertificateRequest, usages: readonly string[]) => string | undefined;

const SIGNERS: Record<string, RequestForSigner> = {
  [KubeletServingSignerName]: (req, usages) => validateKubeletServingCSR(req, usages),
  [KubeAPIServerClientKubeletSignerName]: (req, usages) => validateKubeletClientCSR(req, usages),
  [KubeAPIServerClientSignerName]: (_req, usages) => validateAPIServerClientUsages(usages),
  // "No restrictions are applied to the legacy-unknown signerName to maintain backward compatibility in v1."
  [LegacyUnknownSignerName]: () => undefined,
};

/** The signer's duration(): the default TTL, or a shorter requested one, but never under 10 minutes. */
export function certificateDurationMs(defaultMs: number, expirationSeconds: number | undefined): number {
  if (expirationSeconds === undefined) return defaultMs;
  const requested = expirationSeconds * 1000;
  if (requested > defaultMs) return defaultMs;
  if (requested < MIN_DURATION_MS) return MIN_DURATION_MS;
  return requested;
}

/**
 * PermissiveSigningPolicy.apply: notBefore 5 minutes back (clock skew); a long-lived certificate's
 * notAfter moved back by the same so its life is the TTL; never past the CA's own notAfter.
 */
export function validityWindow(nowMs: number, ttlMs: number, caNotAfterMs: number): { notBefore: Date; notAfter: Date } {
  const notBefore = nowMs - BACKDATE_MS;
  let notAfter = ttlMs < SHORT_MS ? nowMs + ttlMs : nowMs + ttlMs - BACKDATE_MS;
  if (notAfter >= caNotAfterMs) notAfter = caNotAfterMs;
  if (notBefore >= caNotAfterMs) throw new Error(`the signer has expired: NotAfter=${new Date(caNotAfterMs).toISOString()}`);
  if (nowMs >= caNotAfterMs) throw new Error(`refusing to sign a certificate that expired in the past: NotAfter=${new Date(caNotAfterMs).toISOString()}`);
  return { notBefore: new Date(notBefore), notAfter: new Date(notAfter) };
}

/** The CA a signer signs with, from PEM files (the key may be PKCS#1 or PKCS#8, RSA or EC). */
export function loadCA(certFile: string, keyFile: string): CertificateAuthority & { notAfterMs: number } {
  const certPem = readFileSync(certFile, "utf8");
  const key = createPrivateKey(readFileSync(keyFile, "utf8"));
  return { certPem, key, notAfterMs: Date.parse(new X509Certificate(certPem).validTo) };
}

export interface CSRSigningDeps {
  client: Client;
  csrs: Lister<CertificateSigningRequest>;
  ca: CertificateAuthority & { notAfterMs: number };
  /** --cluster-signing-duration in ms. */
  durationMs: number;
  clock: Pick<Clock, "now">;
}

export class CSRSigningController implements Reconciler {
  constructor(private readonly deps: CSRSigningDeps) {}

  async reconcile(ctx: ReconcileContext, key: ObjectKey): Promise<Result | void> {
    const csr = this.deps.csrs.get(key);
    // Issued already, or not (yet) approved, or refused before: nothing to do.
    if (!csr || csr.status?.certificate || !isApproved(csr) || isFailed(csr)) return;
    const forSigner = SIGNERS[csr.spec.signerName];
    if (!forSigner) return; // another signer's
    let req: CertificateRequest;
    try {
      req = parseCertificateRequest(csr.spec.request);
    } catch (e) {
      ctx.log.warn({ csr: key, err: (e as Error).message }, "unable to parse csr");
      return;
    }
    const usages = csr.spec.usages ?? [];
    const error = forSigner(req, usages);
    const next = structuredClone(csr) as CertificateSigningRequest;
    next.status ??= {};
    if (error !== undefined) {
      next.status.conditions = [
        ...(next.status.conditions ?? []),
        { type: "Failed", status: "True", reason: "SignerValidationFailure", message: error, lastUpdateTime: this.timestamp() },
      ];
      ctx.log.info({ csr: key, signer: csr.spec.signerName, reason: error }, "csr refused by its signer");
    } else {
      const nowMs = this.deps.clock.now();
      const ttl = certificateDurationMs(this.deps.durationMs, csr.spec.expirationSeconds);
      const { notBefore, notAfter } = validityWindow(nowMs, ttl, this.deps.ca.notAfterMs);
      const pem = issueCertificate(this.deps.ca, req, usages, notBefore, notAfter);
      next.status.certificate = Buffer.from(pem).toString("base64");
      ctx.log.info({ csr: key, signer: csr.spec.signerName, subject: req.commonName, notAfter: notAfter.toISOString() }, "signed certificate");
    }
    try {
      await this.deps.client.resource<CertificateSigningRequest>(CSR_GROUP, CSR_RESOURCE).updateStatus(next);
    } catch (e) {
      if (isNotFound(e)) return;
      throw e;
    }
  }

  private timestamp(): string {
    return new Date(this.deps.clock.now()).toISOString().replace(/\.\d+Z$/, "Z");
  }
}

/**
 * `csrsigning` in the controller-manager. Without both signing files it does not run, as upstream's
 * controller is skipped when its default files are absent.
 */
export const setupCSRSigningController: ControllerSetup = (env) => {
  const cfg = env.config;
  const csrs = env.informers.informer<CertificateSigningRequest>(CSR_GROUP, CSR_RESOURCE);
  if (!cfg.clusterSigningCertFile || !cfg.clusterSigningKeyFile) {
    return {
      name: "csrsigning",
      run: async (ctx) => ctx.log.warn({}, "csrsigning not started: --cluster-signing-cert-file and --cluster-signing-key-file are required"),
    };
  }
  const ca = loadCA(cfg.clusterSigningCertFile, cfg.clusterSigningKeyFile);
  const queue = newRateLimitingQueue<ObjectKey>({ name: "csrsigning", registry: env.registry });
  enqueueOnChange(csrs, queue);
  const reconciler = new CSRSigningController({
    client: env.client,
    csrs: csrs.lister,
    ca,
    durationMs: cfg.clusterSigningDurationMs ?? DEFAULT_CLUSTER_SIGNING_DURATION_MS,
    clock: { now: () => Date.now() },
  });
  return {
    name: "csrsigning",
    run: (ctx) => runController(ctx, { name: "csrsigning", reconciler, queue, workers: env.workers, informers: [csrs] }),
  };
};
