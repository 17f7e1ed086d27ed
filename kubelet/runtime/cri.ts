// The containerd runtime: kubelab's Runtime contract (types.ts) mapped 1:1 onto CRI v1 gRPC calls
// (proto/cri/api.proto, generated into proto/gen/cri/api.ts) over the runtime's unix socket, as the
// kubelet's remote runtime service does (k8s.io/cri-client pkg/remote_runtime.go).
//
// Conventions of the mapping:
//  * every request is built with X.fromPartial() (ts-proto's encode() needs every scalar set);
//  * CRI int64 fields are decimal strings (forceLong=string); times are converted ns -> ms;
//  * every failure rejects with RuntimeError(grpcCode, "rpc error: code = X desc = ...") like the Go
//    client's status errors; NOT_FOUND from Stop*/Remove* is success (CRI requires idempotence);
//  * the security context defaults are the kubelet's for a v1 pod: network and IPC namespaces of the
//    pod, a PID namespace per container (shareProcessNamespace: false).

import { ChannelCredentials, Client, Metadata, status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import {
  ContainerState as CriContainerState,
  ContainerConfig as CriContainerConfig,
  ImageServiceService,
  NamespaceMode,
  PodSandboxConfig as CriPodSandboxConfig,
  PodSandboxState as CriPodSandboxState,
  Protocol as CriProtocol,
  RuntimeServiceService,
  type Container as CriContainer,
  type PodSandbox as CriPodSandbox,
  type PodSandboxMetadata as CriPodSandboxMetadata,
  ContainerStatusRequest,
  CreateContainerRequest,
  ExecSyncRequest,
  ImageStatusRequest,
  ListContainersRequest,
  ListPodSandboxRequest,
  PodSandboxStatusRequest,
  PullImageRequest,
  RemoveContainerRequest,
  RemovePodSandboxRequest,
  RunPodSandboxRequest,
  StartContainerRequest,
  StopContainerRequest,
  StopPodSandboxRequest,
  VersionRequest,
} from "../../proto/gen/cri/api.ts";
import {
  GRPC_NOT_FOUND,
  RuntimeError,
  type Container,
  type ContainerConfig,
  type ContainerFilter,
  type ContainerState,
  type ContainerStatus,
  type ExecSyncResponse,
  type PodSandbox,
  type PodSandboxConfig,
  type PodSandboxFilter,
  type PodSandboxMetadata,
  type PodSandboxState,
  type PodSandboxStatus,
  type Runtime,
} from "./types.ts";

/** The CRI API version the kubelet announces in VersionRequest. */
export const CRI_API_VERSION = "v1";

/** The kubelet's default --runtime-request-timeout. */
const DEFAULT_TIMEOUT_MS = 120_000;
/** ExecSync output may be 16 MiB per stream (CRI caps it there). */
const MAX_MESSAGE_BYTES = 40 * 1024 * 1024;

/** What a generated service definition gives us for one unary RPC. */
interface UnaryMethod<Req, Res> {
  path: string;
  requestSerialize: (value: Req) => Buffer;
  responseDeserialize: (value: Buffer) => Res;
}

export interface CriConnectOptions {
  /** Deadline of each request (default 2 min, the kubelet's) and of the initial connection. */
  timeoutMs?: number;
  /**
   * Let PullImage reach remote registries. Off by default: kubelab never sends packets off this
   * machine, so only images on a localhost registry (`localhost/...`, `127.0.0.1:5000/...`) are
   * forwarded to the runtime; anything else is rejected with NOT_FOUND without a network call.
   */
  allowRemotePull?: boolean;
}

/** `unix:///run/x.sock` or `/run/x.sock` → the gRPC target. */
export function criTarget(endpoint: string): string {
  if (endpoint.startsWith("unix://")) return endpoint;
  if (endpoint.startsWith("/")) return `unix://${endpoint}`;
  throw new RuntimeError(GrpcStatus.INVALID_ARGUMENT, `unsupported CRI endpoint ${JSON.stringify(endpoint)}: want unix:///path or /path`);
}

export class CriRuntime implements Runtime {
  private closed = false;

  private constructor(
    private readonly client: Client,
    private readonly timeoutMs: number,
    private readonly allowRemotePull: boolean,
  ) {}

  /** Connects to a CRI socket and checks it answers Version; rejects with a RuntimeError otherwise. */
  static async connect(endpoint: string, opts: CriConnectOptions = {}): Promise<CriRuntime> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const client = new Client(criTarget(endpoint), ChannelCredentials.createInsecure(), {
      "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
      "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
    });
    try {
      await new Promise<void>((resolve, reject) =>
        client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve())),
      );
    } catch (e) {
      client.close();
      throw new RuntimeError(GrpcStatus.UNAVAILABLE, `connecting to CRI endpoint ${endpoint}: ${(e as Error).message}`, { cause: e });
    }
    const rt = new CriRuntime(client, timeoutMs, opts.allowRemotePull ?? false);
    try {
      await rt.version();
    } catch (e) {
      client.close();
      throw e;
    }
    return rt;
  }

  private unary<Req, Res>(method: UnaryMethod<Req, Res>, request: Req, timeoutMs = this.timeoutMs): Promise<Res> {
    if (this.closed) return Promise.reject(new RuntimeError(GrpcStatus.CANCELLED, `rpc error: ${method.path} on a closed CRI client`));
    return new Promise<Res>((resolve, reject) => {
      this.client.makeUnaryRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        request,
        new Metadata(),
        { deadline: Date.now() + timeoutMs },
        (err: ServiceError | null, res?: Res) => {
          if (err) reject(toRuntimeError(err));
          else if (res === undefined) reject(new RuntimeError(GrpcStatus.INTERNAL, `rpc error: ${method.path} returned no response`));
          else resolve(res);
        },
      );
    });
  }

  /** Runs an idempotent teardown call: NOT_FOUND means it is already gone. */
  private async idempotent<Req, Res>(method: UnaryMethod<Req, Res>, request: Req): Promise<void> {
    try {
      await this.unary(method, request);
    } catch (e) {
      if (e instanceof RuntimeError && e.code === GRPC_NOT_FOUND) return;
      throw e;
    }
  }

  async version(): Promise<{ runtimeName: string; runtimeVersion: string; runtimeApiVersion: string }> {
    const r = await this.unary(RuntimeServiceService.version, VersionRequest.fromPartial({ version: CRI_API_VERSION }));
    return { runtimeName: r.runtimeName, runtimeVersion: r.runtimeVersion, runtimeApiVersion: r.runtimeApiVersion };
  }

  async runPodSandbox(config: PodSandboxConfig): Promise<string> {
    const r = await this.unary(RuntimeServiceService.runPodSandbox, RunPodSandboxRequest.fromPartial({ config: toCriSandboxConfig(config) }));
    return r.podSandboxId;
  }

  async stopPodSandbox(id: string): Promise<void> {
    await this.idempotent(RuntimeServiceService.stopPodSandbox, StopPodSandboxRequest.fromPartial({ podSandboxId: id }));
  }

  async removePodSandbox(id: string): Promise<void> {
    await this.idempotent(RuntimeServiceService.removePodSandbox, RemovePodSandboxRequest.fromPartial({ podSandboxId: id }));
  }

  async podSandboxStatus(id: string): Promise<PodSandboxStatus> {
    const r = await this.unary(RuntimeServiceService.podSandboxStatus, PodSandboxStatusRequest.fromPartial({ podSandboxId: id }));
    const s = r.status;
    if (!s) throw new RuntimeError(GRPC_NOT_FOUND, `rpc error: code = NotFound desc = no status for sandbox ${id}`);
    return { ...fromCriSandbox(s), ip: s.network?.ip ?? "" };
  }

  async listPodSandbox(filter?: PodSandboxFilter): Promise<PodSandbox[]> {
    const r = await this.unary(
      RuntimeServiceService.listPodSandbox,
      ListPodSandboxRequest.fromPartial({
        filter: filter
          ? {
              state: filter.state ? { state: CriPodSandboxState[filter.state] } : undefined,
              labelSelector: filter.labelSelector ?? {},
            }
          : undefined,
      }),
    );
    return r.items.map(fromCriSandbox);
  }

  async createContainer(podSandboxId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig): Promise<string> {
    const r = await this.unary(
      RuntimeServiceService.createContainer,
      CreateContainerRequest.fromPartial({
        podSandboxId,
        config: toCriContainerConfig(config),
        sandboxConfig: toCriSandboxConfig(sandboxConfig),
      }),
    );
    return r.containerId;
  }

  async startContainer(id: string): Promise<void> {
    await this.unary(RuntimeServiceService.startContainer, StartContainerRequest.fromPartial({ containerId: id }));
  }

  async stopContainer(id: string, timeoutSeconds: number): Promise<void> {
    const timeout = Math.max(0, Math.ceil(timeoutSeconds));
    // The runtime waits `timeout` s before SIGKILL; give the RPC that long on top of the usual deadline.
    try {
      await this.unary(
        RuntimeServiceService.stopContainer,
        StopContainerRequest.fromPartial({ containerId: id, timeout: String(timeout) }),
        this.timeoutMs + timeout * 1000,
      );
    } catch (e) {
      if (e instanceof RuntimeError && e.code === GRPC_NOT_FOUND) return;
      throw e;
    }
  }

  async removeContainer(id: string): Promise<void> {
    await this.idempotent(RuntimeServiceService.removeContainer, RemoveContainerRequest.fromPartial({ containerId: id }));
  }

  async listContainers(filter?: ContainerFilter): Promise<Container[]> {
    const r = await this.unary(
      RuntimeServiceService.listContainers,
      ListContainersRequest.fromPartial({
        filter: filter
          ? {
              podSandboxId: filter.podSandboxId ?? "",
              state: filter.state ? { state: CriContainerState[filter.state] } : undefined,
              labelSelector: filter.labelSelector ?? {},
            }
          : undefined,
      }),
    );
    return r.containers.map(fromCriContainer);
  }

  async containerStatus(id: string): Promise<ContainerStatus> {
    // CRI's ContainerStatus has no sandbox id: ask ListContainers (filtered by id) for it alongside.
    const [r, listed] = await Promise.all([
      this.unary(RuntimeServiceService.containerStatus, ContainerStatusRequest.fromPartial({ containerId: id })),
      this.unary(RuntimeServiceService.listContainers, ListContainersRequest.fromPartial({ filter: { id } })).catch(() => undefined),
    ]);
    const s = r.status;
    if (!s) throw new RuntimeError(GRPC_NOT_FOUND, `rpc error: code = NotFound desc = no status for container ${id}`);
    return {
      id: s.id,
      podSandboxId: listed?.containers.find((c) => c.id === s.id)?.podSandboxId ?? "",
      metadata: { name: s.metadata?.name ?? "", attempt: s.metadata?.attempt ?? 0 },
      image: s.image?.image ?? "",
      imageRef: s.imageRef,
      state: containerState(s.state),
      createdAt: nsToMs(s.createdAt),
      labels: { ...s.labels },
      annotations: { ...s.annotations },
      startedAt: nsToMs(s.startedAt),
      finishedAt: nsToMs(s.finishedAt),
      exitCode: s.exitCode,
      reason: s.reason,
      message: s.message,
      logPath: s.logPath,
    };
  }

  async execSync(id: string, cmd: string[], timeoutSeconds: number): Promise<ExecSyncResponse> {
    const timeout = Math.max(0, Math.ceil(timeoutSeconds));
    // The runtime enforces `timeout` (DEADLINE_EXCEEDED); our deadline is a backstop a little later.
    const deadlineMs = timeout > 0 ? timeout * 1000 + 5_000 : this.timeoutMs;
    const r = await this.unary(
      RuntimeServiceService.execSync,
      ExecSyncRequest.fromPartial({ containerId: id, cmd, timeout: String(timeout) }),
      deadlineMs,
    );
    return { stdout: Buffer.from(r.stdout), stderr: Buffer.from(r.stderr), exitCode: r.exitCode };
  }

  async imageStatus(image: string): Promise<{ id: string; size: number } | undefined> {
    const r = await this.unary(ImageServiceService.imageStatus, ImageStatusRequest.fromPartial({ image: { image } }));
    if (!r.image) return undefined;
    return { id: r.image.id, size: Number(r.image.size) };
  }

  async pullImage(image: string): Promise<string> {
    if (!this.allowRemotePull && !isLocalRegistryImage(image)) {
      throw new RuntimeError(
        GRPC_NOT_FOUND,
        `rpc error: code = NotFound desc = failed to pull image ${JSON.stringify(image)}: pulling from remote registries is disabled in kubelab (only localhost/... images, imported by deploy/images/build.sh)`,
      );
    }
    const r = await this.unary(ImageServiceService.pullImage, PullImageRequest.fromPartial({ image: { image } }));
    return r.imageRef;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.client.close();
  }
}

