import { readFileSync } from "node:fs";
import { ClientClosedError, Etcd3, GRPCDeadlineExceededError, GRPCUnavailableError } from "etcd3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { etcdAvailability, findFreePort, startEtcd, type EtcdHandle } from "../../test/harness/etcd.ts";
import { callOutcome, EtcdBackend, mapEtcdError, shouldRetry } from "./etcd.ts";
import { StorageError, isStorageError } from "./interface.ts";

// The messages are those the etcd3 client and etcd 3.4 produce (seen on a three-member loopback
// cluster with its leader SIGKILLed, and on a stopped member).
const unavailable = (m: string) => new GRPCUnavailableError(`14 UNAVAILABLE: ${m}`);
const notSent = [
  unavailable("No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:2379. Resolution note: "),
  new Error("Execution prevented because the circuit breaker is open"),
  unavailable("etcdserver: no leader"),
  unavailable("etcdserver: too many requests"),
  new ClientClosedError("KV"),
];
const maybeApplied = [
  unavailable("Connection dropped"),
  unavailable("read ECONNRESET"),
  unavailable("etcdserver: request timed out"),
  unavailable("etcdserver: request timed out, possibly due to previous leader failure"),
  unavailable("etcdserver: leader changed"),
  new GRPCDeadlineExceededError("4 DEADLINE_EXCEEDED: Deadline exceeded after 2.001s,LB pick: 0.001s,remote_addr=127.0.0.1:2379"),
  new Error("something nobody has seen before"),
];
const rejected = [new Error("etcdserver: mvcc: required revision has been compacted"), new Error("etcdserver: mvcc: required revision is a future revision")];

describe("callOutcome", () => {
  it.each(notSent.map((e) => [e.message, e]))("a call that failed with %j never reached the raft log", (_m, e) => {
    expect(callOutcome(e)).toBe("not-sent");
  });
  it.each(maybeApplied.map((e) => [e.message, e]))("a call that failed with %j may have been applied", (_m, e) => {
    expect(callOutcome(e)).toBe("unknown");
  });
  it.each(rejected.map((e) => [e.message, e]))("a call that failed with %j was answered with a definite error", (_m, e) => {
    expect(callOutcome(e)).toBe("rejected");
  });
});

describe("shouldRetry", () => {
  it("retries a write only when it certainly was not applied", () => {
    for (const e of notSent) expect(shouldRetry("write", e)).toBe(true);
    for (const e of maybeApplied) expect(shouldRetry("write", e)).toBe(false);
    for (const e of rejected) expect(shouldRetry("write", e)).toBe(false);
  });

  it("retries a read on any failure that is not a definite answer (reads are idempotent)", () => {
    for (const e of [...notSent, ...maybeApplied]) expect(shouldRetry("read", e)).toBe(true);
    for (const e of rejected) expect(shouldRetry("read", e)).toBe(false);
  });
});

