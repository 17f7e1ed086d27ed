import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { KubeObject } from "../api/index.ts";
import type { ConfigMap, Node, PersistentVolume, PersistentVolumeClaim, Pod, Secret, Volume } from "../api/core/v1.ts";
import { FakeClient, FakeClock } from "../client/index.ts";
import { MountError, VolumeManager, refreshPodVolumes, writeAtomic, type FileProjection } from "./volumes.ts";
import { volumeAttachmentName } from "../api/storage/v1.ts";
import { clientTokenRequester, TokenManager, type TokenRequest } from "./tokenmanager.ts";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "kubelet-volumes-test-"));
  dirs.push(d);
  return d;
}

function cm(name: string, data: Record<string, string>, binaryData?: Record<string, string>): ConfigMap {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: "default" }, data, ...(binaryData ? { binaryData } : {}) };
}

function secret(name: string, data: Record<string, string>): Secret {
  const enc: Record<string, string> = {};
  for (const [k, v] of Object.entries(data)) enc[k] = Buffer.from(v).toString("base64");
  return { apiVersion: "v1", kind: "Secret", metadata: { name, namespace: "default" }, data: enc };
}

function pod(volumes: Volume[], uid = "uid-1"): Pod {
  return { apiVersion: "v1", kind: "Pod", metadata: { name: "p", namespace: "default", uid }, spec: { containers: [{ name: "c", image: "busybox" }], volumes } };
}

interface Env {
  root: string;
  client: FakeClient;
  clock: FakeClock;
  vm: VolumeManager;
}

async function env(objects: (ConfigMap | Secret)[]): Promise<Env> {
  const root = await tempDir();
  const clock = new FakeClock();
  const client = new FakeClient(objects, { clock });
  // These cases are about projection: every read goes to the API (the cache has its own case).
  return { root, client, clock, vm: new VolumeManager(root, client, clock, { objectCacheTTLMs: 0 }) };
}

const cmDir = (root: string, vol: string, uid = "uid-1"): string => join(root, "pods", uid, "volumes", "kubernetes.io~configmap", vol);
const secretDir = (root: string, vol: string, uid = "uid-1"): string => join(root, "pods", uid, "volumes", "kubernetes.io~secret", vol);

/** Timestamped data directories of a volume dir. */
async function tsDirs(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.startsWith("..") && n !== "..data" && n !== "..data_tmp").sort();
}

async function updateCM(e: Env, obj: ConfigMap): Promise<void> {
  const cur = await e.client.resource<ConfigMap>("", "configmaps").get("default", obj.metadata.name ?? "");
  await e.client.resource<ConfigMap>("", "configmaps").update({ ...obj, metadata: { ...cur.metadata } });
}

describe("writeAtomic", () => {
  it("lays out ..<timestamp>, the ..data symlink and key symlinks", async () => {
    const dir = join(await tempDir(), "vol");
    const payload = new Map<string, FileProjection>([
      ["a", { data: Buffer.from("A"), mode: 0o644 }],
      ["sub/b", { data: Buffer.from("B"), mode: 0o600 }],
    ]);
    const now = Date.UTC(2024, 4, 6, 7, 8, 9);
    expect(await writeAtomic(dir, payload, () => now)).toBe(true);
    const [ts] = await tsDirs(dir);
    expect(ts).toMatch(/^\.\.2024_05_06_07_08_09\./);
    expect(await readlink(join(dir, "..data"))).toBe(ts);
    expect(await readlink(join(dir, "a"))).toBe("..data/a");
    expect(await readlink(join(dir, "sub"))).toBe("..data/sub");
    expect((await readdir(dir)).sort()).toEqual([ts, "..data", "a", "sub"].sort());
    expect(await readFile(join(dir, "a"), "utf8")).toBe("A");
    expect(await readFile(join(dir, "sub", "b"), "utf8")).toBe("B");
    expect((await stat(join(dir, ts ?? "", "sub", "b"))).mode & 0o777).toBe(0o600);
  });

  it("rejects paths that escape or start with '..'", async () => {
    const dir = join(await tempDir(), "vol");
    await expect(writeAtomic(dir, new Map([["../x", { data: Buffer.from("x"), mode: 0o644 }]]))).rejects.toThrow("must not contain '..'");
    await expect(writeAtomic(dir, new Map([["..data", { data: Buffer.from("x"), mode: 0o644 }]]))).rejects.toThrow("must not start with '..'");
    await expect(writeAtomic(dir, new Map([["/etc/passwd", { data: Buffer.from("x"), mode: 0o644 }]]))).rejects.toThrow("must be relative path");
  });

  it("replaces the plain files of an older layout", async () => {
    const dir = join(await tempDir(), "vol");
    await mkdir(join(dir, "olddir"), { recursive: true });
    await writeFile(join(dir, "a"), "old");
    await writeFile(join(dir, "gone"), "x");
    expect(await writeAtomic(dir, new Map([["a", { data: Buffer.from("new"), mode: 0o644 }]]))).toBe(true);
    expect(await readlink(join(dir, "a"))).toBe("..data/a");
    expect(await readFile(join(dir, "a"), "utf8")).toBe("new");
    await expect(lstat(join(dir, "gone"))).rejects.toThrow();
    await expect(lstat(join(dir, "olddir"))).rejects.toThrow();
  });
});

