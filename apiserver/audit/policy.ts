// The audit Policy (audit.k8s.io/v1, --audit-policy-file): reading, checking and evaluating it, as
// k8s.io/apiserver/pkg/audit/policy (reader.go, checker.go) and pkg/apis/audit/validation do.

import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import type { Attributes } from "../authorization/types.ts";
import { isDNS1123Subdomain } from "../../api/validation/names.ts";
import { formatFieldErrors, invalid, notSupported, required, type FieldError } from "../../api/validation/field.ts";

/** How much of a request an event records; each level includes the ones before it. */
export type Level = "None" | "Metadata" | "Request" | "RequestResponse";
export const LEVELS: readonly Level[] = ["None", "Metadata", "Request", "RequestResponse"];

/** The points in a request's life at which an event is written. */
export type Stage = "RequestReceived" | "ResponseStarted" | "ResponseComplete" | "Panic";
export const STAGES: readonly Stage[] = ["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"];

/** Level.Less: whether `a` records less than `b`. */
export function levelLess(a: Level, b: Level): boolean {
  return LEVELS.indexOf(a) < LEVELS.indexOf(b);
}

export interface GroupResources {
  /** The API group; "" is the core group, "*" any group. */
  group?: string;
  // "pods", "pods/log" (one subresource), "*/status" (that subresource of any resource), "pods/*"
  // (pods and every subresource of it), "*". Empty: every resource of the group.
  resources?: string[];
  /** Object names; needs resources. Empty: any name. */
  resourceNames?: string[];
}

export interface PolicyRule {
  level: Level;
  users?: string[];
  userGroups?: string[];
  verbs?: string[];
  resources?: GroupResources[];
  /** "" matches non-namespaced resources. */
  namespaces?: string[];
  // "/healthz", "/apis/*" (a trailing * is a prefix match), "*".
  nonResourceURLs?: string[];
  omitStages?: Stage[];
  /** Absent: the policy's omitManagedFields. */
  omitManagedFields?: boolean;
}

export interface Policy {
  apiVersion: "audit.k8s.io/v1";
  kind: "Policy";
  metadata?: Record<string, unknown>;
  rules: PolicyRule[];
  omitStages?: Stage[];
  omitManagedFields?: boolean;
}

/** What the policy decides for one request (upstream's RequestAuditConfig). */
export interface RequestAuditConfig {
  level: Level;
  omitStages: readonly Stage[];
  omitManagedFields: boolean;
}

/** The request attributes a rule looks at: the authorizer's, with no user for a failed authentication. */
export type PolicyAttributes = Omit<Attributes, "user"> & { user?: Attributes["user"] };

/** The error a bad policy file gives; its message is one line, fit for the CLI to print as is. */
export class AuditPolicyError extends Error {
  override readonly name = "AuditPolicyError";
  readonly code = "AuditPolicyInvalid";
}

const POLICY_FIELDS = new Set(["apiVersion", "kind", "metadata", "rules", "omitStages", "omitManagedFields"]);
const RULE_FIELDS = new Set(["level", "users", "userGroups", "verbs", "resources", "namespaces", "nonResourceURLs", "omitStages", "omitManagedFields"]);
const GROUP_RESOURCE_FIELDS = new Set(["group", "resources", "resourceNames"]);

/** Reads --audit-policy-file. Throws AuditPolicyError naming the file and the field. */
export function loadPolicyFile(path: string): { policy: Policy; warnings: string[] } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new AuditPolicyError(`audit policy ${path}: failed to read file: ${(e as Error).message}`);
  }
  try {
    return parsePolicy(text);
  } catch (e) {
    if ((e as { name?: string }).name === "AuditPolicyError") throw new AuditPolicyError(`audit policy ${path}: ${(e as Error).message}`);
    throw e;
  }
}

/**
 * Parses a Policy from YAML or JSON (JSON is YAML). As upstream's strict-then-lenient decoding,
 * an unknown field is not an error but a warning (returned, for the caller to log); a field of the
 * wrong type, a bad level or stage, or a policy without rules is an error.
 */
