// The node groups' Auto Scaling Groups: one per group and zone, each a ConfigMap (types.ts). This
// controller plays the cloud's side of an ASG — it keeps the group's instance list at its
// desiredCapacity (clamped to [minSize, maxSize], as the EC2 API refuses anything else), launching
// instances under the lowest free `<group>-<zone>-<n>` name and terminating the newest first when
// the group shrinks — and upstream's cloud node-lifecycle controller's: a Node of the group whose
// instance no longer exists is deleted ("DeletingNode"). At start it writes each group's
// configuration from the topology (instance type, sizes, template); desiredCapacity and the
// instances are state it keeps, so a user's `kubectl edit` of desiredCapacity scales the group.

import type { ConfigMap, Node } from "../../api/index.ts";
import {
  isNotFound,
  newEventRecorder,
  newInformer,
  newRateLimitingQueue,
  realClock,
  runController,
  type Client,
  type Clock,
  type Context,
  type EventRecorder,
  type Logger,
  type ObjectKey,
  type ReconcileContext,
  type Reconciler,
  type Result,
} from "../../client/index.ts";
import { groupTemplate, launchTime, newInstanceId, parseCloudConfigMap, updateCloudGroup, type CloudGroupState } from "./cloudapi.ts";
import { CLOUD_LABEL, CLOUD_NAMESPACE, NODEGROUP_LABEL, ZONE_LABEL, nodeGroupConfigMapName, type CloudInstance, type Topology } from "./types.ts";

export interface NodeGroupsOptions {
  client: Client;
  topology: Topology;
  log: Logger;
  clock?: Clock;
  /** Every group is reconciled at least this often (default 30 s). */
  resyncMs?: number;
}

/** The configuration part of a group's state, from the topology (desiredCapacity only for a new group). */
export function configuredGroups(topology: Topology): { name: string; state: CloudGroupState }[] {
  const out: { name: string; state: CloudGroupState }[] = [];
  for (const g of topology.nodeGroups) {
    const type = topology.instanceTypes[g.instanceType];
    if (!type) throw new Error(`node group ${g.name}: unknown instance type ${g.instanceType}`);
    for (const zone of g.zones) {
      out.push({
        name: nodeGroupConfigMapName(g.name, zone),
        state: {
          kind: "nodegroup",
          group: g.name,
          zone,
          instanceType: type.name,
          minSize: g.minSize,
          maxSize: g.maxSize,
          desiredCapacity: g.desiredSize,
          template: groupTemplate(g, type, zone, topology.region),
          instances: [],
        },
      });
    }
  }
  return out;
}

/** The configuration a state should have; undefined when it already has it (desired and instances are kept). */
export function withConfiguration(cur: CloudGroupState | undefined, want: CloudGroupState): CloudGroupState | undefined {
  if (!cur) return want;
  const same =
    cur.kind === want.kind &&
    cur.instanceType === want.instanceType &&
    cur.minSize === want.minSize &&
    cur.maxSize === want.maxSize &&
    JSON.stringify(cur.template) === JSON.stringify(want.template);
  if (same) return undefined;
  return { ...cur, kind: want.kind, instanceType: want.instanceType, minSize: want.minSize, maxSize: want.maxSize, template: want.template };
}

/** `<group>-<zone>-<n>` with the lowest n used by no instance and no Node. */
export function nextInstanceName(group: string, zone: string, taken: ReadonlySet<string>): string {
  for (let n = 0; ; n++) {
    const name = `${group}-${zone}-${n}`;
    if (!taken.has(name)) return name;
  }
}

/**
 * The instance list at desiredCapacity (clamped to the sizes): new instances named from `taken`
 * (instances and Nodes that exist), the newest terminated first. Undefined when nothing changes.
 */
export function scaleToDesired(s: CloudGroupState, takenNames: ReadonlySet<string>, nowMs: number): CloudGroupState | undefined {
  const desired = Math.min(Math.max(s.desiredCapacity, s.minSize), s.maxSize);
  if (desired === s.desiredCapacity && s.instances.length === desired) return undefined;
  const next: CloudGroupState = { ...s, desiredCapacity: desired, instances: [...s.instances] };
  if (next.instances.length > desired) {
    // Newest first (launch time, then name), as an ASG's NewestInstance termination policy.
    const order = [...next.instances].sort((a, b) => (a.launchTime === b.launchTime ? b.name.localeCompare(a.name, undefined, { numeric: true }) : b.launchTime.localeCompare(a.launchTime)));
    const gone = new Set(order.slice(0, next.instances.length - desired).map((i) => i.name));
    next.instances = next.instances.filter((i) => !gone.has(i.name));
  }
  const taken = new Set([...takenNames, ...next.instances.map((i) => i.name)]);
  while (next.instances.length < desired) {
    const name = nextInstanceName(s.group, s.zone, taken);
    taken.add(name);
    const inst: CloudInstance = { name, id: newInstanceId(), launchTime: launchTime(nowMs) };
    next.instances.push(inst);
  }
  return next;
}

