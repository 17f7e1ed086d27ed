#!/usr/bin/env node
// The kubelab command: one entry point, a subcommand per component, plus up/down.

import { runApiserver } from "./apiserver.ts";
import { runUp } from "./up.ts";
import { runDown } from "./down.ts";
import { runControllerManager } from "./controller-manager.ts";
import { runScheduler } from "./scheduler.ts";
import { runKubelet } from "./kubelet.ts";
import { CliError } from "./errors.ts";

const USAGE = `usage: kubelab <command> [flags]

commands:
  up          start a local cluster (embedded store or --etcd) and write DIR/kubeconfig
  down        stop the cluster started by 'up' in --data-dir
  apiserver   run the API server (--storage URL --port P --bind ADDR)
  controller-manager
              run the controllers (--kubeconfig FILE [--controllers LIST] [--leader-elect])
  scheduler   run the scheduler (--kubeconfig FILE [--leader-elect])
  kubelet     run a node agent on containerd (--kubeconfig FILE --runtime-endpoint unix:///SOCK)
              or simulated nodes (--kubeconfig FILE --simulate --nodes N --zone Z)

Run 'kubelab <command> --help' for a command's flags.`;

const COMMANDS: Record<string, (argv: string[]) => Promise<void>> = {
  up: runUp,
  down: runDown,
  apiserver: runApiserver,
  "controller-manager": runControllerManager,
  scheduler: runScheduler,
  kubelet: runKubelet,
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
