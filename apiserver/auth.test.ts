import https from "node:https";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensurePki, issueClientCert, type Pki } from "../cli/pki.ts";
import { TokenFileAuthenticator, X509Authenticator, type UserInfo } from "./auth.ts";
import { ApiServer } from "./server.ts";
import { MemoryBackend } from "./storage/memory.ts";
import type { Attributes } from "./authorization/types.ts";

let dir: string;
let pki: Pki;
let api: ApiServer;
let port: number;
const seen: UserInfo[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kubelab-auth-"));
  pki = ensurePki(dir);
  api = new ApiServer({
    backend: new MemoryBackend(),
    tls: { cert: pki.serverCert, key: pki.serverKey, clientCA: pki.caCert },
    authenticators: [new X509Authenticator(), new TokenFileAuthenticator([{ token: "admin-token", user: { name: "admin", uid: "1", groups: ["system:masters"] } }])],
    authorizer: () => ({
      authorize: (a: Attributes) => {
        seen.push(a.user);
        return a.user.groups.includes("system:masters") || a.user.name === "jane" ? { decision: "Allow", reason: "" } : { decision: "NoOpinion", reason: "" };
      },
      rulesFor: () => ({ resourceRules: [], nonResourceRules: [], incomplete: false }),
    }),
  });
  port = await api.start(0);
});

afterAll(async () => {
  await api?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function get(path: string, opts: { cert?: { cert: string; key: string }; token?: string } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: "127.0.0.1", port, path, ca: pki.caCert, agent: false, ...(opts.cert ? { cert: opts.cert.cert, key: opts.cert.key } : {}), headers: opts.token ? { Authorization: `Bearer ${opts.token}` } : {} },
      (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

describe("x509 client certificates", () => {
  it("a certificate from the client CA is its subject: CN the user, each O a group, plus system:authenticated", async () => {
    const cert = issueClientCert({ cert: pki.caCert, key: pki.caKey }, { user: "jane", groups: ["dev", "ops"] });
    seen.length = 0;
    const r = await get("/api/v1/namespaces/default/configmaps", { cert });
    expect(r.status, r.body).toBe(200);
    expect(seen[0]).toEqual({ name: "jane", uid: "", groups: ["dev", "ops", "system:authenticated"] });
  });

  it("a certificate the CA did not sign, or an expired one, is 401 even with nothing else wrong", async () => {
    const stranger = ensurePki(join(dir, "other"));
    const foreign = issueClientCert({ cert: stranger.caCert, key: stranger.caKey }, { user: "jane", groups: [] });
    expect((await get("/api/v1/namespaces", { cert: foreign })).status).toBe(401);
    const expired = issueClientCert({ cert: pki.caCert, key: pki.caKey }, { user: "jane", groups: [] }, -1);
    expect((await get("/api/v1/namespaces", { cert: expired })).status).toBe(401);
  });

  it("a valid token on a connection with a bad certificate still authenticates (upstream's union)", async () => {
    const stranger = ensurePki(join(dir, "other2"));
    const foreign = issueClientCert({ cert: stranger.caCert, key: stranger.caKey }, { user: "x", groups: [] });
    expect((await get("/api/v1/namespaces", { cert: foreign, token: "admin-token" })).status).toBe(200);
  });

  it("without credentials the request is system:anonymous and the authorizer decides (403 with upstream's message)", async () => {
    const r = await get("/api/v1/namespaces/default/pods");
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body).message).toBe('pods is forbidden: User "system:anonymous" cannot list resource "pods" in API group "" in the namespace "default"');
    const p = await get("/api");
    expect(JSON.parse(p.body).message).toBe('forbidden: User "system:anonymous" cannot get path "/api"');
  });

  it("impersonation needs the impersonate verb; an allowed one goes on as the impersonated user", async () => {
    const cert = issueClientCert({ cert: pki.caCert, key: pki.caKey }, { user: "bob", groups: [] });
    const denied = await new Promise<{ status: number; body: string }>((resolve) => {
      https.get({ host: "127.0.0.1", port, path: "/api/v1/pods", ca: pki.caCert, cert: cert.cert, key: cert.key, agent: false, headers: { "Impersonate-User": "jane" } }, (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
    });
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.body).message).toBe('users "jane" is forbidden: User "bob" cannot impersonate resource "users" in API group "" at the cluster scope');
    seen.length = 0;
    const ok = await new Promise<number>((resolve) => {
      https.get({ host: "127.0.0.1", port, path: "/api/v1/pods", ca: pki.caCert, agent: false, headers: { Authorization: "Bearer admin-token", "Impersonate-User": "jane", "Impersonate-Group": "dev" } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
    });
    expect(ok).toBe(200);
    expect(seen.at(-1)).toEqual({ name: "jane", uid: "", groups: ["dev", "system:authenticated"] });
  });
});
