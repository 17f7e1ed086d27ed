#!/usr/bin/env node
// The kubelab command: one entry point, a subcommand per component, plus up/down.

import { CliError } from "./errors.ts";

const USAGE = `usage: kubelab <command> [flags]

commands:
  up          start a local cluster (embedded store or --etcd) and write DIR/kubeconfig
  down        stop the cluster started by 'up' in --data-dir, or remove what a dead one left
              (--all-stale: every dead cluster on this host)
  chaos       run a chaos experiment against that cluster, list the built-ins, inject one fault
              (run FILE|NAME, list, inject FAULT --for D TARGET, schema)
  ctl         stop, start, kill, restart, pause or resume one process of that cluster (ACTION NAME)
  status      show each process of that cluster: zone, pid, restarts, /healthz, /readyz
  certs       write the CA, apiserver certificate, admin token and kubeconfigs (--data-dir DIR [--tls-san NAME]...
              [--server URL] [--component NAME]... [--kubelet-pool ZONE]...)
  apiserver   run the API server (--storage URL --port P --bind ADDR)
  controller-manager
              run the controllers (--kubeconfig FILE [--controllers LIST] [--leader-elect])
  scheduler   run the scheduler (--kubeconfig FILE [--leader-elect])
  dns         cluster DNS behind the kube-dns Service (--kubeconfig FILE [--service-ip IP])
  proxy       the service proxy: ClusterIP and NodePort forwarding (--kubeconfig FILE [--zone Z])
  kubelet     run a node agent on containerd (--kubeconfig FILE --runtime-endpoint unix:///SOCK)
              or simulated nodes (--kubeconfig FILE --simulate --nodes N --zone Z), or a zone's
              cloud instances (--simulate --cloud --zone Z --subnet CIDR)
  endpoint    the cluster endpoint: a TCP load balancer over apiservers, health-checked on /readyz
              (--listen HOST:PORT --backends HOST:PORT,...)
  cloud-controller
              the simulated cloud: node groups, cluster autoscaler, serverless nodes
              (--kubeconfig FILE --topology FILE [--leader-elect])
  ingress     run the ingress controller and the LoadBalancer (--kubeconfig FILE [--http-port P] [--https-port P])
  sts         the simulated cloud's STS: AssumeRoleWithWebIdentity for pods' ServiceAccount tokens, as
              EKS's IAM Roles for Service Accounts (--issuer URL --roles FILE [--discovery-url URL])

Run 'kubelab <command> --help' for a command's flags.`;

// Loaded on demand: a component process loads only its own code (the apiserver never loads the
// scheduler, a kubelet never loads koa or etcd3), which keeps each process's memory and start time down.
const COMMANDS: Record<string, (argv: string[]) => Promise<void>> = {
  up: (argv) => import("./up.ts").then((m) => m.runUp(argv)),
  down: (argv) => import("./down.ts").then((m) => m.runDown(argv)),
  chaos: (argv) => import("./chaos.ts").then((m) => m.runChaos(argv)),
  ctl: (argv) => import("./ctl.ts").then((m) => m.runCtl(argv)),
  status: (argv) => import("./status.ts").then((m) => m.runStatus(argv)),
  certs: (argv) => import("./certs.ts").then((m) => m.runCerts(argv)),
  apiserver: (argv) => import("./apiserver.ts").then((m) => m.runApiserver(argv)),
  "controller-manager": (argv) => import("./controller-manager.ts").then((m) => m.runControllerManager(argv)),
  scheduler: (argv) => import("./scheduler.ts").then((m) => m.runScheduler(argv)),
  kubelet: (argv) => import("./kubelet.ts").then((m) => m.runKubelet(argv)),
  endpoint: (argv) => import("./endpoint.ts").then((m) => m.runEndpoint(argv)),
  "cloud-controller": (argv) => import("./cloud-controller.ts").then((m) => m.runCloudController(argv)),
  ingress: (argv) => import("./ingress.ts").then((m) => m.runIngress(argv)),
  dns: (argv) => import("./dns.ts").then((m) => m.runDns(argv)),
  proxy: (argv) => import("./proxy.ts").then((m) => m.runProxy(argv)),
  sts: (argv) => import("./sts.ts").then((m) => m.runSts(argv)),
};

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === "--help" || cmd === "-h" || cmd === "help") {
    process.stdout.write(USAGE + "\n");
    return;
  }
  const run = COMMANDS[cmd];
  if (!run) throw new CliError(`unknown command "${cmd}"; run 'kubelab --help' for the list`, 2);
  await run(rest);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  const err = e as { name?: string; message?: string; exitCode?: number; code?: string };
  if (err.name === "CliError") {
    process.stderr.write(`kubelab: ${err.message}\n`);
    process.exit(err.exitCode ?? 1);
  }
  if (err.code && String(err.code).startsWith("ERR_PARSE_ARGS")) {
    process.stderr.write(`kubelab: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`kubelab: ${err.message ?? String(e)}\n`);
  process.exit(1);
});
