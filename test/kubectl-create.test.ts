// Every `kubectl create` subcommand kubectl lists works against `kubelab up` (issue P4.3).
//
// The subcommands are enumerated from `kubectl create --help` (and `create secret --help`, `create service
// --help`), so a subcommand a new kubectl adds fails here until it is in CREATES or EXCLUDED. Each one is
// run for real (kubectl sends most of them as protobuf), and the object is read back with
// `kubectl get -o json` and checked for the fields the command set.

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { BinaryWriter } from "@bufbuild/protobuf/wire";
import forge from "node-forge";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { request } from "./harness/http.ts";
import { startKubelab, type Kubelab } from "./harness/kubelab.ts";

type Obj = Record<string, unknown>;

/** The value at a path of keys / indexes in decoded JSON (undefined when absent). */
function at(o: unknown, ...path: (string | number)[]): unknown {
  let v: unknown = o;
  for (const p of path) v = typeof v === "object" && v !== null ? (v as Record<string | number, unknown>)[p] : undefined;
  return v;
}

const str = (v: unknown): string => (typeof v === "string" ? v : "");

/** Subcommands deliberately not covered, with the reason. */
const EXCLUDED: Readonly<Record<string, string>> = {
  token: "prints a token rather than creating an object; test/irsa.test.ts and test/security.test.ts cover kubectl create token",
};

/** Subcommands that only group others (`create secret generic|tls|...`). */
const GROUPS = ["secret", "service"];

interface Case {
  /** Arguments after `kubectl create <subcommand...>`. */
  args: (files: Files) => string[];
  /** `kubectl get` arguments that read the object back. */
  get: string[];
  check: (obj: Obj, files: Files) => void;
}

interface Files {
  dir: string;
  cert: string;
  key: string;
  certPem: string;
  keyPem: string;
}

const b64 = (s: string): string => Buffer.from(s).toString("base64");
const unb64 = (s: string): string => Buffer.from(s, "base64").toString("utf8");

