// Decoding of Kubernetes protobuf request bodies (Content-Type: application/vnd.kubernetes.protobuf).
//
// kubectl >= 1.32 sends protobuf for its typed-client writes (most `kubectl create <kind>` subcommands,
// drain's Eviction and its DELETE fallback with DeleteOptions). The body is
// the envelope "k8s\0" + runtime.Unknown{typeMeta{apiVersion,kind}, raw, contentEncoding, contentType}, where
// raw is the object's k8s.io/api generated.proto encoding. We decode it with the ts-proto codecs in
// proto/gen/ and convert the message to the JSON object the same client would have sent as JSON
// (Go encoding/json of the same struct), so the rest of the apiserver never sees the difference.
//
// Every kind in the catalogue (api/resources.ts) and every subresource body is decodable: kinds.ts derives
// the list from RESOURCES, proto/subset.ts copies the upstream messages reachable from it (whole, with
// upstream field numbers), and protobuf.test.ts fails when a served kind has no decoder.
//
// Conversion rules, from the Go type and `json:` tag of each field (proto/k8s/gofields.ts, taken from
// upstream types.go). Go's protobuf encoder writes every non-pointer field, even when zero, and pointer
// fields only when set; Go's JSON encoder drops `omitempty` zero scalars and empty lists/maps:
//   * absent field (undefined)             -> omitted
//   * zero scalar ("" / 0 / false)         -> omitted when the Go field is a non-pointer with omitempty;
//                                             kept for pointers and fields without omitempty (replicas: 0)
//   * empty repeated / map                 -> omitted
//   * nested message                       -> object, even when empty (`status: {}`, `resources: {}`)
//   * embedded Go structs (json ",inline") -> their fields are merged into the parent
//   * json name                            -> the tag's (`json:"-"` fields are dropped)
//   * Go types with their own MarshalJSON:
//       meta.v1.Time / MicroTime           -> RFC3339 UTC, second / microsecond precision; zero -> null
//       resource.Quantity                  -> its string
//       intstr.IntOrString                 -> number (type 0) or string (type 1)
//       runtime.RawExtension, FieldsV1     -> the embedded JSON document (raw must be JSON)
//   * bytes                                -> base64 string (Secret.data, ConfigMap.binaryData values)
//   * unknown fields (newer than proto/k8s/, field numbers the subset lacks) -> dropped, as upstream does:
//     its protobuf decoder skips them, and fieldValidation=Strict cannot apply ("strict decoding is
//     unsupported for protobuf, fall back to regular serializing", apimachinery codec_factory.go).

import { BinaryReader } from "@bufbuild/protobuf/wire";

import type { ResourceInfo } from "../../api/resources.ts";
import { GO_FIELDS, GO_JSON_MARSHALERS, GO_NAMED_SLICES } from "../../proto/k8s/gofields.ts";
import { messageTypeRegistry } from "../../proto/gen/k8s/all.ts";
import { Unknown } from "../../proto/gen/k8s/apimachinery/pkg/runtime/generated.ts";
import { DELETE_OPTIONS, protobufKinds, protoMessageName } from "./kinds.ts";

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

/**
 * apiVersion/kind -> generated decoder, for every kind of the catalogue and every subresource body
 * (kinds.ts). DeleteOptions is accepted under any apiVersion (see decoderFor).
 */
const DECODERS: ReadonlyMap<string, Decoder> = new Map(
  protobufKinds().flatMap((k): [string, Decoder][] => {
    const codec = messageTypeRegistry.get(protoMessageName(k.apiVersion, k.kind));
    return codec ? [[`${k.apiVersion}/${k.kind}`, codec]] : [];
  }),
);

/** The kinds (and subresource bodies) of `resources` without a generated decoder. */
export function missingProtobufDecoders(resources?: readonly ResourceInfo[]): string[] {
  return protobufKinds(resources)
    .filter((k) => !messageTypeRegistry.has(protoMessageName(k.apiVersion, k.kind)))
    .map((k) => `${k.apiVersion}/${k.kind}`);
}

/** Served kinds without a decoder: proto/ needs regenerating (proto/subset.ts). Empty when in sync. */
export const MISSING_PROTOBUF_DECODERS: readonly string[] = missingProtobufDecoders();

/** The apiVersion/kind pairs decodeProtobufObject understands (DeleteOptions: any apiVersion). */
export const SUPPORTED_PROTOBUF_KINDS: readonly string[] = [...DECODERS.keys(), "*/DeleteOptions"];

function decoderFor(apiVersion: string, kind: string): Decoder | undefined {
  // client-go encodes DeleteOptions with the group version of the resource being deleted (v1, apps/v1, ...).
  if (kind === "DeleteOptions" && apiVersion !== "") return messageTypeRegistry.get(DELETE_OPTIONS);
  return DECODERS.get(`${apiVersion}/${kind}`);
}

const META = "k8s.io.apimachinery.pkg.apis.meta.v1.";
const TIME = `${META}Time`;
const MICRO_TIME = `${META}MicroTime`;
const FIELDS_V1 = `${META}FieldsV1`;
const RAW_EXTENSION = "k8s.io.apimachinery.pkg.runtime.RawExtension";
const QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString";

/** The Go MarshalJSON types converted by hand below; protobuf.test.ts checks it matches GO_JSON_MARSHALERS. */
export const CUSTOM_JSON_MESSAGES: readonly string[] = [TIME, MICRO_TIME, FIELDS_V1, RAW_EXTENSION, QUANTITY, INT_OR_STRING];

