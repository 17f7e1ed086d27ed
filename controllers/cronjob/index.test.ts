// CronJob controller: reconciles against a FakeClient with an injected clock; assertions on the
// Jobs it creates and deletes, the status it writes, its events and the requeue it asks for.

import { describe, expect, it } from "vitest";
import type { CronJob, Job } from "../../api/index.ts";
import { applyDefaults, parseSchedule } from "../../api/index.ts";
import { newLogger } from "../../client/log.ts";
import { fakeLister, FakeClient, FakeClock, FakeRecorder } from "../../client/testing.ts";
import type { ReconcileContext } from "../../client/types.ts";
import { CronJobController, mostRecentScheduleTime, NextScheduleDeltaMs } from "./index.ts";

const NS = "default";
const T0 = Date.UTC(2024, 0, 1, 0, 0, 0);
const MIN = 60_000;
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

function ctx(): ReconcileContext {
  return { signal: new AbortController().signal, log: newLogger("test"), reconcileID: "test" };
}

function cronJob(name: string, spec: Partial<NonNullable<CronJob["spec"]>> = {}, opts: { created?: number; status?: CronJob["status"] } = {}): CronJob {
  const cj: CronJob = {
    apiVersion: "batch/v1",
    kind: "CronJob",
    metadata: { name, namespace: NS, uid: `uid-${name}`, creationTimestamp: iso(opts.created ?? T0 + 1_000), generation: 1 },
    spec: {
      schedule: "*/1 * * * *",
      jobTemplate: { metadata: { labels: { app: name } }, spec: { template: { spec: { restartPolicy: "Never", containers: [{ name: "c", image: "busybox", command: ["sh", "-c", "exit 0"] }] } } } },
      ...spec,
    },
    ...(opts.status ? { status: opts.status } : {}),
  };
  applyDefaults(cj);
  return cj;
}

function fixture(cjs: CronJob[], jobs: Job[] = [], now = T0) {
  const clock = new FakeClock(now);
  const client = new FakeClient([...cjs, ...jobs], { clock });
  const recorder = new FakeRecorder();
  const sync = async (name: string) => {
    const controller = new CronJobController({
      client,
      cronJobs: fakeLister(client.trackerList("batch", "cronjobs") as CronJob[]),
      jobs: fakeLister(client.trackerList("batch", "jobs") as Job[]),
      recorder,
      clock,
    });
    return controller.reconcile(ctx(), `${NS}/${name}`);
  };
  const jobs_ = () => client.trackerList("batch", "jobs") as Job[];
  const cj = (name: string) => client.tracker("batch", "cronjobs", NS, name) as CronJob;
  const created = () => client.writeActions().filter((a) => a.verb === "create" && a.resource === "jobs").map((a) => a.object as Job);
  const deleted = () => client.writeActions().filter((a) => a.verb === "delete" && a.resource === "jobs").map((a) => a.name);
  return { clock, client, recorder, sync, jobs: jobs_, cj, created, deleted };
}

/** A Job of the CronJob as its controller would have created it, in a given state. */
function ownedJob(cj: CronJob, scheduled: number, state: "running" | "Complete" | "Failed", opts: { startTime?: number } = {}): Job {
  const name = `${cj.metadata.name}-${Math.floor(scheduled / MIN)}`;
  const job: Job = {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name,
      namespace: NS,
      uid: `uid-${name}`,
      ownerReferences: [{ apiVersion: "batch/v1", kind: "CronJob", name: cj.metadata.name ?? "", uid: cj.metadata.uid ?? "", controller: true, blockOwnerDeletion: true }],
    },
    spec: { template: {} },
    status: { startTime: iso(opts.startTime ?? scheduled), ...(state === "running" ? { active: 1 } : {}) },
  };
  if (state !== "running") {
    job.status!.conditions = [{ type: state, status: "True" }];
    if (state === "Complete") job.status!.completionTime = iso(scheduled + 5_000);
  }
  return job;
}

function refOf(job: Job) {
  return { kind: "Job", apiVersion: "batch/v1", namespace: NS, name: job.metadata.name, uid: job.metadata.uid };
}

