// The simulated cloud's STS: AssumeRoleWithWebIdentity as AWS STS answers it for EKS's IAM Roles for
// Service Accounts (IRSA). A pod presents its projected ServiceAccount token (audience
// sts.amazonaws.com); STS knows the cluster only as an OpenID Connect provider — the issuer URL, whose
// /.well-known/openid-configuration names the JWKS that verifies the token — and a role's trust
// policy, which says which token subjects (system:serviceaccount:<ns>:<name>) and audiences may
// assume it. Nothing here talks to the apiserver's API: like AWS, it sees only discovery and the
// token, so a token stays good here until it expires even after its pod is gone (the apiserver
// itself refuses it at once).
//
// Wire shapes are AWS's (Query API, Version 2011-06-15): a form-encoded POST (or GET) with
// Action=AssumeRoleWithWebIdentity, RoleArn, RoleSessionName, WebIdentityToken, DurationSeconds;
// an XML AssumeRoleWithWebIdentityResponse, or an XML ErrorResponse with AWS's codes and messages
// (InvalidIdentityToken, ExpiredTokenException, AccessDenied, ValidationError).

import { createPublicKey, randomBytes, randomUUID, verify, type JsonWebKey, type KeyObject } from "node:crypto";
import http from "node:http";
import https from "node:https";
import { parse as parseYaml } from "yaml";

/** One IAM role and its trust policy (the StringLike conditions on `<issuer>:sub` and `<issuer>:aud`). */
export interface StsRole {
  arn: string;
  /** Token subjects allowed, `*` and `?` as in IAM's StringLike (e.g. system:serviceaccount:default:*). */
  subjects: string[];
  /** Audiences allowed (default sts.amazonaws.com). */
  audiences: string[];
  /** The longest session it grants, in seconds (IAM's MaxSessionDuration, default 3600). */
  maxSessionSeconds: number;
}

export interface StsConfig {
  /** The OIDC provider's issuer URL as the tokens name it (`iss`). */
  issuer: string;
  /** Where the discovery document is fetched (default: the issuer). */
  discoveryURL: string;
  /** PEM CA bundle for https discovery (the cluster CA, when discovery is the apiserver). */
  caCert?: string;
  /** The AWS account of the roles (the ARN's account field). */
  account: string;
  roles: StsRole[];
  /** For tests: the clock, in ms. */
  now?: () => number;
}

/** An STS error as AWS returns it (ErrorResponse/Error: Type, Code, Message; HTTP status). */
export class StsError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const ARN_RE = /^arn:aws:iam::(\d{12}):role\/([\w+=,.@/-]{1,64})$/;

/**
 * Reads the roles file: `roles: [{arn, subjects, audiences?, maxSessionSeconds?}]`. Throws with the
 * path of the bad field.
 */
export function parseRoles(text: string, file: string): StsRole[] {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new Error(`${file}: not YAML: ${(e as Error).message.split("\n")[0]}`);
  }
  const roles = (doc as { roles?: unknown } | null)?.roles;
  if (!Array.isArray(roles)) throw new Error(`${file}: roles: must be a list of roles`);
  return roles.map((r: unknown, i): StsRole => {
    const at = `${file}: roles[${i}]`;
    if (typeof r !== "object" || r === null) throw new Error(`${at}: must be a mapping`);
    const o = r as Record<string, unknown>;
    if (typeof o.arn !== "string" || !ARN_RE.test(o.arn)) throw new Error(`${at}.arn: must be an IAM role ARN like arn:aws:iam::111122223333:role/s3-reader, got ${JSON.stringify(o.arn)}`);
    const strings = (k: string, dflt?: string[]): string[] => {
      const v = o[k] ?? dflt;
      if (!Array.isArray(v) || v.length === 0 || !v.every((s) => typeof s === "string" && s !== "")) throw new Error(`${at}.${k}: must be a non-empty list of strings`);
      return v as string[];
    };
    const max = o.maxSessionSeconds ?? 3600;
    if (typeof max !== "number" || !Number.isInteger(max) || max < 900 || max > 43200) throw new Error(`${at}.maxSessionSeconds: must be an integer from 900 to 43200`);
    return { arn: o.arn, subjects: strings("subjects"), audiences: strings("audiences", ["sts.amazonaws.com"]), maxSessionSeconds: max };
  });
}

