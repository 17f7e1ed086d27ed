// What proves nothing was lost: a journal writer creating numbered ConfigMaps through the cluster
// endpoint at a steady rate before, during and after the faults — every create the API answered
// with success is recorded, every create whose answer was lost (timeout, reset) is "uncertain" —
// verified one by one at the end; and a watch-gap checker, a client watching the journal's
// namespace from the start and re-watching from the last resourceVersion it saw whenever its
// stream breaks, which must see every journal object's ADDED exactly once.

import type { ConfigMap, KubeObject } from "../api/index.ts";
import type { RestClient } from "../client/index.ts";
import type { JournalResult, WatchGapResult } from "./types.ts";
import { realClock } from "../client/index.ts";

const sleep = realClock.sleep;

export const JOURNAL_NAMESPACE = "kubelab-chaos-journal";

export class JournalWriter {
  private readonly ok: string[] = [];
  private uncertain: string[] = [];
  private failed = 0;
  private n = 0;

  constructor(
    private readonly client: RestClient,
    private readonly run: string,
  ) {}

  /** Writes `rate` objects a second until the signal aborts. */
  async write(rate: number, signal: AbortSignal): Promise<void> {
    if (rate <= 0) return;
    const cms = this.client.resource<ConfigMap>("", "configmaps");
    const period = 1000 / rate;
    let next = Date.now();
    while (!signal.aborted) {
      const name = `${this.run}-${String(this.n++).padStart(5, "0")}`;
      try {
        await Promise.race([
          cms.create(JOURNAL_NAMESPACE, { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: JOURNAL_NAMESPACE, labels: { "kubelab.io/chaos-run": this.run } }, data: { seq: String(this.n - 1) } }),
          new Promise((_, rej) => setTimeout(() => rej(Object.assign(new Error("timeout"), { uncertain: true })), 10_000)),
        ]);
        this.ok.push(name);
      } catch (e) {
        const code = (e as { code?: number }).code;
        // A 5xx or a lost answer may or may not have been applied; a 4xx was refused for certain.
        if (code === undefined || code >= 500) this.uncertain.push(name);
        else this.failed++;
      }
      next += period;
      const wait = next - Date.now();
      if (wait > 0) await sleep(wait, signal);
      else next = Date.now();
    }
  }

  /** Every acknowledged object read back; uncertain ones that exist count as written. */
  async verify(): Promise<{ result: JournalResult; existing: Set<string> }> {
    const list = await this.client.resource<ConfigMap>("", "configmaps").list(JOURNAL_NAMESPACE, { labelSelector: `kubelab.io/chaos-run=${this.run}` });
    const existing = new Set(list.items.map((c) => c.metadata.name!));
    const lost = this.ok.filter((n) => !existing.has(n));
    return { result: { written: this.ok.length + this.uncertain.filter((n) => existing.has(n)).length, lost, uncertain: this.uncertain.length, failedWrites: this.failed }, existing };
  }
}

export class WatchGapChecker {
  private readonly seen = new Map<string, number>();
  private rewatches = 0;
  private rv = "";

  constructor(
    private readonly client: RestClient,
    private readonly run: string,
  ) {}

  /** Lists once (the starting resourceVersion), then watches until the signal aborts. */
  async start(): Promise<void> {
    const list = await this.client.resource<ConfigMap>("", "configmaps").list(JOURNAL_NAMESPACE, { labelSelector: `kubelab.io/chaos-run=${this.run}` });
    this.rv = list.metadata.resourceVersion ?? "";
  }

  async watch(signal: AbortSignal): Promise<void> {
    const cms = this.client.resource<ConfigMap>("", "configmaps");
    while (!signal.aborted) {
      try {
        for await (const ev of cms.watch(JOURNAL_NAMESPACE, { resourceVersion: this.rv, labelSelector: `kubelab.io/chaos-run=${this.run}`, allowWatchBookmarks: true }, signal)) {
          if (ev.type === "ERROR") throw new Error(JSON.stringify(ev.object));
          this.rv = (ev.object as KubeObject).metadata.resourceVersion ?? this.rv;
          if (ev.type === "ADDED") this.seen.set(ev.object.metadata.name!, (this.seen.get(ev.object.metadata.name!) ?? 0) + 1);
        }
      } catch {
        // the stream broke (its apiserver went away): resume from the last resourceVersion
      }
      if (signal.aborted) break;
      this.rewatches++;
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Compares what the watch saw with the objects that exist. */
  result(existing: ReadonlySet<string>): WatchGapResult {
    const missing = [...existing].filter((n) => !this.seen.has(n)).sort();
    const duplicated = [...this.seen].filter(([, c]) => c > 1).map(([n]) => n).sort();
    return { expected: existing.size, seen: [...this.seen.keys()].filter((n) => existing.has(n)).length, missing, duplicated, rewatches: this.rewatches };
  }
}
