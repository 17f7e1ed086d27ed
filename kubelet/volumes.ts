// The volume manager (pod side): prepares each volume of a pod as a host directory under
// `<rootDir>/pods/<uid>/volumes/<plugin>/<name>` (emptyDir, configMap, secret, downwardAPI,
// projected; hostPath as is), writes the pod's /etc/hosts, and removes the pod directory on final
// cleanup.
//
// configMap, secret, downwardAPI and projected volumes are written like upstream's AtomicWriter: the
// files live in a timestamped directory `..<timestamp>`, `..data` is a symlink to it that is swapped
// atomically, and every user-visible top-level entry is a symlink `name -> ..data/name`. Every pod
// sync sets them up again (and refreshPodVolumes() re-projects them) from fresh API objects and the
// token manager's current token (upstream remounts them on the pod's periodic sync), writing only
// when something changed. A projected serviceAccountToken source is the pod-bound token the node
// requests through its own client (tokenmanager.ts).

import type { Dirent } from "node:fs";
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { ConfigMap, KeyToPath, Node, PersistentVolume, PersistentVolumeClaim, Pod, Secret, Volume } from "../api/core/v1.ts";
import type { KubeObject } from "../api/meta.ts";
import { volumeNodeAffinityMatches } from "../api/nodeselector.ts";
import { REGIONAL_PROVISIONER, ZONAL_PROVISIONER, volumeAttachmentName, type CSIDriver, type VolumeAttachment } from "../api/storage/v1.ts";
import { isNotFound, type Client, type Clock, type Logger } from "../client/index.ts";
import { collectDownwardAPI, type DownwardAPIEnv } from "./downwardapi.ts";
import { clientTokenRequester, TokenManager } from "./tokenmanager.ts";

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
const PLUGIN_DOWNWARD_API = "kubernetes.io~downward-api";
const PLUGIN_PROJECTED = "kubernetes.io~projected";

/** The plugin directory of a volume whose content the kubelet writes (AtomicWriter), or undefined. */
function writtenPlugin(v: Volume): string | undefined {
  if (v.configMap) return PLUGIN_CONFIGMAP;
  if (v.secret) return PLUGIN_SECRET;
  if (v.downwardAPI) return PLUGIN_DOWNWARD_API;
  if (v.projected) return PLUGIN_PROJECTED;
  return undefined;
}

/** A ServiceAccountTokenProjection's expirationSeconds when the pod spec leaves it out (API default). */
const DEFAULT_TOKEN_EXPIRATION_SECONDS = 3600;

function volumeDir(podDirectory: string, plugin: string, name: string): string {
  return join(podDirectory, "volumes", plugin, name);
}

function setUpFailed(volume: string, msg: string): MountError {
  return new MountError(volume, `MountVolume.SetUp failed for volume "${volume}" : ${msg}`);
}

/** A written volume's target directory and the files it should hold. */
interface Projection {
  dir: string;
  payload: Map<string, FileProjection>;
}

/** What computing a volume's files needs besides the pod. */
interface ProjectionEnv {
  client: Client;
  tokens: TokenManager;
  downward: DownwardAPIEnv;
  /** Where configMaps and secrets are read; without it every read is a GET. */
  objects?: ObjectCache;
  /** Read past the cache (a pod's first set-up sees the objects as they are now). */
  fresh?: boolean;
}

/**
 * The node's configMaps and secrets as its pods' periodic volume refreshes read them (upstream's
 * cache-based manager, --config-map-and-secret-change-detection-strategy=Cache): an object fetched
 * less than `ttlMs` ago is served from here, so a node's many pods of one namespace cost one GET of
 * kube-root-ca.crt a minute, not one per pod. A pod's first set-up always reads fresh (and fills it).
 */
export class ObjectCache {
  private readonly entries = new Map<string, { at: number; value: Promise<KubeObject | undefined> }>();

  constructor(
    private readonly client: Client,
    private readonly now: () => number,
    private readonly ttlMs = 60_000,
  ) {}

  /** The object (undefined when it does not exist); `fresh` skips the cache. Throws the GET's other errors. */
  get<T extends KubeObject>(resource: "configmaps" | "secrets", ns: string, name: string, fresh: boolean): Promise<T | undefined> {
    const key = `${resource}/${ns}/${name}`;
    const hit = this.entries.get(key);
    const now = this.now();
    if (!fresh && hit && now - hit.at < this.ttlMs) return hit.value as Promise<T | undefined>;
    const value = this.client.resource<T>("", resource).get(ns, name).then(
      (o) => o as T | undefined,
      (e: unknown) => {
        if (isNotFound(e)) return undefined;
        this.entries.delete(key);
        throw e;
      },
    );
    this.entries.set(key, { at: now, value });
    if (this.entries.size > 4096) for (const [k, v] of this.entries) if (now - v.at >= this.ttlMs) this.entries.delete(k);
    return value;
  }
}

