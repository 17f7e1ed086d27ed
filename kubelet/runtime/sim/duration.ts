// Go-style durations for the `sim.kubelab.io/*` annotations ("1s", "500ms", "2m", "1.5s", "1m30s"),
// as time.ParseDuration reads them, in milliseconds.

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds, or undefined when `v` is not a non-negative Go duration ("0" alone is allowed, as in Go). */
export function parseGoDuration(v: string): number | undefined {
  const s = v.trim();
  if (s === "0") return 0;
  if (!/^(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$/.test(s)) return undefined;
  let total = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)) total += Number(m[1]) * UNIT_MS[m[2]];
  return Math.round(total);
}
