// The chaos experiment file (deploy/experiments/*.yaml): YAML checked against a JSON Schema
// (EXPERIMENT_SCHEMA, printed by `kubelab chaos schema`), then against what the schema cannot say
// (a fault's target fits its kind, durations parse). A mistake is one line naming the field:
// `zone-outage.yaml: spec.method[0].target: zone-outage needs target.zone`.

import { readFileSync } from "node:fs";
import { Ajv2020, type ErrorObject } from "ajv/dist/2020.js";
import { parse as parseYAML } from "yaml";
import type { Checks, Experiment, FaultKind, FaultSpec, FaultTarget, ProbeSpec } from "./types.ts";

export const EXPERIMENT_API_VERSION = "kubelab.io/v1alpha1";

const DURATION = "^[0-9]+(\\.[0-9]+)?(ms|s|m)$";
const SIGNED_DURATION = "^[-+]?[0-9]+(\\.[0-9]+)?(ms|s|m|h)$";
export const FAULT_KINDS: readonly FaultKind[] = ["kill", "pause", "stop", "restart", "zone-outage", "lease-expire", "link-cut", "link-reset", "link-delay", "link-throttle", "fill-node", "node-stop", "clock-skew"];

/** The experiment's JSON Schema (draft 2020-12). */
export const EXPERIMENT_SCHEMA = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  $id: "https://kubelab.io/schemas/experiment.json",
  title: "kubelab chaos experiment",
  type: "object",
  additionalProperties: false,
  required: ["apiVersion", "kind", "metadata", "spec"],
  properties: {
    apiVersion: { const: EXPERIMENT_API_VERSION },
    kind: { const: "Experiment" },
    metadata: {
      type: "object",
      additionalProperties: false,
      required: ["name"],
      properties: {
        name: { type: "string", pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", maxLength: 63 },
        description: { type: "string" },
      },
    },
    spec: {
      type: "object",
      additionalProperties: false,
      required: ["steadyState", "method"],
      properties: {
        setup: { type: "array", items: { type: "string", minLength: 1 }, description: "manifests (YAML, one or more documents each) applied before the run and deleted after it" },
        warmup: { type: "string", pattern: DURATION },
        observe: { type: "string", pattern: DURATION, description: "how long the run goes on after the last fault ends (default 10s)" },
        journalRate: { type: "number", minimum: 0, maximum: 200 },
        steadyState: { type: "array", minItems: 1, items: { $ref: "#/$defs/probe" } },
        method: { type: "array", minItems: 1, items: { $ref: "#/$defs/fault" } },
        checks: {
          type: "object",
          additionalProperties: false,
          properties: {
            recoverWithin: { type: "string", pattern: DURATION },
            maxObjectsLost: { type: "integer", minimum: 0 },
            maxFailedRequests: { type: "integer", minimum: 0 },
            failedWithinInFlight: { type: "boolean", description: "failed HTTP probe requests at most those in flight at the faults" },
            maxWatchGaps: { type: "integer", minimum: 0 },
          },
        },
      },
    },
  },
  $defs: {
    probe: {
      type: "object",
      required: ["name", "kind"],
      properties: {
        name: { type: "string", pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" },
        kind: { enum: ["http", "object", "api"] },
      },
      allOf: [
        {
          if: { properties: { kind: { const: "http" } } },
          then: {
            additionalProperties: false,
            required: ["url"],
            properties: { name: true, kind: true, url: { type: "string", pattern: "^https?://" }, host: { type: "string" }, rate: { type: "number", exclusiveMinimum: 0, maximum: 500 }, timeout: { type: "string", pattern: DURATION } },
          },
        },
        {
          if: { properties: { kind: { const: "object" } } },
          then: {
            additionalProperties: false,
            required: ["apiVersion", "resource", "object", "path", "op", "value"],
            properties: {
              name: true,
              kind: true,
              apiVersion: { type: "string" },
              resource: { type: "string", pattern: "^[a-z]+$" },
              namespace: { type: "string" },
              object: { type: "string" },
              path: { type: "string", pattern: "^[A-Za-z0-9_]+(\\.[A-Za-z0-9_]+)*$" },
              op: { enum: [">=", "<=", "==", "!="] },
              value: { type: ["number", "string"] },
              interval: { type: "string", pattern: DURATION },
            },
          },
        },
        {
          if: { properties: { kind: { const: "api" } } },
          then: {
            additionalProperties: false,
            properties: { name: true, kind: true, rate: { type: "number", exclusiveMinimum: 0, maximum: 500 }, timeout: { type: "string", pattern: DURATION } },
          },
        },
      ],
    },
    fault: {
      type: "object",
      additionalProperties: false,
      required: ["fault", "target", "at"],
      properties: {
        name: { type: "string" },
        fault: { enum: FAULT_KINDS },
        at: { type: "string", pattern: DURATION },
        for: { type: "string", pattern: DURATION },
        latency: { type: "string", pattern: DURATION, description: "link-delay: added to each chunk each way" },
        bytesPerSecond: { type: "integer", minimum: 1, description: "link-throttle: bandwidth each way" },
        offset: { type: "string", pattern: SIGNED_DURATION, description: "clock-skew: how far the node's clock moves, e.g. -10m (behind) or 5m (ahead)" },
        target: {
          type: "object",
          additionalProperties: false,
          minProperties: 1,
          maxProperties: 1,
          properties: {
            component: { type: "string" },
            leaderOf: { enum: ["kube-scheduler", "kube-controller-manager", "kubelab-cloud-controller"] },
            etcdLeader: { const: true },
            zone: { type: "string" },
            lease: { enum: ["kube-scheduler", "kube-controller-manager", "kubelab-cloud-controller"] },
            node: { type: "string" },
          },
        },
      },
    },
  },
} as const;

class ExperimentError extends Error {}

/** "-10m", "+30s", "90s" → ms (a clock offset: negative is behind). */
export function parseSignedDurationMs(v: string): number {
  const m = /^([-+]?)(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v.trim());
  if (!m) throw new ExperimentError(`"${v}" is not an offset like -10m, 30s or +2h`);
  return (m[1] === "-" ? -1 : 1) * Math.round(Number(m[2]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[3] as "ms" | "s" | "m" | "h"]);
}

/** "5s", "250ms", "2m" → ms. */
export function parseDurationMs(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(v.trim());
  if (!m) throw new ExperimentError(`"${v}" is not a duration like 5s, 250ms or 2m`);
  return Math.round(Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2] as "ms" | "s" | "m"]);
}

