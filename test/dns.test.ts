// Cluster DNS end to end: `kubelab dns` against a real cluster (simulated nodes), asked by the real
// `dig` and `nslookup`: a ClusterIP Service, a headless StatefulSet's pods, SRV with ADDITIONAL,
// ExternalName, PTR, NXDOMAIN with the SOA, REFUSED outside the cluster, TCP, the kube-dns Service and
// our EndpointSlice (left alone by the endpointslice controller, deleted on SIGTERM), the metrics.

import { execFile, spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readUpState } from "../cli/up.ts";
import { REPO, freePort, startKubelab, type Kubelab, testSlot } from "./harness/kubelab.ts";
import { poll } from "./harness/poll.ts";

const poolId = testSlot();
const range = `127.${16 + poolId}.0.0/16`;
const kubeDNSIP = `127.${16 + poolId}.0.10`;

let k: Kubelab;
let own: ChildProcess | undefined;
let ownOutput = "";
let dnsPort = 0;
let healthPort = 0;
/** The pid of the dns process under test (ours, or the one `up` supervises). */
let dnsPid = 0;
let sliceName = "";

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve) => execFile(cmd, args, { timeout: 20_000 }, (_e, stdout, stderr) => resolve(stdout + stderr)));
}

/** The real dig, at our server; one try, short timeout, so a missing answer fails fast. */
function dig(...args: string[]): Promise<string> {
  return run("dig", ["@127.0.0.1", "-p", String(dnsPort), "+time=2", "+tries=1", ...args]);
}

async function kc(args: string[], input?: string): Promise<string> {
  const r = await k.kubectl(args, { input, timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path, timeout: 5000, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timeout")));
  });
}

