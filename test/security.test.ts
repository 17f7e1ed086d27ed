// Security on the default `kubelab up`: every component's own identity, RBAC, the Node authorizer
// with NodeRestriction, ServiceAccount tokens bound to pods, and bad credentials — driven with the
// real kubectl, as a user of EKS would check them.

import { execFile } from "node:child_process";
import { createSign, generateKeyPairSync, randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kubeconfigYaml } from "../cli/kubeconfig.ts";
import { issueClientCert } from "../cli/pki.ts";
import { request } from "./harness/http.ts";
import { startKubelab, type KubectlResult, type Kubelab } from "./harness/kubelab.ts";
import { writeFileSync } from "node:fs";

let k: Kubelab;
let work: string;
let ca: { cert: string; key: string };

beforeAll(async () => {
  k = await startKubelab({ nodes: true });
  work = mkdtempSync(join(tmpdir(), "kubelab-security-"));
  ca = { cert: readFileSync(join(k.dataDir, "pki", "ca.crt"), "utf8"), key: readFileSync(join(k.dataDir, "pki", "ca.key"), "utf8") };
}, 120_000);

afterAll(async () => {
  await k?.stop({ clean: true });
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A kubeconfig for `user` (client certificate from the cluster CA, or a bearer token). */
function kubeconfigFor(name: string, user: { cert?: { cert: string; key: string }; token?: string }): string {
  const file = join(work, `${name}.kubeconfig`);
  writeFileSync(file, kubeconfigYaml({ server: k.server, caCert: k.caCert, clientCert: user.cert?.cert, clientKey: user.cert?.key, token: user.token, userName: name }), { mode: 0o600 });
  return file;
}

function kubectlAs(kubeconfig: string, args: string[], input?: string): Promise<KubectlResult> {
  return new Promise((res) => {
    const p = execFile("kubectl", ["--kubeconfig", kubeconfig, "--cache-dir", join(work, "cache"), ...args], { timeout: 60_000, env: { ...process.env, KUBECONFIG: kubeconfig } }, (err, stdout, stderr) =>
      res({ code: err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 1) : 0, stdout, stderr }),
    );
    if (input !== undefined) p.stdin!.end(input);
  });
}

async function ok(args: string[], input?: string): Promise<string> {
  const r = await k.kubectl(args, { input });
  expect(r.code, `kubectl ${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

async function poll<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

interface Obj {
  metadata: { name: string; namespace?: string; uid?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

async function getJSON(args: string[]): Promise<{ items: Obj[] } & Obj> {
  return JSON.parse(await ok([...args, "-o", "json"])) as { items: Obj[] } & Obj;
}

/** Two Ready nodes in different zones. */
async function twoNodes(): Promise<[string, string]> {
  return poll("two Ready nodes in two zones", async () => {
    const nodes = (await getJSON(["get", "nodes"])).items.filter((n) => (n.status?.conditions as { type: string; status: string }[] | undefined)?.some((c) => c.type === "Ready" && c.status === "True"));
    const a = nodes[0];
    const b = nodes.find((n) => n.metadata.labels?.["topology.kubernetes.io/zone"] !== a?.metadata.labels?.["topology.kubernetes.io/zone"]);
    return a && b ? ([a.metadata.name, b.metadata.name] as [string, string]) : undefined;
  });
}

function podOn(name: string, node: string, extra = ""): string {
  return `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: sec}
spec:
  nodeSelector: {kubernetes.io/hostname: ${node}}
  containers:
  - name: c
    image: busybox
    command: [sleep, "3600"]
${extra}`;
}

async function waitRunning(ns: string, name: string): Promise<Obj> {
  return poll(`pod ${ns}/${name} Running`, async () => {
    const r = await k.kubectl(["get", "pod", name, "-n", ns, "-o", "json"]);
    if (r.code !== 0) return undefined;
    const p = JSON.parse(r.stdout) as Obj;
    return p.status?.phase === "Running" ? p : undefined;
  }, 90_000);
}

describe("every component has its own identity", () => {
  it("the admin is kubelab-admin in system:masters (kubectl auth whoami)", async () => {
    const out = await ok(["auth", "whoami", "-o", "json"]);
    const review = JSON.parse(out) as { kind: string; status: { userInfo: { username: string; groups: string[] } } };
    expect(review.kind).toBe("SelfSubjectReview");
    expect(review.status.userInfo.username).toBe("kubelab-admin");
    expect(review.status.userInfo.groups).toEqual(expect.arrayContaining(["system:masters", "system:authenticated"]));
  });

  it("the scheduler, controller-manager, proxy, DNS and ingress kubeconfigs each name their own user", async () => {
    const want: Record<string, string> = {
      "scheduler-1": "system:kube-scheduler",
      "controller-manager-1": "system:kube-controller-manager",
      "cloud-controller": "system:cloud-controller-manager",
      dns: "system:kube-dns",
      ingress: "kubelab:ingress-controller",
    };
    for (const [component, user] of Object.entries(want)) {
      const r = await kubectlAs(join(k.dataDir, "kubeconfigs", `${component}.kubeconfig`), ["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]);
      expect(r.code, `${component}: ${r.stderr}`).toBe(0);
      expect(r.stdout, component).toBe(user);
    }
    // The scheduler may bind pods (and delete them: preemption, as upstream's role), not read secrets or write Deployments.
    const sched = join(k.dataDir, "kubeconfigs", "scheduler-1.kubeconfig");
    expect((await kubectlAs(sched, ["auth", "can-i", "create", "pods", "--subresource=binding"])).stdout.trim()).toBe("yes");
    expect((await kubectlAs(sched, ["auth", "can-i", "get", "secrets"])).stdout.trim()).toBe("no");
    expect((await kubectlAs(sched, ["auth", "can-i", "create", "deployments.apps"])).stdout.trim()).toBe("no");
  });
});

describe("the Node authorizer and NodeRestriction", () => {
  let nodeA: string;
  let nodeB: string;
  let kubeletA: string;

  beforeAll(async () => {
    [nodeA, nodeB] = await twoNodes();
    await ok(["create", "namespace", "sec"]);
    await ok(["create", "secret", "generic", "secret-b", "-n", "sec", "--from-literal=k=v"]);
    await ok(["create", "secret", "generic", "secret-a", "-n", "sec", "--from-literal=k=v"]);
    await ok(["apply", "-f", "-"], podOn("pod-b", nodeB, `    volumeMounts: [{name: s, mountPath: /s}]\n  volumes: [{name: s, secret: {secretName: secret-b}}]\n`));
    await ok(["apply", "-f", "-"], podOn("pod-a", nodeA, `    volumeMounts: [{name: s, mountPath: /s}]\n  volumes: [{name: s, secret: {secretName: secret-a}}]\n`));
    await waitRunning("sec", "pod-a");
    await waitRunning("sec", "pod-b");
    // Node A's own certificate, as its kubelet got it through the CSR API.
    const certs = await poll(`node ${nodeA}'s client certificate`, async () => {
      const csrs = (await getJSON(["get", "csr"])).items as (Obj & { spec: { username: string; signerName: string }; status: { certificate?: string } })[];
      return csrs.some((c) => c.spec.signerName === "kubernetes.io/kube-apiserver-client-kubelet" && c.status?.certificate) ? csrs : undefined;
    });
    expect(certs.length).toBeGreaterThan(0);
    const nodeCert = issueClientCert(ca, { user: `system:node:${nodeA}`, groups: ["system:nodes"] });
    writeFileSync(join(work, "kubelet-a.crt"), nodeCert.cert);
    writeFileSync(join(work, "kubelet-a.key"), nodeCert.key);
    kubeletA = kubeconfigFor("kubelet-a", { cert: nodeCert });
  }, 180_000);

  it("a kubelet's certificate reads the secret of a pod on its node, not one of a pod on another node", async () => {
    const own = await kubectlAs(kubeletA, ["get", "secret", "secret-a", "-n", "sec", "-o", "name"]);
    expect(own.code, own.stderr).toBe(0);
    const other = await kubectlAs(kubeletA, ["get", "secret", "secret-b", "-n", "sec"]);
    expect(other.code).not.toBe(0);
    expect(other.stderr.trim()).toBe(
      `Error from server (Forbidden): secrets "secret-b" is forbidden: User "system:node:${nodeA}" cannot get resource "secrets" in API group "" in the namespace "sec": no relationship found between node '${nodeA}' and this object`,
    );
    const list = await kubectlAs(kubeletA, ["get", "secrets", "-n", "sec"]);
    expect(list.code).not.toBe(0);
    expect(list.stderr).toMatch(/Error from server \(Forbidden\): secrets is forbidden: User "system:node:[^"]+" cannot list resource "secrets" in API group "" in the namespace "sec"/);
  });

  it("a kubelet cannot delete pods of another node, and can patch its own pods' status", async () => {
    const del = await kubectlAs(kubeletA, ["delete", "pod", "pod-b", "-n", "sec", "--wait=false"]);
    expect(del.code).not.toBe(0);
    expect(del.stderr.trim()).toBe(`Error from server (Forbidden): pods "pod-b" is forbidden: node "${nodeA}" can only delete pods with spec.nodeName set to itself`);
    // As a kubelet does it (a PATCH of pods/status; upstream's node rules grant no GET of pods/status,
    // so `kubectl patch --subresource=status`, which reads it first, is no way to act as a kubelet).
    const cert = readFileSync(join(work, "kubelet-a.crt"), "utf8");
    const key = readFileSync(join(work, "kubelet-a.key"), "utf8");
    const patchStatus = (pod: string) =>
      request(k, {
        method: "PATCH",
        path: `/api/v1/namespaces/sec/pods/${pod}/status`,
        token: false,
        clientCert: { cert, key },
        headers: { "Content-Type": "application/merge-patch+json" },
        body: JSON.stringify({ status: { message: "patched by its kubelet" } }),
      });
    const patchOther = await patchStatus("pod-b");
    expect(patchOther.status).toBe(403);
    expect((JSON.parse(patchOther.text) as { message: string }).message).toBe(`pods "pod-b" is forbidden: node "${nodeA}" can only update pod status for pods with spec.nodeName set to itself`);
    const patchOwn = await patchStatus("pod-a");
    expect(patchOwn.status, patchOwn.text).toBe(200);
    expect((JSON.parse(patchOwn.text) as { status: { message?: string } }).status.message).toBe("patched by its kubelet");
    // Nor may it write another node's Node object, nor create a Deployment.
    const label = await kubectlAs(kubeletA, ["label", "node", nodeB, "stolen=yes"]);
    expect(label.code).not.toBe(0);
    expect(label.stderr).toContain(`node "${nodeA}" is not allowed to modify node "${nodeB}"`);
    const deploy = await kubectlAs(kubeletA, ["create", "deployment", "x", "--image=busybox", "-n", "sec"]);
    expect(deploy.code).not.toBe(0);
    expect(deploy.stderr).toContain(`deployments.apps is forbidden: User "system:node:${nodeA}" cannot create resource "deployments" in API group "apps" in the namespace "sec"`);
  });
});

