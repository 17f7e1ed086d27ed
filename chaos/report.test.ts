import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import { computeFigures, detection, millis, offset, percentile, probeKinds, secs, reportJSON, reportMarkdown, summaryLines, writeReport, type ProbeRef } from "./report.ts";
import { escapeXML, perSecond, timelineSVG } from "./svg.ts";
import type { Checks, FaultRecord, ProbeSample, RunRecord, TimelineEvent } from "./types.ts";

const SCHEMA = JSON.parse(readFileSync(new URL("../docs/chaos-report.schema.json", import.meta.url), "utf8")) as object;

const CHECKS: Checks = { recoverWithinMs: 120_000, maxObjectsLost: 0, maxWatchGaps: 0 };
const PROBES: ProbeRef[] = [
  { name: "ingress", kind: "http" },
  { name: "api", kind: "api" },
  { name: "web-available", kind: "object" },
];

/** A run as the runner hands it over; `probes` is the experiment's steadyState (name and kind). */
function run(over: Partial<RunRecord> & { probes?: ProbeRef[] } = {}): RunRecord {
  return {
    experiment: "zone-outage",
    description: "Take zone local-1a down for 30 s.",
    source: "deploy/experiments/zone-outage.yaml",
    startedAt: "2026-12-03T06:00:00.000Z",
    durationMs: 60_000,
    faults: [],
    samples: [],
    timeline: [],
    journal: { written: 300, lost: [], uncertain: 0, failedWrites: 0 },
    watchGaps: { expected: 300, seen: 300, missing: [], duplicated: [], rewatches: 0 },
    checks: CHECKS,
    probes: PROBES,
    ...over,
  } as RunRecord;
}

/** `n` samples of one probe, one every `every` ms from `from`; `ok(i)` says which pass. */
function samples(probe: string, from: number, n: number, every: number, ok: (i: number) => boolean = () => true, latency: (i: number) => number = () => 5): ProbeSample[] {
  return Array.from({ length: n }, (_, i) => ({ probe, t: from + i * every, ok: ok(i), latencyMs: latency(i) }));
}

const pause = (over: Partial<FaultRecord> = {}): FaultRecord => ({ name: "zone local-1a down", kind: "zone-outage", resolved: "9 processes in local-1a", injectedAt: 5_000, revertedAt: 35_000, ...over });

/** A run that passes: a 30 s zone outage, noticed and healed. */
function healed(): RunRecord {
  return run({
    faults: [pause()],
    samples: [
      ...samples("ingress", -5_000, 100, 500, (i) => !(i >= 25 && i < 30)), // fails from +7.5s to +9.5s
      ...samples("api", -5_000, 100, 500, () => true, (i) => i + 1),
    ],
    timeline: [
      { t: 1_000, kind: "note", message: "warm-up done" },
      { t: 5_000, kind: "fault", message: "zone-outage local-1a", subject: "local-1a" },
      { t: 6_500, kind: "node", message: "node general-local-1a-0 Ready=Unknown", subject: "general-local-1a-0" },
      { t: 35_000, kind: "revert", message: "zone local-1a back", subject: "local-1a" },
      { t: 41_000, kind: "steady-state", message: "steady state holds again" },
    ],
    steadyStateRecoveredAt: 41_000,
  });
}

