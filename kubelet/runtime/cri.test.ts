// Integration: CriRuntime against a real containerd + runc + CNI started by startContainerd in a
// temporary data directory. Needs root and the Debian packages containerd, runc,
// containernetworking-plugins, busybox-static, iptables (CI installs them). Every packet stays on
// this machine: the pod talks to the host over the local bridge.

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newLogger } from "../../client/index.ts";
import { cgroupParentFor, cgroupRoots, mountsUnder, startContainerd, BUSYBOX_IMAGE, type ContainerdHost } from "./containerd.ts";
import { CriRuntime } from "./cri.ts";
import { acquireContainerdLock } from "../../test/harness/hostlock.ts";
import {
  containerLogPath,
  isRuntimeNotFound,
  podLogDirectory,
  GRPC_DEADLINE_EXCEEDED,
  type ContainerConfig,
  type ContainerStatus,
  type PodSandboxConfig,
  type RuntimeError,
} from "./types.ts";

function missingPrerequisite(): string | undefined {
  if (process.getuid?.() !== 0) return "not running as root";
  const path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".split(":");
  for (const bin of ["containerd", "containerd-shim-runc-v2", "runc", "ctr", "busybox", "iptables", "ip"]) {
    if (!path.some((d) => existsSync(join(d, bin)))) return `${bin} is not installed`;
  }
  if (!existsSync("/usr/lib/cni/bridge")) return "CNI plugins (/usr/lib/cni) are not installed";
  return undefined;
}
const skipReason = missingPrerequisite();
if (skipReason && process.env.CI) throw new Error(`CI must run the containerd CRI suite: ${skipReason}`);
if (skipReason) console.warn(`skipping the containerd CRI integration suite: ${skipReason}`);

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: "utf8" });
const shOk = (cmd: string, args: string[]): boolean => {
  try {
    execFileSync(cmd, args, { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
};

function linkIndex(name: string): number | undefined {
  try {
    return (JSON.parse(execFileSync("ip", ["-j", "link", "show", "dev", name], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })) as { ifindex: number }[])[0]?.ifindex;
  } catch {
    return undefined;
  }
}

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 2_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
}

describe.skipIf(skipReason !== undefined)("CriRuntime on a real containerd", () => {
  const log = newLogger("cri-test");
  const uid = "0b5e3c2a-1d7f-4c55-9d7e-cri0test0001";
  let dataDir: string;
  let host: ContainerdHost;
  let rt: CriRuntime;
  let ipForwardBefore: string;
  let serviceRouteBefore: string;
  let sandboxId: string;
  let sandboxConfig: PodSandboxConfig;
  let podIP: string;
  let httpdId: string;
  let bridgeIndex: number | undefined;

  const container = (name: string, attempt: number, script: string): ContainerConfig => ({
    metadata: { name, attempt },
    image: BUSYBOX_IMAGE,
    command: ["/bin/sh", "-c"],
    args: [script],
    envs: [{ key: "GREETING", value: "hello-kubelab" }],
    mounts: [],
    logPath: containerLogPath(name, attempt),
    labels: { "io.kubernetes.container.name": name, "io.kubernetes.pod.uid": uid },
    annotations: {},
    resources: { cpuShares: 2, cpuQuota: 0, cpuPeriod: 0, memoryLimitInBytes: 0 },
    ports: [],
  });

  async function run(config: ContainerConfig): Promise<string> {
    const id = await rt.createContainer(sandboxId, config, sandboxConfig);
    await rt.startContainer(id);
    return id;
  }

  const exited = (id: string): Promise<ContainerStatus> =>
    eventually(`container ${id} to exit`, async () => {
      const s = await rt.containerStatus(id);
      return s.state === "CONTAINER_EXITED" ? s : undefined;
    });

  let release: (() => void) | undefined;

  beforeAll(async () => {
    // One containerd suite at a time: `kubelab up` in the others refuses a bridge a live host holds.
    release = await acquireContainerdLock("kubelet/runtime/cri.test.ts");
    dataDir = await mkdtemp(join(tmpdir(), "kubelab-cri-"));
    // Another suite (or a `kubelab up --runtime containerd`) may be using kubelab0 and 10.88.0.0/16 in
    // this network namespace right now: take turns rather than fail.
    const sharing = shOk("iptables", ["-S", "KUBELAB-FORWARD"]);
    ipForwardBefore = readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim();
    serviceRouteBefore = sh("ip", ["route", "show", "exact", "10.96.0.0/16"]);
    host = await startContainerd({ dataDir, log, waitForBridgeMs: 100_000 });
    if (sharing) {
      // the values before any kubelab host started are not observable here: the last host restores them
      ipForwardBefore = "unknown";
    }
    bridgeIndex = linkIndex("kubelab0");
    rt = await CriRuntime.connect(host.endpoint, { timeoutMs: 30_000 });

    const logDirectory = podLogDirectory(join(dataDir, "pods"), "default", "web", uid);
    await mkdir(logDirectory, { recursive: true });
    sandboxConfig = {
      metadata: { name: "web", namespace: "default", uid, attempt: 0 },
      hostname: "web",
      logDirectory,
      dnsConfig: { servers: ["10.96.0.10"], searches: ["default.svc.cluster.local"], options: ["ndots:5"] },
      // A host port makes the portmap plugin create CNI-HOSTPORT-* chains, which teardown must remove.
      portMappings: [{ protocol: "TCP", containerPort: 8080, hostPort: 18080 }],
      labels: { "io.kubernetes.pod.uid": uid, "io.kubernetes.pod.name": "web", "kubelab.io/node": "cri-test" },
      annotations: { "example.com/note": "kept as is" },
      cgroupParent: cgroupParentFor("BestEffort", uid),
    };
  }, 1_200_000); // the lock may be held by another containerd suite for minutes

  afterAll(async () => {
    await rt?.close();
    await host?.stop();
    if (dataDir && mountsUnder(dataDir).length === 0) await rm(dataDir, { recursive: true, force: true });
    release?.();
  });

  it("reports the runtime's version over CRI v1", async () => {
    const v = await rt.version();
    expect(v.runtimeName).toBe("containerd");
    expect(v.runtimeApiVersion).toBe("v1");
    expect(v.runtimeVersion).toMatch(/^v?1\.\d+/);
    expect(host.socket.startsWith(dataDir)).toBe(true);
    expect(host.gatewayIP).toBe("10.88.0.1");
    expect(bridgeIndex).toBeGreaterThan(0);
  });

  it("has the local images and refuses to pull from a remote registry without a network call", async () => {
    expect(await rt.imageStatus(BUSYBOX_IMAGE)).toMatchObject({ id: expect.stringMatching(/^sha256:/) });
    expect(await rt.imageStatus("localhost/nothing-here:latest")).toBeUndefined();
    await expect(rt.pullImage("docker.io/library/nginx:latest")).rejects.toSatisfy(isRuntimeNotFound);
  });

  it("runs a sandbox whose pod IP in 10.88.0.0/16 serves HTTP to the host, and writes CRI logs", async () => {
    sandboxId = await rt.runPodSandbox(sandboxConfig);
    const status = await rt.podSandboxStatus(sandboxId);
    expect(status.state).toBe("SANDBOX_READY");
    expect(status.metadata).toEqual(sandboxConfig.metadata);
    expect(status.annotations).toMatchObject(sandboxConfig.annotations);
    expect(status.createdAt).toBeGreaterThan(Date.now() - 60_000);
    expect(status.createdAt).toBeLessThanOrEqual(Date.now());
    expect(status.ip).toMatch(/^10\.88\.\d+\.\d+$/);
    podIP = status.ip;

    httpdId = await run(
      container("web", 0, 'mkdir -p /www && echo "$GREETING from $(hostname)" > /www/index.html && echo started && exec httpd -f -p 8080 -h /www'),
    );
    const res = await eventually("httpd to answer", async () => {
      const r = await httpGet(`http://${podIP}:8080/index.html`);
      return r.status === 200 ? r : undefined;
    });
    expect(res.body).toBe("hello-kubelab from web\n");

    const s = await rt.containerStatus(httpdId);
    expect(s.state).toBe("CONTAINER_RUNNING");
    expect(s.podSandboxId).toBe(sandboxId);
    expect(s.startedAt).toBeGreaterThan(0);
    expect(s.logPath).toBe(join(sandboxConfig.logDirectory, "web/0.log"));
    const logText = readFileSync(s.logPath, "utf8");
    expect(logText).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z stdout F started$/m);

    const sandboxes = await rt.listPodSandbox({ labelSelector: { "kubelab.io/node": "cri-test" } });
    expect(sandboxes.map((x) => x.id)).toEqual([sandboxId]);
    expect(await rt.listPodSandbox({ labelSelector: { "kubelab.io/node": "another-node" } })).toEqual([]);
    // the pod's cgroup parent exists in the hierarchies while it runs
    expect(cgroupRoots().some((r) => existsSync(join(r, cgroupParentFor("BestEffort", uid))))).toBe(true);
  });

  it("reports exit codes and reasons: exit 0 Completed, exit 1 Error, SIGKILL from outside 137 Error", async () => {
    const ok = await run(container("ok", 0, "echo done; exit 0"));
    const fail = await run(container("fail", 0, "echo failing >&2; exit 1"));
    const killed = await run(container("killed", 0, "trap 'exit 0' TERM; echo waiting; sleep 1000 & wait $!"));

    // SIGKILL every process of the container from the host, found by its cgroup.
    const pids = await eventually("the container's processes", async () => {
      const found = readdirSync("/proc")
        .filter((d) => /^\d+$/.test(d))
        .filter((d) => {
          try {
            return readFileSync(`/proc/${d}/cgroup`, "utf8").includes(killed);
          } catch {
            return false;
          }
        });
      return found.length >= 2 ? found : undefined; // the shell and its sleep
    });
    for (const pid of pids) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // killing the container's init took the rest of its PID namespace with it
      }
    }

    const [sOk, sFail, sKilled] = await Promise.all([exited(ok), exited(fail), exited(killed)]);
    expect([sOk.exitCode, sOk.reason]).toEqual([0, "Completed"]);
    expect([sFail.exitCode, sFail.reason]).toEqual([1, "Error"]);
    expect([sKilled.exitCode, sKilled.reason]).toEqual([137, "Error"]);
    expect(sFail.finishedAt).toBeGreaterThan(0);
    expect(readFileSync(sFail.logPath, "utf8")).toMatch(/Z stderr F failing$/m);
  });

  it("restarts a container as a new attempt in the same sandbox", async () => {
    const first = (await rt.listContainers({ podSandboxId: sandboxId, labelSelector: { "io.kubernetes.container.name": "fail" } }))[0];
    expect(first.metadata).toEqual({ name: "fail", attempt: 0 });
    const second = await run(container("fail", 1, "echo second; exit 1"));
    const s = await exited(second);
    expect(s.metadata).toEqual({ name: "fail", attempt: 1 });
    expect(s.logPath).toBe(join(sandboxConfig.logDirectory, "fail/1.log"));
    expect(readFileSync(s.logPath, "utf8")).toMatch(/Z stdout F second$/m);

    const attempts = await rt.listContainers({ podSandboxId: sandboxId, labelSelector: { "io.kubernetes.container.name": "fail" } });
    expect(attempts.map((c) => c.metadata.attempt).sort()).toEqual([0, 1]);
    expect(attempts.every((c) => c.state === "CONTAINER_EXITED" && c.podSandboxId === sandboxId)).toBe(true);
    const running = await rt.listContainers({ state: "CONTAINER_RUNNING" });
    expect(running.map((c) => c.id)).toEqual([httpdId]);
  });

  it("runs ExecSync with stdout, stderr and the exit code, and times it out", async () => {
    const r = await rt.execSync(httpdId, ["sh", "-c", "cat /www/index.html; echo oops >&2; exit 3"], 10);
    expect(r.stdout.toString()).toBe("hello-kubelab from web\n");
    expect(r.stderr.toString()).toBe("oops\n");
    expect(r.exitCode).toBe(3);
    await expect(rt.execSync(httpdId, ["sleep", "10"], 1)).rejects.toMatchObject({ name: "RuntimeError", code: GRPC_DEADLINE_EXCEEDED });
  });

  it("maps unknown ids and missing images to NOT_FOUND, and stop/remove are idempotent", async () => {
    await expect(rt.containerStatus("does-not-exist")).rejects.toSatisfy(isRuntimeNotFound);
    await expect(rt.podSandboxStatus("does-not-exist")).rejects.toSatisfy(isRuntimeNotFound);
    const missing = { ...container("missing", 0, "true"), image: "localhost/not-imported:latest" };
    await expect(rt.createContainer(sandboxId, missing, sandboxConfig)).rejects.toSatisfy((e: RuntimeError) => isRuntimeNotFound(e) && /not-imported/.test(e.message));

    // httpd as PID 1 ignores SIGTERM: SIGKILL after the 1 s grace period.
    await rt.stopContainer(httpdId, 1);
    await rt.stopContainer(httpdId, 1);
    expect(await rt.containerStatus(httpdId)).toMatchObject({ state: "CONTAINER_EXITED", exitCode: 137 });
    await rt.removeContainer(httpdId);
    await rt.removeContainer(httpdId);
    await rt.stopContainer(httpdId, 0);
    await expect(rt.containerStatus(httpdId)).rejects.toSatisfy(isRuntimeNotFound);

    await rt.stopPodSandbox(sandboxId);
    await rt.stopPodSandbox(sandboxId);
    expect((await rt.podSandboxStatus(sandboxId)).state).toBe("SANDBOX_NOTREADY");
  });

  it("a second host in the same network namespace leaves the first one's guard, route and ip_forward alone", async () => {
    const dir2 = await mkdtemp(join(tmpdir(), "kubelab-cri2-"));
    const forwardRules = () => sh("iptables", ["-S", "KUBELAB-FORWARD"]);
    try {
      const second = await startContainerd({ dataDir: dir2, log, bridge: "kubelab9", podSubnet: "10.89.0.0/16" });
      expect(second.gatewayIP).toBe("10.89.0.1");
      expect(forwardRules()).toMatch(/-i kubelab9 -j DROP/);
      // Each host its own service interface: kubelab9's is kubelab-svc9, next to the first's kubelab-svc0.
      expect(second.serviceInterface).toBe("kubelab-svc9");
      expect(shOk("ip", ["link", "show", "dev", "kubelab-svc9"])).toBe(true);
      expect(shOk("ip", ["link", "show", "dev", "kubelab-svc0"])).toBe(true);
      await second.stop();
    } finally {
      await rm(dir2, { recursive: true, force: true });
    }
    expect(shOk("ip", ["link", "show", "dev", "kubelab9"])).toBe(false);
    expect(shOk("ip", ["link", "show", "dev", "kubelab-svc9"])).toBe(false);
    expect(shOk("ip", ["link", "show", "dev", "kubelab-svc0"])).toBe(true);
    expect(forwardRules()).not.toMatch(/kubelab9/);
    expect(forwardRules()).toMatch(/-i kubelab0 -j DROP/);
    expect(sh("ip", ["route", "show", "exact", "10.96.0.0/16"])).toMatch(/unreachable|10\.96/);
    expect(readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim()).toBe("1");
    // and the first host still serves
    expect((await rt.version()).runtimeName).toBe("containerd");
  });

  it("stop() tears everything down: containerd, bridge, iptables, ip_forward, mounts, route, cgroups", async () => {
    // Leave a running sandbox behind on purpose: stop() must remove it through CRI.
    const uid2 = "0b5e3c2a-1d7f-4c55-9d7e-cri0test0002";
    const logDirectory = podLogDirectory(join(dataDir, "pods"), "default", "left", uid2);
    await mkdir(logDirectory, { recursive: true });
    const leftover = await rt.runPodSandbox({
      ...sandboxConfig,
      metadata: { name: "left", namespace: "default", uid: uid2, attempt: 0 },
      logDirectory,
      portMappings: [],
      cgroupParent: cgroupParentFor("Burstable", uid2),
    });
    expect((await rt.podSandboxStatus(leftover)).state).toBe("SANDBOX_READY");
    expect(sh("iptables-save", [])).toMatch(/CNI-HOSTPORT/);
    expect(mountsUnder(dataDir).length).toBeGreaterThan(0);
    await rt.close();

    await host.stop();
    await host.stop(); // idempotent

    expect(existsSync(`/proc/${host.pid}`) && !readFileSync(`/proc/${host.pid}/stat`, "utf8").includes(") Z ")).toBe(false);
    // Our bridge is gone (another suite may have created a new kubelab0 since: compare link indexes).
    expect(linkIndex("kubelab0")).not.toBe(bridgeIndex);
    if (shOk("iptables", ["-S", "KUBELAB-FORWARD"])) {
      console.warn("another kubelab host shares this network namespace: shared iptables, route and ip_forward are its to undo");
    } else {
      // we were the last kubelab host in this network namespace: everything shared is undone too
      expect(sh("iptables-save", []).split("\n").filter((l) => /CNI|KUBELAB/.test(l))).toEqual([]);
      if (ipForwardBefore !== "unknown") {
        expect(readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim()).toBe(ipForwardBefore);
        expect(sh("ip", ["route", "show", "exact", "10.96.0.0/16"])).toBe(serviceRouteBefore);
      }
    }
    expect(mountsUnder(dataDir)).toEqual([]);
    for (const r of cgroupRoots()) {
      expect(existsSync(join(r, cgroupParentFor("BestEffort", uid)))).toBe(false);
      expect(existsSync(join(r, cgroupParentFor("Burstable", uid2)))).toBe(false);
    }
    expect(readdirSync("/proc").filter((d) => /^\d+$/.test(d)).some((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, "utf8").includes(host.socket);
      } catch {
        return false;
      }
    })).toBe(false);
  });
});
