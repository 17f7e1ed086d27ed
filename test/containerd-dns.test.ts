// Pod DNS and the Service interface on real containers: a kubelet started with upstream's
// --cluster-dns/--cluster-domain on a containerd host (startContainerd, as `kubelab up --runtime
// containerd` starts it) gives pods the resolv.conf upstream's kubelet forms, through the CRI
// DNSConfig; dnsPolicy Default never hands a pod a nameserver that is not on this machine. The host's
// kubelab-svc0 holds ClusterIPs as /32s: a pod reaches 10.96.0.5 on it through its gateway while the
// rest of the blackholed range stays unreachable, and busybox's nslookup and wget resolve a Service
// name through the pod's search path (a tiny DNS responder on 10.96.0.10; Debian's busybox-static 1.35
// wget segfaults with -T, so timeouts are busybox's `timeout`). After stop, the interface
// and its addresses are gone. Needs root and containerd (CI has both).

import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import dgram from "node:dgram";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import dnsPacket from "dns-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newLogger } from "../client/index.ts";
import { SERVICE_INTERFACE } from "../kubelet/index.ts";
import { startContainerd, type ContainerdHost } from "../kubelet/runtime/containerd.ts";
import { parseResolvConf } from "../kubelet/dns.ts";
import { isLocalAddress } from "../client/index.ts";
import { acquireContainerdLock } from "./harness/hostlock.ts";
import { freePort, REPO, startKubelab, type Kubelab } from "./harness/kubelab.ts";
import { poll } from "./harness/poll.ts";

const which = (bin: string): boolean => spawnSync("sh", ["-c", `command -v ${bin}`]).status === 0;
const missing = process.getuid?.() !== 0 ? "not root" : ["containerd", "runc", "ctr", "iptables", "busybox", "ip"].find((b) => !which(b));
const SKIP = missing ? `containerd DNS suite needs root and containerd/runc/ctr/iptables/busybox/ip: ${missing}` : "";
if (SKIP && process.env.CI) throw new Error(`CI must run the containerd DNS suite: ${SKIP}`);

const CLUSTER_DNS = "10.96.0.10";
const SVC_IP = "10.96.0.5";
const NOT_ON_IFACE = "10.96.0.6";
const NODE = "dns-node";

let k: Kubelab | undefined;
let host: ContainerdHost | undefined;
let kubelet: ChildProcess | undefined;
let kubeletOut = "";
let release: (() => void) | undefined;
let web: http.Server | undefined;
let dns: dgram.Socket | undefined;
let webPort = 0;
const dirs: string[] = [];

function addAddr(ip: string): void {
  execFileSync("ip", ["addr", "add", `${ip}/32`, "dev", SERVICE_INTERFACE]);
}

/** A DNS responder for the cluster DNS address: web.default.svc.cluster.local → SVC_IP, all else NXDOMAIN. */
function serveDNS(): Promise<dgram.Socket> {
  const s = dgram.createSocket("udp4");
  s.on("message", (msg, rinfo) => {
    const q = dnsPacket.decode(msg);
    const question = q.questions?.[0];
    const hit = question && question.name.toLowerCase() === "web.default.svc.cluster.local";
    const answers = hit && question.type === "A" ? [{ type: "A" as const, name: question.name, ttl: 5, data: SVC_IP }] : [];
    const reply = dnsPacket.encode({ type: "response", id: q.id, flags: dnsPacket.AUTHORITATIVE_ANSWER | (hit ? 0 : 3), questions: q.questions, answers });
    s.send(reply, rinfo.port, rinfo.address);
  });
  return new Promise((res, rej) => {
    s.once("error", rej);
    s.bind(53, CLUSTER_DNS, () => res(s));
  });
}

function kubectl(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return k!.kubectl(args, { input, timeoutMs: 90_000 });
}

async function exec(pod: string, cmd: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return kubectl(["exec", pod, "--", ...cmd]);
}

const pods = `
apiVersion: v1
kind: Pod
metadata: {name: cluster-first}
spec:
  nodeName: ${NODE}
  terminationGracePeriodSeconds: 1
  containers: [{name: c, image: localhost/busybox:latest, imagePullPolicy: IfNotPresent, command: [sleep, "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: default-policy}
spec:
  nodeName: ${NODE}
  dnsPolicy: Default
  terminationGracePeriodSeconds: 1
  containers: [{name: c, image: localhost/busybox:latest, imagePullPolicy: IfNotPresent, command: [sleep, "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: none-policy}
spec:
  nodeName: ${NODE}
  dnsPolicy: None
  dnsConfig:
    nameservers: [127.0.0.1, 8.8.8.8]
    searches: [a.example, b.example]
    options: [{name: ndots, value: "2"}, {name: edns0}]
  terminationGracePeriodSeconds: 1
  containers: [{name: c, image: localhost/busybox:latest, imagePullPolicy: IfNotPresent, command: [sleep, "3600"]}]
`;

