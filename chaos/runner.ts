// The experiment runner (Chaos Toolkit's loop): apply the setup, wait for the steady-state
// hypothesis to hold through the warm-up, then — with the probes, the journal writer, the
// watch-gap checker and the timeline running — inject each fault at its time and revert it after
// its duration, wait for the steady state to hold again, verify every journaled object and every
// watch event, and write the report. Faults are reverted whatever happens: an error, Ctrl-C
// (the signal), or a probe that never recovers.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { findKind, type KubeObject, type Namespace } from "../api/index.ts";
import { newLogger, type Context, type Logger, realClock } from "../client/index.ts";
import { Cluster } from "./cluster.ts";
import { newFault, type Fault } from "./faults.ts";
import { JOURNAL_NAMESPACE, JournalWriter, WatchGapChecker } from "./journal.ts";
import { PROBE_NAMESPACE, prepareProbes, runProbe, steadyStateHolds } from "./probes.ts";
import { summaryLines, writeReport } from "./report.ts";
import { TimelineRecorder } from "./timeline.ts";
import type { Experiment, FaultRecord, ProbeSample, RunFigures, RunRecord } from "./types.ts";

const sleep = realClock.sleep;

export interface RunOptions {
  dataDir: string;
  experiment: Experiment;
  /** Where the report goes (default DATA/chaos/<experiment>-<time>). */
  outDir?: string;
  /** Aborting it (Ctrl-C) ends the run early; faults are still reverted and the report written. */
  signal?: AbortSignal;
  /** A progress line about once a second. */
  onProgress?(line: string): void;
  log?: Logger;
  /** How long the setup may take to reach the steady state (default 180 s). */
  setupTimeoutMs?: number;
  /** Leave the setup's objects in place afterwards (default: deleted, with the journal's objects). */
  keep?: boolean;
}

export interface RunResult {
  record: RunRecord;
  figures: RunFigures;
  dir: string;
  files: { json: string; markdown: string; svg: string };
  summary: string[];
}


/** The objects of the setup manifests, in order. */
export function setupObjects(manifests: readonly string[]): KubeObject[] {
  const out: KubeObject[] = [];
  for (const [i, m] of manifests.entries()) {
    for (const doc of parseAllDocuments(m)) {
      if (doc.errors.length) throw new Error(`spec.setup[${i}]: ${doc.errors[0]!.message.split("\n")[0]}`);
      const o = doc.toJS() as KubeObject | null;
      if (!o) continue;
      if (!o.apiVersion || !o.kind || !o.metadata?.name) throw new Error(`spec.setup[${i}]: every object needs apiVersion, kind and metadata.name`);
      if (!findKind(o.apiVersion, o.kind)) throw new Error(`spec.setup[${i}]: unknown kind ${o.apiVersion}/${o.kind}`);
      out.push(o);
    }
  }
  return out;
}

async function apply(cluster: Cluster, objs: readonly KubeObject[]): Promise<void> {
  for (const o of objs) {
    const info = findKind(o.apiVersion!, o.kind!)!;
    await cluster.client.resource(info.group, info.resource).patch(info.namespaced ? (o.metadata.namespace ?? "default") : "", o.metadata.name!, "apply", o, { fieldManager: "kubelab-chaos", force: true });
  }
}

async function ensureNamespace(cluster: Cluster, name: string): Promise<void> {
  try {
    await cluster.client.resource<Namespace>("", "namespaces").create("", { apiVersion: "v1", kind: "Namespace", metadata: { name } });
  } catch (e) {
    if ((e as { code?: number }).code !== 409) throw e;
  }
}

function stamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
}

