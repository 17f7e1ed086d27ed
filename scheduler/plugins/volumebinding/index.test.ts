import { describe, expect, it } from "vitest";
import type { KubeObject, Node, PersistentVolume, PersistentVolumeClaim, Pod, StorageClass } from "../../../api/index.ts";
import { FakeClient, FakeRecorder } from "../../../client/testing.ts";
import { newNodeInfo } from "../../framework/nodeinfo.ts";
import { Code, CycleState, type Handle } from "../../framework/types.ts";
import { FakeClock, flushPromises } from "../../../client/testing.ts";
import {
  ErrReasonBindConflict,
  ErrReasonNodeConflict,
  ErrReasonPVNotExist,
  ErrReasonUnboundImmediatePVC,
  newVolumeBinding,
  VolumeBinding,
} from "./index.ts";
import { nodeSelectorMatches } from "../../../api/index.ts";

// ---- builders --------------------------------------------------------------------------------------

const ZONE = "topology.kubernetes.io/zone";

function node(name: string, zone: string): Node {
  return { apiVersion: "v1", kind: "Node", metadata: { name, labels: { [ZONE]: zone, "kubernetes.io/hostname": name } } };
}

function podWithClaims(...claims: string[]): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "p", namespace: "default" },
    spec: { containers: [{ name: "c", image: "pause" }], volumes: claims.map((c) => ({ name: c, persistentVolumeClaim: { claimName: c } })) },
  };
}

function claim(name: string, opts: { volumeName?: string; storageClassName?: string; request?: string } = {}): PersistentVolumeClaim {
  const { request, ...spec } = opts;
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    // A claim naming its volume here is one the controller finished binding.
    metadata: { name, namespace: "default", uid: `uid-${name}`, ...(opts.volumeName ? { annotations: { "pv.kubernetes.io/bind-completed": "yes" } } : {}) },
    spec: { accessModes: ["ReadWriteOnce"], ...spec, ...(request ? { resources: { requests: { storage: request } } } : {}) },
  };
}

function staticPV(name: string, zone: string, size: string, storageClassName: string): PersistentVolume {
  const pv = pvInZone(name, zone);
  pv.spec = { ...pv.spec, capacity: { storage: size }, accessModes: ["ReadWriteOnce"], storageClassName };
  pv.status = { phase: "Available" };
  return pv;
}

function pvInZone(name: string, zone: string): PersistentVolume {
  return {
    apiVersion: "v1",
    kind: "PersistentVolume",
    metadata: { name },
    spec: { nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: ZONE, operator: "In", values: [zone] }] }] } } },
  };
}

function storageClass(name: string, volumeBindingMode: StorageClass["volumeBindingMode"], extra: Partial<StorageClass> = {}): StorageClass {
  return { apiVersion: "storage.k8s.io/v1", kind: "StorageClass", metadata: { name }, provisioner: "zonal.csi.kubelab.io", volumeBindingMode, ...extra };
}

function handleWith(objects: KubeObject[] | undefined): Handle {
  const find = (kind: string, name: string, ns?: string) =>
    objects?.find((o) => o.kind === kind && o.metadata.name === name && (ns === undefined || o.metadata.namespace === ns));
  return {
    snapshot: () => ({ list: () => [], get: () => undefined, havePodsWithAffinityList: () => [], havePodsWithRequiredAntiAffinityList: () => [] }),
    client: new FakeClient(),
    recorder: new FakeRecorder(),
    ...(objects
      ? {
          volumes: {
            pvc: (ns: string, n: string) => find("PersistentVolumeClaim", n, ns),
            pv: (n: string) => find("PersistentVolume", n),
            storageClass: (n: string) => find("StorageClass", n),
            listPVs: () => objects.filter((o) => o.kind === "PersistentVolume"),
          },
        }
      : {}),
  };
}

const ok = { code: Code.Success, reasons: [] };
const skip = { code: Code.Skip, reasons: [] };
const unresolvable = (...reasons: string[]) => ({ code: Code.UnschedulableAndUnresolvable, reasons });

// ---- cases -----------------------------------------------------------------------------------------

