// Pod status: generateAPIPodStatus (upstream's kubelet_pods.go + status/generate.go: phase,
// conditions, container statuses from the runtime's view) and the status manager, which keeps the
// last status sent per pod and merge-patches pods/status with only the fields that changed.

import type { Container, ContainerState, ContainerStatus, Pod, PodCondition, PodPhase, PodStatus } from "../api/core/v1.ts";
import { podQOSClass } from "../api/index.ts";
import { isConflict, isNotFound, type Client, type Clock, type Logger } from "../client/index.ts";
import type { PodRuntimeStatus } from "./pleg.ts";
import type { ContainerStatus as RuntimeContainerStatus } from "./runtime/types.ts";

/** RFC3339 without fractional seconds, as the API serialises metav1.Time. */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** The annotation carrying a container's restart count (upstream's io.kubernetes.container.restartCount). */
export const ANNOTATION_RESTART_COUNT = "io.kubernetes.container.restartCount";
export const ANNOTATION_CONTAINER_HASH = "io.kubernetes.container.hash";

export function restartCountOf(c: RuntimeContainerStatus): number {
  const n = Number(c.annotations[ANNOTATION_RESTART_COUNT] ?? c.metadata.attempt);
  return Number.isFinite(n) ? n : 0;
}


/** What the kubelet knows beyond the runtime when it writes a status. */
export interface StatusInputs {
  /** Scheme of container ids: runtime.version().runtimeName ("containerd", "sim"). */
  runtimeName: string;
  nodeIP: string;
  now: number;
  /** Why a container is waiting (CrashLoopBackOff, ErrImagePull, ...), from the last sync. */
  reasons: ReadonlyMap<string, { reason: string; message: string }>;
  /** Readiness probe result for a running container (undefined: no readiness probe). */
  ready(name: string, containerID: string): boolean | undefined;
  /** Startup probe result (undefined: no startup probe). */
  started(name: string, containerID: string): boolean | undefined;
  /** The pod worker finished the pod (killed for deletion, or terminal): its phase becomes Succeeded/Failed. */
  podIsTerminal?: boolean;
  /** A message/reason for the pod itself (e.g. pod-level failure). */
  podReason?: { reason: string; message: string };
  /** The kubelet failed the pod (e.g. activeDeadlineSeconds: DeadlineExceeded): phase Failed with this reason. */
  podFailure?: { reason: string; message: string };
}

/** A sidecar: an init container with restartPolicy Always (KEP-753). */
function isRestartableInit(c: Readonly<Container> | undefined): boolean {
  return c?.restartPolicy === "Always";
}

function instancesByName(rt: PodRuntimeStatus): Map<string, RuntimeContainerStatus[]> {
  const m = new Map<string, RuntimeContainerStatus[]>();
  for (const c of rt.containers) {
    const list = m.get(c.metadata.name) ?? [];
    list.push(c); // rt.containers is newest first
    m.set(c.metadata.name, list);
  }
  return m;
}

function apiState(c: RuntimeContainerStatus, scheme: string): ContainerState {
  switch (c.state) {
    case "CONTAINER_RUNNING":
      return { running: { startedAt: rfc3339(c.startedAt || c.createdAt) } };
    case "CONTAINER_EXITED": {
      const t: NonNullable<ContainerState["terminated"]> = { exitCode: c.exitCode, reason: c.reason || (c.exitCode === 0 ? "Completed" : "Error") };
      if (c.message) t.message = c.message;
      if (c.startedAt) t.startedAt = rfc3339(c.startedAt);
      if (c.finishedAt) t.finishedAt = rfc3339(c.finishedAt);
      t.containerID = `${scheme}://${c.id}`;
      return { terminated: t };
    }
    default:
      return { waiting: {} };
  }
}

