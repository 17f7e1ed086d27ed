// Validation of ObjectMeta, labels, annotations, owner references and label selectors
// (apimachinery's metav1validation and apimachinery/pkg/api/validation).

import type { FieldError } from "./field.ts";
import { child, forbidden, index, invalid, key, notSupported, required, tooLong } from "./field.ts";
import { isDNS1035Label, isDNS1123Label, isDNS1123Subdomain, isQualifiedName, isValidLabelValue } from "./names.ts";
import { arr, isRec, rec, str, type Rec } from "./util.ts";

/** A name validator: messages for an invalid name; `prefix` is true for generateName. */
export type NameValidator = (name: string, prefix: boolean) => string[];

/** generateName may end in "-": validate it as if a suffix followed. */
function maskTrailingDash(name: string): string {
  return name.length > 1 && name.endsWith("-") ? `${name.slice(0, -2)}a` : name;
}

export const nameIsDNSSubdomain: NameValidator = (name, prefix) => isDNS1123Subdomain(prefix ? maskTrailingDash(name) : name);
export const nameIsDNSLabel: NameValidator = (name, prefix) => isDNS1123Label(prefix ? maskTrailingDash(name) : name);
export const nameIsDNS1035Label: NameValidator = (name, prefix) => isDNS1035Label(prefix ? maskTrailingDash(name) : name);

/** metav1validation.ValidateLabelName. */
export function validateLabelName(name: string, fldPath: string): FieldError[] {
  return isQualifiedName(name).map((m) => invalid(fldPath, name, m));
}

/** metav1validation.ValidateLabels: keys are qualified names, values label values. */
export function validateLabels(labels: unknown, fldPath: string): FieldError[] {
  const errs: FieldError[] = [];
  if (labels === undefined || labels === null) return errs;
  if (!isRec(labels)) return [invalid(fldPath, labels, "must be a map of string keys to string values")];
  for (const [k, v] of Object.entries(labels)) {
    errs.push(...validateLabelName(k, fldPath));
    if (typeof v !== "string") {
      errs.push(invalid(key(fldPath, k), v, "must be a string"));
      continue;
    }
    for (const m of isValidLabelValue(v)) errs.push(invalid(fldPath, v, m));
  }
  return errs;
}

/** Total size of all annotation keys and values. */
export const TotalAnnotationSizeLimitB = 256 * 1024;

/** apimachinery ValidateAnnotations: keys are qualified names (case-insensitive), total ≤ 256 KiB. */
export function validateAnnotations(annotations: unknown, fldPath: string): FieldError[] {
  const errs: FieldError[] = [];
  if (annotations === undefined || annotations === null) return errs;
  if (!isRec(annotations)) return [invalid(fldPath, annotations, "must be a map of string keys to string values")];
  let size = 0;
  for (const [k, v] of Object.entries(annotations)) {
    for (const m of isQualifiedName(k.toLowerCase())) errs.push(invalid(fldPath, k, m));
    if (typeof v !== "string") {
      errs.push(invalid(key(fldPath, k), v, "must be a string"));
      continue;
    }
    size += Buffer.byteLength(k) + Buffer.byteLength(v);
  }
  if (size > TotalAnnotationSizeLimitB) errs.push(tooLong(fldPath, "", TotalAnnotationSizeLimitB));
  return errs;
}

/** ValidateOwnerReferences: each reference complete, at most one controller. */
export function validateOwnerReferences(refs: unknown, fldPath: string): FieldError[] {
  const errs: FieldError[] = [];
  if (refs === undefined || refs === null) return errs;
  if (!Array.isArray(refs)) return [invalid(fldPath, refs, "must be a list of owner references")];
  const controllers: string[] = [];
  refs.forEach((r: unknown, i: number) => {
    const ref = rec(r);
    const p = index(fldPath, i);
    const apiVersion = str(ref.apiVersion);
    const [group, version] = apiVersion.includes("/") ? apiVersion.split("/", 2) : ["", apiVersion];
    if (!version) errs.push(invalid(child(p, "apiVersion"), apiVersion, "version must not be empty"));
    if (!str(ref.kind)) errs.push(invalid(child(p, "kind"), str(ref.kind), "kind must not be empty"));
    if (!str(ref.name)) errs.push(invalid(child(p, "name"), str(ref.name), "name must not be empty"));
    if (!str(ref.uid)) errs.push(invalid(child(p, "uid"), str(ref.uid), "uid must not be empty"));
    if (group === "" && version === "v1" && ref.kind === "List") {
      errs.push(invalid(p, "List", "is not a valid owner reference kind"));
    }
    if (ref.controller === true) controllers.push(`${str(ref.kind)}/${str(ref.name)}`);
  });
  if (controllers.length > 1) {
    errs.push(
      invalid(
        fldPath,
        refs,
        `Only one reference can have Controller set to true. Found "true" in references for ${controllers.join(" and ")}`,
      ),
    );
  }
  return errs;
}

