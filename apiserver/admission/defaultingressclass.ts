// The DefaultIngressClass admission plugin (plugin/pkg/admission/network/defaultingressclass): an
// Ingress created without a class gets the cluster's default IngressClass, the one annotated
// ingressclass.kubernetes.io/is-default-class: "true"; with several defaults the newest wins (1.28+).

import { IngressClassDefaultAnnotation, type Ingress, type IngressClass } from "../../api/index.ts";
import type { AdmissionAttributes, MutatingPlugin } from "./index.ts";

/** The legacy class annotation; an Ingress carrying it is left alone, as upstream. */
export const LEGACY_INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class";

/** Where the plugin reads the IngressClasses (the apiserver's watch cache). */
export type IngressClassSource = () => readonly IngressClass[];

export class DefaultIngressClass implements MutatingPlugin {
  readonly name = "DefaultIngressClass";

  constructor(private readonly source: IngressClassSource) {}

  admit(a: AdmissionAttributes): void {
    if (a.operation !== "CREATE" || a.subresource) return;
    if (a.info.group !== "networking.k8s.io" || a.info.resource !== "ingresses") return;
    const ing = a.object as Ingress;
    if (ing.spec?.ingressClassName) return;
    if (ing.metadata.annotations?.[LEGACY_INGRESS_CLASS_ANNOTATION] !== undefined) return;
    const def = defaultIngressClass(this.source());
    if (!def?.metadata.name) return;
    ing.spec = { ...(ing.spec ?? {}), ingressClassName: def.metadata.name };
  }
}

/** The default class: annotated "true"; the newest by creationTimestamp, ties by name (upstream's sort). */
export function defaultIngressClass(classes: readonly IngressClass[]): IngressClass | undefined {
  const defaults = classes.filter((c) => c.metadata.annotations?.[IngressClassDefaultAnnotation] === "true");
  defaults.sort((x, y) => {
    const tx = Date.parse(x.metadata.creationTimestamp ?? "") || 0;
    const ty = Date.parse(y.metadata.creationTimestamp ?? "") || 0;
    if (tx === ty) return (x.metadata.name ?? "") < (y.metadata.name ?? "") ? -1 : 1;
    return ty - tx;
  });
  return defaults[0];
}