export function parsePolicy(text: string): { policy: Policy; warnings: string[] } {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new AuditPolicyError(`failed decoding: ${firstLine((e as Error).message)}`);
  }
  if (!isRecord(doc)) throw new AuditPolicyError("failed decoding: the policy must be an object (apiVersion: audit.k8s.io/v1, kind: Policy)");
  const warnings: string[] = [];
  const errs: FieldError[] = [];
  if (doc.apiVersion === undefined || doc.apiVersion === "") errs.push(required("apiVersion"));
  else if (doc.apiVersion !== "audit.k8s.io/v1") errs.push(notSupported("apiVersion", doc.apiVersion, ["audit.k8s.io/v1"]));
  if (doc.kind === undefined || doc.kind === "") errs.push(required("kind"));
  else if (doc.kind !== "Policy") errs.push(notSupported("kind", doc.kind, ["Policy"]));
  if (errs.length) throw new AuditPolicyError(formatFieldErrors(errs));
  unknownFields(doc, POLICY_FIELDS, "", warnings);

  const policy: Policy = { apiVersion: "audit.k8s.io/v1", kind: "Policy", rules: [] };
  if (doc.metadata !== undefined) {
    if (!isRecord(doc.metadata)) errs.push(invalid("metadata", doc.metadata, "must be an object"));
    else policy.metadata = doc.metadata;
  }
  const omit = stages(doc.omitStages, "omitStages", errs);
  if (omit) policy.omitStages = omit;
  const omf = bool(doc.omitManagedFields, "omitManagedFields", errs);
  if (omf !== undefined) policy.omitManagedFields = omf;
  if (doc.rules !== undefined && doc.rules !== null && !Array.isArray(doc.rules)) errs.push(invalid("rules", doc.rules, "must be a list of rules"));
  const rules = Array.isArray(doc.rules) ? doc.rules : [];
  rules.forEach((r: unknown, i: number) => {
    const rule = parseRule(r, `rules[${i}]`, errs, warnings);
    if (rule) policy.rules.push(rule);
  });
  if (errs.length) throw new AuditPolicyError(formatFieldErrors(errs));
  if (policy.rules.length === 0) throw new AuditPolicyError("loaded illegal policy with 0 rules");
  return { policy, warnings };
}

function parseRule(r: unknown, path: string, errs: FieldError[], warnings: string[]): PolicyRule | undefined {
  if (!isRecord(r)) {
    errs.push(invalid(path, r, "must be an object"));
    return undefined;
  }
  unknownFields(r, RULE_FIELDS, path, warnings);
  const rule = { level: r.level } as PolicyRule;
  if (r.level === undefined || r.level === null || r.level === "") errs.push(required(`${path}.level`));
  else if (typeof r.level !== "string" || !LEVELS.includes(r.level as Level)) errs.push(notSupported(`${path}.level`, r.level, LEVELS));
  for (const f of ["users", "userGroups", "verbs", "namespaces", "nonResourceURLs"] as const) {
    const v = strings(r[f], `${path}.${f}`, errs);
    if (v) rule[f] = v;
  }
  rule.nonResourceURLs?.forEach((url, i) => {
    if (url === "*") return;
    const p = `${path}.nonResourceURLs[${i}]`;
    if (!url.startsWith("/")) errs.push(invalid(p, url, "non-resource URL rules must begin with a '/' character"));
    if (url !== "" && url.slice(0, -1).includes("*")) errs.push(invalid(p, url, "non-resource URL wildcards '*' must be the final character of the rule"));
  });
  if (r.resources !== undefined && r.resources !== null) {
    if (!Array.isArray(r.resources)) errs.push(invalid(`${path}.resources`, r.resources, "must be a list of group resources"));
    else {
      rule.resources = [];
      r.resources.forEach((gr: unknown, i: number) => {
        const p = `${path}.resources`;
        if (!isRecord(gr)) {
          errs.push(invalid(`${p}[${i}]`, gr, "must be an object"));
          return;
        }
        unknownFields(gr, GROUP_RESOURCE_FIELDS, `${p}[${i}]`, warnings);
        const out: GroupResources = {};
        if (gr.group !== undefined && gr.group !== null) {
          // Upstream's paths here name the list, not the item (fldPath.Child("group") on "resources").
          if (typeof gr.group !== "string") errs.push(invalid(`${p}.group`, gr.group, "must be a string"));
          else {
            out.group = gr.group;
            if (gr.group !== "" && gr.group !== "*") {
              const msgs = isDNS1123Subdomain(gr.group);
              if (msgs.length) errs.push(invalid(`${p}.group`, gr.group, msgs.join(",")));
            }
          }
        }
        const res = strings(gr.resources, `${p}[${i}].resources`, errs);
        if (res) out.resources = res;
        const names = strings(gr.resourceNames, `${p}[${i}].resourceNames`, errs);
        if (names) out.resourceNames = names;
        if (names?.length && !res?.length) errs.push(invalid(`${p}.resourceNames`, names, "using resourceNames requires at least one resource"));
        rule.resources!.push(out);
      });
    }
  }
  const omit = stages(r.omitStages, `${path}.omitStages`, errs);
  if (omit) rule.omitStages = omit;
  const omf = bool(r.omitManagedFields, `${path}.omitManagedFields`, errs);
  if (omf !== undefined) rule.omitManagedFields = omf;
  if (rule.nonResourceURLs?.length && (rule.resources?.length || rule.namespaces?.length)) {
    errs.push(invalid(`${path}.nonResourceURLs`, rule.nonResourceURLs, "rules cannot apply to both regular resources and non-resource URLs"));
  }
  return rule;
}

