// IAM Roles for Service Accounts, end to end as on EKS, on the default `kubelab up`: a ServiceAccount
// annotated with a role ARN; the PodIdentity admission (EKS's pod identity webhook) gives its pod the
// AWS environment and an sts.amazonaws.com token; `kubelab sts` — which knows the cluster only through
// its OIDC discovery document and JWKS, as AWS IAM does — exchanges that token for credentials when
// the role's trust policy names the ServiceAccount. The README's IRSA commands, as written there.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { request } from "./harness/http.ts";
import { REPO, startKubelab, type Kubelab } from "./harness/kubelab.ts";

const ISSUER = "https://kubernetes.default.svc.cluster.local";
const ROLE = "arn:aws:iam::111122223333:role/s3-reader";
const TOKEN_FILE = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token";

let k: Kubelab;
let work: string;
let sts: ChildProcess | undefined;
let stsURL: string;

async function ok(args: string[], input?: string): Promise<string> {
  const r = await k.kubectl(args, { input });
  expect(r.code, `kubectl ${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

async function poll<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

function assume(token: string, role = ROLE): Promise<{ status: number; body: string }> {
  return fetch(stsURL, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ Action: "AssumeRoleWithWebIdentity", Version: "2011-06-15", RoleArn: role, RoleSessionName: "app", WebIdentityToken: token }),
  }).then(async (r) => ({ status: r.status, body: await r.text() }));
}

beforeAll(async () => {
  k = await startKubelab({ nodes: true });
  work = mkdtempSync(join(tmpdir(), "kubelab-irsa-"));
  // As on EKS, the OIDC discovery document is public: upstream's recommended binding for that.
  await ok(["create", "clusterrolebinding", "oidc-discovery-public", "--clusterrole=system:service-account-issuer-discovery", "--group=system:unauthenticated"]);
  const roles = join(work, "roles.yaml");
  writeFileSync(roles, `roles:\n  - arn: ${ROLE}\n    subjects: [system:serviceaccount:default:s3-reader]\n`);
  sts = spawn(process.execPath, ["--import", "tsx", join(REPO, "cli/main.ts"), "sts", "--issuer", ISSUER, "--discovery-url", k.server, "--ca-file", join(k.dataDir, "pki", "ca.crt"), "--roles", roles, "--port", "0"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  stsURL = await new Promise<string>((resolve, reject) => {
    let out = "";
    sts!.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /sts listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]! + "/");
    });
    sts!.on("exit", (code) => reject(new Error(`kubelab sts exited ${code}`)));
  });
}, 180_000);

afterAll(async () => {
  if (sts?.pid) sts.kill("SIGTERM");
  await k?.stop({ clean: true });
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("IRSA: a pod's ServiceAccount token for an IAM role", () => {
  let token = "";

  it("the pod identity admission gives a pod of an annotated ServiceAccount the role, the token file and its volume", async () => {
    await ok(["create", "serviceaccount", "s3-reader"]);
    await ok(["annotate", "serviceaccount", "s3-reader", `eks.amazonaws.com/role-arn=${ROLE}`]);
    await ok(["run", "app", "--image=busybox", "--overrides", JSON.stringify({ spec: { serviceAccountName: "s3-reader" } }), "--", "sleep", "3600"]);
    const pod = JSON.parse(await ok(["get", "pod", "app", "-o", "json"])) as { spec: { containers: { env?: { name: string; value: string }[] }[]; volumes: { name: string; projected?: { sources: { serviceAccountToken?: { audience: string } }[] } }[] } };
    expect(pod.spec.containers[0]!.env).toEqual(expect.arrayContaining([{ name: "AWS_ROLE_ARN", value: ROLE }, { name: "AWS_WEB_IDENTITY_TOKEN_FILE", value: TOKEN_FILE }]));
    expect(pod.spec.volumes.find((v) => v.name === "aws-iam-token")?.projected?.sources[0]?.serviceAccountToken?.audience).toBe("sts.amazonaws.com");
    await ok(["wait", "--for=condition=Ready", "pod/app", "--timeout=90s"]);
    token = await poll("the projected token in the container", async () => {
      const r = await k.kubectl(["exec", "app", "--", "cat", TOKEN_FILE]);
      return r.code === 0 && r.stdout.split(".").length === 3 ? r.stdout.trim() : undefined;
    });
    const claims = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as { iss: string; sub: string; aud: string[] };
    expect(claims).toMatchObject({ iss: ISSUER, sub: "system:serviceaccount:default:s3-reader", aud: ["sts.amazonaws.com"] });
  }, 150_000);

  it("the OIDC discovery document is public, and STS exchanges the token for credentials", async () => {
    const doc = await request(k, { path: "/.well-known/openid-configuration", token: false });
    expect(doc.status).toBe(200);
    const r = await assume(token);
    expect(r.status, r.body).toBe(200);
    expect(r.body).toContain("<SubjectFromWebIdentityToken>system:serviceaccount:default:s3-reader</SubjectFromWebIdentityToken>");
    expect(r.body).toContain("<Arn>arn:aws:sts::111122223333:assumed-role/s3-reader/app</Arn>");
    expect(r.body).toMatch(/<AccessKeyId>ASIA[A-Z2-7]{16}<\/AccessKeyId>/);
  });

  it("STS refuses another ServiceAccount's token, the apiserver audience and a forged token", async () => {
    const other = (await ok(["create", "token", "default", "--audience", "sts.amazonaws.com"])).trim();
    const denied = await assume(other);
    expect(denied.status).toBe(403);
    expect(denied.body).toContain("<Code>AccessDenied</Code>");
    const apiAudience = (await ok(["create", "token", "s3-reader"])).trim();
    const wrongAud = await assume(apiAudience);
    expect(wrongAud.status).toBe(400);
    expect(wrongAud.body).toContain("<Message>Incorrect token audience</Message>");
    const parts = token.split(".");
    const forged = [parts[0], Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(parts[1]!, "base64url").toString()), sub: "system:serviceaccount:kube-system:admin" })).toString("base64url"), parts[2]].join(".");
    const bad = await assume(forged);
    expect(bad.status).toBe(400);
    expect(bad.body).toContain("<Code>InvalidIdentityToken</Code>");
  });

  it("after the pod is deleted the apiserver refuses its token at once, while STS (which sees only the JWKS) honours it until it expires", async () => {
    await ok(["delete", "pod", "app", "--wait=true", "--grace-period=1"]);
    const review = JSON.parse(
      await ok(["create", "-o", "json", "-f", "-"], JSON.stringify({ apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token, audiences: ["sts.amazonaws.com"] } })),
    ) as { status: { authenticated?: boolean } };
    expect(review.status.authenticated ?? false).toBe(false);
    expect((await assume(token)).status).toBe(200);
  }, 60_000);
});