describe("VolumeManager configMap/secret volumes", () => {
  it("projects all keys of a configMap (data and binaryData) with defaultMode", async () => {
    const e = await env([cm("cfg", { color: "blue" }, { bin: Buffer.from([0, 1, 2]).toString("base64") })]);
    const vols = await e.vm.setUp(pod([{ name: "c", configMap: { name: "cfg", defaultMode: 0o640 } }]), "10.0.0.1");
    const dir = cmDir(e.root, "c");
    expect(vols.paths.get("c")).toBe(dir);
    expect(await readlink(join(dir, "color"))).toBe("..data/color");
    expect(await readFile(join(dir, "color"), "utf8")).toBe("blue");
    expect([...(await readFile(join(dir, "bin")))]).toEqual([0, 1, 2]);
    expect((await stat(join(dir, "color"))).mode & 0o777).toBe(0o640);
    expect((await lstat(join(dir, "color"))).isSymbolicLink()).toBe(true);
  });

  it("later syncs read the node's cached objects for a minute; a pod's first set-up reads fresh", async () => {
    const root = await tempDir();
    const clock = new FakeClock();
    const client = new FakeClient([cm("cfg", { color: "blue" })], { clock });
    const vm = new VolumeManager(root, client, clock);
    const p1 = pod([{ name: "c", configMap: { name: "cfg" } }]);
    await vm.setUp(p1, "");
    const gets = () => client.actions.filter((a) => a.verb === "get" && a.resource === "configmaps").length;
    await updateCM({ root, client, clock, vm }, cm("cfg", { color: "red" }));
    const before = gets();
    expect((await vm.refresh(p1)).updated).toEqual([]); // within the minute: the cached copy
    await vm.setUp(p1, "");
    expect(gets()).toBe(before);
    const p2 = pod([{ name: "c", configMap: { name: "cfg" } }], "uid-2");
    await vm.setUp(p2, ""); // a new pod: fresh
    expect(gets()).toBe(before + 1);
    expect(await readFile(join(cmDir(root, "c", "uid-2"), "color"), "utf8")).toBe("red");
    clock.advance(61_000);
    expect((await vm.refresh(p1)).updated).toEqual(["c"]);
  });

  it("a content update swaps ..data to a new directory and removes the old one", async () => {
    const e = await env([cm("cfg", { color: "blue" })]);
    const p = pod([{ name: "c", configMap: { name: "cfg" } }]);
    await e.vm.setUp(p, "");
    const dir = cmDir(e.root, "c");
    const [first] = await tsDirs(dir);
    await updateCM(e, cm("cfg", { color: "red" }));
    e.clock.advance(61_000);
    expect(await e.vm.refresh(p)).toEqual({ updated: ["c"], errors: [] });
    const after = await tsDirs(dir);
    expect(after).toHaveLength(1);
    expect(after[0]).not.toBe(first);
    expect(await readlink(join(dir, "..data"))).toBe(after[0]);
    expect(await readFile(join(dir, "color"), "utf8")).toBe("red");
    await expect(lstat(join(dir, "..data_tmp"))).rejects.toThrow();
  });

  it("a key removed from the configMap disappears from the volume", async () => {
    const e = await env([cm("cfg", { a: "1", b: "2" })]);
    const p = pod([{ name: "c", configMap: { name: "cfg" } }]);
    await e.vm.setUp(p, "");
    const dir = cmDir(e.root, "c");
    expect(await readFile(join(dir, "b"), "utf8")).toBe("2");
    await updateCM(e, cm("cfg", { a: "1" }));
    expect((await e.vm.refresh(p)).updated).toEqual(["c"]);
    await expect(lstat(join(dir, "b"))).rejects.toThrow();
    expect(await readFile(join(dir, "a"), "utf8")).toBe("1");
    expect((await readdir(dir)).filter((n) => !n.startsWith(".."))).toEqual(["a"]);
  });

  it("items map keys to nested paths with per-item modes; unselected keys are absent", async () => {
    const e = await env([cm("site", { "index.html": "<h1>hi</h1>", "style.css": "b{}", other: "x" })]);
    const p = pod([
      {
        name: "content",
        configMap: {
          name: "site",
          defaultMode: 0o644,
          items: [
            { key: "index.html", path: "html/index.html", mode: 0o400 },
            { key: "style.css", path: "html/css/style.css" },
          ],
        },
      },
    ]);
    await e.vm.setUp(p, "");
    const dir = cmDir(e.root, "content");
    expect((await readdir(dir)).filter((n) => !n.startsWith("..")).sort()).toEqual(["html"]);
    expect(await readlink(join(dir, "html"))).toBe("..data/html");
    expect(await readFile(join(dir, "html/index.html"), "utf8")).toBe("<h1>hi</h1>");
    expect(await readFile(join(dir, "html/css/style.css"), "utf8")).toBe("b{}");
    expect((await stat(join(dir, "html/index.html"))).mode & 0o777).toBe(0o400);
    expect((await stat(join(dir, "html/css/style.css"))).mode & 0o777).toBe(0o644);
    await expect(stat(join(dir, "other"))).rejects.toThrow();
    // Dropping one nested item: the file goes, the shared top-level symlink stays.
    await updateCM(e, cm("site", { "index.html": "<h1>hi</h1>", other: "x" }));
    const pOpt = pod([{ name: "content", configMap: { ...p.spec?.volumes?.[0]?.configMap, optional: true } }]);
    expect((await e.vm.refresh(pOpt)).updated).toEqual(["content"]);
    await expect(stat(join(dir, "html/css/style.css"))).rejects.toThrow();
    await expect(stat(join(dir, "html/css"))).rejects.toThrow();
    expect(await readFile(join(dir, "html/index.html"), "utf8")).toBe("<h1>hi</h1>");
  });

  it("a missing item key fails the mount unless optional", async () => {
    const e = await env([cm("cfg", { a: "1" })]);
    await expect(e.vm.setUp(pod([{ name: "c", configMap: { name: "cfg", items: [{ key: "nope", path: "x" }] } }]), "")).rejects.toThrow(
      'MountVolume.SetUp failed for volume "c" : configmap references non-existent config key: nope',
    );
    await e.vm.setUp(pod([{ name: "c", configMap: { name: "cfg", optional: true, items: [{ key: "nope", path: "x" }, { key: "a", path: "y" }] } }]), "");
    expect((await readdir(cmDir(e.root, "c"))).filter((n) => !n.startsWith(".."))).toEqual(["y"]);
  });

  it("an optional missing configMap gives an empty volume; a required one fails with MountError", async () => {
    const e = await env([]);
    const vols = await e.vm.setUp(pod([{ name: "c", configMap: { name: "absent", optional: true } }]), "");
    const dir = cmDir(e.root, "c");
    expect(vols.paths.get("c")).toBe(dir);
    const entries = await readdir(dir);
    expect(entries.filter((n) => !n.startsWith(".."))).toEqual([]);
    expect(entries).toContain("..data");
    const err = await e.vm.setUp(pod([{ name: "c", configMap: { name: "absent" } }], "uid-2"), "").catch((x: unknown) => x);
    expect(err).toBeInstanceOf(MountError);
    expect((err as MountError).message).toBe('MountVolume.SetUp failed for volume "c" : configmap "absent" not found');
  });

  it("an optional configMap that appears later is projected on refresh", async () => {
    const e = await env([]);
    const p = pod([{ name: "c", configMap: { name: "later", optional: true } }]);
    await e.vm.setUp(p, "");
    await e.client.resource<ConfigMap>("", "configmaps").create("default", cm("later", { k: "v" }));
    expect(await e.vm.refresh(p)).toEqual({ updated: ["c"], errors: [] });
    expect(await readFile(join(cmDir(e.root, "c"), "k"), "utf8")).toBe("v");
  });

  it("secret volumes: base64 data decoded, items with modes, missing key message", async () => {
    const e = await env([secret("creds", { user: "admin", pass: "s3cret" })]);
    await e.vm.setUp(pod([{ name: "s", secret: { secretName: "creds", defaultMode: 0o400, items: [{ key: "pass", path: "auth/password", mode: 0o440 }, { key: "user", path: "username" }] } }]), "");
    const dir = secretDir(e.root, "s");
    expect(await readFile(join(dir, "auth/password"), "utf8")).toBe("s3cret");
    expect((await stat(join(dir, "auth/password"))).mode & 0o777).toBe(0o440);
    expect((await stat(join(dir, "username"))).mode & 0o777).toBe(0o400);
    expect(await readlink(join(dir, "auth"))).toBe("..data/auth");
    await expect(e.vm.setUp(pod([{ name: "s", secret: { secretName: "creds", items: [{ key: "token", path: "t" }] } }], "uid-2"), "")).rejects.toThrow(
      'MountVolume.SetUp failed for volume "s" : references non-existent secret key: token',
    );
    await expect(e.vm.setUp(pod([{ name: "s", secret: { secretName: "nope" } }], "uid-3"), "")).rejects.toThrow('secret "nope" not found');
  });
});

