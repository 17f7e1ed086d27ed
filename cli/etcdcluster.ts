// `kubelab up --etcd spawn`: a three-member etcd cluster of the real `etcd` binary, members spread
// over the zones as EKS spreads its etcd across Availability Zones, client and peer URLs on
// loopback, data under DATA/etcd/<member>. The members' ports are chosen once and kept in
// DATA/etcd/members.json: an etcd member's data remembers its peer URLs, so a restarted cluster
// must come back on the same ones.

import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ComponentSpec } from "./supervisor.ts";
import { CliError } from "./errors.ts";

export const ETCD_MEMBERS = 3;
/** Watch progress notifications let watch caches advance on quiet prefixes (etcd's default is 10 minutes). */
export const ETCD_PROGRESS_NOTIFY_INTERVAL = "250ms";

export interface EtcdMember {
  name: string;
  zone: string;
  clientPort: number;
  peerPort: number;
}

export interface EtcdClusterPlan {
  token: string;
  members: EtcdMember[];
}

/** The `etcd` binary on PATH, or a one-line error saying how to get it. */
export function etcdBinary(): string {
  try {
    return execFileSync("sh", ["-c", "command -v etcd"], { encoding: "utf8" }).trim();
  } catch {
    throw new CliError("--etcd spawn needs the etcd binary on PATH (Debian: apt-get install etcd-server)", 2);
  }
}

/**
 * The cluster of DATA/etcd/members.json when it exists (a restart), else a new one: member i in
 * zone i mod zones, named etcd-<zone> (etcd-<zone>-<i> when a zone holds two).
 */
export async function planEtcdCluster(dataDir: string, zones: readonly string[], freePort: () => Promise<number>): Promise<EtcdClusterPlan> {
  const file = join(dataDir, "etcd", "members.json");
  if (existsSync(file)) {
    try {
      const plan = JSON.parse(readFileSync(file, "utf8")) as EtcdClusterPlan;
      if (Array.isArray(plan.members) && plan.members.length > 0) return plan;
    } catch (e) {
      throw new CliError(`${file}: ${(e as Error).message}; remove ${join(dataDir, "etcd")} to start a new etcd cluster`);
    }
  }
  const perZone = new Map<string, number>();
  const picks = Array.from({ length: ETCD_MEMBERS }, (_, i) => zones[i % zones.length]!);
  for (const z of picks) perZone.set(z, (perZone.get(z) ?? 0) + 1);
  const seen = new Map<string, number>();
  const members: EtcdMember[] = [];
  for (const zone of picks) {
    const n = seen.get(zone) ?? 0;
    seen.set(zone, n + 1);
    members.push({ name: perZone.get(zone)! > 1 ? `etcd-${zone}-${n}` : `etcd-${zone}`, zone, clientPort: await freePort(), peerPort: await freePort() });
  }
  const plan = { token: `kubelab-${randomBytes(6).toString("hex")}`, members };
  mkdirSync(join(dataDir, "etcd"), { recursive: true });
  writeFileSync(file, JSON.stringify(plan, null, 2) + "\n");
  return plan;
}

export function clientURL(m: EtcdMember): string {
  return `http://127.0.0.1:${m.clientPort}`;
}

/** The apiserver's --storage for the cluster: every member's client address. */
export function etcdClusterStorageURL(plan: EtcdClusterPlan): string {
  return `etcd://${plan.members.map((m) => `127.0.0.1:${m.clientPort}`).join(",")}`;
}

/** The supervisor's spec of each member (restarted on the same data dir and ports when it dies). */
export function etcdMemberSpecs(plan: EtcdClusterPlan, dataDir: string, binary: string): ComponentSpec[] {
  const initialCluster = plan.members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(",");
  return plan.members.map((m) => {
    const dir = join(dataDir, "etcd", m.name);
    return {
      name: m.name,
      zone: m.zone,
      command: binary,
      healthPort: m.clientPort,
      healthPath: "/health",
      logFile: join(dataDir, "logs", `${m.name}.log`),
      args: [
        "--name", m.name,
        "--data-dir", dir,
        "--listen-client-urls", clientURL(m),
        "--advertise-client-urls", clientURL(m),
        "--listen-peer-urls", `http://127.0.0.1:${m.peerPort}`,
        "--initial-advertise-peer-urls", `http://127.0.0.1:${m.peerPort}`,
        "--initial-cluster", initialCluster,
        // Ignored once the member has data: a restart rejoins the cluster it belongs to.
        "--initial-cluster-state", "new",
        "--initial-cluster-token", plan.token,
        "--experimental-watch-progress-notify-interval", ETCD_PROGRESS_NOTIFY_INTERVAL,
        "--heartbeat-interval", "100",
        "--election-timeout", "1000",
        "--log-level", "warn",
        "--logger", "zap",
      ],
    };
  });
}

/** What etcd's JSON gateway says of a member: its id, the leader's id, the raft term. */
export async function memberStatus(m: EtcdMember, timeoutMs = 1000): Promise<{ memberId: string; leader: string; raftTerm: string } | undefined> {
  try {
    const res = await fetch(`${clientURL(m)}/v3/maintenance/status`, { method: "POST", body: "{}", signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return undefined;
    const b = (await res.json()) as { header?: { member_id?: string }; leader?: string; raftTerm?: string };
    if (!b.header?.member_id || !b.leader) return undefined;
    return { memberId: b.header.member_id, leader: b.leader, raftTerm: b.raftTerm ?? "" };
  } catch {
    return undefined;
  }
}

/** The member that leads now, as the members that answer say (undefined without a quorum's leader). */
export async function etcdLeader(plan: EtcdClusterPlan): Promise<EtcdMember | undefined> {
  const st = await Promise.all(plan.members.map((m) => memberStatus(m)));
  for (const [i, s] of st.entries()) if (s && s.leader === s.memberId) return plan.members[i];
  return undefined;
}

/** Waits until a quorum answers reads through the gateway (a linearizable range needs the leader). */
export async function waitEtcdQuorum(plan: EtcdClusterPlan, timeoutMs: number, stopping: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline && !stopping()) {
    for (const m of plan.members) {
      try {
        const res = await fetch(`${clientURL(m)}/v3/kv/range`, { method: "POST", body: JSON.stringify({ key: Buffer.from("health").toString("base64") }), signal: AbortSignal.timeout(1000) });
        if (res.ok) return;
        last = `${m.name}: HTTP ${res.status}`;
      } catch (e) {
        last = `${m.name}: ${(e as Error).message}`;
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  if (!stopping()) throw new Error(`the etcd cluster did not form within ${timeoutMs / 1000}s (${last}); see the etcd-* logs`);
}