/** ValidateFinalizerName: a qualified name; without a "/" it must be a standard finalizer. */
const STANDARD_FINALIZERS = new Set(["kubernetes", "orphan", "foregroundDeletion"]);

export function validateFinalizers(finalizers: unknown, fldPath: string): FieldError[] {
  const errs: FieldError[] = [];
  if (finalizers === undefined || finalizers === null) return errs;
  if (!Array.isArray(finalizers)) return [invalid(fldPath, finalizers, "must be a list of strings")];
  let hasOrphan = false;
  let hasForeground = false;
  finalizers.forEach((f: unknown, i: number) => {
    const p = index(fldPath, i);
    if (typeof f !== "string") {
      errs.push(invalid(p, f, "must be a string"));
      return;
    }
    const msgs = isQualifiedName(f);
    for (const m of msgs) errs.push(invalid(p, f, m));
    if (msgs.length === 0 && !f.includes("/") && !STANDARD_FINALIZERS.has(f)) {
      errs.push(invalid(p, f, "name is neither a standard finalizer name nor is it fully qualified"));
    }
    if (f === "orphan") hasOrphan = true;
    if (f === "foregroundDeletion") hasForeground = true;
  });
  if (hasOrphan && hasForeground) {
    errs.push(invalid(fldPath, finalizers, "finalizer orphan and foregroundDeletion cannot be both set"));
  }
  return errs;
}

/**
 * apimachinery ValidateObjectMeta: name (or generateName) in the kind's format, namespace iff the
 * resource is namespaced, non-negative generation, labels, annotations, owners, finalizers.
 */
export function validateObjectMeta(
  meta: unknown,
  requiresNamespace: boolean,
  nameFn: NameValidator,
  fldPath = "metadata",
): FieldError[] {
  const errs: FieldError[] = [];
  if (!isRec(meta)) return [required(fldPath, "")];
  const m: Rec = meta;
  const name = m.name;
  const generateName = m.generateName;
  if (generateName !== undefined && generateName !== "") {
    if (typeof generateName !== "string") errs.push(invalid(child(fldPath, "generateName"), generateName, "must be a string"));
    else for (const msg of nameFn(generateName, true)) errs.push(invalid(child(fldPath, "generateName"), generateName, msg));
  }
  if (name === undefined || name === null || name === "") {
    if (!generateName) errs.push(required(child(fldPath, "name"), "name or generateName is required"));
  } else if (typeof name !== "string") {
    errs.push(invalid(child(fldPath, "name"), name, "must be a string"));
  } else {
    for (const msg of nameFn(name, false)) errs.push(invalid(child(fldPath, "name"), name, msg));
  }
  const ns = m.namespace;
  if (requiresNamespace) {
    if (ns === undefined || ns === null || ns === "") errs.push(required(child(fldPath, "namespace"), ""));
    else if (typeof ns !== "string") errs.push(invalid(child(fldPath, "namespace"), ns, "must be a string"));
    else for (const msg of isDNS1123Label(ns)) errs.push(invalid(child(fldPath, "namespace"), ns, msg));
  } else if (ns !== undefined && ns !== null && ns !== "") {
    errs.push(forbidden(child(fldPath, "namespace"), "not allowed on this type"));
  }
  if (m.generation !== undefined && (typeof m.generation !== "number" || m.generation < 0)) {
    errs.push(invalid(child(fldPath, "generation"), m.generation, "must be greater than or equal to 0"));
  }
  errs.push(...validateLabels(m.labels, child(fldPath, "labels")));
  errs.push(...validateAnnotations(m.annotations, child(fldPath, "annotations")));
  errs.push(...validateOwnerReferences(m.ownerReferences, child(fldPath, "ownerReferences")));
  errs.push(...validateFinalizers(m.finalizers, child(fldPath, "finalizers")));
  return errs;
}

/** ValidateImmutableField: `field is immutable` when the value changed. */
export function validateImmutableField(newVal: unknown, oldVal: unknown, fldPath: string, equal: (a: unknown, b: unknown) => boolean): FieldError[] {
  return equal(newVal, oldVal) ? [] : [invalid(fldPath, newVal, "field is immutable")];
}