function convertContainerStatuses(
  specs: readonly Container[],
  byName: Map<string, RuntimeContainerStatus[]>,
  inputs: StatusInputs,
  defaultWaiting: string,
): ContainerStatus[] {
  return specs.map((spec) => {
    const instances = byName.get(spec.name) ?? [];
    const latest = instances[0];
    const prev = instances[1];
    let status: ContainerStatus;
    if (!latest) {
      status = { name: spec.name, state: { waiting: { reason: defaultWaiting } }, lastState: {}, ready: false, restartCount: 0, image: spec.image ?? "", imageID: "", started: false };
    } else {
      const id = `${inputs.runtimeName}://${latest.id}`;
      const running = latest.state === "CONTAINER_RUNNING";
      const started = running && (inputs.started(spec.name, latest.id) ?? true);
      const ready = running && started && (inputs.ready(spec.name, latest.id) ?? true);
      status = {
        name: spec.name,
        state: apiState(latest, inputs.runtimeName),
        lastState: prev && prev.state === "CONTAINER_EXITED" ? apiState(prev, inputs.runtimeName) : {},
        ready,
        restartCount: restartCountOf(latest),
        image: spec.image ?? latest.image,
        imageID: latest.imageRef,
        containerID: id,
        started,
      };
    }
    const why = inputs.reasons.get(spec.name);
    if (why && !status.state?.running) {
      if (status.state?.terminated) status.lastState = status.state;
      status.state = { waiting: { reason: why.reason, message: why.message } };
    }
    return status;
  });
}

/** upstream's getPhase (sidecars: counted with the app containers while running, ignored once terminated). */
export function getPhase(pod: Readonly<Pod>, init: ContainerStatus[], app: ContainerStatus[], podIsTerminal: boolean): PodPhase {
  const restartPolicy = pod.spec?.restartPolicy ?? "Always";
  const initSpecs = pod.spec?.initContainers ?? [];
  const sidecar = (s: ContainerStatus): boolean => isRestartableInit(initSpecs.find((c) => c.name === s.name));
  let pendingInitialization = 0;
  let failedInitialization = 0;
  for (const s of init) {
    if (sidecar(s)) continue;
    if (s.state?.running) pendingInitialization++;
    else if (s.state?.terminated) {
      if (s.state.terminated.exitCode !== 0) failedInitialization++;
    } else if (s.state?.waiting) {
      if (s.lastState?.terminated && s.lastState.terminated.exitCode !== 0) failedInitialization++;
      else pendingInitialization++;
    } else pendingInitialization++;
  }
  let unknown = 0;
  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let succeeded = 0;
  for (const s of init) {
    if (!sidecar(s)) continue;
    if (s.state?.running) {
      if (!s.started) pendingInitialization++;
      running++;
    } else if (s.state?.terminated) {
      // a terminated sidecar does not count
    } else if (s.state?.waiting) {
      if (!s.lastState?.terminated) {
        pendingInitialization++;
        waiting++;
      }
    } else {
      pendingInitialization++;
      unknown++;
    }
  }
  // Sidecars restarting after initialization do not put the pod back into Pending.
  const anyAppStarted = app.some((s) => !!s.state?.running || !!s.state?.terminated || !!s.lastState?.terminated);
  for (const s of app) {
    if (s.state?.running) running++;
    else if (s.state?.terminated) {
      stopped++;
      if (s.state.terminated.exitCode === 0) succeeded++;
    } else if (s.state?.waiting) {
      if (s.lastState?.terminated) stopped++;
      else waiting++;
    } else unknown++;
  }
  if (failedInitialization > 0 && restartPolicy === "Never") return "Failed";
  if ((pendingInitialization > 0 && !anyAppStarted) || failedInitialization > 0 || waiting > 0) {
    if (podIsTerminal && running === 0) return failedInitialization > 0 || stopped !== succeeded || stopped === 0 ? "Failed" : "Succeeded";
    return "Pending";
  }
  if (running > 0 && unknown === 0) return "Running";
  if (running === 0 && stopped > 0 && unknown === 0) {
    if (podIsTerminal) return stopped === succeeded ? "Succeeded" : "Failed";
    if (restartPolicy === "Always") return "Running";
    if (stopped === succeeded) return "Succeeded";
    if (restartPolicy === "Never") return "Failed";
    return "Running";
  }
  return "Pending";
}

function condition(type: string, ok: boolean, reason?: string, message?: string): PodCondition {
  const c: PodCondition = { type, status: ok ? "True" : "False", lastProbeTime: null };
  if (!ok && reason) c.reason = reason;
  if (!ok && message) c.message = message;
  return c;
}

const KUBELET_CONDITIONS = new Set(["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"]);

