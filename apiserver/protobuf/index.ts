// Decoding of Kubernetes protobuf request bodies (Content-Type: application/vnd.kubernetes.protobuf).
//
// kubectl >= 1.32 sends protobuf for its typed-client writes (`kubectl create namespace|configmap|secret|
// deployment|service|job|serviceaccount|cronjob`, drain's DELETE fallback with DeleteOptions). The body is
// the envelope "k8s\0" + runtime.Unknown{typeMeta{apiVersion,kind}, raw, contentEncoding, contentType}, where
// raw is the object's k8s.io/api generated.proto encoding. We decode it with the ts-proto codecs in
// proto/gen/ and convert the message to the JSON object the same client would have sent as JSON
// (Go encoding/json of the same struct), so the rest of the apiserver never sees the difference.
//
// Conversion rules (Go's protobuf encoder writes every non-pointer field, even when zero, and pointer fields
// only when set; Go's JSON encoder drops `omitempty` zero scalars and empty lists/maps):
//   * absent field (undefined)             -> omitted
//   * zero scalar ("" / 0 / false)         -> omitted, unless listed in EMIT_ZERO (a Go pointer, or a field
//                                             without omitempty): replicas: 0, gracePeriodSeconds: 0, port: 0
//   * empty repeated / map                 -> omitted
//   * nested message                       -> object, even when empty (`status: {}`, `resources: {}`)
//   * embedded Go structs (json ",inline") -> their fields are merged into the parent (INLINE)
//   * meta.v1.Time                         -> RFC3339 UTC with second precision; the zero time -> null
//                                             (so `creationTimestamp: null`, exactly like Go)
//   * resource.Quantity                    -> its string
//   * intstr.IntOrString                   -> number (type 0) or string (type 1)
//   * bytes                                -> base64 string (Secret.data, ConfigMap.binaryData values)
//   * non-empty fields our .proto subset does not model -> ProtobufDecodeError (no silent data loss);
//     unknown fields that carry only zero values (Go writes every field) are ignored.

import { BinaryReader } from "@bufbuild/protobuf/wire";

import { Deployment } from "../../proto/gen/k8s/api/apps/v1/generated.ts";
import { CronJob, Job } from "../../proto/gen/k8s/api/batch/v1/generated.ts";
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from "../../proto/gen/k8s/api/core/v1/generated.ts";
import { DeleteOptions } from "../../proto/gen/k8s/apimachinery/pkg/apis/meta/v1/generated.ts";
import { Unknown } from "../../proto/gen/k8s/apimachinery/pkg/runtime/generated.ts";

export const PROTOBUF_CONTENT_TYPE = "application/vnd.kubernetes.protobuf";

/** The 4 bytes that start every Kubernetes protobuf-encoded object. */
export const PROTOBUF_MAGIC: Readonly<Uint8Array> = Uint8Array.of(0x6b, 0x38, 0x73, 0x00); // "k8s\0"

/** Thrown for every problem with a protobuf body; callers answer 400 (or 415 for unsupported kinds). */
export class ProtobufDecodeError extends Error {
  override name = "ProtobufDecodeError";
  /** True when the envelope is fine but the apiVersion/kind (or a field) is one kubelab cannot decode. */
  readonly unsupported: boolean;

