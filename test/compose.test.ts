// Keeps deploy/docker-compose.yml honest on machines without a Docker engine (P7). It parses the file
// with the yaml package and checks every service: image or build, the kubelab subcommand and every
// flag against the CLI's own strict parser, ports, volumes, depends_on, healthchecks and the
// Prometheus targets of deploy/prometheus.yml. Then it runs the same processes with the same flags
// here, as compose would order them — the service names and container ports translated to
// 127.0.0.1 and free loopback ports (one mapping table, printed on failure), the volumes to temp
// dirs, the etcd image to the local etcd binary, the kubelab image to this repository built as its
// Dockerfile builds it and run with plain node — and drives the cluster with the real kubectl
// through the cluster endpoint, as docker compose's users would.

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadTopologyFile } from "../controllers/cloud/topology.ts";
import { REPO, freePort, testClusterCIDR, testServiceCIDR } from "./harness/kubelab.ts";
import { poll } from "./harness/poll.ts";

interface Healthcheck {
  test: string[];
  interval?: string;
  timeout?: string;
  retries?: number;
  start_period?: string;
}
interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: Healthcheck;
  network_mode?: string;
  profiles?: string[];
  restart?: string;
}
interface ComposeFile {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
}
interface ScrapeConfig {
  job_name: string;
  scheme?: string;
  tls_config?: { ca_file: string };
  authorization?: { type: string; credentials_file: string };
  static_configs: { targets: string[]; labels?: Record<string, string> }[];
}

const DEPLOY = join(REPO, "deploy");
const compose = parse(readFileSync(join(DEPLOY, "docker-compose.yml"), "utf8"), { merge: true }) as ComposeFile;
const prometheus = parse(readFileSync(join(DEPLOY, "prometheus.yml"), "utf8")) as { scrape_configs: ScrapeConfig[] };
const services = compose.services;
const names = Object.keys(services);

const KUBELAB_IMAGE = "kubelab:dev";
const ETCD_IMAGE = /^quay\.io\/coreos\/etcd:v3\.5\.\d+$/;
const PROMETHEUS_IMAGE = /^prom\/prometheus:v\d+\.\d+\.\d+$/;
/** The flags whose value is a port the process listens on, in its own network namespace. */
const LISTEN_PORT_FLAGS = new Set(["--port", "--healthz-port", "--dns-port", "--http-port", "--https-port"]);
/** The flag of each subcommand that names its /healthz, /readyz and /metrics port, and its default. */
const HEALTH_PORT_FLAG: Record<string, [string, number]> = {
  scheduler: ["--port", 10259],
  "controller-manager": ["--port", 10257],
  "cloud-controller": ["--port", 10268],
  endpoint: ["--port", 10270],
  kubelet: ["--healthz-port", 10248],
  proxy: ["--healthz-port", 10256],
  dns: ["--healthz-port", 10054],
  ingress: ["--healthz-port", 10254],
  apiserver: ["--port", 6443],
};

type Kind = "kubelab" | "etcd" | "prometheus" | "netns";
function kindOf(name: string): Kind {
  const s = services[name];
  if (s.image === KUBELAB_IMAGE && s.entrypoint?.join(" ") === "sleep infinity") return "netns";
  if (s.image === KUBELAB_IMAGE) return "kubelab";
  if (s.image && ETCD_IMAGE.test(s.image)) return "etcd";
  if (s.image && PROMETHEUS_IMAGE.test(s.image)) return "prometheus";
  throw new Error(`service ${name}: image ${s.image} is none of kubelab, etcd or prometheus`);
}
const kubelabServices = names.filter((n) => kindOf(n) === "kubelab");
const isOneShot = (n: string) => services[n].restart === "no";
const longRunning = names.filter((n) => !isOneShot(n) && kindOf(n) !== "netns");
/** The network namespace a service is in: its own, or the one of `network_mode: service:X`. */
const nsOf = (n: string): string => services[n].network_mode?.replace(/^service:/, "") ?? n;
const flag = (args: string[], f: string): string | undefined => {
  const i = args.indexOf(f);
  return i >= 0 ? args[i + 1] : undefined;
};
/** A kubelab service's /healthz and /metrics port (in its namespace). */
function healthPort(n: string): number {
  const args = services[n].command!;
  const [f, def] = HEALTH_PORT_FLAG[args[0]];
  return Number(flag(args, f) ?? def);
}

/**
 * What the image's build stage makes: `npm run build` (tsc -p tsconfig.build.json), here into a cache
 * folder inside node_modules so that its imports resolve as /app/dist's do in the image.
 */
mkdirSync(join(REPO, "node_modules", ".cache"), { recursive: true });
const DIST = mkdtempSync(join(REPO, "node_modules", ".cache", "kubelab-compose-dist-"));
const MAIN = join(DIST, "cli", "main.js");
let build: { code: number; out: string } | undefined;

beforeAll(async () => {
  build = await new Promise((resolve) => {
    execFile(join(REPO, "node_modules", ".bin", "tsc"), ["-p", "tsconfig.build.json", "--outDir", DIST], { cwd: REPO, timeout: 110_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? 1 : 0, out: stdout + stderr });
    });
  });
}, 120_000);

afterAll(() => rmSync(DIST, { recursive: true, force: true }));

/** Runs `node dist/cli/main.js ARGS` — the image's entrypoint, plain node — and returns its exit code and output. */
function kubelab(args: string[], timeoutMs = 30_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { cwd: REPO, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 1) : 0;
      resolve({ code, out: stdout + stderr });
    });
  });
}

