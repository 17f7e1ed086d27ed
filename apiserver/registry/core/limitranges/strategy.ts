// LimitRanges: defaulted as upstream's SetDefaults_LimitRangeItem, so a Container item's `max`
// becomes its `default`, and its `default` (else `min`) its `defaultRequest`.

import { applyDefaults, type KubeObject, type ResourceInfo } from "../../../../api/index.ts";
import { genericStrategy, type Strategy } from "../../strategy.ts";

type Rec = Record<string, unknown>;

function isRec(v: unknown): v is Rec {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** SetDefaults_LimitRangeItem for every Container item of the spec. */
export function defaultLimitRange(obj: KubeObject): void {
  const spec = obj.spec;
  if (!isRec(spec) || !Array.isArray(spec.limits)) return;
  for (const item of spec.limits) {
    if (!isRec(item) || item.type !== "Container") continue;
    const def: Rec = isRec(item.default) ? { ...item.default } : {};
    const defReq: Rec = isRec(item.defaultRequest) ? { ...item.defaultRequest } : {};
    for (const [k, v] of Object.entries(isRec(item.max) ? item.max : {})) if (!(k in def)) def[k] = v;
    for (const [k, v] of Object.entries(def)) if (!(k in defReq)) defReq[k] = v;
    for (const [k, v] of Object.entries(isRec(item.min) ? item.min : {})) if (!(k in defReq)) defReq[k] = v;
    if (Object.keys(def).length) item.default = def;
    if (Object.keys(defReq).length) item.defaultRequest = defReq;
  }
}

export function limitRangeStrategy(info: ResourceInfo): Strategy {
  return genericStrategy(info, {
    defaults(obj) {
      applyDefaults(obj);
      defaultLimitRange(obj);
    },
  });
}
