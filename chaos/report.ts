// The chaos run report: from the RunRecord the runner wrote, the figures (time to detect, time to
// recover, requests failed, API errors and latency, objects lost, watch gaps) and the pass/fail
// checks, then the same run as a JSON report (schema: docs/chaos-report.schema.json), a Markdown
// summary, an SVG timeline (svg.ts) and the one-screen terminal summary. Chaos Toolkit's journal and
// its `chaos report` are the model: the run is data, every rendering is a pure function of it.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { FaultRecord, ProbeKind, ProbeSample, RunFigures, RunMs, RunRecord, TimelineEvent, TimelineKind } from "./types.ts";
import { timelineSVG } from "./svg.ts";

export const REPORT_API_VERSION = "kubelab.io/v1alpha1";
export const REPORT_KIND = "ChaosReport";

/** Timeline kinds that mean "the cluster noticed": they end time to detect as a failed probe does. */
const DETECTING: ReadonlySet<TimelineKind> = new Set(["node", "leader", "endpoints", "eviction"]);

/** Lost object names listed in a failure line before "and N more". */
const MAX_NAMES = 10;

/** Timeline lines in the Markdown summary (report.json has them all). */
const MARKDOWN_TIMELINE_LINES = 60;

/**
 * A probe's name and kind. RunRecord.samples name their probe only; the kinds are the experiment's
 * steadyState, which the runner may copy into the record as `probes` (ProbeSpec has both fields).
 * A probe the record does not describe is reported with kind "unknown" and counted in neither the
 * HTTP nor the API figures.
 */
export interface ProbeRef {
  name: string;
  kind: ProbeKind;
}

type RunWithProbes = RunRecord & { probes?: readonly ProbeRef[] };

/** One check of the run: what it compared and the line a person reads. */
export interface CheckResult {
  name: "steady-state-recovered" | "objects-lost" | "failed-requests" | "watch-gaps" | "faults" | "completed";
  passed: boolean;
  /** e.g. "2 objects lost (max 0): journal-0042, journal-0043". */
  message: string;
  /** The measured value the check compared (absent when there is none: steady state never recovered). */
  value?: number;
  /** The bound from the experiment's checks (absent: reported only). */
  limit?: number;
}

export interface ProbeSummary {
  name: string;
  kind: ProbeKind | "unknown";
  sent: number;
  failed: number;
  p50Ms?: number;
  p99Ms?: number;
}

/** The JSON report (report.json), documented field by field in docs/chaos-report.schema.json. */
export interface ChaosReport {
  apiVersion: typeof REPORT_API_VERSION;
  kind: typeof REPORT_KIND;
  experiment: string;
  description: string;
  source: string;
  startedAt: string;
  durationMs: number;
  passed: boolean;
  aborted?: string;
  steadyStateRecoveredAt?: RunMs;
  /** What ended time to detect (a failed probe sample or a timeline event's message). */
  detectedBy?: string;
  figures: RunFigures;
  faults: FaultRecord[];
  timeline: TimelineEvent[];
  probes: ProbeSummary[];
  journal: RunRecord["journal"];
  watchGaps: RunRecord["watchGaps"];
  checks: CheckResult[];
}

// ---- numbers ------------------------------------------------------------------------------------

/** The p-th percentile (nearest rank) of an ascending list; undefined when it is empty. */
export function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  // The epsilon keeps float noise (99.9 / 100 × 1000 = 999.0000000000001) from moving up a rank.
  const rank = Math.ceil((p / 100) * sorted.length - 1e-9);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** A duration for a person: 120000 → "120s", 12345 → "12.3s", 850 → "850ms". */