const CREATES: Readonly<Record<string, Case>> = {
  clusterrole: {
    args: () => ["reader", "--verb=get,list", "--resource=pods,deployments.apps", "--resource-name=a"],
    get: ["clusterrole", "reader"],
    check: (o) =>
      expect(o.rules).toStrictEqual([
        { apiGroups: [""], resources: ["pods"], resourceNames: ["a"], verbs: ["get", "list"] },
        { apiGroups: ["apps"], resources: ["deployments"], resourceNames: ["a"], verbs: ["get", "list"] },
      ]),
  },
  clusterrolebinding: {
    args: () => ["crb1", "--clusterrole=view", "--user=jane", "--group=devs", "--serviceaccount=default:bot"],
    get: ["clusterrolebinding", "crb1"],
    check: (o) =>
      expect(o).toMatchObject({
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "view" },
        subjects: [
          { apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "jane" },
          { apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "devs" },
          { kind: "ServiceAccount", name: "bot", namespace: "default" },
        ],
      }),
  },
  role: {
    args: () => ["pod-reader", "--verb=get", "--verb=watch", "--resource=pods"],
    get: ["role", "pod-reader"],
    check: (o) => expect(o.rules).toStrictEqual([{ apiGroups: [""], resources: ["pods"], verbs: ["get", "watch"] }]),
  },
  rolebinding: {
    args: () => ["rb1", "--role=pod-reader", "--user=jane"],
    get: ["rolebinding", "rb1"],
    check: (o) =>
      expect(o).toMatchObject({
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "pod-reader" },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "jane" }],
      }),
  },
  configmap: {
    args: () => ["cm1", "--from-literal=a=b", "--from-literal=greeting=hello world"],
    get: ["configmap", "cm1"],
    check: (o) => expect(o.data).toStrictEqual({ a: "b", greeting: "hello world" }),
  },
  cronjob: {
    args: () => ["cj1", "--image=busybox", "--schedule=*/5 * * * *", "--restart=OnFailure", "--", "date"],
    get: ["cronjob", "cj1"],
    check: (o) =>
      expect(o).toMatchObject({
        spec: {
          schedule: "*/5 * * * *",
          jobTemplate: { spec: { template: { spec: { restartPolicy: "OnFailure", containers: [{ name: "cj1", image: "busybox", command: ["date"] }] } } } },
        },
      }),
  },
  deployment: {
    args: () => ["web", "--image=nginx", "--port=80", "--replicas=3"],
    get: ["deployment", "web"],
    check: (o) =>
      expect(o).toMatchObject({
        spec: {
          replicas: 3,
          selector: { matchLabels: { app: "web" } },
          template: { spec: { containers: [{ name: "nginx", image: "nginx", ports: [{ containerPort: 80 }] }] } },
        },
      }),
  },
  ingress: {
    args: () => ["ing1", "--class=nginx", "--rule=foo.com/bar*=svc1:8080,tls=my-cert", "--default-backend=defsvc:http"],
    get: ["ingress", "ing1"],
    check: (o) =>
      expect(o.spec).toStrictEqual({
        ingressClassName: "nginx",
        defaultBackend: { service: { name: "defsvc", port: { name: "http" } } },
        rules: [{ host: "foo.com", http: { paths: [{ path: "/bar", pathType: "Prefix", backend: { service: { name: "svc1", port: { number: 8080 } } } }] } }],
        tls: [{ hosts: ["foo.com"], secretName: "my-cert" }],
      }),
  },
  job: {
    args: () => ["j1", "--image=busybox", "--", "echo", "hi"],
    get: ["job", "j1"],
    check: (o) =>
      expect(o).toMatchObject({
        spec: { template: { spec: { restartPolicy: "Never", containers: [{ name: "j1", image: "busybox", command: ["echo", "hi"] }] } } },
      }),
  },
  namespace: {
    args: () => ["ns1"],
    get: ["namespace", "ns1"],
    check: (o) => expect(o).toMatchObject({ status: { phase: "Active" } }),
  },
  poddisruptionbudget: {
    args: () => ["pdb1", "--selector=app=web", "--min-available=2"],
    get: ["poddisruptionbudget", "pdb1"],
    check: (o) => expect(o).toMatchObject({ apiVersion: "policy/v1", spec: { minAvailable: 2, selector: { matchLabels: { app: "web" } } } }),
  },
  priorityclass: {
    args: () => ["high", "--value=1000", "--description=for important things", "--preemption-policy=Never"],
    get: ["priorityclass", "high"],
    check: (o) => {
      expect(o).toMatchObject({ value: 1000, description: "for important things", preemptionPolicy: "Never" });
      expect(o.globalDefault ?? false).toBe(false);
    },
  },
  quota: {
    args: () => ["q1", "--hard=pods=3,requests.cpu=1,limits.memory=2Gi"],
    get: ["resourcequota", "q1"],
    check: (o) => expect(at(o, "spec", "hard")).toStrictEqual({ pods: "3", "requests.cpu": "1", "limits.memory": "2Gi" }),
  },
  "secret docker-registry": {
    args: () => ["regcred", "--docker-server=registry.example.com", "--docker-username=u", "--docker-password=p", "--docker-email=u@example.com"],
    get: ["secret", "regcred"],
    check: (o) => {
      expect(o.type).toBe("kubernetes.io/dockerconfigjson");
      const cfg = JSON.parse(unb64(str(at(o, "data", ".dockerconfigjson")))) as unknown;
      expect(at(cfg, "auths", "registry.example.com")).toMatchObject({ username: "u", password: "p", email: "u@example.com", auth: b64("u:p") });
    },
  },
  "secret generic": {
    args: () => ["s1", "--from-literal=password=s3cr3t", "--from-literal=user=admin"],
    get: ["secret", "s1"],
    check: (o) => {
      expect(o.type).toBe("Opaque");
      expect(o.data).toStrictEqual({ password: b64("s3cr3t"), user: b64("admin") });
    },
  },
  "secret tls": {
    args: (f) => ["tls1", `--cert=${f.cert}`, `--key=${f.key}`],
    get: ["secret", "tls1"],
    check: (o, f) => {
      expect(o.type).toBe("kubernetes.io/tls");
      expect(unb64(str(at(o, "data", "tls.crt")))).toBe(f.certPem);
      expect(unb64(str(at(o, "data", "tls.key")))).toBe(f.keyPem);
    },
  },
  "service clusterip": {
    args: () => ["s1", "--tcp=80:8080"],
    get: ["service", "s1"],
    check: (o) => {
      expect(o).toMatchObject({ spec: { type: "ClusterIP", selector: { app: "s1" }, ports: [{ name: "80-8080", port: 80, targetPort: 8080, protocol: "TCP" }] } });
      expect(at(o, "spec", "clusterIP")).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    },
  },
  "service externalname": {
    args: () => ["ext1", "--external-name=db.example.com"],
    get: ["service", "ext1"],
    check: (o) => {
      expect(o).toMatchObject({ spec: { type: "ExternalName", externalName: "db.example.com" } });
      expect(at(o, "spec", "clusterIP")).toBeUndefined();
    },
  },
  "service loadbalancer": {
    args: () => ["lb1", "--tcp=443:8443"],
    get: ["service", "lb1"],
    check: (o) => {
      expect(o).toMatchObject({ spec: { type: "LoadBalancer", ports: [{ port: 443, targetPort: 8443 }] } });
      expect(at(o, "spec", "ports", 0, "nodePort")).toBeGreaterThanOrEqual(30000);
    },
  },
  "service nodeport": {
    args: () => ["np1", "--tcp=80:8080", "--node-port=30080"],
    get: ["service", "np1"],
    check: (o) => expect(o).toMatchObject({ spec: { type: "NodePort", ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }] } }),
  },
  serviceaccount: {
    args: () => ["sa1"],
    get: ["serviceaccount", "sa1"],
    check: (o) => expect(o).toMatchObject({ kind: "ServiceAccount", metadata: { namespace: "default" } }),
  },
};

