// The kubelet server's `POST /exec/{ns}/{pod}/{container}?command=..` with a fake exec.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { newLogger } from "../client/index.ts";
import { DEFAULT_EXEC_TIMEOUT_SECONDS, startKubeletServer, type ExecResponseBody, type ExecResult, type KubeletServerOptions } from "./server.ts";

const log = newLogger("kubelet-exec-test");
log.level = "silent";

let server: { port: number; close(): Promise<void> };
const calls: { ns: string; pod: string; container: string; cmd: string[]; timeout: number }[] = [];

async function start(exec: KubeletServerOptions["exec"]): Promise<void> {
  server = await startKubeletServer({
    host: "127.0.0.1",
    port: 0,
    logsRoot: "/nonexistent",
    podUID: (ns, name) => (ns === "default" && name === "web" ? "uid-1" : undefined),
    exec,
    log,
  });
}

/** Runs `cmd` in default/web/app unless the container is "gone"; `fail N` exits N; `boom` throws. */
async function fakeExec(ns: string, pod: string, container: string, cmd: string[], timeout: number): Promise<ExecResult | undefined> {
  calls.push({ ns, pod, container, cmd, timeout });
  if (container === "gone") return undefined;
  if (cmd[0] === "boom") throw new Error("rpc error: code = DeadlineExceeded");
  if (cmd[0] === "fail") return { stdout: Buffer.alloc(0), stderr: Buffer.from("bad\n"), exitCode: Number(cmd[1]) };
  return { stdout: Buffer.from([0xff, 0x00, ...Buffer.from(cmd.join(" "))]), stderr: Buffer.alloc(0), exitCode: 0 };
}

async function post(path: string, method = "POST"): Promise<{ status: number; text: string }> {
  const r = await fetch(`http://127.0.0.1:${server.port}${path}`, { method });
  return { status: r.status, text: await r.text() };
}

beforeEach(() => {
  calls.length = 0;
});

afterEach(async () => {
  await server.close();
});

describe("kubelet /exec", () => {
  it("runs the command and answers stdout/stderr in base64 with the exit code", async () => {
    await start(fakeExec);
    const r = await post("/exec/default/web/app?command=sh&command=-c&command=echo%20a%20b");
    expect(r.status).toBe(200);
    const body = JSON.parse(r.text) as ExecResponseBody;
    expect(Buffer.from(body.stdout, "base64").equals(Buffer.from([0xff, 0x00, ...Buffer.from("sh -c echo a b")]))).toBe(true);
    expect(body).toMatchObject({ stderr: "", exitCode: 0 });
    expect(calls).toEqual([{ ns: "default", pod: "web", container: "app", cmd: ["sh", "-c", "echo a b"], timeout: DEFAULT_EXEC_TIMEOUT_SECONDS }]);

    const f = JSON.parse((await post("/exec/default/web/app?command=fail&command=3&timeoutSeconds=5")).text) as ExecResponseBody;
    expect(f).toEqual({ stdout: "", stderr: Buffer.from("bad\n").toString("base64"), exitCode: 3 });
    expect(calls[1].timeout).toBe(5);
  });

  it("answers 404 when the container is not running or the pod is unknown", async () => {
    await start(fakeExec);
    expect(await post("/exec/default/web/gone?command=ls")).toEqual({ status: 404, text: `container "gone" in pod "web" is not running` });
    expect(await post("/exec/default/other/app?command=ls")).toEqual({ status: 404, text: `pod "other" does not exist` });
    expect(calls.map((c) => c.container)).toEqual(["gone"]);
  });

  it("rejects bad requests before running anything", async () => {
    await start(fakeExec);
    expect((await post("/exec/default/web/app?command=ls", "GET")).status).toBe(405);
    expect(await post("/exec/default/web/app")).toEqual({ status: 400, text: "you must specify at least one command for the container" });
    expect((await post("/exec/default/web?command=ls")).status).toBe(400);
    expect((await post("/exec/default/web/app?command=ls&timeoutSeconds=0")).status).toBe(400);
    expect(calls).toEqual([]);
  });

  it("answers 500 with the runtime's error, and 404 without an exec implementation", async () => {
    await start(fakeExec);
    const r = await post("/exec/default/web/app?command=boom");
    expect(r).toEqual({ status: 500, text: "exec failed: rpc error: code = DeadlineExceeded" });
    await server.close();
    await start(undefined);
    expect(await post("/exec/default/web/app?command=ls")).toEqual({ status: 404, text: `container "app" in pod "web" is not running` });
  });
});
