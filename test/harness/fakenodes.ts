// Test helper standing in for the scheduler and the kubelets: registers Ready Nodes across zones,
// binds every unbound pod round-robin, marks bound pods Running and Ready (with a pod IP), completes
// the pods of Jobs, and finishes graceful deletions — all through the client library against a
// running apiserver.

import type { Node, Pod, PodCondition } from "../../api/core/v1.ts";
import type { Lease } from "../../api/coordination/v1.ts";
import { isAlreadyExists, isConflict, isNotFound, newInformer, newLogger, objectKey, type Client, type ListWatchInformer } from "../../client/index.ts";

export const ZONE_LABEL = "topology.kubernetes.io/zone";
export const JOB_NAME_LABEL = "batch.kubernetes.io/job-name";

export interface FakeNodesOptions {
  /** Number of nodes (default 3), named `<prefix>-0..N-1`. */
  nodes?: number;
  /** Node name prefix (default "fake-node"). */
  prefix?: string;
  /** Zones the nodes are spread over round-robin (default zone-a, zone-b, zone-c). */
  zones?: string[];
  /** Delay between binding a pod and marking it Running and Ready (default 0). */
  readyDelayMs?: number;
  /** Delay after a Job's pod is Running before it is marked Succeeded (default 300). */
  jobCompleteDelayMs?: number;
  /** Only handle pods in these namespaces (default all). */
  namespaces?: string[];
  /** Neither bind nor run pods matching this predicate (they stay Pending). */
  skip?: (pod: Readonly<Pod>) => boolean;
  /** Bind and run these pods (with a pod IP) but leave them not Ready. */
  unready?: (pod: Readonly<Pod>) => boolean;
  /** Act as the scheduler too (default true). With false, only pods a real scheduler bound are run. */
  bind?: boolean;
}

