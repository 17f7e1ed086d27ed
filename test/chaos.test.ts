// Chaos experiments (P8) against `kubelab up --etcd spawn --apiservers 2 --fast --chaos`: every built-in
// experiment of deploy/experiments runs through `kubelab chaos run` and reports the steady state
// recovered, no object lost and no watch event missed; a single fault by hand is reverted after
// its time; Ctrl-C during a run reverts the fault and still writes the report.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, procState, startKubelab, type Kubelab } from "./harness/kubelab.ts";
import { poll } from "./harness/poll.ts";

let k: Kubelab;

const cli = (args: string[], timeoutMs = 300_000) => spawnSync(process.execPath, ["--import", "tsx", join(REPO, "cli/main.ts"), ...args], { cwd: REPO, encoding: "utf8", timeout: timeoutMs });
const experiments = readdirSync(join(REPO, "deploy/experiments")).filter((f) => f.endsWith(".yaml")).map((f) => f.replace(/\.yaml$/, "")).sort();

const validateReport = new Ajv2020({ allErrors: true, strict: false }).compile(JSON.parse(readFileSync(join(REPO, "docs/chaos-report.schema.json"), "utf8")) as object);

/** The report of a run validates against its schema, and its SVG renders (rsvg-convert) to a non-empty PNG. */
function checkReportFiles(dir: string): void {
  const report = JSON.parse(readFileSync(join(dir, "report.json"), "utf8")) as unknown;
  expect(validateReport(report), JSON.stringify(validateReport.errors)).toBe(true);
  const png = join(dir, "timeline.png");
  const r = spawnSync("rsvg-convert", ["-o", png, join(dir, "timeline.svg")], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  expect(statSync(png).size).toBeGreaterThan(1000);
}

beforeAll(async () => {
  k = await startKubelab({ etcd: "spawn", nodes: true, extraArgs: ["--apiservers", "2", "--fast", "--chaos"] });
  await poll("6 nodes Ready", async () => {
    const r = await k.kubectl(["get", "nodes", "--no-headers"]);
    return r.stdout.split("\n").filter((l) => / Ready /.test(l)).length === 6;
  }, 120_000);
}, 180_000);

afterAll(async () => {
  await k?.stop();
});

describe("built-in chaos experiments (fast profile)", () => {
  it("lists every built-in with its one-line summary", () => {
    const r = cli(["chaos", "list"]);
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split("\n").map((l) => l.split(/\s+/)[0])).toEqual(experiments);
  });

  for (const name of experiments) {
    it(`${name}: the steady state recovers, nothing is lost`, () => {
      const r = cli(["chaos", "run", name, "--data-dir", k.dataDir]);
      console.log(r.stdout);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain(`chaos ${name}: PASSED`);
      expect(r.stdout).toMatch(/✓ 0 objects lost of [1-9]\d* written/);
      expect(r.stdout).toContain("✓ steady state recovered");
      const dir = /report: (.*)\/report\.md/.exec(r.stdout)![1]!;
      const report = JSON.parse(readFileSync(join(dir, "report.json"), "utf8")) as { passed: boolean; figures: { timeToRecoverMs?: number; objectsLost: number }; faults: { injectedAt: number; revertedAt?: number; resolved: string; error?: string }[]; timeline: { t: number; kind: string; message: string }[] };
      expect(report.passed).toBe(true);
      expect(report.figures.objectsLost).toBe(0);
      expect(report.faults.every((f) => !f.error)).toBe(true);
      expect(existsSync(join(dir, "timeline.svg"))).toBe(true);
      checkReportFiles(dir);
      // One node's faults act on that node alone: it goes Unknown while the fault lasts (stopped, or
      // its renewals dated in the past), the other node of its pool never does.
      const oneNode = { "node-stop": ["general-local-1b-0", "general-local-1b-1"], "kubelet-clock-skew": ["general-local-1c-1", "general-local-1c-0"] }[name];
      if (oneNode) {
        const [target, neighbour] = oneNode as [string, string];
        const f = report.faults[0]!;
        expect(f.resolved).toContain(`${target} (pool local-`);
        const unknown = report.timeline.filter((e) => e.kind === "node" && e.message === `node ${target} Ready=Unknown`);
        expect(unknown.length, JSON.stringify(report.timeline)).toBeGreaterThan(0);
        expect(unknown[0]!.t).toBeGreaterThanOrEqual(f.injectedAt);
        expect(unknown[0]!.t).toBeLessThanOrEqual(f.revertedAt!);
        expect(report.timeline.some((e) => e.kind === "node" && e.message.startsWith(`node ${neighbour} Ready=`))).toBe(false);
      }
      if (name === "zone-outage") {
        // Detection and recovery times, and the failed ingress requests: no more than were in flight.
        expect(r.stdout).toMatch(/detect \d+(ms|\.\d+s|s)\s+recover \d/);
        expect(r.stdout).toMatch(/✓ \d+ failed requests? of [1-9]\d* \(max \d+: those in flight at the faults\)/);
      }
    }, 300_000);
  }
});

