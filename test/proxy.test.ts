// The service proxy end to end: `kubelab proxy` (one per zone, as `up` runs them) against a cluster of
// simulated nodes, driven by the real kubectl: ClusterIP round-robin over a deployment's pods, a pod
// failing readiness left out, NodePort on node addresses, sessionAffinity ClientIP, external and
// internal traffic policy Local, a port taken by another process (Event, others keep serving),
// metrics, scale to 0 (refused), takeover by another zone's proxy and SIGTERM; and --service-interface
// on a second cluster whose service range is blackholed and whose ClusterIPs go on an interface we make.

import { execFile, spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import net from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readUpState } from "../cli/up.ts";
import { REPO, freePort, startKubelab, testServiceCIDR, testSlot, type Kubelab } from "./harness/kubelab.ts";
import { poll } from "./harness/poll.ts";

// This worker's slot (locked host-wide by the harness): every address below is derived from it.
const poolId = testSlot();
const range = testServiceCIDR();
const squatIP = `127.${16 + poolId}.200.7`;
const ifaceRange = `10.254.${poolId}.0/24`;
const iface = `kptest${poolId}`;
const zones = ["local-1a", "local-1b", "local-1c"];

interface OwnProxy {
  child: ChildProcess;
  zone: string;
  healthPort: number;
  output: () => string;
  exited: Promise<number | null>;
}

let k: Kubelab;
let k2: Kubelab | undefined;
const own: OwnProxy[] = [];
/** Health ports of the proxies serving cluster k (ours or up's). */
let healthPorts: number[] = [];
let ifaceCreated = false;
let routeAdded = false;

function sh(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) =>
    execFile(cmd, args, { timeout: 20_000 }, (e, stdout, stderr) => resolve({ code: e ? (typeof e.code === "number" ? e.code : 1) : 0, out: stdout + stderr })),
  );
}

async function kc(c: Kubelab, args: string[], input?: string): Promise<string> {
  const r = await c.kubectl(args, { input, timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

function startProxy(c: Kubelab, zone: string, healthPort: number, extra: string[] = []): OwnProxy {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(REPO, "cli/main.ts"), "proxy", "--kubeconfig", c.kubeconfig, "--zone", zone, "--healthz-port", String(healthPort), ...extra],
    { cwd: REPO, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, KUBELAB_LOG_LEVEL: "info" } },
  );
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const p = { child, zone, healthPort, output: () => out, exited };
  own.push(p);
  return p;
}

interface Reply {
  status: number;
  body: string;
}

/** One HTTP GET on a fresh connection (optionally from `localAddress`); rejects with the socket error. */
function get(host: string, port: number, localAddress?: string, path = "/"): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path, localAddress, timeout: 5000, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })));
  });
}

/** The pod name an echo answer names. */
async function podAt(host: string, port: number, localAddress?: string): Promise<string> {
  const r = await get(host, port, localAddress);
  return (JSON.parse(r.body) as { pod: string }).pod;
}

async function errorCode(host: string, port: number, localAddress?: string): Promise<string> {
  try {
    const r = await get(host, port, localAddress);
    return `answered ${r.status}`;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  }
}

async function clusterIP(c: Kubelab, svc: string): Promise<string> {
  return (await kc(c, ["get", "svc", svc, "-o", "jsonpath={.spec.clusterIP}"])).trim();
}

interface NodeInfo {
  name: string;
  ip: string;
  zone: string;
}

async function nodes(): Promise<NodeInfo[]> {
  const list = JSON.parse(await kc(k, ["get", "nodes", "-o", "json"])) as { items: { metadata: { name: string; labels: Record<string, string> }; status: { addresses: { type: string; address: string }[] } }[] };
  return list.items.map((n) => ({ name: n.metadata.name, ip: n.status.addresses.find((a) => a.type === "InternalIP")!.address, zone: n.metadata.labels["topology.kubernetes.io/zone"] }));
}

