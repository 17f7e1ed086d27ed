// ServiceAccounts in one in-process apiserver: TokenRequest, the bearer token authenticator with
// its bound-object checks, TokenReview, the admission plugin and the OIDC discovery documents.

import { createPublicKey, generateKeyPairSync } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenFileAuthenticator } from "../auth.ts";
import { installReviews } from "../authorization/reviews.ts";
import type { Attributes } from "../authorization/types.ts";
import { ApiServer } from "../server.ts";
import { MemoryBackend } from "../storage/memory.ts";
import { ServiceAccounts, keyIDFromPublicKey } from "./index.ts";

const ISSUER = "https://kubernetes.default.svc.cluster.local";
const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const admin = new TokenFileAuthenticator([
  { token: "admin", user: { name: "admin", uid: "1", groups: ["system:masters"] } },
  { token: "node-a", user: { name: "system:node:a", uid: "", groups: ["system:nodes"] } },
]);
const sa = new ServiceAccounts({ issuers: [ISSUER], publicKeys: [createPublicKey(privateKey)], signingKey: privateKey, apiAudiences: [], maxExpirationSeconds: 0, extendExpiration: true }, "127.0.0.1:6443");
let api: ApiServer;
let base: string;

beforeAll(async () => {
  api = new ApiServer({
    backend: new MemoryBackend(),
    authenticators: [admin, sa.authenticator],
    // Anyone authenticated may do anything: these tests are about who, not what.
    authorizer: () => ({
      authorize: (a: Attributes) => (a.user.groups.includes("system:authenticated") ? { decision: "Allow", reason: "" } : { decision: "NoOpinion", reason: "" }),
      rulesFor: () => ({ resourceRules: [], nonResourceRules: [], incomplete: false }),
    }),
    ...(sa.discovery ? { serviceAccountIssuerDiscovery: sa.discovery } : {}),
  });
  installReviews(api.registry, api.authorizer);
  sa.install(api.registry, [admin]);
  base = `http://127.0.0.1:${await api.start(0)}`;
  await call("POST", "/api/v1/namespaces", "admin", { apiVersion: "v1", kind: "Namespace", metadata: { name: "ns" } });
  await call("POST", "/api/v1/namespaces/ns/serviceaccounts", "admin", { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default" } });
});

afterAll(async () => {
  await api?.stop();
});

interface Resp {
  status: number;
  body: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  headers: Headers;
}

async function call(method: string, path: string, token: string | undefined, body?: unknown): Promise<Resp> {
  const r = await fetch(base + path, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, headers: r.headers };
}

function claims(jwt: string): Record<string, any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString()) as Record<string, unknown>;
}

async function createPod(name: string, extra: Record<string, unknown> = {}): Promise<Resp> {
  return call("POST", "/api/v1/namespaces/ns/pods", "admin", { apiVersion: "v1", kind: "Pod", metadata: { name }, spec: { containers: [{ name: "c", image: "busybox" }], ...extra } });
}

async function podToken(pod: Resp, expirationSeconds = 3607, by = "admin"): Promise<Resp> {
  return call("POST", "/api/v1/namespaces/ns/serviceaccounts/default/token", by, {
    apiVersion: "authentication.k8s.io/v1",
    kind: "TokenRequest",
    spec: { expirationSeconds, boundObjectRef: { apiVersion: "v1", kind: "Pod", name: pod.body.metadata.name, uid: pod.body.metadata.uid } },
  });
}

