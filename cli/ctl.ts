// `kubelab ctl ACTION NAME`: acts on one process of a running `kubelab up` through its control
// socket — stop (and keep it down), start, kill (SIGKILL; restarted as after a crash), restart,
// pause (SIGSTOP) and resume (SIGCONT). `kubelab status` lists the names.

import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { ACTIONS, controlRequest } from "./control.ts";
import { CliError } from "./errors.ts";
import type { ComponentAction, ComponentState } from "./supervisor.ts";

const HELP = `usage: kubelab ctl [--data-dir .kubelab] ACTION NAME

  ACTION   stop     SIGTERM it and keep it down (not restarted) until 'start'
           start    start a stopped component now
           kill     SIGKILL it; the supervisor restarts it as after a crash
           restart  SIGTERM it; restarted at once
           pause    SIGSTOP it (it holds its sockets and leases but does nothing)
           resume   SIGCONT a paused component
  NAME     a component as 'kubelab status' names it (apiserver, scheduler-1, etcd-local-1a, kubelet-local-1b, ...)`;

export async function runCtl(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { "data-dir": { type: "string", default: ".kubelab" }, help: { type: "boolean", short: "h" } },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) {
    process.stdout.write(HELP + "\n");
    return;
  }
  const [action, name, ...rest] = positionals;
  if (!action || !name || rest.length) throw new CliError("usage: kubelab ctl ACTION NAME (see --help)", 2);
  if (!ACTIONS.includes(action as ComponentAction)) throw new CliError(`unknown action "${action}": one of ${ACTIONS.join(", ")}`, 2);
  const dataDir = resolve(values["data-dir"]!);
  let c: ComponentState;
  try {
    c = (await controlRequest<{ component: ComponentState }>(dataDir, "POST", `/v1/components/${encodeURIComponent(name)}/${action}`)).component;
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  const what = c.held ? "held down" : c.paused ? "paused" : c.pid ? `pid ${c.pid}` : "not running";
  process.stdout.write(`${c.name}: ${action} done (${what}, ${c.restarts} restarts)\n`);
}