describe("computeFigures", () => {
  it("measures detection from the first fault to the earliest failed sample or node/leader/endpoints/eviction event after it", () => {
    const f = computeFigures(healed());
    expect(f.timeToDetectMs).toBe(1_500); // the node event at +6.5s, before the first failed request at +7.5s
    expect(f.timeToRecoverMs).toBe(6_000); // revert at +35s → recovered at +41s
    expect(f.outageMs).toBe(36_000);
    expect(f.passed).toBe(true);
    expect(f.failures).toEqual([]);
  });

  it("ignores failures and events before the fault and kinds that do not mean detection", () => {
    const r = run({
      faults: [pause()],
      samples: [{ probe: "ingress", t: 2_000, ok: false }, ...samples("ingress", 5_000, 10, 1_000, (i) => i !== 7)],
      timeline: [
        { t: 3_000, kind: "leader", message: "kube-scheduler: scheduler-1 → scheduler-2" },
        { t: 5_500, kind: "component", message: "etcd-local-1a exited" },
        { t: 6_000, kind: "reschedule", message: "pod web-1 on general-local-1b-0" },
      ],
      steadyStateRecoveredAt: 40_000,
    });
    const f = computeFigures(r);
    expect(f.timeToDetectMs).toBe(7_000); // the failed sample at +12s; component/reschedule events do not count
    expect(detection(r)).toEqual({ t: 12_000, by: "probe ingress failed" });
  });

  it("names what detected the fault; an event and a failed sample at the same moment: the event, which says more", () => {
    const r = run({
      faults: [pause()],
      samples: [{ probe: "ingress", t: 6_000, ok: false, error: "ECONNRESET" }],
      timeline: [{ t: 6_000, kind: "endpoints", message: "service web ready endpoints 6 -> 4" }],
    });
    expect(detection(r)).toEqual({ t: 6_000, by: "service web ready endpoints 6 -> 4" });
    expect(detection({ ...r, timeline: [] })).toEqual({ t: 6_000, by: "probe ingress failed: ECONNRESET" });
    expect(detection({ ...r, faults: [] })).toBeUndefined();
  });

  it("takes an instant fault's injection as its end, and the last fault's end for time to recover", () => {
    const f = computeFigures(
      run({
        faults: [
          { name: "kill scheduler leader", kind: "kill", resolved: "scheduler-1 (pid 4242)", injectedAt: 5_000 },
          { name: "pause kubelet", kind: "pause", resolved: "kubelet-local-1b", injectedAt: 8_000, revertedAt: 12_000 },
          { name: "kill apiserver", kind: "kill", resolved: "apiserver-2 (pid 4343)", injectedAt: 20_000 },
        ],
        timeline: [{ t: 9_000, kind: "leader", message: "kube-scheduler: scheduler-2" }],
        steadyStateRecoveredAt: 26_500,
      }),
    );
    expect(f.timeToDetectMs).toBe(4_000);
    expect(f.timeToRecoverMs).toBe(6_500);
    expect(f.outageMs).toBe(21_500);
  });

  it("leaves detection undefined when nothing noticed the fault, and recovery undefined when it never came", () => {
    const f = computeFigures(run({ faults: [pause()], samples: samples("ingress", 0, 20, 1_000) }));
    expect(f.timeToDetectMs).toBeUndefined();
    expect(f.timeToRecoverMs).toBeUndefined();
    expect(f.outageMs).toBeUndefined();
    expect(f.passed).toBe(false);
    expect(f.failures).toEqual(["steady state not recovered within 120s"]);
  });

  it("says one line per failed check, in the words the report uses", () => {
    const f = computeFigures(
      run({
        faults: [pause({ error: "revert: zone local-1a: control socket refused" })],
        samples: samples("ingress", 5_000, 40, 100, (i) => i >= 17),
        journal: { written: 300, lost: ["journal-0042", "journal-0043"], uncertain: 1, failedWrites: 4 },
        watchGaps: { expected: 300, seen: 299, missing: ["journal-0042"], duplicated: [], rewatches: 2 },
        checks: { ...CHECKS, recoverWithinMs: 90_000, maxFailedRequests: 5 },
        aborted: "interrupted (SIGINT)",
      }),
    );
    expect(f.passed).toBe(false);
    expect(f.failures).toEqual([
      "steady state not recovered within 90s",
      "2 objects lost (max 0): journal-0042, journal-0043",
      "17 failed requests (max 5)",
      "watch gap: 1 event missing, 0 seen twice (max 0)",
      "fault zone local-1a down: revert: zone local-1a: control socket refused",
      "aborted: interrupted (SIGINT)",
    ]);
    expect(f.requests).toEqual({ sent: 40, failed: 17 });
    expect(f.objectsLost).toBe(2);
    expect(f.watchGaps).toBe(1);
  });

  it("passes checks at their bounds, fails one over, and fails a recovery slower than recoverWithin", () => {
    const atBounds = run({
      faults: [pause()],
      samples: samples("ingress", 5_000, 10, 100, (i) => i >= 5),
      journal: { written: 10, lost: ["journal-0001"], uncertain: 0, failedWrites: 0 },
      watchGaps: { expected: 10, seen: 11, missing: [], duplicated: ["journal-0003"], rewatches: 1 },
      checks: { recoverWithinMs: 10_000, maxObjectsLost: 1, maxFailedRequests: 5, maxWatchGaps: 1 },
      steadyStateRecoveredAt: 45_000,
    });
    expect(computeFigures(atBounds).failures).toEqual([]);
    const over = { ...atBounds, checks: { recoverWithinMs: 8_000, maxObjectsLost: 0, maxFailedRequests: 4, maxWatchGaps: 0 } };
    expect(computeFigures(over).failures).toEqual([
      "steady state recovered only after 10s (max 8s)",
      "1 object lost (max 0): journal-0001",
      "5 failed requests (max 4)",
      "watch gap: 0 events missing, 1 seen twice (max 0)",
    ]);
  });

  it("does not pass a failed-requests bound it cannot check: a record without its probes' kinds", () => {
    const r = run({ probes: undefined, samples: samples("ingress", 0, 10, 100, () => false), checks: { ...CHECKS, maxFailedRequests: 0 }, steadyStateRecoveredAt: 0 });
    delete (r as { probes?: unknown }).probes;
    expect(computeFigures(r).failures).toEqual(["failed requests unknown: the run record does not say which probes are HTTP (max 0)"]);
    expect(computeFigures({ ...r, checks: CHECKS }).failures).toEqual([]); // reported only: nothing to fail
  });

  it("lists at most ten lost objects", () => {
    const lost = Array.from({ length: 13 }, (_, i) => `journal-${String(i).padStart(4, "0")}`);
    const f = computeFigures(run({ journal: { written: 13, lost, uncertain: 0, failedWrites: 0 }, steadyStateRecoveredAt: 0 }));
    expect(f.failures).toEqual([`13 objects lost (max 0): ${lost.slice(0, 10).join(", ")}, and 3 more`]);
  });

  it("counts HTTP and API samples by their probe's kind, with nearest-rank latency percentiles", () => {
    const r = run({
      samples: [
        ...samples("api", 0, 100, 10, (i) => i % 25 !== 0, (i) => 100 - i), // latencies 100..1, 4 errors
        ...samples("ingress", 0, 30, 10, (i) => i !== 3, () => 2_000),
        ...samples("web-available", 0, 10, 100, () => false), // an object probe: neither HTTP nor API
        ...samples("unlisted", 0, 10, 100, () => false),
      ],
      steadyStateRecoveredAt: 0,
    });
    const f = computeFigures(r);
    expect(f.api).toEqual({ sent: 100, errors: 4, p50Ms: 50, p99Ms: 99, maxMs: 100 });
    expect(f.requests).toEqual({ sent: 30, failed: 1 });
    expect(probeKinds(r).get("unlisted")).toBeUndefined();
  });

  it("reports no API latency when there were no API samples", () => {
    expect(computeFigures(run()).api).toEqual({ sent: 0, errors: 0 });
  });
});

