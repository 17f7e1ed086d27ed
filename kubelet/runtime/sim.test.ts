// The simulated runtime against a FakeClock and real loopback sockets: lifecycles from annotations
// and from the tiny shell, pod IPs, the HTTP echo, CRI log files, and the CRI error contract.

import http from "node:http";
import net from "node:net";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FakeClock } from "../../client/index.ts";
import { SimRuntime } from "./sim.ts";
import { parseGoDuration } from "./sim/duration.ts";
import { parseScript, runScript, scriptFromArgv, type ShellHost } from "./sim/shell.ts";
import { parseApplet, wildcardPorts } from "./sim/busybox.ts";
import {
  GRPC_DEADLINE_EXCEEDED,
  GRPC_NOT_FOUND,
  containerLogPath,
  isRuntimeNotFound,
  type ContainerConfig,
  type PodSandboxConfig,
} from "./types.ts";

/** A /24 inside 127/8 no other suite is likely to use at the same time. */
function randomSubnet(): string {
  return `127.${100 + Math.floor(Math.random() * 150)}.${Math.floor(Math.random() * 256)}`;
}

let logRoot: string;
let clock: FakeClock;
let subnet: string;
let rt: SimRuntime;

beforeEach(async () => {
  logRoot = await mkdtemp(join(tmpdir(), "kubelab-sim-"));
  clock = new FakeClock();
  subnet = randomSubnet();
  rt = new SimRuntime({ nodeName: "n1", zone: "local-1a", podCIDR: `${subnet}.0/24`, clock });
});

afterEach(async () => {
  await rt.close();
  await rm(logRoot, { recursive: true, force: true });
});

function sandboxConfig(name: string, annotations: Record<string, string> = {}, namespace = "default"): PodSandboxConfig {
  const uid = `uid-${name}`;
  return {
    metadata: { name, namespace, uid, attempt: 0 },
    hostname: name,
    logDirectory: join(logRoot, `${namespace}_${name}_${uid}`),
    portMappings: [],
    labels: { "io.kubernetes.pod.name": name, "io.kubernetes.pod.namespace": namespace, "kubelab.io/node": "n1" },
    annotations,
  };
}

function containerConfig(
  name: string,
  opts: { command?: string[]; args?: string[]; ports?: number[]; image?: string; mounts?: ContainerConfig["mounts"]; workingDir?: string } = {},
): ContainerConfig {
  return {
    metadata: { name, attempt: 0 },
    image: opts.image ?? "busybox",
    command: opts.command ?? [],
    args: opts.args ?? [],
    envs: [],
    mounts: opts.mounts ?? [],
    workingDir: opts.workingDir,
    logPath: containerLogPath(name, 0),
    labels: { "io.kubernetes.container.name": name },
    annotations: {},
    resources: { cpuShares: 2, cpuQuota: 0, cpuPeriod: 0, memoryLimitInBytes: 0 },
    ports: (opts.ports ?? []).map((containerPort) => ({ containerPort, protocol: "TCP" as const })),
  };
}

/** Runs a sandbox with one container and starts it (no start delay unless annotated). */
async function runPod(
  name: string,
  annotations: Record<string, string>,
  container: ContainerConfig,
): Promise<{ sandbox: string; container: string; config: PodSandboxConfig }> {
  const config = sandboxConfig(name, annotations);
  const sandbox = await rt.runPodSandbox(config);
  const id = await rt.createContainer(sandbox, container, config);
  await rt.startContainer(id);
  return { sandbox, container: id, config };
}

async function logOf(config: PodSandboxConfig, container: string): Promise<string> {
  await rt.flushLogs();
  return readFile(join(config.logDirectory, containerLogPath(container, 0)), "utf8");
}

/** Text of the log's lines, without the CRI prefix. */
async function logTexts(config: PodSandboxConfig, container: string): Promise<string[]> {
  const raw = await logOf(config, container);
  return raw
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => l.split(" ").slice(3).join(" "));
}

function get(ip: string, port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: ip, port, path, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
  });
}

function request(ip: string, port: number, path: string, method = "GET"): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: ip, port, path, method, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** Connects, sends `data`, half-closes, and resolves with everything the peer sent until it closed. */
function tcp(ip: string, port: number, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: ip, port }, () => sock.end(data));
    let got = "";
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => (got += d));
    sock.on("error", reject);
    sock.on("close", () => resolve(got));
  });
}

/** Polls (real time) until `fn` holds: for the runtime's socket work, which the FakeClock does not drive. */
async function until<T>(what: string, fn: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function rejection(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code: number; message: string };
  }
  throw new Error("expected a rejection");
}