describe("CronJobController: scheduling", () => {
  it("before the first scheduled time creates nothing and requeues for that time (plus 100 ms)", async () => {
    const f = fixture([cronJob("tick")], [], T0 + 10_000);
    const r = await f.sync("tick");
    expect(f.created()).toHaveLength(0);
    expect(r.requeueAfterMs).toBe(T0 + MIN - (T0 + 10_000) + NextScheduleDeltaMs);
  });

  it("at the scheduled time creates Job <name>-<minutes since epoch> from the template, owned and annotated, and records it in status", async () => {
    const f = fixture([cronJob("tick")], [], T0 + MIN + 200);
    const r = await f.sync("tick");
    const [job] = f.created();
    expect(job?.metadata.name).toBe(`tick-${(T0 + MIN) / MIN}`);
    expect(job?.metadata.labels).toEqual({ app: "tick" });
    expect(job?.metadata.annotations?.["batch.kubernetes.io/cronjob-scheduled-timestamp"]).toBe("2024-01-01T00:01:00Z");
    expect(job?.metadata.ownerReferences).toEqual([{ apiVersion: "batch/v1", kind: "CronJob", name: "tick", uid: "uid-tick", controller: true, blockOwnerDeletion: true }]);
    expect(job?.spec?.template.spec?.containers[0]?.command).toEqual(["sh", "-c", "exit 0"]);
    const status = f.cj("tick").status;
    expect(status?.lastScheduleTime).toBe("2024-01-01T00:01:00Z");
    expect(status?.active?.map((a) => a.name)).toEqual([job?.metadata.name]);
    expect(f.recorder.events).toContain(`Normal SuccessfulCreate Created job ${job?.metadata.name}`);
    expect(r.requeueAfterMs).toBe(T0 + 2 * MIN + NextScheduleDeltaMs - (T0 + MIN + 200));
  });

  it("a second sync for the same scheduled time creates no second Job", async () => {
    const f = fixture([cronJob("tick")], [], T0 + MIN + 200);
    await f.sync("tick");
    await f.sync("tick");
    expect(f.created()).toHaveLength(1);
  });

  it("run over five minutes of fake time, one Job per minute, each completed Job leaves the active list and sets lastSuccessfulTime", async () => {
    const f = fixture([cronJob("tick")], [], T0);
    for (let i = 0; i < 5; i++) {
      const r = await f.sync("tick");
      await f.clock.advance(r.requeueAfterMs ?? 0);
      // The Job controller's part: each Job completes.
      for (const j of f.jobs()) {
        if (!j.status?.conditions) f.client.seed({ ...j, status: { conditions: [{ type: "Complete", status: "True" }], completionTime: iso(f.clock.now()) } });
      }
    }
    await f.sync("tick");
    expect(f.created().map((j) => j.metadata.name)).toEqual([1, 2, 3, 4, 5].map((m) => `tick-${(T0 + m * MIN) / MIN}`));
    expect(f.recorder.events.filter((e) => e.startsWith("Normal SawCompletedJob"))).toHaveLength(4);
    expect(f.cj("tick").status?.active?.map((a) => a.name)).toEqual([`tick-${(T0 + 5 * MIN) / MIN}`]);
    expect(f.cj("tick").status?.lastSuccessfulTime).toBeDefined();
  });

  it("a suspended CronJob creates nothing", async () => {
    const f = fixture([cronJob("tick", { suspend: true })], [], T0 + MIN + 200);
    await f.sync("tick");
    expect(f.created()).toHaveLength(0);
  });

  it("startingDeadlineSeconds: a time missed by more than the deadline is not started, one within it is", async () => {
    const late = fixture([cronJob("hourly", { schedule: "0 * * * *", startingDeadlineSeconds: 30 })], [], T0 + 3600_000 + 45_000);
    await late.sync("hourly");
    expect(late.created()).toHaveLength(0);
    const inTime = fixture([cronJob("hourly", { schedule: "0 * * * *", startingDeadlineSeconds: 30 })], [], T0 + 3600_000 + 20_000);
    await inTime.sync("hourly");
    expect(inTime.created().map((j) => j.metadata.name)).toEqual([`hourly-${(T0 + 3600_000) / MIN}`]);
  });

  it("more than 100 missed start times: a TooManyMissedTimes warning, and only the most recent time runs", async () => {
    const f = fixture([cronJob("tick", {}, { created: T0 - 30_000 })], [], T0 + 200 * MIN + 10_000);
    await f.sync("tick");
    expect(f.recorder.events).toContain("Warning TooManyMissedTimes too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew");
    expect(f.created().map((j) => j.metadata.name)).toEqual([`tick-${(T0 + 200 * MIN) / MIN}`]);
  });

  it("a few missed times start only the most recent, without a warning", async () => {
    const f = fixture([cronJob("tick")], [], T0 + 5 * MIN + 10_000);
    await f.sync("tick");
    expect(f.recorder.events.some((e) => e.includes("TooManyMissedTimes"))).toBe(false);
    expect(f.created().map((j) => j.metadata.name)).toEqual([`tick-${(T0 + 5 * MIN) / MIN}`]);
  });

  it("timeZone: 09:00 in Asia/Tokyo runs at 00:00 UTC and the annotation carries +09:00", async () => {
    const f = fixture([cronJob("tokyo", { schedule: "0 9 * * *", timeZone: "Asia/Tokyo" }, { created: T0 - 3600_000 })], [], T0 + 1_000);
    await f.sync("tokyo");
    const [job] = f.created();
    expect(job?.metadata.annotations?.["batch.kubernetes.io/cronjob-scheduled-timestamp"]).toBe("2024-01-01T09:00:00+09:00");
  });

  it("@hourly and the other macros schedule as upstream's descriptors", () => {
    const next = (s: string) => iso(parseSchedule(s, "UTC").next(T0 + 1_000)!);
    expect(next("@hourly")).toBe("2024-01-01T01:00:00Z");
    expect(next("@daily")).toBe("2024-01-02T00:00:00Z");
    expect(next("@midnight")).toBe("2024-01-02T00:00:00Z");
    expect(next("@weekly")).toBe("2024-01-07T00:00:00Z");
    expect(next("@monthly")).toBe("2024-02-01T00:00:00Z");
    expect(next("@yearly")).toBe("2025-01-01T00:00:00Z");
    expect(next("@annually")).toBe("2025-01-01T00:00:00Z");
  });

  it("mostRecentScheduleTime reports a schedule that never fires (31 February) as an error", () => {
    const cj = cronJob("never", { schedule: "0 0 31 2 *" });
    expect(() => mostRecentScheduleTime(cj, T0 + 400 * 24 * 3600_000, parseSchedule("0 0 31 2 *", "UTC"), true)).toThrow(/less than 1 second/);
  });
});

