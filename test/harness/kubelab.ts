// Test harness: runs `kubelab up` as a real process on a free port and drives it with the real kubectl.

import { spawn, execFile, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = resolve(fileURLToPath(new URL("../..", import.meta.url)));

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Kubelab {
  dataDir: string;
  kubeconfig: string;
  port: number;
  server: string;
  /** The admin bearer token and CA from the generated kubeconfig. */
  token: string;
  caCert: string;
  pid: number;
  /** Runs the real kubectl with this cluster's kubeconfig and a private cache dir. */
  kubectl(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<KubectlResult>;
  /** Stops `kubelab up` (SIGTERM) and waits for it to exit. Keeps the data dir unless `clean`. */
  stop(opts?: { clean?: boolean }): Promise<void>;
  output(): string;
  /** The processes `up` runs, as it last recorded them in DATA/up.json. */
  components(): UpComponent[];
}

/** A process of `up` as DATA/up.json records it. */
export interface UpComponent {
  name: string;
  pid?: number;
  zone?: string;
  restarts: number;
  healthPort?: number;
}

/** A process's state letter from /proc/<pid>/stat (R, S, T when stopped by SIGSTOP, Z...). */
export function procState(pid: number): string {
  const st = readFileSync(`/proc/${pid}/stat`, "utf8");
  return st.slice(st.lastIndexOf(")") + 2, st.lastIndexOf(")") + 3);
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

let slot: number | undefined;

/**
 * This test worker's slot, 0–15: the addresses its clusters use are derived from it, so clusters
 * in parallel test files — and in vitest runs started side by side — never bind the same pod IPs or
 * ClusterIPs. Taken with an exclusive lock file naming the pid (a dead holder's slot is taken
 * over), preferring VITEST_POOL_ID's own; released when the process exits.
 */
export function testSlot(): number {
  if (slot !== undefined) return slot;
  const dir = join(tmpdir(), "kubelab-test-slots");
  mkdirSync(dir, { recursive: true });
  const first = Number(process.env.VITEST_POOL_ID ?? 1) % 16;
  for (let pass = 0; pass < 2 && slot === undefined; pass++) {
    for (let i = 0; i < 16; i++) {
      const n = (first + i) % 16;
      const file = join(dir, `${n}.lock`);
      try {
        writeFileSync(file, String(process.pid), { flag: "wx" });
        slot = n;
        break;
      } catch {
        const holder = Number(readFileSync(file, "utf8").trim() || "0");
        let alive = false;
        try {
          alive = holder > 0 && (process.kill(holder, 0), true);
        } catch {
          alive = false;
        }
        if (!alive && pass === 0) rmSync(file, { force: true }); // retried on the next pass
      }
    }
  }
  if (slot === undefined) throw new Error(`no free test slot in ${dir}: 16 test workers are running`);
  const held = join(dir, `${slot}.lock`);
  process.once("exit", () => rmSync(held, { force: true }));
  return slot;
}

/**
 * A simulated-pod address range of its own for each test worker (see testSlot); all inside
 * 127.0.0.0/8 and outside `up`'s default.
 */
export function testClusterCIDR(): string {
  return `127.${128 + 8 * testSlot()}.0.0/13`;
}

/**
 * A service range of its own for each test worker (see testSlot), so the ClusterIPs (loopback addresses with
 * simulated nodes) of clusters in parallel test files never collide; outside `up`'s default 127.10.0.0/16.
 */
export function testServiceCIDR(): string {
  return `127.${16 + testSlot()}.0.0/16`;
}

/**
 * Starts `kubelab up --data-dir <tmp> --port <free> [--etcd URL]` and waits until it has written its
 * kubeconfig. Without `nodes`, no kubelets run (suites that bring their own fake nodes).
 */
export async function startKubelab(opts: { etcd?: string; dataDir?: string; port?: number; extraArgs?: string[]; nodes?: boolean } = {}): Promise<Kubelab> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), "kubelab-test-"));
  const port = opts.port ?? (await freePort());
  const args = ["--import", "tsx", join(REPO, "cli/main.ts"), "up", "--data-dir", dataDir, "--port", String(port)];
  if (opts.etcd) args.push("--etcd", opts.etcd);
  if (!opts.nodes) args.push("--nodes-per-zone", "0");
  else {
    // With nodes, `up` runs the data plane too: give it addresses no parallel test cluster uses.
    const extra = opts.extraArgs ?? [];
    const containerd = extra.includes("containerd");
    // A topology file with its own subnets takes them from testClusterCIDR() itself (--cluster-cidr is refused then).
    if (!extra.includes("--cluster-cidr") && !extra.includes("--topology")) args.push("--cluster-cidr", testClusterCIDR());
    if (!extra.includes("--service-cluster-ip-range") && !containerd) args.push("--service-cluster-ip-range", testServiceCIDR());
    if (!extra.includes("--ingress-http-port")) args.push("--ingress-http-port", String(await freePort()));
    if (!extra.includes("--ingress-https-port")) args.push("--ingress-https-port", String(await freePort()));
  }
  args.push(...(opts.extraArgs ?? []));
  const child: ChildProcess = spawn(process.execPath, args, { cwd: REPO, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, KUBELAB_LOG_LEVEL: "warn" } });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number>((res) => child.once("exit", (code) => res(code ?? -1)));
  const deadline = Date.now() + 90_000;
  while (!out.includes("kubelab is up")) {
    if (child.exitCode !== null) throw new Error(`kubelab up exited (${child.exitCode}):\n${out}`);
    if (Date.now() > deadline) {
      // SIGTERM first: up stops the components it started; SIGKILL alone would orphan them.
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
      child.kill("SIGKILL");
      throw new Error(`kubelab up did not come up in time:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const kubeconfig = join(dataDir, "kubeconfig");
  const kc = readFileSync(kubeconfig, "utf8");
  const token = /token: (\S+)/.exec(kc)![1];
  const caCert = Buffer.from(/certificate-authority-data: (\S+)/.exec(kc)![1], "base64").toString();
  const cacheDir = mkdtempSync(join(tmpdir(), "kubectl-cache-"));
  return {
    dataDir,
    kubeconfig,
    port,
    server: `https://127.0.0.1:${port}`,
    token,
    caCert,
    pid: child.pid!,
    output: () => out,
    components: () => (JSON.parse(readFileSync(join(dataDir, "up.json"), "utf8")) as { components: UpComponent[] }).components,
    kubectl(kargs, o = {}) {
      return new Promise((res) => {
        const p = execFile(
          "kubectl",
          ["--kubeconfig", kubeconfig, "--cache-dir", cacheDir, ...kargs],
          { timeout: o.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, KUBECONFIG: kubeconfig } },
          (err, stdout, stderr) => {
            const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : 1) : 0;
            res({ code, stdout, stderr });
          },
        );
        if (o.input !== undefined) p.stdin!.end(o.input);
      });
    },
    async stop(s = {}) {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), 20_000);
        await exited;
        clearTimeout(t);
      }
      rmSync(cacheDir, { recursive: true, force: true });
      if (s.clean && existsSync(dataDir)) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
