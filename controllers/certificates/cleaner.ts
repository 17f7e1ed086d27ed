// The CSR cleaner (pkg/controller/certificates/cleaner/cleaner.go): every hour it deletes the
// requests that are done with — issued and approved over an hour ago, denied or failed over an hour
// ago, pending (no condition at all) for over a day, or whose issued certificate has expired — so
// that a cluster whose kubelets renew their certificates does not pile CSRs up. Upstream runs it as
// a polling loop over the informer's cache, with no work queue.

import { X509Certificate } from "node:crypto";
import type { CertificateSigningRequest } from "../../api/certificates/v1.ts";
import { isNotFound } from "../../client/errors.ts";
import { realClock, type Clock, type Client, type Context, type Lister, type Logger } from "../../client/index.ts";
import type { ControllerSetup } from "../env.ts";
import { CSR_GROUP, CSR_RESOURCE } from "./csr.ts";

/** upstream's pollingInterval, approvedExpiration, deniedExpiration and pendingExpiration. */
export const CLEANER_POLLING_INTERVAL_MS = 3600_000;
const APPROVED_EXPIRATION_MS = 3600_000;
const DENIED_EXPIRATION_MS = 3600_000;
const PENDING_EXPIRATION_MS = 24 * 3600_000;

const olderThan = (t: string | undefined, ms: number, nowMs: number): boolean => {
  const at = t ? Date.parse(t) : NaN;
  return !Number.isNaN(at) && at + ms < nowMs;
};

/** Why the CSR is to be deleted (upstream's log message), or undefined to keep it. */
export function cleanupReason(csr: Readonly<CertificateSigningRequest>, nowMs: number): string | undefined {
  const conditions = csr.status?.conditions ?? [];
  if (csr.status?.certificate) {
    for (const c of conditions) {
      if (c.type === "Approved" && olderThan(c.lastUpdateTime, APPROVED_EXPIRATION_MS, nowMs)) return "Cleaning CSR as it is more than approvedExpiration duration old and approved.";
    }
  }
  for (const c of conditions) {
    if (c.type === "Denied" && olderThan(c.lastUpdateTime, DENIED_EXPIRATION_MS, nowMs)) return "Cleaning CSR as it is more than deniedExpiration duration old and denied.";
  }
  for (const c of conditions) {
    if (c.type === "Failed" && olderThan(c.lastUpdateTime, DENIED_EXPIRATION_MS, nowMs)) return "Cleaning CSR as it is more than deniedExpiration duration old and failed.";
  }
  if (conditions.length === 0 && olderThan(csr.metadata.creationTimestamp, PENDING_EXPIRATION_MS, nowMs)) return "Cleaning CSR as it is more than pendingExpiration duration old and unhandled.";
  if (csr.status?.certificate) {
    try {
      const cert = new X509Certificate(Buffer.from(csr.status.certificate, "base64").toString("utf8"));
      if (Date.parse(cert.validTo) < nowMs) return "Cleaning CSR as the associated certificate is expired.";
    } catch {
      // upstream: "Unable to parse certificate data" is logged and the CSR kept
    }
  }
  return undefined;
}

export interface CSRCleanerDeps {
  client: Client;
  csrs: Lister<CertificateSigningRequest>;
  clock: Pick<Clock, "now">;
}

/** One pass of the cleaner's worker: deletes every CSR cleanupReason names. */
export async function cleanCSRs(deps: CSRCleanerDeps, log: Logger): Promise<void> {
  const nowMs = deps.clock.now();
  for (const csr of deps.csrs.list()) {
    const reason = cleanupReason(csr, nowMs);
    if (!reason) continue;
    log.info({ csr: csr.metadata.name }, reason);
    try {
      await deps.client.resource<CertificateSigningRequest>(CSR_GROUP, CSR_RESOURCE).delete("", csr.metadata.name ?? "");
    } catch (e) {
      if (!isNotFound(e)) log.error({ csr: csr.metadata.name, err: e }, `unable to delete CSR ${JSON.stringify(csr.metadata.name)}`);
    }
  }
}

/** `csrcleaner` in the controller-manager. */
export const setupCSRCleanerController: ControllerSetup = (env) => {
  const csrs = env.informers.informer<CertificateSigningRequest>(CSR_GROUP, CSR_RESOURCE);
  const clock = realClock;
  return {
    name: "csrcleaner",
    run: async (ctx: Context) => {
      await csrs.waitForSync(ctx.signal).catch(() => undefined);
      while (!ctx.signal.aborted) {
        await cleanCSRs({ client: env.client, csrs: csrs.lister, clock }, ctx.log);
        await clock.sleep(CLEANER_POLLING_INTERVAL_MS, ctx.signal);
      }
    },
  };
};
