// Steady-state probes (LitmusChaos's HTTP, Kubernetes-object and API kinds), each run continuously
// at its own rate from the start of the run to its end, every result a sample with its time and
// latency. `check()` answers the hypothesis now: every probe's recent samples pass.

import http from "node:http";
import type { ConfigMap, KubeObject } from "../api/index.ts";
import type { RestClient } from "../client/index.ts";
import type { ApiProbeSpec, HttpProbeSpec, ObjectProbeSpec, ProbeSample, ProbeSpec, RunMs } from "./types.ts";
import { realClock } from "../client/index.ts";

const sleep = realClock.sleep;

export const PROBE_NAMESPACE = "kubelab-chaos";

/** Splits "apps/v1" into group and version ("v1" → core). */
function groupOf(apiVersion: string): string {
  return apiVersion.includes("/") ? apiVersion.split("/")[0]! : "";
}

function pathValue(obj: unknown, path: string): unknown {
  let v: unknown = obj;
  for (const p of path.split(".")) v = v && typeof v === "object" ? (v as Record<string, unknown>)[p] : undefined;
  return v;
}

/** The object probe's condition on one object; a missing numeric field counts as 0 (status.availableReplicas is omitted at 0). */
export function conditionHolds(spec: Pick<ObjectProbeSpec, "path" | "op" | "value">, obj: unknown): { ok: boolean; got: unknown } {
  let got = pathValue(obj, spec.path);
  if (got === undefined && typeof spec.value === "number") got = 0;
  const cmp = (a: unknown, b: number | string): number => (typeof b === "number" ? Number(a) - b : String(a).localeCompare(b));
  const c = cmp(got, spec.value);
  const ok = spec.op === ">=" ? c >= 0 : spec.op === "<=" ? c <= 0 : spec.op === "==" ? c === 0 : c !== 0;
  return { ok: ok && !(typeof spec.value === "number" && Number.isNaN(Number(got))), got };
}

function httpOnce(url: string, host: string | undefined, timeoutMs: number): Promise<{ ok: boolean; error?: string }> {
  return new Promise((resolve) => {
    const req = http.get(url, { headers: host ? { Host: host } : {}, timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode! >= 200 && res.statusCode! < 400 ? { ok: true } : { ok: false, error: `HTTP ${res.statusCode}` }));
      res.on("error", (e) => resolve({ ok: false, error: e.message }));
    });
    req.on("timeout", () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on("error", (e) => resolve({ ok: false, error: (e as NodeJS.ErrnoException).code ?? e.message }));
  });
}

export interface ProbeEnv {
  client: RestClient;
  /** t = 0 of the run (Date.now() at the start). */
  t0: number;
  /** {ingressHTTP}/{ingressHTTPS} in URLs. */
  vars: Record<string, string>;
  record(s: ProbeSample): void;
  /** HTTP probe requests sent and not yet answered (the runner reads it when a fault goes in). */
  inFlight: { http: number };
}

export function expandVars(s: string, vars: Record<string, string>): string {
  return s.replace(/\{(\w+)\}/g, (m, k: string) => vars[k] ?? m);
}

/** Runs `once` every `periodMs` (not waiting for slow ones: requests overlap, as clients do) until the signal aborts. */
async function loop(signal: AbortSignal, periodMs: number, once: () => Promise<void>): Promise<void> {
  const inflight = new Set<Promise<void>>();
  let next = Date.now();
  while (!signal.aborted) {
    const p = once().catch(() => {});
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
    next += periodMs;
    const wait = next - Date.now();
    if (wait > 0) await sleep(wait, signal);
    else next = Date.now();
  }
  await Promise.all(inflight);
}

async function runHttp(spec: HttpProbeSpec, env: ProbeEnv, signal: AbortSignal): Promise<void> {
  const url = expandVars(spec.url, env.vars);
  await loop(signal, 1000 / spec.rate, async () => {
    const start = Date.now();
    env.inFlight.http++;
    const r = await httpOnce(url, spec.host, spec.timeoutMs).finally(() => env.inFlight.http--);
    env.record({ probe: spec.name, t: start - env.t0, ok: r.ok, latencyMs: Date.now() - start, ...(r.error ? { error: r.error } : {}) });
  });
}

