// Structured JSON logging shared by every component (pino), one line per event.

import { pino, type Logger } from "pino";

export type { Logger };

/** A logger for a component; level from KUBELAB_LOG_LEVEL (default info), "silent" in tests unless set. */
export function newLogger(component: string, opts: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const level = opts.level ?? process.env.KUBELAB_LOG_LEVEL ?? (process.env.VITEST ? "silent" : "info");
  return pino({ level, base: { component, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, opts.destination ?? process.stderr);
}
