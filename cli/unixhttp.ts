// JSON over HTTP on a unix socket: the control socket of `kubelab up` and the node-control sockets of
// its pools are served and reached this way.

import { existsSync, rmSync } from "node:fs";
import * as http from "node:http";

export function sendJSON(res: http.ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { "Content-Type": "application/json" }).end(JSON.stringify(body) + "\n");
}

/** Listens on the unix socket `path`; a stale socket file (of a process that died) is replaced. */
export async function listenUnix(server: http.Server, path: string): Promise<void> {
  if (existsSync(path)) rmSync(path, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** One JSON request over a unix socket; rejects with the server's `error` text, `notRunning` when nothing listens, or why it failed. */
export function unixRequest<T = unknown>(socketPath: string, method: "GET" | "POST", path: string, timeoutMs: number, notRunning: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => {
        let parsed: { error?: string } & T;
        try {
          parsed = JSON.parse(body) as { error?: string } & T;
        } catch {
          reject(new Error(`bad answer from ${socketPath}: ${body.slice(0, 200)}`));
          return;
        }
        if (res.statusCode === 200) resolve(parsed);
        else reject(Object.assign(new Error(parsed.error ?? `HTTP ${res.statusCode}`), { code: res.statusCode }));
      });
    });
    req.on("timeout", () => req.destroy(new Error(`no answer from ${socketPath} within ${timeoutMs} ms`)));
    req.on("error", (e) => reject((e as NodeJS.ErrnoException).code === "ENOENT" || (e as NodeJS.ErrnoException).code === "ECONNREFUSED" ? new Error(notRunning) : e));
    req.end();
  });
}