export async function runExperiment(opts: RunOptions): Promise<RunResult> {
  const ex = opts.experiment;
  const log = opts.log ?? newLogger("chaos");
  const cluster = new Cluster(opts.dataDir);
  const objs = setupObjects(ex.setup);
  const started = new Date();
  const dir = opts.outDir ?? join(cluster.dataDir, "chaos", `${ex.name}-${stamp(started)}`);
  mkdirSync(dir, { recursive: true });
  const runId = `j${stamp(started).toLowerCase().replace(/[^0-9a-z]/g, "")}`;
  const progress = opts.onProgress ?? (() => {});

  await ensureNamespace(cluster, PROBE_NAMESPACE);
  await ensureNamespace(cluster, JOURNAL_NAMESPACE);
  await apply(cluster, objs);
  await prepareProbes(ex.steadyState, cluster.client);

  const stop = new AbortController();
  const onAbort = () => stop.abort();
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  const samples: ProbeSample[] = [];
  let t0 = Date.now();
  const ingress = cluster.ingressPorts();
  const vars: Record<string, string> = { ...(ingress.http ? { ingressHTTP: ingress.http } : {}), ...(ingress.https ? { ingressHTTPS: ingress.https } : {}) };
  const env = { client: cluster.client, get t0() { return t0; }, vars, record: (s: ProbeSample) => samples.push(s), inFlight: { http: 0 } };
  const probesDone = Promise.all(ex.steadyState.map((p) => runProbe(p, env, stop.signal)));
  const namespaces = new Set(objs.map((o) => (o.kind === "Namespace" ? o.metadata.name! : (o.metadata.namespace ?? "default"))));
  const timeline = new TimelineRecorder(cluster.client, () => t0, namespaces);
  const ctx: Context = { signal: stop.signal, log };
  const timelineDone = timeline.run(ctx).catch((e: unknown) => log.warn({ err: e }, "timeline watch failed"));
  const faults: { fault: Fault; record: FaultRecord }[] = [];
  const journal = new JournalWriter(cluster.client, runId);
  const gaps = new WatchGapChecker(cluster.client, runId);
  const journalStop = new AbortController();
  const watchStop = new AbortController();
  let aborted: string | undefined;
  let recoveredAt: number | undefined;
  let journalDone: Promise<void> = Promise.resolve();
  let watchDone: Promise<void> = Promise.resolve();
  const now = () => Date.now() - t0;
  const revertAll = async () => {
    for (const f of faults) {
      if (f.record.revertedAt !== undefined) continue;
      try {
        await f.fault.revert();
      } catch (e) {
        f.record.error = (f.record.error ? f.record.error + "; " : "") + (e as Error).message;
      }
      f.record.revertedAt = now();
      timeline.add("revert", `reverted ${f.record.name}`);
    }
  };
  try {
    // The steady state must hold through the warm-up before anything is broken.
    const setupDeadline = Date.now() + (opts.setupTimeoutMs ?? 180_000);
    let heldSince: number | undefined;
    for (;;) {
      if (stop.signal.aborted) throw new Error("aborted before the faults");
      const h = steadyStateHolds(ex.steadyState, samples, now());
      if (h.ok) heldSince ??= Date.now();
      else heldSince = undefined;
      if (heldSince !== undefined && Date.now() - heldSince >= ex.warmupMs) break;
      if (Date.now() > setupDeadline) throw new Error(`the steady state did not hold before the faults: ${h.why}`);
      progress(`waiting for the steady state: ${h.ok ? "holds" : h.why}`);
      await sleep(500, stop.signal);
    }
    // t = 0: the method starts.
    t0 = Date.now();
    // What happened while the setup came up is not part of the run.
    samples.length = 0;
    timeline.events.length = 0;
    timeline.add("steady-state", "steady state holds; method starts", undefined, 0);
    await gaps.start();
    watchDone = gaps.watch(watchStop.signal);
    journalDone = journal.write(ex.journalRate, journalStop.signal);
    const pending = [...ex.method].sort((a, b) => a.atMs - b.atMs);
    const ticker = setInterval(() => progress(progressLine(now(), faults.map((f) => f.record), ex, samples)), 1000);
    try {
      while (!stop.signal.aborted) {
        const t = now();
        while (pending.length && pending[0]!.atMs <= t) {
          const spec = pending.shift()!;
          const fault = newFault(spec, cluster);
          const record: FaultRecord = { name: spec.name ?? spec.kind, kind: spec.kind, resolved: "", injectedAt: now(), inFlightRequests: env.inFlight.http };
          faults.push({ fault, record });
          try {
            record.resolved = await fault.inject();
            timeline.add("fault", `${record.name}: ${record.resolved}`);
          } catch (e) {
            record.error = (e as Error).message;
            timeline.add("fault", `${record.name} failed: ${record.error}`);
          }
          if (!spec.forMs) record.revertedAt = record.injectedAt;
        }
        for (const f of faults) {
          if (f.record.revertedAt === undefined && f.fault.spec.forMs !== undefined && now() >= f.record.injectedAt + f.fault.spec.forMs) {
            try {
              await f.fault.revert();
            } catch (e) {
              f.record.error = (e as Error).message;
            }
            f.record.revertedAt = now();
            timeline.add("revert", `reverted ${f.record.name}`);
          }
        }
        if (pending.length === 0 && faults.every((f) => f.record.revertedAt !== undefined)) break;
        await sleep(100, stop.signal);
      }
      await revertAll();
      // Recovery: the hypothesis holds again.
      const lastRevert = Math.max(0, ...faults.map((f) => f.record.revertedAt ?? 0));
      while (!stop.signal.aborted && now() - lastRevert < ex.checks.recoverWithinMs) {
        // Samples taken after the last revert only: the window must not reach back into the fault.
        if (now() - lastRevert >= 1000 && steadyStateHolds(ex.steadyState, samples.filter((s) => s.t >= lastRevert), now(), Math.min(3000, now() - lastRevert)).ok) {
          recoveredAt = now();
          timeline.add("steady-state", "steady state recovered");
          break;
        }
        await sleep(250, stop.signal);
      }
      // Observe what follows the faults (a standby taking a lease over) before the run ends.
      while (!stop.signal.aborted && now() < lastRevert + ex.observeMs) await sleep(250, stop.signal);
      if (stop.signal.aborted) aborted = "interrupted";
    } finally {
      clearInterval(ticker);
    }
  } catch (e) {
    aborted = (e as Error).message;
    log.error({ err: aborted }, "experiment failed");
  } finally {
    await revertAll();
    opts.signal?.removeEventListener("abort", onAbort);
  }
  journalStop.abort();
  await journalDone;
  const { result: journalResult, existing } = await journal.verify().catch((e: unknown) => {
    aborted ??= `journal verification failed: ${(e as Error).message}`;
    return { result: { written: 0, lost: [], uncertain: 0, failedWrites: 0 }, existing: new Set<string>() };
  });
  // Give the watcher until every existing journal object was delivered (or 15 s).
  const deliveredBy = Date.now() + 15_000;
  while (Date.now() < deliveredBy && gaps.result(existing).missing.length > 0) await sleep(200);
  watchStop.abort();
  await watchDone;
  stop.abort();
  await probesDone;
  await timelineDone;

  const record: RunRecord = {
    experiment: ex.name,
    description: ex.description,
    source: ex.source,
    startedAt: new Date(t0).toISOString(),
    durationMs: now(),
    probes: ex.steadyState.map((p) => ({ name: p.name, kind: p.kind })),
    faults: faults.map((f) => f.record),
    samples,
    timeline: [...timeline.events].sort((a, b) => a.t - b.t),
    journal: journalResult,
    watchGaps: gaps.result(existing),
    ...(recoveredAt !== undefined ? { steadyStateRecoveredAt: recoveredAt } : {}),
    checks: ex.checks,
    ...(aborted ? { aborted } : {}),
  };
  if (!opts.keep) await cleanup(cluster, objs, existing, log);
  const written = writeReport(dir, record);
  return { record, figures: written.figures, dir, files: { json: written.json, markdown: written.markdown, svg: written.svg }, summary: summaryLines(record, written.figures) };
}

