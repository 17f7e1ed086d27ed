import { createHash, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SimulatedSTS, StsError, parseRoles, stringLike } from "./sts.ts";

const ISSUER = "https://kubernetes.default.svc.cluster.local";
const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const ec = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
const kid = (k: KeyObject) => createHash("sha256").update(k.export({ type: "spki", format: "der" })).digest("base64url");

function token(claims: Record<string, unknown>, key = rsa, alg = "RS256"): string {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const input = `${enc({ alg, kid: kid(key.publicKey) })}.${enc(claims)}`;
  const sig = sign("sha256", Buffer.from(input), alg === "ES256" ? { key: key.privateKey, dsaEncoding: "ieee-p1363" } : key.privateKey);
  return `${input}.${sig.toString("base64url")}`;
}

let server: http.Server;
let base: string;
const now = Math.floor(Date.now() / 1000);
const good = { iss: ISSUER, sub: "system:serviceaccount:default:s3-reader", aud: ["sts.amazonaws.com"], exp: now + 600, iat: now };

beforeAll(async () => {
  server = http.createServer((req, res) => {
    if (req.url === "/.well-known/openid-configuration") res.end(JSON.stringify({ issuer: ISSUER, jwks_uri: `${ISSUER}/openid/v1/jwks` }));
    else if (req.url === "/openid/v1/jwks")
      res.end(JSON.stringify({ keys: [rsa, ec].map((k) => ({ ...k.publicKey.export({ format: "jwk" }), kid: kid(k.publicKey), use: "sig" })) }));
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => server.close());

const roles = parseRoles("roles:\n  - arn: arn:aws:iam::111122223333:role/s3-reader\n    subjects: [system:serviceaccount:default:s3-*]\n", "roles.yaml");
const sts = () => new SimulatedSTS({ issuer: ISSUER, discoveryURL: base, account: "111122223333", roles });
const params = (t: string, arn = "arn:aws:iam::111122223333:role/s3-reader") => new URLSearchParams({ Action: "AssumeRoleWithWebIdentity", RoleArn: arn, RoleSessionName: "app", WebIdentityToken: t });

async function fails(p: Promise<unknown>): Promise<StsError> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(StsError);
  return e as StsError;
}

describe("AssumeRoleWithWebIdentity", () => {
  it("issues credentials for a trusted subject and audience (RS256 and ES256)", async () => {
    for (const [key, alg] of [[rsa, "RS256"], [ec, "ES256"]] as const) {
      const r = await sts().assumeRoleWithWebIdentity(params(token(good, key, alg)));
      expect(r.subject).toBe(good.sub);
      expect(r.audience).toBe("sts.amazonaws.com");
      expect(r.assumedRoleArn).toBe("arn:aws:sts::111122223333:assumed-role/s3-reader/app");
      expect(r.accessKeyId).toMatch(/^ASIA[A-Z2-7]{16}$/);
      expect(r.provider).toBe("kubernetes.default.svc.cluster.local");
    }
  });

  it("refuses an untrusted subject, a wrong audience, an expired, forged or foreign token with AWS's codes", async () => {
    const s = sts();
    expect((await fails(s.assumeRoleWithWebIdentity(params(token({ ...good, sub: "system:serviceaccount:default:other" }))))).code).toBe("AccessDenied");
    expect((await fails(s.assumeRoleWithWebIdentity(params(token({ ...good, aud: ["https://kubernetes.default.svc"] }))))).message).toBe("Incorrect token audience");
    const expired = await fails(s.assumeRoleWithWebIdentity(params(token({ ...good, exp: now - 5 }))));
    expect(expired.code).toBe("ExpiredTokenException");
    expect(expired.message).toMatch(/^Token expired: current date\/time \d+ must be before the expiration date\/time\d+$/);
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const forged = token(good, other).split(".");
    forged[0] = token(good).split(".")[0]!; // claims the trusted kid
    expect((await fails(s.assumeRoleWithWebIdentity(params(forged.join("."))))).code).toBe("InvalidIdentityToken");
    expect((await fails(s.assumeRoleWithWebIdentity(params(token({ ...good, iss: "https://elsewhere" }))))).message).toBe("No OpenIDConnect provider found in your account for https://elsewhere");
    expect((await fails(s.assumeRoleWithWebIdentity(params("not-a-jwt")))).code).toBe("InvalidIdentityToken");
    expect((await fails(s.assumeRoleWithWebIdentity(params(token(good), "arn:aws:iam::111122223333:role/nope")))).code).toBe("AccessDenied");
    expect((await fails(s.assumeRoleWithWebIdentity(new URLSearchParams({ Action: "AssumeRoleWithWebIdentity" })))).message).toMatch(/^3 validation errors detected: Value null at 'roleArn'/);
  });

  it("answers over HTTP in AWS's XML", async () => {
    const srv = http.createServer(sts().handler());
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/`;
    const ok = await fetch(url, { method: "POST", body: params(token(good)) });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toMatch(/<AssumeRoleWithWebIdentityResponse[\s\S]*<AccessKeyId>ASIA/);
    const bad = await fetch(url, { method: "POST", body: params(token({ ...good, sub: "x" })) });
    expect(bad.status).toBe(403);
    expect(await bad.text()).toContain("<Code>AccessDenied</Code>");
    srv.close();
  });
});

describe("roles file and StringLike", () => {
  it("names the bad field", () => {
    expect(() => parseRoles("roles:\n  - arn: nope\n    subjects: [a]\n", "r.yaml")).toThrow(/^r\.yaml: roles\[0\]\.arn: must be an IAM role ARN/);
    expect(() => parseRoles("roles:\n  - arn: arn:aws:iam::111122223333:role/x\n", "r.yaml")).toThrow("r.yaml: roles[0].subjects: must be a non-empty list of strings");
    expect(() => parseRoles("{}", "r.yaml")).toThrow("r.yaml: roles: must be a list of roles");
  });
  it("matches * and ? only", () => {
    expect(stringLike("system:serviceaccount:default:*", "system:serviceaccount:default:a")).toBe(true);
    expect(stringLike("a?c", "abc")).toBe(true);
    expect(stringLike("a.c", "abc")).toBe(false);
  });
});
