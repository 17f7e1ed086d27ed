// `kubelab up --etcd spawn` (P7): a three-member etcd cluster of the real binary, one member per
// zone. SIGKILL a follower: reads and writes go on; SIGKILL the leader: writes resume once the
// others elect a new one, the supervisor brings the killed member back on its data and ports, and
// every object written before, during and after is there.

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { etcdLeader, type EtcdClusterPlan } from "../cli/etcdcluster.ts";
import { procState, startKubelab, type Kubelab } from "./harness/kubelab.ts";
import { poll } from "./harness/poll.ts";

let k: Kubelab;
let plan: EtcdClusterPlan;
const written: string[] = [];

const pidOf = (name: string) => k.components().find((c) => c.name === name)?.pid;
const cli = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", "cli/main.ts", ...args], { encoding: "utf8", timeout: 30_000 });
const stateOf = (name: string) => {
  const row = cli("status", "--data-dir", k.dataDir).stdout.split("\n").find((l) => l.startsWith(name + " "));
  return row?.split(/\s+/)[3];
};

/** One ConfigMap create through kubectl; a retry is allowed only for a request that did not reach etcd's quorum in time. */
async function write(name: string, timeoutMs = 30_000): Promise<number> {
  const t0 = Date.now();
  await poll(`configmap ${name} created`, async () => {
    const r = await k.kubectl(["create", "configmap", name, "--from-literal=n=" + name, "--request-timeout=5s"]);
    if (r.code === 0) return true;
    // A timed-out create may have happened after all: then it exists, which is success too.
    if (/AlreadyExists|already exists/.test(r.stderr)) return true;
    throw new Error(r.stderr);
  }, timeoutMs, 200);
  written.push(name);
  return Date.now() - t0;
}

async function readAll(): Promise<string[]> {
  const r = await k.kubectl(["get", "configmaps", "-o", "name", "--request-timeout=10s"]);
  if (r.code !== 0) throw new Error(r.stderr);
  return r.stdout.split("\n").filter((l) => l.startsWith("configmap/")).map((l) => l.slice("configmap/".length));
}

beforeAll(async () => {
  k = await startKubelab({ etcd: "spawn" });
  plan = JSON.parse(readFileSync(join(k.dataDir, "etcd", "members.json"), "utf8")) as EtcdClusterPlan;
}, 120_000);

afterAll(async () => {
  await k?.stop();
});

describe("up --etcd spawn", () => {
  it("runs three members, one per zone, shown by kubelab status", async () => {
    expect(plan.members.map((m) => m.zone)).toEqual(["local-1a", "local-1b", "local-1c"]);
    expect(k.output()).toContain("on a 3-member etcd cluster");
    const status = await poll("every member healthy in kubelab status", async () => {
      const r = cli("status", "--data-dir", k.dataDir);
      const rows = r.stdout.split("\n").filter((l) => l.startsWith("etcd-"));
      return rows.length === 3 && rows.every((l) => /running\s+\d+\s+ok\s+ok/.test(l)) ? rows : undefined;
    });
    expect(status.map((l) => l.split(/\s+/).slice(0, 2).join(" "))).toEqual(["etcd-local-1a local-1a", "etcd-local-1b local-1b", "etcd-local-1c local-1c"]);
    for (let i = 0; i < 5; i++) await write(`before-${i}`);
  }, 60_000);

  it("keeps reading and writing when a follower is SIGKILLed, and the member comes back", async () => {
    const leader = await poll("an etcd leader", () => etcdLeader(plan));
    const follower = plan.members.find((m) => m.name !== leader.name)!;
    const pid = pidOf(follower.name)!;
    process.kill(pid, "SIGKILL");
    for (let i = 0; i < 5; i++) await write(`follower-down-${i}`, 20_000);
    expect(await readAll()).toEqual(expect.arrayContaining(written));
    await poll(`${follower.name} restarted by the supervisor`, async () => {
      const c = k.components().find((x) => x.name === follower.name);
      return c && c.pid !== pid && c.restarts >= 1;
    });
  }, 90_000);

  it("resumes writes after the leader is SIGKILLed, under a new leader, with nothing lost", async () => {
    // Every member healthy again first, so the kill leaves a quorum of two.
    await poll("three members answering", async () => (await Promise.all(plan.members.map((m) => fetch(`http://127.0.0.1:${m.clientPort}/health`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok).catch(() => false)))).every(Boolean), 60_000);
    const leader = await poll("an etcd leader", () => etcdLeader(plan));
    process.kill(pidOf(leader.name)!, "SIGKILL");
    const resumedMs = await write("after-leader-kill", 30_000);
    const next = await poll("a new leader", () => etcdLeader(plan));
    console.log(`writes resumed ${resumedMs} ms after SIGKILL of the etcd leader ${leader.name}; new leader ${next.name}`);
    for (let i = 0; i < 5; i++) await write(`after-${i}`);
    const names = await readAll();
    expect(names).toEqual(expect.arrayContaining(written));
  }, 120_000);

  it("kubelab status names the leader of each lease and of etcd", async () => {
    const leader = await poll("an etcd leader", () => etcdLeader(plan));
    const out = await poll("leaders shown", async () => {
      const r = cli("status", "--data-dir", k.dataDir);
      return /kube-system\/kube-scheduler\s+scheduler-[12]\s/.test(r.stdout) && /kube-system\/kube-controller-manager\s+controller-manager-[12]\s/.test(r.stdout) ? r.stdout : undefined;
    }, 60_000, 1000);
    expect(out).toMatch(new RegExp(`etcd\\s+${leader.name}`));
    expect(out).toMatch(/scheduler-1\s+local-1a\s/);
    expect(out).toMatch(/scheduler-2\s+local-1b\s/);
  }, 90_000);

  it("kubelab ctl pauses, resumes, holds down and starts a process through the control socket", async () => {
    const pid = pidOf("controller-manager-2")!;
    expect(cli("ctl", "--data-dir", k.dataDir, "pause", "controller-manager-2").stdout).toContain("controller-manager-2: pause done (paused");
    expect(procState(pid)).toBe("T");
    expect(stateOf("controller-manager-2")).toBe("paused");
    cli("ctl", "--data-dir", k.dataDir, "resume", "controller-manager-2");
    expect(procState(pid)).not.toBe("T");
    expect(cli("ctl", "--data-dir", k.dataDir, "stop", "controller-manager-2").stdout).toContain("held down");
    await poll("controller-manager-2 exited and held", async () => stateOf("controller-manager-2") === "held", 20_000);
    // Held: not restarted (the supervisor's first restart would come within a second).
    await new Promise((r) => setTimeout(r, 2500));
    expect(stateOf("controller-manager-2")).toBe("held");
    cli("ctl", "--data-dir", k.dataDir, "start", "controller-manager-2");
    await poll("controller-manager-2 running again", async () => stateOf("controller-manager-2") === "running" && pidOf("controller-manager-2") !== pid, 20_000);
    const bad = cli("ctl", "--data-dir", k.dataDir, "pause", "nope");
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim()).toMatch(/^kubelab: no component named "nope" \(components: etcd-local-1a, /);
    const usage = cli("ctl", "--data-dir", k.dataDir, "explode", "scheduler-1");
    expect(usage.status).toBe(2);
    expect(usage.stderr.trim()).toBe("kubelab: unknown action \"explode\": one of stop, start, kill, restart, pause, resume");
  }, 90_000);
});
