// Quota arithmetic (exact quantities, canonical strings) and the evaluators: what pods, services,
// claims and other objects charge, and which quotas they fall under.

import { describe, expect, it } from "vitest";
import type { KubeObject } from "../meta.ts";
import { calculateUsage, podEvaluator, podResourceTotals, pvcUsage, quotaEvaluatorFor, quotaMatches, serviceUsage, type ResourceQuota } from "./quota.ts";
import { addQuantities, ExactQuantity, fromQuantities, lessThanOrEqual, prettyPrintQuantities, subtractNonNegative, toQuantities } from "./resourcelist.ts";

const NOW = new Date(Date.UTC(2024, 0, 1));
const q = (s: string | number) => ExactQuantity.parse(s);

function pod(name: string, containers: { requests?: Record<string, string>; limits?: Record<string, string> }[], extra: Record<string, unknown> = {}, status?: Record<string, unknown>): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "ns" },
    spec: { containers: containers.map((r, i) => ({ name: `c${i}`, image: "busybox", resources: r })), ...extra },
    ...(status ? { status } : {}),
  };
}

function quota(hard: Record<string, string>, spec: Partial<ResourceQuota["spec"]> = {}): ResourceQuota {
  return { apiVersion: "v1", kind: "ResourceQuota", metadata: { name: "q", namespace: "ns" }, spec: { hard, ...spec } };
}

describe("exact quantities", () => {
  it("print in Quantity.String()'s canonical form", () => {
    expect(q("1000m").toString()).toBe("1");
    expect(q("0.5").toString()).toBe("500m");
    expect(q("1500").toString()).toBe("1500");
    expect(q("2000").toString()).toBe("2k");
    expect(q("1.5Gi").toString()).toBe("1536Mi");
    expect(q("1024Mi").toString()).toBe("1Gi");
    expect(q("512Ki").toString()).toBe("512Ki");
    expect(q("1e3").toString()).toBe("1e3");
    expect(q("0").toString()).toBe("0");
    expect(q("-100m").toString()).toBe("-100m");
    // Finer than a nano-unit rounds up, as ParseQuantity does.
    expect(q("0.0000000001").toString()).toBe("1n");
  });

  it("add exactly and keep the first non-zero operand's format", () => {
    expect(q("100m").add(q("200m")).toString()).toBe("300m");
    expect(q("0.1").add(q("0.2")).toString()).toBe("300m");
    expect(q("128Mi").add(q("128Mi")).toString()).toBe("256Mi");
    expect(ExactQuantity.zero().add(q("1Gi")).toString()).toBe("1Gi");
    expect(q("1").add(q("500m")).toString()).toBe("1500m");
  });

  it("rounds milli and whole values up, as MilliValue and Value do", () => {
    expect(q("1n").milliValue()).toBe(1n);
    expect(q("1.5").value()).toBe(2n);
    expect(q("100m").milliValue()).toBe(100n);
  });

  it("refuses what is not a quantity", () => {
    expect(ExactQuantity.tryParse("1.2.3")).toBeUndefined();
    expect(ExactQuantity.tryParse("abc")).toBeUndefined();
    expect(() => ExactQuantity.parse("1X")).toThrow(/quantities must match the regular expression/);
  });

  it("lists compare, subtract and print as the quota package does", () => {
    const used = toQuantities({ pods: "3", "requests.cpu": "1" });
    const hard = toQuantities({ pods: "3", "requests.cpu": "2" });
    const next = addQuantities(used, toQuantities({ pods: "1", "requests.cpu": "500m" }));
    expect(fromQuantities(next)).toEqual({ pods: "4", "requests.cpu": "1500m" });
    expect(lessThanOrEqual(next, hard)).toEqual({ ok: false, exceeded: ["pods"] });
    expect(prettyPrintQuantities(toQuantities({ "requests.memory": "1Gi", pods: "1" }))).toBe("pods=1,requests.memory=1Gi");
    expect(fromQuantities(subtractNonNegative(toQuantities({ a: "1" }), toQuantities({ a: "2", b: "1" })))).toEqual({ a: "0", b: "0" });
  });
});

