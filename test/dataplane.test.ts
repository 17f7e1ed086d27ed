// The data plane on the default `kubelab up` (simulated nodes in three zones): the proxy per zone,
// cluster DNS and the ingress controller that `up` starts, driven with the real kubectl, curl-like
// requests from the host and the real `dig`. These are P5's acceptance checks: traffic through the
// ingress, a ClusterIP and a NodePort reaches pods in every zone; DNS names the ClusterIP and a
// headless service's pods; scaling to zero gives 503 and a refused connection; a pod failing its
// readiness gets no more traffic; a rolling update under load loses no request; bad input is an
// error or an Event and everything else keeps serving.

import { execFile } from "node:child_process";
import http from "node:http";
import net from "node:net";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startKubelab, type Kubelab } from "./harness/kubelab.ts";
import { poll } from "./harness/poll.ts";

let k: Kubelab;
let ingressPort = 0;
let dnsIP = "";

interface Echo {
  pod: string;
  zone: string;
  node: string;
  ip: string;
  path: string;
  headers: Record<string, string>;
}

async function kc(args: string[], input?: string): Promise<string> {
  const r = await k.kubectl(args, { input, timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** One GET on a fresh connection; status 0 and `error` (the errno code) when it could not be made. */
function get(host: string, port: number, path = "/", hostHeader?: string): Promise<{ status: number; body: string; error?: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path, agent: false, timeout: 5000, headers: hostHeader ? { host: hostHeader } : {} }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", (e: NodeJS.ErrnoException) => resolve({ status: 0, body, error: e.code ?? e.message }));
    });
    req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })));
    req.on("error", (e: NodeJS.ErrnoException) => resolve({ status: 0, body: "", error: e.code ?? e.message }));
  });
}

const echo = (body: string): Echo => JSON.parse(body) as Echo;
const viaIngress = (host: string, path = "/") => get("127.0.0.1", ingressPort, path, host);

