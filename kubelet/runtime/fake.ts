// A scriptable in-memory Runtime for the kubelet's unit tests: containers run until a test makes
// them exit; images, pull failures and exec results are set by the test; every call is recorded.

import type { Clock } from "../../client/index.ts";
import {
  GRPC_NOT_FOUND,
  GRPC_UNKNOWN,
  RuntimeError,
  type Container,
  type ContainerConfig,
  type ContainerFilter,
  type ContainerStatus,
  type ExecSyncResponse,
  type PodSandbox,
  type PodSandboxConfig,
  type PodSandboxFilter,
  type PodSandboxStatus,
  type Runtime,
} from "./types.ts";

interface FakeSandbox extends PodSandboxStatus {
  config: PodSandboxConfig;
}

function matches(labels: Record<string, string>, selector?: Record<string, string>): boolean {
  return Object.entries(selector ?? {}).every(([k, v]) => labels[k] === v);
}

export class FakeRuntime implements Runtime {
  readonly sandboxes = new Map<string, FakeSandbox>();
  readonly containers = new Map<string, ContainerStatus>();
  /** Images present, by name → id. */
  readonly images = new Map<string, string>();
  /** Images whose pull fails. */
  readonly unpullable = new Set<string>();
  /** Method calls in order, e.g. "stopContainer c3 30". */
  readonly calls: string[] = [];
  /** Answers execSync; default exit 0. */
  exec: (containerId: string, cmd: string[]) => ExecSyncResponse = () => ({ stdout: Buffer.from(""), stderr: Buffer.from(""), exitCode: 0 });
  /** Called after a container starts (a test may make it exit at once). */
  onStart?: (c: ContainerStatus) => void;
  private seq = 0;
  private ipSeq = 1;

  constructor(
    private readonly clock: Pick<Clock, "now">,
    readonly runtimeName = "fake",
  ) {}

  async version(): Promise<{ runtimeName: string; runtimeVersion: string; runtimeApiVersion: string }> {
    return { runtimeName: this.runtimeName, runtimeVersion: "0.0.1", runtimeApiVersion: "v1" };
  }

  async runPodSandbox(config: PodSandboxConfig): Promise<string> {
    const id = `s${++this.seq}`;
    this.calls.push(`runPodSandbox ${config.metadata.name} ${config.metadata.attempt}`);
    this.sandboxes.set(id, {
      id,
      metadata: { ...config.metadata },
      state: "SANDBOX_READY",
      createdAt: this.clock.now(),
      labels: { ...config.labels },
      annotations: { ...config.annotations },
      ip: `127.0.100.${this.ipSeq++}`,
      config,
    });
    return id;
  }

  async stopPodSandbox(id: string): Promise<void> {
    this.calls.push(`stopPodSandbox ${id}`);
    const s = this.sandboxes.get(id);
    if (!s) return;
    for (const c of this.containers.values()) if (c.podSandboxId === id && c.state === "CONTAINER_RUNNING") this.exit(c.id, 137, "Error");
    s.state = "SANDBOX_NOTREADY";
  }

  async removePodSandbox(id: string): Promise<void> {
    this.calls.push(`removePodSandbox ${id}`);
    for (const c of [...this.containers.values()]) if (c.podSandboxId === id) this.containers.delete(c.id);
    this.sandboxes.delete(id);
  }

  async podSandboxStatus(id: string): Promise<PodSandboxStatus> {
    const s = this.sandboxes.get(id);
    if (!s) throw new RuntimeError(GRPC_NOT_FOUND, `sandbox ${id} not found`);
    const { config: _config, ...status } = s;
    return structuredClone(status);
  }

  async listPodSandbox(filter?: PodSandboxFilter): Promise<PodSandbox[]> {
    return [...this.sandboxes.values()]
      .filter((s) => (!filter?.state || s.state === filter.state) && matches(s.labels, filter?.labelSelector))
      .map(({ config: _c, ip: _ip, ...s }) => structuredClone(s));
  }

