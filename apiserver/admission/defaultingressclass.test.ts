// DefaultIngressClass admission: class-less Ingresses get the default class (the newest of several),
// Ingresses naming a class or carrying the legacy annotation are left alone.

import { describe, expect, it } from "vitest";
import { findResource, type Ingress, type IngressClass, type ResourceInfo } from "../../api/index.ts";
import { DefaultIngressClass, defaultIngressClass } from "./defaultingressclass.ts";
import type { AdmissionAttributes } from "./index.ts";

const ingressInfo = findResource("networking.k8s.io", "v1", "ingresses") as ResourceInfo;

function ingressClass(name: string, created: string, isDefault: boolean): IngressClass {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "IngressClass",
    metadata: { name, creationTimestamp: created, annotations: isDefault ? { "ingressclass.kubernetes.io/is-default-class": "true" } : {} },
    spec: { controller: `example.com/${name}` },
  };
}

function ingress(spec: Ingress["spec"] = {}, annotations?: Record<string, string>): Ingress {
  return { apiVersion: "networking.k8s.io/v1", kind: "Ingress", metadata: { name: "web", namespace: "default", annotations }, spec };
}

function admit(classes: IngressClass[], obj: Ingress, operation: "CREATE" | "UPDATE" = "CREATE"): Ingress {
  const a: AdmissionAttributes = { operation, info: ingressInfo, namespace: "default", name: "web", object: obj, dryRun: false };
  new DefaultIngressClass(() => classes).admit(a);
  return a.object as Ingress;
}

describe("DefaultIngressClass", () => {
  it("sets the default class on an Ingress created without one", () => {
    const got = admit([ingressClass("other", "2024-01-01T00:00:00Z", false), ingressClass("kubelab", "2024-01-02T00:00:00Z", true)], ingress());
    expect(got.spec?.ingressClassName).toBe("kubelab");
  });

  it("picks the newest default when several classes are marked default, ties by name", () => {
    const classes = [ingressClass("old", "2024-01-01T00:00:00Z", true), ingressClass("new", "2024-03-01T00:00:00Z", true), ingressClass("mid", "2024-02-01T00:00:00Z", true)];
    expect(admit(classes, ingress()).spec?.ingressClassName).toBe("new");
    const tie = [ingressClass("b", "2024-01-01T00:00:00Z", true), ingressClass("a", "2024-01-01T00:00:00Z", true)];
    expect(defaultIngressClass(tie)?.metadata.name).toBe("a");
  });

  it("leaves an Ingress alone when it names a class, carries the legacy annotation, or there is no default", () => {
    const classes = [ingressClass("kubelab", "2024-01-02T00:00:00Z", true)];
    expect(admit(classes, ingress({ ingressClassName: "mine" })).spec?.ingressClassName).toBe("mine");
    expect(admit(classes, ingress({}, { "kubernetes.io/ingress.class": "nginx" })).spec?.ingressClassName).toBeUndefined();
    expect(admit([ingressClass("kubelab", "2024-01-02T00:00:00Z", false)], ingress()).spec?.ingressClassName).toBeUndefined();
  });

  it("does not default on update (the class of an existing Ingress is its own business)", () => {
    expect(admit([ingressClass("kubelab", "2024-01-02T00:00:00Z", true)], ingress(), "UPDATE").spec?.ingressClassName).toBeUndefined();
  });
});
