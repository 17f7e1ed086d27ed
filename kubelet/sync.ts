// The kubelet's pod side: watches its pods, runs one serialised worker per pod whose sync does what
// upstream's kuberuntime_manager computePodActions + SyncPod do (sandbox, image pulls, init
// containers in order, app containers, restarts with crash-loop backoff, liveness kills), writes the
// status through the status manager, and finishes terminations (graceful deletion, terminal pods,
// force-deleted and orphaned pods).

import { createHash } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { ConfigMap, Container, Pod, PodStatus, Secret } from "../api/core/v1.ts";
import { parseQuantityMilli, parseQuantityValue, podQOSClass } from "../api/index.ts";
import { INDEX_NODE_NAME, isConflict, isLocalAddress, isNotFound, realClock, type Client, type Clock, type Context, type EventRecorder, type Logger } from "../client/index.ts";
import { HandlerRunner } from "./lifecycle.ts";
import { GenericPLEG, type PodRuntimeStatus } from "./pleg.ts";
import { PodWorkers, type SyncOutcome } from "./podworkers.ts";
import { ProbeManager, type ProbeTarget } from "./prober.ts";
import {
  containerLogPath,
  LABEL_CONTAINER_NAME,
  LABEL_NODE,
  LABEL_POD_NAME,
  LABEL_POD_NAMESPACE,
  LABEL_POD_UID,
  podLogDirectory,
  type ContainerConfig,
  type ContainerStatus as RuntimeContainer,
  type Mount,
  type PodSandboxConfig,
  type Runtime,
} from "./runtime/types.ts";
import { ANNOTATION_CONTAINER_HASH, ANNOTATION_RESTART_COUNT, generateAPIPodStatus, restartCountOf, rfc3339, StatusManager } from "./status.ts";
import type { KubeletOptions } from "./types.ts";
import { formPodDNS, readHostDNS } from "./dns.ts";
import { MountError, VolumeManager, type PodVolumes } from "./volumes.ts";

/** What the pod side needs from KubeletOptions (plus hooks the Kubelet class and tests supply). */
export type PodSyncerOptions = Pick<
  KubeletOptions,
  "nodeName" | "client" | "pods" | "runtime" | "rootDir" | "volumeDir" | "nodeIP" | "recorder" | "clock" | "log" | "plegRelistPeriodMs" | "backoffInitialMs" | "backoffMaxMs" | "capacity" | "dns"
> & {
  /** cgroup_parent for a pod's sandbox (containerd); undefined leaves it to the runtime. */
  cgroupParent?(qosClass: string, podUID: string): string | undefined;
  /** Called after a pod's sandboxes are removed (containerd: remove its cgroups). */
  onPodRemoved?(podUID: string): Promise<void>;
  /** Retry delay for volumes that cannot be set up yet. Default 2000. */
  volumeRetryMs?: number;
  /** How often a running pod's configMap/secret/downwardAPI/projected volumes are re-projected (plus up to half again as jitter). Default 60 000. */
  volumeRefreshMs?: number;
};

const ANNOTATION_GRACE = "io.kubernetes.pod.terminationGracePeriod";
/** upstream's minimumGracePeriodInSeconds: the shutdown window a container keeps after its preStop hook. */
const MIN_GRACE_SECONDS = 2;
const DEADLINE_REASON = "DeadlineExceeded";
const DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline";

/** A sidecar: an init container with restartPolicy Always (KEP-753). */
export function isSidecar(c: Readonly<Container>): boolean {
  return c.restartPolicy === "Always";
}

/** format.Pod: `name_namespace(uid)`. */
function formatPod(pod: Readonly<Pod>): string {
  return `${pod.metadata.name}_${pod.metadata.namespace}(${pod.metadata.uid})`;
}

