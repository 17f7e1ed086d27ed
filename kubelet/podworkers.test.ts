import { describe, expect, it } from "vitest";
import { FakeClock, flushPromises, newLogger } from "../client/index.ts";
import { GenericPLEG, type PodLifecycleEvent } from "./pleg.ts";
import { PodWorkers } from "./podworkers.ts";
import { FakeRuntime } from "./runtime/fake.ts";
import { LABEL_NODE, LABEL_POD_UID } from "./runtime/types.ts";

const log = newLogger("podworkers-test");
log.level = "silent";

describe("PodWorkers", () => {
  it("never runs two syncs of one pod at once; a trigger during a sync causes exactly one more", async () => {
    const clock = new FakeClock();
    let active = 0;
    let maxActive = 0;
    const calls: string[] = [];
    const gates: (() => void)[] = [];
    const w = new PodWorkers(
      async (uid) => {
        active++;
        maxActive = Math.max(maxActive, active);
        calls.push(uid);
        await new Promise<void>((r) => gates.push(r));
        active--;
        return {};
      },
      clock,
      log,
    );
    w.update("a");
    w.update("b");
    await flushPromises();
    w.update("a");
    w.update("a");
    w.update("a");
    expect(calls).toEqual(["a", "b"]);
    gates.shift()!();
    await flushPromises();
    expect(calls).toEqual(["a", "b", "a"]);
    gates.splice(0).forEach((g) => g());
    await flushPromises();
    gates.splice(0).forEach((g) => g());
    await w.idle();
    expect(calls).toEqual(["a", "b", "a"]);
    expect(maxActive).toBe(2); // a and b in parallel, never a twice
  });

  it("requeues after the delay a sync asks for, keeping the earliest timer", async () => {
    const clock = new FakeClock();
    const calls: number[] = [];
    const w = new PodWorkers(
      async () => {
        calls.push(clock.now());
        return calls.length === 1 ? { requeueAfterMs: 10_000 } : {};
      },
      clock,
      log,
    );
    const t0 = clock.now();
    w.update("a");
    await w.idle();
    w.enqueueAfter("a", 30_000);
    await clock.advance(9_999);
    expect(calls).toHaveLength(1);
    await clock.advance(1);
    await w.idle();
    expect(calls).toEqual([t0, t0 + 10_000]);
    await clock.advance(60_000);
    expect(calls).toHaveLength(2);
  });
});

describe("GenericPLEG", () => {
  it("emits per-pod events for started, died and removed containers and caches statuses", async () => {
    const clock = new FakeClock();
    const rt = new FakeRuntime(clock);
    rt.images.set("img", "sha256:1");
    const events: PodLifecycleEvent[] = [];
    const pleg = new GenericPLEG({ runtime: rt, nodeName: "n1", clock, log, onEvent: (e) => events.push(e) });
    const sbConfig = { metadata: { name: "p", namespace: "d", uid: "u1", attempt: 0 }, hostname: "p", logDirectory: "/x", portMappings: [], labels: { [LABEL_NODE]: "n1", [LABEL_POD_UID]: "u1" }, annotations: {} };
    const sb = await rt.runPodSandbox(sbConfig);
    const cfg = {
      metadata: { name: "c", attempt: 0 },
      image: "img",
      command: [],
      args: [],
      envs: [],
      mounts: [],
      logPath: "c/0.log",
      labels: { [LABEL_NODE]: "n1", [LABEL_POD_UID]: "u1" },
      annotations: {},
      resources: { cpuShares: 2, cpuQuota: 0, cpuPeriod: 0, memoryLimitInBytes: 0 },
      ports: [],
    };
    const id = await rt.createContainer(sb, cfg, sbConfig);
    await rt.startContainer(id);
    await pleg.relist();
    expect(events).toEqual([
      { podUID: "u1", type: "ContainerStarted", data: sb },
      { podUID: "u1", type: "ContainerStarted", data: id },
    ]);
    events.length = 0;
    const statusCalls = (): number => rt.calls.filter((c) => c.startsWith("containerStatus")).length;
    const before = statusCalls();
    await pleg.relist();
    await pleg.podStatus("u1");
    expect(events).toEqual([]);
    expect(statusCalls()).toBe(before); // unchanged: served from the cache
    rt.exit(id, 2);
    await pleg.relist();
    expect(events).toEqual([{ podUID: "u1", type: "ContainerDied", data: id }]);
    expect((await pleg.podStatus("u1")).containers[0]).toMatchObject({ id, state: "CONTAINER_EXITED", exitCode: 2 });
    events.length = 0;
    await rt.removeContainer(id);
    await pleg.relist();
    expect(events).toEqual([{ podUID: "u1", type: "ContainerRemoved", data: id }]);
    expect(pleg.healthy().ok).toBe(true);
    await clock.advance(4 * 60_000);
    expect(pleg.healthy()).toMatchObject({ ok: false });
  });
});