function stages(v: unknown, path: string, errs: FieldError[]): Stage[] | undefined {
  const list = strings(v, path, errs);
  if (!list) return undefined;
  list.forEach((s, i) => {
    if (!STAGES.includes(s as Stage)) errs.push(invalid(`${path}[${i}]`, s, `allowed stages are ${STAGES.join(",")}`));
  });
  return list as Stage[];
}

function strings(v: unknown, path: string, errs: FieldError[]): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) {
    errs.push(invalid(path, v, "must be a list of strings"));
    return undefined;
  }
  const bad = v.findIndex((x) => typeof x !== "string");
  if (bad >= 0) {
    errs.push(invalid(`${path}[${bad}]`, v[bad], "must be a string"));
    return undefined;
  }
  return v as string[];
}

function bool(v: unknown, path: string, errs: FieldError[]): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") {
    errs.push(invalid(path, v, "must be a boolean"));
    return undefined;
  }
  return v;
}

function unknownFields(o: Record<string, unknown>, known: ReadonlySet<string>, path: string, warnings: string[]): void {
  for (const k of Object.keys(o)) if (!known.has(k)) warnings.push(`unknown field "${path ? `${path}.` : ""}${k}"`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function firstLine(s: string): string {
  return s.split("\n")[0]!.trim();
}

// ---- evaluation (checker.go) ----------------------------------------------------------------

/** A checked policy, ready to say what each request records. */
export class PolicyRuleEvaluator {
  private readonly rules: { rule: PolicyRule; config: RequestAuditConfig }[];
  private readonly fallback: RequestAuditConfig;

  constructor(policy: Policy) {
    const policyOmit = policy.omitStages ?? [];
    const policyOmf = policy.omitManagedFields ?? false;
    // As NewPolicyRuleEvaluator: a rule omits its own stages and the policy's.
    this.rules = policy.rules.map((rule) => ({
      rule,
      config: { level: rule.level, omitStages: [...new Set([...policyOmit, ...(rule.omitStages ?? [])])], omitManagedFields: rule.omitManagedFields ?? policyOmf },
    }));
    this.fallback = { level: "None", omitStages: policyOmit, omitManagedFields: policyOmf };
  }

  /** The first rule that matches decides; no rule matching is level None. */
  evaluate(attrs: PolicyAttributes): RequestAuditConfig {
    for (const r of this.rules) if (ruleMatches(r.rule, attrs)) return r.config;
    return this.fallback;
  }
}

export function ruleMatches(r: PolicyRule, a: PolicyAttributes): boolean {
  if (r.users?.length && (!a.user || !r.users.includes(a.user.name))) return false;
  if (r.userGroups?.length && (!a.user || !a.user.groups.some((g) => r.userGroups!.includes(g)))) return false;
  if (r.verbs?.length && !r.verbs.includes(a.verb)) return false;
  if (r.namespaces?.length || r.resources?.length) return ruleMatchesResource(r, a);
  if (r.nonResourceURLs?.length) return !a.isResourceRequest && r.nonResourceURLs.some((spec) => pathMatches(a.path, spec));
  return true;
}

function pathMatches(path: string, spec: string): boolean {
  if (spec === "*" || spec === path) return true;
  // strings.TrimRight(spec, "*"): every trailing star goes.
  return spec.endsWith("*") && path.startsWith(spec.replace(/\*+$/, ""));
}

function ruleMatchesResource(r: PolicyRule, a: PolicyAttributes): boolean {
  if (!a.isResourceRequest) return false;
  // Non-namespaced resources have the namespace "".
  if (r.namespaces?.length && !r.namespaces.includes(a.namespace)) return false;
  if (!r.resources?.length) return true;
  const combined = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  for (const gr of r.resources) {
    const group = gr.group ?? "";
    if (group !== a.apiGroup && group !== "*") continue;
    if (!gr.resources?.length) return true;
    if (gr.resourceNames?.length && !gr.resourceNames.includes(a.name)) continue;
    for (const res of gr.resources) {
      if (res === combined || res === "*") return true;
      if (a.subresource && res.startsWith("*/") && res.slice(2) === a.subresource) return true;
      if (res.endsWith("/*") && res.slice(0, -2) === a.resource) return true;
    }
  }
  return false;
}
