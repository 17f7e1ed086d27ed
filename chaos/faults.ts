// Faults as small objects with inject() and revert() (CONVENTIONS: the runner always reverts).
// Process faults go through the cluster's control socket, so the supervisor knows a paused or
// held-down process is meant to be so: kill (SIGKILL, restarted as after a crash), restart
// (SIGTERM, restarted at once), pause (SIGSTOP until revert), stop (SIGTERM and held down until
// revert); a zone outage pauses every process of the zone (its kubelets — so its nodes go silent —,
// its proxy, etcd member and apiserver, and the control-plane processes placed there);
// lease-expire releases a leader Lease (holderIdentity cleared), as an expired lease is free for
// the standby to take; node-stop powers one simulated node off until revert and clock-skew moves
// its kubelet's wall clock (both through the node's pool: kubelet/nodecontrol.ts).

import { parseQuantityValue, type Lease, type Namespace, type Node, type Pod } from "../api/index.ts";
import { microTime } from "../client/index.ts";
import type { Cluster } from "./cluster.ts";
import { PROBE_NAMESPACE } from "./probes.ts";
import type { FaultSpec } from "./types.ts";

export interface Fault {
  readonly spec: FaultSpec;
  /** Acts; returns what the target resolved to ("scheduler-2 (pid 4242)"). */
  inject(): Promise<string>;
  /** Undoes what inject did (nothing for instant faults); safe to call twice, and after a failed inject. */
  revert(): Promise<void>;
}

const described = (c: { name: string; pid?: number }) => `${c.name}${c.pid ? ` (pid ${c.pid})` : ""}`;

async function resolveProcess(cluster: Cluster, spec: FaultSpec): Promise<string> {
  const t = spec.target;
  if (t.component) return t.component;
  if (t.leaderOf) return (await cluster.leaderOf(t.leaderOf)).name;
  if (t.etcdLeader) return (await cluster.etcdLeader()).name;
  throw new Error(`${spec.kind} needs target.component, target.leaderOf or target.etcdLeader`);
}

class ProcessFault implements Fault {
  private acted: string[] = [];
  constructor(
    readonly spec: FaultSpec,
    private readonly cluster: Cluster,
  ) {}

  async inject(): Promise<string> {
    const names = this.spec.kind === "zone-outage" ? (await this.cluster.zoneProcesses(this.spec.target.zone!)).map((c) => c.name) : [await resolveProcess(this.cluster, this.spec)];
    const action = { kill: "kill", restart: "restart", pause: "pause", stop: "stop", "zone-outage": "pause" }[this.spec.kind as "kill"] as "kill" | "restart" | "pause" | "stop";
    const done: string[] = [];
    for (const name of names) {
      const before = (await this.cluster.components()).find((c) => c.name === name);
      await this.cluster.act(name, action);
      this.acted.push(name);
      done.push(described({ name, pid: before?.pid }));
    }
    return done.join(", ");
  }

  async revert(): Promise<void> {
    const undo = this.spec.kind === "stop" ? "start" : this.spec.kind === "pause" || this.spec.kind === "zone-outage" ? "resume" : undefined;
    if (!undo) return;
    const errors: string[] = [];
    for (const name of this.acted) {
      try {
        await this.cluster.act(name, undo);
      } catch (e) {
        // A paused process that was killed meanwhile is not running: nothing to resume.
        if (!/not running/.test((e as Error).message)) errors.push(`${name}: ${(e as Error).message}`);
      }
    }
    this.acted = [];
    if (errors.length) throw new Error(`revert of ${this.spec.name}: ${errors.join("; ")}`);
  }
}

class LeaseExpire implements Fault {
  constructor(
    readonly spec: FaultSpec,
    private readonly cluster: Cluster,
  ) {}

  async inject(): Promise<string> {
    const leases = this.cluster.client.resource<Lease>("coordination.k8s.io", "leases");
    const name = this.spec.target.lease!;
    for (let attempt = 0; ; attempt++) {
      const l = await leases.get("kube-system", name);
      const holder = l.spec?.holderIdentity ?? "";
      try {
        // What an expired lease looks like to a candidate: no holder, renewed long ago.
        await leases.update({ ...l, spec: { ...l.spec, holderIdentity: "", renewTime: microTime(Date.now() - 3_600_000) } });
        return `kube-system/${name} (held by ${holder || "nobody"})`;
      } catch (e) {
        if ((e as { code?: number }).code !== 409 || attempt >= 5) throw e;
      }
    }
  }

  async revert(): Promise<void> {
    // Nothing to undo: the candidates elect a leader on their own.
  }
}

/** link-cut, link-reset, link-delay, link-throttle: the fault proxy's links of a component or of a zone's processes. */
class LinkFault implements Fault {
  private set: string[] = [];
  constructor(
    readonly spec: FaultSpec,
    private readonly cluster: Cluster,
  ) {}

  async inject(): Promise<string> {
    const t = this.spec.target;
    const all = await this.cluster.links();
    const components = t.zone ? (await this.cluster.zoneProcesses(t.zone)).map((c) => c.name).filter((n) => all.some((l) => l.component === n)) : [t.component!];
    if (components.length === 0) throw new Error(`no process of zone ${t.zone} has a link`);
    const mode = this.spec.kind.slice("link-".length) as "cut" | "reset" | "delay" | "throttle";
    const params: Record<string, number> = mode === "delay" ? { latencyMs: this.spec.latencyMs! } : mode === "throttle" ? { bytesPerSecond: this.spec.bytesPerSecond! } : {};
    const names: string[] = [];
    for (const c of components) {
      const links = await this.cluster.setLink(c, mode, params);
      this.set.push(c);
      names.push(...links.map((l) => l.name));
    }
    return `${mode} ${names.join(", ")}`;
  }

