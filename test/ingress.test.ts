// `kubelab ingress` end to end on `kubelab up` with simulated nodes in three zones, driven by the real
// kubectl: a Deployment of busybox httpd behind a Service and an Ingress host rule reaches pods in
// every zone; TLS by SNI with a Secret from `kubectl create secret tls`; an Ingress naming a missing
// Service gets 503 and a Warning Event while the others keep serving; a rolling update under a steady
// request loop loses no request; scaling to zero gives 503.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { selfSignedCertificate } from "../proxy/ingress/tls.ts";
import { REPO, startKubelab, type Kubelab } from "./harness/kubelab.ts";
import { poll } from "./harness/poll.ts";

let k: Kubelab;
let ingress: ChildProcess | undefined;
let proxy: ChildProcess | undefined;
let ingressOut = "";
let httpPort = 0;
let httpsPort = 0;
const tmp = mkdtempSync(join(tmpdir(), "kubelab-ingress-test-"));

interface Echo {
  pod: string;
  zone: string;
  headers?: Record<string, string>;
}

async function kc(args: string[], input?: string): Promise<string> {
  const r = await k.kubectl(args, { input, timeoutMs: 200_000 });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

function get(hostHeader: string, path = "/", agent: http.Agent | false = false): Promise<{ status: number; body: string; error?: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port: httpPort, path, agent, timeout: 10_000, headers: { host: hostHeader } }, (res) => {
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

/** `n` free ports, all different (each held until all are chosen). */
async function distinctPorts(n: number): Promise<number[]> {
  const held = await Promise.all(
    Array.from({ length: n }, () => new Promise<net.Server>((resolve, reject) => {
      const s = net.createServer();
      s.once("error", reject);
      s.listen(0, "127.0.0.1", () => resolve(s));
    })),
  );
  const ports = held.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(held.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

beforeAll(async () => {
  k = await startKubelab({ nodes: true });
  const up = JSON.parse(readFileSync(join(k.dataDir, "up.json"), "utf8")) as { components?: { name: string }[]; dataPlane?: { ingressHTTP: string; ingressHTTPS: string } };
  if (up.dataPlane && up.components?.some((c) => c.name === "ingress")) {
    // `up` runs the ingress controller itself.
    httpPort = Number(new URL(up.dataPlane.ingressHTTP).port);
    httpsPort = Number(new URL(up.dataPlane.ingressHTTPS).port);
  } else {
    let healthPort: number;
    [httpPort, httpsPort, healthPort] = await distinctPorts(3);
    ingress = spawn(
      process.execPath,
      ["--import", "tsx", join(REPO, "cli/main.ts"), "ingress", "--kubeconfig", k.kubeconfig, "--http-port", String(httpPort), "--https-port", String(httpsPort), "--healthz-port", String(healthPort)],
      // KUBELAB_INGRESS_TEST_LOG=FILE keeps the controller's log (access log included) for a look afterwards.
      { cwd: REPO, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, KUBELAB_LOG_LEVEL: process.env.KUBELAB_INGRESS_TEST_LOG ? "info" : "warn" } },
    );
    ingress.stdout!.on("data", (d: Buffer) => (ingressOut += d.toString()));
    ingress.stderr!.on("data", (d: Buffer) => (ingressOut += d.toString()));
    await poll(
      "kubelab ingress ready",
      () =>
        new Promise<boolean>((resolve, reject) => {
          if (ingress?.exitCode !== null) return reject(new Error(`kubelab ingress exited: ${ingressOut}`));
          http.get({ host: "127.0.0.1", port: healthPort, path: "/readyz", agent: false }, (res) => (res.resume(), resolve(res.statusCode === 200))).on("error", () => resolve(false));
        }),
      60_000,
    );
  }
  // Every node Ready first, so the scheduler spreads the replicas over all three zones.
  await poll(
    "Ready nodes in 3 zones",
    async () => {
      const nodes = JSON.parse(await kc(["get", "nodes", "-o", "json"])) as { items: { metadata: { labels?: Record<string, string> }; status?: { conditions?: { type: string; status: string }[] } }[] };
      const ready = nodes.items.filter((n) => n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"));
      const zones = new Set(ready.map((n) => n.metadata.labels?.["topology.kubernetes.io/zone"]));
      return ready.length === nodes.items.length && zones.size === 3;
    },
    120_000,
  );
  await kc(["create", "deployment", "web", "--image=busybox", "--replicas=6", "--", "httpd", "-f", "-p", "8080"]);
  await kc(["expose", "deployment", "web", "--port", "80", "--target-port", "8080"]);
  await kc(["create", "ingress", "web", "--class=kubelab", "--rule=web.test/*=web:80"]);
}, 180_000);

afterAll(async () => {
  for (const child of [ingress, proxy]) {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      process.kill(child.pid!, "SIGTERM");
      await exited;
    }
  }
  if (process.env.KUBELAB_INGRESS_TEST_LOG) writeFileSync(process.env.KUBELAB_INGRESS_TEST_LOG, ingressOut);
  await k?.stop({ clean: true });
  rmSync(tmp, { recursive: true, force: true });
});

describe("kubelab ingress", () => {
  it("routes a host rule to pods in all three zones and records the address in the Ingress status", async () => {
    await kc(["rollout", "status", "deployment/web", "--timeout=120s"]);
    const pods = new Set<string>();
    const zones = new Set<string>();
    await poll(
      "responses from 3 zones",
      async () => {
        for (let i = 0; i < 12; i++) {
          const r = await get("web.test", "/hello");
          if (r.status !== 200) return undefined;
          const e = JSON.parse(r.body) as Echo;
          pods.add(e.pod);
          zones.add(e.zone);
        }
        return pods.size >= 3 && zones.size === 3 ? true : undefined;
      },
      90_000,
    );
    expect(pods.size).toBeGreaterThanOrEqual(3);
    expect(zones.size).toBe(3);
    const r = await get("web.test");
    expect((JSON.parse(r.body) as Echo).headers?.["x-forwarded-host"]).toBe("web.test");
    await poll("status.loadBalancer", async () => (await kc(["get", "ingress", "web", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"])) === "127.0.0.1");
    expect((await get("nobody.test")).status).toBe(404);
  }, 240_000);

  it("serves TLS by SNI with the certificate of a kubernetes.io/tls Secret", async () => {
    const pair = selfSignedCertificate("secure.test", ["secure.test"]);
    writeFileSync(join(tmp, "tls.crt"), pair.cert);
    writeFileSync(join(tmp, "tls.key"), pair.key);
    await kc(["create", "secret", "tls", "secure-tls", "--cert", join(tmp, "tls.crt"), "--key", join(tmp, "tls.key")]);
    await kc(["create", "ingress", "secure", "--class=kubelab", "--rule=secure.test/*=web:80,tls=secure-tls"]);
    const fetchTLS = () =>
      new Promise<{ status: number; body: string; cn: string }>((resolve, reject) => {
        const req = https.get({ host: "127.0.0.1", port: httpsPort, servername: "secure.test", headers: { host: "secure.test" }, ca: pair.cert, agent: false, timeout: 10_000 }, (res) => {
          const cn = (res.socket as tls.TLSSocket).getPeerCertificate().subject?.CN;
          let body = "";
          res.on("data", (d: Buffer) => (body += d.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body, cn: String(cn) }));
        });
        req.on("error", reject);
      });
    // Verified against the Secret's certificate (as CA): the handshake fails with the default one.
    const r = await poll("an HTTPS answer with the Secret's certificate", async () => {
      const x = await fetchTLS();
      return x.status === 200 ? x : undefined;
    });
    expect(r.cn).toBe("secure.test");
    expect((JSON.parse(r.body) as Echo).headers?.["x-forwarded-proto"]).toBe("https");
    // Another name gets the controller's default certificate.
    const cn = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: "127.0.0.1", port: httpsPort, servername: "other.test", rejectUnauthorized: false }, () => {
        resolve(String(s.getPeerCertificate().subject?.CN));
        s.end();
      });
      s.on("error", reject);
    });
    expect(cn).toBe("Kubernetes Ingress Controller Fake Certificate");
  }, 240_000);

  it("answers 503 for an Ingress whose Service is missing, records a Warning Event, and keeps serving the others", async () => {
    await kc(["create", "ingress", "broken", "--class=kubelab", "--rule=broken.test/*=missing:80"]);
    await poll("503 for broken.test", async () => (await get("broken.test")).status === 503);
    const events = await poll("the ServiceNotFound event", async () => {
      const out = await kc(["get", "events", "--field-selector", "involvedObject.name=broken,type=Warning", "-o", "jsonpath={range .items[*]}{.reason} {.message}{\"\\n\"}{end}"]);
      return out.includes("ServiceNotFound") ? out : undefined;
    });
    expect(events).toContain('service "default/missing" not found');
    expect((await get("web.test")).status).toBe(200);
  }, 240_000);

  it("gives a Service of type LoadBalancer an address that forwards through the NodePorts to the pods", async () => {
    const up = JSON.parse(readFileSync(join(k.dataDir, "up.json"), "utf8")) as { components?: { name: string }[] };
    if (!up.components?.some((c) => c.name.startsWith("proxy"))) {
      // `up` runs no service proxy yet: one for all nodes serves the NodePorts.
      proxy = spawn(process.execPath, ["--import", "tsx", join(REPO, "cli/main.ts"), "proxy", "--kubeconfig", k.kubeconfig, "--healthz-port", "0"], {
        cwd: REPO,
        stdio: ["ignore", "ignore", "inherit"],
        env: { ...process.env, KUBELAB_LOG_LEVEL: "warn" },
      });
    }
    const [lbPort] = await distinctPorts(1);
    await kc(["expose", "deployment", "web", "--type=LoadBalancer", "--name=web-lb", `--port=${lbPort}`, "--target-port=8080"]);
    const addr = await poll("the LoadBalancer address", async () => {
      const out = await kc(["get", "service", "web-lb", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}:{.status.loadBalancer.ingress[0].ports[0].port}"]);
      return out.length > 1 && !out.endsWith(":") ? out : undefined;
    });
    expect(addr).toBe(`127.0.0.1:${lbPort}`);
    const zones = new Set<string>();
    await poll("answers through the LoadBalancer from pods in 2+ zones", async () => {
      for (let i = 0; i < 6; i++) {
        const r = await new Promise<{ status: number; body: string }>((resolve) => {
          http.get({ host: "127.0.0.1", port: lbPort, path: "/", agent: false, timeout: 5000 }, (res) => {
            let body = "";
            res.on("data", (d: Buffer) => (body += d.toString()));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
          }).on("error", () => resolve({ status: 0, body: "" }));
        });
        if (r.status !== 200) return undefined;
        zones.add((JSON.parse(r.body) as Echo).zone);
      }
      return zones.size >= 2 ? true : undefined;
    }, 60_000);
    await kc(["delete", "service", "web-lb"]);
  }, 240_000);

  it("gives an Ingress created without a class the default class (admission) and serves it", async () => {
    await kc(["create", "ingress", "noclass", "--rule=noclass.test/*=web:80"]);
    // The DefaultIngressClass admission plugin gave it the default class.
    expect(await kc(["get", "ingress", "noclass", "-o", "jsonpath={.spec.ingressClassName}"])).toBe("kubelab");
    await poll("noclass.test served", async () => (await get("noclass.test")).status === 200);
  }, 240_000);

  it("loses no request through a rolling update (maxUnavailable 0, readiness probe on 8080)", async () => {
    await kc([
      "patch", "deployment", "web", "--type=strategic", "-p",
      JSON.stringify({
        spec: {
          strategy: { rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
          template: { spec: { containers: [{ name: "busybox", readinessProbe: { httpGet: { path: "/", port: 8080 }, periodSeconds: 1 } }] } },
        },
      }),
    ]);
    await kc(["rollout", "status", "deployment/web", "--timeout=180s"]);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    let running = true;
    let ok = 0;
    const failures: string[] = [];
    const loop = async () => {
      while (running) {
        const r = await get("web.test", "/", agent);
        if (r.status === 200) ok++;
        else failures.push(`${r.status} ${r.error ?? r.body.slice(0, 80)}`);
      }
    };
    const loops = [loop(), loop()];
    await kc(["set", "env", "deployment/web", "ROLL=2"]);
    await kc(["rollout", "status", "deployment/web", "--timeout=180s"]);
    running = false;
    await Promise.all(loops);
    agent.destroy();
    process.stdout.write(`rolling update through the ingress: ${ok} requests ok, ${failures.length} failed${failures.length ? `: ${failures.slice(0, 5).join("; ")}` : ""}\n`);
    expect(ok).toBeGreaterThan(0);
    expect(failures).toEqual([]);
  }, 240_000);

  it("answers 503 once the Deployment is scaled to zero", async () => {
    await kc(["scale", "deployment", "web", "--replicas=0"]);
    await poll("503 with no endpoints", async () => (await get("web.test")).status === 503, 90_000);
  }, 240_000);
});