/** `/spec/method/0/at` → `spec.method[0].at`. */
function fieldPath(instancePath: string, extra?: string): string {
  const parts = instancePath.split("/").filter(Boolean);
  let out = "";
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out ? `.${p}` : p;
  if (extra) out += out ? `.${extra}` : extra;
  return out || "(document)";
}

/** The first ajv error as one line, in document order (the `if` wrappers of per-kind rules dropped). */
function describeError(errors: readonly ErrorObject[]): string {
  const e = errors.find((x) => x.keyword !== "if" && x.keyword !== "allOf") ?? errors[0]!;
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case "additionalProperties":
      return `${fieldPath(e.instancePath, String(p.additionalProperty))}: unknown field`;
    case "required":
      return `${fieldPath(e.instancePath, String(p.missingProperty))}: required`;
    case "enum":
      return `${fieldPath(e.instancePath)}: must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`;
    case "const":
      return `${fieldPath(e.instancePath)}: must be ${JSON.stringify(p.allowedValue)}`;
    case "pattern":
      return `${fieldPath(e.instancePath)}: ${String(p.pattern) === DURATION ? "must be a duration like 5s, 250ms or 2m" : String(p.pattern) === SIGNED_DURATION ? "must be an offset like -10m, 30s or +2h" : `must match ${String(p.pattern)}`}`;
    case "maxProperties":
    case "minProperties":
      return `${fieldPath(e.instancePath)}: must name exactly one target (component, leaderOf, etcdLeader, zone, lease or node)`;
    default:
      return `${fieldPath(e.instancePath)}: ${e.message ?? e.keyword}`;
  }
}