describe("deploy/docker-compose.yml, parsed", () => {
  it("uses only keys and conditions the Compose Specification defines", () => {
    // The subset of the Compose Specification's service properties a file like ours may use.
    const serviceKeys = new Set(["image", "build", "command", "entrypoint", "environment", "env_file", "volumes", "ports", "expose", "depends_on", "healthcheck", "network_mode", "networks", "profiles", "restart", "hostname", "working_dir", "user", "init", "stop_grace_period", "stop_signal", "container_name", "labels", "cap_add", "security_opt", "tmpfs", "ulimits"]);
    const topKeys = new Set(["name", "services", "volumes", "networks", "configs", "secrets", "x-kubelab"]);
    const doc = compose as unknown as Record<string, unknown> & { services: Record<string, Record<string, unknown>> };
    for (const k of Object.keys(doc)) expect(topKeys.has(k) || k.startsWith("x-"), `top-level key ${k}`).toBe(true);
    for (const [name, svc] of Object.entries(doc.services)) {
      for (const k of Object.keys(svc)) expect(serviceKeys.has(k), `services.${name}.${k} is not a Compose service key`).toBe(true);
      const deps = svc.depends_on;
      if (deps && !Array.isArray(deps)) {
        for (const [dep, d] of Object.entries(deps as Record<string, { condition?: string }>)) {
          expect(["service_started", "service_healthy", "service_completed_successfully"], `services.${name}.depends_on.${dep}.condition`).toContain(d.condition ?? "service_started");
        }
      }
      const hc = svc.healthcheck as Record<string, unknown> | undefined;
      if (hc) for (const k of Object.keys(hc)) expect(["test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"], `services.${name}.healthcheck.${k}`).toContain(k);
    }
  });

  it("has the topology of up --etcd spawn --apiservers 2: etcd x3, apiserver x2, endpoint, scheduler x2, controller-manager x2, cloud, a kubelet pool and a proxy per zone, dns, ingress, prometheus", () => {
    const byCommand = (c: string) => kubelabServices.filter((n) => services[n].command![0] === c).sort();
    expect(names.filter((n) => kindOf(n) === "etcd").sort()).toEqual(["etcd-local-1a", "etcd-local-1b", "etcd-local-1c"]);
    expect(byCommand("apiserver")).toEqual(["apiserver-1", "apiserver-2"]);
    expect(byCommand("endpoint")).toEqual(["endpoint"]);
    expect(byCommand("scheduler")).toEqual(["scheduler-1", "scheduler-2"]);
    expect(byCommand("controller-manager")).toEqual(["controller-manager-1", "controller-manager-2"]);
    expect(byCommand("cloud-controller")).toEqual(["cloud-controller"]);
    expect(byCommand("kubelet")).toEqual(["kubelet-local-1a", "kubelet-local-1b", "kubelet-local-1c"]);
    expect(byCommand("proxy")).toEqual(["proxy-local-1a", "proxy-local-1b", "proxy-local-1c"]);
    expect(byCommand("dns")).toEqual(["dns"]);
    expect(byCommand("ingress")).toEqual(["ingress"]);
    expect(byCommand("certs")).toEqual(["certs"]);
    expect(names.filter((n) => kindOf(n) === "prometheus")).toEqual(["prometheus"]);
    expect(services.prometheus.profiles).toEqual(["monitoring"]);
    for (const n of ["scheduler-1", "scheduler-2", "controller-manager-1", "controller-manager-2", "cloud-controller"]) expect(services[n].command, n).toContain("--leader-elect");
    // The endpoint balances over exactly the apiserver services, on their --port.
    const backends = flag(services.endpoint.command!, "--backends")!.split(",").sort();
    expect(backends).toEqual(byCommand("apiserver").map((n) => `${n}:${flag(services[n].command!, "--port")}`));
    // Each etcd member is named after its service and lists the same cluster.
    const etcd = names.filter((n) => kindOf(n) === "etcd");
    for (const n of etcd) {
      const args = services[n].command!;
      expect(flag(args, "--name"), n).toBe(n);
      expect(flag(args, "--advertise-client-urls"), n).toBe(`http://${n}:2379`);
      expect(flag(args, "--initial-cluster"), n).toBe(etcd.map((m) => `${m}=http://${m}:2380`).join(","));
    }
    for (const n of byCommand("apiserver")) expect(flag(services[n].command!, "--storage"), n).toBe(`etcd://${etcd.map((m) => `${m}:2379`).join(",")}`);
  });

  it("builds kubelab services from deploy/Dockerfile, whose entrypoint is the build's dist/cli/main.js", () => {
    const dockerfile = readFileSync(join(DEPLOY, "Dockerfile"), "utf8");
    expect(dockerfile).toMatch(/^FROM node:20-bookworm-slim/m);
    expect(dockerfile).toMatch(/RUN npm ci/);
    expect(dockerfile).toMatch(/RUN npm run build/);
    expect(dockerfile).toContain('ENTRYPOINT ["node", "dist/cli/main.js"]');
    // npm run build is tsc -p tsconfig.build.json: rootDir "." and outDir "dist" put cli/main.ts at dist/cli/main.js.
    const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { scripts: Record<string, string> };
    expect(pkg.scripts.build).toBe("tsc -p tsconfig.build.json");
    // tsconfig files are JSON with // comment lines.
    const build = JSON.parse(readFileSync(join(REPO, "tsconfig.build.json"), "utf8").replace(/^\s*\/\/.*$/gm, "")) as { compilerOptions: { outDir: string; rootDir: string }; include: string[] };
    expect(build.compilerOptions).toMatchObject({ outDir: "dist", rootDir: "." });
    expect(build.include).toContain("cli");
    // The build stage copies the context; .dockerignore must not keep out a folder the build compiles.
    expect(dockerfile).toMatch(/^COPY \. \.$/m);
    const ignored = readFileSync(join(REPO, ".dockerignore"), "utf8").split("\n").map((l) => l.trim().replace(/^\/|\/$/g, "")).filter((l) => l && !l.startsWith("#"));
    for (const dir of build.include) expect(ignored, `.dockerignore keeps ${dir} out of the build`).not.toContain(dir);
    expect(ignored).toEqual(expect.arrayContaining([".git", "node_modules", "dist"]));
    for (const n of names) {
      const s = services[n];
      expect(s.image ?? s.build, `${n} has an image or a build`).toBeTruthy();
      if (s.image === KUBELAB_IMAGE) {
        expect(s.build, n).toEqual({ context: "..", dockerfile: "deploy/Dockerfile" });
        expect(existsSync(join(DEPLOY, s.build!.context, s.build!.dockerfile)), n).toBe(true);
      }
    }
  });

  it("compiles with npm run build, and the build imports only production dependencies (npm ci --omit=dev)", () => {
    expect(build?.code, build?.out).toBe(0);
    expect(existsSync(MAIN)).toBe(true);
    const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { dependencies: Record<string, string> };
    const bare = new Set<string>();
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith(".js")) for (const m of readFileSync(p, "utf8").matchAll(/(?:from |import\()"([^"./][^"]*)"/g)) bare.add(m[1]);
      }
    };
    walk(DIST);
    const packages = [...bare].filter((b) => !b.startsWith("node:")).map((b) => (b.startsWith("@") ? b.split("/").slice(0, 2) : b.split("/").slice(0, 1)).join("/"));
    expect(packages.length).toBeGreaterThan(5);
    for (const p of new Set(packages)) expect(Object.keys(pkg.dependencies), `dist imports ${p}: it must be in dependencies, not devDependencies`).toContain(p);
  });

  it("runs a known kubelab subcommand in every kubelab service, and the CLI's parser accepts every flag", async () => {
    // Strict parseArgs exits 2 on an unknown flag or a missing value before --help is looked at;
    // with every flag known, --help prints the command's usage and exits 0.
    const results = await Promise.all(
      kubelabServices.map(async (n) => {
        const args = services[n].command!;
        expect(args[0], n).toMatch(/^[a-z-]+$/);
        return { n, ...(await kubelab([...args, "--help"])) };
      }),
    );
    for (const r of results) {
      expect(r.code, `${r.n}: kubelab ${services[r.n].command!.join(" ")} --help\n${r.out}`).toBe(0);
      expect(r.out, r.n).toContain(`usage: kubelab ${services[r.n].command![0]}`);
    }
    // The check can fail: an unknown flag is exit 2, an unknown subcommand too.
    expect((await kubelab([...services["scheduler-1"].command!, "--no-such-flag", "--help"])).code).toBe(2);
    expect((await kubelab(["no-such-command", "--help"])).code).toBe(2);
  });

  it("publishes numeric, distinct ports from namespace holders only, and no two processes of a namespace listen on one port", () => {
    const published = new Set<number>();
    const listening = new Map<string, Map<number, string>>(); // namespace → port → service
    const listen = (n: string, port: number) => {
      const ns = listening.get(nsOf(n)) ?? new Map<number, string>();
      listening.set(nsOf(n), ns);
      expect(ns.has(port), `${n} and ${ns.get(port)} both listen on ${port} in ${nsOf(n)}'s namespace`).toBe(false);
      ns.set(port, n);
    };
    for (const n of names) {
      const s = services[n];
      const args = s.command ?? [];
      const kind = kindOf(n);
      if (kind === "kubelab") {
        for (const [i, a] of args.entries()) if (LISTEN_PORT_FLAGS.has(a)) listen(n, Number(args[i + 1]));
        const l = flag(args, "--listen");
        if (l) listen(n, Number(l.split(":").pop()));
        if (args[0] !== "certs" && HEALTH_PORT_FLAG[args[0]] && flag(args, HEALTH_PORT_FLAG[args[0]][0]) === undefined) listen(n, HEALTH_PORT_FLAG[args[0]][1]);
      }
      if (kind === "etcd") for (const f of ["--listen-client-urls", "--listen-peer-urls"]) listen(n, Number(new URL(flag(args, f)!).port));
      if (kind === "prometheus") listen(n, 9090);
      for (const p of s.ports ?? []) {
        expect(s.network_mode, `${n}: ports belong on the namespace's holder`).toBeUndefined();
        const m = /^(\d+):(\d+)$/.exec(p);
        expect(m, `${n}: port "${p}" is HOST:CONTAINER`).not.toBeNull();
        const [host, container] = [Number(m![1]), Number(m![2])];
        for (const v of [host, container]) expect(v > 0 && v < 65536, `${n}: ${p}`).toBe(true);
        expect(published.has(host), `host port ${host} published twice`).toBe(false);
        published.add(host);
      }
    }
    // Every published port reaches a process of that namespace.
    for (const n of names) {
      for (const p of services[n].ports ?? []) {
        const container = Number(p.split(":")[1]);
        expect(listening.get(n)?.has(container), `${n} publishes ${container} but nothing in its namespace listens there`).toBe(true);
      }
    }
    expect([...published].sort()).toEqual([6443, 8080, 8443, 9090]);
  });

  it("mounts only declared volumes (and files that exist), and uses every declared volume", () => {
    const used = new Set<string>();
    for (const n of names) {
      for (const v of services[n].volumes ?? []) {
        const [src, dst, mode, ...rest] = v.split(":");
        expect(rest, `${n}: volume "${v}"`).toEqual([]);
        expect(dst?.startsWith("/"), `${n}: volume "${v}" mounts at an absolute path`).toBe(true);
        if (mode !== undefined) expect(["ro", "rw"], `${n}: volume "${v}"`).toContain(mode);
        if (src.startsWith(".") || src.startsWith("/")) {
          expect(existsSync(join(DEPLOY, src)), `${n}: bind mount ${src} exists next to the compose file`).toBe(true);
        } else {
          expect(Object.keys(compose.volumes), `${n}: volume ${src} is declared`).toContain(src);
          used.add(src);
        }
      }
    }
    expect([...used].sort()).toEqual(Object.keys(compose.volumes).sort());
    // What the components read from /pki is what certs writes there.
    expect(services.certs.volumes).toEqual(["pki:/pki"]);
    for (const n of kubelabServices.filter((x) => x !== "certs")) expect(services[n].volumes, n).toContain("pki:/pki:ro");
  });

  it("depends only on services that exist, with conditions they can meet, in an order that has no cycle", () => {
    const conditions = new Set(["service_started", "service_healthy", "service_completed_successfully"]);
    for (const n of names) {
      const deps = services[n].depends_on ?? {};
      for (const [d, { condition }] of Object.entries(deps)) {
        expect(names, `${n} depends on ${d}`).toContain(d);
        expect(conditions.has(condition), `${n} → ${d}: condition ${condition}`).toBe(true);
        if (condition === "service_healthy") expect(services[d].healthcheck, `${n} waits for ${d} to be healthy: it needs a healthcheck`).toBeDefined();
        if (condition === "service_completed_successfully") expect(isOneShot(d), `${n} waits for ${d} to complete: it must be a one-shot (restart: "no")`).toBe(true);
        expect(services[d].profiles, `${n} depends on ${d}, which is only in a profile`).toBeUndefined();
      }
      if (services[n].network_mode) {
        const holder = nsOf(n);
        expect(names, `${n}: network_mode ${services[n].network_mode}`).toContain(holder);
        expect(deps[holder], `${n} depends on its namespace's holder ${holder}`).toBeDefined();
      }
      // Everything that talks to the apiserver waits for the certificates.
      if (kindOf(n) === "kubelab" && n !== "certs") expect(deps.certs?.condition, n).toBe("service_completed_successfully");
    }
    expect(startOrder().length).toBe(names.length);
  });

  it("gives every long-running service a healthcheck on its own /healthz (etcd: etcdctl endpoint health)", () => {
    for (const n of longRunning) {
      const hc = services[n].healthcheck;
      expect(hc?.test?.[0], `${n} has an exec-form healthcheck`).toBe("CMD");
      expect(hc!.interval && hc!.timeout && hc!.retries, `${n}: interval, timeout and retries`).toBeTruthy();
      const kind = kindOf(n);
      if (kind === "kubelab") {
        const url = new URL(/fetch\('([^']+)'\)/.exec(hc!.test.join(" "))![1]);
        expect(["127.0.0.1", "localhost"], n).toContain(url.hostname);
        expect(Number(url.port), `${n}: the healthcheck asks this process's health port`).toBe(healthPort(n));
        expect(["/healthz", "/readyz"], n).toContain(url.pathname);
        if (services[n].command![0] === "apiserver") expect(url.protocol, n).toBe("https:");
      } else if (kind === "etcd") {
        expect(hc!.test.slice(1), n).toEqual(["etcdctl", "--endpoints=http://127.0.0.1:2379", "endpoint", "health"]);
      } else if (kind === "prometheus") {
        expect(hc!.test.join(" "), n).toContain("http://127.0.0.1:9090/-/healthy");
      }
    }
  });

  it("has a Prometheus target for every long-running service with /metrics, at that service's metrics address", () => {
    const targets = new Map<string, string>(); // service → address
    for (const job of prometheus.scrape_configs) {
      for (const sc of job.static_configs) {
        for (const t of sc.targets) {
          const svc = sc.labels?.service;
          expect(svc && names.includes(svc), `job ${job.job_name}: target ${t} names a service`).toBe(true);
          expect(targets.has(svc!), `${svc} is scraped twice`).toBe(false);
          targets.set(svc!, t);
        }
      }
      if (job.authorization) expect(job.authorization.credentials_file.startsWith("/pki/"), job.job_name).toBe(true);
    }
    for (const n of longRunning) {
      expect(targets.has(n), `${n} is not scraped`).toBe(true);
      const t = targets.get(n)!;
      const kind = kindOf(n);
      const sameNs = nsOf(n) === nsOf("prometheus");
      const port =
        kind === "kubelab" ? healthPort(n) : kind === "etcd" ? Number(new URL(flag(services[n].command!, "--listen-client-urls")!).port) : 9090;
      expect(t, `${n}'s metrics address as Prometheus (in ${nsOf("prometheus")}'s namespace) reaches it`).toBe(`${sameNs ? "127.0.0.1" : n}:${port}`);
    }
    expect([...targets.keys()].sort()).toEqual([...longRunning].sort());
    // The apiservers' /metrics: TLS with the cluster CA and the bearer token `kubelab certs` writes alone to /pki/token.
    const api = prometheus.scrape_configs.find((j) => j.static_configs.some((sc) => sc.labels?.service === "apiserver-1"))!;
    expect(api).toMatchObject({ scheme: "https", tls_config: { ca_file: "/pki/ca.crt" }, authorization: { type: "Bearer", credentials_file: "/pki/token" } });
    expect(services.prometheus.volumes).toContain("pki:/pki:ro");
    expect(services.prometheus.volumes).toContain("./prometheus.yml:/etc/prometheus/prometheus.yml:ro");
  });

  it("runs a kubelet pool and a proxy in each zone of the default topology, on that zone's subnet", () => {
    const cc = services["cloud-controller"].command!;
    const topoPath = flag(cc, "--topology")!;
    expect(topoPath.startsWith("/app/"), "the topology is in the image (WORKDIR /app)").toBe(true);
    const topo = loadTopologyFile(join(REPO, topoPath.slice("/app/".length)));
    const pools = kubelabServices.filter((n) => services[n].command![0] === "kubelet");
    expect(pools.map((n) => flag(services[n].command!, "--zone")).sort()).toEqual(topo.zones.map((z) => z.name).sort());
    for (const n of pools) {
      const args = services[n].command!;
      const zone = topo.zones.find((z) => z.name === flag(args, "--zone"))!;
      expect(flag(args, "--subnet"), n).toBe(zone.subnet);
      expect(flag(args, "--region"), n).toBe(topo.region);
      expect(args, n).toEqual(expect.arrayContaining(["--simulate", "--cloud"]));
    }
    const proxies = kubelabServices.filter((n) => services[n].command![0] === "proxy");
    expect(proxies.map((n) => flag(services[n].command!, "--zone")).sort()).toEqual(topo.zones.map((z) => z.name).sort());
  });
});

