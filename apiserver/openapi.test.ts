import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { apiGroups, RESOURCES } from "../api/resources.ts";
import {
  openapiGroupVersionPath,
  openapiGroupVersionPaths,
  openapiV3Doc,
  openapiV3DocHash,
  openapiV3DocJson,
  openapiV3Index,
  schemaName,
} from "./openapi.ts";

type Obj = Record<string, unknown>;

describe("openapi v3 index", () => {
  it("names one document per served group version", () => {
    const paths = openapiV3Index().paths as Record<string, { serverRelativeURL: string }>;
    const want = apiGroups().flatMap((g) => g.versions.map((v) => (g.group === "" ? `api/${v}` : `apis/${g.group}/${v}`)));
    expect(Object.keys(paths)).toEqual(want);
    expect(openapiGroupVersionPaths()).toEqual(want);
    expect(paths["api/v1"]?.serverRelativeURL).toMatch(/^\/openapi\/v3\/api\/v1\?hash=[0-9A-F]{128}$/);
    expect(paths["apis/apps/v1"]?.serverRelativeURL).toMatch(/^\/openapi\/v3\/apis\/apps\/v1\?hash=/);
  });

  it("each hash is the SHA-512 of the document it names, and stable across calls", () => {
    const paths = openapiV3Index().paths as Record<string, { serverRelativeURL: string }>;
    for (const [gv, { serverRelativeURL }] of Object.entries(paths)) {
      const hash = serverRelativeURL.split("?hash=")[1];
      const json = openapiV3DocJson(gv);
      expect(json).toBeDefined();
      expect(JSON.parse(json ?? "null")).toEqual(openapiV3Doc(gv));
      expect(createHash("sha512").update(json ?? "").digest("hex").toUpperCase()).toBe(hash);
      expect(openapiV3DocHash(gv)).toBe(hash);
      // The URL kubectl follows resolves to the same document.
      expect(openapiV3Doc(serverRelativeURL)).toBe(openapiV3Doc(gv));
    }
    expect(openapiV3Index()).toEqual(openapiV3Index());
  });

  it("unknown group versions have no document", () => {
    expect(openapiV3Doc("apis/nope/v1")).toBeUndefined();
    expect(openapiV3Doc("api/v2")).toBeUndefined();
    expect(openapiV3DocHash("apis/apps/v2")).toBeUndefined();
  });
});

