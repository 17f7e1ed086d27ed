// Lifecycle hooks (upstream's pkg/kubelet/lifecycle/handlers.go HandlerRunner): postStart and preStop
// handlers run as exec (in the container), httpGet (shared with the prober: local addresses only) or
// sleep (on the injected clock). A failure is returned as upstream's message; nothing throws.

import type { Container, LifecycleHandler, Pod } from "../api/core/v1.ts";
import type { Clock } from "../client/index.ts";
import { runHTTPGet } from "./prober.ts";
import { GRPC_DEADLINE_EXCEEDED, type Runtime } from "./runtime/types.ts";

/** format.Pod: `name_namespace(uid)`. */
function formatPod(pod: Readonly<Pod>): string {
  return `${pod.metadata.name}_${pod.metadata.namespace}(${pod.metadata.uid})`;
}

/** Go's %v of a []string: `[a b c]`. */
function goSlice(a: readonly string[]): string {
  return `[${a.join(" ")}]`;
}

export class HandlerRunner {
  constructor(
    private readonly runtime: Runtime,
    private readonly clock: Clock,
  ) {}

  /**
   * Runs one handler against a container; resolves to undefined on success or to the failure message
   * (as upstream's `msg`). `timeoutSeconds` bounds exec and httpGet (0: no exec timeout, as upstream's
   * postStart); `signal` cuts a sleep short.
   */
  async run(pod: Readonly<Pod>, container: Container, containerID: string, podIP: string, h: LifecycleHandler, timeoutSeconds: number, signal?: AbortSignal): Promise<string | undefined> {
    if (h.exec) {
      const cmd = h.exec.command ?? [];
      const fail = (err: string, output: string): string =>
        `Exec lifecycle hook (${goSlice(cmd)}) for Container "${container.name}" in Pod "${formatPod(pod)}" failed - error: ${err}, message: ${JSON.stringify(output)}`;
      try {
        const r = await this.runtime.execSync(containerID, cmd, timeoutSeconds);
        const output = Buffer.concat([r.stdout, r.stderr]).toString("utf8");
        if (r.exitCode === 0) return undefined;
        return fail(`command '${cmd.join(" ")}' exited with ${r.exitCode}: ${r.stderr.toString("utf8")}`, output);
      } catch (e) {
        if ((e as { code?: number }).code === GRPC_DEADLINE_EXCEEDED) return fail(`command '${cmd.join(" ")}' timed out`, "");
        return fail(e instanceof Error ? e.message : String(e), "");
      }
    }
    if (h.httpGet) {
      const r = await runHTTPGet(h.httpGet, container, podIP, timeoutSeconds > 0 ? timeoutSeconds : 30);
      if (r.result === "Success") return undefined;
      return `HTTP lifecycle hook (${h.httpGet.path ?? ""}) for Container "${container.name}" in Pod "${formatPod(pod)}" failed - error: ${r.output}`;
    }
    if (h.sleep) {
      await this.clock.sleep(Math.max(0, h.sleep.seconds) * 1000, signal);
      return undefined;
    }
    return `Cannot run handler: invalid handler: ${JSON.stringify(h)}`;
  }
}