describe("SimRuntime", () => {
  it("reports its version", async () => {
    expect(await rt.version()).toEqual({ runtimeName: "kubelab-sim", runtimeVersion: "0.1.0", runtimeApiVersion: "v1" });
  });

  it("refuses a podCIDR outside 127.0.0.0/8, or one with no room for a pod", () => {
    expect(() => new SimRuntime({ nodeName: "n", zone: "z", podCIDR: "10.244.0.0/24" })).toThrow(/outside 127\.0\.0\.0\/8/);
    expect(() => new SimRuntime({ nodeName: "n", zone: "z", podCIDR: "0.0.0.0/0" })).toThrow(/outside 127\.0\.0\.0\/8/);
    expect(() => new SimRuntime({ nodeName: "n", zone: "z", podCIDR: "127.0.0.0/31" })).toThrow(/too small/);
    expect(() => new SimRuntime({ nodeName: "n", zone: "z", podCIDR: "127.300.0.0/24" })).toThrow(/not an IPv4 CIDR/);
  });

  it("gives the node .1 and pods .2 up, and reuses a freed address once the range wraps", async () => {
    const small = new SimRuntime({ nodeName: "n2", zone: "z", podCIDR: `${subnet}.8/29`, clock });
    try {
      expect(small.nodeIP).toBe(`${subnet}.9`);
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push(await small.runPodSandbox(sandboxConfig(`p${i}`)));
      const ips = await Promise.all(ids.map(async (id) => (await small.podSandboxStatus(id)).ip));
      expect(ips).toEqual([10, 11, 12, 13, 14].map((h) => `${subnet}.${h}`));
      const full = await rejection(small.runPodSandbox(sandboxConfig("p5")));
      expect(full.message).toMatch(/no IP addresses available in range set/);

      await small.stopPodSandbox(ids[1]);
      expect((await small.podSandboxStatus(ids[1])).ip).toBe(`${subnet}.11`); // kept until removal
      await small.removePodSandbox(ids[1]);
      const again = await small.runPodSandbox(sandboxConfig("p6"));
      expect((await small.podSandboxStatus(again)).ip).toBe(`${subnet}.11`);
    } finally {
      await small.close();
    }
  });

  it("refuses a second sandbox with the same pod name, uid and attempt (containerd's name reservation)", async () => {
    await rt.runPodSandbox(sandboxConfig("dup"));
    const err = await rejection(rt.runPodSandbox(sandboxConfig("dup")));
    expect(err.message).toMatch(/failed to reserve sandbox name "dup_default_uid-dup_0"/);
  });

  it("starts a container only after sim.kubelab.io/start-delay", async () => {
    const config = sandboxConfig("slow", { "sim.kubelab.io/start-delay": "2s" });
    const sb = await rt.runPodSandbox(config);
    const id = await rt.createContainer(sb, containerConfig("app"), config);
    let started = false;
    const p = rt.startContainer(id).then(() => (started = true));
    await clock.advance(1999);
    expect(started).toBe(false);
    expect((await rt.containerStatus(id)).state).toBe("CONTAINER_CREATED");
    await clock.advance(1);
    await p;
    const st = await rt.containerStatus(id);
    expect(st.state).toBe("CONTAINER_RUNNING");
    expect(st.startedAt).toBe(clock.now());
  });

  it("adds a random start jitter below startJitterMs to the start delay", async () => {
    const jittery = new SimRuntime({ nodeName: "n3", zone: "z", podCIDR: `${randomSubnet()}.0/24`, clock, startJitterMs: 1000 });
    const random = vi.spyOn(Math, "random").mockReturnValue(0.5);
    try {
      const config = sandboxConfig("jit", { "sim.kubelab.io/start-delay": "1s" });
      const sb = await jittery.runPodSandbox(config);
      const id = await jittery.createContainer(sb, containerConfig("app"), config);
      const p = jittery.startContainer(id);
      await clock.advance(1499);
      expect((await jittery.containerStatus(id)).state).toBe("CONTAINER_CREATED");
      await clock.advance(1);
      await p;
      expect((await jittery.containerStatus(id)).state).toBe("CONTAINER_RUNNING");
    } finally {
      random.mockRestore();
      await jittery.close();
    }
  });

  it("fails a StartContainer that is stopped during its start delay", async () => {
    const config = sandboxConfig("aborted", { "sim.kubelab.io/start-delay": "10s" });
    const sb = await rt.runPodSandbox(config);
    const id = await rt.createContainer(sb, containerConfig("app"), config);
    const p = rejection(rt.startContainer(id));
    await clock.advance(1000);
    await rt.stopContainer(id, 30);
    expect((await p).message).toMatch(/stopped before it started/);
    const st = await rt.containerStatus(id);
    expect(st.state).toBe("CONTAINER_EXITED");
    expect(st.startedAt).toBe(0);
    expect(clock.pending()).toBe(0);
  });

  it("exits after exit-after with exit-code, reason Error", async () => {
    const { container } = await runPod("crash", { "sim.kubelab.io/exit-after": "1.5s", "sim.kubelab.io/exit-code": "2" }, containerConfig("app"));
    const t0 = clock.now();
    await clock.advance(1499);
    expect((await rt.containerStatus(container)).state).toBe("CONTAINER_RUNNING");
    await clock.advance(1);
    const st = await rt.containerStatus(container);
    expect(st).toMatchObject({ state: "CONTAINER_EXITED", exitCode: 2, reason: "Error", startedAt: t0, finishedAt: t0 + 1500 });
  });

  it("exits 0 (Completed) with exit-after alone, and at once with exit-code alone", async () => {
    const a = await runPod("done", { "sim.kubelab.io/exit-after": "1m" }, containerConfig("app"));
    await clock.advance(60_000);
    expect(await rt.containerStatus(a.container)).toMatchObject({ state: "CONTAINER_EXITED", exitCode: 0, reason: "Completed" });

    const b = await runPod("fail", { "sim.kubelab.io/exit-code": "7" }, containerConfig("app"));
    expect(await rt.containerStatus(b.container)).toMatchObject({ state: "CONTAINER_EXITED", exitCode: 7, reason: "Error" });
  });

  it("lets a container-suffixed annotation override the pod-wide one", async () => {
    const config = sandboxConfig("two", { "sim.kubelab.io/exit-code": "1", "sim.kubelab.io/exit-after.sidecar": "10s", "sim.kubelab.io/exit-code.sidecar": "0" });
    const sb = await rt.runPodSandbox(config);
    const main = await rt.createContainer(sb, containerConfig("main"), config);
    const side = await rt.createContainer(sb, containerConfig("sidecar"), config);
    await rt.startContainer(main);
    await rt.startContainer(side);
    expect(await rt.containerStatus(main)).toMatchObject({ state: "CONTAINER_EXITED", exitCode: 1 });
    expect((await rt.containerStatus(side)).state).toBe("CONTAINER_RUNNING");
    await clock.advance(10_000);
    expect(await rt.containerStatus(side)).toMatchObject({ state: "CONTAINER_EXITED", exitCode: 0, reason: "Completed" });
  });

  it("OOM-kills after oom-after (137, OOMKilled), before a later exit-after", async () => {
    const { container } = await runPod("hog", { "sim.kubelab.io/oom-after": "3s", "sim.kubelab.io/exit-after": "5s" }, containerConfig("app"));
    await clock.advance(3000);
    expect(await rt.containerStatus(container)).toMatchObject({ state: "CONTAINER_EXITED", exitCode: 137, reason: "OOMKilled" });
  });

  it("ignores an invalid annotation: the container runs until stopped", async () => {
    const { container } = await runPod("bad", { "sim.kubelab.io/exit-after": "soon", "sim.kubelab.io/exit-code": "-1" }, containerConfig("app"));
    expect(clock.pending()).toBe(0);
    await clock.advance(3_600_000);
    expect((await rt.containerStatus(container)).state).toBe("CONTAINER_RUNNING");
  });

  it("serves an HTTP echo on the pod IP for each container port, logs each request, and closes it on stop", async () => {
    const { container, sandbox, config } = await runPod("web-1", {}, containerConfig("web", { command: ["httpd", "-f"], ports: [8080, 9090] }));
    const ip = (await rt.podSandboxStatus(sandbox)).ip;
    expect(ip).toBe(`${subnet}.2`);
    const res = await get(ip, 8080, "/hello?x=1");
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ pod: "web-1", namespace: "default", node: "n1", zone: "local-1a", container: "web", ip, path: "/hello?x=1", method: "GET", remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
    expect((await get(ip, 9090, "/healthz")).status).toBe(200);

    await rt.stopContainer(container, 30);
    await expect(get(ip, 8080, "/")).rejects.toMatchObject({ code: "ECONNREFUSED" });
    const texts = await logTexts(config, "web");
    expect(texts).toContain("GET /hello?x=1 200");
    expect(texts).toContain("GET /healthz 200");
  });

  it("fails probes after probe-fail-after: HTTP 503 and exec exit 1", async () => {
    const { container, sandbox, config } = await runPod("sick", { "sim.kubelab.io/probe-fail-after": "10s" }, containerConfig("app", { ports: [8080] }));
    const ip = (await rt.podSandboxStatus(sandbox)).ip;
    expect((await get(ip, 8080, "/healthz")).status).toBe(200);
    expect((await rt.execSync(container, ["cat", "/tmp/healthy"], 1)).exitCode).toBe(0);

    await clock.advance(10_000);
    const res = await get(ip, 8080, "/healthz");
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body)).toMatchObject({ pod: "sick", error: "simulated probe failure" });
    const ex = await rt.execSync(container, ["cat", "/tmp/healthy"], 1);
    expect(ex.exitCode).toBe(1);
    expect(ex.stderr.toString()).toBe("simulated probe failure\n");
    expect((await rt.containerStatus(container)).state).toBe("CONTAINER_RUNNING");
    expect(await logTexts(config, "app")).toContain("GET /healthz 503");
  });

  it("keeps a container running when its port cannot be bound", async () => {
    const config = sandboxConfig("clash");
    const sb = await rt.runPodSandbox(config);
    const a = await rt.createContainer(sb, containerConfig("a", { ports: [8080] }), config);
    const b = await rt.createContainer(sb, containerConfig("b", { ports: [8080] }), config);
    await rt.startContainer(a);
    await rt.startContainer(b);
    expect((await rt.containerStatus(b)).state).toBe("CONTAINER_RUNNING");
    expect(await logOf(config, "b")).toMatch(/stderr F cannot listen on 127\.[\d.]+:8080: EADDRINUSE/);
    expect((await get((await rt.podSandboxStatus(sb)).ip, 8080, "/")).body).toMatch(/"container":"a"/);
  });

  it("writes CRI-format log lines: start, echo output, exit", async () => {
    const { container, config } = await runPod("job", {}, containerConfig("main", { command: ["sh", "-c", "echo hi; echo 'two words'; exit 3"] }));
    const st = await rt.containerStatus(container);
    expect(st).toMatchObject({ state: "CONTAINER_EXITED", exitCode: 3, reason: "Error" });
    expect(st.logPath).toBe(join(config.logDirectory, "main/0.log"));
    const raw = await logOf(config, "main");
    const lines = raw.split("\n").filter((l) => l !== "");
    for (const l of lines) expect(l).toMatch(/^2024-01-01T00:00:00\.000000000Z (stdout|stderr) F .*$/);
    expect(lines.map((l) => l.split(" ").slice(3).join(" "))).toEqual([
      `simulated container "main" started on node n1 (zone local-1a), pod IP ${subnet}.2`,
      "hi",
      "two words",
      'simulated container "main" exited with code 3',
    ]);
  });

  it("runs `sleep 5` for five seconds of clock time and exits 0", async () => {
    const { container } = await runPod("sleeper", {}, containerConfig("main", { command: ["sleep"], args: ["5"] }));
    await clock.advance(4999);
    expect((await rt.containerStatus(container)).state).toBe("CONTAINER_RUNNING");
    await clock.advance(1);
    expect(await rt.containerStatus(container)).toMatchObject({ state: "CONTAINER_EXITED", exitCode: 0, reason: "Completed" });
  });

  it("runs a job's script to completion: echo, sleep, exit code", async () => {
    const { container, config } = await runPod("x", {}, containerConfig("x", { command: ["sh", "-c", "echo hi; sleep 2; exit 3"] }));
    expect((await rt.containerStatus(container)).state).toBe("CONTAINER_RUNNING");
    await clock.advance(2000);
    expect(await rt.containerStatus(container)).toMatchObject({ exitCode: 3, state: "CONTAINER_EXITED" });
    expect(await logTexts(config, "x")).toContain("hi");
  });

  it("runs an unknown program (nginx, sleep infinity) until stopped, which exits it with 143", async () => {
    const a = await runPod("nginx", {}, containerConfig("main", { command: ["nginx", "-g", "daemon off;"] }));
    const b = await runPod("inf", {}, containerConfig("main", { command: ["/bin/sh", "-c", "echo started; sleep infinity"] }));
    expect(clock.pending()).toBe(0);
    await clock.advance(86_400_000);
    expect((await rt.containerStatus(a.container)).state).toBe("CONTAINER_RUNNING");
    expect((await rt.containerStatus(b.container)).state).toBe("CONTAINER_RUNNING");
    expect(await logTexts(b.config, "main")).toContain("started");
    await rt.stopContainer(a.container, 30);
    expect(await rt.containerStatus(a.container)).toMatchObject({ state: "CONTAINER_EXITED", exitCode: 143, reason: "Error", finishedAt: clock.now() });
  });

  it("lets annotations decide the end even when the command line is a script", async () => {
    const { container } = await runPod("both", { "sim.kubelab.io/exit-after": "30s", "sim.kubelab.io/exit-code": "4" }, containerConfig("main", { command: ["sh", "-c", "exit 0"] }));
    expect((await rt.containerStatus(container)).state).toBe("CONTAINER_RUNNING");
    await clock.advance(30_000);
    expect(await rt.containerStatus(container)).toMatchObject({ state: "CONTAINER_EXITED", exitCode: 4 });
  });

  it("execSync evaluates tiny-shell commands, times out on the clock, and needs a running container", async () => {
    const { container } = await runPod("exec", {}, containerConfig("main", { command: ["httpd", "-f"] }));
    const ok = await rt.execSync(container, ["sh", "-c", "echo ready && exit 0"], 1);
    expect(ok).toMatchObject({ exitCode: 0 });
    expect(ok.stdout.toString()).toBe("ready\n");
    expect((await rt.execSync(container, ["false"], 1)).exitCode).toBe(1);

    const slow = rejection(rt.execSync(container, ["sleep", "10"], 2));
    await clock.advance(2000);
    expect(await slow).toMatchObject({ code: GRPC_DEADLINE_EXCEEDED });

    const waiting = rt.execSync(container, ["sleep", "1"], 0);
    await clock.advance(1000);
    expect((await waiting).exitCode).toBe(0);

    await rt.stopContainer(container, 0);
    expect((await rejection(rt.execSync(container, ["true"], 1))).message).toBe("container is in CONTAINER_EXITED state");
  });

  it("stopPodSandbox kills running containers (137) and is idempotent; removal frees everything", async () => {
    const { sandbox, container, config } = await runPod("pod", {}, containerConfig("main", { command: ["httpd", "-f"], ports: [8080] }));
    const ip = (await rt.podSandboxStatus(sandbox)).ip;
    await rt.stopPodSandbox(sandbox);
    await rt.stopPodSandbox(sandbox);
    expect((await rt.podSandboxStatus(sandbox)).state).toBe("SANDBOX_NOTREADY");
    expect(await rt.containerStatus(container)).toMatchObject({ state: "CONTAINER_EXITED", exitCode: 137, reason: "Error" });
    await expect(get(ip, 8080, "/")).rejects.toMatchObject({ code: "ECONNREFUSED" });
    const again = await rejection(rt.createContainer(sandbox, containerConfig("late"), config));
    expect(again.message).toMatch(/is not running/);

    await rt.stopContainer(container, 0);
    expect((await rt.containerStatus(container)).exitCode).toBe(137);
    await rt.removePodSandbox(sandbox);
    await rt.removePodSandbox(sandbox);
    await rt.removeContainer(container);
    await rt.stopContainer(container, 0);
    expect(await rt.listPodSandbox()).toEqual([]);
    expect(await rt.listContainers()).toEqual([]);
    // The log file stays: it belongs to the kubelet's layout.
    expect(await logOf(config, "main")).toMatch(/killed \(SIGKILL\)/);
    // The same pod can run again once its sandbox is gone.
    await rt.runPodSandbox(config);
  });

  it("removeContainer kills a running container and keeps its log", async () => {
    const { container, config } = await runPod("rm", {}, containerConfig("main", { command: ["httpd", "-f"] }));
    await rt.removeContainer(container);
    expect(isRuntimeNotFound(await rejection(rt.containerStatus(container)))).toBe(true);
    expect(await logOf(config, "main")).toMatch(/started on node n1/);
  });

  it("answers NOT_FOUND (code 5) for the status of unknown ids", async () => {
    const s = await rejection(rt.podSandboxStatus("nope"));
    expect(s.code).toBe(GRPC_NOT_FOUND);
    expect(s.message).toMatch(/"nope": not found/);
    expect(isRuntimeNotFound(await rejection(rt.containerStatus("nope")))).toBe(true);
    expect(isRuntimeNotFound(await rejection(rt.startContainer("nope")))).toBe(true);
    expect(isRuntimeNotFound(await rejection(rt.execSync("nope", ["true"], 1)))).toBe(true);
    expect(isRuntimeNotFound(await rejection(rt.createContainer("nope", containerConfig("x"), sandboxConfig("x"))))).toBe(true);
  });

  it("treats images named notfound/does-not-exist as missing: pull fails with NOT_FOUND", async () => {
    expect(await rt.imageStatus("nginx:1.27")).toMatchObject({ id: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) });
    expect(await rt.imageStatus("does-not-exist:v1")).toBeUndefined();
    expect(await rt.pullImage("busybox")).toBe((await rt.imageStatus("docker.io/library/busybox:latest"))?.id);
    const err = await rejection(rt.pullImage("example/notfound"));
    expect(err.code).toBe(GRPC_NOT_FOUND);
    expect(err.message).toBe(
      'failed to pull and unpack image "docker.io/example/notfound:latest": failed to resolve reference "docker.io/example/notfound:latest": docker.io/example/notfound:latest: not found',
    );
    const config = sandboxConfig("img");
    const sb = await rt.runPodSandbox(config);
    expect((await rejection(rt.createContainer(sb, containerConfig("c", { image: "does-not-exist" }), config))).code).toBe(GRPC_NOT_FOUND);
  });

  it("filters listContainers and listPodSandbox by sandbox, state and labels", async () => {
    const a = await runPod("a", {}, containerConfig("main", { command: ["httpd", "-f"] }));
    const b = await runPod("b", {}, containerConfig("main", { command: ["true"] }));
    expect((await rt.listContainers({ podSandboxId: a.sandbox })).map((c) => c.id)).toEqual([a.container]);
    expect((await rt.listContainers({ state: "CONTAINER_EXITED" })).map((c) => c.id)).toEqual([b.container]);
    expect((await rt.listContainers({ labelSelector: { "io.kubernetes.container.name": "main" } })).length).toBe(2);
    expect(await rt.listContainers({ labelSelector: { "io.kubernetes.container.name": "other" } })).toEqual([]);
    await rt.stopPodSandbox(b.sandbox);
    expect((await rt.listPodSandbox({ state: "SANDBOX_READY" })).map((s) => s.id)).toEqual([a.sandbox]);
    expect((await rt.listPodSandbox({ labelSelector: { "io.kubernetes.pod.name": "b" } })).map((s) => s.id)).toEqual([b.sandbox]);
  });

  it("close() stops every echo server and timer", async () => {
    const { sandbox } = await runPod("c", { "sim.kubelab.io/exit-after": "1h" }, containerConfig("main", { ports: [8080] }));
    const ip = (await rt.podSandboxStatus(sandbox)).ip;
    expect(clock.pending()).toBe(1);
    await rt.close();
    expect(clock.pending()).toBe(0);
    await expect(get(ip, 8080, "/")).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });
});

