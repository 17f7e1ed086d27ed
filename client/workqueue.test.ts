import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { FakeClock, flushPromises } from "./testing.ts";
import { BucketRateLimiter, ItemExponentialFailureRateLimiter, newRateLimitingQueue } from "./workqueue.ts";

describe("work queue", () => {
  it("de-duplicates keys waiting to be processed", async () => {
    const q = newRateLimitingQueue({ registry: null });
    q.add("a");
    q.add("b");
    q.add("a");
    expect(q.len()).toBe(2);
    expect(await q.get()).toBe("a");
    expect(await q.get()).toBe("b");
  });

  it("never hands a key to two workers; one re-added while processing comes back after done", async () => {
    const q = newRateLimitingQueue({ registry: null });
    q.add("a");
    const first = await q.get();
    q.add("a"); // changed again while a worker has it
    expect(q.len()).toBe(0);
    let second: string | undefined;
    void q.get().then((k) => (second = k));
    await flushPromises();
    expect(second).toBeUndefined();
    q.done(first!);
    await flushPromises();
    expect(second).toBe("a");
  });

  it("hands queued keys out after shutdown, then undefined", async () => {
    const q = newRateLimitingQueue({ registry: null });
    q.add("a");
    q.shutDown();
    q.add("b");
    expect(await q.get()).toBe("a");
    expect(await q.get()).toBeUndefined();
  });

  it("wakes a blocked get on shutdown", async () => {
    const q = newRateLimitingQueue({ registry: null });
    const got = q.get();
    q.shutDown();
    expect(await got).toBeUndefined();
  });

  it("adds after a delay on the injected clock, keeping the earliest of repeated addAfters", async () => {
    const clock = new FakeClock(0);
    const q = newRateLimitingQueue({ clock, registry: null });
    q.addAfter("a", 1000);
    q.addAfter("a", 500);
    q.addAfter("a", 2000);
    await clock.advance(499);
    expect(q.len()).toBe(0);
    await clock.advance(1);
    expect(q.len()).toBe(1);
    await clock.advance(5000);
    expect(q.len()).toBe(1);
  });

  it("backs off per key exponentially (5 ms, 10 ms, 20 ms …) until forgotten", async () => {
    const clock = new FakeClock(0);
    const q = newRateLimitingQueue({ clock, registry: null });
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      const start = clock.now();
      q.addRateLimited("a");
      while (q.len() === 0) await clock.step();
      delays.push(clock.now() - start);
      q.done((await q.get())!);
    }
    expect(delays).toEqual([5, 10, 20, 40]);
    expect(q.numRequeues("a")).toBe(4);
    q.forget("a");
    expect(q.numRequeues("a")).toBe(0);
  });

  it("caps the per-key backoff at maxDelayMs", () => {
    const l = new ItemExponentialFailureRateLimiter<string>(5, 1_000_000);
    let last = 0;
    for (let i = 0; i < 40; i++) last = l.when("k");
    expect(last).toBe(1_000_000);
  });

  it("limits overall rate with a token bucket once the burst is spent", () => {
    const clock = new FakeClock(0);
    const bucket = new BucketRateLimiter<string>(50, 300, clock);
    const delays = Array.from({ length: 302 }, () => bucket.when());
    expect(delays.slice(0, 300).every((d) => d === 0)).toBe(true);
    expect(delays[300]).toBeCloseTo(20);
    expect(delays[301]).toBeCloseTo(40);
  });

  it("exports depth, adds, durations and retries labelled by name", async () => {
    const clock = new FakeClock(0);
    const registry = new Registry();
    const q = newRateLimitingQueue({ name: "replicaset", clock, registry });
    newRateLimitingQueue({ name: "other", clock, registry }); // a second queue shares the metrics
    q.add("a");
    q.add("b");
    await clock.advance(250);
    const k = (await q.get())!;
    await clock.advance(1000);
    q.done(k);
    q.addRateLimited("a");
    const text = await registry.metrics();
    expect(text).toContain('workqueue_depth{name="replicaset"} 1');
    expect(text).toContain('workqueue_adds_total{name="replicaset"} 2');
    expect(text).toContain('workqueue_retries_total{name="replicaset"} 1');
    expect(text).toContain('workqueue_queue_duration_seconds_sum{name="replicaset"} 0.25');
    expect(text).toContain('workqueue_work_duration_seconds_sum{name="replicaset"} 1');
  });
});
