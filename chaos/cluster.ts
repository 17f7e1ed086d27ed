// A running `kubelab up` as the chaos runner sees it: its data dir (up.json, the etcd members), its
// control socket (act on a process), its API (kubeconfig), and how a fault's target resolves to
// processes — the leader of a Lease (the member of the pair whose /readyz answers 200: ready means
// holding the lease), the etcd leader, the processes of a zone.

import { readFileSync } from "node:fs";
import http from "node:http";
import { join, resolve } from "node:path";
import { clientFromKubeconfig } from "../cli/component.ts";
import { controlRequest, listComponents } from "../cli/control.ts";
import { etcdLeader, type EtcdClusterPlan } from "../cli/etcdcluster.ts";
import type { PoolNodeState } from "../cli/nodecontrol.ts";
import type { ComponentAction, ComponentState } from "../cli/supervisor.ts";
import type { UpState } from "../cli/up.ts";
import type { RestClient } from "../client/index.ts";

/** The processes of a lease's pair, by name prefix. */
const LEASE_PREFIX: Record<string, string> = {
  "kube-scheduler": "scheduler-",
  "kube-controller-manager": "controller-manager-",
  "kubelab-cloud-controller": "cloud-controller",
};

/** What a zone outage takes down: the zone's processes, but not the regional front ends (the ingress is the cloud's multi-zone load balancer; DNS and the endpoint are regional too). */
const REGIONAL = /^(ingress|dns|endpoint)$/;

export class Cluster {
  readonly dataDir: string;
  readonly state: UpState;
  readonly client: RestClient;

  constructor(dataDir: string) {
    this.dataDir = resolve(dataDir);
    let state: UpState;
    try {
      state = JSON.parse(readFileSync(join(this.dataDir, "up.json"), "utf8")) as UpState;
    } catch {
      throw new Error(`kubelab is not running from ${this.dataDir} (no up.json); start it with 'kubelab up --data-dir ${dataDir}'`);
    }
    this.state = state;
    this.client = clientFromKubeconfig(state.kubeconfig);
  }

  components(): Promise<ComponentState[]> {
    return listComponents(this.dataDir);
  }

  async act(name: string, action: ComponentAction): Promise<ComponentState> {
    return (await controlRequest<{ component: ComponentState }>(this.dataDir, "POST", `/v1/components/${encodeURIComponent(name)}/${action}`)).component;
  }

  /** Sets the links of a component (or one link by name) of the fault proxy (`up --chaos`). */
  async setLink(component: string, mode: "ok" | "cut" | "reset" | "delay" | "throttle", params: Record<string, number> = {}): Promise<{ name: string }[]> {
    const q = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)] as [string, string])).toString();
    return (await controlRequest<{ links: { name: string }[] }>(this.dataDir, "POST", `/v1/links/${encodeURIComponent(component)}/${mode}${q ? `?${q}` : ""}`)).links;
  }

  /** Acts on one simulated node through its pool (stop, start, clock?offsetMs=N). */
  async nodeAction(node: string, action: "stop" | "start" | "clock", query = ""): Promise<PoolNodeState> {
    return (await controlRequest<{ node: PoolNodeState }>(this.dataDir, "POST", `/v1/nodes/${encodeURIComponent(node)}/${action}${query ? `?${query}` : ""}`, 20_000)).node;
  }

  async links(): Promise<{ name: string; component: string }[]> {
    return (await controlRequest<{ links: { name: string; component: string }[] }>(this.dataDir, "GET", "/v1/links")).links;
  }

  /** The ingress HTTP port (for {ingressHTTP} in probe URLs). */
  ingressPorts(): { http?: string; https?: string } {
    const dp = this.state.dataPlane;
    const port = (u?: string) => (u ? /:(\d+)\/?$/.exec(u)?.[1] : undefined);
    return { http: port(dp?.ingressHTTP), https: port(dp?.ingressHTTPS) };
  }

  /** The process holding the Lease now; throws when none does (no pair, or none ready). */
  async leaderOf(lease: string): Promise<ComponentState> {
    const prefix = LEASE_PREFIX[lease];
    if (!prefix) throw new Error(`no kubelab process is elected on the Lease ${lease}`);
    const pair = (await this.components()).filter((c) => c.name.startsWith(prefix) && c.pid);
    if (pair.length === 0) throw new Error(`no process of kube-system/${lease} runs (no ${prefix}* component)`);
    for (const c of pair) if (c.healthPort && (await readyz(c.healthPort)) === 200) return c;
    throw new Error(`no process holds kube-system/${lease} now (none of ${pair.map((c) => c.name).join(", ")} is ready)`);
  }

  etcdPlan(): EtcdClusterPlan | undefined {
    try {
      return JSON.parse(readFileSync(join(this.dataDir, "etcd", "members.json"), "utf8")) as EtcdClusterPlan;
    } catch {
      return undefined;
    }
  }

  async etcdLeader(): Promise<ComponentState> {
    const plan = this.etcdPlan();
    if (!plan) throw new Error("this cluster does not run its own etcd (start it with --etcd spawn)");
    const m = await etcdLeader(plan);
    if (!m) throw new Error("no etcd member leads now");
    const c = (await this.components()).find((x) => x.name === m.name);
    if (!c) throw new Error(`the etcd leader ${m.name} is not one of this cluster's processes`);
    return c;
  }

  /** The processes a zone outage stops: every process of the zone but the regional front ends. */
  async zoneProcesses(zone: string): Promise<ComponentState[]> {
    const all = await this.components();
    const zones = new Set(all.map((c) => c.zone).filter(Boolean));
    if (!zones.has(zone)) throw new Error(`no process runs in zone ${zone} (zones: ${[...zones].sort().join(", ")})`);
    return all.filter((c) => c.zone === zone && !REGIONAL.test(c.name));
  }
}

function readyz(port: number): Promise<number> {
  return new Promise((done) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/readyz", timeout: 2000 }, (res) => {
      res.resume();
      done(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => done(0));
  });
}
