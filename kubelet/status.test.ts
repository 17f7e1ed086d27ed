import { describe, expect, it } from "vitest";
import type { ContainerStatus, Pod, PodStatus } from "../api/core/v1.ts";
import { FakeClient, FakeClock, fakeErrors, flushPromises, newLogger } from "../client/index.ts";
import { getPhase, statusDiff, StatusManager } from "./status.ts";

const log = newLogger("status-test");
log.level = "silent";

function pod(status: PodStatus = { phase: "Pending" }): Pod {
  return { apiVersion: "v1", kind: "Pod", metadata: { name: "p", namespace: "default" }, spec: { containers: [{ name: "app" }] }, status };
}

async function setup(): Promise<{ client: FakeClient; clock: FakeClock; sm: StatusManager; p: Pod }> {
  const clock = new FakeClock();
  const client = new FakeClient([], { clock });
  const p = await client.resource<Pod>("", "pods").create("default", pod());
  client.clearActions();
  return { client, clock, sm: new StatusManager({ client, clock, log }), p };
}

const running = (name: string): ContainerStatus => ({ name, ready: true, restartCount: 0, image: "i", imageID: "", state: { running: { startedAt: "2024-01-01T00:00:00Z" } } });

describe("StatusManager", () => {
  it("patches only the fields that changed, with the uid precondition, and nothing when unchanged", async () => {
    const { client, sm, p } = await setup();
    sm.setPodStatus(p, { phase: "Running", podIP: "127.0.0.2", containerStatuses: [running("app")] });
    await sm.flush(p.metadata.uid!);
    expect(client.actions).toHaveLength(1);
    expect(client.actions[0]).toMatchObject({ verb: "patch", subresource: "status", patchType: "merge" });
    expect(client.actions[0].patch).toEqual({ metadata: { uid: p.metadata.uid }, status: { phase: "Running", podIP: "127.0.0.2", containerStatuses: [running("app")] } });

    sm.setPodStatus(p, { phase: "Running", podIP: "127.0.0.2", containerStatuses: [running("app")] });
    await sm.flush(p.metadata.uid!);
    expect(client.actions).toHaveLength(1);

    sm.setPodStatus(p, { phase: "Running", containerStatuses: [{ ...running("app"), ready: false }] });
    await sm.flush(p.metadata.uid!);
    expect(client.actions).toHaveLength(2);
    expect(client.actions[1].patch).toEqual({ metadata: { uid: p.metadata.uid }, status: { podIP: null, containerStatuses: [{ ...running("app"), ready: false }] } });
    const stored = client.tracker("", "pods", "default", "p") as Pod;
    expect(stored.status?.podIP).toBeUndefined();
    expect(stored.status?.containerStatuses?.[0].ready).toBe(false);
  });

  it("keeps lastTransitionTime of conditions whose status did not change", async () => {
    const { client, clock, sm, p } = await setup();
    sm.setPodStatus(p, { phase: "Running", conditions: [{ type: "Ready", status: "False" }, { type: "Initialized", status: "True" }] });
    await sm.flush(p.metadata.uid!);
    const t0 = sm.getPodStatus(p.metadata.uid!)!.conditions!.find((c) => c.type === "Ready")!.lastTransitionTime;
    await clock.advance(5_000);
    sm.setPodStatus(p, { phase: "Running", conditions: [{ type: "Ready", status: "True" }, { type: "Initialized", status: "True" }] });
    await sm.flush(p.metadata.uid!);
    const conds = (client.tracker("", "pods", "default", "p") as Pod).status!.conditions!;
    expect(conds.find((c) => c.type === "Initialized")!.lastTransitionTime).toBe(t0);
    expect(conds.find((c) => c.type === "Ready")!.lastTransitionTime).not.toBe(t0);
    expect(conds.find((c) => c.type === "Ready")!.lastTransitionTime).toMatch(/T00:00:05Z$/);
  });

  it("sends only the newest status when several are set during a patch in flight", async () => {
    const { client, sm, p } = await setup();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let first = true;
    client.prependReactor("patch", "pods", async () => {
      if (first) {
        first = false;
        await gate;
      }
      return undefined;
    });
    sm.setPodStatus(p, { phase: "Pending", message: "1" });
    await flushPromises();
    sm.setPodStatus(p, { phase: "Pending", message: "2" });
    sm.setPodStatus(p, { phase: "Running", message: "3" });
    release();
    await sm.flush(p.metadata.uid!);
    expect(client.actions.map((a) => (a.patch as { status: PodStatus }).status)).toEqual([{ message: "1" }, { phase: "Running", message: "3" }]);
  });

  it("retries a failed patch after a delay and drops a pod that is gone", async () => {
    const { client, clock, sm, p } = await setup();
    let fail = true;
    client.prependReactor("patch", "pods", () => (fail ? { error: fakeErrors.internal("etcd down") } : undefined));
    sm.setPodStatus(p, { phase: "Running" });
    await flushPromises();
    expect(client.actions).toHaveLength(1);
    fail = false;
    await clock.advance(1_000);
    await sm.flush(p.metadata.uid!);
    expect(client.actions).toHaveLength(2);
    expect((client.tracker("", "pods", "default", "p") as Pod).status?.phase).toBe("Running");

    await client.resource<Pod>("", "pods").delete("default", "p");
    sm.setPodStatus(p, { phase: "Running", message: "late" });
    await sm.flush(p.metadata.uid!);
    expect(sm.getPodStatus(p.metadata.uid!)).toBeUndefined();
  });

  it("never leaves a terminal phase", async () => {
    const { sm, p } = await setup();
    sm.setPodStatus(p, { phase: "Succeeded" });
    sm.setPodStatus(p, { phase: "Running" });
    expect(sm.getPodStatus(p.metadata.uid!)?.phase).toBe("Succeeded");
  });

  it("re-sends its status when someone else changed a kubelet-owned field in the API (node controller: Ready=False), not on its own echo", async () => {
    const { client, sm, p } = await setup();
    const ready: PodStatus = { phase: "Running", conditions: [{ type: "Ready", status: "True" }, { type: "ContainersReady", status: "True" }] };
    sm.setPodStatus(p, ready);
    await sm.flush(p.metadata.uid!);
    const pods = client.resource<Pod>("", "pods");
    // The informer delivers our own patch: nothing to do.
    sm.reconcile(await pods.get("default", "p"));
    await flushPromises();
    expect(client.actions.filter((a) => a.verb === "patch")).toHaveLength(1);
    // The node lifecycle controller marks the pod not ready while the kubelet is stopped.
    const cur = await pods.get("default", "p");
    const marked = await pods.updateStatus({ ...cur, status: { ...cur.status, conditions: [{ type: "Ready", status: "False" }, { type: "ContainersReady", status: "True" }, { type: "DisruptionTarget", status: "True" }] } });
    // An older copy (before our patch) is ignored; the controller's copy is not.
    sm.reconcile({ ...p, metadata: { ...p.metadata, resourceVersion: p.metadata.resourceVersion } });
    await flushPromises();
    expect(client.actions.filter((a) => a.verb === "patch")).toHaveLength(1);
    sm.reconcile(marked);
    await sm.flush(p.metadata.uid!);
    const patches = client.actions.filter((a) => a.verb === "patch");
    expect(patches).toHaveLength(2);
    expect((client.tracker("", "pods", "default", "p") as Pod).status!.conditions!.find((c) => c.type === "Ready")!.status).toBe("True");
    // A terminal phase written by someone else is not undone.
    const again = await pods.get("default", "p");
    sm.reconcile(await pods.updateStatus({ ...again, status: { ...again.status, phase: "Failed" } }));
    await flushPromises();
    expect(client.actions.filter((a) => a.verb === "patch")).toHaveLength(2);
  });

  it("statusDiff nulls removed fields", () => {
    expect(statusDiff({ phase: "Running", podIP: "1" }, { phase: "Running" })).toEqual({ podIP: null });
  });
});

