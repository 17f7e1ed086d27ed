// The supervisor on real child processes: restart after a crash, liveness (a hung process is
// SIGKILLed and restarted, a stopped one left alone), and the control actions.

import { readFileSync } from "node:fs";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { newLogger } from "../client/index.ts";
import { LIVENESS, Supervisor } from "./supervisor.ts";

const log = newLogger("test");
let sup: Supervisor | undefined;

afterEach(async () => {
  await sup?.stop(2000);
  sup = undefined;
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** A child serving /healthz on `port`; SIGUSR1 makes it spin forever (hung, still alive). */
const script = (port: number) => `
  require("http").createServer((q, s) => s.end("ok")).listen(${port}, "127.0.0.1");
  process.on("SIGUSR1", () => { for (;;) {} });
  process.on("SIGTERM", () => process.exit(0));
`;

async function until<T>(what: string, fn: () => T | undefined | false, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const stateOf = (pid: number) => {
  const st = readFileSync(`/proc/${pid}/stat`, "utf8");
  return st.slice(st.lastIndexOf(")") + 2, st.lastIndexOf(")") + 3);
};

async function startOne(name = "c"): Promise<{ pid: number; port: number }> {
  const port = await freePort();
  sup = new Supervisor(log);
  const dir = mkdtempSync(join(tmpdir(), "kubelab-sup-"));
  sup.start({ name, command: process.execPath, args: ["-e", script(port)], healthPort: port, logFile: join(dir, "c.log") });
  const pid = await until("a pid", () => sup!.processes()[0]?.pid);
  return { pid, port };
}

describe("Supervisor", () => {
  it("SIGKILLs and restarts a component that stops answering its health checks, and leaves a stopped one alone", async () => {
    const saved = { ...LIVENESS };
    Object.assign(LIVENESS, { periodMs: 100, timeoutMs: 200, failureThreshold: 3, startGraceMs: 0 });
    try {
      const { pid } = await startOne();
      sup!.startLiveness();
      // SIGSTOP from outside (a test's zone outage): not a hang to repair.
      process.kill(pid, "SIGSTOP");
      await new Promise((r) => setTimeout(r, 1000));
      expect(sup!.processes()[0]!.pid).toBe(pid);
      process.kill(pid, "SIGCONT");
      await new Promise((r) => setTimeout(r, 300));
      process.kill(pid, "SIGUSR1"); // hung: alive, not stopped, not answering
      const c = await until("a restart", () => sup!.processes().find((p) => p.pid !== undefined && p.pid !== pid));
      expect(c.restarts).toBe(1);
    } finally {
      Object.assign(LIVENESS, saved);
    }
  }, 30_000);

  it("pauses, resumes, holds down and starts a component", async () => {
    const { pid } = await startOne();
    expect(sup!.act("c", "pause").paused).toBe(true);
    await until("stopped (T)", () => stateOf(pid) === "T");
    expect(sup!.act("c", "resume").paused).toBeUndefined();
    await until("running again", () => stateOf(pid) !== "T");
    expect(sup!.act("c", "stop").held).toBe(true);
    await until("it exits", () => sup!.processes()[0]!.pid === undefined);
    await new Promise((r) => setTimeout(r, 1500)); // past the first restart backoff: still down
    expect(sup!.processes()[0]!.pid).toBeUndefined();
    sup!.act("c", "start");
    const next = await until("it runs again", () => sup!.processes()[0]!.pid);
    expect(next).not.toBe(pid);
    expect(() => sup!.act("nope", "kill")).toThrow('no component named "nope" (components: c)');
  }, 30_000);

  it("restarts a component that crashes, with backoff", async () => {
    const { pid } = await startOne();
    sup!.act("c", "kill");
    const c = await until("a restart", () => sup!.processes().find((p) => p.pid !== undefined && p.pid !== pid));
    expect(c.restarts).toBe(1);
  }, 30_000);
});
