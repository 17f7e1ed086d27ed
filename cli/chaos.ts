// `kubelab chaos`: experiments against a running `kubelab up` (chaos/). `run FILE|NAME` runs one
// (a file, or a built-in of deploy/experiments by name) and writes its report; `list` shows the
// built-ins; `inject FAULT` applies a single fault by hand for a while and reverts it; `schema`
// prints the experiment's JSON Schema.

import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Cluster } from "../chaos/cluster.ts";
import { EXPERIMENT_SCHEMA, FAULT_KINDS, LASTING, loadExperimentFile, parseDurationMs, parseSignedDurationMs } from "../chaos/experiment.ts";
import { newFault } from "../chaos/faults.ts";
import { runExperiment } from "../chaos/runner.ts";
import type { FaultKind, FaultTarget } from "../chaos/types.ts";
import { newLogger } from "../client/index.ts";
import { CliError } from "./errors.ts";
import { packageRoot } from "./up.ts";

const HELP = `usage: kubelab chaos <command> [--data-dir .kubelab] ...

  run FILE|NAME [--out DIR] [--keep]   run an experiment (a file, or a built-in by name) against the
                                       cluster of --data-dir; the report (report.json, report.md,
                                       timeline.svg) goes to DATA/chaos/<name>-<time>/ or --out;
                                       exit 0 when every check passed, 1 otherwise
  list                                 the built-in experiments (deploy/experiments)
  inject FAULT --for D TARGET          one fault by hand, reverted after D (Ctrl-C reverts it too):
                                       FAULT kill|restart|pause|stop|zone-outage|lease-expire,
                                       link-cut|link-reset|link-delay --latency D|
                                       link-throttle --bytes-per-second N (with up --chaos),
                                       fill-node --node NAME, node-stop --node NAME,
                                       clock-skew --node NAME --offset=-10m (a simulated node),
                                       TARGET --component NAME | --leader-of LEASE | --etcd-leader
                                       | --zone Z | --lease LEASE | --node NAME
  schema                               print the experiment JSON Schema`;

export function experimentsDir(): string {
  return join(packageRoot(), "deploy", "experiments");
}

/** A path, or the name of a built-in experiment. */
function experimentPath(arg: string): string {
  if (existsSync(arg)) return arg;
  const builtin = join(experimentsDir(), `${arg}.yaml`);
  if (existsSync(builtin)) return builtin;
  throw new CliError(`no experiment file ${arg}, and no built-in named so (kubelab chaos list)`, 2);
}

