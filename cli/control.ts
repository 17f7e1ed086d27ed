// The control socket of `kubelab up` (DATA/control.sock): an HTTP API on a unix socket through
// which other commands act on the running cluster's processes — `kubelab ctl` by hand, `kubelab
// status` for the live state, and the chaos experiments. Only processes of this machine (with
// access to the data dir) can reach it.
//
//   GET  /v1/components                    every component: name, zone, pid, restarts, held, paused
//   POST /v1/components/<name>/<action>    stop (and hold down) | start | kill | restart | pause | resume
//   GET  /v1/links                         with up --chaos: every component's link to the apiserver or etcd
//   POST /v1/links/<component>/<mode>      ok (heal) | cut | reset | delay?latencyMs=N | throttle?bytesPerSecond=N
//   GET  /v1/nodes                         every simulated node, with its pool: running, stopped, clockOffsetMs
//   POST /v1/nodes/<node>/<action>         stop | start | clock?offsetMs=N, forwarded to the node's pool (cli/nodecontrol.ts)

import * as http from "node:http";
import { join } from "node:path";
import type { LinkMode, Links } from "../chaos/linkproxy.ts";
import type { Logger } from "../client/index.ts";
import { listenUnix, sendJSON as send, unixRequest } from "./unixhttp.ts";
import { NODE_ACTIONS, listPoolNodes, poolNodeAction, type NodeAction } from "./nodecontrol.ts";
import type { ComponentAction, ComponentState, Supervisor } from "./supervisor.ts";

export const ACTIONS: readonly ComponentAction[] = ["stop", "start", "kill", "restart", "pause", "resume"];

export function controlSocketPath(dataDir: string): string {
  return join(dataDir, "control.sock");
}

/** Serves the control API until the returned server is closed. A stale socket file (a dead `up`) is replaced. */
export async function serveControl(dataDir: string, sup: Supervisor, log: Logger, links?: Links): Promise<http.Server> {
  const path = controlSocketPath(dataDir);
  const server = http.createServer((req, res) => {
    const [url, query] = (req.url ?? "/").split("?") as [string, string | undefined];
    if (req.method === "GET" && url === "/v1/components") return send(res, 200, { components: sup.processes() });
    if (url === "/v1/links" || url.startsWith("/v1/links/")) {
      if (!links) return send(res, 404, { error: "this cluster has no fault proxy: start it with kubelab up --chaos" });
      if (req.method === "GET" && url === "/v1/links") return send(res, 200, { links: links.list() });
      const lm = /^\/v1\/links\/([^/]+)\/([a-z]+)$/.exec(url);
      if (!lm || req.method !== "POST") return send(res, 404, { error: `no such endpoint: ${req.method} ${url}` });
      const q = new URLSearchParams(query ?? "");
      let mode: LinkMode;
      const num = (k: string) => Number(q.get(k));
      switch (lm[2]) {
        case "ok":
        case "cut":
        case "reset":
          mode = { mode: lm[2] };
          break;
        case "delay":
          if (!(num("latencyMs") > 0)) return send(res, 400, { error: "delay needs latencyMs > 0" });
          mode = { mode: "delay", latencyMs: num("latencyMs") };
          break;
        case "throttle":
          if (!(num("bytesPerSecond") > 0)) return send(res, 400, { error: "throttle needs bytesPerSecond > 0" });
          mode = { mode: "throttle", bytesPerSecond: num("bytesPerSecond") };
          break;
        default:
          return send(res, 400, { error: `unknown link mode "${lm[2]}" (ok, cut, reset, delay, throttle)` });
      }
      try {
        return send(res, 200, { links: links.set(decodeURIComponent(lm[1]!), mode) });
      } catch (e) {
        return send(res, 404, { error: (e as Error).message });
      }
    }
    if (url === "/v1/nodes" || url.startsWith("/v1/nodes/")) {
      const nm = /^\/v1\/nodes\/([^/]+)\/([a-z]+)$/.exec(url);
      const fail = (e: Error & { code?: number }) => send(res, typeof e.code === "number" ? e.code : 502, { error: e.message });
      if (req.method === "GET" && url === "/v1/nodes") return void listPoolNodes(dataDir).then((r) => send(res, 200, r), fail);
      if (!nm) return send(res, 404, { error: `no such endpoint: ${req.method} ${url}` });
      if (req.method !== "POST") return send(res, 405, { error: `${url} takes POST` });
      const action = nm[2] as NodeAction;
      if (!NODE_ACTIONS.includes(action)) return send(res, 400, { error: `unknown node action "${action}" (one of ${NODE_ACTIONS.join(", ")})` });
      return void poolNodeAction(dataDir, decodeURIComponent(nm[1]!), action, query ?? "").then((node) => send(res, 200, { node }), fail);
    }
    const m = /^\/v1\/components\/([^/]+)\/([a-z]+)$/.exec(url);
    if (!m) return send(res, 404, { error: `no such endpoint: ${req.method} ${url}` });
    if (req.method !== "POST") return send(res, 405, { error: `${url} takes POST` });
    const [, name, action] = m as unknown as [string, string, ComponentAction];
    if (!ACTIONS.includes(action)) return send(res, 400, { error: `unknown action "${action}" (one of ${ACTIONS.join(", ")})` });
    try {
      return send(res, 200, { component: sup.act(decodeURIComponent(name), action) });
    } catch (e) {
      const msg = (e as Error).message;
      return send(res, /^no component/.test(msg) ? 404 : 409, { error: msg });
    }
  });
  await listenUnix(server, path);
  log.info({ socket: path }, "control socket listening");
  return server;
}

/** One request to a running `up`'s control socket; rejects with the server's error text, or why it could not be reached. */
export function controlRequest<T = unknown>(dataDir: string, method: "GET" | "POST", path: string, timeoutMs = 5000): Promise<T> {
  return unixRequest<T>(controlSocketPath(dataDir), method, path, timeoutMs, `kubelab is not running from ${dataDir} (no control socket)`);
}

export async function listComponents(dataDir: string): Promise<ComponentState[]> {
  return (await controlRequest<{ components: ComponentState[] }>(dataDir, "GET", "/v1/components")).components;
}
