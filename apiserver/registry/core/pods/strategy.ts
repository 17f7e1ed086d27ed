// Pods: status starts Pending with a QoS class, deletion of a pod on a node is graceful (the kubelet finishes it).

import { podQOSClass, type KubeObject, type ResourceInfo } from "../../../../api/index.ts";
import { errors } from "../../../errors.ts";
import { genericStrategy, type AdmissionOptions, type Strategy, type StrategyContext } from "../../strategy.ts";

function asRecord(v: unknown): Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function spec(obj: KubeObject): { nodeName?: string; terminationGracePeriodSeconds?: number } {
  return (obj.spec ?? {}) as { nodeName?: string; terminationGracePeriodSeconds?: number };
}

function phase(obj: KubeObject): string | undefined {
  return (obj.status as { phase?: string } | undefined)?.phase;
}

function terminal(obj: KubeObject): boolean {
  const p = phase(obj);
  return p === "Succeeded" || p === "Failed";
}

export function podStrategy(info: ResourceInfo): Strategy {
  const base = genericStrategy(info);
  return genericStrategy(info, {
    returnDeletedObject: true,
    prepareForCreate(obj, ctx) {
      obj.status = { phase: "Pending", qosClass: podQOSClass(obj.spec as Parameters<typeof podQOSClass>[0]) };
      admitPriority(obj, ctx);
      admitDefaultTolerationSeconds(obj, ctx.admission);
    },
    gracefulDeletion(obj, options) {
      // Unscheduled and finished pods have nobody to wait for; grace 0 forces immediate removal.
      if (!spec(obj).nodeName || terminal(obj)) return { graceful: false, gracePeriodSeconds: 0 };
      const grace = options.gracePeriodSeconds ?? spec(obj).terminationGracePeriodSeconds ?? 30;
      if (grace <= 0) return { graceful: false, gracePeriodSeconds: 0 };
      return { graceful: true, gracePeriodSeconds: grace };
    },
    shouldDeleteDuringUpdate(obj, old) {
      if (base.shouldDeleteDuringUpdate(obj, old)) return true;
      // A pod marked for deletion that the kubelet has finished (or that never ran) goes once finalizers are gone.
      return (
        old.metadata.deletionTimestamp !== undefined &&
        (obj.metadata.finalizers?.length ?? 0) === 0 &&
        (!spec(obj).nodeName || terminal(obj))
      );
    },
  });
}

/**
 * The Priority admission plugin: spec.priority comes from the PriorityClass the pod names (or the
 * global default class, else 0), and a pod may not claim a priority of its own.
 */
function admitPriority(pod: KubeObject, ctx: StrategyContext): void {
  const spec = asRecord(pod.spec) as { priorityClassName?: unknown; priority?: unknown; preemptionPolicy?: unknown };
  const classes = ctx.registry.store("scheduling.k8s.io", "priorityclasses").cache.list("/registry/priorityclasses/").items.map((i) => i.obj);
  const gr = { group: "", resource: "pods" };
  const name = pod.metadata.name ?? pod.metadata.generateName ?? "";
  let cls: KubeObject | undefined;
  if (typeof spec.priorityClassName === "string" && spec.priorityClassName !== "") {
    cls = classes.find((c) => c.metadata.name === spec.priorityClassName);
    if (!cls) throw errors.forbidden(gr, name, `no PriorityClass with name ${spec.priorityClassName} was found`);
  } else {
    cls = classes.find((c) => c.globalDefault === true);
  }
  const value = cls && typeof cls.value === "number" ? cls.value : 0;
  if (spec.priority !== undefined && spec.priority !== null && spec.priority !== value) {
    throw errors.forbidden(
      gr,
      name,
      `the integer value of priority (${String(spec.priority)}) must not be provided in pod spec; priority admission controller computed ${value} from the given PriorityClass name`,
    );
  }
  spec.priority = value;
  if (cls) spec.priorityClassName = cls.metadata.name;
  spec.preemptionPolicy ??= (cls?.preemptionPolicy as string | undefined) ?? "PreemptLowerPriority";
  pod.spec = spec;
}

const TaintNodeNotReady = "node.kubernetes.io/not-ready";
const TaintNodeUnreachable = "node.kubernetes.io/unreachable";

/**
 * The DefaultTolerationSeconds admission plugin: a pod that does not already tolerate the
 * not-ready and unreachable NoExecute taints (a toleration with that key or no key, and effect
 * NoExecute or none) gets an Exists toleration for each, bounded by the apiserver's
 * --default-not-ready-toleration-seconds / --default-unreachable-toleration-seconds — so its pods
 * leave a failed node after five minutes rather than at once or never.
 */
export function admitDefaultTolerationSeconds(pod: KubeObject, opts: Readonly<AdmissionOptions>): void {
  const spec = asRecord(pod.spec);
  const tolerations = Array.isArray(spec.tolerations) ? (spec.tolerations as unknown[]) : [];
  const tolerates = (key: string) =>
    tolerations.some((t) => {
      const r = asRecord(t);
      return (r.key === key || r.key === undefined || r.key === "") && (r.effect === "NoExecute" || r.effect === undefined || r.effect === "");
    });
  const added: Record<string, unknown>[] = [];
  if (!tolerates(TaintNodeNotReady)) {
    added.push({ key: TaintNodeNotReady, operator: "Exists", effect: "NoExecute", tolerationSeconds: opts.defaultNotReadyTolerationSeconds });
  }
  if (!tolerates(TaintNodeUnreachable)) {
    added.push({ key: TaintNodeUnreachable, operator: "Exists", effect: "NoExecute", tolerationSeconds: opts.defaultUnreachableTolerationSeconds });
  }
  if (added.length === 0) return;
  spec.tolerations = [...tolerations, ...added];
  pod.spec = spec;
}
