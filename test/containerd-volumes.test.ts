// Persistent volumes with real containers (P6 acceptance): under `kubelab up --runtime containerd` a
// pod on a kubelab-zonal claim writes a file into its bind-mounted volume, is deleted, and a new pod
// on the same claim reads the file back (kubectl logs and kubectl exec). After `down` nothing is left
// mounted or running. Needs root and containerd (CI has both).

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { acquireContainerdLock } from "./harness/hostlock.ts";
import { startKubelab, type Kubelab } from "./harness/kubelab.ts";
import { poll as pollEvery } from "./harness/poll.ts";

const poll = <T,>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 120_000): Promise<T> => pollEvery(what, fn, timeoutMs, 500);

const which = (bin: string): boolean => spawnSync("sh", ["-c", `command -v ${bin}`]).status === 0;
const missing = process.getuid?.() !== 0 ? "not root" : ["containerd", "runc", "ctr", "iptables", "busybox"].find((b) => !which(b));
const SKIP = missing ? `containerd suite needs root and containerd/runc/ctr/iptables/busybox: ${missing}` : "";
if (SKIP && process.env.CI) throw new Error(`CI must run the containerd suite: ${SKIP}`);

let k: Kubelab;
let release: (() => void) | undefined;

interface Obj {
  metadata: { name: string; labels?: Record<string, string>; deletionTimestamp?: string };
  spec?: { nodeName?: string; volumeName?: string; csi?: { driver: string; volumeHandle: string } };
  status?: { phase?: string };
}

async function kc(args: string[], input?: string): Promise<string> {
  const r = await k.kubectl(args, { input, timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}
async function get(args: string[]): Promise<Obj> {
  return JSON.parse(await kc([...args, "-o", "json"])) as Obj;
}

const claim = `
apiVersion: v1
kind: PersistentVolumeClaim
metadata: { name: data }
spec:
  storageClassName: kubelab-zonal
  accessModes: [ReadWriteOnce]
  resources: { requests: { storage: 1Gi } }
`;
const pod = (name: string, script: string): string => `
apiVersion: v1
kind: Pod
metadata: { name: ${name} }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: localhost/busybox:latest
      imagePullPolicy: IfNotPresent
      command: ["sh", "-c", "${script}"]
      volumeMounts: [{ name: data, mountPath: /data }]
  volumes:
    - name: data
      persistentVolumeClaim: { claimName: data }
`;

async function running(name: string): Promise<Obj> {
  return poll(`${name} Running`, async () => {
    const p = await get(["get", "pod", name]);
    return p.status?.phase === "Running" ? p : undefined;
  }).catch(async (e: unknown) => {
    const desc = await k.kubectl(["describe", "pod", name]);
    throw new Error(`${(e as Error).message}\n${desc.stdout}`);
  });
}

beforeAll(async () => {
  if (SKIP) return;
  // The other containerd suites use the same bridge, and `up` refuses one a live cluster holds.
  release = await acquireContainerdLock("test/containerd-volumes.test.ts");
  k = await startKubelab({ nodes: true, extraArgs: ["--runtime", "containerd"] });
}, 1_200_000);

afterAll(async () => {
  await k?.stop({ clean: true });
  release?.();
});

describe.skipIf(SKIP !== "")("persistent volumes under kubelab up --runtime containerd", () => {
  it("a pod writes into its kubelab-zonal volume; after it is deleted a new pod on the claim reads the file; nothing is left mounted after down", async () => {
    await kc(["apply", "-f", "-"], claim + "---" + pod("writer", "echo hello > /data/f; sleep 3600"));
    const writer = await running("writer");
    const pvc = await get(["get", "pvc", "data"]);
    const pv = await get(["get", "pv", pvc.spec!.volumeName!]);
    expect(pv.spec?.csi?.driver).toBe("zonal.csi.kubelab.io");
    const handle = pv.spec!.csi!.volumeHandle;
    expect(handle).toMatch(/^vol-[0-9a-f]{17}$/);
    // The container wrote into the cloud disk's host directory through the bind mount.
    const hostFile = `${k.dataDir}/volumes/${handle}/f`;
    await poll("the file on the host's volume directory", async () => {
      try {
        return readFileSync(hostFile, "utf8") === "hello\n";
      } catch {
        return false;
      }
    }, 30_000);
    const seen = await k.kubectl(["exec", "writer", "--", "cat", "/data/f"]);
    expect(seen.stdout, seen.stderr).toBe("hello\n");

    await kc(["delete", "pod", "writer", "--wait=true", "--timeout=60s"]);
    await kc(["apply", "-f", "-"], pod("reader", "cat /data/f; sleep 3600"));
    const reader = await running("reader");
    expect(reader.spec?.nodeName ? (await get(["get", "node", reader.spec.nodeName])).metadata.labels?.["topology.kubernetes.io/zone"] : "").toBe(
      (await get(["get", "node", writer.spec!.nodeName!])).metadata.labels?.["topology.kubernetes.io/zone"],
    );
    const logs = await poll("the reader's output", async () => {
      const r = await k.kubectl(["logs", "reader"]);
      return r.code === 0 && r.stdout.length > 0 ? r.stdout : undefined;
    }, 30_000);
    expect(logs).toBe("hello\n");
    const exec = await k.kubectl(["exec", "reader", "--", "cat", "/data/f"]);
    expect(exec.stdout, exec.stderr).toBe("hello\n");

    // down: no container processes, no mounts of the data directory left.
    const dataDir = k.dataDir;
    await k.stop();
    expect(spawnSync("pgrep", ["-f", dataDir]).stdout.toString().trim()).toBe("");
    expect(readFileSync("/proc/mounts", "utf8")).not.toContain(dataDir);
  }, 600_000);
});
