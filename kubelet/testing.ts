// A test fixture for the kubelet's pod side: a PodSyncer over a FakeClient, a FakeRuntime and a
// FakeClock, with helpers to let its workers settle and to advance fake time step by step.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Container, Pod, PodSpec } from "../api/core/v1.ts";
import type { KubeObject } from "../api/index.ts";
import { FakeClient, FakeClock, FakeRecorder, flushPromises, newInformer, newLogger } from "../client/index.ts";
import { FakeRuntime } from "./runtime/fake.ts";
import { PodSyncer, type PodSyncerOptions } from "./sync.ts";

export const TEST_NODE = "node-1";
const realSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface SyncerEnv {
  clock: FakeClock;
  client: FakeClient;
  runtime: FakeRuntime;
  recorder: FakeRecorder;
  syncer: PodSyncer;
  rootDir: string;
  /** Lets promises run and waits until the pod workers are idle. */
  settle(): Promise<void>;
  /** Lets promises run without waiting for the pod workers (a sync may be waiting on the fake clock). */
  pump(): Promise<void>;
  /** Advances the fake clock (PLEG relists, probes, backoff timers), settling after each step. */
  advance(ms: number): Promise<void>;
  /** Creates a pod bound to TEST_NODE (one `app` container unless `spec` says otherwise) and settles. */
  create(name: string, spec: Partial<PodSpec>, meta?: Partial<Pod["metadata"]>): Promise<Pod>;
  pod(name: string): Pod;
  /** runtime.calls without containerStatus noise, optionally only those starting with a prefix. */
  calls(prefix?: string): string[];
  stop(): Promise<void>;
}

export interface SyncerEnvOptions {
  objects?: KubeObject[];
  /** Runs before the syncer starts (seed the runtime or the client). */
  prepare?(runtime: FakeRuntime, client: FakeClient): Promise<void> | void;
  /** Extra PodSyncer options (intervals, retry delays). */
  syncer?: Partial<PodSyncerOptions>;
}

export function appContainer(extra: Partial<Container> = {}): Container {
  return { name: "app", image: "busybox", imagePullPolicy: "IfNotPresent", ...extra };
}

export async function startSyncerEnv(opts: SyncerEnvOptions = {}): Promise<SyncerEnv> {
  const clock = new FakeClock();
  const client = new FakeClient(opts.objects ?? [], { clock });
  const log = newLogger("kubelet-test");
  log.level = "silent";
  const informer = newInformer<Pod>(client, "", "pods", { clock, log });
  const runtime = new FakeRuntime(clock);
  runtime.images.set("busybox", "sha256:busybox");
  const recorder = new FakeRecorder();
  const rootDir = await mkdtemp(join(tmpdir(), "kubelet-test-"));
  await opts.prepare?.(runtime, client);
  const syncer = new PodSyncer({
    nodeName: TEST_NODE,
    client,
    pods: informer,
    runtime,
    rootDir,
    nodeIP: "127.0.0.10",
    recorder,
    clock,
    log,
    plegRelistPeriodMs: 1_000,
    ...opts.syncer,
  });
  const ac = new AbortController();
  const ctx = { signal: ac.signal, log };
  const informerDone = informer.run(ctx);
  const done = syncer.run(ctx);
  const pump = async (): Promise<void> => {
    for (let i = 0; i < 4; i++) {
      await flushPromises();
      await realSleep(3);
    }
  };
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 6; i++) {
      await flushPromises();
      await syncer.workers.idle();
      await realSleep(3);
    }
  };
  const env: SyncerEnv = {
    clock,
    client,
    runtime,
    recorder,
    syncer,
    rootDir,
    settle,
    pump,
    async advance(ms) {
      const target = clock.now() + ms;
      while (clock.now() < target) {
        const next = clock.nextAt();
        const step = next === undefined || next > target ? target - clock.now() : Math.max(0, next - clock.now());
        await clock.advance(step);
        await settle();
        if (step === 0 && clock.nextAt() === next) await clock.advance(1);
      }
    },
    async create(name, spec, meta = {}) {
      const pod: Pod = {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, namespace: "default", ...meta },
        spec: { nodeName: TEST_NODE, containers: [appContainer()], ...spec },
        status: { phase: "Pending", qosClass: "BestEffort", conditions: [{ type: "PodScheduled", status: "True" }] },
      };
      const created = await client.resource<Pod>("", "pods").create("default", pod);
      await settle();
      return created;
    },
    pod(name) {
      return client.tracker("", "pods", "default", name) as Pod;
    },
    calls(prefix) {
      return runtime.calls.filter((c) => !c.startsWith("containerStatus") && (!prefix || c.startsWith(prefix)));
    },
    async stop() {
      ac.abort();
      await done;
      await informerDone;
      await rm(rootDir, { recursive: true, force: true });
    },
  };
  await settle();
  return env;
}

/** A container's status (app, init or sidecar) by name. */
export function containerStatusOf(pod: Pod, name: string) {
  return [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])].find((c) => c.name === name)!;
}

export function podCondition(pod: Pod, type: string) {
  return pod.status?.conditions?.find((c) => c.type === type);
}
