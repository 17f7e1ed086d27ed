// The experiment file: every built-in loads; mistakes are one line naming the field.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadExperiment, loadExperimentFile } from "./experiment.ts";

const DIR = join(import.meta.dirname, "..", "deploy", "experiments");
const base = readFileSync(join(DIR, "kubelet-pause.yaml"), "utf8");
const bad = (edit: (s: string) => string) => () => loadExperiment(edit(base), "x.yaml");

describe("experiment files", () => {
  it("loads every built-in, with its faults' times and the checks' defaults", () => {
    const files = readdirSync(DIR).filter((f) => f.endsWith(".yaml"));
    expect(files.length).toBeGreaterThanOrEqual(9);
    for (const f of files) {
      const ex = loadExperimentFile(join(DIR, f));
      expect(ex.name).toBe(f.replace(/\.yaml$/, ""));
      expect(ex.method.length).toBeGreaterThan(0);
      expect(ex.description.length).toBeGreaterThan(50);
    }
    const ex = loadExperiment(base, "x.yaml");
    expect(ex.method[0]).toMatchObject({ kind: "pause", target: { component: "kubelet-local-1b" }, atMs: 2000, forMs: 30_000 });
    expect(ex.checks).toMatchObject({ recoverWithinMs: 120_000, maxObjectsLost: 0, maxWatchGaps: 0 });
    expect(ex.steadyState.map((p) => p.kind)).toEqual(["object", "http", "api"]);
  });

  it("names the field of each mistake in one line", () => {
    expect(bad((s) => s.replace("at: 2s", "at: 2 seconds"))).toThrow(/^x\.yaml: spec\.method\[0\]\.at: must be a duration like 5s, 250ms or 2m$/);
    expect(bad((s) => s.replace("fault: pause", "fault: explode"))).toThrow(/^x\.yaml: spec\.method\[0\]\.fault: must be one of "kill", "pause", /);
    expect(bad((s) => s.replace("      for: 30s\n", ""))).toThrow("x.yaml: spec.method[0].for: pause needs a duration (for: 30s)");
    expect(bad((s) => s.replace("target: { component: kubelet-local-1b }", "target: { zone: local-1b }"))).toThrow("x.yaml: spec.method[0].target: pause takes target.component or target.leaderOf or target.etcdLeader, not target.zone");
    expect(bad((s) => s.replace("target: { component: kubelet-local-1b }", "target: { component: a, zone: b }"))).toThrow("x.yaml: spec.method[0].target: must name exactly one target (component, leaderOf, etcdLeader, zone, lease or node)");
    expect(bad((s) => s.replace("  warmup: 3s", "  warmup: 3s\n  colour: blue"))).toThrow("x.yaml: spec.colour: unknown field");
    expect(bad((s) => s.replace("kind: http", "kind: gopher"))).toThrow(/^x\.yaml: spec\.steadyState\[1\]\.kind: must be one of "http", "object", "api"$/);
    expect(bad((s) => s.replace('op: ">="', 'op: "~"'))).toThrow(/^x\.yaml: spec\.steadyState\[0\]\.op: must be one of/);
    const skew = (edit: string) => () => loadExperiment(base.replace("fault: pause\n      target: { component: kubelet-local-1b }", edit), "x.yaml");
    expect(skew("fault: clock-skew\n      target: { node: n1 }")).toThrow("x.yaml: spec.method[0].offset: clock-skew needs an offset (offset: -10m)");
    expect(skew("fault: clock-skew\n      target: { node: n1 }\n      offset: ten")).toThrow("x.yaml: spec.method[0].offset: must be an offset like -10m, 30s or +2h");
    expect(skew("fault: node-stop\n      target: { node: n1 }\n      offset: 5m")).toThrow("x.yaml: spec.method[0].offset: only clock-skew takes an offset");
    expect(skew("fault: node-stop\n      target: { component: kubelet-local-1b }")).toThrow("x.yaml: spec.method[0].target: node-stop takes target.node, not target.component");
    expect(skew("fault: clock-skew\n      target: { node: n1 }\n      offset: -1.5h")().method[0]).toMatchObject({ kind: "clock-skew", offsetMs: -5_400_000, forMs: 30_000 });
    expect(skew("fault: clock-skew\n      target: { node: n1 }\n      offset: +90s")().method[0]!.offsetMs).toBe(90_000);
    expect(() => loadExperiment("a: [", "x.yaml")).toThrow(/^x\.yaml: not YAML: /);
    expect(() => loadExperiment("apiVersion: v1\nkind: Experiment\nmetadata: {name: x}\nspec: {steadyState: [], method: []}\n", "x.yaml")).toThrow('x.yaml: apiVersion: must be "kubelab.io/v1alpha1"');
  });

  it("link faults take their parameters, and only they", () => {
    const delay = base.replace("fault: pause", "fault: link-delay\n      latency: 150ms");
    expect(loadExperiment(delay, "x.yaml").method[0]).toMatchObject({ kind: "link-delay", latencyMs: 150 });
    expect(bad((s) => s.replace("fault: pause", "fault: link-delay"))).toThrow("x.yaml: spec.method[0].latency: link-delay needs a latency (latency: 200ms)");
    expect(bad((s) => s.replace("fault: pause", "fault: pause\n      latency: 1s"))).toThrow("x.yaml: spec.method[0].latency: only link-delay takes a latency");
  });
});
