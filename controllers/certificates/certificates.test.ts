import { createPrivateKey, createPublicKey, generateKeyPairSync, X509Certificate, type KeyObject } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { CertificateSigningRequest } from "../../api/certificates/v1.ts";
import { newLogger } from "../../client/log.ts";
import { FakeClient, fakeLister } from "../../client/testing.ts";
import type { ReconcileContext } from "../../client/types.ts";
import { ensurePki } from "../../cli/pki.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CSRApprovingController } from "./approver.ts";
import { cleanCSRs, cleanupReason } from "./cleaner.ts";
import { certificateDurationMs, CSRSigningController, DEFAULT_CLUSTER_SIGNING_DURATION_MS, validityWindow } from "./signer.ts";
import { createCertificateRequest, parseCertificateRequest } from "./x509.ts";

const ctx = (): ReconcileContext => ({ signal: new AbortController().signal, log: newLogger("test", { level: "silent" }), reconcileID: "test" });
const NOW = Date.parse("2025-03-01T12:00:00Z");
const ec = (): KeyObject => generateKeyPairSync("ec", { namedCurve: "prime256v1" }).privateKey;

function csrFor(
  name: string,
  subject: { commonName: string; organizations?: string[] },
  opts: { username?: string; groups?: string[]; signerName?: string; usages?: string[]; key?: KeyObject; expirationSeconds?: number; conditions?: CertificateSigningRequest["status"] } = {},
): CertificateSigningRequest {
  return {
    apiVersion: "certificates.k8s.io/v1",
    kind: "CertificateSigningRequest",
    metadata: { name, resourceVersion: "7" },
    spec: {
      request: Buffer.from(createCertificateRequest(subject, opts.key ?? ec())).toString("base64"),
      signerName: opts.signerName ?? "kubernetes.io/kube-apiserver-client-kubelet",
      usages: (opts.usages ?? ["digital signature", "client auth"]) as CertificateSigningRequest["spec"]["usages"],
      username: opts.username ?? "kubelab:kubelet-pool:z1",
      groups: opts.groups ?? ["kubelab:kubelet-pools", "system:bootstrappers", "system:authenticated"],
      ...(opts.expirationSeconds ? { expirationSeconds: opts.expirationSeconds } : {}),
    },
    ...(opts.conditions ? { status: opts.conditions } : {}),
  };
}

/** A SubjectAccessReview answer as upstream's bootstrap RBAC gives it: bootstrappers may nodeclient, nodes may selfnodeclient. */
function sarAsRBAC(client: FakeClient): { asked: { user?: string; subresource?: string }[] } {
  const asked: { user?: string; subresource?: string }[] = [];
  client.prependReactor("create", "subjectaccessreviews", (a) => {
    const spec = (a.object as unknown as { spec: { user?: string; groups?: string[]; resourceAttributes: { subresource: string; verb: string; group: string; resource: string } } }).spec;
    asked.push({ user: spec.user, subresource: spec.resourceAttributes.subresource });
    const ra = spec.resourceAttributes;
    const ok =
      ra.verb === "create" &&
      ra.group === "certificates.k8s.io" &&
      ra.resource === "certificatesigningrequests" &&
      ((ra.subresource === "nodeclient" && !!spec.groups?.includes("system:bootstrappers")) || (ra.subresource === "selfnodeclient" && !!spec.groups?.includes("system:nodes")));
    return { object: { ...(a.object as object), metadata: {}, status: { allowed: ok } } as never };
  });
  return { asked };
}

function approver(client: FakeClient, csrs: CertificateSigningRequest[]): CSRApprovingController {
  for (const c of csrs) client.seed(c);
  return new CSRApprovingController({ client, csrs: fakeLister(client.trackerList("certificates.k8s.io", "certificatesigningrequests") as CertificateSigningRequest[]), clock: { now: () => NOW } });
}

const conditionsOf = (client: FakeClient, name: string) => (client.tracker("certificates.k8s.io", "certificatesigningrequests", "", name) as CertificateSigningRequest).status?.conditions ?? [];

