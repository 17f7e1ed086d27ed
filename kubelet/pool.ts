// A pool of simulated nodes in one process (kubemark's hollow nodes, kwok): one pod informer shared
// by every kubelet, one simulated runtime and event recorder per node, each node on its own /24 of
// the pool's loopback range (node IP = .1, its kubelet server on that IP, pods from .2). One node
// informer too, over the pool's label, from which every node's status loop reads its Node. Those
// shared informers use the pool's own identity; with `nodeClients` each node then writes (and reads
// its pods' secrets, configmaps, claims and tokens) as itself, system:node:<name>, through a client
// of its own whose certificate it bootstrapped with a CSR (kubelet/certificate.ts), so the Node
// authorizer and NodeRestriction see every node as upstream's do.

import { setMaxListeners } from "node:events";
import { formatIPv4, isValidLabelValue, parseCIDR, subnets, type Node, type Pod } from "../api/index.ts";
import { newEventRecorder, newInformer, realClock, type Client, type Clock, type Context, type Logger } from "../client/index.ts";
import { Kubelet } from "./kubelet.ts";
import { SimRuntime } from "./runtime/sim.ts";
import type { NodeClientSource } from "./certificate.ts";
import { NodeControlError, NodeSwitches, runNodeAgentWhenReady, type NodeControl } from "./nodecontrol.ts";
import type { KubeletOptions, NodeAgent } from "./types.ts";

export interface PoolOptions {
  /** The pool's own client: its shared informers, and every node's writes unless `nodeClients` is given. */
  client: Client;
  /** Each node's own client (certificate bootstrapped by CSR); the pool runs its CSR watch. */
  nodeClients?: NodeClientSource;
  nodes: number;
  zone: string;
  region: string;
  /** Node i (from 0) is `${namePrefix}-${i}`. */
  namePrefix: string;
  /** Each node's kubelet root is `<rootDir>/<nodeName>`. */
  rootDir: string;
  /** An IPv4 range split into consecutive /24s, one per node (e.g. 127.64.0.0/14 holds 1,024 nodes). */
  podCIDR: string;
  /** Every node's kubelet server port (on its own node IP). */
  port: number;
  log: Logger;
  clock?: Clock;
  /** Options for every kubelet (capacity, labels, intervals...). */
  kubelet?: Partial<KubeletOptions>;
  /** Nodes started together before the pool pauses `staggerMs` (default 50, 200 ms), so registrations do not all land at once. */
  staggerBatch?: number;
  staggerMs?: number;
  /** Called with the running agents whenever they change (for metrics). */
  onAgents?(agents: readonly NodeAgent[]): void;
  /** Called once with the pool's per-node chaos control (stop/start a node, skew its clock). */
  onControl?(control: NodeControl): void;
}

interface PoolNode {
  nodeName: string;
  podCIDR: string;
  log: Logger;
  /** Its kubelet (once its client is ready) and runtime while it runs. */
  run?: { agent?: Kubelet; runtime: SimRuntime; stop: AbortController; done: Promise<void> };
}

/** The label every node of a pool carries (value: the pool's name prefix); the pool's node informer selects on it. */
export const POOL_LABEL = "kubelab.io/pool";

/**
 * The first `count` consecutive /24s of an IPv4 CIDR. Throws when the CIDR is malformed, narrower
 * than a /24, or holds fewer than `count` of them.
 */
export function splitNodeCIDRs(cidr: string, count: number): string[] {
  const c = parseCIDR(cidr);
  if (!c) throw new Error(`invalid pod CIDR ${JSON.stringify(cidr)}: want an IPv4 CIDR like 127.64.0.0/14`);
  if (c.prefix > 24) throw new Error(`pod CIDR ${cidr} is smaller than one /24 per node`);
  const size = 2 ** (24 - c.prefix);
  if (count > size) throw new Error(`pod CIDR ${cidr} holds ${size} node /24s, too few for ${count} nodes`);
  return subnets(c, 24, count);
}

/** The `.1` of a /24: the node's own address. */
export function nodeIPOf(cidr24: string): string {
  return formatIPv4(parseCIDR(cidr24)!.network + 1);
}

/**
 * Runs the pool until ctx aborts: starts the shared pod and node informers and waits for their first lists, then
 * starts the nodes in staggered batches; on abort waits for every kubelet to stop and closes the
 * runtimes. A kubelet that fails is logged; the others keep running.
 */
