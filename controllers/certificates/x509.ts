// The x509 the CSR controllers and the kubelet's TLS bootstrap need, for any key type Go's crypto/x509
// knows (RSA, ECDSA, Ed25519): parsing a PKCS#10 request (capihelper.ParseCSR), building one, and
// issuing a certificate from one as upstream's authority.Sign does. node-forge's own CSR and
// certificate code only understands RSA keys, so the DER is walked and written with forge's ASN.1
// reader/writer and every signature is made and checked by node:crypto (fast: no JS big-number RSA).

import { createPublicKey, randomBytes, sign, verify, type KeyObject } from "node:crypto";
import forge from "node-forge";

const asn1 = forge.asn1;
type Asn1 = forge.asn1.Asn1;

/** forge's ASN.1 helpers that @types/node-forge does not declare. */
const pkiExtra = forge.pki as unknown as {
  RDNAttributesAsArray(rdn: Asn1): { type: string; value: string; shortName?: string }[];
  certificateExtensionFromAsn1(ext: Asn1): { id: string; name?: string; critical?: boolean; value: string; altNames?: { type: number; value: string; ip?: string }[] };
};

const OID = {
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
  extensionRequest: "1.2.840.113549.1.9.14",
  subjectAltName: "2.5.29.17",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  basicConstraints: "2.5.29.19",
  subjectKeyIdentifier: "2.5.29.14",
  authorityKeyIdentifier: "2.5.29.35",
  sha256WithRSA: "1.2.840.113549.1.1.11",
  sha384WithRSA: "1.2.840.113549.1.1.12",
  sha512WithRSA: "1.2.840.113549.1.1.13",
  sha1WithRSA: "1.2.840.113549.1.1.5",
  ecdsaSHA256: "1.2.840.10045.4.3.2",
  ecdsaSHA384: "1.2.840.10045.4.3.3",
  ecdsaSHA512: "1.2.840.10045.4.3.4",
  ed25519: "1.3.101.112",
} as const;

/** The digest node:crypto verifies a signature algorithm with (null: the algorithm hashes itself, Ed25519). */
const SIGNATURE_HASH: Record<string, string | null> = {
  [OID.sha256WithRSA]: "sha256",
  [OID.sha384WithRSA]: "sha384",
  [OID.sha512WithRSA]: "sha512",
  [OID.sha1WithRSA]: "sha1",
  [OID.ecdsaSHA256]: "sha256",
  [OID.ecdsaSHA384]: "sha384",
  [OID.ecdsaSHA512]: "sha512",
  [OID.ed25519]: null,
};

/** A parsed PKCS#10 request: the fields the approver and signer look at, and the parts the certificate copies. */
export interface CertificateRequest {
  commonName: string;
  organizations: string[];
  dnsNames: string[];
  ipAddresses: string[];
  emailAddresses: string[];
  uris: string[];
  publicKey: KeyObject;
  /** The subject Name and SubjectPublicKeyInfo as they are in the request, copied into the certificate. */
  subjectAsn1: Asn1;
  spkiAsn1: Asn1;
  /** The subjectAltName extension's DER value (the GeneralNames), when the request has one. */
  sanValue?: string;
}

const der = (a: Asn1): Buffer => Buffer.from(asn1.toDer(a).getBytes(), "binary");
// decodeBitStrings off: a BIT STRING holding DER (an ECDSA signature, a public key) stays bytes.
const fromDer = (b: Buffer | string): Asn1 =>
  asn1.fromDer(forge.util.createBuffer(typeof b === "string" ? b : b.toString("binary")), { strict: true, decodeBitStrings: false } as unknown as boolean);
const seq = (items: Asn1[]): Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, items);
const oid = (o: string): Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(o).getBytes());
const octets = (s: string): Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, s);
const bitString = (b: Buffer): Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, "\x00" + b.toString("binary"));
const children = (a: Asn1 | undefined): Asn1[] => (a && Array.isArray(a.value) ? (a.value as Asn1[]) : []);