describe("formatting", () => {
  it("gives durations, offsets and latencies in a person's units", () => {
    expect([secs(120_000), secs(12_345), secs(850), secs(0), secs(61_000)]).toEqual(["120s", "12.3s", "850ms", "0s", "61s"]);
    expect([offset(12_345), offset(-2_000), offset(0)]).toEqual(["+12.3s", "-2.0s", "+0.0s"]);
    expect([millis(4.25), millis(250.4), millis(1_250), millis(undefined)]).toEqual(["4.3ms", "250ms", "1.25s", "-"]);
  });
});

describe("percentile", () => {
  it("is the nearest rank of an ascending list", () => {
    expect(percentile([], 50)).toBeUndefined();
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([1, 2, 3, 4], 75)).toBe(3);
    expect(percentile([1, 2, 3, 4], 100)).toBe(4);
    expect(percentile([1, 2, 3, 4], 0)).toBe(1);
    const thousand = Array.from({ length: 1000 }, (_, i) => i + 1);
    expect(percentile(thousand, 99)).toBe(990);
    expect(percentile(thousand, 99.9)).toBe(999);
  });
});

describe("reportJSON", () => {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  const validate = ajv.compile(SCHEMA);
  const errors = (): string => ajv.errorsText(validate.errors);

  it("validates against docs/chaos-report.schema.json, passing and failing runs alike", () => {
    const good = healed();
    const report = JSON.parse(JSON.stringify(reportJSON(good, computeFigures(good)))) as unknown;
    expect(validate(report), errors()).toBe(true);

    const bad = run({
      faults: [pause({ revertedAt: undefined, error: "inject: no process in zone local-9" })],
      samples: [{ probe: "mystery", t: 1, ok: false, error: "ECONNREFUSED" }],
      journal: { written: 3, lost: ["journal-0001"], uncertain: 2, failedWrites: 1 },
      aborted: "interrupted (SIGINT)",
    });
    const failed = JSON.parse(JSON.stringify(reportJSON(bad, computeFigures(bad)))) as Record<string, unknown>;
    expect(validate(failed), errors()).toBe(true);
    expect(failed).toMatchObject({ apiVersion: "kubelab.io/v1alpha1", kind: "ChaosReport", passed: false, aborted: "interrupted (SIGINT)" });
    expect(failed.probes).toEqual([
      { name: "ingress", kind: "http", sent: 0, failed: 0 },
      { name: "api", kind: "api", sent: 0, failed: 0 },
      { name: "web-available", kind: "object", sent: 0, failed: 0 },
      { name: "mystery", kind: "unknown", sent: 1, failed: 1 },
    ]);
  });

  it("is what the schema describes, not anything that parses: a missing or unknown field is rejected", () => {
    const r = healed();
    const report = JSON.parse(JSON.stringify(reportJSON(r, computeFigures(r)))) as Record<string, unknown>;
    const { figures: _f, ...noFigures } = report;
    expect(validate(noFigures)).toBe(false);
    expect(validate({ ...report, extra: 1 })).toBe(false);
    expect(validate({ ...report, timeline: [{ t: 1, kind: "earthquake", message: "x" }] })).toBe(false);
    expect(validate({ ...report, startedAt: "yesterday" })).toBe(false);
  });

  it("documents every field: each property has a description (or is a constant, or refers to a described definition)", () => {
    type Node = { properties?: Record<string, Node>; $defs?: Record<string, Node>; items?: Node; description?: string; const?: unknown; $ref?: string };
    const root = SCHEMA as Node;
    const undocumented: string[] = [];
    const walk = (n: Node, path: string): void => {
      for (const [k, v] of Object.entries(n.properties ?? {})) {
        const target = v.$ref ? root.$defs?.[v.$ref.replace("#/$defs/", "")] : undefined;
        if (v.description === undefined && v.const === undefined && target?.description === undefined) undocumented.push(`${path}.${k}`);
        walk(v, `${path}.${k}`);
      }
      if (n.items) walk(n.items, `${path}[]`);
    };
    walk(root, "");
    for (const [k, v] of Object.entries(root.$defs ?? {})) walk(v, `$defs.${k}`);
    expect(undocumented).toEqual([]);
  });

  it("carries the figures, the checks with their outcome, and the timeline oldest first", () => {
    const r = healed();
    r.timeline.reverse();
    const report = reportJSON(r, computeFigures(r));
    expect(report.figures.timeToDetectMs).toBe(1_500);
    expect(report.detectedBy).toBe("node general-local-1a-0 Ready=Unknown");
    expect(report.timeline.map((e) => e.t)).toEqual([1_000, 5_000, 6_500, 35_000, 41_000]);
    expect(report.checks.map((c) => [c.name, c.passed])).toEqual([
      ["steady-state-recovered", true],
      ["objects-lost", true],
      ["failed-requests", true],
      ["watch-gaps", true],
      ["completed", true],
    ]);
    expect(report.probes.find((p) => p.name === "ingress")).toEqual({ name: "ingress", kind: "http", sent: 100, failed: 5, p50Ms: 5, p99Ms: 5 });
  });
});

