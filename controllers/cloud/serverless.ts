// The serverless scheduler of the simulated cloud, kubelab's EKS Fargate: a pod the
// ServerlessProfile admission gave spec.schedulerName kubelab-serverless-scheduler gets a node of
// its own — an instance in kube-system/kubelab-serverless-<profile>-<zone> sized to its requests
// rounded up to a Fargate vCPU/memory combination (+256Mi, as Fargate reserves for its kubelet and
// agents), tainted kubelab.io/compute-type=serverless:NoSchedule so nothing else lands there — and is
// bound to it once the zone's pool has that Node Ready (fargate-scheduler binds directly, no filter
// or score). When the pod is deleted or finishes, its instance is terminated and its Node deleted.
// The ConfigMaps are the truth: one instance per pod (CAS), instances whose pod is gone (or was
// replaced: the name carries the pod's uid) and serverless Nodes without an instance are collected
// on every resync. At start it publishes the topology's profiles for the admission plugin.

import { podMatchesNodeAffinity, type ConfigMap, type Node, type Pod } from "../../api/index.ts";
import {
  isAlreadyExists,
  isConflict,
  isNotFound,
  newEventRecorder,
  newInformer,
  newRateLimitingQueue,
  objectKey,
  realClock,
  runController,
  type Client,
  type Clock,
  type Context,
  type EventRecorder,
  type Lister,
  type Logger,
  type ObjectKey,
  type ReconcileContext,
  type Reconciler,
  type Result,
  type WorkQueue,
} from "../../client/index.ts";
import { podRequests } from "../../scheduler/index.ts";
import { matchingProfile } from "../../apiserver/admission/serverlessprofile.ts";
import { launchTime, newInstanceId, parseCloudConfigMap, updateCloudGroup, type CloudGroupState } from "./cloudapi.ts";
import {
  CLOUD_LABEL,
  CLOUD_NAMESPACE,
  COMPUTE_TYPE_LABEL,
  INSTANCE_TYPE_LABEL,
  NODEGROUP_LABEL,
  REGION_LABEL,
  SERVERLESS_PROFILE_LABEL,
  SERVERLESS_PROFILES_CONFIGMAP,
  SERVERLESS_SCHEDULER,
  ZONE_LABEL,
  serverlessConfigMapName,
  type CloudInstance,
  type NodeTemplate,
  type ServerlessProfile,
  type Topology,
} from "./types.ts";

export interface ServerlessOptions {
  client: Client;
  topology: Topology;
  log: Logger;
  clock?: Clock;
}

/** The value of COMPUTE_TYPE_LABEL (and of its taint) on serverless nodes; also their instance type. */
export const SERVERLESS_COMPUTE_TYPE = "serverless";
/** What Fargate adds to a pod's memory request for its own kubelet and agents. */
export const SERVERLESS_MEMORY_OVERHEAD = 256 * 1024 * 1024;
/** Fargate's default ephemeral storage per pod. */
export const SERVERLESS_EPHEMERAL_STORAGE = "20Gi";
/** How often instances and Nodes are checked against the pods they are for. */
export const SERVERLESS_RESYNC_MS = 30_000;

const GiB = 1024 ** 3;
const range = (from: number, to: number, step: number): number[] => Array.from({ length: Math.floor((to - from) / step) + 1 }, (_, i) => from + i * step);

/** Fargate's vCPU and memory (GiB) combinations, smallest first. */
export const SERVERLESS_SIZES: readonly { milliCPU: number; memoryGiB: readonly number[] }[] = [
  { milliCPU: 250, memoryGiB: [0.5, 1, 2] },
  { milliCPU: 500, memoryGiB: range(1, 4, 1) },
  { milliCPU: 1000, memoryGiB: range(2, 8, 1) },
  { milliCPU: 2000, memoryGiB: range(4, 16, 1) },
  { milliCPU: 4000, memoryGiB: range(8, 30, 1) },
  { milliCPU: 8000, memoryGiB: range(16, 60, 4) },
  { milliCPU: 16000, memoryGiB: range(32, 120, 8) },
];