  async revert(): Promise<void> {
    const errors: string[] = [];
    for (const c of this.set) await this.cluster.setLink(c, "ok").catch((e: unknown) => errors.push(`${c}: ${(e as Error).message}`));
    this.set = [];
    if (errors.length) throw new Error(`revert of ${this.spec.name}: ${errors.join("; ")}`);
  }
}

/**
 * fill-node: the node's pod capacity (allocatable pods) used up by pods bound to it directly
 * (spec.nodeName: no scheduler involved, as a burst of DaemonSet or static pods would), so the
 * scheduler finds it full ("Too many pods"); reverted by deleting them.
 */
class FillNode implements Fault {
  private created: string[] = [];
  constructor(
    readonly spec: FaultSpec,
    private readonly cluster: Cluster,
  ) {}

  async inject(): Promise<string> {
    const name = this.spec.target.node!;
    const node = await this.cluster.client.resource<Node>("", "nodes").get("", name);
    await this.cluster.client
      .resource<Namespace>("", "namespaces")
      .create("", { apiVersion: "v1", kind: "Namespace", metadata: { name: PROBE_NAMESPACE } })
      .catch((e: unknown) => {
        if ((e as { code?: number }).code !== 409) throw e;
      });
    const capacity = parseQuantityValue(node.status?.allocatable?.pods ?? "0");
    const pods = await this.cluster.client.resource<Pod>("", "pods").list("", { fieldSelector: `spec.nodeName=${name}` });
    const used = pods.items.filter((p) => p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed").length;
    const n = Math.max(0, capacity - used);
    const res = this.cluster.client.resource<Pod>("", "pods");
    for (let i = 0; i < n; i += 20) {
      await Promise.all(
        Array.from({ length: Math.min(20, n - i) }, async (_, j) => {
          const pod = await res.create(PROBE_NAMESPACE, {
            apiVersion: "v1",
            kind: "Pod",
            metadata: { generateName: `fill-${name}-`, namespace: PROBE_NAMESPACE, labels: { "kubelab.io/chaos-fill": name } },
            spec: { nodeName: name, terminationGracePeriodSeconds: 0, tolerations: [{ operator: "Exists" }], containers: [{ name: "fill", image: "busybox", command: ["sleep", "86400"] }] },
          });
          this.created.push(pod.metadata.name!);
          void j;
        }),
      );
    }
    return `${name}: ${n} pods bound (${used} of ${capacity} were in use)`;
  }

  async revert(): Promise<void> {
    const res = this.cluster.client.resource<Pod>("", "pods");
    const names = this.created;
    this.created = [];
    for (let i = 0; i < names.length; i += 20) {
      await Promise.all(names.slice(i, i + 20).map((n) => res.delete(PROBE_NAMESPACE, n, { gracePeriodSeconds: 0 }).catch((e: unknown) => {
        if ((e as { code?: number }).code !== 404) throw e;
      })));
    }
  }
}

/**
 * node-stop: one simulated node powered off (its kubelet and containers down, the rest of its pool
 * running) until revert boots it again; clock-skew: its kubelet's wall clock moved by offsetMs
 * until revert puts it right (a clock behind by more than the grace period makes its Lease
 * renewals look old, so the node controller marks it Unknown while the kubelet runs fine).
 */
class NodeFault implements Fault {
  private acted?: string;
  constructor(
    readonly spec: FaultSpec,
    private readonly cluster: Cluster,
  ) {}

  async inject(): Promise<string> {
    const name = this.spec.target.node!;
    if (this.spec.kind === "node-stop") {
      const n = await this.cluster.nodeAction(name, "stop");
      this.acted = name;
      return `${name} (pool ${n.pool}) stopped`;
    }
    const n = await this.cluster.nodeAction(name, "clock", `offsetMs=${this.spec.offsetMs ?? 0}`);
    this.acted = name;
    return `${name} (pool ${n.pool}) clock ${n.clockOffsetMs >= 0 ? "+" : ""}${n.clockOffsetMs / 1000}s`;
  }

  async revert(): Promise<void> {
    const name = this.acted;
    if (!name) return;
    this.acted = undefined;
    try {
      if (this.spec.kind === "node-stop") await this.cluster.nodeAction(name, "start");
      else await this.cluster.nodeAction(name, "clock", "offsetMs=0");
    } catch (e) {
      // Started already (by hand), or its instance was terminated meanwhile: nothing to undo.
      if (!/is not stopped|no (stopped |simulated )?node/.test((e as Error).message)) throw new Error(`revert of ${this.spec.name}: ${(e as Error).message}`);
    }
  }
}

export function newFault(spec: FaultSpec, cluster: Cluster): Fault {
  if (spec.kind === "node-stop" || spec.kind === "clock-skew") return new NodeFault(spec, cluster);
  if (spec.kind === "lease-expire") return new LeaseExpire(spec, cluster);
  if (spec.kind === "fill-node") return new FillNode(spec, cluster);
  if (spec.kind.startsWith("link-")) return new LinkFault(spec, cluster);
  return new ProcessFault(spec, cluster);
}
