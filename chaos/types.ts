// The chaos experiment and its run, as data (Chaos Toolkit's shape: a steady-state hypothesis of
// probes, a method of faults, rollbacks, and a journal of what happened; LitmusChaos's probe kinds
// and modes). The experiment is schema-checked YAML (schema.ts); the runner (runner.ts) turns it
// into a RunRecord, from which report.ts derives the figures, the JSON report, the Markdown summary
// and the SVG timeline.

/** Milliseconds from the start of the run (t = 0 when the first fault may start). */
export type RunMs = number;

// ---- the experiment ----------------------------------------------------------------------------

/** What a fault acts on. Exactly one field is set (the schema says which a fault takes). */
export interface FaultTarget {
  /** A process as `kubelab status` names it (scheduler-1, etcd-local-1a, kubelet-local-1b...). */
  component?: string;
  /** The process holding this kube-system Lease now (kube-scheduler, kube-controller-manager, kubelab-cloud-controller). */
  leaderOf?: string;
  /** The etcd member that leads now. */
  etcdLeader?: boolean;
  /** A zone: every process in it (kubelets, proxy, etcd member, apiservers, control plane). */
  zone?: string;
  /** A kube-system Lease (lease-expire). */
  lease?: string;
  /** A Node by name (fill-node; node-stop and clock-skew: a simulated node of a pool). */
  node?: string;
}

export type FaultKind = "kill" | "pause" | "stop" | "restart" | "zone-outage" | "lease-expire" | "link-cut" | "link-reset" | "link-delay" | "link-throttle" | "fill-node" | "node-stop" | "clock-skew";

export interface FaultSpec {
  /** A label for the report (default: kind and target). */
  name?: string;
  kind: FaultKind;
  target: FaultTarget;
  /** When it starts, from t = 0 (ms; the YAML says "5s"). */
  atMs: number;
  /** How long it lasts before the runner reverts it (pause, stop, zone-outage, link-*); kill, restart and lease-expire are instant. */
  forMs?: number;
  /** link-delay: the latency added to each chunk each way. */
  latencyMs?: number;
  /** link-throttle: bytes per second each way. */
  bytesPerSecond?: number;
  /** clock-skew: how far the node's wall clock is moved (negative: behind). */
  offsetMs?: number;
}

export type ProbeKind = "http" | "object" | "api";

export interface HttpProbeSpec {
  name: string;
  kind: "http";
  /** e.g. http://127.0.0.1:{ingressHTTP}/ — {ingressHTTP} and {ingressHTTPS} are the cluster's ingress ports. */
  url: string;
  /** Host header (an Ingress rule's host). */
  host?: string;
  /** Requests per second (default 20). */
  rate: number;
  /** Per-request timeout (default 2 s). */
  timeoutMs: number;
}

export interface ObjectProbeSpec {
  name: string;
  kind: "object";
  apiVersion: string;
  /** Plural resource, e.g. deployments. */
  resource: string;
  namespace?: string;
  objectName: string;
  /** A dotted path into the object, e.g. status.availableReplicas. */
  path: string;
  op: ">=" | "<=" | "==" | "!=";
  value: number | string;
  /** How often it is read (default 1 s). */
  intervalMs: number;
}

export interface ApiProbeSpec {
  name: string;
  kind: "api";
  /** Requests per second (default 10): alternate GETs and ConfigMap writes through the cluster endpoint. */
  rate: number;
  timeoutMs: number;
}

export type ProbeSpec = HttpProbeSpec | ObjectProbeSpec | ApiProbeSpec;

export interface Checks {
  /** The steady state must hold again within this long after the last fault is reverted (default 120 s). */
  recoverWithinMs: number;
  /** Objects the journal wrote that may be missing at the end (default 0). */
  maxObjectsLost: number;
  /** Failed HTTP probe requests allowed (default: unlimited, reported only). */
  maxFailedRequests?: number;
  /** Failed HTTP probe requests may not exceed those in flight when the faults went in (a zone outage costs only what was on the wire). */
  failedWithinInFlight?: boolean;
  /** Watch events the gap checker may miss or see twice (default 0). */
  maxWatchGaps: number;
}

export interface Experiment {
  name: string;
  description: string;
  /** Manifests applied before the run (and deleted after it unless keep). */
  setup: string[];
  /** Probes that define the steady state; all must pass before the method and again after it. */
  steadyState: ProbeSpec[];
  method: FaultSpec[];
  checks: Checks;
  /** Steady state must hold this long before the first fault (default 5 s). */
  warmupMs: number;
  /** The run goes on at least this long after the last fault ends, so the timeline shows what follows (a standby taking over; default 10 s). */
  observeMs: number;
  /** Writes per second of the journal writer, whose objects are verified at the end (default 5). */
  journalRate: number;
  /** File the experiment came from. */
  source: string;
}

// ---- the run -----------------------------------------------------------------------------------

export interface ProbeSample {
  probe: string;
  t: RunMs;
  ok: boolean;
  latencyMs?: number;
  error?: string;
}

export type TimelineKind = "fault" | "revert" | "node" | "leader" | "eviction" | "reschedule" | "endpoints" | "component" | "steady-state" | "note";

export interface TimelineEvent {
  t: RunMs;
  kind: TimelineKind;
  /** One line a person reads, e.g. "node general-local-1a-0 Ready=Unknown". */
  message: string;
  /** The object or process it is about. */
  subject?: string;
}

export interface FaultRecord {
  name: string;
  kind: FaultKind;
  /** What it resolved to (e.g. the pid it killed, the processes it paused). */
  resolved: string;
  injectedAt: RunMs;
  revertedAt?: RunMs;
  /** HTTP probe requests in flight at the injection. */
  inFlightRequests?: number;
  error?: string;
}

export interface JournalResult {
  written: number;
  /** Names the writer got a success for that are missing at the end. */
  lost: string[];
  /** Writes whose answer was lost (timeout, connection reset): they may or may not have happened. */
  uncertain: number;
  failedWrites: number;
}

export interface WatchGapResult {
  expected: number;
  seen: number;
  missing: string[];
  duplicated: string[];
  rewatches: number;
}

/** Everything the runner observed; report.ts derives the figures from it. */
export interface RunRecord {
  experiment: string;
  description: string;
  source: string;
  /** Wall-clock time of t = 0 (RFC 3339). */
  startedAt: string;
  durationMs: number;
  /** The steady-state probes, by name and kind (the samples name them). */
  probes: { name: string; kind: ProbeKind }[];
  faults: FaultRecord[];
  samples: ProbeSample[];
  timeline: TimelineEvent[];
  journal: JournalResult;
  watchGaps: WatchGapResult;
  /** When the steady state held again after the last revert (undefined: never, within recoverWithinMs). */
  steadyStateRecoveredAt?: RunMs;
  checks: Checks;
  /** Aborted (Ctrl-C) or failed before the method ended; faults were still reverted. */
  aborted?: string;
}

/** The figures of a run (report.ts). */
export interface RunFigures {
  /** From the first fault's injection to the first failed probe sample or node/leader/endpoint change (ms). */
  timeToDetectMs?: number;
  /** From the last revert to steady state recovered (ms). */
  timeToRecoverMs?: number;
  /** From the first fault to steady state recovered (ms). */
  outageMs?: number;
  requests: { sent: number; failed: number };
  api: { sent: number; errors: number; p50Ms?: number; p99Ms?: number; maxMs?: number };
  objectsLost: number;
  watchGaps: number;
  passed: boolean;
  /** Why it failed: one line per failed check. */
  failures: string[];
}
