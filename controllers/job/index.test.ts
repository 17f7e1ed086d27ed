// Job and TTL-after-finished controllers: one synchronous reconcile against a FakeClient, assertions on its actions.

import { describe, expect, it } from "vitest";
import type { Job, Pod } from "../../api/index.ts";
import { newLogger } from "../../client/log.ts";
import { fakeLister, FakeClient, FakeClock, FakeRecorder, type Action } from "../../client/testing.ts";
import type { ReconcileContext } from "../../client/types.ts";
import { Expectations } from "../expectations.ts";
import { FinalizerExpectations, JobController, JobTrackingFinalizer } from "./index.ts";
import { TTLAfterFinishedController } from "./ttl.ts";

const NS = "default";
const T0 = Date.UTC(2024, 0, 1, 0, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

function ctx(): ReconcileContext {
  return { signal: new AbortController().signal, log: newLogger("test"), reconcileID: "test" };
}

/** A Job as the apiserver's strategy leaves it: generated selector and template labels. */
function job(name: string, spec: Partial<NonNullable<Job["spec"]>> = {}, status?: Job["status"]): Job {
  const uid = `uid-${name}`;
  const labels = { "batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name, "controller-uid": uid, "job-name": name };
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name, namespace: NS, uid, generation: 1, creationTimestamp: iso(T0) },
    spec: {
      selector: { matchLabels: { "batch.kubernetes.io/controller-uid": uid } },
      template: { metadata: { labels }, spec: { restartPolicy: "Never", containers: [{ name: "c", image: "busybox" }] } },
      ...spec,
    },
    ...(status ? { status } : {}),
  };
}

function pod(name: string, owner: Job, phase: "Pending" | "Running" | "Succeeded" | "Failed", opts: { ready?: boolean; tracked?: boolean } = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: NS,
      uid: `uid-${name}`,
      creationTimestamp: iso(T0),
      labels: { ...owner.spec?.template.metadata?.labels },
      ...(opts.tracked === false ? {} : { finalizers: [JobTrackingFinalizer] }),
      ownerReferences: [{ apiVersion: "batch/v1", kind: "Job", name: owner.metadata.name ?? "", uid: owner.metadata.uid ?? "", controller: true, blockOwnerDeletion: true }],
    },
    spec: { containers: [{ name: "c", image: "busybox" }] },
    status: { phase, conditions: [{ type: "Ready", status: opts.ready ? "True" : "False" }] },
  };
}

function fixture(jobs: Job[], pods: Pod[], opts: { now?: number } = {}) {
  const clock = new FakeClock(opts.now ?? T0);
  const client = new FakeClient([...jobs, ...pods], { clock });
  const expectations = new Expectations({ clock });
  const finalizerExpectations = new FinalizerExpectations();
  const recorder = new FakeRecorder();
  const lister = () => ({
    jobs: fakeLister(client.trackerList("batch", "jobs") as Job[]),
    pods: fakeLister(client.trackerList("", "pods") as Pod[]),
  });
  const controller = (l = lister()) => new JobController({ client, ...l, expectations, finalizerExpectations, recorder, clock });
  return { client, clock, expectations, finalizerExpectations, recorder, controller, lister };
}

const writes = (client: FakeClient, verb: Action["verb"], resource: string) => client.writeActions().filter((a) => a.verb === verb && a.resource === resource);
const statusWrites = (client: FakeClient) => writes(client, "update", "jobs").filter((a) => a.subresource === "status").map((a) => (a.object as Job).status ?? {});
const lastStatus = (client: FakeClient) => statusWrites(client).at(-1);

