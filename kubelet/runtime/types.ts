// The container runtime contract the kubelet programs against, shaped like CRI v1's RuntimeService and
// ImageService (k8s.io/cri-api/pkg/apis/runtime/v1): the containerd client (cri.ts) maps it 1:1 onto
// gRPC calls; the simulated runtime (sim.ts) implements it in process. Names follow CRI so a reader
// can hold this file next to api.proto.
//
// Times are milliseconds since the epoch (CRI uses nanoseconds; the containerd client converts).
// Ids are opaque strings chosen by the runtime.

/** The error every runtime method rejects with: `code` is the gRPC status code (5 NOT_FOUND, 4 DEADLINE_EXCEEDED, 12 UNIMPLEMENTED, 2 UNKNOWN...). */
export class RuntimeError extends Error {
  override readonly name = "RuntimeError";
  constructor(
    readonly code: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
export const GRPC_NOT_FOUND = 5;
export const GRPC_DEADLINE_EXCEEDED = 4;
export const GRPC_UNIMPLEMENTED = 12;
export const GRPC_UNKNOWN = 2;
export function isRuntimeNotFound(e: unknown): boolean {
  return (e as { name?: string; code?: number })?.name === "RuntimeError" && (e as { code: number }).code === GRPC_NOT_FOUND;
}

/** CRI PodSandboxMetadata / ContainerMetadata. */
export interface PodSandboxMetadata {
  name: string;
  namespace: string;
  uid: string;
  attempt: number;
}

export interface PortMapping {
  protocol: "TCP" | "UDP" | "SCTP";
  containerPort: number;
  hostPort?: number;
  hostIp?: string;
}

/** CRI PodSandboxConfig (the fields we use). */
export interface PodSandboxConfig {
  metadata: PodSandboxMetadata;
  hostname: string;
  /** Absolute directory for this pod's container logs; the kubelet creates it before RunPodSandbox. */
  logDirectory: string;
  dnsConfig?: { servers: string[]; searches: string[]; options: string[] };
  portMappings: PortMapping[];
  /** Labels on the sandbox; the kubelet sets `io.kubernetes.pod.{name,namespace,uid}` and `kubelab.io/node`. */
  labels: Record<string, string>;
  /** The pod's annotations (the simulated runtime reads `sim.kubelab.io/*` from here). */
  annotations: Record<string, string>;
  /** linux.cgroup_parent, e.g. `/kubepods/besteffort/pod<uid>`. */
  cgroupParent?: string;
}

export type PodSandboxState = "SANDBOX_READY" | "SANDBOX_NOTREADY";

export interface PodSandbox {
  id: string;
  metadata: PodSandboxMetadata;
  state: PodSandboxState;
  createdAt: number;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface PodSandboxStatus extends PodSandbox {
  /** The pod IP (CRI status.network.ip); "" when the sandbox has no network. */
  ip: string;
}

export interface Mount {
  containerPath: string;
  hostPath: string;
  readonly: boolean;
}

/** CRI ContainerConfig (the fields we use). */
export interface ContainerConfig {
  metadata: { name: string; attempt: number };
  image: string;
  /** CRI `command` is the pod's `command` (entrypoint override); `args` the pod's `args`. */
  command: string[];
  args: string[];
  workingDir?: string;
  envs: { key: string; value: string }[];
  mounts: Mount[];
  /** Relative to the sandbox's logDirectory: `<container>/<attempt>.log` (the kubelet's layout). */
  logPath: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Linux resources from the container's limits/requests (0 = unset). */
  resources: { cpuShares: number; cpuQuota: number; cpuPeriod: number; memoryLimitInBytes: number };
  /** Container ports (the simulated runtime serves an HTTP echo on each). */
  ports: { name?: string; containerPort: number; protocol: "TCP" | "UDP" | "SCTP" }[];
  stdin?: boolean;
  tty?: boolean;
}

export type ContainerState = "CONTAINER_CREATED" | "CONTAINER_RUNNING" | "CONTAINER_EXITED" | "CONTAINER_UNKNOWN";

export interface Container {
  id: string;
  podSandboxId: string;
  metadata: { name: string; attempt: number };
  image: string;
  imageRef: string;
  state: ContainerState;
  createdAt: number;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface ContainerStatus extends Container {
  /** 0 when not started / not finished. */
  startedAt: number;
  finishedAt: number;
  exitCode: number;
  /** For exited containers: "Completed", "Error", "OOMKilled", "StartError", ... */
  reason: string;
  message: string;
  /** Absolute path of the container's CRI log file. */
  logPath: string;
}

export interface ExecSyncResponse {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
}

export interface ContainerFilter {
  podSandboxId?: string;
  state?: ContainerState;
  labelSelector?: Record<string, string>;
}

export interface PodSandboxFilter {
  state?: PodSandboxState;
  labelSelector?: Record<string, string>;
}

/**
 * CRI RuntimeService + ImageService. Every method rejects with a RuntimeError. Stop/Remove of
 * something already stopped/removed succeeds (CRI requires idempotence); status of an unknown id is
 * NOT_FOUND.
 */
export interface Runtime {
  version(): Promise<{ runtimeName: string; runtimeVersion: string; runtimeApiVersion: string }>;

  runPodSandbox(config: PodSandboxConfig): Promise<string>;
  /** Stops every container in it (forcibly) and tears down its network. Idempotent. */
  stopPodSandbox(id: string): Promise<void>;
  removePodSandbox(id: string): Promise<void>;
  podSandboxStatus(id: string): Promise<PodSandboxStatus>;
  listPodSandbox(filter?: PodSandboxFilter): Promise<PodSandbox[]>;

  createContainer(podSandboxId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig): Promise<string>;
  startContainer(id: string): Promise<void>;
  /** SIGTERM, then SIGKILL after `timeoutSeconds` (0 = at once). Idempotent. */
  stopContainer(id: string, timeoutSeconds: number): Promise<void>;
  removeContainer(id: string): Promise<void>;
  listContainers(filter?: ContainerFilter): Promise<Container[]>;
  containerStatus(id: string): Promise<ContainerStatus>;
  /** Runs a command in a running container; DEADLINE_EXCEEDED after `timeoutSeconds`. */
  execSync(id: string, cmd: string[], timeoutSeconds: number): Promise<ExecSyncResponse>;

  /** undefined when the image is not present. */
  imageStatus(image: string): Promise<{ id: string; size: number } | undefined>;
  /** Returns the image ref; fails (e.g. NOT_FOUND/UNKNOWN) when it cannot be pulled. */
  pullImage(image: string): Promise<string>;

  /** Releases the connection / in-process resources (not the pods). */
  close(): Promise<void>;
}

/**
 * The kubelet's log layout (as upstream's /var/log/pods): each pod's log directory is
 * `<root>/<namespace>_<name>_<uid>/`, each container's log `<container>/<attempt>.log`, lines in
 * the CRI format `2026-11-22T01:23:16.578867524Z stdout F text`.
 */
export function podLogDirectory(root: string, namespace: string, name: string, uid: string): string {
  return `${root}/${namespace}_${name}_${uid}`;
}
export function containerLogPath(container: string, attempt: number): string {
  return `${container}/${attempt}.log`;
}

/** Formats one CRI log line ("F" = full line; the text must not contain a newline). */
export function criLogLine(time: Date | number, stream: "stdout" | "stderr", text: string): string {
  const d = typeof time === "number" ? new Date(time) : time;
  // RFC3339Nano; JS has milliseconds, so pad to nanoseconds.
  return `${d.toISOString().replace(/\.(\d{3})Z$/, ".$1000000Z")} ${stream} F ${text}\n`;
}

/** Sandbox and container labels the kubelet sets, as upstream's kubelet does (pkg/kubelet/types/labels.go). */
export const LABEL_POD_NAME = "io.kubernetes.pod.name";
export const LABEL_POD_NAMESPACE = "io.kubernetes.pod.namespace";
export const LABEL_POD_UID = "io.kubernetes.pod.uid";
export const LABEL_CONTAINER_NAME = "io.kubernetes.container.name";
/** Which kubelab node owns a sandbox (several nodes may share one containerd). */
export const LABEL_NODE = "kubelab.io/node";
