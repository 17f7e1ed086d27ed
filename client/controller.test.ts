import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import type { KubeObject, Pod } from "../api/index.ts";
import { controllerOwnerKey, enqueueOnChange, enqueueOwner, runController } from "./controller.ts";
import { TerminalError } from "./errors.ts";
import { newLogger } from "./log.ts";
import { FakeClock, flushPromises } from "./testing.ts";
import type { EventHandler, Informer, ReconcileContext, Reconciler, Result } from "./types.ts";
import { newRateLimitingQueue } from "./workqueue.ts";

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await flushPromises();
}

/** A logger whose JSON lines are collected. */
function capturingLogger(): { lines: () => Record<string, unknown>[]; log: ReturnType<typeof newLogger> } {
  const out: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(...chunk.toString("utf8").split("\n").filter(Boolean));
      cb();
    },
  });
  const log = newLogger("test", { level: "debug", destination });
  return { log, lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** A reconciler that answers each call with the next scripted outcome. */
class ScriptedReconciler implements Reconciler {
  readonly calls: { key: string; ctx: ReconcileContext }[] = [];
  constructor(private readonly outcomes: ((ctx: ReconcileContext) => Promise<Result | void>)[]) {}
  async reconcile(ctx: ReconcileContext, key: string): Promise<Result | void> {
    this.calls.push({ key, ctx });
    const next = this.outcomes.shift();
    return next ? next(ctx) : undefined;
  }
}

function setup(outcomes: ((ctx: ReconcileContext) => Promise<Result | void>)[], opts: { timeoutMs?: number; workers?: number } = {}) {
  const clock = new FakeClock(0);
  const queue = newRateLimitingQueue({ clock, registry: null });
  const reconciler = new ScriptedReconciler(outcomes);
  const ac = new AbortController();
  const cap = capturingLogger();
  const done = runController({ signal: ac.signal, log: cap.log }, { name: "test", reconciler, queue, clock, ...opts });
  return { clock, queue, reconciler, ac, done, cap };
}

describe("runController", () => {
  it("forgets a key after success and logs with reconcileID and key", async () => {
    const t = setup([async (ctx) => ctx.log.info("hello")]);
    t.queue.add("ns/a");
    await settle();
    expect(t.reconciler.calls.map((c) => c.key)).toEqual(["ns/a"]);
    const line = t.cap.lines().find((l) => l.msg === "hello")!;
    expect(line).toMatchObject({ controller: "test", key: "ns/a", reconcileID: t.reconciler.calls[0]!.ctx.reconcileID });
    expect(t.queue.numRequeues("ns/a")).toBe(0);
    t.ac.abort();
    await t.done;
  });

  it("requeues with backoff when the reconcile throws, and logs the error", async () => {
    const t = setup([
      async () => {
        throw new Error("boom");
      },
      async () => {
        throw new Error("boom again");
      },
    ]);
    t.queue.add("ns/a");
    await settle();
    expect(t.queue.numRequeues("ns/a")).toBe(1);
    await t.clock.advance(5);
    expect(t.reconciler.calls).toHaveLength(2);
    expect(t.queue.numRequeues("ns/a")).toBe(2);
    await t.clock.advance(9);
    expect(t.reconciler.calls).toHaveLength(2); // second backoff is 10 ms
    await t.clock.advance(1);
    expect(t.reconciler.calls).toHaveLength(3);
    expect(t.queue.numRequeues("ns/a")).toBe(0); // the third succeeded
    expect(t.cap.lines().filter((l) => l.msg === "reconcile failed; requeued with backoff")).toHaveLength(2);
    t.ac.abort();
    await t.done;
  });

  it("does not requeue a TerminalError", async () => {
    const t = setup([
      async () => {
        throw new TerminalError("bad spec");
      },
    ]);
    t.queue.add("ns/a");
    await settle();
    await t.clock.advance(60_000);
    expect(t.reconciler.calls).toHaveLength(1);
    expect(t.cap.lines().some((l) => l.msg === "reconcile failed terminally; not requeued")).toBe(true);
    t.ac.abort();
    await t.done;
  });

  it("requeues after requeueAfterMs, and with backoff on requeue", async () => {
    const t = setup([async () => ({ requeueAfterMs: 30_000 }), async () => ({ requeue: true })]);
    t.queue.add("ns/a");
    await settle();
    await t.clock.advance(29_999);
    expect(t.reconciler.calls).toHaveLength(1);
    await t.clock.advance(1);
    expect(t.reconciler.calls).toHaveLength(2);
    expect(t.queue.numRequeues("ns/a")).toBe(1);
    await t.clock.advance(5);
    expect(t.reconciler.calls).toHaveLength(3);
    t.ac.abort();
    await t.done;
  });

  it("aborts a reconcile's signal after the timeout", async () => {
    let reason: unknown;
    const t = setup(
      [
        (ctx) =>
          new Promise((resolve) => {
            ctx.signal.addEventListener("abort", () => {
              reason = ctx.signal.reason;
              resolve();
            });
          }),
      ],
      { timeoutMs: 1000 },
    );
    t.queue.add("ns/a");
    await settle();
    await t.clock.advance(999);
    expect(reason).toBeUndefined();
    await t.clock.advance(1);
    expect(String(reason)).toMatch(/timed out/);
    t.ac.abort();
    await t.done;
  });

  it("stops on abort only after in-flight reconciles finish", async () => {
    let finish!: () => void;
    const t = setup([() => new Promise<void>((r) => (finish = r))], { workers: 2 });
    t.queue.add("ns/a");
    await settle();
    let stopped = false;
    void t.done.then(() => (stopped = true));
    t.ac.abort();
    await settle();
    expect(stopped).toBe(false);
    finish();
    await settle();
    expect(stopped).toBe(true);
  });

  it("waits for informers to sync before starting workers", async () => {
    let release!: () => void;
    const synced = new Promise<void>((r) => (release = r));
    const queue = newRateLimitingQueue({ registry: null });
    const reconciler = new ScriptedReconciler([]);
    const ac = new AbortController();
    queue.add("ns/a");
    const done = runController({ signal: ac.signal, log: newLogger("test") }, { name: "t", reconciler, queue, informers: [{ waitForSync: () => synced }] });
    await settle();
    expect(reconciler.calls).toHaveLength(0);
    release();
    await settle();
    expect(reconciler.calls).toHaveLength(1);
    ac.abort();
    await done;
  });
});

/** An informer stand-in that exposes its handlers so tests can fire events. */
function handlerSink<T extends KubeObject>(): { informer: Informer<T>; handlers: EventHandler<T>[] } {
  const handlers: EventHandler<T>[] = [];
  const informer = { addEventHandler: (h: EventHandler<T>) => handlers.push(h) } as unknown as Informer<T>;
  return { informer, handlers };
}

const pod = (name: string, rv: string, owner?: { kind: string; name: string; controller?: boolean }): Pod =>
  ({
    metadata: {
      name,
      namespace: "ns",
      resourceVersion: rv,
      ownerReferences: owner ? [{ apiVersion: "apps/v1", kind: owner.kind, name: owner.name, uid: `uid-${owner.name}`, controller: owner.controller ?? true }] : undefined,
    },
  }) as Pod;

describe("event handlers", () => {
  it("enqueueOnChange enqueues the object's key on add, update and delete", async () => {
    const { informer, handlers } = handlerSink<Pod>();
    const queue = newRateLimitingQueue({ registry: null });
    enqueueOnChange(informer, queue);
    handlers[0]!.onAdd!(pod("a", "1"));
    handlers[0]!.onUpdate!(pod("b", "1"), pod("b", "2"));
    handlers[0]!.onDelete!(pod("c", "3"));
    expect([await queue.get(), await queue.get(), await queue.get()]).toEqual(["ns/a", "ns/b", "ns/c"]);
  });

  it("enqueueOwner maps a child to its controller owner, ignores resyncs and other kinds, and requeues both owners on a change", async () => {
    const { informer, handlers } = handlerSink<Pod>();
    const queue = newRateLimitingQueue({ registry: null });
    enqueueOwner(informer, queue, "ReplicaSet");
    const h = handlers[0]!;
    h.onAdd!(pod("a", "1", { kind: "ReplicaSet", name: "rs1" }));
    h.onAdd!(pod("b", "1", { kind: "StatefulSet", name: "ss" }));
    h.onAdd!(pod("c", "1", { kind: "ReplicaSet", name: "not-controller", controller: false }));
    h.onUpdate!(pod("a", "1", { kind: "ReplicaSet", name: "rs1" }), pod("a", "1", { kind: "ReplicaSet", name: "rs1" }));
    expect(queue.len()).toBe(1);
    expect(await queue.get()).toBe("ns/rs1");
    queue.done("ns/rs1");
    h.onUpdate!(pod("a", "1", { kind: "ReplicaSet", name: "rs1" }), pod("a", "2", { kind: "ReplicaSet", name: "rs2" }));
    h.onDelete!(pod("d", "5", { kind: "ReplicaSet", name: "rs3" }));
    expect([await queue.get(), await queue.get(), await queue.get()]).toEqual(["ns/rs1", "ns/rs2", "ns/rs3"]);
  });

  it("controllerOwnerKey finds only the controlling reference of the kind", () => {
    expect(controllerOwnerKey(pod("a", "1", { kind: "ReplicaSet", name: "rs" }), "ReplicaSet")).toBe("ns/rs");
    expect(controllerOwnerKey(pod("a", "1", { kind: "ReplicaSet", name: "rs", controller: false }), "ReplicaSet")).toBeUndefined();
    expect(controllerOwnerKey(pod("a", "1"), "ReplicaSet")).toBeUndefined();
  });
});