/** The pod status the kubelet reports for `pod` given the runtime's view (lastTransitionTime is filled by the status manager). */
export function generateAPIPodStatus(pod: Readonly<Pod>, rt: PodRuntimeStatus, inputs: StatusInputs): PodStatus {
  const old = pod.status ?? {};
  const byName = instancesByName(rt);
  const initSpecs = pod.spec?.initContainers ?? [];
  const appSpecs = pod.spec?.containers ?? [];
  const initStatuses = convertContainerStatuses(initSpecs, byName, inputs, "PodInitializing");
  // Initialized: every regular init container completed and every sidecar started (or an app container exists).
  const initComplete = (s: ContainerStatus, i: number): boolean => (isRestartableInit(initSpecs[i]) ? s.started === true : s.state?.terminated?.exitCode === 0);
  const initDone = initStatuses.every(initComplete) || appSpecs.some((c) => byName.has(c.name));
  const appStatuses = convertContainerStatuses(appSpecs, byName, inputs, initDone ? "ContainerCreating" : "PodInitializing");
  let phase = getPhase(pod, initStatuses, appStatuses, inputs.podIsTerminal ?? false);
  // A terminal phase is final (the status manager refuses to leave it too).
  if (old.phase === "Succeeded" || old.phase === "Failed") phase = old.phase;
  else if (inputs.podFailure) phase = "Failed";

  const sandbox = rt.sandboxes[0];
  const sandboxReady = !!sandbox && sandbox.state === "SANDBOX_READY";
  const podIP = sandboxReady && sandbox.ip ? sandbox.ip : (old.podIP ?? "");

  const conditions: PodCondition[] = [];
  conditions.push(condition("PodReadyToStartContainers", sandboxReady && !inputs.podIsTerminal));
  // Initialized
  const incomplete = initStatuses.filter((s, i) => !initComplete(s, i)).map((s) => s.name);
  if (phase === "Succeeded" && incomplete.length === 0) conditions.push({ ...condition("Initialized", true) });
  else if (initDone) conditions.push(condition("Initialized", true));
  else conditions.push(condition("Initialized", false, "ContainersNotInitialized", `containers with incomplete status: [${incomplete.join(" ")}]`));
  // ContainersReady and Ready
  // Sidecars' readiness counts too (upstream's GenerateContainersReadyCondition).
  const unready = [...initStatuses.filter((s, i) => isRestartableInit(initSpecs[i]) && !s.ready), ...appStatuses.filter((s) => !s.ready)].map((s) => s.name);
  let containersReady: PodCondition;
  if (phase === "Succeeded") containersReady = condition("ContainersReady", false, "PodCompleted");
  else if (!initDone) containersReady = condition("ContainersReady", false, "ContainersNotReady", `containers with incomplete status: [${incomplete.join(" ")}]`);
  else if (unready.length) containersReady = condition("ContainersReady", false, "ContainersNotReady", `containers with unready status: [${unready.join(" ")}]`);
  else containersReady = condition("ContainersReady", true);
  let ready: PodCondition = { ...containersReady, type: "Ready" };
  if (containersReady.status === "True") {
    const gateMsgs: string[] = [];
    for (const g of pod.spec?.readinessGates ?? []) {
      const c = old.conditions?.find((x) => x.type === g.conditionType);
      if (!c) gateMsgs.push(`corresponding condition of pod readiness gate "${g.conditionType}" does not exist.`);
      else if (c.status !== "True") gateMsgs.push(`the status of pod readiness gate "${g.conditionType}" is not "True", but ${c.status}`);
    }
    if (gateMsgs.length) ready = condition("Ready", false, "ReadinessGatesNotReady", gateMsgs.join(", "));
  }
  conditions.push(ready, containersReady);
  for (const c of old.conditions ?? []) if (!KUBELET_CONDITIONS.has(c.type)) conditions.push(c);

  const status: PodStatus = {
    ...old,
    phase,
    conditions,
    hostIP: inputs.nodeIP,
    hostIPs: [{ ip: inputs.nodeIP }],
    startTime: old.startTime ?? rfc3339(inputs.now),
    qosClass: old.qosClass ?? podQOSClass(pod.spec),
    containerStatuses: appStatuses,
  };
  if (podIP) {
    status.podIP = podIP;
    status.podIPs = [{ ip: podIP }];
  }
  if (initSpecs.length) status.initContainerStatuses = initStatuses;
  else delete status.initContainerStatuses;
  const why = inputs.podFailure ?? inputs.podReason;
  if (why) {
    status.reason = why.reason;
    status.message = why.message;
  }
  return status;
}