/** utilerrors.NewAggregate(errs).Error(): one error's message, or several in brackets (duplicates once). */
function aggregate(errors: readonly Error[]): string {
  const msgs = [...new Set(errors.map((e) => e.message))];
  return msgs.length === 1 ? msgs[0] : `[${msgs.join(", ")}]`;
}

/** A configMap's keys (data, then binaryData); {} for an optional one that does not exist. Throws Error. */
async function configMapData(env: ProjectionEnv, ns: string, name: string, optional: boolean): Promise<Map<string, Buffer>> {
  const cm = await readObject<ConfigMap>(env, "configmaps", ns, name);
  if (!cm && !optional) throw new Error(`configmap "${name}" not found`);
  const data = new Map<string, Buffer>();
  for (const [k, s] of Object.entries(cm?.data ?? {})) data.set(k, Buffer.from(s, "utf8"));
  for (const [k, s] of Object.entries(cm?.binaryData ?? {})) if (!data.has(k)) data.set(k, Buffer.from(s, "base64"));
  return data;
}

/** A secret's keys, decoded; {} for an optional one that does not exist. Throws Error. */
async function secretData(env: ProjectionEnv, ns: string, name: string, optional: boolean): Promise<Map<string, Buffer>> {
  const secret = await readObject<Secret>(env, "secrets", ns, name);
  if (!secret && !optional) throw new Error(`secret "${name}" not found`);
  const data = new Map<string, Buffer>();
  for (const [k, s] of Object.entries(secret?.data ?? {})) data.set(k, Buffer.from(s, "base64"));
  for (const [k, s] of Object.entries(secret?.stringData ?? {})) data.set(k, Buffer.from(s, "utf8"));
  return data;
}

/** A configMap or secret through the env's cache (refreshes) or a GET; undefined when it does not exist. Throws Error. */
async function readObject<T extends KubeObject>(env: ProjectionEnv, resource: "configmaps" | "secrets", ns: string, name: string): Promise<T | undefined> {
  try {
    if (env.objects) return await env.objects.get<T>(resource, ns, name, env.fresh ?? false);
    return await env.client.resource<T>("", resource).get(ns, name);
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e instanceof Error ? e : new Error(String(e));
  }
}

const missingConfigMapKey = (key: string): Error => new Error(`configmap references non-existent config key: ${key}`);
const missingSecretKey = (key: string): Error => new Error(`references non-existent secret key: ${key}`);

/**
 * Fetches what `v` projects and computes its payload (upstream's MakePayload / CollectData);
 * undefined for volume kinds the kubelet does not write. Throws MountError (an object, key or token
 * missing and not optional).
 */
async function projectionFor(env: ProjectionEnv, pod: Readonly<Pod>, podDirectory: string, v: Volume): Promise<Projection | undefined> {
  const ns = pod.metadata.namespace ?? "";
  const plugin = writtenPlugin(v);
  if (!plugin) return undefined;
  const dir = volumeDir(podDirectory, plugin, v.name);
  try {
    if (v.configMap) {
      const src = v.configMap;
      const optional = src.optional ?? false;
      const data = await configMapData(env, ns, src.name ?? "", optional);
      return { dir, payload: makePayload(data, src.items, src.defaultMode ?? 0o644, optional, missingConfigMapKey) };
    }
    if (v.secret) {
      const src = v.secret;
      const optional = src.optional ?? false;
      const data = await secretData(env, ns, src.secretName ?? "", optional);
      return { dir, payload: makePayload(data, src.items, src.defaultMode ?? 0o644, optional, missingSecretKey) };
    }
    if (v.downwardAPI) {
      const { files, errors } = collectDownwardAPI(v.downwardAPI.items, pod, v.downwardAPI.defaultMode ?? 0o644, env.downward);
      if (errors.length) throw new Error(aggregate(errors));
      return { dir, payload: new Map(files.map((f) => [f.path, { data: Buffer.from(f.data, "utf8"), mode: f.mode }])) };
    }
    return { dir, payload: await projectedPayload(env, pod, v) };
  } catch (e) {
    throw e instanceof MountError ? e : setUpFailed(v.name, errText(e));
  }
}

/**
 * A projected volume's files (upstream's projectedVolumeMounter.collectData): every source in order,
 * a later source's file replacing an earlier one of the same path; the sources that fail are
 * aggregated into one error, so the pod waits (FailedMount) until all of them can be read.
 */