/** Ready web pods: name → node. */
async function webPods(): Promise<Map<string, string>> {
  const list = JSON.parse(await kc(k, ["get", "pods", "-l", "app=web,!unready", "-o", "json"])) as {
    items: { metadata: { name: string }; spec: { nodeName?: string }; status: { conditions?: { type: string; status: string }[] } }[];
  };
  const ready = list.items.filter((p) => p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"));
  return new Map(ready.map((p) => [p.metadata.name, p.spec.nodeName ?? ""]));
}

const unreadyPod = `
apiVersion: v1
kind: Pod
metadata: {name: web-unready, labels: {app: web, unready: "yes"}}
spec:
  containers:
  - name: web
    image: busybox
    command: [httpd, -f, -p, "8080"]
    readinessProbe:
      exec: {command: [sh, -c, "exit 1"]}
      periodSeconds: 1
`;

beforeAll(async () => {
  // The second cluster's service range is not loopback: blackholed before anything can send to it.
  const r = await sh("ip", ["route", "add", "unreachable", ifaceRange]);
  if (r.code !== 0) throw new Error(`cannot blackhole ${ifaceRange}: ${r.out}`);
  routeAdded = true;
  let made = await sh("ip", ["link", "add", iface, "type", "dummy"]);
  // Kernels without the dummy module: a port-less bridge holds addresses just as well.
  if (made.code !== 0) made = await sh("ip", ["link", "add", iface, "type", "bridge"]);
  if (made.code !== 0) throw new Error(`cannot create ${iface}: ${made.out}`);
  ifaceCreated = true;
  await sh("ip", ["link", "set", iface, "up"]);

  const [a, b] = await Promise.all([
    startKubelab({ nodes: true, extraArgs: ["--service-cluster-ip-range", range] }),
    // Pod addresses of its own, outside every worker's test range (127.128.0.0/9) and up's default.
    startKubelab({
      nodes: true,
      extraArgs: ["--service-cluster-ip-range", ifaceRange, "--cluster-cidr", `127.${32 + 2 * poolId}.0.0/15`, "--zones", "local-1a", "--nodes-per-zone", "1"],
    }),
  ]);
  k = a;
  k2 = b;
  const wired = readUpState(k.dataDir)?.components.filter((c) => c.name.startsWith("proxy-")) ?? [];
  if (wired.length > 0) {
    healthPorts = wired.map((c) => c.healthPort!);
  } else {
    for (const z of zones) startProxy(k, z, await freePort());
    healthPorts = own.map((p) => p.healthPort);
  }
  for (const port of healthPorts) await poll(`proxy /readyz on ${port}`, async () => (await get("127.0.0.1", port, undefined, "/readyz")).status === 200, 60_000);

  await kc(k, ["create", "deployment", "web", "--image=busybox", "--replicas=3", "--", "httpd", "-f", "-p", "8080"]);
  await kc(k, ["apply", "-f", "-"], unreadyPod);
  await kc(k, ["expose", "deployment", "web", "--port", "80", "--target-port", "8080"]);
  await poll("3 ready web pods", async () => (await webPods()).size === 3, 90_000);
}, 300_000);

afterAll(async () => {
  for (const p of own) if (p.child.exitCode === null && p.child.signalCode === null) process.kill(p.child.pid!, "SIGKILL");
  await Promise.all([k?.stop({ clean: true }), k2?.stop({ clean: true })]);
  if (ifaceCreated) await sh("ip", ["link", "del", iface]);
  if (routeAdded) await sh("ip", ["route", "del", "unreachable", ifaceRange]);
}, 60_000);

describe("kubelab proxy", () => {
  it("spreads connections to a ClusterIP over all 3 ready pods and never to one failing readiness", async () => {
    const ip = await clusterIP(k, "web");
    expect(ip.startsWith(`127.${16 + poolId}.`)).toBe(true);
    const pods = await webPods();
    const seen = new Set<string>();
    await poll("all 3 pods answer on the ClusterIP", async () => {
      seen.add(await podAt(ip, 80));
      return seen.size >= 3 && [...pods.keys()].every((p) => seen.has(p));
    }, 60_000, 50);
    for (let i = 0; i < 9; i++) seen.add(await podAt(ip, 80));
    expect([...seen].sort()).toEqual([...pods.keys()].sort());
    expect(seen.has("web-unready")).toBe(false);
    // The unready pod is running and would answer: it is the proxy that leaves it out.
    const phase = (await kc(k, ["get", "pod", "web-unready", "-o", "jsonpath={.status.phase}"])).trim();
    expect(phase).toBe("Running");
  });

  it("answers a NodePort on a node's address and on 127.0.0.1", async () => {
    await kc(k, ["expose", "deployment", "web", "--name", "web-np", "--type", "NodePort", "--port", "80", "--target-port", "8080"]);
    const nodePort = Number(await kc(k, ["get", "svc", "web-np", "-o", "jsonpath={.spec.ports[0].nodePort}"]));
    const pods = await webPods();
    for (const n of (await nodes()).slice(0, 2)) {
      const pod = await poll(`NodePort on ${n.ip}`, async () => podAt(n.ip, nodePort), 30_000, 100);
      expect(pods.has(pod)).toBe(true);
    }
    expect(pods.has(await poll("NodePort on 127.0.0.1", () => podAt("127.0.0.1", nodePort), 30_000, 100))).toBe(true);
  });

  it("keeps a client on one pod with sessionAffinity ClientIP", async () => {
    await kc(k, ["expose", "deployment", "web", "--name", "web-sticky", "--port", "80", "--target-port", "8080", "--session-affinity", "ClientIP"]);
    const ip = await clusterIP(k, "web-sticky");
    const first = await poll("web-sticky answers", () => podAt(ip, 80), 30_000, 100);
    const seen = new Set<string>();
    for (let i = 0; i < 9; i++) seen.add(await podAt(ip, 80));
    expect([...seen]).toEqual([first]);
  });

  it("with externalTrafficPolicy Local answers a NodePort only on nodes with a pod, from that node's pod, and refuses elsewhere", async () => {
    // Local from its creation (see internalTrafficPolicy below: a patch races the proxies).
    await kc(k, ["expose", "deployment", "web", "--name", "web-local", "--type", "NodePort", "--port", "80", "--target-port", "8080", "--overrides", '{"spec":{"externalTrafficPolicy":"Local"}}']);
    expect((await kc(k, ["get", "svc", "web-local", "-o", "jsonpath={.spec.externalTrafficPolicy}"])).trim()).toBe("Local");
    const nodePort = Number(await kc(k, ["get", "svc", "web-local", "-o", "jsonpath={.spec.ports[0].nodePort}"]));
    const pods = await webPods();
    const podNodes = new Set(pods.values());
    const all = await nodes();
    const withPod = all.find((n) => podNodes.has(n.name))!;
    const without = all.find((n) => !podNodes.has(n.name))!;
    const pod = await poll("NodePort on a node with a pod", () => podAt(withPod.ip, nodePort), 30_000, 100);
    expect(pods.get(pod)).toBe(withPod.name);
    for (let i = 0; i < 4; i++) expect(pods.get(await podAt(withPod.ip, nodePort))).toBe(withPod.name);
    expect(await errorCode(without.ip, nodePort)).toBe("ECONNREFUSED");
  });

  it("with internalTrafficPolicy Local sends a client on a node only to that node's pods and closes clients on no such node", async () => {
    // Local from its creation: a Service created Cluster and patched afterwards is served Cluster by
    // a proxy for as long as the patch takes to reach it, and a first answer proves nothing.
    await kc(k, ["expose", "deployment", "web", "--name", "web-itl", "--port", "80", "--target-port", "8080", "--overrides", '{"spec":{"internalTrafficPolicy":"Local"}}']);
    expect((await kc(k, ["get", "svc", "web-itl", "-o", "jsonpath={.spec.internalTrafficPolicy}"])).trim()).toBe("Local");
    const ip = await clusterIP(k, "web-itl");
    const pods = await webPods();
    const podNodes = new Set(pods.values());
    const all = await nodes();
    const withPod = all.find((n) => podNodes.has(n.name))!;
    const without = all.find((n) => !podNodes.has(n.name))!;
    const pod = await poll("web-itl from a node with a pod", () => podAt(ip, 80, withPod.ip), 30_000, 100);
    expect(pods.get(pod)).toBe(withPod.name);
    for (let i = 0; i < 4; i++) expect(pods.get(await podAt(ip, 80, withPod.ip))).toBe(withPod.name);
    expect(await errorCode(ip, 80, without.ip)).toBe("ECONNRESET");
    expect(await errorCode(ip, 80, "127.0.0.1")).toBe("ECONNRESET");
  });

  it("reports a Service whose address is held by another process with a Warning Event, and keeps serving the others", async () => {
    const squatter = net.createServer((c) => c.end("squatter\n"));
    await new Promise<void>((r) => squatter.listen(9999, squatIP, r));
    try {
      await kc(k, ["create", "service", "clusterip", "squat", `--clusterip=${squatIP}`, "--tcp=9999:8080"]);
      await kc(k, ["set", "selector", "svc/squat", "app=web"]);
      const ev = await poll("a Warning Event on svc/squat", async () => {
        const out = await kc(k, ["get", "events", "--field-selector", "involvedObject.name=squat", "-o", "json"]);
        const items = (JSON.parse(out) as { items: { type: string; reason: string; message: string }[] }).items;
        return items.find((e) => e.type === "Warning");
      }, 30_000);
      expect(ev.reason).toBe("FailedToStartServiceListener");
      expect(ev.message).toBe(`cannot listen on ${squatIP}:9999/TCP: address already in use by another process`);
      // The squatter keeps its port; the other Services keep working; no proxy died.
      const answer = await new Promise<string>((resolve) => {
        const c = net.connect(9999, squatIP);
        let b = "";
        c.on("data", (d) => (b += d.toString()));
        c.on("close", () => resolve(b));
      });
      expect(answer).toBe("squatter\n");
      expect((await webPods()).has(await podAt(await clusterIP(k, "web"), 80))).toBe(true);
      for (const p of own) expect(p.child.exitCode).toBeNull();
      for (const c of readUpState(k.dataDir)?.components.filter((x) => x.name.startsWith("proxy-")) ?? []) expect(() => process.kill(c.pid!, 0)).not.toThrow();
    } finally {
      squatter.close();
    }
    // Freed: the proxy takes the address within its retry period.
    expect((await webPods()).has(await poll("squat served once freed", () => podAt(squatIP, 9999), 30_000, 100))).toBe(true);
  });

  it("serves upstream's sync metrics and per-Service counters", async () => {
    const texts = await Promise.all(healthPorts.map(async (p) => (await get("127.0.0.1", p, undefined, "/metrics")).body));
    const all = texts.join("\n");
    expect(all).toMatch(/kubeproxy_sync_proxy_rules_duration_seconds_count \d+/);
    expect(all).toMatch(/kubeproxy_sync_proxy_rules_last_timestamp_seconds \d/);
    expect(all).toMatch(/kubelab_proxy_connections_total\{namespace="default",service="web",port=""\} [1-9]/);
    expect(all).toMatch(/kubelab_proxy_bytes_total\{namespace="default",service="web",direction="out"\} [1-9]/);
    expect(all).toMatch(/kubelab_proxy_errors_total\{namespace="default",service="web-itl",reason="no_endpoints"\} [1-9]/);
  });

  it("answers a Local LoadBalancer's health check node port: 200 with the local endpoint count on a node with a pod, 503 elsewhere", async () => {
    await kc(k, ["expose", "deployment", "web", "--name", "web-lb", "--type", "LoadBalancer", "--port", "80", "--target-port", "8080"]);
    await kc(k, ["patch", "svc", "web-lb", "-p", '{"spec":{"externalTrafficPolicy":"Local"}}']);
    const hc = Number(await kc(k, ["get", "svc", "web-lb", "-o", "jsonpath={.spec.healthCheckNodePort}"]));
    expect(hc).toBeGreaterThan(0);
    const pods = await webPods();
    const all = await nodes();
    const withPod = all.find((n) => [...pods.values()].includes(n.name))!;
    const without = all.find((n) => ![...pods.values()].includes(n.name))!;
    const count = [...pods.values()].filter((n) => n === withPod.name).length;
    const ok = await poll("health check on a node with a pod", async () => {
      const r = await get(withPod.ip, hc);
      return r.status === 200 ? r : undefined;
    }, 30_000, 100);
    expect(JSON.parse(ok.body)).toEqual({ service: { namespace: "default", name: "web-lb" }, localEndpoints: count, serviceProxyHealthy: true });
    const bad = await get(without.ip, hc);
    expect(bad.status).toBe(503);
    expect(JSON.parse(bad.body).localEndpoints).toBe(0);
  });

  it("carries cluster DNS over UDP and TCP: dig at the kube-dns ClusterIP reaches the DNS server behind it", async () => {
    const dnsIP = `127.${16 + poolId}.0.10`;
    const up = readUpState(k.dataDir);
    if (!up?.components.some((c) => c.name === "dns")) {
      const [dnsPort, dnsHealth] = [await freePort(), await freePort()];
      const child = spawn(
        process.execPath,
        ["--import", "tsx", join(REPO, "cli/main.ts"), "dns", "--kubeconfig", k.kubeconfig, "--dns-port", String(dnsPort), "--healthz-port", String(dnsHealth), "--service-ip", dnsIP, "--name", "proxytest", "--zone", "local-1a"],
        { cwd: REPO, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, KUBELAB_LOG_LEVEL: "info" } },
      );
      let out = "";
      child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
      own.push({ child, zone: "dns", healthPort: dnsHealth, output: () => out, exited: new Promise((r) => child.once("exit", r)) });
      await poll("dns /readyz", async () => (await get("127.0.0.1", dnsHealth, undefined, "/readyz")).status === 200, 60_000);
    }
    const webIP = await clusterIP(k, "web");
    for (const proto of ["+notcp", "+tcp"]) {
      const answer = await poll(`dig ${proto} through the proxy`, async () => {
        const r = await sh("dig", [`@${dnsIP}`, "+time=2", "+tries=1", "+short", proto, "web.default.svc.cluster.local"]);
        if (r.out.trim() !== webIP) throw new Error(`dig answered ${JSON.stringify(r.out)}; listeners: ${own.map((p) => p.output().split("\n").filter((l) => l.includes(`${dnsIP}:53`)).join(" ")).join(" | ")}`);
        return r.out.trim();
      }, 60_000, 250);
      expect(answer).toBe(webIP);
    }
  }, 150_000);

  it("refuses connections once the deployment is scaled to 0", async () => {
    const ip = await clusterIP(k, "web");
    await kc(k, ["scale", "deployment", "web", "--replicas=0"]);
    await poll("ClusterIP refuses", async () => (await errorCode(ip, 80)) === "ECONNREFUSED", 60_000, 100);
    await kc(k, ["scale", "deployment", "web", "--replicas=3"]);
    await poll("3 ready web pods again", async () => (await webPods()).size === 3, 90_000);
    await poll("ClusterIP answers again", async () => (await webPods()).has(await podAt(ip, 80)), 30_000, 100);
  });

  it("hands a ClusterIP over to another zone's proxy when its holder stops", async () => {
    const ip = await clusterIP(k, "web");
    const holder = async () => {
      const r = await sh("ss", ["-Hltnp", "src", `${ip}:80`]);
      const m = /pid=(\d+)/.exec(r.out);
      return m ? Number(m[1]) : undefined;
    };
    const before = await holder();
    expect(before).toBeDefined();
    const ours = own.find((p) => p.child.pid === before);
    process.kill(before!, "SIGTERM");
    if (ours) expect(await ours.exited).toBe(0);
    // Another proxy (of another zone, or `up`'s restarted one) takes the address and serves it.
    const after = await poll("another proxy holds the ClusterIP", async () => {
      const h = await holder();
      return h !== undefined && h !== before ? h : undefined;
    }, 30_000, 100);
    expect(after).not.toBe(before);
    expect((await webPods()).has(await poll("ClusterIP served after the takeover", () => podAt(ip, 80), 30_000, 100))).toBe(true);
  });

  it("closes its listeners and exits 0 on SIGTERM", async () => {
    const p = startProxy(k, "local-1a", await freePort());
    await poll("extra proxy ready", async () => (await get("127.0.0.1", p.healthPort, undefined, "/readyz")).status === 200, 60_000);
    process.kill(p.child.pid!, "SIGTERM");
    expect(await p.exited).toBe(0);
    expect(p.output()).not.toMatch(/"level":(50|60)/); // no error or fatal logged
  });
});

