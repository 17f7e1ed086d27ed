// Informers: list, then watch from the list's resourceVersion into an indexed cache, calling
// handlers in event order (kubernetes-client/javascript's ListWatch; client-go's Reflector +
// SharedIndexInformer), and the shared factory that keeps one informer per resource per process.

import type { KubeObject } from "../api/index.ts";
import { ClientError, isGone, type StatusBody } from "./errors.ts";
import { newLogger, type Logger } from "./log.ts";
import { realClock } from "./clock.ts";
import { deepFreeze, objectKey, Store } from "./store.ts";
import type { Client, Clock, Context, EventHandler, IndexFunc, Informer, Lister, ObjectKey, SharedInformerFactory, WatchEvent } from "./types.ts";

export interface InformerOptions {
  /** Watch one namespace; default all. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Every resyncMs, onUpdate(obj, obj) for every cached object; default never. */
  resyncMs?: number;
  clock?: Clock;
  /** Reconnect backoff after a failed list or watch; default 1 s doubling to 30 s, reset by the first event. */
  backoff?: { initialMs: number; maxMs: number };
  /** Page size of the list; default 500 (0: unpaged). */
  pageSize?: number;
  /** Used when run() is given no logger of its own. */
  log?: Logger;
}

const DEFAULT_BACKOFF = { initialMs: 1000, maxMs: 30_000 };

/** Why a watch stopped: "gone" relists, "ended" re-watches from the last resourceVersion. */
type WatchOutcome = "gone" | "ended";

/**
 * One resource's list+watch cache. Not restartable: run() once (the factory guarantees it).
 * Handlers are called synchronously in event order; a handler that throws is logged and skipped.
 */
export class ListWatchInformer<T extends KubeObject = KubeObject> implements Informer<T> {
  private readonly store = new Store<T>();
  private readonly handlers: EventHandler<T>[] = [];
  private synced = false;
  private readonly syncWaiters = new Set<() => void>();
  private resourceVersion = "";
  private readonly clock: Clock;
  private readonly backoff: { initialMs: number; maxMs: number };
  private log: Logger;

  constructor(
    private readonly client: Client,
    readonly group: string,
    readonly resource: string,
    private readonly opts: InformerOptions = {},
  ) {
    this.clock = opts.clock ?? realClock;
    this.backoff = opts.backoff ?? DEFAULT_BACKOFF;
    this.log = opts.log ?? newLogger("informer");
  }

  get lister(): Lister<T> {
    return this.store;
  }

  /** The resourceVersion the next watch starts from ("" before the first list). */
  lastSyncResourceVersion(): string {
    return this.resourceVersion;
  }

  /** Adds a handler; when the cache already has objects, it first sees an add for each (as client-go). */
  addEventHandler(handler: EventHandler<T>): void {
    this.handlers.push(handler);
    if (this.synced) for (const o of this.store.list()) this.call(handler, "onAdd", o);
  }

  addIndexer(name: string, fn: IndexFunc<T>): void {
    this.store.addIndexer(name, fn);
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves once the first list has been delivered to the handlers; rejects if `signal` aborts first. */
  waitForSync(signal: AbortSignal): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.syncWaiters.delete(done);
        reject(signal.reason ?? new Error("aborted"));
      };
      const done = (): void => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
      if (signal.aborted) return onAbort();
      this.syncWaiters.add(done);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  async run(ctx: Context): Promise<void> {
    const { signal } = ctx;
    this.log = ctx.log.child({ informer: this.group ? `${this.resource}.${this.group}` : this.resource });
    let delay = this.backoff.initialMs;
    let needList = true;
    const resync = this.startResync(signal);
    try {
      while (!signal.aborted) {
        let sawEvent = false;
        try {
          if (needList) {
            await this.relist();
            needList = false;
          }
          const outcome = await this.watch(signal, () => {
            if (!sawEvent) delay = this.backoff.initialMs; // the first event resets the backoff
            sawEvent = true;
          });
          if (outcome === "gone") {
            this.log.info({ resourceVersion: this.resourceVersion }, "watch expired; relisting");
            needList = true;
            continue;
          }
          if (sawEvent) continue; // a normal end (timeout): re-watch at once from the last resourceVersion
          // An empty watch that ended at once: back off rather than spin against a server that closes on us.
        } catch (e) {
          if (signal.aborted) break;
          if (isGone(e)) {
            this.log.info({ resourceVersion: this.resourceVersion }, "resourceVersion expired; relisting");
            needList = true;
            continue;
          }
          this.log.warn({ err: e, retryInMs: delay }, needList ? "list failed" : "watch failed");
        }
        await this.clock.sleep(delay, signal);
        delay = Math.min(delay * 2, this.backoff.maxMs);
      }
    } finally {
      resync?.cancel();
    }
  }

