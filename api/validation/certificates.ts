// certificates.k8s.io validation, as upstream's pkg/apis/certificates/validation: the request is a PEM
// CERTIFICATE REQUEST whose signature verifies, a qualified signerName, known usages, conditions of unique
// types with Approved and Denied exclusive, and a status.certificate of CERTIFICATE blocks that never changes.

import { X509Certificate, createPublicKey, verify } from "node:crypto";
import forge from "node-forge";

import { KEY_USAGES, LegacyUnknownSignerName } from "../certificates/v1.ts";
import { child, duplicate, forbidden, index, invalid, notSupported, required, tooLong, type FieldError } from "./field.ts";
import { DNS1123LabelMaxLength, DNS1123SubdomainMaxLength, isDNS1123Label, isDNS1123Subdomain } from "./names.ts";
import { arr, rec, str, type Rec } from "./util.ts";

/** The Go `[]byte` JSON form: base64 text -> bytes (undefined when it is not base64). */
function base64Bytes(v: unknown): Buffer | undefined {
  if (typeof v !== "string") return undefined;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) return undefined;
  return Buffer.from(v, "base64");
}

/** The first PEM block of text (pem.Decode), or undefined. */
function firstPem(text: string): forge.pem.ObjectPEM | undefined {
  try {
    return forge.pem.decode(text)[0];
  } catch {
    return undefined;
  }
}

/** The signature algorithms x509 verifies CSRs with: OID -> the digest node:crypto verify() takes (null: none). */
const SIGNATURE_DIGESTS: Readonly<Record<string, string | null>> = {
  "1.2.840.113549.1.1.5": "sha1", // sha1WithRSAEncryption
  "1.2.840.113549.1.1.11": "sha256",
  "1.2.840.113549.1.1.12": "sha384",
  "1.2.840.113549.1.1.13": "sha512",
  "1.2.840.10045.4.3.2": "sha256", // ecdsa-with-SHA256
  "1.2.840.10045.4.3.3": "sha384",
  "1.2.840.10045.4.3.4": "sha512",
  "1.3.101.112": null, // Ed25519
};

/**
 * certificates.ParseCSR + CheckSignature: `request` (the PEM bytes) holds a CERTIFICATE REQUEST whose
 * self-signature verifies. Returns the error text upstream would, or undefined. Any key type node:crypto
 * knows (RSA, ECDSA, Ed25519) is accepted: the DER structure is walked here and the signature checked by
 * node:crypto, as forge's CSR parser only understands RSA keys.
 */
export function checkCertificateRequest(request: Buffer): string | undefined {
  const block = firstPem(request.toString("latin1"));
  if (!block || block.type !== "CERTIFICATE REQUEST") return "PEM block type must be CERTIFICATE REQUEST";
  const der = Buffer.from(block.body, "latin1");
  let tbs: Buffer;
  let spki: Buffer;
  let algorithm: string;
  let signature: Buffer;
  try {
    // CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature BIT STRING }
    const outer = readTLV(der, 0, 0x30);
    if (outer.end !== der.length) throw new Error("trailing data");
    const info = readTLV(der, outer.contentStart, 0x30);
    const alg = readTLV(der, info.end, 0x30);
    const sig = readTLV(der, alg.end, 0x03);
    if (sig.end !== outer.end) throw new Error("trailing data in sequence");
    // CertificationRequestInfo ::= SEQUENCE { version INTEGER, subject Name, subjectPKInfo, attributes [0] }
    const version = readTLV(der, info.contentStart, 0x02);
    const subject = readTLV(der, version.end, 0x30);
    const key = readTLV(der, subject.end, 0x30);
    const oid = readTLV(der, alg.contentStart, 0x06);
    tbs = der.subarray(info.start, info.end);
    spki = der.subarray(key.start, key.end);
    algorithm = forge.asn1.derToOid(forge.util.createBuffer(der.subarray(oid.contentStart, oid.end).toString("latin1")));
    // a BIT STRING's first content byte counts the unused bits (0 for signatures)
    signature = der.subarray(sig.contentStart + 1, sig.end);
  } catch {
    return "x509: malformed certificate request";
  }
  if (!(algorithm in SIGNATURE_DIGESTS)) return "x509: cannot verify signature: algorithm unimplemented";
  try {
    const publicKey = createPublicKey({ key: spki, format: "der", type: "spki" });
    const ok = verify(SIGNATURE_DIGESTS[algorithm] ?? null, tbs, { key: publicKey, dsaEncoding: "der" }, signature);
    return ok ? undefined : "x509: signature verification failure";
  } catch (e) {
    return `x509: failed to parse public key: ${(e as Error).message}`;
  }
}