describe("RBAC: a user bound to view in one namespace", () => {
  let jane: string;

  beforeAll(async () => {
    await ok(["create", "namespace", "team-a"]);
    await ok(["create", "configmap", "settings", "-n", "team-a", "--from-literal=a=1"]);
    await ok(["create", "rolebinding", "jane-view", "--clusterrole=view", "--user=jane", "-n", "team-a"]);
    jane = kubeconfigFor("jane", { cert: issueClientCert(ca, { user: "jane", groups: ["developers"] }) });
  });

  it("lists pods and reads configmaps there, and nothing elsewhere", async () => {
    const pods = await kubectlAs(jane, ["get", "pods", "-n", "team-a"]);
    expect(pods.code, pods.stderr).toBe(0);
    expect((await kubectlAs(jane, ["get", "configmap", "settings", "-n", "team-a", "-o", "jsonpath={.data.a}"])).stdout).toBe("1");
    const elsewhere = await kubectlAs(jane, ["get", "pods", "-n", "default"]);
    expect(elsewhere.stderr.trim()).toBe(`Error from server (Forbidden): pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "default"`);
    const cluster = await kubectlAs(jane, ["get", "nodes"]);
    expect(cluster.stderr.trim()).toBe(`Error from server (Forbidden): nodes is forbidden: User "jane" cannot list resource "nodes" in API group "" at the cluster scope`);
    const write = await kubectlAs(jane, ["create", "configmap", "mine", "-n", "team-a", "--from-literal=b=2"]);
    expect(write.stderr.trim()).toBe(`error: failed to create configmap: configmaps is forbidden: User "jane" cannot create resource "configmaps" in API group "" in the namespace "team-a"`);
    // view does not read secrets.
    const secrets = await kubectlAs(jane, ["get", "secrets", "-n", "team-a"]);
    expect(secrets.stderr).toContain(`secrets is forbidden: User "jane" cannot list resource "secrets"`);
  });

  it("kubectl auth can-i --list agrees with the bindings", async () => {
    const list = await kubectlAs(jane, ["auth", "can-i", "--list", "-n", "team-a"]);
    expect(list.code, list.stderr).toBe(0);
    const row = (resource: string) => list.stdout.split("\n").find((l) => l.trim().split(/\s+/)[0] === resource);
    expect(row("pods")).toMatch(/\[get list watch\]/);
    expect(row("configmaps")).toMatch(/\[get list watch\]/);
    expect(row("deployments.apps")).toMatch(/\[get list watch\]/);
    expect(row("secrets")).toBeUndefined();
    expect(row("selfsubjectreviews.authentication.k8s.io")).toMatch(/\[create\]/);
    const other = await kubectlAs(jane, ["auth", "can-i", "--list", "-n", "default"]);
    expect(other.stdout.split("\n").find((l) => l.trim().startsWith("pods "))).toBeUndefined();
    for (const [args, want] of [
      [["get", "pods", "-n", "team-a"], "yes"],
      [["watch", "deployments.apps", "-n", "team-a"], "yes"],
      [["delete", "pods", "-n", "team-a"], "no"],
      [["get", "pods", "-n", "default"], "no"],
      [["get", "secrets", "-n", "team-a"], "no"],
    ] as const) {
      const r = await kubectlAs(jane, ["auth", "can-i", ...args]);
      expect(r.stdout.trim(), args.join(" ")).toBe(want);
    }
  });

  it("jane cannot grant herself more than she holds (escalation)", async () => {
    const r = await kubectlAs(jane, ["create", "rolebinding", "jane-admin", "--clusterrole=admin", "--user=jane", "-n", "team-a"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("is forbidden");
  });
});

describe("ServiceAccount tokens", () => {
  it("a pod's projected token authenticates as its ServiceAccount and stops working once the pod is deleted", async () => {
    await ok(["create", "namespace", "tokens"]);
    await ok(["create", "serviceaccount", "reader", "-n", "tokens"]);
    await ok(["apply", "-f", "-"], `apiVersion: v1
kind: Pod
metadata: {name: app, namespace: tokens}
spec:
  serviceAccountName: reader
  containers:
  - name: c
    image: busybox
    command: [sleep, "3600"]
`);
    const pod = await waitRunning("tokens", "app");
    const token = (await ok(["exec", "app", "-n", "tokens", "--", "cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"])).trim();
    expect(token.split(".")).toHaveLength(3);
    const claims = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as { sub: string; "kubernetes.io": { pod: { name: string; uid: string } } };
    expect(claims.sub).toBe("system:serviceaccount:tokens:reader");
    expect(claims["kubernetes.io"].pod).toEqual({ name: "app", uid: pod.metadata.uid });
    const ns = (await ok(["exec", "app", "-n", "tokens", "--", "cat", "/var/run/secrets/kubernetes.io/serviceaccount/namespace"])).trim();
    expect(ns).toBe("tokens");
    const asPod = kubeconfigFor("pod-token", { token });
    const who = await kubectlAs(asPod, ["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]);
    expect(who.code, who.stderr).toBe(0);
    expect(who.stdout).toBe("system:serviceaccount:tokens:reader");
    await ok(["delete", "pod", "app", "-n", "tokens", "--grace-period=0", "--force"]);
    await poll("pod app gone", async () => ((await k.kubectl(["get", "pod", "app", "-n", "tokens"])).code !== 0 ? true : undefined));
    const after = await kubectlAs(asPod, ["auth", "whoami"]);
    expect(after.code).not.toBe(0);
    expect(after.stderr.trim()).toBe("error: You must be logged in to the server (Unauthorized)");
  }, 180_000);

  it("the OIDC discovery document and JWKS name the issuer and the signing key", async () => {
    const conf = JSON.parse((await request(k, { path: "/.well-known/openid-configuration" })).text) as { issuer: string; jwks_uri: string };
    expect(conf.issuer).toBe("https://kubernetes.default.svc.cluster.local");
    const jwks = JSON.parse((await request(k, { path: "/openid/v1/jwks" })).text) as { keys: { kty: string; alg: string; kid: string }[] };
    expect(jwks.keys[0]).toMatchObject({ kty: "RSA", alg: "RS256" });
  });
});

describe("bad credentials", () => {
  it("1,000 requests with forged, expired, wrong-audience or wrong-CA credentials: all 401, none 5xx", async () => {
    const saKey = readFileSync(join(k.dataDir, "pki", "sa.key"), "utf8");
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs1", format: "pem" }).toString();
    const jwt = (key: string, claims: Record<string, unknown>): string => {
      const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
      const head = `${enc({ alg: "RS256", kid: "x" })}.${enc(claims)}`;
      return `${head}.${createSign("RSA-SHA256").update(head).sign(key).toString("base64url")}`;
    };
    const now = Math.floor(Date.now() / 1000);
    const base = { iss: "https://kubernetes.default.svc.cluster.local", sub: "system:serviceaccount:default:default", aud: ["https://kubernetes.default.svc.cluster.local"], iat: now, nbf: now, exp: now + 600 };
    await ok(["create", "serviceaccount", "probe", "-n", "default"]);
    const wrongAud = (await ok(["create", "token", "probe", "-n", "default", "--audience", "sts.amazonaws.com"])).trim();
    const strangerCA = (() => {
      // A CA nobody trusts, and a client certificate from it claiming system:masters.
      const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
      const key = privateKey.export({ type: "pkcs1", format: "pem" }).toString();
      const selfCA = issueClientCert({ cert: ca.cert, key }, { user: "kubelab-admin", groups: ["system:masters"] });
      return selfCA;
    })();
    const expiredCert = issueClientCert(ca, { user: "kubelab-admin", groups: ["system:masters"] }, -1);
    const kinds: { name: string; req: Parameters<typeof request>[1] }[] = [
      { name: "forged signature", req: { path: "/api/v1/pods", token: jwt(other, base) } },
      { name: "expired", req: { path: "/api/v1/pods", token: jwt(saKey, { ...base, iat: now - 7200, nbf: now - 7200, exp: now - 3600 }) } },
      { name: "wrong audience", req: { path: "/api/v1/pods", token: wrongAud } },
      { name: "wrong issuer", req: { path: "/api/v1/pods", token: jwt(saKey, { ...base, iss: "https://evil.example" }) } },
      { name: "random token", req: { path: "/api/v1/namespaces", token: randomBytes(24).toString("base64url") } },
      { name: "garbage JWT", req: { path: "/api/v1/namespaces", token: `${randomUUID()}.${randomUUID()}.${randomUUID()}` } },
      { name: "wrong CA", req: { path: "/api/v1/secrets", token: false, clientCert: strangerCA } },
      { name: "expired certificate", req: { path: "/api/v1/secrets", token: false, clientCert: expiredCert } },
      { name: "forged write", req: { method: "POST", path: "/api/v1/namespaces/default/configmaps", token: jwt(other, base), headers: { "Content-Type": "application/json" }, body: JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "forged" } }) } },
    ];
    const codes: Record<string, Record<number, number>> = {};
    for (let i = 0; i < 1000; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, async (_, j) => {
          const kind = kinds[(i + j) % kinds.length]!;
          const r = await request(k, kind.req);
          (codes[kind.name] ??= {})[r.status] = ((codes[kind.name] ??= {})[r.status] ?? 0) + 1;
        }),
      );
    }
    for (const [name, byCode] of Object.entries(codes)) expect(Object.keys(byCode), `${name}: ${JSON.stringify(byCode)}`).toEqual(["401"]);
    expect(Object.values(codes).reduce((n, c) => n + (c[401] ?? 0), 0)).toBe(1000);
    expect((await k.kubectl(["get", "configmap", "forged", "-n", "default"])).code).not.toBe(0);
  }, 120_000);
});
