// The simulated container runtime (like kwok's stages or kubemark's hollow nodes): the CRI-shaped
// `Runtime` in process, with no processes. A container's life is configuration — annotations
// `sim.kubelab.io/{start-delay,exit-after,exit-code,oom-after,probe-fail-after}` on the pod, each
// overridable per container with a `.<containerName>` suffix — or, without them, what a tiny shell
// makes of its command line (`sh -c 'echo hi; sleep 2; exit 3'`); anything else runs until stopped.
// Each container port gets a small HTTP echo bound to the pod's loopback IP, so services and
// ingresses carry real traffic, and every container writes a CRI-format log file. The shell also
// runs busybox `httpd` (serving the same echo, or a volume's files with `-h DIR`) and `nc -l`
// (printing what a connection sends), on the ports their command lines name.
//
// Scale: one process hosts ~1,000 of these (30,000 containers). Time only moves through the injected
// clock's timers — at most one pending per container (start delay, the next `sleep`, or the planned
// exit) plus one per exec — and nothing polls; probe failure is a timestamp compared on request.

import http from "node:http";
import net from "node:net";
import { randomBytes } from "node:crypto";
import { appendFileSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { stat } from "node:fs/promises";
import { join, posix } from "node:path";
import { newLogger, realClock, type Clock, type Logger } from "../../client/index.ts";
import { imageExists, imageInfo, normalizeImageRef } from "./sim/image.ts";
import { PodIPAllocator } from "./sim/ipam.ts";
import type { PodAddressAllocator } from "./sim/vpc.ts";
import { LogSink, type LogFile } from "./sim/logs.ts";
import { parseGoDuration } from "./sim/duration.ts";
import { runScript, scriptFromArgv, type PendingCommand, type Script, type ShellFiles, type ShellHost } from "./sim/shell.ts";
import { parseApplet, wildcardPorts, type Applet, type BindSpec } from "./sim/busybox.ts";
import { serveFile } from "./sim/httpd.ts";
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
  /** Any IPv4 CIDR inside 127.0.0.0/8 (construction fails otherwise); `.1` is the node, pods get `.2` up. Not with `ipam`. */
  podCIDR?: string;
  /**
   * Pod addresses from elsewhere instead of podCIDR: the zone's VPC subnet shared by every node of
   * a cloud pool (sim/vpc.ts). `nodeIP` is then the node's own address.
   */
  ipam?: PodAddressAllocator;
  nodeIP?: string;
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
  /** TCP ports bound in the pod's network namespace, by any of its containers. */
  ports: PortUse[];
}

/** A bound port: `any` (the wildcard: the pod IP, and its loopback), the pod IP alone, or the pod's loopback alone. */
interface PortUse {
  port: number;
  scope: "any" | "pod" | "loopback";
}

/** What a container's processes hold open: a listener or a connection. */
interface Held {
  close(): void;
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
  /** Listeners (declared echoes, httpd, nc) and nc connections, closed when the container exits. */
  servers: Held[];
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
  /** The node's own address: the first host of podCIDR (or as given with `ipam`). */
  readonly nodeIP: string;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly jitterMs: number;
  private readonly ipam: PodAddressAllocator;
  private readonly logs: LogSink;
  private readonly sandboxes = new Map<string, SimSandbox>();
  private readonly containers = new Map<string, SimContainer>();
  /** Reserved sandbox and container names → id, as containerd refuses duplicates. */
  private readonly names = new Map<string, string>();
  private closed = false;

