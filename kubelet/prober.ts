// The prober (upstream's pkg/kubelet/prober): one worker per (pod, container, probe kind) on the
// injected clock, running exec, httpGet or tcpSocket probes with upstream's thresholds; the startup
// probe gates liveness and readiness. Results feed container ready/started, and a changed result
// triggers the pod's sync (which restarts a container whose liveness probe failed).

import http from "node:http";
import https from "node:https";
import net from "node:net";
import type { Container, HTTPGetAction, Pod, Probe } from "../api/core/v1.ts";
import { isLocallyReachable, type Clock, type EventRecorder, type Logger } from "../client/index.ts";
import { GRPC_DEADLINE_EXCEEDED, type Runtime } from "./runtime/types.ts";

export type ProbeKind = "liveness" | "readiness" | "startup";
export type ProbeResult = "Success" | "Failure" | "Unknown";

/** What the last sync knows about a container the probes target. */
export interface ProbeTarget {
  containerID: string;
  running: boolean;
  /** ms since the epoch. */
  startedAt: number;
}

const KIND_TITLE: Record<ProbeKind, string> = { liveness: "Liveness", readiness: "Readiness", startup: "Startup" };

function probeOf(c: Container, kind: ProbeKind): Probe | undefined {
  return kind === "liveness" ? c.livenessProbe : kind === "readiness" ? c.readinessProbe : c.startupProbe;
}

export interface ProbeManagerOptions {
  runtime: Runtime;
  clock: Clock;
  recorder: EventRecorder;
  log: Logger;
  /** A probe result changed for this pod: sync it. */
  onChange(uid: string): void;
}

class ProbeWorker {
  result: ProbeResult;
  containerID = "";
  private lastResult: ProbeResult = "Unknown";
  private resultRun = 0;
  private onHold = false;
  private timer?: { cancel(): void };
  private stopped = false;
  private busy = false;
  target?: ProbeTarget;
  pod: Readonly<Pod>;
  podIP = "";

  constructor(
    private readonly m: ProbeManager,
    pod: Readonly<Pod>,
    readonly container: Container,
    readonly kind: ProbeKind,
    readonly probe: Probe,
  ) {
    this.pod = pod;
    this.result = this.initial();
  }

  private initial(): ProbeResult {
    return this.kind === "readiness" ? "Failure" : this.kind === "liveness" ? "Success" : "Unknown";
  }

  start(): void {
    void this.tick();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  /** A new target (after a sync): a new container resets the worker. */
  setTarget(t: ProbeTarget | undefined, podIP: string, pod: Readonly<Pod>): void {
    this.pod = pod;
    this.podIP = podIP;
    this.target = t;
    if (t && t.containerID !== this.containerID) {
      this.containerID = t.containerID;
      this.result = this.initial();
      this.lastResult = "Unknown";
      this.resultRun = 0;
      this.onHold = false;
    }
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    if (!this.busy) {
      this.busy = true;
      try {
        await this.doProbe();
      } catch (e) {
        this.m.opts.log.warn({ err: e }, "probe failed to run");
      } finally {
        this.busy = false;
      }
    }
    if (this.stopped) return;
    this.timer = this.m.opts.clock.setTimeout(() => void this.tick(), (this.probe.periodSeconds ?? 10) * 1000);
  }

  private async doProbe(): Promise<void> {
    const t = this.target;
    if (!t || !t.running || this.onHold) return;
    const uid = this.pod.metadata.uid ?? "";
    if (this.kind !== "startup" && this.container.startupProbe && this.m.result(uid, this.container.name, "startup", t.containerID) !== "Success") return;
    if (this.kind === "startup" && this.result === "Success") return; // started: the startup probe is done
    if (this.m.opts.clock.now() - t.startedAt < (this.probe.initialDelaySeconds ?? 0) * 1000) return;
    const { result, output } = await this.m.runProbe(this.probe, this.container, t.containerID, this.podIP);
    if (this.stopped || this.target?.containerID !== t.containerID) return;
    if (result !== "Success") {
      this.m.opts.recorder.event(this.pod, "Warning", "Unhealthy", `${KIND_TITLE[this.kind]} probe ${result === "Failure" ? "failed" : "errored"}: ${output}`);
    }
    if (result === this.lastResult) this.resultRun++;
    else {
      this.lastResult = result;
      this.resultRun = 1;
    }
    if ((result === "Failure" && this.resultRun < (this.probe.failureThreshold ?? 3)) || (result === "Success" && this.resultRun < (this.probe.successThreshold ?? 1))) return;
    const changed = result !== this.result;
    this.result = result;
    if ((this.kind === "liveness" || this.kind === "startup") && result === "Failure") {
      // The container will be restarted; stop probing it until a new one runs.
      this.onHold = true;
      this.resultRun = 0;
    }
    if (changed) this.m.opts.onChange(uid);
  }
}

export class ProbeManager {
  /** uid → "container/kind" → worker */
  private readonly workers = new Map<string, Map<string, ProbeWorker>>();