/** Services in an order compose could start them (each after what it depends on). */
function startOrder(): string[] {
  const order: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (n: string, path: string[]) => {
    if (state.get(n) === "done") return;
    if (state.get(n) === "visiting") throw new Error(`depends_on cycle: ${[...path, n].join(" → ")}`);
    state.set(n, "visiting");
    for (const d of Object.keys(services[n].depends_on ?? {})) visit(d, [...path, n]);
    state.set(n, "done");
    order.push(n);
  };
  for (const n of names) visit(n, []);
  return order;
}

// ---------------------------------------------------------------------------------------------
// The same processes, here.

/** The translation of the compose file to this machine: every rewrite is recorded for the failure message. */
class Translation {
  readonly ports = new Map<string, number>(); // "namespace:port" → local port
  readonly rewrites = new Map<string, string>(); // compose text → local text (addresses, paths, files)
  constructor(readonly tmp: string, private readonly serviceCIDR: string) {}

  async allocate(): Promise<void> {
    // Every port a process listens on or a client dials, in every namespace, gets a free loopback port.
    const addr = this.addressRegex();
    const seen = new Set<string>();
    const need = (ns: string, port: number) => seen.add(`${ns}:${port}`);
    for (const n of names) {
      const s = services[n];
      const text = [...(s.command ?? []), ...(s.healthcheck?.test ?? [])];
      for (const [i, a] of text.entries()) {
        const own = text[i - 1] === "--server" ? nsOf("endpoint") : nsOf(n);
        for (const m of a.matchAll(addr)) need(names.includes(m[1]) ? nsOf(m[1]) : own, Number(m[2]));
        if (LISTEN_PORT_FLAGS.has(a)) need(nsOf(n), Number(text[i + 1]));
        if (a === "--advertise-port") need(nsOf("endpoint"), Number(text[i + 1]));
      }
      if (kindOf(n) === "kubelab" && HEALTH_PORT_FLAG[s.command![0]]) need(nsOf(n), healthPort(n));
      for (const p of s.ports ?? []) need(n, Number(p.split(":")[1]));
    }
    for (const job of prometheus.scrape_configs) for (const sc of job.static_configs) for (const t of sc.targets) for (const m of t.matchAll(addr)) need(names.includes(m[1]) ? nsOf(m[1]) : nsOf("prometheus"), Number(m[2]));
    // Distinct ports: a port freed by one freePort() may be handed out again by the next.
    const taken = new Set<number>();
    for (const k of [...seen].sort()) {
      let p = await freePort();
      while (taken.has(p)) p = await freePort();
      taken.add(p);
      this.ports.set(k, p);
    }
    // Simulated addresses: this test worker's own ranges, so that clusters of parallel suites never collide.
    const s = Number(this.serviceCIDR.split(".")[1]);
    this.rewrites.set("127.10.", `127.${s}.`);
  }

