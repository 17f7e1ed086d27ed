// The cluster's certificates and admin token: a CA, the apiserver's serving certificate, kept under the data dir.

import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import forge from "node-forge";

export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  /** Path of the token file the apiserver reads (--token-auth-file format). */
  tokenFile: string;
  adminToken: string;
  /** The ServiceAccount token signing key pair (kubeadm's sa.key / sa.pub): --service-account-signing-key-file / --service-account-key-file. */
  saKeyFile: string;
  saPubFile: string;
}

/** A client identity: the certificate's CN is the user, each O a group (upstream's x509 authenticator). */
export interface ClientIdentity {
  user: string;
  groups: string[];
}

function newKeyPair(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    privatePem: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
    publicPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

function serial(): string {
  // Positive, 16 bytes.
  const b = randomBytes(16);
  b[0] &= 0x7f;
  return b.toString("hex");
}

function makeCA(): { cert: string; key: string } {
  const keys = newKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(keys.publicPem);
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 10 * 365 * 24 * 3600 * 1000);
  const attrs = [{ name: "commonName", value: "kubelab-ca" }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keys.privatePem), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keys.privatePem };
}

/** SANs: 127.0.0.1, localhost, the service IP of `kubernetes`, and any extra names or IPs. */
export function servingSANs(extra: string[]): string[] {
  const base = ["127.0.0.1", "localhost", "10.96.0.1", "kubernetes", "kubernetes.default", "kubernetes.default.svc"];
  return [...new Set([...base, ...extra.filter((s) => s.length > 0)])];
}

function makeServing(ca: { cert: string; key: string }, sans: string[]): { cert: string; key: string } {
  const keys = newKeyPair();
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(keys.publicPem);
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 365 * 24 * 3600 * 1000);
  cert.setSubject([{ name: "commonName", value: "kube-apiserver" }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: "basicConstraints", cA: false },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true },
    {
      name: "subjectAltName",
      altNames: sans.map((s) => (/^[\d.]+$/.test(s) || s.includes(":") ? { type: 7, ip: s } : { type: 2, value: s })),
    },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(ca.key), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keys.privatePem };
}

function certSANs(pem: string): string[] {
  const cert = forge.pki.certificateFromPem(pem);
  const ext = cert.getExtension("subjectAltName") as { altNames?: { type: number; value?: string; ip?: string }[] } | undefined;
  return (ext?.altNames ?? []).map((a) => (a.type === 7 ? (a.ip ?? "") : (a.value ?? "")));
}

/**
 * A client certificate for `id` signed by the CA (clientAuth only), valid for a year, as kubeadm
 * issues the scheduler's and controller-manager's.
 */
export function issueClientCert(ca: { cert: string; key: string }, id: ClientIdentity, validDays = 365): { cert: string; key: string } {
  const keys = newKeyPair();
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(keys.publicPem);
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + validDays * 24 * 3600 * 1000);
  cert.setSubject([...id.groups.map((g) => ({ name: "organizationName", value: g })), { name: "commonName", value: id.user }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: "basicConstraints", cA: false },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", clientAuth: true },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(ca.key), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keys.privatePem };
}

/** The subject of a certificate as an identity (CN, O...). */
export function certIdentity(pem: string): ClientIdentity {
  const c = forge.pki.certificateFromPem(pem);
  const cn = c.subject.getField("CN")?.value as string | undefined;
  const groups = c.subject.attributes.filter((a) => a.shortName === "O").map((a) => String(a.value));
  return { user: cn ?? "", groups };
}

/**
 * The client certificate of `name` under `dir` (name.crt, name.key) for `id`: kept while it names the
 * same identity, is signed by this CA and is valid for another day; issued again otherwise.
 */
export function ensureClientCert(pki: Pki, name: string, id: ClientIdentity): { cert: string; key: string; certFile: string; keyFile: string } {
  const certFile = join(pki.dir, `${name}.crt`);
  const keyFile = join(pki.dir, `${name}.key`);
  if (existsSync(certFile) && existsSync(keyFile)) {
    const cert = readFileSync(certFile, "utf8");
    try {
      const have = certIdentity(cert);
      const c = forge.pki.certificateFromPem(cert);
      const fresh = c.validity.notAfter.getTime() - Date.now() > 24 * 3600 * 1000;
      if (fresh && have.user === id.user && have.groups.join(",") === id.groups.join(",") && forge.pki.certificateFromPem(pki.caCert).verify(c)) {
        return { cert, key: readFileSync(keyFile, "utf8"), certFile, keyFile };
      }
    } catch {
      // unreadable: issue a new one
    }
  }
  const issued = issueClientCert({ cert: pki.caCert, key: pki.caKey }, id);
  writeFileSync(keyFile, issued.key, { mode: 0o600 });
  writeFileSync(certFile, issued.cert);
  return { ...issued, certFile, keyFile };
}