export async function runPool(parent: Context, opts: PoolOptions): Promise<void> {
  const clock = opts.clock ?? realClock;
  const cidrs = splitNodeCIDRs(opts.podCIDR, opts.nodes);
  const labelErrors = isValidLabelValue(opts.namePrefix);
  if (labelErrors.length) throw new Error(`name prefix ${JSON.stringify(opts.namePrefix)} cannot be the ${POOL_LABEL} label of the pool's nodes: ${labelErrors.join("; ")}`);
  const poolLabels = { ...(opts.kubelet?.labels ?? {}), [POOL_LABEL]: opts.namePrefix };
  // Every node's loops listen on one signal: a thousand listeners are expected, not a leak.
  const stop = new AbortController();
  setMaxListeners(0, stop.signal);
  const onAbort = (): void => stop.abort();
  if (parent.signal.aborted) stop.abort();
  else parent.signal.addEventListener("abort", onAbort, { once: true });
  const ctx: Context = { signal: stop.signal, log: parent.log };
  const switches = new NodeSwitches(clock);
  const nodes: PoolNode[] = cidrs.map((podCIDR, i) => {
    const nodeName = `${opts.namePrefix}-${i}`;
    return { nodeName, podCIDR, log: opts.log.child({ node: nodeName }) };
  });
  const byName = new Map(nodes.map((n) => [n.nodeName, n]));
  const pods = newInformer<Pod>(opts.client, "", "pods", { fieldSelector: "spec.nodeName!=", clock, log: opts.log });
  // One watch on the pool's Nodes, shared: each node's status loop reads its Node from it.
  const nodeInformer = newInformer<Node>(opts.client, "", "nodes", { labelSelector: `${POOL_LABEL}=${opts.namePrefix}`, clock, log: opts.log });
  const informersDone = Promise.all([
    pods.run({ ...ctx, log: opts.log.child({ informer: "pods" }) }),
    nodeInformer.run({ ...ctx, log: opts.log.child({ informer: "nodes" }) }),
    opts.nodeClients?.run({ ...ctx, log: opts.log.child({ informer: "certificatesigningrequests" }) }),
  ]);
  const publish = (): void => opts.onAgents?.(nodes.flatMap((n) => (n.run?.agent ? [n.run.agent] : [])));

  /** A fresh runtime and kubelet for the node (at start, and when a stopped node starts again). */
  const startNode = async (n: PoolNode): Promise<void> => {
    const nodeClock = switches.clockOf(n.nodeName);
    const runtime = new SimRuntime({ nodeName: n.nodeName, zone: opts.zone, podCIDR: n.podCIDR, clock: nodeClock, log: opts.log });
    const v = await runtime.version();
    const build = async (signal: AbortSignal): Promise<{ agent: Kubelet; close?(): void }> => {
      const own = opts.nodeClients ? await opts.nodeClients.clientForRetrying(n.nodeName, signal) : undefined;
      const client = own?.client ?? opts.client;
      const kopts: KubeletOptions = {
        ...opts.kubelet,
        nodeName: n.nodeName,
        zone: opts.zone,
        region: opts.region,
        client,
        pods,
        nodes: nodeInformer,
        labels: poolLabels,
        runtime,
        rootDir: `${opts.rootDir}/${n.nodeName}`,
        nodeIP: nodeIPOf(n.podCIDR),
        port: opts.port,
        podCIDR: n.podCIDR,
        runtimeVersion: `${v.runtimeName}://${v.runtimeVersion}`,
        recorder: newEventRecorder(client, { component: "kubelet", host: n.nodeName, clock: nodeClock, log: n.log }),
        clock: nodeClock,
        log: n.log,
      };
      return { agent: new Kubelet(kopts), close: own?.close };
    };
    const run: NonNullable<PoolNode["run"]> = {
      runtime,
      ...runNodeAgentWhenReady(ctx, build, opts.log, n.log, (agent) => {
        run.agent = agent;
        publish();
      }),
    };
    n.run = run;
  };

  /** Stops the node's kubelet, then its runtime (its containers die with it). */
  const stopNode = async (n: PoolNode): Promise<void> => {
    const r = n.run;
    if (!r) return;
    n.run = undefined;
    r.stop.abort();
    await r.done;
    await r.runtime.destroy().catch((e: unknown) => n.log.warn({ err: e }, "failed to close the runtime"));
  };

  opts.onControl?.({
    list: () => nodes.map((n) => switches.state(n.nodeName, !!n.run)),
    stop: async (name) => {
      const n = byName.get(name);
      if (!n) throw new NodeControlError(404, `no node ${name} in this pool`);
      switches.stopped.add(name);
      await stopNode(n);
      n.log.info({ node: name }, "node stopped (chaos): kubelet and containers down");
      publish();
      return switches.state(name, false);
    },
    start: async (name) => {
      const n = byName.get(name);
      if (!n) throw new NodeControlError(404, `no node ${name} in this pool`);
      if (!switches.stopped.has(name)) throw new NodeControlError(409, `node ${name} is not stopped`);
      switches.stopped.delete(name);
      if (!ctx.signal.aborted && !n.run) await startNode(n);
      n.log.info({ node: name }, "node started again");
      publish();
      return switches.state(name, !!n.run);
    },
    skew: (name, offsetMs) => {
      const s = switches.skew(name, offsetMs, byName.has(name), !!byName.get(name)?.run);
      opts.log.info({ node: name, clockOffsetMs: s.clockOffsetMs }, "node clock skewed");
      return s;
    },
  });

  try {
    await Promise.all([pods.waitForSync(ctx.signal), nodeInformer.waitForSync(ctx.signal)]);
    if (ctx.signal.aborted) return;
    const batch = Math.max(1, opts.staggerBatch ?? 50);
    for (let i = 0; i < nodes.length && !ctx.signal.aborted; i += batch) {
      if (i > 0) await clock.sleep(opts.staggerMs ?? 200, ctx.signal);
      for (const n of nodes.slice(i, i + batch)) if (!switches.stopped.has(n.nodeName) && !ctx.signal.aborted) await startNode(n);
      publish();
    }
    opts.log.info({ nodes: nodes.length, zone: opts.zone, podCIDR: opts.podCIDR }, "simulated nodes started");
    await new Promise<void>((resolve) => {
      if (ctx.signal.aborted) resolve();
      else ctx.signal.addEventListener("abort", () => resolve(), { once: true });
    });
  } finally {
    stop.abort();
    const runs = nodes.flatMap((n) => (n.run ? [n.run] : []));
    await Promise.all(runs.map((r) => r.done));
    await Promise.all(runs.map((r) => r.runtime.close().catch((e: unknown) => opts.log.warn({ err: e }, "failed to close the runtime"))));
    await informersDone;
    parent.signal.removeEventListener("abort", onAbort);
  }
}
