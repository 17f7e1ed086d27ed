import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newLogger } from "../client/index.ts";
import { TokenFileAuthenticator } from "./auth.ts";
import { closePayload, encodeFrame, exitStatus, FrameDecoder, negotiateProtocol, OPCODE, websocketAccept, WsProtocolError, type WsMessage } from "./exec.ts";
import { ApiServer } from "./server.ts";
import { openBackend } from "./storage/index.ts";

const MASK = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);

describe("WebSocket framing", () => {
  it("computes Sec-WebSocket-Accept as RFC 6455 shows", () => {
    expect(websocketAccept("dGhlIHNhbXBsZSBub25jZQ==")).toBe("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  });

  it("encodes the three length forms and round-trips masked frames, even fed one byte at a time", () => {
    for (const len of [0, 1, 125, 126, 65535, 65536, 70000]) {
      const payload = Buffer.alloc(len, 0);
      for (let i = 0; i < len; i++) payload[i] = (i * 7) & 0xff;
      const frame = encodeFrame(OPCODE.binary, payload, MASK);
      const header = len < 126 ? 2 : len < 65536 ? 4 : 10;
      expect(frame.length).toBe(header + 4 + len);
      expect(frame[1] & 0x7f).toBe(len < 126 ? len : len < 65536 ? 126 : 127);
      const whole = new FrameDecoder(1 << 20).feed(frame);
      expect(whole).toHaveLength(1);
      expect(whole[0].opcode).toBe(OPCODE.binary);
      expect(whole[0].data.equals(payload)).toBe(true);
      if (len <= 126) {
        const d = new FrameDecoder();
        const got: WsMessage[] = [];
        for (const b of frame) got.push(...d.feed(Buffer.from([b])));
        expect(got.map((m) => m.data.toString("hex"))).toEqual([payload.toString("hex")]);
      }
    }
  });

  it("encodes server frames unmasked with FIN set", () => {
    expect([...encodeFrame(OPCODE.binary, Buffer.from([1, 104, 105]))]).toEqual([0x82, 3, 1, 104, 105]);
    expect([...encodeFrame(OPCODE.close, closePayload(1000))]).toEqual([0x88, 2, 0x03, 0xe8]);
  });

  it("joins fragmented messages, passing control frames that come between the fragments", () => {
    const first = encodeFrame(OPCODE.binary, Buffer.from("hel"), MASK);
    first[0] &= 0x7f; // FIN off
    const middle = encodeFrame(OPCODE.continuation, Buffer.from("lo "), MASK);
    middle[0] &= 0x7f;
    const ping = encodeFrame(OPCODE.ping, Buffer.from("p"), MASK);
    const last = encodeFrame(OPCODE.continuation, Buffer.from("world"), MASK);
    const got = new FrameDecoder().feed(Buffer.concat([first, middle, ping, last]));
    expect(got.map((m) => [m.opcode, m.data.toString()])).toEqual([
      [OPCODE.ping, "p"],
      [OPCODE.binary, "hello world"],
    ]);
  });

  it("rejects what RFC 6455 forbids", () => {
    const err = (b: Buffer, d = new FrameDecoder()): WsProtocolError => {
      try {
        d.feed(b);
      } catch (e) {
        return e as WsProtocolError;
      }
      throw new Error("no error");
    };
    expect(err(encodeFrame(OPCODE.binary, Buffer.from("x"))).message).toBe("client frame is not masked");
    expect(err(encodeFrame(OPCODE.ping, Buffer.alloc(126), MASK)).message).toContain("control frame");
    const fragPing = encodeFrame(OPCODE.ping, Buffer.from("x"), MASK);
    fragPing[0] &= 0x7f;
    expect(err(fragPing).message).toBe("fragmented control frame");
    expect(err(encodeFrame(OPCODE.continuation, Buffer.from("x"), MASK)).message).toContain("continuation");
    expect(err(encodeFrame(0x3, Buffer.from("x"), MASK)).message).toContain("unknown opcode");
    const big = err(encodeFrame(OPCODE.binary, Buffer.alloc(2000), MASK), new FrameDecoder(1000));
    expect(big.closeCode).toBe(1009);
  });

  it("negotiates v5, else v4, else nothing", () => {
    expect(negotiateProtocol("v5.channel.k8s.io")).toBe("v5.channel.k8s.io");
    expect(negotiateProtocol("v4.channel.k8s.io, v5.channel.k8s.io")).toBe("v5.channel.k8s.io");
    expect(negotiateProtocol("v4.channel.k8s.io,channel.k8s.io")).toBe("v4.channel.k8s.io");
    expect(negotiateProtocol("base64.channel.k8s.io")).toBeUndefined();
    expect(negotiateProtocol(undefined)).toBeUndefined();
  });

  it("builds upstream's exit statuses", () => {
    expect(exitStatus(["echo", "hi"], 0)).toEqual({ metadata: {}, status: "Success" });
    expect(exitStatus(["sh", "-c", "exit 3"], 3)).toEqual({
      metadata: {},
      status: "Failure",
      message: "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3",
      reason: "NonZeroExitCode",
      details: { causes: [{ reason: "ExitCode", message: "3" }] },
    });
  });
});

// ---- the apiserver's pods/exec against a fake kubelet ---------------------------------------------

const TOKEN = "exec-test-token";
const log = newLogger("exec-test");
log.level = "silent";

let api: ApiServer;
let apiPort: number;
let kubelet: http.Server;
const kubeletCalls: { path: string; aborted: boolean }[] = [];

/** The fake kubelet: `echo ARGS` prints them, `fail N` exits N with "bad" on stderr, `slow` answers after 300 ms. */
function fakeKubelet(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? "/", "http://kubelet");
  const call = { path: url.pathname, aborted: false };
  kubeletCalls.push(call);
  res.on("close", () => {
    if (!res.writableFinished) call.aborted = true;
  });
  if (req.method !== "POST" || url.pathname !== "/exec/default/web/app") {
    res.writeHead(404).end(`container "x" in pod "web" is not running`);
    return;
  }
  const cmd = url.searchParams.getAll("command");
  const answer = (stdout: string, stderr: string, exitCode: number): void => {
    res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ stdout: Buffer.from(stdout).toString("base64"), stderr: Buffer.from(stderr).toString("base64"), exitCode }));
  };
  if (cmd[0] === "echo") answer(cmd.slice(1).join(" ") + "\n", "", 0);
  else if (cmd[0] === "fail") answer("", "bad\n", Number(cmd[1]));
  else if (cmd[0] === "slow") setTimeout(() => answer("late\n", "", 0), 300);
  else if (cmd[0] === "hang") return;
  else answer("", "", 127);
}

