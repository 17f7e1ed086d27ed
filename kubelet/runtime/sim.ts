// The simulated container runtime (like kwok's stages or kubemark's hollow nodes): the CRI-shaped
// `Runtime` in process, with no processes. A container's life is configuration — annotations
// `sim.kubelab.io/{start-delay,exit-after,exit-code,oom-after,probe-fail-after}` on the pod, each
// overridable per container with a `.<containerName>` suffix — or, without them, what a tiny shell
// makes of its command line (`sh -c 'echo hi; sleep 2; exit 3'`); anything else runs until stopped.
// Each container port gets a small HTTP echo bound to the pod's loopback IP, so services and
// ingresses carry real traffic, and every container writes a CRI-format log file.
//
// Scale: one process hosts ~1,000 of these (30,000 containers). Time only moves through the injected
// clock's timers — at most one pending per container (start delay, the next `sleep`, or the planned
// exit) plus one per exec — and nothing polls; probe failure is a timestamp compared on request.

import http from "node:http";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { newLogger, realClock, type Clock, type Logger } from "../../client/index.ts";
import { imageExists, imageInfo, normalizeImageRef } from "./sim/image.ts";
import { PodIPAllocator } from "./sim/ipam.ts";
import { LogSink, type LogFile } from "./sim/logs.ts";
import { parseGoDuration } from "./sim/duration.ts";
import { runScript, scriptFromArgv, type Script, type ShellHost } from "./sim/shell.ts";
import {
  GRPC_DEADLINE_EXCEEDED,
  GRPC_NOT_FOUND,
  GRPC_UNKNOWN,
  RuntimeError,
  criLogLine,
  type Container,
  type ContainerConfig,
  type ContainerFilter,
  type ContainerState,
  type ContainerStatus,
  type ExecSyncResponse,
  type PodSandbox,
  type PodSandboxConfig,
  type PodSandboxFilter,
  type PodSandboxState,
  type PodSandboxStatus,
  type Runtime,
} from "./types.ts";

export interface SimRuntimeOptions {
  nodeName: string;
  zone: string;
  /** Any IPv4 CIDR inside 127.0.0.0/8 (construction fails otherwise); `.1` is the node, pods get `.2` up. */
  podCIDR: string;
  clock?: Clock;
  log?: Logger;
  /** A random extra start delay in [0, startJitterMs) per container (default 0). */
  startJitterMs?: number;
}

export const SIM_ANNOTATION_PREFIX = "sim.kubelab.io/";
/** Time between StartContainer and the container running (StartContainer returns then). */
export const ANNOTATION_START_DELAY = `${SIM_ANNOTATION_PREFIX}start-delay`;
/** Running time after which the container exits with `exit-code`. */
export const ANNOTATION_EXIT_AFTER = `${SIM_ANNOTATION_PREFIX}exit-after`;
/** Exit code for `exit-after` (default 0); alone, the container exits as soon as it starts. */
export const ANNOTATION_EXIT_CODE = `${SIM_ANNOTATION_PREFIX}exit-code`;
/** Running time after which the container is OOM-killed (exit 137, reason OOMKilled). */
export const ANNOTATION_OOM_AFTER = `${SIM_ANNOTATION_PREFIX}oom-after`;
/** Running time after which the HTTP echo answers 503 and exec returns 1 (failing probes). */
export const ANNOTATION_PROBE_FAIL_AFTER = `${SIM_ANNOTATION_PREFIX}probe-fail-after`;

const RUNTIME_NAME = "kubelab-sim";
const RUNTIME_VERSION = "0.1.0";
/** Exit codes of a process killed by SIGTERM / SIGKILL (128 + signal). */
const EXIT_SIGTERM = 143;
const EXIT_SIGKILL = 137;
const PROBE_FAILURE = "simulated probe failure";

/** What a container will do, read once at CreateContainer. */
interface Behaviour {
  startDelayMs: number;
  exitAfterMs?: number;
  exitCode?: number;
  oomAfterMs?: number;
  probeFailAfterMs?: number;
  /** The interpreted command line; undefined = an opaque process. */
  script?: Script;
}

interface SimSandbox {
  id: string;
  /** containerd's reserved name: `<name>_<namespace>_<uid>_<attempt>`. */
  name: string;
  config: PodSandboxConfig;
  state: PodSandboxState;
  createdAt: number;
  ip: string;
  containers: Map<string, SimContainer>;
}