describe("refreshPodVolumes", () => {
  it("is a no-op when nothing changed (same ..data target, same files)", async () => {
    const e = await env([cm("cfg", { a: "1" }), secret("s", { t: "x" })]);
    const p = pod([
      { name: "c", configMap: { name: "cfg" } },
      { name: "s", secret: { secretName: "s" } },
    ]);
    await e.vm.setUp(p, "");
    const before = [await readlink(join(cmDir(e.root, "c"), "..data")), await readlink(join(secretDir(e.root, "s"), "..data"))];
    const mtime = (await stat(join(cmDir(e.root, "c"), "a"))).mtimeMs;
    e.clock.advance(90_000);
    expect(await refreshPodVolumes(e.root, e.client, p)).toEqual({ updated: [], errors: [] });
    expect([await readlink(join(cmDir(e.root, "c"), "..data")), await readlink(join(secretDir(e.root, "s"), "..data"))]).toEqual(before);
    expect(await tsDirs(cmDir(e.root, "c"))).toEqual([before[0]]);
    expect((await stat(join(cmDir(e.root, "c"), "a"))).mtimeMs).toBe(mtime);
    // setUp again (every pod sync) is also a no-op.
    await e.vm.setUp(p, "");
    expect(await readlink(join(cmDir(e.root, "c"), "..data"))).toBe(before[0]);
  });

  it("refreshes secrets and only the volumes that changed", async () => {
    const e = await env([cm("cfg", { a: "1" }), secret("s", { t: "x" })]);
    const p = pod([
      { name: "c", configMap: { name: "cfg" } },
      { name: "s", secret: { secretName: "s" } },
    ]);
    await e.vm.setUp(p, "");
    const cmData = await readlink(join(cmDir(e.root, "c"), "..data"));
    const cur = await e.client.resource<Secret>("", "secrets").get("default", "s");
    await e.client.resource<Secret>("", "secrets").update({ ...secret("s", { t: "y" }), metadata: cur.metadata });
    expect(await refreshPodVolumes(e.root, e.client, p)).toEqual({ updated: ["s"], errors: [] });
    expect(await readFile(join(secretDir(e.root, "s"), "t"), "utf8")).toBe("y");
    expect(await readlink(join(cmDir(e.root, "c"), "..data"))).toBe(cmData);
  });

  it("a deleted required configMap is reported and the previous content stays", async () => {
    const e = await env([cm("cfg", { a: "1" })]);
    const p = pod([{ name: "c", configMap: { name: "cfg" } }]);
    await e.vm.setUp(p, "");
    await e.client.resource<ConfigMap>("", "configmaps").delete("default", "cfg");
    const r = await e.vm.refresh(p);
    expect(r.updated).toEqual([]);
    expect(r.errors.map((x) => x.message)).toEqual(['MountVolume.SetUp failed for volume "c" : configmap "cfg" not found']);
    expect(r.errors[0]?.volume).toBe("c");
    expect(await readFile(join(cmDir(e.root, "c"), "a"), "utf8")).toBe("1");
  });

  it("a deleted optional configMap empties the volume", async () => {
    const e = await env([cm("cfg", { a: "1" })]);
    const p = pod([{ name: "c", configMap: { name: "cfg", optional: true } }]);
    await e.vm.setUp(p, "");
    await e.client.resource<ConfigMap>("", "configmaps").delete("default", "cfg");
    expect((await e.vm.refresh(p)).updated).toEqual(["c"]);
    expect((await readdir(cmDir(e.root, "c"))).filter((n) => !n.startsWith(".."))).toEqual([]);
  });

  it("skips volumes that were never set up, and leaves emptyDir/hostPath alone", async () => {
    const e = await env([cm("cfg", { a: "1" })]);
    const p = pod([
      { name: "c", configMap: { name: "cfg" } },
      { name: "scratch", emptyDir: {} },
    ]);
    expect(await e.vm.refresh(p)).toEqual({ updated: [], errors: [] });
    await expect(stat(join(e.root, "pods", "uid-1"))).rejects.toThrow();
  });

  it("concurrent refreshes of the same volume leave one consistent data directory", async () => {
    const e = await env([cm("cfg", { a: "1" })]);
    const p = pod([{ name: "c", configMap: { name: "cfg" } }]);
    await e.vm.setUp(p, "");
    await updateCM(e, cm("cfg", { a: "2" }));
    const rs = await Promise.all([e.vm.refresh(p), e.vm.refresh(p), e.vm.setUp(p, "")]);
    expect(rs[0].updated.length + rs[1].updated.length).toBe(1);
    const dir = cmDir(e.root, "c");
    expect(await tsDirs(dir)).toEqual([await readlink(join(dir, "..data"))]);
    expect(await readFile(join(dir, "a"), "utf8")).toBe("2");
  });
});