describe("CSR approver", () => {
  it("approves a bootstrapper's kubelet client request through the approval subresource after a nodeclient review", async () => {
    const client = new FakeClient();
    const { asked } = sarAsRBAC(client);
    const c = approver(client, [csrFor("node-csr-a", { commonName: "system:node:n1", organizations: ["system:nodes"] })]);
    await c.reconcile(ctx(), "node-csr-a");
    expect(asked).toEqual([{ user: "kubelab:kubelet-pool:z1", subresource: "nodeclient" }]);
    const writes = client.writeActions().filter((a) => a.resource === "certificatesigningrequests");
    expect(writes).toHaveLength(1);
    expect(writes[0]).toMatchObject({ verb: "patch", subresource: "approval" });
    expect(conditionsOf(client, "node-csr-a")).toEqual([
      { type: "Approved", status: "True", reason: "AutoApproved", message: "Auto approving kubelet client certificate after SubjectAccessReview.", lastUpdateTime: "2025-03-01T12:00:00Z" },
    ]);
  });

  it("approves a node renewing its own certificate after a selfnodeclient review, with RSA usages too", async () => {
    const client = new FakeClient();
    const { asked } = sarAsRBAC(client);
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey;
    const c = approver(client, [
      csrFor("csr-renew", { commonName: "system:node:n1", organizations: ["system:nodes"] }, { username: "system:node:n1", groups: ["system:nodes", "system:authenticated"], key: rsa, usages: ["digital signature", "key encipherment", "client auth"] }),
    ]);
    await c.reconcile(ctx(), "csr-renew");
    expect(asked).toEqual([{ user: "system:node:n1", subresource: "selfnodeclient" }]);
    expect(conditionsOf(client, "csr-renew")[0]).toMatchObject({ type: "Approved", reason: "AutoApproved", message: "Auto approving self kubelet client certificate after SubjectAccessReview." });
  });

  it("does not approve a node asking for another node's name, and retries later (RBAC may change)", async () => {
    const client = new FakeClient();
    const { asked } = sarAsRBAC(client);
    const c = approver(client, [csrFor("csr-steal", { commonName: "system:node:n2", organizations: ["system:nodes"] }, { username: "system:node:n1", groups: ["system:nodes"] })]);
    expect(await c.reconcile(ctx(), "csr-steal")).toEqual({ requeue: true });
    expect(asked).toEqual([{ user: "system:node:n1", subresource: "nodeclient" }]);
    expect(conditionsOf(client, "csr-steal")).toEqual([]);
  });

  it("leaves other signers, other subjects, wrong usages and decided requests alone without asking", async () => {
    const client = new FakeClient();
    const { asked } = sarAsRBAC(client);
    const node = { commonName: "system:node:n1", organizations: ["system:nodes"] };
    const c = approver(client, [
      csrFor("other-signer", node, { signerName: "kubernetes.io/kube-apiserver-client" }),
      csrFor("not-a-node", { commonName: "alice", organizations: ["system:nodes"] }),
      csrFor("extra-org", { commonName: "system:node:n1", organizations: ["system:nodes", "system:masters"] }),
      csrFor("server-usage", node, { usages: ["digital signature", "server auth"] }),
      csrFor("denied", node, { conditions: { conditions: [{ type: "Denied", status: "True", reason: "No" }] } }),
    ]);
    for (const n of ["other-signer", "not-a-node", "extra-org", "server-usage", "denied"]) expect(await c.reconcile(ctx(), n)).toBeUndefined();
    expect(asked).toEqual([]);
    expect(client.writeActions().filter((a) => a.resource === "certificatesigningrequests")).toEqual([]);
  });
});

