// What every long-running component process shares: its API client from --kubeconfig, its
// /healthz, /readyz and /metrics server and the duration flags (upstream's names and formats).

import http from "node:http";
import type { Registry } from "prom-client";
import { RestClient, loadKubeconfig, type Logger } from "../client/index.ts";
import { CliError } from "./errors.ts";

/** Serves /healthz and /livez (always ok), /readyz (`ready()`, else 503 with `notReady`) and /metrics on 127.0.0.1:port. */
export function serveHealth(port: number, registry: Registry, ready: () => boolean, log: Logger, notReady: string): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz" || path === "/livez") {
      res.writeHead(200, { "Content-Type": "text/plain" }).end("ok");
    } else if (path === "/readyz") {
      const ok = ready();
      res.writeHead(ok ? 200 : 503, { "Content-Type": "text/plain" }).end(ok ? "ok" : notReady);
    } else if (path === "/metrics") {
      registry.metrics().then(
        (m) => res.writeHead(200, { "Content-Type": registry.contentType }).end(m),
        (e: Error) => res.writeHead(500).end(e.message),
      );
    } else {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("not found");
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      log.info({ port: (server.address() as { port: number }).port }, "serving /healthz, /readyz and /metrics");
      resolve(server);
    });
  });
}

/** "15s", "500ms", "1m" → milliseconds; a bad value is a usage error naming the flag. */
export function parseDuration(flag: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v.trim());
  if (!m) throw new CliError(`--${flag}: "${v}" is not a duration like 15s or 500ms`, 2);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
  return Math.round(Number(m[1]) * unit);
}

/** The REST client of --kubeconfig FILE; an unreadable file is a one-line CLI error naming it. */
export function clientFromKubeconfig(path: string): RestClient {
  try {
    return new RestClient(loadKubeconfig(path));
  } catch (e) {
    throw new CliError(`cannot read kubeconfig ${path}: ${(e as Error).message}`);
  }
}
