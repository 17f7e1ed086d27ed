// The per-node chaos control of a simulated pool (kubelet/nodecontrol.ts) on a unix socket in the
// pool's root dir (ROOT/nodes.sock, reachable only with access to the data dir, as the control
// socket is), and the side of `kubelab up`'s control socket that finds a node's pool and forwards:
//
//   GET  /v1/nodes                          the pool's nodes: name, running, stopped, clockOffsetMs
//   POST /v1/nodes/<name>/stop              power the node off (kubelet and containers down) until start
//   POST /v1/nodes/<name>/start             boot it again
//   POST /v1/nodes/<name>/clock?offsetMs=N  its wall clock N ms ahead (negative: behind); 0 puts it right

import { existsSync, mkdirSync, readdirSync } from "node:fs";
import * as http from "node:http";
import { join } from "node:path";
import type { Logger } from "../client/index.ts";
import { NodeControlError, type NodeControl, type NodeControlState } from "../kubelet/nodecontrol.ts";
import { listenUnix, sendJSON as send, unixRequest } from "./unixhttp.ts";

export const NODE_ACTIONS = ["stop", "start", "clock"] as const;
export type NodeAction = (typeof NODE_ACTIONS)[number];

/** A node of a pool as `up`'s control socket lists it: which pool process (its root dir's name) runs it. */
export interface PoolNodeState extends NodeControlState {
  pool: string;
}

export function nodeControlSocketPath(rootDir: string): string {
  return join(rootDir, "nodes.sock");
}

/** Answers one request of the node-control API with `control` (undefined until the pool has started: 503). */
export async function handleNodeControl(control: NodeControl | undefined, method: string, url: string, query: string): Promise<{ code: number; body: unknown }> {
  if (method === "GET" && url === "/v1/nodes") return control ? { code: 200, body: { nodes: control.list() } } : { code: 503, body: { error: "the pool has not started yet" } };
  const m = /^\/v1\/nodes\/([^/]+)\/([a-z]+)$/.exec(url);
  if (!m) return { code: 404, body: { error: `no such endpoint: ${method} ${url}` } };
  if (method !== "POST") return { code: 405, body: { error: `${url} takes POST` } };
  const name = decodeURIComponent(m[1]!);
  const action = m[2] as NodeAction;
  if (!NODE_ACTIONS.includes(action)) return { code: 400, body: { error: `unknown node action "${action}" (one of ${NODE_ACTIONS.join(", ")})` } };
  if (!control) return { code: 503, body: { error: "the pool has not started yet" } };
  try {
    if (action === "clock") {
      const raw = new URLSearchParams(query).get("offsetMs");
      const offsetMs = Number(raw);
      if (raw === null || raw.trim() === "" || !Number.isFinite(offsetMs)) return { code: 400, body: { error: "clock needs offsetMs=N (milliseconds, negative for behind)" } };
      return { code: 200, body: { node: control.skew(name, offsetMs) } };
    }
    return { code: 200, body: { node: await (action === "stop" ? control.stop(name) : control.start(name)) } };
  } catch (e) {
    return { code: e instanceof NodeControlError ? e.code : 500, body: { error: (e as Error).message } };
  }
}

/** Serves the pool's node control on ROOT/nodes.sock until the server is closed; `control()` is the pool's, once it has one. */
export async function serveNodeControl(rootDir: string, control: () => NodeControl | undefined, log: Logger): Promise<http.Server | undefined> {
  const path = nodeControlSocketPath(rootDir);
  // A unix socket's path holds at most 107 bytes: a data dir that deep gets no node chaos, and says so.
  if (Buffer.byteLength(path) > 107) {
    log.warn({ socket: path }, "the node control socket's path is too long for a unix socket; node stop and clock skew are unavailable");
    return undefined;
  }
  mkdirSync(rootDir, { recursive: true });
  const server = http.createServer((req, res) => {
    const [url, query] = (req.url ?? "/").split("?") as [string, string | undefined];
    handleNodeControl(control(), req.method ?? "GET", url, query ?? "").then(
      (r) => send(res, r.code, r.body),
      (e: Error) => send(res, 500, { error: e.message }),
    );
  });
  await listenUnix(server, path);
  log.info({ socket: path }, "node control socket listening");
  return server;
}

/** The node-control sockets of every pool of an `up` (DATA/kubelet/<pool>/nodes.sock). */
export function poolSockets(dataDir: string): { pool: string; socket: string }[] {
  const dir = join(dataDir, "kubelet");
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries
    .sort()
    .map((pool) => ({ pool, socket: nodeControlSocketPath(join(dir, pool)) }))
    .filter((p) => existsSync(p.socket));
}

/** Every simulated node of the `up`, with its pool; a pool that does not answer (paused, restarting) is named in `unreachable`. */
export async function listPoolNodes(dataDir: string, timeoutMs = 3000): Promise<{ nodes: PoolNodeState[]; unreachable: string[] }> {
  const nodes: PoolNodeState[] = [];
  const unreachable: string[] = [];
  await Promise.all(
    poolSockets(dataDir).map(async ({ pool, socket }) => {
      try {
        const r = await unixRequest<{ nodes: NodeControlState[] }>(socket, "GET", "/v1/nodes", timeoutMs, `pool ${pool} is not running`);
        nodes.push(...r.nodes.map((n) => ({ ...n, pool })));
      } catch (e) {
        unreachable.push(`${pool}: ${(e as Error).message}`);
      }
    }),
  );
  nodes.sort((a, b) => a.name.localeCompare(b.name));
  return { nodes, unreachable: unreachable.sort() };
}

/** Acts on one simulated node of the `up` through its pool's socket; the error names the node when no pool has it. */
export async function poolNodeAction(dataDir: string, name: string, action: NodeAction, query = ""): Promise<PoolNodeState> {
  const { nodes, unreachable } = await listPoolNodes(dataDir);
  const n = nodes.find((x) => x.name === name);
  if (!n) {
    const why = unreachable.length ? ` (pools not answering: ${unreachable.join("; ")})` : "";
    throw Object.assign(new Error(`no simulated node ${name} in any pool of this cluster${why}`), { code: 404 });
  }
  const socket = nodeControlSocketPath(join(dataDir, "kubelet", n.pool));
  const r = await unixRequest<{ node: NodeControlState }>(socket, "POST", `/v1/nodes/${encodeURIComponent(name)}/${action}${query ? `?${query}` : ""}`, 15_000, `pool ${n.pool} is not running`);
  return { ...r.node, pool: n.pool };
}
