// The chaos run's timeline chart (timeline.svg): faults as shaded bands, the probes' success rate
// and p99 latency per second as two lines on their own axes, timeline events as coloured ticks with
// short labels, and a legend. Self-contained — no fonts, scripts or links to fetch — so it opens
// from the data dir in a browser or an image viewer; Chaos Mesh's and Litmus's dashboards show the
// same picture from a live cluster. A pure function of the RunRecord.

import type { FaultRecord, ProbeSample, RunFigures, RunMs, RunRecord, TimelineKind } from "./types.ts";

const W = 900;
const H = 360;
const ML = 56; // left: the success-rate axis
const MR = 60; // right: the latency axis
const PT = 44; // plot top (title and legend above)
const PB = 236; // plot bottom (time axis, event strip and kinds legend below)
const EVENT_ROWS = 4;
const EVENT_LABEL_CHARS = 20;
const FAULT_LABEL_CHARS = 40;

/** Colour of each timeline kind (marks and legend). */
export const KIND_COLOURS: Record<TimelineKind, string> = {
  fault: "#c1121f",
  revert: "#2a9d8f",
  node: "#e76f51",
  leader: "#6a4c93",
  eviction: "#f77f00",
  reschedule: "#1982c4",
  endpoints: "#4d7c0f",
  component: "#6c757d",
  "steady-state": "#2b9348",
  note: "#9ca3af",
};

const SUCCESS_COLOUR = "#1d4ed8";
const LATENCY_COLOUR = "#d97706";
const BAND_COLOUR = "#f4a261";
const RECOVERED_COLOUR = "#2b9348";

/** Text for XML: the five entities escaped, characters XML 1.0 forbids dropped. */
export function escapeXML(s: string): string {
  return s
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

const clip = (s: string, n: number): string => (s.length <= n ? s : `${s.slice(0, n - 1)}…`);
const num = (v: number): string => String(Math.round(v * 10) / 10);

/** A latency axis label: 1ms, 100ms, 1s, 10s. */
const msLabel = (ms: number): string => (ms >= 1000 ? `${ms / 1000}s` : `${ms}ms`);

/** Nearest-rank p-th percentile of an ascending, non-empty list (as report.ts computes it). */
const rank = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length - 1e-9) - 1))];

export interface SecondBucket {
  /** Centre of the second, in run time. */
  t: RunMs;
  successPct: number;
  p99Ms?: number;
}

/** The samples bucketed by second of run time: success rate and p99 latency of each second that has samples. */
export function perSecond(samples: readonly ProbeSample[]): SecondBucket[] {
  const buckets = new Map<number, ProbeSample[]>();
  for (const s of samples) {
    const b = Math.floor(s.t / 1000);
    const list = buckets.get(b);
    if (list) list.push(s);
    else buckets.set(b, [s]);
  }
  return [...buckets]
    .sort(([a], [b]) => a - b)
    .map(([b, list]) => {
      const lat = list.flatMap((s) => (s.latencyMs === undefined ? [] : [s.latencyMs])).sort((x, y) => x - y);
      return { t: b * 1000 + 500, successPct: (100 * list.filter((s) => s.ok).length) / list.length, ...(lat.length ? { p99Ms: rank(lat, 99) } : {}) };
    });
}

/** An SVG path through points, broken where consecutive points are more than a second apart (no samples). */
function path(points: readonly { t: RunMs; x: number; y: number }[]): string {
  let d = "";
  let prev: RunMs | undefined;
  for (const p of points) {
    const jump = prev === undefined || p.t - prev > 1000;
    d += jump ? `${d ? " " : ""}M${num(p.x)} ${num(p.y)}` : ` L${num(p.x)} ${num(p.y)}`;
    prev = p.t;
  }
  return d;
}

const faultTitle = (f: FaultRecord): string =>
  `${f.name} (${f.kind}) on ${f.resolved}: ${(f.injectedAt / 1000).toFixed(1)}s` + (f.revertedAt === undefined || f.revertedAt === f.injectedAt ? " (instant)" : ` → ${(f.revertedAt / 1000).toFixed(1)}s`) + (f.error ? ` — ${f.error}` : "");