/** Go's time.Duration String for whole seconds: 10s, 1m20s, 5m0s. */
export function goDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60}s`;
  return `${Math.floor(m / 60)}h${m % 60}m${s % 60}s`;
}

/** client-go's flowcontrol.Backoff keyed per container: doubles per failure, forgets after 2×max of quiet. */
export class Backoff {
  private readonly entries = new Map<string, { backoff: number; lastUpdate: number }>();
  constructor(
    private readonly clock: Pick<Clock, "now">,
    readonly initialMs: number,
    readonly maxMs: number,
  ) {}
  get(key: string): number {
    return this.entries.get(key)?.backoff ?? 0;
  }
  isInBackOffSince(key: string, eventTime: number): boolean {
    const e = this.entries.get(key);
    if (!e || eventTime - e.lastUpdate > 2 * this.maxMs) return false;
    return this.clock.now() - eventTime < e.backoff;
  }
  next(key: string, eventTime: number): void {
    const e = this.entries.get(key);
    if (!e || eventTime - e.lastUpdate > 2 * this.maxMs) this.entries.set(key, { backoff: this.initialMs, lastUpdate: this.clock.now() });
    else {
      e.backoff = Math.min(e.backoff * 2, this.maxMs);
      e.lastUpdate = this.clock.now();
    }
  }
  deletePrefix(prefix: string): void {
    for (const k of [...this.entries.keys()]) if (k.startsWith(prefix)) this.entries.delete(k);
  }
}

/** Container spec hash: a change (e.g. a new image) restarts the container. */
function containerHash(c: Container): string {
  return createHash("sha256").update(JSON.stringify(c)).digest("hex").slice(0, 8);
}

function defaultPullPolicy(image: string): "Always" | "IfNotPresent" {
  const last = image.split("/").pop() ?? "";
  if (last.includes("@")) return "IfNotPresent";
  const i = last.indexOf(":");
  return i < 0 || last.slice(i + 1) === "latest" ? "Always" : "IfNotPresent";
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Expands $(VAR) references ($$ escapes), as upstream's expansion.Expand. */
export function expandVars(s: string, vars: ReadonlyMap<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) => {
    if (m === "$$") return "$";
    return name !== undefined && vars.has(name) ? vars.get(name)! : m;
  });
}

/** Thrown while building a container's config: the container waits with CreateContainerConfigError. */
class ConfigError extends Error {}

interface SyncState {
  pod: Readonly<Pod>;
  rt: PodRuntimeStatus;
  changed: boolean;
  requeue?: number;
  reasons: Map<string, { reason: string; message: string }>;
  /** configmaps/secrets fetched during this sync. */
  objects: Map<string, ConfigMap | Secret | null>;
}

export class PodSyncer {
  readonly pleg: GenericPLEG;
  readonly prober: ProbeManager;
  readonly statusManager: StatusManager;
  readonly volumes: VolumeManager;
  readonly workers: PodWorkers;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly runtime: Runtime;
  private readonly recorder: EventRecorder;
  private readonly client: Client;
  private readonly backoff: Backoff;
  private readonly logsRoot: string;
  private readonly hooks: HandlerRunner;
  /** The pods this node runs, by uid (kept after deletion until cleaned up). */
  private readonly known = new Map<string, Readonly<Pod>>();
  private readonly deleted = new Set<string>();
  private readonly reasons = new Map<string, Map<string, { reason: string; message: string }>>();
  /** Pods whose sandbox was stopped because they reached a terminal phase. */
  private readonly finished = new Set<string>();
  private runtimeName = "";
  private stopped = false;

  constructor(private readonly opts: PodSyncerOptions) {
    this.clock = opts.clock ?? realClock;
    this.log = opts.log;
    this.runtime = opts.runtime;
    this.recorder = opts.recorder;
    this.client = opts.client;
    this.logsRoot = join(opts.rootDir, "logs");
    this.hooks = new HandlerRunner(opts.runtime, this.clock);
    this.backoff = new Backoff(this.clock, opts.backoffInitialMs ?? 10_000, opts.backoffMaxMs ?? 300_000);
    this.workers = new PodWorkers((uid) => this.syncPod(uid), this.clock, this.log, 2_000, (uid) => this.forget(uid));
    this.pleg = new GenericPLEG({
      runtime: opts.runtime,
      nodeName: opts.nodeName,
      clock: this.clock,
      log: this.log,
      relistPeriodMs: opts.plegRelistPeriodMs,
      onEvent: (e) => this.workers.update(e.podUID),
    });
    this.prober = new ProbeManager({ runtime: opts.runtime, clock: this.clock, recorder: opts.recorder, log: this.log, onChange: (uid) => this.workers.update(uid) });
    this.statusManager = new StatusManager({ client: opts.client, clock: this.clock, log: this.log });
    this.volumes = new VolumeManager(opts.rootDir, opts.client, this.clock, {
      nodeName: opts.nodeName,
      ...(opts.volumeDir ? { volumeDir: opts.volumeDir } : {}),
      nodeIP: opts.nodeIP,
      ...(opts.capacity ? { allocatable: opts.capacity } : {}),
      log: this.log,
    });
  }

  /** Number of pods this node currently runs. */
  podCount(): number {
    return this.known.size;
  }

  /** The uid of a pod of this node (for the logs server). */
  podUID(namespace: string, name: string): string | undefined {
    const p = this.opts.pods.lister.get(`${namespace}/${name}`);
    if (p && p.spec?.nodeName === this.opts.nodeName) return p.metadata.uid;
    for (const k of this.known.values()) if (k.metadata.namespace === namespace && k.metadata.name === name) return k.metadata.uid;
    return undefined;
  }

  /**
   * Watches the node's pods and runs them until ctx aborts; then stops the workers (the containers
   * keep running, as upstream's kubelet leaves them on shutdown).
   */
  async run(ctx: Context): Promise<void> {
    while (!this.runtimeName && !ctx.signal.aborted) {
      try {
        this.runtimeName = (await this.runtime.version()).runtimeName;
      } catch (e) {
        ctx.log.warn({ err: e }, "container runtime did not answer; retrying");
        await this.clock.sleep(1_000, ctx.signal);
      }
    }
    if (ctx.signal.aborted) return;
    const mine = (p: Readonly<Pod>): boolean => p.spec?.nodeName === this.opts.nodeName;
    this.opts.pods.addEventHandler({
      onAdd: (p) => {
        if (this.stopped || !mine(p)) return;
        this.known.set(p.metadata.uid ?? "", p);
        this.workers.update(p.metadata.uid ?? "");
      },
      onUpdate: (old, p) => {
        if (this.stopped) return;
        if (old.metadata.uid !== p.metadata.uid && mine(old)) this.podGone(old);
        if (!mine(p)) return;
        const uid = p.metadata.uid ?? "";
        const prev = this.known.get(uid);
        this.known.set(uid, p);
        this.statusManager.reconcile(p);
        // Our own status writes come back as updates: only what the kubelet acts on triggers a sync.
        if (!prev || relevantChange(prev, p)) this.workers.update(uid);
      },
      onDelete: (p) => {
        if (this.stopped || !mine(p)) return;
        this.podGone(p);
      },
    });
    await this.opts.pods.waitForSync(ctx.signal).catch(() => undefined);
    if (ctx.signal.aborted) return;
    await this.removeOrphans(ctx).catch((e: unknown) => ctx.log.warn({ err: e }, "orphan cleanup failed"));
    const pleg = this.pleg.run(ctx);
    await new Promise<void>((resolve) => {
      if (ctx.signal.aborted) resolve();
      else ctx.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    this.stopped = true;
    this.prober.stop();
    await this.workers.stop();
    this.statusManager.stop();
    await pleg;
  }

  /** Sandboxes of this node whose pod is not one of its pods: stopped and removed. */
  async removeOrphans(ctx: Context): Promise<void> {
    const current = new Set(this.opts.pods.lister.byIndex(INDEX_NODE_NAME, this.opts.nodeName).map((p) => p.metadata.uid ?? ""));
    const sandboxes = await this.runtime.listPodSandbox({ labelSelector: { [LABEL_NODE]: this.opts.nodeName } });
    const orphans = new Set<string>();
    for (const s of sandboxes) {
      if (current.has(s.metadata.uid)) continue;
      orphans.add(s.metadata.uid);
      ctx.log.info({ podUID: s.metadata.uid, sandbox: s.id }, "removing orphaned pod sandbox");
      await this.runtime.stopPodSandbox(s.id);
      await this.runtime.removePodSandbox(s.id);
    }
    for (const uid of await this.volumes.podDirs()) if (!current.has(uid)) await this.volumes.cleanUp(uid);
    for (const uid of orphans) await this.opts.onPodRemoved?.(uid);
  }

  private podGone(p: Readonly<Pod>): void {
    const uid = p.metadata.uid ?? "";
    this.deleted.add(uid);
    if (!this.known.has(uid)) this.known.set(uid, p);
    this.workers.update(uid);
  }

  private forget(uid: string): void {
    this.known.delete(uid);
    this.deleted.delete(uid);
    this.reasons.delete(uid);
    this.finished.delete(uid);
    this.backoff.deletePrefix(`${uid}/`);
    this.prober.removePod(uid);
    this.statusManager.removePod(uid);
  }

  // ---- one sync ---------------------------------------------------------------------------------

  /** One sync of one pod (never concurrent for a uid: PodWorkers serialises). */
  async syncPod(uid: string): Promise<SyncOutcome> {
    if (!this.runtimeName) this.runtimeName = (await this.runtime.version()).runtimeName;
    const pod = this.known.get(uid);
    if (!pod || this.deleted.has(uid)) {
      // Force-deleted, or unknown (an orphan the PLEG saw): kill everything and clean up.
      const rt = await this.pleg.podStatus(uid);
      if (pod) await this.killPod(pod, rt, this.gracePeriod(pod));
      else for (const c of rt.containers) if (c.state === "CONTAINER_RUNNING") await this.runtime.stopContainer(c.id, 0);
      await this.cleanUpPod(uid, rt);
      return { done: true };
    }
    const rt = await this.pleg.podStatus(uid);
    if (pod.metadata.deletionTimestamp) return await this.terminatePod(pod, rt);
    const phase = this.statusManager.getPodStatus(uid)?.phase ?? pod.status?.phase;
    if (phase === "Succeeded" || phase === "Failed") {
      await this.finishPod(pod, rt);
      return {};
    }
    const remaining = this.activeDeadlineRemaining(pod);
    if (remaining !== undefined && remaining <= 0) return await this.deadlineExceeded(pod, rt);
    const st: SyncState = { pod, rt, changed: false, reasons: this.reasonsFor(uid), objects: new Map() };
    // The worker wakes up at the deadline (upstream's activeDeadlineHandler; no polling).
    if (remaining !== undefined) this.requeue(st, remaining);
    // configMap/secret/projected volumes follow their objects and tokens: a periodic sync (60–90 s,
    // upstream's resync with jitter) re-projects them; the atomic writer only swaps ..data when the
    // content changed (a token is re-requested only once 80% of its TTL has passed).
    if (hasProjectedVolumes(pod)) {
      const every = this.opts.volumeRefreshMs ?? 60_000;
      this.requeue(st, every + Math.random() * (every / 2));
    }
    try {
      await this.computeAndApply(st);
    } finally {
      const fresh = st.changed ? await this.pleg.podStatus(uid) : rt;
      const status = this.writeStatus(pod, fresh, false);
      if (status.phase === "Succeeded" || status.phase === "Failed") await this.finishPod(pod, fresh);
    }
    return st.requeue !== undefined ? { requeueAfterMs: st.requeue } : {};
  }

  /** ms left before spec.activeDeadlineSeconds passes (counted from status.startTime); undefined without a deadline. */
  private activeDeadlineRemaining(pod: Readonly<Pod>): number | undefined {
    const ads = pod.spec?.activeDeadlineSeconds;
    if (ads === undefined || ads === null) return undefined;
    const now = this.clock.now();
    const startTime = this.statusManager.getPodStatus(pod.metadata.uid ?? "")?.startTime ?? pod.status?.startTime;
    // First sync: the status written now carries startTime = now (at second precision).
    const start = startTime ? Date.parse(startTime) : Date.parse(rfc3339(now));
    return start + ads * 1000 - now;
  }

  /** activeDeadlineSeconds passed: the containers are killed and the pod Failed (DeadlineExceeded). */
  private async deadlineExceeded(pod: Readonly<Pod>, rt: PodRuntimeStatus): Promise<SyncOutcome> {
    const uid = pod.metadata.uid ?? "";
    this.recorder.event(pod, "Normal", DEADLINE_REASON, DEADLINE_MESSAGE);
    this.prober.removePod(uid);
    await this.killPod(pod, rt, this.gracePeriod(pod));
    const fresh = await this.pleg.podStatus(uid);
    this.writeStatus(pod, fresh, true, { reason: DEADLINE_REASON, message: DEADLINE_MESSAGE });
    this.finished.add(uid);
    return {};
  }

  private reasonsFor(uid: string): Map<string, { reason: string; message: string }> {
    let r = this.reasons.get(uid);
    if (!r) this.reasons.set(uid, (r = new Map()));
    return r;
  }

  private requeue(st: SyncState, ms: number): void {
    st.requeue = st.requeue === undefined ? ms : Math.min(st.requeue, ms);
  }

  private writeStatus(pod: Readonly<Pod>, rt: PodRuntimeStatus, podIsTerminal: boolean, failure?: { reason: string; message: string }): PodStatus {
    const uid = pod.metadata.uid ?? "";
    const basePod: Readonly<Pod> = { ...pod, status: this.statusManager.getPodStatus(uid) ?? pod.status };
    const status = generateAPIPodStatus(basePod, rt, {
      runtimeName: containerIDScheme(this.runtimeName),
      nodeIP: this.opts.nodeIP,
      now: this.clock.now(),
      reasons: podIsTerminal ? new Map() : this.reasonsFor(uid),
      // A probe without a result yet (its worker starts after this status) counts as failing, as upstream.
      ready: (name, id) => probeOK(this.prober.result(uid, name, "readiness", id) ?? (specOf(pod, name)?.readinessProbe ? "Failure" : undefined)),
      started: (name, id) => probeOK(this.prober.result(uid, name, "startup", id) ?? (specOf(pod, name)?.startupProbe ? "Unknown" : undefined)),
      podIsTerminal,
      podFailure: failure,
    });
    this.statusManager.setPodStatus(pod, status);
    if (!podIsTerminal) {
      const sandbox = rt.sandboxes[0];
      const targets = new Map<string, ProbeTarget>();
      for (const c of rt.containers) {
        if (targets.has(c.metadata.name)) continue;
        targets.set(c.metadata.name, { containerID: c.id, running: c.state === "CONTAINER_RUNNING", startedAt: c.startedAt || c.createdAt });
      }
      this.prober.updatePod(pod, sandbox?.ip ?? "", targets);
    }
    return status;
  }

  private async computeAndApply(st: SyncState): Promise<void> {
    const { pod, rt } = st;
    const uid = pod.metadata.uid ?? "";
    const restartPolicy = pod.spec?.restartPolicy ?? "Always";
    // 1. The sandbox.
    let sandbox = rt.sandboxes[0];
    if (!sandbox || sandbox.state !== "SANDBOX_READY") {
      const attempt = sandbox ? sandbox.metadata.attempt + 1 : 0;
      if (sandbox && restartPolicy === "Never" && rt.containers.length > 0) {
        // Never restart: the dead sandbox's containers stay dead; the pod becomes terminal.
        await this.killPod(pod, rt, this.gracePeriod(pod));
        st.changed = true;
        return;
      }
      if (sandbox) {
        this.recorder.event(pod, "Normal", "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.");
        await this.killPod(pod, rt, this.gracePeriod(pod));
      }
      const config = this.sandboxConfig(pod, attempt, true);
      await mkdir(config.logDirectory, { recursive: true });
      let id: string;
      try {
        id = await this.runtime.runPodSandbox(config);
      } catch (e) {
        this.recorder.event(pod, "Warning", "FailedCreatePodSandBox", `Failed to create pod sandbox: ${errText(e)}`);
        st.changed = true;
        this.requeue(st, 2_000);
        return;
      }
      st.changed = true;
      sandbox = await this.runtime.podSandboxStatus(id);
      // Old sandboxes (all but the one just replaced) go, with their containers.
      for (const old of rt.sandboxes.slice(1)) await this.runtime.removePodSandbox(old.id);
      rt.sandboxes = [sandbox, ...rt.sandboxes.slice(0, 1)];
    }
    const sandboxConfig = this.sandboxConfig(pod, sandbox.metadata.attempt);
    // 2. Volumes (the hosts file needs the pod IP).
    let vols: PodVolumes;
    try {
      vols = await this.volumes.setUp(pod, sandbox.ip);
    } catch (e) {
      if (!(e instanceof MountError)) throw e;
      this.recorder.event(pod, "Warning", "FailedMount", e.message);
      this.requeue(st, this.opts.volumeRetryMs ?? 2_000);
      return;
    }
    const current = rt.containers.filter((c) => c.podSandboxId === sandbox.id);
    const latestIn = (name: string): RuntimeContainer | undefined => current.find((c) => c.metadata.name === name);
    const start = (c: Container): Promise<boolean> => this.startContainer(st, c, sandbox.id, sandboxConfig, vols);

    const initSpecs = pod.spec?.initContainers ?? [];
    const appSpecs = pod.spec?.containers ?? [];
    const podIP = sandbox.ip ?? "";
    // restartPolicy Never/OnFailure: once every app container is done for good the pod completes, and
    // its sidecars are stopped rather than restarted (upstream: keepCount 0 → KillPod).
    const appDone = (c: Container): boolean => {
      const s = latestIn(c.name);
      return !!s && s.state === "CONTAINER_EXITED" && !(restartPolicy === "OnFailure" && s.exitCode !== 0);
    };
    if (restartPolicy !== "Always" && appSpecs.length > 0 && appSpecs.every(appDone)) {
      const live = current.filter((c) => (c.state === "CONTAINER_RUNNING" || c.state === "CONTAINER_CREATED") && initSpecs.some((i) => i.name === c.metadata.name && isSidecar(i)));
      if (live.length) {
        await this.stopSidecars(pod, live, this.gracePeriod(pod), podIP, this.clock.now());
        st.changed = true;
      }
      return;
    }

    // 3. Init containers, strictly in order. A sidecar lets the next one start once it has started
    //    (startup probe passed), and keeps running (restarted whatever the restartPolicy) afterwards.
    //    Once an app container exists, initialization is over (upstream's isPreviouslyInitialized).
    const initialized = appSpecs.some((c) => latestIn(c.name));
    let initDone = true;
    for (const c of initSpecs) {
      const s = latestIn(c.name);
      if (isSidecar(c)) {
        if (!s) await start(c);
        else if (s.state === "CONTAINER_RUNNING") {
          const restarted = await this.restartIfUnhealthy(st, c, s, true, start);
          if (!restarted && (initialized || this.sidecarStarted(uid, c, s))) continue;
        } else if (s.state === "CONTAINER_EXITED") await this.restartWithBackoff(st, c, s, start);
        if (initialized) continue;
        initDone = false;
        break;
      }
      if (initialized) continue;
      if (!s) {
        initDone = false;
        await start(c);
        break;
      }
      if (s.state === "CONTAINER_RUNNING") {
        initDone = false;
        break;
      }
      if (s.state === "CONTAINER_EXITED" && s.exitCode === 0) continue;
      initDone = false;
      if (restartPolicy === "Never") break; // the pod fails (getPhase)
      await this.restartWithBackoff(st, c, s, start);
      break;
    }
    if (!initDone) return;

    // 4. App containers.
    for (const c of appSpecs) {
      const s = latestIn(c.name);
      if (!s) {
        await start(c);
        continue;
      }
      if (s.state === "CONTAINER_RUNNING") {
        await this.restartIfUnhealthy(st, c, s, restartPolicy !== "Never", start);
        continue;
      }
      const restart = restartPolicy === "Always" || (restartPolicy === "OnFailure" && (s.state !== "CONTAINER_EXITED" || s.exitCode !== 0));
      if (!restart) continue;
      await this.restartWithBackoff(st, c, s, start);
    }
  }

  /** A sidecar counts as started once running and, with a startup probe, once that probe succeeded. */
  private sidecarStarted(uid: string, c: Container, s: RuntimeContainer): boolean {
    if (s.state !== "CONTAINER_RUNNING") return false;
    return !c.startupProbe || this.prober.result(uid, c.name, "startup", s.id) === "Success";
  }

  /**
   * A running container whose definition changed or whose startup/liveness probe failed is killed
   * (preStop hook first) and, when `restart`, started again. Returns whether it was killed.
   */
  private async restartIfUnhealthy(st: SyncState, c: Container, s: RuntimeContainer, restart: boolean, start: (c: Container) => Promise<boolean>): Promise<boolean> {
    const { pod } = st;
    const uid = pod.metadata.uid ?? "";
    let why: string | undefined;
    const grace = c.livenessProbe?.terminationGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
    if (s.annotations[ANNOTATION_CONTAINER_HASH] && s.annotations[ANNOTATION_CONTAINER_HASH] !== containerHash(c)) why = `Container ${c.name} definition changed, will be restarted`;
    else if (this.prober.result(uid, c.name, "startup", s.id) === "Failure") why = `Container ${c.name} failed startup probe, will be restarted`;
    else if (this.prober.result(uid, c.name, "liveness", s.id) === "Failure") why = `Container ${c.name} failed liveness probe, will be restarted`;
    if (!why) return false;
    this.recorder.event(pod, "Normal", "Killing", why);
    await this.killContainer(pod, c, s, grace, st.rt.sandboxes[0]?.ip ?? "");
    st.changed = true;
    if (restart) await start(c);
    return true;
  }

  /** upstream's doBackOff: restart now, or wait with CrashLoopBackOff. */
  private async restartWithBackoff(st: SyncState, c: Container, s: RuntimeContainer, start: (c: Container) => Promise<boolean>): Promise<void> {
    const { pod } = st;
    const key = `${pod.metadata.uid}/${c.name}`;
    const finishedAt = s.finishedAt || s.createdAt;
    if (this.backoff.isInBackOffSince(key, finishedAt)) {
      const b = this.backoff.get(key);
      const message = `back-off ${goDuration(b)} restarting failed container=${c.name} pod=${formatPod(pod)}`;
      const prev = st.reasons.get(c.name);
      if (prev?.reason !== "CrashLoopBackOff" || prev.message !== message) {
        this.recorder.event(pod, "Warning", "BackOff", `Back-off restarting failed container ${c.name} in pod ${formatPod(pod)}`);
      }
      st.reasons.set(c.name, { reason: "CrashLoopBackOff", message });
      this.requeue(st, Math.max(0, finishedAt + b - this.clock.now()));
      return;
    }
    this.backoff.next(key, finishedAt);
    await start(c);
  }

  private gracePeriod(pod: Readonly<Pod>): number {
    return pod.metadata.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
  }

  /**
   * The sandbox's DNS config (kubelet/dns.ts) when the kubelet has DNS options (a CRI kubelet
   * always does), else spec.dnsConfig as given; the forming's warnings are recorded when `record`.
   */
  private podDNS(pod: Readonly<Pod>, record: boolean): PodSandboxConfig["dnsConfig"] {
    const o = this.opts.dns;
    if (!o) {
      const dns = pod.spec?.dnsConfig;
      return dns ? { servers: dns.nameservers ?? [], searches: dns.searches ?? [], options: (dns.options ?? []).map((x) => (x.value !== undefined ? `${x.name}:${x.value}` : (x.name ?? ""))) } : undefined;
    }
    const { config, events } = formPodDNS(pod, { clusterDNS: o.clusterDNS, clusterDomain: o.clusterDomain, host: readHostDNS(o.resolvConf), isLocal: isLocalAddress });
    if (record) for (const e of events) this.recorder.event(pod, e.type, e.reason, e.message);
    return config;
  }

  private sandboxConfig(pod: Readonly<Pod>, attempt: number, recordDNSEvents = false): PodSandboxConfig {
    const uid = pod.metadata.uid ?? "";
    const ns = pod.metadata.namespace ?? "";
    const name = pod.metadata.name ?? "";
    const portMappings: PodSandboxConfig["portMappings"] = [];
    for (const c of pod.spec?.containers ?? [])
      for (const p of c.ports ?? []) if (p.hostPort) portMappings.push({ protocol: p.protocol ?? "TCP", containerPort: p.containerPort, hostPort: p.hostPort, hostIp: p.hostIP });
    return {
      metadata: { name, namespace: ns, uid, attempt },
      hostname: (pod.spec?.hostname ?? name).slice(0, 63),
      logDirectory: podLogDirectory(this.logsRoot, ns, name, uid),
      dnsConfig: this.podDNS(pod, recordDNSEvents),
      portMappings,
      labels: { ...(pod.metadata.labels ?? {}), [LABEL_POD_NAME]: name, [LABEL_POD_NAMESPACE]: ns, [LABEL_POD_UID]: uid, [LABEL_NODE]: this.opts.nodeName },
      annotations: { ...(pod.metadata.annotations ?? {}) },
      cgroupParent: this.opts.cgroupParent?.(pod.status?.qosClass ?? podQOSClass(pod.spec), uid),
    };
  }

  // ---- containers -------------------------------------------------------------------------------

  /** Pulls (per policy), creates and starts one container; failures become waiting reasons. */
  private async startContainer(st: SyncState, c: Container, sandboxId: string, sandboxConfig: PodSandboxConfig, vols: PodVolumes): Promise<boolean> {
    const { pod, rt } = st;
    st.changed = true;
    const previous = rt.containers.find((x) => x.metadata.name === c.name);
    const restartCount = previous ? restartCountOf(previous) + 1 : 0;
    const imageRef = await this.ensureImage(st, c);
    if (imageRef === undefined) return false;
    let config: ContainerConfig;
    try {
      config = await this.containerConfig(st, c, restartCount, vols);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      st.reasons.set(c.name, { reason: "CreateContainerConfigError", message: e.message });
      this.recorder.event(pod, "Warning", "Failed", `Error: ${e.message}`);
      this.requeue(st, this.opts.volumeRetryMs ?? 2_000);
      return false;
    }
    let id: string;
    try {
      id = await this.runtime.createContainer(sandboxId, config, sandboxConfig);
    } catch (e) {
      st.reasons.set(c.name, { reason: "CreateContainerError", message: errText(e) });
      this.recorder.event(pod, "Warning", "Failed", `Error: ${errText(e)}`);
      this.requeue(st, 2_000);
      return false;
    }
    this.recorder.event(pod, "Normal", "Created", `Created container ${c.name}`);
    try {
      await this.runtime.startContainer(id);
    } catch (e) {
      st.reasons.set(c.name, { reason: "RunContainerError", message: errText(e) });
      this.recorder.event(pod, "Warning", "Failed", `Error: failed to start container "${c.name}": ${errText(e)}`);
      return false;
    }
    this.recorder.event(pod, "Normal", "Started", `Started container ${c.name}`);
    const postStart = c.lifecycle?.postStart;
    if (postStart) {
      // upstream runs it right after StartContainer and waits for it; a failure kills the container
      // (it is then restarted per restartPolicy) and leaves PostStartHookError as the waiting reason.
      const msg = await this.hooks.run(pod, c, id, rt.sandboxes[0]?.ip ?? "", postStart, 0);
      if (msg !== undefined) {
        this.recorder.event(pod, "Warning", "FailedPostStartHook", msg);
        this.recorder.event(pod, "Normal", "Killing", "FailedPostStartHook");
        const started = await this.runtime.containerStatus(id).catch(() => undefined);
        if (started) await this.killContainer(pod, c, started, pod.spec?.terminationGracePeriodSeconds ?? 30, rt.sandboxes[0]?.ip ?? "");
        st.reasons.set(c.name, { reason: "PostStartHookError", message: msg });
        return false;
      }
    }
    st.reasons.delete(c.name);
    // Keep one dead instance per container name (for lastState and `logs --previous`), remove older ones.
    const dead = rt.containers.filter((x) => x.metadata.name === c.name && x.state !== "CONTAINER_RUNNING");
    for (const old of dead.slice(1)) await this.runtime.removeContainer(old.id).catch(() => undefined);
    return true;
  }

  /** The image ref, or undefined (with the waiting reason set) when it cannot be had. */
  private async ensureImage(st: SyncState, c: Container): Promise<string | undefined> {
    const { pod } = st;
    const image = c.image ?? "";
    const policy = c.imagePullPolicy ?? defaultPullPolicy(image);
    const present = await this.runtime.imageStatus(image);
    if (present && policy !== "Always") {
      this.recorder.event(pod, "Normal", "Pulled", `Container image "${image}" already present on machine`);
      return present.id;
    }
    if (!present && policy === "Never") {
      const message = `Container image "${image}" is not present with pull policy of Never`;
      st.reasons.set(c.name, { reason: "ErrImageNeverPull", message });
      this.recorder.event(pod, "Warning", "ErrImageNeverPull", message);
      return undefined;
    }
    const key = `${pod.metadata.uid}/image/${image}`;
    const lastFailure = this.pullFailures.get(key);
    if (lastFailure !== undefined && this.backoff.isInBackOffSince(key, lastFailure)) {
      const message = `Back-off pulling image "${image}"`;
      st.reasons.set(c.name, { reason: "ImagePullBackOff", message });
      this.recorder.event(pod, "Normal", "BackOff", message);
      this.requeue(st, Math.max(0, lastFailure + this.backoff.get(key) - this.clock.now()));
      return undefined;
    }
    this.recorder.event(pod, "Normal", "Pulling", `Pulling image "${image}"`);
    const t0 = this.clock.now();
    try {
      const ref = await this.runtime.pullImage(image);
      const took = `${((this.clock.now() - t0) / 1000).toFixed(3)}s`;
      this.recorder.event(pod, "Normal", "Pulled", `Successfully pulled image "${image}" in ${took} (${took} including waiting)`);
      this.pullFailures.delete(key);
      return ref;
    } catch (e) {
      if (present) {
        // No registry here (CRI.md): with policy Always an image that is present is used as is.
        this.log.debug({ err: e, image }, "pull failed; using the image present");
        this.recorder.event(pod, "Normal", "Pulled", `Container image "${image}" already present on machine`);
        return present.id;
      }
      const message = `Failed to pull image "${image}": ${errText(e)}`;
      this.recorder.event(pod, "Warning", "Failed", message);
      this.recorder.event(pod, "Warning", "Failed", "Error: ErrImagePull");
      st.reasons.set(c.name, { reason: "ErrImagePull", message });
      const now = this.clock.now();
      this.backoff.next(key, now);
      this.pullFailures.set(key, now);
      this.requeue(st, this.backoff.get(key));
      return undefined;
    }
  }
  private readonly pullFailures = new Map<string, number>();

  private async containerConfig(st: SyncState, c: Container, restartCount: number, vols: PodVolumes): Promise<ContainerConfig> {
    const { pod } = st;
    const uid = pod.metadata.uid ?? "";
    const envs = await this.containerEnv(st, c);
    const vars = new Map(envs.map((e) => [e.key, e.value]));
    const mounts: Mount[] = [];
    for (const m of c.volumeMounts ?? []) {
      const host = vols.paths.get(m.name);
      if (!host) throw new ConfigError(`unable to find volume "${m.name}" for container "${c.name}"`);
      const sub = m.subPath ?? (m.subPathExpr ? expandVars(m.subPathExpr, vars) : "");
      if (sub.split("/").includes("..")) throw new ConfigError(`subPath "${sub}" must not contain '..'`);
      mounts.push({ containerPath: m.mountPath, hostPath: sub ? join(host, sub) : host, readonly: m.readOnly ?? false });
    }
    if (!pod.spec?.hostNetwork && !mounts.some((m) => m.containerPath === "/etc/hosts")) mounts.push({ containerPath: "/etc/hosts", hostPath: vols.etcHosts, readonly: false });
    const req = c.resources?.requests ?? {};
    const lim = c.resources?.limits ?? {};
    const cpuReq = req.cpu !== undefined ? parseQuantityMilli(req.cpu) : lim.cpu !== undefined ? parseQuantityMilli(lim.cpu) : 0;
    const cpuLim = lim.cpu !== undefined ? parseQuantityMilli(lim.cpu) : 0;
    return {
      metadata: { name: c.name, attempt: restartCount },
      image: c.image ?? "",
      command: (c.command ?? []).map((s) => expandVars(s, vars)),
      args: (c.args ?? []).map((s) => expandVars(s, vars)),
      workingDir: c.workingDir,
      envs,
      mounts,
      logPath: containerLogPath(c.name, restartCount),
      labels: {
        [LABEL_POD_NAME]: pod.metadata.name ?? "",
        [LABEL_POD_NAMESPACE]: pod.metadata.namespace ?? "",
        [LABEL_POD_UID]: uid,
        [LABEL_CONTAINER_NAME]: c.name,
        [LABEL_NODE]: this.opts.nodeName,
      },
      annotations: {
        [ANNOTATION_RESTART_COUNT]: String(restartCount),
        [ANNOTATION_CONTAINER_HASH]: containerHash(c),
        [ANNOTATION_GRACE]: String(pod.spec?.terminationGracePeriodSeconds ?? 30),
      },
      resources: {
        cpuShares: cpuReq ? Math.max(2, Math.floor((cpuReq * 1024) / 1000)) : 2,
        cpuQuota: cpuLim ? Math.max(1000, Math.floor((cpuLim * 100_000) / 1000)) : 0,
        cpuPeriod: cpuLim ? 100_000 : 0,
        memoryLimitInBytes: lim.memory !== undefined ? parseQuantityValue(lim.memory) : 0,
      },
      ports: (c.ports ?? []).map((p) => ({ name: p.name, containerPort: p.containerPort, protocol: p.protocol ?? "TCP" })),
      stdin: c.stdin,
      tty: c.tty,
    };
  }

  private async lookup(st: SyncState, kind: "configmaps" | "secrets", name: string): Promise<ConfigMap | Secret | null> {
    const key = `${kind}/${name}`;
    if (st.objects.has(key)) return st.objects.get(key)!;
    let obj: ConfigMap | Secret | null = null;
    try {
      obj = await this.client.resource<ConfigMap | Secret>("", kind).get(st.pod.metadata.namespace ?? "", name);
    } catch (e) {
      if (!isNotFound(e)) throw new ConfigError(errText(e));
    }
    st.objects.set(key, obj);
    return obj;
  }

  private async sourceData(st: SyncState, kind: "configmaps" | "secrets", name: string): Promise<Record<string, string> | null> {
    const obj = await this.lookup(st, kind, name);
    if (!obj) return null;
    if (kind === "configmaps") return { ...((obj as ConfigMap).data ?? {}) };
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries((obj as Secret).data ?? {})) out[k] = Buffer.from(v, "base64").toString("utf8");
    return out;
  }

  /** upstream's makeEnvironmentVariables: envFrom, then env (with $(VAR) expansion of earlier values). */
  private async containerEnv(st: SyncState, c: Container): Promise<{ key: string; value: string }[]> {
    const { pod } = st;
    const ns = pod.metadata.namespace ?? "";
    const vars = new Map<string, string>();
    for (const from of c.envFrom ?? []) {
      const ref = from.configMapRef ?? from.secretRef;
      if (!ref) continue;
      const kind = from.configMapRef ? "configmaps" : "secrets";
      const data = await this.sourceData(st, kind, ref.name ?? "");
      if (!data) {
        if (ref.optional) continue;
        throw new ConfigError(`${kind === "configmaps" ? "configmap" : "secret"} "${ref.name}" not found`);
      }
      for (const [k, v] of Object.entries(data)) vars.set(`${from.prefix ?? ""}${k}`, v);
    }
    const status = this.statusManager.getPodStatus(pod.metadata.uid ?? "") ?? pod.status ?? {};
    const podIP = status.podIP ?? st.rt.sandboxes[0]?.ip ?? "";
    for (const e of c.env ?? []) {
      if (e.value !== undefined || !e.valueFrom) {
        vars.set(e.name, expandVars(e.value ?? "", vars));
        continue;
      }
      const f = e.valueFrom;
      if (f.fieldRef) vars.set(e.name, this.fieldValue(pod, f.fieldRef.fieldPath, podIP));
      else if (f.resourceFieldRef) vars.set(e.name, this.resourceValue(pod, c, f.resourceFieldRef.containerName, f.resourceFieldRef.resource, f.resourceFieldRef.divisor));
      else if (f.configMapKeyRef || f.secretKeyRef) {
        const ref = (f.configMapKeyRef ?? f.secretKeyRef)!;
        const kind = f.configMapKeyRef ? "configmaps" : "secrets";
        const data = await this.sourceData(st, kind, ref.name ?? "");
        if (!data) {
          if (ref.optional) continue;
          throw new ConfigError(`${kind === "configmaps" ? "configmap" : "secret"} "${ref.name}" not found`);
        }
        if (!(ref.key in data)) {
          if (ref.optional) continue;
          throw new ConfigError(`couldn't find key ${ref.key} in ${kind === "configmaps" ? "ConfigMap" : "Secret"} ${ns}/${ref.name}`);
        }
        vars.set(e.name, data[ref.key]);
      }
    }
    return [...vars].map(([key, value]) => ({ key, value }));
  }

  private fieldValue(pod: Readonly<Pod>, path: string, podIP: string): string {
    const m = /^metadata\.(labels|annotations)\['(.*)'\]$/.exec(path);
    if (m) return (m[1] === "labels" ? pod.metadata.labels : pod.metadata.annotations)?.[m[2]] ?? "";
    switch (path) {
      case "metadata.name":
        return pod.metadata.name ?? "";
      case "metadata.namespace":
        return pod.metadata.namespace ?? "";
      case "metadata.uid":
        return pod.metadata.uid ?? "";
      case "metadata.labels":
        return Object.entries(pod.metadata.labels ?? {}).map(([k, v]) => `${k}="${v}"`).join("\n");
      case "metadata.annotations":
        return Object.entries(pod.metadata.annotations ?? {}).map(([k, v]) => `${k}="${v}"`).join("\n");
      case "spec.nodeName":
        return pod.spec?.nodeName ?? "";
      case "spec.serviceAccountName":
        return pod.spec?.serviceAccountName ?? "";
      case "status.hostIP":
      case "status.hostIPs":
        return this.opts.nodeIP;
      case "status.podIP":
      case "status.podIPs":
        return podIP;
      default:
        throw new ConfigError(`unsupported fieldPath: ${path}`);
    }
  }

  private resourceValue(pod: Readonly<Pod>, self: Container, containerName: string | undefined, resource: string, divisor: string | number | undefined): string {
    const c = containerName ? [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].find((x) => x.name === containerName) : self;
    if (!c) throw new ConfigError(`container ${containerName} not found`);
    const [which, name] = resource.split(".", 2) as ["limits" | "requests", string];
    const cap = this.opts.capacity ?? {};
    const nodeDefault: Record<string, string> = { cpu: cap.cpu ?? "8", memory: cap.memory ?? "32Gi", "ephemeral-storage": cap["ephemeral-storage"] ?? "100Gi" };
    const q = c.resources?.[which]?.[name] ?? (which === "limits" ? nodeDefault[name] : undefined) ?? 0;
    if (name === "cpu") {
      const d = parseQuantityMilli(divisor ?? "1") || 1000;
      return String(Math.ceil(parseQuantityMilli(q) / d));
    }
    const d = parseQuantityValue(divisor ?? "1") || 1;
    return String(Math.ceil(parseQuantityValue(q) / d));
  }

  // ---- termination ------------------------------------------------------------------------------

  /**
   * Stops every running container with the grace period (Killing events; preStop hooks first): app
   * containers in parallel, then sidecars one by one in reverse order (KEP-753), then the sandboxes.
   */
  private async killPod(pod: Readonly<Pod>, rt: PodRuntimeStatus, grace: number): Promise<void> {
    const t0 = this.clock.now();
    const podIP = rt.sandboxes[0]?.ip ?? "";
    const live = rt.containers.filter((c) => c.state === "CONTAINER_RUNNING" || c.state === "CONTAINER_CREATED");
    const sidecarNames = new Set((pod.spec?.initContainers ?? []).filter(isSidecar).map((c) => c.name));
    await Promise.all(
      live
        .filter((c) => !sidecarNames.has(c.metadata.name))
        .map(async (c) => {
          this.recorder.event(pod, "Normal", "Killing", `Stopping container ${c.metadata.name}`);
          await this.killContainer(pod, specOf(pod, c.metadata.name), c, grace, podIP);
        }),
    );
    await this.stopSidecars(pod, live, grace, podIP, t0);
    for (const s of rt.sandboxes) if (s.state === "SANDBOX_READY") await this.runtime.stopPodSandbox(s.id);
  }

  /** Stops the sidecars among `live`, last declared first, each with what is left of the grace period since `t0`. */
  private async stopSidecars(pod: Readonly<Pod>, live: readonly RuntimeContainer[], grace: number, podIP: string, t0: number): Promise<void> {
    const sidecars = (pod.spec?.initContainers ?? []).filter(isSidecar).reverse();
    for (const spec of sidecars) {
      for (const c of live.filter((x) => x.metadata.name === spec.name)) {
        this.recorder.event(pod, "Normal", "Killing", `Stopping container ${spec.name}`);
        const left = grace - Math.floor((this.clock.now() - t0) / 1000);
        await this.killContainer(pod, spec, c, Math.max(left, Math.min(grace, MIN_GRACE_SECONDS)), podIP);
      }
    }
  }

  /**
   * upstream's killContainer: the preStop hook runs first (bounded by the grace period, a failure is a
   * FailedPreStopHook event), the time it took is taken off the grace passed to StopContainer (at
   * least MIN_GRACE_SECONDS left).
   */
  private async killContainer(pod: Readonly<Pod>, spec: Readonly<Container> | undefined, c: RuntimeContainer, grace: number, podIP: string): Promise<void> {
    const preStop = spec?.lifecycle?.preStop;
    if (spec && preStop && grace > 0 && c.state === "CONTAINER_RUNNING") {
      const t0 = this.clock.now();
      const timer = new AbortController();
      const hook = this.hooks.run(pod, spec, c.id, podIP, preStop, grace, timer.signal).then((msg) => {
        if (msg !== undefined) this.recorder.event(pod, "Warning", "FailedPreStopHook", msg);
      });
      await Promise.race([hook, this.clock.sleep(grace * 1000, timer.signal)]);
      timer.abort();
      const took = Math.floor((this.clock.now() - t0) / 1000);
      grace = Math.max(grace - took, MIN_GRACE_SECONDS);
    }
    await this.runtime.stopContainer(c.id, grace);
  }

  /** A pod that reached Succeeded/Failed: its sandbox stops, the pod object stays. */
  private async finishPod(pod: Readonly<Pod>, rt: PodRuntimeStatus): Promise<void> {
    const uid = pod.metadata.uid ?? "";
    this.prober.removePod(uid);
    if (this.finished.has(uid) && !rt.sandboxes.some((s) => s.state === "SANDBOX_READY")) return;
    await this.killPod(pod, rt, this.gracePeriod(pod));
    this.finished.add(uid);
  }

  /** Graceful deletion: stop containers with the grace period, report the final status, then finish the deletion. */
  private async terminatePod(pod: Readonly<Pod>, rt: PodRuntimeStatus): Promise<SyncOutcome> {
    const uid = pod.metadata.uid ?? "";
    this.prober.removePod(uid);
    await this.killPod(pod, rt, this.gracePeriod(pod));
    const fresh = await this.pleg.podStatus(uid);
    this.writeStatus(pod, fresh, true);
    await this.statusManager.flush(uid);
    try {
      await this.client.resource<Pod>("", "pods").delete(pod.metadata.namespace ?? "", pod.metadata.name ?? "", { gracePeriodSeconds: 0, preconditions: { uid } });
    } catch (e) {
      if (!isNotFound(e) && !isConflict(e)) throw e; // gone, or replaced by a new pod of that name
    }
    await this.cleanUpPod(uid, fresh);
    return { done: true };
  }

  private async cleanUpPod(uid: string, rt: PodRuntimeStatus): Promise<void> {
    for (const s of rt.sandboxes) {
      await this.runtime.stopPodSandbox(s.id);
      await this.runtime.removePodSandbox(s.id);
    }
    await this.volumes.cleanUp(uid);
    await this.opts.onPodRemoved?.(uid);
  }
}