/** IAM's StringLike: `*` any run, `?` one character, everything else literal. */
export function stringLike(pattern: string, s: string): boolean {
  const re = new RegExp("^" + pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") + "$", "s");
  return re.test(s);
}

interface Jwk extends JsonWebKey {
  kid?: string;
  alg?: string;
  use?: string;
}

function fetchJSON(url: string, caCert: string | undefined): Promise<unknown> {
  const u = new URL(url);
  const mod = u.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.get(u, { ...(caCert ? { ca: caCert } : {}), timeout: 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        if (res.statusCode !== 200) return reject(new Error(`GET ${url}: HTTP ${res.statusCode}: ${body.slice(0, 200)}`));
        try {
          resolve(JSON.parse(body));
        } catch {
          reject(new Error(`GET ${url}: not JSON`));
        }
      });
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.on("error", reject);
  });
}

/**
 * The OIDC provider as STS holds it: discovery, then the JWKS it names. The JWKS URL's path is
 * resolved against the discovery URL, because the issuer's own host (kubernetes.default.svc…) names
 * the cluster from inside; keys are fetched again when a token names an unknown kid (at most every 10 s).
 */
export class OIDCProvider {
  private keys = new Map<string, KeyObject>();
  private fetchedAt = -Infinity;

  constructor(private readonly cfg: Pick<StsConfig, "issuer" | "discoveryURL" | "caCert" | "now">) {}

  private now(): number {
    return this.cfg.now?.() ?? Date.now();
  }

  async refresh(): Promise<void> {
    const base = this.cfg.discoveryURL.replace(/\/$/, "");
    const doc = (await fetchJSON(`${base}/.well-known/openid-configuration`, this.cfg.caCert)) as { issuer?: string; jwks_uri?: string };
    if (doc.issuer !== this.cfg.issuer) throw new Error(`the discovery document's issuer ${JSON.stringify(doc.issuer)} is not ${this.cfg.issuer}`);
    if (typeof doc.jwks_uri !== "string") throw new Error("the discovery document has no jwks_uri");
    const jwksURL = new URL(new URL(doc.jwks_uri).pathname, base + "/").href;
    const jwks = (await fetchJSON(jwksURL, this.cfg.caCert)) as { keys?: Jwk[] };
    const keys = new Map<string, KeyObject>();
    for (const k of jwks.keys ?? []) {
      if (!k.kid || (k.use && k.use !== "sig")) continue;
      try {
        keys.set(k.kid, createPublicKey({ key: k, format: "jwk" }));
      } catch {
        // a key type we cannot use: skip it, as a JOSE library would
      }
    }
    this.keys = keys;
    this.fetchedAt = this.now();
  }

  async key(kid: string): Promise<KeyObject | undefined> {
    if (!this.keys.has(kid) && this.now() - this.fetchedAt > 10_000) await this.refresh();
    return this.keys.get(kid);
  }
}

/** The claims STS reads from a verified token. */
export interface WebIdentity {
  sub: string;
  aud: string[];
  exp: number;
}

const b64json = (s: string): Record<string, unknown> => JSON.parse(Buffer.from(s, "base64url").toString("utf8")) as Record<string, unknown>;

