// Structural schemas for every kind kubelab serves, and the decoder-style check the apiserver runs
// on request bodies: wrong JSON types (400, "cannot be handled as a …"), unknown fields (dropped,
// warned about, or rejected with fieldValidation=Strict), invalid base64 in []byte fields.

import { RESOURCES, groupVersion } from "../resources.ts";
import { goQuote } from "../validation/field.ts";
import { arr, checkAgainst, obj, str, type Fields, type ObjectSchema, type Schema } from "./schema.ts";
import { DeleteOptions, ListMeta, ObjectMeta, Status } from "./meta.ts";
import { coreKinds } from "./core.ts";
import {
  appsKinds,
  autoscalingKinds,
  batchKinds,
  coordinationKinds,
  discoveryKinds,
  networkingKinds,
  policyKinds,
  storageKinds,
  schedulingKinds,
} from "./groups.ts";
import { authenticationKinds, authorizationKinds, certificatesKinds, rbacKinds } from "./security.ts";

export {
  checkAgainst,
  goTypeOf,
  isRFC3339,
  base64ErrorOffset,
  type Schema,
  type ObjectSchema,
  type ArraySchema,
  type MapSchema,
  type RefSchema,
  type ScalarSchema,
  type ScalarKind,
  type CheckResult,
} from "./schema.ts";
/** The combinators (obj, arr, map, str, …), for schemas of further kinds. */
export * as schemaCombinators from "./schema.ts";
export * as metaSchemas from "./meta.ts";
export * as coreSchemas from "./core.ts";
export * as groupSchemas from "./groups.ts";
export * as securitySchemas from "./security.ts";

/** A top-level kind: TypeMeta and ObjectMeta plus the kind's own fields. */
function topLevel(kind: string, fields: Fields): ObjectSchema {
  return obj(`v1.${kind}`, { apiVersion: str, kind: str, metadata: ObjectMeta, ...fields });
}

function listOf(kind: string, item: Schema): ObjectSchema {
  return obj(`v1.${kind}List`, { apiVersion: str, kind: str, metadata: ListMeta, items: arr(item) });
}

const byGroupVersion: Record<string, Record<string, Fields>> = {
  v1: coreKinds,
  "apps/v1": appsKinds,
  "batch/v1": batchKinds,
  "networking.k8s.io/v1": networkingKinds,
  "coordination.k8s.io/v1": coordinationKinds,
  "discovery.k8s.io/v1": discoveryKinds,
  "storage.k8s.io/v1": storageKinds,
  "scheduling.k8s.io/v1": schedulingKinds,
  "policy/v1": policyKinds,
  "autoscaling/v1": autoscalingKinds,
  "rbac.authorization.k8s.io/v1": rbacKinds,
  "certificates.k8s.io/v1": certificatesKinds,
  "authentication.k8s.io/v1": authenticationKinds,
  "authorization.k8s.io/v1": authorizationKinds,
};

/** "apiVersion kind" → schema. */
const SCHEMAS = new Map<string, ObjectSchema>();
const key = (apiVersion: string, kind: string): string => `${apiVersion} ${kind}`;

for (const [gv, kinds] of Object.entries(byGroupVersion)) {
  for (const [kind, fields] of Object.entries(kinds)) {
    const s = topLevel(kind, fields);
    SCHEMAS.set(key(gv, kind), s);
    SCHEMAS.set(key(gv, `${kind}List`), listOf(kind, s));
  }
}
// DeleteOptions and Status are registered in every group version (and in meta.k8s.io/v1).
for (const gv of [...Object.keys(byGroupVersion), "meta.k8s.io/v1"]) {
  SCHEMAS.set(key(gv, "DeleteOptions"), DeleteOptions);
  SCHEMAS.set(key(gv, "Status"), Status);
}

/** The schema of a kind (top-level object, XList, or DeleteOptions/Status), or undefined. */
export function schemaFor(apiVersion: string, kind: string): ObjectSchema | undefined {
  return SCHEMAS.get(key(apiVersion, kind));
}

export function hasSchema(apiVersion: string, kind: string): boolean {
  return SCHEMAS.has(key(apiVersion, kind));
}

/** The kinds of RESOURCES lacking a schema; empty unless the catalogue outgrew this module. */
export function kindsWithoutSchema(): string[] {
  return RESOURCES.filter((r) => !hasSchema(groupVersion(r), r.kind)).map((r) => `${groupVersion(r)} ${r.kind}`);
}

export interface CheckObjectResult {
  /** Decode errors phrased like Go's: `json: cannot unmarshal string into Go struct field ConfigMap.immutable of type bool`. */
  errors: string[];
  /** Unknown fields as upstream's strict decoder names them: "spec.template.spec.containers[0].imagePullPolcy". */
  unknownFields: string[];
  /** A deep copy with the unknown fields removed; the input is never mutated. */
  pruned: unknown;
}

/**
 * Decodes `o` as `apiVersion`/`kind` would be decoded upstream. Unknown fields are always listed
 * (fieldValidation=Warn needs them too) and always pruned; `strict` only records the caller's
 * intent (Strict turns unknownFields into a 400 via formatStrictError). Throws when there is no
 * schema for the kind (check hasSchema first).
 */
export function checkObject(o: unknown, apiVersion: string, kind: string, opts: { strict: boolean }): CheckObjectResult {
  void opts;
  const s = schemaFor(apiVersion, kind);
  if (!s) throw new Error(`no schema for ${apiVersion}, Kind=${kind}`);
  return checkAgainst(s, o);
}

/** `<Kind> in version "<version>" cannot be handled as a <Kind>: <first error>`. */
export function formatDecodeError(kind: string, apiVersion: string, errors: readonly string[]): string {
  const version = apiVersion.slice(apiVersion.lastIndexOf("/") + 1);
  return `${kind} in version ${goQuote(version)} cannot be handled as a ${kind}: ${errors[0] ?? "unknown decode error"}`;
}

/** `strict decoding error: unknown field "a", unknown field "b"`. */
export function formatStrictError(unknownFields: readonly string[]): string {
  return `strict decoding error: ${unknownFields.map((f) => `unknown field ${goQuote(f)}`).join(", ")}`;
}

/** The Warning header texts for fieldValidation=Warn, one per unknown field. */
export function unknownFieldWarnings(unknownFields: readonly string[]): string[] {
  return unknownFields.map((f) => `unknown field ${goQuote(f)}`);
}
