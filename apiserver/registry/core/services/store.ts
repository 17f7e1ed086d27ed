// The Services store: the generic store with upstream's service REST hooks around it (BeginCreate,
// BeginUpdate, AfterDelete): ClusterIPs and node ports are allocated in the store's bitmaps before
// the write, given back if the write fails (or was a dry run), and released once a delete or a
// type change that gives them up has been written.

import type { DeleteOptions, KubeObject } from "../../../../api/index.ts";
import type { StorageMetrics } from "../../../metrics.ts";
import type { Backend, WatchCache } from "../../../storage/index.ts";
import { Store, type TryUpdate, type WriteOptions } from "../../store.ts";
import type { Strategy, StrategyContext } from "../../strategy.ts";
import type { Allocation, ServiceAllocator } from "./allocations.ts";

export class ServiceStore extends Store {
  constructor(
    strategy: Strategy,
    backend: Backend,
    ctx: StrategyContext,
    cache: WatchCache<KubeObject>,
    metrics: StorageMetrics | undefined,
    readonly allocator: ServiceAllocator,
  ) {
    super(strategy, backend, ctx, cache, metrics);
  }

  override async create(namespace: string, input: KubeObject, opts: WriteOptions = {}): Promise<KubeObject> {
    const obj = structuredClone(input);
    obj.apiVersion ??= "v1";
    obj.kind ??= "Service";
    obj.metadata ??= {};
    this.strategy.defaults(obj);
    const allocated = await this.allocator.allocateCreate(obj);
    try {
      const out = await super.create(namespace, obj, opts);
      if (opts.dryRun) await this.allocator.rollback(allocated);
      return out;
    } catch (e) {
      await this.allocator.rollback(allocated);
      throw e;
    }
  }

  override async update(
    namespace: string,
    name: string,
    tryUpdate: TryUpdate,
    opts: WriteOptions & { subresource?: string; forceAllowCreate?: boolean } = {},
  ): Promise<{ obj: KubeObject; created: boolean }> {
    if (opts.subresource) return super.update(namespace, name, tryUpdate, opts);
    let attempt: { allocated: Allocation; release: Allocation; current: KubeObject } | undefined;
    const wrapped: TryUpdate = async (current) => {
      // A retry (the object moved under us) starts over: what the last attempt took goes back.
      if (attempt) await this.allocator.rollback(attempt.allocated);
      attempt = undefined;
      const next = await tryUpdate(current);
      if (!current || !next || typeof next !== "object" || typeof next.metadata !== "object") return next;
      const r = await this.allocator.allocateUpdate(next, current);
      attempt = { ...r, current };
      return next;
    };
    let out: { obj: KubeObject; created: boolean };
    try {
      out = await super.update(namespace, name, wrapped, opts);
    } catch (e) {
      if (attempt) await this.allocator.rollback(attempt.allocated);
      throw e;
    }
    if (!attempt || out.created) return out;
    if (opts.dryRun) {
      await this.allocator.rollback(attempt.allocated);
    } else if (this.strategy.shouldDeleteDuringUpdate(out.obj, attempt.current)) {
      // The last finalizer went: the object is gone, and with it everything it held.
      await this.allocator.rollback(attempt.allocated);
      await this.allocator.rollback(this.allocator.held(attempt.current));
    } else {
      await this.allocator.rollback(attempt.release);
    }
    return out;
  }

  override async delete(namespace: string, name: string, options: DeleteOptions, opts: WriteOptions = {}): Promise<{ obj: KubeObject; deleted: boolean }> {
    const out = await super.delete(namespace, name, options, opts);
    if (out.deleted && !opts.dryRun) await this.allocator.rollback(this.allocator.held(out.obj));
    return out;
  }
}