export function secs(ms: number): string {
  if (ms !== 0 && Math.abs(ms) < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  return Number.isInteger(s) ? `${s}s` : `${s.toFixed(1)}s`;
}

/** Latencies in the report to the microsecond: what a timer here resolves, and readable JSON. */
const micros = (ms: number | undefined): number | undefined => (ms === undefined ? undefined : Math.round(ms * 1000) / 1000);

/** A run time as an offset from t = 0: "+12.3s", "-2.0s". */
export function offset(t: RunMs): string {
  return `${t < 0 ? "-" : "+"}${(Math.abs(t) / 1000).toFixed(1)}s`;
}

/** A latency: "4.2ms" under 10 ms, "250ms", "1.25s" from a second. */
export function millis(ms: number | undefined): string {
  if (ms === undefined) return "-";
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)}s`;
  return ms < 10 ? `${ms.toFixed(1)}ms` : `${Math.round(ms)}ms`;
}

const plural = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;

const sortedLatencies = (samples: readonly ProbeSample[]): number[] =>
  samples.flatMap((s) => (s.latencyMs === undefined ? [] : [s.latencyMs])).sort((a, b) => a - b);

// ---- figures ------------------------------------------------------------------------------------

/** The kind of each probe the record describes (see ProbeRef). */
export function probeKinds(run: RunRecord): Map<string, ProbeKind> {
  return new Map(((run as RunWithProbes).probes ?? []).map((p) => [p.name, p.kind]));
}

/** When the first fault went in and when the last one ended (revert, or injection for an instant fault). */
function faultWindow(faults: readonly FaultRecord[]): { first?: RunMs; last?: RunMs } {
  if (faults.length === 0) return {};
  return {
    first: Math.min(...faults.map((f) => f.injectedAt)),
    last: Math.max(...faults.map((f) => f.revertedAt ?? f.injectedAt)),
  };
}

/**
 * What ended time to detect: the first failed probe sample, or node/leader/endpoints/eviction
 * event, at or after the first fault's injection (a tie goes to the event, which says more).
 */
export function detection(run: RunRecord): { t: RunMs; by: string } | undefined {
  const { first } = faultWindow(run.faults);
  if (first === undefined) return undefined;
  // Loops, not Math.min(...): an hour of samples is more arguments than a call takes.
  let found: { t: RunMs; by: string } | undefined;
  for (const e of run.timeline) if (DETECTING.has(e.kind) && e.t >= first && (!found || e.t < found.t)) found = { t: e.t, by: e.message };
  for (const s of run.samples) if (!s.ok && s.t >= first && (!found || s.t < found.t)) found = { t: s.t, by: `probe ${s.probe} failed${s.error ? `: ${s.error}` : ""}` };
  return found;
}

/** The checks of the run in a fixed order; `failures` are the messages of those that failed. */
export function evaluateChecks(run: RunRecord, f: Omit<RunFigures, "passed" | "failures">): CheckResult[] {
  const c = run.checks;
  const out: CheckResult[] = [];

  if (run.steadyStateRecoveredAt === undefined) {
    out.push({ name: "steady-state-recovered", passed: false, message: `steady state not recovered within ${secs(c.recoverWithinMs)}`, limit: c.recoverWithinMs });
  } else if (f.timeToRecoverMs === undefined) {
    out.push({ name: "steady-state-recovered", passed: true, message: `steady state held at ${offset(run.steadyStateRecoveredAt)} (no fault was injected)`, limit: c.recoverWithinMs });
  } else {
    const passed = f.timeToRecoverMs <= c.recoverWithinMs;
    out.push({
      name: "steady-state-recovered",
      passed,
      message: passed
        ? `steady state recovered ${secs(f.timeToRecoverMs)} after the last fault (max ${secs(c.recoverWithinMs)})`
        : `steady state recovered only after ${secs(f.timeToRecoverMs)} (max ${secs(c.recoverWithinMs)})`,
      value: f.timeToRecoverMs,
      limit: c.recoverWithinMs,
    });
  }

  const lost = run.journal.lost;
  if (lost.length > c.maxObjectsLost) {
    const names = lost.slice(0, MAX_NAMES).join(", ") + (lost.length > MAX_NAMES ? `, and ${lost.length - MAX_NAMES} more` : "");
    out.push({ name: "objects-lost", passed: false, message: `${plural(lost.length, "object", "objects")} lost (max ${c.maxObjectsLost}): ${names}`, value: lost.length, limit: c.maxObjectsLost });
  } else {
    out.push({ name: "objects-lost", passed: true, message: `${plural(lost.length, "object", "objects")} lost of ${run.journal.written} written (max ${c.maxObjectsLost})`, value: lost.length, limit: c.maxObjectsLost });
  }

  const failed = f.requests.failed;
  if (c.failedWithinInFlight) {
    const inFlight = run.faults.reduce((n, x) => n + (x.inFlightRequests ?? 0), 0);
    const ok = failed <= inFlight;
    out.push({
      name: "failed-requests",
      passed: ok,
      message: ok ? `${plural(failed, "failed request", "failed requests")} of ${f.requests.sent} (max ${inFlight}: those in flight at the faults)` : `${plural(failed, "failed request", "failed requests")} (max ${inFlight}: those in flight at the faults)`,
      value: failed,
      limit: inFlight,
    });
  } else if (c.maxFailedRequests !== undefined && (run as RunWithProbes).probes === undefined && run.samples.length > 0) {
    // Without the probes' kinds nothing is known to be an HTTP request: saying "0 failed" would pass a check never made.
    out.push({ name: "failed-requests", passed: false, message: `failed requests unknown: the run record does not say which probes are HTTP (max ${c.maxFailedRequests})`, limit: c.maxFailedRequests });
  } else if (c.maxFailedRequests !== undefined && failed > c.maxFailedRequests) {
    out.push({ name: "failed-requests", passed: false, message: `${plural(failed, "failed request", "failed requests")} (max ${c.maxFailedRequests})`, value: failed, limit: c.maxFailedRequests });
  } else {
    const bound = c.maxFailedRequests === undefined ? "no limit" : `max ${c.maxFailedRequests}`;
    out.push({ name: "failed-requests", passed: true, message: `${plural(failed, "failed request", "failed requests")} of ${f.requests.sent} (${bound})`, value: failed, ...(c.maxFailedRequests === undefined ? {} : { limit: c.maxFailedRequests }) });
  }

  const missing = run.watchGaps.missing.length;
  const twice = run.watchGaps.duplicated.length;
  const gapLine = `watch gap: ${plural(missing, "event", "events")} missing, ${twice} seen twice (max ${c.maxWatchGaps})`;
  out.push({ name: "watch-gaps", passed: f.watchGaps <= c.maxWatchGaps, message: f.watchGaps <= c.maxWatchGaps ? gapLine.replace(/^watch gap: /, "watch: ") : gapLine, value: f.watchGaps, limit: c.maxWatchGaps });

  // A fault that did not go in (or did not come out) makes the run say nothing about the hypothesis.
  for (const fault of run.faults) {
    if (fault.error) out.push({ name: "faults", passed: false, message: `fault ${fault.name}: ${fault.error}` });
  }

  out.push(run.aborted ? { name: "completed", passed: false, message: `aborted: ${run.aborted}` } : { name: "completed", passed: true, message: "ran to the end" });
  return out;
}

/** The figures of a run and whether it passed (see RunFigures). */
export function computeFigures(run: RunRecord): RunFigures {
  const { first, last } = faultWindow(run.faults);

  const detected = detection(run);
  const timeToDetectMs = detected && first !== undefined ? detected.t - first : undefined;

  const recovered = run.steadyStateRecoveredAt;
  const timeToRecoverMs = recovered !== undefined && last !== undefined ? Math.max(0, recovered - last) : undefined;
  const outageMs = recovered !== undefined && first !== undefined ? Math.max(0, recovered - first) : undefined;

  const kinds = probeKinds(run);
  const http = run.samples.filter((s) => kinds.get(s.probe) === "http");
  const api = run.samples.filter((s) => kinds.get(s.probe) === "api");
  const apiLatency = sortedLatencies(api);

  const partial: Omit<RunFigures, "passed" | "failures"> = {
    ...(timeToDetectMs === undefined ? {} : { timeToDetectMs }),
    ...(timeToRecoverMs === undefined ? {} : { timeToRecoverMs }),
    ...(outageMs === undefined ? {} : { outageMs }),
    requests: { sent: http.length, failed: http.filter((s) => !s.ok).length },
    api: {
      sent: api.length,
      errors: api.filter((s) => !s.ok).length,
      ...(apiLatency.length === 0 ? {} : { p50Ms: micros(percentile(apiLatency, 50)), p99Ms: micros(percentile(apiLatency, 99)), maxMs: micros(apiLatency[apiLatency.length - 1]) }),
    },
    objectsLost: run.journal.lost.length,
    watchGaps: run.watchGaps.missing.length + run.watchGaps.duplicated.length,
  };
  const failures = evaluateChecks(run, partial)
    .filter((c) => !c.passed)
    .map((c) => c.message);
  return { ...partial, passed: failures.length === 0, failures };
}

/** Per probe, in the experiment's order (then any probe the record does not describe): samples sent and failed, latency p50/p99. */
export function probeSummaries(run: RunRecord): ProbeSummary[] {
  const kinds = probeKinds(run);
  const byProbe = new Map<string, ProbeSample[]>();
  for (const p of (run as RunWithProbes).probes ?? []) byProbe.set(p.name, []);
  for (const s of run.samples) {
    const list = byProbe.get(s.probe);
    if (list) list.push(s);
    else byProbe.set(s.probe, [s]);
  }
  return [...byProbe].map(([name, samples]) => {
    const lat = sortedLatencies(samples);
    const p50Ms = micros(percentile(lat, 50));
    const p99Ms = micros(percentile(lat, 99));
    return {
      name,
      kind: kinds.get(name) ?? "unknown",
      sent: samples.length,
      failed: samples.filter((s) => !s.ok).length,
      ...(p50Ms === undefined ? {} : { p50Ms }),
      ...(p99Ms === undefined ? {} : { p99Ms }),
    };
  });
}

// ---- renderings ---------------------------------------------------------------------------------

/** The JSON report object (write it with JSON.stringify). */
export function reportJSON(run: RunRecord, figures: RunFigures): ChaosReport {
  const detected = figures.timeToDetectMs === undefined ? undefined : detection(run);
  return {
    apiVersion: REPORT_API_VERSION,
    kind: REPORT_KIND,
    experiment: run.experiment,
    description: run.description,
    source: run.source,
    startedAt: run.startedAt,
    durationMs: run.durationMs,
    passed: figures.passed,
    ...(run.aborted ? { aborted: run.aborted } : {}),
    ...(run.steadyStateRecoveredAt === undefined ? {} : { steadyStateRecoveredAt: run.steadyStateRecoveredAt }),
    ...(detected ? { detectedBy: detected.by } : {}),
    figures,
    faults: run.faults,
    timeline: [...run.timeline].sort((a, b) => a.t - b.t),
    probes: probeSummaries(run),
    journal: run.journal,
    watchGaps: run.watchGaps,
    checks: evaluateChecks(run, figures),
  };
}

/** A Markdown table cell: one line, pipes escaped. */
const cell = (s: string): string => s.replace(/\r?\n/g, " ").replace(/\|/g, "\\|");

const pctOf = (part: number, whole: number): string => (whole === 0 ? "-" : `${((100 * part) / whole).toFixed(1)} %`);

/** A fault's duration: reverted − injected; "instant" for kill, restart, lease-expire (the runner sets revertedAt = injectedAt, or leaves it out). */
const faultFor = (f: FaultRecord): string => (f.revertedAt === undefined || f.revertedAt === f.injectedAt ? "instant" : secs(f.revertedAt - f.injectedAt));

/** The Markdown summary (report.md); the chart is timeline.svg beside it. */
export function reportMarkdown(run: RunRecord, figures: RunFigures): string {
  const L: string[] = [];
  L.push(`# Chaos report: ${run.experiment}`, "");
  L.push(`**${figures.passed ? "PASSED" : "FAILED"}**${figures.passed ? "" : ` — ${figures.failures.length} ${figures.failures.length === 1 ? "check" : "checks"} failed`}`, "");
  if (run.description) L.push(run.description.trim(), "");
  L.push(`Started ${run.startedAt}, ran ${secs(run.durationMs)}; experiment \`${run.source}\`.`, "");
  if (run.aborted) L.push(`> Aborted: ${run.aborted}`, "");
  L.push("![timeline](timeline.svg)", "");

  const dash = (ms: number | undefined, none: string): string => (ms === undefined ? none : secs(ms));
  L.push("## Figures", "", "| Figure | Value |", "| --- | --- |");
  const detected = detection(run);
  L.push(`| Time to detect | ${dash(figures.timeToDetectMs, "not detected")}${detected && figures.timeToDetectMs !== undefined ? ` (${cell(detected.by)})` : ""} |`);
  L.push(`| Time to recover | ${dash(figures.timeToRecoverMs, "not recovered")} |`);
  L.push(`| Outage (first fault → steady state) | ${dash(figures.outageMs, "not recovered")} |`);
  L.push(`| HTTP requests sent / failed | ${figures.requests.sent} / ${figures.requests.failed} (${pctOf(figures.requests.failed, figures.requests.sent)}) |`);
  L.push(`| API requests sent / errors | ${figures.api.sent} / ${figures.api.errors} (${pctOf(figures.api.errors, figures.api.sent)}) |`);
  L.push(`| API latency p50 / p99 / max | ${millis(figures.api.p50Ms)} / ${millis(figures.api.p99Ms)} / ${millis(figures.api.maxMs)} |`);
  L.push(`| Objects written / lost / uncertain | ${run.journal.written} / ${figures.objectsLost} / ${run.journal.uncertain} |`);
  L.push(`| Watch events expected / missing / seen twice | ${run.watchGaps.expected} / ${run.watchGaps.missing.length} / ${run.watchGaps.duplicated.length} |`);
  L.push("");

  L.push("## Checks", "");
  for (const c of evaluateChecks(run, figures)) L.push(`- ${c.passed ? "✓" : "✗"} ${c.message}`);
  L.push("");

  L.push("## Faults", "");
  if (run.faults.length === 0) L.push("No fault was injected.");
  else {
    L.push("| Fault | Kind | Target (resolved) | Injected | For | Error |", "| --- | --- | --- | --- | --- | --- |");
    for (const f of run.faults) L.push(`| ${cell(f.name)} | ${f.kind} | ${cell(f.resolved)} | ${offset(f.injectedAt)} | ${faultFor(f)} | ${cell(f.error ?? "")} |`);
  }
  L.push("");

  L.push("## Probes", "");
  const probes = probeSummaries(run);
  if (probes.length === 0) L.push("No probe sample was recorded.");
  else {
    L.push("| Probe | Kind | Sent | Failed | Success | p50 | p99 |", "| --- | --- | --- | --- | --- | --- | --- |");
    for (const p of probes) L.push(`| ${cell(p.name)} | ${p.kind} | ${p.sent} | ${p.failed} | ${pctOf(p.sent - p.failed, p.sent)} | ${millis(p.p50Ms)} | ${millis(p.p99Ms)} |`);
  }
  L.push("");

  L.push("## Timeline", "");
  const events = [...run.timeline].sort((a, b) => a.t - b.t);
  if (events.length === 0) L.push("No event was recorded.");
  else {
    L.push("```");
    const width = Math.max(...events.slice(0, MARKDOWN_TIMELINE_LINES).map((e) => e.kind.length));
    for (const e of events.slice(0, MARKDOWN_TIMELINE_LINES)) L.push(`${offset(e.t).padStart(8)}  ${e.kind.padEnd(width)}  ${e.message.replace(/\r?\n/g, " ")}`);
    L.push("```");
    if (events.length > MARKDOWN_TIMELINE_LINES) L.push("", `… and ${events.length - MARKDOWN_TIMELINE_LINES} more events in report.json.`);
  }
  L.push("");
  return L.join("\n");
}

