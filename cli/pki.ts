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
  return { dir, caCert: ca.cert, caKey: ca.key, serverCert: serving.cert, serverKey: serving.key, tokenFile, adminToken };
}