  async createContainer(podSandboxId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig): Promise<string> {
    if (!this.sandboxes.has(podSandboxId)) throw new RuntimeError(GRPC_NOT_FOUND, `sandbox ${podSandboxId} not found`);
    const imageRef = this.images.get(config.image);
    if (!imageRef) throw new RuntimeError(GRPC_NOT_FOUND, `image "${config.image}" not found`);
    const id = `c${++this.seq}`;
    this.calls.push(`createContainer ${config.metadata.name} ${config.metadata.attempt}`);
    this.containers.set(id, {
      id,
      podSandboxId,
      metadata: { ...config.metadata },
      image: config.image,
      imageRef,
      state: "CONTAINER_CREATED",
      createdAt: this.clock.now(),
      labels: { ...config.labels },
      annotations: { ...config.annotations },
      startedAt: 0,
      finishedAt: 0,
      exitCode: 0,
      reason: "",
      message: "",
      logPath: `${sandboxConfig.logDirectory}/${config.logPath}`,
    });
    this.configs.set(id, config);
    return id;
  }

  /** The config each container was created with. */
  readonly configs = new Map<string, ContainerConfig>();

  async startContainer(id: string): Promise<void> {
    const c = this.containers.get(id);
    if (!c) throw new RuntimeError(GRPC_NOT_FOUND, `container ${id} not found`);
    this.calls.push(`startContainer ${c.metadata.name}`);
    c.state = "CONTAINER_RUNNING";
    c.startedAt = this.clock.now();
    this.onStart?.(c);
  }

  async stopContainer(id: string, timeoutSeconds: number): Promise<void> {
    const c = this.containers.get(id);
    this.calls.push(`stopContainer ${c?.metadata.name ?? id} ${timeoutSeconds}`);
    if (c && c.state === "CONTAINER_RUNNING") this.exit(id, 143, "Error");
  }

  async removeContainer(id: string): Promise<void> {
    this.calls.push(`removeContainer ${id}`);
    this.containers.delete(id);
  }

  async listContainers(filter?: ContainerFilter): Promise<Container[]> {
    return [...this.containers.values()]
      .filter(
        (c) =>
          (!filter?.podSandboxId || c.podSandboxId === filter.podSandboxId) &&
          (!filter?.state || c.state === filter.state) &&
          matches(c.labels, filter?.labelSelector),
      )
      .map((c) => {
        const { startedAt: _s, finishedAt: _f, exitCode: _e, reason: _r, message: _m, logPath: _l, ...rest } = c;
        return structuredClone(rest);
      });
  }

  async containerStatus(id: string): Promise<ContainerStatus> {
    const c = this.containers.get(id);
    if (!c) throw new RuntimeError(GRPC_NOT_FOUND, `container ${id} not found`);
    this.calls.push(`containerStatus ${id}`);
    return structuredClone(c);
  }

  async execSync(id: string, cmd: string[], _timeoutSeconds: number): Promise<ExecSyncResponse> {
    const c = this.containers.get(id);
    if (!c || c.state !== "CONTAINER_RUNNING") throw new RuntimeError(GRPC_UNKNOWN, `container ${id} is not running`);
    return this.exec(id, cmd);
  }

  async imageStatus(image: string): Promise<{ id: string; size: number } | undefined> {
    const id = this.images.get(image);
    return id ? { id, size: 1 } : undefined;
  }

  async pullImage(image: string): Promise<string> {
    this.calls.push(`pullImage ${image}`);
    if (this.unpullable.has(image)) throw new RuntimeError(GRPC_UNKNOWN, `failed to resolve reference "${image}": not found`);
    const id = `sha256:${image.length.toString(16).padStart(8, "0")}`;
    this.images.set(image, id);
    return id;
  }

  async close(): Promise<void> {}

  // ---- scripting ----

  /** Makes a running container exit. */
  exit(id: string, exitCode: number, reason = exitCode === 0 ? "Completed" : "Error"): void {
    const c = this.containers.get(id);
    if (!c) throw new Error(`no container ${id}`);
    c.state = "CONTAINER_EXITED";
    c.exitCode = exitCode;
    c.reason = reason;
    c.finishedAt = this.clock.now();
  }

  /** The newest container with this name (optionally of this pod name). */
  latest(name: string, podName?: string): ContainerStatus | undefined {
    let best: ContainerStatus | undefined;
    for (const c of this.containers.values()) {
      if (c.metadata.name !== name) continue;
      if (podName && c.labels["io.kubernetes.pod.name"] !== podName) continue;
      if (!best || c.createdAt > best.createdAt || (c.createdAt === best.createdAt && Number(c.id.slice(1)) > Number(best.id.slice(1)))) best = c;
    }
    return best;
  }
}
