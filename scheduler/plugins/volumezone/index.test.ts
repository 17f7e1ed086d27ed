import { describe, expect, it } from "vitest";
import type { KubeObject, Node, PersistentVolume, PersistentVolumeClaim, Pod } from "../../../api/index.ts";
import { FakeClient, FakeRecorder } from "../../../client/testing.ts";
import { newNodeInfo } from "../../framework/nodeinfo.ts";
import { Code, CycleState, type Handle } from "../../framework/types.ts";
import { ErrReasonConflict, newVolumeZone, VolumeZone } from "./index.ts";

// ---- builders --------------------------------------------------------------------------------------

const ZONE = "topology.kubernetes.io/zone";
const BETA_ZONE = "failure-domain.beta.kubernetes.io/zone";

function node(name: string, labels: Record<string, string>): Node {
  return { apiVersion: "v1", kind: "Node", metadata: { name, labels } };
}

function podWithClaims(...claims: string[]): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "p", namespace: "default" },
    spec: { containers: [{ name: "c", image: "pause" }], volumes: claims.map((c) => ({ name: c, persistentVolumeClaim: { claimName: c } })) },
  };
}

function claim(name: string, volumeName?: string): PersistentVolumeClaim {
  return { apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name, namespace: "default" }, spec: volumeName ? { volumeName } : {} };
}

function zonalPV(name: string, labels: Record<string, string>): PersistentVolume {
  return { apiVersion: "v1", kind: "PersistentVolume", metadata: { name, labels }, spec: {} };
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

// ---- cases -----------------------------------------------------------------------------------------

describe("VolumeZone", () => {
  const inA = node("a1", { [ZONE]: "zone-a" });
  const inB = node("b1", { [ZONE]: "zone-b" });
  const unzoned = node("x", {});
  const cases: { name: string; pod: Pod; objects?: KubeObject[]; want: Record<string, { code: number; reasons: string[] }> }[] = [
    {
      name: "without volume listers in the handle the plugin skips",
      pod: podWithClaims("data"),
      want: { a1: { code: Code.Skip, reasons: [] }, b1: { code: Code.Skip, reasons: [] }, x: { code: Code.Skip, reasons: [] } },
    },
    {
      name: "a claim bound to a zone-a volume admits zone-a nodes, rejects zone-b nodes, and admits unzoned nodes",
      pod: podWithClaims("data"),
      objects: [claim("data", "pv-1"), zonalPV("pv-1", { [ZONE]: "zone-a" })],
      want: {
        a1: { code: Code.Success, reasons: [] },
        b1: { code: Code.UnschedulableAndUnresolvable, reasons: [ErrReasonConflict] },
        x: { code: Code.Success, reasons: [] },
      },
    },
    {
      name: "a volume replicated over zone-a and zone-b admits both",
      pod: podWithClaims("data"),
      objects: [claim("data", "pv-1"), zonalPV("pv-1", { [ZONE]: "zone-a__zone-b" })],
      want: { a1: { code: Code.Success, reasons: [] }, b1: { code: Code.Success, reasons: [] }, x: { code: Code.Success, reasons: [] } },
    },
    {
      name: "a volume labelled with the beta zone label still matches nodes carrying only the GA label",
      pod: podWithClaims("data"),
      objects: [claim("data", "pv-1"), zonalPV("pv-1", { [BETA_ZONE]: "zone-b" })],
      want: {
        a1: { code: Code.UnschedulableAndUnresolvable, reasons: [ErrReasonConflict] },
        b1: { code: Code.Success, reasons: [] },
        x: { code: Code.Success, reasons: [] },
      },
    },
    {
      name: "an unbound claim is left to VolumeBinding and a volume without zone labels constrains nothing",
      pod: podWithClaims("pending", "data"),
      objects: [claim("pending"), claim("data", "pv-1"), zonalPV("pv-1", {})],
      want: { a1: { code: Code.Skip, reasons: [] }, b1: { code: Code.Skip, reasons: [] }, x: { code: Code.Skip, reasons: [] } },
    },
    {
      name: "a missing claim is unresolvable on every node",
      pod: podWithClaims("gone"),
      objects: [],
      want: Object.fromEntries(["a1", "b1", "x"].map((n) => [n, { code: Code.UnschedulableAndUnresolvable, reasons: ['persistentvolumeclaim "gone" not found'] }])),
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const pl = newVolumeZone(undefined, handleWith(c.objects)) as VolumeZone;
      const state = new CycleState();
      const pre = pl.preFilter(state, c.pod).status;
      const got: Record<string, { code: number; reasons: readonly string[] }> = {};
      for (const n of [inA, inB, unzoned]) {
        const st = pre.isSuccess() ? pl.filter(state, c.pod, newNodeInfo(n)) : pre;
        got[n.metadata.name!] = { code: st.code, reasons: st.reasons };
      }
      expect(got).toEqual(c.want);
    });
  }
});
