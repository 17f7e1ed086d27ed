// Shared by the benches: a closed-loop load driver and starting/stopping kubelab components by PID.

import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Pod } from "../api/core/v1.ts";
import type { ResourceClient } from "../client/index.ts";

const MAIN = fileURLToPath(new URL("../cli/main.ts", import.meta.url));

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The p-th percentile of an ascending list (NaN when empty). */
export const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

/**
 * Watches the pods of `ns` (from a list made now) and records, for each pod the caller names in
 * `createdAt` just before creating it, the time until a watch event shows it Running. `all` resolves
 * once `total` have; `stop` ends the watch.
 */
export async function watchRunning(pods: ResourceClient<Pod>, ns: string, total: number): Promise<{ createdAt: Map<string, number>; latency: number[]; all: Promise<void>; stop: () => Promise<void> }> {
  const createdAt = new Map<string, number>();
  const latency: number[] = [];
  const ac = new AbortController();
  let resolveAll!: () => void;
  const all = new Promise<void>((r) => (resolveAll = r));
  const list = await pods.list(ns);
  const watching = (async () => {
    let rv = list.metadata.resourceVersion ?? "";
    while (!ac.signal.aborted) {
      try {
        for await (const ev of pods.watch(ns, { resourceVersion: rv, allowWatchBookmarks: true }, ac.signal)) {
          rv = ev.object.metadata.resourceVersion ?? rv;
          const name = ev.object.metadata.name ?? "";
          const t0 = createdAt.get(name);
          if (t0 === undefined || ev.object.status?.phase !== "Running") continue;
          latency.push(performance.now() - t0);
          createdAt.delete(name);
          if (latency.length >= total) resolveAll();
        }
      } catch (e) {
        if (!ac.signal.aborted) process.stderr.write(`watch failed, re-watching: ${(e as Error).message}\n`);
      }
    }
  })();
  return {
    createdAt,
    latency,
    all,
    stop: async () => {
      ac.abort();
      await watching;
    },
  };
}

/** Runs `total` async operations with `concurrency` in flight; returns ops/s and per-op latencies (ms). */
export async function drive(total: number, concurrency: number, op: (i: number) => Promise<void>): Promise<{ rate: number; lat: number[] }> {
  let next = 0;
  const lat: number[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const i = next++;
        if (i >= total) return;
        const t = performance.now();
        await op(i);
        lat.push(performance.now() - t);
      }
    }),
  );
  const secs = (performance.now() - started) / 1000;
  lat.sort((a, b) => a - b);
  return { rate: total / secs, lat };
}

/** `kubelab <args>` as a child process on the same runtime (and tsx loader); stderr passes through. */
export function startComponent(args: string[], logLevel = "warn"): ChildProcess {
  return spawn(process.execPath, [...process.execArgv, MAIN, ...args], {
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, KUBELAB_LOG_LEVEL: logLevel },
  });
}

/** SIGTERM, then SIGKILL after 10 s; resolves once the process has exited. */
export async function stopProcess(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once("exit", r));
  p.kill("SIGTERM");
  const t = setTimeout(() => p.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(t);
}
