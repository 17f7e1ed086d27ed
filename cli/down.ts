// `kubelab down`: stops the cluster that `kubelab up` runs from a data dir.

import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { CliError } from "./errors.ts";
import { isAlive, readUpState } from "./up.ts";

export async function runDown(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      "data-dir": { type: "string", default: ".kubelab" },
      timeout: { type: "string", default: "30" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write("usage: kubelab down [--data-dir DIR] [--timeout SECONDS]\n");
    return;
  }
  const dataDir = resolve(values["data-dir"]!);
  const state = readUpState(dataDir);
  if (!state || !isAlive(state.pid)) {
    process.stdout.write(`kubelab is not running from ${dataDir}\n`);
    return;
  }
  process.kill(state.pid, "SIGTERM");
  const deadline = Date.now() + Number(values.timeout) * 1000;
  while (Date.now() < deadline) {
    if (!isAlive(state.pid)) {
      process.stdout.write(`kubelab stopped (pid ${state.pid}).\n`);
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  // The supervisor did not finish: stop what it started, by PID.
  for (const c of state.components) if (c.pid && isAlive(c.pid)) process.kill(c.pid, "SIGKILL");
  if (isAlive(state.pid)) process.kill(state.pid, "SIGKILL");
  throw new CliError(`kubelab (pid ${state.pid}) did not stop within ${values.timeout}s; killed it and its components`);
}