/** A Fargate size, as numbers and as the node's capacity quantities. */
export interface ServerlessSize {
  milliCPU: number;
  memoryBytes: number;
  /** "250m", "1", "16". */
  cpu: string;
  /** "512Mi", "3Gi". */
  memory: string;
}

/**
 * The smallest combination with at least `milliCPU` and `memoryBytes` (the overhead already added),
 * or undefined when the pod needs more than the largest (16 vCPU, 120Gi).
 */
export function roundToServerlessSize(milliCPU: number, memoryBytes: number): ServerlessSize | undefined {
  for (const row of SERVERLESS_SIZES) {
    if (row.milliCPU < milliCPU) continue;
    const gib = row.memoryGiB.find((m) => m * GiB >= memoryBytes);
    if (gib === undefined) continue;
    return {
      milliCPU: row.milliCPU,
      memoryBytes: gib * GiB,
      cpu: row.milliCPU % 1000 === 0 ? String(row.milliCPU / 1000) : `${row.milliCPU}m`,
      memory: Number.isInteger(gib) ? `${gib}Gi` : `${gib * 1024}Mi`,
    };
  }
  return undefined;
}

/** The pod's request (max of the containers' sum and each init container, as the scheduler counts it). */
export function podServerlessRequest(pod: Readonly<Pod>): { milliCPU: number; memoryBytes: number } {
  const r = podRequests(pod);
  return { milliCPU: r.milliCPU, memoryBytes: r.memory + SERVERLESS_MEMORY_OVERHEAD };
}

/** The node a pod gets: its Fargate size, one pod, 20Gi of ephemeral storage, the serverless labels and taint. */
export function serverlessTemplate(size: ServerlessSize, profile: string, zone: string, region: string): NodeTemplate {
  return {
    capacity: { cpu: size.cpu, memory: size.memory, pods: "1", "ephemeral-storage": SERVERLESS_EPHEMERAL_STORAGE },
    labels: {
      [INSTANCE_TYPE_LABEL]: SERVERLESS_COMPUTE_TYPE,
      [COMPUTE_TYPE_LABEL]: SERVERLESS_COMPUTE_TYPE,
      [NODEGROUP_LABEL]: profile,
      [ZONE_LABEL]: zone,
      [REGION_LABEL]: region,
    },
    taints: [{ key: COMPUTE_TYPE_LABEL, value: SERVERLESS_COMPUTE_TYPE, effect: "NoSchedule" }],
  };
}

/** The first 10 hex digits of the pod's uid: an instance names the pod incarnation it is for. */
function uidSuffix(pod: Readonly<Pod>): string {
  return (pod.metadata.uid ?? "").replace(/-/g, "").toLowerCase().slice(0, 10) || "0000000000";
}

/**
 * `<profile>-<zone>-<first 10 hex digits of the pod's uid>`, the Node's name: a DNS-1123 label (the
 * prefix is shortened when profile and zone are long), different for a pod recreated under the same name.
 */
export function serverlessInstanceName(profile: string, zone: string, pod: Readonly<Pod>): string {
  const suffix = uidSuffix(pod);
  const prefix = `${profile}-${zone}`.slice(0, 63 - suffix.length - 1).replace(/-+$/, "");
  return `${prefix}-${suffix}`;
}

/** The instance was launched for this pod (same "ns/name" and, through its name, the same uid). */
export function instanceIsFor(instance: Readonly<CloudInstance>, pod: Readonly<Pod>): boolean {
  return instance.pod === objectKey(pod) && instance.name.endsWith(`-${uidSuffix(pod)}`);
}

function isFinished(pod: Readonly<Pod>): boolean {
  return pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";
}