/** The first PEM block of `type` (e.g. "CERTIFICATE REQUEST") as DER; throws when there is none. */
export function pemBlock(pem: string, type: string): Buffer {
  const block = forge.pem.decode(pem).find((b) => b.type === type);
  if (!block) throw new Error(`no ${type} PEM block`);
  return Buffer.from(block.body, "binary");
}

/**
 * Parses spec.request (base64 of the PEM, as certificates/v1 carries it, or the PEM itself) and checks
 * its self-signature, as capihelper.ParseCSR with CheckSignature does. Throws with Go's messages
 * ("PEM block type must be CERTIFICATE REQUEST", ...) on anything unusable.
 */
export function parseCertificateRequest(request: string | Buffer): CertificateRequest {
  const text = typeof request === "string" ? request : request.toString("utf8");
  const pem = text.includes("-----BEGIN") ? text : Buffer.from(text, "base64").toString("utf8");
  let body: Buffer;
  try {
    body = pemBlock(pem, "CERTIFICATE REQUEST");
  } catch {
    throw new Error("PEM block type must be CERTIFICATE REQUEST");
  }
  let info: Asn1, alg: Asn1, sig: Asn1;
  try {
    [info, alg, sig] = children(fromDer(body)) as [Asn1, Asn1, Asn1];
    if (!info || !alg || !sig || sig.type !== asn1.Type.BITSTRING) throw new Error("bad structure");
  } catch (e) {
    throw new Error(`x509: malformed certificate request: ${(e as Error).message}`);
  }
  const [, subjectAsn1, spkiAsn1, attrs] = children(info);
  if (!subjectAsn1 || !spkiAsn1) throw new Error("x509: malformed certificate request");
  const publicKey = createPublicKey({ key: der(spkiAsn1), format: "der", type: "spki" });
  const algOid = asn1.derToOid(forge.util.createBuffer(children(alg)[0]?.value as string));
  if (!(algOid in SIGNATURE_HASH)) throw new Error(`x509: cannot verify signature: algorithm unimplemented (${algOid})`);
  const signature = Buffer.from((sig.value as string).slice(1), "binary");
  if (!verify(SIGNATURE_HASH[algOid] ?? null, der(info), publicKey, signature)) throw new Error("x509: signature of the certificate request does not verify");

  const out: CertificateRequest = { commonName: "", organizations: [], dnsNames: [], ipAddresses: [], emailAddresses: [], uris: [], publicKey, subjectAsn1, spkiAsn1 };
  for (const a of pkiExtra.RDNAttributesAsArray(subjectAsn1)) {
    if (a.type === OID.commonName) out.commonName = a.value;
    else if (a.type === OID.organization) out.organizations.push(a.value);
  }
  for (const attr of children(attrs)) {
    const [typ, values] = children(attr);
    if (!typ || asn1.derToOid(forge.util.createBuffer(typ.value as string)) !== OID.extensionRequest) continue;
    for (const ext of children(children(values)[0])) {
      const e = pkiExtra.certificateExtensionFromAsn1(ext);
      if (e.id !== OID.subjectAltName) continue;
      out.sanValue = e.value;
      for (const n of e.altNames ?? []) {
        if (n.type === 1) out.emailAddresses.push(n.value);
        else if (n.type === 2) out.dnsNames.push(n.value);
        else if (n.type === 6) out.uris.push(n.value);
        else if (n.type === 7) out.ipAddresses.push(n.ip ?? "");
      }
    }
  }
  return out;
}

/** A Name: one RDN per attribute, the organizations first and the common name last (Go's order), as UTF8String. */
function nameAsn1(subject: { commonName: string; organizations?: string[] }): Asn1 {
  const rdn = (type: string, value: string) =>
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, [seq([oid(type), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTF8, false, forge.util.encodeUtf8(value))])]);
  return seq([...(subject.organizations ?? []).map((o) => rdn(OID.organization, o)), rdn(OID.commonName, subject.commonName)]);
}