  /** "name:port", "0.0.0.0:port", "127.0.0.1:port", "localhost:port". */
  addressRegex(): RegExp {
    const hosts = [...names].sort((a, b) => b.length - a.length).map((n) => n.replace(/[.-]/g, "\\$&"));
    return new RegExp(`(?<![\\w.-])(${[...hosts, "0\\.0\\.0\\.0", "127\\.0\\.0\\.1", "localhost"].join("|")}):(\\d+)(?!\\d)`, "g");
  }

  port(ns: string, port: number): number {
    const p = this.ports.get(`${ns}:${port}`);
    if (p === undefined) throw new Error(`no local port for ${ns}:${port}\n${this.table()}`);
    return p;
  }

  /** One argument (or healthcheck string, or environment value) of service `n`, translated. */
  text(n: string, a: string, prev?: string): string {
    // The URL in the kubeconfig (certs --server) and the port of the default/kubernetes endpoints
    // (--advertise-port) are where the kubeconfig's users dial the cluster endpoint: in its namespace.
    const clientSide = prev === "--server" || prev === "--advertise-port";
    const own = clientSide ? nsOf("endpoint") : nsOf(n);
    let out = a.replace(this.addressRegex(), (_m, host: string, port: string) => {
      const ns = names.includes(host) ? nsOf(host) : own;
      return `127.0.0.1:${this.port(ns, Number(port))}`;
    });
    if (prev !== undefined && (LISTEN_PORT_FLAGS.has(prev) || prev === "--advertise-port")) out = String(this.port(own, Number(a)));
    if (prev === "--bind" && a === "0.0.0.0") out = "127.0.0.1";
    // Volumes become directories under tmp; the image's /app is this repository.
    for (const v of services[n].volumes ?? []) {
      const [src, dst] = v.split(":");
      const local = src.startsWith(".") || src.startsWith("/") ? join(DEPLOY, src) : join(this.tmp, "volumes", src);
      if (out === dst || out.startsWith(dst + "/")) out = local + out.slice(dst.length);
    }
    if (out.startsWith("/app/")) out = join(REPO, out.slice("/app/".length));
    for (const [from, to] of this.rewrites) out = out.split(from).join(to);
    return out;
  }

