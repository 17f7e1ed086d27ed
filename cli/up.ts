// `kubelab up`: the local supervisor — PKI, store, apiserver, kubeconfig; foreground until SIGINT/SIGTERM.

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { newLogger } from "../client/index.ts";
import { CliError } from "./errors.ts";
import { writeKubeconfig } from "./kubeconfig.ts";
import { ensurePki } from "./pki.ts";
import { Supervisor } from "./supervisor.ts";

const HELP = `usage: kubelab up [flags]

  --data-dir DIR     where the cluster keeps its store, certificates, logs and kubeconfig (default .kubelab)
  --port P           apiserver port on 127.0.0.1 (default 6443)
  --etcd URLS        use this etcd (comma-separated client URLs) instead of the embedded store
  --tls-san NAME     extra name or IP for the serving certificate (repeatable)`;

/** What `up` records about itself so that `down` and `status` can find it. */
export interface UpState {
  pid: number;
  port: number;
  storage: string;
  kubeconfig: string;
  components: { name: string; pid?: number; restarts: number }[];
}

export function upStatePath(dataDir: string): string {
  return join(dataDir, "up.json");
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function readUpState(dataDir: string): UpState | undefined {
  try {
    return JSON.parse(readFileSync(upStatePath(dataDir), "utf8")) as UpState;
  } catch {
    return undefined;
  }
}

/** `--etcd http://a:2379,http://b:2379` or `a:2379,...` → `etcd://a:2379,b:2379`. */
export function etcdStorageURL(urls: string): string {
  const hosts = urls
    .split(",")
    .map((u) => u.trim())
    .filter(Boolean)
    .map((u) => {
      const m = /^(?:(?:https?|etcd):\/\/)?([^/]+?)\/?$/.exec(u);
      if (!m) throw new CliError(`--etcd: "${u}" is not a client URL like http://127.0.0.1:2379`, 2);
      return m[1];
    });
  if (hosts.length === 0) throw new CliError("--etcd needs at least one client URL", 2);
  return `etcd://${hosts.join(",")}`;
}

/** A free TCP port on 127.0.0.1 for a component's /healthz and /metrics. */
function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolvePort(p));
    });
  });
}

async function waitReady(port: number, ca: string, timeoutMs: number, isDead: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    if (isDead()) throw new CliError(`the apiserver exited while starting; see its log`);
    const ok = await new Promise<boolean>((res) => {
      const req = https.get({ host: "127.0.0.1", port, path: "/readyz", ca, timeout: 2000 }, (r) => {
        r.resume();
        last = `HTTP ${r.statusCode}`;
        res(r.statusCode === 200);
      });
      req.on("error", (e) => {
        last = e.message;
        res(false);
      });
      req.on("timeout", () => req.destroy());
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new CliError(`the apiserver did not become ready within ${timeoutMs / 1000}s (${last})`);
}

export async function runUp(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      "data-dir": { type: "string", default: ".kubelab" },
      port: { type: "string", default: "6443" },
      etcd: { type: "string" },
      "tls-san": { type: "string", multiple: true, default: [] },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(HELP + "\n");
    return;
  }
  const dataDir = resolve(values["data-dir"]!);
  const port = Number(values.port);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new CliError(`--port must be a port number, got "${values.port}"`, 2);
  if (values.etcd === "spawn") throw new CliError("--etcd spawn is not available yet; pass client URLs (e.g. --etcd http://127.0.0.1:2379)", 2);
  const storage = values.etcd ? etcdStorageURL(values.etcd) : `file://${join(dataDir, "store")}`;

  mkdirSync(join(dataDir, "logs"), { recursive: true });
  const prev = readUpState(dataDir);
  if (prev && prev.pid !== process.pid && isAlive(prev.pid)) {
    throw new CliError(`kubelab is already running from ${dataDir} (pid ${prev.pid}); run 'kubelab down --data-dir ${values["data-dir"]}' first`);
  }

  const log = newLogger("up");
  const pki = ensurePki(join(dataDir, "pki"), values["tls-san"] ?? []);
  const kubeconfig = join(dataDir, "kubeconfig");
  const state: UpState = { pid: process.pid, port, storage, kubeconfig, components: [] };
  const save = () => writeFileSync(upStatePath(dataDir), JSON.stringify({ ...state, components: sup.processes() }, null, 2));
  const sup = new Supervisor(log, () => save());
  save();

  let stopping = false;
  const stop = async (why: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    log.info({ why }, "stopping the cluster");
    await sup.stop();
    rmSync(upStatePath(dataDir), { force: true });
    process.stdout.write("kubelab stopped.\n");
    process.exit(code);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));

  sup.start({
    name: "apiserver",
    logFile: join(dataDir, "logs", "apiserver.log"),
    args: [
      "apiserver",
      "--storage", storage,
      "--port", String(port),
      "--bind", "127.0.0.1",
      "--tls-cert-file", join(pki.dir, "apiserver.crt"),
      "--tls-private-key-file", join(pki.dir, "apiserver.key"),
      "--token-auth-file", pki.tokenFile,
    ],
  });
  try {
    await waitReady(port, pki.caCert, 60_000, () => stopping);
  } catch (e) {
    await stop(`startup failed: ${(e as Error).message}`, 1);
    return;
  }
  writeKubeconfig(kubeconfig, { server: `https://127.0.0.1:${port}`, caCert: pki.caCert, token: pki.adminToken });
  // Two schedulers, leader-elected on the Lease kube-system/kube-scheduler.
  for (const n of [1, 2]) {
    const healthPort = await freePort();
    sup.start({
      name: `scheduler-${n}`,
      logFile: join(dataDir, "logs", `scheduler-${n}.log`),
      args: ["scheduler", "--kubeconfig", kubeconfig, "--leader-elect", "--port", String(healthPort)],
    });
  }
  // Two controller-managers, leader-elected on the Lease kube-system/kube-controller-manager.
  for (const n of [1, 2]) {
    const healthPort = await freePort();
    sup.start({
      name: `controller-manager-${n}`,
      logFile: join(dataDir, "logs", `controller-manager-${n}.log`),
      args: ["controller-manager", "--kubeconfig", kubeconfig, "--leader-elect", "--port", String(healthPort)],
    });
  }
  const shown = values["data-dir"]!;
  process.stdout.write(
    [
      `kubelab is up: apiserver https://127.0.0.1:${port} on ${values.etcd ? "etcd " + values.etcd : "the embedded store (" + join(shown, "store") + ")"}, 2 schedulers and 2 controller-managers (leader-elected)`,
      ``,
      `  export KUBECONFIG=${existsSync(kubeconfig) ? kubeconfig : shown + "/kubeconfig"}`,
      `  kubectl get namespaces`,
      ``,
      `logs: ${join(shown, "logs")}/   stop: Ctrl-C or 'npm run kubelab -- down --data-dir ${shown}'`,
      ``,
    ].join("\n"),
  );
  save();
}
