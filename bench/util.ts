// Shared by the benches: a closed-loop load driver and starting/stopping kubelab components by PID.

import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("../cli/main.ts", import.meta.url));

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
