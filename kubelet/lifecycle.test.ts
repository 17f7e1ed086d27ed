import { afterEach, describe, expect, it } from "vitest";
import type { Container, Pod } from "../api/core/v1.ts";
import type { ExecSyncResponse } from "./runtime/types.ts";
import { TEST_NODE, appContainer, containerStatusOf, podCondition, startSyncerEnv, type SyncerEnv } from "./testing.ts";

const NODE = TEST_NODE;
const ok = (): ExecSyncResponse => ({ stdout: Buffer.from(""), stderr: Buffer.from(""), exitCode: 0 });
const app = appContainer;
const cond = podCondition;
const statusOf = containerStatusOf;
type Env = SyncerEnv;

const envs: Env[] = [];
afterEach(async () => {
  for (const e of envs.splice(0)) await e.stop();
});

async function setup(): Promise<Env> {
  const env = await startSyncerEnv({
    // Every exec (hooks, probes) is recorded in order with the other runtime calls.
    prepare(runtime) {
      const execSync = runtime.execSync.bind(runtime);
      runtime.execSync = async (id, cmd, timeout) => {
        runtime.calls.push(`exec ${runtime.containers.get(id)?.metadata.name ?? id} ${cmd.join(" ")}`);
        return execSync(id, cmd, timeout);
      };
    },
  });
  envs.push(env);
  return env;
}

function sidecar(name: string, extra: Partial<Container> = {}): Container {
  return { name, image: "busybox", imagePullPolicy: "IfNotPresent", restartPolicy: "Always", ...extra };
}