  args(n: string): string[] {
    const a = services[n].command ?? [];
    return a.map((x, i) => this.text(n, x, i > 0 ? a[i - 1] : undefined));
  }

  table(): string {
    const rows = [...this.ports].map(([k, v]) => `  ${k.padEnd(28)} → 127.0.0.1:${v}`);
    const rw = [...this.rewrites].map(([k, v]) => `  ${k.padEnd(28)} → ${v}`);
    return `compose → local mapping (namespace:port → loopback port; text rewrites):\n${rows.join("\n")}\n${rw.join("\n")}\n  volumes                      → ${join(this.tmp, "volumes")}/<name>; /app → ${REPO}`;
  }
}

interface Running {
  name: string;
  child: ChildProcess;
  exited: Promise<number>;
  log: string;
}

let tr: Translation;
let tmp: string;
const running = new Map<string, Running>();
let kubeconfig: string;
let cacheDir: string;

function logTail(n: string, lines = 15): string {
  const r = running.get(n);
  if (!r || !existsSync(r.log)) return `${n}: (not started)`;
  return `--- ${n} (${r.log}):\n` + readFileSync(r.log, "utf8").trim().split("\n").slice(-lines).join("\n");
}

function kubectl(args: string[], timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile("kubectl", ["--kubeconfig", kubeconfig, "--cache-dir", cacheDir, ...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Runs service `n`'s healthcheck here: the kubelab image's `node -e "fetch(...)"` as it is (addresses
 * translated); etcd's `etcdctl endpoint health` as the GET /health it amounts to (no etcdctl here).
 */
function healthcheck(n: string): Promise<boolean> {
  const test = services[n].healthcheck!.test;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(services[n].environment ?? {})) env[k] = tr.text(n, v);
  if (test[1] === "node" && test[2] === "-e") {
    const js = tr.text(n, test[3]);
    // Starting node costs CPU on a 2-core machine shared by ~20 processes: run the command only once
    // something listens on the port it asks.
    const url = new URL(/fetch\('([^']+)'\)/.exec(js)![1]);
    return listening(Number(url.port)).then((open) =>
      !open
        ? false
        : new Promise((resolve) => {
            execFile(process.execPath, ["-e", js], { timeout: 3_000, env: { ...process.env, ...env } }, (err) => resolve(!err));
          }),
    );
  }
  if (test[1] === "etcdctl") {
    const endpoint = tr.text(n, test.find((t) => t.startsWith("--endpoints="))!.slice("--endpoints=".length));
    return fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(3_000) })
      .then(async (r) => r.ok && ((await r.json()) as { health?: string }).health === "true")
      .catch(() => false);
  }
  throw new Error(`${n}: no local translation of healthcheck ${test.join(" ")}`);
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: "127.0.0.1", port }, () => {
      sock.destroy();
      resolve(true);
    });
    sock.on("error", () => resolve(false));
    sock.setTimeout(1000, () => {
      sock.destroy();
      resolve(false);
    });
  });
}