  /** Lists (page by page), replaces the cache and emits the difference as adds, updates and deletes. */
  private async relist(): Promise<void> {
    const rc = this.client.resource<T>(this.group, this.resource);
    const items: T[] = [];
    let cont: string | undefined;
    let rv = "";
    do {
      const page = await rc.list(this.opts.namespace ?? "", {
        labelSelector: this.opts.labelSelector,
        fieldSelector: this.opts.fieldSelector,
        limit: this.opts.pageSize ?? 500,
        continue: cont,
      });
      items.push(...page.items);
      cont = page.metadata.continue || undefined;
      rv = page.metadata.resourceVersion ?? rv;
    } while (cont);
    const seen = new Set<ObjectKey>();
    for (const obj of items) {
      const key = objectKey(obj);
      seen.add(key);
      const cur = this.store.get(key);
      if (cur && cur.metadata.resourceVersion === obj.metadata.resourceVersion) continue; // unchanged while we were away
      this.store.upsert(obj);
      const now = this.store.get(key)!;
      if (cur) this.emit("onUpdate", cur, now);
      else this.emit("onAdd", now);
    }
    for (const key of this.store.keys()) {
      if (seen.has(key)) continue;
      const last = this.store.remove(key)!;
      this.emit("onDelete", last);
    }
    this.resourceVersion = rv;
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters) w();
      this.syncWaiters.clear();
    }
  }

  /** One watch from the current resourceVersion; returns how it ended, throws on failure. */
  private async watch(parent: AbortSignal, onEvent: () => void): Promise<WatchOutcome> {
    const ac = new AbortController();
    const onAbort = (): void => ac.abort();
    if (parent.aborted) return "ended";
    parent.addEventListener("abort", onAbort, { once: true });
    try {
      const stream = this.client.resource<T>(this.group, this.resource).watch(
        this.opts.namespace ?? "",
        {
          resourceVersion: this.resourceVersion,
          allowWatchBookmarks: true,
          labelSelector: this.opts.labelSelector,
          fieldSelector: this.opts.fieldSelector,
        },
        ac.signal,
      );
      for await (const ev of stream) {
        if (ev.type === "ERROR") {
          const status = ev.object as unknown as StatusBody;
          const err = new ClientError(status.code ?? 500, status.reason ?? "InternalError", status.message ?? "watch error", status);
          if (isGone(err)) return "gone";
          throw err;
        }
        onEvent();
        this.handle(ev);
      }
      return "ended";
    } finally {
      parent.removeEventListener("abort", onAbort);
      ac.abort();
    }
  }

  private handle(ev: WatchEvent<T>): void {
    const rv = ev.object.metadata?.resourceVersion;
    switch (ev.type) {
      case "ADDED":
      case "MODIFIED": {
        const key = objectKey(ev.object);
        const old = this.store.upsert(ev.object);
        const now = this.store.get(key)!;
        if (old) this.emit("onUpdate", old, now);
        else this.emit("onAdd", now);
        break;
      }
      case "DELETED": {
        const key = objectKey(ev.object);
        this.store.remove(key);
        // The final state the server sent, which may be newer than the cached one.
        this.emit("onDelete", deepFreeze(ev.object));
        break;
      }
      case "BOOKMARK":
        break;
    }
    if (rv) this.resourceVersion = rv;
  }

  private startResync(signal: AbortSignal): { cancel(): void } | undefined {
    const every = this.opts.resyncMs;
    if (!every || every <= 0) return undefined;
    let timer: { cancel(): void } | undefined;
    const tick = (): void => {
      if (signal.aborted) return;
      if (this.synced) for (const o of this.store.list()) this.emit("onUpdate", o, o);
      timer = this.clock.setTimeout(tick, every);
    };
    timer = this.clock.setTimeout(tick, every);
    return { cancel: () => timer?.cancel() };
  }

  private emit(kind: "onAdd" | "onDelete", obj: Readonly<T>): void;
  private emit(kind: "onUpdate", old: Readonly<T>, now: Readonly<T>): void;
  private emit(kind: keyof EventHandler<T>, a: Readonly<T>, b?: Readonly<T>): void {
    for (const h of this.handlers) this.call(h, kind, a, b);
  }

  private call(h: EventHandler<T>, kind: keyof EventHandler<T>, a: Readonly<T>, b?: Readonly<T>): void {
    try {
      if (kind === "onUpdate") h.onUpdate?.(a, b!);
      else h[kind]?.(a);
    } catch (e) {
      this.log.error({ err: e, handler: kind, key: objectKey(a) }, "event handler failed");
    }
  }
}

/** An informer for one resource (see InformerOptions). */
export function newInformer<T extends KubeObject = KubeObject>(client: Client, group: string, resource: string, opts: InformerOptions = {}): ListWatchInformer<T> {
  return new ListWatchInformer<T>(client, group, resource, opts);
}

/** Options shared by every informer of a factory (namespace, resync, clock, backoff). */
export type SharedInformerFactoryOptions = Omit<InformerOptions, "labelSelector" | "fieldSelector">;

class Factory implements SharedInformerFactory {
  private readonly informers = new Map<string, ListWatchInformer>();
  private readonly started = new Set<string>();
  private ctx?: Context;

  constructor(
    private readonly client: Client,
    private readonly opts: SharedInformerFactoryOptions,
  ) {}

  informer<T extends KubeObject = KubeObject>(group: string, resource: string): Informer<T> {
    const key = `${group}/${resource}`;
    let inf = this.informers.get(key);
    if (!inf) {
      inf = newInformer(this.client, group, resource, this.opts);
      this.informers.set(key, inf);
      if (this.ctx) this.startOne(key, inf, this.ctx);
    }
    return inf as unknown as Informer<T>;
  }

  /** Starts every informer requested so far; informers requested later start at once. Idempotent. */
  start(ctx: Context): void {
    this.ctx = ctx;
    for (const [key, inf] of this.informers) this.startOne(key, inf, ctx);
  }

  async waitForCacheSync(signal: AbortSignal): Promise<void> {
    await Promise.all([...this.informers.values()].map((i) => i.waitForSync(signal)));
  }

  private startOne(key: string, inf: ListWatchInformer, ctx: Context): void {
    if (this.started.has(key)) return;
    this.started.add(key);
    inf.run(ctx).catch((e: unknown) => ctx.log.error({ err: e, informer: key }, "informer stopped"));
  }
}

/** One informer per resource, shared by every controller in the process. */
export function newSharedInformerFactory(client: Client, opts: SharedInformerFactoryOptions = {}): SharedInformerFactory {
  return new Factory(client, opts);
}
