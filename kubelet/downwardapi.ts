// The downward API as files (upstream pkg/volume/downwardapi CollectData, pkg/fieldpath): the
// values a downwardAPI volume or a projected volume's downwardAPI source writes, one file per item.

import type { Container, DownwardAPIVolumeFile, Pod, ResourceFieldSelector } from "../api/core/v1.ts";
import { parseQuantityMilli, parseQuantityValue } from "../api/index.ts";

/** What the kubelet knows beyond the pod object: its IP, the node's IP and allocatable. */
export interface DownwardAPIEnv {
  podIP?: string;
  nodeIP?: string;
  /** Node allocatable: a container's unset limit reads as this (upstream's MergeContainerResourceLimits). */
  allocatable?: Record<string, string>;
}

/** Default node allocatable, as the kubelet's node status reports without --capacity. */
const DEFAULT_ALLOCATABLE: Record<string, string> = { cpu: "8", memory: "32Gi", "ephemeral-storage": "100Gi" };

/** Go's strconv.Quote: printable runes as they are, the rest escaped the way Go writes them. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0) ?? 0;
    switch (ch) {
      case '"':
        out += '\\"';
        continue;
      case "\\":
        out += "\\\\";
        continue;
      case "\x07":
        out += "\\a";
        continue;
      case "\b":
        out += "\\b";
        continue;
      case "\f":
        out += "\\f";
        continue;
      case "\n":
        out += "\\n";
        continue;
      case "\r":
        out += "\\r";
        continue;
      case "\t":
        out += "\\t";
        continue;
      case "\v":
        out += "\\v";
        continue;
    }
    // unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space.
    if (ch === " " || /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u.test(ch)) out += ch;
    else if (cp < 0x80) out += `\\x${cp.toString(16).padStart(2, "0")}`;
    else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, "0")}`;
    else out += `\\U${cp.toString(16).padStart(8, "0")}`;
  }
  return out + '"';
}

/** upstream's fieldpath.FormatMap: `key="value"` lines in key order. */
export function formatMap(m: Readonly<Record<string, string>> | undefined): string {
  return Object.keys(m ?? {})
    .sort()
    .map((k) => `${k}=${goQuote(m?.[k] ?? "")}`)
    .join("\n");
}

/**
 * The value of a fieldRef (upstream's fieldpath.ExtractFieldPathAsString for metadata.*; the
 * spec/status paths are those the kubelet resolves for env vars, which the apiserver only admits
 * there, so a volume asking for them reads what an env var would). Throws Error for anything else.
 */
export function fieldPathValue(pod: Readonly<Pod>, fieldPath: string, env: DownwardAPIEnv = {}): string {
  const sub = /^(metadata\.(?:labels|annotations))\['(.*)'\]$/.exec(fieldPath);
  if (sub) {
    const m = sub[1] === "metadata.labels" ? pod.metadata.labels : pod.metadata.annotations;
    return m?.[sub[2]] ?? "";
  }
  if (/\[.*\]$/.test(fieldPath)) throw new Error(`fieldPath ${goQuote(fieldPath)} does not support subscript`);
  switch (fieldPath) {
    case "metadata.annotations":
      return formatMap(pod.metadata.annotations);
    case "metadata.labels":
      return formatMap(pod.metadata.labels);
    case "metadata.name":
      return pod.metadata.name ?? "";
    case "metadata.namespace":
      return pod.metadata.namespace ?? "";
    case "metadata.uid":
      return pod.metadata.uid ?? "";
    case "spec.nodeName":
      return pod.spec?.nodeName ?? "";
    case "spec.serviceAccountName":
      return pod.spec?.serviceAccountName ?? "";
    case "status.hostIP":
    case "status.hostIPs":
      return env.nodeIP ?? pod.status?.hostIP ?? "";
    case "status.podIP":
    case "status.podIPs":
      return env.podIP || pod.status?.podIP || "";
  }
  throw new Error(`unsupported fieldPath: ${fieldPath}`);
}

/**
 * A container's resource value in units of the divisor, rounded up (upstream's
 * ExtractResourceValueByContainerNameAndNodeAllocatable); an unset limit is the node's allocatable.
 */
export function resourceFieldValue(pod: Readonly<Pod>, ref: Readonly<ResourceFieldSelector>, env: DownwardAPIEnv = {}): string {
  const all: readonly Container[] = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
  const c = all.find((x) => x.name === ref.containerName);
  if (!c) throw new Error(`container ${ref.containerName ?? ""} not found`);
  const dot = ref.resource.indexOf(".");
  const which = ref.resource.slice(0, dot);
  const name = ref.resource.slice(dot + 1);
  if (dot < 0 || (which !== "limits" && which !== "requests") || !["cpu", "memory", "ephemeral-storage"].includes(name)) {
    throw new Error(`unsupported container resource : ${ref.resource}`);
  }
  const allocatable = { ...DEFAULT_ALLOCATABLE, ...env.allocatable };
  const q = c.resources?.[which]?.[name] ?? (which === "limits" ? allocatable[name] : undefined) ?? 0;
  if (name === "cpu") return String(Math.ceil(parseQuantityMilli(q) / (parseQuantityMilli(ref.divisor ?? "1") || 1000)));
  return String(Math.ceil(parseQuantityValue(q) / (parseQuantityValue(ref.divisor ?? "1") || 1)));
}

/** One downward API file: its content and permission bits. */
export interface DownwardAPIFile {
  path: string;
  data: string;
  mode: number;
}

/**
 * The files of downwardAPI items (upstream's CollectData): every item is written, and the items
 * whose value cannot be read are reported in `errors` (upstream aggregates them into one error).
 */
export function collectDownwardAPI(
  items: readonly DownwardAPIVolumeFile[] | undefined,
  pod: Readonly<Pod>,
  defaultMode: number,
  env: DownwardAPIEnv = {},
): { files: DownwardAPIFile[]; errors: Error[] } {
  const files: DownwardAPIFile[] = [];
  const errors: Error[] = [];
  for (const item of items ?? []) {
    let data = "";
    try {
      if (item.fieldRef) data = fieldPathValue(pod, item.fieldRef.fieldPath, env);
      else if (item.resourceFieldRef) data = resourceFieldValue(pod, item.resourceFieldRef, env);
    } catch (e) {
      errors.push(e instanceof Error ? e : new Error(String(e)));
    }
    files.push({ path: item.path, data, mode: item.mode ?? defaultMode });
  }
  return { files, errors };
}