/** Well-formed XML, checked by hand: tags balance, attributes are quoted, text has no bare < or &. */
function xmlProblems(xml: string): string[] {
  const problems: string[] = [];
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, "");
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  let roots = 0;
  for (let m = tag.exec(body); m; m = tag.exec(body)) {
    const text = body.slice(last, m.index);
    if (/[<>]/.test(text)) problems.push(`stray markup before offset ${m.index}: ${JSON.stringify(text.slice(0, 40))}`);
    if (/&(?!(amp|lt|gt|quot|apos);)/.test(text) || /&(?!(amp|lt|gt|quot|apos);)/.test(m[3])) problems.push(`bare & near offset ${m.index}`);
    last = tag.lastIndex;
    const [, close, name, , selfClosing] = m;
    if (close) {
      if (stack.pop() !== name) problems.push(`</${name}> closes nothing open`);
    } else if (!selfClosing) {
      if (stack.length === 0) roots++;
      stack.push(name);
    } else if (stack.length === 0) roots++;
  }
  if (/\S/.test(body.slice(last))) problems.push("text after the root element");
  if (stack.length) problems.push(`unclosed: ${stack.join(", ")}`);
  if (roots !== 1) problems.push(`${roots} root elements`);
  return problems;
}

describe("timelineSVG", () => {
  it("checks what it checks: the XML checker rejects broken documents", () => {
    expect(xmlProblems(`<svg><g></svg>`)).not.toEqual([]);
    expect(xmlProblems(`<svg><text>a < b</text></svg>`)).not.toEqual([]);
    expect(xmlProblems(`<svg><text>R&D</text></svg>`)).not.toEqual([]);
    expect(xmlProblems(`<svg width=900></svg>`)).not.toEqual([]);
    expect(xmlProblems(`<svg/><svg/>`)).not.toEqual([]);
    expect(xmlProblems(`<?xml version="1.0"?>\n<svg a="1"><g/><text>x &amp; y</text></svg>\n`)).toEqual([]);
  });

  it("is one well-formed, self-contained SVG with a band and label per fault", () => {
    const r = healed();
    r.faults.push({ name: "kill <etcd> & \"leader\"", kind: "kill", resolved: "etcd-local-1b (pid 77)", injectedAt: 45_000 });
    r.timeline.push({ t: 46_000, kind: "leader", message: "etcd leader etcd-local-1c", subject: "etcd <local-1c>" });
    const svg = timelineSVG(r, computeFigures(r));
    expect(xmlProblems(svg)).toEqual([]);
    expect(svg).toMatch(/<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="900" height="360" viewBox="0 0 900 360"/);
    expect(svg).toContain(">zone local-1a down</text>");
    expect(svg).toContain(">kill &lt;etcd&gt; &amp; &quot;leader&quot;</text>");
    expect(svg).toContain("etcd &lt;local-1c&gt;");
    expect(svg.match(/<rect [^>]*fill="#f4a261"[^>]*fill-opacity="0.35"/g)?.length).toBe(1 + 2); // two bands and the legend swatch
    // Time runs from the first sample (-5 s) to the end of the run (60 s) over the 784 px of the plot.
    expect(svg).toContain(`<rect x="176.6" y="44" width="361.8" height="192" fill="#f4a261"`); // +5 s → +35 s
    expect(svg).toContain(`<rect x="659.1" y="44" width="2" height="192" fill="#f4a261"`); // the instant kill at +45 s, 2 px wide
    expect(svg).not.toMatch(/<script|<image|href=|@import|url\(/);
    expect(svg).toContain(">recovered</text>");
    // The success-rate line dips to 0 % in the second the ingress probe failed twice and the API probe did not.
    expect(svg).toMatch(/<path d="M[\d. L]+" fill="none" stroke="#1d4ed8"/);
  });

  // An image viewer's view of it: librsvg (Debian's librsvg2-bin, as GNOME and ImageMagick render SVG) must draw it.
  const rsvg = spawnSync("rsvg-convert", ["--version"]).status === 0;
  if (!rsvg) console.warn("rsvg-convert not on PATH (apt-get install librsvg2-bin): the render check is skipped");
  it.skipIf(!rsvg)("renders as a 900×360 PNG with rsvg-convert", () => {
    const r = healed();
    const out = spawnSync("rsvg-convert", ["--format", "png"], { input: timelineSVG(r, computeFigures(r)) });
    expect(out.stderr.toString()).toBe("");
    expect(out.status).toBe(0);
    const png = out.stdout;
    expect(png.subarray(0, 8).toString("hex")).toBe("89504e470d0a1a0a");
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([900, 360]); // IHDR width, height
    const broken = spawnSync("rsvg-convert", ["--format", "png"], { input: "<svg xmlns='http://www.w3.org/2000/svg'><g></svg>" });
    expect(broken.status).not.toBe(0); // and it does refuse a broken one
  });

  it("breaks the lines where no sample was taken rather than drawing across the gap", () => {
    const r = run({ samples: [...samples("ingress", 0, 5, 1_000), ...samples("ingress", 10_000, 5, 1_000)], steadyStateRecoveredAt: 0 });
    const d = timelineSVG(r, computeFigures(r)).match(/<path d="([^"]*)" fill="none" stroke="#1d4ed8"/)?.[1] ?? "";
    expect(d.match(/M/g)).toHaveLength(2);
    expect(d.match(/L/g)).toHaveLength(8);
  });

  it("draws something sane for an empty run", () => {
    const svg = timelineSVG(run({ durationMs: 0 }), computeFigures(run({ durationMs: 0 })));
    expect(xmlProblems(svg)).toEqual([]);
    expect(svg).toContain("no probe samples");
    expect(svg).not.toContain("NaN");
    expect(svg).not.toContain("Infinity");
  });

  it("copes with an hour of samples (more than a spread call takes)", () => {
    const r = run({ durationMs: 3_600_000, faults: [pause()], samples: samples("ingress", 0, 300_000, 12, (i) => i % 1000 !== 0), steadyStateRecoveredAt: 40_000 });
    const f = computeFigures(r);
    expect(f.timeToDetectMs).toBe(12_000 - 5_000); // the failed sample at i = 1000
    const svg = timelineSVG(r, f);
    expect(xmlProblems(svg)).toEqual([]);
    expect(svg).toContain(">3600s</text>");
  });

  it("buckets samples per second: success rate and p99 latency", () => {
    const s = perSecond([
      { probe: "a", t: 100, ok: true, latencyMs: 10 },
      { probe: "a", t: 900, ok: false, latencyMs: 2_000 },
      { probe: "a", t: 950, ok: true, latencyMs: 30 },
      { probe: "a", t: 999, ok: true, latencyMs: 20 },
      { probe: "a", t: 3_000, ok: false },
      { probe: "a", t: -200, ok: true, latencyMs: 1 },
    ]);
    expect(s).toEqual([
      { t: -500, successPct: 100, p99Ms: 1 },
      { t: 500, successPct: 75, p99Ms: 2_000 },
      { t: 3_500, successPct: 0 },
    ]);
  });

  it("escapes the five XML entities and drops characters XML forbids", () => {
    expect(escapeXML(`<a href="x">Tom & Jerry's</a>\u0001`)).toBe("&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&apos;s&lt;/a&gt;");
  });
});

