// ResourceQuota and LimitRange validation: the field errors and messages upstream gives.

import { describe, expect, it } from "vitest";
import { formatFieldError } from "./field.ts";
import { validateLimitRange, validateResourceQuota, validateResourceQuotaUpdate } from "./quota.ts";

const quotaErrors = (spec: unknown) => validateResourceQuota({ spec }).map(formatFieldError);
const rangeErrors = (limits: unknown[]) => validateLimitRange({ spec: { limits } }).map(formatFieldError);

describe("ResourceQuota validation", () => {
  it("accepts standard names, count/ names, extended requests and hugepages", () => {
    expect(quotaErrors({ hard: { pods: "10", "requests.cpu": "2", "count/deployments.apps": "3", "requests.nvidia.com/gpu": "1", "requests.hugepages-2Mi": "1Gi" } })).toEqual([]);
  });

  it("refuses unknown names, fractional counts and malformed quantities", () => {
    expect(quotaErrors({ hard: { cpus: "1", pods: "1.5", memory: "lots" } })).toEqual([
      'spec.hard[cpus]: Invalid value: "cpus": must be a standard resource type or fully qualified',
      'spec.hard[pods]: Invalid value: "1500m": must be an integer',
      "spec.hard[memory]: Invalid value: \"lots\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
    ]);
    expect(quotaErrors({ hard: { storage: "1Gi" } })).toEqual(['spec.hard[storage]: Invalid value: "storage": must be a standard resource for quota']);
  });

  it("checks scopes: known, valid for the limited resources, not conflicting", () => {
    expect(quotaErrors({ hard: { pods: "1" }, scopes: ["Forever"] })).toEqual(['spec.scopes: Invalid value: []string{"Forever"}: unsupported scope']);
    expect(quotaErrors({ hard: { services: "1" }, scopes: ["BestEffort"] })).toEqual(['spec.scopes: Invalid value: []string{"BestEffort"}: unsupported scope applied to resource']);
    expect(quotaErrors({ hard: { pods: "1" }, scopes: ["Terminating", "NotTerminating"] })).toEqual([
      'spec.scopes: Invalid value: []string{"Terminating", "NotTerminating"}: conflicting scopes',
    ]);
  });

  it("checks scope selector operators and values", () => {
    const sel = (expr: unknown) => quotaErrors({ hard: { pods: "1" }, scopeSelector: { matchExpressions: [expr] } });
    expect(sel({ scopeName: "PriorityClass", operator: "In", values: ["high"] })).toEqual([]);
    expect(sel({ scopeName: "PriorityClass", operator: "In" })).toEqual([
      "spec.scopeSelector.matchExpressions.values: Required value: must be at least one value when `operator` is 'In' or 'NotIn' for scope selector",
    ]);
    expect(sel({ scopeName: "BestEffort", operator: "In", values: ["x"] })[0]).toBe(
      'spec.scopeSelector.matchExpressions.operator: Invalid value: "In": must be \'Exist\' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity',
    );
  });

  it("keeps spec.scopes immutable", () => {
    expect(validateResourceQuotaUpdate({ spec: { scopes: ["BestEffort"] } }, { spec: {} }).map(formatFieldError)).toEqual(['spec.scopes: Invalid value: []string{"BestEffort"}: field is immutable']);
    expect(validateResourceQuotaUpdate({ spec: { scopes: ["BestEffort"], hard: { pods: "2" } } }, { spec: { scopes: ["BestEffort"] } })).toEqual([]);
  });
});

describe("LimitRange validation", () => {
  it("accepts min ≤ defaultRequest ≤ default ≤ max", () => {
    expect(rangeErrors([{ type: "Container", min: { cpu: "100m" }, defaultRequest: { cpu: "200m" }, default: { cpu: "500m" }, max: { cpu: "1" }, maxLimitRequestRatio: { cpu: "5" } }])).toEqual([]);
  });

  it("reports every ordering violation with upstream's message", () => {
    expect(rangeErrors([{ type: "Container", min: { cpu: "1" }, defaultRequest: { cpu: "2" }, default: { cpu: "500m" }, max: { cpu: "800m" } }])).toEqual([
      'spec.limits[0].min[cpu]: Invalid value: "1": min value 1 is greater than max value 800m',
      'spec.limits[0].defaultRequest[cpu]: Invalid value: "2": default request value 2 is greater than max value 800m',
      'spec.limits[0].defaultRequest[cpu]: Invalid value: "2": default request value 2 is greater than default limit value 500m',
      'spec.limits[0].default[cpu]: Invalid value: "1": min value 1 is greater than default value 500m',
    ]);
  });

  it("checks ratios, Pod items, claim items and duplicate types", () => {
    expect(rangeErrors([{ type: "Container", maxLimitRequestRatio: { cpu: "500m" } }])).toEqual(['spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: "500m": ratio 500m is less than 1']);
    expect(rangeErrors([{ type: "Container", min: { cpu: "100m" }, max: { cpu: "200m" }, maxLimitRequestRatio: { cpu: "3" } }])).toEqual([
      'spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: "3": ratio 3 is greater than max/min = 2.000000',
    ]);
    expect(rangeErrors([{ type: "Pod", default: { cpu: "1" } }])).toEqual(["spec.limits[0].default: Forbidden: may not be specified when `type` is 'Pod'"]);
    expect(rangeErrors([{ type: "PersistentVolumeClaim" }])).toEqual(["spec.limits[0].limits: Required value: either minimum or maximum storage value is required, but neither was provided"]);
    expect(rangeErrors([{ type: "Pod" }, { type: "Pod" }])).toEqual(['spec.limits[1].type: Duplicate value: "Pod"']);
    expect(rangeErrors([{ type: "Container", max: { gpus: "1" } }])).toEqual(['spec.limits[0].max[gpus]: Invalid value: "gpus": must be a standard limit type or fully qualified']);
  });
});