async function projectedPayload(env: ProjectionEnv, pod: Readonly<Pod>, v: Volume): Promise<Map<string, FileProjection>> {
  const ns = pod.metadata.namespace ?? "";
  const defaultMode = v.projected?.defaultMode ?? 0o644;
  const payload = new Map<string, FileProjection>();
  const errors: Error[] = [];
  const add = (files: ReadonlyMap<string, FileProjection>): void => {
    for (const [p, f] of files) payload.set(p, f);
  };
  for (const source of v.projected?.sources ?? []) {
    try {
      if (source.secret) {
        const optional = source.secret.optional ?? false;
        add(makePayload(await secretData(env, ns, source.secret.name ?? "", optional), source.secret.items, defaultMode, optional, missingSecretKey));
      } else if (source.configMap) {
        const optional = source.configMap.optional ?? false;
        add(makePayload(await configMapData(env, ns, source.configMap.name ?? "", optional), source.configMap.items, defaultMode, optional, missingConfigMapKey));
      } else if (source.downwardAPI) {
        const { files, errors: errs } = collectDownwardAPI(source.downwardAPI.items, pod, defaultMode, env.downward);
        if (errs.length) errors.push(...errs);
        else for (const f of files) payload.set(f.path, { data: Buffer.from(f.data, "utf8"), mode: f.mode });
      } else if (source.serviceAccountToken) {
        const tp = source.serviceAccountToken;
        // upstream falls back to 0600 when fsGroup/fsUser is set and relies on SetVolumeOwnership to
        // make it group-readable; kubelab does not change volume ownership, so defaultMode stays.
        const tr = await env.tokens.getServiceAccountToken(ns, pod.spec?.serviceAccountName || pod.spec?.serviceAccount || "default", {
          spec: {
            ...(tp.audience ? { audiences: [tp.audience] } : {}),
            expirationSeconds: tp.expirationSeconds ?? DEFAULT_TOKEN_EXPIRATION_SECONDS,
            boundObjectRef: { apiVersion: "v1", kind: "Pod", name: pod.metadata.name ?? "", uid: pod.metadata.uid ?? "" },
          },
        });
        payload.set(tp.path, { data: Buffer.from(tr.status?.token ?? "", "utf8"), mode: defaultMode });
      }
    } catch (e) {
      errors.push(e instanceof Error ? e : new Error(String(e)));
    }
  }
  if (errors.length) throw new Error(aggregate(errors));
  return payload;
}

