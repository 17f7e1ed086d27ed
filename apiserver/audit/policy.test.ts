import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadPolicyFile, parsePolicy, PolicyRuleEvaluator, type PolicyAttributes } from "./policy.ts";

const HEAD = "apiVersion: audit.k8s.io/v1\nkind: Policy\n";

function errorOf(text: string): string {
  try {
    parsePolicy(text);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("no error");
}

function attrs(over: Partial<PolicyAttributes> = {}): PolicyAttributes {
  return {
    user: { name: "alice", uid: "u1", groups: ["dev", "system:authenticated"] },
    verb: "get",
    isResourceRequest: true,
    path: "/api/v1/namespaces/default/pods/p",
    apiGroup: "",
    apiVersion: "v1",
    resource: "pods",
    subresource: "",
    namespace: "default",
    name: "p",
    ...over,
  };
}

function level(policyYaml: string, a: PolicyAttributes): string {
  return new PolicyRuleEvaluator(parsePolicy(HEAD + policyYaml).policy).evaluate(a).level;
}

describe("parsing an audit policy", () => {
  it("names the rule and lists the levels for an unsupported level", () => {
    const text = HEAD + "rules:\n- level: None\n- level: Metadata\n- level: Verbose\n";
    expect(errorOf(text)).toBe('rules[2].level: Unsupported value: "Verbose": supported values: "None", "Metadata", "Request", "RequestResponse"');
  });

  it("prefixes the file's path when read from a file, on one line", () => {
    const dir = mkdtempSync(join(tmpdir(), "audit-policy-"));
    const p = join(dir, "policy.yaml");
    writeFileSync(p, HEAD + "rules:\n- level: Verbose\n");
    expect(() => loadPolicyFile(p)).toThrow(`audit policy ${p}: rules[0].level: Unsupported value: "Verbose": supported values: "None", "Metadata", "Request", "RequestResponse"`);
    expect(() => loadPolicyFile(join(dir, "missing.yaml"))).toThrow(/^audit policy .*missing\.yaml: failed to read file: ENOENT/);
  });

  it("requires a level, a known apiVersion and kind, and at least one rule", () => {
    expect(errorOf(HEAD + "rules:\n- users: [a]\n")).toBe("rules[0].level: Required value");
    expect(errorOf("apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules: [{level: None}]\n")).toBe(
      'apiVersion: Unsupported value: "audit.k8s.io/v1beta1": supported values: "audit.k8s.io/v1"',
    );
    expect(errorOf("apiVersion: audit.k8s.io/v1\nkind: Polcy\nrules: [{level: None}]\n")).toBe('kind: Unsupported value: "Polcy": supported values: "Policy"');
    expect(errorOf(HEAD + "rules: []\n")).toBe("loaded illegal policy with 0 rules");
  });

  it("checks stages, non-resource URLs, groups and resourceNames as upstream's validation", () => {
    expect(errorOf(HEAD + "omitStages: [RequestRecieved]\nrules: [{level: None}]\n")).toBe(
      'omitStages[0]: Invalid value: "RequestRecieved": allowed stages are RequestReceived,ResponseStarted,ResponseComplete,Panic',
    );
    expect(errorOf(HEAD + "rules:\n- level: None\n  nonResourceURLs: [healthz]\n")).toBe(
      `rules[0].nonResourceURLs[0]: Invalid value: "healthz": non-resource URL rules must begin with a '/' character`,
    );
    expect(errorOf(HEAD + "rules:\n- level: None\n  nonResourceURLs: ['/a*/b']\n")).toBe(
      `rules[0].nonResourceURLs[0]: Invalid value: "/a*/b": non-resource URL wildcards '*' must be the final character of the rule`,
    );
    expect(errorOf(HEAD + "rules:\n- level: None\n  nonResourceURLs: ['/x']\n  namespaces: [a]\n")).toBe(
      'rules[0].nonResourceURLs: Invalid value: []string{"/x"}: rules cannot apply to both regular resources and non-resource URLs',
    );
    expect(errorOf(HEAD + "rules:\n- level: None\n  resources: [{group: rbac.authorization.k8s.io/v1}]\n")).toMatch(
      /^rules\[0\]\.resources\.group: Invalid value: "rbac.authorization.k8s.io\/v1": a lowercase RFC 1123 subdomain/,
    );
    expect(errorOf(HEAD + "rules:\n- level: None\n  resources: [{group: '', resourceNames: [x]}]\n")).toBe(
      'rules[0].resources.resourceNames: Invalid value: []string{"x"}: using resourceNames requires at least one resource',
    );
  });

  it("reports every error at once, as an aggregate", () => {
    expect(errorOf(HEAD + "rules:\n- level: Loud\n- {}\n")).toBe(
      '[rules[0].level: Unsupported value: "Loud": supported values: "None", "Metadata", "Request", "RequestResponse", rules[1].level: Required value]',
    );
  });

  it("rejects a field of the wrong type, naming it", () => {
    expect(errorOf(HEAD + "rules:\n- level: None\n  users: alice\n")).toBe('rules[0].users: Invalid value: "alice": must be a list of strings');
    expect(errorOf(HEAD + "rules:\n- level: None\n  omitManagedFields: 'yes'\n")).toBe('rules[0].omitManagedFields: Invalid value: "yes": must be a boolean');
  });

  it("takes JSON, and warns (does not fail) on unknown fields as upstream's lenient decoding", () => {
    const { policy, warnings } = parsePolicy(JSON.stringify({ apiVersion: "audit.k8s.io/v1", kind: "Policy", rules: [{ level: "Metadata", omitStage: ["RequestReceived"] }] }));
    expect(policy.rules).toEqual([{ level: "Metadata" }]);
    expect(warnings).toEqual(['unknown field "rules[0].omitStage"']);
  });

  it("reports YAML that does not parse", () => {
    expect(errorOf("rules: [\n")).toMatch(/^failed decoding: /);
  });
});

describe("matching requests against rules", () => {
  it("lets the first matching rule win and defaults to None", () => {
    const p = "rules:\n- level: RequestResponse\n  users: [bob]\n- level: Metadata\n  verbs: [get]\n";
    expect(level(p, attrs())).toBe("Metadata");
    expect(level(p, attrs({ user: { name: "bob", uid: "", groups: [] }, verb: "list" }))).toBe("RequestResponse");
    expect(level(p, attrs({ verb: "list" }))).toBe("None");
  });

  it("matches users and groups, and never a request without a user", () => {
    const p = "rules:\n- level: Request\n  userGroups: [dev]\n- level: Metadata\n  users: [alice]\n- level: None\n";
    expect(level(p, attrs())).toBe("Request");
    expect(level(p, attrs({ user: { name: "alice", uid: "", groups: [] } }))).toBe("Metadata");
    expect(level(p, attrs({ user: undefined }))).toBe("None");
  });

  it("matches resources with subresource forms", () => {
    const p = [
      "rules:",
      "- level: RequestResponse",
      "  resources: [{group: '', resources: [pods/log]}]",
      "- level: Request",
      "  resources: [{group: '*', resources: ['*/status']}]",
      "- level: Metadata",
      "  resources: [{group: apps, resources: ['deployments/*']}]",
      "- level: None",
      "  resources: [{group: '', resources: [pods]}]",
      "- level: Metadata",
      "",
    ].join("\n");
    expect(level(p, attrs({ subresource: "log" }))).toBe("RequestResponse");
    expect(level(p, attrs({ subresource: "status" }))).toBe("Request");
    expect(level(p, attrs({ apiGroup: "apps", resource: "deployments", subresource: "status" }))).toBe("Request");
    expect(level(p, attrs({ apiGroup: "apps", resource: "deployments", subresource: "scale" }))).toBe("Metadata");
    expect(level(p, attrs({ apiGroup: "apps", resource: "deployments" }))).toBe("Metadata"); // "deployments/*" covers the resource too, as upstream
    expect(level(p, attrs())).toBe("None"); // "pods" is not "pods/exec": a subresource must be named
    expect(level(p, attrs({ subresource: "exec" }))).toBe("Metadata");
    expect(level(p, attrs({ apiGroup: "batch", resource: "jobs" }))).toBe("Metadata");
  });

  it("matches resourceNames, a group with no resources, and namespaces ('' for cluster scope)", () => {
    const p = [
      "rules:",
      "- level: Request",
      "  resources: [{group: '', resources: [configmaps], resourceNames: [controller-leader]}]",
      "- level: Metadata",
      "  resources: [{group: rbac.authorization.k8s.io}]",
      "- level: RequestResponse",
      "  namespaces: ['']",
      "- level: None",
      "  namespaces: [kube-system]",
      "- level: Metadata",
      "",
    ].join("\n");
    expect(level(p, attrs({ resource: "configmaps", name: "controller-leader", namespace: "kube-system" }))).toBe("Request");
    expect(level(p, attrs({ resource: "configmaps", name: "other", namespace: "kube-system" }))).toBe("None");
    expect(level(p, attrs({ apiGroup: "rbac.authorization.k8s.io", resource: "roles", namespace: "x" }))).toBe("Metadata");
    expect(level(p, attrs({ resource: "nodes", namespace: "", name: "n1" }))).toBe("RequestResponse");
    expect(level(p, attrs({ namespace: "team" }))).toBe("Metadata");
    // A resource rule never matches a non-resource request.
    expect(level(p, attrs({ isResourceRequest: false, path: "/healthz", namespace: "", resource: "" }))).toBe("Metadata");
  });

  it("matches non-resource URLs exactly, by a trailing * prefix, or *", () => {
    const p = "rules:\n- level: None\n  nonResourceURLs: [/healthz, '/readyz*']\n- level: Request\n  nonResourceURLs: ['/openapi/*']\n- level: Metadata\n";
    const nr = (path: string) => attrs({ isResourceRequest: false, path, resource: "", namespace: "", name: "" });
    expect(level(p, nr("/healthz"))).toBe("None");
    expect(level(p, nr("/healthz/etcd"))).toBe("Metadata");
    expect(level(p, nr("/readyz?verbose"))).toBe("None");
    expect(level(p, nr("/openapi/v3"))).toBe("Request");
    expect(level(p, attrs({ path: "/openapi/v3" }))).toBe("Metadata"); // a resource request is not a URL rule's
    expect(level("rules:\n- level: Request\n  nonResourceURLs: ['*']\n", nr("/anything"))).toBe("Request");
  });

  it("joins the policy's omitStages to each rule's, and takes omitManagedFields from the rule first", () => {
    const p = new PolicyRuleEvaluator(
      parsePolicy(HEAD + "omitStages: [RequestReceived]\nomitManagedFields: true\nrules:\n- level: Metadata\n  verbs: [watch]\n  omitStages: [ResponseStarted]\n  omitManagedFields: false\n- level: Request\n  verbs: [get]\n").policy,
    );
    const w = p.evaluate(attrs({ verb: "watch" }));
    expect([...w.omitStages].sort()).toEqual(["RequestReceived", "ResponseStarted"]);
    expect(w.omitManagedFields).toBe(false);
    const g = p.evaluate(attrs());
    expect(g.omitStages).toEqual(["RequestReceived"]);
    expect(g.omitManagedFields).toBe(true);
    expect(p.evaluate(attrs({ verb: "delete" }))).toEqual({ level: "None", omitStages: ["RequestReceived"], omitManagedFields: true });
  });
});
