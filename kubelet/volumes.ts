// The volume manager (pod side): prepares each volume of a pod as a host directory under
// `<rootDir>/pods/<uid>/volumes/<plugin>/<name>` (emptyDir, configMap, secret; hostPath as is),
// writes the pod's /etc/hosts, and removes the pod directory on final cleanup.
//
// configMap and secret volumes are written like upstream's AtomicWriter: the files live in a
// timestamped directory `..<timestamp>`, `..data` is a symlink to it that is swapped atomically, and
// every user-visible top-level entry is a symlink `name -> ..data/name`. refreshPodVolumes()
// re-projects a running pod's configMap/secret volumes from fresh API objects (upstream does this on
// the pod's periodic sync), writing only when something changed.

import type { Dirent } from "node:fs";
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { ConfigMap, KeyToPath, Node, PersistentVolume, PersistentVolumeClaim, Pod, Secret, Volume } from "../api/core/v1.ts";
import { volumeNodeAffinityMatches } from "../api/nodeselector.ts";
import { REGIONAL_PROVISIONER, ZONAL_PROVISIONER, volumeAttachmentName, type CSIDriver, type VolumeAttachment } from "../api/storage/v1.ts";
import { isNotFound, type Client, type Clock } from "../client/index.ts";

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

const PLUGIN_EMPTY_DIR = "kubernetes.io~empty-dir";
const PLUGIN_CONFIGMAP = "kubernetes.io~configmap";
const PLUGIN_SECRET = "kubernetes.io~secret";

function volumeDir(podDirectory: string, plugin: string, name: string): string {
  return join(podDirectory, "volumes", plugin, name);
}

function setUpFailed(volume: string, msg: string): MountError {
  return new MountError(volume, `MountVolume.SetUp failed for volume "${volume}" : ${msg}`);
}

/** A configMap/secret volume's target directory and the files it should hold. */
interface Projection {
  dir: string;
  payload: Map<string, FileProjection>;
}

/**
 * Fetches the configMap/secret of `v` and computes its payload (upstream's MakePayload);
 * undefined for other volume kinds. Throws MountError (object or key missing and not optional).
 */
async function projectionFor(client: Client, pod: Readonly<Pod>, podDirectory: string, v: Volume): Promise<Projection | undefined> {
  const ns = pod.metadata.namespace ?? "";
  if (v.configMap) {
    const src = v.configMap;
    const name = src.name ?? "";
    let cm: ConfigMap | undefined;
    try {
      cm = await client.resource<ConfigMap>("", "configmaps").get(ns, name);
    } catch (e) {
      if (!isNotFound(e)) throw setUpFailed(v.name, errText(e));
      if (!src.optional) throw setUpFailed(v.name, `configmap "${name}" not found`);
    }
    const data = new Map<string, Buffer>();
    for (const [k, s] of Object.entries(cm?.data ?? {})) data.set(k, Buffer.from(s, "utf8"));
    for (const [k, s] of Object.entries(cm?.binaryData ?? {})) if (!data.has(k)) data.set(k, Buffer.from(s, "base64"));
    const payload = makePayload(data, src.items, src.defaultMode ?? 0o644, src.optional ?? false, (key) => setUpFailed(v.name, `configmap references non-existent config key: ${key}`));
    return { dir: volumeDir(podDirectory, PLUGIN_CONFIGMAP, v.name), payload };
  }
  if (v.secret) {
    const src = v.secret;
    const name = src.secretName ?? "";
    let secret: Secret | undefined;
    try {
      secret = await client.resource<Secret>("", "secrets").get(ns, name);
    } catch (e) {
      if (!isNotFound(e)) throw setUpFailed(v.name, errText(e));
      if (!src.optional) throw setUpFailed(v.name, `secret "${name}" not found`);
    }
    const data = new Map<string, Buffer>();
    for (const [k, s] of Object.entries(secret?.data ?? {})) data.set(k, Buffer.from(s, "base64"));
    for (const [k, s] of Object.entries(secret?.stringData ?? {})) data.set(k, Buffer.from(s, "utf8"));
    const payload = makePayload(data, src.items, src.defaultMode ?? 0o644, src.optional ?? false, (key) => setUpFailed(v.name, `references non-existent secret key: ${key}`));
    return { dir: volumeDir(podDirectory, PLUGIN_SECRET, v.name), payload };
  }
  return undefined;
}

