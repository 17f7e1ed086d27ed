// TLS for the ingress controller: the certificates of the Secrets named in spec.tls, chosen by SNI
// (exact host, then a one-label wildcard), and a self-signed default certificate for every other
// name, as ingress-nginx's "Kubernetes Ingress Controller Fake Certificate".

import { generateKeyPairSync, randomBytes, type X509Certificate as X509 } from "node:crypto";
import { X509Certificate } from "node:crypto";
import tls from "node:tls";
import forge from "node-forge";
import type { Ingress, Secret } from "../../api/index.ts";
import { byAge } from "./routing.ts";

export interface PemPair {
  cert: string;
  key: string;
}

/** A self-signed certificate for `commonName` (the default server's certificate), valid for a year. */
export function selfSignedCertificate(commonName = "Kubernetes Ingress Controller Fake Certificate", dnsNames: string[] = ["ingress.local"]): PemPair {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: "pkcs1", format: "pem" }).toString();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: "spki", format: "pem" }).toString());
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  cert.serialNumber = serial.toString("hex");
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 365 * 24 * 3600 * 1000);
  const attrs = [{ name: "organizationName", value: "Acme Co" }, { name: "commonName", value: commonName }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: "basicConstraints", cA: false },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
    { name: "extKeyUsage", serverAuth: true },
    { name: "subjectAltName", altNames: dnsNames.map((value) => ({ type: 2, value })) },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keyPem };
}

/** The certificates to serve: by exact host, by wildcard suffix, and the default. */
export interface CertificateTable {
  readonly exact: ReadonlyMap<string, tls.SecureContext>;
  readonly wildcard: ReadonlyMap<string, tls.SecureContext>;
  readonly fallback: tls.SecureContext;
}

/** A spec.tls entry that could not be used, for a Warning Event on its Ingress. */
export interface TLSProblem {
  ingress: Readonly<Ingress>;
  reason: "TLSSecretNotFound" | "InvalidTLSSecret";
  message: string;
}

interface CachedContext {
  version: string;
  ctx?: tls.SecureContext;
  error?: string;
}

/**
 * Builds certificate tables from Secrets, keeping one SecureContext per Secret version so a rebuild
 * after an unrelated change costs nothing.
 */
export class CertificateStore {
  private readonly contexts = new Map<string, CachedContext>();
  readonly fallback: tls.SecureContext;

  constructor(defaultCert: PemPair) {
    this.fallback = tls.createSecureContext(defaultCert);
  }

  /** The context of a kubernetes.io/tls Secret, or why it cannot serve. */
  context(secret: Readonly<Secret>): { ctx?: tls.SecureContext; error?: string } {
    const key = `${secret.metadata.namespace}/${secret.metadata.name}`;
    const version = `${secret.metadata.uid}/${secret.metadata.resourceVersion}`;
    const hit = this.contexts.get(key);
    if (hit && hit.version === version) return hit;
    const made = makeContext(secret);
    this.contexts.set(key, { version, ...made });
    return made;
  }

  /** Forgets Secrets no longer referenced (called after each build with the keys in use). */
  retain(keys: ReadonlySet<string>): void {
    for (const k of this.contexts.keys()) if (!keys.has(k)) this.contexts.delete(k);
  }

  build(ingresses: readonly Readonly<Ingress>[], secret: (namespace: string, name: string) => Readonly<Secret> | undefined): { table: CertificateTable; problems: TLSProblem[] } {
    const exact = new Map<string, tls.SecureContext>();
    const wildcard = new Map<string, tls.SecureContext>();
    const problems: TLSProblem[] = [];
    const used = new Set<string>();
    for (const ing of [...ingresses].sort(byAge)) {
      const ns = ing.metadata.namespace ?? "default";
      for (const t of ing.spec?.tls ?? []) {
        if (!t.secretName) continue;
        used.add(`${ns}/${t.secretName}`);
        const s = secret(ns, t.secretName);
        if (!s) {
          problems.push({ ingress: ing, reason: "TLSSecretNotFound", message: `secret "${ns}/${t.secretName}" not found; serving the default certificate for ${hostsText(t.hosts)}` });
          continue;
        }
        const { ctx, error } = this.context(s);
        if (!ctx) {
          problems.push({ ingress: ing, reason: "InvalidTLSSecret", message: `secret "${ns}/${t.secretName}": ${error}; serving the default certificate for ${hostsText(t.hosts)}` });
          continue;
        }
        // Hosts default to the rules' hosts (the spec's "wildcard host setting of the controller").
        const hosts = t.hosts?.length ? t.hosts : (ing.spec?.rules ?? []).map((r) => r.host ?? "").filter((h) => h);
        for (const raw of hosts) {
          const h = raw.toLowerCase();
          if (h.startsWith("*.")) {
            if (!wildcard.has(h.slice(2))) wildcard.set(h.slice(2), ctx);
          } else if (!exact.has(h)) exact.set(h, ctx);
        }
      }
    }
    this.retain(used);
    return { table: { exact, wildcard, fallback: this.fallback }, problems };
  }
}

function hostsText(hosts: string[] | undefined): string {
  return hosts?.length ? hosts.join(", ") : "its hosts";
}

function makeContext(secret: Readonly<Secret>): { ctx?: tls.SecureContext; error?: string } {
  if (secret.type !== "kubernetes.io/tls") return { error: `type is ${secret.type ?? "Opaque"}, not kubernetes.io/tls` };
  const crt = secret.data?.["tls.crt"];
  const key = secret.data?.["tls.key"];
  if (!crt || !key) return { error: "tls.crt or tls.key is missing" };
  const certPem = Buffer.from(crt, "base64").toString();
  const keyPem = Buffer.from(key, "base64").toString();
  let x509: X509;
  try {
    x509 = new X509Certificate(certPem);
  } catch (e) {
    return { error: `tls.crt is not a PEM certificate (${(e as Error).message})` };
  }
  if (Date.parse(x509.validTo) < Date.now()) return { error: `the certificate expired ${x509.validTo}` };
  try {
    return { ctx: tls.createSecureContext({ cert: certPem, key: keyPem }) };
  } catch (e) {
    return { error: `tls.key does not go with tls.crt (${(e as Error).message})` };
  }
}

/** SNI selection: exact host, then the wildcard of its parent domain, else the default certificate. */
export function selectContext(table: CertificateTable, servername: string | undefined): tls.SecureContext {
  if (!servername) return table.fallback;
  const h = servername.toLowerCase();
  const exact = table.exact.get(h);
  if (exact) return exact;
  const dot = h.indexOf(".");
  if (dot > 0) {
    const w = table.wildcard.get(h.slice(dot + 1));
    if (w) return w;
  }
  return table.fallback;
}