function isNodeReady(node: Readonly<Node>): boolean {
  return node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

/** The profile the admission named (else the first whose selectors take the pod, for a hand-set schedulerName). */
export function profileForPod(pod: Readonly<Pod>, profiles: readonly ServerlessProfile[]): { profile?: ServerlessProfile; error?: string } {
  const named = pod.metadata.annotations?.[SERVERLESS_PROFILE_LABEL];
  if (named !== undefined) {
    const profile = profiles.find((p) => p.name === named);
    return profile ? { profile } : { error: `serverless profile ${JSON.stringify(named)} (annotation ${SERVERLESS_PROFILE_LABEL}) does not exist` };
  }
  const profile = matchingProfile(profiles, pod.metadata.namespace ?? "", pod.metadata.labels);
  return profile ? { profile } : { error: `no serverless profile selects namespace ${JSON.stringify(pod.metadata.namespace)} with the pod's labels` };
}

/**
 * The profile's zones whose node would satisfy the pod's nodeSelector and required node affinity
 * (on the template's labels and the ones every kubelet sets), in the profile's order.
 */
export function candidateZones(pod: Readonly<Pod>, profile: Readonly<ServerlessProfile>, size: ServerlessSize, region: string): string[] {
  return profile.zones.filter((zone) => {
    const name = serverlessInstanceName(profile.name, zone, pod);
    const labels = { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", ...serverlessTemplate(size, profile.name, zone, region).labels };
    return podMatchesNodeAffinity(pod, { apiVersion: "v1", kind: "Node", metadata: { name, labels } });
  });
}

/** The candidate with the fewest of the profile's instances; ties go to the earlier zone. */
export function pickZone(candidates: readonly string[], instancesInZone: (zone: string) => number): string | undefined {
  let best: string | undefined;
  let bestCount = Infinity;
  for (const z of candidates) {
    const n = instancesInZone(z);
    if (n < bestCount) [best, bestCount] = [z, n];
  }
  return best;
}

function formatRequest(r: { milliCPU: number; memoryBytes: number }): string {
  return `cpu ${r.milliCPU}m, memory ${Math.ceil(r.memoryBytes / 1024 ** 2)}Mi`;
}

/** Writes kube-system/kubelab-serverless-profiles (data.profiles: JSON ServerlessProfile[]) unless it already says so. */
export async function writeServerlessProfiles(client: Client, profiles: readonly ServerlessProfile[]): Promise<void> {
  const cms = client.resource<ConfigMap>("", "configmaps");
  const want = JSON.stringify(profiles.map((p) => ({ name: p.name, zones: [...p.zones], selectors: p.selectors.map((s) => ({ namespace: s.namespace, labels: { ...s.labels } })) })));
  for (let attempt = 1; ; attempt++) {
    try {
      let cur: ConfigMap | undefined;
      try {
        cur = await cms.get(CLOUD_NAMESPACE, SERVERLESS_PROFILES_CONFIGMAP);
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
      if (!cur) {
        await cms.create(CLOUD_NAMESPACE, { apiVersion: "v1", kind: "ConfigMap", metadata: { name: SERVERLESS_PROFILES_CONFIGMAP, namespace: CLOUD_NAMESPACE }, data: { profiles: want } });
      } else if (cur.data?.profiles !== want) {
        await cms.update({ ...cur, data: { ...(cur.data ?? {}), profiles: want } });
      }
      return;
    } catch (e) {
      if ((isConflict(e) || isAlreadyExists(e)) && attempt < 8) continue;
      throw e;
    }
  }
}

export interface ServerlessControllerDeps {
  client: Client;
  topology: Topology;
  /** Pods with spec.schedulerName kubelab-serverless-scheduler. */
  pods: Lister<Pod>;
  /** Nodes labelled kubelab.io/compute-type=serverless. */
  nodes: Lister<Node>;
  /** kube-system ConfigMaps labelled kubelab.io/cloud=serverless. */
  configMaps: Lister<ConfigMap>;
  /** source.component kubelab-serverless-scheduler. */
  recorder: EventRecorder;
  clock: Pick<Clock, "now">;
}

/** An instance and the ConfigMap listing it. */
interface Listed {
  configMap: string;
  instance: CloudInstance;
}

/** Reconciles one pod (key "ns/name"): launch its node, bind it when the node is Ready, terminate the node when the pod is done. */
export class ServerlessController implements Reconciler {
  constructor(private readonly deps: ServerlessControllerDeps) {}

  async reconcile(ctx: ReconcileContext, key: ObjectKey): Promise<Result | void> {
    const found = this.deps.pods.get(key);
    const pod = found && !isFinished(found) ? found : undefined;
    const mine = this.listed(ctx.log).filter((l) => l.instance.pod === key);
    const boundTo = pod?.spec?.nodeName;
    const stale = (l: Listed): string | undefined => {
      if (!found) return `pod ${key} is gone`;
      if (!pod) return `pod ${key} finished`;
      if (!instanceIsFor(l.instance, pod)) return `pod ${key} was replaced`;
      // Bound elsewhere (by hand): the node launched for it would stay empty.
      if (boundTo && boundTo !== l.instance.name) return `pod ${key} runs on ${boundTo}`;
      return undefined;
    };
    for (const l of mine) {
      const why = stale(l);
      if (why) await this.terminate(ctx, l, why);
    }
    if (!pod || boundTo || pod.metadata.deletionTimestamp) return;
    const current = mine.find((l) => instanceIsFor(l.instance, pod));
    if (current) return this.bindWhenReady(ctx, pod, current.instance.name);
    return this.launch(ctx, pod);
  }

  /**
   * The resync: every pod an instance names is reconciled (the pod may be gone without our having
   * seen it go), instances naming no pod are terminated, and serverless Nodes no instance lists are deleted.
   */
  async resync(ctx: Context, queue: Pick<WorkQueue<ObjectKey>, "add">): Promise<void> {
    // Nodes first: a Node appears only after its instance is listed, so every Node of this snapshot
    // that has an instance has it in the ConfigMaps read below (the cache may lag our own launches).
    const nodes = this.deps.nodes.list();
    const list = await this.deps.client.resource<ConfigMap>("", "configmaps").list(CLOUD_NAMESPACE, { labelSelector: `${CLOUD_LABEL}=serverless` });
    const names = new Set<string>();
    let complete = true;
    for (const cm of list.items) {
      const state = parseCloudConfigMap(cm);
      if (state instanceof Error) {
        ctx.log.warn({ err: state.message }, "unreadable serverless ConfigMap; not collecting serverless nodes until it is fixed");
        complete = false;
        continue;
      }
      for (const instance of state.instances) {
        names.add(instance.name);
        if (instance.pod) queue.add(instance.pod);
        else await this.terminate(ctx, { configMap: cm.metadata.name ?? "", instance }, "the instance names no pod");
      }
    }
    if (!complete) return;
    for (const node of nodes) {
      const name = node.metadata.name ?? "";
      if (names.has(name)) continue;
      await this.deleteNode(ctx, name, "no serverless instance lists it");
    }
  }

  /** The pod keys the instances of a serverless ConfigMap name (to enqueue on its changes). */
  static podKeys(cm: Readonly<ConfigMap>): string[] {
    const state = parseCloudConfigMap(cm);
    if (state instanceof Error) return [];
    return state.instances.flatMap((i) => (i.pod ? [i.pod] : []));
  }

  /** The pod key of the instance a Node runs, from the cached ConfigMaps. */
  podKeyOfNode(node: string): string | undefined {
    for (const cm of this.deps.configMaps.list()) {
      const state = parseCloudConfigMap(cm);
      if (state instanceof Error) continue;
      const i = state.instances.find((x) => x.name === node);
      if (i) return i.pod;
    }
    return undefined;
  }

  private listed(log: Logger): Listed[] {
    const out: Listed[] = [];
    for (const cm of this.deps.configMaps.list()) {
      const state = parseCloudConfigMap(cm);
      if (state instanceof Error) {
        log.warn({ err: state.message }, "unreadable serverless ConfigMap; ignoring it until it is fixed");
        continue;
      }
      for (const instance of state.instances) out.push({ configMap: cm.metadata.name ?? "", instance });
    }
    return out;
  }

  private failed(pod: Readonly<Pod>, message: string): void {
    this.deps.recorder.event(pod, "Warning", "FailedScheduling", message);
  }

  private async launch(ctx: ReconcileContext, pod: Readonly<Pod>): Promise<Result | void> {
    const { client, topology } = this.deps;
    const key = objectKey(pod);
    const { profile, error } = profileForPod(pod, topology.serverless);
    if (!profile) return this.failed(pod, error ?? "no serverless profile");
    const request = podServerlessRequest(pod);
    const size = roundToServerlessSize(request.milliCPU, request.memoryBytes);
    if (!size) return this.failed(pod, `pod requests ${formatRequest(request)} (with the ${SERVERLESS_MEMORY_OVERHEAD / 1024 ** 2}Mi serverless overhead), more than the largest serverless size (16 vCPU, 120Gi)`);
    const zones = candidateZones(pod, profile, size, topology.region);
    if (zones.length === 0) {
      return this.failed(pod, `0/${profile.zones.length} zones of serverless profile ${JSON.stringify(profile.name)} (${profile.zones.join(", ")}) match the pod's node selector or required node affinity`);
    }
    // The cache may not show our own last launch yet: the ConfigMaps on the server decide.
    const live = await client.resource<ConfigMap>("", "configmaps").list(CLOUD_NAMESPACE, { labelSelector: `${CLOUD_LABEL}=serverless,${NODEGROUP_LABEL}=${profile.name}` });
    const counts = new Map<string, number>();
    for (const cm of live.items) {
      const state = parseCloudConfigMap(cm);
      if (state instanceof Error) throw state;
      if (state.instances.some((i) => instanceIsFor(i, pod))) {
        ctx.log.debug({ pod: key }, "instance already launched; waiting for the cache");
        return;
      }
      counts.set(state.zone, state.instances.length);
    }
    const zone = pickZone(zones, (z) => counts.get(z) ?? 0)!;
    const name = serverlessInstanceName(profile.name, zone, pod);
    const instance: CloudInstance = { name, id: newInstanceId(), launchTime: launchTime(this.deps.clock.now()), pod: key, template: serverlessTemplate(size, profile.name, zone, topology.region) };
    let launched = false;
    await updateCloudGroup(client, serverlessConfigMapName(profile.name, zone), (cur) => {
      launched = false;
      const state: CloudGroupState = cur ?? { kind: "serverless", group: profile.name, zone, minSize: 0, maxSize: Number.MAX_SAFE_INTEGER, desiredCapacity: 0, instances: [] };
      if (state.instances.some((i) => instanceIsFor(i, pod))) return undefined;
      state.instances.push(instance);
      state.desiredCapacity = state.instances.length;
      launched = true;
      return state;
    });
    if (!launched) return;
    ctx.log.info({ pod: key, node: name, zone, cpu: size.cpu, memory: size.memory }, "launched a serverless node");
    this.deps.recorder.event(pod, "Normal", "LaunchingServerlessNode", `Launching serverless node ${name} (${size.milliCPU / 1000} vCPU, ${size.memoryBytes / GiB} GB) in ${zone} for pod ${key}`);
  }

  private async bindWhenReady(ctx: ReconcileContext, pod: Readonly<Pod>, node: string): Promise<Result | void> {
    const n = this.deps.nodes.get(node);
    // The Node's own events bring the pod back here once it is Ready.
    if (!n || !isNodeReady(n)) return;
    const key = objectKey(pod);
    try {
      await this.deps.client.bind(pod.metadata.namespace ?? "", pod.metadata.name ?? "", node, { uid: pod.metadata.uid });
    } catch (e) {
      // Gone, replaced (uid) or bound meanwhile: the pod's next event says which, and reconciles again.
      if (isNotFound(e) || (e as { code?: number }).code === 409) {
        ctx.log.info({ pod: key, node, reason: (e as Error).message }, "binding lost a race; waiting for the pod's next event");
        return;
      }
      throw e;
    }
    ctx.log.info({ pod: key, node }, "bound pod to its serverless node");
    this.deps.recorder.event(pod, "Normal", "Scheduled", `Successfully assigned ${key} to ${node}`);
  }

  /** TerminateInstances, then the Node (the pool stops its kubelet but never deletes Nodes). */
  private async terminate(ctx: Context, l: Listed, why: string): Promise<void> {
    await updateCloudGroup(this.deps.client, l.configMap, (cur) => {
      const i = cur?.instances.findIndex((x) => x.name === l.instance.name) ?? -1;
      if (!cur || i < 0) return undefined;
      cur.instances.splice(i, 1);
      cur.desiredCapacity = cur.instances.length;
      return cur;
    });
    ctx.log.info({ node: l.instance.name, id: l.instance.id, pod: l.instance.pod, why }, "terminated a serverless instance");
    await this.deleteNode(ctx, l.instance.name, why);
  }

  private async deleteNode(ctx: Context, name: string, why: string): Promise<void> {
    try {
      await this.deps.client.resource<Node>("", "nodes").delete("", name);
      ctx.log.info({ node: name, why }, "deleted serverless node");
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }
}

/**
 * Publishes the profiles, then runs the serverless scheduler until ctx aborts: informers on its
 * pods, serverless Nodes and serverless ConfigMaps, a queue of pod keys, and a resync every 30 s.
 */
export async function runServerless(ctx: Context, opts: ServerlessOptions): Promise<void> {
  const { client, topology } = opts;
  const clock = opts.clock ?? realClock;
  // runController names the controller in its own lines; these are the profiles' and the resync's.
  const log = opts.log.child({ controller: "serverless" });
  const inner: Context = { signal: ctx.signal, log: opts.log };
  for (let delay = 1000; ; delay = Math.min(delay * 2, 30_000)) {
    if (ctx.signal.aborted) return;
    try {
      await writeServerlessProfiles(client, topology.serverless);
      break;
    } catch (e) {
      log.error({ err: e, retryInMs: delay }, `writing ${CLOUD_NAMESPACE}/${SERVERLESS_PROFILES_CONFIGMAP} failed`);
      await clock.sleep(delay, ctx.signal);
    }
  }

  const pods = newInformer<Pod>(client, "", "pods", { fieldSelector: `spec.schedulerName=${SERVERLESS_SCHEDULER}`, clock, log: opts.log });
  const nodes = newInformer<Node>(client, "", "nodes", { labelSelector: `${COMPUTE_TYPE_LABEL}=${SERVERLESS_COMPUTE_TYPE}`, clock, log: opts.log });
  const configMaps = newInformer<ConfigMap>(client, "", "configmaps", { namespace: CLOUD_NAMESPACE, labelSelector: `${CLOUD_LABEL}=serverless`, clock, log: opts.log });
  const queue = newRateLimitingQueue<ObjectKey>({ name: "serverless", clock });
  const recorder = newEventRecorder(client, { component: SERVERLESS_SCHEDULER, clock, log });
  const ctrl = new ServerlessController({ client, topology, pods: pods.lister, nodes: nodes.lister, configMaps: configMaps.lister, recorder, clock });

  pods.addEventHandler({
    onAdd: (p) => queue.add(objectKey(p)),
    onUpdate: (_, p) => queue.add(objectKey(p)),
    onDelete: (p) => queue.add(objectKey(p)),
  });
  const enqueueNode = (n: Readonly<Node>): void => {
    const k = ctrl.podKeyOfNode(n.metadata.name ?? "");
    if (k) queue.add(k);
  };
  nodes.addEventHandler({ onAdd: enqueueNode, onUpdate: (_, n) => enqueueNode(n), onDelete: enqueueNode });
  const enqueueInstances = (cm: Readonly<ConfigMap>): void => {
    for (const k of ServerlessController.podKeys(cm)) queue.add(k);
  };
  configMaps.addEventHandler({
    onAdd: enqueueInstances,
    onUpdate: (old, cur) => {
      enqueueInstances(old);
      enqueueInstances(cur);
    },
    onDelete: enqueueInstances,
  });

  const informers = [pods, nodes, configMaps];
  const running = informers.map((i) => i.run(inner).catch((e: unknown) => log.error({ err: e }, "informer stopped")));
  const resyncs = (async () => {
    try {
      await Promise.all(informers.map((i) => i.waitForSync(ctx.signal)));
    } catch {
      return;
    }
    while (!ctx.signal.aborted) {
      try {
        await ctrl.resync({ signal: ctx.signal, log }, queue);
      } catch (e) {
        log.error({ err: e }, "serverless resync failed");
      }
      await clock.sleep(SERVERLESS_RESYNC_MS, ctx.signal);
    }
  })();
  await runController(inner, { name: "serverless", reconciler: ctrl, queue, workers: 4, informers, clock });
  await Promise.all([resyncs, ...running]);
}
