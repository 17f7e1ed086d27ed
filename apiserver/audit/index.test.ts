import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { newAuditing } from "./index.ts";

describe("auditing from the flags", () => {
  const d = mkdtempSync(join(tmpdir(), "audit-flags-"));
  const policyFile = join(d, "policy.yaml");
  writeFileSync(policyFile, "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  verb: [get]\n");

  it("is off, with a warning, unless both a policy file and a log path are given", () => {
    expect(newAuditing({ logPath: join(d, "a.log") })).toEqual({ warnings: ["no audit policy file provided, no events will be recorded"] });
    const r = newAuditing({ policyFile });
    expect(r.auditor).toBeUndefined();
    expect(r.warnings).toContain("no audit log path (--audit-log-path) provided, no events will be recorded");
    expect(newAuditing({})).toEqual({ warnings: [] });
  });

  it("builds an auditor over the log backend, passing on the policy's unknown fields as warnings", async () => {
    const logPath = join(d, "audit.log");
    const r = newAuditing({ policyFile, logPath, maxSizeMB: 1, maxBackups: 2 });
    expect(r.warnings).toEqual([`audit policy ${policyFile}: unknown field "rules[0].verb" (ignored, as upstream's lenient decoding)`]);
    expect(r.auditor!.policy.evaluate({ verb: "list", isResourceRequest: false, path: "/healthz", apiGroup: "", apiVersion: "", resource: "", subresource: "", namespace: "", name: "" }).level).toBe("Metadata");
    await r.backend!.close();
    expect(readFileSync(logPath, "utf8")).toBe("");
  });

  it("throws the policy's one-line error", () => {
    const bad = join(d, "bad.yaml");
    writeFileSync(bad, "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Verbose\n");
    expect(() => newAuditing({ policyFile: bad, logPath: "-" })).toThrow(
      `audit policy ${bad}: rules[0].level: Unsupported value: "Verbose": supported values: "None", "Metadata", "Request", "RequestResponse"`,
    );
  });
});