describe("VolumeBinding", () => {
  const cases: { name: string; pod: Pod; objects?: KubeObject[]; want: Record<string, { code: number; reasons: readonly string[] }> }[] = [
    { name: "without volume listers in the handle the plugin skips", pod: podWithClaims("data"), want: { a1: skip, b1: skip } },
    { name: "a pod without claims is skipped", pod: podWithClaims(), objects: [], want: { a1: skip, b1: skip } },
    {
      name: "a claim bound to a volume pinned to zone-a admits zone-a and reports a node affinity conflict elsewhere",
      pod: podWithClaims("data"),
      objects: [claim("data", { volumeName: "pv-a" }), pvInZone("pv-a", "zone-a")],
      want: { a1: ok, b1: unresolvable(ErrReasonNodeConflict) },
    },
    {
      name: "a claim bound to a volume that no longer exists is unresolvable on every node",
      pod: podWithClaims("data"),
      objects: [claim("data", { volumeName: "pv-gone" })],
      want: { a1: unresolvable(ErrReasonPVNotExist), b1: unresolvable(ErrReasonPVNotExist) },
    },
    {
      name: "an unbound claim of an Immediate class waits for the PV controller, not for a node",
      pod: podWithClaims("data"),
      objects: [claim("data", { storageClassName: "fast" }), storageClass("fast", "Immediate")],
      want: { a1: unresolvable(ErrReasonUnboundImmediatePVC), b1: unresolvable(ErrReasonUnboundImmediatePVC) },
    },
    {
      name: "an unbound claim without a class counts as immediate",
      pod: podWithClaims("data"),
      objects: [claim("data")],
      want: { a1: unresolvable(ErrReasonUnboundImmediatePVC), b1: unresolvable(ErrReasonUnboundImmediatePVC) },
    },
    {
      name: "an unbound claim of a WaitForFirstConsumer class passes everywhere (provisioned after scheduling)",
      pod: podWithClaims("data"),
      objects: [claim("data", { storageClassName: "zonal" }), storageClass("zonal", "WaitForFirstConsumer")],
      want: { a1: ok, b1: ok },
    },
    {
      name: "an unbound WaitForFirstConsumer claim conflicts on nodes outside the class's allowedTopologies",
      pod: podWithClaims("data"),
      objects: [
        claim("data", { storageClassName: "zonal" }),
        storageClass("zonal", "WaitForFirstConsumer", { allowedTopologies: [{ matchLabelExpressions: [{ key: ZONE, values: ["zone-a"] }] }] }),
      ],
      want: { a1: ok, b1: unresolvable(ErrReasonBindConflict) },
    },
    {
      name: "a class that cannot provision admits only the nodes a static PV fits",
      pod: podWithClaims("data"),
      objects: [
        claim("data", { storageClassName: "local", request: "1Gi" }),
        storageClass("local", "WaitForFirstConsumer", { provisioner: "kubernetes.io/no-provisioner" }),
        staticPV("pv-a", "zone-a", "2Gi", "local"),
      ],
      want: { a1: ok, b1: unresolvable(ErrReasonBindConflict) },
    },
    {
      name: "a static PV that is too small is no candidate",
      pod: podWithClaims("data"),
      objects: [
        claim("data", { storageClassName: "local", request: "5Gi" }),
        storageClass("local", "WaitForFirstConsumer", { provisioner: "kubernetes.io/no-provisioner" }),
        staticPV("pv-a", "zone-a", "2Gi", "local"),
      ],
      want: { a1: unresolvable(ErrReasonBindConflict), b1: unresolvable(ErrReasonBindConflict) },
    },
    {
      name: "a claim naming a volume the controller has not bound yet counts as an unbound immediate claim",
      pod: podWithClaims("data"),
      objects: [{ ...claim("data", { storageClassName: "zonal" }), spec: { volumeName: "pv-a", storageClassName: "zonal" } }, storageClass("zonal", "WaitForFirstConsumer"), pvInZone("pv-a", "zone-a")],
      want: { a1: unresolvable(ErrReasonUnboundImmediatePVC), b1: unresolvable(ErrReasonUnboundImmediatePVC) },
    },
    {
      name: "a missing claim is unresolvable",
      pod: podWithClaims("gone"),
      objects: [],
      want: { a1: unresolvable('persistentvolumeclaim "gone" not found'), b1: unresolvable('persistentvolumeclaim "gone" not found') },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const pl = newVolumeBinding(undefined, handleWith(c.objects)) as VolumeBinding;
      const state = new CycleState();
      const pre = pl.preFilter(state, c.pod).status;
      const got: Record<string, { code: number; reasons: readonly string[] }> = {};
      for (const n of [node("a1", "zone-a"), node("b1", "zone-b")]) {
        const st = pre.isSuccess() ? pl.filter(state, c.pod, newNodeInfo(n)) : pre;
        got[n.metadata.name!] = { code: st.code, reasons: st.reasons };
      }
      expect(got).toEqual(c.want);
    });
  }
});

