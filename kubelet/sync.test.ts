import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { ConfigMap, Container, Pod } from "../api/core/v1.ts";
import type { FakeClient } from "../client/index.ts";
import type { FakeRuntime } from "./runtime/fake.ts";
import { LABEL_NODE, LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID } from "./runtime/types.ts";
import { TEST_NODE, containerStatusOf, podCondition, startSyncerEnv, type SyncerEnv } from "./testing.ts";

const NODE = TEST_NODE;
const cond = podCondition;
const statusOf = containerStatusOf;
type Env = SyncerEnv;

const envs: Env[] = [];
afterEach(async () => {
  for (const e of envs.splice(0)) await e.stop();
});

async function setup(objects: ConfigMap[] = [], prepare?: (rt: FakeRuntime, client: FakeClient) => Promise<void>): Promise<Env> {
  const env = await startSyncerEnv({ objects, prepare, syncer: { volumeRetryMs: 5_000 } });
  envs.push(env);
  return env;
}

describe("PodSyncer", () => {
  it("runs a pod: sandbox, image, container, then Running with an IP and conditions", async () => {
    const e = await setup();
    const created = await e.create("web", {});
    const uid = created.metadata.uid!;
    expect(e.runtime.calls.filter((c) => !c.startsWith("containerStatus"))).toEqual(["runPodSandbox web 0", "createContainer app 0", "startContainer app"]);
    const sandbox = [...e.runtime.sandboxes.values()][0];
    expect(sandbox.labels).toMatchObject({ [LABEL_POD_NAME]: "web", [LABEL_POD_NAMESPACE]: "default", [LABEL_POD_UID]: uid, [LABEL_NODE]: NODE });
    expect(sandbox.config.logDirectory).toBe(join(e.rootDir, "logs", `default_web_${uid}`));
    const p = e.pod("web");
    expect(p.status?.phase).toBe("Running");
    expect(p.status?.podIP).toBe("127.0.100.1");
    expect(p.status?.podIPs).toEqual([{ ip: "127.0.100.1" }]);
    expect(p.status?.hostIP).toBe("127.0.0.10");
    expect(p.status?.startTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    for (const t of ["PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready", "PodScheduled"]) expect(cond(p, t)?.status, t).toBe("True");
    const cs = statusOf(p, "app");
    expect(cs).toMatchObject({ ready: true, started: true, restartCount: 0, image: "busybox", imageID: "sha256:busybox" });
    expect(cs.containerID).toMatch(/^fake:\/\/c\d+$/);
    expect(cs.state?.running?.startedAt).toBeDefined();
    expect(e.recorder.events).toEqual([
      'Normal Pulled Container image "busybox" already present on machine',
      "Normal Created Created container app",
      "Normal Started Started container app",
    ]);
    // The /etc/hosts the kubelet writes is mounted.
    const cfg = [...e.runtime.configs.values()][0];
    const hosts = cfg.mounts.find((m) => m.containerPath === "/etc/hosts")!;
    expect(await readFile(hosts.hostPath, "utf8")).toContain("127.0.100.1\tweb");
    // Nothing more to patch while nothing changes.
    const patches = e.client.actions.filter((a) => a.verb === "patch").length;
    await e.advance(5_000);
    expect(e.client.actions.filter((a) => a.verb === "patch").length).toBe(patches);
  });

  it("ignores pods bound to other nodes", async () => {
    const e = await setup();
    await e.create("elsewhere", { nodeName: "node-2" });
    expect(e.runtime.calls).toEqual([]);
    expect(e.syncer.podCount()).toBe(0);
  });

  it("builds the container's env from values, the downward API and a configMap", async () => {
    const cm: ConfigMap = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cfg", namespace: "default" }, data: { color: "blue", size: "L" } };
    const e = await setup([cm]);
    const app: Container = {
      name: "app",
      image: "busybox",
      imagePullPolicy: "IfNotPresent",
      command: ["echo", "$(GREETING)"],
      envFrom: [{ configMapRef: { name: "cfg" }, prefix: "CFG_" }],
      env: [
        { name: "NAME", value: "world" },
        { name: "GREETING", value: "hello $(NAME)" },
        { name: "POD", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
        { name: "TIER", valueFrom: { fieldRef: { fieldPath: "metadata.labels['tier']" } } },
        { name: "NODE", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
        { name: "COLOR", valueFrom: { configMapKeyRef: { name: "cfg", key: "color" } } },
      ],
    };
    await e.create("envpod", { containers: [app] }, { labels: { tier: "front" } });
    const cfg = [...e.runtime.configs.values()][0];
    const env = Object.fromEntries(cfg.envs.map((x) => [x.key, x.value]));
    expect(env).toMatchObject({ CFG_color: "blue", CFG_size: "L", NAME: "world", GREETING: "hello world", POD: "envpod", TIER: "front", NODE: NODE, COLOR: "blue" });
    expect(cfg.command).toEqual(["echo", "hello world"]);
  });

  it("runs init containers strictly in order before the app containers", async () => {
    const e = await setup();
    const init = (name: string): Container => ({ name, image: "busybox", imagePullPolicy: "IfNotPresent" });
    await e.create("inits", { initContainers: [init("init1"), init("init2")] });
    expect(e.runtime.calls.filter((c) => c.startsWith("createContainer"))).toEqual(["createContainer init1 0"]);
    let p = e.pod("inits");
    expect(p.status?.phase).toBe("Pending");
    expect(cond(p, "Initialized")).toMatchObject({ status: "False", reason: "ContainersNotInitialized", message: "containers with incomplete status: [init1 init2]" });
    expect(statusOf(p, "app").state?.waiting?.reason).toBe("PodInitializing");
    e.runtime.exit(e.runtime.latest("init1")!.id, 0);
    await e.advance(1_000);
    expect(e.runtime.calls.filter((c) => c.startsWith("createContainer"))).toEqual(["createContainer init1 0", "createContainer init2 0"]);
    p = e.pod("inits");
    expect(cond(p, "Initialized")?.message).toBe("containers with incomplete status: [init2]");
    e.runtime.exit(e.runtime.latest("init2")!.id, 0);
    await e.advance(1_000);
    expect(e.runtime.calls.filter((c) => c.startsWith("createContainer"))).toEqual(["createContainer init1 0", "createContainer init2 0", "createContainer app 0"]);
    p = e.pod("inits");
    expect(p.status?.phase).toBe("Running");
    expect(cond(p, "Initialized")?.status).toBe("True");
    expect(statusOf(p, "init1").state?.terminated).toMatchObject({ exitCode: 0, reason: "Completed" });
  });

  it("restartPolicy Never: a container exiting 1 makes the pod Failed and stops its sandbox", async () => {
    const e = await setup();
    await e.create("once", { restartPolicy: "Never" });
    e.runtime.exit(e.runtime.latest("app")!.id, 1);
    await e.advance(1_000);
    const p = e.pod("once");
    expect(p.status?.phase).toBe("Failed");
    expect(statusOf(p, "app").state?.terminated).toMatchObject({ exitCode: 1, reason: "Error" });
    expect(cond(p, "Ready")).toMatchObject({ status: "False", reason: "ContainersNotReady" });
    expect(e.runtime.calls).toContain("stopPodSandbox s1");
    await e.advance(60_000);
    expect(e.runtime.calls.filter((c) => c.startsWith("createContainer"))).toHaveLength(1);
    expect(e.pod("once").status?.phase).toBe("Failed");
  });

  it("restartPolicy OnFailure: exit 0 makes the pod Succeeded (Ready False, PodCompleted)", async () => {
    const e = await setup();
    await e.create("job", { restartPolicy: "OnFailure" });
    e.runtime.exit(e.runtime.latest("app")!.id, 0);
    await e.advance(1_000);
    const p = e.pod("job");
    expect(p.status?.phase).toBe("Succeeded");
    expect(cond(p, "Ready")).toMatchObject({ status: "False", reason: "PodCompleted" });
    expect(e.runtime.calls).toContain("stopPodSandbox s1");
  });

  it("restartPolicy Always: a crashing container backs off 10 s, 20 s, 40 s (CrashLoopBackOff)", async () => {
    const e = await setup();
    const created = await e.create("crash", {});
    const podRef = `crash_default(${created.metadata.uid})`;
    const creates = (): number => e.runtime.calls.filter((c) => c.startsWith("createContainer")).length;
    const crash = async (): Promise<void> => {
      e.runtime.exit(e.runtime.latest("app")!.id, 1);
      await e.advance(1_000); // the PLEG sees it
    };
    await crash(); // first crash: restarted at once
    expect(creates()).toBe(2);
    expect(statusOf(e.pod("crash"), "app").restartCount).toBe(1);
    for (const [i, backoff] of [10, 20, 40].entries()) {
      await crash();
      const cs = statusOf(e.pod("crash"), "app");
      expect(cs.state?.waiting).toEqual({ reason: "CrashLoopBackOff", message: `back-off ${backoff}s restarting failed container=app pod=${podRef}` });
      expect(cs.lastState?.terminated).toMatchObject({ exitCode: 1, reason: "Error" });
      expect(cs.restartCount).toBe(i + 1);
      expect(e.pod("crash").status?.phase).toBe("Running");
      expect(e.recorder.events).toContain(`Warning BackOff Back-off restarting failed container app in pod ${podRef}`);
      await e.advance(backoff * 1000 - 2_000);
      expect(creates()).toBe(2 + i);
      await e.advance(2_000);
      expect(creates()).toBe(3 + i);
      expect(statusOf(e.pod("crash"), "app").state?.running).toBeDefined();
      expect(statusOf(e.pod("crash"), "app").restartCount).toBe(i + 2);
    }
    // Only the newest dead instance is kept besides the running one.
    expect([...e.runtime.containers.values()].filter((c) => c.metadata.name === "app")).toHaveLength(2);
  });

  it("restarts a container whose liveness probe fails failureThreshold times", async () => {
    const e = await setup();
    let healthy = true;
    e.runtime.exec = () => ({ stdout: Buffer.from(healthy ? "" : "not ok"), stderr: Buffer.from(""), exitCode: healthy ? 0 : 1 });
    await e.create("live", { containers: [{ name: "app", image: "busybox", imagePullPolicy: "IfNotPresent", livenessProbe: { exec: { command: ["check"] }, periodSeconds: 5, failureThreshold: 3 } }] });
    await e.advance(10_000);
    expect(e.runtime.calls.filter((c) => c.startsWith("createContainer"))).toHaveLength(1);
    healthy = false;
    await e.advance(10_000); // two failures
    expect(e.runtime.calls.filter((c) => c.startsWith("createContainer"))).toHaveLength(1);
    await e.advance(5_000); // the third
    expect(e.recorder.events).toContain("Warning Unhealthy Liveness probe failed: not ok");
    expect(e.recorder.events).toContain("Normal Killing Container app failed liveness probe, will be restarted");
    expect(e.runtime.calls).toContain("stopContainer app 30");
    expect(e.runtime.calls.filter((c) => c.startsWith("createContainer"))).toEqual(["createContainer app 0", "createContainer app 1"]);
    const cs = statusOf(e.pod("live"), "app");
    expect(cs.restartCount).toBe(1);
    expect(cs.state?.running).toBeDefined();
    expect(cs.lastState?.terminated?.exitCode).toBe(143);
  });

  it("readiness probe gates Ready", async () => {
    const e = await setup();
    let ready = false;
    e.runtime.exec = () => ({ stdout: Buffer.from(""), stderr: Buffer.from("no"), exitCode: ready ? 0 : 1 });
    await e.create("ready", { containers: [{ name: "app", image: "busybox", imagePullPolicy: "IfNotPresent", readinessProbe: { exec: { command: ["check"] }, periodSeconds: 10 } }] });
    let p = e.pod("ready");
    expect(p.status?.phase).toBe("Running");
    expect(cond(p, "Ready")).toMatchObject({ status: "False", reason: "ContainersNotReady", message: "containers with unready status: [app]" });
    expect(cond(p, "ContainersReady")?.status).toBe("False");
    expect(statusOf(p, "app").ready).toBe(false);
    expect(e.recorder.events).toContain("Warning Unhealthy Readiness probe failed: no");
    ready = true;
    await e.advance(10_000);
    p = e.pod("ready");
    expect(cond(p, "Ready")?.status).toBe("True");
    expect(statusOf(p, "app").ready).toBe(true);
    // No restart for readiness failures.
    expect(e.runtime.calls.filter((c) => c.startsWith("createContainer"))).toHaveLength(1);
  });

  it("graceful deletion: stops containers with the grace period, then deletes with grace 0 and the uid precondition", async () => {
    const e = await setup();
    // A finalizer keeps the fake tracker's object around after delete, as the apiserver does for graceful deletion.
    const created = await e.create("bye", { terminationGracePeriodSeconds: 30 }, { finalizers: ["test/hold"], deletionGracePeriodSeconds: 17 });
    const uid = created.metadata.uid!;
    expect(e.pod("bye").status?.phase).toBe("Running");
    await e.client.resource<Pod>("", "pods").delete("default", "bye");
    await e.settle();
    expect(e.recorder.events).toContain("Normal Killing Stopping container app");
    expect(e.runtime.calls).toContain("stopContainer app 17");
    const del = e.client.actions.filter((a) => a.verb === "delete" && a.resource === "pods");
    expect(del.at(-1)?.deleteOptions).toEqual({ gracePeriodSeconds: 0, preconditions: { uid } });
    // The final status went out before the delete: containers terminated.
    const lastPatch = e.client.actions.filter((a) => a.verb === "patch").at(-1)!;
    expect(e.client.actions.indexOf(lastPatch)).toBeLessThan(e.client.actions.indexOf(del.at(-1)!));
    expect(statusOf(e.pod("bye"), "app").state?.terminated?.exitCode).toBe(143);
    expect(e.runtime.sandboxes.size).toBe(0);
    await expect(stat(join(e.rootDir, "pods", uid))).rejects.toThrow();
  });

  it("a force-deleted pod is killed and cleaned up", async () => {
    const e = await setup();
    await e.create("gone", {});
    expect(e.runtime.containers.size).toBe(1);
    await e.client.resource<Pod>("", "pods").delete("default", "gone", { gracePeriodSeconds: 0 });
    await e.settle();
    expect(e.runtime.sandboxes.size).toBe(0);
    expect(e.runtime.containers.size).toBe(0);
    expect(e.syncer.podCount()).toBe(0);
  });

  it("removes orphaned sandboxes of this node on start, and leaves other nodes' alone", async () => {
    const e = await setup([], async (rt) => {
      const base = { hostname: "x", logDirectory: "/nonexistent", portMappings: [], annotations: {} };
      await rt.runPodSandbox({ ...base, metadata: { name: "old", namespace: "default", uid: "dead-uid", attempt: 0 }, labels: { [LABEL_NODE]: NODE, [LABEL_POD_UID]: "dead-uid" } });
      await rt.runPodSandbox({ ...base, metadata: { name: "other", namespace: "default", uid: "other-uid", attempt: 0 }, labels: { [LABEL_NODE]: "node-2", [LABEL_POD_UID]: "other-uid" } });
    });
    expect(e.runtime.calls).toContain("stopPodSandbox s1");
    expect(e.runtime.calls).toContain("removePodSandbox s1");
    expect([...e.runtime.sandboxes.values()].map((s) => s.metadata.name)).toEqual(["other"]);
  });

  it("writes a configMap volume and mounts it", async () => {
    const cm: ConfigMap = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "site", namespace: "default" }, data: { "index.html": "<h1>hi</h1>", other: "x" } };
    const e = await setup([cm]);
    const created = await e.create("vol", {
      volumes: [
        { name: "content", configMap: { name: "site", items: [{ key: "index.html", path: "html/index.html" }] } },
        { name: "scratch", emptyDir: {} },
      ],
      containers: [{ name: "app", image: "busybox", imagePullPolicy: "IfNotPresent", volumeMounts: [{ name: "content", mountPath: "/usr/share/nginx" }, { name: "scratch", mountPath: "/tmp" }] }],
    });
    const uid = created.metadata.uid!;
    const dir = join(e.rootDir, "pods", uid, "volumes", "kubernetes.io~configmap", "content");
    expect(await readFile(join(dir, "html/index.html"), "utf8")).toBe("<h1>hi</h1>");
    await expect(stat(join(dir, "other"))).rejects.toThrow();
    const cfg = [...e.runtime.configs.values()][0];
    expect(cfg.mounts).toContainEqual({ containerPath: "/usr/share/nginx", hostPath: dir, readonly: false });
    expect(cfg.mounts).toContainEqual({ containerPath: "/tmp", hostPath: join(e.rootDir, "pods", uid, "volumes", "kubernetes.io~empty-dir", "scratch"), readonly: false });
    expect(e.pod("vol").status?.phase).toBe("Running");
  });

  it("a running pod's configMap volume follows changes to the object, without a container restart", async () => {
    const cm: ConfigMap = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "conf", namespace: "default" }, data: { level: "info" } };
    const e = await setup([cm]);
    const created = await e.create("live", {
      volumes: [{ name: "cfg", configMap: { name: "conf" } }],
      containers: [{ name: "app", image: "busybox", imagePullPolicy: "IfNotPresent", volumeMounts: [{ name: "cfg", mountPath: "/cfg" }] }],
    });
    const file = join(e.rootDir, "pods", created.metadata.uid!, "volumes", "kubernetes.io~configmap", "cfg", "level");
    expect(await readFile(file, "utf8")).toBe("info");
    const cur = await e.client.resource<ConfigMap>("", "configmaps").get("default", "conf");
    await e.client.resource<ConfigMap>("", "configmaps").update({ ...cur, data: { level: "debug" } });
    await e.advance(91_000);
    expect(await readFile(file, "utf8")).toBe("debug");
    expect(e.runtime.calls.filter((c) => c.startsWith("createContainer"))).toHaveLength(1); // the container was not restarted
  });

  it("a missing configMap: FailedMount, the pod waits in ContainerCreating, and starts once it exists", async () => {
    const e = await setup();
    await e.create("wait", {
      volumes: [{ name: "cfg", configMap: { name: "later" } }],
      containers: [{ name: "app", image: "busybox", imagePullPolicy: "IfNotPresent", volumeMounts: [{ name: "cfg", mountPath: "/cfg" }] }],
    });
    expect(e.recorder.events).toContain('Warning FailedMount MountVolume.SetUp failed for volume "cfg" : configmap "later" not found');
    const p = e.pod("wait");
    expect(p.status?.phase).toBe("Pending");
    expect(statusOf(p, "app").state?.waiting?.reason).toBe("ContainerCreating");
    expect(e.runtime.calls.filter((c) => c.startsWith("createContainer"))).toHaveLength(0);
    await e.client.resource<ConfigMap>("", "configmaps").create("default", { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "later", namespace: "default" }, data: { a: "1" } });
    await e.advance(5_000);
    expect(e.pod("wait").status?.phase).toBe("Running");
  });

  it("a PVC volume whose claim does not exist: FailedMount and ContainerCreating", async () => {
    const e = await setup();
    await e.create("pvc", { volumes: [{ name: "data", persistentVolumeClaim: { claimName: "c" } }] });
    expect(e.recorder.events.some((ev) => /^Warning FailedMount Unable to attach or mount volumes: unmounted volumes=\[data\], unattached volumes=\[data\]: error processing PVC [^/]+\/c: PVC c not found$/.test(ev))).toBe(true);
    expect(statusOf(e.pod("pvc"), "app").state?.waiting?.reason).toBe("ContainerCreating");
  });

  it("image pull policies: Never with a missing image, and a failing pull backs off", async () => {
    const e = await setup();
    e.runtime.unpullable.add("nope");
    await e.create("never", { containers: [{ name: "app", image: "missing", imagePullPolicy: "Never" }] });
    expect(statusOf(e.pod("never"), "app").state?.waiting).toEqual({ reason: "ErrImageNeverPull", message: 'Container image "missing" is not present with pull policy of Never' });
    await e.create("pull", { containers: [{ name: "app", image: "nope", imagePullPolicy: "IfNotPresent" }] });
    expect(statusOf(e.pod("pull"), "app").state?.waiting?.reason).toBe("ErrImagePull");
    expect(e.recorder.events).toContain("Warning Failed Error: ErrImagePull");
    await e.advance(1_000);
    expect(statusOf(e.pod("pull"), "app").state?.waiting).toEqual({ reason: "ImagePullBackOff", message: 'Back-off pulling image "nope"' });
    await e.create("pulled", { containers: [{ name: "app", image: "fresh:1.0", imagePullPolicy: "IfNotPresent" }] });
    expect(e.runtime.calls).toContain("pullImage fresh:1.0");
    expect(e.pod("pulled").status?.phase).toBe("Running");
  });
});