describe("busybox httpd and nc in the simulated runtime", () => {
  /** The echo answers once the command has bound its port (it runs after StartContainer returns). */
  async function served(ip: string, port: number, path = "/"): Promise<{ status: number; body: string }> {
    return until(`${ip}:${port} to answer`, async () => get(ip, port, path).catch(() => undefined));
  }
  async function exited(id: string): Promise<{ exitCode: number; reason: string }> {
    return until("the container to exit", async () => {
      const st = await rt.containerStatus(id);
      return st.state === "CONTAINER_EXITED" ? st : undefined;
    });
  }

  it("serves the echo for `httpd -f -p 8080` without a ports list, silently, until the container stops", async () => {
    const { sandbox, container, config } = await runPod("web", {}, containerConfig("web", { command: ["httpd", "-f", "-p", "8080"] }));
    const ip = (await rt.podSandboxStatus(sandbox)).ip;
    const res = await served(ip, 8080, "/x");
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ pod: "web", namespace: "default", node: "n1", zone: "local-1a", container: "web", ip, path: "/x", headers: expect.objectContaining({ host: expect.any(String) }) });
    expect((await rt.containerStatus(container)).state).toBe("CONTAINER_RUNNING");
    await rt.stopContainer(container, 30);
    expect((await rt.containerStatus(container)).exitCode).toBe(143);
    await expect(get(ip, 8080, "/")).rejects.toMatchObject({ code: "ECONNREFUSED" });
    // busybox httpd without -v logs nothing per request.
    expect((await logTexts(config, "web")).filter((t) => t.includes("GET"))).toEqual([]);
  });

  it("reads clustered and attached options, `exec httpd` and `busybox httpd` in a script", async () => {
    const a = await runPod("a", {}, containerConfig("main", { command: ["/bin/httpd", "-fp8081"] }));
    const b = await runPod("b", {}, containerConfig("main", { command: ["sh", "-c", "echo starting; exec busybox httpd -f -v -p 8082"] }));
    expect((await served((await rt.podSandboxStatus(a.sandbox)).ip, 8081)).status).toBe(200);
    expect((await served((await rt.podSandboxStatus(b.sandbox)).ip, 8082)).status).toBe(200);
    expect((await rt.containerStatus(b.container)).state).toBe("CONTAINER_RUNNING");
    expect(await logTexts(b.config, "main")).toContain("starting");
  });

  it("serves a port both declared and named by the command once, by the command; other declared ports keep their echo", async () => {
    const { sandbox, config } = await runPod("both", {}, containerConfig("web", { command: ["httpd", "-f", "-v", "-p", "8080"], ports: [8080, 9090] }));
    const ip = (await rt.podSandboxStatus(sandbox)).ip;
    expect((await served(ip, 8080, "/a")).status).toBe(200);
    expect((await get(ip, 9090, "/b")).status).toBe(200);
    const texts = await logTexts(config, "web");
    expect(texts.some((t) => t.startsWith("cannot listen"))).toBe(false);
    expect(texts).toContain("GET /b 200"); // the declared echo's line
    expect(texts).toContainEqual(expect.stringMatching(/^\[::ffff:127\.0\.0\.1\]:\d+: response:200$/)); // httpd -v
    expect(texts.filter((t) => t === "GET /a 200")).toHaveLength(1); // a declared port keeps its access log, once
  });

  it("httpd -v and -vv log as busybox does; an IPv4 bind address logs IPv4 peers", async () => {
    const config = sandboxConfig("verbose");
    const sb = await rt.runPodSandbox(config);
    const ip = (await rt.podSandboxStatus(sb)).ip;
    const id = await rt.createContainer(sb, containerConfig("main", { command: ["httpd", "-f", "-vv", "-p", `${ip}:8080`] }), config);
    await rt.startContainer(id);
    await served(ip, 8080, "/p?q=1");
    const texts = await logTexts(config, "main");
    expect(texts).toContainEqual(expect.stringMatching(/^127\.0\.0\.1:\d+: url:\/p$/));
    expect(texts).toContainEqual(expect.stringMatching(/^127\.0\.0\.1:\d+: response:200$/));
  });

  it("without -f httpd daemonizes: the shell goes on while it serves, and it dies with the container", async () => {
    const a = await runPod("daemon", {}, containerConfig("main", { command: ["sh", "-c", "httpd -p 8080 && echo daemonized; sleep 10"] }));
    const ip = (await rt.podSandboxStatus(a.sandbox)).ip;
    expect((await served(ip, 8080)).status).toBe(200);
    expect(await logTexts(a.config, "main")).toContain("daemonized");
    await clock.advance(10_000);
    expect(await rt.containerStatus(a.container)).toMatchObject({ state: "CONTAINER_EXITED", exitCode: 0, reason: "Completed" });
    await expect(get(ip, 8080, "/")).rejects.toMatchObject({ code: "ECONNREFUSED" });

    // Alone, `httpd -p 8080` returns at once: the container completes (and its daemon goes with it).
    const b = await runPod("alone", {}, containerConfig("main", { command: ["httpd", "-p", "8080"] }));
    expect(await exited(b.container)).toMatchObject({ exitCode: 0, reason: "Completed" });
  });

  it("fails with busybox's bind message (exit 1) when the port is taken in the pod, or the address is not the pod's", async () => {
    const config = sandboxConfig("taken");
    const sb = await rt.runPodSandbox(config);
    const first = await rt.createContainer(sb, containerConfig("first", { command: ["httpd", "-f", "-p", "8080"] }), config);
    await rt.startContainer(first);
    const ip = (await rt.podSandboxStatus(sb)).ip;
    await served(ip, 8080);
    const second = await rt.createContainer(sb, containerConfig("second", { command: ["httpd", "-f", "-p", "8080"] }), config);
    await rt.startContainer(second);
    expect(await exited(second)).toMatchObject({ exitCode: 1, reason: "Error" });
    expect(await logOf(config, "second")).toMatch(/stderr F httpd: bind: Address in use\n/);
    // A declared echo holds its port like a process: a command after it cannot bind it.
    const echo = await rt.createContainer(sb, containerConfig("echo", { ports: [9090] }), config);
    await rt.startContainer(echo);
    const third = await rt.createContainer(sb, containerConfig("third", { command: ["nc", "-l", "-p", "9090"] }), config);
    await rt.startContainer(third);
    expect(await exited(third)).toMatchObject({ exitCode: 1 });
    expect(await logOf(config, "third")).toMatch(/stderr F nc: bind: Address in use\n/);
    // Not an address of the pod.
    const elsewhere = await rt.createContainer(sb, containerConfig("elsewhere", { command: ["httpd", "-f", "-p", "10.1.2.3:80"] }), config);
    await rt.startContainer(elsewhere);
    expect(await exited(elsewhere)).toMatchObject({ exitCode: 1 });
    expect(await logOf(config, "elsewhere")).toMatch(/httpd: bind: Address not available\n/);
    // The first holder is untouched by all this.
    expect((await rt.containerStatus(first)).state).toBe("CONTAINER_RUNNING");
    expect((await served(ip, 8080)).status).toBe(200);
  });

  it("binds the pod's loopback privately: unreachable from outside, but the port is taken in the pod", async () => {
    const config = sandboxConfig("lo");
    const sb = await rt.runPodSandbox(config);
    const ip = (await rt.podSandboxStatus(sb)).ip;
    const lo = await rt.createContainer(sb, containerConfig("lo", { command: ["httpd", "-f", "-p", "127.0.0.1:8080"] }), config);
    await rt.startContainer(lo);
    const all = await rt.createContainer(sb, containerConfig("all", { command: ["sh", "-c", "sleep 1; httpd -f -p 8080"] }), config);
    await rt.startContainer(all);
    await clock.advance(1000);
    expect(await exited(all)).toMatchObject({ exitCode: 1 });
    expect((await rt.containerStatus(lo)).state).toBe("CONTAINER_RUNNING");
    await expect(get(ip, 8080, "/")).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });

  it("httpd -h DIR inside a volume serves its files as busybox does; outside any volume, the echo", async () => {
    const vol = join(logRoot, "vol");
    await mkdir(join(vol, "html", "sub"), { recursive: true });
    await writeFile(join(vol, "html", "index.html"), "<h1>hello</h1>\n");
    await writeFile(join(vol, "html", "sub", "a.txt"), "text\n");
    await writeFile(join(logRoot, "secret"), "no\n");
    await symlink(join(logRoot, "secret"), join(vol, "html", "escape"));
    const mounts = [{ containerPath: "/www", hostPath: vol, readonly: true }];
    const { sandbox } = await runPod("files", {}, containerConfig("web", { command: ["httpd", "-f", "-p", "8080", "-h", "html"], workingDir: "/www", mounts }));
    const ip = (await rt.podSandboxStatus(sandbox)).ip;
    const index = await until("httpd", async () => request(ip, 8080, "/").catch(() => undefined));
    expect(index).toMatchObject({ status: 200, body: "<h1>hello</h1>\n" });
    expect(index.headers["content-type"]).toBe("text/html");
    expect(index.headers["content-length"]).toBe("15");
    const txt = await request(ip, 8080, "/sub/a.txt");
    expect(txt).toMatchObject({ status: 200, body: "text\n" });
    expect(txt.headers["content-type"]).toBe("text/plain");
    const dir = await request(ip, 8080, "/sub?x=1");
    expect(dir.status).toBe(302);
    expect(dir.headers.location).toBe("/sub/?x=1");
    const missing = await request(ip, 8080, "/sub/");
    expect(missing.status).toBe(404);
    expect(missing.body).toBe("<HTML><HEAD><TITLE>404 Not Found</TITLE></HEAD>\n<BODY><H1>404 Not Found</H1>\nThe requested URL was not found\n</BODY></HTML>\n");
    expect((await request(ip, 8080, "/escape")).status).toBe(404);
    expect((await request(ip, 8080, "/../secret")).status).toBe(400);
    expect((await request(ip, 8080, "/sub/%2e%2e/index.html")).status).toBe(200);
    expect((await request(ip, 8080, "/", "POST")).status).toBe(501);
    const head = await request(ip, 8080, "/sub/a.txt", "HEAD");
    expect(head).toMatchObject({ status: 200, body: "" });

    const echo = await runPod("noroot", {}, containerConfig("web", { command: ["httpd", "-f", "-p", "8080", "-h", "/var/www"], mounts }));
    const eip = (await rt.podSandboxStatus(echo.sandbox)).ip;
    expect(JSON.parse((await served(eip, 8080, "/index.html")).body)).toMatchObject({ pod: "noroot", path: "/index.html" });

    const bad = await runPod("nodir", {}, containerConfig("web", { command: ["httpd", "-f", "-h", "/www/nope"], mounts }));
    expect(await exited(bad.container)).toMatchObject({ exitCode: 1 });
    expect(await logTexts(bad.config, "web")).toContain("httpd: can't change directory to '/www/nope': No such file or directory");
  });

  it("answers 503 from a command's httpd once probe-fail-after has passed", async () => {
    const { sandbox } = await runPod("sick", { "sim.kubelab.io/probe-fail-after": "5s" }, containerConfig("web", { command: ["httpd", "-f", "-p", "8080"] }));
    const ip = (await rt.podSandboxStatus(sandbox)).ip;
    expect((await served(ip, 8080, "/healthz")).status).toBe(200);
    await clock.advance(5000);
    expect((await get(ip, 8080, "/healthz")).status).toBe(503);
  });

  it("nc -l -p PORT prints one connection's data to the log and exits 0; the port is free again", async () => {
    const { sandbox, container, config } = await runPod("nc", {}, containerConfig("nc", { command: ["nc", "-l", "-v", "-p", "9000"] }));
    const ip = (await rt.podSandboxStatus(sandbox)).ip;
    const reply = await until("nc to listen", async () => tcp(ip, 9000, "hello\nworld").catch(() => undefined));
    expect(reply).toBe(""); // stdin is at EOF: nc sends nothing and half-closes
    expect(await exited(container)).toMatchObject({ exitCode: 0, reason: "Completed" });
    const texts = await logTexts(config, "nc");
    expect(texts).toContain("listening on [::]:9000 ...");
    expect(texts).toContainEqual(expect.stringMatching(new RegExp(`^connect to \\[::ffff:${ip.replace(/\./g, "\\.")}\\]:9000 from \\[::ffff:127\\.0\\.0\\.1\\]:\\d+ \\(`)));
    expect(texts.slice(-3, -1)).toEqual(["hello", "world"]);
    await expect(tcp(ip, 9000, "x")).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });

  it("nc -lk -p PORT -e cat echoes every connection and keeps listening; without -e, -k still stops after one (busybox)", async () => {
    const a = await runPod("cat", {}, containerConfig("nc", { command: ["nc", "-lk", "-p", "9001", "-e", "cat"] }));
    const ip = (await rt.podSandboxStatus(a.sandbox)).ip;
    expect(await until("nc", async () => tcp(ip, 9001, "one\n").catch(() => undefined))).toBe("one\n");
    expect(await tcp(ip, 9001, "two")).toBe("two");
    expect((await rt.containerStatus(a.container)).state).toBe("CONTAINER_RUNNING");

    const b = await runPod("k", {}, containerConfig("nc", { command: ["sh", "-c", "nc -lk -p 9002; exit 4"] }));
    const bip = (await rt.podSandboxStatus(b.sandbox)).ip;
    await until("nc", async () => tcp(bip, 9002, "x").catch(() => undefined));
    expect(await exited(b.container)).toMatchObject({ exitCode: 4 });
  });

  it("nc -l -e PROG runs a tiny-shell PROG on the connection and exits with its status", async () => {
    const { sandbox, container } = await runPod("greet", {}, containerConfig("nc", { command: ["nc", "-lp", "9003", "-e", "sh", "-c", "echo hi there; exit 3"] }));
    const ip = (await rt.podSandboxStatus(sandbox)).ip;
    expect(await until("nc", async () => tcp(ip, 9003, "").catch(() => undefined))).toBe("hi there\n");
    expect(await exited(container)).toMatchObject({ exitCode: 3, reason: "Error" });
  });

  it("nc -w SEC gives up after SEC seconds of clock time without a connection", async () => {
    const { container, config } = await runPod("wait", {}, containerConfig("nc", { command: ["nc", "-l", "-p", "9004", "-w", "2"] }));
    await until("nc to listen", async () => ((await logTexts(config, "nc")).length > 0 && clock.pending() > 0 ? true : undefined));
    await clock.advance(2000);
    expect(await exited(container)).toMatchObject({ exitCode: 1 });
    expect(await logTexts(config, "nc")).toContain("nc: timeout");
  });

  it("prints usage errors as busybox does", async () => {
    const a = await runPod("bad", {}, containerConfig("main", { command: ["httpd", "-x"] }));
    expect(await rt.containerStatus(a.container)).toMatchObject({ state: "CONTAINER_EXITED", exitCode: 1 });
    expect((await logTexts(a.config, "main"))[1]).toBe("httpd: invalid option -- 'x'");
    const b = await runPod("dec", {}, containerConfig("main", { command: ["httpd", "-d", "a%20b+c"] }));
    expect(await rt.containerStatus(b.container)).toMatchObject({ exitCode: 0 });
    expect(await logTexts(b.config, "main")).toContain("a b c");
  });
});

