// PriorityClasses: preemptionPolicy defaults to PreemptLowerPriority; at most one global default.

import type { KubeObject, ResourceInfo } from "../../../../api/index.ts";
import { errors } from "../../../errors.ts";
import { genericStrategy, type Strategy, type StrategyContext } from "../../strategy.ts";

function otherGlobalDefault(obj: KubeObject, ctx: StrategyContext): string | undefined {
  if (obj.globalDefault !== true) return undefined;
  for (const it of ctx.registry.store("scheduling.k8s.io", "priorityclasses").cache.list("/registry/priorityclasses/").items) {
    if (it.obj.globalDefault === true && it.obj.metadata.name !== obj.metadata.name) return it.obj.metadata.name;
  }
  return undefined;
}

export function priorityClassStrategy(info: ResourceInfo): Strategy {
  const base = genericStrategy(info);
  return genericStrategy(info, {
    defaults(obj) {
      base.defaults(obj);
      obj.preemptionPolicy ??= "PreemptLowerPriority";
    },
    prepareForCreate(obj, ctx) {
      const other = otherGlobalDefault(obj, ctx);
      if (other) {
        throw errors.invalid("scheduling.k8s.io", "PriorityClass", obj.metadata.name ?? "", [
          { field: "globalDefault", type: "FieldValueInvalid", message: `globalDefault: Invalid value: true: PriorityClass ${other} is already marked as default. Only one default can exist` },
        ]);
      }
    },
  });
}