describe("writeAtomic without create", () => {
  it("does not recreate a volume directory removed by cleanup", async () => {
    const dir = join(await tempDir(), "pods", "u", "volumes", "kubernetes.io~configmap", "c");
    expect(await writeAtomic(dir, new Map([["a", { data: Buffer.from("1"), mode: 0o644 }]]), Date.now, false)).toBe(false);
    await expect(stat(dir)).rejects.toThrow();
  });
});

describe("VolumeManager persistentVolumeClaim volumes", () => {
  const ZONE = "topology.kubernetes.io/zone";
  const handle = "vol-0123456789abcdef0";
  const driver = "zonal.csi.kubelab.io";
  function objects(opts: { bound?: boolean; attached?: boolean; nodeZone?: string } = {}) {
    const out: KubeObject[] = [
      {
        apiVersion: "v1",
        kind: "PersistentVolumeClaim",
        metadata: { name: "data", namespace: "default" },
        spec: { accessModes: ["ReadWriteOnce"], ...(opts.bound !== false ? { volumeName: "pvc-1" } : {}) },
        status: { phase: opts.bound !== false ? "Bound" : "Pending" },
      } as PersistentVolumeClaim,
      {
        apiVersion: "v1",
        kind: "PersistentVolume",
        metadata: { name: "pvc-1" },
        spec: {
          csi: { driver, volumeHandle: handle, fsType: "ext4" },
          nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: ZONE, operator: "In", values: ["zone-a"] }] }] } },
        },
      } as PersistentVolume,
      {
        apiVersion: "v1",
        kind: "Node",
        metadata: { name: "n1", labels: { [ZONE]: opts.nodeZone ?? "zone-a" } },
        // the attach/detach controller reports an attached volume in the node's status
        ...(opts.attached ? { status: { volumesAttached: [{ name: `kubernetes.io/csi/${driver}^${handle}`, devicePath: "" }] } } : {}),
      } as Node,
      { apiVersion: "storage.k8s.io/v1", kind: "CSIDriver", metadata: { name: driver }, spec: { attachRequired: true } } as KubeObject,
    ];
    if (opts.attached !== undefined) {
      out.push({
        apiVersion: "storage.k8s.io/v1",
        kind: "VolumeAttachment",
        metadata: { name: volumeAttachmentName(handle, driver, "n1") },
        spec: { attacher: driver, nodeName: "n1", source: { persistentVolumeName: "pvc-1" } },
        status: { attached: opts.attached },
      } as KubeObject);
    }
    return out;
  }
  async function setUp(objs: KubeObject[]): Promise<{ result: string | MountError; volumeDir: string }> {
    const root = await tempDir();
    const volumeDir = join(root, "cloud");
    const vm = new VolumeManager(root, new FakeClient(objs), new FakeClock(), { nodeName: "n1", volumeDir });
    try {
      return { result: (await vm.setUp(pod([{ name: "data", persistentVolumeClaim: { claimName: "data" } }]), "10.0.0.1")).paths.get("data")!, volumeDir };
    } catch (e) {
      if (e instanceof MountError) return { result: e, volumeDir };
      throw e;
    }
  }

  it("an attached zonal volume is the host directory <volume-dir>/<volumeHandle>, created on first use", async () => {
    const { result, volumeDir } = await setUp(objects({ attached: true }));
    expect(result).toBe(join(volumeDir, handle));
    expect((await stat(result as string)).isDirectory()).toBe(true);
  });

  it.each([
    { name: "not yet attached", opts: { attached: false } },
    { name: "no VolumeAttachment at all", opts: {} },
  ])("$name: FailedMount with upstream's timeout message", async ({ opts }) => {
    const { result } = await setUp(objects(opts));
    expect((result as MountError).message).toBe("Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[data]: timed out waiting for the condition");
  });

  it("an unbound claim waits", async () => {
    const { result } = await setUp(objects({ bound: false }));
    expect((result as MountError).message).toBe("Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[data]: error processing PVC default/data: PVC is not bound");
  });

  it("a node in another zone never mounts a zonal volume, even when an attachment says attached", async () => {
    const { result } = await setUp(objects({ attached: true, nodeZone: "zone-b" }));
    expect(result).toBeInstanceOf(MountError);
    expect((result as MountError).message).toMatch(/^MountVolume.SetUp failed for volume "data" : volume node affinity of persistentvolume "pvc-1" does not admit node "n1"/);
  });

  it("a mounted claim stays mounted for the pod's life; after cleanUp it is checked again", async () => {
    const root = await tempDir();
    const client = new FakeClient(objects({ attached: true }));
    const vm = new VolumeManager(root, client, new FakeClock(), { nodeName: "n1", volumeDir: join(root, "cloud") });
    const p = pod([{ name: "data", persistentVolumeClaim: { claimName: "data" } }]);
    const first = (await vm.setUp(p, "10.0.0.1")).paths.get("data");
    await client.resource("storage.k8s.io", "volumeattachments").delete("", volumeAttachmentName(handle, driver, "n1"));
    expect((await vm.setUp(p, "10.0.0.1")).paths.get("data")).toBe(first);
    await vm.cleanUp("uid-1");
    await expect(vm.setUp(p, "10.0.0.1")).rejects.toThrow(/unattached volumes=\[data\]/);
    expect((await stat(first!)).isDirectory()).toBe(true); // the disk outlives the pod
  });

  it("a regional volume (attachRequired false) needs no attachment", async () => {
    const objs = objects();
    const pv = objs[1] as PersistentVolume;
    pv.spec = { csi: { driver: "regional.csi.kubelab.io", volumeHandle: "fs-0123456789abcdef0" } };
    objs[3] = { apiVersion: "storage.k8s.io/v1", kind: "CSIDriver", metadata: { name: "regional.csi.kubelab.io" }, spec: { attachRequired: false } } as KubeObject;
    const { result, volumeDir } = await setUp(objs);
    expect(result).toBe(join(volumeDir, "fs-0123456789abcdef0"));
  });
});