describe("busybox argv", () => {
  it.each([
    { argv: ["httpd", "-f", "-p", "8080"], want: { kind: "httpd", foreground: true, verbose: 0, bind: { host: "", port: 8080 } } },
    { argv: ["httpd", "-fvvp8080", "-h", "/www"], want: { kind: "httpd", foreground: true, verbose: 2, bind: { host: "", port: 8080 }, home: "/www" } },
    { argv: ["httpd", "-p", "127.0.0.1:81"], want: { kind: "httpd", foreground: false, bind: { host: "127.0.0.1", port: 81 } } },
    { argv: ["httpd", "-p", "[::1]:82"], want: { kind: "httpd", bind: { host: "::1", port: 82 } } },
    { argv: ["httpd", "-p", "0.0.0.0"], want: { kind: "httpd", bind: { host: "0.0.0.0", port: 80 } } },
    { argv: ["httpd"], want: { kind: "httpd", bind: { host: "", port: 80 } } },
    { argv: ["httpd", "-e", "<a b>"], want: { kind: "exit", status: 0, stdout: ["&#60;a&#32;b&#62;"] } },
    { argv: ["httpd", "-p"], want: { kind: "exit", status: 1, stderr: expect.arrayContaining(["httpd: option requires an argument -- 'p'"]) } },
    { argv: ["busybox", "nc", "-l", "-p", "9000"], want: { kind: "nc-listen", bind: { host: "", port: 9000 }, persistent: false, prog: undefined } },
    { argv: ["nc", "-lke", "/bin/cat"], want: { kind: "nc-listen", bind: { host: "", port: 0 }, persistent: true, prog: ["/bin/cat"] } },
    { argv: ["nc", "-l", "-l", "-s", "127.0.0.1", "-p", "7", "-e", "cat", "-n"], want: { kind: "nc-listen", bind: { host: "127.0.0.1", port: 7 }, persistent: true, prog: ["cat", "-n"] } },
    { argv: ["nc", "-lk", "-p", "7"], want: { kind: "nc-listen", persistent: false } },
    { argv: ["nc", "example.com", "80"], want: { kind: "opaque" } },
    { argv: ["nc", "-lu", "-p", "53"], want: { kind: "opaque" } },
    { argv: ["nginx"], want: undefined },
  ])("$argv", ({ argv, want }) => {
    const got = parseApplet(argv);
    if (want === undefined) expect(got).toBeUndefined();
    else expect(got).toMatchObject(want);
  });

  it("names the ports a command line serves on every address", () => {
    expect([...wildcardPorts([["echo", "x"], ["exec", "httpd", "-f", "-p", "8080"], ["nc", "-l", "-p", "9000"], ["httpd", "-p", "127.0.0.1:81"], ["nc", "-l"]])]).toEqual([8080, 9000]);
  });

  it("runs a pending command in a script and goes on when it reports", () => {
    const script = scriptFromArgv(["sh", "-c", "httpd -p 80 && echo up; httpd -p 80 || echo failed"]);
    expect(script).toBeDefined();
    const out: string[] = [];
    const dones: ((s: number) => void)[] = [];
    let status: number | undefined;
    runScript(script!, { stdout: (t) => out.push(t), stderr: () => {}, sleep: () => () => {}, unknown: () => ({ start: (done) => (dones.push(done), () => {}) }) }, (s) => (status = s));
    expect(dones.length).toBe(1);
    dones[0](0);
    expect(out).toEqual(["up"]);
    dones[1](1);
    expect(out).toEqual(["up", "failed"]);
    expect(status).toBe(0);
  });
});