// ---- status manager ---------------------------------------------------------------------------

/** JSON with sorted keys: structural equality regardless of key order. */
export function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) =>
    val && typeof val === "object" && !Array.isArray(val)
      ? Object.fromEntries(Object.entries(val as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : val,
  );
}

/** The top-level status fields that differ, as a merge patch (removed fields → null). */
export function statusDiff(base: Readonly<PodStatus>, next: Readonly<PodStatus>): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  const b = base as Record<string, unknown>;
  const n = next as Record<string, unknown>;
  for (const k of new Set([...Object.keys(b), ...Object.keys(n)])) {
    if (canonical(b[k]) === canonical(n[k])) continue;
    patch[k] = n[k] === undefined ? null : n[k];
  }
  return patch;
}

/** The phase or a kubelet-owned condition's status differs (times and others' conditions aside). */
function kubeletFieldsDiffer(api: Readonly<PodStatus>, sent: Readonly<PodStatus>): boolean {
  if ((api.phase ?? "") !== (sent.phase ?? "")) return true;
  for (const type of KUBELET_CONDITIONS) {
    const a = api.conditions?.find((c) => c.type === type)?.status;
    const b = sent.conditions?.find((c) => c.type === type)?.status;
    if (a !== b) return true;
  }
  return false;
}

/** True when `a` is a later resourceVersion than `b`; when either is not a decimal revision, true. */
function newerRV(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return true;
  return BigInt(a) > BigInt(b);
}

interface StatusEntry {
  namespace: string;
  name: string;
  uid: string;
  /** The pod's status as the informer saw it when the kubelet first wrote (diff base before any patch). */
  initial: PodStatus;
  desired: PodStatus;
  sent?: PodStatus;
  /** resourceVersion of the pod our last patch produced: informer copies up to it are our own echo. */
  sentRV?: string;
  /** The newest copy of the pod's status seen from the API (the informer), with its resourceVersion. */
  seen?: { status: PodStatus; rv?: string };
  version: number;
  sentVersion: number;
  running?: Promise<void>;
}

export interface StatusManagerOptions {
  client: Client;
  clock: Clock;
  log: Logger;
  /** Retry delay after a failed patch (doubles up to 30 s). Default 1000. */
  retryInitialMs?: number;
}

/**
 * Keeps the status the kubelet wants per pod and sends it: one patch in flight per pod, always the
 * newest status (intermediate ones are dropped), only the changed fields, with the pod's uid as a
 * precondition. A pod that is gone (404, or a different uid) drops its entry.
 */
export class StatusManager {
  private readonly entries = new Map<string, StatusEntry>();
  private stopped = false;
  private readonly stopper = new AbortController();

  constructor(private readonly opts: StatusManagerOptions) {}

  /** The last status set for the pod (what the kubelet believes), if any. */
  getPodStatus(uid: string): PodStatus | undefined {
    return this.entries.get(uid)?.desired;
  }

  /** Records the pod's new status; lastTransitionTime of unchanged conditions is kept. Sends it when it differs. */
  setPodStatus(pod: Readonly<Pod>, status: PodStatus): void {
    const uid = pod.metadata.uid ?? "";
    let e = this.entries.get(uid);
    const prev = e?.desired ?? pod.status ?? {};
    const next = structuredClone(status);
    const now = rfc3339(this.opts.clock.now());
    for (const c of next.conditions ?? []) {
      const o = prev.conditions?.find((x) => x.type === c.type);
      if (!KUBELET_CONDITIONS.has(c.type)) continue; // e.g. PodScheduled: someone else's
      c.lastTransitionTime = o && o.status === c.status && o.lastTransitionTime ? o.lastTransitionTime : now;
    }
    if ((prev.phase === "Succeeded" || prev.phase === "Failed") && next.phase !== prev.phase) {
      this.opts.log.warn({ pod: `${pod.metadata.namespace}/${pod.metadata.name}`, from: prev.phase, to: next.phase }, "refusing to leave a terminal phase");
      next.phase = prev.phase;
    }
    if (!e) {
      e = {
        namespace: pod.metadata.namespace ?? "",
        name: pod.metadata.name ?? "",
        uid,
        initial: structuredClone(pod.status ?? {}) as PodStatus,
        desired: next,
        version: 1,
        sentVersion: 0,
      };
      this.entries.set(uid, e);
    } else {
      if (canonical(e.desired) === canonical(next)) return;
      e.desired = next;
      e.version++;
    }
    this.kick(e);
  }