describe("lifecycle hooks", () => {
  it("postStart exec runs right after the container starts", async () => {
    const e = await setup();
    await e.create("hooked", { containers: [app({ lifecycle: { postStart: { exec: { command: ["sh", "-c", "echo hi"] } } } })] });
    expect(e.calls()).toEqual(["runPodSandbox hooked 0", "createContainer app 0", "startContainer app", "exec app sh -c echo hi"]);
    expect(e.pod("hooked").status?.phase).toBe("Running");
    expect(e.recorder.events.some((x) => x.includes("FailedPostStartHook"))).toBe(false);
  });

  it("a failing postStart hook kills the container (FailedPostStartHook) and it is restarted", async () => {
    const e = await setup();
    let hookRuns = 0;
    e.runtime.exec = (_id, cmd) => (cmd[0] === "init-hook" && hookRuns++ === 0 ? { stdout: Buffer.from(""), stderr: Buffer.from("boom"), exitCode: 3 } : ok());
    const created = await e.create("bad", { containers: [app({ lifecycle: { postStart: { exec: { command: ["init-hook", "x"] } } } })] });
    const podRef = `bad_default(${created.metadata.uid})`;
    const msg = `Exec lifecycle hook ([init-hook x]) for Container "app" in Pod "${podRef}" failed - error: command 'init-hook x' exited with 3: boom, message: "boom"`;
    expect(e.recorder.events).toContain(`Warning FailedPostStartHook ${msg}`);
    expect(e.recorder.events).toContain("Normal Killing FailedPostStartHook");
    // Killed right after the hook failed, then restarted (restartPolicy Always; first restart without back-off).
    expect(e.calls()).toEqual([
      "runPodSandbox bad 0",
      "createContainer app 0",
      "startContainer app",
      "exec app init-hook x",
      "stopContainer app 30",
      "createContainer app 1",
      "startContainer app",
      "exec app init-hook x",
    ]);
    // The failed attempt was reported as PostStartHookError.
    const patched = JSON.stringify(e.client.actions.filter((a) => a.verb === "patch"));
    expect(patched).toContain('"reason":"PostStartHookError"');
    const after = statusOf(e.pod("bad"), "app");
    expect(after.state?.running).toBeDefined();
    expect(after.restartCount).toBe(1);
    expect(after.lastState?.terminated?.exitCode).toBe(143);
  });

  it("a failing postStart hook with restartPolicy Never fails the pod", async () => {
    const e = await setup();
    e.runtime.exec = () => ({ stdout: Buffer.from(""), stderr: Buffer.from("no"), exitCode: 1 });
    await e.create("never", { restartPolicy: "Never", containers: [app({ lifecycle: { postStart: { exec: { command: ["hook"] } } } })] });
    await e.advance(1_000);
    expect(e.pod("never").status?.phase).toBe("Failed");
    expect(e.calls("createContainer")).toHaveLength(1);
  });

  it("preStop exec runs before StopContainer on deletion and its duration is taken off the grace period", async () => {
    const e = await setup();
    const execSync = e.runtime.execSync.bind(e.runtime);
    e.runtime.execSync = async (id, cmd, timeout) => {
      const r = await execSync(id, cmd, timeout);
      if (cmd[0] === "drain") await e.clock.sleep(7_400); // the hook takes 7.4 s
      return r;
    };
    await e.create("drain", { terminationGracePeriodSeconds: 30, containers: [app({ lifecycle: { preStop: { exec: { command: ["drain", "now"] } } } })] }, { finalizers: ["test/hold"], deletionGracePeriodSeconds: 30 });
    await e.client.resource<Pod>("", "pods").delete("default", "drain");
    await e.pump();
    expect(e.calls().slice(-1)).toEqual(["exec app drain now"]); // StopContainer waits for the hook
    await e.clock.advance(7_400);
    await e.settle();
    const calls = e.calls();
    expect(calls.indexOf("stopContainer app 23")).toBeGreaterThan(calls.indexOf("exec app drain now"));
    expect(statusOf(e.pod("drain"), "app").state?.terminated?.exitCode).toBe(143);
  });

  it("preStop sleep waits on the clock; a preStop longer than the grace period leaves the 2 s minimum", async () => {
    const e = await setup();
    await e.create("nap", { terminationGracePeriodSeconds: 30, containers: [app({ lifecycle: { preStop: { sleep: { seconds: 5 } } } })] }, { finalizers: ["test/hold"], deletionGracePeriodSeconds: 30 });
    await e.create("long", { terminationGracePeriodSeconds: 10, containers: [app({ name: "slow", lifecycle: { preStop: { sleep: { seconds: 60 } } } })] }, { finalizers: ["test/hold"], deletionGracePeriodSeconds: 10 });
    await e.client.resource<Pod>("", "pods").delete("default", "nap");
    await e.client.resource<Pod>("", "pods").delete("default", "long");
    await e.pump();
    await e.clock.advance(4_999);
    await e.pump();
    expect(e.calls("stopContainer")).toEqual([]);
    await e.clock.advance(1);
    await e.pump();
    expect(e.calls("stopContainer")).toEqual(["stopContainer app 25"]);
    await e.clock.advance(5_000); // the 10 s grace is used up by the 60 s sleep
    await e.settle();
    expect(e.calls("stopContainer")).toEqual(["stopContainer app 25", "stopContainer slow 2"]);
  });

  it("a failing preStop hook is a FailedPreStopHook event and the container is still stopped", async () => {
    const e = await setup();
    e.runtime.exec = (_id, cmd) => (cmd[0] === "bye" ? { stdout: Buffer.from(""), stderr: Buffer.from("nope"), exitCode: 1 } : ok());
    const created = await e.create("x", { terminationGracePeriodSeconds: 30, containers: [app({ lifecycle: { preStop: { exec: { command: ["bye"] } } } })] }, { finalizers: ["test/hold"], deletionGracePeriodSeconds: 30 });
    await e.client.resource<Pod>("", "pods").delete("default", "x");
    await e.settle();
    expect(e.recorder.events).toContain(
      `Warning FailedPreStopHook Exec lifecycle hook ([bye]) for Container "app" in Pod "x_default(${created.metadata.uid})" failed - error: command 'bye' exited with 1: nope, message: "nope"`,
    );
    expect(e.calls("stopContainer")).toEqual(["stopContainer app 30"]);
  });

  it("a liveness kill runs the preStop hook first", async () => {
    const e = await setup();
    let healthy = true;
    e.runtime.exec = (_id, cmd) => (cmd[0] === "check" && !healthy ? { stdout: Buffer.from("bad"), stderr: Buffer.from(""), exitCode: 1 } : ok());
    await e.create("live", {
      containers: [app({ livenessProbe: { exec: { command: ["check"] }, periodSeconds: 5, failureThreshold: 1 }, lifecycle: { preStop: { exec: { command: ["cleanup"] } } } })],
    });
    healthy = false;
    await e.advance(5_000);
    const calls = e.calls();
    const stop = calls.indexOf("stopContainer app 30");
    expect(stop).toBeGreaterThan(0);
    expect(calls[stop - 1]).toBe("exec app cleanup");
    expect(e.calls("createContainer")).toEqual(["createContainer app 0", "createContainer app 1"]);
  });
});