describe("pod evaluator", () => {
  it("charges pods, count/pods, cpu and memory requests and limits summed over containers", () => {
    const p = pod("p", [
      { requests: { cpu: "100m", memory: "64Mi" }, limits: { cpu: "200m", memory: "128Mi" } },
      { requests: { cpu: "250m" } },
    ]);
    expect(fromQuantities(podEvaluator.usage(p, NOW))).toEqual({
      "count/pods": "1",
      cpu: "350m",
      "limits.cpu": "200m",
      "limits.memory": "128Mi",
      memory: "64Mi",
      pods: "1",
      "requests.cpu": "350m",
      "requests.memory": "64Mi",
    });
  });

  it("takes the largest init container when it exceeds the containers' sum, and adds sidecars", () => {
    const spec = {
      containers: [{ name: "a", resources: { requests: { cpu: "100m" } } }],
      initContainers: [
        { name: "init", resources: { requests: { cpu: "1" } } },
        { name: "sidecar", restartPolicy: "Always", resources: { requests: { cpu: "50m" } } },
      ],
    };
    expect(podResourceTotals(spec, "requests").get("cpu")?.toString()).toBe("1");
    const small = { ...spec, initContainers: [{ name: "sidecar", restartPolicy: "Always", resources: { requests: { cpu: "50m" } } }] };
    expect(podResourceTotals(small, "requests").get("cpu")?.toString()).toBe("150m");
  });

  it("does not charge compute for terminal pods or pods past their deletion grace, but still counts them", () => {
    const done = pod("p", [{ requests: { cpu: "1" } }], {}, { phase: "Succeeded" });
    expect(fromQuantities(podEvaluator.usage(done, NOW))).toEqual({ "count/pods": "1" });
    const stuck = pod("s", [{}]);
    stuck.metadata.deletionTimestamp = new Date(NOW.getTime() - 60_000).toISOString();
    stuck.metadata.deletionGracePeriodSeconds = 30;
    expect(podEvaluator.usage(stuck, NOW).has("pods")).toBe(false);
  });

  it("matches scopes: BestEffort, NotTerminating, PriorityClass In", () => {
    const be = pod("be", [{}]);
    const burst = pod("b", [{ requests: { cpu: "1" } }], { activeDeadlineSeconds: 30, priorityClassName: "high" });
    const bestEffort = quota({ pods: "1" }, { scopes: ["BestEffort"] });
    expect(quotaMatches(podEvaluator, bestEffort, ["pods"], be)).toBe(true);
    expect(quotaMatches(podEvaluator, bestEffort, ["pods"], burst)).toBe(false);
    const notTerminating = quota({ pods: "1" }, { scopes: ["NotTerminating"] });
    expect(quotaMatches(podEvaluator, notTerminating, ["pods"], burst)).toBe(false);
    const high = quota({ pods: "1" }, { scopeSelector: { matchExpressions: [{ scopeName: "PriorityClass", operator: "In", values: ["high"] }] } });
    expect(quotaMatches(podEvaluator, high, ["pods"], burst)).toBe(true);
    expect(quotaMatches(podEvaluator, high, ["pods"], be)).toBe(false);
  });

  it("requires every container to declare cpu when a quota limits cpu", () => {
    const p = pod("p", [{ requests: { cpu: "1" } }, {}]);
    expect(podEvaluator.constraints(["requests.cpu", "pods"], p)).toBe("must specify requests.cpu for: c1");
    expect(podEvaluator.constraints(["pods"], p)).toBeUndefined();
  });

  it("does not match a quota that limits nothing pods use", () => {
    expect(quotaMatches(podEvaluator, quota({ services: "1" }), ["services"], pod("p", [{}]))).toBe(false);
  });
});

describe("services, claims and object counts", () => {
  it("a LoadBalancer charges a load balancer and a node port per port", () => {
    const svc: KubeObject = { apiVersion: "v1", kind: "Service", metadata: { name: "s" }, spec: { type: "LoadBalancer", ports: [{ port: 80 }, { port: 443 }] } };
    expect(fromQuantities(serviceUsage(svc))).toEqual({ "count/services": "1", services: "1", "services.loadbalancers": "1", "services.nodeports": "2" });
  });

  it("a claim charges its storage request, also per storage class", () => {
    const pvc: KubeObject = { apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name: "c" }, spec: { storageClassName: "gp3", resources: { requests: { storage: "10Gi" } } } };
    expect(fromQuantities(pvcUsage(pvc))).toEqual({
      "count/persistentvolumeclaims": "1",
      "gp3.storageclass.storage.k8s.io/persistentvolumeclaims": "1",
      "gp3.storageclass.storage.k8s.io/requests.storage": "10Gi",
      persistentvolumeclaims: "1",
      "requests.storage": "10Gi",
    });
  });

  it("other resources count objects as count/<resource>.<group>, configmaps also under their legacy name", () => {
    expect(fromQuantities(quotaEvaluatorFor("apps", "deployments").usage({ metadata: {} }, NOW))).toEqual({ "count/deployments.apps": "1" });
    expect(fromQuantities(quotaEvaluatorFor("", "configmaps").usage({ metadata: {} }, NOW))).toEqual({ configmaps: "1", "count/configmaps": "1" });
    expect(quotaEvaluatorFor("", "configmaps").handles("UPDATE")).toBe(false);
  });

  it("calculateUsage sums the matching objects of a namespace, starting each limited name at zero", () => {
    const pods = [pod("a", [{ requests: { cpu: "100m" } }]), pod("b", [{ requests: { cpu: "200m" } }]), pod("c", [{}], {}, { phase: "Failed" })];
    const used = calculateUsage(podEvaluator, quota({ pods: "5", "requests.cpu": "1", "requests.memory": "1Gi" }), ["pods", "requests.cpu", "requests.memory"], pods, NOW);
    expect(fromQuantities(used)).toEqual({ pods: "2", "requests.cpu": "300m", "requests.memory": "0" });
  });
});
