import { createPrivateKey, generateKeyPairSync, X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, statSync, existsSync } from "node:fs";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import type { CertificateSigningRequest } from "../api/certificates/v1.ts";
import { ensurePki } from "../cli/pki.ts";
import { newLogger } from "../client/log.ts";
import { RestClient } from "../client/rest.ts";
import { FakeClient, FakeClock, fakeLister } from "../client/testing.ts";
import type { ReconcileContext } from "../client/types.ts";
import { CSRApprovingController } from "../controllers/certificates/approver.ts";
import { CSRSigningController } from "../controllers/certificates/signer.ts";
import type { Client } from "../client/types.ts";
import { digestedCSRName, NodeClientSource, rotationDeadline, type NodeCredential } from "./certificate.ts";
import { runPool } from "./pool.ts";

const log = newLogger("test", { level: "silent" });
const rctx = (): ReconcileContext => ({ signal: new AbortController().signal, log, reconcileID: "t" });
const dirs: string[] = [];
const tmp = (p: string): string => {
  const d = mkdtempSync(join(tmpdir(), p));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const pki = ensurePki(tmp("pki-"));
const ca = { certPem: pki.caCert, key: createPrivateKey(pki.caKey), notAfterMs: Date.parse(new X509Certificate(pki.caCert).validTo) };

const csrsOf = (client: FakeClient) => client.trackerList("certificates.k8s.io", "certificatesigningrequests") as CertificateSigningRequest[];

/**
 * The control plane's side, by hand: the apiserver's requestor fields (the fake does not set them),
 * then the approver and the signer reconciling every CSR once.
 */
async function approveAndSign(client: FakeClient, requestor = { username: "kubelab:kubelet-pool:z1", groups: ["kubelab:kubelet-pools", "system:bootstrappers"] }): Promise<void> {
  client.prependReactor("create", "subjectaccessreviews", (a) => {
    const spec = (a.object as unknown as { spec: { groups?: string[]; resourceAttributes: { subresource: string } } }).spec;
    const allowed = spec.resourceAttributes.subresource === "nodeclient" ? !!spec.groups?.includes("system:bootstrappers") : !!spec.groups?.includes("system:nodes");
    return { object: { metadata: {}, status: { allowed } } as never };
  });
  const withRequestor = () => csrsOf(client).map((c) => ({ ...c, spec: { ...c.spec, ...requestor } }));
  const approver = new CSRApprovingController({ client, csrs: fakeLister(withRequestor()), clock: { now: () => Date.now() } });
  for (const c of csrsOf(client)) await approver.reconcile(rctx(), c.metadata.name!);
  const signer = new CSRSigningController({ client, csrs: fakeLister(csrsOf(client)), ca, durationMs: 24 * 3_600_000, clock: { now: () => Date.now() } });
  for (const c of csrsOf(client)) await signer.reconcile(rctx(), c.metadata.name!);
}

/** Runs the source's CSR watch until the test ends. */
const running: AbortController[] = [];
afterEach(() => {
  for (const c of running.splice(0)) c.abort();
});
function run(source: NodeClientSource): NodeClientSource {
  const c = new AbortController();
  running.push(c);
  void source.run({ signal: c.signal, log });
  return source;
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(cond()).toBe(true);
}

describe("a node's TLS bootstrap", () => {
  it("creates a kubelet client CSR with the pool's client, waits for its certificate, stores it 0600 and builds the node's client from it", async () => {
    const dir = tmp("nodes-");
    const boot = new FakeClient();
    const made: { node: string; cred: NodeCredential }[] = [];
    const source = run(new NodeClientSource({ bootstrapClient: boot, dir, log, newClient: (cred, node) => (made.push({ node, cred }), new FakeClient()) }));
    const stop = new AbortController();
    const pending = source.clientFor("pool-a-0", stop.signal);
    await until(() => csrsOf(boot).length === 1);
    const csr = csrsOf(boot)[0]!;
    expect(csr.metadata.name).toMatch(/^node-csr-[A-Za-z0-9_-]{43}$/);
    expect(csr.spec).toMatchObject({ signerName: "kubernetes.io/kube-apiserver-client-kubelet", usages: ["digital signature", "client auth"] });
    expect(Buffer.from(csr.spec.request, "base64").toString()).toContain("-----BEGIN CERTIFICATE REQUEST-----");
    await approveAndSign(boot);
    const { close } = await pending;
    expect(made).toHaveLength(1);
    const cert = new X509Certificate(made[0]!.cred.cert);
    expect(cert.subject).toBe("O=system:nodes\nCN=system:node:pool-a-0");
    expect(cert.verify(new X509Certificate(pki.caCert).publicKey)).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(made[0]!.cred.key))).toBe(true);
    for (const f of ["pool-a-0.crt", "pool-a-0.key"]) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    close();
    stop.abort();

    // A restarted pool reuses the valid certificate on disk: no new request.
    const boot2 = new FakeClient();
    const again = run(new NodeClientSource({ bootstrapClient: boot2, dir, log, newClient: (cred) => (made.push({ node: "again", cred }), new FakeClient()) }));
    const second = await again.clientFor("pool-a-0", new AbortController().signal);
    second.close();
    expect(boot2.writeActions()).toEqual([]);
    expect(made[1]!.cred.cert).toBe(made[0]!.cred.cert);
  });

  it("fails when the request is denied, with the condition's reason and message", async () => {
    const boot = new FakeClient();
    const source = run(new NodeClientSource({ bootstrapClient: boot, dir: tmp("nodes-"), log, newClient: () => new FakeClient() }));
    const pending = source.clientFor("n1", new AbortController().signal);
    // The fake's watch from resourceVersion "0" (an empty list's) starts at now: wait for it to be open.
    await until(() => csrsOf(boot).length === 1 && boot.actions.some((a) => a.verb === "watch"));
    const csr = csrsOf(boot)[0]!;
    await boot.resource<CertificateSigningRequest>("certificates.k8s.io", "certificatesigningrequests").patch("", csr.metadata.name!, "merge", { status: { conditions: [{ type: "Denied", status: "True", reason: "Nope", message: "not you" }] } }, { subresource: "approval" });
    await expect(pending).rejects.toThrow("certificate signing request is denied, reason: Nope, message: not you");
  });

  it("gives up waiting when the pool stops", async () => {
    const boot = new FakeClient();
    const source = run(new NodeClientSource({ bootstrapClient: boot, dir: tmp("nodes-"), log, newClient: () => new FakeClient() }));
    const stop = new AbortController();
    const pending = source.clientFor("n1", stop.signal);
    await until(() => csrsOf(boot).length === 1);
    stop.abort();
    await expect(pending).rejects.toThrow();
  });

  it("names a request after its key, subject and usages, and rotates at 70–90% of the certificate's life", () => {
    const spki = (k = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).publicKey) => k.export({ type: "spki", format: "der" });
    const k = spki();
    const subj = { commonName: "system:node:a", organizations: ["system:nodes"] };
    expect(digestedCSRName(k, subj, ["client auth"])).toBe(digestedCSRName(k, subj, ["client auth"]));
    expect(digestedCSRName(k, subj, ["client auth"])).not.toBe(digestedCSRName(spki(), subj, ["client auth"]));
    expect(digestedCSRName(k, subj, ["client auth"])).not.toBe(digestedCSRName(k, { ...subj, commonName: "system:node:b" }, ["client auth"]));
    expect(rotationDeadline({ notBeforeMs: 0, notAfterMs: 1000 }, 0)).toBe(700);
    expect(rotationDeadline({ notBeforeMs: 0, notAfterMs: 1000 }, 0.5)).toBeCloseTo(800);
    expect(rotationDeadline({ notBeforeMs: 0, notAfterMs: 1000 }, 1)).toBeCloseTo(900);
  });

  it("renews at the rotation deadline with the node's own identity (selfnodeclient), stores the new certificate and swaps it into the node's client", async () => {
    const boot = new FakeClient();
    const clock = new FakeClock(Date.now());
    const swapped: string[] = [];
    // The node's client: the same store, so its renewal request is seen; it records certificate swaps.
    const own = new Proxy(boot, { get: (t, p, r) => (p === "setClientCertificate" ? (cert: string) => swapped.push(cert) : Reflect.get(t, p, r)) });
    const source = run(new NodeClientSource({ bootstrapClient: boot, dir: tmp("nodes-"), log, clock, newClient: () => own }));
    const pending = source.clientFor("n1", new AbortController().signal);
    await until(() => csrsOf(boot).length === 1);
    await approveAndSign(boot);
    const { close } = await pending;
    try {
      const first = new X509Certificate(source.load("n1")!.cert);
      // Nothing before 70% of the (one day) certificate's life.
      await clock.advance(12 * 3_600_000);
      await new Promise((r) => setTimeout(r, 20));
      expect(csrsOf(boot)).toHaveLength(1);
      await clock.advance(10 * 3_600_000);
      await until(() => csrsOf(boot).length === 2);
      await approveAndSign(boot, { username: "system:node:n1", groups: ["system:nodes"] });
      await until(() => swapped.length === 1);
      const renewed = new X509Certificate(swapped[0]!);
      expect(renewed.subject).toBe("O=system:nodes\nCN=system:node:n1");
      expect(renewed.serialNumber).not.toBe(first.serialNumber);
      expect(source.load("n1")!.cert).toBe(swapped[0]);
    } finally {
      close();
    }
  });

  it("presents the issued EC certificate over TLS through the default RestClient", async () => {
    const boot = new FakeClient();
    const srv = https.createServer({ cert: pki.serverCert, key: pki.serverKey, ca: pki.caCert, requestCert: true, rejectUnauthorized: true }, (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      res.setHeader("Content-Type", "application/json");
      res.end(JSON.stringify({ apiVersion: "v1", kind: "Node", metadata: { name: String(peer.subject?.CN ?? "") } }));
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const source = run(new NodeClientSource({ bootstrapClient: boot, dir: tmp("nodes-"), log, server: { server: `https://127.0.0.1:${(srv.address() as AddressInfo).port}`, caCert: pki.caCert } }));
    const pending = source.clientFor("n7", new AbortController().signal);
    await until(() => csrsOf(boot).length === 1);
    await approveAndSign(boot);
    const { client, close } = await pending;
    try {
      expect(client).toBeInstanceOf(RestClient);
      expect((await client.resource("", "nodes").get("", "whoami")).metadata.name).toBe("system:node:n7");
    } finally {
      close();
      await new Promise<void>((r) => srv.close(() => r()));
    }
    expect(existsSync(join(source["opts"].dir, "n7.key"))).toBe(true);
  });
});