describe("activeDeadlineSeconds", () => {
  it("fails the pod with DeadlineExceeded at the deadline and kills its containers", async () => {
    const e = await setup();
    await e.create("dl", { activeDeadlineSeconds: 30 });
    expect(e.pod("dl").status?.phase).toBe("Running");
    await e.advance(29_000);
    expect(e.pod("dl").status?.phase).toBe("Running");
    expect(e.calls("stopContainer")).toEqual([]);
    await e.advance(1_000);
    const p = e.pod("dl");
    expect(p.status).toMatchObject({ phase: "Failed", reason: "DeadlineExceeded", message: "Pod was active on the node longer than the specified deadline" });
    expect(e.recorder.events).toContain("Normal DeadlineExceeded Pod was active on the node longer than the specified deadline");
    expect(e.calls("stopContainer")).toEqual(["stopContainer app 30"]);
    expect(e.calls()).toContain("stopPodSandbox s1");
    expect(statusOf(p, "app").state?.terminated?.exitCode).toBe(143);
    await e.advance(60_000);
    expect(e.calls("createContainer")).toHaveLength(1);
    expect(e.pod("dl").status?.phase).toBe("Failed");
  });

  it("wakes up at the deadline without any other event (no polling needed)", async () => {
    const e = await setup();
    await e.create("quiet", { activeDeadlineSeconds: 90 });
    const before = e.calls().length;
    await e.clock.advance(89_999);
    await e.settle();
    expect(e.pod("quiet").status?.phase).toBe("Running");
    expect(e.calls().length).toBe(before);
    await e.clock.advance(1);
    await e.settle();
    expect(e.pod("quiet").status?.phase).toBe("Failed");
  });
});