interface SimContainer {
  id: string;
  name: string;
  sandbox: SimSandbox;
  config: ContainerConfig;
  imageRef: string;
  state: ContainerState;
  createdAt: number;
  startedAt: number;
  finishedAt: number;
  exitCode: number;
  reason: string;
  message: string;
  /** Absolute log path ("" when the sandbox has no log directory). */
  logPath: string;
  log?: LogFile;
  behaviour: Behaviour;
  /** Set while StartContainer is in flight: fails it (the container was stopped or removed meanwhile). */
  abortStart?: (err: RuntimeError) => void;
  /** Cancels the pending timer / script of the current phase. */
  cancels: (() => void)[];
  servers: http.Server[];
  /** Execs in flight: each is called when the container exits (which kills the exec'd process). */
  execs: Set<() => void>;
  /** clock time from which probes fail (Infinity: never). */
  probeFailAt: number;
}

function notFound(kind: "sandbox" | "container", id: string): RuntimeError {
  return new RuntimeError(GRPC_NOT_FOUND, `an error occurred when try to find ${kind} "${id}": not found`);
}

function matchLabels(labels: Record<string, string>, selector: Record<string, string> | undefined): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

export class SimRuntime implements Runtime {
  readonly nodeName: string;
  readonly zone: string;
  /** The node's own address: the first host of podCIDR. */
  readonly nodeIP: string;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly jitterMs: number;
  private readonly ipam: PodIPAllocator;
  private readonly logs: LogSink;
  private readonly sandboxes = new Map<string, SimSandbox>();
  private readonly containers = new Map<string, SimContainer>();
  /** Reserved sandbox and container names → id, as containerd refuses duplicates. */
  private readonly names = new Map<string, string>();
  private closed = false;

  constructor(opts: SimRuntimeOptions) {
    this.nodeName = opts.nodeName;
    this.zone = opts.zone;
    this.ipam = new PodIPAllocator(opts.podCIDR); // throws on a CIDR outside 127.0.0.0/8
    this.nodeIP = this.ipam.nodeIP;
    this.clock = opts.clock ?? realClock;
    this.log = (opts.log ?? newLogger("sim-runtime")).child({ node: opts.nodeName });
    this.jitterMs = Math.max(0, opts.startJitterMs ?? 0);
    this.logs = new LogSink(this.log);
  }

  async version(): Promise<{ runtimeName: string; runtimeVersion: string; runtimeApiVersion: string }> {
    return { runtimeName: RUNTIME_NAME, runtimeVersion: RUNTIME_VERSION, runtimeApiVersion: "v1" };
  }

  // ---- sandboxes ----

  async runPodSandbox(config: PodSandboxConfig): Promise<string> {
    this.checkOpen();
    const m = config.metadata;
    const name = `${m.name}_${m.namespace}_${m.uid}_${m.attempt}`;
    this.reserve("sandbox", name);
    let ip: string;
    try {
      ip = this.ipam.allocate();
    } catch (err) {
      throw new RuntimeError(GRPC_UNKNOWN, `failed to setup network for sandbox "${name}": ${(err as Error).message}`, { cause: err });
    }
    const id = newId();
    this.names.set(name, id);
    this.sandboxes.set(id, { id, name, config, state: "SANDBOX_READY", createdAt: this.clock.now(), ip, containers: new Map() });
    this.log.debug({ sandbox: id, pod: `${m.namespace}/${m.name}`, ip }, "sandbox running");
    return id;
  }

  async stopPodSandbox(id: string): Promise<void> {
    const sb = this.sandboxes.get(id);
    if (!sb) return; // idempotent: nothing left to stop
    for (const c of sb.containers.values()) this.kill(c);
    sb.state = "SANDBOX_NOTREADY";
  }

  async removePodSandbox(id: string): Promise<void> {
    const sb = this.sandboxes.get(id);
    if (!sb) return;
    for (const c of [...sb.containers.values()]) this.deleteContainer(c);
    sb.state = "SANDBOX_NOTREADY";
    this.ipam.release(sb.ip);
    this.names.delete(sb.name);
    this.sandboxes.delete(id);
  }

  async podSandboxStatus(id: string): Promise<PodSandboxStatus> {
    const sb = this.sandboxes.get(id);
    if (!sb) throw notFound("sandbox", id);
    return { ...toPodSandbox(sb), ip: sb.ip };
  }