describe("nodeSelectorMatches", () => {
  const n: Node = { apiVersion: "v1", kind: "Node", metadata: { name: "n1", labels: { zone: "a", cores: "8" } } };
  const cases: { name: string; terms: Parameters<typeof nodeSelectorMatches>[0]; want: boolean }[] = [
    { name: "an absent selector matches every node", terms: undefined, want: true },
    { name: "terms are ORed", terms: { nodeSelectorTerms: [{ matchExpressions: [{ key: "zone", operator: "In", values: ["b"] }] }, { matchExpressions: [{ key: "zone", operator: "In", values: ["a"] }] }] }, want: true },
    { name: "expressions within a term are ANDed", terms: { nodeSelectorTerms: [{ matchExpressions: [{ key: "zone", operator: "In", values: ["a"] }, { key: "gpu", operator: "Exists" }] }] }, want: false },
    { name: "an empty term matches nothing", terms: { nodeSelectorTerms: [{}] }, want: false },
    { name: "Gt compares integers", terms: { nodeSelectorTerms: [{ matchExpressions: [{ key: "cores", operator: "Gt", values: ["4"] }] }] }, want: true },
    { name: "matchFields selects by metadata.name", terms: { nodeSelectorTerms: [{ matchFields: [{ key: "metadata.name", operator: "In", values: ["n1"] }] }] }, want: true },
    { name: "NotIn matches a node without the label", terms: { nodeSelectorTerms: [{ matchExpressions: [{ key: "disk", operator: "NotIn", values: ["hdd"] }] }] }, want: true },
  ];
  for (const c of cases) it(c.name, () => expect(nodeSelectorMatches(c.terms, n)).toBe(c.want));
});

