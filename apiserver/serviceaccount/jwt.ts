// ServiceAccount JWTs (upstream pkg/serviceaccount/jwt.go): keys from PEM files, the key id, signing
// with the issuer's private key and verifying against every public key the apiserver trusts.

import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";

/** The JWS algorithms upstream signs with, chosen by the key (RSA → RS256, ECDSA by curve). */
export type SigningAlgorithm = "RS256" | "ES256" | "ES384" | "ES512";

/** go-jose's error for a signature that no key verifies; the authenticator's 401 message. */
export const ERR_CRYPTO_FAILURE = "go-jose/go-jose: error in cryptographic primitive";

/** The registered claims of RFC 7519 that ServiceAccount tokens carry (go-jose's jwt.Claims). */
export interface PublicClaims {
  iss?: string;
  sub?: string;
  /** Always an array here; a single string is accepted when parsing (RFC 7519 allows both). */
  aud?: string[];
  exp?: number;
  nbf?: number;
  iat?: number;
  jti?: string;
}

/** A header and claims as a verified (or not yet verified) token carries them. */
export interface ParsedToken {
  header: { alg?: string; kid?: string; typ?: string };
  claims: PublicClaims & Record<string, unknown>;
  /** header.payload, the bytes the signature covers. */
  signingInput: string;
  signature: Buffer;
}

/** Which algorithm a key signs with, as upstream's signerFromKey picks it; undefined for keys it cannot use. */
export function algorithmFor(key: KeyObject): SigningAlgorithm | undefined {
  if (key.asymmetricKeyType === "rsa") return "RS256";
  if (key.asymmetricKeyType === "ec") {
    switch (key.asymmetricKeyDetails?.namedCurve) {
      case "prime256v1":
        return "ES256";
      case "secp384r1":
        return "ES384";
      case "secp521r1":
        return "ES512";
    }
  }
  return undefined;
}

function hashFor(alg: SigningAlgorithm): string {
  return alg === "ES384" ? "sha384" : alg === "ES512" ? "sha512" : "sha256";
}

/**
 * upstream's keyIDFromPublicKey: base64url (unpadded) of the SHA-256 of the public key's PKIX DER.
 * Relying parties (an STS, an OIDC client) pick the JWKS entry by it.
 */
export function keyIDFromPublicKey(key: KeyObject): string {
  const pub = key.type === "private" ? createPublicKey(key) : key;
  return createHash("sha256").update(pub.export({ type: "spki", format: "der" })).digest("base64url");
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?-----END \1-----/g;

/**
 * The public keys in PEM text (keyutil.ParsePublicKeysPEM): public key blocks, and the public half
 * of private key blocks, so that --service-account-key-file may name either. Other blocks
 * (certificates) are skipped; text with no key at all is an error.
 */
export function parsePublicKeysPEM(pem: string): KeyObject[] {
  const keys: KeyObject[] = [];
  for (const m of pem.matchAll(PEM_BLOCK)) {
    const type = m[1]!;
    if (type.endsWith("PRIVATE KEY")) keys.push(createPublicKey(createPrivateKey(m[0])));
    else if (type.endsWith("PUBLIC KEY")) keys.push(createPublicKey(m[0]));
  }
  const usable = keys.filter((k) => algorithmFor(k) !== undefined);
  if (usable.length === 0) throw new Error("data does not contain any valid RSA or ECDSA public keys");
  return usable;
}

/** The first private key in PEM text (keyutil.ParsePrivateKeyPEM). */
export function parsePrivateKeyPEM(pem: string): KeyObject {
  for (const m of pem.matchAll(PEM_BLOCK)) {
    if (!m[1]!.endsWith("PRIVATE KEY")) continue;
    const key = createPrivateKey(m[0]);
    if (!algorithmFor(key)) throw new Error(`unsupported private key type ${key.asymmetricKeyType}`);
    return key;
  }
  throw new Error("data does not contain a valid RSA or ECDSA private key");
}

/** --service-account-key-file: every key of every file, with the file named in a read or parse error. */
export function readPublicKeyFiles(files: readonly string[]): KeyObject[] {
  return files.flatMap((f) => {
    try {
      return parsePublicKeysPEM(readFileSync(f, "utf8"));
    } catch (e) {
      throw new Error(`failed to parse service-account-key-file ${f}: ${(e as Error).message}`, { cause: e });
    }
  });
}

/** --service-account-signing-key-file (or the controller-manager's --service-account-private-key-file). */
export function readPrivateKeyFile(file: string): KeyObject {
  try {
    return parsePrivateKeyPEM(readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`failed to parse service-account-signing-key-file ${file}: ${(e as Error).message}`, { cause: e });
  }
}

/** A copy of a JSON value with every object's keys in sorted order. */
function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (typeof v !== "object" || v === null) return v;
  const o = v as Record<string, unknown>;
  return Object.fromEntries(
    Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => [k, sortKeys(o[k])]),
  );
}

function b64json(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString("base64url");
}

