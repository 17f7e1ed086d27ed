// The ServiceAccount token a real container reads: under `kubelab up --runtime containerd` a busybox
// pod gets the kube-api-access projected volume (ServiceAccount admission), the kubelet requests a
// pod-bound token through its node identity (TokenRequest), and bind-mounts the projected directory
// read-only at /var/run/secrets/kubernetes.io/serviceaccount, so `cat .../token` inside the container
// prints a JWT bound to that pod, ca.crt is the cluster CA and namespace the pod's namespace; the
// token authenticates as the pod's ServiceAccount. Needs root and containerd (CI has both).

import { spawnSync } from "node:child_process";
import https from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { acquireContainerdLock } from "./harness/hostlock.ts";
import { startKubelab, type Kubelab } from "./harness/kubelab.ts";
import { poll as pollEvery } from "./harness/poll.ts";

const poll = <T,>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 120_000): Promise<T> => pollEvery(what, fn, timeoutMs, 500);

const which = (bin: string): boolean => spawnSync("sh", ["-c", `command -v ${bin}`]).status === 0;
const missing = process.getuid?.() !== 0 ? "not root" : ["containerd", "runc", "ctr", "iptables", "busybox"].find((b) => !which(b));
const SKIP = missing ? `containerd suite needs root and containerd/runc/ctr/iptables/busybox: ${missing}` : "";
if (SKIP && process.env.CI) throw new Error(`CI must run the containerd suite: ${SKIP}`);

const SA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount";

let k: Kubelab;
let release: (() => void) | undefined;

interface PodObj {
  metadata: { name: string; uid: string; namespace: string };
  spec: { volumes?: { name: string; projected?: unknown }[]; containers: { volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[] }[] };
  status?: { phase?: string };
}

async function kc(args: string[], input?: string): Promise<string> {
  const r = await k.kubectl(args, { input, timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

const pod = `
apiVersion: v1
kind: Pod
metadata: { name: reader }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: localhost/busybox:latest
      imagePullPolicy: IfNotPresent
      command: ["sh", "-c", "sleep 3600"]
`;

/** The JWT's claims (the payload segment, base64url JSON). */
function claims(jwt: string): Record<string, unknown> {
  const parts = jwt.split(".");
  expect(parts).toHaveLength(3);
  return JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8")) as Record<string, unknown>;
}

/** POST a SelfSubjectReview with only `token` as the credential. */
function selfSubjectReview(token: string): Promise<{ status?: { userInfo?: { username?: string } } }> {
  const body = JSON.stringify({ apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" });
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${k.server}/apis/authentication.k8s.io/v1/selfsubjectreviews`,
      { method: "POST", ca: k.caCert, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, timeout: 10_000 },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => (res.statusCode === 201 || res.statusCode === 200 ? resolve(JSON.parse(text) as { status?: { userInfo?: { username?: string } } }) : reject(new Error(`${res.statusCode}: ${text}`))));
      },
    );
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.end(body);
  });
}

beforeAll(async () => {
  if (SKIP) return;
  // The other containerd suites use the same bridge, and `up` refuses one a live cluster holds.
  release = await acquireContainerdLock("test/containerd-satoken.test.ts");
  k = await startKubelab({ nodes: true, extraArgs: ["--runtime", "containerd"] });
}, 1_200_000);

afterAll(async () => {
  await k?.stop({ clean: true });
  release?.();
});

const projectedPod = `
apiVersion: v1
kind: ConfigMap
metadata: { name: site }
data: { greeting: hello }
---
apiVersion: v1
kind: Pod
metadata: { name: projected, labels: { app: demo } }
spec:
  terminationGracePeriodSeconds: 1
  automountServiceAccountToken: false
  containers:
    - name: main
      image: localhost/busybox:latest
      imagePullPolicy: IfNotPresent
      command: ["sh", "-c", "sleep 3600"]
      volumeMounts: [{ name: info, mountPath: /etc/info, readOnly: true }]
  volumes:
    - name: info
      projected:
        defaultMode: 0440
        sources:
          - configMap: { name: site, items: [{ key: greeting, path: conf/greeting }] }
          - downwardAPI: { items: [{ path: labels, fieldRef: { fieldPath: metadata.labels } }, { path: name, fieldRef: { fieldPath: metadata.name } }] }
`;

describe.skipIf(SKIP !== "")("ServiceAccount tokens under kubelab up --runtime containerd", () => {
  it("a projected volume (configMap and downwardAPI sources) is bind-mounted: its ..data symlinks resolve inside the container", async () => {
    await kc(["apply", "-f", "-"], projectedPod);
    await poll("projected Running", async () => (JSON.parse(await kc(["get", "pod", "projected", "-o", "json"])) as PodObj).status?.phase === "Running").catch(async (e: unknown) => {
      const desc = await k.kubectl(["describe", "pod", "projected"]);
      throw new Error(`${(e as Error).message}\n${desc.stdout}`);
    });
    const sh = async (script: string): Promise<string> => {
      const r = await k.kubectl(["exec", "projected", "--", "sh", "-c", script]);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    expect(await sh("cat /etc/info/conf/greeting")).toBe("hello");
    expect(await sh("cat /etc/info/labels")).toBe('app="demo"');
    expect(await sh("cat /etc/info/name")).toBe("projected");
    expect((await sh("stat -L -c %a /etc/info/name")).trim()).toBe("440");
    const write = await k.kubectl(["exec", "projected", "--", "sh", "-c", "echo x > /etc/info/name"]);
    expect(write.code).not.toBe(0);
    expect(write.stderr).toMatch(/Read-only file system/);
  }, 300_000);

  it("cat inside a busybox container prints the pod-bound token; ca.crt and namespace sit beside it; the mount is read-only", async () => {
    await kc(["apply", "-f", "-"], pod);
    const p = await poll("reader Running", async () => {
      const o = JSON.parse(await kc(["get", "pod", "reader", "-o", "json"])) as PodObj;
      return o.status?.phase === "Running" ? o : undefined;
    }).catch(async (e: unknown) => {
      const desc = await k.kubectl(["describe", "pod", "reader"]);
      throw new Error(`${(e as Error).message}\n${desc.stdout}`);
    });
    const vol = p.spec.volumes?.find((v) => v.name.startsWith("kube-api-access-") && v.projected);
    expect(vol, "the ServiceAccount admission plugin's volume").toBeDefined();
    expect(p.spec.containers[0].volumeMounts).toContainEqual({ name: vol!.name, readOnly: true, mountPath: SA_PATH });

    const cat = async (f: string): Promise<string> => {
      const r = await k.kubectl(["exec", "reader", "--", "cat", `${SA_PATH}/${f}`]);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    const token = await cat("token");
    const c = claims(token);
    expect(c.sub).toBe("system:serviceaccount:default:default");
    expect((c["kubernetes.io"] as { pod?: { name?: string; uid?: string } } | undefined)?.pod).toEqual({ name: "reader", uid: p.metadata.uid });
    expect(await cat("namespace")).toBe("default");
    expect((await cat("ca.crt")).trim()).toBe(k.caCert.trim());

    // Read-only: the container cannot replace its credentials.
    const write = await k.kubectl(["exec", "reader", "--", "sh", "-c", `echo x > ${SA_PATH}/token`]);
    expect(write.code).not.toBe(0);
    expect(write.stderr).toMatch(/Read-only file system/);

    // The token authenticates as the pod's ServiceAccount (a SelfSubjectReview with it alone).
    const review = await selfSubjectReview(token);
    expect(review.status?.userInfo?.username).toBe("system:serviceaccount:default:default");
  }, 600_000);
});
