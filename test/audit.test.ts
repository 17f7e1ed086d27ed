// The audit log on `kubelab up --audit-policy-file`: upstream's audit.k8s.io/v1 events, one JSON
// line each, at the level the first matching rule gives.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startKubelab, type Kubelab } from "./harness/kubelab.ts";

let k: Kubelab;
let dir: string;

const POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/readyz*", "/livez*", "/version"]
  - level: Metadata
    resources: [{ group: "", resources: ["secrets"] }]
  - level: RequestResponse
    resources: [{ group: "", resources: ["configmaps"] }]
  - level: None
`;

interface AuditEvent {
  kind: string;
  apiVersion: string;
  level: string;
  auditID: string;
  stage: string;
  verb: string;
  user: { username: string; groups: string[] };
  objectRef?: { resource: string; namespace?: string; name?: string };
  responseStatus?: { code: number };
  requestObject?: { data?: Record<string, string> };
  responseObject?: { metadata?: { name: string } };
  annotations?: Record<string, string>;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kubelab-audit-"));
  writeFileSync(join(dir, "policy.yaml"), POLICY);
  k = await startKubelab({ extraArgs: ["--audit-policy-file", join(dir, "policy.yaml")] });
}, 120_000);

afterAll(async () => {
  await k?.stop({ clean: true });
  rmSync(dir, { recursive: true, force: true });
});

async function events(match: (e: AuditEvent) => boolean): Promise<AuditEvent[]> {
  const file = join(k.dataDir, "logs", "audit.log");
  for (let i = 0; i < 50; i++) {
    if (existsSync(file)) {
      const found = readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as AuditEvent).filter(match);
      if (found.length) return found;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return [];
}

describe("kubelab up --audit-policy-file", () => {
  it("logs a configmap create at RequestResponse with the request and response objects", async () => {
    const r = await k.kubectl(["create", "configmap", "audited", "--from-literal=a=1"]);
    expect(r.code, r.stderr).toBe(0);
    const [ev] = await events((e) => e.objectRef?.resource === "configmaps" && e.objectRef.name === "audited" && e.verb === "create" && e.stage === "ResponseComplete");
    expect(ev).toMatchObject({ kind: "Event", apiVersion: "audit.k8s.io/v1", level: "RequestResponse", user: { username: "kubelab-admin" }, responseStatus: { code: 201 } });
    expect(ev!.responseObject?.metadata?.name).toBe("audited");
    expect(ev!.annotations?.["authorization.k8s.io/decision"]).toBe("allow");
  });

  it("logs secrets at Metadata only: no request object, so no secret data in the log", async () => {
    const r = await k.kubectl(["create", "secret", "generic", "audited-secret", "--from-literal=password=hunter2"]);
    expect(r.code, r.stderr).toBe(0);
    const [ev] = await events((e) => e.objectRef?.resource === "secrets" && e.verb === "create" && e.stage === "ResponseComplete");
    expect(ev?.level).toBe("Metadata");
    expect(ev?.requestObject).toBeUndefined();
    expect(readFileSync(join(k.dataDir, "logs", "audit.log"), "utf8")).not.toContain(Buffer.from("hunter2").toString("base64"));
  });

  it("a forbidden request is logged with the decision, and nothing below the None rules", async () => {
    const r = await k.kubectl(["get", "pods", "--as", "mallory"]);
    expect(r.code).not.toBe(0);
    await k.kubectl(["get", "configmaps", "--as", "mallory"]);
    const [ev] = await events((e) => e.objectRef?.resource === "configmaps" && e.verb === "list" && e.responseStatus?.code === 403);
    expect(ev?.annotations?.["authorization.k8s.io/decision"]).toBe("forbid");
    expect(ev?.user.username).toBe("kubelab-admin");
    expect((ev as unknown as { impersonatedUser?: { username: string } }).impersonatedUser?.username).toBe("mallory");
    // The pods request came first and the log is written in order: had it been logged, it would be there.
    const all = readFileSync(join(k.dataDir, "logs", "audit.log"), "utf8");
    expect(all).not.toContain('"resource":"pods"');
  });

  it("a bad policy file is one line and exit 2", async () => {
    writeFileSync(join(dir, "bad.yaml"), "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Verbose\n");
    const { execFileSync } = await import("node:child_process");
    let out = "";
    let code = 0;
    try {
      execFileSync(process.execPath, ["--import", "tsx", "cli/main.ts", "up", "--data-dir", join(dir, "d"), "--audit-policy-file", join(dir, "bad.yaml")], { cwd: join(import.meta.dirname, ".."), stdio: "pipe" });
    } catch (e) {
      code = (e as { status: number }).status;
      out = String((e as { stderr: Buffer }).stderr);
    }
    expect(code).toBe(2);
    expect(out.trim().split("\n")).toHaveLength(1);
    expect(out).toContain('rules[0].level: Unsupported value: "Verbose"');
  });
});