/** All keys (no items) or the selected items, with their modes (items[].mode, else defaultMode). */
function makePayload(
  data: ReadonlyMap<string, Buffer>,
  items: KeyToPath[] | undefined,
  defaultMode: number,
  optional: boolean,
  missingKey: (key: string) => MountError,
): Map<string, FileProjection> {
  const payload = new Map<string, FileProjection>();
  if (!items?.length) {
    for (const [k, content] of data) payload.set(k, { data: content, mode: defaultMode });
    return payload;
  }
  for (const it of items) {
    const content = data.get(it.key);
    if (content === undefined) {
      if (optional) continue;
      throw missingKey(it.key);
    }
    payload.set(it.path || it.key, { data: content, mode: it.mode ?? defaultMode });
  }
  return payload;
}

async function writeProjection(volume: string, p: Projection, now: () => number, create = true): Promise<boolean> {
  try {
    return await writeAtomic(p.dir, p.payload, now, create);
  } catch (e) {
    throw setUpFailed(volume, errText(e));
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The outcome of refreshPodVolumes. */
export interface VolumeRefreshResult {
  /** Volumes whose content was rewritten (a new `..data` directory). */
  updated: string[];
  /** Volumes that could not be refreshed (their previous content stays): emit FailedMount. */
  errors: MountError[];
}

/**
 * Re-projects the configMap/secret volumes of a pod that is already set up from fresh API objects
 * (the kubelet calls this periodically, as upstream remounts them on the pod's periodic sync).
 * Volumes not set up yet (no directory) are skipped; unchanged content is not rewritten; a volume
 * whose object or key went missing keeps its previous content and is reported in `errors`
 * (an optional one is emptied instead).
 */
export async function refreshPodVolumes(rootDir: string, client: Client, pod: Readonly<Pod>, now: () => number = Date.now): Promise<VolumeRefreshResult> {
  const dir = podDir(rootDir, pod.metadata.uid ?? "");
  const result: VolumeRefreshResult = { updated: [], errors: [] };
  for (const v of pod.spec?.volumes ?? []) {
    if (!v.configMap && !v.secret) continue;
    const target = volumeDir(dir, v.configMap ? PLUGIN_CONFIGMAP : PLUGIN_SECRET, v.name);
    if (!(await exists(target))) continue;
    try {
      const p = await projectionFor(client, pod, dir, v);
      if (p && (await writeProjection(v.name, p, now, false))) result.updated.push(v.name);
    } catch (e) {
      result.errors.push(e instanceof MountError ? e : setUpFailed(v.name, errText(e)));
    }
  }
  return result;
}

export interface VolumeManagerOptions {
  /** The node this kubelet runs (attachments and the zone check are per node). */
  nodeName?: string;
  /** The simulated cloud's disks: a claim's volume is `<volumeDir>/<volumeHandle>`. Default `<rootDir>/volumes`. */
  volumeDir?: string;
}

/** The CSI drivers whose "disks" this kubelet can mount (kubelab's simulated cloud). */
const KUBELAB_DRIVERS: ReadonlySet<string> = new Set([ZONAL_PROVISIONER, REGIONAL_PROVISIONER]);


/** Upstream's WaitForAttachAndMount timeout text, with the volumes still waiting. */
function notAttached(volume: string, detail = "timed out waiting for the condition"): MountError {
  return new MountError(volume, `Unable to attach or mount volumes: unmounted volumes=[${volume}], unattached volumes=[${volume}]: ${detail}`);
}

/** The PV's required node affinity admits the node (no affinity admits every node). */
export function volumeAdmitsNode(pv: Readonly<PersistentVolume>, node: Readonly<Node>): boolean {
  return volumeNodeAffinityMatches(pv, node);
}

export class VolumeManager {
  private readonly now: () => number;
  private readonly nodeName: string;
  readonly volumeDir: string;
  /** "<pod uid>/<volume>" → the claim's disk once mounted: a mounted volume stays mounted for the pod's life, as upstream's. */
  private readonly mountedClaims = new Map<string, string>();

  constructor(
    private readonly rootDir: string,
    private readonly client: Client,
    clock?: Pick<Clock, "now">,
    opts: VolumeManagerOptions = {},
  ) {
    this.now = clock ? () => clock.now() : Date.now;
    this.nodeName = opts.nodeName ?? "";
    this.volumeDir = opts.volumeDir ?? join(rootDir, "volumes");
  }

  /** Sets up every volume of the pod (idempotent: configMap/secret contents are rewritten only when changed). Throws MountError. */
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

  /** See refreshPodVolumes. */
  refresh(pod: Readonly<Pod>): Promise<VolumeRefreshResult> {
    return refreshPodVolumes(this.rootDir, this.client, pod, this.now);
  }

  /** Removes everything the kubelet wrote for the pod. */
  async cleanUp(uid: string): Promise<void> {
    for (const k of [...this.mountedClaims.keys()]) if (k.startsWith(`${uid}/`)) this.mountedClaims.delete(k);
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
    if (v.emptyDir) {
      const p = volumeDir(dir, PLUGIN_EMPTY_DIR, v.name);
      await mkdir(p, { recursive: true, mode: 0o777 });
      return p;
    }
    if (v.hostPath) {
      if (v.hostPath.type === "DirectoryOrCreate") await mkdir(v.hostPath.path, { recursive: true });
      return v.hostPath.path;
    }
    if (v.persistentVolumeClaim) {
      const key = `${pod.metadata.uid ?? ""}/${v.name}`;
      const mounted = this.mountedClaims.get(key);
      if (mounted) return mounted;
      const path = await setUpClaim({ client: this.client, nodeName: this.nodeName, volumeDir: this.volumeDir }, pod, v.name, v.persistentVolumeClaim.claimName);
      this.mountedClaims.set(key, path);
      return path;
    }
    const p = await projectionFor(this.client, pod, dir, v);
    if (p) {
      await writeProjection(v.name, p, this.now);
      return p.dir;
    }
    const kind = Object.keys(v).find((k) => k !== "name") ?? "unknown";
    throw setUpFailed(v.name, `${kind} volumes are not supported yet`);
  }
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function getOrUndefined<T>(get: () => Promise<T>): Promise<T | undefined> {
  try {
    return await get();
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

/**
 * A persistentVolumeClaim volume (upstream's CSI plugin, simulated): the claim bound, the PV one of
 * kubelab's drivers, the PV's node affinity admitting this node (a zonal disk never crosses zones),
 * the VolumeAttachment attached when the driver requires attach; then the "disk" is the host
 * directory `<volumeDir>/<volumeHandle>`, created on first use. Until then MountError (FailedMount).
 */
async function setUpClaim(self: { client: Client; nodeName: string; volumeDir: string }, pod: Readonly<Pod>, volume: string, claimName: string): Promise<string> {
  const ns = pod.metadata.namespace ?? "";
  try {
    const claim = await getOrUndefined(() => self.client.resource<PersistentVolumeClaim>("", "persistentvolumeclaims").get(ns, claimName));
    if (!claim) throw notAttached(volume, `error processing PVC ${ns}/${claimName}: PVC ${claimName} not found`);
    const pvName = claim.spec?.volumeName;
    if (!pvName || claim.status?.phase !== "Bound") throw notAttached(volume, `error processing PVC ${ns}/${claimName}: PVC is not bound`);
    const pv = await getOrUndefined(() => self.client.resource<PersistentVolume>("", "persistentvolumes").get("", pvName));
    if (!pv) throw notAttached(volume, `error processing PVC ${ns}/${claimName}: persistentvolume "${pvName}" not found`);
    const csi = pv.spec?.csi;
    if (!csi || !KUBELAB_DRIVERS.has(csi.driver)) {
      throw setUpFailed(volume, `kubernetes.io/csi: driver name ${csi?.driver ?? "(none)"} not found in the list of registered CSI drivers`);
    }
    const node = await getOrUndefined(() => self.client.resource<Node>("", "nodes").get("", self.nodeName));
    if (node && !volumeAdmitsNode(pv, node)) {
      throw setUpFailed(volume, `volume node affinity of persistentvolume "${pvName}" does not admit node "${self.nodeName}" (a zonal volume is only reachable from its zone)`);
    }
    const driver = await getOrUndefined(() => self.client.resource<CSIDriver>("storage.k8s.io", "csidrivers").get("", csi.driver));
    const attachRequired = driver?.spec?.attachRequired ?? csi.driver === ZONAL_PROVISIONER;
    if (attachRequired) {
      const name = volumeAttachmentName(csi.volumeHandle, csi.driver, self.nodeName);
      const va = await getOrUndefined(() => self.client.resource<VolumeAttachment>("storage.k8s.io", "volumeattachments").get("", name));
      if (!va?.status?.attached) throw notAttached(volume);
    }
    if (!/^[A-Za-z0-9._-]+$/.test(csi.volumeHandle) || csi.volumeHandle.startsWith(".")) throw setUpFailed(volume, `invalid volume handle "${csi.volumeHandle}"`);
    const dir = join(self.volumeDir, csi.volumeHandle);
    await mkdir(dir, { recursive: true, mode: 0o777 });
    return dir;
  } catch (e) {
    if (e instanceof MountError) throw e;
    throw setUpFailed(volume, errText(e));
  }
}

// --- AtomicWriter (upstream pkg/volume/util/atomic_writer.go) ---------------------------------

/** One file of a configMap/secret projection: content and permission bits of the real file. */
export interface FileProjection {
  data: Buffer;
  mode: number;
}

/** Name of the symlink pointing at the current timestamped data directory. */
export const DATA_DIR_NAME = "..data";
/** Temporary symlink renamed over `..data` to swap it atomically. */
export const DATA_DIR_TMP_NAME = "..data_tmp";

/** Validates a user-visible path (upstream validatePath). Returns an error text or "". */
function invalidPath(p: string): string {
  if (!p) return "invalid path: must not be empty";
  if (p.startsWith("/")) return `invalid path: must be relative path: ${p}`;
  if (p.length > 4096) return `invalid path: must be less than or equal to 4096 characters`;
  const parts = p.split("/");
  if (parts.some((s) => s.length > 255)) return `invalid path: must not contain an element longer than 255 characters`;
  if (parts.includes("..")) return `invalid path: must not contain '..': ${p}`;
  if (parts[0]?.startsWith("..")) return `invalid path: must not start with '..': ${p}`;
  return "";
}

function cleanPath(p: string): string {
  return p.split("/").filter((s) => s !== "" && s !== ".").join("/");
}

function topLevel(p: string): string {
  const i = p.indexOf("/");
  return i < 0 ? p : p.slice(0, i);
}

function isErrno(e: unknown, code: string): boolean {
  return e instanceof Error && (e as NodeJS.ErrnoException).code === code;
}

/** Relative paths (files and directories) under dir; [] when dir does not exist. */
async function walk(dir: string, prefix = ""): Promise<string[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(join(dir, prefix), { withFileTypes: true });
  } catch (e) {
    if (isErrno(e, "ENOENT")) return [];
    throw e;
  }
  const out: string[] = [];
  for (const ent of entries) {
    const rel = prefix ? `${prefix}/${ent.name}` : ent.name;
    out.push(rel);
    if (ent.isDirectory()) out.push(...(await walk(dir, rel)));
  }
  return out;
}

/** Serialises writers of the same target directory (setUp and refresh may overlap). */
const dirLocks = new Map<string, Promise<unknown>>();
async function withDirLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const prev = dirLocks.get(dir) ?? Promise.resolve();
  const run = prev.then(fn, fn);
  const tail = run.catch(() => undefined);
  dirLocks.set(dir, tail);
  try {
    return await run;
  } finally {
    if (dirLocks.get(dir) === tail) dirLocks.delete(dir);
  }
}

function tsDirPrefix(now: number): string {
  const d = new Date(now);
  const p = (n: number): string => String(n).padStart(2, "0");
  return `..${d.getUTCFullYear()}_${p(d.getUTCMonth() + 1)}_${p(d.getUTCDate())}_${p(d.getUTCHours())}_${p(d.getUTCMinutes())}_${p(d.getUTCSeconds())}.`;
}

/**
 * Writes `payload` (user-visible path → file) into `targetDir` the way upstream's AtomicWriter does:
 * the files go into a fresh timestamped directory `..<timestamp>`, the `..data` symlink is swapped to
 * it atomically (symlink `..data_tmp`, rename over `..data`), each top-level user-visible entry is a
 * symlink `name -> ..data/name`, entries that left the payload are removed and the previous
 * timestamped directory is deleted. Nothing is written when content and modes are unchanged.
 * Returns whether a new data directory was written. Throws Error on an invalid path.
 * With `create` false a missing targetDir is left alone (a refresh racing with the pod's cleanup).
 */
export async function writeAtomic(targetDir: string, payload: ReadonlyMap<string, FileProjection>, now: () => number = Date.now, create = true): Promise<boolean> {
  // (1) Validate and clean the payload.
  const clean = new Map<string, FileProjection>();
  for (const [p, f] of payload) {
    const bad = invalidPath(p);
    if (bad) throw new Error(bad);
    clean.set(cleanPath(p), f);
  }
  return withDirLock(targetDir, async () => {
    if (create) await mkdir(targetDir, { recursive: true });
    else if (!(await exists(targetDir))) return false;
    const dataDirPath = join(targetDir, DATA_DIR_NAME);
    // (2) The current timestamped directory, if any.
    let oldTsDir = "";
    try {
      oldTsDir = await readlink(dataDirPath);
    } catch (e) {
      if (!isErrno(e, "ENOENT") && !isErrno(e, "EINVAL")) throw e;
      if (isErrno(e, "EINVAL")) await rm(dataDirPath, { recursive: true, force: true });
    }
    const oldTsPath = oldTsDir ? join(targetDir, oldTsDir) : "";
    const newTop = new Set([...clean.keys()].map(topLevel));
    // (3) Paths that are no longer projected.
    const toRemove = new Set<string>();
    if (oldTsPath) {
      const keep = new Set<string>();
      for (const f of clean.keys()) {
        const parts = f.split("/");
        for (let i = 1; i <= parts.length; i++) keep.add(parts.slice(0, i).join("/"));
      }
      for (const p of await walk(oldTsPath)) if (!keep.has(p)) toRemove.add(p);
    } else {
      // No ..data yet: plain entries of an older layout that are not projected any more.
      for (const ent of await readdir(targetDir)) if (!ent.startsWith("..") && !newTop.has(ent)) toRemove.add(ent);
    }
    // (4) Anything to write?
    let should = !oldTsPath || toRemove.size > 0;
    for (const [p, f] of clean) {
      if (should) break;
      try {
        const cur = join(oldTsPath, p);
        const [content, st] = await Promise.all([readFile(cur), lstat(cur)]);
        should = !st.isFile() || !content.equals(f.data) || (st.mode & 0o7777) !== (f.mode & 0o7777);
      } catch (e) {
        if (!isErrno(e, "ENOENT") && !isErrno(e, "ENOTDIR") && !isErrno(e, "EISDIR")) throw e;
        should = true;
      }
    }
    if (!should) return false;
    // (5) A new timestamped directory, (6) the payload in it.
    const tsPath = await mkdtemp(join(targetDir, tsDirPrefix(now())));
    const tsDirName = basename(tsPath);
    try {
      await chmod(tsPath, 0o755);
      for (const [p, f] of clean) {
        const full = join(tsPath, p);
        await mkdir(dirname(full), { recursive: true, mode: 0o755 });
        await writeFile(full, f.data, { mode: f.mode & 0o7777 });
        await chmod(full, f.mode & 0o7777); // the umask applied to writeFile's mode
      }
      // (7) ..data_tmp -> tsDir, (8) renamed over ..data (atomic).
      const tmpLink = join(targetDir, DATA_DIR_TMP_NAME);
      await rm(tmpLink, { force: true });
      await symlink(tsDirName, tmpLink);
      await rename(tmpLink, dataDirPath);
    } catch (e) {
      await rm(tsPath, { recursive: true, force: true });
      throw e;
    }
    // (9) User-visible symlinks for the top-level entries.
    for (const name of newTop) {
      const visible = join(targetDir, name);
      const want = join(DATA_DIR_NAME, name);
      let cur: string | undefined;
      try {
        cur = await readlink(visible);
      } catch (e) {
        if (isErrno(e, "EINVAL")) await rm(visible, { recursive: true, force: true }); // an older plain file/dir
        else if (!isErrno(e, "ENOENT")) throw e;
      }
      if (cur === want) continue;
      if (cur !== undefined) await rm(visible, { force: true });
      await symlink(want, visible);
    }
    // (10) Top-level entries that left the payload (nested ones went with the old directory).
    for (const p of toRemove) if (!p.includes("/")) await rm(join(targetDir, p), { recursive: true, force: true });
    // (11) The previous data directory.
    if (oldTsDir && oldTsDir !== tsDirName) await rm(oldTsPath, { recursive: true, force: true });
    return true;
  });
}