  async listPodSandbox(filter?: PodSandboxFilter): Promise<PodSandbox[]> {
    const out: PodSandbox[] = [];
    for (const sb of this.sandboxes.values()) {
      if (filter?.state && sb.state !== filter.state) continue;
      if (!matchLabels(sb.config.labels, filter?.labelSelector)) continue;
      out.push(toPodSandbox(sb));
    }
    return out;
  }

  // ---- containers ----

  async createContainer(podSandboxId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig): Promise<string> {
    this.checkOpen();
    const sb = this.sandboxes.get(podSandboxId);
    if (!sb) throw notFound("sandbox", podSandboxId);
    if (sb.state !== "SANDBOX_READY") throw new RuntimeError(GRPC_UNKNOWN, `sandbox container "${podSandboxId}" is not running`);
    if (!imageExists(config.image)) {
      throw new RuntimeError(GRPC_NOT_FOUND, `failed to resolve image "${normalizeImageRef(config.image)}": no such image`);
    }
    const m = sb.config.metadata;
    const name = `${config.metadata.name}_${m.name}_${m.namespace}_${m.uid}_${config.metadata.attempt}`;
    this.reserve("container", name);
    const id = newId();
    const logPath = sb.config.logDirectory && config.logPath ? join(sb.config.logDirectory, config.logPath) : "";
    const c: SimContainer = {
      id,
      name,
      sandbox: sb,
      config,
      imageRef: imageInfo(config.image).id,
      state: "CONTAINER_CREATED",
      createdAt: this.clock.now(),
      startedAt: 0,
      finishedAt: 0,
      exitCode: 0,
      reason: "",
      message: "",
      logPath,
      log: logPath ? this.logs.open(logPath) : undefined,
      behaviour: this.behaviour(config, sandboxConfig.annotations ?? sb.config.annotations),
      cancels: [],
      servers: [],
      execs: new Set(),
      probeFailAt: Infinity,
    };
    this.names.set(name, id);
    this.containers.set(id, c);
    sb.containers.set(id, c);
    return id;
  }

  /** Resolves once the container runs (after its start delay) and its echo servers listen. */
  async startContainer(id: string): Promise<void> {
    this.checkOpen();
    const c = this.containers.get(id);
    if (!c) throw notFound("container", id);
    if (c.state !== "CONTAINER_CREATED" || c.abortStart) throw new RuntimeError(GRPC_UNKNOWN, `container is in ${c.state} state`);
    if (c.sandbox.state !== "SANDBOX_READY") throw new RuntimeError(GRPC_UNKNOWN, `sandbox container "${c.sandbox.id}" is not running`);
    const aborted = new Promise<never>((_, reject) => (c.abortStart = reject));
    aborted.catch(() => {}); // observed below; avoid an unhandled rejection when nobody awaits
    try {
      const delay = c.behaviour.startDelayMs + (this.jitterMs > 0 ? Math.floor(Math.random() * this.jitterMs) : 0);
      if (delay > 0) {
        await Promise.race([new Promise<void>((resolve) => c.cancels.push(this.clock.setTimeout(resolve, delay).cancel)), aborted]);
        c.cancels = [];
      }
      await Promise.race([this.serve(c), aborted]);
    } catch (err) {
      for (const s of c.servers) closeServer(s); // bound while we were stopped
      c.servers = [];
      throw err;
    } finally {
      c.abortStart = undefined;
    }
    this.run(c);
  }

  /** SIGTERM: a running container exits at once with 143 (a process without a TERM handler). Idempotent. */
  async stopContainer(id: string, _timeoutSeconds: number): Promise<void> {
    const c = this.containers.get(id);
    if (!c) return;
    if (c.state === "CONTAINER_RUNNING" || c.abortStart) {
      this.terminate(c, EXIT_SIGTERM, "Error", "", `simulated container "${c.config.metadata.name}" received SIGTERM, exiting with code ${EXIT_SIGTERM}`);
    }
  }

  /** Removes the container (killing it if it runs); its log file stays, it belongs to the kubelet. Idempotent. */
  async removeContainer(id: string): Promise<void> {
    const c = this.containers.get(id);
    if (c) this.deleteContainer(c);
  }

  async listContainers(filter?: ContainerFilter): Promise<Container[]> {
    let source: Iterable<SimContainer> = this.containers.values();
    if (filter?.podSandboxId !== undefined) source = this.sandboxes.get(filter.podSandboxId)?.containers.values() ?? [];
    const out: Container[] = [];
    for (const c of source) {
      if (filter?.state && c.state !== filter.state) continue;
      if (!matchLabels(c.config.labels, filter?.labelSelector)) continue;
      out.push(toContainer(c));
    }
    return out;
  }

