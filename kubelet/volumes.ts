// The volume manager (pod side): prepares each volume of a pod as a host directory under
// `<rootDir>/pods/<uid>/volumes/<plugin>/<name>` (emptyDir, configMap, secret; hostPath as is),
// writes the pod's /etc/hosts, and removes the pod directory on final cleanup.

import { chmod, mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ConfigMap, KeyToPath, Pod, Secret, Volume } from "../api/core/v1.ts";
import { isNotFound, type Client } from "../client/index.ts";

/** A volume that cannot be set up yet: the pod waits (FailedMount) and the sync is retried. */
export class MountError extends Error {
  override readonly name = "MountError";
  constructor(
    readonly volume: string,
    message: string,
  ) {
    super(message);
  }
}

export interface PodVolumes {
  /** Volume name → host path. */
  paths: Map<string, string>;
  /** The pod's hosts file, mounted at /etc/hosts. */
  etcHosts: string;
}

export function podDir(rootDir: string, uid: string): string {
  return join(rootDir, "pods", uid);
}

/** The content upstream's kubelet writes as a pod's /etc/hosts (managedHostsFileContent). */
export function hostsFileContent(pod: Readonly<Pod>, podIP: string): string {
  const lines = [
    "# Kubernetes-managed hosts file.",
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "fe00::0\tip6-mcastprefix",
    "fe00::1\tip6-allnodes",
    "fe00::2\tip6-allrouters",
  ];
  const hostname = (pod.spec?.hostname ?? pod.metadata.name ?? "").slice(0, 63);
  if (podIP) {
    const sub = pod.spec?.subdomain;
    lines.push(sub ? `${podIP}\t${hostname}.${sub}.${pod.metadata.namespace}.svc.cluster.local\t${hostname}` : `${podIP}\t${hostname}`);
  }
  const aliases = pod.spec?.hostAliases ?? [];
  if (aliases.length) {
    lines.push("", "# Entries added by HostAliases.");
    for (const a of aliases) lines.push(`${a.ip}\t${(a.hostnames ?? []).join("\t")}`);
  }
  return lines.join("\n") + "\n";
}

export class VolumeManager {
  constructor(
    private readonly rootDir: string,
    private readonly client: Client,
  ) {}

  /** Sets up every volume of the pod (idempotent: configMap/secret contents are rewritten). Throws MountError. */
  async setUp(pod: Readonly<Pod>, podIP: string): Promise<PodVolumes> {
    const uid = pod.metadata.uid ?? "";
    const dir = podDir(this.rootDir, uid);
    await mkdir(dir, { recursive: true });
    const etcHosts = join(dir, "etc-hosts");
    await writeFile(etcHosts, hostsFileContent(pod, podIP), { mode: 0o644 });
    const paths = new Map<string, string>();
    for (const v of pod.spec?.volumes ?? []) paths.set(v.name, await this.setUpVolume(pod, dir, v));
    return { paths, etcHosts };
  }

  /** Removes everything the kubelet wrote for the pod. */
  async cleanUp(uid: string): Promise<void> {
    await rm(podDir(this.rootDir, uid), { recursive: true, force: true });
  }

  /** Pod uids that have a directory (for orphan cleanup). */
  async podDirs(): Promise<string[]> {
    try {
      return await readdir(join(this.rootDir, "pods"));
    } catch {
      return [];
    }
  }

  private async setUpVolume(pod: Readonly<Pod>, dir: string, v: Volume): Promise<string> {
    const ns = pod.metadata.namespace ?? "";
    const path = (plugin: string): string => join(dir, "volumes", plugin, v.name);
    if (v.emptyDir) {
      const p = path("kubernetes.io~empty-dir");
      await mkdir(p, { recursive: true, mode: 0o777 });
      return p;
    }
    if (v.hostPath) {
      if (v.hostPath.type === "DirectoryOrCreate") await mkdir(v.hostPath.path, { recursive: true });
      return v.hostPath.path;
    }
    if (v.configMap) {
      const name = v.configMap.name ?? "";
      const p = path("kubernetes.io~configmap");
      let cm: ConfigMap | undefined;
      try {
        cm = await this.client.resource<ConfigMap>("", "configmaps").get(ns, name);
      } catch (e) {
        if (!isNotFound(e)) throw new MountError(v.name, `MountVolume.SetUp failed for volume "${v.name}" : ${errText(e)}`);
        if (!v.configMap.optional) throw new MountError(v.name, `MountVolume.SetUp failed for volume "${v.name}" : configmap "${name}" not found`);
      }
      const data: Record<string, Buffer> = {};
      for (const [k, s] of Object.entries(cm?.data ?? {})) data[k] = Buffer.from(s, "utf8");
      for (const [k, s] of Object.entries(cm?.binaryData ?? {})) data[k] = Buffer.from(s, "base64");
      await writeProjection(p, data, v.configMap.items, v.configMap.defaultMode ?? 0o644, v.name, "configmap", v.configMap.optional ?? false);
      return p;
    }
    if (v.secret) {
      const name = v.secret.secretName ?? "";
      const p = path("kubernetes.io~secret");
      let secret: Secret | undefined;
      try {
        secret = await this.client.resource<Secret>("", "secrets").get(ns, name);
      } catch (e) {
        if (!isNotFound(e)) throw new MountError(v.name, `MountVolume.SetUp failed for volume "${v.name}" : ${errText(e)}`);
        if (!v.secret.optional) throw new MountError(v.name, `MountVolume.SetUp failed for volume "${v.name}" : secret "${name}" not found`);
      }
      const data: Record<string, Buffer> = {};
      for (const [k, s] of Object.entries(secret?.data ?? {})) data[k] = Buffer.from(s, "base64");
      for (const [k, s] of Object.entries(secret?.stringData ?? {})) data[k] = Buffer.from(s, "utf8");
      await writeProjection(p, data, v.secret.items, v.secret.defaultMode ?? 0o644, v.name, "secret", v.secret.optional ?? false);
      return p;
    }
    const kind = Object.keys(v).find((k) => k !== "name") ?? "unknown";
    throw new MountError(v.name, `MountVolume.SetUp failed for volume "${v.name}" : ${kind} volumes are not supported yet`);
  }
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Writes keys (or the selected items) as files; files of keys no longer present are removed. */
async function writeProjection(
  dir: string,
  data: Record<string, Buffer>,
  items: KeyToPath[] | undefined,
  defaultMode: number,
  volume: string,
  kind: string,
  optional: boolean,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const files = new Map<string, { content: Buffer; mode: number }>();
  if (items?.length) {
    for (const it of items) {
      const content = data[it.key];
      if (!content) {
        if (optional) continue;
        throw new MountError(volume, `MountVolume.SetUp failed for volume "${volume}" : ${kind} references non-existent ${kind} key: ${it.key}`);
      }
      files.set(it.path, { content, mode: it.mode ?? defaultMode });
    }
  } else for (const [k, content] of Object.entries(data)) files.set(k, { content, mode: defaultMode });
  for (const [rel, f] of files) {
    if (rel.split("/").includes("..") || rel.startsWith("/")) throw new MountError(volume, `MountVolume.SetUp failed for volume "${volume}" : invalid path ${rel}`);
    const target = join(dir, rel);
    await mkdir(join(target, ".."), { recursive: true });
    await writeFile(target, f.content);
    await chmod(target, f.mode);
  }
  // Top-level entries that are no longer projected.
  const keep = new Set([...files.keys()].map((r) => r.split("/")[0]));
  for (const entry of await readdir(dir)) if (!keep.has(entry)) await rm(join(dir, entry), { recursive: true, force: true });
}
