// Leader election on coordination.k8s.io/v1 Leases (client-go's leaderelection with LeaseLock):
// acquire or renew with optimistic concurrency on resourceVersion, step down when renewing fails
// for longer than the renew deadline, release on shutdown.

import type { Lease, LeaseSpec } from "../api/index.ts";
import { realClock } from "./clock.ts";
import { isConflict, isNotFound } from "./errors.ts";
import { defaultClientMetrics, type LeaderElectionMetrics } from "./metrics.ts";
import type { Client, Clock, Context } from "./types.ts";

export interface LeaderElectionOptions {
  client: Client;
  /** The Lease, e.g. kube-system/kube-controller-manager. */
  namespace: string;
  name: string;
  /** Unique per candidate process (hostname_uuid). */
  identity: string;
  /** How long a non-leader waits after the last observed change before taking over (15 s). */
  leaseDurationMs?: number;
  /** How long the leader keeps retrying a failed renew before stepping down (10 s; < leaseDurationMs). */
  renewDeadlineMs?: number;
  /** Between attempts to acquire or renew (2 s). */
  retryPeriodMs?: number;
  clock?: Clock;
  /** Called when this candidate becomes leader; ctx.signal aborts when it stops leading. Not awaited. */
  onStartedLeading(ctx: Context): void | Promise<void>;
  /** Called once leadership is lost or released. */
  onStoppedLeading(): void;
  /** Called when a (different) leader is observed, including ourselves. */
  onNewLeader?(identity: string): void;
  /** Clear the holder when ctx aborts while leading, so another candidate takes over at once (default true). */
  releaseOnCancel?: boolean;
  /** Where leader_election_master_status{name} goes; default the process-wide registry (client/metrics.ts). */
  metrics?: LeaderElectionMetrics;
}

/** metav1.MicroTime: RFC 3339 with microseconds, "2006-01-02T15:04:05.000000Z". */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/**
 * Campaigns until ctx aborts. While leading, renews every retry period; if no renew succeeds within
 * the renew deadline, leadership is lost: the leader ctx aborts, onStoppedLeading runs, and this
 * resolves (as client-go's Run returns; the process should exit or campaign again).
 */
export async function runLeaderElection(ctx: Context, opts: LeaderElectionOptions): Promise<void> {
  const le = new LeaderElector(opts);
  await le.run(ctx);
}

class LeaderElector {
  private readonly clock: Clock;
  private readonly leaseMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;
  private observed?: { spec: LeaseSpec; raw: string; at: number };
  private lastRenew = 0;
  private reportedLeader?: string;

  constructor(private readonly o: LeaderElectionOptions) {
    this.clock = o.clock ?? realClock;
    this.leaseMs = o.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = o.renewDeadlineMs ?? 10_000;
    this.retryMs = o.retryPeriodMs ?? 2_000;
  }

  private get leases() {
    return this.o.client.resource<Lease>("coordination.k8s.io", "leases");
  }

  async run(ctx: Context): Promise<void> {
    const log = ctx.log.child({ lease: `${this.o.namespace}/${this.o.name}`, identity: this.o.identity });
    // client-go reports only once leading; a candidate says 0 from the start here, so a standby is
    // visible as one (and "exactly one 1 per lease" is checkable across the candidates).
    const metrics = this.o.metrics ?? defaultClientMetrics();
    metrics.leaderOff(this.o.name);
    // Acquire.
    for (;;) {
      if (ctx.signal.aborted) return;
      if (await this.tryAcquireOrRenew(ctx)) break;
      await this.clock.sleep(this.retryMs, ctx.signal);
    }
    log.info("became leader");
    metrics.leaderOn(this.o.name);
    const leading = new AbortController();
    const onAbort = (): void => leading.abort();
    ctx.signal.addEventListener("abort", onAbort, { once: true });
    Promise.resolve()
      .then(() => this.o.onStartedLeading({ signal: leading.signal, log }))
      .catch((e: unknown) => log.error({ err: e }, "onStartedLeading failed"));
    // Renew.
    try {
      for (;;) {
        await this.clock.sleep(this.retryMs, ctx.signal);
        if (ctx.signal.aborted) break;
        if (await this.tryAcquireOrRenew(ctx)) continue;
        if (this.clock.now() - this.lastRenew >= this.renewDeadlineMs) {
          log.warn("failed to renew lease within the renew deadline; stepping down");
          break;
        }
      }
      if (ctx.signal.aborted && (this.o.releaseOnCancel ?? true)) await this.release().catch((e: unknown) => log.warn({ err: e }, "failed to release lease"));
    } finally {
      metrics.leaderOff(this.o.name);
      ctx.signal.removeEventListener("abort", onAbort);
      leading.abort();
      this.o.onStoppedLeading();
    }
  }