/** Verifies a web identity token against the provider: signature by a JWKS key, issuer, expiry. */
export async function verifyWebIdentity(token: string, provider: OIDCProvider, issuer: string, nowMs: number): Promise<WebIdentity> {
  const parts = token.split(".");
  if (parts.length !== 3) throw new StsError(400, "InvalidIdentityToken", "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)");
  let header: Record<string, unknown>;
  let claims: Record<string, unknown>;
  try {
    header = b64json(parts[0]!);
    claims = b64json(parts[1]!);
  } catch {
    throw new StsError(400, "InvalidIdentityToken", "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)");
  }
  if (claims.iss !== issuer) throw new StsError(400, "InvalidIdentityToken", `No OpenIDConnect provider found in your account for ${String(claims.iss)}`);
  let key: KeyObject | undefined;
  try {
    key = typeof header.kid === "string" ? await provider.key(header.kid) : undefined;
  } catch {
    throw new StsError(400, "IDPCommunicationError", "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements");
  }
  const alg = header.alg;
  const okAlg = (alg === "RS256" && key?.asymmetricKeyType === "rsa") || (alg === "ES256" && key?.asymmetricKeyType === "ec");
  const signed = key && okAlg && verify("sha256", Buffer.from(`${parts[0]}.${parts[1]}`), alg === "ES256" ? { key, dsaEncoding: "ieee-p1363" } : key, Buffer.from(parts[2]!, "base64url"));
  if (!signed) throw new StsError(400, "InvalidIdentityToken", "Couldn't verify the signature of the ID Token with the keys of your identity provider");
  const exp = typeof claims.exp === "number" ? claims.exp : 0;
  const now = Math.floor(nowMs / 1000);
  if (exp <= now) throw new StsError(400, "ExpiredTokenException", `Token expired: current date/time ${now} must be before the expiration date/time${exp}`);
  if (typeof claims.nbf === "number" && claims.nbf > now + 60) throw new StsError(400, "InvalidIdentityToken", "Token is not yet valid (nbf)");
  const aud = typeof claims.aud === "string" ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud.filter((a): a is string => typeof a === "string") : [];
  if (typeof claims.sub !== "string") throw new StsError(400, "InvalidIdentityToken", "The ID Token has no sub claim");
  return { sub: claims.sub, aud, exp };
}

export interface AssumeRoleResult {
  subject: string;
  audience: string;
  assumedRoleArn: string;
  assumedRoleId: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: string;
  provider: string;
}

const xmlEscape = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** An access key id as AWS prints temporary ones: ASIA + 16 of [A-Z2-7]. */
function accessKeyId(): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  return "ASIA" + Array.from(randomBytes(16), (b) => alphabet[b % 32]).join("");
}

/** The STS: validates parameters, verifies the token, matches the role's trust policy, issues credentials. */
export class SimulatedSTS {
  readonly provider: OIDCProvider;

  constructor(private readonly cfg: StsConfig) {
    this.provider = new OIDCProvider(cfg);
  }

  private now(): number {
    return this.cfg.now?.() ?? Date.now();
  }