// ---- mapping ----

/** gRPC ServiceError → RuntimeError with the Go client's message shape. */
export function toRuntimeError(err: ServiceError): RuntimeError {
  const code = typeof err.code === "number" ? err.code : GrpcStatus.UNKNOWN;
  const name = GrpcStatus[code] ?? "Unknown";
  return new RuntimeError(code, `rpc error: code = ${camel(name)} desc = ${err.details || err.message}`, { cause: err });
}

function camel(s: string): string {
  return s
    .toLowerCase()
    .split("_")
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join("");
}

/** CRI nanoseconds (int64 as a decimal string) → milliseconds since the epoch; 0 stays 0. */
export function nsToMs(ns: string): number {
  if (!ns || ns === "0") return 0;
  return Number(BigInt(ns) / 1_000_000n);
}

/** Whether an image reference names a registry on this machine (never contacts the network). */
export function isLocalRegistryImage(image: string): boolean {
  const slash = image.indexOf("/");
  if (slash < 0) return false; // "busybox" means docker.io/library/busybox
  const domain = image.slice(0, slash);
  if (!(domain.includes(".") || domain.includes(":") || domain === "localhost")) return false; // docker.io/<user>/...
  const host = domain.startsWith("[") ? domain.slice(0, domain.indexOf("]") + 1) : domain.split(":")[0];
  return host === "localhost" || /^127\.\d+\.\d+\.\d+$/.test(host) || host === "[::1]";
}

