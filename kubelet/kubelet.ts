// The Kubelet: one node agent composed of the node side (registration, lease, node status: node.ts),
// the logs server (server.ts) and the pod side (sync.ts: pod workers, PLEG, probes, status, volumes).

import { join } from "node:path";
import { realClock, type Clock, type Context, type Logger } from "../client/index.ts";
import { registerNode, runNodeLease, runNodeStatus } from "./node.ts";
import { cgroupParentFor, removePodCgroups } from "./cgroups.ts";
import { trackNode, type RuntimeCounts } from "./metrics.ts";
import { startKubeletServer } from "./server.ts";
import { PodSyncer } from "./sync.ts";
import type { KubeletOptions, NodeAgent } from "./types.ts";

/** How often the runtime is asked for its version (its health), and how stale an answer may be. */
const RUNTIME_CHECK_MS = 5_000;
const RUNTIME_STALE_MS = 30_000;

export class Kubelet implements NodeAgent {
  readonly nodeName: string;
  readonly pods: PodSyncer;
  private readonly clock: Clock;
  private runtimeOKAt = 0;
  private runtimeName = "";

  constructor(private readonly opts: KubeletOptions) {
    this.nodeName = opts.nodeName;
    this.clock = opts.clock ?? realClock;
    this.pods = new PodSyncer({
      ...opts,
      log: opts.log,
      cgroupParent: (qos, uid) => (this.runtimeName === "containerd" ? cgroupParentFor(qos, uid) : undefined),
      onPodRemoved: async (uid) => {
        if (this.runtimeName === "containerd") await removePodCgroups(uid).catch(() => undefined);
      },
    });
    // kubelet_pod_start_duration_seconds: a sync that leaves the kubelet's own status Running.
    this.pods.workers.podRunning = (uid) => this.pods.statusManager.getPodStatus(uid)?.phase === "Running";
  }

  /** The last PLEG relist's running pods and containers (kubelet/metrics.ts). */
  runtimeCounts(): RuntimeCounts {
    return this.pods.pleg.runtimeCounts();
  }

  podCount(): number {
    return this.pods.podCount();
  }

  /** Ready when the runtime answered recently and the PLEG relists (upstream's runtime and PLEG health checks). */
  readiness(): { ready: boolean; message: string } {
    const now = this.clock.now();
    if (!this.runtimeOKAt || now - this.runtimeOKAt > RUNTIME_STALE_MS) return { ready: false, message: "container runtime is down" };
    const pleg = this.pods.pleg.healthy();
    if (!pleg.ok) return { ready: false, message: `PLEG is not healthy: ${pleg.message}` };
    return { ready: true, message: "kubelet is posting ready status" };
  }

  async run(ctx: Context): Promise<void> {
    const log = ctx.log.child({ node: this.nodeName });
    const c: Context = { signal: ctx.signal, log };
    await registerNode(c, this.opts);
    await this.checkRuntimeOnce(c);
    if (ctx.signal.aborted) return;
    const untrack = trackNode(this); // kubelet_node_name and the running gauges count this node while it runs
    try {
      await this.runRegistered(c, log);
    } finally {
      untrack();
    }
  }

  private async runRegistered(c: Context, log: Logger): Promise<void> {
    const server = await startKubeletServer({
      host: this.opts.nodeIP,
      port: this.opts.port,
      logsRoot: join(this.opts.rootDir, "logs"),
      podUID: (ns, name) => this.pods.podUID(ns, name),
      // `logs -f` ends once the container has exited (the files alone cannot tell).
      containerRunning: (ns, name, container) => {
        const pod = this.opts.pods.lister.get(`${ns}/${name}`);
        const st = [...(pod?.status?.containerStatuses ?? []), ...(pod?.status?.initContainerStatuses ?? [])].find((s) => s.name === container);
        return st ? st.state?.running !== undefined : undefined;
      },
      // Non-interactive `kubectl exec`: ExecSync in the pod's newest running container of that name.
      exec: async (ns, name, container, cmd, timeoutSeconds) => {
        const uid = this.pods.podUID(ns, name);
        if (!uid) return undefined;
        const rt = await this.pods.pleg.podStatus(uid);
        const c = rt.containers.find((s) => s.metadata.name === container && s.state === "CONTAINER_RUNNING");
        return c ? this.opts.runtime.execSync(c.id, cmd, timeoutSeconds) : undefined;
      },
      log,
      clock: this.opts.clock,
    });
    try {
      await Promise.all([
        this.checkRuntime(c),
        runNodeLease(c, this.opts),
        runNodeStatus(c, this.opts, () => this.readiness()),
        this.pods.run(c),
      ]);
    } finally {
      await server.close();
    }
  }

  private async checkRuntime(ctx: Context): Promise<void> {
    while (!ctx.signal.aborted) {
      await this.clock.sleep(RUNTIME_CHECK_MS, ctx.signal);
      if (!ctx.signal.aborted) await this.checkRuntimeOnce(ctx);
    }
  }

  private async checkRuntimeOnce(ctx: Context): Promise<void> {
    try {
      const v = await this.opts.runtime.version();
      this.runtimeName = v.runtimeName;
      this.runtimeOKAt = this.clock.now();
    } catch (e) {
      ctx.log.warn({ err: e }, "container runtime did not answer");
    }
  }
}