// ---- projected and downwardAPI volumes ---------------------------------------------------------

describe("VolumeManager projected volumes (kube-api-access)", () => {
  const SA_DIR = "kube-api-access-abcde";
  const CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  const kubeAPIAccess = (extra: Partial<Volume["projected"]> = {}): Volume => ({
    name: SA_DIR,
    projected: {
      defaultMode: 420,
      sources: [
        { serviceAccountToken: { expirationSeconds: 3607, path: "token" } },
        { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
        { downwardAPI: { items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }] } },
      ],
      ...extra,
    },
  });
  const saPod = (volumes: Volume[], uid = "uid-1"): Pod => {
    const p = pod(volumes, uid);
    p.spec!.serviceAccountName = "builder";
    return p;
  };
  const projDir = (root: string, vol = SA_DIR, uid = "uid-1"): string => join(root, "pods", uid, "volumes", "kubernetes.io~projected", vol);

  /** A VolumeManager whose client answers TokenRequests with tok-1, tok-2, ... (or fails with `fail`). */
  async function tokenEnv(objects: (ConfigMap | Secret)[] = [cm("kube-root-ca.crt", { "ca.crt": CA })]) {
    const root = await tempDir();
    const clock = new FakeClock();
    const requests: { namespace: string; name: string; body: TokenRequest }[] = [];
    const state: { fail?: Error } = {};
    const client = Object.assign(new FakeClient(objects, { clock }), {
      async createToken(namespace: string, name: string, body: TokenRequest): Promise<TokenRequest> {
        requests.push({ namespace, name, body: structuredClone(body) });
        if (state.fail) throw state.fail;
        const seconds = body.spec.expirationSeconds ?? 3600;
        return { ...body, status: { token: `tok-${requests.length}`, expirationTimestamp: new Date(clock.now() + seconds * 1000).toISOString() } };
      },
    });
    const vm = new VolumeManager(root, client, clock, { tokens: new TokenManager(clientTokenRequester(client), { clock, random: () => 0 }) });
    return { root, clock, client, vm, requests, state };
  }

  it("writes the pod-bound token, ca.crt and namespace through ..data, mode 0644", async () => {
    const e = await tokenEnv();
    const vols = await e.vm.setUp(saPod([kubeAPIAccess()]), "10.0.0.1");
    const dir = projDir(e.root);
    expect(vols.paths.get(SA_DIR)).toBe(dir);
    expect(await readFile(join(dir, "token"), "utf8")).toBe("tok-1");
    expect(await readFile(join(dir, "ca.crt"), "utf8")).toBe(CA);
    expect(await readFile(join(dir, "namespace"), "utf8")).toBe("default");
    for (const f of ["token", "ca.crt", "namespace"]) {
      expect(await readlink(join(dir, f))).toBe(`..data/${f}`);
      expect((await stat(join(dir, f))).mode & 0o777).toBe(0o644);
    }
    expect((await readdir(dir)).filter((n) => !n.startsWith("..")).sort()).toEqual(["ca.crt", "namespace", "token"]);
    expect(e.requests).toEqual([
      { namespace: "default", name: "builder", body: { spec: { expirationSeconds: 3607, boundObjectRef: { apiVersion: "v1", kind: "Pod", name: "p", uid: "uid-1" } } } },
    ]);
  });

  it("an audience is requested as the token's only audience; a pod without serviceAccountName asks for 'default'", async () => {
    const e = await tokenEnv([]);
    await e.vm.setUp(pod([{ name: "vault", projected: { sources: [{ serviceAccountToken: { audience: "vault", path: "vault-token" } }] } }]), "");
    expect(e.requests[0]).toMatchObject({ name: "default", body: { spec: { audiences: ["vault"], expirationSeconds: 3600 } } });
    expect(await readFile(join(projDir(e.root, "vault"), "vault-token"), "utf8")).toBe("tok-1");
  });

  it("a sync before 80% of the TTL keeps the file; after it the token is re-requested and the file swapped", async () => {
    const e = await tokenEnv();
    const p = saPod([kubeAPIAccess()]);
    await e.vm.setUp(p, "");
    const dir = projDir(e.root);
    const first = await readlink(join(dir, "..data"));
    await e.clock.advance(Math.floor(3607 * 0.8) * 1000); // 2885 s: 80% is 2885.6 s
    await e.vm.setUp(p, "");
    expect(e.requests).toHaveLength(1);
    expect(await readlink(join(dir, "..data"))).toBe(first);
    await e.clock.advance(2_000);
    await e.vm.setUp(p, "");
    expect(e.requests).toHaveLength(2);
    expect(await readFile(join(dir, "token"), "utf8")).toBe("tok-2");
    const second = await readlink(join(dir, "..data"));
    expect(second).not.toBe(first);
    expect(await tsDirs(dir)).toEqual([second]);
    expect(await readFile(join(dir, "ca.crt"), "utf8")).toBe(CA);
  });

  it("refresh() re-projects a projected volume too", async () => {
    const e = await tokenEnv();
    const p = saPod([kubeAPIAccess()]);
    await e.vm.setUp(p, "");
    await e.clock.advance(2_900_000);
    expect(await e.vm.refresh(p)).toEqual({ updated: [SA_DIR], errors: [] });
    expect(await readFile(join(projDir(e.root), "token"), "utf8")).toBe("tok-2");
  });

  it("a missing kube-root-ca.crt fails the mount with the configMap volume's message; the pod's token is still cached", async () => {
    const e = await tokenEnv([]);
    const err = await e.vm.setUp(saPod([kubeAPIAccess()]), "").catch((x: unknown) => x);
    expect(err).toBeInstanceOf(MountError);
    expect((err as MountError).message).toBe(`MountVolume.SetUp failed for volume "${SA_DIR}" : configmap "kube-root-ca.crt" not found`);
    expect((err as MountError).volume).toBe(SA_DIR);
    await expect(stat(projDir(e.root))).rejects.toThrow(); // nothing half-written
    await e.client.resource<ConfigMap>("", "configmaps").create("default", cm("kube-root-ca.crt", { "ca.crt": CA }));
    await e.vm.setUp(saPod([kubeAPIAccess()]), "");
    expect(e.requests).toHaveLength(1);
    expect(await readFile(join(projDir(e.root), "ca.crt"), "utf8")).toBe(CA);
  });

  it("optional configMap and secret sources that do not exist are left out; a missing required secret fails", async () => {
    const e = await tokenEnv([secret("creds", { user: "admin" })]);
    const v: Volume = {
      name: "all",
      projected: {
        defaultMode: 0o440,
        sources: [
          { configMap: { name: "absent", optional: true } },
          { secret: { name: "also-absent", optional: true, items: [{ key: "k", path: "k" }] } },
          { secret: { name: "creds", items: [{ key: "user", path: "auth/user", mode: 0o400 }] } },
          { configMap: { name: "creds-cm", optional: true } },
        ],
      },
    };
    await e.vm.setUp(pod([v]), "");
    const dir = projDir(e.root, "all");
    expect((await readdir(dir)).filter((n) => !n.startsWith(".."))).toEqual(["auth"]);
    expect(await readFile(join(dir, "auth/user"), "utf8")).toBe("admin");
    expect((await stat(join(dir, "auth/user"))).mode & 0o777).toBe(0o400);
    const required: Volume = { name: "req", projected: { sources: [{ secret: { name: "nope" } }, { secret: { name: "creds", items: [{ key: "missing", path: "m" }] } }] } };
    await expect(e.vm.setUp(pod([required], "uid-2"), "")).rejects.toThrow(
      'MountVolume.SetUp failed for volume "req" : [secret "nope" not found, references non-existent secret key: missing]',
    );
  });

  it("a TokenRequest failure is a MountError (FailedMount), and the next setUp asks again", async () => {
    const e = await tokenEnv();
    e.state.fail = new Error('serviceaccounts "builder" not found');
    const err = await e.vm.setUp(saPod([kubeAPIAccess()]), "").catch((x: unknown) => x);
    expect(err).toBeInstanceOf(MountError);
    expect((err as MountError).message).toBe(`MountVolume.SetUp failed for volume "${SA_DIR}" : failed to fetch token: serviceaccounts "builder" not found`);
    e.state.fail = undefined;
    await e.vm.setUp(saPod([kubeAPIAccess()]), "");
    expect(await readFile(join(projDir(e.root), "token"), "utf8")).toBe("tok-2");
  });

  it("a failed refresh keeps the still-valid token in the file", async () => {
    const e = await tokenEnv();
    const p = saPod([kubeAPIAccess()]);
    await e.vm.setUp(p, "");
    await e.clock.advance(3000_000);
    e.state.fail = new Error("connection refused");
    await e.vm.setUp(p, "");
    expect(await readFile(join(projDir(e.root), "token"), "utf8")).toBe("tok-1");
  });

  it("cleanUp forgets the pod's tokens: a new pod of the same uid gets a new token", async () => {
    const e = await tokenEnv();
    const p = saPod([kubeAPIAccess()]);
    await e.vm.setUp(p, "");
    expect(e.vm.tokens.size()).toBe(1);
    await e.vm.cleanUp("uid-1");
    expect(e.vm.tokens.size()).toBe(0);
    await e.vm.setUp(p, "");
    expect(e.requests).toHaveLength(2);
  });

  it("downwardAPI sources: labels and annotations as sorted key=\"value\" lines, pod IP, items' modes", async () => {
    const e = await tokenEnv([]);
    const p = pod([
      {
        name: "info",
        projected: {
          sources: [
            {
              downwardAPI: {
                items: [
                  { path: "labels", fieldRef: { fieldPath: "metadata.labels" } },
                  { path: "annotations", fieldRef: { fieldPath: "metadata.annotations" }, mode: 0o600 },
                  { path: "app", fieldRef: { fieldPath: "metadata.labels['app']" } },
                  { path: "name", fieldRef: { fieldPath: "metadata.name" } },
                  { path: "uid", fieldRef: { fieldPath: "metadata.uid" } },
                  { path: "ip", fieldRef: { fieldPath: "status.podIP" } },
                ],
              },
            },
          ],
        },
      },
    ]);
    p.metadata.labels = { tier: "web", app: "shop" };
    p.metadata.annotations = { note: 'say "hi"\n' };
    await e.vm.setUp(p, "10.1.2.3");
    const dir = projDir(e.root, "info");
    expect(await readFile(join(dir, "labels"), "utf8")).toBe('app="shop"\ntier="web"');
    expect(await readFile(join(dir, "annotations"), "utf8")).toBe('note="say \\"hi\\"\\n"');
    expect((await stat(join(dir, "annotations"))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(dir, "app"), "utf8")).toBe("shop");
    expect(await readFile(join(dir, "name"), "utf8")).toBe("p");
    expect(await readFile(join(dir, "uid"), "utf8")).toBe("uid-1");
    expect(await readFile(join(dir, "ip"), "utf8")).toBe("10.1.2.3");
    // A label change rewrites the file on the next sync.
    p.metadata.labels = { app: "shop" };
    await e.vm.setUp(p, "10.1.2.3");
    expect(await readFile(join(dir, "labels"), "utf8")).toBe('app="shop"');
  });

  it("an unsupported fieldPath fails the mount", async () => {
    const e = await tokenEnv([]);
    await expect(e.vm.setUp(pod([{ name: "bad", projected: { sources: [{ downwardAPI: { items: [{ path: "x", fieldRef: { fieldPath: "spec.bogus" } }] } }] } }]), "")).rejects.toThrow(
      'MountVolume.SetUp failed for volume "bad" : unsupported fieldPath: spec.bogus',
    );
  });
});

