// pods/exec over WebSocket (the channel protocol kubectl 1.32 speaks: v5.channel.k8s.io, or v4).
//
// The RFC 6455 handshake and framing are done here by hand. Every binary message carries one channel:
// first byte 0 stdin, 1 stdout, 2 stderr, 3 error (a metav1.Status as JSON), 4 resize, 255 close
// (v5: the client sends [255, 0] when its stdin ends). Non-interactive commands only: the command is
// run to completion by the kubelet's `POST /exec/...` (the runtime's ExecSync); its stdout and stderr
// are written on channels 1 and 2, then the Status on channel 3, then a close frame. A request with
// stdin or tty is answered with a Failure Status on channel 3 (interactive exec is not supported yet).
// A request that does not offer a WebSocket upgrade (kubectl's SPDY fallback) gets a 400.

import { createHash } from "node:crypto";
import http from "node:http";
import type { Duplex } from "node:stream";
import type { KubeObject } from "../api/index.ts";
import { errors } from "./errors.ts";
import type { HandlerContext } from "./handlers.ts";
import { kubeletEndpoint, resolveContainer } from "./podlog.ts";

// ---- RFC 6455 framing ----------------------------------------------------------------------------

const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

export const OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

/** Sec-WebSocket-Accept for a client's Sec-WebSocket-Key. */
export function websocketAccept(key: string): string {
  return createHash("sha1")
    .update(key + WS_GUID)
    .digest("base64");
}

/** One frame, unfragmented. Servers send unmasked frames; a client (tests) passes a 4-byte mask. */
export function encodeFrame(opcode: number, payload: Buffer, mask?: Buffer): Buffer {
  const len = payload.length;
  const headerLen = 2 + (len < 126 ? 0 : len < 0x10000 ? 2 : 8) + (mask ? 4 : 0);
  const header = Buffer.alloc(headerLen);
  header[0] = 0x80 | (opcode & 0x0f);
  let o = 2;
  if (len < 126) header[1] = len;
  else if (len < 0x10000) {
    header[1] = 126;
    header.writeUInt16BE(len, 2);
    o = 4;
  } else {
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(len), 2);
    o = 10;
  }
  if (!mask) return Buffer.concat([header, payload]);
  header[1] |= 0x80;
  mask.copy(header, o, 0, 4);
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = payload[i] ^ mask[i & 3];
  return Buffer.concat([header, body]);
}

/** A message: a control frame, or a (reassembled) text/binary message. */
export interface WsMessage {
  opcode: number;
  data: Buffer;
}

export class WsProtocolError extends Error {
  override readonly name = "WsProtocolError";
  constructor(
    /** The close code to send: 1002 protocol error, 1009 too big. */
    readonly closeCode: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Decodes the bytes a client sends into messages as they arrive: frames split across chunks wait
 * for the rest, masked payloads are unmasked, fragmented messages are joined (control frames may
 * come between the fragments). Throws WsProtocolError on what RFC 6455 forbids.
 */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);
  private fragments: Buffer[] = [];
  private fragmentOpcode = -1;
  private fragmentBytes = 0;

  constructor(
    private readonly maxMessageBytes = 1 << 20,
    /** Servers must refuse unmasked client frames (RFC 6455 5.1). */
    private readonly requireMask = true,
  ) {}

  feed(chunk: Buffer): WsMessage[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: WsMessage[] = [];
    for (;;) {
      const f = this.nextFrame();
      if (!f) break;
      const m = this.assemble(f.fin, f.opcode, f.payload);
      if (m) out.push(m);
    }
    return out;
  }

  private nextFrame(): { fin: boolean; opcode: number; payload: Buffer } | undefined {
    const b = this.buf;
    if (b.length < 2) return undefined;
    const fin = (b[0] & 0x80) !== 0;
    if ((b[0] & 0x70) !== 0) throw new WsProtocolError(1002, "reserved bits set without a negotiated extension");
    const opcode = b[0] & 0x0f;
    const masked = (b[1] & 0x80) !== 0;
    if (!masked && this.requireMask) throw new WsProtocolError(1002, "client frame is not masked");
    let len = b[1] & 0x7f;
    let o = 2;
    if (len === 126) {
      if (b.length < 4) return undefined;
      len = b.readUInt16BE(2);
      o = 4;
    } else if (len === 127) {
      if (b.length < 10) return undefined;
      const big = b.readBigUInt64BE(2);
      if (big > BigInt(this.maxMessageBytes)) throw new WsProtocolError(1009, "message too big");
      len = Number(big);
      o = 10;
    }
    if (opcode >= 0x8) {
      if (!fin) throw new WsProtocolError(1002, "fragmented control frame");
      if (len > 125) throw new WsProtocolError(1002, "control frame payload longer than 125 bytes");
    }
    if (len > this.maxMessageBytes) throw new WsProtocolError(1009, "message too big");
    const maskAt = o;
    if (masked) o += 4;
    if (b.length < o + len) return undefined;
    const payload = Buffer.from(b.subarray(o, o + len));
    if (masked) for (let i = 0; i < len; i++) payload[i] ^= b[maskAt + (i & 3)];
    this.buf = b.subarray(o + len);
    return { fin, opcode, payload };
  }