describe("CSR signer", () => {
  const dir = mkdtempSync(join(tmpdir(), "signer-"));
  const pki = ensurePki(dir);
  rmSync(dir, { recursive: true, force: true });
  const caX509 = new X509Certificate(pki.caCert);
  const ca = { certPem: pki.caCert, key: createPrivateKey(pki.caKey), notAfterMs: Date.parse(caX509.validTo) };
  const approved = { conditions: [{ type: "Approved", status: "True", reason: "AutoApproved" }] };

  function signer(client: FakeClient, csrs: CertificateSigningRequest[], durationMs = DEFAULT_CLUSTER_SIGNING_DURATION_MS): CSRSigningController {
    for (const c of csrs) client.seed(c);
    return new CSRSigningController({ client, csrs: fakeLister(client.trackerList("certificates.k8s.io", "certificatesigningrequests") as CertificateSigningRequest[]), ca, durationMs, clock: { now: () => Date.now() } });
  }
  const issued = (client: FakeClient, name: string): X509Certificate | undefined => {
    const b64 = (client.tracker("certificates.k8s.io", "certificatesigningrequests", "", name) as CertificateSigningRequest).status?.certificate;
    return b64 ? new X509Certificate(Buffer.from(b64, "base64").toString("utf8")) : undefined;
  };

  it("issues an approved kubelet client request: subject, issuer, validity, usages, verifies against the CA, public key of the request", async () => {
    const client = new FakeClient();
    const key = ec();
    const c = signer(client, [csrFor("n1", { commonName: "system:node:n1", organizations: ["system:nodes"] }, { key, conditions: approved })]);
    const before = Date.now();
    await c.reconcile(ctx(), "n1");
    expect(client.writeActions()).toMatchObject([{ verb: "update", subresource: "status" }]);
    const cert = issued(client, "n1")!;
    expect(cert.subject).toBe("O=system:nodes\nCN=system:node:n1");
    expect(cert.issuer).toBe(caX509.subject);
    expect(cert.verify(caX509.publicKey)).toBe(true);
    expect(cert.checkIssued(caX509)).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.2"]);
    expect(cert.publicKey.export({ type: "spki", format: "der" })).toEqual(createPublicKey(key).export({ type: "spki", format: "der" }));
    // A year, backdated 5 minutes at both ends (whole seconds in the certificate).
    expect(Date.parse(cert.validFrom)).toBeGreaterThanOrEqual(before - 5 * 60_000 - 1000);
    expect(Date.parse(cert.validTo) - Date.parse(cert.validFrom)).toBeGreaterThanOrEqual(DEFAULT_CLUSTER_SIGNING_DURATION_MS - 2000);
    expect(Date.parse(cert.validTo) - Date.parse(cert.validFrom)).toBeLessThanOrEqual(DEFAULT_CLUSTER_SIGNING_DURATION_MS + 1000);
  });

  it("honours a shorter spec.expirationSeconds, and copies SANs and key usages for kube-apiserver-client", async () => {
    const client = new FakeClient();
    const c = signer(client, [csrFor("alice", { commonName: "alice", organizations: ["devs", "ops"] }, { signerName: "kubernetes.io/kube-apiserver-client", usages: ["digital signature", "key encipherment", "client auth"], expirationSeconds: 3600, conditions: approved })]);
    await c.reconcile(ctx(), "alice");
    const cert = issued(client, "alice")!;
    expect(cert.subject).toBe("O=devs\nO=ops\nCN=alice");
    // Short-lived: notBefore backdated, notAfter not.
    expect(Date.parse(cert.validTo) - Date.parse(cert.validFrom)).toBeGreaterThanOrEqual(3600_000 + 5 * 60_000 - 2000);
    expect(Date.parse(cert.validTo) - Date.parse(cert.validFrom)).toBeLessThanOrEqual(3600_000 + 5 * 60_000 + 1000);
  });

  it("marks a request its signer refuses Failed with SignerValidationFailure, signs legacy-unknown as is, and skips unapproved and unknown-signer ones", async () => {
    const client = new FakeClient();
    const c = signer(client, [
      csrFor("bad-kubelet", { commonName: "mallory", organizations: ["system:nodes"] }, { conditions: approved }),
      csrFor("bad-usage", { commonName: "bob" }, { signerName: "kubernetes.io/kube-apiserver-client", usages: ["server auth"], conditions: approved }),
      csrFor("pending", { commonName: "system:node:n1", organizations: ["system:nodes"] }),
      csrFor("elsewhere", { commonName: "x" }, { signerName: "example.com/signer", conditions: approved }),
      csrFor("legacy", { commonName: "x" }, { signerName: "kubernetes.io/legacy-unknown", conditions: approved }),
    ]);
    for (const n of ["bad-kubelet", "bad-usage", "pending", "elsewhere", "legacy"]) await c.reconcile(ctx(), n);
    expect(conditionsOf(client, "bad-kubelet")[1]).toMatchObject({ type: "Failed", status: "True", reason: "SignerValidationFailure", message: "subject common name does not begin with system:node:" });
    expect(conditionsOf(client, "bad-usage")[1]).toMatchObject({ type: "Failed", reason: "SignerValidationFailure", message: "invalid usage for client certificate: server auth" });
    expect(client.writeActions().map((a) => a.name).sort()).toEqual(["bad-kubelet", "bad-usage", "legacy"]);
    expect(issued(client, "bad-kubelet")).toBeUndefined();
    expect(issued(client, "legacy")!.subject).toBe("CN=x");
  });

  it("computes durations and windows as upstream: the default caps a request, 10 minutes is the floor, the CA's end caps notAfter", () => {
    expect(certificateDurationMs(3_600_000, undefined)).toBe(3_600_000);
    expect(certificateDurationMs(3_600_000, 7200)).toBe(3_600_000);
    expect(certificateDurationMs(3_600_000, 60)).toBe(600_000);
    const w = validityWindow(NOW, 24 * 3_600_000, NOW + 3_600_000);
    expect(w.notBefore.getTime()).toBe(NOW - 300_000);
    expect(w.notAfter.getTime()).toBe(NOW + 3_600_000);
    expect(() => validityWindow(NOW, 3_600_000, NOW - 1)).toThrow(/expired/);
  });
});