beforeAll(async () => {
  if (SKIP) return;
  release = await acquireContainerdLock("test/containerd-dns.test.ts");
  // The control plane without nodes; this suite's own containerd host and kubelet (with the DNS flags).
  k = await startKubelab({ extraArgs: ["--runtime", "containerd"] });
  const hostDir = mkdtempSync(join(tmpdir(), "kubelab-dns-host-"));
  dirs.push(hostDir);
  host = await startContainerd({ dataDir: hostDir, log: newLogger("containerd-dns-test", { level: "warn" }) });
  const [port, healthz] = [await freePort(), await freePort()];
  kubelet = spawn(process.execPath, [
    "--import", "tsx", join(REPO, "cli/main.ts"), "kubelet",
    "--kubeconfig", k.kubeconfig, "--runtime-endpoint", host.endpoint, "--node-name", NODE, "--node-ip", "127.0.0.1",
    "--port", String(port), "--healthz-port", String(healthz), "--root-dir", join(hostDir, "kubelet"),
    "--cluster-dns", CLUSTER_DNS, "--cluster-domain", "cluster.local",
  ], { cwd: REPO, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, KUBELAB_LOG_LEVEL: "warn" } });
  kubelet.stdout!.on("data", (d: Buffer) => (kubeletOut += d.toString()));
  kubelet.stderr!.on("data", (d: Buffer) => (kubeletOut += d.toString()));

  // The proxy's part, by hand: ClusterIPs on the service interface, a backend on each.
  addAddr(SVC_IP);
  addAddr(CLUSTER_DNS);
  web = http.createServer((_, res) => res.end("svc-ok\n"));
  webPort = await new Promise<number>((res) => web!.listen(0, SVC_IP, () => res((web!.address() as { port: number }).port)));
  dns = await serveDNS();
}, 900_000);

afterAll(async () => {
  web?.close();
  dns?.close();
  if (kubelet && kubelet.exitCode === null) {
    kubelet.kill("SIGTERM");
    await new Promise((r) => kubelet!.once("exit", r));
  }
  await host?.stop();
  await k?.stop({ clean: true });
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  release?.();
}, 180_000);

