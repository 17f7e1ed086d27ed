// Field selectors ("spec.nodeName=n1,status.phase!=Running") and the selectable fields of each
// kind — k8s.io/apimachinery/pkg/fields plus each registry's GetAttrs/ToSelectableFields.

import type { KubeObject } from "./meta.ts";
import type { ResourceInfo } from "./resources.ts";
import { SelectorError } from "./labels.ts";

export type FieldOperator = "=" | "==" | "!=";

export interface FieldRequirement {
  field: string;
  operator: FieldOperator;
  /** Unescaped value. */
  value: string;
}

/** A parsed field query: an AND of equality / inequality terms. */
export interface FieldSelector {
  /** Missing fields compare as "" (fields.Set.Get). */
  matches(fields: Record<string, string>): boolean;
  requirements(): FieldRequirement[];
  /** True when there are no terms (matches everything). */
  empty(): boolean;
  /** Canonical form: terms sorted, values escaped. */
  toString(): string;
}

/** fields.EscapeValue: "\" "," "=" are backslash-escaped. */
export function escapeFieldValue(s: string): string {
  return s.replace(/[\\,=]/g, (c) => `\\${c}`);
}

/** fields.UnescapeValue; throws SelectorError on a bad escape or an unescaped "," or "=". */
export function unescapeFieldValue(s: string): string {
  if (!/[\\,=]/.test(s)) return s;
  let out = "";
  let inSlash = false;
  for (const c of s) {
    if (inSlash) {
      if (c === "\\" || c === "," || c === "=") out += c;
      else throw new SelectorError(`invalid field selector: invalid escape sequence: \\${c}`);
      inSlash = false;
      continue;
    }
    if (c === "\\") inSlash = true;
    else if (c === "," || c === "=") throw new SelectorError(`invalid field selector: unescaped character in value: ${c}`);
    else out += c;
  }
  if (inSlash) throw new SelectorError("invalid field selector: invalid escape sequence: \\");
  return out;
}

