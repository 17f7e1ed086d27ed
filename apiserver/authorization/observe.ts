// Feeds an authorizer's indexes from the registry's watch cache: a synchronous subscription per key
// prefix, so an index changes in the same tick as the cache it mirrors (no informer lag on top).

import type { KubeObject } from "../../api/index.ts";
import type { CacheEvent, EventSink } from "../storage/index.ts";
import type { Registry } from "../registry/registry.ts";

export type ObservedEvent = { type: "ADDED" | "MODIFIED" | "DELETED"; obj: KubeObject };

/**
 * Subscribes `onEvent` to every change under each `/registry/<resource>/` prefix, starting with an
 * ADDED per current object, once the registry has started (registry.onStart). When the cache breaks
 * a subscription (it relisted after a compaction), `onReset` is called and the prefix is
 * subscribed again from scratch, so the caller rebuilds what it derived from those objects.
 */
export function observe(registry: Registry, resources: readonly string[], onEvent: (resource: string, ev: ObservedEvent) => void, onReset: (resource: string) => void): { stop(): void } {
  const abort = new AbortController();
  const subscribe = (resource: string): void => {
    const sink: EventSink<KubeObject> = {
      push(ev: CacheEvent<KubeObject>) {
        if (ev.type !== "BOOKMARK") onEvent(resource, { type: ev.type, obj: ev.obj });
      },
      fail() {
        if (abort.signal.aborted) return;
        onReset(resource);
        // A new subscription from 0 replays the cache's current objects.
        queueMicrotask(() => subscribe(resource));
      },
      end() {},
      length: 0,
    };
    void registry.cache.subscribe(`/registry/${resource}/`, 0, () => true, sink, abort.signal);
  };
  registry.onStart(async () => {
    for (const r of resources) subscribe(r);
  });
  return { stop: () => abort.abort() };
}
