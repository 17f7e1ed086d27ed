// The run's timeline from the cluster's own watches: node Ready transitions, leader changes of the
// control-plane Leases, pods going (evictions, deletions) and coming (reschedules), ready endpoint
// counts of the experiment's Services, as one-line events with their time.

import type { EndpointSlice, Lease, Node, Pod } from "../api/index.ts";
import { newInformer, newLogger, type Context, type RestClient } from "../client/index.ts";
import type { RunMs, TimelineEvent } from "./types.ts";

const LEADER_LEASES = new Set(["kube-scheduler", "kube-controller-manager", "kubelab-cloud-controller"]);

const readyOf = (n: Readonly<Node>): string => n.status?.conditions?.find((c) => c.type === "Ready")?.status ?? "Unknown";

export class TimelineRecorder {
  readonly events: TimelineEvent[] = [];
  private synced = false;

  constructor(
    private readonly client: RestClient,
    private readonly t0: () => number,
    /** Namespaces whose pods and endpoints are followed (the experiment's setup). */
    private readonly namespaces: ReadonlySet<string>,
  ) {}

  add(kind: TimelineEvent["kind"], message: string, subject?: string, t?: RunMs): void {
    this.events.push({ t: t ?? Date.now() - this.t0(), kind, message, ...(subject ? { subject } : {}) });
  }

  /** Watches until ctx aborts; the first lists are not events (only changes after them are). */
  async run(ctx: Context): Promise<void> {
    const log = newLogger("chaos-timeline");
    const nodes = newInformer<Node>(this.client, "", "nodes", { log });
    const leases = newInformer<Lease>(this.client, "coordination.k8s.io", "leases", { namespace: "kube-system", log });
    const pods = newInformer<Pod>(this.client, "", "pods", { log });
    const slices = newInformer<EndpointSlice>(this.client, "discovery.k8s.io", "endpointslices", { log });
    const live = () => this.synced;
    nodes.addEventHandler({
      onUpdate: (o, n) => {
        if (live() && readyOf(o) !== readyOf(n)) this.add("node", `node ${n.metadata.name} Ready=${readyOf(n)}`, n.metadata.name);
      },
      onAdd: (n) => live() && this.add("node", `node ${n.metadata.name} registered`, n.metadata.name),
      onDelete: (n) => live() && this.add("node", `node ${n.metadata.name} deleted`, n.metadata.name),
    });
    leases.addEventHandler({
      onUpdate: (o, n) => {
        const name = n.metadata.name!;
        if (live() && LEADER_LEASES.has(name) && (o.spec?.holderIdentity ?? "") !== (n.spec?.holderIdentity ?? "")) this.add("leader", `${name} leader ${n.spec?.holderIdentity || "(none)"}`, name);
      },
    });
    const followed = (p: Readonly<Pod>) => this.namespaces.has(p.metadata.namespace ?? "");
    pods.addEventHandler({
      onAdd: (p) => live() && followed(p) && this.add("reschedule", `pod ${p.metadata.namespace}/${p.metadata.name} created`, p.metadata.name),
      onUpdate: (o, n) => {
        if (!live() || !followed(n)) return;
        if (!o.spec?.nodeName && n.spec?.nodeName) this.add("reschedule", `pod ${n.metadata.namespace}/${n.metadata.name} scheduled to ${n.spec.nodeName}`, n.metadata.name);
        if (!o.metadata.deletionTimestamp && n.metadata.deletionTimestamp) this.add("eviction", `pod ${n.metadata.namespace}/${n.metadata.name} deleted (on ${n.spec?.nodeName ?? "no node"})`, n.metadata.name);
      },
    });
    const readyCount = (s: Readonly<EndpointSlice>) => (s.endpoints ?? []).filter((e) => e.conditions?.ready !== false).length;
    slices.addEventHandler({
      onUpdate: (o, n) => {
        if (!live() || !this.namespaces.has(n.metadata.namespace ?? "")) return;
        const before = readyCount(o);
        const after = readyCount(n);
        if (before !== after) this.add("endpoints", `service ${n.metadata.namespace}/${n.metadata.labels?.["kubernetes.io/service-name"] ?? n.metadata.name} ready endpoints ${before} -> ${after}`, n.metadata.name);
      },
    });
    const all = [nodes, leases, pods, slices];
    const done = Promise.all(all.map((i) => i.run(ctx)));
    await Promise.all(all.map((i) => i.waitForSync(ctx.signal)));
    this.synced = true;
    await done;
  }
}
