// ServiceAccount JWTs and their validators: signatures, audiences, times, and the objects a token
// names having to exist still.

import { createHash, createPublicKey, generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { KubeObject, Pod, Secret, ServiceAccount } from "../../api/index.ts";
import { JWTTokenAuthenticator } from "./authenticator.ts";
import { LEGACY_ISSUER, legacyClaims, newLegacyValidator, newValidator, serviceAccountClaims, type ServiceAccountTokenGetter } from "./claims.ts";
import { TokenGenerator, keyIDFromPublicKey, parseToken, publicJWK, verifySignature } from "./jwt.ts";

const ISSUER = "https://issuer.example";
const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
const ec = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).privateKey;
const now = new Date("2026-12-04T12:00:00Z");

const account: ServiceAccount = { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "robot", namespace: "ns", uid: "sa-uid" } };
const pod: Pod = { apiVersion: "v1", kind: "Pod", metadata: { name: "app", namespace: "ns", uid: "pod-uid" }, spec: { containers: [] } } as Pod;

function getter(objs: { sa?: ServiceAccount; pod?: Pod; secret?: Secret; node?: KubeObject }): ServiceAccountTokenGetter {
  return {
    getServiceAccount: async (_ns, name) => (objs.sa?.metadata.name === name ? objs.sa : undefined),
    getPod: async (_ns, name) => (objs.pod?.metadata.name === name ? objs.pod : undefined),
    getSecret: async (_ns, name) => (objs.secret?.metadata.name === name ? objs.secret : undefined),
    getNode: async (name) => (objs.node?.metadata.name === name ? objs.node : undefined),
  };
}

function authenticator(g: ServiceAccountTokenGetter, at = now): JWTTokenAuthenticator {
  return new JWTTokenAuthenticator({ issuers: [ISSUER], keys: [createPublicKey(rsa), createPublicKey(ec)], implicitAudiences: [ISSUER], validator: newValidator(g, () => at) });
}

function boundToken(key = rsa, exp = 3600, bound: { pod?: Pod } = { pod }): string {
  const c = serviceAccountClaims(account, bound, exp, 0, [ISSUER], now);
  return new TokenGenerator(ISSUER, key).generateToken(c.claims, c.private);
}

async function refusal(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

describe("ServiceAccount JWTs", () => {
  it("the key id is the unpadded base64url SHA-256 of the public key's DER, in the header and the JWK", () => {
    const der = createPublicKey(rsa).export({ type: "spki", format: "der" });
    const kid = createHash("sha256").update(der).digest("base64url");
    expect(keyIDFromPublicKey(rsa)).toBe(kid);
    expect(parseToken(boundToken())!.header).toEqual({ alg: "RS256", kid });
    expect(Object.keys(publicJWK(ec))).toEqual(["use", "kty", "kid", "crv", "alg", "x", "y"]);
    expect(publicJWK(ec)).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256" });
  });

  it("a signature verifies only with the key that made it and the algorithm the header names", () => {
    const tok = parseToken(boundToken(ec))!;
    expect(verifySignature(tok, createPublicKey(ec))).toBe(true);
    expect(verifySignature(tok, createPublicKey(rsa))).toBe(false);
    expect(verifySignature({ ...tok, header: { ...tok.header, alg: "none" } }, createPublicKey(ec))).toBe(false);
  });

  it("a pod-bound token authenticates while the pod exists with that uid, and not after", async () => {
    const token = boundToken();
    const ok = await authenticator(getter({ sa: account, pod })).authenticateToken(token);
    expect(ok?.user.name).toBe("system:serviceaccount:ns:robot");
    expect(ok?.user.extra?.["authentication.kubernetes.io/pod-uid"]).toEqual(["pod-uid"]);
    expect(await refusal(authenticator(getter({ sa: account })).authenticateToken(token))).toBe("service account token has been invalidated");
    const recreated = { ...pod, metadata: { ...pod.metadata, uid: "new-uid" } };
    expect(await refusal(authenticator(getter({ sa: account, pod: recreated })).authenticateToken(token))).toBe("pod UID (new-uid) does not match service account pod ref claim (pod-uid)");
    // A pod being deleted keeps its token for the leeway (a minute) after its deletionTimestamp.
    const deleting = (at: string) => ({ ...pod, metadata: { ...pod.metadata, deletionTimestamp: at } });
    expect((await authenticator(getter({ sa: account, pod: deleting("2026-12-04T11:59:30Z") })).authenticateToken(token))?.user.name).toBeDefined();
    expect(await refusal(authenticator(getter({ sa: account, pod: deleting("2026-12-04T11:58:00Z") })).authenticateToken(token))).toBe("service account token has been invalidated");
  });

  it("the account must exist with the uid the token names; an expired token is refused", async () => {
    const token = boundToken(rsa, 3600, {});
    expect(await refusal(authenticator(getter({})).authenticateToken(token))).toBe('serviceaccounts "robot" not found');
    const other = { ...account, metadata: { ...account.metadata, uid: "other" } };
    expect(await refusal(authenticator(getter({ sa: other })).authenticateToken(token))).toBe("service account UID (other) does not match claim (sa-uid)");
    const later = new Date(now.getTime() + 3600_000 + 61_000);
    expect(await refusal(authenticator(getter({ sa: account }), later).authenticateToken(token))).toBe("service account token has expired");
  });

  it("tokens of other issuers are left to other authenticators; a wrong audience is refused", async () => {
    const foreign = new TokenGenerator("https://elsewhere", rsa).generateToken({ sub: "x", aud: [ISSUER] }, {});
    expect(await authenticator(getter({ sa: account })).authenticateToken(foreign)).toBeNull();
    expect(await refusal(authenticator(getter({ sa: account })).authenticateToken(boundToken(), ["sts"]))).toBe(`token audiences ["${ISSUER}"] is invalid for the target audiences ["sts"]`);
  });

  it("a legacy token is valid while its Secret holds it and its account has the uid in it", async () => {
    const secret: Secret = { apiVersion: "v1", kind: "Secret", metadata: { name: "robot-token", namespace: "ns", uid: "s" }, type: "kubernetes.io/service-account-token" } as Secret;
    const c = legacyClaims(account, secret);
    const token = new TokenGenerator(LEGACY_ISSUER, rsa).generateToken(c.claims, { ...c.private });
    const legacy = (g: ServiceAccountTokenGetter) => new JWTTokenAuthenticator({ issuers: [LEGACY_ISSUER], keys: [createPublicKey(rsa)], implicitAudiences: [ISSUER], validator: newLegacyValidator(g) });
    const stored = { ...secret, data: { token: Buffer.from(token).toString("base64") } };
    const ok = await legacy(getter({ sa: account, secret: stored })).authenticateToken(token);
    expect(ok).toMatchObject({ user: { name: "system:serviceaccount:ns:robot", uid: "sa-uid" }, audiences: [ISSUER] });
    expect(await refusal(legacy(getter({ sa: account })).authenticateToken(token))).toBe("token has been invalidated");
    expect(await refusal(legacy(getter({ sa: account, secret: { ...secret, data: { token: "eA==" } } })).authenticateToken(token))).toBe("token does not match server's copy");
  });
});