describe("CronJobController: concurrencyPolicy", () => {
  it("Forbid: while a Job runs, the next time is skipped with JobAlreadyActive", async () => {
    const cj = cronJob("forbid", { concurrencyPolicy: "Forbid" });
    const running = ownedJob(cj, T0 + MIN, "running");
    cj.status = { active: [refOf(running)], lastScheduleTime: iso(T0 + MIN) };
    const f = fixture([cj], [running], T0 + 2 * MIN + 200);
    const r = await f.sync("forbid");
    expect(f.created()).toHaveLength(0);
    expect(f.recorder.events).toContain("Normal JobAlreadyActive Not starting job because prior execution is running and concurrency policy is Forbid");
    expect(r.requeueAfterMs).toBe(T0 + 3 * MIN + NextScheduleDeltaMs - (T0 + 2 * MIN + 200));
  });

  it("Forbid: once the running Job completed, the next time runs", async () => {
    const cj = cronJob("forbid", { concurrencyPolicy: "Forbid" });
    const done = ownedJob(cj, T0 + MIN, "Complete");
    cj.status = { active: [refOf(done)], lastScheduleTime: iso(T0 + MIN) };
    const f = fixture([cj], [done], T0 + 2 * MIN + 200);
    await f.sync("forbid");
    expect(f.created().map((j) => j.metadata.name)).toEqual([`forbid-${(T0 + 2 * MIN) / MIN}`]);
    expect(f.cj("forbid").status?.active?.map((a) => a.name)).toEqual([`forbid-${(T0 + 2 * MIN) / MIN}`]);
  });

  it("Replace: the running Job is deleted (SuccessfulDelete) and the new one created", async () => {
    const cj = cronJob("replace", { concurrencyPolicy: "Replace" });
    const running = ownedJob(cj, T0 + MIN, "running");
    cj.status = { active: [refOf(running)], lastScheduleTime: iso(T0 + MIN) };
    const f = fixture([cj], [running], T0 + 2 * MIN + 200);
    await f.sync("replace");
    expect(f.deleted()).toEqual([running.metadata.name]);
    expect(f.recorder.events).toContain(`Normal SuccessfulDelete Deleted job ${running.metadata.name}`);
    expect(f.created().map((j) => j.metadata.name)).toEqual([`replace-${(T0 + 2 * MIN) / MIN}`]);
    expect(f.cj("replace").status?.active?.map((a) => a.name)).toEqual([`replace-${(T0 + 2 * MIN) / MIN}`]);
  });

  it("Allow: a second Job starts while the first still runs", async () => {
    const cj = cronJob("allow");
    const running = ownedJob(cj, T0 + MIN, "running");
    cj.status = { active: [refOf(running)], lastScheduleTime: iso(T0 + MIN) };
    const f = fixture([cj], [running], T0 + 2 * MIN + 200);
    await f.sync("allow");
    expect(f.created()).toHaveLength(1);
    expect(f.cj("allow").status?.active).toHaveLength(2);
  });
});