describe("sidecar init containers", () => {
  it("start before the next init container, keep running, restart on exit, and stop after the app on deletion", async () => {
    const e = await setup();
    await e.create(
      "side",
      { initContainers: [sidecar("proxy"), { name: "setup", image: "busybox", imagePullPolicy: "IfNotPresent" }], terminationGracePeriodSeconds: 30 },
      { finalizers: ["test/hold"], deletionGracePeriodSeconds: 30 },
    );
    expect(e.calls("createContainer")).toEqual(["createContainer proxy 0"]);
    let p = e.pod("side");
    expect(p.status?.phase).toBe("Pending");
    expect(cond(p, "Initialized")).toMatchObject({ status: "False", message: "containers with incomplete status: [setup]" });
    expect(statusOf(p, "proxy")).toMatchObject({ started: true, ready: true });
    await e.advance(1_000); // the sidecar is running: the next init container starts
    expect(e.calls("createContainer")).toEqual(["createContainer proxy 0", "createContainer setup 0"]);
    e.runtime.exit(e.runtime.latest("setup")!.id, 0);
    await e.advance(1_000);
    expect(e.calls("createContainer")).toEqual(["createContainer proxy 0", "createContainer setup 0", "createContainer app 0"]);
    p = e.pod("side");
    expect(p.status?.phase).toBe("Running");
    expect(cond(p, "Initialized")?.status).toBe("True");
    expect(cond(p, "Ready")?.status).toBe("True");
    expect(p.status?.initContainerStatuses?.map((s) => s.name)).toEqual(["proxy", "setup"]);
    expect(statusOf(p, "proxy").state?.running).toBeDefined();
    expect(e.runtime.latest("proxy")!.state).toBe("CONTAINER_RUNNING");

    // The sidecar exits: restarted (restartPolicy Always on the container), the pod stays Running.
    e.runtime.exit(e.runtime.latest("proxy")!.id, 1);
    await e.advance(1_000);
    expect(e.calls("createContainer").slice(-1)).toEqual(["createContainer proxy 1"]);
    p = e.pod("side");
    expect(p.status?.phase).toBe("Running");
    expect(statusOf(p, "proxy")).toMatchObject({ restartCount: 1, started: true });
    expect(e.calls("createContainer").filter((c) => c.startsWith("createContainer setup"))).toHaveLength(1);

    // Deletion: the app container first, then the sidecar.
    await e.client.resource<Pod>("", "pods").delete("default", "side");
    await e.settle();
    expect(e.calls("stopContainer")).toEqual(["stopContainer app 30", "stopContainer proxy 30"]);
  });

  it("several sidecars are stopped in reverse order after the app containers", async () => {
    const e = await setup();
    await e.create("two", { initContainers: [sidecar("first"), sidecar("second")] }, { finalizers: ["test/hold"], deletionGracePeriodSeconds: 30 });
    await e.advance(2_000);
    expect(e.calls("createContainer")).toEqual(["createContainer first 0", "createContainer second 0", "createContainer app 0"]);
    await e.client.resource<Pod>("", "pods").delete("default", "two");
    await e.settle();
    expect(e.calls("stopContainer")).toEqual(["stopContainer app 30", "stopContainer second 30", "stopContainer first 30"]);
  });

  it("a sidecar with a startup probe holds the next init container until the probe succeeds", async () => {
    const e = await setup();
    let up = false;
    e.runtime.exec = (_id, cmd) => (cmd[0] === "ready?" ? { ...ok(), exitCode: up ? 0 : 1 } : ok());
    await e.create("probe", { initContainers: [sidecar("proxy", { startupProbe: { exec: { command: ["ready?"] }, periodSeconds: 5, failureThreshold: 100 } })] });
    await e.advance(10_000);
    expect(e.calls("createContainer")).toEqual(["createContainer proxy 0"]);
    expect(statusOf(e.pod("probe"), "proxy").started).toBe(false);
    expect(e.pod("probe").status?.phase).toBe("Pending");
    up = true;
    await e.advance(5_000);
    expect(e.calls("createContainer")).toEqual(["createContainer proxy 0", "createContainer app 0"]);
    expect(statusOf(e.pod("probe"), "proxy").started).toBe(true);
    expect(e.pod("probe").status?.phase).toBe("Running");
  });

  it("a sidecar's readiness probe counts toward the pod's Ready condition", async () => {
    const e = await setup();
    let ready = false;
    e.runtime.exec = (_id, cmd) => (cmd[0] === "ready?" ? { ...ok(), exitCode: ready ? 0 : 1 } : ok());
    await e.create("rd", { initContainers: [sidecar("proxy", { readinessProbe: { exec: { command: ["ready?"] }, periodSeconds: 5 } })] });
    await e.advance(1_000);
    let p = e.pod("rd");
    expect(p.status?.phase).toBe("Running");
    expect(cond(p, "Initialized")?.status).toBe("True");
    expect(cond(p, "Ready")).toMatchObject({ status: "False", message: "containers with unready status: [proxy]" });
    expect(statusOf(p, "proxy")).toMatchObject({ started: true, ready: false });
    ready = true;
    await e.advance(5_000);
    p = e.pod("rd");
    expect(cond(p, "Ready")?.status).toBe("True");
    expect(statusOf(p, "proxy").ready).toBe(true);
  });

  it("restartPolicy Never: a sidecar is restarted anyway, and the pod Succeeds when its app container exits 0", async () => {
    const e = await setup();
    await e.create("job", { restartPolicy: "Never", initContainers: [sidecar("log")] });
    await e.advance(1_000);
    expect(e.calls("createContainer")).toEqual(["createContainer log 0", "createContainer app 0"]);
    e.runtime.exit(e.runtime.latest("log")!.id, 2);
    await e.advance(1_000);
    expect(e.calls("createContainer").slice(-1)).toEqual(["createContainer log 1"]);
    expect(e.pod("job").status?.phase).toBe("Running");
    e.runtime.exit(e.runtime.latest("app")!.id, 0);
    await e.advance(1_000);
    const p = e.pod("job");
    expect(p.status?.phase).toBe("Succeeded");
    expect(e.calls("stopContainer")).toEqual(["stopContainer log 30"]);
    expect(statusOf(p, "log").state?.terminated).toBeDefined();
    await e.advance(30_000);
    expect(e.calls("createContainer").filter((c) => c.startsWith("createContainer log"))).toHaveLength(2);
  });

  it("restartPolicy Never with a sidecar: the app container exiting 1 makes the pod Failed", async () => {
    const e = await setup();
    await e.create("jobfail", { restartPolicy: "Never", initContainers: [sidecar("log")] });
    await e.advance(1_000);
    e.runtime.exit(e.runtime.latest("app")!.id, 1);
    await e.advance(1_000);
    expect(e.pod("jobfail").status?.phase).toBe("Failed");
    expect(e.runtime.latest("log")!.state).toBe("CONTAINER_EXITED");
  });
});