  constructor(readonly opts: ProbeManagerOptions) {}

  /** After a sync: starts workers for the pod's probes and points them at the current containers. */
  updatePod(pod: Readonly<Pod>, podIP: string, targets: ReadonlyMap<string, ProbeTarget>): void {
    const uid = pod.metadata.uid ?? "";
    let ws = this.workers.get(uid);
    // Sidecars (init containers with restartPolicy Always) are probed like app containers.
    const probed = [...(pod.spec?.initContainers ?? []).filter((c) => c.restartPolicy === "Always"), ...(pod.spec?.containers ?? [])];
    for (const c of probed) {
      for (const kind of ["startup", "liveness", "readiness"] as const) {
        const probe = probeOf(c, kind);
        if (!probe) continue;
        ws ??= new Map();
        this.workers.set(uid, ws);
        const key = `${c.name}/${kind}`;
        let w = ws.get(key);
        if (!w) {
          w = new ProbeWorker(this, pod, c, kind, probe);
          ws.set(key, w);
          w.setTarget(targets.get(c.name), podIP, pod);
          w.start();
        } else w.setTarget(targets.get(c.name), podIP, pod);
      }
    }
  }

  removePod(uid: string): void {
    for (const w of this.workers.get(uid)?.values() ?? []) w.stop();
    this.workers.delete(uid);
  }

  stop(): void {
    for (const uid of [...this.workers.keys()]) this.removePod(uid);
  }

  /** The worker's result for this container instance; undefined when the container has no such probe. */
  result(uid: string, container: string, kind: ProbeKind, containerID: string): ProbeResult | undefined {
    const w = this.workers.get(uid)?.get(`${container}/${kind}`);
    if (!w) return undefined;
    if (w.containerID !== containerID) return kind === "readiness" ? "Failure" : kind === "liveness" ? "Success" : "Unknown";
    return w.result;
  }