let validator: ReturnType<Ajv2020["compile"]> | undefined;
function validate(doc: unknown): readonly ErrorObject[] {
  validator ??= new Ajv2020({ allErrors: true, strict: false }).compile(EXPERIMENT_SCHEMA);
  return validator(doc) ? [] : (validator.errors ?? []);
}

/** Which targets each fault takes. */
const TARGETS: Record<FaultKind, (keyof FaultTarget)[]> = {
  kill: ["component", "leaderOf", "etcdLeader"],
  pause: ["component", "leaderOf", "etcdLeader"],
  stop: ["component", "leaderOf", "etcdLeader"],
  restart: ["component", "leaderOf", "etcdLeader"],
  "zone-outage": ["zone"],
  "lease-expire": ["lease"],
  "link-cut": ["component", "zone"],
  "link-reset": ["component", "zone"],
  "link-delay": ["component", "zone"],
  "link-throttle": ["component", "zone"],
  "fill-node": ["node"],
  "node-stop": ["node"],
  "clock-skew": ["node"],
};
/** The faults that last until reverted (they take a duration); the others are instant. */
export const LASTING: readonly FaultKind[] = ["pause", "stop", "zone-outage", "link-cut", "link-reset", "link-delay", "link-throttle", "fill-node", "node-stop", "clock-skew"];

interface RawProbe {
  name: string;
  kind: "http" | "object" | "api";
  url?: string;
  host?: string;
  rate?: number;
  timeout?: string;
  apiVersion?: string;
  resource?: string;
  namespace?: string;
  object?: string;
  path?: string;
  op?: ">=" | "<=" | "==" | "!=";
  value?: number | string;
  interval?: string;
}

interface RawDoc {
  metadata: { name: string; description?: string };
  spec: {
    setup?: string[];
    warmup?: string;
    observe?: string;
    journalRate?: number;
    steadyState: RawProbe[];
    method: { name?: string; fault: FaultKind; target: FaultTarget; at: string; for?: string; latency?: string; bytesPerSecond?: number; offset?: string }[];
    checks?: { recoverWithin?: string; maxObjectsLost?: number; maxFailedRequests?: number; failedWithinInFlight?: boolean; maxWatchGaps?: number };
  };
}

function probeSpec(p: RawProbe): ProbeSpec {
  const timeoutMs = p.timeout ? parseDurationMs(p.timeout) : 2000;
  if (p.kind === "http") return { name: p.name, kind: "http", url: p.url!, ...(p.host ? { host: p.host } : {}), rate: p.rate ?? 20, timeoutMs };
  if (p.kind === "api") return { name: p.name, kind: "api", rate: p.rate ?? 10, timeoutMs };
  return {
    name: p.name,
    kind: "object",
    apiVersion: p.apiVersion!,
    resource: p.resource!,
    ...(p.namespace ? { namespace: p.namespace } : {}),
    objectName: p.object!,
    path: p.path!,
    op: p.op!,
    value: p.value!,
    intervalMs: p.interval ? parseDurationMs(p.interval) : 1000,
  };
}