  constructor(opts: SimRuntimeOptions) {
    this.nodeName = opts.nodeName;
    this.zone = opts.zone;
    if (opts.ipam) {
      if (!opts.nodeIP) throw new Error("a simulated runtime with a shared IPAM needs the node's own address (nodeIP)");
      this.ipam = opts.ipam;
      this.nodeIP = opts.nodeIP;
    } else {
      if (!opts.podCIDR) throw new Error("a simulated runtime needs a podCIDR or an IPAM");
      const own = new PodIPAllocator(opts.podCIDR); // throws on a CIDR outside 127.0.0.0/8
      this.ipam = own;
      this.nodeIP = own.nodeIP;
    }
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
    this.sandboxes.set(id, { id, name, config, state: "SANDBOX_READY", createdAt: this.clock.now(), ip, containers: new Map(), ports: [] });
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
      for (const s of c.servers) s.close(); // bound while we were stopped
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
        files: this.containerFiles(c),
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
      for (const s of c.servers) s.close();
      c.servers = [];
    }
    await this.logs.flush();
  }

  /** The node's instance is gone: closes, and gives every sandbox's address back (a shared subnet outlives the node). */
  async destroy(): Promise<void> {
    await this.close();
    for (const sb of this.sandboxes.values()) this.ipam.release(sb.ip);
    this.sandboxes.clear();
    this.containers.clear();
    this.names.clear();
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

  /**
   * Binds the echo servers of the container's declared TCP ports on the pod IP — except the ports
   * its own command line serves (`httpd -p 8080` with `containerPort: 8080`): those are served once,
   * by the command, from when it gets to run.
   */
  private async serve(c: SimContainer): Promise<void> {
    const byCommand = wildcardPorts(c.behaviour.script?.commands.map((cmd) => cmd.argv) ?? []);
    const ports = new Set<number>();
    for (const p of c.config.ports) {
      if (p.protocol === "TCP" && p.containerPort > 0 && p.containerPort < 65536 && !byCommand.has(p.containerPort)) ports.add(p.containerPort);
    }
    await Promise.all([...ports].map((port) => this.listen(c, port)));
  }

  private listen(c: SimContainer, port: number): Promise<void> {
    return new Promise((resolve) => {
      const cannot = (code: string, err?: Error): void => {
        this.log.warn({ err, container: c.config.metadata.name, ip: c.sandbox.ip, port }, "simulated container cannot listen; it keeps running without its echo server");
        this.write(c, "stderr", `cannot listen on ${c.sandbox.ip}:${port}: ${code}`);
        resolve();
      };
      const release = this.claim(c.sandbox, port, "any");
      if (!release) return cannot("EADDRINUSE");
      const server = http.createServer((req, res) => {
        const status = this.echo(c, req, res);
        this.write(c, "stdout", `${req.method ?? "GET"} ${req.url ?? "/"} ${status}`);
      });
      const onError = (err: NodeJS.ErrnoException): void => {
        release();
        cannot(err.code ?? err.message, err);
      };
      server.once("error", onError);
      server.listen({ host: c.sandbox.ip, port, exclusive: true }, () => {
        server.off("error", onError);
        const held = { close: () => (closeServer(server), release()) };
        if (!c.abortStart || c.state !== "CONTAINER_CREATED" || this.closed) {
          held.close(); // stopped, removed or closed while we were binding
        } else {
          server.on("error", (err) => this.log.warn({ err, port }, "echo server error"));
          c.servers.push(held);
        }
        resolve();
      });
    });
  }

  /** Takes `port` in the pod's network namespace (as bind(2) with SO_REUSEADDR would); undefined when taken. */
  private claim(sb: SimSandbox, port: number, scope: PortUse["scope"]): (() => void) | undefined {
    if (sb.ports.some((u) => u.port === port && (u.scope === "any" || scope === "any" || u.scope === scope))) return undefined;
    const use: PortUse = { port, scope };
    sb.ports.push(use);
    return () => {
      const i = sb.ports.indexOf(use);
      if (i >= 0) sb.ports.splice(i, 1);
    };
  }

  /** The HTTP echo: the pod, namespace, node, zone, container, pod IP, path, client address and headers, or 503 once probes fail. Returns the status. */
  private echo(c: SimContainer, req: http.IncomingMessage, res: http.ServerResponse): number {
    req.resume();
    const failing = this.clock.now() >= c.probeFailAt;
    const status = failing ? 503 : 200;
    const path = req.url ?? "/";
    const m = c.sandbox.config.metadata;
    const body: Record<string, unknown> = {
      pod: m.name,
      namespace: m.namespace,
      node: this.nodeName,
      zone: this.zone,
      container: c.config.metadata.name,
      ip: c.sandbox.ip,
      path,
      // Who connected (a proxy in between shows as itself) and the request headers, as echo servers
      // (agnhost, echoserver) print them: what proxies and the ingress added is visible.
      remote: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
      method: req.method,
      headers: req.headers,
    };
    if (failing) body.error = PROBE_FAILURE;
    const text = `${JSON.stringify(body)}\n`;
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
    return status;
  }

  // ---- busybox applets (httpd, nc -l) run by a container's command ----

  /** A command the tiny shell hands over: an applet we imitate, or "block" (an opaque process). */
  private applet(c: SimContainer, argv: string[], out: ShellHost): "block" | number | PendingCommand {
    const a = parseApplet(argv);
    if (!a || a.kind === "opaque") return "block";
    if (a.kind === "exit") {
      for (const l of a.stdout) out.stdout(l);
      for (const l of a.stderr) out.stderr(l);
      return a.status;
    }
    return {
      start: (done) => {
        let live = true;
        const report = (status: number): void => {
          if (live && c.state === "CONTAINER_RUNNING") done(status);
        };
        if (a.kind === "httpd") void this.httpd(c, a, out, report);
        else void this.ncListen(c, a, out, report);
        return () => {
          live = false;
        };
      },
    };
  }

  /**
   * Binds `server` for an applet as busybox's xbind would, in the pod's network namespace: the
   * wildcard address and the pod IP bind the pod IP; the pod's own loopback (127.0.0.1, ::1) is
   * taken but unreachable from outside the pod, as in a real one; any other address is not the
   * pod's. A string (busybox's message after "APPLET: ") on failure, undefined when the container
   * ended meanwhile.
   */
  private async bind(
    c: SimContainer,
    server: net.Server,
    spec: BindSpec,
  ): Promise<{ port: number; v6: boolean; release: () => void; local: string } | string | undefined> {
    const sb = c.sandbox;
    let scope: PortUse["scope"];
    if (spec.host === "" || spec.host === "0.0.0.0" || spec.host === "::") scope = "any";
    else if (spec.host === sb.ip) scope = "pod";
    else if (spec.host === "127.0.0.1" || spec.host === "localhost" || spec.host === "::1") scope = "loopback";
    else if (net.isIP(spec.host) !== 0) return "bind: Address not available";
    else return `bad address '${spec.host}'`;
    const v6 = spec.host === "" || spec.host === "::" || spec.host === "::1";
    const shown = (port: number): string =>
      scope === "loopback" ? (v6 ? `[::1]:${port}` : `127.0.0.1:${port}`) : v6 ? `[::]:${port}` : `${spec.host}:${port}`;
    let port = spec.port;
    if (scope === "loopback") {
      const release = this.claim(sb, port, scope);
      if (!release) return "bind: Address in use";
      return { port, v6, release, local: shown(port) };
    }
    const early = port > 0 ? this.claim(sb, port, scope) : () => {};
    if (!early) return "bind: Address in use";
    const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      server.once("error", resolve);
      server.listen({ host: sb.ip, port, exclusive: true }, () => {
        server.off("error", resolve);
        resolve(undefined);
      });
    });
    let release = early;
    if (err) {
      early();
      if (err.code === "EACCES" && port > 0 && port < 1024) {
        // The pod would run as root; this process may not bind a privileged port. The port is
        // the container's all the same, but nothing outside the pod reaches it.
        this.log.warn({ container: c.config.metadata.name, ip: sb.ip, port }, "simulated container cannot bind a privileged port (not root); it is served nowhere");
        const r = this.claim(sb, port, scope);
        if (!r) return "bind: Address in use";
        release = r;
      } else {
        return `bind: ${err.code === "EADDRINUSE" ? "Address in use" : err.code === "EADDRNOTAVAIL" ? "Address not available" : (err.code ?? err.message)}`;
      }
    } else if (port === 0) {
      port = (server.address() as net.AddressInfo).port;
      release = this.claim(sb, port, scope) ?? (() => {});
    }
    if (c.state !== "CONTAINER_RUNNING" || this.closed) {
      if (server.listening) server.close();
      release();
      return undefined;
    }
    return { port, v6, release, local: shown(port) };
  }

  /** A listener the container holds until it exits (or `close` is called). */
  private hold(c: SimContainer, server: net.Server, release: () => void): Held {
    let open = true;
    const held: Held = {
      close: () => {
        if (!open) return;
        open = false;
        if (server instanceof http.Server) closeServer(server);
        else if (server.listening) server.close();
        release();
        const i = c.servers.indexOf(held);
        if (i >= 0) c.servers.splice(i, 1);
      },
    };
    c.servers.push(held);
    return held;
  }

  /**
   * The container's files as the tiny shell sees them: paths under one of its volume mounts are the
   * mount's host files (a persistent volume's data survives the pod); other paths written by the
   * shell live in memory with the container; paths never written are not simulated. Read-only
   * mounts refuse writes.
   */
  /** Files a container's shell wrote outside its mounts (gone with the container). */
  private readonly rootfs = new WeakMap<SimContainer, Map<string, string>>();

  private containerFiles(c: SimContainer): ShellFiles {
    const resolveHost = (path: string): { host?: string; readonly?: boolean } => {
      const abs = posix.resolve(c.config.workingDir || "/", path);
      let best: { containerPath: string; hostPath: string; readonly: boolean } | undefined;
      for (const m of c.config.mounts) {
        const mp = posix.resolve("/", m.containerPath);
        if (abs === mp || abs.startsWith(mp === "/" ? "/" : `${mp}/`)) {
          if (!best || mp.length > best.containerPath.length) best = { containerPath: mp, hostPath: m.hostPath, readonly: !!m.readonly };
        }
      }
      if (!best) return {};
      return { host: join(best.hostPath, posix.relative(best.containerPath, abs)), readonly: best.readonly };
    };
    const errno = (e: unknown): string => {
      const code = (e as NodeJS.ErrnoException).code;
      return code === "ENOENT" ? "No such file or directory" : code === "EISDIR" ? "Is a directory" : code === "ENOTDIR" ? "Not a directory" : code === "EACCES" ? "Permission denied" : String(code);
    };
    let overlay = this.rootfs.get(c);
    if (!overlay) this.rootfs.set(c, (overlay = new Map()));
    const rootfs = overlay;
    return {
      write: (path, data, append) => {
        const r = resolveHost(path);
        if (!r.host) {
          // Off the mounts: the container's own (unsimulated) root file system, kept in memory.
          const abs = posix.resolve(c.config.workingDir || "/", path);
          rootfs.set(abs, (append ? (rootfs.get(abs) ?? "") : "") + data);
          return {};
        }
        if (r.readonly) return { error: "Read-only file system" };
        try {
          if (append) appendFileSync(r.host, data);
          else writeFileSync(r.host, data);
          return {};
        } catch (e) {
          return { error: errno(e) };
        }
      },
      read: (path) => {
        const r = resolveHost(path);
        if (!r.host) {
          const d = rootfs.get(posix.resolve(c.config.workingDir || "/", path));
          return d === undefined ? undefined : { data: d };
        }
        try {
          if (statSync(r.host).isDirectory()) return { error: "Is a directory" };
          return { data: readFileSync(r.host, "utf8") };
        } catch (e) {
          return { error: errno(e) };
        }
      },
    };
  }

  /** Where `httpd -h DIR` serves from: a directory of one of the container's volume mounts, or undefined (the echo). */
  private async httpdHome(c: SimContainer, dir: string): Promise<{ root?: string; error?: string }> {
    const abs = posix.resolve(c.config.workingDir || "/", dir);
    let best: { containerPath: string; hostPath: string } | undefined;
    for (const m of c.config.mounts) {
      const mp = posix.resolve("/", m.containerPath);
      if (abs === mp || abs.startsWith(mp === "/" ? "/" : `${mp}/`)) {
        if (!best || mp.length > best.containerPath.length) best = { containerPath: mp, hostPath: m.hostPath };
      }
    }
    if (!best) return {};
    const root = join(best.hostPath, posix.relative(best.containerPath, abs));
    try {
      if (!(await stat(root)).isDirectory()) return { error: "Not a directory" };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return { error: code === "ENOENT" ? "No such file or directory" : code === "ENOTDIR" ? "Not a directory" : code === "EACCES" ? "Permission denied" : String(code) };
    }
    return { root };
  }

  /** busybox httpd: chdir to -h, bind, then serve in the foreground (-f) or as a daemon of the container. */
  private async httpd(c: SimContainer, a: Extract<Applet, { kind: "httpd" }>, out: ShellHost, done: (status: number) => void): Promise<void> {
    let root: string | undefined;
    if (a.home !== undefined) {
      const home = await this.httpdHome(c, a.home);
      if (home.error) {
        out.stderr(`httpd: can't change directory to '${a.home}': ${home.error}`);
        return done(1);
      }
      root = home.root;
    }
    let v6 = true;
    // A declared port keeps the echo's access log (`GET /ready 200`) when the command serves it.
    let declared = false;
    const server = http.createServer((req, res) => {
      const peer = v6 ? `[::ffff:${req.socket.remoteAddress}]:${req.socket.remotePort}` : `${req.socket.remoteAddress}:${req.socket.remotePort}`;
      if (a.verbose > 1) out.stderr(`${peer}: url:${(req.url ?? "/").split("?")[0]}`);
      const logged = (status: number): void => {
        if (a.verbose > 0) out.stderr(`${peer}: response:${status}`);
        if (declared) this.write(c, "stdout", `${req.method ?? "GET"} ${req.url ?? "/"} ${status}`);
      };
      if (root === undefined || this.clock.now() >= c.probeFailAt) logged(this.echo(c, req, res));
      else void serveFile(root, req, res).then(logged);
    });
    server.on("error", (err) => this.log.warn({ err }, "simulated httpd error"));
    const bound = await this.bind(c, server, a.bind);
    if (bound === undefined) return;
    if (typeof bound === "string") {
      out.stderr(`httpd: ${bound}`);
      return done(1);
    }
    v6 = bound.v6;
    declared = ["", "0.0.0.0", "::"].includes(a.bind.host) && c.config.ports.some((p) => p.protocol === "TCP" && p.containerPort === bound.port);
    this.hold(c, server, bound.release);
    if (!a.foreground) done(0); // daemonized: the command returns, the server lives as long as the container
  }

  /** busybox nc -l: one connection (or, with -lk -e, one PROG per connection), stdin at EOF. */
  private async ncListen(c: SimContainer, a: Extract<Applet, { kind: "nc-listen" }>, out: ShellHost, done: (status: number) => void): Promise<void> {
    const server = net.createServer({ allowHalfOpen: true });
    server.on("error", (err) => this.log.warn({ err }, "simulated nc error"));
    const bound = await this.bind(c, server, a.bind);
    if (bound === undefined) return;
    if (typeof bound === "string") {
      out.stderr(`nc: ${bound}`);
      return done(1);
    }
    const listener = this.hold(c, server, bound.release);
    if (a.verbose > 0) out.stderr(`listening on ${bound.local} ...`);
    let accepted = false;
    let cancelWait: (() => void) | undefined;
    if (a.waitSec > 0) {
      cancelWait = this.clock.setTimeout(() => {
        if (accepted) return;
        listener.close();
        out.stderr("nc: timeout");
        done(1);
      }, a.waitSec * 1000).cancel;
      c.cancels.push(cancelWait);
    }
    server.on("connection", (sock: net.Socket) => {
      if (!a.persistent) {
        if (accepted) return void sock.destroy();
        accepted = true;
        cancelWait?.();
        listener.close(); // nc keeps the accepted socket only: the port is free again
      }
      const conn: Held = { close: () => sock.destroy() };
      c.servers.push(conn);
      sock.on("error", () => {});
      sock.on("close", () => {
        const i = c.servers.indexOf(conn);
        if (i >= 0) c.servers.splice(i, 1);
      });
      if (a.verbose > 0) {
        const remote = bound.v6 ? `[::ffff:${sock.remoteAddress}]:${sock.remotePort}` : `${sock.remoteAddress}:${sock.remotePort}`;
        const local = bound.v6 ? `[::ffff:${sock.localAddress}]:${sock.localPort}` : `${sock.localAddress}:${sock.localPort}`;
        out.stderr(`connect to ${local} from ${remote} (${remote})`);
      }
      this.ncSession(a.prog, sock, out, (status) => {
        if (!a.persistent) done(status);
      });
    });
  }

  /** One nc connection: without -e, what arrives goes to stdout (stdin is at EOF, so nc half-closes at once); with -e, PROG talks to it. */
  private ncSession(prog: string[] | undefined, sock: net.Socket, out: ShellHost, end: (status: number) => void): void {
    if (!prog) {
      sock.end();
      let partial = "";
      sock.setEncoding("utf8");
      sock.on("data", (d: string) => {
        const lines = (partial + d).split("\n");
        partial = lines.pop() ?? "";
        for (const l of lines) out.stdout(l);
      });
      sock.on("close", () => {
        if (partial !== "") out.stdout(partial);
        end(0);
      });
      return;
    }
    const name = prog[0].slice(prog[0].lastIndexOf("/") + 1);
    if (name === "cat" && prog.slice(1).every((x) => x === "-")) {
      sock.on("data", (d: Buffer) => sock.write(d));
      sock.on("end", () => sock.end());
      sock.on("close", () => end(0));
      return;
    }
    const script = scriptFromArgv(prog);
    sock.resume(); // PROG does not read its stdin
    if (!script) return; // a program we cannot imitate: it holds the connection until the container exits
    const host: ShellHost = {
      stdout: (t) => void (sock.writable && sock.write(`${t}\n`)),
      stderr: (t) => out.stderr(t),
      sleep: (ms, fn) => this.clock.setTimeout(fn, ms).cancel,
      unknown: () => "block",
    };
    const run = runScript(script, host, (code) => {
      sock.end();
      end(code);
    });
    sock.on("close", () => run.cancel());
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
        unknown: (argv) => this.applet(c, argv, host),
        files: this.containerFiles(c),
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
    for (const s of c.servers) s.close();
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
