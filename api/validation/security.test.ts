import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import forge from "node-forge";
import { describe, expect, it } from "vitest";

import { KEY_USAGES, findResource, type KubeObject, type ResourceInfo } from "../index.ts";
import { formatFieldError } from "./field.ts";
import { validateObject, validateObjectUpdate } from "./index.ts";
import { checkCertificateRequest } from "./certificates.ts";

function info(group: string, resource: string): ResourceInfo {
  const i = findResource(group, "v1", resource);
  if (!i) throw new Error(resource);
  return i;
}
const RBAC = "rbac.authorization.k8s.io";
const msgs = (o: Record<string, unknown>, i: ResourceInfo) => validateObject(o as KubeObject, i).map(formatFieldError);
const updMsgs = (o: Record<string, unknown>, old: Record<string, unknown>, i: ResourceInfo) =>
  validateObjectUpdate(o as KubeObject, old as KubeObject, i).map(formatFieldError);

describe("rbac validation", () => {
  const roles = info(RBAC, "roles");
  const clusterroles = info(RBAC, "clusterroles");
  const rolebindings = info(RBAC, "rolebindings");
  const crbs = info(RBAC, "clusterrolebindings");

  it("a rule needs verbs, and apiGroups with resources or (in a ClusterRole only) nonResourceURLs", () => {
    const role = (rules: unknown[]) => ({ metadata: { name: "system:r", namespace: "ns" }, rules });
    expect(msgs(role([{ verbs: ["get"], apiGroups: [""], resources: ["pods"] }]), roles)).toEqual([]);
    expect(msgs(role([{ apiGroups: [""], resources: ["pods"] }]), roles)).toEqual(["rules[0].verbs: Required value: verbs must contain at least one value"]);
    expect(msgs(role([{ verbs: ["get"] }]), roles)).toEqual([
      "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
      "rules[0].resources: Required value: resource rules must supply at least one resource",
    ]);
    expect(msgs(role([{ verbs: ["get"], nonResourceURLs: ["/healthz"] }]), roles)).toEqual([
      'rules[0].nonResourceURLs: Invalid value: []string{"/healthz"}: namespaced rules cannot apply to non-resource URLs',
    ]);
    const cr = (rules: unknown[]) => ({ metadata: { name: "c" }, rules });
    expect(msgs(cr([{ verbs: ["get"], nonResourceURLs: ["/healthz"] }]), clusterroles)).toEqual([]);
    expect(msgs(cr([{ verbs: ["get"], nonResourceURLs: ["/x"], resources: ["pods"] }]), clusterroles)).toEqual([
      'rules[0].nonResourceURLs: Invalid value: []string{"/x"}: rules cannot apply to both regular resources and non-resource URLs',
    ]);
    expect(msgs({ metadata: { name: "c" }, aggregationRule: {} }, clusterroles)).toEqual([
      "aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector required if aggregationRule is non-nil",
    ]);
  });

  it("names are path segments: colons are fine, slashes are not", () => {
    expect(msgs({ metadata: { name: "a/b" } }, clusterroles)).toEqual(["metadata.name: Invalid value: \"a/b\": may not contain '/'"]);
  });

  it("bindings reference a Role or ClusterRole of the group and name known subject kinds", () => {
    const rb = (roleRef: unknown, subjects: unknown[] = []) => ({ metadata: { name: "rb", namespace: "ns" }, roleRef, subjects });
    const ref = { apiGroup: RBAC, kind: "Role", name: "pod-reader" };
    expect(msgs(rb(ref, [{ kind: "User", apiGroup: RBAC, name: "jane" }, { kind: "ServiceAccount", name: "default" }]), rolebindings)).toEqual([]);
    expect(msgs(rb({ apiGroup: "", kind: "Pod", name: "" }), rolebindings)).toEqual([
      'roleRef.apiGroup: Unsupported value: "": supported values: "rbac.authorization.k8s.io"',
      'roleRef.kind: Unsupported value: "Pod": supported values: "Role", "ClusterRole"',
      "roleRef.name: Required value",
    ]);
    expect(msgs(rb(ref, [{ kind: "User", name: "jane" }, { kind: "ServiceAccount", apiGroup: RBAC, name: "sa" }, { kind: "Robot", name: "r" }]), rolebindings)).toEqual([
      'subjects[0].apiGroup: Unsupported value: "": supported values: "rbac.authorization.k8s.io"',
      'subjects[1].apiGroup: Unsupported value: "rbac.authorization.k8s.io": supported values: ""',
      'subjects[2].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"',
    ]);
    const crb = { metadata: { name: "crb" }, roleRef: ref, subjects: [{ kind: "ServiceAccount", name: "sa" }] };
    expect(msgs(crb, crbs)).toEqual([
      'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"',
      "subjects[0].namespace: Required value",
    ]);
  });

  it("roleRef cannot change on update", () => {
    const old = { metadata: { name: "rb", namespace: "ns", uid: "u", creationTimestamp: "2025-01-01T00:00:00Z" }, roleRef: { apiGroup: RBAC, kind: "Role", name: "a" } };
    expect(updMsgs({ ...old, subjects: [{ kind: "Group", apiGroup: RBAC, name: "g" }] }, old, rolebindings)).toEqual([]);
    const changed = updMsgs({ ...old, roleRef: { apiGroup: RBAC, kind: "ClusterRole", name: "view" } }, old, rolebindings);
    expect(changed).toHaveLength(1);
    expect(changed[0]).toMatch(/^roleRef: Invalid value: .*: cannot change roleRef$/);
  });
});

