// Which protobuf messages kubelab decodes, derived from the catalogue (api/resources.ts): every served kind,
// the bodies of its subresources, DeleteOptions, and the runtime.Unknown envelope. proto/subset.ts copies
// exactly the upstream messages reachable from these roots into proto/k8s/, so a kind added to RESOURCES
// is not decodable until `npm run proto` has been re-run with it (protobuf.test.ts fails meanwhile).

import { RESOURCES, groupVersion, type ResourceInfo } from "../../api/resources.ts";

/**
 * The proto package of a group/version: "" -> k8s.io.api.core.v1, "networking.k8s.io" -> k8s.io.api.networking.v1,
 * "rbac.authorization.k8s.io" -> k8s.io.api.rbac.v1 (upstream names the package after the group's first label).
 */
export function protoPackage(group: string, version: string): string {
  const name = group === "" ? "core" : group.split(".")[0];
  return `k8s.io.api.${name}.${version}`;
}

/** The full proto message name of apiVersion/kind ("apps/v1", "Deployment" -> k8s.io.api.apps.v1.Deployment). */
export function protoMessageName(apiVersion: string, kind: string): string {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/", 2) : ["", apiVersion];
  return `${protoPackage(group ?? "", version ?? "")}.${kind}`;
}

/**
 * The object a client POSTs/PUTs to each subresource: "self" = the resource's own kind (status, finalize),
 * null = the subresource takes no body (log, exec are GET/streams). A subresource missing here makes
 * protobuf.test.ts fail, so a new one cannot be served without deciding its body.
 */
export const SUBRESOURCE_BODIES: Readonly<Record<string, { apiVersion: string; kind: string } | "self" | null>> = {
  status: "self",
  finalize: "self",
  scale: { apiVersion: "autoscaling/v1", kind: "Scale" },
  binding: { apiVersion: "v1", kind: "Binding" },
  eviction: { apiVersion: "policy/v1", kind: "Eviction" },
  approval: "self",
  token: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest" },
  log: null,
  exec: null,
};

export const DELETE_OPTIONS = "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions";
export const UNKNOWN_ENVELOPE = "k8s.io.apimachinery.pkg.runtime.Unknown";

/** apiVersion/kind of every body kubelab accepts as protobuf (served kinds + subresource bodies), in order. */
export function protobufKinds(resources: readonly ResourceInfo[] = RESOURCES): { apiVersion: string; kind: string }[] {
  const out: { apiVersion: string; kind: string }[] = [];
  const add = (apiVersion: string, kind: string): void => {
    if (!out.some((k) => k.apiVersion === apiVersion && k.kind === kind)) out.push({ apiVersion, kind });
  };
  for (const res of resources) {
    add(groupVersion(res), res.kind);
    for (const sub of res.subresources) {
      const body = Object.hasOwn(SUBRESOURCE_BODIES, sub) ? SUBRESOURCE_BODIES[sub] : undefined;
      if (body === undefined) throw new Error(`subresource ${res.resource}/${sub} has no entry in SUBRESOURCE_BODIES`);
      if (body === "self") add(groupVersion(res), res.kind);
      else if (body !== null) add(body.apiVersion, body.kind);
    }
  }
  return out;
}

/** The proto messages proto/subset.ts starts from: every protobuf kind, DeleteOptions and the envelope. */
export function protoRoots(resources: readonly ResourceInfo[] = RESOURCES): string[] {
  return [...protobufKinds(resources).map((k) => protoMessageName(k.apiVersion, k.kind)), DELETE_OPTIONS, UNKNOWN_ENVELOPE];
}