async function runObject(spec: ObjectProbeSpec, env: ProbeEnv, signal: AbortSignal): Promise<void> {
  const res = env.client.resource<KubeObject>(groupOf(spec.apiVersion), spec.resource);
  await loop(signal, spec.intervalMs, async () => {
    const start = Date.now();
    try {
      const obj = await res.get(spec.namespace ?? "", spec.objectName);
      const { ok, got } = conditionHolds(spec, obj);
      env.record({ probe: spec.name, t: start - env.t0, ok, latencyMs: Date.now() - start, ...(ok ? {} : { error: `${spec.path} is ${JSON.stringify(got)}, want ${spec.op} ${JSON.stringify(spec.value)}` }) });
    } catch (e) {
      env.record({ probe: spec.name, t: start - env.t0, ok: false, latencyMs: Date.now() - start, error: (e as Error).message.split("\n")[0] });
    }
  });
}

/** API probe: alternately a GET of a ConfigMap and an update of it, as a client of the cluster endpoint. */
async function runApi(spec: ApiProbeSpec, env: ProbeEnv, signal: AbortSignal): Promise<void> {
  const cms = env.client.resource<ConfigMap>("", "configmaps");
  const name = `probe-${spec.name}`;
  let n = 0;
  await loop(signal, 1000 / spec.rate, async () => {
    const start = Date.now();
    const deadline = AbortSignal.timeout(spec.timeoutMs);
    try {
      const op = n++ % 2 === 0 ? cms.get(PROBE_NAMESPACE, name) : cms.patch(PROBE_NAMESPACE, name, "merge", { data: { n: String(n) } });
      await Promise.race([op, new Promise((_, rej) => deadline.addEventListener("abort", () => rej(new Error(`timeout after ${spec.timeoutMs} ms`)), { once: true }))]);
      env.record({ probe: spec.name, t: start - env.t0, ok: true, latencyMs: Date.now() - start });
    } catch (e) {
      env.record({ probe: spec.name, t: start - env.t0, ok: false, latencyMs: Date.now() - start, error: (e as Error).message.split("\n")[0] });
    }
  });
}

/** Creates what the probes need (the API probe's ConfigMap). */
export async function prepareProbes(specs: readonly ProbeSpec[], client: RestClient): Promise<void> {
  for (const s of specs) {
    if (s.kind !== "api") continue;
    try {
      await client.resource<ConfigMap>("", "configmaps").create(PROBE_NAMESPACE, { apiVersion: "v1", kind: "ConfigMap", metadata: { name: `probe-${s.name}`, namespace: PROBE_NAMESPACE }, data: { n: "0" } });
    } catch (e) {
      if ((e as { code?: number }).code !== 409) throw e;
    }
  }
}

export function runProbe(spec: ProbeSpec, env: ProbeEnv, signal: AbortSignal): Promise<void> {
  if (spec.kind === "http") return runHttp(spec, env, signal);
  if (spec.kind === "object") return runObject(spec, env, signal);
  return runApi(spec, env, signal);
}

/**
 * The hypothesis at `now`: every probe has samples in the last `windowMs` and all of them passed
 * (the HTTP and API probes may lose one request in twenty: a client retries that).
 */
export function steadyStateHolds(specs: readonly ProbeSpec[], samples: readonly ProbeSample[], now: RunMs, windowMs = 3000): { ok: boolean; why?: string } {
  for (const s of specs) {
    const recent = samples.filter((x) => x.probe === s.name && x.t >= now - windowMs && x.t <= now);
    if (recent.length === 0) return { ok: false, why: `${s.name}: no result in the last ${windowMs / 1000}s` };
    const failed = recent.filter((x) => !x.ok);
    const allowed = s.kind === "object" ? 0 : Math.floor(recent.length / 20);
    if (failed.length > allowed) return { ok: false, why: `${s.name}: ${failed.length}/${recent.length} failed (${failed[failed.length - 1]!.error ?? "failed"})` };
  }
  return { ok: true };
}
