// Fixture recorder: runs the real kubectl (1.32) against a throwaway HTTP server and saves the
// protobuf request bodies it sends, plus the client-side JSON (`--dry-run=client -o json`) for the same
// command, as fixtures for protobuf.test.ts.
//
//   npx tsx apiserver/protobuf/testdata/record.ts
//
// Writes <name>.bin (raw request body, starts with "k8s\0") and <name>.json (kubectl's client-side JSON)
// next to this file. Needs `kubectl` on PATH (the gcloud dispatcher picks 1.32 from /version below).

import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

interface Recorded {
  method: string;
  url: string;
  contentType: string;
  body: Buffer;
}

const recorded: Recorded[] = [];

const verbs = ["create", "delete", "get", "list", "patch", "update", "watch"];
const resourceLists: Record<string, { resources: Array<{ name: string; kind: string; namespaced: boolean }> }> = {
  "/api/v1": {
    resources: [
      { name: "namespaces", kind: "Namespace", namespaced: false },
      { name: "nodes", kind: "Node", namespaced: false },
      { name: "pods", kind: "Pod", namespaced: true },
      { name: "configmaps", kind: "ConfigMap", namespaced: true },
      { name: "secrets", kind: "Secret", namespaced: true },
      { name: "services", kind: "Service", namespaced: true },
      { name: "serviceaccounts", kind: "ServiceAccount", namespaced: true },
      { name: "resourcequotas", kind: "ResourceQuota", namespaced: true },
    ],
  },
  "/apis/networking.k8s.io/v1": { resources: [{ name: "ingresses", kind: "Ingress", namespaced: true }] },
  "/apis/scheduling.k8s.io/v1": { resources: [{ name: "priorityclasses", kind: "PriorityClass", namespaced: false }] },
  "/apis/policy/v1": { resources: [{ name: "poddisruptionbudgets", kind: "PodDisruptionBudget", namespaced: true }] },
  "/apis/apps/v1": { resources: [{ name: "deployments", kind: "Deployment", namespaced: true }] },
  "/apis/batch/v1": {
    resources: [
      { name: "jobs", kind: "Job", namespaced: true },
      { name: "cronjobs", kind: "CronJob", namespaced: true },
    ],
  },
};

// State for the drain scenario: one node, one unmanaged pod on it, deleted by the DELETE fallback.
// (With pods/eviction in discovery, kubectl 1.32 POSTs its policy/v1 Eviction as JSON, not protobuf.)
let podDeleted = false;
const node = { apiVersion: "v1", kind: "Node", metadata: { name: "n1", uid: "node-uid", resourceVersion: "1" }, spec: {} };
const pod = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "p1", namespace: "default", uid: "pod-uid", resourceVersion: "2" },
  spec: { nodeName: "n1", containers: [{ name: "c", image: "busybox" }] },
  status: { phase: "Running" },
};

/** Minimal protobuf scan: envelope -> Unknown.raw (2) -> object.metadata (1) -> ObjectMeta.name (1). */
function protobufName(body: Buffer): string {
  const field = (buf: Buffer, want: number): Buffer | undefined => {
    let i = 0;
    const varint = (): number => {
      let v = 0;
      let mul = 1;
      for (;;) {
        const b = buf[i++];
        if (b === undefined) throw new Error("truncated");
        v += (b & 0x7f) * mul;
        mul *= 128;
        if (b < 0x80) return v;
      }
    };
    while (i < buf.length) {
      const tag = varint();
      const wire = tag & 7;
      if (wire === 0) varint();
      else if (wire === 1) i += 8;
      else if (wire === 5) i += 4;
      else if (wire === 2) {
        const len = varint();
        const slice = buf.subarray(i, i + len);
        i += len;
        if (tag >>> 3 === want) return slice;
      } else throw new Error(`wire type ${wire}`);
    }
    return undefined;
  };
  try {
    const raw = field(body.subarray(4), 2);
    const meta = raw && field(raw, 1);
    const name = meta && field(meta, 1);
    return name ? name.toString("utf8") : "";
  } catch {
    return "";
  }
}