describe("openapi v3 group-version documents", () => {
  it("core/v1 has item paths for namespaced and cluster-scoped kinds", () => {
    const doc = openapiV3Doc("api/v1") ?? {};
    expect(doc.openapi).toBe("3.0.0");
    expect(doc.info).toMatchObject({ title: "Kubernetes" });
    const paths = doc.paths as Record<string, Obj>;
    expect(paths).toHaveProperty(["/api/v1/namespaces/{namespace}/pods/{name}"]);
    expect(paths).toHaveProperty(["/api/v1/nodes/{name}"]);
    expect(paths).toHaveProperty(["/api/v1/namespaces/{namespace}/pods"]);
    expect(openapiV3Doc("apis/apps/v1")?.paths).toHaveProperty(["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]);
    expect(openapiV3Doc("apis/storage.k8s.io/v1")?.paths).toHaveProperty(["/apis/storage.k8s.io/v1/storageclasses/{name}"]);
  });

  it("every kind's PATCH carries its GVK and a fieldValidation query parameter, and no request body", () => {
    // create-only kinds (TokenReview, SubjectAccessReview, ...) have no PATCH, as upstream
    for (const info of RESOURCES.filter((r) => r.verbs.includes("patch"))) {
      const doc = openapiV3Doc(openapiGroupVersionPath(info)) ?? {};
      const patches = Object.values(doc.paths as Record<string, Obj>)
        .map((p) => p.patch as Obj | undefined)
        .filter((op): op is Obj => op !== undefined)
        .filter((op) => {
          const g = op["x-kubernetes-group-version-kind"] as Obj;
          return g.group === info.group && g.version === info.version && g.kind === info.kind;
        });
      expect(patches, info.kind).toHaveLength(1);
      const patch = patches[0] ?? {};
      expect(patch["x-kubernetes-action"]).toBe("patch");
      expect(patch.parameters).toContainEqual(expect.objectContaining({ name: "fieldValidation", in: "query" }));
      expect(patch).not.toHaveProperty("requestBody");
    }
  });

  it("create-only kinds (the reviews) have only a POST, the security groups are in the index", () => {
    for (const info of RESOURCES.filter((r) => r.verbs.length === 1 && r.verbs[0] === "create")) {
      const paths = (openapiV3Doc(openapiGroupVersionPath(info))?.paths ?? {}) as Record<string, Obj>;
      const item = paths[`/apis/${info.group}/${info.version}/${info.namespaced ? "namespaces/{namespace}/" : ""}${info.resource}`];
      expect(item, info.kind).toBeDefined();
      expect(Object.keys(item ?? {}).filter((k) => k !== "parameters"), info.kind).toEqual(["post"]);
      expect((item?.post as Obj)["x-kubernetes-group-version-kind"]).toEqual({ group: info.group, version: info.version, kind: info.kind });
    }
    const gvs = openapiGroupVersionPaths();
    for (const gv of ["apis/rbac.authorization.k8s.io/v1", "apis/certificates.k8s.io/v1", "apis/authentication.k8s.io/v1", "apis/authorization.k8s.io/v1"]) expect(gvs).toContain(gv);
    const rbac = (openapiV3Doc("apis/rbac.authorization.k8s.io/v1")?.paths ?? {}) as Record<string, Obj>;
    expect(rbac).toHaveProperty(["/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings/{name}"]);
    expect(rbac).toHaveProperty(["/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"]);
    expect(openapiV3Doc("apis/certificates.k8s.io/v1")?.paths).toHaveProperty(["/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}"]);
    expect(openapiV3Doc("apis/authorization.k8s.io/v1")?.paths).not.toHaveProperty(["/apis/authorization.k8s.io/v1/subjectaccessreviews/{name}"]);
  });

  it("every operation names its action and GVK", () => {
    for (const gv of openapiGroupVersionPaths()) {
      const paths = (openapiV3Doc(gv)?.paths ?? {}) as Record<string, Obj>;
      for (const [path, item] of Object.entries(paths)) {
        for (const method of ["get", "put", "post", "patch", "delete"]) {
          const op = item[method] as Obj | undefined;
          if (!op) continue;
          expect(op["x-kubernetes-action"], `${method} ${path}`).toBeTypeOf("string");
          expect(op["x-kubernetes-group-version-kind"], `${method} ${path}`).toMatchObject({ version: expect.any(String), kind: expect.any(String) });
        }
      }
    }
    const item = (openapiV3Doc("api/v1")?.paths as Record<string, Obj>)["/api/v1/namespaces/{namespace}/pods/{name}"] ?? {};
    expect(Object.keys(item).filter((k) => k !== "parameters").sort()).toEqual(["delete", "get", "patch", "put"]);
    expect((item.get as Obj)["x-kubernetes-action"]).toBe("get");
    expect((item.put as Obj)["x-kubernetes-action"]).toBe("put");
    expect((item.delete as Obj)["x-kubernetes-action"]).toBe("delete");
    expect((item.patch as Obj).operationId).toBe("patchCoreV1NamespacedPod");
  });

  it("has a permissive schema per kind, named like upstream, with its GVK", () => {
    expect(schemaName({ group: "", version: "v1", kind: "Pod" })).toBe("io.k8s.api.core.v1.Pod");
    expect(schemaName({ group: "networking.k8s.io", version: "v1", kind: "Ingress" })).toBe("io.k8s.api.networking.v1.Ingress");
    for (const info of RESOURCES) {
      const schemas = ((openapiV3Doc(openapiGroupVersionPath(info)) ?? {}).components as Obj).schemas as Record<string, Obj>;
      const s = schemas[schemaName(info)];
      expect(s, info.kind).toMatchObject({ type: "object", "x-kubernetes-preserve-unknown-fields": true });
      expect(s?.["x-kubernetes-group-version-kind"]).toEqual([{ group: info.group, version: info.version, kind: info.kind }]);
    }
  });
});
