// The RBAC and certificates.k8s.io APIs through the real kubectl (1.32, which sends protobuf for the RBAC
// create commands and for `certificate approve`) against an in-process TLS apiserver with AlwaysAllow:
// objects as kubectl builds them, the tables `kubectl get` prints, a CSR's requester filled from the
// authenticated user, approval through the approval subresource, and the signer's status write.

import { execFile } from "node:child_process";
import https from "node:https";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import forge from "node-forge";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { ensurePki, issueClientCert, type Pki } from "../cli/pki.ts";
import { TokenFileAuthenticator } from "../apiserver/auth.ts";
import { installReviews } from "../apiserver/authorization/reviews.ts";
import { ALWAYS_ALLOW } from "../apiserver/authorization/types.ts";
import { ApiServer } from "../apiserver/server.ts";
import { MemoryBackend } from "../apiserver/storage/memory.ts";

let dir: string;
let pki: Pki;
let api: ApiServer;
let kubeconfig: string;
let port: number;

function kubectl(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile("kubectl", ["--kubeconfig", kubeconfig, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** PUT with the admin token (what kubectl has no command for). */
function put(path: string, body: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: "127.0.0.1", port, path, method: "PUT", ca: pki.caCert, agent: false, headers: { Authorization: "Bearer admin-token", "Content-Type": "application/json" } },
      (res) => {
        let text = "";
        res.on("data", (d: Buffer) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

async function ok(args: string[], input?: string): Promise<string> {
  const r = await kubectl(args, input);
  expect(r.code, `kubectl ${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kubelab-rbac-api-"));
  pki = ensurePki(dir);
  api = new ApiServer({
    backend: new MemoryBackend(),
    tls: { cert: pki.serverCert, key: pki.serverKey, clientCA: pki.caCert },
    authenticators: [new TokenFileAuthenticator([{ token: "admin-token", user: { name: "kubelab-admin", uid: "admin-uid", groups: ["system:masters"] } }])],
  });
  // --authorization-mode=AlwaysAllow still serves the review APIs (kubectl auth can-i / whoami)
  installReviews(api.registry, ALWAYS_ALLOW);
  port = await api.start(0);
  const ca = join(dir, "ca.crt");
  writeFileSync(ca, pki.caCert);
  kubeconfig = join(dir, "kubeconfig");
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "c", cluster: { server: `https://127.0.0.1:${port}`, "certificate-authority": ca } }],
      users: [{ name: "u", user: { token: "admin-token" } }],
      contexts: [{ name: "c", context: { cluster: "c", user: "u", namespace: "default" } }],
      "current-context": "c",
    }),
  );
});

afterAll(async () => {
  await api?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("rbac.authorization.k8s.io through kubectl", () => {
  it("kubectl create role / rolebinding / clusterrole --aggregation-rule / clusterrolebinding", async () => {
    await ok(["create", "role", "pod-reader", "--verb=get,list", "--resource=pods"]);
    await ok(["create", "rolebinding", "rb", "--role=pod-reader", "--user=jane", "--serviceaccount=default:builder", "--group=devs"]);
    await ok(["create", "clusterrole", "agg", "--aggregation-rule=rbac.example.com/aggregate-to-monitoring=true"]);
    await ok(["create", "clusterrole", "healthz", "--verb=get", "--non-resource-url=/healthz"]);
    await ok(["create", "clusterrolebinding", "crb", "--clusterrole=view", "--serviceaccount=kube-system:ci"]);

    const role = JSON.parse(await ok(["get", "role", "pod-reader", "-o", "json"]));
    expect(role.rules).toEqual([{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list"] }]);
    const rb = JSON.parse(await ok(["get", "rolebinding", "rb", "-o", "json"]));
    expect(rb.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "pod-reader" });
    expect(rb.subjects).toEqual([
      { apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "jane" },
      { apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "devs" },
      { kind: "ServiceAccount", name: "builder", namespace: "default" },
    ]);
    const agg = JSON.parse(await ok(["get", "clusterrole", "agg", "-o", "json"]));
    expect(agg.aggregationRule).toEqual({ clusterRoleSelectors: [{ matchLabels: { "rbac.example.com/aggregate-to-monitoring": "true" } }] });
  });

  it("those bodies arrive as protobuf", async () => {
    const r = await kubectl(["create", "clusterrolebinding", "pb", "--clusterrole=view", "--user=jane", "-v=8"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/POST https:\/\/[^\n]*\/clusterrolebindings[\s\S]*Content-Type: application\/vnd\.kubernetes\.protobuf/);
  });

  it("kubectl get -o wide prints upstream's columns", async () => {
    const out = await ok(["get", "roles,rolebindings", "-o", "wide"]);
    expect(out).toMatch(/NAME\s+CREATED AT\nrole\.rbac\.authorization\.k8s\.io\/pod-reader\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/);
    expect(out).toMatch(/NAME\s+ROLE\s+AGE\s+USERS\s+GROUPS\s+SERVICEACCOUNTS\nrolebinding\.rbac\.authorization\.k8s\.io\/rb\s+Role\/pod-reader\s+\d+s\s+jane\s+devs\s+default\/builder/);
    const cluster = await ok(["get", "clusterroles,clusterrolebindings", "-o", "wide"]);
    expect(cluster).toMatch(/clusterrole\.rbac\.authorization\.k8s\.io\/agg\s+\d{4}-/);
    expect(cluster).toMatch(/clusterrolebinding\.rbac\.authorization\.k8s\.io\/crb\s+ClusterRole\/view\s+\d+s\s+kube-system\/ci/);
  });

  it("invalid objects get upstream's messages, and a roleRef cannot change", async () => {
    const bad = await kubectl(["create", "role", "urls", "--verb=get", "--non-resource-url=/healthz"]);
    // kubectl itself refuses a namespaced rule on a non-resource URL; the server does too (create -f)
    expect(bad.code).not.toBe(0);
    const manifest = JSON.stringify({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: "urls" },
      rules: [{ verbs: ["get"], nonResourceURLs: ["/healthz"] }],
    });
    const r = await kubectl(["create", "-f", "-"], manifest);
    expect(r.stderr).toContain('rules[0].nonResourceURLs: Invalid value: []string{"/healthz"}: namespaced rules cannot apply to non-resource URLs');
    const patched = await kubectl(["patch", "rolebinding", "rb", "--type=merge", "-p", '{"roleRef":{"kind":"ClusterRole","name":"view"}}']);
    expect(patched.code).not.toBe(0);
    expect(patched.stderr).toContain("cannot change roleRef");
  });

  it("kubectl apply of a ClusterRoleBinding (OpenAPI v3 has the group)", async () => {
    const manifest = [
      "apiVersion: rbac.authorization.k8s.io/v1",
      "kind: ClusterRoleBinding",
      "metadata: {name: applied}",
      "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}",
      "subjects: [{kind: Group, name: viewers}]",
    ].join("\n");
    await ok(["apply", "-f", "-"], manifest);
    const got = JSON.parse(await ok(["get", "clusterrolebinding", "applied", "-o", "json"]));
    // SetDefaults_Subject: a Group's apiGroup is the RBAC group
    expect(got.subjects).toEqual([{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "viewers" }]);
  });
});

describe("the review bodies kubectl sends as protobuf", () => {
  it("kubectl auth can-i (SelfSubjectAccessReview) and kubectl auth whoami (SelfSubjectReview)", async () => {
    const can = await kubectl(["auth", "can-i", "get", "pods", "-v=8"]);
    expect(can.stderr).toMatch(/selfsubjectaccessreviews[\s\S]*Content-Type: application\/vnd\.kubernetes\.protobuf/);
    expect(can.stdout.trim()).toBe("yes");
    const who = await ok(["auth", "whoami", "-o", "json"]);
    expect(JSON.parse(who).status.userInfo).toMatchObject({ username: "kubelab-admin", groups: ["system:masters", "system:authenticated"] });
  });
});

function csrPem(cn: string): string {
  const keys = forge.pki.rsa.generateKeyPair(1024);
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = keys.publicKey;
  csr.setSubject([{ name: "commonName", value: cn }]);
  csr.sign(keys.privateKey, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}

describe("certificates.k8s.io through kubectl", () => {
  const manifest = (name: string, extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      apiVersion: "certificates.k8s.io/v1",
      kind: "CertificateSigningRequest",
      metadata: { name },
      spec: {
        request: Buffer.from(csrPem("jane")).toString("base64"),
        signerName: "kubernetes.io/kube-apiserver-client",
        usages: ["client auth"],
        // a client cannot claim to be someone else: the requester is the authenticated user
        username: "mallory",
        groups: ["system:masters"],
        ...extra,
      },
    });

  it("kubectl create -f of a CSR records the requesting user; kubectl get csr shows it Pending", async () => {
    await ok(["create", "-f", "-"], manifest("jane-csr", { expirationSeconds: 86400 }));
    const csr = JSON.parse(await ok(["get", "csr", "jane-csr", "-o", "json"]));
    expect(csr.spec).toMatchObject({ username: "kubelab-admin", uid: "admin-uid", groups: ["system:masters", "system:authenticated"] });
    expect(csr.status ?? {}).toEqual({});
    const table = await ok(["get", "csr"]);
    expect(table).toMatch(/NAME\s+AGE\s+SIGNERNAME\s+REQUESTOR\s+REQUESTEDDURATION\s+CONDITION\njane-csr\s+\d+s\s+kubernetes\.io\/kube-apiserver-client\s+kubelab-admin\s+24h\s+Pending/);
  });

  it("a CSR that is not a certificate request is refused", async () => {
    const r = await kubectl(["create", "-f", "-"], manifest("bad", { request: Buffer.from("not a csr").toString("base64") }));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("spec.request: Invalid value");
    expect(r.stderr).toContain("PEM block type must be CERTIFICATE REQUEST");
  });

  it("kubectl certificate approve sets Approved through the approval subresource; the signer then issues", async () => {
    const approve = await kubectl(["certificate", "approve", "jane-csr", "-v=8"]);
    expect(approve.code, approve.stderr).toBe(0);
    expect(approve.stderr).toMatch(/PUT https:\/\/[^\n]*\/jane-csr\/approval[\s\S]*Content-Type: application\/vnd\.kubernetes\.protobuf/);
    const out = approve.stdout;
    expect(out).toContain("certificatesigningrequest.certificates.k8s.io/jane-csr approved");
    const csr = JSON.parse(await ok(["get", "csr", "jane-csr", "-o", "json"]));
    expect(csr.status.conditions).toHaveLength(1);
    expect(csr.status.conditions[0]).toMatchObject({ type: "Approved", status: "True", reason: "KubectlApprove" });
    expect(csr.status.conditions[0].lastTransitionTime).toMatch(/Z$/);
    expect(await ok(["get", "csr", "jane-csr"])).toMatch(/jane-csr\s.*\sApproved\n/);

    // a main-resource update cannot change status or spec
    const edited = { ...csr, spec: { ...csr.spec, signerName: "example.com/other" }, status: { conditions: [] } };
    await ok(["replace", "-f", "-"], JSON.stringify(edited));
    const same = JSON.parse(await ok(["get", "csr", "jane-csr", "-o", "json"]));
    expect(same.spec.signerName).toBe("kubernetes.io/kube-apiserver-client");
    expect(same.status.conditions[0].type).toBe("Approved");

    // the signer writes the certificate through status (and cannot drop Approved there)
    const issued = issueClientCert({ cert: pki.caCert, key: pki.caKey }, { user: "jane", groups: [] });
    const withCert = { ...same, status: { conditions: [], certificate: Buffer.from(issued.cert).toString("base64") } };
    await ok(["replace", "--subresource=status", "-f", "-"], JSON.stringify(withCert));
    expect(await ok(["get", "csr", "jane-csr"])).toMatch(/jane-csr\s.*\sApproved,Issued\n/);

    // kubectl will not deny an approved request; the API refuses it too: Approved and Denied are exclusive
    const current = JSON.parse(await ok(["get", "csr", "jane-csr", "-o", "json"]));
    current.status.conditions.push({ type: "Denied", status: "True", reason: "Late" });
    const deny = await put("/apis/certificates.k8s.io/v1/certificatesigningrequests/jane-csr/approval", current);
    expect(deny.status).toBe(422);
    expect(deny.body).toContain('status.conditions[1].type: Invalid value: \\"Denied\\": Approved and Denied conditions are mutually exclusive');
    // nor may an approver touch the certificate or other conditions through approval
    const sneaky = { ...current, status: { conditions: [...current.status.conditions.slice(0, 1), { type: "Failed", status: "True" }] } };
    const r = await put("/apis/certificates.k8s.io/v1/certificatesigningrequests/jane-csr/approval", sneaky);
    expect(r.status, r.body).toBe(200);
    const after = JSON.parse(r.body);
    expect(after.status.conditions.map((c: { type: string }) => c.type)).toEqual(["Approved"]);
    expect(after.status.certificate).toBe(withCert.status.certificate);
  });
});
