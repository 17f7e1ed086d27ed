// The ServiceAccount token volume through the pod side: the kube-api-access projected volume the
// ServiceAccount admission plugin adds, mounted read-only where client libraries look for it; a
// TokenRequest failure holds the pod in ContainerCreating with FailedMount; the token file is
// rewritten when it is due, without restarting the container; and under the simulated runtime the
// container's `cat` reads the token.

import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { ConfigMap, Pod, Volume } from "../api/core/v1.ts";
import { FakeClient, FakeRecorder, newInformer, newLogger, type Clock } from "../client/index.ts";
import { SimRuntime } from "./runtime/sim.ts";
import { PodSyncer } from "./sync.ts";
import { startSyncerEnv, type SyncerEnv } from "./testing.ts";
import type { TokenRequest } from "./tokenmanager.ts";

const SA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount";
const VOL = "kube-api-access-abcde";
const CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const rootCA: ConfigMap = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "kube-root-ca.crt", namespace: "default" }, data: { "ca.crt": CA } };

/** The volume upstream's ServiceAccount admission plugin adds (expiration given per test). */
function kubeAPIAccess(expirationSeconds = 3607): Volume {
  return {
    name: VOL,
    projected: {
      defaultMode: 420,
      sources: [
        { serviceAccountToken: { expirationSeconds, path: "token" } },
        { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
        { downwardAPI: { items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }] } },
      ],
    },
  };
}

/**
 * Gives a FakeClient the TokenRequest call (POST serviceaccounts/<name>/token) the apiserver will
 * serve: tok-1, tok-2, ... valid for the requested seconds, or `state.fail`.
 */
function withTokenRequest(client: FakeClient, clock: Pick<Clock, "now">) {
  const state: { fail?: Error; requests: { namespace: string; name: string; body: TokenRequest }[] } = { requests: [] };
  Object.assign(client, {
    async createToken(namespace: string, name: string, body: TokenRequest): Promise<TokenRequest> {
      state.requests.push({ namespace, name, body: structuredClone(body) });
      if (state.fail) throw state.fail;
      const seconds = body.spec.expirationSeconds ?? 3600;
      return { ...body, status: { token: `tok-${state.requests.length}`, expirationTimestamp: new Date(clock.now() + seconds * 1000).toISOString() } };
    },
  });
  return state;
}

const envs: SyncerEnv[] = [];
afterEach(async () => {
  for (const e of envs.splice(0)) await e.stop();
});

async function setup() {
  const e = await startSyncerEnv({
    objects: [rootCA],
    // Long relist and refresh periods keep the fake-clock steps few over minutes of fake time.
    syncer: { volumeRetryMs: 5_000, plegRelistPeriodMs: 30_000, volumeRefreshMs: 60_000 },
    // The kubelet's client must offer the call when the syncer is built; the answers come below.
    prepare: (_rt, client) => void withTokenRequest(client, { now: () => 0 }),
  });
  envs.push(e);
  // createToken is looked up per request: this one issues tokens on the env's fake clock.
  return { e, tokens: withTokenRequest(e.client, e.clock) };
}

const saContainer = { name: "app", image: "busybox", imagePullPolicy: "IfNotPresent" as const, volumeMounts: [{ name: VOL, readOnly: true, mountPath: SA_PATH }] };

