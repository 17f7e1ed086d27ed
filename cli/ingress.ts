// `kubelab ingress`: the ingress controller (HTTP and HTTPS reverse proxy for the Ingresses of our
// class) and the simulated cloud's LoadBalancer for Services of type LoadBalancer, in one process.

import http from "node:http";
import https from "node:https";
import type net from "node:net";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { Registry, collectDefaultMetrics } from "prom-client";
import { newEventRecorder, newLogger, newSharedInformerFactory, type Context } from "../client/index.ts";
import { IngressController, IngressMetrics, createProxyHandler, createUpgradeHandler, newUpstreamAgent, selectContext, selfSignedCertificate } from "../proxy/ingress/index.ts";
import { LoadBalancerController } from "../proxy/loadbalancer/index.ts";
import { clientFromKubeconfig, parseDuration, serveHealth } from "./component.ts";
import { CliError } from "./errors.ts";

const HELP = `usage: kubelab ingress --kubeconfig FILE [flags]

Serves the Ingresses of its IngressClass (created at start, marked default) on HTTP and HTTPS, and
gives Services of type LoadBalancer an address on --bind.

  --kubeconfig FILE     how to reach the apiserver
  --bind ADDR           listen address of the proxy and the load balancers (default 127.0.0.1)
  --http-port P         HTTP port (default 8080)
  --https-port P        HTTPS port (default 8443)
  --healthz-port P      /healthz, /readyz and /metrics on 127.0.0.1:P (default 10254; 0 picks one)
  --ingress-class NAME  the IngressClass to create and serve (default kubelab)
  --proxy-connect-timeout D   an upstream that has not accepted the connection by then is given
                        up and the next one tried (default 5s, ingress-nginx's)
  --proxy-try-timeout D a GET/HEAD (bodyless, idempotent) request with no response headers by then
                        is retried on the next upstream, at most 3 tries (default 0: none, as
                        ingress-nginx; up --fast sets 1s)
  --proxy-fail-timeout D an upstream that refused, timed out or reset is skipped for this long
                        unless every one is (nginx's max_fails=1 fail_timeout; default 0: never,
                        as ingress-nginx; up --fast sets 10s)`;

function portFlag(flag: string, v: string, min: number): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > 65535) throw new CliError(`--${flag} must be a port number${min > 0 ? "" : " (0 picks one)"}, got "${v}"`, 2);
  return n;
}

function listen(server: net.Server, host: string, port: number, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) => {
      const why = e.code === "EADDRINUSE" ? "address already in use" : e.code === "EADDRNOTAVAIL" ? "address not available on this host" : (e.code ?? e.message);
      reject(new CliError(`cannot listen for ${what} on ${host}:${port}: ${why}`));
    });
    server.listen({ host, port }, () => resolve((server.address() as net.AddressInfo).port));
  });
}

export async function runIngress(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: "string" },
      bind: { type: "string", default: "127.0.0.1" },
      "http-port": { type: "string", default: "8080" },
      "https-port": { type: "string", default: "8443" },
      "healthz-port": { type: "string", default: "10254" },
      "ingress-class": { type: "string", default: "kubelab" },
      "proxy-connect-timeout": { type: "string", default: "5s" },
      "proxy-try-timeout": { type: "string", default: "0s" },
      "proxy-fail-timeout": { type: "string", default: "0s" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(HELP + "\n");
    return;
  }
  if (!values.kubeconfig) throw new CliError("--kubeconfig is required", 2);
  const httpPort = portFlag("http-port", values["http-port"]!, 0);
  const httpsPort = portFlag("https-port", values["https-port"]!, 0);
  const healthPort = portFlag("healthz-port", values["healthz-port"]!, 0);
  const bind = values.bind!;
  const className = values["ingress-class"]!;
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(className) || className.length > 253) throw new CliError(`--ingress-class "${className}" is not a valid IngressClass name`, 2);

  const durationFlag = (f: string, v: string) => {
    if (/^0+(ms|s|m)?$/.test(v.trim())) return 0;
    return parseDuration(f, v);
  };
  const connectTimeoutMs = durationFlag("proxy-connect-timeout", values["proxy-connect-timeout"]!);
  if (connectTimeoutMs <= 0) throw new CliError(`--proxy-connect-timeout must be more than 0, got "${values["proxy-connect-timeout"]}"`, 2);
  const tryTimeoutMs = durationFlag("proxy-try-timeout", values["proxy-try-timeout"]!);
  const failTimeoutMs = durationFlag("proxy-fail-timeout", values["proxy-fail-timeout"]!);
  const log = newLogger("ingress");
  // The access log writes asynchronously (buffered), so a request never waits on the log file.
  const accessLog = newLogger("ingress", { destination: pino.destination({ dest: 2, sync: false }) as unknown as NodeJS.WritableStream });
  const client = clientFromKubeconfig(values.kubeconfig);
  const statusIP = bind === "0.0.0.0" || bind === "::" ? "127.0.0.1" : bind;

  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const metrics = new IngressMetrics(registry);
  const factory = newSharedInformerFactory(client);
  const recorder = newEventRecorder(client, { component: "kubelab-ingress-controller", log });
  const controller = new IngressController({ client, factory, recorder, log, className, statusIP, defaultCertificate: selfSignedCertificate() });
  const lb = new LoadBalancerController({ client, factory, recorder, log, bind });

  const agent = newUpstreamAgent();
  const httpServer = http.createServer({ keepAliveTimeout: 75_000 });
  const httpsServer = https.createServer({
    ...selfSignedCertificate(),
    SNICallback: (name, cb) => cb(null, selectContext(controller.certificates, name)),
    keepAliveTimeout: 75_000,
  });
  const boundHTTP = await listen(httpServer, bind, httpPort, "HTTP");
  const boundHTTPS = await listen(httpsServer, bind, httpsPort, "HTTPS").catch((e: unknown) => {
    httpServer.close();
    throw e;
  });
  for (const [server, scheme, port] of [[httpServer, "http", boundHTTP], [httpsServer, "https", boundHTTPS]] as const) {
    const o = { table: () => controller.table, scheme, port, agent, accessLog, observer: metrics, connectTimeoutMs, tryTimeoutMs, failTimeoutMs };
    server.on("request", createProxyHandler(o));
    server.on("upgrade", createUpgradeHandler(o));
    server.on("clientError", (_e, socket) => socket.destroy());
  }
  log.info({ http: `${bind}:${boundHTTP}`, https: `${bind}:${boundHTTPS}`, ingressClass: className }, "ingress controller listening");
  let health: http.Server;
  try {
    health = await serveHealth(healthPort, registry, () => controller.ready(), log, "routing table not built yet");
  } catch (e) {
    httpServer.close();
    httpsServer.close();
    throw new CliError(`cannot serve /healthz on 127.0.0.1:${healthPort}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }

  const stop = new AbortController();
  const ctx: Context = { signal: stop.signal, log };
  process.on("SIGTERM", () => stop.abort());
  process.on("SIGINT", () => stop.abort());
  factory.start(ctx);
  void controller.ensureIngressClass(ctx);
  await Promise.all([controller.run(ctx), lb.run(ctx)]);
  httpServer.close();
  httpsServer.close();
  httpServer.closeAllConnections();
  httpsServer.closeAllConnections();
  agent.destroy();
  health.close();
  await recorder.flush?.();
  accessLog.flush();
  process.exit(0);
}