/** The scheme of containerIDs: `containerd://`, `sim://` for the simulated runtime (kubelab-sim). */
export function containerIDScheme(runtimeName: string): string {
  return runtimeName === "kubelab-sim" ? "sim" : runtimeName;
}

/** Volumes whose files follow API objects or tokens (re-written on the periodic sync when they change). */
function hasProjectedVolumes(pod: Readonly<Pod>): boolean {
  return (pod.spec?.volumes ?? []).some((v) => v.configMap !== undefined || v.secret !== undefined || v.projected !== undefined || v.downwardAPI !== undefined);
}

function specOf(pod: Readonly<Pod>, name: string): Readonly<Container> | undefined {
  return pod.spec?.containers?.find((c) => c.name === name) ?? pod.spec?.initContainers?.find((c) => c.name === name);
}

function probeOK(r: string | undefined): boolean | undefined {
  return r === undefined ? undefined : r === "Success";
}

/** Whether an update is one the kubelet acts on (not just its own status coming back). */
function relevantChange(a: Readonly<Pod>, b: Readonly<Pod>): boolean {
  return (
    a.metadata.deletionTimestamp !== b.metadata.deletionTimestamp ||
    a.metadata.deletionGracePeriodSeconds !== b.metadata.deletionGracePeriodSeconds ||
    JSON.stringify(a.spec) !== JSON.stringify(b.spec) ||
    JSON.stringify(a.metadata.labels) !== JSON.stringify(b.metadata.labels) ||
    JSON.stringify(a.metadata.annotations) !== JSON.stringify(b.metadata.annotations) ||
    a.status?.phase !== b.status?.phase
  );
}
