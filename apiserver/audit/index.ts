// Auditing (--audit-policy-file, --audit-log-*): what the apiserver and the CLI use.

import { Auditor } from "./audit.ts";
import { LogBackend } from "./log.ts";
import { loadPolicyFile, PolicyRuleEvaluator } from "./policy.ts";

export { Auditor, AuditEvent, auditIDFor, formatMicroTime, HEADER_AUDIT_ID, microClock, type Event, type Sink } from "./audit.ts";
export { LogBackend, type LogBackendOptions } from "./log.ts";
export { withAudit, withAuditInit, type AuditHooks, type AuditState } from "./middleware.ts";
export { AuditPolicyError, loadPolicyFile, parsePolicy, PolicyRuleEvaluator, type Level, type Policy, type PolicyRule, type Stage } from "./policy.ts";

export interface AuditOptions {
  /** --audit-policy-file. */
  policyFile?: string;
  /** --audit-log-path: a file, or "-" for stdout. */
  logPath?: string;
  /** --audit-log-maxsize (MB, 0: 100). */
  maxSizeMB?: number;
  /** --audit-log-maxbackup (0: keep all). */
  maxBackups?: number;
  /** --audit-log-maxage (days, 0: no limit). */
  maxAgeDays?: number;
}

/**
 * Builds the auditing the flags ask for, as kube-apiserver's AuditOptions.ApplyTo: nothing without
 * both a policy file and a log path (upstream then records no events); a bad policy file throws
 * AuditPolicyError with a one-line message. warnings: unknown policy fields, and the reason
 * auditing is off when only one of the two flags was given.
 */
export function newAuditing(o: AuditOptions, onError?: (err: Error) => void): { auditor?: Auditor; backend?: LogBackend; warnings: string[] } {
  const warnings: string[] = [];
  if (!o.policyFile) {
    if (o.logPath) warnings.push("no audit policy file provided, no events will be recorded");
    return { warnings };
  }
  const { policy, warnings: w } = loadPolicyFile(o.policyFile);
  for (const x of w) warnings.push(`audit policy ${o.policyFile}: ${x} (ignored, as upstream's lenient decoding)`);
  if (!o.logPath) {
    warnings.push("no audit log path (--audit-log-path) provided, no events will be recorded");
    return { warnings };
  }
  const backend = new LogBackend({ path: o.logPath, maxSizeMB: o.maxSizeMB, maxBackups: o.maxBackups, maxAgeDays: o.maxAgeDays, onError });
  return { auditor: new Auditor(new PolicyRuleEvaluator(policy), backend), backend, warnings };
}