describe.skipIf(SKIP !== "")("pod DNS and the service interface on containerd", () => {
  it("the service interface exists next to the bridge, and the service range is blackholed", () => {
    expect(host!.serviceInterface).toBe(SERVICE_INTERFACE);
    const link = JSON.parse(execFileSync("ip", ["-j", "link", "show", "dev", SERVICE_INTERFACE]).toString()) as { flags: string[]; ifalias?: string }[];
    expect(link[0].flags).toContain("UP");
    expect(link[0].ifalias).toContain(`dir=${host!.socket.replace(/\/containerd\/containerd\.sock$/, "")}`);
    expect(execFileSync("ip", ["route", "show", "exact", "10.96.0.0/16"]).toString()).toMatch(/^unreachable 10\.96\.0\.0\/16/);
  });

  it("ClusterFirst, Default and None pods get upstream's resolv.conf; no pod gets a nameserver off this machine", async () => {
    const applied = await kubectl(["apply", "-f", "-"], pods);
    expect(applied.code, applied.stderr).toBe(0);
    const ready = await kubectl(["wait", "--for=condition=Ready", "pod/cluster-first", "pod/default-policy", "pod/none-policy", "--timeout=120s"]);
    if (ready.code !== 0) throw new Error(`pods not ready: ${ready.stderr}\n${(await kubectl(["describe", "pods"])).stdout}\nkubelet:\n${kubeletOut.slice(-3000)}`);

    const cf = await exec("cluster-first", ["cat", "/etc/resolv.conf"]);
    expect(cf.code, cf.stderr).toBe(0);
    expect(parseResolvConf(cf.stdout)).toEqual({ servers: [CLUSTER_DNS], searches: ["default.svc.cluster.local", "svc.cluster.local", "cluster.local", ...parseResolvConf(readFileSync("/etc/resolv.conf", "utf8")).searches], options: ["ndots:5"] });

    const none = await exec("none-policy", ["cat", "/etc/resolv.conf"]);
    expect(parseResolvConf(none.stdout)).toEqual({ servers: ["127.0.0.1"], searches: ["a.example", "b.example"], options: ["ndots:2", "edns0"] });

    // Default: the host's file, minus every nameserver not on this machine (this host's may be remote).
    const hostConf = parseResolvConf(readFileSync("/etc/resolv.conf", "utf8"));
    const def = parseResolvConf((await exec("default-policy", ["cat", "/etc/resolv.conf"])).stdout);
    expect(def.servers.length).toBeGreaterThan(0);
    for (const s of def.servers) expect(isLocalAddress(s), s).toBe(true);
    const remote = hostConf.servers.filter((s) => !isLocalAddress(s));
    for (const s of remote) expect(def.servers).not.toContain(s);
    if (def.servers.some((s) => hostConf.servers.includes(s))) expect(def.searches).toEqual(hostConf.searches);

    // The drops are Warning events on the pods (8.8.8.8 always; the host's remote ones if any).
    const events = await poll("DNSConfigForming events", async () => {
      const r = await kubectl(["get", "events", "--field-selector", "reason=DNSConfigForming", "-o", "json"]);
      const items = (JSON.parse(r.stdout) as { items: { involvedObject: { name: string }; message: string; type: string }[] }).items;
      return items.some((e) => e.involvedObject.name === "none-policy") && (remote.length === 0 || items.some((e) => e.involvedObject.name === "default-policy")) ? items : undefined;
    }, 30_000);
    expect(events.find((e) => e.involvedObject.name === "none-policy")).toMatchObject({ type: "Warning", message: expect.stringContaining("Nameserver 8.8.8.8 omitted") });
    expect(events.some((e) => e.involvedObject.name === "cluster-first")).toBe(false);
  }, 200_000);

  it("a pod reaches a ClusterIP on the service interface through its gateway; an address of the range not on it is unreachable", async () => {
    const ok = await exec("cluster-first", ["timeout", "5", "wget", "-q", "-O", "-", `http://${SVC_IP}:${webPort}/`]);
    expect(ok.stdout, ok.stderr).toBe("svc-ok\n");
    const no = await exec("cluster-first", ["timeout", "3", "wget", "-q", "-O", "-", `http://${NOT_ON_IFACE}:${webPort}/`]);
    expect(no.code).not.toBe(0);
    expect(no.stdout).toBe("");
    // nc too (TCP connect, no HTTP).
    const nc = await exec("cluster-first", ["sh", "-c", `echo | nc -w 3 ${SVC_IP} ${webPort} >/dev/null && echo connected`]);
    expect(nc.stdout).toBe("connected\n");
  }, 60_000);

  it("busybox nslookup and wget resolve a Service name through the pod's resolv.conf (search path, ndots:5)", async () => {
    const ns = await exec("cluster-first", ["nslookup", "web.default.svc.cluster.local"]);
    expect(ns.stdout, ns.stderr).toContain(SVC_IP);
    const short = await exec("cluster-first", ["nslookup", "web"]);
    expect(short.stdout, short.stderr).toContain(SVC_IP);
    const byName = await exec("cluster-first", ["timeout", "5", "wget", "-q", "-O", "-", `http://web:${webPort}/`]);
    expect(byName.stdout, byName.stderr).toBe("svc-ok\n");
    const missingName = await exec("cluster-first", ["timeout", "5", "wget", "-q", "-O", "-", `http://nope:${webPort}/`]);
    expect(missingName.code).not.toBe(0);
  }, 60_000);

  it("stopping the host deletes the service interface with its addresses", async () => {
    kubelet!.kill("SIGTERM");
    await new Promise((r) => kubelet!.once("exit", r));
    web?.close();
    dns?.close();
    dns = undefined;
    web = undefined;
    await host!.stop();
    expect(spawnSync("ip", ["link", "show", "dev", SERVICE_INTERFACE]).status).not.toBe(0);
    expect(spawnSync("ip", ["link", "show", "dev", "kubelab0"]).status).not.toBe(0);
    expect(execFileSync("ip", ["-4", "addr", "show"]).toString()).not.toContain(SVC_IP);
    expect(execFileSync("ip", ["route", "show", "table", "all"]).toString()).not.toMatch(/10\.96\.0\.(0\/16|5|10)\b/);
  }, 60_000);
});