  async assumeRoleWithWebIdentity(params: URLSearchParams): Promise<AssumeRoleResult> {
    const roleArn = params.get("RoleArn") ?? "";
    const session = params.get("RoleSessionName") ?? "";
    const token = params.get("WebIdentityToken") ?? "";
    const missing = [!roleArn && "roleArn", !session && "roleSessionName", !token && "webIdentityToken"].filter(Boolean);
    if (missing.length) throw new StsError(400, "ValidationError", `${missing.length} validation error${missing.length > 1 ? "s" : ""} detected: ${missing.map((m) => `Value null at '${m}' failed to satisfy constraint: Member must not be null`).join("; ")}`);
    if (!/^[\w+=,.@-]{2,64}$/.test(session)) throw new StsError(400, "ValidationError", `1 validation error detected: Value '${session}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*`);
    const role = this.cfg.roles.find((r) => r.arn === roleArn);
    const duration = params.has("DurationSeconds") ? Number(params.get("DurationSeconds")) : 3600;
    if (!Number.isInteger(duration) || duration < 900 || duration > 43200) throw new StsError(400, "ValidationError", `1 validation error detected: Value '${params.get("DurationSeconds")}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900`);
    const id = await verifyWebIdentity(token, this.provider, this.cfg.issuer, this.now());
    if (!role) throw new StsError(403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity");
    const audience = id.aud.find((a) => role.audiences.some((p) => stringLike(p, a)));
    if (!audience) throw new StsError(400, "InvalidIdentityToken", "Incorrect token audience");
    if (!role.subjects.some((p) => stringLike(p, id.sub))) throw new StsError(403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity");
    if (duration > role.maxSessionSeconds) throw new StsError(400, "ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.");
    const [, account, roleName] = ARN_RE.exec(role.arn)!;
    const roleId = "AROA" + Buffer.from(role.arn).toString("hex").slice(0, 17).toUpperCase();
    return {
      subject: id.sub,
      audience,
      assumedRoleArn: `arn:aws:sts::${account}:assumed-role/${roleName!.split("/").pop()}/${session}`,
      assumedRoleId: `${roleId}:${session}`,
      accessKeyId: accessKeyId(),
      secretAccessKey: randomBytes(30).toString("base64"),
      sessionToken: randomBytes(96).toString("base64"),
      expiration: new Date(this.now() + duration * 1000).toISOString().replace(/\.\d+Z$/, "Z"),
      provider: new URL(this.cfg.issuer).host + new URL(this.cfg.issuer).pathname.replace(/\/$/, ""),
    };
  }

  /** The HTTP handler: AWS's Query protocol in, XML out. */
  handler(): http.RequestListener {
    return (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => {
        chunks.push(c);
        if (chunks.reduce((n, b) => n + b.length, 0) > 64 * 1024) req.destroy();
      });
      req.on("end", () => {
        const requestId = randomUUID();
        const send = (status: number, body: string) => {
          res.writeHead(status, { "content-type": "text/xml", "x-amzn-requestid": requestId });
          res.end(body);
        };
        const fail = (e: StsError) =>
          send(
            e.status,
            `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">\n  <Error>\n    <Type>Sender</Type>\n    <Code>${e.code}</Code>\n    <Message>${xmlEscape(e.message)}</Message>\n  </Error>\n  <RequestId>${requestId}</RequestId>\n</ErrorResponse>\n`,
          );
        const url = new URL(req.url ?? "/", "http://sts");
        const params = req.method === "POST" ? new URLSearchParams(Buffer.concat(chunks).toString("utf8")) : url.searchParams;
        if (req.method !== "POST" && req.method !== "GET") return fail(new StsError(405, "InvalidAction", `Could not find operation for method ${req.method}`));
        const action = params.get("Action");
        if (action !== "AssumeRoleWithWebIdentity") return fail(new StsError(400, "InvalidAction", `Could not find operation ${action ?? ""} for version ${params.get("Version") ?? "NO_VERSION_SPECIFIED"}`));
        this.assumeRoleWithWebIdentity(params).then(
          (r) =>
            send(
              200,
              `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>${xmlEscape(r.subject)}</SubjectFromWebIdentityToken>
    <Audience>${xmlEscape(r.audience)}</Audience>
    <AssumedRoleUser>
      <Arn>${xmlEscape(r.assumedRoleArn)}</Arn>
      <AssumedRoleId>${xmlEscape(r.assumedRoleId)}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>${r.sessionToken}</SessionToken>
      <SecretAccessKey>${r.secretAccessKey}</SecretAccessKey>
      <Expiration>${r.expiration}</Expiration>
      <AccessKeyId>${r.accessKeyId}</AccessKeyId>
    </Credentials>
    <Provider>${xmlEscape(r.provider)}</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>${requestId}</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>
`,
            ),
          (e: unknown) => (e instanceof StsError ? fail(e) : fail(new StsError(500, "InternalFailure", (e as Error).message))),
        );
      });
    };
  }
}
