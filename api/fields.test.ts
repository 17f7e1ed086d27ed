import { describe, expect, it } from "vitest";
import { objectFields, parseFieldSelector, supportedFieldLabels, validateFieldSelector } from "./fields.ts";
import { SelectorError } from "./labels.ts";
import { findKind } from "./resources.ts";
import type { KubeObject } from "./meta.ts";

const pods = findKind("v1", "Pod")!;
const events = findKind("v1", "Event")!;
const nodes = findKind("v1", "Node")!;

describe("parseFieldSelector", () => {
  const cases: { name: string; selector: string; fields: Record<string, string>; want: boolean }[] = [
    { name: "an equality term matches the field value", selector: "spec.nodeName=n1", fields: { "spec.nodeName": "n1" }, want: true },
    { name: "a double-equals term behaves like equals", selector: "spec.nodeName==n1", fields: { "spec.nodeName": "n2" }, want: false },
    { name: "an inequality term excludes the value", selector: "status.phase!=Running", fields: { "status.phase": "Running" }, want: false },
    { name: "a missing field compares as the empty string", selector: "spec.nodeName=", fields: {}, want: true },
    { name: "terms are ANDed", selector: "a=1,b=2", fields: { a: "1", b: "3" }, want: false },
    { name: "escaped commas and equals are part of the value", selector: "a=x\\,y\\=z\\\\", fields: { a: "x,y=z\\" }, want: true },
    { name: "the empty selector matches everything", selector: "", fields: { a: "1" }, want: true },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(parseFieldSelector(c.selector).matches(c.fields)).toBe(c.want);
    });
  }

  it("lists requirements with unescaped values", () => {
    expect(parseFieldSelector("b!=2,a=x\\,y").requirements()).toEqual([
      { field: "a", operator: "=", value: "x,y" },
      { field: "b", operator: "!=", value: "2" },
    ]);
    expect(parseFieldSelector("").empty()).toBe(true);
  });

  it("prints a canonical, escaped form", () => {
    expect(parseFieldSelector("b==2,a=x\\,y").toString()).toBe("a=x\\,y,b=2");
  });

  const errors = [
    { name: "a term without an operator cannot be understood", in: "a", want: "invalid selector: 'a'; can't understand 'a'" },
    { name: "an unknown escape sequence is rejected", in: "a=\\x", want: "invalid field selector: invalid escape sequence: \\x" },
    { name: "a trailing backslash is rejected", in: "a=b\\", want: "invalid field selector: invalid escape sequence: \\" },
    { name: "an unescaped equals sign in a value is rejected", in: "a=b=c", want: "invalid field selector: unescaped character in value: =" },
  ];
  for (const c of errors) {
    it(c.name, () => {
      expect(() => parseFieldSelector(c.in)).toThrow(SelectorError);
      expect(() => parseFieldSelector(c.in)).toThrow(c.want);
    });
  }
});

describe("validateFieldSelector", () => {
  it("accepts the fields the resource supports", () => {
    expect(() => validateFieldSelector(parseFieldSelector("spec.nodeName=n1,metadata.name=x"), pods)).not.toThrow();
  });
  it("rejects an unsupported field with Kubernetes' message", () => {
    expect(() => validateFieldSelector(parseFieldSelector("spec.nodeName=n1"), nodes)).toThrow("field label not supported: spec.nodeName");
  });
  it("lists pod fields kubectl and the kubelet select on", () => {
    expect(supportedFieldLabels(pods)).toEqual(expect.arrayContaining(["metadata.name", "spec.nodeName", "status.phase", "spec.schedulerName"]));
  });
});

describe("objectFields", () => {
  it("gives a pod's node, phase and scheduler", () => {
    const pod: KubeObject = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p", namespace: "default" },
      spec: { nodeName: "n1", schedulerName: "default-scheduler", restartPolicy: "Always" },
      status: { phase: "Running", podIP: "127.1.0.5" },
    };
    expect(objectFields(pod, pods)).toMatchObject({
      "metadata.name": "p",
      "metadata.namespace": "default",
      "spec.nodeName": "n1",
      "spec.restartPolicy": "Always",
      "status.phase": "Running",
      "status.podIP": "127.1.0.5",
      "status.nominatedNodeName": "",
    });
  });
  it("gives an event's involved object, reason, source and type", () => {
    const ev: KubeObject = {
      metadata: { name: "e", namespace: "ns" },
      involvedObject: { kind: "Pod", name: "p", namespace: "ns", uid: "u1" },
      reason: "Scheduled",
      source: { component: "default-scheduler" },
      type: "Normal",
    };
    const f = objectFields(ev, events);
    expect(f["involvedObject.kind"]).toBe("Pod");
    expect(f["involvedObject.uid"]).toBe("u1");
    expect(f.source).toBe("default-scheduler");
    expect(parseFieldSelector("involvedObject.name=p,type=Normal").matches(f)).toBe(true);
  });
  it("renders booleans and numbers as strings", () => {
    expect(objectFields({ metadata: { name: "n" }, spec: { unschedulable: true } }, nodes)["spec.unschedulable"]).toBe("true");
    expect(objectFields({ metadata: { name: "n" } }, nodes)["spec.unschedulable"]).toBe("false");
    expect(objectFields({ metadata: { name: "j" }, status: { succeeded: 2 } }, findKind("batch/v1", "Job")!)["status.successful"]).toBe("2");
  });
});