/** Parses and checks an experiment; throws an Error with one line `<source>: <field>: <problem>`. */
export function loadExperiment(text: string, source: string): Experiment {
  let doc: unknown;
  try {
    doc = parseYAML(text);
  } catch (e) {
    throw new Error(`${source}: not YAML: ${(e as Error).message.split("\n")[0]}`);
  }
  const errors = validate(doc);
  if (errors.length) throw new Error(`${source}: ${describeError(errors)}`);
  const d = doc as RawDoc;
  const at = (path: string, fn: () => number): number => {
    try {
      return fn();
    } catch (e) {
      throw new Error(`${source}: ${path}: ${(e as Error).message}`);
    }
  };
  const names = new Set<string>();
  d.spec.steadyState.forEach((p, i) => {
    if (names.has(p.name)) throw new Error(`${source}: spec.steadyState[${i}].name: duplicate probe name "${p.name}"`);
    names.add(p.name);
  });
  const method: FaultSpec[] = d.spec.method.map((f, i) => {
    const path = `spec.method[${i}]`;
    const key = Object.keys(f.target)[0] as keyof FaultTarget;
    if (!TARGETS[f.fault].includes(key)) throw new Error(`${source}: ${path}.target: ${f.fault} takes target.${TARGETS[f.fault].join(" or target.")}, not target.${key}`);
    const lasting = LASTING.includes(f.fault);
    if (lasting && !f.for) throw new Error(`${source}: ${path}.for: ${f.fault} needs a duration (for: 30s)`);
    if (!lasting && f.for) throw new Error(`${source}: ${path}.for: ${f.fault} is instant; remove for`);
    if (f.fault === "link-delay" && !f.latency) throw new Error(`${source}: ${path}.latency: link-delay needs a latency (latency: 200ms)`);
    if (f.fault === "link-throttle" && !f.bytesPerSecond) throw new Error(`${source}: ${path}.bytesPerSecond: link-throttle needs bytesPerSecond`);
    if (f.latency && f.fault !== "link-delay") throw new Error(`${source}: ${path}.latency: only link-delay takes a latency`);
    if (f.bytesPerSecond && f.fault !== "link-throttle") throw new Error(`${source}: ${path}.bytesPerSecond: only link-throttle takes bytesPerSecond`);
    if (f.fault === "clock-skew" && !f.offset) throw new Error(`${source}: ${path}.offset: clock-skew needs an offset (offset: -10m)`);
    if (f.offset && f.fault !== "clock-skew") throw new Error(`${source}: ${path}.offset: only clock-skew takes an offset`);
    return {
      ...(f.latency ? { latencyMs: at(`${path}.latency`, () => parseDurationMs(f.latency!)) } : {}),
      ...(f.bytesPerSecond ? { bytesPerSecond: f.bytesPerSecond } : {}),
      ...(f.offset ? { offsetMs: at(`${path}.offset`, () => parseSignedDurationMs(f.offset!)) } : {}),
      name: f.name ?? `${f.fault} ${key === "etcdLeader" ? "etcd leader" : key === "leaderOf" ? `leader of ${f.target.leaderOf}` : String(f.target[key])}`,
      kind: f.fault,
      target: f.target,
      atMs: at(`${path}.at`, () => parseDurationMs(f.at)),
      ...(f.for ? { forMs: at(`${path}.for`, () => parseDurationMs(f.for!)) } : {}),
    };
  });
  const c = d.spec.checks ?? {};
  const checks: Checks = {
    recoverWithinMs: c.recoverWithin ? at("spec.checks.recoverWithin", () => parseDurationMs(c.recoverWithin!)) : 120_000,
    maxObjectsLost: c.maxObjectsLost ?? 0,
    ...(c.maxFailedRequests !== undefined ? { maxFailedRequests: c.maxFailedRequests } : {}),
    ...(c.failedWithinInFlight ? { failedWithinInFlight: true } : {}),
    maxWatchGaps: c.maxWatchGaps ?? 0,
  };
  return {
    name: d.metadata.name,
    description: (d.metadata.description ?? "").trim(),
    setup: d.spec.setup ?? [],
    steadyState: d.spec.steadyState.map(probeSpec),
    method,
    checks,
    warmupMs: d.spec.warmup ? at("spec.warmup", () => parseDurationMs(d.spec.warmup!)) : 5000,
    observeMs: d.spec.observe ? at("spec.observe", () => parseDurationMs(d.spec.observe!)) : 10_000,
    journalRate: d.spec.journalRate ?? 5,
    source,
  };
}

export function loadExperimentFile(path: string): Experiment {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new Error(`cannot read the experiment ${path}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
  }
  return loadExperiment(text, path);
}