describe("VolumeManager downwardAPI volumes", () => {
  it("writes the items with defaultMode under kubernetes.io~downward-api, resource values in divisor units", async () => {
    const e = await env([]);
    const p = pod([
      {
        name: "podinfo",
        downwardAPI: {
          defaultMode: 0o640,
          items: [
            { path: "namespace", fieldRef: { fieldPath: "metadata.namespace" } },
            { path: "cpu_limit_m", resourceFieldRef: { containerName: "c", resource: "limits.cpu", divisor: "1m" } },
            { path: "mem_request_mi", resourceFieldRef: { containerName: "c", resource: "requests.memory", divisor: "1Mi" } },
          ],
        },
      },
    ]);
    p.spec!.containers[0].resources = { limits: { cpu: "500m" }, requests: { memory: "64Mi" } };
    const vols = await e.vm.setUp(p, "");
    const dir = join(e.root, "pods", "uid-1", "volumes", "kubernetes.io~downward-api", "podinfo");
    expect(vols.paths.get("podinfo")).toBe(dir);
    expect(await readFile(join(dir, "namespace"), "utf8")).toBe("default");
    expect(await readFile(join(dir, "cpu_limit_m"), "utf8")).toBe("500");
    expect(await readFile(join(dir, "mem_request_mi"), "utf8")).toBe("64");
    expect((await stat(join(dir, "namespace"))).mode & 0o777).toBe(0o640);
    expect(await readlink(join(dir, "namespace"))).toBe("..data/namespace");
  });
});
