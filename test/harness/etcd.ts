// Test harness: a throwaway etcd on loopback — a container when a Docker engine is reachable,
// else the `etcd` binary on PATH — or the reason neither is available.

import { spawn, execFile, type ChildProcess } from "node:child_process";
import * as fs from "node:fs/promises";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

export interface EtcdHandle {
  /** `etcd://127.0.0.1:PORT` — what openBackend() takes. */
  url: string;
  /** `http://127.0.0.1:PORT` client URLs. */
  endpoints: string[];
  stop(): Promise<void>;
  /** Stops and starts etcd again on the same data dir and ports (binary mode only). */
  restart?(): Promise<void>;
  pid?: number;
}

export type StartEtcdResult = EtcdHandle | { skip: string };

const IMAGE = "quay.io/coreos/etcd:v3.5.17";
/** Progress notifications let watch caches advance on quiet prefixes; etcd's default is 10 minutes. */
const PROGRESS_INTERVAL = "250ms";

/** A free TCP port on 127.0.0.1 (bind to port 0, read it, close). */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error("no port"))));
    });
  });
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ ok: boolean; stdout: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout) => resolve({ ok: !err, stdout: String(stdout) }));
  });
}

async function which(bin: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, bin);
    try {
      await fs.access(p, fs.constants.X_OK);
      return p;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

/** Waits until a range request against `endpoint` succeeds (etcd's v3 JSON gateway). */
async function waitHealthy(endpoint: string, timeoutMs: number, exited?: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastErr = "";
  while (Date.now() < deadline) {
    const why = exited?.();
    if (why) throw new Error(`etcd exited before becoming healthy: ${why}`);
    try {
      const res = await fetch(`${endpoint}/v3/kv/range`, {
        method: "POST",
        body: JSON.stringify({ key: Buffer.from("health").toString("base64") }),
        signal: AbortSignal.timeout(1000),
      });
      if (res.ok) {
        const body = (await res.json()) as { header?: { revision?: string } };
        if (body.header?.revision) return;
      }
      lastErr = `HTTP ${res.status}`;
    } catch (e) {
      lastErr = String(e);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`etcd at ${endpoint} not healthy after ${timeoutMs} ms: ${lastErr}`);
}

async function startBinary(bin: string): Promise<EtcdHandle> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "kubelab-etcd-"));
  const [clientPort, peerPort] = [await findFreePort(), await findFreePort()];
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const help = await run(bin, ["--help"], 5000);
  const args = [
    "--name=kubelab-test",
    `--data-dir=${dataDir}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=kubelab-test=${peer}`,
    "--initial-cluster-state=new",
    "--log-level=error",
    "--logger=zap",
    "--quota-backend-bytes=1073741824",
    `--experimental-watch-progress-notify-interval=${PROGRESS_INTERVAL}`,
  ];
  if (help.stdout.includes("--unsafe-no-fsync")) args.push("--unsafe-no-fsync");
  let proc = spawnEtcd(bin, args);
  const stopProc = async () => {
    const { child, exited } = proc;
    if (proc.exit() === undefined && child.pid !== undefined) {
      child.kill("SIGTERM");
      const gone = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
      if (!gone) {
        child.kill("SIGKILL");
        await exited;
      }
    }
  };
  const stop = async () => {
    await stopProc();
    await fs.rm(dataDir, { recursive: true, force: true });
  };
  const handle: EtcdHandle = {
    url: `etcd://127.0.0.1:${clientPort}`,
    endpoints: [client],
    stop,
    restart: async () => {
      await stopProc();
      proc = spawnEtcd(bin, args);
      handle.pid = proc.child.pid;
      await waitHealthy(client, 20_000, proc.exit);
    },
  };
  if (proc.child.pid !== undefined) handle.pid = proc.child.pid;
  try {
    await waitHealthy(client, 20_000, proc.exit);
  } catch (e) {
    await stop();
    throw e;
  }
  return handle;
}

function spawnEtcd(bin: string, args: string[]): { child: ChildProcess; exited: Promise<void>; exit: () => string | undefined } {
  const child: ChildProcess = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  let exit: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.on("exit", (code, sig) => {
      exit = `code ${code} signal ${sig}: ${stderr}`;
      resolve();
    });
    child.on("error", (e) => {
      exit = String(e);
      resolve();
    });
  });
  return { child, exited, exit: () => exit };
}

async function startContainer(): Promise<EtcdHandle> {
  const { GenericContainer, Wait } = await import("testcontainers");
  const container = await new GenericContainer(IMAGE)
    .withCommand([
      "etcd",
      "--name=kubelab-test",
      "--data-dir=/tmp/etcd",
      "--listen-client-urls=http://0.0.0.0:2379",
      "--advertise-client-urls=http://127.0.0.1:2379",
      "--log-level=error",
      "--unsafe-no-fsync",
      `--experimental-watch-progress-notify-interval=${PROGRESS_INTERVAL}`,
    ])
    .withExposedPorts(2379)
    .withWaitStrategy(Wait.forListeningPorts())
    .start();
  const port = container.getMappedPort(2379);
  const client = `http://127.0.0.1:${port}`;
  try {
    await waitHealthy(client, 20_000);
  } catch (e) {
    await container.stop();
    throw e;
  }
  return {
    url: `etcd://127.0.0.1:${port}`,
    endpoints: [client],
    stop: async () => {
      await container.stop();
    },
  };
}

/**
 * Starts an etcd for a test suite: a testcontainers container when `docker info` succeeds quickly,
 * else the `etcd` binary on PATH. Throws if startup fails; returns `{ skip: reason }` if neither
 * exists — unless `CI` is set, where a missing etcd is an error (CI must never silently skip).
 */
export async function startEtcd(): Promise<EtcdHandle> {
  const r = await tryStartEtcd();
  if ("skip" in r) throw new Error(r.skip);
  return r;
}

let dockerOk: Promise<boolean> | undefined;
/** Whether a Docker engine answers `docker info` within 3 s (cached; KUBELAB_ETCD_DOCKER=0 disables). */
function dockerReachable(): Promise<boolean> {
  if (process.env.KUBELAB_ETCD_DOCKER === "0") return Promise.resolve(false);
  dockerOk ??= run("docker", ["info"], 3000).then((r) => r.ok);
  return dockerOk;
}

const MISSING = "etcd not available: no reachable Docker engine and no `etcd` binary on PATH";

/** Like startEtcd, but returns `{ skip: reason }` when no etcd is available (outside CI). */
export async function tryStartEtcd(): Promise<StartEtcdResult> {
  if (await dockerReachable()) return startContainer();
  const bin = await which("etcd");
  if (bin) return startBinary(bin);
  if (process.env.CI) throw new Error(`${MISSING} (CI is set, so this is a failure, not a skip)`);
  return { skip: MISSING };
}

/**
 * For suites deciding between describe and describe.skip at collection time. Outside CI a missing
 * etcd gives `{ available: false, reason }`; with CI set it throws.
 */
export async function etcdAvailability(): Promise<{ available: true } | { available: false; reason: string }> {
  if ((await dockerReachable()) || (await which("etcd"))) return { available: true };
  if (process.env.CI) throw new Error(`${MISSING} (CI is set, so this is a failure, not a skip)`);
  return { available: false, reason: MISSING };
}