const manifests = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: busybox
        ports: [{name: http, containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: pg, port: 5432}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: db
        image: busybox
        ports: [{name: pg, containerPort: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: ext}
spec:
  type: ExternalName
  externalName: example.com
`;

beforeAll(async () => {
  k = await startKubelab({ nodes: true, extraArgs: ["--service-cluster-ip-range", range] });
  const up = readUpState(k.dataDir);
  const wired = up?.components.find((c) => c.name === "dns");
  if (wired && up?.dataPlane?.dnsEndpoint) {
    // `up` runs cluster DNS itself: test that one.
    dnsPort = Number(up.dataPlane.dnsEndpoint.split(":")[1]);
    healthPort = wired.healthPort!;
    dnsPid = wired.pid!;
    sliceName = "kube-dns-dns";
  } else {
    dnsPort = await freePort();
    healthPort = await freePort();
    sliceName = "kube-dns-e2e";
    own = spawn(
      process.execPath,
      ["--import", "tsx", join(REPO, "cli/main.ts"), "dns", "--kubeconfig", k.kubeconfig, "--dns-port", String(dnsPort), "--healthz-port", String(healthPort), "--service-ip", kubeDNSIP, "--name", "e2e", "--zone", "local-1a"],
      { cwd: REPO, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, KUBELAB_LOG_LEVEL: "info" } },
    );
    own.stdout!.on("data", (d: Buffer) => (ownOutput += d.toString()));
    own.stderr!.on("data", (d: Buffer) => (ownOutput += d.toString()));
    dnsPid = own.pid!;
  }
  await poll("dns /readyz", async () => (await httpGet(healthPort, "/readyz")).status === 200, 60_000);
  await kc(["apply", "-f", "-"], manifests);
}, 240_000);

afterAll(async () => {
  if (own && own.exitCode === null) {
    process.kill(own.pid!, "SIGKILL");
  }
  await k?.stop({ clean: true });
});

async function clusterIP(name: string, ns = "default"): Promise<string> {
  return (await kc(["get", "svc", name, "-n", ns, "-o", "jsonpath={.spec.clusterIP}"])).trim();
}

async function podIPs(selector: string): Promise<Record<string, string>> {
  const pods = JSON.parse(await kc(["get", "pods", "-l", selector, "-o", "json"])) as {
    items: { metadata: { name: string }; status?: { podIP?: string; conditions?: { type: string; status: string }[] } }[];
  };
  const ready = pods.items.filter((p) => p.status?.podIP && p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"));
  return Object.fromEntries(ready.map((p) => [p.metadata.name, p.status!.podIP!]));
}

describe("kubelab dns", () => {
  it("answers a Service's name with its ClusterIP (dig over UDP and over TCP, and nslookup)", async () => {
    const ip = await clusterIP("web");
    expect(ip.startsWith(`127.${16 + poolId}.`)).toBe(true);
    await poll("dig web.default.svc.cluster.local", async () => (await dig("+short", "web.default.svc.cluster.local")).trim() === ip);
    const full = await dig("web.default.svc.cluster.local");
    expect(full).toMatch(/status: NOERROR/);
    expect(full).toMatch(/flags: qr aa rd ra/);
    expect(full).toMatch(new RegExp(`web\\.default\\.svc\\.cluster\\.local\\.\\s+5\\s+IN\\s+A\\s+${ip.replace(/\./g, "\\.")}`));
    expect((await dig("+tcp", "+short", "web.default.svc.cluster.local")).trim()).toBe(ip);
    const ns = await run("nslookup", [`-port=${dnsPort}`, "web.default.svc.cluster.local", "127.0.0.1"]);
    expect(ns).toMatch(new RegExp(`Name:\\s+web\\.default\\.svc\\.cluster\\.local\\s+Address: ${ip.replace(/\./g, "\\.")}`));
  });

  it("answers a headless Service with its ready pods' IPs, and each StatefulSet pod by hostname", async () => {
    const pods = await poll("two ready db pods", async () => {
      const p = await podIPs("app=db");
      return Object.keys(p).length === 2 ? p : undefined;
    }, 120_000);
    const want = Object.values(pods).sort();
    await poll("dig db.default.svc.cluster.local → pod IPs", async () => {
      const got = (await dig("+short", "db.default.svc.cluster.local")).trim().split("\n").filter(Boolean).sort();
      return JSON.stringify(got) === JSON.stringify(want);
    });
    for (const [name, ip] of Object.entries(pods)) {
      expect((await dig("+short", `${name}.db.default.svc.cluster.local`)).trim()).toBe(ip);
    }
    const srv = await dig("+noall", "+answer", "+additional", "SRV", "_pg._tcp.db.default.svc.cluster.local");
    for (const [name, ip] of Object.entries(pods)) {
      expect(srv).toMatch(new RegExp(`IN\\s+SRV\\s+0\\s+50\\s+5432\\s+${name}\\.db\\.default\\.svc\\.cluster\\.local\\.`));
      expect(srv).toMatch(new RegExp(`${name}\\.db\\.default\\.svc\\.cluster\\.local\\.\\s+5\\s+IN\\s+A\\s+${ip.replace(/\./g, "\\.")}`));
    }
  });

  it("answers SRV for a named port of a ClusterIP Service, with the A record in ADDITIONAL", async () => {
    const ip = await clusterIP("web");
    const out = await dig("SRV", "_http._tcp.web.default.svc.cluster.local");
    expect(out).toMatch(/status: NOERROR/);
    expect(out).toMatch(/_http\._tcp\.web\.default\.svc\.cluster\.local\.\s+5\s+IN\s+SRV\s+0\s+100\s+80\s+web\.default\.svc\.cluster\.local\./);
    expect(out).toMatch(/;; ADDITIONAL SECTION:\nweb\.default\.svc\.cluster\.local\.\s+5\s+IN\s+A\s+\S+/);
    expect(out).toContain(ip);
  });

  it("answers an ExternalName Service with a CNAME and nothing resolved beyond it", async () => {
    const out = await dig("+noall", "+answer", "ext.default.svc.cluster.local");
    expect(out.trim()).toMatch(/^ext\.default\.svc\.cluster\.local\.\s+5\s+IN\s+CNAME\s+example\.com\.$/);
  });

  it("answers PTR for a ClusterIP", async () => {
    const ip = await clusterIP("web");
    expect((await dig("+short", "-x", ip)).trim()).toBe("web.default.svc.cluster.local.");
  });

  it("is NXDOMAIN with CoreDNS's SOA for a missing name and a search-path expansion, NODATA for AAAA, REFUSED outside the cluster", async () => {
    const nx = await dig("nothing.default.svc.cluster.local");
    expect(nx).toMatch(/status: NXDOMAIN/);
    expect(nx).toMatch(/cluster\.local\.\s+5\s+IN\s+SOA\s+ns\.dns\.cluster\.local\.\s+hostmaster\.cluster\.local\.\s+\d+\s+7200\s+1800\s+86400\s+5/);
    expect(await dig("web.default.svc.cluster.local.default.svc.cluster.local")).toMatch(/status: NXDOMAIN/);
    const aaaa = await dig("AAAA", "web.default.svc.cluster.local");
    expect(aaaa).toMatch(/status: NOERROR/);
    expect(aaaa).toMatch(/ANSWER: 0, AUTHORITY: 1/);
    const refused = await dig("example.com");
    expect(refused).toMatch(/status: REFUSED/);
    expect(refused).toMatch(/ANSWER: 0, AUTHORITY: 0/);
  });

  it("keeps the kube-dns Service on the range's .10 address and its own EndpointSlice, which the endpointslice controller leaves alone", async () => {
    const svc = JSON.parse(await kc(["get", "svc", "kube-dns", "-n", "kube-system", "-o", "json"])) as {
      metadata: { labels?: Record<string, string> };
      spec: { clusterIP: string; selector?: unknown; ports: { name: string; protocol: string; port: number; targetPort: number }[] };
    };
    expect(svc.spec.clusterIP).toBe(kubeDNSIP);
    expect(svc.spec.selector).toBeUndefined();
    expect(svc.metadata.labels?.["k8s-app"]).toBe("kube-dns");
    expect(svc.spec.ports.map((p) => `${p.name}/${p.protocol}/${p.port}/${p.targetPort}`).sort()).toEqual([`dns-tcp/TCP/53/${dnsPort}`, `dns/UDP/53/${dnsPort}`]);
    const slice = JSON.parse(await kc(["get", "endpointslice", sliceName, "-n", "kube-system", "-o", "json"])) as {
      metadata: { labels: Record<string, string> };
      endpoints: { addresses: string[]; conditions: { ready: boolean } }[];
      ports: { name: string; port: number }[];
    };
    expect(slice.metadata.labels["endpointslice.kubernetes.io/managed-by"]).toBe("dns.kubelab.io");
    expect(slice.metadata.labels["kubernetes.io/service-name"]).toBe("kube-dns");
    expect(slice.endpoints.map((e) => [e.addresses, e.conditions.ready])).toEqual([[["127.0.0.1"], true]]);
    expect(slice.ports.map((p) => p.port)).toEqual([dnsPort, dnsPort]);
    // The cluster's own name for its DNS, answered by the DNS itself.
    expect((await dig("+short", "kube-dns.kube-system.svc.cluster.local")).trim()).toBe(kubeDNSIP);
  });

  it("serves CoreDNS's metrics on /metrics", async () => {
    const m = await httpGet(healthPort, "/metrics");
    expect(m.status).toBe(200);
    expect(m.body).toMatch(/coredns_dns_requests_total\{server="dns:\/\/127\.0\.0\.1:\d+",zone="cluster\.local\.",proto="tcp",family="1",type="A"\} [1-9]/);
    expect(m.body).toMatch(/coredns_dns_responses_total\{[^}]*rcode="REFUSED"\} [1-9]/);
    expect(m.body).toMatch(/coredns_dns_request_duration_seconds_count\{[^}]*\} [1-9]/);
  });

  it("deletes its EndpointSlice when it is stopped with SIGTERM", async () => {
    const uidOf = async () => {
      const r = await k.kubectl(["get", "endpointslice", sliceName, "-n", "kube-system", "-o", "jsonpath={.metadata.uid}"]);
      return r.code === 0 ? r.stdout.trim() : "";
    };
    const before = await uidOf();
    expect(before).not.toBe("");
    process.kill(dnsPid, "SIGTERM");
    if (own) {
      const code = await new Promise<number | null>((r) => (own!.exitCode !== null ? r(own!.exitCode) : own!.once("exit", (c) => r(c))));
      expect(code, ownOutput).toBe(0);
      expect(await uidOf()).toBe("");
    } else {
      // `up` restarts it: the slice is gone, or already a new one from the restarted process.
      await poll("the slice deleted (or replaced)", async () => (await uidOf()) !== before, 30_000, 50);
    }
  });
});