/** All keys (no items) or the selected items, with their modes (items[].mode, else defaultMode). */
function makePayload(
  data: ReadonlyMap<string, Buffer>,
  items: KeyToPath[] | undefined,
  defaultMode: number,
  optional: boolean,
  missingKey: (key: string) => Error,
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

/** What refreshPodVolumes needs besides the client: the token manager and the downward API's node facts. */
export interface RefreshOptions {
  now?: () => number;
  /** The node's token manager; without one a fresh one requests every token again. */
  tokens?: TokenManager;
  downward?: DownwardAPIEnv;
  /** The node's object cache (see ObjectCache); without one every read is a GET. */
  objects?: ObjectCache;
}

/**
 * Re-projects the configMap, secret, downwardAPI and projected volumes of a pod that is already set
 * up from fresh API objects and tokens (upstream remounts them on the pod's periodic sync; the
 * kubelet's pod sync does the same through VolumeManager.setUp). Volumes not set up yet (no
 * directory) are skipped; unchanged content is not rewritten; a volume whose object, key or token
 * went missing keeps its previous content and is reported in `errors` (an optional one is emptied
 * instead).
 */
export async function refreshPodVolumes(
  rootDir: string,
  client: Client,
  pod: Readonly<Pod>,
  opts: RefreshOptions | (() => number) = {},
): Promise<VolumeRefreshResult> {
  const o: RefreshOptions = typeof opts === "function" ? { now: opts } : opts;
  const now = o.now ?? Date.now;
  const env: ProjectionEnv = {
    client,
    tokens: o.tokens ?? new TokenManager(clientTokenRequester(client), { clock: { now } }),
    downward: { podIP: pod.status?.podIP, ...o.downward },
    ...(o.objects ? { objects: o.objects } : {}),
  };
  const dir = podDir(rootDir, pod.metadata.uid ?? "");
  const result: VolumeRefreshResult = { updated: [], errors: [] };
  for (const v of pod.spec?.volumes ?? []) {
    const plugin = writtenPlugin(v);
    if (!plugin) continue;
    if (!(await exists(volumeDir(dir, plugin, v.name)))) continue;
    try {
      const p = await projectionFor(env, pod, dir, v);
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
  /**
   * The node's ServiceAccount token manager. Default: one over the kubelet's client (the node's
   * identity, system:node:<name>, requests every token, as upstream's kubelet does).
   */
  tokens?: TokenManager;
  /** The node's InternalIP (downward API status.hostIP). */
  nodeIP?: string;
  /** Node allocatable: a downward API resourceFieldRef of an unset limit reads this. */
  allocatable?: Record<string, string>;
  /** How long a configMap or secret read for a pod's later syncs is reused (default 60 s; 0: never). */
  objectCacheTTLMs?: number;
  log?: Logger;
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
  /** The pod-bound ServiceAccount tokens of this node's pods (projected serviceAccountToken sources). */
  readonly tokens: TokenManager;
  private readonly downward: DownwardAPIEnv;
  /** "<pod uid>/<volume>" → the claim's disk once mounted: a mounted volume stays mounted for the pod's life, as upstream's. */
  private readonly mountedClaims = new Map<string, string>();
  /** The node's configMaps and secrets as its pods' syncs last read them. */
  private readonly objects: ObjectCache;
  /** Pods whose volumes were set up once: their next syncs may read objects from the cache. */
  private readonly setUpPods = new Set<string>();

  constructor(
    private readonly rootDir: string,
    private readonly client: Client,
    clock?: Pick<Clock, "now">,
    opts: VolumeManagerOptions = {},
  ) {
    this.now = clock ? () => clock.now() : Date.now;
    this.nodeName = opts.nodeName ?? "";
    this.volumeDir = opts.volumeDir ?? join(rootDir, "volumes");
    this.tokens = opts.tokens ?? new TokenManager(clientTokenRequester(client), { clock: { now: this.now }, ...(opts.log ? { log: opts.log } : {}) });
    this.downward = { ...(opts.nodeIP ? { nodeIP: opts.nodeIP } : {}), ...(opts.allocatable ? { allocatable: opts.allocatable } : {}) };
    this.objects = new ObjectCache(client, this.now, opts.objectCacheTTLMs ?? 60_000);
  }

  /**
   * Sets up every volume of the pod (idempotent: written volumes are rewritten only when their
   * content changed, so calling it on every sync refreshes configMaps, secrets, downward API values
   * and tokens that are due). Throws MountError.
   */
  async setUp(pod: Readonly<Pod>, podIP: string): Promise<PodVolumes> {
    const uid = pod.metadata.uid ?? "";
    const dir = podDir(this.rootDir, uid);
    await mkdir(dir, { recursive: true });
    const etcHosts = join(dir, "etc-hosts");
    await writeFile(etcHosts, hostsFileContent(pod, podIP), { mode: 0o644 });
    const paths = new Map<string, string>();
    // The first set-up of a pod reads its objects fresh; its later syncs may use what the node read
    // less than a minute ago (ObjectCache).
    const env: ProjectionEnv = { client: this.client, tokens: this.tokens, downward: { ...this.downward, podIP }, objects: this.objects, fresh: !this.setUpPods.has(uid) };
    for (const v of pod.spec?.volumes ?? []) paths.set(v.name, await this.setUpVolume(env, pod, dir, v));
    this.setUpPods.add(uid);
    return { paths, etcHosts };
  }

  /** See refreshPodVolumes. */
  refresh(pod: Readonly<Pod>): Promise<VolumeRefreshResult> {
    return refreshPodVolumes(this.rootDir, this.client, pod, { now: this.now, tokens: this.tokens, downward: this.downward, objects: this.objects });
  }

  /** Removes everything the kubelet wrote for the pod, and forgets its tokens (upstream's DeleteServiceAccountToken). */
  async cleanUp(uid: string): Promise<void> {
    this.setUpPods.delete(uid);
    for (const k of [...this.mountedClaims.keys()]) if (k.startsWith(`${uid}/`)) this.mountedClaims.delete(k);
    this.tokens.deleteServiceAccountToken(uid);
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

  private async setUpVolume(env: ProjectionEnv, pod: Readonly<Pod>, dir: string, v: Volume): Promise<string> {
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
    const p = await projectionFor(env, pod, dir, v);
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
      // upstream's verifyControllerAttachedVolume: the volume must be in the node's
      // status.volumesAttached (written by the attach/detach controller) before the kubelet looks
      // at its VolumeAttachment — which the Node authorizer lets it read only once it exists.
      const unique = `kubernetes.io/csi/${csi.driver}^${csi.volumeHandle}`;
      if (!(node?.status?.volumesAttached ?? []).some((v) => v.name === unique)) throw notAttached(volume);
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