/** The subcommand names of a `kubectl ... --help` text (its "Available Commands:" block). */
function listedSubcommands(help: string): string[] {
  const lines = help.split("\n");
  const start = lines.findIndex((l) => l.trim() === "Available Commands:");
  if (start < 0) throw new Error(`no "Available Commands:" in:\n${help}`);
  const out: string[] = [];
  for (const line of lines.slice(start + 1)) {
    const m = /^\s+([a-z][\w-]*)\s+\S/.exec(line);
    if (!m?.[1]) break;
    out.push(m[1]);
  }
  return out;
}

function help(args: string[]): string {
  // help is rendered locally (no server); an empty KUBECONFIG keeps it from reading the user's
  return execFileSync("kubectl", [...args, "--help"], { encoding: "utf8", env: { ...process.env, KUBECONFIG: "/dev/null" } });
}

/** Every leaf subcommand kubectl lists: "configmap", "secret tls", "service nodeport", ... */
function enumerate(): string[] {
  const out: string[] = [];
  for (const sub of listedSubcommands(help(["create"]))) {
    if (GROUPS.includes(sub)) for (const leaf of listedSubcommands(help(["create", sub]))) out.push(`${sub} ${leaf}`);
    else out.push(sub);
  }
  return out;
}

const LISTED = enumerate();

/** A self-signed certificate and key (PEM) for `create secret tls`. */
function tlsPair(): { certPem: string; keyPem: string } {
  const keys = forge.pki.rsa.generateKeyPair(2048);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = "01";
  cert.validity.notBefore = new Date("2024-01-01T00:00:00Z");
  cert.validity.notAfter = new Date("2034-01-01T00:00:00Z");
  const subject = [{ name: "commonName", value: "kubectl-create.test" }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: forge.pki.privateKeyToPem(keys.privateKey) };
}

describe("kubectl create --help lists only subcommands this suite covers", () => {
  it("finds the subcommands of kubectl 1.32 (sanity check of the help parser)", () => {
    expect(LISTED).toEqual(expect.arrayContaining(["configmap", "deployment", "secret generic", "secret tls", "service nodeport", "token", "role"]));
    expect(LISTED).not.toContain("secret");
  });

  it("every listed subcommand is in the table or explicitly excluded", () => {
    const uncovered = LISTED.filter((s) => !Object.hasOwn(CREATES, s) && !Object.hasOwn(EXCLUDED, s));
    expect(uncovered, "add these to CREATES (or, with a reason, to EXCLUDED)").toStrictEqual([]);
    // and the table has nothing kubectl no longer lists
    expect(Object.keys(CREATES).filter((s) => !LISTED.includes(s))).toStrictEqual([]);
  });
});

