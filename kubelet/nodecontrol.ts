// Chaos on one simulated node of a pool process (a pool is one process, so stopping the process stops
// every node of the zone): stop a node — its instance powered off: the kubelet stops (no lease
// renewals, no status) and its containers die with the runtime — and start it again, as an instance
// that boots: a fresh runtime and kubelet that find the pods still bound to the node and run them
// again; and skew the node's clock — the kubelet's wall clock (lease renewTime, condition heartbeats,
// event and status times) runs ahead of or behind the machine's by an offset, its timers unchanged,
// as an instance whose NTP went wrong. The pool implements NodeControl; cli/nodecontrol.ts serves
// it on a unix socket in the pool's root dir, which `kubelab up`'s control socket forwards to.

import { setMaxListeners } from "node:events";
import type { Clock, Context, Logger } from "../client/index.ts";
import type { NodeAgent } from "./types.ts";

/** A node's wall clock offset from the machine's: now() moves, durations (sleep, timers) do not. */
export class SkewedClock implements Clock {
  offsetMs = 0;
  constructor(private readonly base: Clock) {}
  now(): number {
    return this.base.now() + this.offsetMs;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return this.base.sleep(ms, signal);
  }
  setTimeout(fn: () => void, ms: number): { cancel(): void } {
    return this.base.setTimeout(fn, ms);
  }
}

/**
 * Runs one node's kubelet on its own signal, aborted with the pool's (`pool`) or alone through the
 * returned controller; `done` settles once it stopped (a kubelet that fails is logged on `nodeLog`).
 */
export function runNodeAgent(pool: Context, agent: NodeAgent, log: Logger, nodeLog: Logger): { stop: AbortController; done: Promise<void> } {
  // The kubelet adds its node to the log context itself.
  return runNodeAgentWhenReady(pool, async () => ({ agent }), log, nodeLog);
}

/**
 * runNodeAgent for a node whose agent is built once something asynchronous is done — its client
 * certificate bootstrapped (kubelet/certificate.ts), as a kubelet waits for its certificate before it
 * registers. `build` gets the node's signal (a stop or the pool's end aborts the wait); `onAgent`
 * sees the agent once built; `close` (the node's client) runs after the agent stopped.
 */
export function runNodeAgentWhenReady<A extends NodeAgent>(
  pool: Context,
  build: (signal: AbortSignal) => Promise<{ agent: A; close?(): void }>,
  log: Logger,
  nodeLog: Logger,
  onAgent?: (agent: A) => void,
): { stop: AbortController; done: Promise<void> } {
  const stop = new AbortController();
  setMaxListeners(0, stop.signal);
  const abort = (): void => stop.abort();
  pool.signal.addEventListener("abort", abort, { once: true });
  const run = async (): Promise<void> => {
    let built: { agent: A; close?(): void };
    try {
      built = await build(stop.signal);
    } catch (e) {
      if (!stop.signal.aborted) nodeLog.error({ err: e }, "kubelet failed to start");
      return;
    }
    try {
      if (stop.signal.aborted) return;
      onAgent?.(built.agent);
      await built.agent.run({ signal: stop.signal, log }).catch((e: unknown) => nodeLog.error({ err: e }, "kubelet failed"));
    } finally {
      built.close?.();
    }
  };
  const done = run().finally(() => pool.signal.removeEventListener("abort", abort));
  return { stop, done };
}

export interface NodeControlState {
  name: string;
  /** False while stopped by NodeControl.stop (or not started: no address, failed start). */
  running: boolean;
  /** True when stopped on purpose: the pool does not start it again until start. */
  stopped: boolean;
  clockOffsetMs: number;
}

/** The status code an error maps to (404 no such node, 409 not in a state for it). */
export class NodeControlError extends Error {
  constructor(
    readonly code: 404 | 409 | 400,
    message: string,
  ) {
    super(message);
  }
}

export interface NodeControl {
  list(): NodeControlState[];
  /** Stops the node's kubelet and runtime and keeps them down; resolves once they are. */
  stop(name: string): Promise<NodeControlState>;
  /** Starts a stopped node again. */
  start(name: string): Promise<NodeControlState>;
  /** Sets the node's clock offset (0 puts it right). */
  skew(name: string, offsetMs: number): NodeControlState;
}

/** The per-node bookkeeping both pools share: who is stopped on purpose, and each node's clock (kept across a stop). */
export class NodeSwitches {
  private readonly clocks = new Map<string, SkewedClock>();
  readonly stopped = new Set<string>();
  constructor(private readonly base: Clock) {}

  clockOf(name: string): SkewedClock {
    let c = this.clocks.get(name);
    if (!c) this.clocks.set(name, (c = new SkewedClock(this.base)));
    return c;
  }

  state(name: string, running: boolean): NodeControlState {
    return { name, running, stopped: this.stopped.has(name), clockOffsetMs: this.clocks.get(name)?.offsetMs ?? 0 };
  }

  skew(name: string, offsetMs: number, known: boolean, running: boolean): NodeControlState {
    if (!known) throw new NodeControlError(404, `no node ${name} in this pool`);
    if (!Number.isFinite(offsetMs)) throw new NodeControlError(400, `clock offset ${offsetMs} is not a number of milliseconds`);
    this.clockOf(name).offsetMs = Math.round(offsetMs);
    return this.state(name, running);
  }
}