  constructor(message: string, options?: { cause?: unknown; unsupported?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.unsupported = options?.unsupported ?? false;
  }
}

/** True for `application/vnd.kubernetes.protobuf` (parameters and case ignored). */
export function isProtobufContentType(ct: string): boolean {
  const base = ct.split(";", 1)[0] ?? "";
  return base.trim().toLowerCase() === PROTOBUF_CONTENT_TYPE;
}

interface Decoder {
  decode(input: BinaryReader, length?: number): unknown;
}

/** apiVersion/kind -> generated decoder. DeleteOptions is accepted under any apiVersion (see decoderFor). */
const DECODERS: Readonly<Record<string, Decoder>> = {
  "v1/Namespace": Namespace,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "v1/ServiceAccount": ServiceAccount,
  "apps/v1/Deployment": Deployment,
  "batch/v1/Job": Job,
  "batch/v1/CronJob": CronJob,
};

/** The apiVersion/kind pairs decodeProtobufObject understands (DeleteOptions: any apiVersion). */
export const SUPPORTED_PROTOBUF_KINDS: readonly string[] = [...Object.keys(DECODERS), "*/DeleteOptions"];

function decoderFor(apiVersion: string, kind: string): Decoder | undefined {
  // client-go encodes DeleteOptions with the group version of the resource being deleted (v1, apps/v1, ...).
  if (kind === "DeleteOptions" && apiVersion !== "") return DeleteOptions;
  return Object.hasOwn(DECODERS, `${apiVersion}/${kind}`) ? DECODERS[`${apiVersion}/${kind}`] : undefined;
}

const META = "k8s.io.apimachinery.pkg.apis.meta.v1.";
const CORE = "k8s.io.api.core.v1.";
const APPS = "k8s.io.api.apps.v1.";
const BATCH = "k8s.io.api.batch.v1.";
const TIME = `${META}Time`;
const QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString";

/**
 * Scalar fields Go's JSON encoder writes even when zero: pointer fields (*int32, *bool, *string) and fields
 * without `omitempty`. Derived from the Go struct tags in k8s.io/api and k8s.io/apimachinery types.go for
 * every scalar field in proto/k8s/ (keep in sync when adding fields there).
 */
const EMIT_ZERO: ReadonlyMap<string, ReadonlySet<string>> = table({
  [`${META}ObjectMeta`]: ["deletionGracePeriodSeconds"],
  [`${META}OwnerReference`]: ["apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion"],
  [`${META}LabelSelectorRequirement`]: ["key", "operator"],
  [`${META}Condition`]: ["type", "status", "reason", "message"],
  [`${META}Preconditions`]: ["uid", "resourceVersion"],
  [`${META}DeleteOptions`]: [
    "gracePeriodSeconds",
    "orphanDependents",
    "propagationPolicy",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
  ],
  [`${CORE}NamespaceCondition`]: ["type", "status"],
  [`${CORE}ConfigMap`]: ["immutable"],
  [`${CORE}Secret`]: ["immutable"],
  [`${CORE}ServiceAccount`]: ["automountServiceAccountToken"],
  [`${CORE}ServiceSpec`]: [
    "ipFamilyPolicy",
    "allocateLoadBalancerNodePorts",
    "loadBalancerClass",
    "internalTrafficPolicy",
    "trafficDistribution",
  ],
  [`${CORE}ServicePort`]: ["appProtocol", "port"],
  [`${CORE}ClientIPConfig`]: ["timeoutSeconds"],
  [`${CORE}LoadBalancerIngress`]: ["ipMode"],
  [`${CORE}PortStatus`]: ["port", "protocol", "error"],
  [`${CORE}PodSpec`]: [
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "automountServiceAccountToken",
    "shareProcessNamespace",
    "priority",
    "runtimeClassName",
    "enableServiceLinks",
    "preemptionPolicy",
    "setHostnameAsFQDN",
    "hostUsers",
  ],
  [`${CORE}Container`]: ["name", "restartPolicy"],
  [`${CORE}ContainerPort`]: ["containerPort"],
  [`${CORE}EnvVar`]: ["name"],
  [`${CORE}ObjectFieldSelector`]: ["fieldPath"],
  [`${CORE}ResourceFieldSelector`]: ["resource"],
  [`${CORE}ConfigMapKeySelector`]: ["key", "optional"],
  [`${CORE}SecretKeySelector`]: ["key", "optional"],
  [`${CORE}ConfigMapEnvSource`]: ["optional"],
  [`${CORE}SecretEnvSource`]: ["optional"],
  [`${CORE}ResourceClaim`]: ["name"],
  [`${CORE}VolumeMount`]: ["name", "recursiveReadOnly", "mountPath", "mountPropagation"],
  [`${CORE}Volume`]: ["name"],
  [`${CORE}HostPathVolumeSource`]: ["path", "type"],
  [`${CORE}SecretVolumeSource`]: ["defaultMode", "optional"],
  [`${CORE}ConfigMapVolumeSource`]: ["defaultMode", "optional"],
  [`${CORE}KeyToPath`]: ["key", "path", "mode"],
  [`${CORE}PersistentVolumeClaimVolumeSource`]: ["claimName"],
  [`${CORE}Toleration`]: ["tolerationSeconds"],
  [`${CORE}PodSecurityContext`]: ["runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "fsGroupChangePolicy"],
  [`${CORE}SecurityContext`]: [
    "privileged",
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "readOnlyRootFilesystem",
    "allowPrivilegeEscalation",
    "procMount",
  ],
  [`${APPS}DeploymentSpec`]: ["replicas", "revisionHistoryLimit", "progressDeadlineSeconds"],
  [`${APPS}DeploymentStatus`]: ["terminatingReplicas", "collisionCount"],
  [`${APPS}DeploymentCondition`]: ["type", "status"],
  [`${BATCH}JobSpec`]: [
    "parallelism",
    "completions",
    "activeDeadlineSeconds",
    "backoffLimit",
    "backoffLimitPerIndex",
    "maxFailedIndexes",
    "manualSelector",
    "ttlSecondsAfterFinished",
    "completionMode",
    "suspend",
    "podReplacementPolicy",
    "managedBy",
  ],
  [`${BATCH}JobStatus`]: ["terminating", "failedIndexes", "ready"],
  [`${BATCH}JobCondition`]: ["type", "status"],
  [`${BATCH}CronJobSpec`]: [
    "schedule",
    "timeZone",
    "startingDeadlineSeconds",
    "suspend",
    "successfulJobsHistoryLimit",
    "failedJobsHistoryLimit",
  ],
});

/** Message fields that are embedded Go structs (`json:",inline"`): their JSON fields live in the parent. */
const INLINE: ReadonlyMap<string, ReadonlySet<string>> = table({
  [`${CORE}ConfigMapKeySelector`]: ["localObjectReference"],
  [`${CORE}SecretKeySelector`]: ["localObjectReference"],
  [`${CORE}ConfigMapEnvSource`]: ["localObjectReference"],
  [`${CORE}SecretEnvSource`]: ["localObjectReference"],
  [`${CORE}ConfigMapVolumeSource`]: ["localObjectReference"],
  [`${CORE}Volume`]: ["volumeSource"],
});

function table(entries: Record<string, string[]>): ReadonlyMap<string, ReadonlySet<string>> {
  return new Map(Object.entries(entries).map(([type, fields]) => [type, new Set(fields)]));
}

/**
 * Decodes a Kubernetes protobuf body ("k8s\0" + runtime.Unknown) into the Kubernetes JSON object, with
 * `apiVersion` and `kind` taken from the envelope. Throws ProtobufDecodeError for a missing magic, an
 * unsupported apiVersion/kind or encoding, malformed bytes, or fields kubelab's proto subset cannot represent.
 */
export function decodeProtobufObject(body: Buffer): Record<string, unknown> {
  if (body.length < PROTOBUF_MAGIC.length || !PROTOBUF_MAGIC.every((b, i) => body[i] === b)) {
    throw new ProtobufDecodeError(
      'protobuf body does not start with the Kubernetes magic "k8s\\x00" (not a Kubernetes protobuf object)',
    );
  }
  const envelope = decodeExactly(Unknown, body.subarray(PROTOBUF_MAGIC.length), "runtime.Unknown envelope");
  const apiVersion = envelope.typeMeta?.apiVersion ?? "";
  const kind = envelope.typeMeta?.kind ?? "";
  if (envelope.contentEncoding) {
    throw new ProtobufDecodeError(`unsupported protobuf contentEncoding "${envelope.contentEncoding}"`, {
      unsupported: true,
    });
  }
  if (envelope.contentType && !isProtobufContentType(envelope.contentType)) {
    throw new ProtobufDecodeError(`unsupported protobuf envelope contentType "${envelope.contentType}"`, {
      unsupported: true,
    });
  }
  const decoder = decoderFor(apiVersion, kind);
  if (!decoder) {
    const what = apiVersion || kind ? `apiVersion "${apiVersion}", kind "${kind}"` : "an empty apiVersion/kind";
    throw new ProtobufDecodeError(
      `cannot decode protobuf object with ${what}: kubelab decodes protobuf only for ` +
        `${SUPPORTED_PROTOBUF_KINDS.join(", ")}; send it as application/json instead`,
      { unsupported: true },
    );
  }
  if (envelope.raw === undefined) {
    throw new ProtobufDecodeError(`protobuf envelope for ${apiVersion || "?"} ${kind || "?"} carries no object (raw is missing)`);
  }
  const message = decodeExactly(decoder, envelope.raw, `${apiVersion} ${kind}`);
  const converted = toJSON(message, "");
  if (!isPlainObject(converted)) {
    throw new ProtobufDecodeError(`decoded ${apiVersion} ${kind} is not an object`);
  }
  return { apiVersion, kind, ...converted };
}

/** Decodes `bytes` as one whole message; any codec error or trailing garbage -> ProtobufDecodeError. */
function decodeExactly<T>(decoder: { decode(input: BinaryReader, length?: number): T }, bytes: Uint8Array, what: string): T {
  const reader = new BinaryReader(bytes);
  let message: T;
  try {
    message = decoder.decode(reader);
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new ProtobufDecodeError(`malformed protobuf in ${what}: ${detail}`, { cause: err });
  }
  if (reader.pos !== reader.len) {
    throw new ProtobufDecodeError(`malformed protobuf in ${what}: unexpected data at byte ${reader.pos} of ${reader.len}`);
  }
  return message;
}

type Message = Record<string, unknown> & { $type: string };

function isMessage(v: unknown): v is Message {
  return typeof v === "object" && v !== null && typeof (v as { $type?: unknown }).$type === "string";
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function isZeroScalar(v: unknown): boolean {
  return v === "" || v === 0 || v === false;
}

/** Converts one decoded value (message, list, map, bytes or scalar) to its Kubernetes JSON form. */
function toJSON(value: unknown, path: string): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64");
  if (Array.isArray(value)) return value.map((item, i) => toJSON(item, `${path}[${i}]`));
  if (isMessage(value)) return messageToJSON(value, path);
  if (isPlainObject(value)) {
    // a proto map (ts-proto decodes map<K,V> into a plain object without $type)
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = toJSON(v, `${path}[${JSON.stringify(k)}]`);
    return out;
  }
  return value;
}

function messageToJSON(msg: Message, path: string): unknown {
  const type = msg.$type;
  checkUnknownFields(msg, path);
  switch (type) {
    case TIME:
      return timeToJSON(num(msg.seconds), num(msg.nanos));
    case QUANTITY:
      // Go's zero Quantity marshals as "0"
      return typeof msg.string === "string" && msg.string !== "" ? msg.string : "0";
    case INT_OR_STRING:
      return num(msg.type) === 1 ? (typeof msg.strVal === "string" ? msg.strVal : "") : num(msg.intVal);
  }
  const emitZero = EMIT_ZERO.get(type);
  const inline = INLINE.get(type);
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(msg)) {
    if (key === "$type" || key === "_unknownFields" || v === undefined) continue;
    const fieldPath = path ? `${path}.${key}` : key;
    if (Array.isArray(v)) {
      if (v.length > 0) out[key] = toJSON(v, fieldPath);
    } else if (isMessage(v)) {
      const converted = toJSON(v, fieldPath);
      if (inline?.has(key) && isPlainObject(converted)) Object.assign(out, converted);
      else out[key] = converted;
    } else if (v instanceof Uint8Array) {
      if (v.length > 0 || emitZero?.has(key)) out[key] = toJSON(v, fieldPath);
    } else if (isPlainObject(v)) {
      if (Object.keys(v).length > 0) out[key] = toJSON(v, fieldPath);
    } else if (!isZeroScalar(v) || emitZero?.has(key)) {
      out[key] = v;
    }
  }
  return out;
}

function num(v: unknown): number {
  return typeof v === "number" ? v : 0;
}

/** metav1.Time JSON: RFC3339 in UTC, whole seconds; the zero time (0/0 on the wire) is null. */
function timeToJSON(seconds: number, nanos: number): string | null {
  if (seconds === 0 && nanos === 0) return null;
  const date = new Date(seconds * 1000);
  if (Number.isNaN(date.getTime())) throw new ProtobufDecodeError(`invalid timestamp seconds=${seconds}`);
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * Fields our .proto subset does not model end up in _unknownFields (keyed by tag = field << 3 | wire type).
 * Go writes every non-pointer field even when it is zero, so zero-valued unknowns are normal and ignored;
 * anything else would be silently lost, so it is rejected.
 */
function checkUnknownFields(msg: Message, path: string): void {
  const unknown = msg._unknownFields;
  if (!isPlainObject(unknown)) return;
  for (const [tagText, values] of Object.entries(unknown)) {
    const tag = Number(tagText);
    const wireType = tag & 7;
    const list: unknown[] = Array.isArray(values) ? values : [];
    if (list.every((b) => b instanceof Uint8Array && isZeroValue(wireType, b))) continue;
    const where = path ? ` at ${path}` : "";
    throw new ProtobufDecodeError(
      `protobuf field ${tag >>> 3} of ${msg.$type}${where} is not supported by kubelab's protobuf decoder; ` +
        "send the object as application/json instead",
      { unsupported: true },
    );
  }
}

/** True when the raw bytes of one field value (as returned by BinaryReader.skip) encode a zero value. */
function isZeroValue(wireType: number, bytes: Uint8Array): boolean {
  switch (wireType) {
    case 0: // varint: every 7-bit group is zero
      return bytes.every((b) => (b & 0x7f) === 0);
    case 1: // fixed64
    case 5: // fixed32
      return bytes.every((b) => b === 0);
    case 2: {
      // length prefix + payload: "" / empty message, or a nested message whose fields are all zero
      try {
        const reader = new BinaryReader(bytes);
        const payload = reader.bytes();
        return payload.length === 0 || isZeroMessage(payload, 0);
      } catch {
        return false;
      }
    }
    default:
      return false;
  }
}

function isZeroMessage(bytes: Uint8Array, depth: number): boolean {
  if (depth > 32) return false;
  try {
    const reader = new BinaryReader(bytes);
    while (reader.pos < reader.len) {
      const [fieldNo, wireType] = reader.tag();
      if (fieldNo === 0) return false;
      const start = reader.pos;
      reader.skip(wireType, fieldNo);
      const value = bytes.subarray(start, reader.pos);
      if (wireType === 2) {
        const inner = new BinaryReader(value).bytes();
        if (inner.length > 0 && !isZeroMessage(inner, depth + 1)) return false;
      } else if (!isZeroValue(wireType, value)) {
        return false;
      }
    }
    return true;
  } catch {
    return false;
  }
}
