// CronJobs end to end under `kubelab up` (simulated nodes), in real time: a `*/1 * * * *` CronJob
// observed across minute boundaries creates Jobs named for their scheduled minute that complete; a
// Forbid CronJob whose Job runs on does not start a second; `kubectl create job --from=cronjob/x`.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CronJob, Event, Job } from "../api/index.ts";
import { RestClient } from "../client/index.ts";
import { startKubelab, type Kubelab } from "./harness/kubelab.ts";
import { poll } from "./harness/poll.ts";

let k: Kubelab;
let client: RestClient;
const NS = "default";

async function kc(args: string[], input?: string): Promise<string> {
  const r = await k.kubectl(args, { input, timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

const jobs = () => client.resource<Job>("batch", "jobs");
const cronJobs = () => client.resource<CronJob>("batch", "cronjobs");
const isComplete = (j: Job): boolean => j.status?.conditions?.some((c) => c.type === "Complete" && c.status === "True") ?? false;

async function jobsOf(cj: string): Promise<Job[]> {
  return (await jobs().list(NS)).items.filter((j) => j.metadata.ownerReferences?.some((r) => r.kind === "CronJob" && r.name === cj));
}

async function eventsOf(cj: string): Promise<Event[]> {
  return (await client.resource<Event>("", "events").list(NS)).items.filter((e) => e.involvedObject?.kind === "CronJob" && e.involvedObject.name === cj);
}

const forbid = `
apiVersion: batch/v1
kind: CronJob
metadata: {name: long}
spec:
  schedule: "*/1 * * * *"
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: c, image: busybox, command: [sleep, "3600"]}]
`;

beforeAll(async () => {
  k = await startKubelab({ nodes: true });
  client = RestClient.fromKubeconfig(k.kubeconfig);
}, 120_000);

afterAll(async () => {
  await k?.stop({ clean: true });
});

describe("CronJob", () => {
  it("rejects invalid CronJobs with upstream's messages", async () => {
    const bad = (schedule: string, extra = "") => `apiVersion: batch/v1
kind: CronJob
metadata: {name: bad}
spec:
  schedule: "${schedule}"
${extra}  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Always
          containers: [{name: c, image: busybox}]
`;
    const r = await k.kubectl(["apply", "-f", "-"], { input: bad("x", '  timeZone: "Mars/Olympus"\n') });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('spec.schedule: Invalid value: "x": expected exactly 5 fields, found 1: [x]');
    expect(r.stderr).toContain('spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus');
    expect(r.stderr).toContain('spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"');
    const tz = await k.kubectl(["apply", "-f", "-"], { input: bad("TZ=UTC 0 * * * *") });
    expect(tz.stderr).toContain('spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead');
    const range = await k.kubectl(["create", "cronjob", "bad", "--image=busybox", "--schedule=61 * * * *"]);
    expect(range.stderr).toContain('spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61');
  });

  it("every minute creates Jobs named for their scheduled minute that complete; Forbid starts no second Job while one runs", async () => {
    await kc(["create", "cronjob", "every", "--image=busybox", "--schedule=*/1 * * * *", "--", "sh", "-c", "echo tick; exit 0"]);
    await kc(["apply", "-f", "-"], forbid);
    const table = await kc(["get", "cronjobs", "-o", "wide"]);
    expect(table.split("\n")[0]).toMatch(/^NAME\s+SCHEDULE\s+TIMEZONE\s+SUSPEND\s+ACTIVE\s+LAST SCHEDULE\s+AGE\s+CONTAINERS\s+IMAGES\s+SELECTOR$/);
    expect(table).toMatch(/\nevery\s+\*\/1 \* \* \* \*\s+<none>\s+False\s+0\s+<none>\s+/);

    // The first minute boundary: one Job each.
    const first = await poll("a completed Job of every and a running Job of long", async () => {
      const e = (await jobsOf("every")).filter(isComplete);
      const l = await jobsOf("long");
      return e.length >= 1 && l.length >= 1 ? { every: e[0]!, long: l[0]! } : undefined;
    }, 90_000, 1000);
    for (const j of [first.every, first.long]) {
      const stamp = j.metadata.annotations?.["batch.kubernetes.io/cronjob-scheduled-timestamp"] ?? "";
      expect(stamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:00Z$/);
      expect(j.metadata.name).toBe(`${j.metadata.ownerReferences![0]!.name}-${Date.parse(stamp) / 60_000}`);
    }
    const cjEvery = await poll("every records its run", async () => {
      const cj = await cronJobs().get(NS, "every");
      return cj.status?.lastSuccessfulTime && (cj.status.active ?? []).length === 0 ? cj : undefined;
    });
    expect(cjEvery.status?.lastScheduleTime).toBe(first.every.metadata.annotations?.["batch.kubernetes.io/cronjob-scheduled-timestamp"]);
    expect((await cronJobs().get(NS, "long")).status?.active?.map((a) => a.name)).toEqual([first.long.metadata.name]);

    // The next minute boundary: Forbid skips, Allow runs again.
    await poll("long skipped a run (JobAlreadyActive)", async () => (await eventsOf("long")).some((e) => e.reason === "JobAlreadyActive") || undefined, 75_000, 1000);
    const second = await poll("a second completed Job of every", async () => {
      const e = (await jobsOf("every")).filter(isComplete);
      return e.length >= 2 ? e : undefined;
    }, 30_000, 1000);
    expect(new Set(second.map((j) => j.metadata.name)).size).toBe(second.length);
    expect((await jobsOf("long")).map((j) => j.metadata.name)).toEqual([first.long.metadata.name]);
    const reasons = (await eventsOf("every")).map((e) => e.reason);
    expect(reasons).toContain("SuccessfulCreate");
    expect(reasons).toContain("SawCompletedJob");
  }, 240_000);

  it("kubectl create job --from=cronjob/every makes a manual Job that completes", async () => {
    await kc(["create", "job", "manual-run", "--from=cronjob/every"]);
    const job = await poll("the manual Job completes", async () => {
      const j = await jobs().get(NS, "manual-run");
      return isComplete(j) ? j : undefined;
    });
    expect(job.metadata.annotations?.["cronjob.kubernetes.io/instantiate"]).toBe("manual");
    expect(job.metadata.ownerReferences?.[0]).toMatchObject({ kind: "CronJob", name: "every", controller: true });
  }, 60_000);
});