/**
 * Loads the PKI under `dir`, creating what is missing. The CA and token are kept across restarts;
 * the serving certificate is re-issued (by the same CA) when the wanted SANs change.
 */
export function ensurePki(dir: string, extraSANs: string[] = []): Pki {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const p = (f: string) => join(dir, f);
  let ca: { cert: string; key: string };
  if (existsSync(p("ca.crt")) && existsSync(p("ca.key"))) {
    ca = { cert: readFileSync(p("ca.crt"), "utf8"), key: readFileSync(p("ca.key"), "utf8") };
  } else {
    ca = makeCA();
    writeFileSync(p("ca.key"), ca.key, { mode: 0o600 });
    writeFileSync(p("ca.crt"), ca.cert);
  }
  const sans = servingSANs(extraSANs);
  let serving: { cert: string; key: string } | undefined;
  if (existsSync(p("apiserver.crt")) && existsSync(p("apiserver.key"))) {
    const cert = readFileSync(p("apiserver.crt"), "utf8");
    const have = new Set(certSANs(cert));
    if (sans.every((s) => have.has(s))) serving = { cert, key: readFileSync(p("apiserver.key"), "utf8") };
  }
  if (!serving) {
    serving = makeServing(ca, sans);
    writeFileSync(p("apiserver.key"), serving.key, { mode: 0o600 });
    writeFileSync(p("apiserver.crt"), serving.cert);
  }
  let adminToken: string;
  const tokenFile = p("tokens.csv");
  if (existsSync(tokenFile)) {
    adminToken = readFileSync(tokenFile, "utf8").split("\n")[0].split(",")[0];
  } else {
    adminToken = randomBytes(32).toString("base64url");
    writeFileSync(tokenFile, `${adminToken},kubelab-admin,kubelab-admin,"system:masters"\n`, { mode: 0o600 });
  }
  // The ServiceAccount signing key: kept for the cluster's life (every issued token is signed with it).
  const saKeyFile = p("sa.key");
  const saPubFile = p("sa.pub");
  if (!existsSync(saKeyFile) || !existsSync(saPubFile)) {
    const sa = newKeyPair();
    writeFileSync(saKeyFile, sa.privatePem, { mode: 0o600 });
    writeFileSync(saPubFile, sa.publicPem);
  }
  return { dir, caCert: ca.cert, caKey: ca.key, serverCert: serving.cert, serverKey: serving.key, tokenFile, adminToken, saKeyFile, saPubFile };
}

/** The group of the simulated kubelet pools' own identities (their shared informers; see kubelet/pool.ts). */
export const KUBELET_POOL_GROUP = "kubelab:kubelet-pools";

/** The identity a kubelet pool process of a zone runs its shared watches and bootstraps its nodes with. */
export function kubeletPoolIdentity(zone: string): ClientIdentity {
  return { user: `kubelab:kubelet-pool:${zone}`, groups: [KUBELET_POOL_GROUP, "system:bootstrappers"] };
}

/** A kubelet's identity as the Node authorizer knows it (upstream's system:node:<name> in system:nodes). */
export function nodeIdentity(nodeName: string): ClientIdentity {
  return { user: `system:node:${nodeName}`, groups: ["system:nodes"] };
}

/**
 * Each control-plane and data-plane component's identity, by its process name under `up`
 * (scheduler-1, controller-manager-2, proxy-us-east-1a, ...): upstream's user names where upstream
 * has one (kubeadm's scheduler.conf, controller-manager.conf, kube-proxy's), kubelab's otherwise.
 */
export function componentIdentity(component: string): ClientIdentity {
  const base = component.replace(/-\d+$/, "");
  if (base === "scheduler") return { user: "system:kube-scheduler", groups: [] };
  if (base === "controller-manager") return { user: "system:kube-controller-manager", groups: [] };
  if (base === "cloud-controller") return { user: "system:cloud-controller-manager", groups: [] };
  if (component.startsWith("proxy")) return { user: "system:kube-proxy", groups: [] };
  if (component === "dns") return { user: "system:kube-dns", groups: [] };
  if (component === "ingress") return { user: "kubelab:ingress-controller", groups: [] };
  throw new Error(`no identity for component ${component}`);
}