describe("kubelab proxy --service-interface", () => {
  it("puts a ClusterIP of a blackholed range on the interface, forwards to it from the host, and removes it with the Service", async () => {
    const c = k2!;
    const p = startProxy(c, "local-1a", await freePort(), ["--service-interface", iface]);
    await poll("proxy /readyz", async () => (await get("127.0.0.1", p.healthPort, undefined, "/readyz")).status === 200, 60_000);
    await kc(c, ["create", "deployment", "web2", "--image=busybox", "--", "httpd", "-f", "-p", "8080"]);
    await kc(c, ["expose", "deployment", "web2", "--port", "80", "--target-port", "8080"]);
    const ip = await clusterIP(c, "web2");
    expect(ip.startsWith(`10.254.${poolId}.`)).toBe(true);
    await poll(`${ip}/32 on ${iface}`, async () => (await sh("ip", ["-o", "-4", "addr", "show", "dev", iface])).out.includes(`${ip}/32`), 60_000);
    const pod = await poll("web2 through the ClusterIP", async () => {
      try {
        return await podAt(ip, 80);
      } catch (e) {
        const slices = await kc(c, ["get", "endpointslices", "-o", "wide"]);
        throw new Error(`${(e as Error).message}; slices: ${slices}; proxy: ${p.output().split("\n").filter((l) => l.includes("10.254")).slice(-5).join("\n")}`);
      }
    }, 90_000, 200);
    expect(pod.startsWith("web2-")).toBe(true);
    await kc(c, ["delete", "svc", "web2"]);
    await poll(`${ip} removed from ${iface}`, async () => !(await sh("ip", ["-o", "-4", "addr", "show", "dev", iface])).out.includes(`${ip}/32`), 30_000);
    // Back to the blackhole: unreachable, never sent anywhere.
    expect(await errorCode(ip, 80)).toBe("EHOSTUNREACH");
  }, 180_000);
});

