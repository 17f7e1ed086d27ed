import { describe, expect, it } from "vitest";
import type { KubeObject, Node, PersistentVolume, PersistentVolumeClaim, Pod, StorageClass } from "../../../api/index.ts";
import { FakeClient, FakeRecorder } from "../../../client/testing.ts";
import { newNodeInfo } from "../../framework/nodeinfo.ts";
import { Code, CycleState, type Handle } from "../../framework/types.ts";
import { ErrReasonNodeConflict, ErrReasonPVNotExist, ErrReasonUnboundImmediatePVC, newVolumeBinding, VolumeBinding } from "./index.ts";
import { nodeSelectorMatches } from "./nodeselector.ts";

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

function claim(name: string, opts: { volumeName?: string; storageClassName?: string } = {}): PersistentVolumeClaim {
  return { apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name, namespace: "default" }, spec: { ...opts } };
}

function pvInZone(name: string, zone: string): PersistentVolume {
  return {
    apiVersion: "v1",
    kind: "PersistentVolume",
    metadata: { name },
    spec: { nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: ZONE, operator: "In", values: [zone] }] }] } } },
  };
}

function storageClass(name: string, volumeBindingMode: StorageClass["volumeBindingMode"]): StorageClass {
  return { apiVersion: "storage.k8s.io/v1", kind: "StorageClass", metadata: { name }, provisioner: "kubelab.io/zonal", volumeBindingMode };
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