function rsaCSR(): string {
  const keys = forge.pki.rsa.generateKeyPair(1024);
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = keys.publicKey;
  csr.setSubject([{ name: "commonName", value: "jane" }]);
  csr.sign(keys.privateKey, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}

/** An ECDSA P-256 CSR from openssl: forge cannot parse these, upstream accepts them. */
function ecCSR(): string {
  const dir = mkdtempSync(join(tmpdir(), "csr-"));
  try {
    execFileSync("openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(dir, "k"), "-out", join(dir, "r"), "-subj", "/CN=ec"], { stdio: "ignore" });
    return readFileSync(join(dir, "r"), "utf8");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("certificatesigningrequest validation", () => {
  const csrs = info("certificates.k8s.io", "certificatesigningrequests");
  const pem = rsaCSR();
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const csr = (spec: Record<string, unknown>, status?: unknown) => ({
    metadata: { name: "c" },
    spec: { request: b64(pem), signerName: "kubernetes.io/kube-apiserver-client", usages: ["client auth"], ...spec },
    ...(status ? { status } : {}),
  });

  it("accepts RSA and ECDSA requests whose signature verifies", () => {
    expect(msgs(csr({}), csrs)).toEqual([]);
    expect(checkCertificateRequest(Buffer.from(ecCSR()))).toBeUndefined();
  });

  it("refuses another PEM type, a tampered request, and a bad signerName, usage or duration", () => {
    expect(msgs(csr({ request: b64("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n") }), csrs)).toEqual([
      'spec.request: Invalid value: "<certificate request data>": PEM block type must be CERTIFICATE REQUEST',
    ]);
    const der = Buffer.from(forge.pem.decode(pem)[0]!.body, "latin1");
    der[40] = der[40]! ^ 0xff; // inside the subject: the signature no longer matches
    const tampered = forge.pem.encode({ type: "CERTIFICATE REQUEST", body: der.toString("latin1") });
    expect(checkCertificateRequest(Buffer.from(tampered))).toMatch(/^x509: /);
    expect(msgs(csr({ signerName: "kubelet", usages: ["client auth", "client auth", "flying"], expirationSeconds: 60 }), csrs)).toEqual([
      'spec.usages[2]: Unsupported value: "flying": supported values: ' + [...KEY_USAGES].sort().map((u) => `"${u}"`).join(", "),
      'spec.usages[1]: Duplicate value: "client auth"',
      "spec.signerName: Invalid value: \"kubelet\": must be a fully qualified domain and path of the form 'example.com/signer-name'",
      "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 600 seconds (10 minutes)",
    ]);
    expect(msgs(csr({ signerName: "" }), csrs)).toEqual(["spec.signerName: Required value"]);
    expect(msgs(csr({ signerName: "example/signer" }), csrs)).toEqual(['spec.signerName: Invalid value: "example": should be a domain with at least two segments separated by dots']);
  });

  it("conditions: unique types, Approved and Denied exclusive and only True", () => {
    const both = csr({}, { conditions: [{ type: "Approved", status: "True" }, { type: "Denied", status: "True" }] });
    expect(msgs(both, csrs)).toEqual(['status.conditions[1].type: Invalid value: "Denied": Approved and Denied conditions are mutually exclusive']);
    const dup = csr({}, { conditions: [{ type: "Failed", status: "True" }, { type: "Failed", status: "True" }, { type: "Approved", status: "False" }] });
    expect(msgs(dup, csrs)).toEqual([
      'status.conditions[1].type: Duplicate value: "Failed"',
      'status.conditions[2].status: Unsupported value: "False": supported values: "True"',
    ]);
  });

  it("updates may not remove Approved/Denied/Failed nor change an issued certificate", () => {
    const meta = { name: "c", uid: "u", creationTimestamp: "2025-01-01T00:00:00Z" };
    const cert = b64(forge.pki.certificateToPem(selfSigned()));
    const old = { ...csr({}, { conditions: [{ type: "Approved", status: "True" }], certificate: cert }), metadata: meta };
    expect(updMsgs(old, old, csrs)).toEqual([]);
    expect(updMsgs({ ...old, status: { certificate: cert } }, old, csrs)).toEqual(['status.conditions: Forbidden: updates may not remove a condition of type "Approved"']);
    expect(updMsgs({ ...old, status: { conditions: [{ type: "Approved", status: "True" }] } }, old, csrs)).toEqual([
      'status.certificate: Invalid value: "<certificate data>": updates may not modify existing certificate content',
    ]);
    expect(updMsgs({ ...old, status: { conditions: [{ type: "Approved", status: "True" }], certificate: b64("junk") } }, { ...old, status: {} }, csrs)).toEqual([
      'status.certificate: Invalid value: "<certificate data>": must contain at least one CERTIFICATE PEM block',
    ]);
  });
});

function selfSigned(): forge.pki.Certificate {
  const keys = forge.pki.rsa.generateKeyPair(1024);
  const c = forge.pki.createCertificate();
  c.publicKey = keys.publicKey;
  c.serialNumber = "01";
  c.validity.notBefore = new Date();
  c.validity.notAfter = new Date(Date.now() + 3600_000);
  c.setSubject([{ name: "commonName", value: "jane" }]);
  c.setIssuer([{ name: "commonName", value: "jane" }]);
  c.sign(keys.privateKey, forge.md.sha256.create());
  return c;
}