  /** Runs one probe; never throws. */
  async runProbe(probe: Probe, container: Container, containerID: string, podIP: string): Promise<{ result: ProbeResult; output: string }> {
    const timeoutSeconds = probe.timeoutSeconds ?? 1;
    try {
      if (probe.exec) {
        const cmd = probe.exec.command ?? [];
        try {
          const r = await this.opts.runtime.execSync(containerID, cmd, timeoutSeconds);
          const output = Buffer.concat([r.stdout, r.stderr]).toString("utf8");
          return r.exitCode === 0 ? { result: "Success", output } : { result: "Failure", output };
        } catch (e) {
          if ((e as { code?: number }).code === GRPC_DEADLINE_EXCEEDED) return { result: "Failure", output: `command "${cmd.join(" ")}" timed out` };
          throw e;
        }
      }
      if (probe.httpGet) return await runHTTPGet(probe.httpGet, container, podIP, timeoutSeconds);
      if (probe.tcpSocket) {
        const host = probe.tcpSocket.host || podIP;
        const port = resolvePort(probe.tcpSocket.port, container);
        if (port === undefined) return { result: "Failure", output: `unable to find port ${String(probe.tcpSocket.port)} in container ${container.name}` };
        // Only addresses of this machine, or pods on its bridges (the project's safety rule).
  if (!isLocallyReachable(host)) return { result: "Failure", output: `refusing to probe ${host}: not an address of this machine` };
        return await tcpProbe(host, port, timeoutSeconds);
      }
      if (probe.grpc) return { result: "Failure", output: "gRPC probes are not supported yet" };
      return { result: "Unknown", output: "missing probe handler" };
    } catch (e) {
      return { result: "Unknown", output: e instanceof Error ? e.message : String(e) };
    }
  }
}

/**
 * Runs an httpGet action (probes and lifecycle hooks share it): only addresses of this machine are
 * contacted; 2xx/3xx is Success. Never throws.
 */
export async function runHTTPGet(g: HTTPGetAction, container: Container, podIP: string, timeoutSeconds: number): Promise<{ result: ProbeResult; output: string }> {
  const host = g.host || podIP;
  const port = resolvePort(g.port, container);
  if (port === undefined) return { result: "Failure", output: `unable to find port ${String(g.port)} in container ${container.name}` };
  // Only addresses of this machine, or pods on its bridges (the project's safety rule).
  if (!isLocallyReachable(host)) return { result: "Failure", output: `refusing to probe ${host}: not an address of this machine` };
  const scheme = g.scheme === "HTTPS" ? "https" : "http";
  const path = g.path ? (g.path.startsWith("/") ? g.path : `/${g.path}`) : "/";
  const hostPort = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  const url = `${scheme}://${hostPort}${path}`;
  const headers: Record<string, string> = { "User-Agent": "kube-probe/1.30", Accept: "*/*" };
  for (const h of g.httpHeaders ?? []) headers[h.name] = h.value;
  return await httpProbe(url, scheme, headers, timeoutSeconds);
}

function resolvePort(port: number | string, c: Container): number | undefined {
  if (typeof port === "number") return port;
  if (/^\d+$/.test(port)) return Number(port);
  return c.ports?.find((p) => p.name === port)?.containerPort;
}

function httpProbe(url: string, scheme: "http" | "https", headers: Record<string, string>, timeoutSeconds: number): Promise<{ result: ProbeResult; output: string }> {
  return new Promise((resolve) => {
    const mod = scheme === "https" ? https : http;
    const req = mod.get(url, { headers, timeout: timeoutSeconds * 1000, rejectUnauthorized: false }, (res) => {
      const code = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (d: Buffer) => {
        if (size < 10 * 1024) chunks.push(d);
        size += d.length;
      });
      res.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        if (code >= 200 && code < 400) resolve({ result: "Success", output: body });
        else resolve({ result: "Failure", output: `HTTP probe failed with statuscode: ${code}` });
      });
      res.on("error", (e) => resolve({ result: "Failure", output: `Get "${url}": ${e.message}` }));
    });
    req.on("timeout", () => req.destroy(new Error("context deadline exceeded (Client.Timeout exceeded while awaiting headers)")));
    req.on("error", (e) => resolve({ result: "Failure", output: `Get "${url}": ${dialMessage(e)}` }));
  });
}

function dialMessage(e: Error): string {
  const code = (e as { code?: string }).code;
  if (code === "ECONNREFUSED") return `dial tcp ${(e as { address?: string }).address ?? ""}:${(e as { port?: number }).port ?? ""}: connect: connection refused`;
  return e.message;
}

function tcpProbe(host: string, port: number, timeoutSeconds: number): Promise<{ result: ProbeResult; output: string }> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    sock.setTimeout(timeoutSeconds * 1000, () => {
      sock.destroy();
      resolve({ result: "Failure", output: `dial tcp ${host}:${port}: i/o timeout` });
    });
    sock.once("connect", () => {
      sock.destroy();
      resolve({ result: "Success", output: "" });
    });
    sock.once("error", (e) => {
      resolve({ result: "Failure", output: (e as { code?: string }).code === "ECONNREFUSED" ? `dial tcp ${host}:${port}: connect: connection refused` : e.message });
    });
  });
}