describe("tiny shell", () => {
  /** Runs a script synchronously (sleeps complete at once); "block" when it never finishes. */
  function sh(argv: string[]): { out: string[]; status: number | "block" } {
    const script = scriptFromArgv(argv);
    if (!script) return { out: [], status: "block" };
    const out: string[] = [];
    let status: number | "block" = "block";
    const host: ShellHost = {
      stdout: (t) => out.push(t),
      stderr: (t) => out.push(`err: ${t}`),
      sleep: (ms, done) => {
        if (Number.isFinite(ms)) done();
        return () => {};
      },
      unknown: () => "block",
    };
    runScript(script, host, (s) => (status = s));
    return { out, status };
  }

  it.each([
    { argv: ["sh", "-c", "echo hi; exit 3"], out: ["hi"], status: 3 },
    { argv: ["sh", "-c", "false && echo no || echo yes"], out: ["yes"], status: 0 },
    { argv: ["sh", "-c", "true || echo no && echo yes"], out: ["yes"], status: 0 },
    { argv: ["sh", "-c", "false; echo after"], out: ["after"], status: 0 },
    { argv: ["sh", "-c", "false"], out: [], status: 1 },
    { argv: ["/bin/sh", "-ec", "false; echo unreachable"], out: [], status: 1 },
    { argv: ["sh", "-ec", "false || echo recovered"], out: ["recovered"], status: 0 },
    { argv: ["bash", "-c", "echo \"a  b\" 'c;d' e\\ f # comment\necho line2 &&\n exit"], out: ["a  b c;d e f", "line2"], status: 0 },
    { argv: ["sh", "-c", "sleep 1.5; sleep 2m; exec true"], out: [], status: 0 },
    { argv: ["sh", "-c", "sleep soon"], out: ["err: sleep: invalid number 'soon'"], status: 1 },
    { argv: ["echo", "x", "y"], out: ["x y"], status: 0 },
    { argv: ["/bin/false"], out: [], status: 1 },
    { argv: ["sh", "-c", "echo before; httpd -f; echo never"], out: ["before"], status: "block" as const },
    { argv: ["sh", "-c", "while true; do sleep 1; done"], out: [], status: "block" as const },
    { argv: ["sh", "-c", "echo $HOME"], out: [], status: "block" as const },
    { argv: ["sh", "-c", "cat /etc/hosts | grep x"], out: [], status: "block" as const },
    { argv: ["sh", "-c", "echo x &&"], out: [], status: "block" as const },
    { argv: ["nginx", "-g", "daemon off;"], out: [], status: "block" as const },
    { argv: [], out: [], status: "block" as const },
  ])("$argv → $status", ({ argv, out, status }) => {
    expect(sh(argv)).toEqual({ out, status });
  });

  it("parses and-or lists into commands with their operators", () => {
    expect(parseScript("a 1 && b\n\nc || d; e")?.commands).toEqual([
      { op: ";", argv: ["a", "1"] },
      { op: "&&", argv: ["b"] },
      { op: ";", argv: ["c"] },
      { op: "||", argv: ["d"] },
      { op: ";", argv: ["e"] },
    ]);
  });
});

describe("parseGoDuration", () => {
  it.each([
    ["1s", 1000],
    ["500ms", 500],
    ["2m", 120_000],
    ["1.5s", 1500],
    ["1m30s", 90_000],
    ["0", 0],
    ["1h", 3_600_000],
  ])("%s → %d ms", (v, ms) => expect(parseGoDuration(v)).toBe(ms));
  it.each(["", "soon", "5", "-1s", "1 s"])("%j is invalid", (v) => expect(parseGoDuration(v)).toBeUndefined());
});
