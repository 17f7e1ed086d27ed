// The event recorder: core/v1 Events about objects, with repeats of the same event folded into one
// object whose count and lastTimestamp are patched (client-go's EventCorrelator, without its spam
// filter and similar-message aggregation).

import type { Event, KubeObject } from "../api/index.ts";
import { realClock } from "./clock.ts";
import { isNotFound } from "./errors.ts";
import { newLogger, type Logger } from "./log.ts";
import type { Client, Clock, EventRecorder } from "./types.ts";

export interface EventRecorderOptions {
  /** source.component and reportingComponent, e.g. "replicaset-controller". */
  component: string;
  /** source.host and reportingInstance. */
  host?: string;
  clock?: Pick<Clock, "now">;
  log?: Logger;
  /** How many distinct events are remembered for aggregation (LRU); default 4096 as upstream. */
  cacheSize?: number;
}

interface Seen {
  name: string;
  namespace: string;
  count: number;
  firstTimestamp: string;
}

function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * Fire-and-forget: event() returns at once; writes for one (object, type, reason, message) run in
 * order, so the first create lands before the patches that count its repeats. Failures are logged.
 */
export class KubeEventRecorder implements EventRecorder {
  private readonly seen = new Map<string, Seen>();
  /** The write chain of each aggregation key, so a repeat waits for the create. */
  private readonly chains = new Map<string, Promise<void>>();
  private readonly clock: Pick<Clock, "now">;
  private readonly log: Logger;

  constructor(
    private readonly client: Client,
    private readonly opts: EventRecorderOptions,
  ) {
    this.clock = opts.clock ?? realClock;
    this.log = opts.log ?? newLogger(opts.component);
  }

  event(obj: Readonly<KubeObject>, type: "Normal" | "Warning", reason: string, message: string): void {
    const ref = {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      namespace: obj.metadata.namespace,
      name: obj.metadata.name,
      uid: obj.metadata.uid,
      resourceVersion: obj.metadata.resourceVersion,
    };
    const key = JSON.stringify([ref.apiVersion, ref.kind, ref.namespace, ref.name, ref.uid, type, reason, message, this.opts.component, this.opts.host]);
    const now = this.clock.now();
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next = prev.then(() => this.write(key, ref, type, reason, message, now)).catch((e: unknown) => {
      this.log.warn({ err: e, reason, object: `${ref.kind}/${ref.namespace ? ref.namespace + "/" : ""}${ref.name}` }, "failed to record event");
    });
    this.chains.set(key, next);
    void next.then(() => {
      if (this.chains.get(key) === next) this.chains.delete(key);
    });
  }

  /** Resolves once every event recorded so far has been written (or has failed). */
  async flush(): Promise<void> {
    while (this.chains.size) await Promise.all([...this.chains.values()]);
  }

  private async write(key: string, ref: Event["involvedObject"], type: string, reason: string, message: string, now: number): Promise<void> {
    const events = this.client.resource<Event>("", "events");
    const ts = rfc3339(now);
    const seen = this.seen.get(key);
    if (seen) {
      try {
        await events.patch(seen.namespace, seen.name, "strategic", { count: seen.count + 1, lastTimestamp: ts, message });
        seen.count++;
        this.touch(key, seen);
        return;
      } catch (e) {
        if (!isNotFound(e)) throw e;
        this.seen.delete(key); // the aggregate was deleted (TTL): start a new one
      }
    }
    const namespace = ref.namespace || "default";
    const event: Event = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: `${ref.name ?? "unknown"}.${(BigInt(now) * 1_000_000n + BigInt(this.seq++ % 1_000_000)).toString(16)}`, namespace },
      involvedObject: ref,
      reason,
      message,
      type,
      source: { component: this.opts.component, ...(this.opts.host ? { host: this.opts.host } : {}) },
      firstTimestamp: ts,
      lastTimestamp: ts,
      count: 1,
      reportingComponent: this.opts.component,
      reportingInstance: this.opts.host ?? "",
    };
    const created = await events.create(namespace, event);
    this.touch(key, { name: created.metadata.name ?? event.metadata.name!, namespace, count: 1, firstTimestamp: ts });
  }

  private seq = 0;

  private touch(key: string, s: Seen): void {
    this.seen.delete(key);
    this.seen.set(key, s);
    const max = this.opts.cacheSize ?? 4096;
    while (this.seen.size > max) this.seen.delete(this.seen.keys().next().value!);
  }
}

/** An EventRecorder writing core/v1 Events through `client`. */
export function newEventRecorder(client: Client, opts: EventRecorderOptions): KubeEventRecorder {
  return new KubeEventRecorder(client, opts);
}