describe("projected ServiceAccount token volume (pod sync)", () => {
  it("mounts token, ca.crt and namespace read-only at the ServiceAccount path, the token bound to the pod", async () => {
    const { e, tokens } = await setup();
    const created = await e.create("app", { serviceAccountName: "builder", volumes: [kubeAPIAccess()], containers: [saContainer] });
    expect(e.pod("app").status?.phase).toBe("Running");
    const dir = join(e.rootDir, "pods", created.metadata.uid!, "volumes", "kubernetes.io~projected", VOL);
    expect([...e.runtime.configs.values()][0].mounts).toContainEqual({ containerPath: SA_PATH, hostPath: dir, readonly: true });
    expect(await readFile(join(dir, "token"), "utf8")).toBe("tok-1");
    expect(await readFile(join(dir, "ca.crt"), "utf8")).toBe(CA);
    expect(await readFile(join(dir, "namespace"), "utf8")).toBe("default");
    expect(tokens.requests).toEqual([
      {
        namespace: "default",
        name: "builder",
        body: { spec: { expirationSeconds: 3607, boundObjectRef: { apiVersion: "v1", kind: "Pod", name: "app", uid: created.metadata.uid } } },
      },
    ]);
  });

  it("a TokenRequest failure: FailedMount, ContainerCreating, no container; the retry mounts it once the API answers", async () => {
    const { e, tokens } = await setup();
    tokens.fail = new Error('serviceaccounts "builder" is forbidden: User "system:node:node-1" cannot create resource "serviceaccounts/token"');
    await e.create("app", { serviceAccountName: "builder", volumes: [kubeAPIAccess()], containers: [saContainer] });
    expect(e.recorder.events).toContain(
      `Warning FailedMount MountVolume.SetUp failed for volume "${VOL}" : failed to fetch token: serviceaccounts "builder" is forbidden: User "system:node:node-1" cannot create resource "serviceaccounts/token"`,
    );
    const p = e.pod("app");
    expect(p.status?.phase).toBe("Pending");
    expect(p.status?.containerStatuses?.[0].state?.waiting?.reason).toBe("ContainerCreating");
    expect(e.calls("createContainer")).toEqual([]);
    tokens.fail = undefined;
    await e.advance(5_000);
    expect(e.pod("app").status?.phase).toBe("Running");
  });

  it("a missing kube-root-ca.crt holds the pod with the configMap's FailedMount", async () => {
    const { e } = await setup();
    await e.client.resource<ConfigMap>("", "configmaps").delete("default", "kube-root-ca.crt");
    await e.create("app", { volumes: [kubeAPIAccess()], containers: [saContainer] });
    expect(e.recorder.events).toContain(`Warning FailedMount MountVolume.SetUp failed for volume "${VOL}" : configmap "kube-root-ca.crt" not found`);
    expect(e.calls("createContainer")).toEqual([]);
  });

  it("the periodic sync rewrites the token after 80% of its TTL, without restarting the container; deletion drops it", async () => {
    const { e, tokens } = await setup();
    const created = await e.create("app", { volumes: [kubeAPIAccess(600)], containers: [saContainer] });
    const file = join(e.rootDir, "pods", created.metadata.uid!, "volumes", "kubernetes.io~projected", VOL, "token");
    expect(await readFile(file, "utf8")).toBe("tok-1");
    await e.advance(470_000); // < 480 s (80% of 600 s, less up to 10 s jitter)
    expect(await readFile(file, "utf8")).toBe("tok-1");
    await e.advance(130_000); // the next periodic sync falls after 80% of the TTL
    expect(await readFile(file, "utf8")).toBe("tok-2");
    expect(tokens.requests).toHaveLength(2);
    expect(e.calls("createContainer")).toHaveLength(1);
    expect(e.syncer.volumes.tokens.size()).toBe(1);
    await e.client.resource<Pod>("", "pods").delete("default", "app", { gracePeriodSeconds: 0 });
    await e.advance(1_000);
    expect(e.syncer.volumes.tokens.size()).toBe(0);
  });
});

describe("projected ServiceAccount token volume (simulated runtime)", () => {
  let cleanup: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await cleanup?.();
    cleanup = undefined;
  });

  it("the container's cat prints the token at /var/run/secrets/kubernetes.io/serviceaccount/token", async () => {
    const log = newLogger("kubelet-projected-sim-test");
    log.level = "silent";
    const client = new FakeClient([rootCA]);
    withTokenRequest(client, { now: () => Date.now() });
    const informer = newInformer<Pod>(client, "", "pods", { log });
    const runtime = new SimRuntime({ nodeName: "sim-sa", zone: "z", podCIDR: "127.77.9.0/24", log });
    const rootDir = await mkdtemp(join(tmpdir(), "kubelet-projected-sim-"));
    const syncer = new PodSyncer({ nodeName: "sim-sa", client, pods: informer, runtime, rootDir, nodeIP: runtime.nodeIP, recorder: new FakeRecorder(), log, plegRelistPeriodMs: 50 });
    const ac = new AbortController();
    const ctx = { signal: ac.signal, log };
    const informerDone = informer.run(ctx);
    const done = syncer.run(ctx);
    cleanup = async () => {
      ac.abort();
      await done;
      await informerDone;
      await runtime.close();
      await rm(rootDir, { recursive: true, force: true });
    };
    await informer.waitForSync(ac.signal);
    await new Promise((r) => setTimeout(r, 50)); // the watch is open
    await client.resource<Pod>("", "pods").create("default", {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "reader", namespace: "default" },
      spec: { nodeName: "sim-sa", volumes: [kubeAPIAccess()], containers: [{ ...saContainer, command: ["sleep", "3600"] }] },
    });
    const end = Date.now() + 8_000;
    let id = "";
    while (!id) {
      if (Date.now() > end) throw new Error("timed out waiting for the container to run");
      const uid = syncer.podUID("default", "reader");
      const rt = uid ? await syncer.pleg.podStatus(uid) : undefined;
      id = rt?.containers.find((c) => c.state === "CONTAINER_RUNNING")?.id ?? "";
      if (!id) await new Promise((r) => setTimeout(r, 20));
    }
    const cat = async (f: string): Promise<string> => {
      const r = await runtime.execSync(id, ["cat", `${SA_PATH}/${f}`], 5);
      expect(r.stderr.toString()).toBe("");
      return r.stdout.toString();
    };
    // The sim shell writes whole lines: a file without a final newline gets one.
    expect(await cat("token")).toBe("tok-1\n");
    expect(await cat("namespace")).toBe("default\n");
    expect(await cat("ca.crt")).toBe(CA);
    const w = await runtime.execSync(id, ["sh", "-c", `echo x > ${SA_PATH}/token`], 5);
    expect(w.stderr.toString()).toContain("Read-only file system");
  });
});
