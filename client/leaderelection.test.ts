import { describe, expect, it } from "vitest";
import type { Lease } from "../api/index.ts";
import { runLeaderElection, microTime, type LeaderElectionOptions } from "./leaderelection.ts";
import { newLogger } from "./log.ts";
import { FakeClient, FakeClock, fakeErrors } from "./testing.ts";
import type { Context } from "./types.ts";

function candidate(fake: FakeClient, clock: FakeClock, identity: string) {
  const state = { leading: false, stopped: false, leaderCtx: undefined as Context | undefined, leaders: [] as string[] };
  const ac = new AbortController();
  const opts: LeaderElectionOptions = {
    client: fake,
    namespace: "kube-system",
    name: "kube-controller-manager",
    identity,
    clock,
    onStartedLeading: (ctx) => {
      state.leading = true;
      state.leaderCtx = ctx;
    },
    onStoppedLeading: () => {
      state.leading = false;
      state.stopped = true;
    },
    onNewLeader: (id) => state.leaders.push(id),
  };
  const done = runLeaderElection({ signal: ac.signal, log: newLogger("test") }, opts);
  return { state, ac, done };
}

const lease = (fake: FakeClient): Lease => fake.tracker("coordination.k8s.io", "leases", "kube-system", "kube-controller-manager") as Lease;

describe("leader election", () => {
  it("formats MicroTime with microseconds", () => {
    expect(microTime(Date.UTC(2006, 0, 2, 15, 4, 5, 123))).toBe("2006-01-02T15:04:05.123000Z");
  });

  it("acquires a free lease by creating it", async () => {
    const clock = new FakeClock();
    const fake = new FakeClient([], { clock });
    const c = candidate(fake, clock, "a");
    await clock.advance(0);
    expect(c.state.leading).toBe(true);
    expect(lease(fake).spec).toEqual({
      holderIdentity: "a",
      leaseDurationSeconds: 15,
      acquireTime: microTime(clock.now()),
      renewTime: microTime(clock.now()),
      leaseTransitions: 0,
    });
    await clock.advance(2000);
    expect(lease(fake).spec?.renewTime).toBe(microTime(clock.now()));
    c.ac.abort();
    await c.done;
    expect(c.state.stopped).toBe(true);
    expect(c.state.leaderCtx?.signal.aborted).toBe(true);
    expect(lease(fake).spec?.holderIdentity).toBeUndefined(); // released
  });

  it("does not steal a lease renewed by another holder, and takes it over once it expires", async () => {
    const clock = new FakeClock();
    const start = clock.now();
    const fake = new FakeClient(
      [
        {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name: "kube-controller-manager", namespace: "kube-system" },
          spec: { holderIdentity: "other", leaseDurationSeconds: 15, acquireTime: microTime(start), renewTime: microTime(start), leaseTransitions: 3 },
        } as Lease,
      ],
      { clock },
    );
    const c = candidate(fake, clock, "b");
    await clock.advance(14_000);
    expect(c.state.leading).toBe(false);
    expect(c.state.leaders).toEqual(["other"]);
    expect(fake.writeActions()).toEqual([]);
    await clock.advance(2_000); // 16 s since we first saw the record unchanged
    expect(c.state.leading).toBe(true);
    expect(lease(fake).spec).toMatchObject({ holderIdentity: "b", leaseTransitions: 4, acquireTime: microTime(clock.now()) });
    expect(c.state.leaders).toEqual(["other", "b"]);
    c.ac.abort();
    await c.done;
  });

  it("keeps waiting while the holder keeps renewing", async () => {
    const clock = new FakeClock();
    const fake = new FakeClient([], { clock });
    const a = candidate(fake, clock, "a");
    await clock.advance(0);
    const b = candidate(fake, clock, "b");
    await clock.advance(60_000);
    expect(a.state.leading).toBe(true);
    expect(b.state.leading).toBe(false);
    // a shuts down and releases: b takes over on its next try instead of waiting out the lease.
    a.ac.abort();
    await a.done;
    await clock.advance(2_000);
    expect(b.state.leading).toBe(true);
    b.ac.abort();
    await b.done;
  });

  it("loses leadership when renewing fails for longer than the renew deadline", async () => {
    const clock = new FakeClock();
    const fake = new FakeClient([], { clock });
    const c = candidate(fake, clock, "a");
    await clock.advance(0);
    expect(c.state.leading).toBe(true);
    fake.prependReactor("update", "leases", () => ({ error: fakeErrors.internal("etcd unavailable") }));
    await clock.advance(8_000);
    expect(c.state.leading).toBe(true);
    await clock.advance(2_000);
    expect(c.state.leading).toBe(false);
    expect(c.state.leaderCtx?.signal.aborted).toBe(true);
    await c.done;
  });
});