describe("VolumeBinding binding cycle", () => {
  const zonal = storageClass("zonal", "WaitForFirstConsumer");
  function setup(objects: KubeObject[]) {
    const client = new FakeClient(objects);
    const clock = new FakeClock();
    const live = (kind: string, resource: string, name: string, ns = "") => {
      void kind;
      return client.tracker("", resource, ns, name);
    };
    const handle: Handle = {
      snapshot: () => ({ list: () => [], get: (n: string) => newNodeInfo(node(n, n.startsWith("a") ? "zone-a" : "zone-b")), havePodsWithAffinityList: () => [], havePodsWithRequiredAntiAffinityList: () => [] }),
      client,
      recorder: new FakeRecorder(),
      volumes: {
        pvc: (ns, n) => live("PersistentVolumeClaim", "persistentvolumeclaims", n, ns),
        pv: (n) => live("PersistentVolume", "persistentvolumes", n),
        storageClass: (n) => (n === "zonal" ? zonal : n === "local" ? storageClass("local", "WaitForFirstConsumer", { provisioner: "kubernetes.io/no-provisioner" }) : undefined),
        listPVs: () => client.trackerList("", "persistentvolumes"),
      },
    };
    const pl = new VolumeBinding(handle, { clock, bindTimeoutSeconds: 5 });
    return { client, clock, pl };
  }
  function cycle(pl: VolumeBinding, pod: Pod, nodeName: string): CycleState {
    const state = new CycleState();
    expect(pl.preFilter(state, pod).status.isSuccess()).toBe(true);
    expect(pl.filter(state, pod, newNodeInfo(node(nodeName, "zone-a"))).isSuccess()).toBe(true);
    expect(pl.reserve(state, pod, nodeName).isSuccess()).toBe(true);
    return state;
  }

  it("PreBind writes the selected node on the claim and succeeds once the controller has bound it", async () => {
    const { client, clock, pl } = setup([claim("data", { storageClassName: "zonal" })]);
    const pod = podWithClaims("data");
    const done = pl.preBind(cycle(pl, pod, "a1"), pod, "a1");
    await flushPromises();
    const pvc = client.tracker("", "persistentvolumeclaims", "default", "data") as PersistentVolumeClaim;
    expect(pvc.metadata.annotations?.["volume.kubernetes.io/selected-node"]).toBe("a1");
    // The volume controller provisions in zone-a and binds.
    client.seed(pvInZone("pvc-uid-data", "zone-a"));
    client.seed({ ...pvc, metadata: { ...pvc.metadata, annotations: { ...pvc.metadata.annotations, "pv.kubernetes.io/bind-completed": "yes" } }, spec: { ...pvc.spec, volumeName: "pvc-uid-data" } });
    await clock.advance(100);
    await flushPromises();
    expect((await done).code).toBe(Code.Success);
  });

  it("PreBind fails when the provisioner removed the selected node (the pod is scheduled again)", async () => {
    const { client, clock, pl } = setup([claim("data", { storageClassName: "zonal" })]);
    const pod = podWithClaims("data");
    const done = pl.preBind(cycle(pl, pod, "a1"), pod, "a1");
    await flushPromises();
    const pvc = client.tracker("", "persistentvolumeclaims", "default", "data") as PersistentVolumeClaim;
    client.seed({ ...pvc, metadata: { ...pvc.metadata, annotations: {} } });
    await clock.advance(100);
    await flushPromises();
    const st = await done;
    expect({ code: st.code, message: st.message() }).toEqual({ code: Code.Error, message: 'binding volumes: provisioning failed for PVC "data"' });
  });

  it("PreBind keeps waiting while the informer has not yet seen its own selected-node write", async () => {
    const { client, clock, pl } = setup([claim("data", { storageClassName: "zonal" })]);
    const stale = client.tracker("", "persistentvolumeclaims", "default", "data") as PersistentVolumeClaim;
    let lagging = true;
    const volumes = (pl as unknown as { handle: Handle }).handle.volumes!;
    const live = volumes.pvc;
    volumes.pvc = (ns, n) => (lagging ? stale : live(ns, n));
    const pod = podWithClaims("data");
    const done = pl.preBind(cycle(pl, pod, "a1"), pod, "a1");
    let settled = false;
    void done.then(() => (settled = true));
    await flushPromises();
    await clock.advance(100);
    await flushPromises();
    expect(settled).toBe(false);
    lagging = false;
    const pvc = client.tracker("", "persistentvolumeclaims", "default", "data") as PersistentVolumeClaim;
    client.seed(pvInZone("pvc-uid-data", "zone-a"));
    client.seed({ ...pvc, metadata: { ...pvc.metadata, annotations: { ...pvc.metadata.annotations, "pv.kubernetes.io/bind-completed": "yes" } }, spec: { ...pvc.spec, volumeName: "pvc-uid-data" } });
    await clock.advance(100);
    expect((await done).isSuccess()).toBe(true);
  });

  it("PreBind gives up after the bind timeout", async () => {
    const { clock, pl } = setup([claim("data", { storageClassName: "zonal" })]);
    const pod = podWithClaims("data");
    const done = pl.preBind(cycle(pl, pod, "a1"), pod, "a1");
    for (let i = 0; i < 60; i++) {
      await flushPromises();
      await clock.advance(100);
    }
    expect((await done).message()).toBe("binding volumes: context deadline exceeded");
  });

  it("a static PV reserved for one claim is not offered to another until the first pod's PreBind ends, and PreBind pre-binds it", async () => {
    const { client, clock, pl } = setup([claim("one", { storageClassName: "local" }), claim("two", { storageClassName: "local" }), staticPV("pv-a", "zone-a", "1Gi", "local")]);
    const first = podWithClaims("one");
    const state = cycle(pl, first, "a1");
    const second = podWithClaims("two");
    const s2 = new CycleState();
    pl.preFilter(s2, second);
    expect(pl.filter(s2, second, newNodeInfo(node("a1", "zone-a"))).reasons).toEqual([ErrReasonBindConflict]);
    const done = pl.preBind(state, first, "a1");
    await flushPromises();
    const pv = client.tracker("", "persistentvolumes", "", "pv-a") as PersistentVolume;
    expect(pv.spec?.claimRef).toMatchObject({ namespace: "default", name: "one", uid: "uid-one" });
    const c = client.tracker("", "persistentvolumeclaims", "default", "one") as PersistentVolumeClaim;
    client.seed({ ...c, metadata: { ...c.metadata, annotations: { "pv.kubernetes.io/bind-completed": "yes" } }, spec: { ...c.spec, volumeName: "pv-a" } });
    await clock.advance(100);
    await flushPromises();
    expect((await done).isSuccess()).toBe(true);
  });

  it("unreserve releases the assumed PV", () => {
    const { pl } = setup([claim("one", { storageClassName: "local" }), claim("two", { storageClassName: "local" }), staticPV("pv-a", "zone-a", "1Gi", "local")]);
    const first = podWithClaims("one");
    pl.unreserve(cycle(pl, first, "a1"), first, "a1");
    const second = podWithClaims("two");
    const s2 = new CycleState();
    pl.preFilter(s2, second);
    expect(pl.filter(s2, second, newNodeInfo(node("a1", "zone-a"))).isSuccess()).toBe(true);
  });
});