/** The AlgorithmIdentifier and node:crypto digest a private key signs with (SHA-256 as Go's default for RSA and P-256). */
function signatureAlgorithm(key: KeyObject): { alg: Asn1; hash: string | null } {
  switch (key.asymmetricKeyType) {
    case "rsa":
      return { alg: seq([oid(OID.sha256WithRSA), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, "")]), hash: "sha256" };
    case "ec":
      return { alg: seq([oid(OID.ecdsaSHA256)]), hash: "sha256" };
    case "ed25519":
      return { alg: seq([oid(OID.ed25519)]), hash: null };
    default:
      throw new Error(`unsupported signing key type ${key.asymmetricKeyType}`);
  }
}

/** Signs `tbs` and wraps it as SEQUENCE { tbs, algorithm, BIT STRING signature } (a certificate or a request). */
function signed(tbs: Asn1, key: KeyObject): Buffer {
  const { alg, hash } = signatureAlgorithm(key);
  return der(seq([tbs, alg, bitString(sign(hash, der(tbs), key))]));
}

/**
 * A PEM "CERTIFICATE REQUEST" for the subject, signed with `privateKey` (the kubelet's
 * csr.MakeCSR: no SANs, no extensions).
 */
export function createCertificateRequest(subject: { commonName: string; organizations?: string[] }, privateKey: KeyObject): string {
  const publicKey = createPublicKey(privateKey);
  const spki = fromDer(publicKey.export({ type: "spki", format: "der" }));
  const info = seq([
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, "\x00"),
    nameAsn1(subject),
    spki,
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, []),
  ]);
  return toPem("CERTIFICATE REQUEST", signed(info, privateKey));
}

export function toPem(type: string, body: Buffer): string {
  return forge.pem.encode({ type, body: body.toString("binary") }, { maxline: 64 }).replace(/\r\n/g, "\n");
}

/** Key usages of certificates/v1 to x509 KeyUsage bits (Go's bit numbers: digitalSignature = 0). */
const KEY_USAGE_BITS: Record<string, number> = {
  signing: 0,
  "digital signature": 0,
  "content commitment": 1,
  "key encipherment": 2,
  "data encipherment": 3,
  "key agreement": 4,
  "cert sign": 5,
  "crl sign": 6,
  "encipher only": 7,
  "decipher only": 8,
};
const EXT_KEY_USAGE_OIDS: Record<string, string> = {
  any: "2.5.29.37.0",
  "server auth": "1.3.6.1.5.5.7.3.1",
  "client auth": "1.3.6.1.5.5.7.3.2",
  "code signing": "1.3.6.1.5.5.7.3.3",
  "email protection": "1.3.6.1.5.5.7.3.4",
  "s/mime": "1.3.6.1.5.5.7.3.4",
  "ipsec end system": "1.3.6.1.5.5.7.3.5",
  "ipsec tunnel": "1.3.6.1.5.5.7.3.6",
  "ipsec user": "1.3.6.1.5.5.7.3.7",
  timestamping: "1.3.6.1.5.5.7.3.8",
  "ocsp signing": "1.3.6.1.5.5.7.3.9",
  "microsoft sgc": "1.3.6.1.4.1.311.10.3.3",
  "netscape sgc": "2.16.840.1.113730.4.1",
};

/** upstream's keyUsagesFromStrings: the KeyUsage bits and ExtKeyUsage OIDs; throws on an unknown usage. */
export function keyUsagesFromStrings(usages: readonly string[]): { bits: number[]; ext: string[] } {
  const bits = new Set<number>();
  const ext = new Set<string>();
  const unknown: string[] = [];
  for (const u of usages) {
    if (u in KEY_USAGE_BITS) bits.add(KEY_USAGE_BITS[u]!);
    else if (u in EXT_KEY_USAGE_OIDS) ext.add(EXT_KEY_USAGE_OIDS[u]!);
    else unknown.push(u);
  }
  if (unknown.length) throw new Error(`unrecognized usage values: ${JSON.stringify(unknown.sort())}`);
  return { bits: [...bits].sort((a, b) => a - b), ext: [...ext] };
}