const protocols: Record<"TCP" | "UDP" | "SCTP", CriProtocol> = { TCP: CriProtocol.TCP, UDP: CriProtocol.UDP, SCTP: CriProtocol.SCTP };

/** The kubelet's namespace defaults for a v1 pod (kuberuntime namespacesForPod). */
const podNamespaces = { network: NamespaceMode.POD, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD, targetId: "" };

export function toCriSandboxConfig(c: PodSandboxConfig): CriPodSandboxConfig {
  return CriPodSandboxConfig.fromPartial({
    metadata: { name: c.metadata.name, namespace: c.metadata.namespace, uid: c.metadata.uid, attempt: c.metadata.attempt },
    hostname: c.hostname,
    logDirectory: c.logDirectory,
    dnsConfig: c.dnsConfig ? { servers: c.dnsConfig.servers, searches: c.dnsConfig.searches, options: c.dnsConfig.options } : undefined,
    portMappings: c.portMappings.map((p) => ({
      protocol: protocols[p.protocol],
      containerPort: p.containerPort,
      hostPort: p.hostPort ?? 0,
      hostIp: p.hostIp ?? "",
    })),
    labels: c.labels,
    annotations: c.annotations,
    linux: {
      cgroupParent: c.cgroupParent ?? "",
      securityContext: { namespaceOptions: podNamespaces },
    },
  });
}

