// Toleration/taint matching, pure and shared by the scheduler's TaintToleration and
// NodeUnschedulable plugins, the node lifecycle controller's NoExecute eviction and the DaemonSet
// controller (upstream: core/v1 Toleration.ToleratesTaint and component-helpers' v1helper).

import type { Taint, Toleration } from "./core/v1.ts";

/** Toleration.ToleratesTaint: effect and key match when set (empty matches all); Equal compares values. */
export function toleratesTaint(toleration: Readonly<Toleration>, taint: Readonly<Taint>): boolean {
  if (toleration.effect && toleration.effect !== taint.effect) return false;
  if (toleration.key && toleration.key !== taint.key) return false;
  switch (toleration.operator ?? "Equal") {
    case "Equal":
      return (toleration.value ?? "") === (taint.value ?? "");
    case "Exists":
      return true;
    default:
      return false;
  }
}

/** True when any of the tolerations tolerates the taint. */
export function tolerationsTolerateTaint(tolerations: readonly Toleration[] | undefined, taint: Readonly<Taint>): boolean {
  return (tolerations ?? []).some((t) => toleratesTaint(t, taint));
}

/** Picks the taints a check cares about, e.g. only NoSchedule and NoExecute. */
export type TaintFilter = (taint: Readonly<Taint>) => boolean;

/** The taints the scheduler must not ignore: NoSchedule and NoExecute. */
export const doNotScheduleTaint: TaintFilter = (t) => t.effect === "NoSchedule" || t.effect === "NoExecute";

/** The first taint (among those the filter keeps) that no toleration tolerates, or undefined. */
export function findMatchingUntoleratedTaint(
  taints: readonly Taint[] | undefined,
  tolerations: readonly Toleration[] | undefined,
  filter?: TaintFilter,
): Taint | undefined {
  for (const taint of taints ?? []) {
    if (filter && !filter(taint)) continue;
    if (!tolerationsTolerateTaint(tolerations, taint)) return taint;
  }
  return undefined;
}