describe("kubelab proxy flags", () => {
  function cli(args: string[]): Promise<{ code: number; out: string }> {
    return sh(process.execPath, ["--import", "tsx", join(REPO, "cli/main.ts"), "proxy", ...args]);
  }

  it("prints its flags with --help and rejects bad ones with one line and exit code 2", async () => {
    const help = await cli(["--help"]);
    expect(help.code).toBe(0);
    expect(help.out).toContain("--service-interface IFACE");
    const cases: [string[], string][] = [
      [["--kubeconfig", "k", "--healthz-port", "x"], 'kubelab: --healthz-port must be a port number (0-65535), got "x"'],
      [["--kubeconfig", "k", "--healthz-port", "70000"], 'kubelab: --healthz-port must be a port number (0-65535), got "70000"'],
      [["--kubeconfig", "k", "--nodeport-addresses", "127.0.0.0/8,10.1"], 'kubelab: --nodeport-addresses: "10.1" is not an IPv4 CIDR like 127.0.0.0/8'],
      [["--kubeconfig", "k", "--sync-period", "often"], 'kubelab: --sync-period: "often" is not a duration like 15s or 500ms'],
      [["--zone", "a"], "kubelab: --kubeconfig is required"],
    ];
    for (const [args, line] of cases) {
      const r = await cli(args);
      expect(r.code).toBe(2);
      expect(r.out.trim()).toBe(line);
    }
    const unknown = await cli(["--kubeconfig", "k", "--bogus"]);
    expect(unknown.code).toBe(2);
    expect(unknown.out.trim().split("\n")).toHaveLength(1);
  });
});
