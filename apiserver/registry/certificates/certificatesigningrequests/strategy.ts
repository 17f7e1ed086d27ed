// CertificateSigningRequests, as upstream's registry/certificates/certificates/strategy.go: three writers
// with their own rights. The main resource carries the spec (set once; the requester fields come from the
// requesting user, filled by the CertificateSigningRequest admission plugin) and never changes status; the
// status subresource (the signer) may set the certificate and conditions other than Approved/Denied; the
// approval subresource (an approver) may change only Approved/Denied. Condition timestamps are the server's.

import type { CertificateSigningRequest, CertificateSigningRequestCondition, FieldError, KubeObject, ResourceInfo } from "../../../../api/index.ts";
import { forbidden } from "../../../../api/validation/field.ts";
import { rfc3339 } from "../../store.ts";
import { genericStrategy, deepEqual, type Strategy } from "../../strategy.ts";

const APPROVAL_TYPES = ["Approved", "Denied"];

function conditions(o: KubeObject): CertificateSigningRequestCondition[] {
  const c = (o as CertificateSigningRequest).status?.conditions;
  return Array.isArray(c) ? c : [];
}

function setConditions(o: KubeObject, list: CertificateSigningRequestCondition[]): void {
  const csr = o as CertificateSigningRequest;
  csr.status = { ...(csr.status ?? {}), conditions: list };
  if (list.length === 0) delete csr.status.conditions;
  if (Object.keys(csr.status).length === 0) delete csr.status;
}

/** preserveConditionInstances: the conditions of `type` in `obj` become exactly those of `old`. */
function preserveConditions(obj: KubeObject, old: KubeObject, types: readonly string[]): void {
  const kept = conditions(obj).filter((c) => !types.includes(c.type));
  setConditions(obj, [...kept, ...conditions(old).filter((c) => types.includes(c.type))]);
}

/**
 * populateConditionTimestamps: a condition without lastUpdateTime gets now; without lastTransitionTime it
 * keeps the old one when the condition of that type kept its status, else now.
 */
function populateConditionTimestamps(obj: KubeObject, old: KubeObject | undefined, now: string): void {
  for (const c of conditions(obj)) {
    if (!c.lastUpdateTime) c.lastUpdateTime = now;
    if (!c.lastTransitionTime) {
      const prev = old ? conditions(old).find((o) => o.type === c.type) : undefined;
      c.lastTransitionTime = prev && prev.status === c.status && prev.lastTransitionTime ? prev.lastTransitionTime : now;
    }
  }
}

/** Status writers (status and approval) may not change labels, annotations, owners or finalizers either. */
function keepSpecAndMeta(obj: KubeObject, old: KubeObject): void {
  obj.spec = old.spec;
  obj.metadata = { ...old.metadata, resourceVersion: obj.metadata.resourceVersion };
}

/** Forbidden unless the conditions of `types` are the same (ignoring the server's timestamps) in both. */
function unchangedConditions(obj: KubeObject, old: KubeObject, types: (t: string) => boolean, what: string): FieldError[] {
  const strip = (o: KubeObject) => conditions(o).filter((c) => types(c.type)).map(({ lastUpdateTime: _u, lastTransitionTime: _t, ...c }) => c);
  return deepEqual(strip(obj), strip(old)) ? [] : [forbidden("status.conditions", `updates may not ${what}`)];
}

export function certificateSigningRequestStrategy(info: ResourceInfo): Strategy {
  const base = genericStrategy(info);
  const strategy: Strategy = genericStrategy(info, {
    defaults(obj) {
      base.defaults(obj);
      // SetDefaults_CertificateSigningRequestCondition: a condition's status defaults to True
      for (const c of conditions(obj)) if (c && typeof c === "object" && !c.status) c.status = "True";
    },
    prepareForCreate(obj) {
      // spec.username/uid/groups/extra were set by the admission plugin from the requesting user
      delete obj.status;
    },
    prepareForUpdate(obj, old) {
      // the main resource changes only metadata: the spec is immutable and status has its endpoints
      obj.spec = old.spec;
      if (old.status === undefined) delete obj.status;
      else obj.status = old.status;
    },
    /** csrStatusStrategy: the signer sets the certificate and Failed (or its own) conditions. */
    prepareForStatusUpdate(obj, old) {
      keepSpecAndMeta(obj, old);
      preserveConditions(obj, old, APPROVAL_TYPES);
      // the status update gets no StrategyContext: the wall clock stamps the conditions
      populateConditionTimestamps(obj, old, rfc3339(new Date()));
    },
  });
  return strategy;
}

/**
 * csrApprovalStrategy, for the approval subresource: only Approved/Denied conditions change; the
 * certificate and every other condition stay as stored.
 */
export function certificateSigningRequestApprovalStrategy(csr: Strategy, now: () => Date): Strategy {
  return {
    ...csr,
    prepareForUpdate(obj, old) {
      keepSpecAndMeta(obj, old);
      const approvals = conditions(obj).filter((c) => APPROVAL_TYPES.includes(c.type));
      const oldStatus = (old as CertificateSigningRequest).status ?? {};
      (obj as CertificateSigningRequest).status = { ...structuredClone(oldStatus) };
      setConditions(obj, [...conditions(old).filter((c) => !APPROVAL_TYPES.includes(c.type)), ...approvals]);
      populateConditionTimestamps(obj, old, rfc3339(now()));
    },
    validateUpdate(obj, old) {
      return [
        ...csr.validateUpdate(obj, old),
        ...unchangedConditions(obj, old, (t) => !APPROVAL_TYPES.includes(t), "change conditions other than Approved and Denied through the approval subresource"),
      ];
    },
  };
}