describe("getPhase", () => {
  const term = (name: string, exitCode: number): ContainerStatus => ({ name, ready: false, restartCount: 0, image: "", imageID: "", state: { terminated: { exitCode } } });
  const waitingAfter = (name: string, exitCode: number): ContainerStatus => ({ ...term(name, exitCode), state: { waiting: { reason: "CrashLoopBackOff" } }, lastState: { terminated: { exitCode } } });
  const p = (restartPolicy: "Always" | "OnFailure" | "Never"): Pod => ({ ...pod(), spec: { containers: [{ name: "a" }], restartPolicy } });
  it.each([
    ["Always, running", "Always", [], [running("a")], "Running"],
    ["Always, crash-looping", "Always", [], [waitingAfter("a", 1)], "Running"],
    ["Never, exit 1", "Never", [], [term("a", 1)], "Failed"],
    ["Never, exit 0", "Never", [], [term("a", 0)], "Succeeded"],
    ["OnFailure, exit 0", "OnFailure", [], [term("a", 0)], "Succeeded"],
    ["OnFailure, exit 1 restarting", "OnFailure", [], [waitingAfter("a", 1)], "Running"],
    ["Never, init failed", "Never", [term("i", 1)], [{ ...running("a"), state: { waiting: { reason: "PodInitializing" } } }], "Failed"],
    ["Always, init running", "Always", [running("i")], [{ ...running("a"), state: { waiting: { reason: "PodInitializing" } } }], "Pending"],
  ] as const)("%s", (_n, policy, init, app, want) => {
    expect(getPhase(p(policy), [...init], [...app], false)).toBe(want);
  });
});