/**
 * upstream's JWTTokenGenerator: signs claims with one private key, stamping `iss` with its issuer
 * and the header with the key's id (a compact JWS, as go-jose writes it: {"alg","kid"}).
 */
export class TokenGenerator {
  readonly alg: SigningAlgorithm;
  readonly keyID: string;

  constructor(
    readonly issuer: string,
    private readonly key: KeyObject,
  ) {
    if (key.type !== "private") throw new Error("a token generator needs a private key");
    const alg = algorithmFor(key);
    if (!alg) throw new Error(`unsupported private key type ${key.asymmetricKeyType}`);
    this.alg = alg;
    this.keyID = keyIDFromPublicKey(key);
  }

  generateToken(claims: PublicClaims, privateClaims: Record<string, unknown>): string {
    // go-jose merges the public and private claim sets into one map, so the payload's keys come
    // out sorted, at every level, as Go's encoding/json writes maps.
    const payload = sortKeys({ ...claims, iss: this.issuer, ...privateClaims });
    const input = `${b64json({ alg: this.alg, kid: this.keyID })}.${b64json(payload)}`;
    const signature = this.alg === "RS256" ? sign("sha256", Buffer.from(input), this.key) : sign(hashFor(this.alg), Buffer.from(input), { key: this.key, dsaEncoding: "ieee-p1363" });
    return `${input}.${signature.toString("base64url")}`;
  }
}

/**
 * Splits a compact JWS without verifying it; undefined when `token` is not one (three base64url
 * parts whose first two are JSON objects). Nothing in the result may be trusted before verifySignature.
 */
export function parseToken(token: string): ParsedToken | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  const [h, p, s] = parts as [string, string, string];
  if (!/^[A-Za-z0-9_-]+$/.test(h) || !/^[A-Za-z0-9_-]+$/.test(p) || !/^[A-Za-z0-9_-]*$/.test(s)) return undefined;
  try {
    const header = JSON.parse(Buffer.from(h, "base64url").toString("utf8")) as unknown;
    const claims = JSON.parse(Buffer.from(p, "base64url").toString("utf8")) as unknown;
    if (!isObject(header) || !isObject(claims)) return undefined;
    const c = claims as PublicClaims & Record<string, unknown>;
    // RFC 7519: "aud" may be one string.
    if (typeof c.aud === "string") c.aud = [c.aud];
    return { header: header as ParsedToken["header"], claims: c, signingInput: `${h}.${p}`, signature: Buffer.from(s, "base64url") };
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Whether `key` made the token's signature with the algorithm its header names (never "none", never a mismatched key type). */
export function verifySignature(tok: ParsedToken, key: KeyObject): boolean {
  const alg = algorithmFor(key);
  if (!alg || tok.header.alg !== alg) return false;
  const data = Buffer.from(tok.signingInput);
  try {
    return alg === "RS256" ? verify("sha256", data, key, tok.signature) : verify(hashFor(alg), data, { key, dsaEncoding: "ieee-p1363" }, tok.signature);
  } catch {
    return false;
  }
}

/** go-jose's jwt.DefaultLeeway: clocks may disagree by this much on exp, nbf and iat. */
export const DEFAULT_LEEWAY_SECONDS = 60;

/** jwt.Claims.ValidateWithLeeway's time checks; the error names what failed, undefined when the token is current. */
export function validateTimes(c: PublicClaims, nowSeconds: number, leeway = DEFAULT_LEEWAY_SECONDS): "expired" | "not valid yet" | "issued in the future" | undefined {
  if (typeof c.nbf === "number" && nowSeconds + leeway < c.nbf) return "not valid yet";
  if (typeof c.exp === "number" && nowSeconds - leeway > c.exp) return "expired";
  if (typeof c.iat === "number" && nowSeconds + leeway < c.iat) return "issued in the future";
  return undefined;
}

/** A JSON Web Key for a public key (RFC 7517), as the OIDC discovery JWKS lists it. */
export interface JSONWebKey {
  use: "sig";
  kty: string;
  kid: string;
  alg: SigningAlgorithm;
  n?: string;
  e?: string;
  crv?: string;
  x?: string;
  y?: string;
}

/** upstream's publicJWKSFromKeys entry, in go-jose's field order: use, kty, kid, crv, alg, x, y, n, e. */
export function publicJWK(key: KeyObject): JSONWebKey {
  const pub = key.type === "private" ? createPublicKey(key) : key;
  const alg = algorithmFor(pub);
  if (!alg) throw new Error(`unsupported public key type ${pub.asymmetricKeyType}`);
  const jwk = pub.export({ format: "jwk" });
  const kid = keyIDFromPublicKey(pub);
  return jwk.kty === "RSA"
    ? { use: "sig", kty: "RSA", kid, alg, n: jwk.n, e: jwk.e }
    : { use: "sig", kty: String(jwk.kty), kid, crv: jwk.crv, alg, x: jwk.x, y: jwk.y };
}
