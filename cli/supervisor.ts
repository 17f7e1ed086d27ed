// A small process manager for `kubelab up`: starts components as child processes, restarts those that die, stops them by PID.

import { spawn, type ChildProcess } from "node:child_process";
import { openSync, closeSync, readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { fileURLToPath } from "node:url";
import type { Logger } from "../client/index.ts";

export interface ComponentSpec {
  name: string;
  /** Its zone, when it belongs to one (kubelets); shown by `kubelab status`. */
  zone?: string;
  /** The port of its /healthz and /readyz: http on 127.0.0.1, or https for the apiserver. */
  healthPort?: number;
  healthScheme?: "http" | "https";
  /** Arguments after `kubelab`, e.g. ["apiserver", "--port", "6443"] (or after `command`). */
  args: string[];
  /** Another program instead of a kubelab component (etcd): its path. */
  command?: string;
  /** Its health check path when it has no /healthz and /readyz (etcd: /health). */
  healthPath?: string;
  logFile: string;
}

/** What `up` records about each component (in DIR/up.json) for `down` and `status`. */
export interface ComponentState {
  name: string;
  pid?: number;
  restarts: number;
  zone?: string;
  healthPort?: number;
  healthScheme?: "http" | "https";
  healthPath?: string;
  /** Held down through the control socket (not restarted). */
  held?: boolean;
  /** SIGSTOPped through the control socket. */
  paused?: boolean;
  logFile: string;
}

interface Running {
  spec: ComponentSpec;
  child?: ChildProcess;
  restarts: number;
  backoffMs: number;
  startedAt: number;
  timer?: NodeJS.Timeout;
  /** Held down (control socket `stop`): not restarted until `start`. */
  held: boolean;
  /** SIGSTOPped (control socket `pause`) until `resume`. */
  paused: boolean;
  /** Liveness: health checks failed in a row, and whether one ever passed since the start. */
  healthFails: number;
  healthPassed: boolean;
}

/** Liveness probing, as kubeadm's static pods' livenessProbe (period 10 s, timeout 15 s, 8 failures), plus a grace after a start. */
export const LIVENESS = { periodMs: 10_000, timeoutMs: 15_000, failureThreshold: 8, startGraceMs: 60_000 };

/** What the control socket may do to a component. */
export type ComponentAction = "stop" | "start" | "kill" | "pause" | "resume" | "restart";

// main.ts under tsx (npm run kubelab, tests), main.js in the compiled build (npm start).
const MAIN = fileURLToPath(new URL(import.meta.url.endsWith(".js") ? "./main.js" : "./main.ts", import.meta.url));

export class Supervisor {
  private readonly running = new Map<string, Running>();
  private stopping = false;

  private liveness?: NodeJS.Timeout;

  constructor(
    private readonly log: Logger,
    private readonly onChange: () => void = () => {},
    /** The CA of https health endpoints (the apiservers'). */
    private readonly healthCA?: string,
  ) {}

  /**
   * Health-checks every running component with a health port every LIVENESS.periodMs; one that
   * fails LIVENESS.failureThreshold checks in a row (after it first passed, or after the start
   * grace) is SIGKILLed and so restarted — a hung etcd member or apiserver, not only a dead one.
   * A component stopped on purpose (`ctl pause`, or SIGSTOP from outside: state T) is left alone.
   */
  startLiveness(): void {
    if (this.liveness) return;
    this.liveness = setInterval(() => {
      for (const r of this.running.values()) void this.probe(r);
    }, LIVENESS.periodMs);
    this.liveness.unref();
  }

  private async probe(r: Running): Promise<void> {
    const child = r.child;
    if (!child?.pid || !r.spec.healthPort || r.held || r.paused || this.stopping) return;
    if (processState(child.pid) === "T") return;
    const ok = await healthGet(r.spec.healthPort, r.spec.healthScheme ?? "http", r.spec.healthPath ?? "/healthz", this.healthCA);
    if (r.child !== child) return;
    if (ok) {
      r.healthFails = 0;
      r.healthPassed = true;
      return;
    }
    if (!r.healthPassed && Date.now() - r.startedAt < LIVENESS.startGraceMs) return;
    if (++r.healthFails < LIVENESS.failureThreshold) return;
    this.log.warn({ component: r.spec.name, pid: child.pid, failures: r.healthFails }, "component failed its health checks; killing it to restart it");
    r.healthFails = 0;
    child.kill("SIGKILL");
  }

  start(spec: ComponentSpec): void {
    if (this.stopping) return; // started after stop(): nothing may outlive the supervisor
    const r: Running = { spec, restarts: 0, backoffMs: 1000, startedAt: 0, held: false, paused: false, healthFails: 0, healthPassed: false };
    this.running.set(spec.name, r);
    this.spawn(r);
  }

  private spawn(r: Running): void {
    if (this.stopping) return;
    const fd = openSync(r.spec.logFile, "a");
    // The same runtime (and tsx loader, via execArgv) as this process.
    const [cmd, argv] = r.spec.command ? [r.spec.command, r.spec.args] : [process.execPath, [...process.execArgv, MAIN, ...r.spec.args]];
    const child = spawn(cmd, argv, {
      stdio: ["ignore", fd, fd],
      env: { ...process.env, KUBELAB_LOG_LEVEL: process.env.KUBELAB_LOG_LEVEL ?? "info" },
    });
    closeSync(fd);
    r.child = child;
    r.startedAt = Date.now();
    r.healthFails = 0;
    r.healthPassed = false;
    this.log.info({ component: r.spec.name, pid: child.pid }, "component started");
    this.onChange();
    child.on("exit", (code, signal) => {
      r.child = undefined;
      r.paused = false;
      this.onChange();
      if (this.stopping) return;
      if (r.held) {
        this.log.warn({ component: r.spec.name, code, signal }, "component stopped; held down until started again");
        return;
      }
      // Restart with exponential backoff, reset after a minute of healthy running.
      if (Date.now() - r.startedAt > 60_000) r.backoffMs = 1000;
      this.log.warn({ component: r.spec.name, code, signal, restartInMs: r.backoffMs }, "component exited; restarting");
      r.timer = setTimeout(() => {
        r.restarts++;
        this.spawn(r);
      }, r.backoffMs);
      r.backoffMs = Math.max(1000, Math.min(r.backoffMs * 2, 30_000));
    });
  }

  /**
   * Acts on one component (the control socket's verbs): `stop` SIGTERMs it and holds it down,
   * `start` releases the hold and starts it now, `kill` SIGKILLs it (restarted as a crash would
   * be), `restart` SIGTERMs it (restarted at once), `pause`/`resume` SIGSTOP/SIGCONT it. Throws
   * an Error naming the problem (unknown component, nothing to act on).
   */
  act(name: string, action: ComponentAction): ComponentState {
    const r = this.running.get(name);
    if (!r) throw new Error(`no component named "${name}" (components: ${[...this.running.keys()].join(", ")})`);
    const child = r.child;
    const alive = !!child && child.exitCode === null && child.signalCode === null;
    switch (action) {
      case "stop":
        r.held = true;
        if (r.timer) clearTimeout(r.timer);
        if (alive) {
          if (r.paused) child!.kill("SIGCONT");
          child!.kill("SIGTERM");
        }
        break;
      case "start":
        r.held = false;
        if (!alive) {
          if (r.timer) clearTimeout(r.timer);
          r.backoffMs = 1000;
          this.spawn(r);
        }
        break;
      case "kill":
      case "restart":
        if (!alive) throw new Error(`${name} is not running`);
        if (action === "restart") r.backoffMs = 0;
        if (r.paused) child!.kill("SIGCONT");
        child!.kill(action === "kill" ? "SIGKILL" : "SIGTERM");
        break;
      case "pause":
        if (!alive) throw new Error(`${name} is not running`);
        child!.kill("SIGSTOP");
        r.paused = true;
        break;
      case "resume":
        if (!alive) throw new Error(`${name} is not running`);
        child!.kill("SIGCONT");
        r.paused = false;
        break;
    }
    this.log.info({ component: name, action }, "component action");
    this.onChange();
    return this.processes().find((p) => p.name === name)!;
  }

  processes(): ComponentState[] {
    return [...this.running.values()].map((r) => ({
      name: r.spec.name,
      pid: r.child?.pid,
      restarts: r.restarts,
      ...(r.held ? { held: true } : {}),
      ...(r.paused ? { paused: true } : {}),
      ...(r.spec.zone ? { zone: r.spec.zone } : {}),
      ...(r.spec.healthPort ? { healthPort: r.spec.healthPort, healthScheme: r.spec.healthScheme ?? "http" } : {}),
      ...(r.spec.healthPath ? { healthPath: r.spec.healthPath } : {}),
      logFile: r.spec.logFile,
    }));
  }

  /**
   * SIGTERM every child, SIGKILL what is left after `graceMs`; no restarts from here on. Children that
   * already got the signal from the process group (Ctrl-C) get it twice, which they tolerate.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    if (this.liveness) clearInterval(this.liveness);
    const waits: Promise<void>[] = [];
    for (const r of this.running.values()) {
      if (r.timer) clearTimeout(r.timer);
      const child = r.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) continue;
      waits.push(
        new Promise<void>((resolve) => {
          const killer = setTimeout(() => child.kill("SIGKILL"), graceMs);
          child.once("exit", () => {
            clearTimeout(killer);
            resolve();
          });
          if (r.paused) child.kill("SIGCONT"); // a stopped process cannot act on SIGTERM
          child.kill("SIGTERM");
        }),
      );
    }
    await Promise.all(waits);
  }
}

/** The state letter of /proc/<pid>/stat (R, S, D, T for stopped, Z...), or undefined. */
function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return undefined;
  }
}

/** GET a health path on 127.0.0.1: true on 200 within LIVENESS.timeoutMs. */
function healthGet(port: number, scheme: "http" | "https", path: string, ca: string | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const opts = { host: "127.0.0.1", port, path, timeout: LIVENESS.timeoutMs };
    const onRes = (res: http.IncomingMessage): void => {
      res.resume();
      resolve(res.statusCode === 200);
    };
    const req = scheme === "https" ? https.get({ ...opts, ca, rejectUnauthorized: !!ca }, onRes) : http.get(opts, onRes);
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve(false));
  });
}
