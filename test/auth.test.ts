// Authentication and TLS: bearer tokens, anonymous health endpoints, and the kubeconfig's CA.

import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { jsonObject, request } from "./harness/http.ts";
import { startKubelab, type Kubelab } from "./harness/kubelab.ts";

let k: Kubelab;

beforeAll(async () => {
  k = await startKubelab();
});

afterAll(async () => {
  await k?.stop({ clean: true });
});

const LIST = "/api/v1/namespaces/default/configmaps";

describe("bearer token authentication", () => {
  it("no token: the request is system:anonymous, and RBAC answers 403 Forbidden with upstream's message", async () => {
    const r = await request(k, { path: LIST, token: false });
    expect(r.status).toBe(403);
    expect(String(r.headers["content-type"])).toMatch(/^application\/json/);
    expect(jsonObject(r.text)).toMatchObject({
      kind: "Status",
      apiVersion: "v1",
      status: "Failure",
      reason: "Forbidden",
      code: 403,
      message: 'configmaps is forbidden: User "system:anonymous" cannot list resource "configmaps" in API group "" in the namespace "default"',
      details: { kind: "configmaps" },
    });
  });

  it("a wrong token: 401", async () => {
    const r = await request(k, { path: LIST, token: `${k.token}x` });
    expect(r.status).toBe(401);
    expect(jsonObject(r.text)).toMatchObject({ kind: "Status", reason: "Unauthorized", code: 401 });
    // Credentials no authenticator knows (Basic, an empty bearer) are no credentials: anonymous, 403.
    const other = await request(k, { path: LIST, headers: { Authorization: "Basic YWRtaW46YWRtaW4=" }, token: false });
    expect(other.status).toBe(403);
    const empty = await request(k, { path: LIST, headers: { Authorization: "Bearer " }, token: false });
    expect(empty.status).toBe(403);
  });

  it("the right token: 200 and a ConfigMapList", async () => {
    const r = await request(k, { path: LIST });
    expect(r.status).toBe(200);
    expect(jsonObject(r.text)).toMatchObject({ kind: "ConfigMapList", apiVersion: "v1" });
  });

  it("writes need the token too, and an unauthenticated write leaves nothing behind", async () => {
    const body = JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "sneaky" }, data: { a: "1" } });
    const r = await request(k, { method: "POST", path: LIST, body, token: false, headers: { "Content-Type": "application/json" } });
    expect(r.status).toBe(403);
    const forged = await request(k, { method: "POST", path: LIST, body, token: "forged", headers: { "Content-Type": "application/json" } });
    expect(forged.status).toBe(401);
    const get = await request(k, { path: `${LIST}/sneaky` });
    expect(get.status).toBe(404);
  });

  it("/healthz, /livez, /readyz and /version need no token", async () => {
    for (const p of ["/healthz", "/livez", "/readyz", "/version"]) {
      const r = await request(k, { path: p, token: false });
      expect(r.status, p).toBe(200);
    }
    expect((await request(k, { path: "/healthz", token: false })).text).toBe("ok");
  });

  it("discovery and metrics are not for anonymous users (system:discovery is bound to system:authenticated only)", async () => {
    for (const p of ["/api", "/apis", "/api/v1", "/metrics", "/openapi/v3"]) {
      const r = await request(k, { path: p, token: false });
      expect(r.status, p).toBe(403);
      expect(jsonObject(r.text)?.message, p).toBe(`forbidden: User "system:anonymous" cannot get path "${p}"`);
    }
  });
});

describe("TLS", () => {
  it("the serving certificate verifies against the kubeconfig's CA for 127.0.0.1", async () => {
    const kc = parseYaml(readFileSync(k.kubeconfig, "utf8")) as { clusters: { cluster: Record<string, string> }[] };
    const cluster = kc.clusters[0].cluster;
    expect(cluster["insecure-skip-tls-verify"]).toBeUndefined();
    expect(cluster.server).toBe(`https://127.0.0.1:${k.port}`);
    const ca = Buffer.from(cluster["certificate-authority-data"], "base64").toString();
    const r = await request(k, { path: "/healthz", ca, token: false });
    expect(r.status).toBe(200);
  });

  it("without the CA the certificate is rejected (so verification really happens)", async () => {
    await expect(request(k, { path: "/healthz", ca: null, token: false })).rejects.toThrow(/self[- ]signed|unable to (get|verify)|certificate/i);
  });

  it("kubectl works with the kubeconfig as it is", async () => {
    const r = await k.kubectl(["get", "namespaces", "-o", "name"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("namespace/default");
    expect(r.stderr).not.toMatch(/insecure|x509/i);
  });

  it("kubectl with a wrong token is told it is Unauthorized", async () => {
    const r = await k.kubectl(["get", "configmaps", "--token", "nope"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("error: You must be logged in to the server (Unauthorized)");
  });
});