/** Starts every service that runs without a profile, each once its depends_on conditions hold, as compose does. */
async function up(): Promise<void> {
  const started = new Map<string, Promise<void>>();
  const healthy = new Map<string, Promise<void>>();
  const completed = new Map<string, Promise<void>>();
  const start = (n: string): Promise<void> => {
    if (!started.has(n)) started.set(n, run(n));
    return started.get(n)!;
  };
  const waitHealthy = (n: string): Promise<void> => {
    if (!healthy.has(n)) {
      healthy.set(
        n,
        start(n).then(async () => {
          const r = running.get(n)!;
          const deadline = Date.now() + 90_000;
          while (!(await healthcheck(n))) {
            if (r.child.exitCode !== null || r.child.signalCode !== null) throw new Error(`${n} exited (${r.child.exitCode ?? r.child.signalCode}) before it was healthy\n${logTail(n)}`);
            if (Date.now() > deadline) throw new Error(`${n} did not pass its healthcheck within 90 s\n${logTail(n)}`);
            await new Promise((res) => setTimeout(res, 300));
          }
        }),
      );
    }
    return healthy.get(n)!;
  };
  const waitCompleted = (n: string): Promise<void> => {
    if (!completed.has(n)) {
      completed.set(
        n,
        start(n).then(async () => {
          const code = await running.get(n)!.exited;
          if (code !== 0) throw new Error(`${n} exited ${code}\n${logTail(n)}`);
        }),
      );
    }
    return completed.get(n)!;
  };
  async function run(n: string): Promise<void> {
    const s = services[n];
    await Promise.all(
      Object.entries(s.depends_on ?? {}).map(([d, { condition }]) =>
        condition === "service_healthy" ? waitHealthy(d) : condition === "service_completed_successfully" ? waitCompleted(d) : start(d),
      ),
    );
    const kind = kindOf(n);
    if (kind === "netns") return; // the namespace holder: here, the machine's own loopback
    const args = tr.args(n);
    // etcd: the local binary for the image's /usr/local/bin/etcd; kubelab: the image's entrypoint.
    const [cmd, cmdArgs] = kind === "etcd" ? ["etcd", args.slice(1)] : [process.execPath, [MAIN, ...args]];
    for (const v of s.volumes ?? []) {
      const src = v.split(":")[0];
      if (!src.startsWith(".") && !src.startsWith("/")) mkdirSync(join(tmp, "volumes", src), { recursive: true });
    }
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(s.environment ?? {})) env[k] = tr.text(n, v);
    const log = join(tmp, "logs", `${n}.log`);
    const out = createWriteStream(log);
    await new Promise((r) => out.once("open", r));
    const child = spawn(cmd, cmdArgs, { cwd: REPO, stdio: ["ignore", out, out], env: { ...process.env, ...env } });
    const exited = new Promise<number>((resolve) => {
      child.once("exit", (code, sig) => resolve(code ?? (sig ? 128 : -1)));
      child.once("error", (e) => {
        out.write(`cannot start ${cmd}: ${e.message}\n`);
        resolve(127);
      });
    });
    running.set(n, { name: n, child, exited, log });
    writeFileSync(join(tmp, "logs", `${n}.cmd`), [cmd, ...cmdArgs].join(" ") + "\n");
  }
  const wanted = names.filter((n) => !services[n].profiles);
  await Promise.all(wanted.map((n) => (services[n].healthcheck ? waitHealthy(n) : isOneShot(n) ? waitCompleted(n) : start(n))));
}

async function down(): Promise<void> {
  const live = [...running.values()].filter((r) => r.child.exitCode === null && r.child.signalCode === null);
  const signal = (r: Running, sig: NodeJS.Signals) => {
    try {
      if (r.child.exitCode === null && r.child.signalCode === null) process.kill(r.child.pid!, sig);
    } catch {
      // exited in between
    }
  };
  for (const r of live) signal(r, "SIGTERM");
  await Promise.all(
    live.map(async (r) => {
      const t = setTimeout(() => signal(r, "SIGKILL"), 10_000);
      await r.exited;
      clearTimeout(t);
    }),
  );
}