export interface NodeGroupDeps {
  client: Client;
  configMaps: { get(key: ObjectKey): Readonly<ConfigMap> | undefined };
  nodes: { list(): readonly Readonly<Node>[] };
  recorder: EventRecorder;
  clock?: Clock;
}

/** Reconciles one group's ConfigMap ("kube-system/<name>"): instances to desired, then Nodes without an instance deleted. */
export class NodeGroupController implements Reconciler {
  constructor(private readonly deps: NodeGroupDeps) {}

  async reconcile(ctx: ReconcileContext, key: ObjectKey): Promise<Result | void> {
    const cached = this.deps.configMaps.get(key);
    if (!cached) return;
    const cachedState = parseCloudConfigMap(cached);
    if (cachedState instanceof Error) {
      ctx.log.warn({ err: cachedState.message }, "leaving a node group alone until its ConfigMap is readable again");
      return;
    }
    if (cachedState.kind !== "nodegroup") return;
    const name = cached.metadata.name!;
    const groupNodes = () => this.deps.nodes.list().filter((n) => n.metadata.labels?.[NODEGROUP_LABEL] === cachedState.group && n.metadata.labels?.[ZONE_LABEL] === cachedState.zone);
    const now = (this.deps.clock ?? realClock).now();
    let before: CloudGroupState | undefined;
    // The write reads the ConfigMap afresh: `state` is what the group really holds (a stale cache
    // must not make a just-launched instance's Node look orphaned).
    const state = await updateCloudGroup(this.deps.client, name, (cur) => {
      before = cur;
      if (!cur || cur.kind !== "nodegroup") return undefined;
      return scaleToDesired(cur, new Set(groupNodes().map((n) => n.metadata.name!)), now);
    });
    if (!state) return;
    if (before) {
      const had = new Set(before.instances.map((i) => i.name));
      const has = new Set(state.instances.map((i) => i.name));
      const launched = state.instances.filter((i) => !had.has(i.name)).map((i) => `${i.name} (${i.id})`);
      const terminated = before.instances.filter((i) => !has.has(i.name)).map((i) => `${i.name} (${i.id})`);
      if (launched.length) ctx.log.info({ group: name, desired: state.desiredCapacity, launched }, "launched instances");
      if (terminated.length) ctx.log.info({ group: name, desired: state.desiredCapacity, terminated }, "terminated instances");
    }
    const live = new Set(state.instances.map((i) => i.name));
    for (const n of groupNodes()) {
      const nodeName = n.metadata.name!;
      if (live.has(nodeName)) continue;
      this.deps.recorder.event({ apiVersion: "v1", kind: "Node", metadata: { name: nodeName, uid: nodeName } }, "Normal", "DeletingNode", `Deleting node ${nodeName} because it does not exist in the cloud provider`);
      try {
        await this.deps.client.resource<Node>("", "nodes").delete("", nodeName);
        ctx.log.info({ node: nodeName, group: name }, "deleted the Node of a terminated instance");
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
  }
}

/** Writes every group's configuration, then keeps the groups at their desired counts until ctx aborts. */
export async function runNodeGroups(ctx: Context, opts: NodeGroupsOptions): Promise<void> {
  const clock = opts.clock ?? realClock;
  const log = opts.log.child({ controller: "nodegroups" });
  for (const { name, state } of configuredGroups(opts.topology)) {
    await updateCloudGroup(opts.client, name, (cur) => withConfiguration(cur, state));
  }
  const configMaps = newInformer<ConfigMap>(opts.client, "", "configmaps", { namespace: CLOUD_NAMESPACE, labelSelector: `${CLOUD_LABEL}=nodegroup`, resyncMs: opts.resyncMs ?? 30_000, clock, log });
  const nodes = newInformer<Node>(opts.client, "", "nodes", { labelSelector: NODEGROUP_LABEL, clock, log });
  const queue = newRateLimitingQueue<ObjectKey>({ name: "nodegroups" });
  const enqueue = (cm: Readonly<ConfigMap>): void => queue.add(`${cm.metadata.namespace}/${cm.metadata.name}`);
  configMaps.addEventHandler({ onAdd: enqueue, onUpdate: (_o, n) => enqueue(n) });
  // A Node appearing or going may be one to clean up, or free a name.
  const enqueueNode = (n: Readonly<Node>): void => {
    const group = n.metadata.labels?.[NODEGROUP_LABEL];
    const zone = n.metadata.labels?.[ZONE_LABEL];
    if (group && zone) queue.add(`${CLOUD_NAMESPACE}/${nodeGroupConfigMapName(group, zone)}`);
  };
  nodes.addEventHandler({ onAdd: enqueueNode, onDelete: enqueueNode });
  const recorder = newEventRecorder(opts.client, { component: "cloud-node-lifecycle-controller", clock, log });
  const reconciler = new NodeGroupController({ client: opts.client, configMaps: configMaps.lister, nodes: nodes.lister, recorder, clock });
  await Promise.all([
    configMaps.run({ ...ctx, log: log.child({ informer: "configmaps" }) }),
    nodes.run({ ...ctx, log: log.child({ informer: "nodes" }) }),
    runController(ctx, { name: "nodegroups", reconciler, queue, informers: [configMaps, nodes], log }),
  ]);
}