describe("CronJobController: status and history", () => {
  it("a completed active Job leaves the list with SawCompletedJob and sets lastSuccessfulTime", async () => {
    const cj = cronJob("tick");
    const done = ownedJob(cj, T0 + MIN, "Complete");
    cj.status = { active: [refOf(done)], lastScheduleTime: iso(T0 + MIN) };
    const f = fixture([cj], [done], T0 + MIN + 30_000);
    await f.sync("tick");
    expect(f.recorder.events).toContain(`Normal SawCompletedJob Saw completed job: ${done.metadata.name}, condition: Complete`);
    expect(f.cj("tick").status?.active ?? []).toEqual([]);
    expect(f.cj("tick").status?.lastSuccessfulTime).toBe(iso(T0 + MIN + 5_000));
  });

  it("an active Job that no longer exists is dropped with MissingJob", async () => {
    const cj = cronJob("tick");
    cj.status = { active: [{ kind: "Job", apiVersion: "batch/v1", namespace: NS, name: "tick-gone", uid: "uid-gone" }], lastScheduleTime: iso(T0 + MIN) };
    const f = fixture([cj], [], T0 + MIN + 30_000);
    await f.sync("tick");
    expect(f.recorder.events).toContain("Normal MissingJob Active job went missing: tick-gone");
    expect(f.cj("tick").status?.active ?? []).toEqual([]);
  });

  it("keeps successfulJobsHistoryLimit (3) successful and failedJobsHistoryLimit (1) failed Jobs, deleting the oldest", async () => {
    const cj = cronJob("hist");
    const ok = [1, 2, 3, 4, 5].map((m) => ownedJob(cj, T0 + m * MIN, "Complete"));
    const bad = [6, 7].map((m) => ownedJob(cj, T0 + m * MIN, "Failed"));
    cj.status = { lastScheduleTime: iso(T0 + 7 * MIN) };
    const f = fixture([cj], [...ok, ...bad], T0 + 7 * MIN + 30_000);
    await f.sync("hist");
    expect(f.deleted().sort()).toEqual([ok[0]!.metadata.name, ok[1]!.metadata.name, bad[0]!.metadata.name].sort());
    expect(f.jobs().map((j) => j.metadata.name).sort()).toEqual([ok[2]!, ok[3]!, ok[4]!, bad[1]!].map((j) => j.metadata.name).sort());
  });

  it("a Job of the CronJob it did not create (kubectl create job --from) is reported as UnexpectedJob, not adopted into active", async () => {
    const cj = cronJob("tick");
    const manual = ownedJob(cj, T0, "running");
    manual.metadata.name = "tick-manual";
    manual.metadata.annotations = { "cronjob.kubernetes.io/instantiate": "manual" };
    const f = fixture([cj], [manual], T0 + 20_000);
    await f.sync("tick");
    expect(f.recorder.events).toContain("Warning UnexpectedJob Saw a job that the controller did not create or forgot: tick-manual");
    expect(f.cj("tick").status?.active ?? []).toEqual([]);
  });
});
