// Validation of policy/v1 PodDisruptionBudgets (upstream's ValidatePodDisruptionBudget and its status update).

import type { FieldError } from "./field.ts";
import { child, invalid, notSupported } from "./field.ts";
import { validateLabelSelector, validateNonnegative } from "./meta.ts";
import { isRec, rec, type Rec } from "./util.ts";

const PERCENT = /^[0-9]+%$/;
const PERCENT_MSG = "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')";

/** ValidatePositiveIntOrPercent + IsNotMoreThan100Percent. */
function validateIntOrPercent(v: unknown, fldPath: string): FieldError[] {
  if (typeof v === "string") {
    if (!PERCENT.test(v)) return [invalid(fldPath, v, PERCENT_MSG)];
    return Number.parseInt(v.slice(0, -1), 10) > 100 ? [invalid(fldPath, v, "must not be greater than 100%")] : [];
  }
  if (typeof v === "number") return validateNonnegative(v, fldPath);
  return [invalid(fldPath, v, "must be an integer or percentage (e.g '5%')")];
}

export function validatePodDisruptionBudget(o: Rec): FieldError[] {
  const fldPath = "spec";
  const spec = rec(o.spec);
  const errs: FieldError[] = [];
  const has = (k: string) => spec[k] !== undefined && spec[k] !== null;
  if (has("minAvailable") && has("maxUnavailable")) errs.push(invalid(fldPath, spec, "minAvailable and maxUnavailable cannot be both set"));
  if (has("minAvailable")) errs.push(...validateIntOrPercent(spec.minAvailable, child(fldPath, "minAvailable")));
  if (has("maxUnavailable")) errs.push(...validateIntOrPercent(spec.maxUnavailable, child(fldPath, "maxUnavailable")));
  if (has("selector")) errs.push(...validateLabelSelector(spec.selector, child(fldPath, "selector")));
  if (has("unhealthyPodEvictionPolicy") && spec.unhealthyPodEvictionPolicy !== "IfHealthyBudget" && spec.unhealthyPodEvictionPolicy !== "AlwaysAllow") {
    errs.push(notSupported(child(fldPath, "unhealthyPodEvictionPolicy"), spec.unhealthyPodEvictionPolicy, ["AlwaysAllow", "IfHealthyBudget"]));
  }
  if (isRec(o.status)) errs.push(...validatePodDisruptionBudgetStatus(o.status));
  return errs;
}

/** ValidatePodDisruptionBudgetStatusUpdate (policy/v1): the counters are never negative. */
export function validatePodDisruptionBudgetStatus(status: Rec, fldPath = "status"): FieldError[] {
  const errs: FieldError[] = [];
  for (const k of ["disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods"]) {
    errs.push(...validateNonnegative(status[k], child(fldPath, k)));
  }
  return errs;
}