export function toCriContainerConfig(c: ContainerConfig): CriContainerConfig {
  return CriContainerConfig.fromPartial({
    metadata: { name: c.metadata.name, attempt: c.metadata.attempt },
    image: { image: c.image },
    command: c.command,
    args: c.args,
    workingDir: c.workingDir ?? "",
    envs: c.envs.map((e) => ({ key: e.key, value: e.value })),
    mounts: c.mounts.map((m) => ({ containerPath: m.containerPath, hostPath: m.hostPath, readonly: m.readonly })),
    labels: c.labels,
    annotations: c.annotations,
    logPath: c.logPath,
    stdin: c.stdin ?? false,
    tty: c.tty ?? false,
    linux: {
      resources: {
        cpuShares: String(Math.trunc(c.resources.cpuShares)),
        cpuQuota: String(Math.trunc(c.resources.cpuQuota)),
        cpuPeriod: String(Math.trunc(c.resources.cpuPeriod)),
        memoryLimitInBytes: String(Math.trunc(c.resources.memoryLimitInBytes)),
      },
      securityContext: { namespaceOptions: podNamespaces },
    },
  });
}

function fromCriSandboxMetadata(m: CriPodSandboxMetadata | undefined): PodSandboxMetadata {
  return { name: m?.name ?? "", namespace: m?.namespace ?? "", uid: m?.uid ?? "", attempt: m?.attempt ?? 0 };
}

/** CRI PodSandbox (or the same fields of a PodSandboxStatus) → ours. */
function fromCriSandbox(s: Pick<CriPodSandbox, "id" | "metadata" | "state" | "createdAt" | "labels" | "annotations">): PodSandbox {
  return {
    id: s.id,
    metadata: fromCriSandboxMetadata(s.metadata),
    state: sandboxState(s.state),
    createdAt: nsToMs(s.createdAt),
    labels: { ...s.labels },
    annotations: { ...s.annotations },
  };
}

function fromCriContainer(c: CriContainer): Container {
  return {
    id: c.id,
    podSandboxId: c.podSandboxId,
    metadata: { name: c.metadata?.name ?? "", attempt: c.metadata?.attempt ?? 0 },
    image: c.image?.image ?? "",
    imageRef: c.imageRef,
    state: containerState(c.state),
    createdAt: nsToMs(c.createdAt),
    labels: { ...c.labels },
    annotations: { ...c.annotations },
  };
}

function sandboxState(s: CriPodSandboxState): PodSandboxState {
  return s === CriPodSandboxState.SANDBOX_READY ? "SANDBOX_READY" : "SANDBOX_NOTREADY";
}

function containerState(s: CriContainerState): ContainerState {
  switch (s) {
    case CriContainerState.CONTAINER_CREATED:
      return "CONTAINER_CREATED";
    case CriContainerState.CONTAINER_RUNNING:
      return "CONTAINER_RUNNING";
    case CriContainerState.CONTAINER_EXITED:
      return "CONTAINER_EXITED";
    default:
      return "CONTAINER_UNKNOWN";
  }
}
