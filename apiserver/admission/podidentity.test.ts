// PodIdentity admission (EKS's pod identity webhook): a pod of a ServiceAccount annotated with a role
// gets the AWS environment and the sts.amazonaws.com token volume; everything else is left alone.

import { describe, expect, it } from "vitest";
import { findResource, type Pod, type ResourceInfo, type ServiceAccount } from "../../api/index.ts";
import type { AdmissionAttributes } from "./index.ts";
import { PodIdentityAdmission, TOKEN_MOUNT_PATH } from "./podidentity.ts";

const podsInfo = findResource("", "v1", "pods") as ResourceInfo;
const ROLE = "arn:aws:iam::111122223333:role/s3-reader";

function sa(name: string, annotations: Record<string, string>): ServiceAccount {
  return { apiVersion: "v1", kind: "ServiceAccount", metadata: { name, namespace: "default", annotations } };
}

function admit(sas: ServiceAccount[], p: Pod, operation: "CREATE" | "UPDATE" = "CREATE"): Pod {
  const plugin = new PodIdentityAdmission((ns, name) => sas.find((s) => s.metadata.namespace === ns && s.metadata.name === name));
  const a: AdmissionAttributes = { operation, info: podsInfo, namespace: "default", name: "p", object: p, dryRun: false };
  plugin.admit(a);
  return a.object as Pod;
}

function pod(sa?: string, extra: Partial<NonNullable<Pod["spec"]>> = {}, annotations?: Record<string, string>): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "p", namespace: "default", ...(annotations ? { annotations } : {}) },
    spec: { ...(sa ? { serviceAccountName: sa } : {}), containers: [{ name: "app", image: "busybox" }, { name: "sidecar", image: "busybox", env: [{ name: "AWS_ROLE_ARN", value: "mine" }] }], ...extra },
  };
}

describe("PodIdentity admission", () => {
  it("adds the role's environment and the token volume to every container", () => {
    const p = admit([sa("s3", { "eks.amazonaws.com/role-arn": ROLE })], pod("s3", { initContainers: [{ name: "init", image: "busybox" }] }));
    expect(p.spec!.volumes).toEqual([{ name: "aws-iam-token", projected: { sources: [{ serviceAccountToken: { audience: "sts.amazonaws.com", expirationSeconds: 86400, path: "token" } }] } }]);
    for (const c of [...p.spec!.containers, ...p.spec!.initContainers!]) {
      expect(c.volumeMounts).toEqual([{ name: "aws-iam-token", readOnly: true, mountPath: TOKEN_MOUNT_PATH }]);
      expect(c.env).toContainEqual({ name: "AWS_WEB_IDENTITY_TOKEN_FILE", value: `${TOKEN_MOUNT_PATH}/token` });
    }
    expect(p.spec!.containers[0]!.env).toContainEqual({ name: "AWS_ROLE_ARN", value: ROLE });
    // a variable the container sets itself wins
    expect(p.spec!.containers[1]!.env!.filter((e) => e.name === "AWS_ROLE_ARN")).toEqual([{ name: "AWS_ROLE_ARN", value: "mine" }]);
  });

  it("honours the audience, expiration (at least 3600), regional STS and skip-containers annotations", () => {
    const s = sa("s3", { "eks.amazonaws.com/role-arn": ROLE, "eks.amazonaws.com/audience": "kubelab", "eks.amazonaws.com/token-expiration": "7200", "eks.amazonaws.com/sts-regional-endpoints": "true" });
    const p = admit([s], pod("s3", {}, { "eks.amazonaws.com/skip-containers": "sidecar" }));
    expect(p.spec!.volumes![0]!.projected!.sources![0]!.serviceAccountToken).toEqual({ audience: "kubelab", expirationSeconds: 7200, path: "token" });
    expect(p.spec!.containers[0]!.env).toContainEqual({ name: "AWS_STS_REGIONAL_ENDPOINTS", value: "regional" });
    expect(p.spec!.containers[1]!.volumeMounts).toBeUndefined();
    const short = admit([sa("s3", { "eks.amazonaws.com/role-arn": ROLE, "eks.amazonaws.com/token-expiration": "60" })], pod("s3"));
    expect(short.spec!.volumes![0]!.projected!.sources![0]!.serviceAccountToken!.expirationSeconds).toBe(86400);
  });

  it("leaves pods of unannotated or missing ServiceAccounts, and updates, alone", () => {
    expect(admit([sa("default", {})], pod()).spec!.volumes).toBeUndefined();
    expect(admit([], pod("nope")).spec!.volumes).toBeUndefined();
    expect(admit([sa("default", { "eks.amazonaws.com/role-arn": ROLE })], pod(), "UPDATE").spec!.volumes).toBeUndefined();
    // the default ServiceAccount counts when none is named
    expect(admit([sa("default", { "eks.amazonaws.com/role-arn": ROLE })], pod()).spec!.volumes).toHaveLength(1);
  });
});
