// The ServiceAccount controllers, one reconcile each against a FakeClient and preloaded listers.

import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { ConfigMap, KubeObject, Secret, ServiceAccount } from "../../api/index.ts";
import { newLogger } from "../../client/log.ts";
import { fakeLister, FakeClient } from "../../client/testing.ts";
import type { ReconcileContext } from "../../client/types.ts";
import { LEGACY_ISSUER } from "../../apiserver/serviceaccount/claims.ts";
import { TokenGenerator } from "../../apiserver/serviceaccount/jwt.ts";
import { DESCRIPTION, RootCACertPublisher } from "./publisher.ts";
import { ServiceAccountsController } from "./serviceaccounts.ts";
import { ServiceAccountTokensCleanup, TokenSecretController, secretKey, serviceAccountKey, type TokensDeps } from "./tokens.ts";

const ctx = (): ReconcileContext => ({ signal: new AbortController().signal, log: newLogger("test"), reconcileID: "test" });
const ns = (name: string, phase = "Active"): KubeObject => ({ apiVersion: "v1", kind: "Namespace", metadata: { name, uid: `${name}-uid` }, status: { phase } });
const sa = (name: string, namespace = "team", uid = `${name}-uid`): ServiceAccount => ({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name, namespace, uid, resourceVersion: "1" } });
const CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

describe("serviceaccount controller", () => {
  it("creates default in an active namespace that lacks it, and nothing when it is there or the namespace terminates", async () => {
    const client = new FakeClient([ns("team")]);
    const c = new ServiceAccountsController({ client, namespaces: fakeLister([ns("team"), ns("going", "Terminating")]), serviceAccounts: fakeLister<ServiceAccount>([]) });
    await c.reconcile(ctx(), "team");
    expect(client.writeActions().map((a) => [a.verb, a.resource, a.namespace, a.object?.metadata.name])).toEqual([["create", "serviceaccounts", "team", "default"]]);
    client.clearActions();
    await c.reconcile(ctx(), "going");
    await c.reconcile(ctx(), "gone");
    expect(client.writeActions()).toEqual([]);
    const present = new ServiceAccountsController({ client, namespaces: fakeLister([ns("team")]), serviceAccounts: fakeLister([sa("default")]) });
    await present.reconcile(ctx(), "team");
    expect(client.writeActions()).toEqual([]);
  });
});

describe("root-ca-cert-publisher", () => {
  const cm = (data: Record<string, string>, annotations?: Record<string, string>): ConfigMap =>
    ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "kube-root-ca.crt", namespace: "team", resourceVersion: "1", ...(annotations ? { annotations } : {}) }, data }) as ConfigMap;

  it("publishes kube-root-ca.crt with ca.crt and upstream's description", async () => {
    const client = new FakeClient([ns("team")]);
    await new RootCACertPublisher({ client, namespaces: fakeLister([ns("team")]), configMaps: fakeLister<ConfigMap>([]), rootCA: CA }).reconcile(ctx(), "team");
    const [w] = client.writeActions();
    expect(w).toMatchObject({ verb: "create", resource: "configmaps", namespace: "team" });
    expect(w!.object).toMatchObject({ metadata: { name: "kube-root-ca.crt", annotations: { "kubernetes.io/description": DESCRIPTION } }, data: { "ca.crt": CA } });
  });

  it("puts back data someone changed, and leaves a correct copy alone", async () => {
    const changed = cm({ "ca.crt": "tampered", extra: "x" }, { "kubernetes.io/description": DESCRIPTION });
    const client = new FakeClient([ns("team"), changed]);
    const cached = client.tracker("", "configmaps", "team", "kube-root-ca.crt") as ConfigMap;
    await new RootCACertPublisher({ client, namespaces: fakeLister([ns("team")]), configMaps: fakeLister([cached]), rootCA: CA }).reconcile(ctx(), "team");
    const [w] = client.writeActions();
    expect(w?.verb).toBe("update");
    expect((w!.object as ConfigMap).data).toEqual({ "ca.crt": CA });
    const good = cm({ "ca.crt": CA }, { "kubernetes.io/description": DESCRIPTION });
    const quiet = new FakeClient([ns("team"), good]);
    await new RootCACertPublisher({ client: quiet, namespaces: fakeLister([ns("team")]), configMaps: fakeLister([good]), rootCA: CA }).reconcile(ctx(), "team");
    expect(quiet.writeActions()).toEqual([]);
  });
});

describe("serviceaccount-token (legacy)", () => {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const tokenSecret = (annotations: Record<string, string>, data?: Record<string, string>): Secret =>
    ({ apiVersion: "v1", kind: "Secret", type: "kubernetes.io/service-account-token", metadata: { name: "robot-token", namespace: "team", uid: "secret-uid", annotations }, ...(data ? { data } : {}) }) as Secret;
  const deps = (client: FakeClient, sas: ServiceAccount[], secrets: Secret[]): TokensDeps => ({
    client,
    serviceAccounts: fakeLister(sas),
    secrets: fakeLister(secrets),
    generator: new TokenGenerator(LEGACY_ISSUER, privateKey),
    rootCA: CA,
  });

  it("fills a token Secret naming an account with a legacy token, ca.crt and the namespace", async () => {
    const robot = sa("robot");
    const client = new FakeClient([robot, tokenSecret({ "kubernetes.io/service-account.name": "robot" })]);
    const seeded = client.tracker("", "secrets", "team", "robot-token") as Secret;
    await new TokenSecretController(deps(client, [robot], [seeded])).reconcile(ctx(), secretKey(seeded));
    const updated = client.tracker("", "secrets", "team", "robot-token") as Secret;
    expect(Buffer.from(updated.data!["ca.crt"]!, "base64").toString()).toBe(CA);
    expect(Buffer.from(updated.data!.namespace!, "base64").toString()).toBe("team");
    const jwt = Buffer.from(updated.data!.token!, "base64").toString();
    const claims = JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString()) as Record<string, unknown>;
    expect(claims).toMatchObject({
      iss: "kubernetes/serviceaccount",
      sub: "system:serviceaccount:team:robot",
      "kubernetes.io/serviceaccount/secret.name": "robot-token",
      "kubernetes.io/serviceaccount/service-account.uid": "robot-uid",
    });
    expect(updated.metadata.annotations).toMatchObject({ "kubernetes.io/service-account.name": "robot", "kubernetes.io/service-account.uid": "robot-uid" });
  });

  it("deletes a token Secret whose account does not exist, and the tokens of a deleted account", async () => {
    const orphan = tokenSecret({ "kubernetes.io/service-account.name": "ghost" });
    const client = new FakeClient([orphan]);
    const seeded = client.tracker("", "secrets", "team", "robot-token") as Secret;
    await new TokenSecretController(deps(client, [], [seeded])).reconcile(ctx(), secretKey(seeded));
    expect(client.writeActions().map((a) => [a.verb, a.name])).toEqual([["delete", "robot-token"]]);

    const mine = tokenSecret({ "kubernetes.io/service-account.name": "robot", "kubernetes.io/service-account.uid": "robot-uid" });
    const c2 = new FakeClient([mine]);
    await new ServiceAccountTokensCleanup(deps(c2, [], [c2.tracker("", "secrets", "team", "robot-token") as Secret])).reconcile(ctx(), serviceAccountKey(sa("robot")));
    expect(c2.writeActions().map((a) => [a.verb, a.name])).toEqual([["delete", "robot-token"]]);
  });
});