  /** Resolves once the newest status of the pod has been sent (or the pod is gone / the manager stopped). */
  async flush(uid: string): Promise<void> {
    for (;;) {
      const e = this.entries.get(uid);
      if (!e || this.stopped || e.sentVersion >= e.version) return;
      if (!e.running) this.kick(e);
      await e.running;
    }
  }

  /**
   * upstream's needsReconcile: the pod as the API has it now (an informer update). When someone
   * else changed what the kubelet owns — the node lifecycle controller marks the pods of an Unknown
   * node Ready=False — while the kubelet could not answer (stopped, partitioned), its own status
   * does not change and would never be sent again: it is re-sent against the API's copy.
   */
  reconcile(pod: Readonly<Pod>): void {
    const e = this.entries.get(pod.metadata.uid ?? "");
    if (!e) return;
    e.seen = { status: (pod.status ?? {}) as PodStatus, rv: pod.metadata.resourceVersion };
    this.recheck(e);
  }

  private recheck(e: StatusEntry): void {
    const seen = e.seen;
    if (!seen || !e.sent || e.running || this.stopped || e.sentVersion < e.version) return;
    if (!newerRV(seen.rv, e.sentRV)) return; // our own patch coming back, or older
    e.seen = undefined;
    if (!kubeletFieldsDiffer(seen.status, e.sent)) return;
    if ((seen.status.phase === "Succeeded" || seen.status.phase === "Failed") && seen.status.phase !== e.sent.phase) return; // terminal: not ours to undo
    this.opts.log.info({ pod: `${e.namespace}/${e.name}` }, "pod status in the API differs from the kubelet's; re-sending it");
    e.sent = structuredClone(seen.status);
    e.version++;
    this.kick(e);
  }

  removePod(uid: string): void {
    this.entries.delete(uid);
  }

  stop(): void {
    this.stopped = true;
    this.stopper.abort();
  }

  private kick(e: StatusEntry): void {
    if (e.running || this.stopped) return;
    e.running = this.syncLoop(e).finally(() => {
      e.running = undefined;
      this.recheck(e);
    });
  }

  private async syncLoop(e: StatusEntry): Promise<void> {
    let delay = this.opts.retryInitialMs ?? 1_000;
    const pods = this.opts.client.resource<Pod>("", "pods");
    while (!this.stopped && this.entries.get(e.uid) === e && e.sentVersion < e.version) {
      const version = e.version;
      const desired = e.desired;
      const diff = statusDiff(e.sent ?? e.initial, desired);
      if (Object.keys(diff).length === 0) {
        e.sentVersion = version;
        continue;
      }
      try {
        const after = await pods.patch(e.namespace, e.name, "merge", { metadata: { uid: e.uid }, status: diff }, { subresource: "status" });
        e.sent = desired;
        e.sentRV = after?.metadata?.resourceVersion;
        e.sentVersion = version;
        delay = this.opts.retryInitialMs ?? 1_000;
      } catch (err) {
        if (isNotFound(err) || isConflict(err)) {
          // Gone, or replaced by a pod with the same name: nothing to report to.
          this.opts.log.debug({ err, pod: `${e.namespace}/${e.name}` }, "pod gone; dropping its status");
          this.entries.delete(e.uid);
          return;
        }
        this.opts.log.warn({ err, pod: `${e.namespace}/${e.name}`, retryInMs: delay }, "status patch failed");
        await this.opts.clock.sleep(delay, this.stopper.signal);
        delay = Math.min(delay * 2, 30_000);
      }
    }
  }
}