  private assemble(fin: boolean, opcode: number, payload: Buffer): WsMessage | undefined {
    switch (opcode) {
      case OPCODE.close:
      case OPCODE.ping:
      case OPCODE.pong:
        return { opcode, data: payload };
      case OPCODE.text:
      case OPCODE.binary:
        if (this.fragmentOpcode >= 0) throw new WsProtocolError(1002, "new data message before the previous one ended");
        if (fin) return { opcode, data: payload };
        this.fragmentOpcode = opcode;
        this.fragments = [payload];
        this.fragmentBytes = payload.length;
        return undefined;
      case OPCODE.continuation: {
        if (this.fragmentOpcode < 0) throw new WsProtocolError(1002, "continuation frame without a message");
        this.fragmentBytes += payload.length;
        if (this.fragmentBytes > this.maxMessageBytes) throw new WsProtocolError(1009, "message too big");
        this.fragments.push(payload);
        if (!fin) return undefined;
        const m = { opcode: this.fragmentOpcode, data: Buffer.concat(this.fragments) };
        this.fragmentOpcode = -1;
        this.fragments = [];
        this.fragmentBytes = 0;
        return m;
      }
      default:
        throw new WsProtocolError(1002, `unknown opcode ${opcode}`);
    }
  }
}

/** A close frame's payload: the code and an optional reason. */
export function closePayload(code: number, reason = ""): Buffer {
  const r = Buffer.from(reason);
  const b = Buffer.alloc(2 + r.length);
  b.writeUInt16BE(code, 0);
  r.copy(b, 2);
  return b;
}

// ---- the channel protocol -------------------------------------------------------------------------

export const CHANNEL = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4, close: 255 } as const;

/** The subprotocols served, most preferred first. */
export const EXEC_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

/** The first protocol we serve, in our order of preference, among those the client offers. */
export function negotiateProtocol(header: string | undefined): string | undefined {
  const offered = (header ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  return EXEC_PROTOCOLS.find((p) => offered.includes(p));
}

/** A binary message for one channel. Long data is split over several messages. */
export function channelFrames(channel: number, data: Buffer, maxChunk = 32 * 1024): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += maxChunk) {
    out.push(encodeFrame(OPCODE.binary, Buffer.concat([Buffer.from([channel]), data.subarray(i, i + maxChunk)])));
  }
  return out;
}

/** The metav1.Status written on the error channel (without kind/apiVersion, as upstream writes it). */
export interface ChannelStatus {
  metadata: Record<string, never>;
  status: "Success" | "Failure";
  message?: string;
  reason?: string;
  code?: number;
  details?: { causes: { reason: string; message: string }[] };
}

/** upstream's remotecommand status for a command's exit. */
export function exitStatus(cmd: string[], exitCode: number): ChannelStatus {
  if (exitCode === 0) return { metadata: {}, status: "Success" };
  return {
    metadata: {},
    status: "Failure",
    message: `command terminated with non-zero exit code: error executing command [${cmd.join(" ")}], exit code ${exitCode}`,
    reason: "NonZeroExitCode",
    details: { causes: [{ reason: "ExitCode", message: String(exitCode) }] },
  };
}

function failure(message: string, reason = "InternalError", code = 500): ChannelStatus {
  return { metadata: {}, status: "Failure", message, reason, code };
}

/** Go's strconv.ParseBool, as the apiserver decodes exec options. */
function boolParam(q: URLSearchParams, name: string): boolean {
  const v = q.get(name);
  if (v === null || v === "") return false;
  if (["1", "t", "T", "true", "TRUE", "True"].includes(v)) return true;
  if (["0", "f", "F", "false", "FALSE", "False"].includes(v)) return false;
  throw errors.badRequest(`invalid value for ${name}: ${JSON.stringify(v)}`);
}