/** How Go's encoding/json writes one field of a message. */
export interface JsonField {
  /** JSON name; "" for an embedded (inline) struct. */
  name: string;
  inline: boolean;
  /** `json:"-"`: never in JSON. */
  skip: boolean;
  /** A zero scalar is written: Go pointer, or no omitempty. */
  emitZero: boolean;
}

/** The JSON facts of a field from its Go type and `json:` tag (as in proto/k8s/gofields.ts). */
export function jsonField(goType: string, jsonTag: string): JsonField {
  const [name = "", ...opts] = jsonTag.split(",");
  const inline = opts.includes("inline");
  return { name, inline, skip: name === "-" && opts.length === 0, emitZero: goType.startsWith("*") || !opts.includes("omitempty") };
}

const FIELDS: ReadonlyMap<string, ReadonlyMap<string, JsonField>> = new Map(
  Object.entries(GO_FIELDS).map(([type, fields]) => [
    type,
    new Map(Object.entries(fields).map(([proto, [goType, tag]]) => [proto, jsonField(goType, tag)])),
  ]),
);

/** The JSON facts of every field of every message (for tests). */
export function messageJsonFields(type: string): ReadonlyMap<string, JsonField> | undefined {
  return FIELDS.get(type);
}

/** Messages the converter knows how to write (GO_FIELDS or a hand-written MarshalJSON). */
export function convertibleMessage(type: string): boolean {
  return FIELDS.has(type) || CUSTOM_JSON_MESSAGES.includes(type) || GO_NAMED_SLICES.includes(type);
}

/**
 * Decodes a Kubernetes protobuf body ("k8s\0" + runtime.Unknown) into the Kubernetes JSON object, with
 * `apiVersion` and `kind` taken from the envelope. Throws ProtobufDecodeError for a missing magic, an
 * unsupported apiVersion/kind or encoding, or malformed bytes. Fields unknown to the subset are dropped.
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
      `cannot decode protobuf object with ${what}: kubelab serves no such kind; ` +
        `protobuf is decoded for ${SUPPORTED_PROTOBUF_KINDS.join(", ")}`,
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
  switch (type) {
    case TIME:
      return timeToJSON(num(msg.seconds), num(msg.nanos), false);
    case MICRO_TIME:
      return timeToJSON(num(msg.seconds), num(msg.nanos), true);
    case QUANTITY:
      // Go's zero Quantity marshals as "0"
      return typeof msg.string === "string" && msg.string !== "" ? msg.string : "0";
    case INT_OR_STRING:
      return num(msg.type) === 1 ? (typeof msg.strVal === "string" ? msg.strVal : "") : num(msg.intVal);
    case RAW_EXTENSION:
      return embeddedJSON(msg.raw, type, path);
    case FIELDS_V1:
      return embeddedJSON(msg.Raw, type, path);
  }
  // a Go named slice (user.extra's ExtraValue): the wrapper message's items are the JSON list
  if (GO_NAMED_SLICES.includes(type)) return Array.isArray(msg.items) ? toJSON(msg.items, path) : [];
  const fields = FIELDS.get(type);
  if (!fields) {
    // cannot happen for messages of proto/k8s/ (protobuf.test.ts checks GO_FIELDS covers them all)
    throw new ProtobufDecodeError(`no JSON mapping for protobuf message ${type}${path ? ` at ${path}` : ""}`, { unsupported: true });
  }
  const out: Record<string, unknown> = {};
  // _unknownFields (field numbers the subset lacks) are dropped, like upstream's generated Unmarshal
  for (const [key, v] of Object.entries(msg)) {
    if (key === "$type" || key === "_unknownFields" || v === undefined) continue;
    const field = fields.get(key);
    if (!field || field.skip) continue;
    const fieldPath = path ? `${path}.${field.name || key}` : field.name || key;
    if (Array.isArray(v)) {
      if (v.length > 0) out[field.name] = toJSON(v, fieldPath);
    } else if (isMessage(v)) {
      const converted = toJSON(v, fieldPath);
      if (field.inline && isPlainObject(converted)) Object.assign(out, converted);
      else out[field.name] = converted;
    } else if (v instanceof Uint8Array) {
      if (v.length > 0 || field.emitZero) out[field.name] = toJSON(v, fieldPath);
    } else if (isPlainObject(v)) {
      if (Object.keys(v).length > 0) out[field.name] = toJSON(v, fieldPath);
    } else if (!isZeroScalar(v) || field.emitZero) {
      out[field.name] = v;
    }
  }
  return out;
}

function num(v: unknown): number {
  return typeof v === "number" ? v : 0;
}

/** RawExtension / FieldsV1: Go's MarshalJSON writes raw as is (null when absent); it must be JSON. */
function embeddedJSON(raw: unknown, type: string, path: string): unknown {
  if (!(raw instanceof Uint8Array) || raw.length === 0) return null;
  const text = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("utf8");
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ProtobufDecodeError(`${type}${path ? ` at ${path}` : ""} does not hold a JSON document`);
  }
}

/** metav1.Time JSON: RFC3339 in UTC, whole seconds (MicroTime: 6 fractional digits); the zero time is null. */
function timeToJSON(seconds: number, nanos: number, micro: boolean): string | null {
  if (seconds === 0 && nanos === 0) return null;
  const date = new Date(seconds * 1000);
  if (Number.isNaN(date.getTime())) throw new ProtobufDecodeError(`invalid timestamp seconds=${seconds}`);
  const whole = date.toISOString().replace(/\.\d{3}Z$/, "");
  if (!micro) return `${whole}Z`;
  return `${whole}.${String(Math.floor(nanos / 1000)).padStart(6, "0")}Z`;
}