describe("x509 requests", () => {
  it("round-trips subject and key, and rejects a tampered signature", () => {
    const key = ec();
    const pem = createCertificateRequest({ commonName: "system:node:n1", organizations: ["system:nodes"] }, key);
    const req = parseCertificateRequest(Buffer.from(pem).toString("base64"));
    expect(req).toMatchObject({ commonName: "system:node:n1", organizations: ["system:nodes"], dnsNames: [], ipAddresses: [] });
    const other = createCertificateRequest({ commonName: "system:node:n2", organizations: ["system:nodes"] }, key);
    // Splice n1's signature onto n2's info: must not verify.
    const body = (p: string) => Buffer.from(p.replace(/-----[^-]+-----/g, "").replace(/\s/g, ""), "base64");
    const a = body(pem);
    const b = body(other);
    const tampered = Buffer.concat([b.subarray(0, b.length - 72), a.subarray(a.length - 72)]);
    const tpem = `-----BEGIN CERTIFICATE REQUEST-----\n${tampered.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
    expect(() => parseCertificateRequest(tpem)).toThrow();
    expect(() => parseCertificateRequest("bm90IGEgcGVt")).toThrow("PEM block type must be CERTIFICATE REQUEST");
  });
});

describe("CSR cleaner", () => {
  const at = (msAgo: number) => new Date(NOW - msAgo).toISOString().replace(/\.\d+Z$/, "Z");
  const node = { commonName: "system:node:n1", organizations: ["system:nodes"] };
  const H = 3_600_000;
  const aged = (name: string, createdAgo: number, status?: CertificateSigningRequest["status"]): CertificateSigningRequest => {
    const c = csrFor(name, node, { conditions: status });
    c.metadata.creationTimestamp = at(createdAgo);
    return c;
  };

  it("deletes issued and approved after an hour, denied or failed after an hour, pending after a day, and keeps the rest", async () => {
    const cert = Buffer.from("not a certificate").toString("base64");
    const csrs = [
      aged("issued-old", 2 * H, { conditions: [{ type: "Approved", status: "True", lastUpdateTime: at(2 * H) }], certificate: cert }),
      aged("issued-new", 2 * H, { conditions: [{ type: "Approved", status: "True", lastUpdateTime: at(30 * 60_000) }], certificate: cert }),
      aged("approved-unissued", 2 * H, { conditions: [{ type: "Approved", status: "True", lastUpdateTime: at(2 * H) }] }),
      aged("denied-old", 2 * H, { conditions: [{ type: "Denied", status: "True", lastUpdateTime: at(2 * H) }] }),
      aged("failed-old", 2 * H, { conditions: [{ type: "Approved", status: "True", lastUpdateTime: at(30 * 60_000) }, { type: "Failed", status: "True", lastUpdateTime: at(2 * H) }] }),
      aged("pending-old", 25 * H),
      aged("pending-new", 23 * H),
    ];
    expect(cleanupReason(csrs[0]!, NOW)).toBe("Cleaning CSR as it is more than approvedExpiration duration old and approved.");
    expect(cleanupReason(csrs[5]!, NOW)).toBe("Cleaning CSR as it is more than pendingExpiration duration old and unhandled.");
    const client = new FakeClient();
    for (const c of csrs) client.seed(c);
    await cleanCSRs({ client, csrs: fakeLister(csrs), clock: { now: () => NOW } }, newLogger("test", { level: "silent" }));
    expect(client.writeActions().map((a) => `${a.verb} ${a.name}`).sort()).toEqual(["delete denied-old", "delete failed-old", "delete issued-old", "delete pending-old"]);
  });

  it("deletes a request whose issued certificate has expired", () => {
    const dir = mkdtempSync(join(tmpdir(), "cleaner-"));
    const pki = ensurePki(dir);
    rmSync(dir, { recursive: true, force: true });
    // An Approved condition without a time: only the certificate's expiry can make it due.
    const c = aged("expired", 10 * 60_000, { conditions: [{ type: "Approved", status: "True" }], certificate: Buffer.from(pki.caCert).toString("base64") });
    expect(cleanupReason(c, NOW)).toBeUndefined();
    expect(cleanupReason(c, Date.parse(new X509Certificate(pki.caCert).validTo) + 1000)).toBe("Cleaning CSR as the associated certificate is expired.");
  });
});
