// The README's quick start, run word for word: the fenced `sh` block under "## Quick start" is read
// from README.md (not copied here) and each of its lines runs as written — `npm start` from the
// repository (the default `kubelab up`: data dir .kubelab, port 6443), the `export`, each kubectl
// line through `sh -c` — and is checked against what its comment promises. Every line must have a
// step in STEPS (one entry each: a pattern and what to check), so a README change that adds a line
// fails here until the line has its step.
//
// It uses the defaults on purpose, so it refuses to run (a clear failure, nothing touched) when
// port 6443 answers or a live `up` holds .kubelab. It stops the cluster by SIGTERM to the process
// group of `npm start` (its own group: spawned detached), and removes .kubelab afterwards if it
// did not exist before.

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO } from "./harness/kubelab.ts";

const DATA_DIR = join(REPO, ".kubelab");
const PORT = 6443;

/** One line of the quick start: the command as written and its comment (the promise). */
interface QuickLine {
  command: string;
  comment: string;
}

/** The fenced sh block under "## Quick start". */
export function quickStartLines(readme: string): QuickLine[] {
  const start = readme.indexOf("\n## Quick start");
  if (start < 0) throw new Error('README.md has no "## Quick start" section');
  const next = readme.indexOf("\n## ", start + 1);
  const section = readme.slice(start, next < 0 ? undefined : next);
  const m = /```sh\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error("the quick start has no ```sh block");
  const lines: QuickLine[] = [];
  for (const raw of m[1].split("\n")) {
    if (raw.trim() === "" || raw.trim().startsWith("#")) continue;
    const hash = raw.search(/\s#\s/);
    lines.push(hash < 0 ? { command: raw.trim(), comment: "" } : { command: raw.slice(0, hash).trim(), comment: raw.slice(hash).replace(/^\s*#\s*/, "").trim() });
  }
  return lines;
}

interface Ctx {
  env: NodeJS.ProcessEnv;
  up?: ChildProcess;
  upOutput: string;
  /** What the steps found, for later steps. */
  podIPs: Map<string, string>;
  clusterIP?: string;
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a quick-start line as written, through sh, in the repository. */
function sh(ctx: Ctx, command: string, timeoutMs = 30_000): Promise<Result> {
  return new Promise((resolve) => {
    execFile("sh", ["-c", command], { cwd: REPO, env: ctx.env, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Re-runs `command` until `ok` accepts its result (or the deadline, then the last failure is thrown). */
async function until(ctx: Ctx, command: string, ok: (r: Result) => string | undefined, timeoutMs = 90_000): Promise<Result> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await sh(ctx, command);
    const why = r.code === 0 ? ok(r) : `exit ${r.code}: ${r.stderr.trim()}`;
    if (why === undefined) return r;
    if (Date.now() > deadline || ctx.up?.exitCode != null) {
      throw new Error(`\`${command}\`: ${why}\n${r.stdout}${ctx.up?.exitCode != null ? `\nnpm start exited ${ctx.up.exitCode}:\n${ctx.upOutput}` : ""}`);
    }
    await sleep(1000);
  }
}

/** Rows of a kubectl table as column → value. */
function table(out: string): Record<string, string>[] {
  const lines = out.split("\n").filter((l) => l.trim() !== "");
  if (lines.length === 0) return [];
  const header = lines[0];
  const cols: { name: string; at: number }[] = [];
  for (const m of header.matchAll(/\S+(?: \S+)*/g)) cols.push({ name: m[0], at: m.index ?? 0 });
  return lines.slice(1).map((l) => {
    const row: Record<string, string> = {};
    cols.forEach((c, i) => (row[c.name] = l.slice(c.at, i + 1 < cols.length ? cols[i + 1].at : undefined).trim()));
    return row;
  });
}

function inCIDR(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split("/");
  const n = (s: string): number => s.split(".").reduce((a, o) => a * 256 + Number(o), 0);
  const mask = 2 ** 32 - 2 ** (32 - Number(bits));
  return net.isIPv4(ip) && Math.floor(n(ip) / 2 ** (32 - Number(bits))) === Math.floor((n(base) & mask) / 2 ** (32 - Number(bits)));
}

function httpGet(ip: string, port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: ip, port, path, agent: false, timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

interface Step {
  /** Matches the quick-start command this step runs. */
  match: RegExp;
  run(ctx: Ctx, line: QuickLine): Promise<void>;
}

/** The quick start's steps, in README order. */
const STEPS: Step[] = [
  {
    // `npm ci && npm start`: on a clean clone `npm ci` installs; this checkout is installed (and
    // shared), so the test runs what follows it: `npm start` — build, then `kubelab up`.
    match: /^(npm ci && )?npm start$/,
    async run(ctx, line) {
      const command = line.command.replace(/^npm ci && /, "");
      const up = spawn("sh", ["-c", command], { cwd: REPO, env: ctx.env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
      ctx.up = up;
      up.stdout?.on("data", (d: Buffer) => (ctx.upOutput += d.toString()));
      up.stderr?.on("data", (d: Buffer) => (ctx.upOutput += d.toString()));
      const deadline = Date.now() + 120_000;
      while (!existsSync(join(DATA_DIR, "kubeconfig"))) {
        if (up.exitCode !== null) throw new Error(`\`${command}\` exited ${up.exitCode} before writing .kubelab/kubeconfig:\n${ctx.upOutput}`);
        if (Date.now() > deadline) throw new Error(`\`${command}\` wrote no .kubelab/kubeconfig in 120 s:\n${ctx.upOutput}`);
        await sleep(250);
      }
      expect(line.comment).toMatch(/kubeconfig in \.kubelab\//);
    },
  },
  {
    match: /^export KUBECONFIG=/,
    async run(ctx, line) {
      const r = await sh(ctx, `${line.command} && printf %s "$KUBECONFIG"`);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(join(DATA_DIR, "kubeconfig"));
      ctx.env = { ...ctx.env, KUBECONFIG: r.stdout };
    },
  },
  {
    match: /^kubectl get nodes -L topology\.kubernetes\.io\/zone$/,
    async run(ctx, line) {
      // "6 simulated nodes in local-1a/b/c": two per zone, all Ready.
      expect(line.comment).toMatch(/^6 simulated nodes in local-1a\/b\/c$/);
      await until(ctx, line.command, (r) => {
        const rows = table(r.stdout);
        const zones = rows.map((row) => row.ZONE).sort();
        if (rows.length !== 6) return `${rows.length} nodes, want 6`;
        if (zones.join() !== "local-1a,local-1a,local-1b,local-1b,local-1c,local-1c") return `zones ${zones.join()}`;
        if (!rows.every((row) => row.STATUS === "Ready")) return "not all Ready";
        return undefined;
      });
    },
  },
  {
    match: /^kubectl create deployment web --image=busybox --replicas=3 -- httpd -f -p 8080$/,
    async run(ctx, line) {
      const r = await sh(ctx, line.command);
      expect(r, r.stderr).toMatchObject({ code: 0, stdout: "deployment.apps/web created\n" });
    },
  },
  {
    match: /^kubectl get pods -o wide$/,
    async run(ctx, line) {
      // "pod IPs from 127.64.0.0/10, each answering HTTP"
      const cidr = /pod IPs from (\d+\.\d+\.\d+\.\d+\/\d+)/.exec(line.comment)?.[1];
      expect(cidr, line.comment).toBe("127.64.0.0/10");
      const r = await until(ctx, line.command, (res) => {
        const rows = table(res.stdout).filter((row) => row.NAME.startsWith("web-"));
        if (rows.length !== 3) return `${rows.length} web pods, want 3`;
        if (!rows.every((row) => row.STATUS === "Running" && row.READY === "1/1")) return "not all Running and ready";
        return undefined;
      });
      for (const row of table(r.stdout).filter((x) => x.NAME.startsWith("web-"))) {
        expect(inCIDR(row.IP, cidr!), `${row.NAME} IP ${row.IP}`).toBe(true);
        ctx.podIPs.set(row.NAME, row.IP);
      }
      expect(new Set(ctx.podIPs.values()).size).toBe(3);
      // The command is `httpd -f -p 8080`: port 8080 on each pod IP answers with the echo.
      for (const [name, ip] of ctx.podIPs) {
        const res = await httpGet(ip, 8080, "/");
        expect(res.status, `${name} at ${ip}:8080`).toBe(200);
        expect(JSON.parse(res.body)).toMatchObject({ pod: name, namespace: "default", ip, path: "/" });
      }
    },
  },
  {
    match: /^kubectl logs deploy\/web$/,
    async run(ctx, line) {
      const r = await sh(ctx, line.command);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^simulated container "busybox" started on node \S+ \(zone local-1[abc]\), pod IP 127\.\d+\.\d+\.\d+$/m);
    },
  },
  {
    match: /^kubectl expose deployment web --port 80 --target-port 8080$/,
    async run(ctx, line) {
      const r = await sh(ctx, line.command);
      expect(r, r.stderr).toMatchObject({ code: 0, stdout: "service/web exposed\n" });
    },
  },
  {
    match: /^kubectl get service web$/,
    async run(ctx, line) {
      // "a ClusterIP from 127.10.0.0/16, answered by the service proxy"
      const cidr = /ClusterIP from (\d+\.\d+\.\d+\.\d+\/\d+)/.exec(line.comment)?.[1];
      expect(cidr, line.comment).toBe("127.10.0.0/16");
      const r = await sh(ctx, line.command);
      expect(r.code, r.stderr).toBe(0);
      const [row] = table(r.stdout);
      expect(row).toMatchObject({ NAME: "web", TYPE: "ClusterIP", "PORT(S)": "80/TCP" });
      expect(inCIDR(row["CLUSTER-IP"], cidr!), row["CLUSTER-IP"]).toBe(true);
      ctx.clusterIP = row["CLUSTER-IP"];
    },
  },
  {
    match: /^curl -s http:\/\/\$\(kubectl get service web -o jsonpath='\{\.spec\.clusterIP\}'\)\/$/,
    async run(ctx, line) {
      // "the echo of one of the 3 pods; run it again for another" — repeated requests reach all 3.
      expect(line.comment).toMatch(/one of the 3 pods/);
      const seen = new Set<string>();
      const deadline = Date.now() + 60_000;
      while (seen.size < 3) {
        const r = await sh(ctx, line.command);
        if (r.code === 0 && r.stdout.startsWith("{")) seen.add((JSON.parse(r.stdout) as { pod: string }).pod);
        else if (Date.now() > deadline) throw new Error(`\`${line.command}\`: exit ${r.code} ${r.stdout}${r.stderr}`);
        if (Date.now() > deadline) throw new Error(`requests to the ClusterIP reached ${[...seen].join(", ")}, want all of ${[...ctx.podIPs.keys()].join(", ")}`);
        if (r.code !== 0) await sleep(500);
      }
      expect([...seen].sort()).toEqual([...ctx.podIPs.keys()].sort());
    },
  },
  {
    match: /^kubectl create ingress web --rule='web\.local\/\*=web:80'$/,
    async run(ctx, line) {
      const r = await sh(ctx, line.command);
      expect(r, r.stderr).toMatchObject({ code: 0, stdout: "ingress.networking.k8s.io/web created\n" });
    },
  },
  {
    match: /^curl -s -H 'Host: web\.local' http:\/\/127\.0\.0\.1:8080\/$/,
    async run(ctx, line) {
      // "the same pods through the ingress controller"
      expect(line.comment).toMatch(/through the ingress/);
      const deadline = Date.now() + 60_000;
      for (;;) {
        const r = await sh(ctx, line.command);
        if (r.code === 0 && r.stdout.startsWith("{")) {
          const echo = JSON.parse(r.stdout) as { pod: string; headers?: Record<string, string> };
          expect([...ctx.podIPs.keys()]).toContain(echo.pod);
          break;
        }
        if (Date.now() > deadline) throw new Error(`\`${line.command}\`: exit ${r.code} ${r.stdout}${r.stderr}`);
        await sleep(500);
      }
    },
  },
  {
    match: /^dig \+short @127\.10\.0\.10 web\.default\.svc\.cluster\.local$/,
    async run(ctx, line) {
      // "the ClusterIP, from cluster DNS"
      expect(line.comment).toMatch(/the ClusterIP/);
      await until(ctx, line.command, (r) => (r.stdout.trim() === ctx.clusterIP ? undefined : `answered ${JSON.stringify(r.stdout.trim())}, want ${ctx.clusterIP}`), 60_000);
    },
  },
];

/** Something already using the defaults: the reason not to start, or undefined. */
async function defaultsInUse(): Promise<string | undefined> {
  const answers = await new Promise<boolean>((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port: PORT });
    s.on("connect", () => (s.destroy(), resolve(true)));
    s.on("error", () => resolve(false));
  });
  if (answers) return `port ${PORT} is taken (a cluster from \`npm start\`?): stop it before running the quick start test`;
  try {
    const state = JSON.parse(readFileSync(join(DATA_DIR, "up.json"), "utf8")) as { pid?: number };
    if (state.pid) {
      process.kill(state.pid, 0);
      return `.kubelab is in use by a running kubelab up (pid ${state.pid}): stop it (kubelab down) before running the quick start test`;
    }
  } catch {
    // no state, or its pid is dead: free to use
  }
  return undefined;
}

describe("README quick start, word for word", () => {
  const existed = existsSync(DATA_DIR);
  const ctx: Ctx = { env: { ...process.env, PWD: REPO }, upOutput: "", podIPs: new Map() };
  delete ctx.env.KUBECONFIG;
  let started = false;

  afterAll(async () => {
    const up = ctx.up;
    // A data dir that was there before keeps its store: take back what the quick start created.
    if (existed && up?.exitCode === null) await sh(ctx, "kubectl delete deployment web --ignore-not-found --wait=false");
    if (up?.pid !== undefined && up.exitCode === null) {
      const exited = new Promise<void>((resolve) => up.once("exit", () => resolve()));
      process.kill(-up.pid, "SIGTERM"); // the group of `npm start` (detached), never ours
      const killed = await Promise.race([exited.then(() => true), sleep(60_000).then(() => false)]);
      if (!killed) {
        process.kill(-up.pid, "SIGKILL");
        await exited;
      }
      // `sh` may exit before `kubelab up` has finished its cleanup: wait until the group is empty.
      const deadline = Date.now() + 30_000;
      for (;;) {
        try {
          process.kill(-up.pid, 0);
        } catch {
          break; // ESRCH: no process left in the group
        }
        if (Date.now() > deadline) {
          process.kill(-up.pid, "SIGKILL");
          break;
        }
        await sleep(200);
      }
    }
    if (started && !existed) rmSync(DATA_DIR, { recursive: true, force: true });
  }, 90_000);

  it("runs every line of the README's quick start and each does what its comment says", async () => {
    const busy = await defaultsInUse();
    if (busy) throw new Error(busy);
    const lines = quickStartLines(readFileSync(join(REPO, "README.md"), "utf8"));
    expect(lines.length).toBeGreaterThan(0);
    const unmatched = lines.filter((l) => !STEPS.some((s) => s.match.test(l.command)));
    expect(unmatched.map((l) => l.command), "quick-start lines without a step in test/quickstart.test.ts").toEqual([]);
    started = true;
    for (const line of lines) {
      const step = STEPS.find((s) => s.match.test(line.command))!;
      await step.run(ctx, line);
    }
  }, 400_000);
});
