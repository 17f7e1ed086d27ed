// A zone's simulated instances (the "EC2 side" of the simulated cloud): one process per zone runs a
// simulated kubelet for every instance the cloud controller lists in the zone's cloud ConfigMaps
// (node groups and serverless profiles; controllers/cloud/types.ts). An instance appearing starts a
// kubelet that registers its Node with the group's template (capacity with the ENI-limited max
// pods, labels, taints) and spec.providerID; an instance removed stops it — the Node object is the
// cloud controller's to delete, as upstream's cloud node-lifecycle controller does. Nodes and pods
// take their addresses from the zone's VPC subnet (runtime/sim/vpc.ts), so a small subnet runs out.
// The shared informers use the pool's own identity; with `nodeClients` each node writes as itself
// (system:node:<name>, a certificate bootstrapped by CSR: kubelet/certificate.ts), as in pool.ts.

import { setMaxListeners } from "node:events";
import type { ConfigMap, Node, Pod } from "../api/index.ts";
import { newEventRecorder, newInformer, realClock, type Client, type Clock, type Context, type Logger } from "../client/index.ts";
import { parseCloudConfigMap } from "../controllers/cloud/cloudapi.ts";
import { CLOUD_LABEL, CLOUD_NAMESPACE, NODEGROUP_LABEL, ZONE_LABEL, providerID, type CloudInstance, type NodeTemplate } from "../controllers/cloud/types.ts";
import { Kubelet } from "./kubelet.ts";
import { SimRuntime } from "./runtime/sim.ts";
import { SubnetIPAM } from "./runtime/sim/vpc.ts";
import type { NodeClientSource } from "./certificate.ts";
import { NodeControlError, NodeSwitches, runNodeAgentWhenReady, type NodeControl } from "./nodecontrol.ts";
import type { KubeletOptions, NodeAgent } from "./types.ts";

export interface CloudPoolOptions {
  /** The pool's own client: its shared informers, and every node's writes unless `nodeClients` is given. */
  client: Client;
  /** Each node's own client (certificate bootstrapped by CSR); the pool runs its CSR watch. */
  nodeClients?: NodeClientSource;
  zone: string;
  region: string;
  /** The zone's VPC subnet (inside 127.0.0.0/8): every node's InternalIP and every pod IP come from it. */
  subnet: string;
  /** Each node's kubelet root is `<rootDir>/<nodeName>`. */
  rootDir: string;
  /** Every node's kubelet server port (on its own node IP). */
  port: number;
  log: Logger;
  clock?: Clock;
  /** Options for every kubelet (intervals, DNS, volume dir...); the template's capacity, labels and taints go over them. */
  kubelet?: Partial<KubeletOptions>;
  /** How often the instance list is re-read even without a change (a node that found no free address retries). Default 10 s. */
  resyncMs?: number;
  /** Called with the running agents whenever they change (for metrics). */
  onAgents?(agents: readonly NodeAgent[]): void;
  /** Called once with the pool's per-node chaos control (stop/start an instance's node, skew its clock). */
  onControl?(control: NodeControl): void;
}

interface Wanted {
  instance: CloudInstance;
  template: NodeTemplate;
}

interface Running {
  id: string;
  nodeIP: string;
  /** Once its client is ready. */
  agent?: Kubelet;
  runtime: SimRuntime;
  stop: AbortController;
  done: Promise<void>;
}

/** The instances of the zone's cloud ConfigMaps, by node name (a ConfigMap a user broke is logged and skipped). */
export function wantedInstances(cms: readonly Readonly<ConfigMap>[], log: Logger): Map<string, Wanted> {
  const out = new Map<string, Wanted>();
  for (const cm of cms) {
    const s = parseCloudConfigMap(cm);
    if (s instanceof Error) {
      log.warn({ err: s.message }, "ignoring an unreadable cloud ConfigMap");
      continue;
    }
    for (const instance of s.instances) {
      const template = instance.template ?? s.template;
      if (!template || typeof instance.name !== "string" || typeof instance.id !== "string") {
        log.warn({ configMap: cm.metadata.name, instance: instance.name }, "ignoring an instance without a name, id or template");
        continue;
      }
      out.set(instance.name, { instance, template });
    }
  }
  return out;
}

/**
 * Runs the zone's instances until ctx aborts. Throws at once when the subnet is unusable. On abort
 * stops every kubelet and closes the runtimes (Nodes stay, as they do when a real pool's process dies).
 */
