// Real containers: `kubelab up --runtime containerd` (containerd + runc + the CNI bridge, started and
// cleaned up by kubelab) runs a busybox httpd Deployment whose pods answer HTTP on their pod IPs from
// the host; kubectl logs shows what the container printed; a container killed from outside is
// restarted by the kubelet; a Service and an Ingress reach the pods from the host, and another pod
// reaches them by DNS name; after `down` nothing is left behind. Needs root and containerd (CI has both).

import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { acquireContainerdLock } from "./harness/hostlock.ts";
import { startKubelab, type Kubelab } from "./harness/kubelab.ts";
import { poll as pollEvery } from "./harness/poll.ts";

/** Failures and recoveries here take tens of seconds: a longer default than the harness's. */
const poll = <T,>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 90_000): Promise<T> => pollEvery(what, fn, timeoutMs, 500);

const which = (bin: string): boolean => spawnSync("sh", ["-c", `command -v ${bin}`]).status === 0;
const missing = process.getuid?.() !== 0 ? "not root" : ["containerd", "runc", "ctr", "iptables", "busybox"].find((b) => !which(b));
const SKIP = missing ? `containerd suite needs root and containerd/runc/ctr/iptables/busybox: ${missing}` : "";
if (SKIP && process.env.CI) throw new Error(`CI must run the containerd suite: ${SKIP}`);

let k: Kubelab;
let release: (() => void) | undefined;
const ipForwardBefore = readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim();

interface Pod {
  metadata: { name: string; deletionTimestamp?: string };
  status?: {
    podIP?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: { containerID?: string; restartCount: number; ready: boolean; lastState?: { terminated?: { exitCode: number; reason?: string } } }[];
  };
}

async function pods(): Promise<Pod[]> {
  const r = await k.kubectl(["get", "pods", "-l", "app=httpd", "-o", "json"]);
  if (r.code !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout) as { items: Pod[] }).items.filter((p) => !p.metadata.deletionTimestamp);
}


function get(ip: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: ip, port, path: "/", timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve(body));
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timeout")));
  });
}

const manifest = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: httpd
spec:
  replicas: 2
  selector:
    matchLabels: {app: httpd}
  template:
    metadata:
      labels: {app: httpd}
    spec:
      terminationGracePeriodSeconds: 3
      containers:
      - name: httpd
        image: localhost/busybox:latest
        imagePullPolicy: IfNotPresent
        command: [sh, -c]
        args:
        - mkdir -p /www && echo "hello from $(hostname)" > /www/index.html && echo "serving /www as $(hostname)" && exec httpd -f -v -p 8080 -h /www
        ports:
        - containerPort: 8080
        readinessProbe:
          httpGet: {path: /, port: 8080}
          periodSeconds: 1