  /** One attempt: create, take over or renew the lease. True when we hold it afterwards. */
  private async tryAcquireOrRenew(ctx: Context): Promise<boolean> {
    const now = this.clock.now();
    let lease: Lease;
    try {
      lease = await this.leases.get(this.o.namespace, this.o.name);
    } catch (e) {
      if (!isNotFound(e)) {
        ctx.log.warn({ err: e }, "failed to get lease");
        return false;
      }
      try {
        const created = await this.leases.create(this.o.namespace, {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name: this.o.name, namespace: this.o.namespace },
          spec: this.spec(now, now, 0),
        });
        this.observe(created, now);
        this.lastRenew = now;
        return true;
      } catch (err) {
        ctx.log.info({ err }, "failed to create lease");
        return false;
      }
    }
    this.observe(lease, now);
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? "";
    const ours = holder === this.o.identity;
    // Expiry is judged by when *we* last saw the record change, not by the holder's timestamps (clock skew).
    if (holder && !ours && this.observed!.at + (spec.leaseDurationSeconds ?? this.leaseMs / 1000) * 1000 > now) return false;
    const transitions = spec.leaseTransitions ?? 0;
    const next: Lease = {
      ...lease,
      spec: ours ? this.spec(spec.acquireTime ? Date.parse(spec.acquireTime) : now, now, transitions) : this.spec(now, now, holder ? transitions + 1 : transitions),
    };
    if (ours && spec.acquireTime) next.spec!.acquireTime = spec.acquireTime;
    try {
      const updated = await this.leases.update(next);
      this.observe(updated, now);
      this.lastRenew = now;
      return true;
    } catch (e) {
      if (!isConflict(e)) ctx.log.warn({ err: e }, "failed to update lease");
      return false;
    }
  }

  private async release(): Promise<void> {
    const lease = await this.leases.get(this.o.namespace, this.o.name);
    if (lease.spec?.holderIdentity !== this.o.identity) return;
    const now = this.clock.now();
    const spec: LeaseSpec = { ...lease.spec, leaseDurationSeconds: 1, renewTime: microTime(now), acquireTime: microTime(now) };
    delete spec.holderIdentity;
    await this.leases.update({ ...lease, spec });
  }

  private spec(acquiredMs: number, renewedMs: number, transitions: number): LeaseSpec {
    return {
      holderIdentity: this.o.identity,
      leaseDurationSeconds: Math.ceil(this.leaseMs / 1000),
      acquireTime: microTime(acquiredMs),
      renewTime: microTime(renewedMs),
      leaseTransitions: transitions,
    };
  }

  private observe(lease: Lease, now: number): void {
    const raw = JSON.stringify(lease.spec ?? {});
    if (this.observed?.raw !== raw) this.observed = { spec: lease.spec ?? {}, raw, at: now };
    const holder = lease.spec?.holderIdentity;
    if (holder && holder !== this.reportedLeader) {
      this.reportedLeader = holder;
      this.o.onNewLeader?.(holder);
    }
  }
}