function send(res: http.ServerResponse, code: number, obj: unknown): void {
  const text = JSON.stringify(obj);
  res.writeHead(code, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    const url = new URL(req.url ?? "/", "http://x");
    const path = url.pathname;
    const method = req.method ?? "GET";
    if (method !== "GET") {
      recorded.push({ method, url: req.url ?? "", contentType: req.headers["content-type"] ?? "", body });
    }
    if (path === "/version") {
      return send(res, 200, { major: "1", minor: "32", gitVersion: "v1.32.4", platform: "linux/amd64" });
    }
    if (path === "/api") return send(res, 200, { kind: "APIVersions", versions: ["v1"] });
    if (path === "/apis") {
      const group = (name: string) => ({
        name,
        versions: [{ groupVersion: `${name}/v1`, version: "v1" }],
        preferredVersion: { groupVersion: `${name}/v1`, version: "v1" },
      });
      const groups = Object.keys(resourceLists).filter((p) => p.startsWith("/apis/")).map((p) => p.split("/")[2] ?? "");
      return send(res, 200, { kind: "APIGroupList", apiVersion: "v1", groups: groups.map(group) });
    }
    const list = resourceLists[path];
    if (list) {
      return send(res, 200, {
        kind: "APIResourceList",
        apiVersion: "v1",
        groupVersion: path === "/api/v1" ? "v1" : path.slice("/apis/".length),
        resources: list.resources.map((r) => ({ ...r, singularName: r.kind.toLowerCase(), verbs })),
      });
    }
    // drain scenario
    if (path === "/api/v1/nodes/n1") return send(res, 200, node);
    if (path === "/api/v1/pods") {
      return send(res, 200, { kind: "PodList", apiVersion: "v1", metadata: { resourceVersion: "3" }, items: podDeleted ? [] : [pod] });
    }
    if (path === "/api/v1/namespaces/default/pods/p1") {
      if (method === "DELETE") {
        podDeleted = true;
        return send(res, 200, pod);
      }
      if (podDeleted) {
        return send(res, 404, { kind: "Status", apiVersion: "v1", status: "Failure", reason: "NotFound", code: 404, message: 'pods "p1" not found' });
      }
      return send(res, 200, pod);
    }
    if (method === "POST") {
      const parts = path.split("/").filter(Boolean);
      const apiVersion = parts[0] === "api" ? parts[1] : `${parts[1]}/${parts[2]}`;
      const plural = parts[parts.length - 1];
      const all = Object.values(resourceLists).flatMap((l) => l.resources);
      const kind = all.find((r) => r.name === plural)?.kind ?? "Unknown";
      return send(res, 201, { apiVersion, kind, metadata: { name: protobufName(body) } });
    }
    send(res, 404, { kind: "Status", apiVersion: "v1", status: "Failure", reason: "NotFound", code: 404, message: "not found" });
  });
});