async function call(method: string, path: string, body?: unknown): Promise<Response> {
  const r = await fetch(`http://127.0.0.1:${apiPort}${path}`, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  return r;
}

beforeAll(async () => {
  kubelet = http.createServer(fakeKubelet);
  await new Promise<void>((r) => kubelet.listen(0, "127.0.0.1", r));
  const kubeletPort = (kubelet.address() as AddressInfo).port;
  api = new ApiServer({
    backend: await openBackend("memory://"),
    log,
    authenticators: [new TokenFileAuthenticator([{ token: TOKEN, user: { name: "admin", uid: "1", groups: ["system:masters"] } }])],
  });
  apiPort = await api.start(0);
  const node = (await (await call("POST", "/api/v1/nodes", { apiVersion: "v1", kind: "Node", metadata: { name: "n1" } })).json()) as Record<string, unknown>;
  await call("PUT", "/api/v1/nodes/n1/status", {
    ...node,
    status: { addresses: [{ type: "InternalIP", address: "127.0.0.1" }], daemonEndpoints: { kubeletEndpoint: { Port: kubeletPort } } },
  });
  for (const name of ["web", "two"]) {
    const containers = name === "web" ? [{ name: "app", image: "busybox" }] : [{ name: "a", image: "busybox" }, { name: "b", image: "busybox" }];
    const created = await call("POST", "/api/v1/namespaces/default/pods", { apiVersion: "v1", kind: "Pod", metadata: { name }, spec: { nodeName: "n1", containers } });
    const pod = (await created.json()) as Record<string, unknown>;
    await call("PUT", `/api/v1/namespaces/default/pods/${name}/status`, {
      ...pod,
      status: { phase: "Running", containerStatuses: containers.map((c) => ({ name: c.name, ready: true, restartCount: 0, image: "busybox", imageID: "", state: { running: { startedAt: "2026-01-01T00:00:00Z" } } })) },
    });
  }
});

afterAll(async () => {
  await api?.stop();
  await new Promise<void>((r) => kubelet?.close(() => r()));
});

interface WsResult {
  status: number;
  headers: string;
  /** The HTTP body for a refused upgrade. */
  body: string;
  messages: WsMessage[];
  /** Whether the server ended the connection after its close frame. */
  ended: boolean;
}

/**
 * A minimal WebSocket client: sends the handshake, then `afterUpgrade(send)` may send frames; it
 * answers the server's close frame with one and collects everything until the connection ends.
 */
function wsExec(
  query: string,
  opts: { protocol?: string; token?: string; pod?: string; afterUpgrade?: (send: (opcode: number, data: Buffer) => void) => void; onMessage?: (m: WsMessage, send: (opcode: number, data: Buffer) => void) => void } = {},
): Promise<WsResult> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(apiPort, "127.0.0.1");
    const key = Buffer.from("0123456789abcdef").toString("base64");
    const send = (opcode: number, data: Buffer): void => {
      if (!sock.destroyed) sock.write(encodeFrame(opcode, data, MASK));
    };
    sock.write(
      `GET /api/v1/namespaces/default/pods/${opts.pod ?? "web"}/exec?${query} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Protocol: ${opts.protocol ?? "v5.channel.k8s.io"}\r\n` +
        `Authorization: Bearer ${opts.token ?? TOKEN}\r\n\r\n`,
    );
    let buf = Buffer.alloc(0);
    let head: { status: number; headers: string } | undefined;
    const decoder = new FrameDecoder(1 << 20, false);
    const messages: WsMessage[] = [];
    let closeSeen = false;
    sock.on("data", (d: Buffer) => {
      if (!head) {
        buf = Buffer.concat([buf, d]);
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const text = buf.subarray(0, end).toString();
        head = { status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1]), headers: text };
        d = buf.subarray(end + 4);
        if (head.status !== 101) {
          buf = Buffer.from(d);
          return;
        }
        if (websocketAccept(key) !== /Sec-WebSocket-Accept: (\S+)/i.exec(text)?.[1]) reject(new Error("bad accept"));
        opts.afterUpgrade?.(send);
      } else if (head.status !== 101) {
        buf = Buffer.concat([buf, d]);
        return;
      }
      for (const m of decoder.feed(d)) {
        messages.push(m);
        opts.onMessage?.(m, send);
        if (m.opcode === OPCODE.close && !closeSeen) {
          closeSeen = true;
          send(OPCODE.close, m.data.subarray(0, 2));
        }
      }
    });
    sock.on("error", reject);
    sock.on("close", () => {
      if (!head) return reject(new Error("no response"));
      const body = head.status === 101 ? "" : buf.toString();
      resolve({ ...head, body, messages, ended: true });
    });
  });
}

