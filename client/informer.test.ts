import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConfigMap, KubeObject } from "../api/index.ts";
import { ApiServer, openBackend } from "../apiserver/index.ts";
import { newInformer, newSharedInformerFactory } from "./informer.ts";
import { newLogger } from "./log.ts";
import { RestClient } from "./rest.ts";
import { AsyncQueue, FakeClient, FakeClock, flushPromises, type Action } from "./testing.ts";
import { INDEX_NAMESPACE, type Context, type EventHandler, type WatchEvent } from "./types.ts";

const cm = (name: string, data: Record<string, string> = {}): ConfigMap => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: "default" }, data });

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await flushPromises();
}

function ctxWith(ac: AbortController): Context {
  return { signal: ac.signal, log: newLogger("test") };
}

/** Records handler calls as "add a", "update a 1→2" (data.v), "delete a". */
function recorder(): { log: string[]; handler: EventHandler<ConfigMap> } {
  const log: string[] = [];
  return {
    log,
    handler: {
      onAdd: (o) => log.push(`add ${o.metadata.name}`),
      onUpdate: (o, n) => log.push(`update ${n.metadata.name} ${o.data?.v ?? "-"}→${n.data?.v ?? "-"}`),
      onDelete: (o) => log.push(`delete ${o.metadata.name}`),
    },
  };
}

/** Answers every configmaps watch with a stream the test scripts; `fail` makes the next watches throw. */
function scriptWatches(fake: FakeClient, clock: FakeClock) {
  const streams: AsyncQueue<WatchEvent>[] = [];
  const calls: { rv: string | undefined; at: number }[] = [];
  const state = { failNext: 0 };
  fake.prependWatchReactor("configmaps", (action: Action, signal) => {
    calls.push({ rv: action.listOptions?.resourceVersion, at: clock.now() });
    if (state.failNext > 0) {
      state.failNext--;
      return {
        [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new Error("connection refused")) }),
      };
    }
    const q = new AsyncQueue<WatchEvent>(signal);
    streams.push(q);
    return q;
  });
  return { streams, calls, state, last: () => streams[streams.length - 1]! };
}