/**
 * ValidateObjectMetaUpdate: name, namespace, uid and creationTimestamp never change; a deletion
 * timestamp once set cannot be cleared or moved; generation never decreases.
 */
export function validateObjectMetaUpdate(meta: unknown, oldMeta: unknown, fldPath = "metadata"): FieldError[] {
  const errs: FieldError[] = [];
  const m = rec(meta);
  const o = rec(oldMeta);
  const same = (a: unknown, b: unknown): boolean => (a ?? "") === (b ?? "");
  for (const f of ["name", "namespace", "uid", "creationTimestamp"]) {
    errs.push(...validateImmutableField(m[f] ?? "", o[f] ?? "", child(fldPath, f), same));
  }
  // The apiserver carries deletionTimestamp/deletionGracePeriodSeconds over on update (and may
  // shorten them on a second delete), so only clearing them is an error here.
  if (o.deletionTimestamp && !m.deletionTimestamp) {
    errs.push(invalid(child(fldPath, "deletionTimestamp"), null, "field is immutable; may only be changed via deletion"));
  }
  if (o.deletionTimestamp) {
    const oldFinalizers = new Set(arr(o.finalizers).map(str));
    const extra = arr(m.finalizers).map(str).filter((f) => !oldFinalizers.has(f));
    if (extra.length > 0) {
      errs.push(
        forbidden(
          child(fldPath, "finalizers"),
          `no new finalizers can be added if the object is being deleted, found new finalizers []string{${extra.map((f) => JSON.stringify(f)).join(", ")}}`,
        ),
      );
    }
  }
  if (typeof m.generation === "number" && typeof o.generation === "number" && m.generation < o.generation) {
    errs.push(invalid(child(fldPath, "generation"), m.generation, "must not be decremented"));
  }
  return errs;
}


/** metav1validation.ValidateLabelSelector. */
export function validateLabelSelector(sel: unknown, fldPath: string): FieldError[] {
  const errs: FieldError[] = [];
  if (sel === undefined || sel === null) return errs;
  if (!isRec(sel)) return [invalid(fldPath, sel, "must be a label selector object")];
  errs.push(...validateLabels(sel.matchLabels, child(fldPath, "matchLabels")));
  arr(sel.matchExpressions).forEach((e: unknown, i: number) => {
    const expr = rec(e);
    const p = index(child(fldPath, "matchExpressions"), i);
    const values = arr(expr.values);
    switch (expr.operator) {
      case "In":
      case "NotIn":
        if (values.length === 0) errs.push(required(child(p, "values"), "must be specified when `operator` is 'In' or 'NotIn'"));
        break;
      case "Exists":
      case "DoesNotExist":
        if (values.length > 0) errs.push(forbidden(child(p, "values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"));
        break;
      default:
        errs.push(invalid(child(p, "operator"), expr.operator, "not a valid selector operator"));
    }
    errs.push(...validateLabelName(str(expr.key), child(p, "key")));
    values.forEach((v, j) => {
      if (typeof v !== "string") errs.push(invalid(index(child(p, "values"), j), v, "must be a string"));
      else for (const msg of isValidLabelValue(v)) errs.push(invalid(index(child(p, "values"), j), v, msg));
    });
  });
  return errs;
}

/** Helper for enumerations: NotSupported unless value is one of valid. */
export function validateEnum(value: unknown, valid: readonly string[], fldPath: string, requiredIfEmpty = true): FieldError[] {
  if (value === undefined || value === null || value === "") return requiredIfEmpty ? [required(fldPath, "")] : [];
  return typeof value === "string" && valid.includes(value) ? [] : [notSupported(fldPath, value, valid)];
}

/** ValidateNonnegativeField. */
export function validateNonnegative(value: unknown, fldPath: string): FieldError[] {
  if (value === undefined || value === null) return [];
  if (typeof value !== "number" || !Number.isInteger(value)) return [invalid(fldPath, value, "must be an integer")];
  return value < 0 ? [invalid(fldPath, value, "must be greater than or equal to 0")] : [];
}

/** ValidatePositiveField-style check (> 0). */
export function validatePositive(value: unknown, fldPath: string): FieldError[] {
  if (value === undefined || value === null) return [];
  if (typeof value !== "number" || !Number.isInteger(value)) return [invalid(fldPath, value, "must be an integer")];
  return value <= 0 ? [invalid(fldPath, value, "must be greater than 0")] : [];
}