function channels(msgs: WsMessage[]): [number, string][] {
  return msgs.filter((m) => m.opcode === OPCODE.binary).map((m) => [m.data[0], m.data.subarray(1).toString()]);
}

describe("pods/exec", () => {
  it("upgrades, writes stdout, stderr and the Status, then closes", async () => {
    const r = await wsExec("command=echo&command=hi&command=there&stdout=true&stderr=true");
    expect(r.status).toBe(101);
    expect(r.headers).toContain("Sec-WebSocket-Protocol: v5.channel.k8s.io");
    expect(channels(r.messages)).toEqual([
      [1, "hi there\n"],
      [3, JSON.stringify({ metadata: {}, status: "Success" })],
    ]);
    const close = r.messages[r.messages.length - 1];
    expect(close.opcode).toBe(OPCODE.close);
    expect(close.data.readUInt16BE(0)).toBe(1000);
    expect(kubeletCalls.at(-1)?.path).toBe("/exec/default/web/app");
  });

  it("reports a non-zero exit as NonZeroExitCode; stdout=false drops stdout, stderr is kept", async () => {
    const r = await wsExec("command=fail&command=3&stdout=true&stderr=true");
    const ch = channels(r.messages);
    expect(ch[0]).toEqual([2, "bad\n"]);
    expect(JSON.parse(ch[1][1])).toEqual(exitStatus(["fail", "3"], 3));
    const noStderr = await wsExec("command=fail&command=4&stdout=true");
    expect(channels(noStderr.messages).map(([c]) => c)).toEqual([3]);
  });

  it("negotiates v4 when only v4 is offered, and refuses unknown subprotocols with 400", async () => {
    const v4 = await wsExec("command=echo&command=x&stdout=true", { protocol: "v4.channel.k8s.io" });
    expect(v4.headers).toContain("Sec-WebSocket-Protocol: v4.channel.k8s.io");
    expect(channels(v4.messages)[0]).toEqual([1, "x\n"]);
    const bad = await wsExec("command=echo&stdout=true", { protocol: "channel.k8s.io" });
    expect(bad.status).toBe(400);
    expect(bad.body).toContain("none of the requested subprotocols is supported");
  });

  it("answers pings and accepts the v5 stdin close while the command runs", async () => {
    const r = await wsExec("command=slow&stdout=true", {
      afterUpgrade: (send) => {
        send(OPCODE.ping, Buffer.from("beat"));
        send(OPCODE.binary, Buffer.from([255, 0]));
      },
    });
    const pong = r.messages.find((m) => m.opcode === OPCODE.pong);
    expect(pong?.data.toString()).toBe("beat");
    expect(r.messages.findIndex((m) => m.opcode === OPCODE.pong)).toBeLessThan(r.messages.findIndex((m) => m.opcode === OPCODE.binary));
    expect(channels(r.messages)[0]).toEqual([1, "late\n"]);
  });

  it("refuses stdin or tty with a Failure Status on the error channel, without calling the kubelet", async () => {
    const before = kubeletCalls.length;
    for (const q of ["stdin=true&stdout=true", "tty=true&stdout=true"]) {
      const r = await wsExec(`command=sh&${q}`);
      expect(r.status).toBe(101);
      const ch = channels(r.messages);
      expect(ch).toHaveLength(1);
      expect(ch[0][0]).toBe(3);
      expect(JSON.parse(ch[0][1])).toMatchObject({ status: "Failure", message: expect.stringContaining("interactive exec (stdin/tty) is not supported yet") });
    }
    expect(kubeletCalls.length).toBe(before);
  });

  it("ends the kubelet call when the client closes first", async () => {
    const r = await wsExec("command=hang&stdout=true", { afterUpgrade: (send) => setTimeout(() => send(OPCODE.close, closePayload(1000)), 100) });
    expect(r.messages.map((m) => m.opcode)).toEqual([OPCODE.close]);
    await new Promise((res) => setTimeout(res, 100));
    expect(kubeletCalls.at(-1)).toMatchObject({ path: "/exec/default/web/app", aborted: true });
  });

  it("validates before upgrading: token, container, options", async () => {
    const unauth = await wsExec("command=echo&stdout=true", { token: "nope" });
    expect(unauth.status).toBe(401);
    expect(JSON.parse(unauth.body)).toMatchObject({ reason: "Unauthorized" });

    const many = await wsExec("command=echo&stdout=true", { pod: "two" });
    expect(many.status).toBe(400);
    expect(JSON.parse(many.body).message).toBe("a container name must be specified for pod two, choose one of: [a b]");

    const wrong = await wsExec("command=echo&stdout=true&container=zzz");
    expect(JSON.parse(wrong.body).message).toBe("container zzz is not valid for pod web");

    const noCmd = await wsExec("stdout=true");
    expect(JSON.parse(noCmd.body).message).toBe("you must specify at least one command for the container");

    const noStreams = await wsExec("command=echo");
    expect(JSON.parse(noStreams.body).message).toBe("you must specify at least 1 of stdin, stdout, stderr");

    const missing = await wsExec("command=echo&stdout=true", { pod: "ghost" });
    expect(missing.status).toBe(404);
  });

  it("answers a request without a WebSocket upgrade (SPDY fallback) with 400", async () => {
    const r = await fetch(`http://127.0.0.1:${apiPort}/api/v1/namespaces/default/pods/web/exec?command=echo&stdout=true`, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { message: string }).message).toContain("Upgrade request required");
    const put = await fetch(`http://127.0.0.1:${apiPort}/api/v1/namespaces/default/pods/web/exec?command=echo&stdout=true`, {
      method: "PUT",
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    expect(put.status).toBe(405);
  });
});