/** One DER tag-length-value at `off` with the expected tag: where it starts, where its content starts and ends. */
function readTLV(der: Buffer, off: number, tag: number): { start: number; contentStart: number; end: number } {
  if (der[off] !== tag) throw new Error(`expected tag ${tag} at ${off}`);
  let len = der[off + 1];
  if (len === undefined) throw new Error("truncated");
  let contentStart = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error("bad length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (der[contentStart + i] ?? 0);
    contentStart += n;
  }
  const end = contentStart + len;
  if (end > der.length) throw new Error("truncated");
  return { start: off, contentStart, end };
}

/** validateCertificate: status.certificate holds one or more CERTIFICATE blocks without headers. */
export function checkIssuedCertificate(pemData: Buffer): string | undefined {
  if (pemData.length === 0) return undefined;
  let blocks: forge.pem.ObjectPEM[];
  try {
    blocks = forge.pem.decode(pemData.toString("latin1"));
  } catch {
    blocks = [];
  }
  if (blocks.length === 0) return "must contain at least one CERTIFICATE PEM block";
  for (const b of blocks) {
    if (b.type !== "CERTIFICATE") return `only CERTIFICATE PEM blocks are allowed, found "${b.type}"`;
    if (b.procType || b.contentDomain || b.dekInfo || (b.headers?.length ?? 0) > 0) return "no PEM block headers are permitted";
    try {
      new X509Certificate(Buffer.from(b.body, "latin1"));
    } catch (e) {
      return `x509: malformed certificate: ${(e as Error).message}`;
    }
  }
  return undefined;
}

/** ValidateSignerName: "<a domain with a dot>/<a path of DNS-1123 subdomain characters>". */
export function validateSignerName(fldPath: string, signerName: string): FieldError[] {
  if (signerName === "") return [required(fldPath, "")];
  const segments = signerName.split("/");
  if (segments.length !== 2) return [invalid(fldPath, signerName, "must be a fully qualified domain and path of the form 'example.com/signer-name'")];
  const [domain = "", path = ""] = segments;
  const errs: FieldError[] = [];
  if (domain.length > DNS1123SubdomainMaxLength) errs.push(tooLong(fldPath, domain, DNS1123SubdomainMaxLength));
  const labels = domain.split(".");
  for (const lbl of labels) {
    const msgs = isDNS1123Label(lbl);
    if (msgs.length > 0) {
      // one bad label is enough: the others' messages would be indistinguishable
      for (const msg of msgs) errs.push(invalid(fldPath, domain, `validating label "${lbl}": ${msg}`));
      break;
    }
  }
  if (labels.length < 2) errs.push(invalid(fldPath, domain, "should be a domain with at least two segments separated by dots"));
  const maxPath = DNS1123SubdomainMaxLength + DNS1123LabelMaxLength + 1;
  if (path.length > maxPath) errs.push(tooLong(fldPath, path, maxPath));
  for (const msg of isDNS1123Subdomain(path)) errs.push(invalid(fldPath, path, msg));
  return errs;
}

const SORTED_USAGES = [...KEY_USAGES].sort();
const TRUE_FALSE_UNKNOWN = ["True", "False", "Unknown"];

/** validateConditions: types set and unique, Approved/Denied only "True" and never both. */
function validateConditions(fldPath: string, conditions: unknown[]): FieldError[] {
  const errs: FieldError[] = [];
  const seen = new Set<string>();
  let hasApproved = false;
  let hasDenied = false;
  conditions.forEach((raw, i) => {
    const c = rec(raw);
    const type = str(c.type);
    const status = str(c.status);
    const p = index(fldPath, i);
    if (type === "") errs.push(required(child(p, "type"), ""));
    if (!TRUE_FALSE_UNKNOWN.includes(status)) errs.push(notSupported(child(p, "status"), status, TRUE_FALSE_UNKNOWN));
    if (type === "Approved" || type === "Denied") {
      if (type === "Approved") hasApproved = true;
      else hasDenied = true;
      if ((type === "Approved" && hasDenied) || (type === "Denied" && hasApproved)) {
        errs.push(invalid(child(p, "type"), type, "Approved and Denied conditions are mutually exclusive"));
      }
      if (status !== "True") errs.push(notSupported(child(p, "status"), status, ["True"]));
    }
    if (seen.has(type)) errs.push(duplicate(child(p, "type"), type));
    seen.add(type);
  });
  return errs;
}

