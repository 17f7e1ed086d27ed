// The cluster-autoscaler-status ConfigMap: upstream's structured YAML (counts, conditions with
// probe and transition times), the last-updated annotation, and rewrites only on change or a minute.

import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { ConfigMap } from "../../../api/index.ts";
import { goTimeString, LAST_UPDATED_ANNOTATION, STATUS_CONFIGMAP, type StatusDocument } from "./status.ts";
import { groupConfigMap, harness, makeNode, makePod, T0 } from "./testing.ts";

function statusOf(h: ReturnType<typeof harness>): { cm: ConfigMap; doc: StatusDocument } {
  const cm = h.client.tracker("", "configmaps", "kube-system", STATUS_CONFIGMAP) as ConfigMap;
  return { cm, doc: parse(cm.data!.status!) as StatusDocument };
}

const statusWrites = (h: ReturnType<typeof harness>) => h.client.actions.filter((a) => (a.verb === "create" || a.verb === "update") && a.name === STATUS_CONFIGMAP).length;

describe("goTimeString", () => {
  it("prints Go's time.Time.String in UTC", () => {
    expect(goTimeString(Date.UTC(2026, 11, 3, 6, 10, 0, 123))).toBe("2026-12-03 06:10:00.123 +0000 UTC");
    expect(goTimeString(Date.UTC(2026, 11, 3, 6, 10, 0, 100))).toBe("2026-12-03 06:10:00.1 +0000 UTC");
    expect(goTimeString(Date.UTC(2026, 11, 3, 6, 10, 0, 0))).toBe("2026-12-03 06:10:00 +0000 UTC");
  });
});

describe("status ConfigMap", () => {
  it("writes upstream's structure with node counts, scale-up and scale-down conditions", async () => {
    const h = harness([
      groupConfigMap({ group: "general", zone: "local-1a", min: 1, max: 5, desired: 3, instances: ["n1", "n2", "n3"], launchedAt: T0 - 60_000 }),
      makeNode("n1", { group: "general", zone: "local-1a" }),
      makeNode("n2", { group: "general", zone: "local-1a" }),
      makeNode("n3", { group: "general", zone: "local-1a", ready: false }),
      makeNode("static", {}),
      makePod("busy", { nodeName: "n1", cpu: "3" }),
    ]);
    await h.autoscaler.runOnce(h.ctx);
    const { cm, doc } = statusOf(h);
    expect(cm.metadata.annotations?.[LAST_UPDATED_ANNOTATION]).toBe("2026-12-03 06:00:00 +0000 UTC");
    const t = "2026-12-03T06:00:00Z";
    expect(doc).toEqual({
      time: "2026-12-03 06:00:00 +0000 UTC",
      autoscalerStatus: "Running",
      clusterWide: {
        health: {
          status: "Healthy",
          nodeCounts: { registered: { total: 4, ready: 3, notStarted: 1, unready: { total: 0, resourceUnready: 0 } }, longUnregistered: 0, unregistered: 0 },
          lastProbeTime: t,
          lastTransitionTime: t,
        },
        scaleUp: { status: "InProgress", lastProbeTime: t, lastTransitionTime: t },
        scaleDown: { status: "CandidatesPresent", candidates: 1, lastProbeTime: t, lastTransitionTime: t },
      },
      nodeGroups: [
        {
          name: "kubelab-nodegroup-general-local-1a",
          health: {
            status: "Healthy",
            nodeCounts: { registered: { total: 3, ready: 2, notStarted: 1, unready: { total: 0, resourceUnready: 0 } }, longUnregistered: 0, unregistered: 0 },
            cloudProviderTarget: 3,
            minSize: 1,
            maxSize: 5,
            lastProbeTime: t,
            lastTransitionTime: t,
          },
          scaleUp: { status: "InProgress", lastProbeTime: t, lastTransitionTime: t },
          scaleDown: { status: "CandidatesPresent", candidates: 1, lastProbeTime: t, lastTransitionTime: t },
        },
      ],
    });
    // Key order as upstream prints it.
    expect(cm.data!.status!.split("\n").slice(0, 4)).toEqual(["time: 2026-12-03 06:00:00 +0000 UTC", "autoscalerStatus: Running", "clusterWide:", "  health:"]);
  });

  it("is rewritten when something changes or a minute passed, and keeps transition times", async () => {
    const h = harness([
      groupConfigMap({ group: "general", zone: "local-1a", min: 0, max: 5, instances: ["n1"] }),
      makeNode("n1", { group: "general", zone: "local-1a" }),
      makePod("busy", { nodeName: "n1", cpu: "3" }),
    ]);
    await h.autoscaler.runOnce(h.ctx);
    expect(statusWrites(h)).toBe(1);
    await h.clock.advance(10_000);
    await h.autoscaler.runOnce(h.ctx);
    expect(statusWrites(h)).toBe(1);
    // A pending pod: the group scales up, scaleUp turns InProgress.
    await h.client.resource("", "pods").create("default", makePod("new", { cpu: "3" }));
    await h.clock.advance(10_000);
    await h.autoscaler.runOnce(h.ctx);
    expect(statusWrites(h)).toBe(2);
    const { doc } = statusOf(h);
    expect(doc.nodeGroups[0]!.scaleUp).toEqual({ status: "InProgress", lastProbeTime: "2026-12-03T06:00:20Z", lastTransitionTime: "2026-12-03T06:00:20Z" });
    expect(doc.nodeGroups[0]!.health.cloudProviderTarget).toBe(2);
    expect(doc.clusterWide.health.lastTransitionTime).toBe("2026-12-03T06:00:00Z");
    await h.clock.advance(60_000);
    await h.autoscaler.runOnce(h.ctx);
    expect(statusWrites(h)).toBe(3);
    expect(statusOf(h).doc.clusterWide.health.lastProbeTime).toBe("2026-12-03T06:01:20Z");
  });
});
