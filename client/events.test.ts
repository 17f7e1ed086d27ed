import { describe, expect, it } from "vitest";
import type { Event, Pod } from "../api/index.ts";
import { newEventRecorder } from "./events.ts";
import { FakeClient, FakeClock, fakeErrors } from "./testing.ts";

const pod: Pod = { apiVersion: "v1", kind: "Pod", metadata: { name: "web-1", namespace: "prod", uid: "uid-1", resourceVersion: "7" } } as Pod;

describe("event recorder", () => {
  it("creates an Event with the involved object, source and timestamps", async () => {
    const clock = new FakeClock(Date.UTC(2024, 0, 1, 0, 0, 0));
    const fake = new FakeClient([], { clock });
    const rec = newEventRecorder(fake, { component: "replicaset-controller", host: "cm-1", clock });
    rec.event(pod, "Normal", "Scheduled", "assigned to node-1");
    await rec.flush();
    const [ev] = fake.trackerList("", "events") as Event[];
    expect(ev).toMatchObject({
      metadata: { namespace: "prod" },
      involvedObject: { apiVersion: "v1", kind: "Pod", namespace: "prod", name: "web-1", uid: "uid-1" },
      reason: "Scheduled",
      message: "assigned to node-1",
      type: "Normal",
      source: { component: "replicaset-controller", host: "cm-1" },
      firstTimestamp: "2024-01-01T00:00:00Z",
      lastTimestamp: "2024-01-01T00:00:00Z",
      count: 1,
      reportingComponent: "replicaset-controller",
      reportingInstance: "cm-1",
    });
    expect(ev!.metadata.name).toMatch(/^web-1\.[0-9a-f]+$/);
  });

  it("aggregates repeats into a patch of count and lastTimestamp", async () => {
    const clock = new FakeClock(Date.UTC(2024, 0, 1, 0, 0, 0));
    const fake = new FakeClient([], { clock });
    const rec = newEventRecorder(fake, { component: "kubelet", clock });
    rec.event(pod, "Warning", "BackOff", "Back-off restarting failed container");
    await clock.advance(10_000);
    rec.event(pod, "Warning", "BackOff", "Back-off restarting failed container");
    await clock.advance(10_000);
    rec.event(pod, "Warning", "BackOff", "Back-off restarting failed container");
    rec.event(pod, "Normal", "Pulled", "image pulled"); // a different event
    await rec.flush();
    expect(fake.actions.map((a) => a.verb)).toEqual(["create", "patch", "patch", "create"]);
    expect(fake.actions[2]).toMatchObject({ patchType: "strategic", patch: { count: 3, lastTimestamp: "2024-01-01T00:00:20Z" } });
    const backoff = (fake.trackerList("", "events") as Event[]).find((e) => e.reason === "BackOff")!;
    expect(backoff).toMatchObject({ count: 3, firstTimestamp: "2024-01-01T00:00:00Z", lastTimestamp: "2024-01-01T00:00:20Z" });
  });

  it("starts a new event when the aggregate has been deleted", async () => {
    const fake = new FakeClient();
    const rec = newEventRecorder(fake, { component: "c" });
    rec.event(pod, "Normal", "R", "m");
    await rec.flush();
    const name = fake.trackerList("", "events")[0]!.metadata.name!;
    await fake.resource("", "events").delete("prod", name);
    fake.clearActions();
    rec.event(pod, "Normal", "R", "m");
    await rec.flush();
    expect(fake.actions.map((a) => a.verb)).toEqual(["patch", "create"]);
    expect(fake.trackerList("", "events")[0]).toMatchObject({ count: 1 });
  });

  it("never throws to the caller when the write fails", async () => {
    const fake = new FakeClient();
    fake.prependReactor("create", "events", () => ({ error: fakeErrors.internal("down") }));
    const rec = newEventRecorder(fake, { component: "c" });
    expect(() => rec.event(pod, "Normal", "R", "m")).not.toThrow();
    await rec.flush();
    expect(fake.trackerList("", "events")).toEqual([]);
  });
});