/** The timeline chart of a run as a standalone SVG document (~900×360). */
export function timelineSVG(run: RunRecord, figures: RunFigures): string {
  // The time axis covers t = 0 to the end of the run and anything recorded outside it (warm-up samples).
  // Loops, not Math.min(...): an hour of samples is more arguments than a call takes.
  let t0 = 0;
  let t1 = run.durationMs;
  const cover = (t: RunMs): void => {
    if (t < t0) t0 = t;
    if (t > t1) t1 = t;
  };
  for (const s of run.samples) cover(s.t);
  for (const e of run.timeline) cover(e.t);
  for (const f of run.faults) cover(f.revertedAt ?? f.injectedAt), cover(f.injectedAt);
  if (run.steadyStateRecoveredAt !== undefined) cover(run.steadyStateRecoveredAt);
  t1 = Math.max(t1, t0 + 1000);
  const x = (t: RunMs): number => ML + ((t - t0) / (t1 - t0)) * (W - ML - MR);

  const seconds = perSecond(run.samples);
  const maxLatency = seconds.reduce((m, s) => Math.max(m, s.p99Ms ?? 0), 0);
  // Log scale, 1 ms to the decade above the slowest second: a 2 s timeout and a 4 ms GET both stay readable.
  const decades = Math.max(1, Math.ceil(Math.log10(Math.max(1, maxLatency)) - 1e-9));
  const ySuccess = (pct: number): number => PB - (pct / 100) * (PB - PT);
  const yLatency = (ms: number): number => PB - (Math.min(decades, Math.log10(Math.max(1, ms))) / decades) * (PB - PT);

  const o: string[] = [];
  o.push(`<?xml version="1.0" encoding="UTF-8"?>`);
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="10">`);
  o.push(`<title>${escapeXML(`Chaos run ${run.experiment}: ${figures.passed ? "passed" : "failed"}`)}</title>`);
  o.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  o.push(`<text x="${ML}" y="16" font-size="13" font-weight="bold">${escapeXML(`${run.experiment} — ${figures.passed ? "PASSED" : "FAILED"}`)}</text>`);
  o.push(`<text x="${W - MR}" y="16" text-anchor="end" fill="#555555">${escapeXML(run.startedAt)}</text>`);

  // Legend for the plot.
  let lx = ML;
  const legend = (mark: string, label: string): void => {
    o.push(`<g transform="translate(${num(lx)} 32)">${mark}<text x="22" y="4">${escapeXML(label)}</text></g>`);
    lx += 30 + label.length * 5.6;
  };
  legend(`<rect x="0" y="-5" width="16" height="10" fill="${BAND_COLOUR}" fill-opacity="0.35"/>`, "fault");
  legend(`<line x1="0" y1="0" x2="16" y2="0" stroke="${SUCCESS_COLOUR}" stroke-width="2"/>`, "probe success % (left)");
  legend(`<line x1="0" y1="0" x2="16" y2="0" stroke="${LATENCY_COLOUR}" stroke-width="2"/>`, "latency p99 (right, log)");
  legend(`<line x1="0" y1="-5" x2="0" y2="5" stroke="${RECOVERED_COLOUR}" stroke-width="1.5" stroke-dasharray="3 2" transform="translate(8 0)"/>`, "steady state recovered");

  // Grid and axes.
  o.push(`<g stroke="#e5e7eb" stroke-width="1">`);
  for (const pct of [0, 25, 50, 75, 100]) o.push(`<line x1="${ML}" y1="${num(ySuccess(pct))}" x2="${W - MR}" y2="${num(ySuccess(pct))}"/>`);
  o.push(`</g>`);
  const span = (t1 - t0) / 1000;
  const step = [1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600].find((s) => span / s <= 12) ?? Math.ceil(span / 12 / 3600) * 3600;
  o.push(`<g fill="#374151">`);
  for (let s = Math.ceil(t0 / 1000 / step) * step; s * 1000 <= t1; s += step) {
    const tx = num(x(s * 1000));
    o.push(`<line x1="${tx}" y1="${PB}" x2="${tx}" y2="${PB + 4}" stroke="#374151"/><text x="${tx}" y="${PB + 14}" text-anchor="middle">${s}s</text>`);
  }
  for (const pct of [0, 25, 50, 75, 100]) o.push(`<text x="${ML - 6}" y="${num(ySuccess(pct) + 3)}" text-anchor="end">${pct}%</text>`);
  for (let d = 0; d <= decades; d++) o.push(`<text x="${W - MR + 6}" y="${num(yLatency(10 ** d) + 3)}">${msLabel(10 ** d)}</text>`);
  o.push(`</g>`);
  o.push(`<text transform="translate(14 ${(PT + PB) / 2}) rotate(-90)" text-anchor="middle" fill="${SUCCESS_COLOUR}">success %</text>`);
  o.push(`<text transform="translate(${W - 10} ${(PT + PB) / 2}) rotate(90)" text-anchor="middle" fill="${LATENCY_COLOUR}">p99 latency (log)</text>`);
  o.push(`<rect x="${ML}" y="${PT}" width="${W - ML - MR}" height="${PB - PT}" fill="none" stroke="#9ca3af"/>`);

  // Faults as bands, labels staggered over three rows so neighbouring faults stay readable.
  run.faults.forEach((f, i) => {
    const bx = x(f.injectedAt);
    const bw = Math.max(2, x(f.revertedAt ?? f.injectedAt) - bx);
    o.push(`<g><title>${escapeXML(faultTitle(f))}</title>`);
    o.push(`<rect x="${num(bx)}" y="${PT}" width="${num(bw)}" height="${PB - PT}" fill="${f.error ? "#9ca3af" : BAND_COLOUR}" fill-opacity="0.35"/>`);
    o.push(`<text x="${num(bx + 3)}" y="${PT + 12 + (i % 3) * 12}" fill="#7c2d12">${escapeXML(clip(f.name, FAULT_LABEL_CHARS))}</text></g>`);
  });

  // Probe lines.
  if (seconds.length === 0) {
    o.push(`<text x="${(ML + W - MR) / 2}" y="${(PT + PB) / 2}" text-anchor="middle" fill="#6b7280">no probe samples</text>`);
  } else {
    const success = seconds.map((s) => ({ t: s.t, x: x(s.t), y: ySuccess(s.successPct) }));
    const latency = seconds.flatMap((s) => (s.p99Ms === undefined ? [] : [{ t: s.t, x: x(s.t), y: yLatency(s.p99Ms) }]));
    o.push(`<path d="${path(success)}" fill="none" stroke="${SUCCESS_COLOUR}" stroke-width="1.8" stroke-linejoin="round" stroke-linecap="round"/>`);
    if (latency.length) o.push(`<path d="${path(latency)}" fill="none" stroke="${LATENCY_COLOUR}" stroke-width="1.4" stroke-linejoin="round" stroke-linecap="round"/>`);
  }

  if (run.steadyStateRecoveredAt !== undefined) {
    const rx = num(x(run.steadyStateRecoveredAt));
    o.push(`<line x1="${rx}" y1="${PT}" x2="${rx}" y2="${PB}" stroke="${RECOVERED_COLOUR}" stroke-width="1.5" stroke-dasharray="4 3"/>`);
    o.push(`<text x="${rx}" y="${PT - 3}" text-anchor="middle" fill="${RECOVERED_COLOUR}">recovered</text>`);
  }

  // Events: a tick each under the time axis (its full message as a tooltip), labelled where a row has room.
  const events = [...run.timeline].sort((a, b) => a.t - b.t);
  const rowEnd: number[] = Array.from({ length: EVENT_ROWS }, () => -Infinity);
  for (const e of events) {
    const ex = x(e.t);
    const colour = KIND_COLOURS[e.kind] ?? "#000000";
    const label = clip(e.subject ?? e.message, EVENT_LABEL_CHARS);
    const row = rowEnd.findIndex((end) => ex >= end + 4);
    o.push(`<g><title>${escapeXML(`${(e.t / 1000).toFixed(1)}s ${e.kind}: ${e.message}`)}</title>`);
    o.push(`<line x1="${num(ex)}" y1="${PB + 20}" x2="${num(ex)}" y2="${PB + 30}" stroke="${colour}" stroke-width="1.5"/>`);
    if (row >= 0 && ex + label.length * 5.5 <= W) {
      rowEnd[row] = ex + label.length * 5.5;
      o.push(`<text x="${num(ex)}" y="${PB + 42 + row * 11}" font-size="9" fill="${colour}">${escapeXML(label)}</text>`);
    }
    o.push(`</g>`);
  }

  // Legend of the event kinds present.
  const kinds = [...new Set(events.map((e) => e.kind))];
  let kx = ML;
  for (const k of kinds) {
    o.push(`<rect x="${num(kx)}" y="${H - 18}" width="8" height="8" fill="${KIND_COLOURS[k] ?? "#000000"}"/><text x="${num(kx + 11)}" y="${H - 10}">${escapeXML(k)}</text>`);
    kx += 22 + k.length * 5.6;
  }
  o.push(`</svg>`);
  return o.join("\n") + "\n";
}