function kubectl(port: number, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const cacheDir = mkdtempSync(join(tmpdir(), "kubectl-cache-"));
  const kubeconfig = join(mkdtempSync(join(tmpdir(), "kubeconfig-")), "config");
  writeFileSync(kubeconfig, "apiVersion: v1\nkind: Config\n");
  const full = ["--server", `http://127.0.0.1:${port}`, "--cache-dir", cacheDir, ...args];
  return new Promise((resolve) => {
    execFile("kubectl", full, { env: { ...process.env, KUBECONFIG: kubeconfig }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

// a throwaway self-signed pair for `create secret tls`
const certDir = mkdtempSync(join(tmpdir(), "record-tls-"));
execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-subj", "/CN=record.example.com",
  "-keyout", join(certDir, "tls.key"), "-out", join(certDir, "tls.crt")], { stdio: "ignore" });

/** name -> kubectl create arguments (after "create"). */
const creates: Record<string, string[]> = {
  namespace: ["namespace", "ns1"],
  configmap: ["configmap", "cm1", "--from-literal=a=b", "--from-literal=greeting=hello world"],
  secret: ["secret", "generic", "s1", "--from-literal=a=b", "--from-literal=password=s3cr3t"],
  "secret-docker-registry": [
    "secret", "docker-registry", "regcred", "--docker-server=registry.example.com",
    "--docker-username=u", "--docker-password=p", "--docker-email=u@example.com",
  ],
  deployment: ["deployment", "web", "--image=nginx", "--port=80", "--replicas=3"],
  "deployment-command": ["deployment", "sleeper", "--image=busybox", "--", "sleep", "3600"],
  service: ["service", "clusterip", "s1", "--tcp=80:8080"],
  "service-nodeport": ["service", "nodeport", "np1", "--tcp=80:http", "--node-port=30080"],
  "service-headless": ["service", "clusterip", "headless", "--clusterip=None"],
  job: ["job", "j1", "--image=busybox", "--", "echo", "hi"],
  serviceaccount: ["serviceaccount", "sa1"],
  cronjob: ["cronjob", "cj1", "--image=busybox", "--schedule=*/5 * * * *", "--", "date"],
  "secret-tls": ["secret", "tls", "tls1", `--cert=${join(certDir, "tls.crt")}`, `--key=${join(certDir, "tls.key")}`],
  "service-loadbalancer": ["service", "loadbalancer", "lb1", "--tcp=443:8443"],
  "service-externalname": ["service", "externalname", "ext1", "--external-name=db.example.com", "--tcp=5432"],
  ingress: ["ingress", "ing1", "--class=nginx", "--rule=foo.com/bar*=svc1:8080,tls=my-cert", "--default-backend=defsvc:http", "--annotation=a=b"],
  priorityclass: ["priorityclass", "high", "--value=1000", "--global-default=false", "--description=high priority", "--preemption-policy=Never"],
  poddisruptionbudget: ["poddisruptionbudget", "pdb1", "--selector=app=web", "--min-available=50%"],
  "poddisruptionbudget-max": ["poddisruptionbudget", "pdb2", "--selector=app=db", "--max-unavailable=0"],
  quota: ["quota", "q1", "--hard=pods=3,requests.cpu=1,limits.memory=2Gi", "--scopes=NotTerminating"],
};

async function main(): Promise<void> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  let failed = false;
  for (const [name, args] of Object.entries(creates)) {
    recorded.length = 0;
    const real = await kubectl(port, ["create", ...args]);
    const posts = recorded.filter((r) => r.method === "POST");
    const post = posts[0];
    if (real.code !== 0 || posts.length !== 1 || !post) {
      console.error(`${name}: exit ${real.code}, ${posts.length} POSTs\n${real.stderr}`);
      failed = true;
      continue;
    }
    if (!post.body.subarray(0, 4).equals(Buffer.from("k8s\0", "latin1"))) {
      console.error(`${name}: body is not protobuf (Content-Type ${post.contentType})`);
      failed = true;
      continue;
    }
    writeFileSync(join(here, `${name}.bin`), post.body);
    // the dry-run flags must go before a `--` (everything after it is the container command)
    const dash = args.indexOf("--");
    const dryArgs = dash < 0 ? [...args, "--dry-run=client", "-o", "json"]
      : [...args.slice(0, dash), "--dry-run=client", "-o", "json", ...args.slice(dash)];
    const dry = await kubectl(port, ["create", ...dryArgs]);
    if (dry.code !== 0) {
      console.error(`${name}: dry-run exit ${dry.code}\n${dry.stderr}`);
      failed = true;
      continue;
    }
    writeFileSync(join(here, `${name}.json`), dry.stdout);
    console.log(`${name}: POST ${post.url} ${post.contentType} ${post.body.length} bytes`);
  }

  // drain without pods/eviction in discovery falls back to DELETE pods/X with a protobuf DeleteOptions.
  recorded.length = 0;
  const drain = await kubectl(port, ["drain", "n1", "--force", "--grace-period=30", "--timeout=30s"]);
  const del = recorded.find((r) => r.method === "DELETE");
  if (drain.code !== 0 || !del) {
    console.error(`drain: exit ${drain.code}, DELETE ${del ? "seen" : "missing"}\n${drain.stderr}`);
    failed = true;
  } else {
    writeFileSync(join(here, "deleteoptions.bin"), del.body);
    console.log(`deleteoptions: DELETE ${del.url} ${del.contentType} ${del.body.length} bytes`);
  }

  server.close();
  if (failed) process.exitCode = 1;
}

await main();