/** Go's marshalKeyUsage: bit 0 is the high bit of the first byte; one byte unless decipherOnly; unused trailing bits counted. */
function keyUsageBitString(bits: number[]): Asn1 {
  const bytes = Buffer.alloc(bits.some((b) => b >= 8) ? 2 : 1);
  for (const b of bits) bytes[b >> 3]! |= 0x80 >> (b & 7);
  const last = bytes[bytes.length - 1]!;
  let unused = 0;
  while (unused < 8 && last !== 0 && !(last & (1 << unused))) unused++;
  if (last === 0) unused = 0;
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, String.fromCharCode(unused) + bytes.toString("binary"));
}

function extension(id: string, critical: boolean, value: Asn1 | string): Asn1 {
  const body = typeof value === "string" ? value : asn1.toDer(value).getBytes();
  return seq([oid(id), ...(critical ? [asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BOOLEAN, false, "\xff")] : []), octets(body)]);
}

function timeAsn1(d: Date): Asn1 {
  // RFC 5280: UTCTime through 2049, GeneralizedTime from 2050.
  return d.getUTCFullYear() < 2050
    ? asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(d))
    : asn1.create(asn1.Class.UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(d));
}

/** A certificate authority: its certificate (PEM) and private key. */
export interface CertificateAuthority {
  certPem: string;
  key: KeyObject;
}

/**
 * Issues a certificate for `req` as upstream's authority.Sign with PermissiveSigningPolicy: the
 * request's subject, public key and SANs; key usage / extended key usage from `usages`; basic
 * constraints CA:FALSE; the CA's subject key id as authority key id; serial 128 random bits;
 * valid [notBefore, notAfter]. Returns the PEM.
 */
export function issueCertificate(ca: CertificateAuthority, req: CertificateRequest, usages: readonly string[], notBefore: Date, notAfter: Date): string {
  const caTbs = children(children(fromDer(pemBlock(ca.certPem, "CERTIFICATE")))[0]);
  // TBSCertificate: [0] version, serial, sigAlg, issuer, validity, subject, spki, ... [3] extensions
  const caSubject = caTbs[5]!;
  let caSKI: string | undefined;
  for (const ext of children(children(caTbs.find((c) => c.tagClass === asn1.Class.CONTEXT_SPECIFIC && c.type === 3))[0])) {
    const e = pkiExtra.certificateExtensionFromAsn1(ext);
    if (e.id === OID.subjectKeyIdentifier) caSKI = fromDer(e.value).value as string;
  }
  const { bits, ext } = keyUsagesFromStrings(usages);
  const exts: Asn1[] = [];
  if (bits.length) exts.push(extension(OID.keyUsage, true, keyUsageBitString(bits)));
  if (ext.length) exts.push(extension(OID.extKeyUsage, false, seq(ext.map(oid))));
  exts.push(extension(OID.basicConstraints, true, seq([])));
  if (caSKI) exts.push(extension(OID.authorityKeyIdentifier, false, seq([asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, false, caSKI)])));
  if (req.sanValue) exts.push(extension(OID.subjectAltName, false, req.sanValue));
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01; // positive, and no leading zero byte to strip
  const tbs = seq([
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, "\x02")]),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, serial.toString("binary")),
    signatureAlgorithm(ca.key).alg,
    caSubject,
    seq([timeAsn1(notBefore), timeAsn1(notAfter)]),
    req.subjectAsn1,
    req.spkiAsn1,
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 3, true, [seq(exts)]),
  ]);
  return toPem("CERTIFICATE", signed(tbs, ca.key));
}