function dig(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("dig", ["+short", "+time=2", "+tries=1", ...args], { timeout: 10_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
}

async function clusterIP(svc: string, namespace = "default"): Promise<string> {
  return (await kc(["get", "service", "-n", namespace, svc, "-o", "jsonpath={.spec.clusterIP}"])).trim();
}

async function readyPods(selector: string): Promise<{ name: string; ip: string; zone: string }[]> {
  const pods = JSON.parse(await kc(["get", "pods", "-l", selector, "-o", "json"])) as {
    items: { metadata: { name: string; deletionTimestamp?: string }; spec: { nodeName?: string }; status?: { podIP?: string; conditions?: { type: string; status: string }[] } }[];
  };
  const nodes = JSON.parse(await kc(["get", "nodes", "-o", "json"])) as { items: { metadata: { name: string; labels: Record<string, string> } }[] };
  const zoneOf = new Map(nodes.items.map((n) => [n.metadata.name, n.metadata.labels["topology.kubernetes.io/zone"]]));
  return pods.items
    .filter((p) => !p.metadata.deletionTimestamp && p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"))
    .map((p) => ({ name: p.metadata.name, ip: p.status!.podIP!, zone: zoneOf.get(p.spec.nodeName ?? "") ?? "" }));
}

beforeAll(async () => {
  k = await startKubelab({ nodes: true });
  const up = JSON.parse(readFileSync(join(k.dataDir, "up.json"), "utf8")) as { dataPlane?: { ingressHTTP: string; dnsServiceIP: string }; components: { name: string }[] };
  expect(up.dataPlane, "up.json names the ingress and DNS addresses").toBeDefined();
  ingressPort = Number(new URL(up.dataPlane!.ingressHTTP).port);
  dnsIP = up.dataPlane!.dnsServiceIP;
  expect(up.components.map((c) => c.name)).toEqual(expect.arrayContaining(["proxy-local-1a", "proxy-local-1b", "proxy-local-1c", "dns", "ingress"]));
  expect(k.output()).toContain(`ingress: http://127.0.0.1:${ingressPort}`);
  // All six nodes first, so the scheduler spreads the pods over the three zones.
  await poll("6 Ready nodes", async () => {
    const nodes = JSON.parse(await kc(["get", "nodes", "-o", "json"])) as { items: { status?: { conditions?: { type: string; status: string }[] } }[] };
    return nodes.items.filter((n) => n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")).length === 6;
  }, 90_000);
  await kc(["create", "deployment", "web", "--image=busybox", "--replicas=6", "--", "httpd", "-f", "-p", "8080"]);
  await kc(["expose", "deployment", "web", "--port", "80", "--target-port", "8080"]);
  await kc(["create", "ingress", "web", "--rule=web.example.test/*=web:80"]);
  await poll("6 ready web pods in 3 zones", async () => {
    const pods = await readyPods("app=web");
    if (pods.length === 6 && new Set(pods.map((p) => p.zone)).size === 3) return true;
    throw new Error(`ready: ${JSON.stringify(pods)}; all: ${await kc(["get", "pods", "-o", "wide"])}`);
  }, 120_000);
}, 180_000);

afterAll(async () => {
  await k?.stop({ clean: true });
}, 60_000);

describe("the data plane of the default kubelab up", () => {
  it("routes the ingress's Host rule to pods in all 3 zones and writes its address to the Ingress status", async () => {
    const pods = new Set<string>();
    const zones = new Set<string>();
    await poll("ingress traffic from ≥ 3 pods in 3 zones", async () => {
      const r = await viaIngress("web.example.test", "/hi");
      if (r.status !== 200) return false;
      const e = echo(r.body);
      pods.add(e.pod);
      zones.add(e.zone);
      expect(e.path).toBe("/hi");
      expect(e.headers["x-forwarded-host"]).toBe("web.example.test");
      expect(e.headers["x-forwarded-for"]).toContain("127.0.0.1");
      return pods.size >= 3 && zones.size === 3;
    }, 60_000, 20);
    // No rule for another host: 404 from the controller, not a pod.
    expect((await viaIngress("other.example.test")).status).toBe(404);
    const ing = JSON.parse(await kc(["get", "ingress", "web", "-o", "json"])) as { spec: { ingressClassName?: string }; status?: { loadBalancer?: { ingress?: { ip?: string }[] } } };
    expect(ing.spec.ingressClassName, "the default IngressClass was applied").toBe("kubelab");
    await poll("the Ingress status address", async () => {
      const o = JSON.parse(await kc(["get", "ingress", "web", "-o", "json"])) as typeof ing;
      return o.status?.loadBalancer?.ingress?.[0]?.ip === "127.0.0.1";
    });
  });

  it("serves the ClusterIP from the host, round-robin over all 6 pods, and a NodePort on a node address", async () => {
    const ip = await clusterIP("web");
    const seen = new Set<string>();
    await poll("ClusterIP traffic reaching all 6 pods", async () => {
      const r = await get(ip, 80);
      if (r.status === 200) seen.add(echo(r.body).pod);
      return seen.size === 6;
    }, 60_000, 10);
    await kc(["expose", "deployment", "web", "--name", "web-np", "--type", "NodePort", "--port", "80", "--target-port", "8080"]);
    const nodePort = Number((await kc(["get", "service", "web-np", "-o", "jsonpath={.spec.ports[0].nodePort}"])).trim());
    expect(nodePort).toBeGreaterThanOrEqual(30000);
    const nodeIP = (await kc(["get", "nodes", "-o", "jsonpath={.items[0].status.addresses[?(@.type==\"InternalIP\")].address}"])).trim();
    const r = await poll(`NodePort ${nodeIP}:${nodePort}`, async () => {
      const res = await get(nodeIP, nodePort);
      return res.status === 200 ? res : false;
    });
    expect(echo(r.body).pod).toMatch(/^web-/);
  });

  it("resolves web.default.svc.cluster.local to the ClusterIP and a headless service to its ready pods' IPs", async () => {
    const ip = await clusterIP("web");
    const kubeDNS = await clusterIP("kube-dns", "kube-system");
    expect(kubeDNS).toBe(dnsIP);
    await poll("dig web.default.svc.cluster.local", async () => (await dig([`@${dnsIP}`, "web.default.svc.cluster.local"])).trim() === ip);
    await kc(["apply", "-f", "-"], `apiVersion: v1
kind: Service
metadata: {name: web-headless}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 8080}]
`);
    const podIPs = (await readyPods("app=web")).map((p) => p.ip).sort();
    await poll("dig web-headless → the 6 pod IPs", async () => {
      const got = (await dig([`@${dnsIP}`, "web-headless.default.svc.cluster.local"])).trim().split("\n").filter(Boolean).sort();
      return got.join() === podIPs.join();
    });
    expect((await dig([`@${dnsIP}`, "SRV", "_http._tcp.web-headless.default.svc.cluster.local"])).trim().split("\n")).toHaveLength(6);
    const nx = await new Promise<string>((resolve) => execFile("dig", [`@${dnsIP}`, "+time=2", "+tries=1", "nothing.default.svc.cluster.local"], (_e, out) => resolve(out)));
    expect(nx).toContain("status: NXDOMAIN");
  });

  it("takes a pod whose readiness fails out of the endpoints: it gets no more traffic", async () => {
    const pod = (name: string, failAfter?: string) => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  labels: {app: flaky}
  ${failAfter ? `annotations: {sim.kubelab.io/probe-fail-after: "${failAfter}"}` : ""}
spec:
  containers:
  - name: c
    image: busybox
    command: [httpd, -f, -p, "8080"]
    readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1, failureThreshold: 1}
`;
    await kc(["apply", "-f", "-"], pod("flaky-good"));
    await kc(["apply", "-f", "-"], pod("flaky-bad", "8s"));
    await kc(["expose", "pod", "flaky-good", "--name", "flaky", "--port", "80", "--target-port", "8080", "--selector", "app=flaky"]);
    const ip = await clusterIP("flaky");
    await poll("flaky-bad not ready", async () => {
      const o = JSON.parse(await kc(["get", "pod", "flaky-bad", "-o", "json"])) as { status?: { conditions?: { type: string; status: string }[] } };
      return o.status?.conditions?.some((c) => c.type === "Ready" && c.status === "False");
    }, 60_000);
    await poll("flaky endpoints without flaky-bad", async () => {
      const eps = JSON.parse(await kc(["get", "endpoints", "flaky", "-o", "json"])) as { subsets?: { addresses?: { targetRef?: { name: string } }[] }[] };
      const names = (eps.subsets ?? []).flatMap((s) => (s.addresses ?? []).map((a) => a.targetRef?.name));
      return names.length === 1 && names[0] === "flaky-good";
    });
    // The proxy follows the slices within a moment; then every request lands on the good pod.
    await new Promise((r) => setTimeout(r, 1500));
    const hits = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const r = await get(ip, 80);
      expect(r.status, r.error ?? r.body).toBe(200);
      const p = echo(r.body).pod;
      hits.set(p, (hits.get(p) ?? 0) + 1);
    }
    expect(Object.fromEntries(hits)).toEqual({ "flaky-good": 30 });
  });

  it("completes a rolling update (maxUnavailable 0, a readiness probe) under a steady request loop through the ingress with zero failed requests", async () => {
    const manifest = (version: string) => `apiVersion: apps/v1
kind: Deployment
metadata: {name: roll}
spec:
  replicas: 3
  selector: {matchLabels: {app: roll}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 0, maxSurge: 1}}
  template:
    metadata:
      labels: {app: roll}
      annotations: {version: "${version}"}
    spec:
      containers:
      - name: c
        image: busybox
        command: [httpd, -f, -p, "8080"]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
`;
    await kc(["apply", "-f", "-"], manifest("1"));
    await kc(["expose", "deployment", "roll", "--port", "80", "--target-port", "8080"]);
    await kc(["create", "ingress", "roll", "--rule=roll.example.test/*=roll:80"]);
    await kc(["rollout", "status", "deployment/roll", "--timeout=120s"]);
    await poll("ingress → roll", async () => (await viaIngress("roll.example.test")).status === 200);
    const before = new Set((await readyPods("app=roll")).map((p) => p.name));
    let ok = 0;
    const failures: string[] = [];
    let running = true;
    const seen = new Set<string>();
    const loop = (async () => {
      while (running) {
        const r = await viaIngress("roll.example.test");
        if (r.status === 200) {
          ok++;
          seen.add(echo(r.body).pod);
        } else failures.push(`${r.status} ${r.error ?? r.body.slice(0, 80)}`);
        await new Promise((res) => setTimeout(res, 5));
      }
    })();
    await kc(["apply", "-f", "-"], manifest("2"));
    await kc(["rollout", "status", "deployment/roll", "--timeout=180s"]);
    // Keep the loop going while the old pods finish terminating.
    await poll("old roll pods gone", async () => {
      const names = (JSON.parse(await kc(["get", "pods", "-l", "app=roll", "-o", "json"])) as { items: { metadata: { name: string } }[] }).items.map((p) => p.metadata.name);
      return names.every((n) => !before.has(n));
    }, 120_000);
    running = false;
    await loop;
    process.stdout.write(`rolling update through the ingress: ${ok} requests succeeded, ${failures.length} failed\n`);
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(50);
    const after = new Set((await readyPods("app=roll")).map((p) => p.name));
    expect([...after].some((n) => seen.has(n)), "the new pods served requests").toBe(true);
  });

  it("keeps serving everything else when an Ingress names a missing Service or a Service asks for a bad address", async () => {
    await kc(["create", "ingress", "broken", "--rule=broken.example.test/*=no-such-service:80"]);
    await poll("a Warning Event on the broken Ingress", async () => {
      const ev = await kc(["get", "events", "--field-selector", "involvedObject.kind=Ingress,involvedObject.name=broken", "-o", "json"]);
      return (JSON.parse(ev) as { items: { type: string; message: string }[] }).items.some((e) => e.type === "Warning" && e.message.includes("no-such-service"));
    });
    expect((await viaIngress("broken.example.test")).status).toBe(503);
    const range = await kc(["apply", "-f", "-"], `apiVersion: v1
kind: Service
metadata: {name: far}
spec: {clusterIP: 10.0.0.1, selector: {app: web}, ports: [{port: 80}]}
`).catch((e: Error) => e.message);
    process.stdout.write(`out-of-range ClusterIP: ${range}\n`);
    expect(range).toMatch(/spec\.clusterIPs: Invalid value: .*10\.0\.0\.1.*: failed to allocate IP 10\.0\.0\.1: the provided IP \(10\.0\.0\.1\) is not in the valid range/);
    const ip = await clusterIP("web");
    const taken = await kc(["apply", "-f", "-"], `apiVersion: v1
kind: Service
metadata: {name: twin}
spec: {clusterIP: ${ip}, selector: {app: web}, ports: [{port: 80}]}
`).catch((e: Error) => e.message);
    expect(taken).toMatch(/provided IP is already allocated/);
    const badPort = await kc(["apply", "-f", "-"], `apiVersion: v1
kind: Service
metadata: {name: badport}
spec: {type: NodePort, selector: {app: web}, ports: [{port: 80, nodePort: 80}]}
`).catch((e: Error) => e.message);
    expect(badPort).toMatch(/spec\.ports\[0\]\.nodePort: Invalid value: 80: provided port is not in the valid range/);
    // Everything else is untouched.
    expect((await viaIngress("web.example.test")).status).toBe(200);
    expect((await get(ip, 80)).status).toBe(200);
  });

  it("answers 503 at the ingress and refuses connections at the ClusterIP once the deployment is scaled to 0", async () => {
    const ip = await clusterIP("web");
    await kc(["scale", "deployment", "web", "--replicas=0"]);
    await poll("503 from the ingress", async () => (await viaIngress("web.example.test")).status === 503, 90_000);
    await poll("ClusterIP refuses", async () => {
      const refused = await new Promise<boolean>((resolve) => {
        const s = net.connect({ host: ip, port: 80 });
        s.on("connect", () => (s.destroy(), resolve(false)));
        s.on("error", (e: NodeJS.ErrnoException) => resolve(e.code === "ECONNREFUSED"));
      });
      return refused;
    }, 60_000);
  });
});