export async function runCloudPool(parent: Context, opts: CloudPoolOptions): Promise<void> {
  const clock = opts.clock ?? realClock;
  const ipam = new SubnetIPAM(opts.zone, opts.subnet);
  const stop = new AbortController();
  setMaxListeners(0, stop.signal);
  const onAbort = (): void => stop.abort();
  if (parent.signal.aborted) stop.abort();
  else parent.signal.addEventListener("abort", onAbort, { once: true });
  const ctx: Context = { signal: stop.signal, log: parent.log };
  const log = opts.log;

  const pods = newInformer<Pod>(opts.client, "", "pods", { fieldSelector: "spec.nodeName!=", clock, log });
  const nodes = newInformer<Node>(opts.client, "", "nodes", { labelSelector: `${NODEGROUP_LABEL},${ZONE_LABEL}=${opts.zone}`, clock, log });
  const cms = newInformer<ConfigMap>(opts.client, "", "configmaps", { namespace: CLOUD_NAMESPACE, labelSelector: `${CLOUD_LABEL},${ZONE_LABEL}=${opts.zone}`, clock, log });
  const running = new Map<string, Running>();
  const switches = new NodeSwitches(clock);
  /** The addresses of nodes stopped by NodeControl: an instance that is stopped, not terminated, keeps its interface. */
  const stoppedIPs = new Map<string, string>();

  // One reconcile at a time; a change during one runs another right after.
  let dirty = true;
  let wake: (() => void) | undefined;
  const poke = (): void => {
    dirty = true;
    wake?.();
  };
  cms.addEventHandler({ onAdd: poke, onUpdate: poke, onDelete: poke });

  const publish = (): void => opts.onAgents?.([...running.values()].flatMap((r) => (r.agent ? [r.agent] : [])));

  const stopNode = async (name: string, r: Running, keepAddress = false): Promise<void> => {
    running.delete(name);
    r.stop.abort();
    await r.done;
    await r.runtime.destroy().catch((e: unknown) => log.warn({ err: e, node: name }, "failed to close the runtime"));
    if (keepAddress) return;
    ipam.release(r.nodeIP);
    log.info({ node: name, instance: r.id }, "instance terminated: kubelet stopped");
  };

  const startNode = async (name: string, w: Wanted, nodeIP: string): Promise<void> => {
    const nlog = log.child({ node: name });
    const nodeClock = switches.clockOf(name);
    const runtime = new SimRuntime({ nodeName: name, zone: opts.zone, ipam, nodeIP, clock: nodeClock, log });
    const v = await runtime.version();
    const build = async (signal: AbortSignal): Promise<{ agent: Kubelet; close?(): void }> => {
      const own = opts.nodeClients ? await opts.nodeClients.clientForRetrying(name, signal) : undefined;
      const client = own?.client ?? opts.client;
      const kopts: KubeletOptions = {
        ...opts.kubelet,
        nodeName: name,
        zone: opts.zone,
        region: opts.region,
        client,
        pods,
        nodes,
        labels: { ...(opts.kubelet?.labels ?? {}), ...w.template.labels },
        capacity: { ...w.template.capacity },
        registerWithTaints: w.template.taints.map((t) => ({ ...t })),
        providerID: providerID(opts.zone, w.instance.id),
        runtime,
        rootDir: `${opts.rootDir}/${name}`,
        nodeIP,
        port: opts.port,
        runtimeVersion: `${v.runtimeName}://${v.runtimeVersion}`,
        recorder: newEventRecorder(client, { component: "kubelet", host: name, clock: nodeClock, log: nlog }),
        clock: nodeClock,
        log: nlog,
      };
      return { agent: new Kubelet(kopts), close: own?.close };
    };
    const r: Running = {
      id: w.instance.id,
      nodeIP,
      runtime,
      ...runNodeAgentWhenReady(ctx, build, log, nlog, (agent) => {
        r.agent = agent;
        publish();
      }),
    };
    running.set(name, r);
    log.info({ node: name, instance: w.instance.id, nodeIP }, "instance running: kubelet started");
  };

  const reconcile = async (): Promise<void> => {
    const wanted = wantedInstances(cms.lister.list(), log);
    // Gone, or the same name relaunched as another instance: stop first, so addresses come back.
    await Promise.all(
      [...running].filter(([name, r]) => wanted.get(name)?.instance.id !== r.id).map(([name, r]) => stopNode(name, r)),
    );
    // A stopped node whose instance was terminated meanwhile is gone: its address goes back, and a
    // new instance of the same name starts as any new one does.
    for (const [name, ip] of stoppedIPs) {
      if (wanted.has(name)) continue;
      stoppedIPs.delete(name);
      switches.stopped.delete(name);
      ipam.release(ip);
    }
    const toStart = [...wanted].filter(([name]) => !running.has(name) && !switches.stopped.has(name));
    // A Node that already exists (this process restarted) keeps its InternalIP: reserve those first.
    const ips = new Map<string, string>();
    for (const [name] of toStart) {
      const held = stoppedIPs.get(name);
      if (held) {
        stoppedIPs.delete(name);
        ips.set(name, held);
        continue;
      }
      const old = nodes.lister.get(name)?.status?.addresses?.find((a) => a.type === "InternalIP")?.address;
      if (old && ipam.reserve(old)) ips.set(name, old);
    }
    for (const [name, w] of toStart) {
      let ip = ips.get(name);
      if (!ip) {
        try {
          ip = ipam.allocate();
        } catch (e) {
          log.warn({ node: name, err: (e as Error).message }, "instance cannot start: no address for its network interface");
          continue;
        }
      }
      try {
        await startNode(name, w, ip);
      } catch (e) {
        ipam.release(ip);
        log.error({ node: name, err: e }, "instance failed to start");
      }
    }
    publish();
  };

  opts.onControl?.({
    list: () => {
      const names = new Set([...wantedInstances(cms.lister.list(), log).keys(), ...running.keys(), ...switches.stopped]);
      return [...names].sort().map((n) => switches.state(n, running.has(n)));
    },
    stop: async (name) => {
      const r = running.get(name);
      if (!r) {
        if (switches.stopped.has(name)) return switches.state(name, false);
        const known = wantedInstances(cms.lister.list(), log).has(name);
        throw new NodeControlError(known ? 409 : 404, known ? `node ${name} is not running (no address yet, or failed to start)` : `no node ${name} in this pool`);
      }
      switches.stopped.add(name);
      stoppedIPs.set(name, r.nodeIP);
      await stopNode(name, r, true);
      log.info({ node: name, instance: r.id }, "instance stopped (chaos): kubelet and containers down, address kept");
      publish();
      return switches.state(name, false);
    },
    start: async (name) => {
      if (!switches.stopped.has(name)) throw new NodeControlError(running.has(name) ? 409 : 404, running.has(name) ? `node ${name} is not stopped` : `no stopped node ${name} in this pool`);
      switches.stopped.delete(name);
      log.info({ node: name }, "instance started again");
      poke();
      return switches.state(name, running.has(name));
    },
    skew: (name, offsetMs) => {
      const s = switches.skew(name, offsetMs, running.has(name) || switches.stopped.has(name), running.has(name));
      log.info({ node: name, clockOffsetMs: s.clockOffsetMs }, "node clock skewed");
      return s;
    },
  });

  const informersDone = Promise.all([
    pods.run({ ...ctx, log: log.child({ informer: "pods" }) }),
    nodes.run({ ...ctx, log: log.child({ informer: "nodes" }) }),
    cms.run({ ...ctx, log: log.child({ informer: "configmaps" }) }),
    opts.nodeClients?.run({ ...ctx, log: log.child({ informer: "certificatesigningrequests" }) }),
  ]);
  try {
    await Promise.all([pods.waitForSync(ctx.signal), nodes.waitForSync(ctx.signal), cms.waitForSync(ctx.signal)]);
    log.info({ zone: opts.zone, subnet: ipam.cidr, addresses: ipam.capacity }, "cloud pool watching its zone's instances");
    const resyncMs = opts.resyncMs ?? 10_000;
    ctx.signal.addEventListener("abort", () => wake?.(), { once: true });
    while (!ctx.signal.aborted) {
      if (dirty) {
        dirty = false;
        await reconcile().catch((e: unknown) => log.error({ err: e }, "reconciling the zone's instances failed"));
        continue;
      }
      await new Promise<void>((resolve) => {
        const t = clock.setTimeout(() => {
          dirty = true;
          resolve();
        }, resyncMs);
        wake = () => {
          t.cancel();
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    stop.abort();
    await Promise.all([...running.values()].map((r) => r.done));
    await Promise.all([...running.values()].map((r) => r.runtime.close().catch((e: unknown) => log.warn({ err: e }, "failed to close the runtime"))));
    running.clear();
    await informersDone;
    parent.signal.removeEventListener("abort", onAbort);
  }
}