/** GET url (https: with the CA and bearer token Prometheus' scrape config gives it) → "STATUS\nBODY", or "error …". */
function scrape(url: string, o: { ca?: string; token?: string }): Promise<string> {
  return new Promise((resolve) => {
    const get = url.startsWith("https:") ? https.get : http.get;
    get(url, { ca: o.ca, headers: o.token ? { authorization: `Bearer ${o.token}` } : {}, timeout: 5000 }, (res) => {
      let b = "";
      res.on("data", (d: Buffer) => (b += d.toString()));
      res.on("end", () => resolve(`${res.statusCode}\n${b}`));
    })
      .on("timeout", function (this: { destroy(e: Error): void }) {
        this.destroy(new Error("timeout"));
      })
      .on("error", (e) => resolve(`error ${e.message}`));
  });
}

describe("the compose file's processes, run here on loopback", () => {
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), "kubelab-compose-"));
    mkdirSync(join(tmp, "logs"));
    cacheDir = join(tmp, "kubectl-cache");
    tr = new Translation(tmp, testServiceCIDR());
    await tr.allocate();
    // The default topology on this worker's own address range: the cloud controller's topology
    // file and the kubelets' --subnet move together.
    const topoArg = flag(services["cloud-controller"].command!, "--topology")!;
    const original = loadTopologyFile(join(REPO, topoArg.slice("/app/".length)));
    const text = readFileSync(join(REPO, topoArg.slice("/app/".length)), "utf8").replace(/^clusterCIDR: .*$/m, `clusterCIDR: ${testClusterCIDR()}`);
    const localTopo = join(tmp, "topology.yaml");
    writeFileSync(localTopo, text);
    const moved = loadTopologyFile(localTopo);
    for (const z of original.zones) tr.rewrites.set(z.subnet, moved.zones.find((m) => m.name === z.name)!.subnet);
    tr.rewrites.set(join(REPO, topoArg.slice("/app/".length)), localTopo);
    kubeconfig = join(tmp, "volumes", "pki", "kubeconfig");
    const t0 = Date.now();
    try {
      await up();
      process.stdout.write(`compose services: ${running.size} processes started in dependency order and healthy in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${tr.table()}\n${[...running.keys()].map((n) => logTail(n)).join("\n")}`);
    }
  }, 240_000);

  afterAll(async () => {
    await down();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  const explain = () => `\n${tr.table()}\n${[...running.keys()].filter((n) => n.startsWith("kubelet") || n.startsWith("cloud") || n === "endpoint").map((n) => logTail(n, 8)).join("\n")}`;

  it("kubectl through the cluster endpoint sees 6 Ready nodes, 2 in each of the 3 zones", async () => {
    const t0 = Date.now();
    const zones = await poll("6 Ready nodes", async () => {
      const r = await kubectl(["get", "nodes", "-o", "json"]);
      if (r.code !== 0) throw new Error(r.stderr);
      const items = (JSON.parse(r.stdout) as { items: { metadata: { labels: Record<string, string> }; status: { conditions?: { type: string; status: string }[] } }[] }).items;
      const ready = items.filter((i) => i.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"));
      if (ready.length < 6) return false;
      const perZone: Record<string, number> = {};
      for (const i of ready) perZone[i.metadata.labels["topology.kubernetes.io/zone"]] = (perZone[i.metadata.labels["topology.kubernetes.io/zone"]] ?? 0) + 1;
      return perZone;
    }, 120_000, 1000).catch((e: Error) => {
      throw new Error(e.message + explain());
    });
    process.stdout.write(`compose services: 6 nodes Ready ${((Date.now() - t0) / 1000).toFixed(1)} s after that\n`);
    expect(zones).toEqual({ "local-1a": 2, "local-1b": 2, "local-1c": 2 });
    // The kubeconfig certs wrote names the endpoint, not an apiserver.
    expect(readFileSync(kubeconfig, "utf8")).toContain(`server: https://127.0.0.1:${tr.port(nsOf("endpoint"), 6443)}`);
  }, 150_000);

  it("runs a Deployment of 3 to completion", async () => {
    const c = await kubectl(["create", "deployment", "web", "--image=busybox", "--replicas=3", "--", "httpd", "-f", "-p", "8080"]);
    expect(c.code, c.stderr).toBe(0);
    const r = await kubectl(["rollout", "status", "deployment/web", "--timeout=120s"], 130_000);
    expect(r.code, r.stderr + r.stdout + explain()).toBe(0);
    const pods = await kubectl(["get", "pods", "-l", "app=web", "-o", "jsonpath={range .items[*]}{.status.phase} {.spec.nodeName}{\"\\n\"}{end}"]);
    const lines = pods.stdout.trim().split("\n").filter(Boolean);
    expect(lines.length).toBe(3);
    for (const l of lines) expect(l).toMatch(/^Running \S+$/);
  }, 150_000);

  it("carries traffic to the pods of every zone they run in: through the ingress's published port and a ClusterIP", async () => {
    for (const args of [
      ["expose", "deployment", "web", "--port", "80", "--target-port", "8080"],
      ["create", "ingress", "web", "--class=kubelab", "--rule=web.test/*=web:80"],
    ]) {
      const r = await kubectl(args);
      expect(r.code, r.stderr).toBe(0);
    }
    const podZones = new Set<string>();
    const nodes = JSON.parse((await kubectl(["get", "nodes", "-o", "json"])).stdout) as { items: { metadata: { name: string; labels: Record<string, string> } }[] };
    const zoneOf = new Map(nodes.items.map((n) => [n.metadata.name, n.metadata.labels["topology.kubernetes.io/zone"]]));
    for (const node of (await kubectl(["get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].spec.nodeName}"])).stdout.trim().split(/\s+/)) podZones.add(zoneOf.get(node)!);
    // The ingress controller's HTTP port as the Docker host reaches it: the port netns publishes for 8080.
    const published = services[nsOf("ingress")].ports!.find((p) => p.endsWith(":8080"))!;
    const ingressURL = `http://127.0.0.1:${tr.port(nsOf("ingress"), Number(published.split(":")[1]))}/hello`;
    const seen = await poll(`answers from pods in ${[...podZones].join(", ")} through ${ingressURL}`, async () => {
      const zones = new Set<string>();
      for (let i = 0; i < 12; i++) {
        const body = await new Promise<string>((resolve) => {
          http
            .get(ingressURL, { headers: { host: "web.test" }, timeout: 5000 }, (res) => {
              let b = "";
              res.on("data", (d: Buffer) => (b += d.toString()));
              res.on("end", () => resolve(res.statusCode === 200 ? b : ""));
            })
            .on("error", () => resolve(""));
        });
        if (!body) return false;
        zones.add((JSON.parse(body) as { zone: string }).zone);
      }
      return zones.size === podZones.size ? zones : false;
    }, 60_000, 500).catch((e: Error) => {
      throw new Error(e.message + "\n" + logTail("ingress") + explain());
    });
    expect(podZones.size, "the 3 replicas run in more than one zone").toBeGreaterThan(1);
    expect([...seen].sort()).toEqual([...podZones].sort());
    // The Service's ClusterIP (a loopback address of this worker's service range) through the proxies.
    const clusterIP = (await kubectl(["get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"])).stdout.trim();
    expect(clusterIP.startsWith(testServiceCIDR().split(".").slice(0, 2).join(".") + "."), clusterIP).toBe(true);
    const viaProxy = await poll(`http://${clusterIP}/ through the service proxies`, () => scrape(`http://${clusterIP}/hello`, {}).then((b) => (b.startsWith("200\n") ? b : false)), 30_000, 500);
    expect(JSON.parse(viaProxy.slice(4)) as { zone: string }).toHaveProperty("zone");
  }, 120_000);

  it("has leaders for the scheduler, controller-manager and cloud-controller leases", async () => {
    for (const lease of ["kube-scheduler", "kube-controller-manager", "kubelab-cloud-controller"]) {
      const holder = await poll(`a holder of lease ${lease}`, async () => {
        const r = await kubectl(["-n", "kube-system", "get", "lease", lease, "-o", "jsonpath={.spec.holderIdentity}"]);
        return r.code === 0 && r.stdout.trim() !== "" ? r.stdout.trim() : false;
      }, 30_000, 500);
      expect(holder, lease).toMatch(/_/); // hostname_uuid, as upstream's identities
    }
  }, 120_000);

  it("answers /metrics at every Prometheus target of deploy/prometheus.yml", async () => {
    const token = readFileSync(join(tmp, "volumes", "pki", "token"), "utf8").trim();
    const ca = readFileSync(join(tmp, "volumes", "pki", "ca.crt"), "utf8");
    const failures: string[] = [];
    let scraped = 0;
    for (const job of prometheus.scrape_configs) {
      for (const sc of job.static_configs) {
        const svc = sc.labels!.service;
        if (services[svc].profiles) continue; // Prometheus itself: no binary here
        for (const t of sc.targets) {
          const addr = tr.text("prometheus", t);
          const url = `${job.scheme ?? "http"}://${addr}/metrics`;
          const body = await scrape(url, { ca: job.tls_config ? ca : undefined, token: job.authorization ? token : undefined });
          scraped++;
          if (!body.startsWith("200\n") || !body.includes("# HELP")) failures.push(`${job.job_name} ${svc} ${t} (here ${url}): ${body.slice(0, 120)}`);
        }
      }
    }
    expect(failures, failures.join("\n") + "\n" + tr.table()).toEqual([]);
    expect(scraped).toBe(longRunning.filter((n) => !services[n].profiles).length);
  }, 60_000);

  it("goes on through the endpoint when apiserver-1 is SIGKILLed (compose would restart it; this test does not)", async () => {
    const victim = running.get("apiserver-1")!;
    process.kill(victim.child.pid!, "SIGKILL");
    await victim.exited;
    // A retry is allowed: a connection the endpoint had already given to apiserver-1 breaks.
    const nodeNames = await poll("kubectl get nodes through the endpoint with apiserver-1 dead", async () => {
      const r = await kubectl(["get", "nodes", "-o", "name", "--request-timeout=5s"]);
      return r.code === 0 ? r.stdout.trim().split("\n") : false;
    }, 30_000, 500);
    expect(nodeNames.length).toBe(6);
    const w = await kubectl(["create", "configmap", "after-apiserver-1", "--from-literal=k=v"]);
    expect(w.code, w.stderr).toBe(0);
    // The endpoint's health checks (--health-ca from the pki volume) see it: /readyz still ok on apiserver-2.
    const ready = await scrape(`http://127.0.0.1:${tr.port(nsOf("endpoint"), healthPort("endpoint"))}/readyz`, {});
    expect(ready.startsWith("200\n"), ready).toBe(true);
  }, 60_000);

  it("kubelab certs run again keeps the CA, the serving certificate and the token", async () => {
    const pki = join(tmp, "volumes", "pki");
    const before = ["ca.crt", "ca.key", "apiserver.crt", "tokens.csv", "kubeconfig"].map((f) => readFileSync(join(pki, f), "utf8"));
    const r = await kubelab(tr.args("certs"));
    expect(r.code, r.out).toBe(0);
    const after = ["ca.crt", "ca.key", "apiserver.crt", "tokens.csv", "kubeconfig"].map((f) => readFileSync(join(pki, f), "utf8"));
    expect(after).toEqual(before);
    // A new name re-issues the serving certificate from the same CA; the CA and the token stay.
    const again = await kubelab([...tr.args("certs"), "--tls-san", "apiserver-3"]);
    expect(again.code, again.out).toBe(0);
    expect(readFileSync(join(pki, "apiserver.crt"), "utf8")).not.toBe(before[2]);
    expect(readFileSync(join(pki, "ca.crt"), "utf8")).toBe(before[0]);
    expect(readFileSync(join(pki, "tokens.csv"), "utf8")).toBe(before[3]);
  }, 60_000);
});
