// Recovery from an unclean stop of `kubelab up --runtime containerd`: a SIGKILLed cluster leaves its
// bridge, route, chains, containerd, shims, mounts and cgroups; `down --data-dir` removes them from
// the journal in the data dir, a fresh `up` reclaims a dead owner's bridge by itself, `down
// --all-stale` finds dead clusters on the host, and SIGTERM or Ctrl-C (twice) to the whole process
// group stops everything. Needs root and containerd (CI has both; it refuses to skip there).
// Each `up` runs in its own process group (detached), so killing it never reaches this test.

import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cgroupRoots } from "../kubelet/cgroups.ts";
import { cmdlineOf, isAlive } from "../kubelet/runtime/hoststate.ts";
import { acquireContainerdLock } from "./harness/hostlock.ts";
import { freePort, REPO } from "./harness/kubelab.ts";

const which = (bin: string): boolean => spawnSync("sh", ["-c", `command -v ${bin}`]).status === 0;
const missing = process.getuid?.() !== 0 ? "not root" : ["containerd", "runc", "ctr", "iptables", "busybox", "ip"].find((b) => !which(b));
const SKIP = missing ? `containerd recovery suite needs root and containerd/runc/ctr/iptables/busybox/ip: ${missing}` : "";
if (SKIP && process.env.CI) throw new Error(`CI must run the containerd recovery suite: ${SKIP}`);
if (SKIP) console.warn(`skipping: ${SKIP}`);

interface Up {
  dataDir: string;
  child: ChildProcess;
  /** The process group `up` leads (spawned detached). */
  pgid: number;
  exited: Promise<number | null>;
  output(): string;
}

const clusters: Up[] = [];
const lateAdds: ChildProcess[] = [];
const dirs: string[] = [];

function newDataDir(): string {
  const d = mkdtempSync(join(tmpdir(), "kubelab-recovery-"));
  dirs.push(d);
  return d;
}