describe("mapEtcdError", () => {
  it("reports a write of unknown outcome as such: a Timeout whose message says it may or may not have been applied", () => {
    for (const e of maybeApplied) {
      const se = mapEtcdError(e, "/registry/configmaps/default/x", "write");
      expect(se.code).toBe("Timeout");
      expect(se.message).toMatch(/^etcd: the write may or may not have been applied \(/);
      expect(se.key).toBe("/registry/configmaps/default/x");
      expect(se.cause).toBe(e);
    }
  });

  it("keeps the plain codes for reads and for writes that were not sent", () => {
    expect(mapEtcdError(unavailable("Connection dropped")).code).toBe("Unreachable");
    expect(mapEtcdError(unavailable("Connection dropped"), "k", "read").message).not.toMatch(/may or may not/);
    expect(mapEtcdError(notSent[0], "k", "write").code).toBe("Unreachable");
    expect(mapEtcdError(notSent[1], "k", "write").code).toBe("Unreachable"); // every member's circuit open
    expect(mapEtcdError(new GRPCDeadlineExceededError("4 DEADLINE_EXCEEDED: Deadline exceeded"), "k", "read").code).toBe("Timeout");
    expect(mapEtcdError(rejected[0], "k", "write").code).toBe("ResourceExpired");
    expect(mapEtcdError(rejected[1], "k", "read").code).toBe("Invalid");
  });

  it("passes a StorageError through unchanged", () => {
    const se = new StorageError("Conflict", "x", "k");
    expect(mapEtcdError(se, "k", "write")).toBe(se);
  });
});

const available = await etcdAvailability();
const onEtcd = available.available ? describe : describe.skip;

onEtcd("EtcdBackend on a real etcd", () => {
  let etcd: EtcdHandle;
  let raw: Etcd3;
  beforeAll(async () => {
    etcd = await startEtcd();
    raw = new Etcd3({ hosts: etcd.endpoints });
  }, 60_000);
  afterAll(async () => {
    if (etcd?.pid) process.kill(etcd.pid, "SIGCONT");
    raw?.close();
    await etcd?.stop();
  });

  it("serves every read and write with one member down, trying another for what was not sent", async () => {
    const dead = `http://127.0.0.1:${await findFreePort()}`;
    const b = new EtcdBackend({ endpoints: [dead, ...etcd.endpoints] });
    try {
      for (let i = 0; i < 20; i++) {
        expect((await b.create(`/t/one-down/${i}`, "v")).succeeded).toBe(true);
        expect((await b.get(`/t/one-down/${i}`)).kv?.value).toBe("v");
      }
    } finally {
      await b.close();
    }
  });

  it("reports a write to an unreachable cluster as not applied (Unreachable), after retrying it", async () => {
    const b = new EtcdBackend({ endpoints: [`http://127.0.0.1:${await findFreePort()}`], callTimeoutMs: 600 });
    try {
      const e = await b.create("/t/nowhere", "v").then(() => undefined, (err: unknown) => err);
      expect(isStorageError(e, "Unreachable")).toBe(true);
      expect((e as Error).message).not.toMatch(/may or may not/);
    } finally {
      await b.close();
    }
  });

  it("reports a write whose member stops answering as of unknown outcome, and does not repeat it", async () => {
    if (!etcd.pid) return; // a container: no process to stop
    const b = new EtcdBackend({ endpoints: etcd.endpoints, writeTimeoutMs: 500, readTimeoutMs: 300, callTimeoutMs: 2500 });
    try {
      await b.create("/t/warm", "v"); // connected
      const rev0 = await b.currentRevision();
      process.kill(etcd.pid, "SIGSTOP");
      // The signal is delivered asynchronously: write only once the member is really stopped.
      for (let i = 0; i < 200 && !/\) T /.test(readFileSync(`/proc/${etcd.pid}/stat`, "utf8")); i++) await new Promise((r) => setTimeout(r, 5));
      const t0 = Date.now();
      const e = await b.create("/t/unknown", "v").then(() => undefined, (err: unknown) => err);
      const took = Date.now() - t0;
      expect(isStorageError(e, "Timeout")).toBe(true);
      expect((e as Error).message).toMatch(/^etcd: the write may or may not have been applied \(.*DEADLINE_EXCEEDED/);
      expect(took).toBeLessThan(1400); // one attempt: not retried
      // A read is retried until the call's deadline (the member's circuit opens after three
      // failures), then reported as a timeout or the member as unreachable: both a 504.
      const r = await b.get("/t/unknown").then(() => undefined, (err: unknown) => err);
      expect(isStorageError(r, "Timeout") || isStorageError(r, "Unreachable")).toBe(true);
      process.kill(etcd.pid, "SIGCONT");
      // Once the member runs again the write has been applied or not (the request reached it; its
      // cancellation may have too) — but at most once: nothing repeated it.
      const kv = (await raw.get("/t/unknown").exec()).kvs[0];
      if (kv) {
        expect(kv.value.toString()).toBe("v");
        expect(kv.version).toBe("1");
      }
      // and the driver serves again (its circuit to the member half-opens after a second).
      expect(await b.currentRevision()).toBe(kv ? rev0 + 1 : rev0);
    } finally {
      process.kill(etcd.pid, "SIGCONT");
      await b.close();
    }
  }, 30_000);
});
