import { describe, expect, it } from "vitest";

import { findResource, type KubeObject } from "../../../../api/index.ts";
import { CertificateSigningRequestRequester } from "../../../admission/certificatesigningrequest.ts";
import type { StrategyContext } from "../../strategy.ts";
import { certificateSigningRequestApprovalStrategy, certificateSigningRequestStrategy } from "./strategy.ts";

const info = findResource("certificates.k8s.io", "v1", "certificatesigningrequests")!;
const NOW = new Date("2025-01-01T12:00:00Z");
const ctx = { now: () => NOW } as StrategyContext;
const strategy = certificateSigningRequestStrategy(info);

const stored = (): KubeObject => ({
  apiVersion: "certificates.k8s.io/v1",
  kind: "CertificateSigningRequest",
  metadata: { name: "c", labels: { a: "1" }, resourceVersion: "5" },
  spec: { request: "UEVN", signerName: "example.com/s", usages: ["client auth"], username: "jane" },
  status: { conditions: [{ type: "Approved", status: "True", lastUpdateTime: "2024-01-01T00:00:00Z", lastTransitionTime: "2024-01-01T00:00:00Z" }] },
});

describe("CertificateSigningRequest strategies", () => {
  it("the requester comes from the authenticated user, never from the body", () => {
    const obj = { metadata: { name: "c" }, spec: { username: "mallory", groups: ["system:masters"], extra: { x: ["y"] } } } as KubeObject;
    new CertificateSigningRequestRequester().admit({
      operation: "CREATE", info, namespace: "", name: "c", object: obj, dryRun: false,
      userInfo: { name: "jane", uid: "u1", groups: ["dev", "system:authenticated"] },
    });
    expect(obj.spec).toEqual({ username: "jane", uid: "u1", groups: ["dev", "system:authenticated"] });
  });

  it("create clears status; a main-resource update keeps spec and status", () => {
    const obj = stored();
    strategy.prepareForCreate(obj, ctx);
    expect(obj.status).toBeUndefined();
    const next = { ...stored(), spec: { signerName: "x.io/y" }, status: {} };
    strategy.prepareForUpdate(next, stored(), ctx);
    expect(next.spec).toEqual(stored().spec);
    expect(next.status).toEqual(stored().status);
  });

  it("status keeps the spec, metadata and Approved/Denied; it sets the certificate and Failed with timestamps", () => {
    const next = { ...stored(), metadata: { name: "c", resourceVersion: "5" }, status: { certificate: "Q0VSVA==", conditions: [{ type: "Failed", status: "True" }, { type: "Denied", status: "True" }] } };
    strategy.prepareForStatusUpdate(next, stored());
    expect((next.metadata as KubeObject["metadata"]).labels).toEqual({ a: "1" });
    expect(next.status).toEqual({
      certificate: "Q0VSVA==",
      conditions: [
        // the status update has no StrategyContext: the wall clock stamps a new condition
        { type: "Failed", status: "True", lastUpdateTime: expect.stringMatching(/Z$/), lastTransitionTime: expect.stringMatching(/Z$/) },
        (stored().status as { conditions: unknown[] }).conditions[0],
      ],
    });
  });

  it("approval changes only Approved/Denied and keeps the certificate", () => {
    const approval = certificateSigningRequestApprovalStrategy(strategy, ctx.now);
    const old = { ...stored(), status: { certificate: "Q0VSVA==", conditions: [{ type: "Failed", status: "True" }] } };
    const next = { ...stored(), status: { conditions: [{ type: "Approved", status: "True", reason: "OK" }] } };
    approval.prepareForUpdate(next, old, ctx);
    expect(next.status).toEqual({
      certificate: "Q0VSVA==",
      conditions: [
        // populateConditionTimestamps stamps every condition lacking them
        { type: "Failed", status: "True", lastUpdateTime: "2025-01-01T12:00:00Z", lastTransitionTime: "2025-01-01T12:00:00Z" },
        { type: "Approved", status: "True", reason: "OK", lastUpdateTime: "2025-01-01T12:00:00Z", lastTransitionTime: "2025-01-01T12:00:00Z" },
      ],
    });
  });
});