/** The one-screen terminal summary printed at the end of `kubelab chaos run` (at most 20 lines). */
export function summaryLines(run: RunRecord, figures: RunFigures): string[] {
  const L: string[] = [];
  L.push(`chaos ${run.experiment}: ${figures.passed ? "PASSED" : "FAILED"} after ${secs(run.durationMs)}`);
  const dash = (ms: number | undefined, none: string): string => (ms === undefined ? none : secs(ms));
  const detected = figures.timeToDetectMs === undefined ? undefined : detection(run);
  const sign = detected ? `   first sign: ${detected.by.length > 60 ? `${detected.by.slice(0, 59)}…` : detected.by}` : "";
  L.push(`  detect ${dash(figures.timeToDetectMs, "-")}   recover ${dash(figures.timeToRecoverMs, "-")}   outage ${dash(figures.outageMs, "-")}${sign}`);
  L.push(`  HTTP    ${figures.requests.sent} sent, ${figures.requests.failed} failed (${pctOf(figures.requests.failed, figures.requests.sent)})`);
  L.push(`  API     ${figures.api.sent} sent, ${figures.api.errors} errors; p50 ${millis(figures.api.p50Ms)} p99 ${millis(figures.api.p99Ms)} max ${millis(figures.api.maxMs)}`);
  L.push(`  objects ${run.journal.written} written, ${figures.objectsLost} lost, ${run.journal.uncertain} uncertain; watch gaps ${figures.watchGaps}`);

  const checks = evaluateChecks(run, figures);
  // Faults get what the checks leave of the 20 lines, with one for "and N more".
  const room = 20 - L.length - 1 - checks.length;
  if (run.faults.length > 0) {
    L.push("  faults:");
    const shown = run.faults.length <= room ? run.faults : run.faults.slice(0, Math.max(0, room - 1));
    for (const f of shown) L.push(`    ${offset(f.injectedAt)} ${f.name}${f.resolved ? ` → ${f.resolved}` : ""}, ${faultFor(f)}${f.error ? ` — ${f.error}` : ""}`);
    if (shown.length < run.faults.length) L.push(`    … and ${run.faults.length - shown.length} more`);
  }
  for (const c of checks) L.push(`  ${c.passed ? "✓" : "✗"} ${c.message}`);
  return L.slice(0, 20);
}

/**
 * Writes report.json, report.md and timeline.svg into dir (created if missing) and returns their
 * paths and the figures. The runner calls it once at the end, also for an aborted run.
 */
export function writeReport(dir: string, run: RunRecord): { json: string; markdown: string; svg: string; figures: RunFigures } {
  const figures = computeFigures(run);
  mkdirSync(dir, { recursive: true });
  const json = join(dir, "report.json");
  const markdown = join(dir, "report.md");
  const svg = join(dir, "timeline.svg");
  writeFileSync(json, JSON.stringify(reportJSON(run, figures), null, 2) + "\n");
  writeFileSync(markdown, reportMarkdown(run, figures));
  writeFileSync(svg, timelineSVG(run, figures));
  return { json, markdown, svg, figures };
}