describe("a pool of nodes with their own certificates", () => {
  it("bootstraps each node's certificate with the pool's client, then sends every node's own requests through its client only", async () => {
    const boot = new FakeClient();
    // The control plane, in the background: approve and sign what is pending.
    const signing = setInterval(() => {
      if (csrsOf(boot).some((c) => !c.status?.certificate)) void approveAndSign(boot);
    }, 10);
    // Each node's client: the same store, but every action it starts is tagged with the node's name
    // (the fake records an action synchronously when a call starts).
    const tagged = new Map<number, string>();
    const tagging = <T extends object>(obj: T, node: string): T =>
      new Proxy(obj, {
        get(target, prop, receiver) {
          const v = Reflect.get(target, prop, receiver) as unknown;
          if (typeof v !== "function") return v;
          return (...args: unknown[]) => {
            const before = boot.actions.length;
            const r = (v as (...a: unknown[]) => unknown).apply(target, args);
            for (let i = before; i < boot.actions.length; i++) tagged.set(i, node);
            return prop === "resource" ? tagging(r as object, node) : r;
          };
        },
      });
    const nodeClient = (node: string): Client => tagging(boot, node);
    const made: string[] = [];
    const source = new NodeClientSource({ bootstrapClient: boot, dir: tmp("pool-pki-"), log, newClient: (_cred, node) => (made.push(node), nodeClient(node)) });
    const abort = new AbortController();
    const done = runPool(
      { signal: abort.signal, log },
      {
        client: boot,
        nodeClients: source,
        nodes: 3,
        zone: "z",
        region: "r",
        namePrefix: "certpool",
        rootDir: tmp("pool-root-"),
        podCIDR: "127.202.0.0/16",
        port: 0,
        log,
        kubelet: { leaseRenewIntervalMs: 100, nodeStatusUpdateFrequencyMs: 100 },
      },
    );
    try {
      const wrote = (node: string, resource: string) => boot.actions.some((a, i) => tagged.get(i) === node && a.resource === resource && a.verb !== "get");
      await until(() => made.length === 3 && ["nodes", "leases"].every((r) => [0, 1, 2].every((i) => wrote(`certpool-${i}`, r))));
      expect(made.sort()).toEqual(["certpool-0", "certpool-1", "certpool-2"]);
      expect(csrsOf(boot)).toHaveLength(3);
      // Every write but the test's own approving and signing came through a node's client, to its own
      // objects; the pool's client only created the CSRs (and ran the shared informers).
      const untagged = boot.actions.flatMap((a, i) => (tagged.has(i) || ["get", "list", "watch"].includes(a.verb) || a.resource === "subjectaccessreviews" || a.subresource ? [] : [`${a.verb} ${a.resource}`]));
      expect(untagged).toEqual(Array(3).fill("create certificatesigningrequests"));
      for (const [i, node] of tagged) {
        const a = boot.actions[i]!;
        if (a.resource === "nodes" || a.resource === "leases") expect(a.name || (a.object as { metadata?: { name?: string } })?.metadata?.name).toBe(node);
      }
    } finally {
      abort.abort();
      clearInterval(signing);
      await done;
    }
  }, 30_000);
});