  async containerStatus(id: string): Promise<ContainerStatus> {
    const c = this.containers.get(id);
    if (!c) throw notFound("container", id);
    return {
      ...toContainer(c),
      startedAt: c.startedAt,
      finishedAt: c.finishedAt,
      exitCode: c.exitCode,
      reason: c.reason,
      message: c.message,
      logPath: c.logPath,
    };
  }

  /**
   * Exec in a running container: exit 1 once `probe-fail-after` has elapsed; a tiny-shell command
   * line is evaluated (echo → stdout, sleep takes clock time); any other command succeeds silently.
   */
  async execSync(id: string, cmd: string[], timeoutSeconds: number): Promise<ExecSyncResponse> {
    const c = this.containers.get(id);
    if (!c) throw notFound("container", id);
    if (c.state !== "CONTAINER_RUNNING") throw new RuntimeError(GRPC_UNKNOWN, `container is in ${c.state} state`);
    if (this.clock.now() >= c.probeFailAt) {
      return { stdout: Buffer.alloc(0), stderr: Buffer.from(`${PROBE_FAILURE}\n`), exitCode: 1 };
    }
    const script = scriptFromArgv(cmd);
    if (!script) return { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), exitCode: 0 };
    const stdout: string[] = [];
    const stderr: string[] = [];
    return new Promise<ExecSyncResponse>((resolve, reject) => {
      const cancels: (() => void)[] = [];
      const done = (r: ExecSyncResponse | RuntimeError): void => {
        c.execs.delete(onContainerExit);
        for (const cancel of cancels) cancel();
        if (r instanceof RuntimeError) reject(r);
        else resolve(r);
      };
      const response = (exitCode: number): ExecSyncResponse => ({
        stdout: Buffer.from(stdout.join("")),
        stderr: Buffer.from(stderr.join("")),
        exitCode,
      });
      // The container's death kills the exec'd process with it.
      const onContainerExit = (): void => done(response(EXIT_SIGKILL));
      const host: ShellHost = {
        stdout: (t) => stdout.push(`${t}\n`),
        stderr: (t) => stderr.push(`${t}\n`),
        sleep: (ms, fn) => this.clock.setTimeout(fn, ms).cancel,
        unknown: () => 0,
      };
      let finished = false;
      const run = runScript(script, host, (code) => {
        finished = true;
        done(response(code));
      });
      if (finished) return;
      cancels.push(run.cancel);
      c.execs.add(onContainerExit);
      if (timeoutSeconds > 0) {
        const t = this.clock.setTimeout(
          () => done(new RuntimeError(GRPC_DEADLINE_EXCEEDED, `failed to exec in container: timeout ${timeoutSeconds}s exceeded: context deadline exceeded`)),
          timeoutSeconds * 1000,
        );
        cancels.push(t.cancel);
      }
    });
  }

  // ---- images ----

  async imageStatus(image: string): Promise<{ id: string; size: number } | undefined> {
    return imageExists(image) ? imageInfo(image) : undefined;
  }

  async pullImage(image: string): Promise<string> {
    if (!imageExists(image)) {
      const ref = normalizeImageRef(image);
      throw new RuntimeError(GRPC_NOT_FOUND, `failed to pull and unpack image "${ref}": failed to resolve reference "${ref}": ${ref}: not found`);
    }
    return imageInfo(image).id;
  }

  /** Closes every echo server, cancels every timer and writes out buffered logs; the pods' state stays. */
  async close(): Promise<void> {
    this.closed = true;
    for (const c of this.containers.values()) {
      c.abortStart?.(new RuntimeError(GRPC_UNKNOWN, "runtime closed"));
      for (const cancel of c.cancels) cancel();
      c.cancels = [];
      for (const s of c.servers) closeServer(s);
      c.servers = [];
    }
    await this.logs.flush();
  }

  /** Writes every buffered log line to disk (they also go out on their own within ~50 ms). */
  flushLogs(): Promise<void> {
    return this.logs.flush();
  }

  // ---- internals ----

  private checkOpen(): void {
    if (this.closed) throw new RuntimeError(GRPC_UNKNOWN, "runtime closed");
  }

  private reserve(kind: "sandbox" | "container", name: string): void {
    const holder = this.names.get(name);
    if (holder !== undefined) {
      throw new RuntimeError(GRPC_UNKNOWN, `failed to reserve ${kind} name "${name}": name "${name}" is reserved for "${holder}"`);
    }
  }

  /** Reads the `sim.kubelab.io/*` annotations (per-container suffix first); invalid values are logged and ignored. */
  private behaviour(config: ContainerConfig, annotations: Record<string, string>): Behaviour {
    const container = config.metadata.name;
    const read = (key: string): string | undefined => annotations[`${key}.${container}`] ?? annotations[key];
    const duration = (key: string): number | undefined => {
      const v = read(key);
      if (v === undefined) return undefined;
      const ms = parseGoDuration(v);
      if (ms === undefined) this.log.warn({ annotation: key, value: v, container }, "ignoring invalid duration annotation (want e.g. 1s, 500ms, 2m)");
      return ms;
    };
    const codeText = read(ANNOTATION_EXIT_CODE);
    let exitCode: number | undefined;
    if (codeText !== undefined) {
      if (/^\s*\d{1,3}\s*$/.test(codeText) && Number(codeText) <= 255) exitCode = Number(codeText);
      else this.log.warn({ annotation: ANNOTATION_EXIT_CODE, value: codeText, container }, "ignoring invalid exit code annotation (want 0-255)");
    }
    return {
      startDelayMs: duration(ANNOTATION_START_DELAY) ?? 0,
      exitAfterMs: duration(ANNOTATION_EXIT_AFTER),
      exitCode,
      oomAfterMs: duration(ANNOTATION_OOM_AFTER),
      probeFailAfterMs: duration(ANNOTATION_PROBE_FAIL_AFTER),
      script: scriptFromArgv([...config.command, ...config.args]),
    };
  }

  /** Binds the echo servers of the container's TCP ports on the pod IP. */
  private async serve(c: SimContainer): Promise<void> {
    const ports = new Set<number>();
    for (const p of c.config.ports) if (p.protocol === "TCP" && p.containerPort > 0 && p.containerPort < 65536) ports.add(p.containerPort);
    await Promise.all([...ports].map((port) => this.listen(c, port)));
  }

  private listen(c: SimContainer, port: number): Promise<void> {
    return new Promise((resolve) => {
      const server = http.createServer((req, res) => this.answer(c, req, res));
      const onError = (err: NodeJS.ErrnoException): void => {
        this.log.warn({ err, container: c.config.metadata.name, ip: c.sandbox.ip, port }, "simulated container cannot listen; it keeps running without its echo server");
        this.write(c, "stderr", `cannot listen on ${c.sandbox.ip}:${port}: ${err.code ?? err.message}`);
        resolve();
      };
      server.once("error", onError);
      server.listen({ host: c.sandbox.ip, port, exclusive: true }, () => {
        server.off("error", onError);
        if (!c.abortStart || c.state !== "CONTAINER_CREATED" || this.closed) {
          closeServer(server); // stopped, removed or closed while we were binding
        } else {
          server.on("error", (err) => this.log.warn({ err, port }, "echo server error"));
          c.servers.push(server);
        }
        resolve();
      });
    });
  }

  private answer(c: SimContainer, req: http.IncomingMessage, res: http.ServerResponse): void {
    req.resume();
    const failing = this.clock.now() >= c.probeFailAt;
    const status = failing ? 503 : 200;
    const path = req.url ?? "/";
    const m = c.sandbox.config.metadata;
    const body: Record<string, string> = {
      pod: m.name,
      namespace: m.namespace,
      node: this.nodeName,
      zone: this.zone,
      container: c.config.metadata.name,
      ip: c.sandbox.ip,
      path,
    };
    if (failing) body.error = PROBE_FAILURE;
    const text = `${JSON.stringify(body)}\n`;
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
    this.write(c, "stdout", `${req.method ?? "GET"} ${path} ${status}`);
  }

  /** The container is now running: plan its end from the annotations, else let its script run. */
  private run(c: SimContainer): void {
    const b = c.behaviour;
    const name = c.config.metadata.name;
    c.state = "CONTAINER_RUNNING";
    c.startedAt = this.clock.now();
    c.probeFailAt = b.probeFailAfterMs === undefined ? Infinity : c.startedAt + b.probeFailAfterMs;
    this.write(c, "stdout", `simulated container "${name}" started on node ${this.nodeName} (zone ${this.zone}), pod IP ${c.sandbox.ip}`);
    const annotated = b.exitAfterMs !== undefined || b.exitCode !== undefined || b.oomAfterMs !== undefined;
    if (b.script) {
      // With lifecycle annotations the script only contributes its output; the annotations decide the end.
      const exited = (code: number): void => {
        if (!annotated) this.terminate(c, code, code === 0 ? "Completed" : "Error", "", `simulated container "${name}" exited with code ${code}`);
      };
      const host: ShellHost = {
        stdout: (t) => this.write(c, "stdout", t),
        stderr: (t) => this.write(c, "stderr", t),
        sleep: (ms, fn) => this.clock.setTimeout(fn, ms).cancel,
        unknown: () => "block",
      };
      const script = runScript(b.script, host, exited);
      if (c.state === "CONTAINER_RUNNING") c.cancels.push(script.cancel);
    }
    if (!annotated || c.state !== "CONTAINER_RUNNING") return;
    const exitAfter = b.exitAfterMs ?? (b.exitCode !== undefined ? 0 : undefined);
    let after: number;
    let end: () => void;
    if (b.oomAfterMs !== undefined && (exitAfter === undefined || b.oomAfterMs <= exitAfter)) {
      after = b.oomAfterMs;
      end = () => this.terminate(c, EXIT_SIGKILL, "OOMKilled", "", `simulated container "${name}" was OOM-killed (exit code ${EXIT_SIGKILL})`);
    } else {
      after = exitAfter ?? 0;
      const code = b.exitCode ?? 0;
      end = () => this.terminate(c, code, code === 0 ? "Completed" : "Error", "", `simulated container "${name}" exited with code ${code}`);
    }
    if (after <= 0) end();
    else c.cancels.push(this.clock.setTimeout(end, after).cancel);
  }

  /** The container's process ends (or, while starting, never gets to run). */
  private terminate(c: SimContainer, exitCode: number, reason: string, message: string, line: string): void {
    if (c.state === "CONTAINER_EXITED") return;
    const wasStarting = c.abortStart;
    for (const cancel of c.cancels) cancel();
    c.cancels = [];
    for (const s of c.servers) closeServer(s);
    c.servers = [];
    c.state = "CONTAINER_EXITED";
    c.finishedAt = this.clock.now();
    c.exitCode = exitCode;
    c.reason = reason;
    c.message = message;
    this.write(c, "stdout", line);
    for (const killExec of [...c.execs]) killExec();
    c.execs.clear();
    if (wasStarting) {
      c.abortStart = undefined;
      wasStarting(new RuntimeError(GRPC_UNKNOWN, `container "${c.id}" was stopped before it started`));
    }
  }

  /** SIGKILL, as StopPodSandbox and a forced RemoveContainer do. */
  private kill(c: SimContainer): void {
    if (c.state === "CONTAINER_RUNNING" || c.abortStart) {
      this.terminate(c, EXIT_SIGKILL, "Error", "", `simulated container "${c.config.metadata.name}" killed (SIGKILL), exit code ${EXIT_SIGKILL}`);
    }
  }

  private deleteContainer(c: SimContainer): void {
    this.kill(c);
    this.containers.delete(c.id);
    c.sandbox.containers.delete(c.id);
    this.names.delete(c.name);
  }

  private write(c: SimContainer, stream: "stdout" | "stderr", text: string): void {
    if (!c.log) return;
    const now = this.clock.now();
    let lines = "";
    for (const line of text.split("\n")) lines += criLogLine(now, stream, line);
    c.log.append(lines);
  }
}

function newId(): string {
  return randomBytes(32).toString("hex");
}

function closeServer(s: http.Server): void {
  s.close();
  s.closeAllConnections();
}

function toPodSandbox(sb: SimSandbox): PodSandbox {
  return {
    id: sb.id,
    metadata: { ...sb.config.metadata },
    state: sb.state,
    createdAt: sb.createdAt,
    labels: { ...sb.config.labels },
    annotations: { ...sb.config.annotations },
  };
}

function toContainer(c: SimContainer): Container {
  return {
    id: c.id,
    podSandboxId: c.sandbox.id,
    metadata: { ...c.config.metadata },
    image: c.config.image,
    imageRef: c.imageRef,
    state: c.state,
    createdAt: c.createdAt,
    labels: { ...c.config.labels },
    annotations: { ...c.config.annotations },
  };
}