/** ValidateCertificateSigningRequestCreate (certificates/v1: the legacy signer is refused). */
export function validateCertificateSigningRequest(o: Rec): FieldError[] {
  const errs: FieldError[] = [];
  const spec = rec(o.spec);
  const request = base64Bytes(spec.request);
  if (request === undefined || request.length === 0) {
    errs.push(invalid("spec.request", spec.request ?? "", "PEM block type must be CERTIFICATE REQUEST"));
  } else {
    const err = checkCertificateRequest(request);
    // field.Invalid of a []byte prints the bytes; upstream's message is what matters
    if (err) errs.push(invalid("spec.request", "<certificate request data>", err));
  }
  const usages = arr(spec.usages);
  if (usages.length === 0) errs.push(required("spec.usages", ""));
  usages.forEach((u, i) => {
    if (typeof u !== "string" || !(KEY_USAGES as readonly string[]).includes(u)) errs.push(notSupported(index("spec.usages", i), u, SORTED_USAGES));
  });
  const seen = new Set<unknown>();
  usages.forEach((u, i) => {
    if (seen.has(u)) errs.push(duplicate(index("spec.usages", i), u));
    seen.add(u);
  });
  const signerName = str(spec.signerName);
  if (signerName === LegacyUnknownSignerName) errs.push(invalid("spec.signerName", signerName, "the legacy signerName is not allowed via this API version"));
  else errs.push(...validateSignerName("spec.signerName", signerName));
  if (spec.expirationSeconds !== undefined && spec.expirationSeconds !== null) {
    if (typeof spec.expirationSeconds !== "number" || !Number.isInteger(spec.expirationSeconds)) errs.push(invalid("spec.expirationSeconds", spec.expirationSeconds, "must be an integer"));
    else if (spec.expirationSeconds < 600) errs.push(invalid("spec.expirationSeconds", spec.expirationSeconds, "may not specify a duration less than 600 seconds (10 minutes)"));
  }
  const status = rec(o.status);
  errs.push(...validateConditions("status.conditions", arr(status.conditions)));
  if (status.certificate !== undefined && status.certificate !== null && status.certificate !== "") {
    const cert = base64Bytes(status.certificate);
    const err = cert === undefined ? "must contain at least one CERTIFICATE PEM block" : checkIssuedCertificate(cert);
    if (err) errs.push(invalid("status.certificate", "<certificate data>", err));
  }
  return errs;
}

function conditionsOfType(o: Rec, type: string): Rec[] {
  return arr(rec(o.status).conditions).map(rec).filter((c) => c.type === type);
}

/**
 * validateCertificateSigningRequestUpdate: Approved, Denied and Failed conditions are never removed and
 * an issued certificate never changes. (What each endpoint may change at all is its strategy's job.)
 */
export function validateCertificateSigningRequestUpdate(o: Rec, old: Rec): FieldError[] {
  return [...validateCertificateSigningRequest(o), ...validateCertificateSigningRequestTransition(o, old)];
}

/** The update-only half of validateCertificateSigningRequestUpdate (validateObjectUpdate runs the create rules). */
export function validateCertificateSigningRequestTransition(o: Rec, old: Rec): FieldError[] {
  const errs: FieldError[] = [];
  for (const t of ["Approved", "Denied", "Failed"]) {
    if (conditionsOfType(o, t).length < conditionsOfType(old, t).length) {
      errs.push(forbidden("status.conditions", `updates may not remove a condition of type "${t}"`));
    }
  }
  const oldCert = str(rec(old.status).certificate);
  if (oldCert !== "" && str(rec(o.status).certificate) !== oldCert) {
    errs.push(invalid("status.certificate", "<certificate data>", "updates may not modify existing certificate content"));
  }
  return errs;
}