describe("chaos by hand", () => {
  it("inject pauses a process for --for and resumes it", async () => {
    const pid = k.components().find((c) => c.name === "proxy-local-1a")!.pid!;
    const child = spawn(process.execPath, ["--import", "tsx", join(REPO, "cli/main.ts"), "chaos", "inject", "pause", "--component", "proxy-local-1a", "--for", "3s", "--data-dir", k.dataDir], { cwd: REPO });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    await poll("the proxy paused", async () => procState(pid) === "T", 20_000, 100);
    const code = await new Promise<number>((r) => child.once("exit", (c) => r(c ?? -1)));
    expect(code).toBe(0);
    expect(out).toContain("pause: proxy-local-1a (pid");
    expect(out).toContain("pause: reverted");
    expect(procState(pid)).not.toBe("T");
  }, 60_000);

  it("Ctrl-C during a run reverts the fault and still writes the report", async () => {
    const pid = k.components().find((c) => c.name === "kubelet-local-1b")!.pid!;
    const child = spawn(process.execPath, ["--import", "tsx", join(REPO, "cli/main.ts"), "chaos", "run", "kubelet-pause", "--data-dir", k.dataDir], { cwd: REPO });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    await poll("the kubelets paused by the run", async () => procState(pid) === "T", 180_000, 200);
    child.kill("SIGINT");
    const code = await new Promise<number>((r) => child.once("exit", (c) => r(c ?? -1)));
    expect(code, out).toBe(1);
    expect(procState(pid)).not.toBe("T");
    expect(out).toContain("✗ aborted: interrupted");
    expect(out).toMatch(/report: .*report\.md/);
    const bad = cli(["chaos", "inject", "pause", "--component", "kubelet-local-1b", "--data-dir", k.dataDir]);
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim()).toBe("kubelab: pause needs --for D (e.g. --for 30s)");
  }, 240_000);

  it("a deliberately broken experiment reports failure with the reason, and the cluster is rolled back to healthy", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kubelab-chaos-broken-"));
    const file = join(dir, "broken.yaml");
    // kubelet-pause with a recovery bound no pause of 20 s can meet: its pods are evicted and must come back.
    const text = readFileSync(join(REPO, "deploy/experiments/kubelet-pause.yaml"), "utf8")
      .replaceAll("kubelet-pause", "broken-pause")
      .replace("for: 30s", "for: 20s")
      .replace("recoverWithin: 120s", "recoverWithin: 1s");
    writeFileSync(file, text);
    const pid = k.components().find((c) => c.name === "kubelet-local-1b")!.pid!;
    const r = cli(["chaos", "run", file, "--data-dir", k.dataDir]);
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toContain("chaos broken-pause: FAILED");
    expect(r.stdout).toMatch(/✗ steady state (not recovered within 1s|recovered only after .* \(max 1s\))/);
    checkReportFiles(/report: (.*)\/report\.md/.exec(r.stdout)![1]!);
    // Rolled back: the kubelets run again and every node is Ready.
    expect(procState(pid)).not.toBe("T");
    // The six nodes Ready again; the cluster autoscaler may have added a node in local-1b for the
    // evicted pods that topology spread kept Pending (as upstream's would): it must be Ready too.
    await poll("every node Ready again (at least the 6)", async () => {
      const n = await k.kubectl(["get", "nodes", "--no-headers"]);
      const lines = n.stdout.trim().split("\n").filter(Boolean);
      if (lines.length >= 6 && lines.every((l) => /^\S+\s+Ready(,SchedulingDisabled)?\s/.test(l))) return true;
      throw new Error(n.stdout + n.stderr);
    }, 120_000).catch(async (e: unknown) => {
      // What the nodes and their pool said, for whoever reads a failed run.
      const ready = await k.kubectl(["get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type==\"Ready\")]}{\"\\n\"}{end}"]);
      const leases = await k.kubectl(["get", "leases", "-n", "kube-node-lease", "-o", "jsonpath={range .items[*]}{.metadata.name} {.spec.renewTime}{\"\\n\"}{end}"]);
      const log = readFileSync(join(k.dataDir, "logs", "kubelet-local-1b.log"), "utf8").split("\n").filter((l) => !l.includes('"level":30')).slice(-20);
      console.log(`nodes:\n${ready.stdout}\nleases (now ${new Date().toISOString()}):\n${leases.stdout}\nkubelet-local-1b warnings:\n${log.join("\n")}`);
      throw e;
    });
  }, 300_000);

  it("node-stop and clock-skew name a simulated node, and say so when it is not one", () => {
    const r = cli(["chaos", "inject", "node-stop", "--node", "no-such-node", "--for", "5s", "--data-dir", k.dataDir]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe("kubelab: node-stop: no simulated node no-such-node in any pool of this cluster");
    const noOffset = cli(["chaos", "inject", "clock-skew", "--node", "general-local-1a-0", "--for", "5s", "--data-dir", k.dataDir]);
    expect(noOffset.status).toBe(2);
    expect(noOffset.stderr.trim()).toBe("kubelab: clock-skew needs --offset D (e.g. --offset=-10m for a clock 10 minutes behind)");
  });

  it("a malformed experiment is one line naming the field, and nothing runs", () => {
    const dir = mkdtempSync(join(tmpdir(), "kubelab-chaos-bad-"));
    const file = join(dir, "bad.yaml");
    writeFileSync(file, readFileSync(join(REPO, "deploy/experiments/zone-outage.yaml"), "utf8").replace("at: 2s", "at: soon"));
    const r = cli(["chaos", "run", file, "--data-dir", k.dataDir]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe(`kubelab: ${file}: spec.method[0].at: must be a duration like 5s, 250ms or 2m`);
    expect(r.stdout).toBe("");
  });

  it("fill-node uses up a node's pod capacity, so a pod for it stays Pending with Too many pods, until the fault is reverted", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", join(REPO, "cli/main.ts"), "chaos", "inject", "fill-node", "--node", "general-local-1a-0", "--for", "20s", "--data-dir", k.dataDir], { cwd: REPO });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    await poll("the node filled", async () => /fill-node: general-local-1a-0: \d+ pods bound/.test(out), 60_000, 200);
    const pod = `apiVersion: v1
kind: Pod
metadata: { name: wants-1a-0, namespace: default }
spec:
  nodeSelector: { kubernetes.io/hostname: general-local-1a-0 }
  terminationGracePeriodSeconds: 0
  containers: [{ name: c, image: busybox, command: [sleep, "3600"] }]
`;
    expect((await k.kubectl(["apply", "-f", "-"], { input: pod })).code).toBe(0);
    await poll("FailedScheduling: Too many pods", async () => {
      const ev = await k.kubectl(["get", "events", "-n", "default", "--field-selector", "involvedObject.name=wants-1a-0", "-o", "jsonpath={.items[*].message}"]);
      return /Too many pods/.test(ev.stdout);
    }, 60_000);
    const code = await new Promise<number>((r) => child.once("exit", (c) => r(c ?? -1)));
    expect(code, out).toBe(0);
    expect(out).toContain("fill-node: reverted");
    await poll("the pod runs once the node has room again", async () => {
      const r = await k.kubectl(["get", "pod", "wants-1a-0", "-n", "default", "-o", "jsonpath={.status.phase}"]);
      return r.stdout === "Running";
    }, 120_000);
    await k.kubectl(["delete", "pod", "wants-1a-0", "-n", "default", "--wait=false"]);
  }, 240_000);
});