function progressLine(t: number, faults: readonly FaultRecord[], ex: Experiment, samples: readonly ProbeSample[]): string {
  const active = faults.filter((f) => f.revertedAt === undefined || f.revertedAt === f.injectedAt && t - f.injectedAt < 2000).map((f) => f.name);
  const probes = ex.steadyState.map((p) => {
    const recent = samples.filter((s) => s.probe === p.name && s.t >= t - 2000);
    const ok = recent.filter((s) => s.ok).length;
    return `${p.name} ${recent.length ? Math.round((100 * ok) / recent.length) : "-"}%`;
  });
  return `+${(t / 1000).toFixed(0)}s  ${active.length ? `faults: ${active.join(", ")}` : "no fault active"}  |  ${probes.join("  ")}`;
}

/** Deletes the setup's objects (last first) and the journal's, so the next experiment starts clean. */
async function cleanup(cluster: Cluster, objs: readonly KubeObject[], journal: ReadonlySet<string>, log: Logger): Promise<void> {
  const ignoreGone = (e: unknown) => {
    if ((e as { code?: number }).code !== 404) log.warn({ err: (e as Error).message }, "cleanup: delete failed");
  };
  for (const o of [...objs].reverse()) {
    const info = findKind(o.apiVersion!, o.kind!)!;
    await cluster.client.resource(info.group, info.resource).delete(info.namespaced ? (o.metadata.namespace ?? "default") : "", o.metadata.name!).catch(ignoreGone);
  }
  const names = [...journal];
  const cms = cluster.client.resource("", "configmaps");
  for (let i = 0; i < names.length; i += 20) await Promise.all(names.slice(i, i + 20).map((n) => cms.delete(JOURNAL_NAMESPACE, n).catch(ignoreGone)));
}