describe("reportMarkdown", () => {
  it("has the verdict, the figures table, the checks, the faults and the probes", () => {
    const r = healed();
    const md = reportMarkdown(r, computeFigures(r));
    expect(md).toMatch(/^# Chaos report: zone-outage\n\n\*\*PASSED\*\*\n/);
    expect(md).toContain("| Time to detect | 1.5s (node general-local-1a-0 Ready=Unknown) |");
    expect(md).toContain("| Time to recover | 6s |");
    expect(md).toContain("| Outage (first fault → steady state) | 36s |");
    expect(md).toContain("| HTTP requests sent / failed | 100 / 5 (5.0 %) |");
    expect(md).toContain("| API latency p50 / p99 / max | 50ms / 99ms / 100ms |");
    expect(md).toContain("- ✓ steady state recovered 6s after the last fault (max 120s)");
    expect(md).toContain("| zone local-1a down | zone-outage | 9 processes in local-1a | +5.0s | 30s |  |");
    expect(md).toContain("| ingress | http | 100 | 5 | 95.0 % | 5.0ms | 5.0ms |");
    expect(md).toContain("   +6.5s  node          node general-local-1a-0 Ready=Unknown");
    expect(md).toContain("![timeline](timeline.svg)");
  });

  it("calls a fault instant when the runner set its revert to its injection, and shows its error", () => {
    const r = run({ faults: [{ name: "kill etcd leader", kind: "kill", resolved: "", injectedAt: 5_000, revertedAt: 5_000, error: "no etcd leader" }], steadyStateRecoveredAt: 9_000 });
    const md = reportMarkdown(r, computeFigures(r));
    expect(md).toContain("| kill etcd leader | kill |  | +5.0s | instant | no etcd leader |");
    expect(md).toContain("- ✗ fault kill etcd leader: no etcd leader");
    expect(md).toContain("| Time to recover | 4s |");
  });

  it("says FAILED with a ✗ per failed check, and cuts the timeline at 60 lines", () => {
    const timeline: TimelineEvent[] = Array.from({ length: 75 }, (_, i) => ({ t: i * 100, kind: "endpoints", message: `web ready endpoints ${i % 6}` }));
    const r = run({ faults: [pause({ name: "pipe|name" })], timeline, journal: { written: 5, lost: ["journal-0042"], uncertain: 0, failedWrites: 0 } });
    const md = reportMarkdown(r, computeFigures(r));
    expect(md).toContain("**FAILED** — 2 checks failed");
    expect(md).toContain("- ✗ steady state not recovered within 120s");
    expect(md).toContain("- ✗ 1 object lost (max 0): journal-0042");
    expect(md).toContain("- ✓ ran to the end");
    expect(md).toContain("| Time to recover | not recovered |");
    expect(md).toContain("| pipe\\|name |");
    expect(md).toContain("| pipe\\|name | zone-outage | 9 processes in local-1a | +5.0s | 30s |  |");
    expect(md.match(/endpoints {2}web ready endpoints/g)).toHaveLength(60);
    expect(md).toContain("… and 15 more events in report.json.");
  });
});

describe("summaryLines", () => {
  it("fits one screen and leads with the verdict and figures", () => {
    const r = healed();
    const lines = summaryLines(r, computeFigures(r));
    expect(lines[0]).toBe("chaos zone-outage: PASSED after 60s");
    expect(lines[1]).toBe("  detect 1.5s   recover 6s   outage 36s   first sign: node general-local-1a-0 Ready=Unknown");
    expect(lines).toContain("  HTTP    100 sent, 5 failed (5.0 %)");
    expect(lines.length).toBeLessThanOrEqual(20);
  });

  it("keeps every check line and at most 20 lines however many faults there were", () => {
    const faults = Array.from({ length: 30 }, (_, i): FaultRecord => ({ name: `kill ${i}`, kind: "kill", resolved: `apiserver-${i}`, injectedAt: i * 1_000 }));
    const r = run({ faults, aborted: "interrupted (SIGINT)" });
    const lines = summaryLines(r, computeFigures(r));
    expect(lines).toHaveLength(20);
    expect(lines.at(-1)).toBe("  ✗ aborted: interrupted (SIGINT)");
    expect(lines).toContain("  ✗ steady state not recovered within 120s");
    expect(lines.some((l) => /… and \d+ more$/.test(l))).toBe(true);
  });
});

describe("writeReport", () => {
  it("writes report.json, report.md and timeline.svg into a new directory", () => {
    const base = mkdtempSync(join(tmpdir(), "kubelab-report-"));
    try {
      const dir = join(base, "chaos", "zone-outage-20261203T060000Z");
      const r = healed();
      const out = writeReport(dir, r);
      expect(out).toMatchObject({ json: join(dir, "report.json"), markdown: join(dir, "report.md"), svg: join(dir, "timeline.svg") });
      expect(JSON.parse(readFileSync(out.json, "utf8"))).toEqual(JSON.parse(JSON.stringify(reportJSON(r, out.figures))));
      expect(readFileSync(out.markdown, "utf8")).toContain("| Time to detect | 1.5s (node general-local-1a-0 Ready=Unknown) |");
      expect(xmlProblems(readFileSync(out.svg, "utf8"))).toEqual([]);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