export interface FakeNodes {
  readonly nodeNames: string[];
  /** The node → zone each node was created with. */
  readonly zones: Record<string, string>;
  /** Pods bound so far ("ns/name"). */
  readonly bound: ReadonlySet<string>;
  /** Errors from the simulated scheduler/kubelet that were not conflicts or not-founds. */
  readonly errors: Error[];
  stop(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const now = (): string => new Date().toISOString().replace(/\.\d+Z$/, "Z");

function errorOf(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/** Starts the fake scheduler+kubelets; resolves once the nodes exist and the pod informer has synced. */
export async function startFakeNodes(client: Client, opts: FakeNodesOptions = {}): Promise<FakeNodes> {
  const count = opts.nodes ?? 3;
  const prefix = opts.prefix ?? "fake-node";
  const zoneList = opts.zones ?? ["zone-a", "zone-b", "zone-c"];
  const readyDelay = opts.readyDelayMs ?? 0;
  const jobDelay = opts.jobCompleteDelayMs ?? 300;
  const nodeClient = client.resource<Node>("", "nodes");
  const podClient = client.resource<Pod>("", "pods");

  const nodeNames: string[] = [];
  const zones: Record<string, string> = {};
  for (let i = 0; i < count; i++) {
    const name = `${prefix}-${i}`;
    const zone = zoneList[i % zoneList.length];
    nodeNames.push(name);
    zones[name] = zone;
    const node: Node = {
      apiVersion: "v1",
      kind: "Node",
      metadata: { name, labels: { [ZONE_LABEL]: zone, "kubernetes.io/hostname": name } },
      spec: {},
    };
    let created: Node;
    try {
      created = await nodeClient.create("", node);
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
      created = await nodeClient.get("", name);
    }
    const ts = now();
    created.status = {
      ...created.status,
      capacity: { cpu: "8", memory: "32Gi", pods: "110" },
      allocatable: { cpu: "8", memory: "32Gi", pods: "110" },
      conditions: [{ type: "Ready", status: "True", reason: "KubeletReady", message: "fake kubelet is ready", lastHeartbeatTime: ts, lastTransitionTime: ts }],
      addresses: [{ type: "InternalIP", address: `127.0.${i + 1}.1` }, { type: "Hostname", address: name }],
    };
    await nodeClient.updateStatus(created);
  }

  const stopper = new AbortController();
  const bound = new Set<string>();
  const errors: Error[] = [];
  const running = new Set<string>(); // keys marked Running (by uid: "uid")
  const succeeded = new Set<string>();
  const deleting = new Set<string>();
  let rr = 0;
  let ipSeq = 0;
  const ips = new Map<string, string>(); // pod uid → IP
  const log = newLogger("fakenodes");
  const inScope = (p: Readonly<Pod>): boolean => !opts.namespaces || opts.namespaces.includes(p.metadata.namespace ?? "");

  // Per-pod serialisation: one in-flight handler per pod key; a re-trigger while busy runs once more after.
  const busy = new Map<string, boolean>(); // key → dirty
  const inflight = new Set<Promise<void>>();
  const informer: ListWatchInformer<Pod> = newInformer<Pod>(client, "", "pods");

  const trigger = (pod: Readonly<Pod>): void => {
    if (stopper.signal.aborted || !inScope(pod)) return;
    const key = objectKey(pod);
    if (busy.has(key)) {
      busy.set(key, true);
      return;
    }
    busy.set(key, false);
    const p = (async () => {
      try {
        for (;;) {
          const cur = informer.lister.get(key);
          if (cur) await handle(cur).catch((e: unknown) => {
            if (!isConflict(e) && !isNotFound(e) && !stopper.signal.aborted) {
              errors.push(errorOf(e));
              log.warn({ err: e, pod: key }, "fake kubelet failed");
            }
          });
          if (!busy.get(key) || stopper.signal.aborted) break;
          busy.set(key, false);
        }
      } finally {
        busy.delete(key);
      }
    })();
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };

  const ipFor = (pod: Readonly<Pod>): string => {
    const uid = pod.metadata.uid ?? objectKey(pod);
    let ip = ips.get(uid);
    if (!ip) {
      ipSeq++;
      ip = `127.0.${Math.floor(ipSeq / 250) % 250}.${(ipSeq % 250) + 2}`;
      ips.set(uid, ip);
    }
    return ip;
  };

  async function handle(pod: Readonly<Pod>): Promise<void> {
    const ns = pod.metadata.namespace ?? "";
    const name = pod.metadata.name ?? "";
    const uid = pod.metadata.uid ?? "";
    // A kubelet finishes a graceful deletion once the containers have stopped: at once here.
    if (pod.metadata.deletionTimestamp) {
      if (deleting.has(uid)) return;
      deleting.add(uid);
      try {
        await podClient.delete(ns, name, { gracePeriodSeconds: 0, preconditions: { uid } });
      } catch (e) {
        deleting.delete(uid);
        if (!isNotFound(e) && !isConflict(e)) throw e;
      }
      return;
    }
    if (opts.skip?.(pod)) return;
    const phase = pod.status?.phase;
    if (phase === "Succeeded" || phase === "Failed") return;
    // Scheduler: bind round-robin.
    if (!pod.spec?.nodeName) {
      if (opts.bind === false) return; // the real scheduler binds
      if (bound.has(uid)) return; // bound already; waiting for the informer to catch up
      const node = nodeNames[rr++ % nodeNames.length];
      try {
        await client.bind(ns, name, node, { uid });
      } catch (e) {
        // A real scheduler (kubelab up runs two) may have bound it first.
        if (!isConflict(e) && !isNotFound(e)) throw e;
      }
      bound.add(uid);
      return; // the MODIFIED event brings us back with spec.nodeName set
    }
    // Kubelet: run it.
    if (phase !== "Running" && !running.has(uid)) {
      running.add(uid);
      try {
        if (readyDelay > 0) await sleep(readyDelay);
        await markRunning(ns, name, uid, !(opts.unready?.(pod) ?? false));
      } catch (e) {
        running.delete(uid);
        throw e;
      }
      return;
    }
    // A Job's pod runs to completion.
    if (phase === "Running" && pod.metadata.labels?.[JOB_NAME_LABEL] !== undefined && !succeeded.has(uid)) {
      succeeded.add(uid);
      try {
        await sleep(jobDelay);
        await markSucceeded(ns, name, uid);
      } catch (e) {
        succeeded.delete(uid);
        throw e;
      }
    }
  }

  /** GET, mutate status, PUT status; retried on conflict. */
  async function updatePodStatus(ns: string, name: string, uid: string, mutate: (p: Pod) => boolean): Promise<void> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const fresh = await podClient.get(ns, name);
      if (fresh.metadata.uid !== uid || fresh.metadata.deletionTimestamp) return;
      if (!mutate(fresh)) return;
      try {
        await podClient.updateStatus(fresh);
        return;
      } catch (e) {
        if (!isConflict(e)) throw e;
      }
    }
    throw new Error(`pod ${ns}/${name}: status update kept conflicting`);
  }

  async function markRunning(ns: string, name: string, uid: string, ready: boolean): Promise<void> {
    await updatePodStatus(ns, name, uid, (p) => {
      if (p.status?.phase === "Running" || !p.spec?.nodeName) return false;
      const ts = now();
      const cond = (type: string): PodCondition => ({
        type,
        status: ready || (type !== "Ready" && type !== "ContainersReady") ? "True" : "False",
        lastProbeTime: null,
        lastTransitionTime: ts,
        ...(ready || (type !== "Ready" && type !== "ContainersReady") ? {} : { reason: "ContainersNotReady" }),
      });
      const ip = ipFor(p);
      const nodeIdx = Math.max(0, nodeNames.indexOf(p.spec.nodeName));
      p.status = {
        ...p.status,
        phase: "Running",
        hostIP: `127.0.${nodeIdx + 1}.1`,
        hostIPs: [{ ip: `127.0.${nodeIdx + 1}.1` }],
        podIP: ip,
        podIPs: [{ ip }],
        startTime: ts,
        qosClass: "BestEffort",
        conditions: [cond("PodReadyToStartContainers"), cond("Initialized"), cond("ContainersReady"), cond("Ready"), cond("PodScheduled")],
        containerStatuses: (p.spec.containers ?? []).map((c) => ({
          name: c.name,
          image: c.image ?? "",
          imageID: `fake://${c.image ?? ""}`,
          containerID: `fake://${uid}/${c.name}`,
          ready,
          started: true,
          restartCount: 0,
          state: { running: { startedAt: ts } },
        })),
      };
      return true;
    });
  }

  async function markSucceeded(ns: string, name: string, uid: string): Promise<void> {
    await updatePodStatus(ns, name, uid, (p) => {
      if (p.status?.phase !== "Running") return false;
      const ts = now();
      const started = p.status.startTime ?? ts;
      p.status = {
        ...p.status,
        phase: "Succeeded",
        conditions: (p.status.conditions ?? []).map((c) =>
          c.type === "Ready" || c.type === "ContainersReady" ? { ...c, status: "False", reason: "PodCompleted", lastTransitionTime: ts } : c,
        ),
        containerStatuses: (p.spec?.containers ?? []).map((c) => ({
          name: c.name,
          image: c.image ?? "",
          imageID: `fake://${c.image ?? ""}`,
          containerID: `fake://${uid}/${c.name}`,
          ready: false,
          started: false,
          restartCount: 0,
          state: { terminated: { exitCode: 0, reason: "Completed", startedAt: started, finishedAt: ts } },
        })),
      };
      return true;
    });
  }

  informer.addEventHandler({
    onAdd: (p) => trigger(p),
    onUpdate: (_o, p) => trigger(p),
  });
  // Heartbeat like a kubelet: a Lease per node in kube-node-lease, renewed every 10 s, so the node
  // lifecycle controller keeps the fake nodes Ready.
  const leaseClient = client.resource<Lease>("coordination.k8s.io", "leases");
  const renewLeases = async (): Promise<void> => {
    for (const name of nodeNames) {
      const renewTime = new Date().toISOString().replace("Z", "000Z");
      try {
        const cur = await leaseClient.get("kube-node-lease", name);
        cur.spec = { ...cur.spec, holderIdentity: name, leaseDurationSeconds: 40, renewTime };
        await leaseClient.update(cur);
      } catch (e) {
        if (!isNotFound(e)) {
          if (!isConflict(e) && !stopper.signal.aborted) log.warn({ err: e, node: name }, "fake lease renewal failed");
          continue;
        }
        await leaseClient
          .create("kube-node-lease", { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name, namespace: "kube-node-lease" }, spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime } })
          .catch((err: unknown) => { if (!isAlreadyExists(err)) log.warn({ err, node: name }, "fake lease create failed"); });
      }
    }
  };
  await renewLeases();
  const leaseTimer = setInterval(() => void renewLeases(), 10_000);
  stopper.signal.addEventListener("abort", () => clearInterval(leaseTimer));

  const ctx = { signal: stopper.signal, log };
  const done = informer.run(ctx);
  await informer.waitForSync(stopper.signal);

  return {
    nodeNames,
    zones,
    bound,
    errors,
    async stop() {
      stopper.abort();
      await done.catch(() => undefined);
      await Promise.allSettled([...inflight]);
    },
  };
}