/** `kubelab up --runtime containerd` in its own process group; resolves once it says it is up. */
async function up(dataDir: string): Promise<Up> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--import", "tsx", join(REPO, "cli/main.ts"), "up", "--data-dir", dataDir, "--port", String(port), "--runtime", "containerd", "--zones", "local-1a"], {
    cwd: REPO,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, KUBELAB_LOG_LEVEL: "info" },
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((res) => child.once("exit", (code) => res(code)));
  const u: Up = { dataDir, child, pgid: child.pid!, exited, output: () => out };
  clusters.push(u);
  const deadline = Date.now() + 150_000;
  while (!out.includes("kubelab is up")) {
    if (child.exitCode !== null) throw new Error(`kubelab up exited (${child.exitCode}):\n${out}`);
    if (Date.now() > deadline) throw new Error(`kubelab up did not come up:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return u;
}

function kubectl(dataDir: string, args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = execFile("kubectl", ["--kubeconfig", join(dataDir, "kubeconfig"), ...args], { timeout: 150_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      res({ code: err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 1) : 0, stdout, stderr });
    });
    if (input !== undefined) p.stdin!.end(input);
  });
}

function kubelab(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(REPO, "cli/main.ts"), ...args], { cwd: REPO, encoding: "utf8", timeout: 120_000, env: { ...process.env, KUBELAB_LOG_LEVEL: "warn" } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const deployment = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: httpd
        image: localhost/busybox:latest
        imagePullPolicy: IfNotPresent
        command: [httpd, -f, -p, "8080"]
`;

/** Two pods Running on containerd; their UIDs (their cgroups are kubepods/*\/pod<uid>). */
async function runPods(u: Up): Promise<string[]> {
  const applied = await kubectl(u.dataDir, ["apply", "-f", "-"], deployment);
  expect(applied.code, applied.stderr).toBe(0);
  const rollout = await kubectl(u.dataDir, ["rollout", "status", "deployment/web", "--timeout=120s"]);
  expect(rollout.code, rollout.stderr + rollout.stdout).toBe(0);
  const pods = JSON.parse((await kubectl(u.dataDir, ["get", "pods", "-l", "app=web", "-o", "json"])).stdout) as { items: { metadata: { uid: string; deletionTimestamp?: string }; status: { phase: string; podIP?: string } }[] };
  const running = pods.items.filter((p) => !p.metadata.deletionTimestamp && p.status.phase === "Running");
  expect(running).toHaveLength(2);
  for (const p of running) expect(p.status.podIP).toMatch(/^10\.88\./);
  return running.map((p) => p.metadata.uid);
}

/** Live (non-zombie) processes whose command line names the data dir: components, containerd, shims. */
function processesOf(dataDir: string): string[] {
  const out: string[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    const cmd = cmdlineOf(Number(d));
    if (cmd && isAlive(Number(d)) && cmd.some((a) => a.includes(dataDir))) out.push(`${d} ${cmd.slice(0, 6).join(" ")}`);
  }
  return out;
}

/** Everything a containerd cluster from `dataDir` with pods `uids` could leave on the host, each named. */
function leftovers(dataDir: string, uids: string[]): string[] {
  const left: string[] = [];
  if (spawnSync("ip", ["link", "show", "dev", "kubelab0"]).status === 0) left.push("bridge kubelab0");
  if (spawnSync("ip", ["link", "show", "dev", "kubelab-svc0"]).status === 0) left.push("link kubelab-svc0");
  for (const l of execFileSync("ip", ["-o", "link", "show"]).toString().split("\n")) if (/ master kubelab0 /.test(l)) left.push(`veth ${l.split(":")[1]?.trim()}`);
  if (/unreachable 10\.96\.0\.0\/16/.test(execFileSync("ip", ["route", "show", "table", "all"]).toString())) left.push("route unreachable 10.96.0.0/16");
  for (const l of execFileSync("iptables-save").toString().split("\n")) if (/KUBELAB|CNI-/.test(l) && l.startsWith(":")) left.push(`iptables chain ${l}`);
  const real = realpathSync(dataDir);
  for (const l of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const point = l.split(" ")[4];
    if (point && (point === real || point.startsWith(real + "/"))) left.push(`mount ${point}`);
  }
  for (const root of cgroupRoots()) {
    for (const uid of uids) {
      for (const qos of ["", "burstable/", "besteffort/"]) {
        const dir = join(root, "kubepods", `${qos}pod${uid}`);
        if (existsSync(dir)) left.push(`cgroup ${dir}`);
      }
    }
  }
  for (const p of processesOf(dataDir)) left.push(`process ${p}`);
  return left;
}

async function exitWithin(u: Up, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([u.exited, new Promise<"late">((r) => (timer = setTimeout(() => r("late"), ms)))]);
  clearTimeout(timer);
  if (code === "late") throw new Error(`kubelab up (pid ${u.child.pid}) did not exit within ${ms / 1000} s:\n${u.output().slice(-3000)}`);
  return code;
}

let release: (() => void) | undefined;

beforeAll(async () => {
  if (!SKIP) release = await acquireContainerdLock("test/containerd-recovery.test.ts");
}, 900_000);

afterAll(async () => {
  // Whatever a failed test left: kill the groups still running, clean each data dir from its journal.
  for (const u of clusters) {
    if (u.child.exitCode === null && u.child.signalCode === null) {
      try {
        process.kill(-u.pgid, "SIGKILL");
      } catch {
        // gone
      }
      await u.exited;
    }
  }
  for (const c of lateAdds) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const d of dirs) {
    const r = kubelab(["down", "--data-dir", d]);
    if (r.code !== 0) console.warn(`down --data-dir ${d}: ${r.stderr}`);
    rmSync(d, { recursive: true, force: true });
  }
  release?.();
}, 180_000);

describe.skipIf(SKIP !== "")("recovering host state after kubelab up --runtime containerd stops uncleanly", () => {
  let second: Up;
  let secondUIDs: string[];
  let third: Up;
  let thirdUIDs: string[];

  it("SIGKILL of up's process group with pods running: down --data-dir removes every leftover, one line each, and a fresh up starts at once", async () => {
    const first = await up(newDataDir());
    const uids = await runPods(first);
    process.kill(-first.pgid, "SIGKILL");
    await first.exited;

    // The kill left the host dirty (this is what the suite is about).
    const dirty = leftovers(first.dataDir, uids);
    for (const what of ["bridge kubelab0", "link kubelab-svc0", "route unreachable 10.96.0.0/16", "iptables chain :KUBELAB-FORWARD"]) expect(dirty.some((l) => l.startsWith(what)), what).toBe(true);
    expect(dirty.some((l) => l.startsWith("mount "))).toBe(true);
    expect(dirty.some((l) => l.startsWith("cgroup "))).toBe(true);
    expect(dirty.some((l) => / containerd --config /.test(l))).toBe(true);
    expect(dirty.some((l) => /containerd-shim/.test(l))).toBe(true);
    expect(kubelab(["status", "--data-dir", first.dataDir]).stdout).toMatch(/not running .*left host state behind/);

    const down = kubelab(["down", "--data-dir", first.dataDir]);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toContain(`kubelab is not running from ${first.dataDir} (pid ${first.child.pid} died); removed what it left:`);
    const lines = down.stdout.split("\n").filter((l) => l.startsWith("  "));
    expect(lines).toEqual(expect.arrayContaining([
      expect.stringMatching(/^ {2}removed sandbox default\/web-/),
      expect.stringMatching(/^ {2}stopped containerd \(pid \d+\)$/),
      "  deleted bridge kubelab0",
      expect.stringMatching(/^ {2}deleted service interface kubelab-svc0( and its \d+ address(es)? \(.*\))?$/),
      expect.stringMatching(/^ {2}removed iptables chain KUBELAB-FORWARD/),
      "  removed route unreachable 10.96.0.0/16",
      ...uids.map((uid) => expect.stringContaining(`removed cgroup kubepods/besteffort/pod${uid}`)),
    ]));
    expect(lines.filter((l) => l.includes("removed sandbox"))).toHaveLength(2);
    expect(leftovers(first.dataDir, uids)).toEqual([]);
    // Nothing more to do the second time.
    expect(kubelab(["down", "--data-dir", first.dataDir]).stdout).toBe(`kubelab is not running from ${first.dataDir}\n`);

    second = await up(newDataDir());
    expect(second.output()).not.toMatch(/waiting for it|reclaiming/);
    secondUIDs = await runPods(second);
  }, 400_000);

  it("SIGKILL again, containerd too: without down, a fresh up reclaims the dead cluster's bridge and cleans up after it", async () => {
    expect(second, "needs the previous test's cluster").toBeDefined();
    const containerdPid = (JSON.parse(readFileSync(join(second.dataDir, "up.json"), "utf8")) as { containerd: { pid: number } }).containerd.pid;
    process.kill(-second.pgid, "SIGKILL");
    await second.exited;
    process.kill(containerdPid, "SIGKILL"); // the runtime died too: its shims and containers stay behind
    expect(leftovers(second.dataDir, secondUIDs).some((l) => /containerd-shim/.test(l))).toBe(true);

    third = await up(newDataDir());
    expect(third.output()).toContain(`reclaiming bridge kubelab0 from a dead kubelab (pid ${second.child.pid}, data dir ${second.dataDir})`);
    expect(leftovers(second.dataDir, secondUIDs).filter((l) => !/^(bridge|link|veth|route|iptables)/.test(l))).toEqual([]);
    // The bridge now is the new cluster's, named after it.
    expect(execFileSync("ip", ["-j", "link", "show", "dev", "kubelab0"]).toString()).toContain(`dir=${third.dataDir}`);
    thirdUIDs = await runPods(third);
  }, 400_000);

  it("a live cluster's bridge is an error naming its pid and data dir, at once", async () => {
    expect(third, "needs the previous test's cluster").toBeDefined();
    const d = newDataDir();
    await expect(up(d)).rejects.toThrow(`network link kubelab0 is in use by kubelab pid ${third.child.pid} (data dir ${third.dataDir})`);
    // It left nothing of its own, and took nothing from the live cluster: bridge, guard and route stay.
    expect(leftovers(d, []).filter((l) => !/^(bridge|link|veth|route|iptables)/.test(l))).toEqual([]);
    expect(execFileSync("ip", ["-j", "link", "show", "dev", "kubelab0"]).toString()).toContain(`dir=${third.dataDir}`);
    expect(execFileSync("iptables", ["-S", "KUBELAB-FORWARD"]).toString()).toContain("-i kubelab0 -j DROP");
    expect(execFileSync("ip", ["route", "show", "exact", "10.96.0.0/16"]).toString()).toMatch(/unreachable/);
  }, 200_000);

  it("SIGTERM to the whole process group with pods running: everything is gone within 20 s", async () => {
    expect(third, "needs the previous test's cluster").toBeDefined();
    process.kill(-third.pgid, "SIGTERM");
    expect(await exitWithin(third, 20_000)).toBe(0);
    expect(third.output()).toContain("kubelab stopped.");
    expect(leftovers(third.dataDir, thirdUIDs)).toEqual([]);
  }, 60_000);

  it("Ctrl-C twice (SIGINT to the group, again during cleanup) still cleans up everything", async () => {
    const u = await up(newDataDir());
    const uids = await runPods(u);
    process.kill(-u.pgid, "SIGINT");
    await new Promise((r) => setTimeout(r, 300));
    process.kill(-u.pgid, "SIGINT");
    expect(await exitWithin(u, 20_000)).toBe(0);
    expect(leftovers(u.dataDir, uids)).toEqual([]);
  }, 400_000);

  it("a CNI ADD still running when up stops cannot bring the bridge back: cleanup kills it before removing the network", async () => {
    const u = await up(newDataDir());
    // A bridge plugin ADD for a sandbox whose namespace is already gone still creates a missing
    // bridge (without our alias) before it fails on the namespace. This one starts the moment the
    // bridge is gone, as an ADD in flight when Ctrl-C lands would finish after cleanup deleted it.
    const conflist = JSON.parse(readFileSync(join(u.dataDir, "cni", "conf", "10-kubelab.conflist"), "utf8")) as { cniVersion: string; name: string; plugins: Record<string, unknown>[] };
    const late = spawn("sh", ["-c", "while ip link show dev kubelab0 >/dev/null 2>&1; do sleep 0.02; done; exec /usr/lib/cni/bridge"], {
      detached: true,
      stdio: ["pipe", "ignore", "ignore"],
      env: { ...process.env, CNI_COMMAND: "ADD", CNI_CONTAINERID: "late-add", CNI_IFNAME: "eth0", CNI_PATH: "/usr/lib/cni", CNI_NETNS: join(u.dataDir, "containerd", "state", "io.containerd.grpc.v1.cri", "netns", "cni-late") },
    });
    lateAdds.push(late);
    late.stdin!.end(JSON.stringify({ cniVersion: conflist.cniVersion, name: conflist.name, ...conflist.plugins[0] }));
    const lateExit = new Promise<string>((res) => late.once("exit", (code, sig) => res(sig ?? `code ${code}`)));
    process.kill(-u.pgid, "SIGINT");
    expect(await exitWithin(u, 20_000)).toBe(0);
    await lateExit;
    expect(leftovers(u.dataDir, [])).toEqual([]);
    expect(await lateExit).toBe("SIGKILL");
    expect(u.output()).toMatch(/killed \d+ CNI plugin processes still running/);
  }, 200_000);

  it("SIGKILL of up alone (its components keep running): down kills them too, then removes the host state", async () => {
    const u = await up(newDataDir());
    const uids = await runPods(u);
    const components = (JSON.parse(readFileSync(join(u.dataDir, "up.json"), "utf8")) as { components: { name: string; pid: number }[] }).components;
    process.kill(u.child.pid!, "SIGKILL");
    await u.exited;
    expect(processesOf(u.dataDir).some((p) => p.includes("apiserver"))).toBe(true);
    const down = kubelab(["down", "--data-dir", u.dataDir]);
    expect(down.code, down.stderr).toBe(0);
    for (const c of components) expect(down.stdout).toMatch(new RegExp(`^  (stopped|killed) ${c.name} \\(pid ${c.pid}\\)$`, "m"));
    expect(down.stdout).toContain("  deleted bridge kubelab0\n");
    expect(leftovers(u.dataDir, uids)).toEqual([]);
  }, 400_000);

  it("up again in the data dir of a SIGKILLed cluster finishes its cleanup first and runs its pods again", async () => {
    const u = await up(newDataDir());
    const uids = await runPods(u);
    process.kill(-u.pgid, "SIGKILL");
    await u.exited;
    const again = await up(u.dataDir);
    expect(again.output()).toContain("cleaned up what a dead kubelab left in this data dir");
    expect(again.output()).not.toContain("reclaiming bridge"); // its own journal, not someone else's bridge
    expect((await runPods(again)).sort()).toEqual([...uids].sort()); // the same pods, from the persisted store
    process.kill(-again.pgid, "SIGTERM");
    expect(await exitWithin(again, 20_000)).toBe(0);
    expect(leftovers(u.dataDir, uids)).toEqual([]);
  }, 400_000);

  it("down --all-stale finds a dead cluster by its registration and cleans it; then there is nothing stale", async () => {
    const u = await up(newDataDir());
    const uids = await runPods(u);
    process.kill(-u.pgid, "SIGKILL");
    await u.exited;
    const r = kubelab(["down", "--all-stale"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`${u.dataDir} (pid ${u.child.pid}, dead): removed\n`);
    expect(r.stdout).toContain("  deleted bridge kubelab0\n");
    expect(leftovers(u.dataDir, uids)).toEqual([]);
    expect(kubelab(["down", "--all-stale"]).stdout).toBe("no stale kubelab clusters on this host\n");
  }, 400_000);
});