`;

beforeAll(async () => {
  if (SKIP) return;
  // The other containerd suites use the same bridge, and `up` refuses one a live cluster holds.
  release = await acquireContainerdLock("test/containerd.test.ts");
  k = await startKubelab({ nodes: true, extraArgs: ["--runtime", "containerd"] });
}, 1_200_000);

afterAll(async () => {
  await k?.stop({ clean: true });
  release?.();
});

describe.skipIf(SKIP !== "")("kubelab up --runtime containerd", () => {
  it("runs a busybox httpd Deployment answering on its pod IPs; logs; restarts a killed container; leaves nothing after down", async () => {
    await poll("3 Ready containerd nodes", async () => {
      const r = await k.kubectl(["get", "nodes", "-o", "json"]);
      const nodes = (JSON.parse(r.stdout) as { items: { status?: { conditions?: { type: string; status: string }[]; nodeInfo?: { containerRuntimeVersion?: string } } }[] }).items;
      return nodes.length === 3 && nodes.every((n) => n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") && n.status.nodeInfo?.containerRuntimeVersion?.startsWith("containerd://")) ? nodes : undefined;
    }, 120_000);
    const applied = await k.kubectl(["apply", "-f", "-"], { input: manifest });
    expect(applied.code, applied.stderr).toBe(0);
    const rollout = await k.kubectl(["rollout", "status", "deployment/httpd", "--timeout=120s"], { timeoutMs: 130_000 });
    if (rollout.code !== 0) {
      const desc = await k.kubectl(["describe", "pods", "-l", "app=httpd"]);
      throw new Error(`rollout failed: ${rollout.stderr}${rollout.stdout}\n${desc.stdout}`);
    }

    const running = await pods();
    expect(running).toHaveLength(2);
    for (const p of running) {
      expect(p.status?.podIP).toMatch(/^10\.88\./);
      expect(await get(p.status!.podIP!, 8080)).toBe(`hello from ${p.metadata.name}\n`);
    }

    const name = running[0].metadata.name;
    const logs = await poll("the container's output", async () => {
      const r = await k.kubectl(["logs", name]);
      return r.code === 0 && r.stdout.includes(`serving /www as ${name}`) ? r.stdout : undefined;
    });
    expect(logs).toContain(`serving /www as ${name}`);

    // Kill the container's process from outside the cluster; the kubelet restarts it.
    const id = running[0].status!.containerStatuses![0].containerID!.replace(/^containerd:\/\//, "");
    const sock = join(k.dataDir, "containerd", "containerd.sock");
    execFileSync("ctr", ["-a", sock, "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", id]);
    const restarted = await poll("the killed container restarted and Ready", async () => {
      const p = (await pods()).find((x) => x.metadata.name === name);
      const cs = p?.status?.containerStatuses?.[0];
      return cs && cs.restartCount >= 1 && cs.ready ? cs : undefined;
    }, 60_000);
    expect(restarted.lastState?.terminated?.exitCode).toBe(137);
    const again = (await pods()).find((x) => x.metadata.name === name)!;
    expect(await get(again.status!.podIP!, 8080)).toBe(`hello from ${name}\n`);
    const prev = await k.kubectl(["logs", name, "--previous"]);
    expect(prev.stdout).toContain(`serving /www as ${name}`);

    // The data plane with real containers: a Service and an Ingress in front of the httpd pods,
    // reached from the host through the ClusterIP (on the kubelab-svc0 interface) and the ingress,
    // and from inside another pod by DNS name (its resolv.conf names kube-dns).
    for (const args of [["expose", "deployment", "httpd", "--port", "80", "--target-port", "8080"], ["create", "ingress", "httpd", "--rule=httpd.example.test/*=httpd:80"]]) {
      const r = await k.kubectl(args);
      expect(r.code, r.stderr).toBe(0);
    }
    const clusterIP = (await k.kubectl(["get", "service", "httpd", "-o", "jsonpath={.spec.clusterIP}"])).stdout.trim();
    expect(clusterIP).toMatch(/^10\.96\./);
    const names = new Set((await pods()).map((p) => p.metadata.name));
    const viaClusterIP = await poll("the ClusterIP from the host", async () => {
      const body = await get(clusterIP, 80).catch(() => "");
      return body.startsWith("hello from ") ? body : undefined;
    });
    expect(names).toContain(viaClusterIP.trim().replace("hello from ", ""));
    const up = JSON.parse(readFileSync(join(k.dataDir, "up.json"), "utf8")) as { dataPlane: { ingressHTTP: string } };
    const ingressPort = Number(new URL(up.dataPlane.ingressHTTP).port);
    const viaIngress = await poll("the ingress", async () => {
      const body = await new Promise<string>((resolve) => {
        const req = http.get({ host: "127.0.0.1", port: ingressPort, path: "/", headers: { host: "httpd.example.test" }, timeout: 5000 }, (res) => {
          let b = "";
          res.setEncoding("utf8");
          res.on("data", (d: string) => (b += d));
          res.on("end", () => resolve(res.statusCode === 200 ? b : ""));
        });
        req.on("error", () => resolve(""));
        req.on("timeout", () => req.destroy());
      });
      return body.startsWith("hello from ") ? body : undefined;
    });
    expect(names).toContain(viaIngress.trim().replace("hello from ", ""));
    const client = await k.kubectl(["run", "client", "--image=localhost/busybox:latest", "--image-pull-policy=IfNotPresent", "--restart=Never", "--", "sleep", "3600"]);
    expect(client.code, client.stderr).toBe(0);
    await poll("the client pod Running", async () => (await k.kubectl(["get", "pod", "client", "-o", "jsonpath={.status.phase}"])).stdout === "Running");
    const resolv = await k.kubectl(["exec", "client", "--", "cat", "/etc/resolv.conf"]);
    expect(resolv.stdout).toMatch(/nameserver 10\.96\.0\.10/);
    expect(resolv.stdout).toMatch(/search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local/);
    // busybox 1.35's `wget -T` crashes: the exec's own timeout bounds it instead.
    const inside = await poll("wget by DNS name from inside the client pod", async () => {
      const r = await k.kubectl(["exec", "client", "--", "wget", "-qO-", "http://httpd.default.svc.cluster.local/"], { timeoutMs: 20_000 });
      return r.code === 0 && r.stdout.startsWith("hello from ") ? r.stdout : undefined;
    });
    expect(names).toContain(inside.trim().replace("hello from ", ""));
    const short = await k.kubectl(["exec", "client", "--", "wget", "-qO-", "http://httpd/"], { timeoutMs: 20_000 });
    expect(short.stdout, short.stderr).toMatch(/^hello from /);

    // down: nothing left behind.
    const dataDir = k.dataDir;
    await k.stop();
    const procs = spawnSync("pgrep", ["-f", dataDir]).stdout.toString().trim();
    expect(procs).toBe("");
    expect(spawnSync("ip", ["link", "show", "kubelab0"]).status).not.toBe(0);
    expect(spawnSync("ip", ["link", "show", "kubelab-svc0"]).status).not.toBe(0);
    const rules = execFileSync("iptables-save").toString();
    expect(rules).not.toMatch(/CNI-|KUBELAB/);
    const mounts = readFileSync("/proc/mounts", "utf8");
    expect(mounts).not.toContain(dataDir);
    expect(readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim()).toBe(ipForwardBefore);
    expect(execFileSync("ip", ["route", "show", "table", "all"]).toString()).not.toMatch(/unreachable 10\.96\.0\.0\/16/);
  }, 300_000);
});
