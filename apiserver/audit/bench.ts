// What auditing costs a request: `npx tsx apiserver/audit/bench.ts`. Times begin → authorized →
// complete for a GET of a pod (RequestReceived + ResponseComplete written), on the request path
// (synchronous part) and including the log backend's serialization and writes (until close).

import type { IncomingMessage, ServerResponse } from "node:http";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Auditor } from "./audit.ts";
import { LogBackend } from "./log.ts";
import { parsePolicy, PolicyRuleEvaluator, type Level, type PolicyAttributes } from "./policy.ts";

const N = 50_000;
const pod = {
  kind: "Pod",
  apiVersion: "v1",
  metadata: { name: "web-0", namespace: "default", uid: "0b9c6a1e-8f7e-4d4e-9a59-3f2d8c1e0a11", resourceVersion: "12345", labels: { app: "web" } },
  spec: { nodeName: "node-1", containers: [{ name: "web", image: "nginx:1.27", ports: [{ containerPort: 80 }], resources: { requests: { cpu: "100m", memory: "64Mi" } } }] },
  status: { phase: "Running", podIP: "10.0.0.5", conditions: [{ type: "Ready", status: "True" }] },
};
const body = JSON.stringify(pod);
const req = {
  method: "GET",
  url: "/api/v1/namespaces/default/pods/web-0",
  headers: { "user-agent": "kubectl/v1.32.0 (linux/amd64) kubernetes/abc" },
  socket: { remoteAddress: "127.0.0.1" },
} as unknown as IncomingMessage;
const res = {} as ServerResponse;
const attrs: PolicyAttributes = {
  user: { name: "kubelab-admin", uid: "", groups: ["system:masters", "system:authenticated"] },
  verb: "get",
  isResourceRequest: true,
  path: req.url!,
  apiGroup: "",
  apiVersion: "v1",
  resource: "pods",
  subresource: "",
  namespace: "default",
  name: "web-0",
};

async function run(level: Level): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "audit-bench-"));
  const backend = new LogBackend({ path: join(dir, "audit.log"), maxSizeMB: 1024 });
  const auditor = new Auditor(new PolicyRuleEvaluator(parsePolicy(`apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: ${level}\n`).policy), backend);
  const t0 = process.hrtime.bigint();
  let sync = 0n;
  // Batches of 500 requests a loop turn, as a busy server interleaves requests with the backend's writes.
  for (let i = 0; i < N; i += 500) {
    const s = process.hrtime.bigint();
    for (let j = 0; j < 500; j++) {
      const ev = auditor.begin(req, res, attrs);
      ev?.authorized("Allow", "");
      ev?.complete(200, body);
    }
    sync += process.hrtime.bigint() - s;
    await new Promise((r) => setImmediate(r));
  }
  await backend.close();
  const total = process.hrtime.bigint() - t0;
  const size = statSync(join(dir, "audit.log")).size;
  rmSync(dir, { recursive: true });
  console.log(
    `${level.padEnd(15)} request path ${(Number(sync) / N / 1000).toFixed(2)} µs/request; with serialization and writes ${(Number(total) / N / 1000).toFixed(2)} µs/request (${((size / N) | 0)} bytes/request, ${backend.stats.written} events)`,
  );
}

for (const level of ["None", "Metadata", "Request", "RequestResponse"] as Level[]) await run(level);