/** Splits on commas not preceded by an escaping backslash (fields.splitTerms). */
function splitTerms(s: string): string[] {
  if (s === "") return [];
  const terms: string[] = [];
  let start = 0;
  let inSlash = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (inSlash) inSlash = false;
    else if (c === "\\") inSlash = true;
    else if (c === ",") {
      terms.push(s.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(s.slice(start));
  return terms;
}

const TERM_OPERATORS: readonly FieldOperator[] = ["!=", "==", "="];

/** Splits one term at its first operator (fields.splitTerm). */
function splitTerm(term: string): { lhs: string; op: FieldOperator; rhs: string } | undefined {
  for (let i = 0; i < term.length; i++) {
    for (const op of TERM_OPERATORS) {
      if (term.startsWith(op, i)) return { lhs: term.slice(0, i), op, rhs: term.slice(i + op.length) };
    }
  }
  return undefined;
}

class AndSelector implements FieldSelector {
  private readonly reqs: readonly FieldRequirement[];
  constructor(reqs: FieldRequirement[]) {
    this.reqs = reqs;
  }
  matches(fields: Record<string, string>): boolean {
    return this.reqs.every((r) => {
      const v = Object.prototype.hasOwnProperty.call(fields, r.field) ? fields[r.field] : "";
      return r.operator === "!=" ? v !== r.value : v === r.value;
    });
  }
  requirements(): FieldRequirement[] {
    return this.reqs.map((r) => ({ ...r }));
  }
  empty(): boolean {
    return this.reqs.length === 0;
  }
  toString(): string {
    return this.reqs.map((r) => `${r.field}${r.operator === "!=" ? "!=" : "="}${escapeFieldValue(r.value)}`).join(",");
  }
}

/**
 * fields.ParseSelector: comma-separated `field=value`, `field==value`, `field!=value`; values may
 * escape `\,` `\=` `\\`. "" selects everything. Throws SelectorError
 * ("invalid selector: 'x'; can't understand 'y'") on a term without an operator.
 */
export function parseFieldSelector(s: string): FieldSelector {
  const parts = splitTerms(s).sort();
  const reqs: FieldRequirement[] = [];
  for (const part of parts) {
    if (part === "") continue;
    const t = splitTerm(part);
    if (!t) throw new SelectorError(`invalid selector: '${s}'; can't understand '${part}'`);
    reqs.push({ field: t.lhs, operator: t.op, value: unescapeFieldValue(t.rhs) });
  }
  return new AndSelector(reqs);
}

/** A selector that requires each field to equal the given value (fields.SelectorFromSet). */
export function fieldSelectorFromSet(fields: Record<string, string>): FieldSelector {
  return new AndSelector(
    Object.keys(fields)
      .sort()
      .map((f) => ({ field: f, operator: "=" as const, value: fields[f] })),
  );
}

// ---------------------------------------------------------------------------------------------
// Selectable fields per kind

const COMMON = ["metadata.name", "metadata.namespace"];

const KIND_FIELDS: Readonly<Record<string, readonly string[]>> = {
  "/Pod": [
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
  ],
  "/Event": [
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
  ],
  "/Secret": ["type"],
  "/Namespace": ["status.phase"],
  "/Node": ["spec.unschedulable"],
  "/Service": ["spec.clusterIP", "spec.type"],
  "apps/ReplicaSet": ["status.replicas"],
  "batch/Job": ["status.successful"],
};

function kindKey(info: Pick<ResourceInfo, "group" | "kind">): string {
  return `${info.group}/${info.kind}`;
}

/** The field labels `?fieldSelector=` accepts for the resource. */
export function supportedFieldLabels(info: ResourceInfo): string[] {
  return [...COMMON, ...(KIND_FIELDS[kindKey(info)] ?? [])];
}

/**
 * Throws SelectorError `field label not supported: <label>` when the selector uses a field the
 * resource does not expose (the apiserver's field label conversion).
 */
export function validateFieldSelector(sel: FieldSelector, info: ResourceInfo): void {
  const ok = new Set(supportedFieldLabels(info));
  for (const r of sel.requirements()) {
    if (!ok.has(r.field)) throw new SelectorError(`field label not supported: ${r.field}`);
  }
}

function rec(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function str(v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return "";
}

/** A bool field as Kubernetes renders it for selection: "true" or "false" (absent is false). */
function bool(v: unknown): string {
  return v === true ? "true" : "false";
}

/** A number field rendered for selection (absent is 0). */
function num(v: unknown): string {
  return typeof v === "number" ? String(v) : "0";
}

/**
 * The selectable fields of an object: metadata.name and metadata.namespace for every kind, plus
 * the kind's own (pods: spec.nodeName, status.phase, …; events: involvedObject.*, reason, …).
 */
export function objectFields(obj: KubeObject, info: ResourceInfo): Record<string, string> {
  const out: Record<string, string> = {
    "metadata.name": str(obj.metadata?.name),
    "metadata.namespace": str(obj.metadata?.namespace),
  };
  const spec = rec(obj.spec);
  const status = rec(obj.status);
  switch (kindKey(info)) {
    case "/Pod":
      out["spec.nodeName"] = str(spec.nodeName);
      out["spec.restartPolicy"] = str(spec.restartPolicy);
      out["spec.schedulerName"] = str(spec.schedulerName);
      out["spec.serviceAccountName"] = str(spec.serviceAccountName);
      out["spec.hostNetwork"] = bool(spec.hostNetwork);
      out["status.phase"] = str(status.phase);
      out["status.podIP"] = str(status.podIP);
      out["status.nominatedNodeName"] = str(status.nominatedNodeName);
      break;
    case "/Event": {
      const io = rec(obj.involvedObject);
      for (const f of ["kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"]) {
        out[`involvedObject.${f}`] = str(io[f]);
      }
      out.reason = str(obj.reason);
      out.reportingComponent = str(obj.reportingComponent);
      out.source = str(rec(obj.source).component);
      out.type = str(obj.type);
      break;
    }
    case "/Secret":
      out.type = str(obj.type);
      break;
    case "/Namespace":
      out["status.phase"] = str(status.phase);
      break;
    case "/Node":
      out["spec.unschedulable"] = bool(spec.unschedulable);
      break;
    case "/Service":
      out["spec.clusterIP"] = str(spec.clusterIP);
      out["spec.type"] = str(spec.type);
      break;
    case "apps/ReplicaSet":
      out["status.replicas"] = num(status.replicas);
      break;
    case "batch/Job":
      out["status.successful"] = num(status.succeeded);
      break;
  }
  return out;
}