export interface ExecOptions {
  container: string;
  command: string[];
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** Validates the request against the pod, as upstream's ExecLocation and NewOptions do. */
export function execOptions(pod: KubeObject, q: URLSearchParams): ExecOptions {
  const o: ExecOptions = {
    container: resolveContainer(pod, q.get("container") ?? ""),
    command: q.getAll("command"),
    stdin: boolParam(q, "stdin"),
    stdout: boolParam(q, "stdout"),
    stderr: boolParam(q, "stderr"),
    tty: boolParam(q, "tty"),
  };
  if (o.command.length === 0) throw errors.badRequest("you must specify at least one command for the container");
  if (!o.stdin && !o.stdout && !o.stderr) throw errors.badRequest("you must specify at least 1 of stdin, stdout, stderr");
  const status = (pod.status ?? {}) as { phase?: string };
  if (status.phase === "Succeeded" || status.phase === "Failed") {
    throw errors.badRequest(`cannot exec into a container in a completed pod; current phase is ${status.phase}`);
  }
  return o;
}

/** Throws unless the container runs according to the pod's status (the kubelet checks again). */
function checkRunning(pod: KubeObject, container: string): void {
  const status = (pod.status ?? {}) as { containerStatuses?: { name: string; state?: { running?: object } }[]; initContainerStatuses?: { name: string; state?: { running?: object } }[] };
  const st = [...(status.containerStatuses ?? []), ...(status.initContainerStatuses ?? [])].find((s) => s.name === container);
  if (!st?.state?.running) throw errors.badRequest(`container not found ("${container}")`);
}

/** What the kubelet's /exec answers. */
interface KubeletExecResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
}

/** Runs the command through the kubelet's `POST /exec`; a kubelet error becomes a thrown Error with its text. */
export function kubeletExec(address: string, port: number, pod: KubeObject, o: ExecOptions, signal: AbortSignal): Promise<KubeletExecResult> {
  const params = new URLSearchParams();
  for (const c of o.command) params.append("command", c);
  const path = `/exec/${encodeURIComponent(pod.metadata.namespace ?? "")}/${encodeURIComponent(pod.metadata.name ?? "")}/${encodeURIComponent(o.container)}?${params}`;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: address, port, path, method: "POST", signal }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("error", reject);
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        if ((res.statusCode ?? 500) >= 400) {
          reject(new Error(text.trim() || `kubelet answered ${res.statusCode}`));
          return;
        }
        try {
          const body = JSON.parse(text) as { stdout?: unknown; stderr?: unknown; exitCode?: unknown };
          if (typeof body.stdout !== "string" || typeof body.stderr !== "string" || typeof body.exitCode !== "number") throw new Error("malformed answer");
          resolve({ stdout: Buffer.from(body.stdout, "base64"), stderr: Buffer.from(body.stderr, "base64"), exitCode: body.exitCode });
        } catch (e) {
          reject(new Error(`the kubelet's exec answer could not be read: ${(e as Error).message}`));
        }
      });
    });
    req.on("error", reject);
    req.end();
  });
}

// ---- the connection --------------------------------------------------------------------------------

/**
 * A server side WebSocket connection after the 101: answers pings, tracks the client's close and
 * v5 stdin close, and closes with the closing handshake (waiting a bounded time for the client's
 * close frame before ending the socket).
 */
export class ChannelConnection {
  private readonly decoder = new FrameDecoder();
  private closeSent = false;
  private ended = false;
  private readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  /** Aborted when the client closes or the connection fails. */
  readonly gone = new AbortController();
  stdinClosed = false;

  constructor(
    private readonly socket: Duplex,
    private readonly closeTimeoutMs = 5_000,
  ) {
    this.closed = new Promise((r) => (this.resolveClosed = r));
    socket.on("data", (d: Buffer) => this.onData(d));
    socket.on("error", () => this.finish());
    socket.on("close", () => this.finish());
    socket.on("end", () => this.finish());
  }

  private onData(d: Buffer): void {
    let messages: WsMessage[];
    try {
      messages = this.decoder.feed(d);
    } catch (e) {
      const code = e instanceof WsProtocolError ? e.closeCode : 1002;
      this.sendClose(code, (e as Error).message);
      this.finish();
      return;
    }
    for (const m of messages) {
      switch (m.opcode) {
        case OPCODE.ping:
          this.write(encodeFrame(OPCODE.pong, m.data));
          break;
        case OPCODE.close:
          // Echo the code (RFC 6455 5.5.1), then the TCP connection can end.
          this.sendClose(m.data.length >= 2 ? m.data.readUInt16BE(0) : 1000);
          this.finish();
          return;
        case OPCODE.binary:
          if (m.data.length >= 2 && m.data[0] === CHANNEL.close && m.data[1] === CHANNEL.stdin) this.stdinClosed = true;
          // stdin data and resize messages have nowhere to go for a non-interactive command.
          break;
        default:
          break; // text and pong messages are ignored
      }
    }
  }