describe("informer (fake client, fake clock)", () => {
  it("lists, then delivers add, update and delete to handlers with old and new state", async () => {
    const fake = new FakeClient([cm("a", { v: "1" })]);
    const inf = newInformer<ConfigMap>(fake, "", "configmaps", { clock: new FakeClock() });
    const { log, handler } = recorder();
    inf.addEventHandler(handler);
    const ac = new AbortController();
    const running = inf.run(ctxWith(ac));
    await inf.waitForSync(ac.signal);
    expect(inf.hasSynced()).toBe(true);
    const cms = fake.resource<ConfigMap>("", "configmaps");
    const a = await cms.get("default", "a");
    await cms.update({ ...a, data: { v: "2" } });
    await cms.create("default", cm("b"));
    await cms.delete("default", "a");
    await settle();
    expect(log).toEqual(["add a", "update a 1→2", "add b", "delete a"]);
    expect(inf.lister.get("default/b")?.metadata.name).toBe("b");
    expect(inf.lister.get("default/a")).toBeUndefined();
    expect(inf.lister.byIndex(INDEX_NAMESPACE, "default").map((o) => o.metadata.name)).toEqual(["b"]);
    ac.abort();
    await running;
  });

  it("re-watches from the last resourceVersion seen after a watch ends normally, without relisting", async () => {
    const clock = new FakeClock();
    const fake = new FakeClient([cm("a", { v: "1" })]);
    const w = scriptWatches(fake, clock);
    const inf = newInformer<ConfigMap>(fake, "", "configmaps", { clock });
    const { log, handler } = recorder();
    inf.addEventHandler(handler);
    const ac = new AbortController();
    const running = inf.run(ctxWith(ac));
    await inf.waitForSync(ac.signal);
    await settle();
    const listRV = inf.lastSyncResourceVersion();
    expect(w.calls).toEqual([{ rv: listRV, at: clock.now() }]);
    w.last().push({ type: "MODIFIED", object: { ...cm("a", { v: "2" }), metadata: { name: "a", namespace: "default", resourceVersion: "57" } } });
    w.last().push({ type: "BOOKMARK", object: { metadata: { resourceVersion: "60" } } as KubeObject });
    w.last().end();
    await settle();
    expect(w.calls.map((c) => c.rv)).toEqual([listRV, "60"]);
    expect(fake.actions.filter((x) => x.verb === "list")).toHaveLength(1);
    expect(log).toEqual(["add a", "update a 1→2"]);
    ac.abort();
    await running;
  });

  it("relists on 410 Expired and emits what changed while disconnected", async () => {
    const clock = new FakeClock();
    const fake = new FakeClient([cm("a", { v: "1" }), cm("b", { v: "1" }), cm("same", { v: "1" })]);
    const w = scriptWatches(fake, clock);
    const inf = newInformer<ConfigMap>(fake, "", "configmaps", { clock });
    const { log, handler } = recorder();
    inf.addEventHandler(handler);
    const ac = new AbortController();
    const running = inf.run(ctxWith(ac));
    await inf.waitForSync(ac.signal);
    await settle();
    // While the watch is silent: a deleted, b updated, c created.
    const cms = fake.resource<ConfigMap>("", "configmaps");
    await cms.delete("default", "a");
    const b = await cms.get("default", "b");
    await cms.update({ ...b, data: { v: "2" } });
    await cms.create("default", cm("c"));
    log.length = 0;
    w.last().push({ type: "ERROR", object: { kind: "Status", apiVersion: "v1", status: "Failure", reason: "Expired", code: 410, message: "too old resource version" } as unknown as KubeObject });
    await settle();
    expect(log.sort()).toEqual(["add c", "delete a", "update b 1→2"]);
    expect(fake.actions.filter((x) => x.verb === "list")).toHaveLength(2);
    expect(w.calls).toHaveLength(2);
    expect(w.calls[1]!.rv).toBe(inf.lastSyncResourceVersion());
    expect(inf.lister.list().map((o) => o.metadata.name).sort()).toEqual(["b", "c", "same"]);
    ac.abort();
    await running;
  });

  it("backs off 1 s, 2 s, 4 s … up to the cap on failures, and the first event resets the backoff", async () => {
    const clock = new FakeClock(0);
    const fake = new FakeClient([cm("a")]);
    const w = scriptWatches(fake, clock);
    w.state.failNext = 6;
    const inf = newInformer<ConfigMap>(fake, "", "configmaps", { clock, backoff: { initialMs: 1000, maxMs: 8000 } });
    const ac = new AbortController();
    const running = inf.run(ctxWith(ac));
    await inf.waitForSync(ac.signal);
    await clock.advance(1000 + 2000 + 4000 + 8000 + 8000 + 8000);
    // Failed watches at 0, 1, 3, 7, 15, 23; the seventh (at 31) succeeds.
    expect(w.calls.map((c) => c.at)).toEqual([0, 1000, 3000, 7000, 15000, 23000, 31000]);
    w.last().push({ type: "ADDED", object: { ...cm("b"), metadata: { name: "b", namespace: "default", resourceVersion: "99" } } });
    await settle();
    w.state.failNext = 1;
    w.last().end(); // normal end after an event: re-watch at once (fails), then 1 s again, not 16 s
    await settle();
    await clock.advance(1000);
    expect(w.calls.map((c) => c.at).slice(7)).toEqual([31000, 32000]);
    expect(w.calls[8]!.rv).toBe("99");
    ac.abort();
    await running;
  });

  it("gives a handler added after sync an add for every cached object", async () => {
    const fake = new FakeClient([cm("a"), cm("b")]);
    const inf = newInformer<ConfigMap>(fake, "", "configmaps", { clock: new FakeClock() });
    const ac = new AbortController();
    const running = inf.run(ctxWith(ac));
    await inf.waitForSync(ac.signal);
    const { log, handler } = recorder();
    inf.addEventHandler(handler);
    expect(log.sort()).toEqual(["add a", "add b"]);
    ac.abort();
    await running;
  });

  it("the factory hands out one informer per resource and waits for all caches", async () => {
    const fake = new FakeClient([cm("a")]);
    const factory = newSharedInformerFactory(fake, { clock: new FakeClock() });
    const one = factory.informer<ConfigMap>("", "configmaps");
    expect(factory.informer("", "configmaps")).toBe(one);
    const ac = new AbortController();
    factory.start(ctxWith(ac));
    const late = factory.informer("apps", "deployments");
    await factory.waitForCacheSync(ac.signal);
    expect(one.hasSynced() && late.hasSynced()).toBe(true);
    expect(fake.actions.filter((a) => a.verb === "list").map((a) => a.resource).sort()).toEqual(["configmaps", "deployments"]);
    ac.abort();
  });
});

describe("informer against an in-process apiserver", () => {
  let server: ApiServer;
  let client: RestClient;
  beforeAll(async () => {
    server = new ApiServer({ backend: await openBackend("memory://") });
    client = new RestClient({ server: `http://127.0.0.1:${await server.start(0)}` });
  });
  afterAll(async () => {
    client?.close();
    await server?.stop();
  });

  it("lists, then sees add, update and delete", async () => {
    const cms = client.resource<ConfigMap>("", "configmaps");
    await cms.create("default", cm("pre", { v: "1" }));
    const inf = newInformer<ConfigMap>(client, "", "configmaps", { namespace: "default" });
    const { log, handler } = recorder();
    inf.addEventHandler(handler);
    const ac = new AbortController();
    const running = inf.run(ctxWith(ac));
    await inf.waitForSync(ac.signal);
    const live = await cms.create("default", cm("live", { v: "1" }));
    await cms.update({ ...live, data: { v: "2" } });
    await cms.delete("default", "live");
    const deadline = Date.now() + 10_000;
    while (log.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(log).toEqual(["add pre", "add live", "update live 1→2", "delete live"]);
    ac.abort();
    await running;
  });
});