describe("every kubectl create subcommand against kubelab up", () => {
  let k: Kubelab;
  let files: Files;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "kubectl-create-"));
    const { certPem, keyPem } = tlsPair();
    files = { dir, cert: join(dir, "tls.crt"), key: join(dir, "tls.key"), certPem, keyPem };
    writeFileSync(files.cert, certPem);
    writeFileSync(files.key, keyPem);
    k = await startKubelab();
  }, 120_000);

  afterAll(async () => {
    await k?.stop({ clean: true });
    if (files) rmSync(files.dir, { recursive: true, force: true });
  });

  for (const sub of LISTED.filter((s) => Object.hasOwn(CREATES, s))) {
    it(`kubectl create ${sub}`, async () => {
      const c = CREATES[sub]!;
      const created = await k.kubectl(["create", ...sub.split(" "), ...c.args(files)]);
      expect(created.code, created.stderr).toBe(0);
      expect(created.stdout).toMatch(/ created\n$/);
      const got = await k.kubectl(["get", ...c.get, "-o", "json"]);
      expect(got.code, got.stderr).toBe(0);
      const obj = JSON.parse(got.stdout) as Obj;
      expect(at(obj, "metadata", "name")).toBe(c.get[1]);
      c.check(obj, files);
    }, 60_000);
  }

  it("the protobuf bodies did arrive as protobuf (priorityclass and ingress were the failing ones)", async () => {
    const r = await k.kubectl(["create", "priorityclass", "pc-proto", "--value=7", "-v=8"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Request Headers:[\s\S]*Content-Type: application\/vnd\.kubernetes\.protobuf/);
  });

  it("unknown protobuf fields are dropped like upstream, even with fieldValidation=Strict", async () => {
    // v1.ConfigMap{metadata{name}, data{k: v}} plus field 99 (no such field): upstream's decoder skips it
    const w = new BinaryWriter();
    w.uint32((1 << 3) | 2).fork().uint32((1 << 3) | 2).string("pb-unknown").join();
    w.uint32((2 << 3) | 2).fork().uint32((1 << 3) | 2).string("k").uint32((2 << 3) | 2).string("v").join();
    w.uint32((99 << 3) | 2).string("from a newer client");
    const raw = w.finish();
    const env = new BinaryWriter();
    env.uint32((1 << 3) | 2).fork().uint32((1 << 3) | 2).string("v1").uint32((2 << 3) | 2).string("ConfigMap").join();
    env.uint32((2 << 3) | 2).bytes(raw);
    const body = Buffer.concat([Buffer.from("k8s\0", "latin1"), env.finish()]);
    const res = await request(k, {
      method: "POST",
      path: "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
      headers: { "Content-Type": "application/vnd.kubernetes.protobuf", Accept: "application/json" },
      body,
    });
    expect(res.status, res.text).toBe(201);
    expect(res.headers.warning).toBeUndefined();
    const got = await k.kubectl(["get", "configmap", "pb-unknown", "-o", "json"]);
    expect(at(JSON.parse(got.stdout), "data")).toStrictEqual({ k: "v" });
  });

  it("a protobuf DeleteOptions body is honoured (preconditions)", async () => {
    expect((await k.kubectl(["create", "configmap", "pb-del"])).code).toBe(0);
    // DeleteOptions{preconditions{uid: "not-the-uid"}} as client-go's typed client sends it
    const opts = new BinaryWriter().uint32((2 << 3) | 2).fork().uint32((1 << 3) | 2).string("not-the-uid").join().finish();
    const env = new BinaryWriter();
    env.uint32((1 << 3) | 2).fork().uint32((1 << 3) | 2).string("v1").uint32((2 << 3) | 2).string("DeleteOptions").join();
    env.uint32((2 << 3) | 2).bytes(opts);
    const res = await request(k, {
      method: "DELETE",
      path: "/api/v1/namespaces/default/configmaps/pb-del",
      headers: { "Content-Type": "application/vnd.kubernetes.protobuf", Accept: "application/json" },
      body: Buffer.concat([Buffer.from("k8s\0", "latin1"), env.finish()]),
    });
    expect(res.status, res.text).toBe(409);
    expect((await k.kubectl(["get", "configmap", "pb-del"])).code).toBe(0);
  });

  it("kubectl create -f and apply -f of the P4.3 kinds validate through OpenAPI (fieldValidation=Strict)", async () => {
    const manifest = `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 0
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: nginx, image: nginx}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: busybox}]}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  suspend: true
  jobTemplate:
    spec:
      template:
        spec: {restartPolicy: OnFailure, containers: [{name: c, image: busybox}]}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web-pdb}
spec:
  maxUnavailable: 1
  selector: {matchLabels: {app: web}}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: compute}
spec:
  hard: {pods: "10"}
---
apiVersion: v1
kind: LimitRange
metadata: {name: defaults}
spec:
  limits:
  - type: Container
    default: {memory: 256Mi}
`;
    const created = await k.kubectl(["create", "-f", "-"], { input: manifest });
    expect(created.code, created.stderr).toBe(0);
    for (const what of ["statefulset.apps/web", "daemonset.apps/agent", "cronjob.batch/nightly", "poddisruptionbudget.policy/web-pdb", "resourcequota/compute", "limitrange/defaults"]) {
      expect(created.stdout).toContain(`${what} created`);
    }
    const applied = await k.kubectl(["apply", "-f", "-"], { input: manifest.replace('"0 3 * * *"', '"0 4 * * *"') });
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toContain("cronjob.batch/nightly configured");
    const cj = JSON.parse((await k.kubectl(["get", "cronjob", "nightly", "-o", "json"])).stdout) as unknown;
    expect(at(cj, "spec", "schedule")).toBe("0 4 * * *");
    // the server checks the fields (kubectl sent fieldValidation=Strict since OpenAPI lists it)
    const typo = await k.kubectl(["apply", "-f", "-"], {
      input: "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: typo}\nspec: {minAvailabel: 1}\n",
    });
    expect(typo.code).not.toBe(0);
    expect(typo.stderr).toContain('unknown field "spec.minAvailabel"');
  }, 60_000);
});