  private write(b: Buffer): void {
    if (!this.ended && !this.socket.destroyed) this.socket.write(b);
  }

  send(channel: number, data: Buffer): void {
    if (this.closeSent) return;
    for (const f of channelFrames(channel, data)) this.write(f);
  }

  sendStatus(s: ChannelStatus): void {
    this.send(CHANNEL.error, Buffer.from(JSON.stringify(s)));
  }

  private sendClose(code: number, reason = ""): void {
    if (this.closeSent) return;
    this.closeSent = true;
    this.write(encodeFrame(OPCODE.close, closePayload(code, reason.slice(0, 120))));
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.gone.abort();
    this.socket.end();
    // A client that never finishes its side is cut off.
    setTimeout(() => this.socket.destroy(), 1_000).unref();
    this.resolveClosed();
  }

  /** Sends a normal close and resolves once the client answered it (or after the timeout). */
  async close(): Promise<void> {
    this.sendClose(1000);
    if (!this.ended) {
      const t = setTimeout(() => this.finish(), this.closeTimeoutMs);
      t.unref();
      await this.closed;
      clearTimeout(t);
    }
  }
}

// ---- the handler -----------------------------------------------------------------------------------

function isWebSocketUpgrade(h: HandlerContext): boolean {
  // Node sets `upgrade` on requests handed to the server's 'upgrade' event (the socket is ours then).
  const req = h.req as http.IncomingMessage & { upgrade?: boolean };
  return (
    req.upgrade === true &&
    req.method === "GET" &&
    (req.headers.upgrade ?? "").toLowerCase() === "websocket" &&
    (req.headers.connection ?? "").toLowerCase().split(",").some((t) => t.trim() === "upgrade")
  );
}

/**
 * pods/exec: validates the request (pod, container, options), upgrades the connection to a
 * WebSocket and runs the command through the kubelet. Resolves once the connection is over.
 */
export async function serveExec(h: HandlerContext, pod: KubeObject, node: KubeObject | undefined): Promise<void> {
  const o = execOptions(pod, h.query);
  const { address, port } = kubeletEndpoint(pod, node);
  checkRunning(pod, o.container);
  if (!isWebSocketUpgrade(h)) {
    throw errors.badRequest(
      `Upgrade request required: pods/exec is served over WebSocket only (GET with Upgrade: websocket, Sec-WebSocket-Protocol: ${EXEC_PROTOCOLS.join(", ")})`,
    );
  }
  const key = h.req.headers["sec-websocket-key"];
  if (typeof key !== "string" || Buffer.from(key, "base64").length !== 16) throw errors.badRequest("unable to upgrade: missing or malformed Sec-WebSocket-Key");
  if (h.req.headers["sec-websocket-version"] !== "13") throw errors.badRequest("unable to upgrade: unsupported Sec-WebSocket-Version (want 13)");
  const protocol = negotiateProtocol(h.req.headers["sec-websocket-protocol"]);
  if (!protocol) {
    throw errors.badRequest(`unable to upgrade: none of the requested subprotocols is supported; supported: ${EXEC_PROTOCOLS.join(", ")}`);
  }

  const socket = h.req.socket;
  h.res.statusCode = 101; // for the request metrics; the response itself is written by hand
  socket.write(
    "HTTP/1.1 101 Switching Protocols\r\n" +
      "Upgrade: websocket\r\n" +
      "Connection: Upgrade\r\n" +
      `Sec-WebSocket-Accept: ${websocketAccept(key)}\r\n` +
      `Sec-WebSocket-Protocol: ${protocol}\r\n\r\n`,
  );
  const conn = new ChannelConnection(socket);
  const log = h.log.child({ pod: `${pod.metadata.namespace}/${pod.metadata.name}`, container: o.container });
  try {
    if (o.stdin || o.tty) {
      conn.sendStatus(
        failure(
          "interactive exec (stdin/tty) is not supported yet by kubelab; run a non-interactive command instead (kubectl exec POD -- COMMAND, without -i/-t)",
          "BadRequest",
          400,
        ),
      );
      return;
    }
    const signal = AbortSignal.any([h.signal, conn.gone.signal]);
    let r: KubeletExecResult;
    try {
      r = await kubeletExec(address, port, pod, o, signal);
    } catch (e) {
      if (signal.aborted) return;
      log.info({ err: e }, "exec failed");
      conn.sendStatus(failure((e as Error).message));
      return;
    }
    if (o.stdout) conn.send(CHANNEL.stdout, r.stdout);
    if (o.stderr) conn.send(CHANNEL.stderr, r.stderr);
    conn.sendStatus(exitStatus(o.command, r.exitCode));
  } finally {
    await conn.close();
  }
}