describe("JobController: running pods", () => {
  it("creates parallelism pods for completions 3 parallelism 2, labelled, owned and carrying the tracking finalizer", async () => {
    const f = fixture([job("pi", { completions: 3, parallelism: 2 })], []);
    await f.controller().reconcile(ctx(), "default/pi");
    const creates = writes(f.client, "create", "pods");
    expect(creates).toHaveLength(2);
    for (const a of creates) {
      expect(a.object?.metadata.generateName).toBe("pi-");
      expect(a.object?.metadata.labels).toMatchObject({ "batch.kubernetes.io/job-name": "pi", "job-name": "pi", "controller-uid": "uid-pi" });
      expect(a.object?.metadata.finalizers).toEqual([JobTrackingFinalizer]);
      expect(a.object?.metadata.ownerReferences).toEqual([{ apiVersion: "batch/v1", kind: "Job", name: "pi", uid: "uid-pi", controller: true, blockOwnerDeletion: true }]);
    }
    expect(f.recorder.events.filter((e) => e.startsWith("Normal SuccessfulCreate"))).toHaveLength(2);
    expect(lastStatus(f.client)).toMatchObject({ active: 2, startTime: iso(T0), succeeded: 0, failed: 0 });
  });

  it("creates no more pods on a second reconcile before the informer observed the first creates", async () => {
    const f = fixture([job("pi", { completions: 3, parallelism: 2 })], []);
    await f.controller().reconcile(ctx(), "default/pi");
    f.client.clearActions();
    // Same stale pod cache (no pods), the Job as updated by the first status write.
    await f.controller({ jobs: fakeLister(f.client.trackerList("batch", "jobs") as Job[]), pods: fakeLister<Pod>([]) }).reconcile(ctx(), "default/pi");
    expect(writes(f.client, "create", "pods")).toHaveLength(0);
  });

  it("starts only the pods still needed: completions minus succeeded, at most parallelism", async () => {
    const j = job("pi", { completions: 3, parallelism: 2 }, { succeeded: 2, startTime: iso(T0) });
    const f = fixture([j], []);
    await f.controller().reconcile(ctx(), "default/pi");
    expect(writes(f.client, "create", "pods")).toHaveLength(1);
  });

  it("counts ready pods in status.ready", async () => {
    const j = job("pi", { completions: 2, parallelism: 2 });
    const f = fixture([j], [pod("pi-a", j, "Running", { ready: true }), pod("pi-b", j, "Running")]);
    await f.controller().reconcile(ctx(), "default/pi");
    expect(lastStatus(f.client)).toMatchObject({ active: 2, ready: 1 });
  });

  it("writes no status when nothing changed", async () => {
    const j = job("pi", { completions: 2, parallelism: 2 }, { startTime: iso(T0), active: 2, ready: 0, succeeded: 0, failed: 0 });
    const f = fixture([j], [pod("pi-a", j, "Running"), pod("pi-b", j, "Running")]);
    await f.controller().reconcile(ctx(), "default/pi");
    expect(f.client.writeActions()).toEqual([]);
  });
});

describe("JobController: counting and finishing", () => {
  it("counts succeeded pods once through uncountedTerminatedPods, removes their finalizers and completes with completionTime", async () => {
    const j = job("pi", { completions: 3, parallelism: 2 }, { startTime: iso(T0), succeeded: 1, active: 2 });
    const f = fixture([j], [pod("pi-a", j, "Succeeded"), pod("pi-b", j, "Succeeded")], { now: T0 + 60_000 });
    await f.controller().reconcile(ctx(), "default/pi");

    const [first, second] = statusWrites(f.client);
    // First the uids, durably, then the finalizers, then the counters.
    expect(first?.uncountedTerminatedPods).toEqual({ succeeded: ["uid-pi-a", "uid-pi-b"] });
    expect(first?.succeeded).toBe(1);
    const patches = writes(f.client, "patch", "pods");
    expect(patches.map((a) => a.name).sort()).toEqual(["pi-a", "pi-b"]);
    expect(patches[0]?.patch).toEqual({ metadata: { "$deleteFromPrimitiveList/finalizers": [JobTrackingFinalizer], uid: expect.any(String) } });
    expect(second).toMatchObject({ succeeded: 3, failed: 0, active: 0, completionTime: iso(T0 + 60_000), uncountedTerminatedPods: {} });
    expect(second?.conditions).toEqual([expect.objectContaining({ type: "Complete", status: "True" })]);
    expect(f.recorder.events).toContain("Normal Completed Job completed");
    expect(writes(f.client, "create", "pods")).toHaveLength(0);
  });

  it("does not count again a pod whose finalizer removal the cache has not shown yet", async () => {
    const j = job("pi", { completions: 3, parallelism: 1 }, { startTime: iso(T0) });
    const a = pod("pi-a", j, "Succeeded");
    const f = fixture([j], [a]);
    const stalePods = f.lister().pods;
    await f.controller().reconcile(ctx(), "default/pi");
    expect(lastStatus(f.client)?.succeeded).toBe(1);
    f.client.clearActions();
    // The pod cache still shows pi-a with its finalizer.
    await f.controller({ jobs: fakeLister(f.client.trackerList("batch", "jobs") as Job[]), pods: stalePods }).reconcile(ctx(), "default/pi");
    expect(statusWrites(f.client).every((s) => s.succeeded === 1)).toBe(true);
  });

  it("fails the job with BackoffLimitExceeded once failed pods exceed backoffLimit, deleting the active pods", async () => {
    const j = job("pi", { completions: 5, parallelism: 2, backoffLimit: 1 }, { startTime: iso(T0), failed: 1, active: 2 });
    const f = fixture([j], [pod("pi-a", j, "Failed"), pod("pi-b", j, "Running")]);
    await f.controller().reconcile(ctx(), "default/pi");

    expect(writes(f.client, "delete", "pods").map((a) => a.name)).toEqual(["pi-b"]);
    expect(writes(f.client, "create", "pods")).toHaveLength(0);
    const st = lastStatus(f.client);
    // The killed pod counts as failed too, as upstream counts it.
    expect(st).toMatchObject({ failed: 3, active: 0, uncountedTerminatedPods: {} });
    expect(st?.completionTime).toBeUndefined();
    expect(st?.conditions).toEqual([expect.objectContaining({ type: "Failed", status: "True", reason: "BackoffLimitExceeded" })]);
    expect(f.recorder.events).toContain("Warning BackoffLimitExceeded Job has reached the specified backoff limit");
  });

  it("fails the job with DeadlineExceeded once activeDeadlineSeconds have passed since startTime, and requeues for the deadline before", async () => {
    const j = job("pi", { completions: 1, activeDeadlineSeconds: 30 }, { startTime: iso(T0), active: 1, ready: 0, succeeded: 0, failed: 0 });
    const f = fixture([j], [pod("pi-a", j, "Running")], { now: T0 + 10_000 });
    expect(await f.controller().reconcile(ctx(), "default/pi")).toEqual({ requeueAfterMs: 20_000 });
    expect(f.client.writeActions()).toEqual([]);

    await f.clock.advance(20_000);
    await f.controller().reconcile(ctx(), "default/pi");
    expect(writes(f.client, "delete", "pods").map((a) => a.name)).toEqual(["pi-a"]);
    expect(lastStatus(f.client)?.conditions).toEqual([expect.objectContaining({ type: "Failed", reason: "DeadlineExceeded" })]);
    expect(f.recorder.events).toContain("Warning DeadlineExceeded Job was active longer than specified deadline");
  });

  it("leaves a finished job's pods alone", async () => {
    const j = job("pi", { completions: 1 }, { succeeded: 1, conditions: [{ type: "Complete", status: "True" }] });
    const f = fixture([j], [pod("pi-a", j, "Succeeded", { tracked: false })]);
    await f.controller().reconcile(ctx(), "default/pi");
    expect(f.client.writeActions()).toEqual([]);
  });
});