describe("ServiceAccount tokens in the apiserver", () => {
  it("a pod is admitted as default with the kube-api-access volume; its bound token authenticates as the account with the pod in extra", async () => {
    const pod = await createPod("app");
    expect(pod.status).toBe(201);
    expect(pod.body.spec.serviceAccountName).toBe("default");
    const vol = (pod.body.spec.volumes as { name: string; projected?: unknown }[]).find((v) => v.name.startsWith("kube-api-access-"));
    expect(vol?.projected).toBeDefined();
    expect(pod.body.spec.containers[0].volumeMounts).toEqual([{ name: vol!.name, readOnly: true, mountPath: "/var/run/secrets/kubernetes.io/serviceaccount" }]);

    const tr = await podToken(pod);
    expect(tr.status).toBe(201);
    expect(tr.body.kind).toBe("TokenRequest");
    const token = tr.body.status.token as string;
    const c = claims(token);
    expect(c.iss).toBe(ISSUER);
    expect(c.aud).toEqual([ISSUER]);
    expect(c.sub).toBe("system:serviceaccount:ns:default");
    expect(c["kubernetes.io"].pod).toEqual({ name: "app", uid: pod.body.metadata.uid });
    // The admission plugin's 3607 s is extended to a year, warning after 3607 s; the status says 3607 s.
    expect(c.exp - c.iat).toBe(365 * 24 * 3600);
    expect(c["kubernetes.io"].warnafter - c.iat).toBe(3607);
    expect(Date.parse(tr.body.status.expirationTimestamp) / 1000 - c.iat).toBeCloseTo(3607, -1);

    const who = await call("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", token, { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" });
    expect(who.status).toBe(201);
    expect(who.body.status.userInfo).toMatchObject({
      username: "system:serviceaccount:ns:default",
      groups: ["system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated"],
      extra: { "authentication.kubernetes.io/pod-name": ["app"], "authentication.kubernetes.io/pod-uid": [pod.body.metadata.uid], "authentication.kubernetes.io/credential-id": [`JTI=${c.jti}`] },
    });

    // Once the pod is gone, so is the token.
    expect((await call("DELETE", "/api/v1/namespaces/ns/pods/app?gracePeriodSeconds=0", "admin")).status).toBe(200);
    const after = await call("GET", "/api/v1/namespaces/ns/configmaps", token);
    expect(after.status).toBe(401);
  });

  it("TokenReview says who a token is for the audiences asked, and why not when it is not", async () => {
    const pod = await createPod("reviewed");
    const token = (await podToken(pod, 600)).body.status.token as string;
    const review = (spec: Record<string, unknown>) => call("POST", "/apis/authentication.k8s.io/v1/tokenreviews", "admin", { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec });
    const ok = await review({ token });
    expect(ok.status).toBe(201);
    expect(ok.body.status).toMatchObject({ authenticated: true, audiences: [ISSUER], user: { username: "system:serviceaccount:ns:default", uid: expect.any(String) } });
    const wrong = await review({ token, audiences: ["sts.amazonaws.com"] });
    expect(wrong.body.status).toEqual({ authenticated: false, error: `token audiences ["${ISSUER}"] is invalid for the target audiences ["sts.amazonaws.com"]` });
    const forged = await review({ token: token.slice(0, -4) + (token.endsWith("AAAA") ? "BBBB" : "AAAA") });
    expect(forged.body.status).toEqual({ authenticated: false, error: "go-jose/go-jose: error in cryptographic primitive" });
    expect((await review({})).body.message).toBe("token is required for TokenReview in authentication.k8s.io");
    // The static token file answers for the apiserver's audiences too.
    expect((await review({ token: "admin" })).body.status).toMatchObject({ authenticated: true, user: { username: "admin" } });
  });

  it("TokenRequest: a token for another audience, upstream's bounds and binding errors", async () => {
    const other = await call("POST", "/api/v1/namespaces/ns/serviceaccounts/default/token", "admin", { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { audiences: ["sts.amazonaws.com"] } });
    expect(other.status).toBe(201);
    const c = claims(other.body.status.token as string);
    expect(c.aud).toEqual(["sts.amazonaws.com"]);
    expect(c.exp - c.iat).toBe(3600);
    // Not for the apiserver: 401 there.
    expect((await call("GET", "/api/v1/namespaces/ns/configmaps", other.body.status.token as string)).status).toBe(401);

    const short = await call("POST", "/api/v1/namespaces/ns/serviceaccounts/default/token", "admin", { spec: { expirationSeconds: 60 } });
    expect(short.status).toBe(422);
    expect(short.body.message).toContain("spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes");
    const missing = await call("POST", "/api/v1/namespaces/ns/serviceaccounts/nobody/token", "admin", { spec: {} });
    expect(missing.status).toBe(404);
    expect(missing.body.message).toBe('serviceaccounts "nobody" not found');
    const pod = await createPod("bound");
    const stale = await call("POST", "/api/v1/namespaces/ns/serviceaccounts/default/token", "admin", { spec: { boundObjectRef: { apiVersion: "v1", kind: "Pod", name: "bound", uid: "not-the-uid" } } });
    expect(stale.status).toBe(409);
    expect(stale.body.message).toContain("the UID in the bound object reference (not-the-uid) does not match the UID in record");
    const cm = await call("POST", "/api/v1/namespaces/ns/serviceaccounts/default/token", "admin", { spec: { boundObjectRef: { apiVersion: "v1", kind: "ConfigMap", name: "x" } } });
    expect(cm.status).toBe(400);
    expect(cm.body.message).toBe('cannot bind token for serviceaccount "default" to object of type /v1, Kind=ConfigMap.');
    // A node may only ask for tokens of pods bound to it (NodeRestriction).
    const byNode = await podToken(pod, 3607, "node-a");
    expect(byNode.status).toBe(403);
    expect(byNode.body.message).toBe('serviceaccounts "default" is forbidden: node requested token bound to a pod scheduled on a different node');
  });

  it("a pod in a namespace without its account is refused with upstream's message", async () => {
    await call("POST", "/api/v1/namespaces", "admin", { apiVersion: "v1", kind: "Namespace", metadata: { name: "empty" } });
    const r = await call("POST", "/api/v1/namespaces/empty/pods", "admin", { apiVersion: "v1", kind: "Pod", metadata: { name: "p" }, spec: { serviceAccountName: "robot", containers: [{ name: "c", image: "busybox" }] } });
    expect(r.status).toBe(403);
    expect(r.body.message).toBe('pods "p" is forbidden: error looking up service account empty/robot: serviceaccount "robot" not found');
  });

  it("serves the OIDC discovery document and the JWKS with upstream's key id", async () => {
    const conf = await call("GET", "/.well-known/openid-configuration", "admin");
    expect(conf.status).toBe(200);
    expect(conf.body).toEqual({
      issuer: ISSUER,
      jwks_uri: "https://127.0.0.1:6443/openid/v1/jwks",
      response_types_supported: ["id_token"],
      subject_types_supported: ["public"],
      id_token_signing_alg_values_supported: ["RS256"],
    });
    expect(conf.headers.get("cache-control")).toBe("public, max-age=3600");
    const jwks = await call("GET", "/openid/v1/jwks", "admin");
    expect(jwks.headers.get("content-type")).toContain("application/jwk-set+json");
    expect(jwks.body.keys).toEqual([{ use: "sig", kty: "RSA", kid: keyIDFromPublicKey(privateKey), alg: "RS256", n: expect.any(String), e: "AQAB" }]);
  });
});