export async function runChaos(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      "data-dir": { type: "string", default: ".kubelab" },
      out: { type: "string" },
      keep: { type: "boolean", default: false },
      for: { type: "string" },
      component: { type: "string" },
      "leader-of": { type: "string" },
      "etcd-leader": { type: "boolean" },
      zone: { type: "string" },
      lease: { type: "string" },
      node: { type: "string" },
      latency: { type: "string" },
      "bytes-per-second": { type: "string" },
      offset: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: true,
  });
  const [cmd, ...rest] = positionals;
  if (values.help || !cmd) {
    process.stdout.write(HELP + "\n");
    return;
  }
  const dataDir = resolve(values["data-dir"]!);
  if (cmd === "schema") {
    process.stdout.write(JSON.stringify(EXPERIMENT_SCHEMA, null, 2) + "\n");
    return;
  }
  if (cmd === "list") {
    const dir = experimentsDir();
    for (const f of readdirSync(dir).filter((x) => x.endsWith(".yaml")).sort()) {
      const ex = loadExperimentFile(join(dir, f));
      // The file's first comment line is its one-line summary; else the description's first sentence.
      const head = /^#\s*(.+)$/m.exec(readFileSync(join(dir, f), "utf8").split("\n")[0] ?? "")?.[1];
      process.stdout.write(`${ex.name.padEnd(32)} ${head ?? ex.description.split(/(?<=\.)\s/)[0]}\n`);
    }
    return;
  }
  if (cmd === "run") {
    if (rest.length !== 1) throw new CliError("usage: kubelab chaos run FILE|NAME", 2);
    let ex;
    try {
      ex = loadExperimentFile(experimentPath(rest[0]!));
    } catch (e) {
      if ((e as Error).name === "CliError") throw e;
      throw new CliError((e as Error).message, 2);
    }
    const stop = new AbortController();
    let signals = 0;
    const onSignal = () => {
      if (++signals === 1) process.stderr.write("\nstopping: reverting the faults and writing the report (Ctrl-C again to leave now)\n");
      else process.exit(130);
      stop.abort();
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    const tty = process.stdout.isTTY;
    try {
      new Cluster(dataDir); // a one-line error when nothing runs there
    } catch (e) {
      throw new CliError((e as Error).message);
    }
    process.stdout.write(`experiment ${ex.name} against ${dataDir}\n`);
    const res = await runExperiment({
      dataDir,
      experiment: ex,
      ...(values.out ? { outDir: resolve(values.out) } : {}),
      keep: values.keep,
      signal: stop.signal,
      log: newLogger("chaos"),
      onProgress: (line) => {
        if (tty) process.stdout.write(`\r\x1b[K${line}`);
      },
    });
    if (tty) process.stdout.write("\r\x1b[K");
    for (const l of res.summary) process.stdout.write(l + "\n");
    process.stdout.write(`report: ${res.files.markdown} (and report.json, timeline.svg)\n`);
    process.exit(res.figures.passed ? 0 : 1);
  }
  if (cmd === "inject") {
    const kind = rest[0] as FaultKind | undefined;
    if (!kind || !FAULT_KINDS.includes(kind) || rest.length !== 1) throw new CliError(`usage: kubelab chaos inject ${FAULT_KINDS.join("|")} --for D TARGET`, 2);
    const target: FaultTarget = {};
    if (values.component) target.component = values.component;
    if (values["leader-of"]) target.leaderOf = values["leader-of"];
    if (values["etcd-leader"]) target.etcdLeader = true;
    if (values.zone) target.zone = values.zone;
    if (values.lease) target.lease = values.lease;
    if (values.node) target.node = values.node;
    if (Object.keys(target).length !== 1) throw new CliError("name exactly one target: --component NAME, --leader-of LEASE, --etcd-leader, --zone Z, --lease LEASE or --node NAME", 2);
    const lasting = LASTING.includes(kind);
    if (lasting && !values.for) throw new CliError(`${kind} needs --for D (e.g. --for 30s)`, 2);
    if (!lasting && values.for) throw new CliError(`${kind} is instant; --for does not apply`, 2);
    let forMs = 0;
    try {
      forMs = values.for ? parseDurationMs(values.for) : 0;
    } catch (e) {
      throw new CliError(`--for: ${(e as Error).message}`, 2);
    }
    let cluster: Cluster;
    try {
      cluster = new Cluster(dataDir);
    } catch (e) {
      throw new CliError((e as Error).message);
    }
    let latencyMs: number | undefined;
    if (kind === "link-delay") {
      if (!values.latency) throw new CliError("link-delay needs --latency D (e.g. --latency 200ms)", 2);
      try {
        latencyMs = parseDurationMs(values.latency);
      } catch (e) {
        throw new CliError(`--latency: ${(e as Error).message}`, 2);
      }
    }
    let offsetMs: number | undefined;
    if (kind === "clock-skew") {
      if (!values.offset) throw new CliError("clock-skew needs --offset D (e.g. --offset=-10m for a clock 10 minutes behind)", 2);
      try {
        offsetMs = parseSignedDurationMs(values.offset);
      } catch (e) {
        throw new CliError(`--offset: ${(e as Error).message}`, 2);
      }
    } else if (values.offset) throw new CliError("only clock-skew takes --offset", 2);
    const bytesPerSecond = values["bytes-per-second"] !== undefined ? Number(values["bytes-per-second"]) : undefined;
    if (kind === "link-throttle" && !(bytesPerSecond! > 0 && Number.isInteger(bytesPerSecond))) throw new CliError("link-throttle needs --bytes-per-second N (a positive integer)", 2);
    const fault = newFault({ name: kind, kind, target, atMs: 0, ...(lasting ? { forMs } : {}), ...(latencyMs ? { latencyMs } : {}), ...(bytesPerSecond ? { bytesPerSecond } : {}), ...(offsetMs !== undefined ? { offsetMs } : {}) }, cluster);
    let resolved: string;
    try {
      resolved = await fault.inject();
    } catch (e) {
      throw new CliError(`${kind}: ${(e as Error).message}`);
    }
    process.stdout.write(`${kind}: ${resolved}\n`);
    if (!lasting) return;
    await new Promise<void>((r) => {
      const t = setTimeout(r, forMs);
      const early = () => (clearTimeout(t), r());
      process.once("SIGINT", early);
      process.once("SIGTERM", early);
    });
    await fault.revert();
    process.stdout.write(`${kind}: reverted\n`);
    process.exit(0);
  }
  throw new CliError(`unknown chaos command "${cmd}": run, list, inject or schema`, 2);
}
