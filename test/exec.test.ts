// End to end: `kubectl exec` (the real kubectl 1.32, WebSocket v5.channel.k8s.io) against `kubelab up`
// with simulated nodes: the apiserver's pods/exec upgrades the connection and runs the command
// through the kubelet's /exec (the simulator's ExecSync).

import https from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startKubelab, type Kubelab } from "./harness/kubelab.ts";

let k: Kubelab;

beforeAll(async () => {
  k = await startKubelab({ nodes: true });
  const r = await k.kubectl(["run", "sh", "--image=busybox", "--", "httpd", "-f", "-p", "8080"]);
  expect(r.code, r.stderr).toBe(0);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const p = await k.kubectl(["get", "pod", "sh", "-o", "jsonpath={.status.phase}"]);
    if (p.stdout === "Running") break;
    if (Date.now() > deadline) throw new Error(`pod sh is not Running: ${p.stdout} ${p.stderr}`);
    await new Promise((res) => setTimeout(res, 250));
  }
}, 120_000);

afterAll(async () => {
  await k?.stop({ clean: true });
});

/** One raw request to the apiserver; resolves with the status code and body (no upgrade is followed). */
function raw(path: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(`${k.server}${path}`, { method: opts.method ?? "GET", ca: k.caCert, headers: opts.headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, body: "" });
    });
    req.on("error", reject);
    req.end();
  });
}

describe("kubectl exec", () => {
  it("prints the command's output and exits 0", async () => {
    const r = await k.kubectl(["exec", "sh", "--", "echo", "hello"], { timeoutMs: 30_000 });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("hello\n");
    expect(r.code).toBe(0);
  });

  it("passes stdout and stderr apart, with the container flag", async () => {
    // The simulator's shell writes "sh: exit: Illegal number: x" on stderr and exits 2.
    const r = await k.kubectl(["exec", "sh", "-c", "sh", "--", "sh", "-c", "echo out; exit x"], { timeoutMs: 30_000 });
    expect(r.stdout).toBe("out\n");
    expect(r.stderr).toContain("sh: exit: Illegal number: x\n");
    expect(r.code).toBe(2);
  });

  it("exits with the command's exit code", async () => {
    const r = await k.kubectl(["exec", "sh", "--", "sh", "-c", "exit 3"], { timeoutMs: 30_000 });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("command terminated with exit code 3");
  });

  it("refuses interactive exec with a message instead of hanging", async () => {
    const started = Date.now();
    const r = await k.kubectl(["exec", "-it", "sh", "--", "sh"], { input: "", timeoutMs: 20_000 });
    expect(Date.now() - started).toBeLessThan(19_000);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("interactive exec (stdin/tty) is not supported yet");
  });

  it("rejects an unknown container before upgrading", async () => {
    const r = await k.kubectl(["exec", "sh", "-c", "nope", "--", "echo", "hi"], { timeoutMs: 30_000 });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("nope");
  });

  it("refuses an unauthenticated upgrade with 401", async () => {
    const r = await raw("/api/v1/namespaces/default/pods/sh/exec?command=echo&stdout=true", {
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Protocol": "v5.channel.k8s.io",
        Authorization: "Bearer wrong-token",
      },
    });
    expect(r.status).toBe(401);
    expect(JSON.parse(r.body)).toMatchObject({ kind: "Status", reason: "Unauthorized", code: 401 });
  });

  it("answers a SPDY upgrade attempt with 400 at once", async () => {
    const r = await raw("/api/v1/namespaces/default/pods/sh/exec?command=echo&stdout=true", {
      method: "POST",
      headers: {
        Connection: "Upgrade",
        Upgrade: "SPDY/3.1",
        "X-Stream-Protocol-Version": "v4.channel.k8s.io",
        Authorization: `Bearer ${k.token}`,
      },
    });
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body)).toMatchObject({ kind: "Status", reason: "BadRequest" });
    expect(r.body).toContain("Upgrade request required");
  });

  it("keeps serving ordinary requests after upgrades", async () => {
    const r = await k.kubectl(["get", "pod", "sh", "-o", "name"]);
    expect(r.stdout.trim()).toBe("pod/sh");
  });
});
