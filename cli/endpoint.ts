// `kubelab endpoint`: the cluster endpoint in front of several apiservers (proxy/endpoint/lb.ts), as
// the NLB in front of EKS's control plane. `kubelab up --apiservers N` runs one on --port and points
// the kubeconfig at it.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Registry, collectDefaultMetrics } from "prom-client";
import { newLogger, type Context } from "../client/index.ts";
import { ClusterEndpoint, parseBackends, type Backend } from "../proxy/endpoint/lb.ts";
import { parseDuration, serveHealth } from "./component.ts";
import { CliError } from "./errors.ts";

const HELP = `usage: kubelab endpoint --listen HOST:PORT --backends HOST:PORT[,HOST:PORT...] [flags]

  --listen HOST:PORT        where clients connect (e.g. 127.0.0.1:6443)
  --backends LIST           the apiservers, host:port comma-separated; TCP (and TLS) passes through
  --health-ca FILE          CA that signed the apiservers' certificates, for the health checks
                            (without it the checks do not verify the certificate)
  --health-path PATH        checked on each backend over HTTPS (default /readyz)
  --health-interval D       between checks (default 1s); 2 failures make a backend unhealthy, 2
                            passes healthy again; with none healthy every backend is tried
  --port P                  /healthz, /readyz (ready = a healthy backend) and /metrics on
                            127.0.0.1:P (default 10270; 0 picks one)`;

export async function runEndpoint(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      listen: { type: "string" },
      backends: { type: "string" },
      "health-ca": { type: "string" },
      "health-path": { type: "string", default: "/readyz" },
      "health-interval": { type: "string", default: "1s" },
      port: { type: "string", default: "10270" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(HELP + "\n");
    return;
  }
  if (!values.listen) throw new CliError("--listen is required (e.g. --listen 127.0.0.1:6443)", 2);
  if (!values.backends) throw new CliError("--backends is required (e.g. --backends 127.0.0.1:6444,127.0.0.1:6445)", 2);
  let listen: Backend;
  let backends: Backend[];
  try {
    [listen] = parseBackends(values.listen) as [Backend];
  } catch (e) {
    throw new CliError(`--listen: ${(e as Error).message}`, 2);
  }
  try {
    backends = parseBackends(values.backends);
  } catch (e) {
    throw new CliError(`--backends: ${(e as Error).message}`, 2);
  }
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port!) || port > 65535) throw new CliError(`--port must be a port number, got "${values.port}"`, 2);
  if (!values["health-path"]!.startsWith("/")) throw new CliError(`--health-path must start with /, got "${values["health-path"]}"`, 2);
  const healthIntervalMs = parseDuration("health-interval", values["health-interval"]!);
  let healthCA: string | undefined;
  if (values["health-ca"]) {
    try {
      healthCA = readFileSync(values["health-ca"], "utf8");
    } catch (e) {
      throw new CliError(`--health-ca: cannot read ${values["health-ca"]}: ${(e as Error).message}`, 2);
    }
  }

  const log = newLogger("endpoint");
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const lb = new ClusterEndpoint({ listenHost: listen.host, listenPort: listen.port, backends, healthCA, healthPath: values["health-path"], healthIntervalMs, log, registry });
  const server = await serveHealth(port, registry, () => lb.healthyCount() > 0, log, "no healthy backend");
  const stop = new AbortController();
  const ctx: Context = { signal: stop.signal, log };
  process.on("SIGTERM", () => stop.abort());
  process.on("SIGINT", () => stop.abort());
  try {
    await lb.run(ctx);
  } catch (e) {
    throw new CliError(`cannot listen on ${values.listen}: ${(e as Error).message}`);
  } finally {
    server.close();
  }
  process.exit(0);
}