describe("JobController: suspend", () => {
  it("deletes the active pods of a suspended job, creates none and sets the Suspended condition", async () => {
    const j = job("pi", { completions: 3, parallelism: 2, suspend: true }, { startTime: iso(T0), active: 2 });
    const f = fixture([j], [pod("pi-a", j, "Running"), pod("pi-b", j, "Running")]);
    await f.controller().reconcile(ctx(), "default/pi");
    expect(writes(f.client, "delete", "pods").map((a) => a.name).sort()).toEqual(["pi-a", "pi-b"]);
    expect(writes(f.client, "create", "pods")).toHaveLength(0);
    const st = lastStatus(f.client);
    // Pods deleted by suspension are not failures.
    expect(st).toMatchObject({ active: 0, failed: 0 });
    expect(st?.conditions).toEqual([expect.objectContaining({ type: "Suspended", status: "True", reason: "JobSuspended" })]);
  });
});

describe("TTLAfterFinishedController", () => {
  const finished = (ttl: number) =>
    job("pi", { completions: 1, ttlSecondsAfterFinished: ttl }, { succeeded: 1, completionTime: iso(T0), conditions: [{ type: "Complete", status: "True", lastTransitionTime: iso(T0) }] });

  function ttlFixture(j: Job, now: number) {
    const clock = new FakeClock(now);
    const client = new FakeClient([j], { clock });
    const controller = new TTLAfterFinishedController({ client, jobs: fakeLister(client.trackerList("batch", "jobs") as Job[]), clock });
    return { client, controller };
  }

  it("requeues a finished job for when its ttl runs out, deleting nothing", async () => {
    const f = ttlFixture(finished(100), T0 + 40_000);
    expect(await f.controller.reconcile(ctx(), "default/pi")).toEqual({ requeueAfterMs: 60_000 });
    expect(f.client.writeActions()).toEqual([]);
  });

  it("deletes a finished job in the background once ttlSecondsAfterFinished have passed", async () => {
    const f = ttlFixture(finished(100), T0 + 100_000);
    await f.controller.reconcile(ctx(), "default/pi");
    const deletes = writes(f.client, "delete", "jobs");
    expect(deletes).toHaveLength(1);
    expect(deletes[0]?.deleteOptions).toEqual({ propagationPolicy: "Background", preconditions: { uid: "uid-pi" } });
  });

  it("never deletes an unfinished job", async () => {
    const f = ttlFixture(job("pi", { ttlSecondsAfterFinished: 0 }), T0 + 100_000);
    expect(await f.controller.reconcile(ctx(), "default/pi")).toEqual({});
    expect(f.client.writeActions()).toEqual([]);
  });
});
